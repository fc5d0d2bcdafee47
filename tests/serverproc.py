"""A real ``webui.py`` process for the network and crash tests: start on a data folder, read its log, kill, restart.

Unlike the browser fixtures, a server here can be killed with SIGKILL and started again on the same
data folder, with extra environment variables (the test pause point) and flags such as ``--listen``.
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests
import socketio

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(port: int, method: str, path: str, headers: dict | None = None,
            body: bytes | None = None) -> tuple[int, dict, bytes]:
    """Send one raw HTTP request to 127.0.0.1 (no proxy, headers exactly as given); return status, headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host="host" in {k.lower() for k in (headers or {})},
                              skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


@dataclass
class ServerProcess:
    """One ``webui.py`` run; ``start`` may be called again after ``kill`` (same port, folder and flags)."""

    hub: Path
    data_dir: Path
    args: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    runs: int = 0
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL on loopback."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """The combined stdout and stderr of the current run."""
        return self.data_dir.parent / f"server-{self.port}-{self.runs}.log"

    def log(self) -> str:
        """Everything the current run printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def start(self, env: dict | None = None) -> ServerProcess:
        """Start the server (``env`` adds to this run's environment) and wait until it answers HTTP."""
        self.runs += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, "HF_HOME": str(self.hub), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                       "PYTHONUNBUFFERED": "1", **self.env, **(env or {})}
        environment.pop("AUDIOCRAFT_CACHE_DIR", None)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "webui.py", "--port", str(self.port), "--data-dir", str(self.data_dir),
             "--device", "cpu", "--threads", "1", *self.args],
            cwd=ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                request(self.port, "GET", "/api/tracks")
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"webui.py did not start:\n{self.log()}") from None
                time.sleep(0.1)

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        """Wait until the current run's log contains ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.process is None or self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the server log:\n{self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server (no cleanup of any kind runs) and wait for it to be gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._close_log()

    def stop(self) -> None:
        """Terminate the server politely (kill it if it does not exit)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        """Close the log file of the current run."""
        if self._log is not None:
            self._log.close()
            self._log = None


class LiveClient:
    """A python-socketio client on a real server that records every event, for waiting on one."""

    def __init__(self, port: int, transport: str = "websocket", origin: str | None = None, cookie: str | None = None,
                 headers: dict | None = None, host: str | None = None) -> None:
        """Connect with exactly this Origin (and Host, for WebSocket); raises socketio's ConnectionError.

        ``cookie`` (``name=value``) goes into the cookie jar, sent on every request as a browser does;
        ``headers`` go on the first request only.
        """
        session = requests.Session()
        session.trust_env = False  # never through a proxy from the environment
        if cookie:
            session.cookies.set(*cookie.split("=", 1), domain="127.0.0.1")
        options = {"origin": origin, "host": host} if transport == "websocket" else {}
        self.events: list[tuple[str, object]] = []
        self.sio = socketio.Client(reconnection=False, http_session=session, handle_sigint=False,
                                   websocket_extra_options={k: v for k, v in options.items() if v})
        self.sio.on("*", lambda event, data=None: self.events.append((event, data)))
        extra = {"Origin": origin} if origin and transport == "polling" else {}
        try:
            self.sio.connect(f"http://127.0.0.1:{port}", transports=[transport], headers={**extra, **(headers or {})},
                             wait_timeout=10)
        except BaseException:
            session.close()
            raise
        self._session = session

    def emit(self, event: str, payload: object) -> object:
        """Send an event and return its ack."""
        return self.sio.call(event, payload, timeout=30)

    def wait(self, name: str, where: Callable[[object], bool] = lambda payload: True, timeout: float = 60.0) -> object:
        """The first ``name`` event whose payload satisfies ``where``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event, payload in list(self.events):
                if event == name and where(payload):
                    return payload
            time.sleep(0.02)
        raise AssertionError(f"no {name!r} event within {timeout} s; got {[e for e, _ in self.events]}")

    def close(self) -> None:
        """Disconnect and release the HTTP session."""
        self.sio.disconnect()
        self._session.close()
