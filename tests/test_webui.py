"""The entry point: flags, loopback by default, no reloader or debugger, runs without a terminal."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import webui
from audiocraft_webui import create_app
from tests.serverproc import LiveClient, ServerProcess, free_port, request

ROOT = Path(__file__).resolve().parent.parent


def test_help_lists_every_flag():
    result = subprocess.run([sys.executable, "webui.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    for flag in ("--host", "--port", "--device", "--unload-after-gen", "--data-dir", "--custom-model"):
        assert flag in result.stdout


def test_defaults_bind_loopback_on_port_5000():
    args = webui.parse_args([])
    assert (args.host, args.port, args.device, args.unload_after_gen) == ("127.0.0.1", 5000, "auto", False)


def test_main_never_enables_the_reloader_or_the_debugger(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(webui, "serve", lambda app, host, port: seen.update(app=app, host=host, port=port))
    monkeypatch.setattr(webui.heap, "tune_allocator", lambda: seen.update(tuned=True) or True)
    assert webui.main(["--port", "5123", "--data-dir", str(tmp_path), "--unload-after-gen", "--device", "cpu"]) == 0
    assert seen["tuned"], "the server sets its allocator thresholds (tests/test_heap.py) before it starts"
    assert (seen["host"], seen["port"], seen["app"].debug) == ("127.0.0.1", 5123, False)


def test_serve_runs_werkzeug_threaded_server_without_reloader_or_debugger(monkeypatch):
    """The app is served by werkzeug's plain threaded server (run_simple's reloader and debugger never exist)."""
    from audiocraft_webui.web import serving

    seen = {}

    class Server:
        def serve_forever(self) -> None:
            seen["served"] = True

    def make_server(host, port, app, **options):
        seen.update(host=host, port=port, app=app, **options)
        return Server()

    monkeypatch.setattr(serving, "make_server", make_server)
    serving.serve("the app", "127.0.0.1", 5124)
    assert seen == {"host": "127.0.0.1", "port": 5124, "app": "the app", "threaded": True, "served": True,
                    "request_handler": serving.SocketIORequestHandler, "passthrough_errors": False}


def test_the_factory_starts_nothing_and_imports_no_torch(tmp_path):
    code = ("import sys; from audiocraft_webui import create_app; "
            f"app = create_app({{'DATA_DIR': {str(tmp_path)!r}}}); "
            "print('torch' in sys.modules, app.extensions['audiocraft_webui'].worker.alive)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stderr
    assert create_app({"DATA_DIR": str(tmp_path), "TESTING": True}).config["TESTING"] is True


def test_server_runs_without_a_terminal(tmp_path, tiny_hub):
    port = free_port()
    env = {**os.environ, "HF_HOME": str(tiny_hub), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "webui.py", "--port", str(port), "--data-dir", str(tmp_path),
                                "--device", "cpu"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                    assert answer.status == 200 and b'id="boot"' in answer.read()
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start: {process.stdout.read().decode()}")
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


def test_closed_websockets_leave_no_error_in_the_log(tmp_path, tiny_hub):
    """Werkzeug must not read a finished websocket's last frames as a new HTTP request ("Bad request syntax")."""
    server = ServerProcess(tiny_hub, tmp_path / "data").start()
    try:
        for _ in range(3):
            client = LiveClient(server.port, origin=server.url)
            assert client.wait("queue_state")
            client.close()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and "Bad request" not in server.log():
            time.sleep(0.05)
        status, _, _ = request(server.port, "GET", "/api/tracks")
        assert status == 200
        assert "Bad request" not in server.log() and "code 400" not in server.log()
    finally:
        server.stop()


def test_a_start_and_a_generation_print_a_short_friendly_console(tmp_path, tiny_hub):
    """The console shows the app's own start block; no xformers warning, no werkzeug banner, no token."""
    server = ServerProcess(tiny_hub, tmp_path / "data").start()
    try:
        client = LiveClient(server.port, origin=server.url)
        ack = client.emit("submit_sliders", {"prompt": "console check", "model": "small", "auto_tune": False,
                                             "values": {"duration": 1}})
        assert client.wait("on_finish_audio", where=lambda p: p["job_id"] == ack["job_id"])["state"] == "done"
        client.close()
        request(server.port, "GET", "/?token=secret-value")
        server.wait_for_log("Generates on:       CPU")
        log = server.log()
    finally:
        server.stop()
    assert f"Open in a browser:  {server.url}" in log
    assert f"Tracks are saved in {tmp_path / 'data' / 'static' / 'audio'}" in log
    assert "xformers" not in log.lower()
    assert "development server" not in log and "Running on" not in log
    assert "secret-value" not in log
    assert "FutureWarning" not in log and "Loading weights" not in log


def test_the_access_log_masks_login_tokens():
    from audiocraft_webui.web.serverlog import mask_tokens

    line = '127.0.0.1 - - "GET /?token=abc123&lang=ru HTTP/1.1" 200 - "GET /x?a=1&token=zz HTTP/1.1"'
    assert mask_tokens(line) == '127.0.0.1 - - "GET /?token=***&lang=ru HTTP/1.1" 200 - "GET /x?a=1&token=*** HTTP/1.1"'
