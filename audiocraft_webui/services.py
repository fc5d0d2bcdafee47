"""The app's service objects (queue, worker, engine, storage ...), built once per app and kept in ``app.extensions``."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from flask_socketio import SocketIO

from . import modelcache, protocol
from .composing import CONTINUATION_PROMPT_STEP_SECONDS
from .config import data_dir
from .engines import MusicEngine, create_engine
from .engines.demucs import DemucsSplitter, Splitter
from .fanout import JobEvents
from .generation import GenerationRunner, prepare
from .hooks import PauseAt, no_pause
from .jobs import Job, JobQueue, without_track_meta
from .models import ModelCatalog
from .preview import PreviewHub
from .protocol import GenerationRequest, RequestError
from .stems.service import StemService
from .storage import RecoveryReport, Track, TrackStore, UnsafeName
from .tasks import GenerateTask, TrackSplitTask, UploadSplitTask
from .uploads import UploadStore
from .worker import JobKind, Worker
from .workerproc.child import WorkerSettings
from .workerproc.proxies import RemoteEngine, RemoteSplitter
from .workerproc.supervisor import WorkerProcess

log = logging.getLogger(__name__)

EXTENSION_KEY = "audiocraft_webui"
#: Events only Socket.IO carries: preview chunks are binary audio for a player, not for an event stream.
SOCKET_ONLY_EVENTS = frozenset({protocol.AUDIO_PREVIEW})


class Emitter:
    """Serialise emits from the worker and request threads (python-socketio's emit is not thread-safe).

    Every event about a job also goes to the job's in-process subscribers (``events``, the REST API's
    event streams), in the same order as on the socket.
    """

    def __init__(self, socketio: SocketIO, events: JobEvents | None = None) -> None:
        self._socketio = socketio
        self._lock = threading.RLock()
        self.events = events or JobEvents()

    def held(self) -> threading.RLock:
        """Hold back other threads' events (``with emitter.held(): ...``) so a sequence goes out first."""
        return self._lock

    def __call__(self, event: str, payload: object, to: str | None = None) -> None:
        """Send an event to one client (``to`` = its sid) or to every client.

        A callable payload is evaluated under the lock, so a snapshot is never older than an event
        sent before it (e.g. a queue snapshot overtaken by the ack of a newer submit).
        """
        with self._lock:
            data = payload() if callable(payload) else payload
            self._socketio.emit(event, data, to=to)
            if event not in SOCKET_ONLY_EVENTS:
                self.events.publish(event, data)


class SocketRooms:
    """Socket.IO rooms of the app's default namespace, for the preview hub."""

    def __init__(self, socketio: SocketIO) -> None:
        self._socketio = socketio

    def enter(self, sid: str, room: str) -> None:
        """Add a connected client to a room (a client that has gone is ignored by the server)."""
        self._socketio.server.enter_room(sid, room, namespace="/")

    def close(self, room: str) -> None:
        """Remove every client from a room."""
        self._socketio.server.close_room(room, namespace="/")


@dataclass
class Services:
    """Everything a request handler or the worker needs; nothing lives in module globals."""

    config: dict
    catalog: ModelCatalog
    store: TrackStore
    uploads: UploadStore
    queue: JobQueue
    engine: MusicEngine
    emit: Emitter
    preview: PreviewHub
    worker: Worker = field(init=False)
    generation: GenerationRunner = field(init=False)
    stems: StemService = field(init=False)
    worker_process: WorkerProcess | None = None
    recovery: RecoveryReport = field(default_factory=RecoveryReport)
    interrupted: list[Job] = field(default_factory=list)

    def prepare_generation(self, request: GenerationRequest) -> GenerateTask:
        """Resolve seed and auto-tune into the task a generation job will run."""
        return prepare(request, self.catalog)

    def remember_last_run(self, task: GenerateTask) -> None:
        """Keep the user's request as the last run (the form is pre-filled from it)."""
        request = task.request
        self.store.save_last_run({"model": request.model, "prompt": request.prompt,
                                  "request": request.as_json(), "last_seed": task.seed})

    def check_available(self, parsed: GenerationRequest, names: dict | None = None) -> None:
        """Refuse a request whose model is no longer offered or cannot load, or whose uploaded clip was deleted.

        Args:
            parsed: the request.
            names: the clips' original file names by field, when known (a deleted upload lost its own).

        Raises:
            RequestError: naming the field (``model``, ``audio_prompt``, ``continuation``, ``continue_track`` or
                ``melody_track``).
        """
        model = self.catalog.resolve(parsed.model)
        if model is None:
            raise RequestError("model", f"model {parsed.model!r} is no longer offered; choose another model")
        reason = modelcache.unavailable_reason(model)
        if reason is not None:
            raise RequestError("model", reason, "model_unavailable")
        for field_name, upload_id in (("audio_prompt", parsed.audio_prompt), ("continuation", parsed.continuation)):
            if upload_id is None:
                continue
            try:
                self.uploads.path(upload_id)
            except UnsafeName:
                name = (names or {}).get(field_name) or self.uploads.display_name(upload_id)
                raise RequestError(field_name, f"the uploaded clip {name!r} ({field_name.replace('_', ' ')}) "
                                               f"is gone; upload it again") from None
        for field_name, track_name in (("continue_track", parsed.continue_track),
                                       ("melody_track", parsed.melody_track)):
            track = self.store.get(track_name) if track_name is not None else None
            if track_name is not None and track is None:
                raise RequestError(field_name, f"there is no track {track_name!r} in the library (deleted?)")
            length = track.meta.get("duration_seconds") if track is not None else None
            if field_name == "continue_track" and parsed.cut_at is not None and isinstance(length, (int, float)) \
                    and not CONTINUATION_PROMPT_STEP_SECONDS <= parsed.cut_at < length:
                raise RequestError("cut_at", f"cut_at must lie inside the track: from "
                                             f"{CONTINUATION_PROMPT_STEP_SECONDS:g} s to before its {length:g} s")

    def enqueue_generation(self, parsed: GenerationRequest, sid: str | None, owner: str | None) -> tuple[Job, int]:
        """Queue a validated request and announce it before the worker can send anything about it.

        The last run is written first: a data folder that cannot be written refuses the request (OSError)
        instead of queueing a job whose track could not be saved anyway. A page (``sid``) also hears the
        drawn seed and, when it asked, the preview; every tab hears ``add_to_queue``.

        Raises:
            OSError: the last run could not be written.
            QueueFull: the queue holds its most jobs.
        """
        task = self.prepare_generation(parsed)
        self.remember_last_run(task)
        with self.emit.held():
            job = Job(task, sid=sid, owner=owner)
            position = self.queue.submit(job)
            if sid is not None and parsed.seed == protocol.AUTO_SEED:
                self.emit(protocol.UPDATE_SEED, {"job_id": job.id, "seed": task.seed}, to=sid)
            self.emit(protocol.ADD_TO_QUEUE, {"job_id": job.id, "prompt": parsed.prompt, "position": position})
            if sid is not None and parsed.preview:
                self.preview.listen(job.id, sid)
        return job, position

    def cancel_job(self, job_id: str) -> str:
        """Cancel a running job (at its next step) or remove a queued one, whose tabs hear it at once.

        Returns:
            ``cancelling``, ``removed`` or ``unknown`` (see :meth:`JobQueue.cancel`).
        """
        outcome = self.queue.cancel(job_id)
        if outcome == "removed":
            job = self.queue.get(job_id)
            assert job is not None, "a job just moved to the history is found there"
            self.emit_job_event(self.worker.kinds[job.kind].terminal_event, {
                "job_id": job_id, "kind": job.kind, "state": "cancelled", "label": job.label,
                "error": {"type": "cancelled", "message": "removed from the queue"}})
        return outcome

    def delete_track(self, name: object) -> list[str]:
        """Delete a track with its JSON and stems, and tell every tab what was removed.

        Raises:
            UnsafeName: no such track (or a hostile name).
            TrackLocked: the track is locked (nothing is removed).
        """
        deleted = self.store.delete(name)
        self.emit(protocol.TRACKS_CHANGED, {"deleted": deleted})
        return deleted

    def set_track_flags(self, name: str, flags: dict[str, bool]) -> Track | None:
        """Set a track's favourite / lock flags and tell every tab; None when the track is gone."""
        track = self.store.set_flags(name, flags)
        if track is not None:
            self.emit(protocol.TRACKS_CHANGED, {"updated": track.public()})
        return track

    def emit_job_event(self, event: str, payload: object, to: str | None = None) -> None:
        """Send a worker event, adding the fields its job wants on every event (a track name, an upload id).

        The worker's terminal event carries a job's result only on success; this keeps e.g. the
        track name of a failed stem split in its ``postprocess_done`` too.
        """
        job_id = payload.get("job_id") if isinstance(payload, dict) else None
        job = self.queue.get(job_id) if isinstance(job_id, str) else None
        fields = job.task.event_fields() if job else {}
        self.emit(event, {**fields, **payload} if fields and isinstance(payload, dict) else payload, to=to)

    def broadcast_queue(self) -> None:
        """Send the queue snapshot to every tab (so a second tab sees the same state)."""
        self.emit(protocol.QUEUE_STATE, self.queue_update)

    def queue_update(self) -> dict:
        """The snapshot sent after a change: only the newest finished job keeps its track metadata.

        ``result.meta`` (the track JSON, with its 600-point waveform) of the job that just finished
        shows that track; the older ones went out with their own change already, and the snapshot a
        tab gets when it connects stays complete. Sending every recent track's metadata after every
        change (about 130 kB once the history is full) made a job's first progress event twice as late.
        """
        snapshot = self.queue.snapshot()
        snapshot["recent"][1:] = [without_track_meta(job) for job in snapshot["recent"][1:]]
        return snapshot


def compute(config: dict, engine: MusicEngine | None) -> tuple[WorkerProcess | None, MusicEngine, Splitter]:
    """Where generation and stems run: a worker process (the default), or this process (tests, a given engine)."""
    unload_after = bool(config["UNLOAD_AFTER_GEN"])
    demucs = str(config["DEMUCS_MODEL"])
    if engine is None and config["ISOLATE_WORKER"]:
        process = WorkerProcess(WorkerSettings(
            engine=str(config["ENGINE"]), device=str(config["DEVICE"]), threads=int(config["TORCH_THREADS"]),
            demucs_model=demucs, demucs_shifts=int(config["DEMUCS_SHIFTS"]),
            demucs_overlap=float(config["DEMUCS_OVERLAP"]), decoder=str(config["DECODER"]),
            cpu_weights=str(config["CPU_WEIGHTS"]), log_level=logging.getLogger().getEffectiveLevel(),
            pause_at=config.get("TEST_PAUSE_AT"), abort_at=config.get("TEST_ABORT_AT")))
        return process, RemoteEngine(process, unload_after), RemoteSplitter(process, demucs, unload_after)
    engine = engine or create_engine(str(config["ENGINE"]), device=str(config["DEVICE"]),
                                     threads=int(config["TORCH_THREADS"]), decoder=str(config["DECODER"]),
                                     cpu_weights=str(config["CPU_WEIGHTS"]))
    return None, engine, DemucsSplitter(demucs, device=str(config["DEVICE"]), shifts=int(config["DEMUCS_SHIFTS"]),
                                        overlap=float(config["DEMUCS_OVERLAP"]))


def build_services(config: dict, socketio: SocketIO, engine: MusicEngine | None = None) -> Services:
    """Create storage, queue, engine and worker for one app, and run the startup recovery sweep."""
    root = data_dir(config)
    pause = PauseAt.parse(config.get("TEST_PAUSE_AT"))
    store = TrackStore(root, pause)
    uploads = UploadStore(root / "static" / "uploads")
    stems_any_dir = root / "static" / "stems_any"
    recovery = store.recover(extra_folders=(uploads.folder, stems_any_dir))
    emit = Emitter(socketio)
    queue = JobQueue(int(config["QUEUE_MAX"]), store.settings_dir / "jobs.json")
    process, engine, splitter = compute(config, engine)
    services = Services(config=config, catalog=ModelCatalog(list(config["CUSTOM_MODELS"])), store=store,
                        uploads=uploads, queue=queue, engine=engine, emit=emit,
                        preview=PreviewHub(emit, SocketRooms(socketio), queue), recovery=recovery)
    services.generation = GenerationRunner(engine, services.catalog, store, uploads, emit, services.preview,
                                           unload_after=bool(config["UNLOAD_AFTER_GEN"]))
    services.worker_process = process
    services.stems = StemService(splitter, store, uploads, queue, services.emit_job_event, any_dir=stems_any_dir,
                                 unload_after=bool(config["UNLOAD_AFTER_GEN"]))
    # One worker for every kind, so generation, MBD and Demucs never share the GPU at the same time.
    kinds = {
        GenerateTask.kind: JobKind(services.generation.run, protocol.ON_FINISH_AUDIO),
        TrackSplitTask.kind: JobKind(services.stems.run_track_split, protocol.POSTPROCESS_DONE,
                                     protocol.STEM_PROGRESS),
        UploadSplitTask.kind: JobKind(services.stems.run_any_split, protocol.DEMUCS_ANY_DONE,
                                      protocol.DEMUCS_ANY_PROGRESS),
    }
    services.worker = Worker(queue, kinds, services.emit_job_event, prepare_thread=engine.prepare_thread,
                             free_memory=engine.free_memory, after_job=services.stems.after_job,
                             pause=pause if process is None else no_pause)  # a worker process pauses itself
    services.interrupted = queue.restore()
    for job in services.interrupted:
        if isinstance(job.task, TrackSplitTask):
            services.stems.track_status(job.task.name)  # the track JSON says "running": close it
    queue.set_listener(services.broadcast_queue)
    return services
