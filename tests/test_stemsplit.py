"""Stems of any length, window by window: the same stems as a whole-file split, in bounded pieces."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audiocraft_webui.engines.stemsplit import (
    OVERLAP_SECONDS,
    WINDOW_SECONDS,
    AudioSource,
    Separation,
    split_to_folder,
    windows,
)

RATE = 4000
SHARES = {"vocals": 0.4, "drums": 0.3, "bass": 0.2, "other": 0.1}
PCM16_STEP = 1 / 32768


class FakeDemucs:
    """Splits a mix into fixed shares of it (at ``upsample`` times the rate) and records each input's length."""

    def __init__(self, upsample: int = 1) -> None:
        self.upsample = upsample
        self.calls: list[int] = []

    def __call__(self, mix: np.ndarray, rate: int, on_progress) -> Separation:
        self.calls.append(mix.shape[1])
        on_progress(1.0)
        audio = np.repeat(mix, self.upsample, axis=1)
        return Separation({name: audio * np.float32(share) for name, share in SHARES.items()},
                          rate * self.upsample)


def write_mix(path, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    """A stereo noise mix of ``seconds`` as a WAV file; returns it as float32 ``[C, T]``."""
    rng = np.random.default_rng(7)
    mix = (rng.uniform(-amplitude, amplitude, size=(2, int(seconds * RATE)))).astype(np.float32)
    sf.write(path, mix.T, RATE, subtype="FLOAT")
    return mix


def read_stem(folder, name: str) -> np.ndarray:
    audio, _ = sf.read(folder / f"{name}.wav", dtype="float32", always_2d=True)
    return audio.T


def test_windows_tile_the_input_and_overlap_by_the_crossfade():
    total = int(150.5 * RATE)
    plan = windows(total, RATE)
    assert [w.start for w in plan] == [0, 60 * RATE, 120 * RATE]
    assert [w.keep_until for w in plan] == [60 * RATE, 120 * RATE, total]
    assert [w.stop for w in plan] == [62 * RATE, 122 * RATE, total]
    # A remainder shorter than a quarter window joins the window before it.
    short = windows(int(121 * RATE), RATE)
    assert [(w.start, w.keep_until) for w in short] == [(0, 60 * RATE), (60 * RATE, int(121 * RATE))]


@pytest.mark.parametrize("minutes", [5, 10, 20])
def test_any_length_is_separated_in_pieces_no_longer_than_one_window(tmp_path, minutes):
    mix = write_mix(tmp_path / "mix.wav", minutes * 60)
    demucs = FakeDemucs()
    progress: list[float] = []
    names, rate = split_to_folder(demucs, AudioSource(str(tmp_path / "mix.wav")), "all", tmp_path, progress.append)
    assert names == list(SHARES) and rate == RATE
    assert max(demucs.calls) <= int((WINDOW_SECONDS + OVERLAP_SECONDS) * RATE)
    assert len(demucs.calls) == minutes
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)
    for name, share in SHARES.items():
        stem = read_stem(tmp_path, name)
        assert stem.shape == mix.shape
        # Equal to splitting the whole file at once, to the 16-bit step: the crossfade blends equal audio.
        assert np.abs(stem - mix * share).max() <= PCM16_STEP
    assert not list(tmp_path.glob("*.f32.wav"))


def test_a_model_at_another_rate_gives_stems_of_the_exact_length(tmp_path):
    mix = write_mix(tmp_path / "mix.wav", 150.3)
    names, rate = split_to_folder(FakeDemucs(upsample=2), AudioSource(str(tmp_path / "mix.wav")), "vocals",
                                  tmp_path, lambda _: None)
    assert names == ["vocals", "no_vocals"] and rate == 2 * RATE
    vocals, rest = read_stem(tmp_path, "vocals"), read_stem(tmp_path, "no_vocals")
    assert vocals.shape == rest.shape == (2, 2 * mix.shape[1])
    assert np.abs(vocals - np.repeat(mix, 2, axis=1) * 0.4).max() <= PCM16_STEP
    assert np.abs(rest - np.repeat(mix, 2, axis=1) * 0.6).max() <= 2 * PCM16_STEP


def test_stems_that_would_clip_are_scaled_by_one_gain_so_they_still_add_up(tmp_path):
    mix = write_mix(tmp_path / "mix.wav", 70, amplitude=1.0) * np.float32(3.0)
    sf.write(tmp_path / "loud.wav", mix.T, RATE, subtype="FLOAT")
    split_to_folder(FakeDemucs(), AudioSource(str(tmp_path / "loud.wav")), "all", tmp_path, lambda _: None)
    stems = {name: read_stem(tmp_path, name) for name in SHARES}
    peak = float(np.abs(mix * np.float32(SHARES["vocals"])).max())
    assert peak > 1.0
    assert float(np.abs(stems["vocals"]).max()) == pytest.approx(1.0, abs=2 * PCM16_STEP)
    total = sum(stems.values())
    assert np.abs(total - mix / peak).max() <= 4 * PCM16_STEP
