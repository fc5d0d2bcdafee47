"""What every REST API route shares: the blueprint and its spec, the error answer, JSON bodies, the caller."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from ...protocol import RequestError
from ...services import EXTENSION_KEY, Services
from ...version import __version__
from .. import views
from ..clients import CLIENTS_KEY, Client, Clients
from ..security import SOCKETIO_MAX_BYTES
from .spec import ApiSpec

bp = Blueprint("api", __name__, url_prefix="/api/v1")
spec = ApiSpec(bp, "audiocraft-webui", __version__)

#: The HTTP status of each refusal code the validators and services raise; any other code (a disk that cannot
#: be written: ``read_only``, ``permission`` ...) is the server's fault, 500.
STATUS_OF_KIND = {"invalid_request": 400, "forbidden": 403, "not_found": 404, "locked": 409, "already_split": 409,
                  "busy": 409, "model_unavailable": 422, "queue_full": 429, "disk_full": 507}
JSON = "application/json"


class ApiError(Exception):
    """A refused API call: answered with ``status`` and ``{error: {type, field, message}}``."""

    def __init__(self, status: int, kind: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.field = status, kind, message, field

    @classmethod
    def of(cls, exc: RequestError) -> ApiError:
        """The API's answer to a refusal of the shared validators (its status follows its code)."""
        return cls(STATUS_OF_KIND.get(exc.kind, 500), exc.kind, exc.message, exc.field)


@bp.errorhandler(ApiError)
def api_error(exc: ApiError) -> tuple[Response, int]:
    """Answer a refusal with the API's one error shape."""
    return views.api_error(exc.kind, exc.message, exc.status, exc.field)


@bp.errorhandler(RequestError)
def request_error(exc: RequestError) -> tuple[Response, int]:
    """A refusal raised by a shared validator, answered like any other."""
    return api_error(ApiError.of(exc))


@bp.after_request
def no_store(response: Response) -> Response:
    """API answers describe a moment of the server's state: never cached."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def services() -> Services:
    """The current app's services."""
    return current_app.extensions[EXTENSION_KEY]


def caller() -> Client:
    """Who calls: every API caller holds the same token, so they share one owner tag (web/clients.py)."""
    clients: Clients = current_app.extensions[CLIENTS_KEY]
    return clients.api_client(request.remote_addr or "")


def json_body(optional: bool = False) -> object:
    """The request's JSON body: only ``application/json`` (a plain HTML form cannot send it) of at most 1 MB.

    Args:
        optional: a request without any body (no type, no length) reads as ``{}``.

    Raises:
        ApiError: 415 for another type, 400 for a body that is not JSON (413 comes from the size limit).
    """
    if optional and not request.mimetype and not request.content_length:
        return {}
    if request.mimetype != JSON:
        raise ApiError(415, "unsupported_media_type", f"send the body as {JSON}")
    request.max_content_length = SOCKETIO_MAX_BYTES
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "invalid_request", "the body is not valid JSON", "body")
    return body
