"""Multi-Band Diffusion decoding: replaces the EnCodec audio, cached, stereo-aware, keeps an appended clip, never
loses a track."""
from __future__ import annotations

import numpy as np
import pytest
from audiocraft.models import MultiBandDiffusion

from audiocraft_webui.audio import dsp
from tests.generation_support import module_env, spy_on, write_clip

env = module_env("mbd")


@pytest.fixture
def fresh_engine(env):
    """Start the test with no model and no MBD cached (the worker is idle between jobs)."""
    env.engine.unload()
    return env.engine


@pytest.fixture
def mbd_loads(monkeypatch, fresh_engine) -> list[str]:
    """The device of every MBD load (each still runs the real loader)."""
    return spy_on(monkeypatch, MultiBandDiffusion, "get_mbd_musicgen", lambda device=None: device)


@pytest.fixture
def decoded_tokens(monkeypatch) -> list[tuple]:
    """The shape of every token batch MBD decodes."""
    return spy_on(monkeypatch, MultiBandDiffusion, "tokens_to_wav", lambda mbd, tokens, *args, **kwargs: tuple(
        tokens.shape))


def test_mbd_replaces_the_encodec_audio_and_is_loaded_once(env, mbd_loads, decoded_tokens):
    plain = env.generate(values={"seed": 7})
    first = env.generate(mbd=True, values={"seed": 7})
    second = env.generate(mbd=True, values={"seed": 7})
    assert mbd_loads == ["cpu"], "the second MBD job reuses the cached model"
    assert decoded_tokens == [(1, 4, 50), (1, 4, 50)]

    encodec_audio, _ = env.read(plain)
    mbd_audio, _ = env.read(first)
    assert mbd_audio.shape == encodec_audio.shape and not np.allclose(mbd_audio, encodec_audio, atol=1e-3)
    np.testing.assert_array_equal(env.read(second)[0], mbd_audio, err_msg="a fixed seed reproduces MBD too")
    assert env.meta(first)["parameters"]["multi_band_diffusion"] == {
        "requested": True, "status": "applied", "impl": "audiocraft_mbd"}
    assert env.meta(plain)["parameters"]["multi_band_diffusion"] == {
        "requested": False, "status": "not_requested", "impl": None}
    phases = [p["phase"] for p in env.progress(first["job_id"])]
    assert phases.index("generating") < phases.index("mbd") < phases.index("writing")
    assert "mbd" not in {p["phase"] for p in env.progress(plain["job_id"])}


def test_a_failing_mbd_keeps_the_encodec_track_and_records_the_error(env, fresh_engine, monkeypatch):
    def broken(device=None):
        raise RuntimeError("diffusion checkpoint unreadable")

    monkeypatch.setattr(MultiBandDiffusion, "get_mbd_musicgen", staticmethod(broken))
    kept = env.generate(mbd=True, values={"seed": 8})
    plain = env.generate(values={"seed": 8})
    np.testing.assert_array_equal(env.read(kept)[0], env.read(plain)[0], err_msg="the EnCodec audio is kept")
    block = env.meta(kept)["parameters"]["multi_band_diffusion"]
    assert block["requested"] is True and block["status"] == "failed" and block["impl"] == "audiocraft_mbd"
    assert "diffusion checkpoint unreadable" in block["error"]


def test_stereo_models_are_decoded_as_left_and_right_codes(env, decoded_tokens):
    encodec = env.generate(model="stereo-small", values={"seed": 9})
    diffused = env.generate(model="stereo-small", mbd=True, values={"seed": 9})
    assert decoded_tokens == [(2, 4, 50)], "8 interleaved codebooks become a batch of 2 mono code sets"
    audio, _ = env.read(diffused)
    assert audio.shape[0] == 2 and not np.allclose(audio[0], audio[1], atol=1e-3)
    assert not np.allclose(audio, env.read(encodec)[0], atol=1e-3)
    assert env.meta(diffused)["parameters"]["multi_band_diffusion"]["status"] == "applied"


def test_with_continuation_mbd_decodes_the_new_part_before_the_clip_is_put_back(env, decoded_tokens, tmp_path):
    clip_path = write_clip(tmp_path / "riff.wav", seconds=1.0, rate=32000, amplitude=0.5)
    clip_id = env.upload("/upload_continuation", "continuation", clip_path)
    encodec = env.generate(appendContinuation=True, continuation=clip_id, values={"seed": 10})
    diffused = env.generate(appendContinuation=True, continuation=clip_id, mbd=True, values={"seed": 10})
    assert decoded_tokens == [(1, 4, 100)], "MBD sees the prompt frames as context"

    with_mbd, _ = env.read(diffused)
    without, _ = env.read(encodec)
    assert with_mbd.shape == without.shape == (2, 64000)
    np.testing.assert_array_equal(with_mbd[:, :32000], without[:, :32000], err_msg="the clip is kept")
    assert not np.allclose(with_mbd[:, 32000:], without[:, 32000:], atol=1e-3), "the new part is MBD's"
    params = env.meta(diffused)["parameters"]
    assert params["append_mode"] is True and params["multi_band_diffusion"]["status"] == "applied"
    assert dsp.rms(with_mbd[:, 32000:]) == pytest.approx(
        params["continuation_loudness_gain_applied"] * params["continuation_loudness_rms_gen_before"], rel=0.01), \
        "the MBD part is the one loudness-matched"
