"""Output formats, sample rates and channels of generated tracks, on the tiny offline models."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf

from audiocraft_webui.audio import codecs, dsp
from audiocraft_webui.fileio import TMP_PREFIX
from tests.generation_support import module_env
from tests.support import mp3frames

env = module_env("formats")


@pytest.fixture(autouse=True)
def no_external_programs(monkeypatch) -> None:
    """Fail any attempt to start a program (such as ffmpeg): every format is encoded in-process."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"an external program was started: {args[:1]}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


def files_of(env, done: dict) -> list[str]:
    """Names in the audio folder that belong to a track, plus any temp file left there."""
    folder = env.services.store.audio_dir
    return sorted(p.name for p in folder.iterdir() if p.stem == done["name"] or p.name.startswith(TMP_PREFIX))


@pytest.mark.parametrize(("fmt", "requested", "rate", "container"), [
    ("wav", "original", 32000, "WAV"), ("wav", "48000", 48000, "WAV"),
    ("flac", "32000", 32000, "FLAC"), ("flac", "16000", 16000, "FLAC"),
])
def test_lossless_formats_are_written_directly_with_the_exact_length_at_the_requested_rate(
        env, fmt, requested, rate, container):
    done = env.generate(format=fmt, sample_rate=requested, values={"duration": 2, "seed": 101})
    assert files_of(env, done) == sorted([f"{done['name']}.{fmt}", f"{done['name']}.json"])
    info = sf.info(env.path(done))
    assert info.format == container and info.samplerate == rate and info.frames == 2 * rate
    params = env.meta(done)["parameters"]
    assert params["format"] == params["format_requested"] == fmt and "format_note" not in params
    assert params["sample_rate"] == info.samplerate
    assert params["sample_rate_requested"] == (requested if requested == "original" else int(requested))
    assert env.meta(done)["duration_seconds"] == 2.0


@pytest.mark.parametrize(("requested", "rate", "kbps"), [("original", 32000, 320), ("48000", 48000, 320),
                                                         ("16000", 16000, 160)])
def test_mp3_is_constant_bitrate_at_the_highest_rate_the_mpeg_version_allows(env, requested, rate, kbps):
    done = env.generate(format="mp3", sample_rate=requested, values={"duration": 2, "seed": 102})
    path = env.path(done)
    assert files_of(env, done) == sorted([f"{done['name']}.mp3", f"{done['name']}.json"]), "no WAV left behind"
    frames = mp3frames.mp3_frame_bitrates(path)
    assert len(frames) > 20 and set(frames) == {kbps}
    info = sf.info(path)
    params = env.meta(done)["parameters"]
    assert info.format == "MP3" and info.samplerate == rate == params["sample_rate"]
    assert info.frames == 2 * rate, "the gapless header gives the exact length back"
    assert params["format"] == "mp3" and params["bitrate_kbps"] == kbps


def test_resampling_is_soxr_of_the_same_audio_and_keeps_the_peak_ceiling(env):
    original, rate = env.read(env.generate(values={"seed": 103}))
    resampled, new_rate = env.read(env.generate(sample_rate="48000", values={"seed": 103}))
    assert (rate, new_rate) == (32000, 48000)
    expected = dsp.resample(original, rate, new_rate)
    assert resampled.shape == expected.shape
    # Loudness is normalised at the output rate, so the files differ by a gain: a large one when, as with
    # random weights, much of the energy sits near 16 kHz, above the resampler's passband.
    gain = float(np.sum(resampled * expected) / np.sum(expected * expected))
    assert gain > 0.5 and np.max(np.abs(resampled - gain * expected)) < 2e-3
    assert np.abs(resampled).max() <= 0.98 + 1 / 32768, "no resampling overshoot past the peak ceiling"


def test_unwritable_format_falls_back_to_wav_and_the_json_says_why(env, monkeypatch):
    real_encode = codecs.encode

    def encode(audio, sample_rate, fmt, dest, **options):
        if fmt == "mp3":
            raise codecs.EncodeError("MP3 encoder unavailable: no PyAV")
        real_encode(audio, sample_rate, fmt, dest, **options)

    monkeypatch.setattr(codecs, "encode", encode)
    done = env.generate(format="mp3", values={"seed": 104})
    assert done["filename"].endswith(".wav")
    assert files_of(env, done) == sorted([f"{done['name']}.wav", f"{done['name']}.json"])
    params = env.meta(done)["parameters"]
    assert params["format"] == "wav" and params["format_requested"] == "mp3"
    assert params["format_note"] == "fallback_to_wav" and "no PyAV" in params["format_error"]
    assert "bitrate_kbps" not in params
    assert sf.info(env.path(done)).format == "WAV"


def test_mono_output_is_duplicated_to_two_identical_channels_by_default(env):
    done = env.generate(values={"seed": 105})
    audio, _ = env.read(done)
    assert audio.shape[0] == 2 and np.array_equal(audio[0], audio[1]) and np.abs(audio).max() > 0.01
    params = env.meta(done)["parameters"]
    assert (params["channels"], params["channels_original"], params["keep_mono"]) == (2, 1, False)


def test_keep_mono_writes_a_single_channel(env):
    done = env.generate(keep_mono=True, format="flac", values={"seed": 105})
    audio, rate = env.read(done)
    assert audio.shape == (1, rate)
    params = env.meta(done)["parameters"]
    assert (params["channels"], params["channels_original"], params["keep_mono"]) == (1, 1, True)
    assert env.meta(done)["request"]["keep_mono"] is True
