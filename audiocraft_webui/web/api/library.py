"""REST API routes of the library: models, tracks (list, read, flag, delete), uploads, stem splits, the token.

Names from the URL resolve only through the stores (one plain name, no traversal, no links); a name that
does not is simply not found.
"""
from __future__ import annotations

from flask import Response, current_app, jsonify, request

from ...protocol import UPLOAD_ID
from ...storage import Track, TrackLocked, UnsafeName, library
from ...uploads import MAX_SECONDS, UploadError
from ..security import POLICY_KEY, AccessPolicy, origin_allowed
from ..views import models_with_availability
from .base import ApiError, caller, json_body, services, spec
from .schemas import (
    Deleted,
    ModelList,
    StemJobCreated,
    StemsBody,
    TokenView,
    TrackFlags,
    TrackList,
    TrackQuery,
    TrackView,
    UploadForm,
    UploadView,
)
from .spec import BodyType

MULTIPART: BodyType = "multipart/form-data"


def track_view(track: Track) -> dict:
    """A track as the API shows it."""
    return {"name": track.base, "audio_url": f"/static/audio/{track.audio_file}",
            "json_url": f"/static/audio/{track.base}.json", "meta": track.meta, "mtime": track.mtime}


def find_track(name: str) -> Track:
    """A committed track by name, or a 404."""
    track = services().store.get(name)
    if track is None:
        raise ApiError(404, "not_found", "no such track", "name")
    return track


@spec.route("GET", "/models", responses={200: ModelList})
def list_models() -> Response:
    """The models offered, each with whether it is on this machine (`cached`: loads without a download)."""
    return jsonify({"models": models_with_availability(services())})


@spec.route("GET", "/tracks", query=TrackQuery, responses={200: TrackList})
def list_tracks() -> Response:
    """The tracks, newest first, filtered, sorted and paged (50 a page unless `limit` says otherwise)."""
    query = library.parse_query({"limit": str(TrackQuery.model_fields["limit"].default), **request.args.to_dict()})
    page, total = library.select(services().store.list_tracks(), query)
    return jsonify({"tracks": [track_view(track) for track in page], "total": total,
                    "limit": query.limit if query.limit is not None else total, "offset": query.offset})


@spec.route("GET", "/tracks/<name>", responses={200: TrackView}, errors=(404,))
def get_track(name: str) -> Response:
    """One track with its JSON record."""
    return jsonify(track_view(find_track(name)))


@spec.route("PATCH", "/tracks/<name>", body=TrackFlags, responses={200: TrackView}, errors=(404,))
def update_track(name: str) -> Response:
    """Mark a track as a favourite or lock it (a locked track cannot be deleted and survives Clear all)."""
    find_track(name)
    track = services().set_track_flags(name, library.parse_flags(json_body()))
    if track is None:
        raise ApiError(404, "not_found", "the track was deleted meanwhile", "name")
    return jsonify(track_view(track))


@spec.route("DELETE", "/tracks/<name>", responses={200: Deleted}, errors=(404, 409))
def delete_track(name: str) -> Response:
    """Delete a track with its record and stems; a locked track is refused (409)."""
    try:
        deleted = services().delete_track(name)
    except UnsafeName:
        raise ApiError(404, "not_found", "no such track", "name") from None
    except TrackLocked as exc:
        raise ApiError(409, "locked", str(exc), "name") from None
    return jsonify({"deleted": deleted})


@spec.route("POST", "/uploads", body=UploadForm, body_type=MULTIPART, responses={201: UploadView}, errors=(422,))
def create_upload() -> tuple[Response, int]:
    """Upload an audio clip: a melody prompt, a clip to continue, or a file to split into stems.

    The content must be WAV, FLAC, MP3 or Ogg audio within the purpose's length limit; it is stored under a
    server-made id, which the other routes take.
    """
    if request.mimetype != MULTIPART:
        raise ApiError(415, "unsupported_media_type", f"send the file as {MULTIPART}")
    purpose = request.form.get("purpose")
    if purpose not in MAX_SECONDS:
        raise ApiError(400, "invalid_request", f"purpose must be one of {', '.join(MAX_SECONDS)}", "purpose")
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "invalid_request", "no file in the 'file' field", "file")
    try:
        info = services().uploads.save(upload.stream, upload.filename or "", purpose)
    except UploadError as exc:
        status = exc.status if exc.status != 400 or exc.kind == "invalid_request" else 422
        raise ApiError(status, exc.kind, exc.message, "file") from None
    public = info.public()
    del public["filePath"]
    return jsonify(public), 201


def stem_job(job_and_position: tuple) -> tuple[Response, int]:
    """The answer to a queued split."""
    job, position = job_and_position
    return jsonify({"job_id": job.id, "position": position, **job.task.as_json()}), 202


@spec.route("POST", "/tracks/<name>/stems", body=StemsBody, body_required=False, responses={202: StemJobCreated},
            errors=(404, 409, 429))
def split_track(name: str) -> tuple[Response, int]:
    """Split a track into stems: all of them (default) or one and its complement (`no_<stem>`)."""
    body = json_body(optional=True)
    if not isinstance(body, dict) or set(body) - {"target"}:
        raise ApiError(400, "invalid_request", 'send {"target": "all"} or one stem', "body")
    return stem_job(services().stems.request_track_split(name, body.get("target", "all"), None, caller().owner))


@spec.route("POST", "/uploads/<upload_id>/stems", responses={202: StemJobCreated}, errors=(404, 409, 429))
def split_upload(upload_id: str) -> tuple[Response, int]:
    """Split an uploaded file (any purpose) into four stems (`static/stems_any/<id>/`); no track is made."""
    if not UPLOAD_ID.match(upload_id):
        raise ApiError(404, "not_found", "no such upload", "upload_id")
    if json_body(optional=True) != {}:
        raise ApiError(400, "invalid_request", "this call takes no options: send no body or {}", "body")
    return stem_job(services().stems.request_any_split(upload_id, None, caller().owner))


@spec.route("GET", "/token", responses={200: TokenView}, errors=(403,))
def get_token() -> Response:
    """The API token, for a logged-in page of this server (send it as `Authorization: Bearer`)."""
    if request.headers.get("Sec-Fetch-Site") == "cross-site" or \
            not origin_allowed(request.headers.get("Origin"), request.headers.get("Host")):
        raise ApiError(403, "cross_site", "the token is only shown to this server's own page")
    policy: AccessPolicy = current_app.extensions[POLICY_KEY]
    return jsonify({"token": policy.api_token, "required": policy.api_token is not None})
