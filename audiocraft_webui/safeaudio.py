"""Decode untrusted audio in a short-lived child process with memory, CPU, file-size and time limits.

A crafted file can crash a C decoder (a segfault or SIGFPE, as in pytorch/audio #54 and #2870 or
libsndfile CVE-2017-16942), which no ``try/except`` can catch, or make it allocate without bound. So the
server never parses an uploaded file itself: it runs this file as a script (``python -I``, numpy and
soundfile only), which sets its own resource limits first, checks the header against the caller's
limits, decodes block by block while counting the samples really decoded, replaces NaN/Inf and writes
float32 samples to a scratch file. A child that crashes, overruns a limit or times out means "corrupt
audio" to the caller, and the server keeps running.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: libsndfile container names accepted from uploads, mapped to the stored file's extension.
FORMATS = {"WAV": "wav", "WAVEX": "wav", "FLAC": "flac", "MP3": "mp3", "OGG": "ogg"}
#: Frames decoded per block in the child (bounded memory whatever the file's length).
BLOCK_FRAMES = 65536
#: A WAV or FLAC file decoding to fewer frames than its header declares, beyond this slack, is truncated.
TRUNCATION_SLACK_FRAMES = 1024
#: WAV ``data`` sizes that streaming writers use for "length unknown".
_UNKNOWN_WAV_SIZES = (0, 0xFFFFFFFF)
#: libsndfile's frame count for a stream of unknown length (SF_COUNT_MAX); then only the decode loop counts.
_UNKNOWN_FRAMES = 0x7FFFFFFFFFFFFFFF
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
    fd, name = tempfile.mkstemp(prefix=".tmp-decode-", suffix=".f32", dir=scratch)
    os.close(fd)
    raw = Path(name)
    try:
        probe = _run_child(path, raw, limits)
        audio = np.fromfile(raw, dtype=np.float32)
    finally:
        raw.unlink(missing_ok=True)
    if audio.size != probe.frames * probe.channels:
        raise UnsafeAudio("the decoder's output is incomplete")
    audio = np.ascontiguousarray(audio.reshape(-1, probe.channels).T)
    if probe.peak > 1.0:
        log.info("%s: peak %.3f above full scale, scaled down to 1.0", path.name, probe.peak)
        audio /= probe.peak
    return audio, probe.sample_rate, probe


def _child_command() -> list[str]:
    """The child's command line: this file as an isolated script (no cwd, user site or PYTHON* variables)."""
    return [sys.executable, "-I", str(Path(__file__).resolve())]


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


# ---- the child ---------------------------------------------------------------------------------------------


class _Refused(Exception):
    """Raised in the child for a file that breaks a limit or is malformed."""


def _limit_resources(memory_bytes: int, cpu_seconds: float, output_bytes: int) -> None:
    """Cap the child's memory, CPU time and file writes, and forbid core dumps (POSIX only)."""
    try:
        import resource
    except ImportError:  # Windows: the timeout in the parent still applies
        return
    for limit, value in ((resource.RLIMIT_AS, memory_bytes), (resource.RLIMIT_CPU, int(cpu_seconds) + 1),
                         (resource.RLIMIT_FSIZE, output_bytes), (resource.RLIMIT_CORE, 0)):
        hard = resource.getrlimit(limit)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (value, hard))


def _wav_declared_frames(path: str) -> int | None:
    """Frames the WAV ``data`` chunk header declares (libsndfile silently trims it to the file's length)."""
    with open(path, "rb") as handle:
        handle.seek(12)
        block_align = 0
        for _ in range(64):
            header = handle.read(8)
            if len(header) < 8:
                return None
            chunk, size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk == b"fmt " and size >= 16:
                block_align = struct.unpack("<H", handle.read(16)[12:14])[0]
                handle.seek(size - 16 + (size & 1), os.SEEK_CUR)
            elif chunk == b"data":
                return size // block_align if block_align and size not in _UNKNOWN_WAV_SIZES else None
            else:
                handle.seek(size + (size & 1), os.SEEK_CUR)
    return None


def _blocks(audio, limit: int) -> Iterator[np.ndarray]:
    """Decoded float32 ``[frames, channels]`` blocks of an open ``soundfile.SoundFile``.

    libsndfile 1.2's MP3 decoder returns wrong samples after the first of several partial reads (checked
    against ffmpeg), so an MP3 is decoded in one call of at most ``limit + 1`` frames (memory is bounded by
    the limit) and then walked in blocks; every other format is read block by block.
    """
    if audio.format == "MP3":
        whole = audio.read(limit + 1, dtype="float32", always_2d=True)
        for start in range(0, len(whole), BLOCK_FRAMES):
            yield whole[start:start + BLOCK_FRAMES]
        return
    while len(block := audio.read(BLOCK_FRAMES, dtype="float32", always_2d=True)):
        yield block


def _scan(request: dict) -> dict:
    """Check the header against the limits, then decode block by block, counting and cleaning samples."""
    import soundfile as sf

    out = open(request["output"], "wb") if request["output"] else None  # noqa: SIM115 - closed below
    try:
        with sf.SoundFile(request["path"]) as audio:
            fmt, rate, channels, declared = audio.format, audio.samplerate, audio.channels, audio.frames
            if fmt not in FORMATS or FORMATS[fmt] != FORMATS[request["container"]]:
                raise _Refused(f"unsupported container {fmt}")
            if not 1 <= channels <= request["max_channels"]:
                raise _Refused(f"{channels} channels; at most {request['max_channels']} are accepted")
            if not request["min_rate"] <= rate <= request["max_rate"]:
                raise _Refused(f"sample rate {rate} Hz is outside {request['min_rate']}-{request['max_rate']} Hz")
            if fmt.startswith("WAV"):
                declared = _wav_declared_frames(request["path"]) or declared
            if declared >= _UNKNOWN_FRAMES:
                declared = 0
            limit = min(int(request["max_seconds"] * rate), request["max_samples"] // channels)
            if declared > limit:
                raise _Refused(f"the file declares {declared / rate:.1f} s at {rate} Hz x {channels} channels; "
                               f"at most {limit / rate:.1f} s are accepted")
            frames, nonfinite, peak = 0, 0, 0.0
            for block in _blocks(audio, limit):
                frames += len(block)
                if frames > limit:
                    raise _Refused(f"the audio lasts longer than the {limit / rate:.1f} s accepted")
                bad = ~np.isfinite(block)
                if bad.any():
                    nonfinite += int(bad.sum())
                    block[bad] = 0.0
                peak = max(peak, float(np.abs(block).max()))
                if out is not None:
                    out.write(block.tobytes())
    finally:
        if out is not None:
            out.close()
    if frames == 0:
        raise _Refused("the file contains no audio")
    if fmt not in ("MP3", "OGG") and declared - frames > max(TRUNCATION_SLACK_FRAMES, frames // 100):
        raise _Refused(f"the file is truncated: its header declares {declared / rate:.1f} s, "
                       f"the data holds {frames / rate:.1f} s")
    return {"format": fmt, "sample_rate": rate, "channels": channels, "frames": frames,
            "nonfinite": nonfinite, "peak": peak}


def _child_main() -> int:
    """Entry point of the child: one JSON request on stdin, one JSON answer line on stdout."""
    request = json.loads(sys.stdin.read())
    sample_bytes = request["max_samples"] * 4
    output_bytes = sample_bytes + (1 << 20) if request["output"] else 1 << 20
    # Room for the interpreter plus one whole decode (an MP3 is decoded in one piece, see _blocks).
    _limit_resources(request["memory_bytes"] + sample_bytes, request["timeout"], output_bytes)
    try:
        answer = {"ok": True, **_scan(request)}
    except _Refused as exc:
        answer = {"ok": False, "error": str(exc)}
    except MemoryError:
        answer = {"ok": False, "error": "decoding needs more memory than allowed"}
    except Exception as exc:  # noqa: BLE001 - any decoder error means "corrupt", reported as such
        reason = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
        answer = {"ok": False, "error": f"the file could not be decoded ({reason[:200]})"}
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
