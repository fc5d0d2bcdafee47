"""HTTP routes: the page, uploads, track files, delete and clear-all (the library's routes: library_views)."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request, send_file
from werkzeug.exceptions import HTTPException

from .. import modelcache, protocol
from ..config import STATIC_DIR
from ..fileio import disk_error
from ..services import EXTENSION_KEY, Services
from ..storage import TrackLocked, UnsafeName, safe_child, safe_descendant
from ..uploads import UploadError
from ..version import __version__
from .security import API_PREFIX

log = logging.getLogger(__name__)

bp = Blueprint("webui", __name__)

AUDIO_MIME = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}
#: The stable ``error_type`` of Flask's own HTTP errors, by status.
HTTP_ERROR_TYPES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
                    415: "unsupported_media_type"}
#: Folders under static/ holding user data: served only by their own routes (by id), never as static files.
DATA_FOLDERS = frozenset({"audio", "stems", "stems_any", "uploads", "temp", "demucs_any"})


def services() -> Services:
    """The current app's services."""
    return current_app.extensions[EXTENSION_KEY]


def models_with_availability(svc: Services) -> list[dict]:
    """The catalogue, each model marked with whether it is on this machine and its download size."""
    return [{**model.public(), **modelcache.availability(model).public()} for model in svc.catalog.models()]


def boot_config() -> dict:
    """Everything the page needs at start: models, ranges, formats, last run; passed as a JSON block."""
    svc = services()
    return {
        "version": __version__,
        "models": models_with_availability(svc),
        "ranges": protocol.boot_ranges(),
        "formats": list(protocol.FORMATS),
        "sample_rates": [str(rate) for rate in protocol.SAMPLE_RATES],
        "stem_targets": list(protocol.STEM_TARGETS),
        "loudness_targets": list(protocol.LOUDNESS_TARGETS),
        "max_prompt_chars": protocol.MAX_PROMPT_CHARS,
        "last_run": svc.store.load_last_run(),
        "recovery": svc.recovery.as_json(),
        "interrupted": [job.public() for job in svc.interrupted],
    }


@bp.get("/")
def index() -> str:
    """Render the single page, pre-filled from the last run."""
    return render_template("index.html", boot=boot_config())


def static_asset(filename: str) -> Response:
    """Serve the app's own files (Flask's ``static`` endpoint): no data folder, dot file, device name or link."""
    try:
        path = safe_descendant(STATIC_DIR, filename)
    except UnsafeName:
        abort(404)
    if filename.split("/", 1)[0] in DATA_FOLDERS or not path.is_file():
        abort(404)
    return current_app.send_static_file(filename)


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Serve the icon (browsers ask for this path whatever the page says)."""
    return send_file(STATIC_DIR / "favicon.svg", mimetype="image/svg+xml")


def accept_upload(field: str, purpose: str) -> tuple[Response, int]:
    """Accept one uploaded audio file into the uploads store."""
    storage = request.files.get(field)
    if storage is None:
        return jsonify({"ok": False, "error": f"no file in the '{field}' field", "error_type": "invalid_request"}), 400
    try:
        info = services().uploads.save(storage.stream, storage.filename or "", purpose)
    except UploadError as exc:
        return jsonify({"ok": False, "error": exc.message, "error_type": exc.kind}), exc.status
    return jsonify({"ok": True, **info.public()}), 200


@bp.post("/upload_melody")
def upload_melody() -> tuple[Response, int]:
    """Upload an audio prompt for a melody model (field ``melody``)."""
    return accept_upload("melody", "melody")


@bp.post("/upload_continuation")
def upload_continuation() -> tuple[Response, int]:
    """Upload a clip for the model to continue (field ``continuation``)."""
    return accept_upload("continuation", "continuation")


@bp.get("/static/audio/<name>")
def audio_file(name: str) -> Response:
    """Serve a track's audio or JSON from the data folder (never a link, never outside it)."""
    try:
        path = safe_child(services().store.audio_dir, name)
    except UnsafeName:
        abort(404)
    if path.suffix == ".json":
        return send_file(path, mimetype="application/json", max_age=0)
    if path.suffix not in AUDIO_MIME:
        abort(404)
    return send_file(path, mimetype=AUDIO_MIME[path.suffix], max_age=0, conditional=True)


@bp.get("/static/uploads/<name>")
def upload_file(name: str) -> Response:
    """Serve an uploaded clip for the preview player (audio types only)."""
    svc = services()
    try:
        path = svc.uploads.path(name)
    except UnsafeName:
        abort(404)
    return send_file(path, mimetype=AUDIO_MIME.get(path.suffix, "application/octet-stream"), conditional=True)


@bp.get("/api/last_run")
def last_run() -> Response:
    """The last submitted request (for the "restore last run" button)."""
    return jsonify(services().store.load_last_run() or {})


def _track_name(payload: object) -> object:
    """Read a track name from ``{name}`` or the original app's ``{wav: "static/audio/<file>"}``."""
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("name"), str):
        return payload["name"]
    wav = payload.get("wav")
    if isinstance(wav, str) and wav.startswith("static/audio/") and wav.count("/") == 2:
        return wav.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return None


@bp.post("/delete_audio")
def delete_audio() -> tuple[Response, int]:
    """Delete one track with its JSON and stems; the answer lists what was removed."""
    svc = services()
    try:
        deleted = svc.delete_track(_track_name(request.get_json(silent=True)))
    except UnsafeName:
        return jsonify({"success": False, "ok": False, "error": "no such track", "error_type": "not_found"}), 404
    except TrackLocked as exc:
        return jsonify({"success": False, "ok": False, "error": str(exc), "error_type": "locked"}), 409
    return jsonify({"success": True, "deleted": deleted}), 200


@bp.post("/delete_all_audio")
def delete_all_audio() -> tuple[Response, int]:
    """Remove every track that is not locked, its stems, and every upload (the UI asks for confirmation first).

    ``cleared`` stays true only when nothing was kept: a tab that sees it drops every track it shows.
    """
    svc = services()
    cleared = svc.store.clear_all(extra_folders=(svc.uploads.folder, svc.stems.any.root))
    kept = len(cleared.kept)
    svc.emit(protocol.TRACKS_CHANGED, {"cleared": kept == 0, "clear_all": True, "deleted": cleared.removed,
                                       "kept": kept})
    return jsonify({"success": True, "deleted": cleared.removed, "kept": kept, "kept_names": cleared.kept,
                    "errors": []}), 200


@bp.after_app_request
def security_headers(response: Response) -> Response:
    """Forbid MIME sniffing and framing, keep the referrer local, and allow only our own resources."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
        "style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'")
    return response


def api_error(kind: str, message: str, status: int, field: str | None = None) -> tuple[Response, int]:
    """An error of the REST API (``/api/v1/``) in its one shape, ``{error: {type, field, message}}``."""
    return jsonify({"error": {"type": kind, "field": field, "message": message}}), status


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[Response, int]:
    """Answer errors as JSON with a readable message (413 says what the limit is)."""
    message = exc.description or exc.name
    if exc.code == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        if request.content_length is not None and request.content_length <= limit:
            message = "the form has too many parts or a text field that is too large"
        else:
            message = f"the upload is too large (limit {limit // (1024 * 1024)} MB)"
    kind = HTTP_ERROR_TYPES.get(exc.code or 500, "server_error")
    if request.path.startswith(API_PREFIX):
        return api_error(kind, message, exc.code or 500)
    return jsonify({"success": False, "ok": False, "error": message, "error_type": kind}), exc.code or 500


@bp.app_errorhandler(OSError)
def disk_failure(exc: OSError) -> tuple[Response, int]:
    """A disk or permission error on any route: JSON saying which (507 for a full disk), never the server's paths."""
    log.error("a request failed on the data folder: %s", exc)
    error = disk_error(exc) or {"type": "server_error", "message": "the server could not read or write its files"}
    status = 507 if error["type"] == "disk_full" else 500
    if request.path.startswith(API_PREFIX):
        return api_error(error["type"], error["message"], status)
    return jsonify({"success": False, "ok": False, "error": error, "error_type": error["type"]}), status
