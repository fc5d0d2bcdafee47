"""The app's service objects (queue, worker, engine, storage ...), built once per app and kept in ``app.extensions``."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from flask_socketio import SocketIO

from . import protocol
from .config import data_dir
from .engines import MusicEngine, create_engine
from .generation import GenerationRunner, prepare
from .hooks import PauseAt
from .jobs import Job, JobQueue, without_track_meta
from .models import ModelCatalog
from .preview import PreviewHub
from .protocol import GenerationRequest
from .stems.service import StemService
from .stems.splitter import DemucsSplitter
from .storage import RecoveryReport, TrackStore
from .tasks import GenerateTask, TrackSplitTask, UploadSplitTask
from .uploads import UploadStore
from .worker import JobKind, Worker

log = logging.getLogger(__name__)

EXTENSION_KEY = "audiocraft_webui"


class Emitter:
    """Serialise emits from the worker and request threads (python-socketio's emit is not thread-safe)."""

    def __init__(self, socketio: SocketIO) -> None:
        self._socketio = socketio
        self._lock = threading.RLock()

    def held(self) -> threading.RLock:
        """Hold back other threads' events (``with emitter.held(): ...``) so a sequence goes out first."""
        return self._lock

    def __call__(self, event: str, payload: object, to: str | None = None) -> None:
        """Send an event to one client (``to`` = its sid) or to every client.

        A callable payload is evaluated under the lock, so a snapshot is never older than an event
        sent before it (e.g. a queue snapshot overtaken by the ack of a newer submit).
        """
        with self._lock:
            self._socketio.emit(event, payload() if callable(payload) else payload, to=to)


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
    recovery: RecoveryReport = field(default_factory=RecoveryReport)
    interrupted: list[Job] = field(default_factory=list)

    def submit_generation(self, request: GenerationRequest, sid: str | None) -> tuple[Job, int]:
        """Resolve seed and auto-tune and queue the job; returns it with its queue position."""
        job = Job(prepare(request, self.catalog), sid=sid)
        return job, self.queue.submit(job)

    def remember_last_run(self, task: GenerateTask) -> None:
        """Keep the user's request as the last run (the form is pre-filled from it)."""
        request = task.request
        self.store.save_last_run({"model": request.model, "prompt": request.prompt,
                                  "request": request.as_json(), "last_seed": task.seed})

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
    engine = engine or create_engine(str(config["ENGINE"]), device=str(config["DEVICE"]),
                                     threads=int(config["TORCH_THREADS"]), decoder=str(config["DECODER"]),
                                     cpu_weights=str(config["CPU_WEIGHTS"]))
    services = Services(config=config, catalog=ModelCatalog(list(config["CUSTOM_MODELS"])), store=store,
                        uploads=uploads, queue=queue, engine=engine, emit=emit,
                        preview=PreviewHub(emit, SocketRooms(socketio), queue), recovery=recovery)
    services.generation = GenerationRunner(engine, services.catalog, store, uploads, emit, services.preview,
                                           unload_after=bool(config["UNLOAD_AFTER_GEN"]))
    splitter = DemucsSplitter(str(config["DEMUCS_MODEL"]), device=str(config["DEVICE"]),
                              shifts=int(config["DEMUCS_SHIFTS"]), overlap=float(config["DEMUCS_OVERLAP"]))
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
                             free_memory=engine.free_memory, after_job=services.stems.after_job, pause=pause)
    services.interrupted = queue.restore()
    for job in services.interrupted:
        if isinstance(job.task, TrackSplitTask):
            services.stems.track_status(job.task.name)  # the track JSON says "running": close it
    queue.set_listener(services.broadcast_queue)
    return services
