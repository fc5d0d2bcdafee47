"""Jobs and the bounded FIFO queue that feeds the single GPU worker, persisted so a restart loses nothing.

The queue file (``settings/jobs.json``) is rewritten atomically on every change. After a crash,
queued jobs are queued again and the job that was running is reported as ``interrupted``, never
as done, and never re-queued by itself.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from .fileio import atomic_write_json, read_json
from .tasks import TASK_TYPES, GenerateTask, Task

log = logging.getLogger(__name__)

RECENT_LIMIT = 20


class JobState(str, Enum):
    """Lifecycle of a job; the last four are terminal."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class QueueFull(RuntimeError):
    """The queue holds its maximum number of pending jobs."""


@dataclass
class Job:
    """One unit of work for the worker: its task (what to do) and its life in the queue."""

    task: Task
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    sid: str | None = None
    #: Who may cancel the job when several people share a server (see web/clients.py); None: nobody but the
    #: local user.
    owner: str | None = None
    state: JobState = JobState.QUEUED
    progress: float = 0.0
    phase: str = "queued"
    error: dict | None = None
    result: dict | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def kind(self) -> str:
        """The job kind (``generate``, ``stems``, ``demucs_any``), which picks how the worker runs it."""
        return self.task.kind

    @property
    def label(self) -> str:
        """What the queue shows for the job."""
        return self.task.label

    def public(self) -> dict:
        """Describe the job for the browser and for the queue file."""
        return {
            "id": self.id, "kind": self.kind, "label": self.label, "state": self.state.value,
            "progress": round(self.progress, 4), "phase": self.phase, "error": self.error,
            "result": self.result, "created": self.created, "started": self.started, "finished": self.finished,
            "owner": self.owner, "preview": isinstance(self.task, GenerateTask) and self.task.request.preview,
        }

    def persisted(self) -> dict:
        """The job with its task, as kept in the queue file (a track's JSON stays in its own file)."""
        return {**without_track_meta(self.public()), "payload": self.task.as_json()}

    @classmethod
    def restore(cls, data: dict) -> Job:
        """Rebuild a job from the queue file (raises KeyError, TypeError or ValueError on a malformed one)."""
        job = cls(TASK_TYPES[data["kind"]].from_json(data["payload"]), id=data["id"])
        job.state = JobState(data.get("state", "queued"))
        job.created = data.get("created", job.created)
        job.error, job.result = data.get("error"), data.get("result")
        job.started, job.finished = data.get("started"), data.get("finished")
        return job


def without_track_meta(job: dict) -> dict:
    """A job description without the track JSONs in its result, its takes' too (the files on disk have them)."""
    result = job.get("result")
    if not isinstance(result, dict) or "meta" not in result:
        return job
    trimmed = {key: value for key, value in result.items() if key != "meta"}
    if isinstance(result.get("takes"), list):
        trimmed["takes"] = [{key: value for key, value in take.items() if key != "meta"}
                            for take in result["takes"] if isinstance(take, dict)]
    return {**job, "result": trimmed}


class JobQueue:
    """A bounded FIFO with one running slot, a short history and atomic persistence."""

    def __init__(self, maxsize: int = 32, state_file: Path | None = None) -> None:
        self.maxsize = maxsize
        self._state_file = state_file
        self._on_change: Callable[[], None] | None = None
        self._pending: deque[Job] = deque()
        self._running: Job | None = None
        self._recent: deque[Job] = deque(maxlen=RECENT_LIMIT)
        self._cond = threading.Condition()
        self._persist_lock = threading.Lock()

    def set_listener(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` after every change of the queue (used to broadcast snapshots)."""
        self._on_change = on_change

    def submit(self, job: Job) -> int:
        """Queue a job; returns its 1-based position (1 = next to run). Raises QueueFull."""
        with self._cond:
            if len(self._pending) >= self.maxsize:
                raise QueueFull(f"the queue is full ({self.maxsize} jobs waiting); try again when some have finished")
            self._pending.append(job)
            position = len(self._pending)
            self._cond.notify()
        self._changed()
        return position

    def take(self, timeout: float | None = None) -> Job | None:
        """Block until a job is pending, mark it running and return it (None on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._pending), timeout):
                return None
            job = self._pending.popleft()
            job.state, job.started, job.phase = JobState.RUNNING, time.time(), "starting"
            self._running = job
        self._changed()
        return job

    def finish(self, job: Job, state: JobState, *, error: dict | None = None, result: dict | None = None) -> None:
        """Record a terminal state for the running job and move it to the history."""
        with self._cond:
            job.state, job.error, job.result, job.finished = state, error, result, time.time()
            if state is JobState.DONE:
                job.progress = 1.0
            job.phase = state.value
            if self._running is job:
                self._running = None
            self._recent.appendleft(job)
        self._changed()

    def cancel(self, job_id: str) -> str:
        """Cancel a job: remove it when queued, signal it when running. Returns what happened."""
        with self._cond:
            if self._running is not None and self._running.id == job_id:
                self._running.cancel_event.set()
                return "cancelling"
            for job in self._pending:
                if job.id == job_id:
                    self._pending.remove(job)
                    job.state, job.finished, job.phase = JobState.CANCELLED, time.time(), "cancelled"
                    self._recent.appendleft(job)
                    break
            else:
                return "unknown"
        self._changed()
        return "removed"

    def get(self, job_id: str) -> Job | None:
        """Find a pending, running or recent job by id."""
        with self._cond:
            for job in (self._running, *self._pending, *self._recent):
                if job is not None and job.id == job_id:
                    return job
        return None

    def position(self, job: Job) -> int | None:
        """A job's place: 1 for the next to run, 0 for the running one, None once it is over."""
        with self._cond:
            if job is self._running:
                return 0
            for place, pending in enumerate(self._pending, 1):
                if pending is job:
                    return place
        return None

    def snapshot(self) -> dict:
        """The whole queue for the browser: running job, pending jobs in order, recent history."""
        with self._cond:
            return {
                "running": self._running.public() if self._running else None,
                "queued": [job.public() for job in self._pending],
                "recent": [job.public() for job in self._recent],
                "max": self.maxsize,
            }

    def pending_count(self) -> int:
        """Number of jobs waiting (not counting the running one)."""
        with self._cond:
            return len(self._pending)

    def restore(self) -> list[Job]:
        """Reload the queue file after a restart; returns the jobs found interrupted."""
        data = read_json(self._state_file) if self._state_file else None
        if not isinstance(data, dict):
            return []
        interrupted = []
        with self._cond:
            for raw in data.get("recent", [])[::-1]:
                if job := _restored(raw):
                    self._recent.appendleft(job)
            if data.get("running") and (job := _restored(data["running"])):
                job.state, job.phase, job.finished = JobState.INTERRUPTED, "interrupted", time.time()
                job.error = {"type": "interrupted", "message": "the server stopped while this job was running"}
                self._recent.appendleft(job)
                interrupted.append(job)
            for raw in data.get("queued", []):
                if job := _restored(raw):
                    job.state = JobState.QUEUED
                    self._pending.append(job)
            self._cond.notify_all()
        self._changed()
        return interrupted

    def _changed(self) -> None:
        """Persist the queue and tell listeners (outside the lock, so listeners may read it)."""
        if self._state_file is not None:
            # One writer at a time, snapshot taken inside, so the newest state is always the last written.
            with self._persist_lock:
                with self._cond:
                    data = {
                        "running": self._running.persisted() if self._running else None,
                        "queued": [job.persisted() for job in self._pending],
                        "recent": [job.persisted() for job in self._recent],
                    }
                try:
                    atomic_write_json(self._state_file, data, compact=True)
                except OSError:
                    log.exception("could not persist the job queue to %s", self._state_file)
        if self._on_change is not None:
            self._on_change()


def _restored(raw: object) -> Job | None:
    """A job from the queue file, or None (logged) when its entry cannot be read: one bad entry loses only itself."""
    try:
        return Job.restore(raw)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, AttributeError):
        log.warning("skipped an unreadable job in the queue file: %.200r", raw)
        return None
