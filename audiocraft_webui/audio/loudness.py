"""Loudness: ITU-R BS.1770-4 integrated loudness, normalisation to a target, and append-mode level matching.

The meter is implemented with numpy/scipy (K-weighting, gated 400 ms blocks); it reads EBU Tech 3341
cases 1 and 2 as -23.0 and -33.0 LUFS.
"""
from __future__ import annotations

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


