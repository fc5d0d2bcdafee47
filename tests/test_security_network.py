"""Who may talk to the server: Host allow-list, Origin check, Socket.IO handshake, binding and login.

Checklist rows 7-10 and 19 of docs/SECURITY.md. The WSGI guard is tested through Flask's test client
(HTTP routes and the Socket.IO polling handshake), and a real ``webui.py`` subprocess is driven with
python-socketio over WebSocket and polling, raw HTTP and raw WebSocket handshakes.
"""
from __future__ import annotations

import base64
import io
import logging
import re
from pathlib import Path

import pytest
import socketio
import websocket

import webui
from audiocraft_webui.web.security import LOGIN_FAILURES, LOGIN_WINDOW, SESSION_COOKIE, AccessPolicy, LoginThrottle
from tests.serverproc import LiveClient, ServerProcess, request

EVIL = "https://evil.example"
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"
SOURCES = [*Path(webui.__file__).parent.joinpath("audiocraft_webui").rglob("*.py"), Path(webui.__file__)]


def commit_track(services, base: str = "keep_me") -> None:
    """Put one committed track in the store."""
    services.store.commit(base, "wav", lambda handle: handle.write(b"RIFF"), {"prompt": "p"})


def snapshot(data_dir: Path) -> list[str]:
    """Every file and folder under the data folder (to prove nothing changed)."""
    return sorted(str(path.relative_to(data_dir)) for path in data_dir.rglob("*") if "jobs.json" not in path.name)


def wav_field(name: str) -> dict:
    """A multipart body with one small file field."""
    return {name: (io.BytesIO(b"RIFF"), "a.wav")}


# (path, content type, body) of every state-changing HTTP route; bodies are built per test (files get closed).
MUTATING = [
    ("/delete_audio", "text/plain", lambda: '{"name": "keep_me"}'),
    ("/delete_audio", "application/x-www-form-urlencoded", lambda: {"name": "keep_me"}),
    ("/delete_all_audio", "text/plain", lambda: "x"),
    ("/delete_all_audio", "multipart/form-data", lambda: {"a": "b"}),
    ("/upload_melody", "multipart/form-data", lambda: wav_field("melody")),
    ("/upload_continuation", "multipart/form-data", lambda: wav_field("continuation")),
    ("/upload_demucs_any", "multipart/form-data", lambda: wav_field("file")),
    ("/stems_mix/keep_me", "text/plain", lambda: "{}"),
]


@pytest.mark.parametrize("headers", [
    {"Origin": EVIL}, {"Origin": "null"}, {"Origin": "http://localhost:5001"}, {"Origin": "http://localhost.evil.example"},
    {"Origin": "file://"}, {"Sec-Fetch-Site": "cross-site"},
], ids=["foreign", "null", "other-port", "lookalike", "file", "sec-fetch-site"])
@pytest.mark.parametrize("path,content_type,body", MUTATING, ids=[f"{p}-{t}" for p, t, _ in MUTATING])
def test_cross_origin_posts_are_refused_and_change_nothing(client, services, data_dir, path, content_type, body,
                                                           headers):
    commit_track(services)
    before = snapshot(data_dir)
    answer = client.post(path, headers={"Host": "localhost", **headers}, data=body(), content_type=content_type)
    assert answer.status_code == 403 and answer.json["ok"] is False
    assert snapshot(data_dir) == before
    assert [track.base for track in services.store.list_tracks()] == ["keep_me"]


@pytest.mark.parametrize("path,method", [("/", "GET"), ("/api/tracks", "GET"),
                                         ("/static/vendor/socket.io.esm.min.js", "GET"),
                                         ("/delete_all_audio", "POST"), (HANDSHAKE, "GET")])
def test_a_rebinding_host_is_refused_on_pages_routes_and_the_handshake(client, services, path, method):
    commit_track(services)
    answer = client.open(path, method=method, headers={"Host": "evil.example:5000",
                                                       "Origin": "http://evil.example:5000"})
    assert answer.status_code == 400 and "not allowed" in answer.json["error"]
    assert len(services.store.list_tracks()) == 1


@pytest.mark.parametrize("host", ["127.0.0.1:5000.evil.example", "evil.example@127.0.0.1", "127.0.0.1/evil",
                                  "127.0.0.1:99999", "127.0.0.1:x", "", "127.0.0.2:5000", "[::1]evil:5000"])
def test_malformed_or_look_alike_host_headers_are_refused(client, services, host):
    commit_track(services)
    answer = client.post("/delete_all_audio", headers={"Host": host})
    assert answer.status_code == 400
    assert len(services.store.list_tracks()) == 1


@pytest.mark.parametrize("host", ["localhost:5000", "127.0.0.1:5000", "[::1]:5000", "LOCALHOST:5000", "localhost"])
def test_same_origin_requests_pass(client, services, host):
    commit_track(services)
    answer = client.post("/delete_all_audio", headers={"Host": host, "Origin": f"http://{host}"})
    assert answer.status_code == 200 and answer.json["success"] is True
    assert services.store.list_tracks() == []


@pytest.mark.parametrize("origin,status", [(EVIL, 403), ("null", 403), ("http://localhost:5001", 403),
                                           ("http://localhost:5000", 200), (None, 200)])
def test_the_polling_handshake_checks_the_origin(client, origin, status):
    headers = {"Host": "localhost:5000", **({"Origin": origin} if origin else {})}
    answer = client.get(HANDSHAKE, headers=headers)
    assert answer.status_code == status
    if status == 200:
        assert answer.data.startswith(b"0{") and b'"sid"' in answer.data
    assert answer.headers.get("Access-Control-Allow-Origin") in (None, origin)
    assert answer.headers.get("Access-Control-Allow-Origin") != "*"


def test_cors_allowed_origins_is_never_a_wildcard(app):
    assert app.extensions["socketio"].server.eio.cors_allowed_origins == []
    for source in SOURCES:
        assert not re.search(r"cors_allowed_origins\s*=\s*['\"]\*", source.read_text()), source


@pytest.mark.parametrize("headers", [{"Origin": EVIL}, {"Origin": "null"}, {"Host": "evil.example:5000"}])
def test_the_connect_handler_checks_again_behind_the_middleware(app, headers):
    # The test client bypasses the WSGI stack, so only the connect handler stands in the way here.
    refused = app.extensions["socketio"].test_client(app, headers={"Host": "localhost", **headers})
    assert not refused.is_connected()
    accepted = app.extensions["socketio"].test_client(app, headers={"Host": "localhost",
                                                                   "Origin": "http://localhost"})
    assert accepted.is_connected()
    accepted.disconnect()


# ---- binding and login ---------------------------------------------------------------------------------------


def test_defaults_bind_loopback_without_debugger_reloader_or_login(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(webui, "serve", lambda app, host, port: seen.update(app=app, host=host, port=port))
    assert webui.main(["--data-dir", str(tmp_path), "--device", "cpu"]) == 0
    assert seen["host"] == "127.0.0.1"  # tests/test_webui.py: served without reloader or debugger
    assert seen["app"].debug is False and seen["app"].extensions["access_policy"].auth_required is False


def test_listen_binds_all_interfaces_warns_and_prints_a_login_token(monkeypatch, tmp_path, caplog):
    seen = {}
    monkeypatch.delenv("AUDIOCRAFT_WEBUI_AUTH_TOKEN", raising=False)
    monkeypatch.setattr(webui, "serve", lambda app, host, port: seen.update(app=app, host=host, port=port))
    with caplog.at_level(logging.WARNING):
        webui.main(["--listen", "--port", "5077", "--data-dir", str(tmp_path), "--device", "cpu"])
    policy = seen["app"].extensions["access_policy"]
    assert seen["host"] == "0.0.0.0" and policy.listening and policy.auth_required
    assert any("listening on 0.0.0.0:5077" in r.message and r.levelno == logging.WARNING for r in caplog.records)
    assert f":5077/?token={policy.token}" in caplog.text and len(policy.token) >= 32


def test_listen_with_auth_uses_the_password_and_no_token(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(webui, "serve", lambda app, host, port: seen.update(app=app, host=host, port=port))
    webui.main(["--listen", "--auth", "ann:s3cret", "--data-dir", str(tmp_path), "--device", "cpu"])
    policy = seen["app"].extensions["access_policy"]
    assert policy.basic == ("ann", "s3cret") and policy.token is None


@pytest.mark.parametrize("config", [{"HOST": "0.0.0.0"}, {"HOST": "192.168.1.5"}, {"HOST": "::"},
                                    {"HOST": "127.0.0.1", "AUTH_BASIC": "no-colon"}])
def test_a_network_bind_without_credentials_is_refused(config):
    with pytest.raises(ValueError):
        AccessPolicy.from_config({"ALLOWED_HOSTS": [], **config})


def basic(user: str, password: str) -> str:
    """An HTTP Basic Authorization header value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def basic_app(make_app):
    """An app listening on the network with --auth ann:s3cret."""
    return make_app({"HOST": "0.0.0.0", "AUTH_BASIC": "ann:s3cret"})


@pytest.mark.parametrize("path,method", [("/", "GET"), ("/api/tracks", "GET"),
                                         ("/static/vendor/socket.io.esm.min.js", "GET"),
                                         ("/delete_all_audio", "POST"), (HANDSHAKE, "GET")])
def test_with_a_password_every_request_needs_it(basic_app, path, method):
    client = basic_app.test_client()
    host = {"Host": "192.168.1.5:5000"}
    refused = client.open(path, method=method, headers={**host, "Authorization": basic("ann", "wrong")})
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
    assert client.open(path, method=method, headers=host).status_code == 401
    accepted = client.open(path, method=method, headers={**host, "Authorization": basic("ann", "s3cret")})
    assert accepted.status_code == 200
    assert f"{SESSION_COOKIE}=" in accepted.headers["Set-Cookie"] and "HttpOnly" in accepted.headers["Set-Cookie"]
    assert "SameSite=Strict" in accepted.headers["Set-Cookie"]
    # The cookie alone now works (the browser sends it on the WebSocket handshake too).
    assert client.open(path, method=method, headers=host).status_code == 200


def test_password_guessing_is_slowed_per_address_and_a_login_clears_it(basic_app):
    now = [1000.0]
    basic_app.wsgi_app.throttle = LoginThrottle(clock=lambda: now[0])
    guesser = basic_app.test_client(use_cookies=False)  # every request stands alone, as in a guessing script
    host = {"Host": "192.168.1.5:5000"}

    def login(password: str, client=guesser) -> int:
        return client.get("/api/tracks", headers={**host, "Authorization": basic("ann", password)}).status_code

    for _ in range(3):  # a browser's first request carries no credentials: never counted
        assert guesser.get("/api/tracks", headers=host).status_code == 401
    assert [login(f"guess{index}") for index in range(LOGIN_FAILURES)] == [401] * LOGIN_FAILURES
    locked = guesser.get("/api/tracks", headers={**host, "Authorization": basic("ann", "s3cret")})
    assert locked.status_code == 429 and locked.json["ok"] is False and "too many failed logins" in locked.json["error"]
    assert int(locked.headers["Retry-After"]) == LOGIN_WINDOW
    assert guesser.get("/?token=guess", headers=host).status_code == 429
    assert guesser.get("/api/tracks", headers=host).status_code == 401, "no credentials: the login prompt, as before"
    # Another device is not locked out.
    other = basic_app.test_client(use_cookies=False)
    other.environ_base["REMOTE_ADDR"] = "192.168.1.7"
    assert login("s3cret", other) == 200

    now[0] += LOGIN_WINDOW
    assert login("s3cret") == 200
    assert [login(f"again{index}") for index in range(LOGIN_FAILURES - 1)] == [401] * (LOGIN_FAILURES - 1)
    assert login("s3cret") == 200, "the login cleared the earlier failures"


def test_the_throttle_forgets_old_failures_and_bounds_its_memory():
    now = [0.0]
    throttle = LoginThrottle(limit=3, window=60.0, clock=lambda: now[0])
    for second in (0, 30, 59):
        now[0] = second
        throttle.failed("a")
    assert throttle.retry_after("a") == 1 and throttle.retry_after("b") == 0
    now[0] = 60.0
    assert throttle.retry_after("a") == 0, "the failure at 0 s left the window"
    for index in range(2000):
        throttle.failed(f"10.0.{index // 256}.{index % 256}")
    assert len(throttle._failures) <= 1024


def test_a_listening_server_still_refuses_rebinding_names(basic_app):
    answer = basic_app.test_client().get("/api/tracks", headers={"Host": "evil.example:5000",
                                                                 "Authorization": basic("ann", "s3cret")})
    assert answer.status_code == 400


# ---- a real server --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tiny_hub, tmp_path_factory):
    """One loopback webui.py for the module's real-network tests."""
    process = ServerProcess(tiny_hub, tmp_path_factory.mktemp("net") / "data").start()
    yield process
    process.stop()


@pytest.mark.parametrize("path", ["/static/.env", "/static/js/../../webui.py", "/static/audio/..%2f..%2fwebui.py",
                                  "/static/stems/x/%2e%2e/%2e%2e/webui.py", "/static/CON", "/static/x/NUL",
                                  "/static/audio/%2e%2e/%2e%2e/webui.py", "/static/uploads/..%5c..%5cwebui.py"])
def test_raw_traversal_urls_on_a_real_server_answer_404_at_once(server, path):
    status, _, body = request(server.port, "GET", path)
    assert status in (400, 404) and b"import" not in body


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_real_socketio_same_origin_connects_foreign_origin_is_refused(server, transport):
    same = LiveClient(server.port, transport, origin=server.url)
    assert same.sio.transport() == transport and same.wait("queue_state")["queued"] == []
    same.close()
    for origin in (EVIL, "null", f"http://evil.example:{server.port}"):
        with pytest.raises(socketio.exceptions.ConnectionError):
            LiveClient(server.port, transport, origin=origin)
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("headers,status", [
    ({"origin": EVIL}, 403), ({"origin": "null"}, 403),
    ({"host": "evil.example:{port}", "origin": "http://evil.example:{port}"}, 400),
])
def test_real_websocket_handshakes_are_refused_before_the_upgrade(server, headers, status):
    options = {name: value.format(port=server.port) for name, value in headers.items()}
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
                                    timeout=5, **options)
    assert refused.value.status_code == status
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
                                     timeout=5, origin=server.url)
    assert ws.recv().startswith("0{")
    ws.close()


def test_a_message_over_one_megabyte_closes_the_connection_and_the_server_goes_on(server):
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
                                     timeout=10, origin=server.url)
    try:
        assert ws.recv().startswith("0{")
        ws.send("40")
        assert "40" in {ws.recv()[:2] for _ in range(4)}  # the connect ack, among the session and snapshot events
        ws.send('42["submit_sliders",{"prompt":"' + "x" * 1_100_000 + '"}]')
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
            while True:  # whatever was queued before the close may still arrive; then the socket is closed
                if not ws.recv():
                    raise websocket.WebSocketConnectionClosedException("closed")
    finally:
        ws.close()
        ws.shutdown()  # close() does nothing once the server has closed the connection: release the socket
    status, _, body = request(server.port, "GET", "/api/tracks")
    assert status == 200 and body.startswith(b"[")
    fine = LiveClient(server.port, origin=server.url)
    assert fine.wait("queue_state")
    fine.close()


@pytest.fixture(scope="module")
def listening_server(tiny_hub, tmp_path_factory):
    """A webui.py started with --listen (0.0.0.0 and a random login token)."""
    process = ServerProcess(tiny_hub, tmp_path_factory.mktemp("listen") / "data", args=("--listen",),
                            env={"AUDIOCRAFT_WEBUI_AUTH_TOKEN": ""}).start()
    yield process
    process.stop()


def test_listen_requires_the_printed_token_for_page_routes_and_socketio(listening_server):
    port = listening_server.port
    listening_server.wait_for_log("?token=")
    assert "WARNING" in listening_server.log() and "listening on 0.0.0.0" in listening_server.log()
    token = re.search(r"\?token=([\w-]+)", listening_server.log()).group(1)
    for method, path in (("GET", "/"), ("GET", "/api/tracks"), ("POST", "/delete_all_audio"),
                         ("GET", HANDSHAKE), ("GET", "/?token=wrong")):
        assert request(port, method, path)[0] == 401
    with pytest.raises(socketio.exceptions.ConnectionError):
        LiveClient(port, origin=listening_server.url)

    status, headers, _ = request(port, "GET", f"/?token={token}&lang=en")
    assert status == 303 and headers["location"] == "/?lang=en"
    cookie = headers["set-cookie"].split(";")[0]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in headers["set-cookie"]
    assert request(port, "GET", "/api/tracks", {"Cookie": cookie})[0] == 200
    assert request(port, "POST", "/delete_all_audio", {"Cookie": cookie, "Origin": listening_server.url})[0] == 200
    assert request(port, "GET", "/api/tracks", {"Authorization": f"Bearer {token}"})[0] == 200
    # Reached by one of the machine's own addresses, as another device on the network would.
    assert request(port, "GET", "/api/tracks", {"Cookie": cookie, "Host": f"127.0.0.2:{port}"})[0] == 200
    assert request(port, "GET", "/api/tracks", {"Cookie": cookie, "Host": f"evil.example:{port}"})[0] == 400

    for transport in ("websocket", "polling"):
        client = LiveClient(port, transport, origin=listening_server.url, cookie=cookie)
        assert client.wait("queue_state")
        client.close()
    bearer = LiveClient(port, "polling", headers={"Authorization": f"Bearer {token}"})
    assert bearer.wait("queue_state")
    bearer.close()
