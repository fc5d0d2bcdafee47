"""Who may talk to the server: a Host allow-list, an Origin check and, beyond loopback, a login.

Any web page in the user's browser can send requests to localhost. The guard refuses a foreign
``Host`` (DNS rebinding, e.g. ``evil.example:5000``) on every request, and a foreign or ``null``
``Origin`` (cross-site requests, WebSocket hijacking) on state-changing HTTP methods and on the
Socket.IO endpoint. It wraps the whole WSGI app, so it runs before Flask-SocketIO's middleware
and covers the polling and WebSocket transports alike.

When the server listens beyond loopback (``--listen``) it also requires credentials for every
request, the page and Socket.IO included: a token (``?token=`` once, or ``Authorization: Bearer``)
or a user and password (HTTP Basic). A successful login sets an HttpOnly, SameSite=Strict session
cookie, which the browser then sends on every request, WebSocket handshakes included. An address
that fails to log in too often within a minute is answered 429 until the minute is over.

The REST API (``/api/v1/``) passes the same Host and Origin checks; when a login is required (or
``--api-token`` is given) each call must also carry ``Authorization: Bearer <API token>``, whose wrong
guesses count against the same login throttle. A logged-in page reads the token from ``/api/v1/token``.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import math
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SOCKETIO_PATH = "/socket.io"
#: Largest Socket.IO message, for both transports (a long-polling POST above it is refused at once).
SOCKETIO_MAX_BYTES = 1_000_000
SESSION_COOKIE = "acw_session"
TOKEN_PARAM = "token"
REALM = "audiocraft-webui"
#: Where create_app keeps the app's :class:`AccessPolicy` (``app.extensions[POLICY_KEY]``).
POLICY_KEY = "access_policy"
#: A well-formed ``Host`` header: a DNS name, IPv4 or bracketed IPv6 address, and an optional port.
HOST_HEADER = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?")
#: Status lines of the refusals.
STATUS_LINES = {400: "400 Bad Request", 401: "401 Unauthorized", 403: "403 Forbidden", 429: "429 Too Many Requests"}
#: The stable ``error_type`` of each refusal, by status (the UI maps it to a message).
REFUSAL_TYPES = {400: "bad_host", 401: "login_required", 403: "cross_site", 429: "too_many_logins"}
#: Failed logins one address may make within ``LOGIN_WINDOW`` seconds before it has to wait.
LOGIN_FAILURES = 10
LOGIN_WINDOW = 60.0
#: Addresses whose failures are remembered at once (the oldest is forgotten first).
LOGIN_ADDRESSES = 1024
#: The request headers :func:`check_request` reads, lower-case.
GUARDED_HEADERS = ("host", "origin", "sec-fetch-site", "cookie", "authorization")
API_PREFIX = "/api/v1/"
#: API paths that need the page's login but not the API token: the token itself, the document and its page.
API_OPEN_PATHS = frozenset({"/api/v1/token", "/api/v1/openapi.json", "/api/v1/docs"})


def is_loopback(host: str) -> bool:
    """Whether a bind address or host name stays on this machine."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


@dataclass(frozen=True)
class AccessPolicy:
    """Who may talk to this server.

    Attributes:
        allowed_hosts: extra ``Host`` names besides the loopback ones (``--allowed-host``).
        listening: bound beyond loopback; then any IP-literal ``Host`` and this machine's name are allowed
            (a DNS-rebinding page always reaches us under its own domain name, never under an IP).
        token: the login token, or None.
        basic: ``(user, password)`` for HTTP Basic, or None.
        session: the value of this process's session cookie (random; a restart logs everybody out).
        api_token: the REST API's bearer token (``--api-token``, or drawn when a login is required), or None.
    """

    allowed_hosts: frozenset[str] = frozenset()
    listening: bool = False
    token: str | None = field(default=None, repr=False)
    basic: tuple[str, str] | None = field(default=None, repr=False)
    api_token: str | None = field(default=None, repr=False)
    session: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @classmethod
    def from_config(cls, config: Mapping) -> AccessPolicy:
        """Build the policy from ``HOST``, ``ALLOWED_HOSTS``, ``AUTH_TOKEN``, ``AUTH_BASIC`` and ``API_TOKEN``.

        Raises:
            ValueError: a non-loopback bind without credentials, or a malformed ``AUTH_BASIC``.
        """
        listening = not is_loopback(str(config["HOST"]))
        basic = None
        if config.get("AUTH_BASIC"):
            user, sep, password = str(config["AUTH_BASIC"]).partition(":")
            if not (sep and user and password):
                raise ValueError("--auth must look like user:password")
            basic = (user, password)
        token = config.get("AUTH_TOKEN") or None
        if listening and not (token or basic):
            raise ValueError("listening beyond loopback needs credentials: --auth user:password or a token")
        hosts = {str(name).lower() for name in config["ALLOWED_HOSTS"]}
        if listening:
            hosts |= {socket.gethostname().lower(), f"{socket.gethostname().lower()}.local"}
        api_token = config.get("API_TOKEN") or (secrets.token_urlsafe(24) if token or basic else None)
        return cls(frozenset(hosts), listening, token, basic, api_token=api_token)

    @property
    def auth_required(self) -> bool:
        """Whether requests must carry credentials."""
        return bool(self.token or self.basic)

    def needs_api_token(self, path: str) -> bool:
        """Whether a request for ``path`` must carry the API's bearer token."""
        return self.api_token is not None and path.startswith(API_PREFIX) and path not in API_OPEN_PATHS


class Refusal(NamedTuple):
    """Why a request is refused and with which HTTP status."""

    status: int
    reason: str


def host_name(host_header: str) -> str | None:
    """The host part of a ``Host`` header, lower-cased, without port or IPv6 brackets; None if malformed.

    A header that is more than ``host[:port]`` (user info, a path, a port that is not a number) is malformed:
    no browser sends one, and a lenient parser could read ``127.0.0.1:80.evil.example`` as loopback.
    """
    match = HOST_HEADER.fullmatch(host_header.strip())
    if match is None or int(match["port"] or 0) > 65535:
        return None
    return match["name"].strip("[]").lower()


def host_allowed(host_header: str | None, policy: AccessPolicy) -> bool:
    """Whether the request names this server by one of its allowed names."""
    name = host_name(host_header) if host_header else None
    if name is None:
        return False
    if name in LOOPBACK_HOSTS or name in policy.allowed_hosts:
        return True
    if not policy.listening:
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def origin_allowed(origin: str | None, host_header: str | None) -> bool:
    """Whether a request's Origin is this very server (scheme http(s), same host and port).

    A missing Origin is accepted: browsers always send one on cross-site requests that can change
    state, and command-line clients send none. ``Origin: null`` (sandboxed frames, file pages) is refused.
    """
    if origin is None:
        return True
    parts = urlsplit(origin.strip())
    return parts.scheme in ("http", "https") and host_header is not None and host_header != "" \
        and parts.netloc.lower() == host_header.lower()


def _equal(given: str, expected: str) -> bool:
    """Compare secrets in constant time."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def session_cookie(cookie_header: str | None) -> str | None:
    """The session cookie's value from a ``Cookie`` header, or None."""
    if not cookie_header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel else None


def credentials(headers: Mapping[str, str | None], policy: AccessPolicy) -> str | None:
    """How the request proves who it is: ``"cookie"``, ``"header"`` (Bearer or Basic), or None."""
    cookie = session_cookie(headers.get("cookie"))
    if cookie is not None and _equal(cookie, policy.session):
        return "cookie"
    given = bearer(headers)
    if given is not None and policy.token and _equal(given, policy.token):
        return "header"
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "basic" and policy.basic:
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if _equal(user, policy.basic[0]) & _equal(password, policy.basic[1]):
            return "header"
    return None


def bearer(headers: Mapping[str, str | None]) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def check_request(method: str, path: str, headers: Mapping[str, str | None], policy: AccessPolicy,
                  *, authenticated: bool | None = None) -> Refusal | None:
    """Return why a request must be refused, or None when it may pass.

    Args:
        method, path: the request line (the Socket.IO endpoint counts as state-changing whatever the method).
        headers: the :data:`GUARDED_HEADERS` by lower-case name (a missing one is None).
        policy: the server's access policy.
        authenticated: whether the caller already found that the request proves who it is (valid
            credentials, or a valid login token in its query string); None: read its credentials here.
    """
    host = headers.get("host")
    if not host_allowed(host, policy):
        return Refusal(400, f"host {host!r} is not allowed; open the UI at http://127.0.0.1")
    changes_state = method not in SAFE_METHODS or path.startswith(SOCKETIO_PATH)
    if changes_state and not origin_allowed(headers.get("origin"), host):
        return Refusal(403, "cross-origin request refused")
    if changes_state and headers.get("sec-fetch-site") == "cross-site":
        return Refusal(403, "cross-site request refused")
    if policy.needs_api_token(path):
        given = bearer(headers)
        if given is None or not _equal(given, policy.api_token or ""):
            return Refusal(401, "the API needs Authorization: Bearer <API token> (--api-token, or the token "
                                "a logged-in page reads from /api/v1/token)")
        return None
    if not policy.auth_required:
        return None
    if authenticated is None:
        authenticated = credentials(headers, policy) is not None
    if not authenticated:
        how = "user and password" if policy.basic else "the address with ?token= printed by the server at start"
        return Refusal(401, f"log in first: use the {how}")
    return None


class LoginThrottle:
    """Slow password guessing down: an address with too many recent failed logins waits before the next try."""

    def __init__(self, limit: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int:
        """Seconds before ``address`` may try to log in again (0: now)."""
        with self._lock:
            recent = self._recent(address)
            if len(recent) < self.limit:
                return 0
            return max(1, math.ceil(recent[0] + self.window - self._clock()))

    def failed(self, address: str) -> None:
        """Count a failed login of ``address``."""
        with self._lock:
            recent = self._recent(address)
            recent.append(self._clock())
            self._failures.pop(address, None)
            self._failures[address] = recent  # most recent last, so the oldest address is evicted first
            while len(self._failures) > LOGIN_ADDRESSES:
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, address: str) -> None:
        """Forget the failures of an address that has just logged in."""
        with self._lock:
            self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float]:
        """The failures of ``address`` within the window, oldest first (caller holds the lock)."""
        recent = self._failures.get(address, deque(maxlen=self.limit))
        while recent and recent[0] <= self._clock() - self.window:
            recent.popleft()
        return recent


def _oversize_poll(environ: dict) -> str | None:
    """The status line refusing a long-polling POST over the message limit or of unknown length, else None.

    python-engineio answers such a POST only after the whole body has come, so a client that sends a large
    length and then nothing held a server thread forever. Refused here, before any of the body is read,
    with ``Connection: close`` so the server does not wait for the rest either.
    """
    if environ.get("REQUEST_METHOD") != "POST" or not environ.get("PATH_INFO", "").startswith(SOCKETIO_PATH):
        return None
    length = environ.get("CONTENT_LENGTH") or ""
    if not length.isdigit():
        return "411 Length Required"
    return "413 Content Too Large" if int(length) > SOCKETIO_MAX_BYTES else None


def refusal_body(path: str, status: int, message: str) -> dict:
    """A refusal as the route would answer it: the REST API's error object, or the older routes' fields."""
    if path.startswith(API_PREFIX):
        return {"error": {"type": REFUSAL_TYPES[status], "field": None, "message": message}}
    return {"success": False, "ok": False, "error": message, "error_type": REFUSAL_TYPES[status]}


def _json_response(start_response: Callable, status: str, payload: dict,
                   extra: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    """Answer with a small JSON body."""
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), *extra])
    return [body]


class RequestGuard:
    """WSGI middleware applying :func:`check_request` to every request (HTTP and Socket.IO)."""

    def __init__(self, app: Callable, policy: AccessPolicy, throttle: LoginThrottle | None = None) -> None:
        self.app = app
        self.policy = policy
        self.throttle = throttle or LoginThrottle()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Refuse with 400 (bad Host), 403 (bad Origin), 401 (no login) or 429 (too many failed logins)."""
        if (oversize := _oversize_poll(environ)) is not None:
            return _json_response(start_response, oversize, {
                "success": False, "ok": False, "error": "a Socket.IO message may hold at most "
                f"{SOCKETIO_MAX_BYTES // 1000} kB", "error_type": "too_large"}, [("Connection", "close")])
        headers = {name: environ.get("HTTP_" + name.upper().replace("-", "_")) for name in GUARDED_HEADERS}
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        token = dict(query).get(TOKEN_PARAM)
        address = str(environ.get("REMOTE_ADDR", ""))
        guarded = self.policy.auth_required or self.policy.needs_api_token(path)
        attempt = guarded and (bool(headers["authorization"]) or token is not None)
        wait = self.throttle.retry_after(address) if attempt else 0
        if wait:
            return _json_response(start_response, STATUS_LINES[429],
                                  refusal_body(path, 429, f"too many failed logins; try again in {wait} s"),
                                  [("Retry-After", str(wait))])
        logging_in = (method == "GET" and not path.startswith(SOCKETIO_PATH) and token is not None
                      and self.policy.token is not None and _equal(token, self.policy.token))
        proof = credentials(headers, self.policy) if self.policy.auth_required else None
        refusal = check_request(method, path, headers, self.policy, authenticated=logging_in or proof is not None)
        if attempt:
            self._count(address, failed=refusal is not None and refusal.status == 401)
        if refusal is not None:
            return _json_response(start_response, STATUS_LINES[refusal.status],
                                  refusal_body(path, refusal.status, refusal.reason), self._challenge(refusal, path))
        if logging_in:
            # Drop the token from the address bar and history: redirect to the same URL without it.
            rest = urlencode([(key, value) for key, value in query if key != TOKEN_PARAM])
            location = path + (f"?{rest}" if rest else "")
            start_response("303 See Other", [("Location", location), ("Content-Length", "0"),
                                             ("Cache-Control", "no-store"), self._cookie_header()])
            return [b""]
        if proof == "header":
            return self.app(environ, self._with_cookie(start_response))
        return self.app(environ, start_response)

    def _challenge(self, refusal: Refusal, path: str) -> list[tuple[str, str]]:
        """The ``WWW-Authenticate`` header of a 401: Bearer for the API, Basic for a password login."""
        if refusal.status != 401:
            return []
        if self.policy.needs_api_token(path):
            return [("WWW-Authenticate", f'Bearer realm="{REALM}"')]
        return [("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')] if self.policy.basic else []

    def _count(self, address: str, *, failed: bool) -> None:
        """Record how a request carrying credentials came out, for the login throttle."""
        if failed:
            self.throttle.failed(address)
        else:
            self.throttle.succeeded(address)

    def _cookie_header(self) -> tuple[str, str]:
        """The Set-Cookie header that logs this browser in for the life of the server process."""
        return ("Set-Cookie", f"{SESSION_COOKIE}={self.policy.session}; Path=/; HttpOnly; SameSite=Strict")

    def _with_cookie(self, start_response: Callable) -> Callable:
        """Wrap ``start_response`` so the response also sets the session cookie."""
        def start(status: str, response_headers: list, exc_info: object = None) -> Callable:
            return start_response(status, [*response_headers, self._cookie_header()], exc_info)

        return start
