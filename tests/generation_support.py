"""Helpers for the generation feature tests: one running app per test module on the tiny offline models.

Each ``test_generation_*`` module builds one :class:`GenerationEnv` (app, worker, connected Socket.IO
client) with :func:`running_env`, so the model stays loaded between its tests.

``ACW_TEST_DECODER=static`` (or ``audiocraft``, ``auto``) runs every one of them with that ``--decoder``;
unset, the app's default applies (``auto``: the static loop on the CPU).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import EventLog, build_app

#: soundfile (format, subtype) for the clip formats an upload accepts.
CLIP_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", None), "ogg": ("OGG", "VORBIS")}


class GenerationEnv:
    """A running app with a connected Socket.IO client, plus shortcuts for submitting and reading tracks."""

    def __init__(self, app) -> None:
        self.app = app
        self.services = app.extensions["audiocraft_webui"]
        self.http = app.test_client()
        self.sio = EventLog(app.extensions["socketio"].test_client(app, flask_test_client=self.http))

    @property
    def engine(self):
        """The app's engine (the real audiocraft one)."""
        return self.services.engine

    def submit(self, **payload) -> dict:
        """Send ``submit_sliders`` (1 s, small model, auto-tune off unless given) and return the ack."""
        values = {"duration": 1, "seed": 1234, **payload.pop("values", {})}
        message = {"prompt": "tiny test tune", "model": "small", "auto_tune": False, **payload, "values": values}
        return self.sio.client.emit("submit_sliders", message, callback=True)

    def finished(self, ack: dict, state: str = "done") -> dict:
        """Wait for the terminal event of an accepted job and check its state."""
        assert ack["ok"], ack
        done = self.sio.wait("on_finish_audio", where=lambda p: p["job_id"] == ack["job_id"])
        assert done["state"] == state, done
        return done

    def generate(self, **payload) -> dict:
        """Submit and wait for a successful track; returns the ``on_finish_audio`` payload."""
        return self.finished(self.submit(**payload))

    def rerun(self, name: str) -> dict:
        """Send ``rerun`` for a track and return the ack."""
        return self.sio.client.emit("rerun", {"name": name}, callback=True)

    def path(self, done: dict) -> Path:
        """The audio file of a finished job."""
        return self.services.store.root / done["filename"]

    def meta(self, done: dict) -> dict:
        """The track JSON as written on disk."""
        return json.loads((self.services.store.root / done["json_filename"]).read_text())

    def read(self, done: dict) -> tuple[np.ndarray, int]:
        """The written audio as float32 ``[C, T]`` and its real sample rate, read back with soundfile."""
        samples, rate = sf.read(self.path(done), dtype="float32", always_2d=True)
        return samples.T, rate

    def upload(self, route: str, field: str, clip: Path) -> str:
        """Upload a clip through an HTTP route and return its server id."""
        with clip.open("rb") as handle:
            answer = self.http.post(route, data={field: (handle, clip.name)})
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()["id"]

    def progress(self, job_id: str) -> list[dict]:
        """Every progress event of a job so far."""
        return [p for p in self.sio.named("progress") if p["job_id"] == job_id]


@contextmanager
def running_env(data_dir: Path, overrides: dict | None = None) -> Iterator[GenerationEnv]:
    """Start an app on the tiny hub with its worker running; stop it afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    decoder = {"DECODER": os.environ["ACW_TEST_DECODER"]} if os.environ.get("ACW_TEST_DECODER") else {}
    app = build_app({"TESTING": True, "DATA_DIR": str(data_dir), "DEVICE": "cpu", "TORCH_THREADS": 1, **decoder,
                      **(overrides or {})})
    env = GenerationEnv(app)
    env.services.worker.start()
    try:
        yield env
    finally:
        env.services.worker.stop()
        if env.sio.client.is_connected():
            env.sio.client.disconnect()
        torch.set_num_threads(threads)


def module_env(name: str) -> Callable[..., Iterator[GenerationEnv]]:
    """Build the module-scoped ``env`` fixture: one running app (in its own data folder) for a test module."""

    @pytest.fixture(scope="module")
    def env(tiny_hub, tmp_path_factory) -> Iterator[GenerationEnv]:
        """One running app for the module."""
        with running_env(tmp_path_factory.mktemp(name)) as running:
            yield running

    return env


def write_clip(path: Path, *, seconds: float, rate: int, channels: int = 1, amplitude: float = 0.3) -> Path:
    """Write a test clip (a chord with a slow tremolo, different per channel) in the format of its suffix.

    Returns:
        ``path``.
    """
    t = np.arange(int(round(seconds * rate))) / rate
    tones = [amplitude * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) *
             (0.6 * np.sin(2 * np.pi * (220 + 110 * ch) * t) + 0.4 * np.sin(2 * np.pi * 330 * t))
             for ch in range(channels)]
    container, subtype = CLIP_FORMATS[path.suffix.lstrip(".")]
    sf.write(path, np.stack(tones, axis=1).astype(np.float32), rate, format=container, subtype=subtype)
    return path



def spy_on(monkeypatch, owner: object, name: str, record: Callable[..., object]) -> list:
    """Wrap ``owner.name`` so that every call is first noted as ``record(*args, **kwargs)``, then runs as usual.

    Returns:
        The list the notes are appended to.
    """
    seen: list = []
    real = getattr(owner, name)

    def spy(*args, **kwargs):
        seen.append(record(*args, **kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return seen
