"""The stem jobs: ``stems`` splits a track (its JSON follows the task through queued -> running -> done |
failed) and ``demucs_any`` splits an uploaded file; both run on the one worker.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from .. import protocol
from ..engines.demucs import Splitter
from ..engines.stemsplit import AudioSource
from ..fileio import disk_error
from ..jobs import Job, JobQueue, JobState, QueueFull
from ..storage import TrackStore
from ..tasks import STEM_SPLIT_TASK as TASK
from ..tasks import GenerateTask, TrackSplitTask, UploadSplitTask
from ..uploads import UploadStore
from ..worker import Emit, JobCancelled, Progress, error_info
from .errors import StemError, StemRequestError
from .folders import StemFolders

log = logging.getLogger(__name__)

#: The targets a split may ask for ("" = none is only meaningful at submit time).
TARGETS = tuple(target for target in protocol.STEM_TARGETS if target)
LIVE_STATES = (JobState.QUEUED, JobState.RUNNING)


class Bars:
    """One job's progress sent as several events (``stem_progress`` and ``postprocess_progress``).

    Every bar reads and raises the same ``job.progress``, so all of them stay monotonic and equal.
    """

    def __init__(self, *bars: Progress) -> None:
        self.bars = bars

    def phase(self, name: str, start: float, end: float) -> None:
        """Enter a phase covering ``[start, end]`` of every bar."""
        for bar in self.bars:
            bar.phase(name, start, end)

    def update(self, fraction: float) -> None:
        """Report the fraction of the current phase done (raises JobCancelled when cancelled)."""
        for bar in self.bars:
            bar.update(fraction)


def postprocess_status(tasks: list[dict]) -> str:
    """Overall post-processing state: failed if any task failed (one failure is never hidden by another task's
    success), else running, queued, done."""
    states = {task.get("status") for task in tasks}
    for state in ("failed", "running", "queued"):
        if state in states:
            return state
    return "cancelled" if states == {"cancelled"} else "done"


class StemService:
    """Queues stem splits (after a generation, on request, of an upload) and runs them on the worker."""

    def __init__(self, splitter: Splitter, store: TrackStore, uploads: UploadStore, queue: JobQueue,
                 emit: Emit, *, any_dir: Path, unload_after: bool = False) -> None:
        self.splitter = splitter
        self.store = store
        self.uploads = uploads
        self.queue = queue
        self.emit = emit
        self.unload_after = unload_after
        self.tracks = StemFolders(store.stems_dir, "/static/stems")
        self.any = StemFolders(any_dir, "/static/stems_any")
        self._lock = threading.Lock()
        self._any_jobs: dict[str, str] = {}

    # ---- queueing (request threads, and the worker's after-job hook) -------------------------------

    def request_track_split(self, name: object, target: object, sid: str | None = None,
                            owner: str | None = None) -> tuple[Job, int]:
        """Queue a split of a committed track that has no stems and no split under way.

        Raises:
            StemRequestError: unknown track or target, stems present, a split queued or running, queue full.
        """
        if target not in TARGETS:
            raise StemRequestError("invalid_request", "target", f"target must be one of {', '.join(TARGETS)}")
        with self._lock:
            track = self.store.get(name)
            if track is None:
                raise StemRequestError("not_found", "name", "no such track")
            if self.tracks.names(track.base):
                raise StemRequestError("already_split", "name", "this track already has stems")
            if self._live(self._task(track.meta).get("job_id")):
                raise StemRequestError("busy", "name", "a split of this track is already queued or running")
            if self.queue.pending_count() >= self.queue.maxsize:
                raise StemRequestError("queue_full", "name", f"the queue is full ({self.queue.maxsize} jobs "
                                                             "waiting); try again when some have finished")
            job = Job(TrackSplitTask(track.base, target), sid=sid, owner=owner)
            # The track's JSON says "queued" before the job exists, so a folder that cannot be written refuses
            # the request instead of leaving a split that cannot record itself.
            try:
                self._write_task(track.base, {"type": TASK, "status": "queued", "target": target, "job_id": job.id},
                                 replace=True)
            except OSError as exc:
                disk = disk_error(exc) or {"type": "disk_error", "message": exc.strerror or "cannot write"}
                raise StemRequestError(disk["type"], "name", disk["message"]) from None
            try:
                position = self.queue.submit(job)
            except QueueFull as exc:  # another tab filled the last place meanwhile; track_status closes the task
                raise StemRequestError("queue_full", "name", str(exc)) from None
        self.emit(protocol.POSTPROCESS_QUEUED, {"job_id": job.id, "name": track.base, "task": TASK,
                                                "tasks": [TASK], "target": target, "position": position})
        return job, position

    def request_any_split(self, upload_id: object, sid: str | None = None,
                          owner: str | None = None) -> tuple[Job, int]:
        """Queue a split of an uploaded file into ``static/stems_any/<upload id without extension>/``.

        Raises:
            RequestError: not an upload id.
            StemRequestError: upload gone, already split or under way, queue full.
        """
        upload = protocol.upload_ref("id", upload_id)
        info = self.uploads.info(upload) if upload else None
        if upload is None or info is None:
            raise StemRequestError("not_found", "id", "the uploaded file is gone; upload it again")
        key = upload.split(".", 1)[0]
        with self._lock:
            if self.any.names(key):
                raise StemRequestError("already_split", "id", "this file has been split already")
            if self._live(self._any_jobs.get(key)):
                raise StemRequestError("busy", "id", "this file is already being split")
            job = Job(UploadSplitTask(key, upload, info.name), sid=sid, owner=owner)
            try:
                position = self.queue.submit(job)
            except QueueFull as exc:
                raise StemRequestError("queue_full", "id", str(exc)) from None
            self._any_jobs[key] = job.id
        return job, position

    def after_job(self, job: Job) -> None:
        """Worker hook: a finished generation that asked for stems gets its split queued right away (every take's)."""
        target = job.task.request.stem_split if isinstance(job.task, GenerateTask) else None
        if not target or job.state is not JobState.DONE or not job.result:
            return
        for take in job.result.get("takes") or [job.result]:
            self._split_new(job, take["name"], target)

    def _split_new(self, job: Job, name: str, target: str) -> None:
        """Queue the split of a track the job just made; a refusal is written in its JSON and announced."""
        # The track is brand new: a stem folder under its name is an orphan (e.g. of a quarantined track).
        self.tracks.discard(name)
        try:
            self.request_track_split(name, target, job.sid, job.owner)
        except StemRequestError as exc:
            log.warning("could not queue the stem split of %s: %s", name, exc.message)
            self._write_task(name, {"type": TASK, "status": "failed", "target": target, "error": exc.message},
                             replace=True)
            # No stem job exists, so the event carries the generation's job id, as on_finish_audio did.
            self.emit(protocol.POSTPROCESS_DONE, {"job_id": job.id, "name": name, "task": TASK,
                                                  "state": "failed", "error": exc.as_json()})

    def _live(self, job_id: object) -> bool:
        """Whether a job is still queued or running."""
        job = self.queue.get(job_id) if isinstance(job_id, str) else None
        return job is not None and job.state in LIVE_STATES

    # ---- state --------------------------------------------------------------------------------------

    @staticmethod
    def _task(meta: dict) -> dict:
        """The stem-split task of a track's JSON (empty when none)."""
        tasks = meta.get("postprocess", {}).get("tasks", [])
        return next((task for task in tasks if isinstance(task, dict) and task.get("type") == TASK), {})

    def _write_task(self, name: str, fields: dict, *, replace: bool = False) -> dict | None:
        """Update the track JSON's stem task, ``parameters.stem_split`` and ``postprocess.status`` atomically.

        Returns the new JSON, or None when the track is gone.
        """
        def change(meta: dict) -> None:
            post = meta.setdefault("postprocess", {})
            tasks = [task for task in post.get("tasks", []) if isinstance(task, dict)]
            current = next((task for task in tasks if task.get("type") == TASK), None)
            if current is None or replace:
                current = {"type": TASK}
                tasks = [task for task in tasks if task.get("type") != TASK] + [current]
            current.update(fields)
            if current["status"] != "failed":
                current.pop("error", None)
            post["tasks"] = tasks
            post["status"] = postprocess_status(tasks)
            meta.setdefault("parameters", {})["stem_split"] = {"requested": current.get("target"),
                                                               "status": current["status"]}

        return self.store.update_meta(name, change)

    def track_status(self, name: str) -> dict:
        """The stem task of a track as it really is; an open task whose job is gone is closed here.

        A job cancelled while queued, or cut short by a restart, leaves its task open in the JSON; the
        queue knows how it ended, and the JSON is corrected the first time someone asks.
        """
        track = self.store.get(name)
        task = self._task(track.meta) if track else {}
        job_id = task.get("job_id")
        if task.get("status") in ("queued", "running") and not self._live(job_id):
            job = self.queue.get(job_id) if isinstance(job_id, str) else None
            cancelled = job is not None and job.state is JobState.CANCELLED
            message = (job.error or {}).get("message") if job else None
            meta = self._write_task(name, {"status": "cancelled" if cancelled else "failed",
                                           "error": message or "the split stopped before it finished"})
            task = self._task(meta) if meta else {}
        return task

    # ---- running (worker thread) --------------------------------------------------------------------

    def run_track_split(self, job: Job, progress: Progress) -> dict:
        """Split a track into ``static/stems/<name>/`` and record the result in its JSON."""
        task = job.task
        assert isinstance(task, TrackSplitTask), "the worker routes stems jobs here"
        name, target = task.name, task.target
        postprocess_bar = progress.twin(protocol.POSTPROCESS_PROGRESS)
        bars = Bars(progress, postprocess_bar)
        try:
            track = self.store.get(name)
            if track is None or self._write_task(name, {"status": "running", "started": time.time()}) is None:
                raise StemError("the track was deleted before its stems could be made")
            bars.phase("reading", 0.0, 0.02)
            source = AudioSource(str(self.store.audio_dir / track.audio_file))
            stems, sample_rate = self._split(source, target, self.tracks, name, bars)
            meta = self._write_task(name, {
                "status": "done", "stems": [f"static/stems/{name}/{stem}.wav" for stem in stems],
                "output_dir": f"static/stems/{name}", "model": self.splitter.model_name,
                "sample_rate": sample_rate, "finished": time.time()})
            if meta is None:
                self.tracks.discard(name)
                raise StemError("the track was deleted while its stems were being made")
        except BaseException as exc:
            state = "cancelled" if isinstance(exc, JobCancelled) else "failed"
            message = error_info(exc)["message"]
            self._write_task(name, {"status": state, "error": message, "finished": time.time()})
            raise
        postprocess_bar.complete()
        return {"name": name, "target": target, "stems": self.tracks.public(name),
                "postprocess": meta["postprocess"]}

    def run_any_split(self, job: Job, progress: Progress) -> dict:
        """Split an uploaded file into ``static/stems_any/<id>/`` (no track JSON is made)."""
        task = job.task
        assert isinstance(task, UploadSplitTask), "the worker routes demucs_any jobs here"
        key, upload = task.id, task.upload
        bars = Bars(progress)
        bars.phase("reading", 0.0, 0.02)
        with self.uploads.decoded(upload) as source:
            self._split(source, "all", self.any, key, bars)
        if self.uploads.info(upload) is None:
            self.any.discard(key)
            raise StemError("the uploaded file was removed while it was being split")
        return {"id": key, "upload": upload, "display_name": task.display_name,
                "stems": self.any.public(key), "model": self.splitter.model_name}

    def _split(self, source: AudioSource, target: str, folders: StemFolders, key: str,
               bars: Bars) -> tuple[list[str], int]:
        """Load the model, separate ``source`` window by window into a staged folder and publish the set."""
        try:
            bars.phase("loading_model", 0.02, 0.05)
            self.splitter.load()
            bars.phase("separating", 0.05, 0.97)
            with folders.staging(key) as staged:
                stems, sample_rate = self.splitter.split(source, target, staged, bars.update)
                bars.phase("writing", 0.97, 1.0)
                folders.publish(key, staged)
        finally:
            if self.unload_after:
                self.splitter.unload()
        return stems, sample_rate
