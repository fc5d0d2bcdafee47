"""The one worker thread that owns the GPU: it runs every job (generation, MBD, Demucs) one at a time.

Whatever a job raises, the worker frees memory, records the failure, sends the job's terminal
event and goes on with the next job. Progress is throttled, monotonic and carries the job id.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import protocol
from .fileio import disk_error, scrub_paths
from .hooks import Pause, no_pause
from .jobs import Job, JobQueue, JobState
from .workerproc.supervisor import WorkerDied, WorkerUnavailable

log = logging.getLogger(__name__)

#: Seconds between two progress events of one job (at most 10 per second).
PROGRESS_INTERVAL = 0.1
#: Write errors the user can fix, by errno, with the error type the UI receives.

Emit = Callable[..., None]
Clock = Callable[[], float]


class JobCancelled(Exception):
    """Raised inside a job (from a progress callback) when the user cancelled it."""


class Progress:
    """Per-job progress reporter: monotonic in [0, 1], throttled, with a phase label and cancel checks.

    Phases split the bar: each :meth:`phase` call names the phase and the slice ``[start, end]`` of
    the overall bar it fills, and :meth:`update` takes the fraction of the current phase.

    Args:
        job: the job reported on.
        emit: sends an event.
        event: the event name (``progress``, ``stem_progress`` ...).
        interval: least seconds between two throttled events.
        clock: the monotonic clock the throttle reads (a fake one in tests).
        pause: called with the phase name half-way through it (the crash tests stop a server there).
    """

    def __init__(self, job: Job, emit: Emit, event: str = protocol.PROGRESS, *,
                 interval: float = PROGRESS_INTERVAL, clock: Clock = time.monotonic, pause: Pause = no_pause) -> None:
        self.job = job
        self._emit = emit
        self._event = event
        self._interval = interval
        self._clock = clock
        self._pause = pause
        self._last_sent: float | None = None
        self._span = (0.0, 1.0)
        self._details: dict = {}

    def twin(self, event: str) -> Progress:
        """Another bar of the same job sent as ``event``, with the same clock and pause (it shares ``job.progress``)."""
        return Progress(self.job, self._emit, event, interval=self._interval, clock=self._clock, pause=self._pause)

    def phase(self, name: str, start: float | None = None, end: float | None = None) -> None:
        """Enter a phase covering ``[start, end]`` of the bar (defaults: from here to the end) and tell the UI."""
        self.check_cancel()
        begin = self.job.progress if start is None else max(start, self.job.progress)
        self._span = (begin, max(begin, 1.0 if end is None else end))
        self.job.phase = name
        self._details = {}
        self._send(force=True)

    def update(self, fraction: float, details: dict | None = None) -> None:
        """Report the fraction of the current phase done; raises JobCancelled when cancelled.

        ``details`` go out with this phase's events (e.g. ``{downloaded_bytes, total_bytes}`` while downloading).
        """
        self.check_cancel()
        if details:
            self._details = details
        if fraction >= 0.5:
            self._pause(self.job.phase)
        start, end = self._span
        value = start + (end - start) * min(max(fraction, 0.0), 1.0)
        if value > self.job.progress:
            self.job.progress = value
        self._send(force=False)

    def complete(self) -> None:
        """Send the final 100 % (never throttled away, unlike the original app's last update)."""
        self.job.progress = 1.0
        self._send(force=True)

    def check_cancel(self) -> None:
        """Stop the job at the next step if the user asked."""
        if self.job.cancel_event.is_set():
            raise JobCancelled()

    def _send(self, *, force: bool) -> None:
        """Emit a progress event unless one went out less than the interval ago."""
        now = self._clock()
        if not force and self._last_sent is not None and now - self._last_sent < self._interval:
            return
        self._last_sent = now
        self._emit(self._event, {"job_id": self.job.id, "progress": round(self.job.progress, 4),
                                 "phase": self.job.phase, "label": self.job.label, **self._details})


@dataclass(frozen=True)
class JobKind:
    """How to run one kind of job and which event ends it on the wire."""

    run: Callable[[Job, Progress], dict]
    terminal_event: str
    progress_event: str = protocol.PROGRESS


def error_info(exc: BaseException) -> dict:
    """Turn an exception into the ``{type, message}`` the UI shows (tracebacks go to the log only)."""
    if isinstance(exc, WorkerDied):
        return {"type": "worker_died", "message": str(exc)}
    if isinstance(exc, WorkerUnavailable):
        return {"type": "worker_unavailable", "message": str(exc)}
    name = type(exc).__name__
    if name == "OutOfMemoryError" or isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return {"type": "out_of_memory",
                "message": "Out of memory: try a shorter duration, a smaller model or closing other GPU programs."}
    if (disk := disk_error(exc)) is not None:
        return disk
    if isinstance(exc, OSError):
        return {"type": name, "message": exc.strerror or name}  # never the file name: it is the server's path
    message = scrub_paths(str(exc)) or name
    return {"type": name, "message": message[:500]}


class Worker:
    """A daemon thread taking jobs from the queue; one job at a time, forever."""

    def __init__(self, queue: JobQueue, kinds: dict[str, JobKind], emit: Emit,
                 prepare_thread: Callable[[], None] = lambda: None,
                 free_memory: Callable[[], None] = lambda: None,
                 after_job: Callable[[Job], None] = lambda job: None, *,
                 clock: Clock = time.monotonic, pause: Pause = no_pause) -> None:
        self.queue = queue
        self.clock = clock
        self.pause = pause
        self.kinds = kinds
        self.emit = emit
        self._prepare_thread = prepare_thread
        self._free_memory = free_memory
        self._after_job = after_job
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="gpu-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop after its current job and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        """Run jobs until stopped; nothing a job does can end this loop."""
        try:
            self._prepare_thread()
        except Exception:
            log.exception("could not prepare the worker thread")
        while not self._stop.is_set():
            try:
                self.run_once(timeout=0.2)
            except Exception:
                log.exception("worker loop error (recovered)")

    def run_once(self, timeout: float | None = None) -> Job | None:
        """Take one job (waiting up to ``timeout``), run it and send its terminal event."""
        job = self.queue.take(timeout)
        if job is None:
            return None
        kind = self.kinds[job.kind]
        self.emit(protocol.JOB_STARTED, {"job_id": job.id, "kind": job.kind, "label": job.label})
        progress = Progress(job, self.emit, kind.progress_event, clock=self.clock, pause=self.pause)
        state, error, result = JobState.DONE, None, None
        try:
            result = kind.run(job, progress)
        except JobCancelled:
            state, error = JobState.CANCELLED, {"type": "cancelled", "message": "cancelled by the user"}
            self._free_memory()
        except BaseException as exc:  # noqa: BLE001 - the worker must survive anything a job raises
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            log.exception("job %s (%s) failed", job.id, job.kind)
            state, error = JobState.FAILED, error_info(exc)
            self._free_memory()
        if state is JobState.DONE:
            progress.complete()
        self.queue.finish(job, state, error=error, result=result)
        self.emit(kind.terminal_event, {"job_id": job.id, "kind": job.kind, "state": state.value,
                                        "label": job.label, "error": error, **(result or {})})
        try:
            self._after_job(job)
        except Exception:
            log.exception("after-job hook failed for %s", job.id)
        return job
