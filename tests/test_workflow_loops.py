"""Loop DSP: an exact length and a wrap no larger than the signal's own sample-to-sample step."""
from __future__ import annotations

import numpy as np
import pytest

from audiocraft_webui.audio import loops

RATE = 32000


def synthetic(seconds: float, seed: int = 0) -> np.ndarray:
    """A stereo tone mix whose periods do not divide the loop length, plus a little noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    tone = 0.4 * np.sin(2 * np.pi * 110.3 * t) + 0.2 * np.sin(2 * np.pi * 331.7 * t + 1.0)
    left = tone + 0.01 * rng.standard_normal(t.size)
    return np.stack([left, 0.8 * left]).astype(np.float32)


@pytest.mark.parametrize(("bars", "bpm", "beats"), [(1, 120, 4), (2, 97, 3), (4, 171, 4)])
def test_the_loop_has_the_exact_length_and_a_continuous_wrap(bars, bpm, beats):
    seconds = bars * beats * 60 / bpm
    audio = synthetic(seconds + loops.MARGIN_SECONDS)
    loop, info = loops.make_loop(audio, RATE, seconds)
    assert loop.shape == (2, round(seconds * RATE))
    assert info["length_samples"] == loop.shape[1]
    steps = np.abs(np.diff(loop, axis=1))
    wrap = np.abs(loop[:, 0] - loop[:, -1])
    assert np.all(wrap <= np.percentile(steps, 95, axis=1)), "the wrap is no larger than a typical step"
    assert info["cut_point_seconds"] == pytest.approx(info["cut_start_seconds"] + seconds, abs=2e-4)
    assert 0 <= info["cut_start_seconds"] <= loops.SEARCH_SECONDS


def test_a_naive_cut_would_click_where_the_loop_does_not():
    seconds = 60 / 113
    audio = synthetic(seconds + loops.MARGIN_SECONDS, seed=1)
    naive = audio[:, :round(seconds * RATE)]
    typical = np.percentile(np.abs(np.diff(naive, axis=1)), 95)
    loop, _ = loops.make_loop(audio, RATE, seconds)
    assert np.abs(loop[0, 0] - loop[0, -1]) <= typical
    assert np.abs(naive[0, 0] - naive[0, -1]) > typical, "the test signal does click when cut naively"


def test_too_short_audio_is_refused():
    with pytest.raises(ValueError, match="needs at least"):
        loops.make_loop(np.zeros((1, 100), np.float32), RATE, 1.0)
