"""Pure audio DSP and file I/O for generated and uploaded audio: shapes, resampling, loudness, encoding.

Audio passes between modules as ``np.float32`` arrays shaped ``[C, T]`` (channels first) with samples in
[-1, 1], always together with its sample rate in Hz. Nothing here imports torch or Flask.

* Resampling uses soxr (HQ). Loudness is ITU-R BS.1770 integrated loudness, implemented with numpy/scipy.
* WAV and FLAC are written with soundfile (bundled libsndfile); MP3 with lameenc at an exact constant bitrate
  (320 kbps for MPEG-1 rates). Every format is written straight into the caller's file object, so no
  intermediate WAV is left behind (protocol.md D3).
* :func:`match_loudness` is V3's append-mode RMS match (protocol.md 8.2).
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

logger = logging.getLogger(__name__)

AudioSource = str | os.PathLike | BinaryIO

#: A ``[T, C]`` array (soundfile's layout) is recognised when it has at most this many channels.
MAX_CHANNELS = 8

# ---- loudness (ITU-R BS.1770-4) ----
_BLOCK_SECONDS = 0.4
_HOP_SECONDS = 0.1  # 75 % overlap between 400 ms gating blocks
_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = -10.0
_LOUDNESS_OFFSET = -0.691
# K-weighting design constants (libebur128's analog prototype), valid at any sample rate; at 48 kHz they give
# the coefficients tabulated in BS.1770.
_SHELF_F0 = 1681.974450955533
_SHELF_GAIN_DB = 3.999843853973347
_SHELF_Q = 0.7071752369554196
_SHELF_VB_EXPONENT = 0.4996667741545416
_HIGHPASS_F0 = 38.13547087602444
_HIGHPASS_Q = 0.5003270373238773

# ---- append-mode loudness match (protocol.md 8.2) ----
MATCH_RMS_FLOOR = 1e-9
MATCH_GAIN_MIN = 0.25
MATCH_GAIN_MAX = 4.0
MATCH_REVERT_PEAK = 1e-3

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

# MPEG audio Layer III frame header tables, indexed by the header's version bits (3 = MPEG-1, 2 = MPEG-2,
# 0 = MPEG-2.5; 1 is reserved).
_MPEG1 = 3
_LAYER_III = 1
_MPEG2_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MP3_KBPS = {
    _MPEG1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: _MPEG2_KBPS,
    0: _MPEG2_KBPS,
}
_MP3_RATES = {_MPEG1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_MP3_MAX_FRAME_BYTES = 1441  # 144 * 320000 / 32000 + 1 padding byte
_MP3_SYNC_SEARCH_BYTES = 64 * 1024


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


# ---------------------------------------------------------------------------------------------------------
# Shapes and channels
# ---------------------------------------------------------------------------------------------------------


def as_channels_first(audio: np.ndarray) -> np.ndarray:
    """Bring audio from any of the layouts the libraries hand out to the module's float32 ``[C, T]``.

    Args:
        audio: floating-point ``[T]`` (mono), ``[C, T]``, or ``[T, C]`` as soundfile returns it. A 2-D array
            is taken as ``[T, C]`` when its second axis has at most 8 entries and its first axis is longer.

    Returns:
        C-contiguous float32 ``[C, T]``.

    Raises:
        ValueError: for arrays that are not 1-D or 2-D, or not floating point.
    """
    array = np.asarray(audio)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"audio must be floating point in [-1, 1], got dtype {array.dtype}")
    if array.ndim == 1:
        array = array[np.newaxis, :]
    elif array.ndim == 2:
        if array.shape[1] <= MAX_CHANNELS and array.shape[0] > array.shape[1]:
            array = array.T
    else:
        raise ValueError(f"audio must be [T], [C, T] or [T, C], got shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


def to_output_channels(audio: np.ndarray, *, keep_mono: bool) -> np.ndarray:
    """Duplicate mono to two identical channels unless the user keeps mono (D25: duplication is optional).

    Args:
        audio: float32 ``[C, T]``; anything with more than one channel is returned unchanged.
        keep_mono: leave a mono signal as ``[1, T]``.

    Returns:
        float32 ``[C', T]`` with C' = 2 for duplicated mono, otherwise C.
    """
    if audio.shape[0] == 1 and not keep_mono:
        return np.repeat(audio, 2, axis=0)
    return audio


def sanitize(audio: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace NaN and ±Inf with 0 so that untrusted uploads cannot poison later arithmetic.

    Returns:
        ``(float32 audio of the same shape, number of samples replaced)``; the input is not modified.
    """
    array = np.asarray(audio, dtype=np.float32)
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        array = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
    return array, bad


# ---------------------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------------------


def rms(audio: np.ndarray) -> float:
    """Return ``sqrt(mean(x²))`` over all samples of all channels (0.0 for empty audio), as V3 measures it."""
    if audio.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def peak(audio: np.ndarray) -> float:
    """Return the largest absolute sample value over all channels (0.0 for empty audio)."""
    if audio.size == 0:
        return 0.0
    return float(np.max(np.abs(audio)))


def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """Design BS.1770's K-weighting (high shelf then high-pass) for any sample rate.

    Returns:
        Second-order sections, shape ``[2, 6]``, for :func:`scipy.signal.sosfilt`.
    """
    k = math.tan(math.pi * _SHELF_F0 / sample_rate)
    vh = 10.0 ** (_SHELF_GAIN_DB / 20.0)
    vb = vh**_SHELF_VB_EXPONENT
    a0 = 1.0 + k / _SHELF_Q + k * k
    shelf = [
        (vh + vb * k / _SHELF_Q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / _SHELF_Q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / _SHELF_Q + k * k) / a0,
    ]
    k = math.tan(math.pi * _HIGHPASS_F0 / sample_rate)
    a0 = 1.0 + k / _HIGHPASS_Q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _HIGHPASS_Q + k * k) / a0]
    return np.array([shelf, highpass])


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Measure ITU-R BS.1770-4 integrated loudness, the standard way to compare perceived levels.

    K-weighting, 400 ms blocks with 75 % overlap, an absolute gate at -70 LUFS and a relative gate 10 LU below
    the absolutely-gated level. Every channel has weight 1.0 (BS.1770's weight for L, R and C), so a
    full-scale 997 Hz sine in one channel reads -3.01 LUFS. Audio shorter than one block is measured as a
    single block.

    Args:
        audio: float32 ``[C, T]``.
        sample_rate: Hz.

    Returns:
        Loudness in LUFS, or ``-inf`` when nothing passes the absolute gate (silence, or quieter than -70).
    """
    if audio.size == 0:
        return -math.inf
    import scipy.signal  # imported here: it costs over a second and the server must start instantly

    weighted = scipy.signal.sosfilt(k_weighting_sos(sample_rate), audio.astype(np.float64), axis=-1)
    frames = weighted.shape[-1]
    block = round(_BLOCK_SECONDS * sample_rate)
    if frames < block:
        powers = np.mean(np.square(weighted), axis=-1, keepdims=True)
    else:
        energy = np.concatenate(
            [np.zeros((weighted.shape[0], 1)), np.cumsum(np.square(weighted), axis=-1)], axis=-1
        )
        starts = np.arange(0, frames - block + 1, round(_HOP_SECONDS * sample_rate))
        powers = (energy[:, starts + block] - energy[:, starts]) / block
    block_power = np.sum(powers, axis=0)
    with np.errstate(divide="ignore"):
        block_loudness = _LOUDNESS_OFFSET + 10.0 * np.log10(block_power)
    above_absolute = block_loudness > _ABSOLUTE_GATE_LUFS
    if not np.any(above_absolute):
        return -math.inf
    relative_gate = (
        _LOUDNESS_OFFSET + 10.0 * math.log10(np.mean(block_power[above_absolute])) + _RELATIVE_GATE_LU
    )
    gated = above_absolute & (block_loudness > relative_gate)
    return _LOUDNESS_OFFSET + 10.0 * math.log10(np.mean(block_power[gated]))


def waveform_peaks(audio: np.ndarray, buckets: int = 600) -> list[float]:
    """Summarise audio as per-bucket peaks so the UI can draw a waveform without decoding the file.

    Args:
        audio: float32 ``[C, T]``.
        buckets: how many values to return; fewer (one per sample) when T < buckets.

    Returns:
        ``min(buckets, T)`` values, each the max ``|x|`` over all channels in an equal slice of time, rounded
        to 3 dp.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    frames = audio.shape[-1]
    if frames == 0:
        return []
    envelope = np.max(np.abs(audio), axis=0)
    count = min(buckets, frames)
    starts = np.arange(count) * frames // count
    return [round(float(v), 3) for v in np.maximum.reduceat(envelope, starts)]


# ---------------------------------------------------------------------------------------------------------
# Processing
# ---------------------------------------------------------------------------------------------------------


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample with soxr (HQ) to an exactly predictable length, so durations in metadata are exact.

    Args:
        audio: float32 ``[C, T]`` at ``rate_in`` Hz.
        rate_in: input rate, Hz.
        rate_out: output rate, Hz.

    Returns:
        float32 ``[C, round(T * rate_out / rate_in)]`` at ``rate_out`` Hz (Python rounding, half to even);
        the input itself when the rates are equal. soxr can be one sample off, so the tail is trimmed or
        zero-padded.
    """
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} -> {rate_out}")
    if rate_in == rate_out:
        return audio
    channels, frames = audio.shape
    length = round(Fraction(frames * rate_out, rate_in))
    if frames == 0:
        return np.zeros((channels, 0), dtype=np.float32)
    converted = soxr.resample(np.ascontiguousarray(audio.T), rate_in, rate_out, quality="HQ").T
    out = np.zeros((channels, length), dtype=np.float32)
    kept = min(length, converted.shape[1])
    out[:, :kept] = converted[:, :kept]
    return out


def normalize_loudness(
    audio: np.ndarray, sample_rate: int, *, target_lufs: float = -14.0, peak_ceiling: float = 0.98
) -> tuple[np.ndarray, dict]:
    """Bring audio to a target integrated loudness without letting the peak exceed a ceiling.

    The gain moves the BS.1770 loudness to ``target_lufs``; if that would push the peak above
    ``peak_ceiling`` the gain is lowered until the peak sits on the ceiling (so the result can be quieter
    than the target). Silence, or audio whose loudness is below the -70 LUFS absolute gate, is returned
    unchanged: near-silence is never amplified.

    Args:
        audio: float32 ``[C, T]`` in [-1, 1].
        sample_rate: Hz.
        target_lufs: target integrated loudness, LUFS.
        peak_ceiling: largest allowed ``|x|`` after the gain, in (0, 1].

    Returns:
        ``(audio, info)``: float32 ``[C, T]`` and ``{"lufs_before", "lufs_after", "gain_db", "peak",
        "peak_limited"}``; LUFS and dB rounded to 2 dp (LUFS ``None`` when below the gate), the final peak to
        4 dp, and ``peak_limited`` true when the ceiling reduced the gain.
    """
    if not 0.0 < peak_ceiling <= 1.0:
        raise ValueError(f"peak_ceiling must be in (0, 1], got {peak_ceiling}")
    if not math.isfinite(target_lufs):
        raise ValueError(f"target_lufs must be finite, got {target_lufs}")
    before = integrated_loudness(audio, sample_rate)
    if not math.isfinite(before):
        return audio, {
            "lufs_before": None,
            "lufs_after": None,
            "gain_db": 0.0,
            "peak": round(peak(audio), 4),
            "peak_limited": False,
        }
    gain = 10.0 ** ((target_lufs - before) / 20.0)
    source_peak = peak(audio)
    limited = source_peak * gain > peak_ceiling
    if limited:
        gain = peak_ceiling / source_peak
    # The clip only absorbs float32 rounding; the gain already keeps the peak at or below the ceiling.
    out = np.clip(audio * np.float32(gain), -peak_ceiling, peak_ceiling).astype(np.float32)
    after = integrated_loudness(out, sample_rate)
    return out, {
        "lufs_before": round(before, 2),
        "lufs_after": round(after, 2) if math.isfinite(after) else None,
        "gain_db": round(20.0 * math.log10(gain), 2),
        "peak": round(peak(out), 4),
        "peak_limited": limited,
    }


def match_loudness(clip: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, dict]:
    """Scale the newly generated part to the appended clip's RMS level (protocol.md 8.2).

    Gain is computed only when both RMS values exceed 1e-9: ``rms_clip / rms_gen`` clamped to [0.25, 4.0],
    applied, then hard-clipped to [-1, 1]. If the gained part's peak falls below 1e-3 the un-gained audio is
    kept instead.

    Args:
        clip: float32 ``[C, T1]``, the user's clip at the model rate.
        generated: float32 ``[C, T2]``, the new audio at the same rate; channel counts may differ, since RMS
            is taken over all samples of all channels.

    Returns:
        ``(generated part, fields)``: the (possibly gained) float32 ``[C, T2]`` and the JSON fields
        ``continuation_loudness_rms_cont``, ``_rms_gen_before``, ``_rms_gen_after`` (6 dp),
        ``_gain_applied`` (the gain computed, 4 dp, or ``None`` with ``continuation_loudness_note`` when an
        RMS was ~0) and ``_reverted`` (with ``continuation_loudness_revert_reason`` when true).
    """
    rms_clip = rms(clip)
    rms_before = rms(generated)
    fields: dict = {
        "continuation_loudness_rms_cont": round(rms_clip, 6),
        "continuation_loudness_rms_gen_before": round(rms_before, 6),
    }
    if rms_clip <= MATCH_RMS_FLOOR or rms_before <= MATCH_RMS_FLOOR:
        silent = "clip" if rms_clip <= MATCH_RMS_FLOOR else "generated audio"
        fields.update(
            continuation_loudness_rms_gen_after=round(rms_before, 6),
            continuation_loudness_gain_applied=None,
            continuation_loudness_note=f"no gain: the {silent} is silent (RMS <= {MATCH_RMS_FLOOR:g})",
            continuation_loudness_reverted=False,
        )
        return generated, fields
    gain = min(max(rms_clip / rms_before, MATCH_GAIN_MIN), MATCH_GAIN_MAX)
    gained = np.clip(generated * np.float32(gain), -1.0, 1.0).astype(np.float32)
    gained_peak = peak(gained)
    reverted = gained_peak < MATCH_REVERT_PEAK
    result = generated if reverted else gained
    fields.update(
        continuation_loudness_rms_gen_after=round(rms(result), 6),
        continuation_loudness_gain_applied=round(gain, 4),
        continuation_loudness_reverted=reverted,
    )
    if reverted:
        fields["continuation_loudness_revert_reason"] = (
            f"peak after gain {gained_peak:.2e} is below {MATCH_REVERT_PEAK:g}; kept the un-gained audio"
        )
    return result, fields


# ---------------------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------------------


def mp3_cbr_kbps(sample_rate: int) -> int:
    """Return the constant bitrate :func:`encode` uses for MP3 at a rate, so callers can record it.

    Raises:
        EncodeError: if MP3 has no such sample rate.
    """
    if sample_rate not in MP3_CBR_KBPS:
        supported = ", ".join(str(r) for r in sorted(MP3_CBR_KBPS))
        raise EncodeError(f"MP3 cannot be written at {sample_rate} Hz (supported: {supported})")
    return MP3_CBR_KBPS[sample_rate]


def encode(audio: np.ndarray, sample_rate: int, fmt: str, dest: BinaryIO) -> None:
    """Write audio in the requested format straight into an open binary file, with no intermediate WAV.

    WAV and FLAC are 16-bit PCM (soundfile); MP3 is constant bitrate at :func:`mp3_cbr_kbps` (320 kbps at 32,
    44.1 and 48 kHz), LAME quality 2 (lameenc). Samples are clipped to [-1, 1] first. Everything that can be
    checked is checked before the first byte is written; a codec failure midway may leave partial data in
    ``dest``, which the caller discards.

    Args:
        audio: float32 ``[C, T]`` in [-1, 1].
        sample_rate: Hz.
        fmt: a key of :data:`ENCODINGS`.
        dest: binary file object, seekable for WAV and FLAC (the header is finalised at the end).

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
        sf.write(dest, samples.T, sample_rate, format=container, subtype=subtype)
    except (sf.SoundFileError, ValueError, TypeError) as exc:
        raise EncodeError(
            f"cannot write {fmt.upper()} at {sample_rate} Hz with {samples.shape[0]} channels: {_reason(exc)}"
        ) from exc


def _encode_mp3(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode ``[C, T]`` float samples in [-1, 1] to a complete CBR MP3 byte string with lameenc."""
    kbps = mp3_cbr_kbps(sample_rate)
    channels = samples.shape[0]
    if channels not in (1, 2):
        raise EncodeError(f"MP3 holds 1 or 2 channels, got {channels}")
    try:
        import lameenc
    except ImportError as exc:
        raise EncodeError(f"MP3 encoder unavailable: {exc}") from exc
    pcm = np.round(samples.T * _INT16_SCALE).astype("<i2")
    try:
        encoder = lameenc.Encoder()
        encoder.set_bit_rate(kbps)
        encoder.set_in_sample_rate(sample_rate)
        # Pinning the output rate stops LAME from resampling to a rate of its own choosing.
        encoder.set_out_sample_rate(sample_rate)
        encoder.set_channels(channels)
        encoder.set_quality(MP3_QUALITY)
        return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())
    except RuntimeError as exc:
        raise EncodeError(f"MP3 encoding failed at {sample_rate} Hz: {exc}") from exc


# ---------------------------------------------------------------------------------------------------------
# Reading and probing
# ---------------------------------------------------------------------------------------------------------


def _is_path(source: AudioSource) -> bool:
    """Tell a filesystem path from an open file object."""
    return isinstance(source, (str, os.PathLike))


def _display_name(source: AudioSource) -> str:
    """Name a source in user-facing messages without revealing server paths."""
    if _is_path(source):
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
    if _is_path(source) and not os.path.isfile(source):
        raise AudioProbeError(f"{name}: file not found")
    position = None if _is_path(source) else source.tell()
    try:
        with sf.SoundFile(source) as handle:
            fmt, rate, channels, frames = handle.format, handle.samplerate, handle.channels, handle.frames
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioProbeError(f"{name} is not a readable audio file ({_reason(exc)})") from exc
    finally:
        if position is not None:
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


def mp3_frame_bitrates(source: AudioSource, max_frames: int = 64) -> list[int]:
    """Walk the first MPEG Layer III frame headers to verify an MP3's bitrate (all equal means CBR).

    The headers are parsed directly (sync word, version, layer, bitrate and rate indices, padding), skipping
    a leading ID3v2 tag; the walk stops at the first byte run that is not a valid frame header.

    Args:
        source: a path or a binary file object (read from its current position, which is restored).
        max_frames: how many consecutive frames to inspect.

    Returns:
        Bitrate in kbps of each frame found, in order.

    Raises:
        AudioProbeError: no Layer III frame header was found.
    """
    data = _read_mp3_head(source, max_frames)
    offset = _find_mp3_frame(data)
    if offset is None:
        raise AudioProbeError(f"{_display_name(source)}: no MPEG Layer III frame found")
    bitrates: list[int] = []
    while len(bitrates) < max_frames:
        header = _parse_mp3_header(data, offset)
        if header is None:
            break
        kbps, length = header
        bitrates.append(kbps)
        offset += length
    return bitrates


def mp3_bitrate(source: AudioSource) -> int:
    """Return the bitrate in kbps from an MP3's first frame header (see :func:`mp3_frame_bitrates`)."""
    return mp3_frame_bitrates(source, max_frames=1)[0]


def _read_mp3_head(source: AudioSource, max_frames: int) -> bytes:
    """Read enough of the file to hold an ID3v2 tag, some junk and ``max_frames`` maximal frames."""
    if _is_path(source):
        with open(source, "rb") as handle:
            return _read_mp3_head(handle, max_frames)
    position = source.tell()
    try:
        head = source.read(10)
        tag_size = 0
        if len(head) == 10 and head[:3] == b"ID3":
            # ID3v2 size is a 28-bit "syncsafe" integer; bit 4 of the flags adds a 10-byte footer.
            tag_size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
            tag_size += 10 if head[5] & 0x10 else 0
        rest = source.read(tag_size + _MP3_SYNC_SEARCH_BYTES + max_frames * _MP3_MAX_FRAME_BYTES)
    finally:
        source.seek(position)
    data = head + rest
    if data[:3] == b"ID3":
        return data[10 + tag_size:]
    return data


def _find_mp3_frame(data: bytes) -> int | None:
    """Return the offset of the first valid Layer III header followed by another one (or by the end)."""
    limit = min(len(data) - 3, _MP3_SYNC_SEARCH_BYTES)
    for offset in range(max(limit, 0)):
        header = _parse_mp3_header(data, offset)
        if header is None:
            continue
        following = offset + header[1]
        if following + 4 > len(data) or _parse_mp3_header(data, following) is not None:
            return offset
    return None


def _parse_mp3_header(data: bytes, offset: int) -> tuple[int, int] | None:
    """Decode the 4-byte frame header at ``offset`` into ``(kbps, frame length in bytes)``, or None."""
    if offset + 4 > len(data) or data[offset] != 0xFF or data[offset + 1] & 0xE0 != 0xE0:
        return None
    version = (data[offset + 1] >> 3) & 0x3
    layer = (data[offset + 1] >> 1) & 0x3
    bitrate_index = data[offset + 2] >> 4
    rate_index = (data[offset + 2] >> 2) & 0x3
    padding = (data[offset + 2] >> 1) & 0x1
    if version not in _MP3_KBPS or layer != _LAYER_III or bitrate_index in (0, 15) or rate_index == 3:
        return None
    kbps = _MP3_KBPS[version][bitrate_index]
    sample_rate = _MP3_RATES[version][rate_index]
    # A Layer III frame holds 1152 samples (MPEG-1) or 576 (MPEG-2/2.5): bytes = samples / 8 * bitrate / rate.
    coefficient = 144 if version == _MPEG1 else 72
    return kbps, coefficient * kbps * 1000 // sample_rate + padding
