"""Cut a seamless loop of an exact length out of a longer generation.

The generation runs a little past the loop's length. The best loop point is searched near the end: the offset
``o`` whose following audio ``x[o + L:]`` looks most like the loop's start ``x[o:]`` (normalised
cross-correlation of short windows). The loop is ``x[o : o + L]`` with its first ``crossfade`` samples blended
(equal power) from what naturally follows its end into its own start, so the wrap ``loop[-1] -> loop[0]`` is the
generation's own sample-to-sample step: no click, and exactly ``L`` samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Extra seconds generated past the loop so the search and the crossfade have audio to use.
MARGIN_SECONDS = 0.5
#: How far past the exact length the loop point may move, seconds.
SEARCH_SECONDS = 0.25
#: Length of the windows compared, seconds.
WINDOW_SECONDS = 0.05
#: Equal-power crossfade at the wrap, seconds.
CROSSFADE_SECONDS = 0.02
#: Candidate offsets are tried every this many samples (then refined sample by sample around the best).
COARSE_STEP = 16


@dataclass(frozen=True)
class LoopCut:
    """Where the loop was cut: its first sample ``start`` and end ``start + length`` in the generated audio."""

    start: int
    length: int
    crossfade: int
    score: float


def _scores(mono: np.ndarray, length: int, offsets: np.ndarray, window: int) -> np.ndarray:
    """Normalised correlation of ``mono[o : o + window]`` with ``mono[o + length : ...]`` for each offset."""
    index = offsets[:, None] + np.arange(window)[None, :]
    head, tail = mono[index], mono[index + length]
    energy = np.sqrt((head * head).sum(axis=1) * (tail * tail).sum(axis=1)) + 1e-12
    return (head * tail).sum(axis=1) / energy


def find_loop(audio: np.ndarray, length: int, rate: int) -> LoopCut:
    """The best loop of ``length`` samples in ``audio`` ``[C, T]`` (``T`` at least length + margin).

    Raises:
        ValueError: when the audio is too short to search and crossfade.
    """
    window = max(1, int(WINDOW_SECONDS * rate))
    crossfade = max(1, int(CROSSFADE_SECONDS * rate))
    room = audio.shape[-1] - length - max(window, crossfade)
    if room < 0:
        raise ValueError(f"a loop of {length} samples needs at least {length + max(window, crossfade)} samples, "
                         f"got {audio.shape[-1]}")
    mono = audio.mean(axis=0, dtype=np.float64)
    last = min(room, int(SEARCH_SECONDS * rate))
    coarse = np.arange(0, last + 1, COARSE_STEP)
    best = int(coarse[np.argmax(_scores(mono, length, coarse, window))])
    fine = np.arange(max(0, best - COARSE_STEP), min(last, best + COARSE_STEP) + 1)
    scores = _scores(mono, length, fine, window)
    pick = int(np.argmax(scores))
    return LoopCut(int(fine[pick]), length, crossfade, float(scores[pick]))


def cut_loop(audio: np.ndarray, cut: LoopCut) -> np.ndarray:
    """The loop ``[C, length]``: its start crossfaded (equal power) from the audio that follows its end."""
    start, length, fade = cut.start, cut.length, cut.crossfade
    loop = audio[:, start:start + length].astype(np.float32, copy=True)
    following = audio[:, start + length:start + length + fade]
    phase = np.linspace(0.0, np.pi / 2, fade, endpoint=False)
    loop[:, :fade] = np.cos(phase) * following + np.sin(phase) * loop[:, :fade]
    return loop


def make_loop(audio: np.ndarray, rate: int, seconds: float) -> tuple[np.ndarray, dict]:
    """Cut a loop of exactly ``round(seconds * rate)`` samples; returns it and the JSON ``loop`` fields."""
    length = int(round(seconds * rate))
    cut = find_loop(audio, length, rate)
    return cut_loop(audio, cut), {"crossfade_seconds": round(cut.crossfade / rate, 4),
                                  "cut_start_seconds": round(cut.start / rate, 4),
                                  "cut_point_seconds": round((cut.start + length) / rate, 4),
                                  "correlation": round(cut.score, 4), "length_samples": length}
