"""Who may talk to the server: a Host allow-list and an Origin check on every state-changing request.

Any web page in the user's browser can send requests to localhost. The guard refuses a foreign
``Host`` (DNS rebinding, e.g. ``evil.example:5000``) on every request, and a foreign or ``null``
``Origin`` (cross-site requests, WebSocket hijacking) on state-changing HTTP methods and on the
Socket.IO endpoint. It wraps the whole WSGI app, so it runs before Flask-SocketIO's middleware
and covers the polling and WebSocket transports alike.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SOCKETIO_PATH = "/socket.io"


def host_name(host_header: str) -> str:
    """The host part of a ``Host`` header, lower-cased, without port or IPv6 brackets."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host_header: str | None, allowed: Iterable[str]) -> bool:
    """Whether the request names this server by one of its allowed names."""
    return bool(host_header) and host_name(host_header) in {*LOOPBACK_HOSTS, *(h.lower() for h in allowed)}


def origin_allowed(origin: str | None, host_header: str | None) -> bool:
    """Whether a request's Origin is this very server (scheme http(s), same host and port).

    A missing Origin is accepted: browsers always send one on cross-site requests that can change
    state, and command-line clients send none. ``Origin: null`` (sandboxed frames, file pages) is refused.
    """
    if origin is None:
        return True
    parts = urlsplit(origin.strip())
    return parts.scheme in ("http", "https") and bool(host_header) and parts.netloc.lower() == host_header.lower()


def check_request(method: str, path: str, headers: dict[str, str | None], allowed: Iterable[str]) -> str | None:
    """Return why a request must be refused, or None when it may pass."""
    host = headers.get("host")
    if not host_allowed(host, allowed):
        return f"host {host!r} is not allowed; open the UI at http://127.0.0.1"
    changes_state = method not in SAFE_METHODS or path.startswith(SOCKETIO_PATH)
    if changes_state and not origin_allowed(headers.get("origin"), host):
        return "cross-origin request refused"
    if changes_state and headers.get("sec-fetch-site") == "cross-site":
        return "cross-site request refused"
    return None


class RequestGuard:
    """WSGI middleware applying :func:`check_request` to every request (HTTP and Socket.IO)."""

    def __init__(self, app: Callable, allowed_hosts: Callable[[], Iterable[str]]) -> None:
        self.app = app
        self._allowed_hosts = allowed_hosts

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Refuse with 400 (bad Host) or 403 (bad Origin) before the app sees the request."""
        headers = {"host": environ.get("HTTP_HOST"), "origin": environ.get("HTTP_ORIGIN"),
                   "sec-fetch-site": environ.get("HTTP_SEC_FETCH_SITE")}
        reason = check_request(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""), headers,
                               self._allowed_hosts())
        if reason is None:
            return self.app(environ, start_response)
        status = "400 Bad Request" if reason.startswith("host") else "403 Forbidden"
        body = json.dumps({"success": False, "error": reason}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
