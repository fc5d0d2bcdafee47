"""Encoding and reading audio files: WAV and FLAC through soundfile, MP3 through PyAV's libmp3lame, header probes.

Every format is written straight into the caller's file object, so no intermediate WAV is ever left
behind; MP3 is written at an exact constant bitrate (320 kbps for MPEG-1 rates) with LAME's gapless header
(encoder delay and padding), so every format decodes to exactly the samples written.
"""
from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import soundfile as sf

from .dsp import sanitize

logger = logging.getLogger(__name__)

AudioSource = str | os.PathLike | BinaryIO

# ---- MP3 ----
MP3_QUALITY = 2
#: Highest constant bitrate LAME writes at each sample rate: 320 kbps is the MPEG-1 maximum, 160 kbps the
#: MPEG-2 maximum, and LAME caps MPEG-2.5 at 64 kbps (it silently lowers anything higher).
MP3_CBR_KBPS: dict[int, int] = {
    32000: 320, 44100: 320, 48000: 320,
    16000: 160, 22050: 160, 24000: 160,
    8000: 64, 11025: 64, 12000: 64,
}
_INT16_SCALE = 32767


class EncodeError(Exception):
    """The requested format cannot be written (unsupported rate or channels, library missing, codec error)."""


class AudioProbeError(Exception):
    """A file is not usable audio; the message is fit to show to the user."""


class AudioTooLongError(AudioProbeError):
    """A file is longer than the caller allows; raised from the header, before decoding."""


def _reason(exc: Exception) -> str:
    """Return libsndfile's own reason text, without the object repr soundfile prefixes it with."""
    return getattr(exc, "error_string", None) or str(exc)


@dataclass(frozen=True)
class Encoding:
    """An output format: its name, file extension (with the dot) and MIME type."""

    name: str
    extension: str
    mime_type: str


#: The supported output formats, by name, in the order the UI offers them.
ENCODINGS: dict[str, Encoding] = {
    "wav": Encoding("wav", ".wav", "audio/wav"),
    "flac": Encoding("flac", ".flac", "audio/flac"),
    "mp3": Encoding("mp3", ".mp3", "audio/mpeg"),
}

_SOUNDFILE_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16")}


@dataclass(frozen=True)
class AudioInfo:
    """Header facts about an audio file.

    Attributes:
        format: lower-case container name as libsndfile reports it (``wav``, ``flac``, ``mp3``, ``ogg``…).
        sample_rate: Hz.
        channels: channel count.
        frames: samples per channel.
        duration: seconds.
    """

    format: str
    sample_rate: int
    channels: int
    frames: int
    duration: float



def mp3_cbr_kbps(sample_rate: int) -> int:
    """Return the constant bitrate :func:`encode` uses for MP3 at a rate, so callers can record it.

    Raises:
        EncodeError: if MP3 has no such sample rate.
    """
    if sample_rate not in MP3_CBR_KBPS:
        supported = ", ".join(str(r) for r in sorted(MP3_CBR_KBPS))
        raise EncodeError(f"MP3 cannot be written at {sample_rate} Hz (supported: {supported})")
    return MP3_CBR_KBPS[sample_rate]


def encode(audio: np.ndarray, sample_rate: int, fmt: str, dest: BinaryIO,
           strings: Mapping[str, str] | None = None) -> None:
    """Write audio in the requested format straight into an open binary file, with no intermediate WAV.

    WAV and FLAC are 16-bit PCM (soundfile); MP3 is constant bitrate at :func:`mp3_cbr_kbps` (320 kbps at 32,
    44.1 and 48 kHz), LAME quality 2 (PyAV's libmp3lame), gapless. Samples are clipped to [-1, 1] first.
    Everything that can be checked is checked before the first byte is written; a codec failure midway may
    leave partial data in ``dest``, which the caller discards.

    Args:
        audio: float32 ``[C, T]`` in [-1, 1].
        sample_rate: Hz.
        fmt: a key of :data:`ENCODINGS`.
        dest: binary file object, seekable for WAV and FLAC (the header is finalised at the end).
        strings: libsndfile's ``title`` / ``artist`` / ``comment`` for WAV (LIST/INFO) and FLAC; empty ones are
            left out. MP3 tags are written afterwards (:mod:`.tags`).

    Raises:
        ValueError: if the audio holds NaN or Inf (sanitise it first).
        EncodeError: if this format cannot be written (unknown format, unsupported rate or channel count,
            encoder library missing or failing); the caller can fall back to WAV.
    """
    if fmt not in ENCODINGS:
        raise EncodeError(f"unsupported format {fmt!r} (supported: {', '.join(ENCODINGS)})")
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio contains NaN or Inf samples; refusing to encode")
    samples = np.clip(audio, -1.0, 1.0)
    if fmt == "mp3":
        dest.write(_encode_mp3(samples, sample_rate))
        return
    container, subtype = _SOUNDFILE_FORMATS[fmt]
    try:
        with sf.SoundFile(dest, "w", sample_rate, samples.shape[0], subtype, format=container) as handle:
            for name, value in (strings or {}).items():
                if value:
                    setattr(handle, name, value)
            handle.write(samples.T)
    except (sf.SoundFileError, ValueError, TypeError) as exc:
        raise EncodeError(
            f"cannot write {fmt.upper()} at {sample_rate} Hz with {samples.shape[0]} channels: {_reason(exc)}"
        ) from exc


def _encode_mp3(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode ``[C, T]`` float samples in [-1, 1] to a complete CBR MP3 with a LAME/Xing header (PyAV, libmp3lame).

    The header's encoder delay and padding let decoders (libsndfile, FFmpeg) return exactly ``T`` samples;
    the muxer's own ID3 tag is left out (the app writes its tags itself, :mod:`.tags`).
    """
    kbps = mp3_cbr_kbps(sample_rate)
    channels = samples.shape[0]
    if channels not in (1, 2):
        raise EncodeError(f"MP3 holds 1 or 2 channels, got {channels}")
    try:
        import av
    except ImportError as exc:
        raise EncodeError(f"MP3 encoder unavailable: {exc}") from exc
    layout = "stereo" if channels == 2 else "mono"
    buffer = io.BytesIO()
    try:
        with av.open(buffer, "w", format="mp3", options={"id3v2_version": "0"}) as container:
            stream = container.add_stream("libmp3lame", rate=sample_rate, layout=layout,
                                          options={"compression_level": str(MP3_QUALITY)})
            stream.bit_rate = kbps * 1000
            frame = av.AudioFrame.from_ndarray(np.round(samples * _INT16_SCALE).astype(np.int16), format="s16p",
                                               layout=layout)
            frame.sample_rate = sample_rate
            container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    except (av.FFmpegError, ValueError) as exc:
        raise EncodeError(f"MP3 encoding failed at {sample_rate} Hz: {exc}") from exc
    return buffer.getvalue()


def _is_path(source: AudioSource) -> bool:
    """Tell a filesystem path from an open file object."""
    return isinstance(source, (str, os.PathLike))


def _display_name(source: AudioSource) -> str:
    """Name a source in user-facing messages without revealing server paths."""
    if isinstance(source, (str, os.PathLike)):
        return os.path.basename(os.fspath(source))
    return "the uploaded file"


def probe(source: AudioSource) -> AudioInfo:
    """Read an audio file's header (no decoding) to validate uploads and check durations cheaply.

    Args:
        source: a path, or a binary file object (its position is restored afterwards).

    Returns:
        The header facts.

    Raises:
        AudioProbeError: missing file, not a recognised audio format, truncated header, or no samples, zero
            sample rate or zero channels; the message can be shown to the user.
    """
    name = _display_name(source)
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise AudioProbeError(f"{name}: file not found")
        position = None
    else:
        position = source.tell()
    try:
        with sf.SoundFile(source) as handle:
            fmt, rate, channels, frames = handle.format, handle.samplerate, handle.channels, handle.frames
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioProbeError(f"{name} is not a readable audio file ({_reason(exc)})") from exc
    finally:
        if position is not None and not isinstance(source, (str, os.PathLike)):
            source.seek(position)
    if rate <= 0 or channels <= 0:
        raise AudioProbeError(f"{name} has an invalid header ({rate} Hz, {channels} channels)")
    if frames <= 0:
        raise AudioProbeError(f"{name} contains no audio")
    return AudioInfo(
        format=fmt.lower(), sample_rate=int(rate), channels=int(channels), frames=int(frames),
        duration=frames / rate,
    )


def read_audio(source: AudioSource, *, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio file for use as a melody prompt or appended clip, refusing over-long files up front.

    The length check uses the header (:func:`probe`), so an over-long file is never decoded. NaN/Inf samples
    are replaced with 0 and logged.

    Args:
        source: a path or a binary file object.
        max_seconds: longest accepted duration in seconds; ``None`` accepts any length.

    Returns:
        ``(audio, sample_rate)``: float32 ``[C, T]`` at the file's own rate in Hz.

    Raises:
        AudioTooLongError: the header says the file is longer than ``max_seconds``.
        AudioProbeError: the file is not usable audio or fails to decode.
    """
    info = probe(source)
    name = _display_name(source)
    if max_seconds is not None and info.duration > max_seconds:
        raise AudioTooLongError(f"{name} is {info.duration:.1f} s long; the limit is {max_seconds:g} s")
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        raise AudioProbeError(f"{name} could not be decoded ({_reason(exc)})") from exc
    audio, replaced = sanitize(np.ascontiguousarray(data.T))
    if replaced:
        logger.warning("%s: replaced %d non-finite samples with 0", name, replaced)
    return audio, int(rate)


def mp3_bitrate(source: BinaryIO) -> int:
    """Read the bitrate in kbps that an MP3's first frame header declares (mutagen parses the header).

    Raises:
        AudioProbeError: no MPEG audio frame was found.
    """
    from mutagen import MutagenError
    from mutagen.mp3 import MP3

    position = source.tell()
    try:
        return MP3(source).info.bitrate // 1000
    except MutagenError as exc:
        raise AudioProbeError(f"{_display_name(source)}: no MPEG audio frame found ({exc})") from exc
    finally:
        source.seek(position)
