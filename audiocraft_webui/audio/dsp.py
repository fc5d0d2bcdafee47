"""Sample arrays: the ``[C, T]`` layout, channels, NaN cleaning, level measures, resampling and waveform peaks.

Audio passes between modules as ``np.float32`` arrays shaped ``[C, T]`` (channels first) with samples in
[-1, 1], always together with its sample rate in Hz. Resampling uses soxr (HQ). Nothing here imports
torch or Flask.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import soxr

#: A ``[T, C]`` array (soundfile's layout) is recognised when it has at most this many channels.
MAX_CHANNELS = 8


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
    """Duplicate mono to two identical channels unless the user keeps mono (docs/DESIGN.md, "Output channels").

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


def match_channels(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give two ``[C, T]`` signals the same channel count before joining them.

    Mono is repeated to the other's count; otherwise both keep only the channels they share
    (the first ``min(C1, C2)``), as the original app did.
    """
    if first.shape[0] == second.shape[0]:
        return first, second
    if first.shape[0] == 1:
        return np.repeat(first, second.shape[0], axis=0), second
    if second.shape[0] == 1:
        return first, np.repeat(second, first.shape[0], axis=0)
    shared = min(first.shape[0], second.shape[0])
    return first[:shared], second[:shared]
