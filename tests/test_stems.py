"""The Demucs splitter (real loader, tiny offline HTDemucs), progress, stem choice, atomic stem folders."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from audiocraft_webui.audio import codecs, dsp
from audiocraft_webui.engines.demucs import ChunkProgress, DemucsSplitter, Separation
from audiocraft_webui.stems.errors import StemError
from audiocraft_webui.stems.folders import StemFolders
from audiocraft_webui.stems.mixing import mix_files, select_stems
from audiocraft_webui.stems.service import postprocess_status
from tests.stems_kit import STEM_RATE, leftovers, make_stem_set, noise

SOURCES = ["drums", "bass", "other", "vocals"]


@pytest.fixture
def splitter(tiny_hub):
    """The production splitter on the tiny offline HTDemucs, on CPU, without random shifts."""
    return DemucsSplitter("htdemucs", device="cpu", shifts=0)


def test_demucs_loads_once_and_separates_with_its_own_monotonic_progress(splitter):
    seen: list[float] = []
    separation = splitter.separate(noise(1.5, 32000, channels=1), 32000, seen.append)
    assert separation.sample_rate == STEM_RATE
    assert set(separation.stems) == set(SOURCES)
    for audio in separation.stems.values():
        assert audio.dtype == np.float32 and audio.shape == (2, round(1.5 * STEM_RATE))
        assert np.all(np.isfinite(audio))
    # 1 s segments, 25 % overlap: one callback per chunk, the last one at 1.0.
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 2
    model = splitter._separator.model
    splitter.separate(noise(0.5), 32000, lambda fraction: None)
    assert splitter._separator.model is model, "the model is cached between jobs"


def test_unload_drops_the_model_and_the_next_job_loads_it_again(splitter):
    splitter.load()
    splitter.unload()
    assert splitter._separator is None
    assert set(splitter.separate(noise(0.5), 32000, lambda f: None).stems) == set(SOURCES)


def test_an_unknown_model_fails_with_a_clear_message(tiny_hub):
    with pytest.raises(StemError, match="could not load the Demucs model 'no_such_model'.*--demucs-model"):
        DemucsSplitter("no_such_model", device="cpu").load()


def test_progress_covers_every_bag_model_and_shift():
    model = SimpleNamespace(samplerate=10, models=[SimpleNamespace(segment=1), SimpleNamespace(segment=1)])
    seen: list[float] = []
    progress = ChunkProgress(model, shifts=2, overlap=0.5, split=True, on_progress=seen.append)
    for model_index in range(2):
        for shift in range(2):
            for offset in (0, 5, 10, 15):  # 20 samples, stride 5
                for state in ("start", "end"):
                    progress({"state": state, "audio_length": 20, "model_idx_in_bag": model_index,
                              "shift_idx": shift, "segment_offset": offset})
    assert len(seen) == 16 and seen == sorted(seen)
    assert seen[3] == pytest.approx(0.25) and seen[7] == pytest.approx(0.5) and seen[-1] == pytest.approx(1.0)


def test_all_keeps_every_source_and_a_single_target_adds_its_complement():
    sources = {name: noise(0.2, STEM_RATE, seed=i) * 0.2 for i, name in enumerate(SOURCES)}
    separation = Separation(sources, STEM_RATE)
    assert list(select_stems(separation, "all")) == ["vocals", "drums", "bass", "other"]
    two = select_stems(separation, "drums")
    assert list(two) == ["drums", "no_drums"]
    others = sources["bass"] + sources["other"] + sources["vocals"]
    np.testing.assert_allclose(two["no_drums"], others, atol=1e-6)
    with pytest.raises(StemError, match="no 'guitar' stem"):
        select_stems(separation, "guitar")


def test_clipping_stems_share_one_gain_so_they_still_add_up():
    levels = {"vocals": 1.5, "drums": 0.8, "bass": 0.4}
    loud = {name: np.full((2, 10), level, np.float32) for name, level in levels.items()}
    stems = select_stems(Separation(loud, STEM_RATE), "vocals")
    assert dsp.peak(stems["vocals"]) == pytest.approx(1.0)
    np.testing.assert_allclose(stems["vocals"] / stems["no_vocals"], 1.5 / 1.2, rtol=1e-6)


def test_a_failed_write_leaves_no_partial_folder(tmp_path, monkeypatch):
    folders = StemFolders(tmp_path / "stems", "/static/stems")
    real_encode, calls = codecs.encode, []

    def encode_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(codecs, "encode", encode_then_fail)
    with pytest.raises(OSError):
        make_stem_set(folders, "track")
    assert list(folders.root.iterdir()) == [] and folders.names("track") == []


def test_a_new_set_replaces_an_old_one_whole(tmp_path):
    folders = StemFolders(tmp_path / "stems", "/static/stems")
    make_stem_set(folders, "track")
    make_stem_set(folders, "track", names=("vocals", "no_vocals"))
    assert folders.names("track") == ["vocals", "no_vocals"]
    assert folders.public("track")[1] == {"name": "no_vocals", "url": "/static/stems/track/no_vocals.wav"}
    assert leftovers(tmp_path) == []


def test_mix_is_the_exact_sum_unless_it_would_clip(tmp_path):
    folders = StemFolders(tmp_path / "stems", "/static/stems")
    stems = make_stem_set(folders, "track")
    path = folders.file
    mix, rate = mix_files([(path("track", "vocals"), 0.5), (path("track", "bass"), 1.5)])
    expected = 0.5 * stems["vocals"] + 1.5 * stems["bass"]
    assert rate == STEM_RATE and dsp.peak(expected) < 1.0
    np.testing.assert_allclose(mix, expected, atol=1e-6)
    loud, _ = mix_files([(path("track", name), 4.0) for name in stems])
    assert dsp.peak(loud) == pytest.approx(1.0)


@pytest.mark.parametrize("states,overall", [
    (["queued"], "queued"), (["running"], "running"), (["done"], "done"), (["failed", "done"], "failed"),
    (["cancelled"], "cancelled"), ([], "done"),
])
def test_postprocess_status_reports_a_failure_as_failed(states, overall):
    assert postprocess_status([{"type": "stem_split", "status": state} for state in states]) == overall
