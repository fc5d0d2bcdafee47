"""Long-form generation (> 30 s): audiocraft's windowed extension with one monotonic progress bar to 100 %."""
from __future__ import annotations

import pytest
from audiocraft.modules.codebooks_patterns import DelayedPatternProvider

from audiocraft_webui.engines.audiocraft_musicgen import Window, WindowProgress, plan_windows, window_steps
from tests.generation_support import running_env

FRAME_RATE = 50
MAX_FRAMES = 30 * FRAME_RATE
STRIDE_FRAMES = 18 * FRAME_RATE
#: The codebook pattern of the mono MusicGen models (and, with 8 codebooks, of the stereo ones).
PATTERN = DelayedPatternProvider(n_q=4)


def audiocraft_callbacks(windows: list[Window]) -> list[tuple[int, int]]:
    """The ``(generated, to_generate)`` calls audiocraft 1.3.0 makes for these windows (issue #244).

    ``LMModel.generate`` calls back ``(1 + step, steps_in_window)`` once per decoding step and
    ``MusicGen._generate_tokens`` adds the window's frame offset (18 s x 50 per earlier window).
    """
    calls = []
    for index, window in enumerate(windows):
        steps = window_steps(PATTERN, window)
        calls += [(step + index * STRIDE_FRAMES, steps) for step in range(1, steps + 1)]
    return calls


@pytest.mark.parametrize(("seconds", "new_frames"), [(60, [1500, 900, 600]), (120, [1500, 900, 900, 900, 900, 900])])
def test_window_progress_is_monotonic_to_exactly_one_over_audiocrafts_callbacks(seconds, new_frames):
    windows = plan_windows(seconds * FRAME_RATE, MAX_FRAMES, STRIDE_FRAMES, 0)
    assert [window.frames - window.prompt for window in windows] == new_frames
    assert all(window.prompt == (0 if index == 0 else 600) for index, window in enumerate(windows))
    calls = audiocraft_callbacks(windows)
    assert max(generated / total for generated, total in calls) > len(windows) - 1, "the upstream ratio overflows"

    steps = [window_steps(PATTERN, window) for window in windows]
    assert steps[0] == 1503, "1500 frames + 3 steps of codebook delay"
    values: list[float] = []
    progress = WindowProgress(steps, values.append)
    for call in calls:
        progress(*call)
    assert len(values) == sum(steps)
    assert all(0.0 < v <= 1.0 for v in values) and values == sorted(values) and values[-1] == 1.0
    assert values[steps[0] - 1] == pytest.approx(steps[0] / sum(steps)), "each step is worth the same"


def test_a_continuation_prompt_sits_in_the_first_window():
    windows = plan_windows(1575, MAX_FRAMES, STRIDE_FRAMES, 1475)
    assert windows == [Window(1500, 1475), Window(675, 600)]
    assert sum(window.frames - window.prompt for window in windows) == 100


def test_a_40_second_track_has_the_exact_length_and_one_monotonic_bar_across_windows(tiny_hub, tmp_path,
                                                                                     monkeypatch):
    with running_env(tmp_path) as env:
        raw: list[float] = []
        real_generate = env.engine.generate

        def recording(spec, on_step, on_preview=None):
            return real_generate(spec, lambda fraction: (raw.append(fraction), on_step(fraction)), on_preview)

        monkeypatch.setattr(env.engine, "generate", recording)
        done = env.generate(keep_mono=True, values={"duration": 40})

        audio, rate = env.read(done)
        assert audio.shape == (1, 40 * 32000) and env.meta(done)["duration_seconds"] == 40.0
        assert len(raw) == 1503 + 503, "two windows: 30 s, then 10 s more after a 12 s prompt"
        assert all(0.0 < v <= 1.0 for v in raw) and raw == sorted(raw) and raw[-1] == 1.0
        events = env.progress(done["job_id"])
        values = [event["progress"] for event in events]
        assert all(0.0 <= v <= 1.0 for v in values) and values == sorted(values) and values[-1] == 1.0
        generating = [event["progress"] for event in events if event["phase"] == "generating"]
        assert len(generating) >= 10 and generating[-1] > 0.8, "one 'generating' phase spans both windows"
