"""Auto-tune integration (docs/DESIGN.md, "Auto-tune"; the user's values are kept apart from the tuned ones), the
track JSON, last_run.json and their documentation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiocraft_webui.audio import codecs
from tests.generation_support import module_env, spy_on, write_clip

ROOT = Path(__file__).resolve().parent.parent

env = module_env("json")


@pytest.fixture
def specs(env, monkeypatch) -> list:
    """The GenerationSpec of every generation (the generation still runs)."""
    return spy_on(monkeypatch, env.engine, "generate", lambda spec, on_step, on_preview=None: spec)


def last_run(env) -> dict:
    """settings/last_run.json as written."""
    return json.loads((env.services.store.settings_dir / "last_run.json").read_text())


def test_auto_tune_generates_with_the_tuned_values_and_stores_the_users_own(env, specs):
    users = {"top_p": 0.9, "temperature": 1.2, "cfg_coef": 4.0, "duration": 30, "seed": 77}
    done = env.generate(model="small", auto_tune=True, values=users)
    spec, = specs
    assert (spec.temperature, spec.cfg_coef, spec.duration) == (1.05, 3.5, 20), "small, high band (top_p 0.9)"
    audio, rate = env.read(done)
    assert audio.shape[1] == 20 * rate

    meta = env.meta(done)
    params = meta["parameters"]
    assert (params["temperature"], params["cfg_coef"], params["duration"], params["top_p"]) == (1.05, 3.5, 20, 0.9)
    assert params["auto_tune"] == {
        "applied": True, "band": "high", "model_bucket": "small", "source": "top_p", "diversity_metric": 0.9,
        "changes": {"temperature": {"old": 1.2, "new": 1.05}, "cfg_coef": {"old": 4.0, "new": 3.5},
                    "duration": {"old": 30, "new": 20, "cap_reason": "diversity_high"}},
        "user_locked": {"temperature": False, "cfg_coef": False, "duration": False}}
    for stored in (meta["request"], last_run(env)["request"]):
        assert (stored["temperature"], stored["cfg_coef"], stored["duration"], stored["auto_tune"]) == (1.2, 4.0, 30,
                                                                                                        True)

    ack = env.rerun(done["name"])
    assert ack["ok"] and ack["auto_tune"] == params["auto_tune"], "tuned values are not fed back as locked"
    assert env.sio.client.emit("cancel_job", {"job_id": ack["job_id"]}, callback=True)["ok"]
    env.finished(ack, state="cancelled")


def test_values_the_user_changed_are_never_tuned(env, specs):
    done = env.generate(model="large", auto_tune=True,
                        values={"top_p": 0.67, "temperature": 0.9, "cfg_coef": 4.0, "duration": 2})
    spec, = specs
    assert (spec.temperature, spec.cfg_coef, spec.duration) == (0.9, 3.6, 2)
    block = env.meta(done)["parameters"]["auto_tune"]
    assert block["user_locked"] == {"temperature": True, "cfg_coef": False, "duration": True}
    assert block["changes"] == {"cfg_coef": {"old": 4.0, "new": 3.6}} and block["band"] == "mid"


def test_auto_tune_off_generates_with_the_users_values_and_says_so(env, specs):
    done = env.generate(model="large", auto_tune=False, values={"top_p": 0.9, "temperature": 1.2, "cfg_coef": 4.0})
    spec, = specs
    assert (spec.temperature, spec.cfg_coef) == (1.2, 4.0)
    assert env.meta(done)["parameters"]["auto_tune"] == {"applied": False, "disabled": True}
    assert last_run(env)["request"]["auto_tune"] is False


def keys_of(value: object, parent: str = "") -> set[tuple[str, str]]:
    """Every dict key at any depth, as ``(parent key, key)``."""
    if isinstance(value, dict):
        return {(parent, key) for key in value}.union(*(keys_of(item, key) for key, item in value.items()))
    if isinstance(value, list):
        return set().union(*(keys_of(item, parent) for item in value))
    return set()


def no_mp3_encoder(*args) -> bytes:
    """Stand in for a missing MP3 encoder."""
    raise codecs.EncodeError("no encoder")


def test_every_field_of_the_track_json_and_last_run_is_documented_in_both_languages(env, monkeypatch, tmp_path):
    clip_id = env.upload("/upload_continuation", "continuation", write_clip(tmp_path / "riff.wav", seconds=1.0,
                                                                            rate=32000, amplitude=0.5))
    tracks = [
        env.generate(format="mp3", artist="Band", auto_tune=True, values={"top_k": 500, "top_p": 0, "seed": -1}),
        env.generate(appendContinuation=True, continuation=clip_id, mbd=True, keep_mono=True),
    ]
    monkeypatch.setattr(codecs, "_encode_mp3", no_mp3_encoder)
    tracks.append(env.generate(format="mp3", mbd=True))
    assert env.meta(tracks[0])["parameters"]["clamped"] == {"top_k": {"requested": 500.0, "used": 250}}
    assert last_run(env) == {"model": "small", "prompt": "tiny test tune", "request": env.meta(tracks[2])["request"],
                             "last_seed": 1234}
    fields = keys_of([env.meta(done) for done in tracks]) | keys_of(last_run(env))
    assert {"bitrate_kbps", "format_note", "continuation_loudness_gain_applied", "lufs_before"} <= {
        key for _, key in fields}
    for doc in ("README.md", "README.ru.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        missing = {f"{parent}.{key}" for parent, key in fields if f"`{key}`" not in text
                   and f"`{parent}.{key}`" not in text}
        assert not missing, doc
