"""Shared fixtures: an offline tiny Hugging Face hub, the app factory, Socket.IO clients, a live worker.

The environment is set at import time, before anything imports huggingface_hub, transformers or
audiocraft, because those libraries read HF_HOME and the offline flags once, when first imported.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

TINY_HUB = Path(tempfile.mkdtemp(prefix="acw-tinyhub-"))
os.environ["HF_HOME"] = str(TINY_HUB)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.pop("AUDIOCRAFT_CACHE_DIR", None)

import pytest  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from audiocraft_webui import compat  # noqa: E402

compat.install()


class BufferedClient(FlaskClient):
    """Flask's test client reading every response whole and closing it, so a file a route sends is released."""

    def open(self, *args, **kwargs):
        """Send the request (see FlaskClient.open), buffered unless the test asks otherwise."""
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def build_app(config: dict, engine=None):
    """An app for a test, whose HTTP test clients release what they read (see :class:`BufferedClient`)."""
    from audiocraft_webui import create_app

    app = create_app({"ISOLATE_WORKER": False, **config}, engine=engine)
    app.test_client_class = BufferedClient
    return app


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's tiny hub (about 50 MB) so test runs leave nothing in the temp folder."""
    shutil.rmtree(TINY_HUB, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_hub() -> Path:
    """Write tiny random-weight models in the real file formats into the session's HF_HOME."""
    from tools import tinyhub

    tinyhub.build(TINY_HUB)
    return TINY_HUB


@pytest.fixture(scope="module")
def models(tiny_hub):
    """``models(name)``: each tiny MusicGen loaded once per test module, on one torch thread (the tiny models
    run best on one)."""
    import torch
    from audiocraft.models import MusicGen

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cache: dict = {}

    def load(name: str):
        if name not in cache:
            with compat.checkpoint_globals():
                cache[name] = MusicGen.get_pretrained(f"facebook/musicgen-{name}", device="cpu")
        return cache[name]

    yield load
    cache.clear()
    torch.set_num_threads(threads)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data folder (static/audio, settings ...) for one test."""
    return tmp_path / "data"


@pytest.fixture
def make_app(data_dir: Path, tiny_hub: Path):
    """Factory for apps on the tiny offline hub; workers started by tests are stopped at teardown."""
    apps = []

    def factory(overrides: dict | None = None, engine=None):
        config = {"TESTING": True, "DATA_DIR": str(data_dir), "DEVICE": "cpu", "TORCH_THREADS": 1,
                  **(overrides or {})}
        app = build_app(config, engine=engine)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["audiocraft_webui"].worker.stop()


@pytest.fixture
def app(make_app):
    """An app on the real audiocraft engine with the tiny models (worker not started)."""
    return make_app()


@pytest.fixture
def client(app):
    """Flask's HTTP test client."""
    return app.test_client()


@pytest.fixture
def services(app):
    """The app's services (queue, worker, engine, store ...)."""
    return app.extensions["audiocraft_webui"]


class EventLog:
    """Collects what a Socket.IO test client receives, so tests can wait for an event and check order."""

    def __init__(self, client) -> None:
        self.client = client
        self.events: list[tuple[str, object]] = []

    def poll(self) -> None:
        """Move newly received packets into the log."""
        for packet in self.client.get_received():
            self.events.append((packet["name"], packet["args"][0] if packet["args"] else None))

    def wait(self, name: str, timeout: float = 60.0, where=lambda payload: True) -> object:
        """Wait until an event ``name`` whose payload satisfies ``where`` arrived; return that payload."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            for event, payload in self.events:
                if event == name and where(payload):
                    return payload
            time.sleep(0.01)
        raise AssertionError(f"no {name!r} event within {timeout} s; got {[e for e, _ in self.events]}")

    def named(self, name: str) -> list:
        """Payloads of every ``name`` event so far."""
        self.poll()
        return [payload for event, payload in self.events if event == name]


@pytest.fixture
def sio(app, client):
    """A connected Socket.IO test client wrapped in an EventLog."""
    socket_client = app.extensions["socketio"].test_client(app, flask_test_client=client)
    yield EventLog(socket_client)
    if socket_client.is_connected():
        socket_client.disconnect()


@pytest.fixture
def running_worker(services):
    """Start the GPU worker thread for the test; stopped at teardown."""
    services.worker.start()
    yield services.worker
    services.worker.stop()
