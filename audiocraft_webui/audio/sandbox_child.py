"""The sandboxed decoder child: run as a script by :mod:`.sandbox`, it never imports the app.

It reads one JSON request on stdin, caps its own memory, CPU time, output size and core dumps,
checks the header against the limits, decodes block by block while counting the samples really
decoded, replaces NaN/Inf, writes float32 samples to the requested scratch file and prints one JSON
answer line. Only numpy and soundfile are imported.
"""
from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Iterator

import numpy as np

#: libsndfile container names accepted from uploads, mapped to the stored file's extension.
FORMATS = {"WAV": "wav", "WAVEX": "wav", "FLAC": "flac", "MP3": "mp3", "OGG": "ogg"}
#: Frames decoded per block (bounded memory whatever the file's length).
BLOCK_FRAMES = 65536
#: A WAV or FLAC file decoding to fewer frames than its header declares, beyond this slack, is truncated.
TRUNCATION_SLACK_FRAMES = 1024
#: WAV ``data`` sizes that streaming writers use for "length unknown".
_UNKNOWN_WAV_SIZES = (0, 0xFFFFFFFF)
#: libsndfile's frame count for a stream of unknown length (SF_COUNT_MAX); then only the decode loop counts.
_UNKNOWN_FRAMES = 0x7FFFFFFFFFFFFFFF

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
