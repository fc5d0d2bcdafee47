"""Rerun regenerates a track from its stored request: same options, same seed when fixed, uploads included."""
from __future__ import annotations

import numpy as np

from tests.generation_support import module_env, write_clip

env = module_env("rerun")


def rerun_of(env, done: dict) -> dict:
    """Rerun a finished track and wait for the new one."""
    return env.finished(env.rerun(done["name"]))


def test_a_fixed_seed_track_reruns_to_identical_audio_with_the_same_options(env):
    first = env.generate(format="flac", sample_rate="48000", keep_mono=True, artist="Band",
                         values={"seed": 4242, "temperature": 1.1, "top_k": 120, "top_p": 0})
    ack = env.rerun(first["name"])
    assert ack["ok"] and ack["seed"] == 4242
    second = env.finished(ack)
    assert second["name"] != first["name"] and second["filename"].endswith(".flac")
    np.testing.assert_array_equal(env.read(second)[0], env.read(first)[0])
    assert env.read(second)[1] == 48000
    assert env.meta(second)["request"] == env.meta(first)["request"]
    assert env.meta(second)["parameters"]["top_k"] == 120 and env.meta(second)["parameters"]["artist"] == "Band"


def test_an_auto_seed_track_reruns_with_a_new_seed(env):
    first = env.generate(values={"seed": -1})
    ack = env.rerun(first["name"])
    second = env.finished(ack)
    assert ack["seed"] != first["seed"] and env.meta(second)["parameters"]["seed"] == ack["seed"]
    assert env.meta(second)["request"]["seed"] == -1
    assert env.sio.wait("update_seed", where=lambda p: p["job_id"] == ack["job_id"])["seed"] == ack["seed"]
    assert not np.array_equal(env.read(second)[0], env.read(first)[0])


def test_a_rerun_keeps_the_audio_prompt_and_mbd(env, tmp_path):
    clip_id = env.upload("/upload_melody", "melody", write_clip(tmp_path / "hum.ogg", seconds=1.0, rate=44100))
    first = env.generate(model="melody", audio_prompt=clip_id, mbd=True, values={"seed": 31})
    second = rerun_of(env, first)
    params = env.meta(second)["parameters"]
    assert params["audio_prompt"] == "hum.ogg" and params["multi_band_diffusion"]["status"] == "applied"
    np.testing.assert_array_equal(env.read(second)[0], env.read(first)[0])


def test_a_rerun_keeps_the_continuation(env, tmp_path):
    clip_path = write_clip(tmp_path / "riff.flac", seconds=1.0, rate=32000, amplitude=0.5)
    clip_id = env.upload("/upload_continuation", "continuation", clip_path)
    first = env.generate(appendContinuation=True, continuation=clip_id, values={"seed": 32})
    second = rerun_of(env, first)
    params = env.meta(second)["parameters"]
    assert params["append_mode"] is True and params["continuation_source"] == "riff.flac"
    np.testing.assert_array_equal(env.read(second)[0], env.read(first)[0])


def test_a_rerun_whose_upload_was_deleted_is_refused_with_a_clear_message(env, tmp_path):
    clip_id = env.upload("/upload_continuation", "continuation", write_clip(tmp_path / "gone.wav", seconds=1.0,
                                                                            rate=32000))
    done = env.generate(appendContinuation=True, continuation=clip_id)
    env.services.uploads.path(clip_id).unlink()
    queued = env.services.queue.snapshot()["queued"]
    ack = env.rerun(done["name"])
    assert ack["ok"] is False and ack["error"]["field"] == "continuation"
    assert ack["error"]["message"] == "the uploaded clip 'gone.wav' (continuation) is gone; upload it again"
    assert env.sio.wait("request_error", where=lambda p: p["error"] == ack["error"])["event"] == "rerun"
    assert env.services.queue.snapshot()["queued"] == queued
