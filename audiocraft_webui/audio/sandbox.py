"""Decode untrusted audio in a short-lived child process with memory, CPU, file-size and time limits.

A crafted file can crash a C decoder (a segfault or SIGFPE, as in pytorch/audio #54 and #2870 or
libsndfile CVE-2017-16942), which no ``try/except`` can catch, or make it allocate without bound. So the
server never parses an uploaded file itself: it runs this file as a script (``python -I``, numpy and
soundfile only: :mod:`.sandbox_child`), which sets its own resource limits first, checks the header against the caller's
limits, decodes block by block while counting the samples really decoded, replaces NaN/Inf and writes
float32 samples to a scratch file. A child that crashes, overruns a limit or times out means "corrupt
audio" to the caller, and the server keeps running.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import sandbox_child
from .sandbox_child import FORMATS

log = logging.getLogger(__name__)

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class UnsafeAudio(ValueError):
    """The file is not audio the app can use; the message is fit to show to the user."""


@dataclass(frozen=True)
class Limits:
    """What a file may hold and what its decoding may cost.

    Attributes:
        max_seconds: longest accepted duration (from the header, then from the samples decoded).
        max_samples: most samples (frames x channels) decoded; bounds memory for any rate and channel count.
        max_channels: most channels.
        min_rate, max_rate: accepted sample rates in Hz.
        timeout: wall-clock seconds the child may run.
        memory_bytes: address-space limit of the child, on top of room for ``max_samples`` float32 samples.
    """

    max_seconds: float
    max_samples: int
    max_channels: int = 8
    min_rate: int = 8000
    max_rate: int = 192000
    timeout: float = 60.0
    memory_bytes: int = 1 << 30


@dataclass(frozen=True)
class Probe:
    """What the child found: the container, and the samples it really decoded.

    Attributes:
        format: libsndfile's container name (``WAV``, ``FLAC`` ...); ``extension`` is the one to store it under.
        frames: frames decoded (not the header's claim); ``duration`` is ``frames / sample_rate`` seconds.
        nonfinite: NaN/Inf samples replaced with 0.
        peak: largest absolute sample after that replacement.
    """

    format: str
    sample_rate: int
    channels: int
    frames: int
    nonfinite: int
    peak: float

    @property
    def extension(self) -> str:
        """File extension for this container."""
        return FORMATS[self.format]

    @property
    def duration(self) -> float:
        """Seconds of audio decoded."""
        return self.frames / self.sample_rate


def sniff(head: bytes) -> str | None:
    """Name the audio container from a file's first bytes (WAV, FLAC, OGG, MP3), or None for anything else.

    This runs before any decoder sees the file, so a PNG, ZIP, HTML or SVG renamed ``.mp3`` is refused by
    content, whatever its name or MIME type.
    """
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "MP3"
    return None


def inspect(path: Path, limits: Limits) -> Probe:
    """Validate a file by decoding all of it in the child, keeping no samples.

    Raises:
        UnsafeAudio: not audio, outside the limits, truncated, or the decoder crashed or timed out.
    """
    return _run_child(path, None, limits)


def decode(path: Path, limits: Limits, scratch: Path) -> tuple[np.ndarray, int, Probe]:
    """Decode a file in the child to float32 ``[C, T]`` at its own rate, NaN/Inf zeroed, peak at most 1.0.

    Args:
        path: the file to decode.
        limits: what the file may hold; checked again even if the file was inspected before.
        scratch: folder for the child's raw output (a ``.tmp-*`` file, always removed).
    Returns:
        ``(audio, sample_rate, probe)``.
    Raises:
        UnsafeAudio: as :func:`inspect`.
    """
    with decode_to_file(path, limits, scratch) as (raw, probe):
        audio = np.fromfile(raw, dtype=np.float32)
    audio = np.ascontiguousarray(audio.reshape(-1, probe.channels).T)
    if probe.peak > 1.0:
        log.info("%s: peak %.3f above full scale, scaled down to 1.0", path.name, probe.peak)
        audio /= probe.peak
    return audio, probe.sample_rate, probe


@contextlib.contextmanager
def decode_to_file(path: Path, limits: Limits, scratch: Path) -> Iterator[tuple[Path, Probe]]:
    """Decode a file in the child into a raw float32 ``[T, C]`` scratch file, for reading in pieces.

    The file exists inside the block only. NaN/Inf are zeroed; the peak is in ``probe.peak`` (not scaled).

    Raises:
        UnsafeAudio: as :func:`inspect`, or when the output is shorter than the child says.
    """
    fd, name = tempfile.mkstemp(prefix=".tmp-decode-", suffix=".f32", dir=scratch)
    os.close(fd)
    raw = Path(name)
    try:
        probe = _run_child(path, raw, limits)
        if raw.stat().st_size != 4 * probe.frames * probe.channels:
            raise UnsafeAudio("the decoder's output is incomplete")
        yield raw, probe
    finally:
        raw.unlink(missing_ok=True)


def _child_command() -> list[str]:
    """The child's command line: its script as an isolated interpreter (no cwd, user site or PYTHON* variables)."""
    return [sys.executable, "-I", str(Path(sandbox_child.__file__).resolve())]


def _run_child(path: Path, output: Path | None, limits: Limits) -> Probe:
    """Run the child on ``path``, translating every way it can fail into :class:`UnsafeAudio`."""
    with open(path, "rb") as handle:
        container = sniff(handle.read(12))
    if container is None:
        raise UnsafeAudio("unsupported or corrupt audio: the content is not WAV, FLAC, MP3 or Ogg audio")
    request = {"path": str(path), "output": str(output) if output else None, "container": container,
               **asdict(limits)}
    env = {**os.environ, **dict.fromkeys(_THREAD_VARS, "1")}
    try:
        done = subprocess.run(_child_command(), input=json.dumps(request), capture_output=True, text=True,
                              timeout=limits.timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise UnsafeAudio(f"unsupported or corrupt audio: decoding took longer than {limits.timeout:g} s") from None
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        log.warning("audio decoder crashed (%s) on %s", name, path.name)
        raise UnsafeAudio(f"unsupported or corrupt audio: the decoder crashed ({name})")
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        log.warning("audio decoder failed on %s (exit %s): %s", path.name, done.returncode, done.stderr[-2000:])
        raise UnsafeAudio("unsupported or corrupt audio: the file could not be decoded") from None
    if not answer.get("ok"):
        raise UnsafeAudio(f"unsupported or corrupt audio: {answer.get('error', 'unreadable')}")
    return Probe(answer["format"], answer["sample_rate"], answer["channels"], answer["frames"],
                 answer["nonfinite"], answer["peak"])
