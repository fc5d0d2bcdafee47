"""True loudness on the tiny offline models: the JSON states what the written file holds.

A mono model's track is duplicated to stereo before it is normalised (duplication alone adds 3.01 dB), the
rate conversion comes first too, and MP3 is measured as its decoder gives it back.
"""
from __future__ import annotations

import io

import av
import numpy as np
import pytest
import soundfile as sf

from audiocraft_webui import protocol
from audiocraft_webui.audio import loudness
from tests.generation_support import module_env

env = module_env("loudness")
#: How far the written file may sit from the target (16-bit or MP3 rounding) and above the ceiling.
LU_TOLERANCE = 0.2
TP_TOLERANCE = 0.1


def decoded(env, done: dict) -> tuple[np.ndarray, int]:
    """The written file as float32 ``[C, T]``, through libsndfile (MP3 included)."""
    samples, rate = sf.read(io.BytesIO(env.path(done).read_bytes()), dtype="float32", always_2d=True)
    return samples.T, rate


@pytest.mark.parametrize(("model", "loudness_choice", "fmt", "rate"), [
    ("small", "-14", "wav", "original"), ("small", "-16", "flac", "48000"), ("small", "-23", "mp3", "48000"),
    ("stereo-small", "-14", "wav", "original"), ("stereo-small", "-23", "mp3", "original"),
    ("small", "-16", "mp3", "16000"),
])
def test_the_written_file_measures_the_target_and_stays_under_the_true_peak_ceiling(
        env, model, loudness_choice, fmt, rate):
    done = env.generate(model=model, loudness=loudness_choice, format=fmt, sample_rate=rate,
                        values={"duration": 2, "seed": 7})
    meta = env.meta(done)
    block = meta["parameters"]["loudness"]
    audio, read_rate = decoded(env, done)
    assert audio.shape[0] == 2 and meta["request"]["loudness"] == loudness_choice
    measured_lufs = loudness.integrated_loudness(audio, read_rate)
    measured_tp = 20 * np.log10(loudness.true_peak(audio, read_rate))
    assert block["target_lufs"] == float(loudness_choice)
    assert block["lufs"] == pytest.approx(measured_lufs, abs=0.05), "the JSON states the file's own loudness"
    assert block["true_peak_dbtp"] == pytest.approx(measured_tp, abs=0.05)
    assert measured_tp <= protocol.TRUE_PEAK_CEILING_DBTP + TP_TOLERANCE
    if block["peak_limited"]:
        assert measured_lufs < float(loudness_choice)
    else:
        assert measured_lufs == pytest.approx(float(loudness_choice), abs=LU_TOLERANCE)


def test_mono_duplicated_to_stereo_is_normalised_after_the_duplication(env):
    stereo = env.generate(loudness="-23", values={"seed": 8})
    mono = env.generate(loudness="-23", keep_mono=True, values={"seed": 8})
    for done in (stereo, mono):
        audio, rate = decoded(env, done)
        assert loudness.integrated_loudness(audio, rate) == pytest.approx(-23.0, abs=LU_TOLERANCE)
    ratio = np.abs(decoded(env, mono)[0]).max() / np.abs(decoded(env, stereo)[0]).max()
    assert 20 * np.log10(ratio) == pytest.approx(10 * np.log10(2), abs=0.05), "the mono file is 3 dB hotter"


def test_loudness_off_keeps_the_model_level_and_still_measures_it(env):
    done = env.generate(loudness="off", values={"seed": 9})
    block = env.meta(done)["parameters"]["loudness"]
    audio, rate = decoded(env, done)
    assert block["target_lufs"] is None and block["gain_db"] == 0.0 and block["peak_limited"] is False
    assert block["lufs"] == block["lufs_before"] == pytest.approx(loudness.integrated_loudness(audio, rate), abs=0.05)


@pytest.mark.parametrize("bad", ["-15", -14.0, "loud", True, ["-14"], {}])
def test_a_loudness_outside_the_choices_is_refused_by_name(env, bad):
    ack = env.submit(loudness=bad)
    assert ack["ok"] is False and ack["error"]["field"] == "loudness" and ack["error"]["type"] == "invalid_request"


def test_the_record_times_the_generation_and_on_finish_audio_carries_it(env):
    done = env.generate(values={"duration": 2, "seed": 10})
    timing = done["meta"]["timing"]
    assert timing == env.meta(done)["timing"]
    assert set(timing) == {"generate_seconds", "total_seconds", "realtime_factor", "device"}
    assert 0 < timing["generate_seconds"] <= timing["total_seconds"] and timing["device"] == "cpu"
    assert timing["realtime_factor"] == pytest.approx(timing["generate_seconds"] / 2.0, rel=0.01)


def test_pyav_reads_the_same_length_as_libsndfile(env):
    done = env.generate(format="mp3", values={"duration": 2, "seed": 11})
    with av.open(str(env.path(done))) as container:
        frames = sum(frame.samples for frame in container.decode(audio=0))
    assert frames == 2 * 32000 == decoded(env, done)[0].shape[1]
