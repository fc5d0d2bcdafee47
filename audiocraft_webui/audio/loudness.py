"""Loudness: ITU-R BS.1770-4 integrated loudness and true peak, normalisation to a target, append-mode matching.

The meters are implemented with numpy/scipy (K-weighting, gated 400 ms blocks; 4x polyphase oversampling for
the true peak); the loudness meter reads EBU Tech 3341 cases 1 and 2 as -23.0 and -33.0 LUFS.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .dsp import peak, rms

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
# True-peak interpolation filter: taps per phase, cut-off as a fraction of the original Nyquist, Kaiser beta.
_TRUE_PEAK_TAPS_PER_PHASE = 24
_TRUE_PEAK_CUTOFF = 0.9
_TRUE_PEAK_KAISER_BETA = 8.0

# ---- append-mode loudness match: the original app's RMS match of a continuation to its clip ----
MATCH_RMS_FLOOR = 1e-9
MATCH_GAIN_MIN = 0.25
MATCH_GAIN_MAX = 4.0
MATCH_REVERT_PEAK = 1e-3


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



@functools.lru_cache(maxsize=4)
def _oversampling_filter(factor: int) -> np.ndarray:
    """The interpolation low-pass of the true-peak meter: 96 taps (24 per phase), Kaiser window, float32."""
    import scipy.signal  # imported here: it costs over a second and the server must start instantly

    taps = scipy.signal.firwin(_TRUE_PEAK_TAPS_PER_PHASE * factor, _TRUE_PEAK_CUTOFF / factor,
                               window=("kaiser", _TRUE_PEAK_KAISER_BETA))
    return (taps * factor).astype(np.float32)


def true_peak(audio: np.ndarray, sample_rate: int) -> float:
    """Measure BS.1770-4 (Annex 2) true peak: the largest ``|x|`` of the signal oversampled 4x, linear.

    Inter-sample peaks are what a DAC or a lossy decoder can produce between samples; the sample peak misses
    them. Rates of 96 kHz and above are oversampled 2x, 192 kHz and above not at all, as in libebur128. The
    interpolation filter reads 0 dBTP sines up to 18 kHz at 48 kHz within 0.2 dB (EBU Tech 3341 allows
    -0.4 to +0.2 dB).

    Args:
        audio: float32 ``[C, T]``.
        sample_rate: Hz.

    Returns:
        The true peak as a linear amplitude (0.0 for empty audio); never below the sample peak.
    """
    if audio.size == 0:
        return 0.0
    import scipy.signal

    factor = 4 if sample_rate < 96000 else 2 if sample_rate < 192000 else 1
    if factor == 1:
        return peak(audio)
    oversampled = scipy.signal.upfirdn(_oversampling_filter(factor), audio.astype(np.float32), up=factor, axis=-1)
    return max(float(np.max(np.abs(oversampled))), peak(audio))


def to_db(amplitude: float) -> float | None:
    """A linear amplitude in dB (dBTP for a true peak); None for silence."""
    return round(20.0 * math.log10(amplitude), 2) if amplitude > 0 else None


def normalize_loudness(audio: np.ndarray, sample_rate: int, *, target_lufs: float | None = -14.0,
                       ceiling_dbtp: float = -1.0) -> tuple[np.ndarray, dict]:
    """Bring audio to a target integrated loudness without letting its true peak pass a ceiling; measure it.

    Run it on the audio as it will be written (final channels and rate), so the JSON states what the file
    holds: duplicated mono is 3 dB louder than the mono it came from. The gain moves the BS.1770 loudness to
    ``target_lufs``; when the true peak would pass ``ceiling_dbtp`` the gain is lowered until it sits on the
    ceiling (the track is then quieter than the target, and ``peak_limited`` says so). Silence, or audio below
    the -70 LUFS gate, is never amplified. ``target_lufs=None`` only measures.

    Args:
        audio: float32 ``[C, T]``.
        sample_rate: Hz.
        target_lufs: target integrated loudness, LUFS, or None to leave the level as it is.
        ceiling_dbtp: highest true peak the gain may produce, dBTP (at most 0).

    Returns:
        ``(audio, info)``: float32 ``[C, T]`` and ``{"target_lufs", "lufs_before", "lufs", "true_peak_dbtp",
        "gain_db", "peak_limited"}``; ``lufs`` and ``true_peak_dbtp`` describe the audio returned (LUFS None
        below the gate, dBTP None for silence), all rounded to 2 dp.
    """
    if not ceiling_dbtp <= 0.0:
        raise ValueError(f"ceiling_dbtp must be at most 0 dBTP, got {ceiling_dbtp}")
    if target_lufs is not None and not math.isfinite(target_lufs):
        raise ValueError(f"target_lufs must be finite, got {target_lufs}")
    before = integrated_loudness(audio, sample_rate)
    peak_before = true_peak(audio, sample_rate)
    gain, limited = 1.0, False
    if target_lufs is not None and math.isfinite(before):
        gain = 10.0 ** ((target_lufs - before) / 20.0)
        ceiling = 10.0 ** (ceiling_dbtp / 20.0)
        limited = peak_before * gain > ceiling
        if limited:
            gain = ceiling / peak_before
    out = audio if gain == 1.0 else (audio * np.float32(gain)).astype(np.float32)
    after = before + 20.0 * math.log10(gain) if math.isfinite(before) else before
    return out, {
        "target_lufs": target_lufs,
        "lufs_before": round(before, 2) if math.isfinite(before) else None,
        "lufs": round(after, 2) if math.isfinite(after) else None,
        "true_peak_dbtp": to_db(peak_before * gain),
        "gain_db": round(20.0 * math.log10(gain), 2),
        "peak_limited": limited,
    }


def measure(audio: np.ndarray, sample_rate: int) -> dict:
    """Integrated loudness and true peak of audio as decoded from a file: ``{"lufs", "true_peak_dbtp"}``."""
    lufs = integrated_loudness(audio, sample_rate)
    return {"lufs": round(lufs, 2) if math.isfinite(lufs) else None,
            "true_peak_dbtp": to_db(true_peak(audio, sample_rate))}


def match_loudness(clip: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, dict]:
    """Scale the newly generated part to the appended clip's RMS level (docs/DESIGN.md, "Append mode").

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


