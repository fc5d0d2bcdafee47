"""A track's file in memory: encoded, measured as its decoder gives it back when lossy, described and tagged.

Everything happens before the store's atomic rename, so the committed bytes already hold their tags; a
format that cannot be written falls back to WAV (the track is never lost) and the record says why.
"""
from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import codecs, loudness, tags

log = logging.getLogger(__name__)

#: Builds the track's record from the encoded fields (``format``, ``bitrate_kbps``, ``format_note`` ...) and, for a
#: lossy file, the loudness measured on its decode (``{"lufs", "true_peak_dbtp"}``, else None).
Describe = Callable[[dict, "dict | None"], dict]


@dataclass(frozen=True)
class TrackFile:
    """The bytes to commit, the format really written and the record they carry."""

    data: bytes
    format: str
    record: dict


def encode_track(audio: np.ndarray, sample_rate: int, fmt: str, describe: Describe) -> TrackFile:
    """Encode ``[C, T]`` float32 audio in ``fmt`` (WAV when that fails), describe it and tag it, all in memory.

    A lossless file is described before it is encoded, so WAV's LIST/INFO can be written with the samples; an
    MP3 is described after, with its real bitrate (read back from the frame headers) and its loudness as decoded.
    """
    try:
        if fmt == "mp3":
            data = _encoded(audio, sample_rate, fmt)
            fields = {"format": fmt, "bitrate_kbps": codecs.mp3_bitrate(io.BytesIO(data))}
            decoded, rate = codecs.read_audio(io.BytesIO(data))
            record = describe(fields, loudness.measure(decoded, rate))
        else:
            record = describe({"format": fmt}, None)
            data = _encoded(audio, sample_rate, fmt, record)
    except codecs.EncodeError as exc:
        log.warning("cannot write %s (%s); writing WAV instead", fmt, exc)
        fmt = "wav"
        record = describe({"format": fmt, "format_note": "fallback_to_wav", "format_error": str(exc)[:300]}, None)
        data = _encoded(audio, sample_rate, fmt, record)
    return TrackFile(tags.write(data, fmt, record), fmt, record)


def _encoded(audio: np.ndarray, sample_rate: int, fmt: str, record: dict | None = None) -> bytes:
    """Encode into memory (a failed encoder never leaves a partial file); WAV carries LIST/INFO strings."""
    buffer = io.BytesIO()
    codecs.encode(audio, sample_rate, fmt, buffer, strings=tags.strings(record) if record and fmt == "wav" else None)
    return buffer.getvalue()
