"""Socket.IO handlers: validate, enqueue, answer with an ack; the worker sends everything after that."""
from __future__ import annotations

import dataclasses
import logging

from flask import current_app, request
from flask_socketio import SocketIO, emit

from .. import protocol
from ..fileio import disk_error
from ..jobs import QueueFull
from ..preview import PreviewError
from ..protocol import GenerationRequest, RequestError
from ..services import Services
from ..tasks import GenerateTask
from .clients import Clients
from .security import GUARDED_HEADERS, POLICY_KEY, SOCKETIO_PATH, check_request

log = logging.getLogger(__name__)


def refuse(event: str, error: dict) -> dict:
    """Tell the requesting tab why its request was refused (event and ack carry the same error)."""
    emit(protocol.REQUEST_ERROR, {"event": event, "error": error})
    return {"ok": False, "error": error}


def register(socketio: SocketIO, services: Services, clients: Clients) -> None:
    """Attach every client -> server handler to ``socketio``."""

    @socketio.on("connect")
    def on_connect(auth: object = None) -> bool:
        """Check Host, Origin and login again (defence in depth), then send the history and queue snapshot."""
        headers = {key: request.headers.get(key) for key in GUARDED_HEADERS}
        refusal = check_request("GET", SOCKETIO_PATH, headers, current_app.extensions[POLICY_KEY])
        if refusal is not None:
            log.warning("refused a Socket.IO connection: %s", refusal.reason)
            return False
        sid = request.sid  # type: ignore[attr-defined]
        client = clients.connect(sid, auth, request.remote_addr or "")
        services.emit(protocol.SESSION, {"owner": client.owner,
                                         "cancel_any": not clients.listening or client.local}, to=sid)
        services.emit(protocol.AUDIO_JSON_PAIRS, [track.pair() for track in services.store.list_tracks()], to=sid)
        services.emit(protocol.QUEUE_STATE, services.queue.snapshot(), to=sid)
        return True

    @socketio.on("disconnect")
    def on_disconnect(*_reason: object) -> None:
        """Forget the page that left."""
        clients.disconnect(request.sid)  # type: ignore[attr-defined]

    @socketio.on(protocol.SUBMIT_SLIDERS)
    def on_submit(payload: object = None) -> dict:
        """Validate a generation request and queue it; the ack says the job id, seed and queue position."""
        try:
            parsed = protocol.parse_generation_request(payload, services.catalog)
            services.check_available(parsed)
        except RequestError as exc:
            return refuse(protocol.SUBMIT_SLIDERS, exc.as_json())
        return _enqueue(protocol.SUBMIT_SLIDERS, parsed)

    @socketio.on(protocol.RERUN)
    def on_rerun(payload: object = None) -> dict:
        """Queue a track's stored request again (same seed when one was fixed, a new one in auto mode).

        ``preview`` in the payload overrides the stored one: listening is the page's setting now, not the
        track's.
        """
        name = payload.get("name") if isinstance(payload, dict) else None
        track = services.store.get(name)
        stored = track.meta.get("request") if track else None
        if track is None or not isinstance(stored, dict):
            return refuse(protocol.RERUN, {"type": "not_found", "field": "name",
                                            "message": "this track has no stored request to rerun"})
        try:
            parsed = GenerationRequest.from_json(stored)
            if isinstance(payload, dict) and isinstance(payload.get("preview"), bool):
                parsed = dataclasses.replace(parsed, preview=payload["preview"])
        except TypeError:
            return refuse(protocol.RERUN, {"type": "invalid_request", "field": "name",
                                            "message": "the stored request of this track cannot be read"})
        params = track.meta.get("parameters") or {}
        try:
            services.check_available(parsed, {"audio_prompt": params.get("audio_prompt"),
                                      "continuation": params.get("continuation_source")})
        except RequestError as exc:
            return refuse(protocol.RERUN, exc.as_json())
        return _enqueue(protocol.RERUN, parsed)

    @socketio.on(protocol.WATCH_PREVIEW)
    def on_watch_preview(payload: object = None) -> dict:
        """Listen to a queued or running job's preview: the chunks made so far first, then the live ones."""
        job_id = payload.get("job_id") if isinstance(payload, dict) else None
        try:
            sent = services.preview.watch(job_id, request.sid)  # type: ignore[attr-defined]
        except PreviewError as exc:
            return refuse(protocol.WATCH_PREVIEW, exc.as_json())
        return {"ok": True, "job_id": job_id, "chunks": sent}

    @socketio.on(protocol.CANCEL_JOB)
    def on_cancel(payload: object = None) -> dict:
        """Cancel a running job (at its next step) or remove a queued one."""
        job_id = payload.get("job_id") if isinstance(payload, dict) else None
        if not isinstance(job_id, str):
            return refuse(protocol.CANCEL_JOB, {"type": "invalid_request", "field": "job_id",
                                                 "message": "job_id is missing"})
        sid = request.sid  # type: ignore[attr-defined]
        target = services.queue.get(job_id)
        if target is not None and not clients.may_cancel(sid, target):
            return refuse(protocol.CANCEL_JOB, {"type": "forbidden", "field": "job_id",
                                                 "message": "only the page that queued this job, or someone at the "
                                                            "server's own machine, can cancel it"})
        outcome = services.cancel_job(job_id)
        if outcome == "unknown":
            return refuse(protocol.CANCEL_JOB, {"type": "not_found", "field": "job_id",
                                                 "message": "no such job in the queue"})
        return {"ok": True, "job_id": job_id, "outcome": outcome}

    def _enqueue(event: str, parsed: GenerationRequest) -> dict:
        """Queue a validated request for this tab; the ack says the job id, seed, queue position and clamping."""
        sid = request.sid  # type: ignore[attr-defined]
        try:
            job, position = services.enqueue_generation(parsed, sid, clients.owner(sid))
        except QueueFull as exc:
            return refuse(event, {"type": "queue_full", "field": None, "message": str(exc)})
        except OSError as exc:
            return refuse(event, {**(disk_error(exc) or {"type": "disk_error", "message": exc.strerror}),
                                  "field": None})
        assert isinstance(job.task, GenerateTask), "a generation job"
        return {"ok": True, "job_id": job.id, "seed": job.task.seed, "position": position,
                "clamped": parsed.clamped, "auto_tune": job.task.auto_tune}
