"""HTTP routes of the library: the filtered track list, favourite and lock flags, tags read from a file, models.

Errors are answered as ``{ok: false, error: {type, field, message}}`` with a 4xx status; a track name
from the URL resolves only through the store (one plain name, no traversal, no links).
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from .. import protocol
from ..audio import tags
from ..protocol import SEED_MAX, RequestError
from ..services import EXTENSION_KEY, Services
from ..storage import library
from .views import models_with_availability

bp = Blueprint("library", __name__)


def services() -> Services:
    """The current app's services."""
    return current_app.extensions[EXTENSION_KEY]


def refused(error: dict, status: int = 400) -> tuple[Response, int]:
    """A 4xx answer with the error object the UI maps to a message by its ``type``."""
    return jsonify({"ok": False, "error": error}), status


def not_found(field: str, message: str) -> tuple[Response, int]:
    """A 404 naming the field that pointed nowhere."""
    return refused({"type": "not_found", "field": field, "message": message}, 404)


@bp.get("/api/tracks")
def tracks() -> tuple[Response, int]:
    """Committed tracks, newest first, optionally filtered, sorted and paged (README, "HTTP routes").

    The body is always the list of tracks; ``X-Total-Count`` says how many matched before the page.
    """
    try:
        query = library.parse_query(request.args)
    except RequestError as exc:
        return refused(exc.as_json())
    store = services().store
    page, total = library.select(store.list_tracks(), query)
    return Response(store.public_json(page), mimetype="application/json",
                    headers={"X-Total-Count": str(total)}), 200


@bp.get("/api/models")
def models() -> Response:
    """The models offered, each with ``cached`` (loads without a download) and its size (README, "HTTP routes")."""
    return jsonify(models_with_availability(services()))


@bp.post("/api/tracks/<name>/flags")
def track_flags(name: str) -> tuple[Response, int]:
    """Set a track's ``favorite`` / ``locked`` flags; every tab hears ``tracks_changed`` with the track."""
    svc = services()
    if svc.store.get(name) is None:
        return not_found("name", "no such track")
    try:
        flags = library.parse_flags(request.get_json(silent=True))
    except RequestError as exc:
        return refused(exc.as_json())
    track = svc.set_track_flags(name, flags)
    if track is None:
        return not_found("name", "the track was deleted meanwhile")
    return jsonify({"ok": True, "track": track.public()}), 200


@bp.post("/api/tags")
def read_tags() -> tuple[Response, int]:
    """Read the record our tags carry in an uploaded file (field ``file``) and answer its request, validated.

    Nothing is decoded or kept: only the tags are parsed, and the request they hold is checked like a
    ``submit_sliders`` payload before it is answered, so a forged tag is refused by the field it breaks.
    """
    upload = request.files.get("file")
    if upload is None:
        return refused({"type": "invalid_request", "field": "file", "message": "no file in the 'file' field"})
    try:
        record = tags.read(upload.stream)
    except tags.TagError as exc:
        return refused({"type": "invalid_tags", "field": "file", "message": str(exc)}, 422)
    stored = record.get("request") if record else None
    if not isinstance(stored, dict):
        return refused({"type": "no_tags", "field": "file",
                        "message": "this file carries no audiocraft-webui parameters"}, 422)
    try:
        parsed = protocol.parse_generation_request(stored, services().catalog)
    except RequestError as exc:
        return refused(exc.as_json(), 422)
    assert record is not None, "a request was found in it"
    params = record.get("parameters")
    seed = params.get("seed") if isinstance(params, dict) else None
    return jsonify({"ok": True, "request": parsed.as_json(), "clamped": parsed.clamped,
                    "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= SEED_MAX
                    else None}), 200
