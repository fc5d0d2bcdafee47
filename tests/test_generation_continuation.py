"""Append mode: the model continues an uploaded clip and the track is the original clip plus the new part."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from audiocraft.models import MusicGen

from audiocraft_webui.audio import dsp
from audiocraft_webui.engines import AudioClip
from audiocraft_webui.generation import continuation_prompt
from tests.generation_support import module_env, spy_on, write_clip

env = module_env("continuation")


@pytest.fixture
def prompts(monkeypatch) -> list[tuple]:
    """The prompt audio and rate of every ``generate_continuation`` call (the call still runs)."""
    return spy_on(monkeypatch, MusicGen, "generate_continuation",
                  lambda model, prompt, rate, *args, **kwargs: (prompt.detach().cpu().numpy(), rate))


def append(env, clip_id: str, **payload) -> dict:
    """Submit an append job for an uploaded clip (1 s new part) and return the ack."""
    return env.submit(appendContinuation=True, continuation=clip_id, **payload)


def raw_model_rms(env) -> float:
    """RMS of the small model's output before loudness normalisation (it varies with the random weights)."""
    done = env.generate(keep_mono=True, values={"seed": 3})
    gain_db = env.meta(done)["parameters"]["loudness"]["gain_db"]
    return dsp.rms(env.read(done)[0]) / 10 ** (gain_db / 20)


def test_the_track_is_the_untouched_clip_followed_by_the_loudness_matched_continuation(env, prompts, tmp_path):
    # The clip sits at the model's own level (write_clip's RMS is about amplitude / 3), so the gain stays
    # inside its 0.25-4 clamp whatever the session's random weights.
    clip_path = write_clip(tmp_path / "riff.wav", seconds=2.0, rate=32000, amplitude=3 * raw_model_rms(env))
    clip, _ = sf.read(clip_path, dtype="float32", always_2d=True)
    clip = clip.T
    ack = append(env, env.upload("/upload_continuation", "continuation", clip_path))
    done = env.finished(ack)

    audio, rate = env.read(done)
    assert rate == 32000 and audio.shape == (2, 64000 + 32000), "clip + 1 s of new audio, mono duplicated"
    for channel in audio:
        np.testing.assert_array_equal(channel[:64000], clip[0], err_msg="the clip's own samples come first")

    (prompt, prompt_rate), = prompts
    assert prompt_rate == 32000 and prompt.shape == (1, 1, 64000)
    np.testing.assert_array_equal(prompt[0], clip, err_msg="the whole (short) clip is the model's prompt")

    params = env.meta(done)["parameters"]
    assert params["append_mode"] is True and params["continuation_source"] == "riff.wav"
    assert params["continuation_original_seconds"] == 2.0 and params["continuation_prompt_seconds"] == 2.0
    assert params["duration"] == 1 and env.meta(done)["duration_seconds"] == 3.0
    gain = params["continuation_loudness_gain_applied"]
    assert 0.25 < gain < 4.0 and params["continuation_loudness_reverted"] is False
    assert params["continuation_loudness_rms_cont"] == pytest.approx(dsp.rms(clip), abs=1e-6)
    new_rms = dsp.rms(audio[:, 64000:])
    assert new_rms == pytest.approx(dsp.rms(clip), rel=0.01), "the new part is RMS-matched to the clip"
    assert params["continuation_loudness_rms_gen_before"] == pytest.approx(new_rms / gain, rel=0.01)

    event = env.sio.wait("continuation_applied", where=lambda p: p["job_id"] == ack["job_id"])
    assert event["continuation_source"] == "riff.wav" and event["continuation_original_seconds"] == 2.0
    assert "error" not in event


def test_a_stereo_clip_keeps_its_rate_and_the_prompt_is_its_tail_in_whole_half_seconds(env, prompts, tmp_path):
    clip_path = write_clip(tmp_path / "pad.wav", seconds=1.3, rate=44100, channels=2, amplitude=0.2)
    clip, _ = sf.read(clip_path, dtype="float32", always_2d=True)
    clip = clip.T
    done = env.finished(append(env, env.upload("/upload_continuation", "continuation", clip_path)))

    audio, rate = env.read(done)
    assert rate == 44100, "'original' keeps the clip's own rate, so its samples stay untouched"
    assert audio.shape == (2, clip.shape[1] + 44100)
    np.testing.assert_array_equal(audio[:, :clip.shape[1]], clip)
    np.testing.assert_array_equal(audio[0, clip.shape[1]:], audio[1, clip.shape[1]:], err_msg="mono model, doubled")
    (prompt, prompt_rate), = prompts
    np.testing.assert_array_equal(prompt[0], dsp.resample(clip, 44100, 32000)[:, -32000:])
    assert prompt_rate == 32000
    params = env.meta(done)["parameters"]
    assert params["continuation_original_seconds"] == 1.3 and params["continuation_prompt_seconds"] == 1.0
    assert params["channels_original"] == 2 and params["sample_rate"] == 44100


def test_the_prompt_is_at_most_the_last_29_5_seconds_of_the_clip():
    rng = np.random.default_rng(0)
    clip = AudioClip(rng.uniform(-0.5, 0.5, (2, 31 * 44100)).astype(np.float32), 44100)
    prompt = continuation_prompt(clip, 32000)
    assert prompt.sample_rate == 32000 and prompt.seconds == 29.5
    np.testing.assert_array_equal(prompt.samples, dsp.resample(clip.samples, 44100, 32000)[:, -944000:])
    with pytest.raises(ValueError, match="at least 0.5 s"):
        continuation_prompt(AudioClip(clip.samples[:, :20000], 44100), 32000)


def test_a_very_quiet_clip_clamps_the_gain_at_a_quarter(env, tmp_path):
    clip_path = write_clip(tmp_path / "whisper.flac", seconds=1.0, rate=32000, amplitude=0.002)
    done = env.finished(append(env, env.upload("/upload_continuation", "continuation", clip_path), keep_mono=True))
    audio, _ = env.read(done)
    params = env.meta(done)["parameters"]
    assert params["continuation_loudness_gain_applied"] == 0.25 and params["continuation_loudness_reverted"] is False
    assert dsp.rms(audio[:, 32000:]) == pytest.approx(0.25 * params["continuation_loudness_rms_gen_before"],
                                                              rel=0.01)


def test_a_clip_too_short_to_continue_fails_the_job_and_says_why(env, tmp_path):
    clip_path = write_clip(tmp_path / "blip.wav", seconds=0.3, rate=32000)
    before = sorted(env.services.store.audio_dir.iterdir())
    ack = append(env, env.upload("/upload_continuation", "continuation", clip_path))
    failed = env.finished(ack, state="failed")
    assert failed["error"]["type"] == "ContinuationError"
    assert "continuation failed" in failed["error"]["message"] and "at least 0.5 s" in failed["error"]["message"]
    event = env.sio.wait("continuation_applied", where=lambda p: p["job_id"] == ack["job_id"])
    assert "at least 0.5 s" in event["error"] and event["continuation_source"] == "blip.wav"
    assert sorted(env.services.store.audio_dir.iterdir()) == before, "no plain track pretending to be an append"


def test_a_failing_continuation_never_becomes_a_plain_generation(env, monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError("Prompt is longer than audio to generate")

    monkeypatch.setattr(MusicGen, "generate_continuation", broken)
    clip_path = write_clip(tmp_path / "riff.wav", seconds=1.0, rate=32000)
    ack = append(env, env.upload("/upload_continuation", "continuation", clip_path))
    failed = env.finished(ack, state="failed")
    assert failed["error"] == {"type": "ContinuationError", "message": "the continuation failed: Prompt is longer "
                                                                        "than audio to generate"}
    assert failed.get("filename") is None
