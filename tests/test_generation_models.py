"""Every offered model generates, stereo models write two real channels, custom models load, melody prompts work."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
from audiocraft.models import MusicGen

from audiocraft_webui.models import ModelCatalog
from tests.generation_support import module_env, running_env, spy_on, write_clip
from tools import tinyhub

BUILTIN = ModelCatalog().keys()

env = module_env("models")


@pytest.fixture
def chroma_calls(monkeypatch) -> list[tuple]:
    """The melody audio and rate of every ``generate_with_chroma`` call (the call still runs)."""
    return spy_on(monkeypatch, MusicGen, "generate_with_chroma",
                  lambda model, descriptions, melody, rate, *args, **kwargs: (melody.detach().cpu().numpy(), rate))


@pytest.mark.parametrize("key", BUILTIN)
def test_every_builtin_model_generates_with_its_own_channel_count(env, key):
    done = env.generate(model=key, keep_mono=True)
    audio, rate = env.read(done)
    meta = env.meta(done)
    stereo = key.startswith("stereo-")
    assert meta["model"] == key and meta["model_id"] == f"facebook/musicgen-{key}"
    assert audio.shape == ((2 if stereo else 1), rate) and np.abs(audio).max() > 0.01
    assert meta["parameters"]["channels_original"] == meta["parameters"]["channels"] == (2 if stereo else 1)
    if stereo:
        assert not np.allclose(audio[0], audio[1], atol=1e-3), "a stereo model writes two different channels"


@pytest.mark.parametrize(("model", "fmt", "rate", "channels", "reference"), [
    ("melody", "wav", 44100, 2, "id"),
    ("melody-large", "flac", 22050, 1, "path"),
    ("stereo-melody", "mp3", 48000, 2, "url"),
    ("stereo-melody-large", "ogg", 16000, 1, "id"),
])
def test_melody_models_are_conditioned_on_an_uploaded_clip_read_from_its_saved_file(
        env, chroma_calls, tmp_path, model, fmt, rate, channels, reference):
    clip_path = write_clip(tmp_path / f"hum.{fmt}", seconds=1.5, rate=rate, channels=channels)
    clip_id = env.upload("/upload_melody", "melody", clip_path)
    stored = env.services.uploads.path(clip_id)
    sent = {"id": clip_id, "path": f"static/uploads/{clip_id}",
            "url": f"http://localhost:5000/static/uploads/{clip_id}"}[reference]
    done = env.generate(model=model, audioPromptUrl=sent)

    (melody, melody_rate), = chroma_calls
    expected, _ = sf.read(stored, dtype="float32", always_2d=True)
    assert melody_rate == rate and melody.shape == (1, channels, expected.shape[0])
    np.testing.assert_allclose(melody[0], expected.T, atol=1e-6)
    meta = env.meta(done)
    assert meta["parameters"]["audio_prompt"] == f"hum.{fmt}" and meta["request"]["audio_prompt"] == clip_id


def test_the_audio_prompt_changes_what_the_melody_model_generates(env, tmp_path):
    clip_id = env.upload("/upload_melody", "melody", write_clip(tmp_path / "hum.wav", seconds=2.0, rate=32000))
    with_prompt, _ = env.read(env.generate(model="melody", audio_prompt=clip_id, values={"seed": 5}))
    without, _ = env.read(env.generate(model="melody", values={"seed": 5}))
    assert with_prompt.shape == without.shape and not np.allclose(with_prompt, without, atol=1e-3)


def test_an_audio_prompt_for_a_text_only_model_is_refused_with_a_clear_message(env, tmp_path):
    clip_id = env.upload("/upload_melody", "melody", write_clip(tmp_path / "hum.wav", seconds=1.0, rate=32000))
    queued_before = env.services.queue.snapshot()["queued"]
    ack = env.submit(model="stereo-large", audio_prompt=clip_id)
    assert ack["ok"] is False and ack["error"]["field"] == "audio_prompt"
    assert ack["error"]["message"] == "model 'stereo-large' cannot use an audio prompt; choose a melody model"
    assert env.sio.wait("request_error", where=lambda p: p["error"] == ack["error"])
    assert env.services.queue.snapshot()["queued"] == queued_before


def test_custom_models_load_from_a_local_folder_and_from_a_hub_id(tiny_hub, tmp_path):
    snapshots = tiny_hub / "hub" / "models--facebook--musicgen-small" / "snapshots" / tinyhub.REVISION
    folder = shutil.copytree(snapshots, tmp_path / "My Finetune")
    assert sorted(p.name for p in folder.iterdir()) == ["compression_state_dict.bin", "state_dict.bin"]
    # A hub id the app has never heard of: a copy of the stereo repo under another organisation.
    shutil.copytree(tiny_hub / "hub" / "models--facebook--musicgen-stereo-small",
                    tiny_hub / "hub" / "models--acme--musicgen-stereo-finetune", dirs_exist_ok=True)
    overrides = {"CUSTOM_MODELS": [str(folder), "acme/musicgen-stereo-finetune"]}
    with running_env(tmp_path / "data", overrides) as custom:
        offered = {model.key: model.public() for model in custom.services.catalog.models()}
        assert offered["custom-My-Finetune"] == {"key": "custom-My-Finetune", "size": "small", "melody": False,
                                                 "stereo": False, "custom": True}
        assert offered["custom-musicgen-stereo-finetune"]["stereo"] is True

        local = custom.generate(model="custom-My-Finetune")
        meta = custom.meta(local)
        assert meta["model"] == meta["model_id"] == "custom-My-Finetune", "the local path is never shown"
        assert local["filename"].startswith("static/audio/custom-My-Finetune_")
        hub = custom.generate(model="custom-musicgen-stereo-finetune", keep_mono=True)
        audio, _ = custom.read(hub)
        assert audio.shape[0] == 2 and not np.allclose(audio[0], audio[1], atol=1e-3)
