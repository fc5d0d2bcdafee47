"""Shared pieces of the stem tests: an app (fake engine, real tiny Demucs), tracks, stem sets, audio.

Generation runs on the numpy FakeEngine (these tests only need a track to exist); every split runs the
real ``demucs.api.Separator`` on the tiny offline HTDemucs, with ``shifts=0`` so a 1 s clip takes ~0.3 s.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiocraft_webui.audio import codecs
from tests.fakes import FakeEngine

RATE = 32000
STEM_RATE = 44100
#: A hostile-name matrix for every route that takes a track or set name (the path-traversal cases of docs/SECURITY.md).
HOSTILE_NAMES = ["..", ".", "../../sentinel", "..%2f..%2fsentinel", "%2e%2e", "%252e%252e%252fsentinel",
                 "..\\..\\sentinel", "/etc/passwd", "C:\\Windows\\win.ini", "//server/share", "a%00.wav", "*",
                 "stems", ".tmp-x", " ", "sentinel"]


@pytest.fixture
def fake_engine() -> FakeEngine:
    """A fast numpy generation engine."""
    return FakeEngine()


@pytest.fixture
def app(make_app, fake_engine):
    """An app on the fake engine whose splits use the real tiny Demucs without random shifts."""
    return make_app({"DEMUCS_SHIFTS": 0}, engine=fake_engine)


@pytest.fixture
def sentinels(tmp_path: Path, data_dir: Path) -> list[tuple[Path, float]]:
    """Files outside ``static/`` (beside the data folder and in its root) that no route may touch."""
    planted = []
    for folder in (tmp_path, data_dir):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "sentinel"
        path.write_text("keep me")
        planted.append((path, path.stat().st_mtime))
    return planted


def assert_untouched(sentinels: list[tuple[Path, float]]) -> None:
    """Every sentinel still exists, unchanged."""
    for path, mtime in sentinels:
        assert path.read_text() == "keep me" and path.stat().st_mtime == mtime


def noise(seconds: float, rate: int = RATE, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Quiet noise plus a 220 Hz sine: float32 ``[channels, seconds * rate]``."""
    frames = int(seconds * rate)
    rng = np.random.default_rng(seed)
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(frames) / rate)
    return (tone + 0.05 * rng.standard_normal((channels, frames))).astype(np.float32)


def audio_bytes(audio: np.ndarray, rate: int, fmt: str) -> bytes:
    """Encode ``[C, T]`` audio as WAV, FLAC, OGG (Vorbis) or MP3 in memory."""
    buffer = io.BytesIO()
    if fmt == "ogg":
        sf.write(buffer, audio.T, rate, format="OGG", subtype="VORBIS")
    else:
        codecs.encode(audio, rate, fmt, buffer)
    return buffer.getvalue()


def make_track(services, base: str = "small_01012025_10_00", seconds: float = 1.0) -> str:
    """Commit a real WAV track with its JSON; returns its name."""
    data = audio_bytes(noise(seconds), RATE, "wav")
    track = services.store.commit(base, "wav", lambda handle: handle.write(data),
                                  {"prompt": "test", "parameters": {"duration": seconds}})
    return track.base


def make_stem_set(folders, key: str, names=("vocals", "drums", "bass", "other"), seconds: float = 0.5,
                  ) -> dict[str, np.ndarray]:
    """Write a stem set directly (no Demucs); returns the stems as stored, float32 ``[2, T]`` at 44.1 kHz."""
    stems = {name: 0.4 * noise(seconds, STEM_RATE, seed=index) for index, name in enumerate(names)}
    folders.commit(key, stems, STEM_RATE)
    return {name: read_wav(folders.file(key, name).read_bytes())[0] for name in names}


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Decode WAV bytes to float32 ``[C, T]``."""
    audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return audio.T, rate


def leftovers(root: Path) -> list[str]:
    """Temp and trash entries anywhere below ``root`` (there must be none after any request or job)."""
    return [str(path) for path in root.rglob("*") if path.name.startswith((".tmp-", ".trash-"))]
