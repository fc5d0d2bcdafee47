"""Socket.IO handlers for stems: ``request_stems`` (split a track), ``demucs_any`` (split an upload).

Both validate, queue a job on the one worker and answer with an ack; the worker sends the progress
and the terminal event (``postprocess_done`` / ``demucs_any_done``), each with the job id.
"""
from __future__ import annotations

from flask import request
from flask_socketio import SocketIO

from .. import protocol
from ..protocol import RequestError
from ..services import Services
from .clients import Clients
from .events import refuse

#: The original app's ``request_stems`` named the track by its JSON path.
JSON_PREFIX, JSON_SUFFIX = "static/audio/", ".json"


def track_name(payload: dict) -> object:
    """The track named by ``{name}`` or the original ``{json: "static/audio/<name>.json"}`` (unchecked)."""
    if "name" in payload:
        return payload["name"]
    path = payload.get("json")
    if isinstance(path, str) and path.startswith(JSON_PREFIX) and path.endswith(JSON_SUFFIX):
        return path[len(JSON_PREFIX):-len(JSON_SUFFIX)]
    return None


NOT_AN_OBJECT = RequestError("payload", "the request must be an object").as_json()


def register(socketio: SocketIO, services: Services, clients: Clients) -> None:
    """Attach the stem handlers to ``socketio``."""

    @socketio.on(protocol.REQUEST_STEMS)
    def on_request_stems(payload: object = None) -> dict:
        """Queue a stem split of a track that has none; ``target`` is all (default) or one stem."""
        if not isinstance(payload, dict):
            return refuse(protocol.REQUEST_STEMS, NOT_AN_OBJECT)
        sid = request.sid  # type: ignore[attr-defined]
        target = payload.get("target") or "all"
        try:
            job, position = services.stems.request_track_split(track_name(payload), target, sid,
                                                               clients.owner(sid))
        except RequestError as exc:
            return refuse(protocol.REQUEST_STEMS, exc.as_json())
        return {"ok": True, "job_id": job.id, **job.task.as_json(), "position": position}

    @socketio.on(protocol.DEMUCS_ANY)
    def on_demucs_any(payload: object = None) -> dict:
        """Queue a four-stem split of a file uploaded through ``/upload_demucs_any`` (``{id}``)."""
        if not isinstance(payload, dict):
            return refuse(protocol.DEMUCS_ANY, NOT_AN_OBJECT)
        upload = payload.get("id") or payload.get("path") or payload.get("filePath")
        sid = request.sid  # type: ignore[attr-defined]
        try:
            job, position = services.stems.request_any_split(upload, sid, clients.owner(sid))
        except RequestError as exc:
            return refuse(protocol.DEMUCS_ANY, exc.as_json())
        return {"ok": True, "job_id": job.id, **job.task.as_json(), "position": position}
