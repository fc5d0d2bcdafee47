"""Workflow through Socket.IO on the tiny models: takes, continue, regenerate from here, loops, musical fields."""
from __future__ import annotations

import numpy as np
import pytest
from audiocraft.models import MusicGen

from tests.generation_support import module_env, spy_on

env = module_env("workflow")


@pytest.fixture
def prompts(monkeypatch) -> list:
    """The descriptions and batch size of every ``MusicGen.generate`` call (the call still runs)."""
    return spy_on(monkeypatch, MusicGen, "generate", lambda model, descriptions, *args, **kwargs: list(descriptions))


@pytest.fixture
def continued(monkeypatch) -> list:
    """The descriptions and prompt audio of every ``generate_continuation`` call (the call still runs)."""
    return spy_on(monkeypatch, MusicGen, "generate_continuation",
                  lambda model, prompt, rate, descriptions, *args, **kwargs: (list(descriptions),
                                                                             prompt.detach().cpu().numpy()))


def refused(env, field: str, **payload) -> dict:
    """Submit a bad request and check it is refused naming ``field``."""
    ack = env.submit(**payload)
    assert ack["ok"] is False and ack["error"]["field"] == field, ack
    return ack["error"]


def test_variations_are_takes_of_one_batched_pass_with_consecutive_seeds(env, prompts):
    done = env.generate(variations=3, values={"seed": 700})
    takes = done["takes"]
    assert len(prompts) == 1 and prompts[0] == ["tiny test tune"] * 3, "one batched pass of three prompts"
    assert [take["seed"] for take in takes] == [700, 701, 702] and done["name"] == takes[0]["name"]
    audio = []
    for index, take in enumerate(takes):
        meta = env.meta(take)
        assert meta["group"] == done["job_id"] and meta["group_index"] == index and meta["group_size"] == 3
        assert meta["group_batched"] is True and meta["parameters"]["seed"] == 700 + index
        assert meta["parameters"]["batch_seed"] == 700 and meta["request"]["variations"] == 3
        timing = meta["timing"]
        assert timing["realtime_factor"] == pytest.approx(timing["generate_seconds"] / 3, rel=0.01), "3 s in all"
        audio.append(env.read(take)[0])
    assert len({take["name"] for take in takes}) == 3, "three tracks"
    assert not np.array_equal(audio[0], audio[1]) and not np.array_equal(audio[1], audio[2])
    again = env.generate(variations=3, values={"seed": 700})
    for first, second in zip(takes, again["takes"], strict=True):
        np.testing.assert_array_equal(env.read(first)[0], env.read(second)[0], err_msg="the group reproduces")


def test_auto_seed_takes_draw_one_seed_and_count_up_from_it(env):
    done = env.generate(variations=2, values={"seed": -1})
    first, second = (env.meta(take)["parameters"]["seed"] for take in done["takes"])
    assert second == first + 1


def test_takes_that_do_not_fit_in_memory_run_one_by_one_with_their_own_seeds(env, monkeypatch):
    real = env.engine.generate
    sizes = []

    def generate(spec, on_step, on_preview=None):
        sizes.append((spec.batch, spec.seed))
        if spec.batch > 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(spec, on_step, on_preview)

    monkeypatch.setattr(env.engine, "generate", generate)
    done = env.generate(variations=2, values={"seed": 40})
    assert sizes == [(2, 40), (1, 40), (1, 41)]
    metas = [env.meta(take) for take in done["takes"]]
    assert [meta["group_batched"] for meta in metas] == [False, False]
    assert [meta["group_index"] for meta in metas] == [0, 1]
    assert [meta["parameters"]["seed"] for meta in metas] == [40, 41] and [t["seed"] for t in done["takes"]] == [40, 41]
    assert "batch_seed" not in metas[0]["parameters"]
    single = env.generate(values={"seed": 41})
    np.testing.assert_array_equal(env.read(done["takes"][1])[0], env.read(single)[0],
                                  err_msg="an unbatched take is the single job of its seed")


def test_takes_run_one_by_one_are_each_decoded_by_mbd(env, monkeypatch):
    real = env.engine.generate

    def generate(spec, on_step, on_preview=None):
        if spec.batch > 1:
            raise MemoryError("out of memory")
        return real(spec, on_step, on_preview)

    monkeypatch.setattr(env.engine, "generate", generate)
    done = env.generate(variations=2, mbd=True, values={"seed": 44})
    metas = [env.meta(take) for take in done["takes"]]
    assert [meta["parameters"]["multi_band_diffusion"]["status"] for meta in metas] == ["applied", "applied"]


@pytest.mark.parametrize("value", [0, 9, "x", 2.5, True])
def test_variations_outside_1_to_8_are_refused(env, value):
    refused(env, "variations", variations=value)


def test_cancelling_a_group_cancels_every_take(env):
    tracks = len(env.services.store.list_tracks())
    ack = env.submit(variations=4, values={"duration": 20})
    env.sio.wait("progress", where=lambda p: p["job_id"] == ack["job_id"] and p.get("phase") == "generating")
    assert env.sio.client.emit("cancel_job", {"job_id": ack["job_id"]}, callback=True)["ok"]
    env.finished(ack, state="cancelled")
    assert len(env.services.store.list_tracks()) == tracks, "no take was written"


def test_continue_starts_with_the_track_itself_and_chains(env, continued):
    base = env.generate(values={"seed": 5})
    original, rate = env.read(base)
    done = env.generate(continue_track=base["name"], values={"seed": 6})
    audio, same_rate = env.read(done)
    assert same_rate == rate and audio.shape[1] == original.shape[1] + rate
    np.testing.assert_array_equal(audio[:, :original.shape[1]], original, err_msg="the track's own samples first")
    meta = env.meta(done)
    assert meta["source_track"] == base["name"] and meta["parameters"]["continuation_source"] == base["name"]
    assert meta["parameters"]["append_mode"] is True
    (descriptions, prompt), = continued
    assert descriptions == ["tiny test tune"] and prompt.shape[-1] == original.shape[1]
    chained = env.generate(continue_track=done["name"], values={"seed": 7})
    longer, _ = env.read(chained)
    assert longer.shape[1] == audio.shape[1] + rate
    np.testing.assert_array_equal(longer[:, :audio.shape[1]], audio)
    assert env.meta(chained)["source_track"] == done["name"]


def test_an_unknown_or_deleted_track_is_refused(env):
    refused(env, "continue_track", continue_track="no_such_track")
    refused(env, "continue_track", continue_track="../../settings/last_run")
    base = env.generate(values={"seed": 8})
    env.services.store.delete(base["name"])
    refused(env, "continue_track", continue_track=base["name"])
    refused(env, "melody_track", model="melody", melody_track=base["name"])


def test_regenerate_from_here_keeps_the_audio_before_the_cut_and_the_length(env, continued):
    base = env.generate(values={"seed": 9, "duration": 3})
    original, rate = env.read(base)
    done = env.generate(continue_track=base["name"], cut_at=1.5, values={"seed": 10})
    audio, _ = env.read(done)
    assert audio.shape == original.shape, "same length as before"
    np.testing.assert_array_equal(audio[:, :int(1.5 * rate)], original[:, :int(1.5 * rate)])
    assert not np.array_equal(audio[:, int(1.5 * rate):], original[:, int(1.5 * rate):])
    assert env.meta(done)["regenerated_from"] == {"track": base["name"], "cut_at": 1.5, "source_seconds": 3.0}
    (_, prompt), = continued
    assert prompt.shape[-1] == int(1.5 * rate), "the audio before the cut is the prompt"
    refused(env, "cut_at", cut_at=1.0)
    refused(env, "cut_at", continue_track=base["name"], cut_at=-1)
    refused(env, "cut_at", continue_track=base["name"], cut_at=3.0)
    refused(env, "cut_at", continue_track=base["name"], cut_at=0.2)


def test_a_loop_lasts_exactly_its_bars_and_records_its_cut(env, prompts):
    done = env.generate(loop={"bars": 1, "bpm": 100, "beats_per_bar": 3}, values={"seed": 11})
    audio, rate = env.read(done)
    assert audio.shape[1] == round(1 * 3 * 60 / 100 * rate), "exact to the sample"
    meta = env.meta(done)
    loop = meta["loop"]
    assert (loop["bars"], loop["bpm"], loop["beats_per_bar"]) == (1, 100, 3)
    assert loop["crossfade_seconds"] > 0 and loop["cut_point_seconds"] >= 1.8
    assert prompts == [["tiny test tune, 100 bpm"]] and meta["musical"]["bpm"] == 100


@pytest.mark.parametrize(("loop", "field"), [({"bars": 0, "bpm": 120}, "loop.bars"),
                                             ({"bars": 2, "bpm": 29}, "loop.bpm"),
                                             ({"bars": 2, "bpm": 301}, "loop.bpm"),
                                             ({"bars": 2}, "loop.bpm"), ("4 bars", "loop"),
                                             ({"bars": 2, "bpm": 120, "swing": 1}, "loop")])
def test_bad_loops_are_refused(env, loop, field):
    refused(env, field, loop=loop)


def test_bpm_and_key_are_added_to_the_prompt_and_bars_set_an_exact_length(env, prompts):
    done = env.generate(bpm=120, key="C minor", bars=1, values={"seed": 12})
    audio, rate = env.read(done)
    assert audio.shape[1] == 2 * rate, "one bar of 4 beats at 120 bpm"
    assert prompts == [["tiny test tune, 120 bpm, C minor"]]
    assert env.meta(done)["musical"] == {"bpm": 120, "key": "C minor", "bars": 1,
                                         "model_prompt": "tiny test tune, 120 bpm, C minor"}
    assert env.meta(done)["prompt"] == "tiny test tune", "the user's prompt stays the track's prompt"


@pytest.mark.parametrize(("payload", "field"), [({"bpm": 20}, "bpm"), ({"key": "H minor"}, "key"),
                                                ({"bars": 4}, "bars"), ({"bpm": 90, "bars": 0}, "bars")])
def test_bad_musical_fields_are_refused(env, payload, field):
    refused(env, field, **payload)


def test_a_song_structure_continues_each_segment_with_its_own_prompt_in_one_job(env, prompts, continued):
    segments = [{"prompt": "intro", "seconds": 1}, {"prompt": "drop", "seconds": 2}, {"prompt": "outro", "seconds": 1}]
    ack = env.submit(segments=segments, bpm=90, values={"seed": 13})
    done = env.finished(ack)
    audio, rate = env.read(done)
    assert audio.shape[1] == 4 * rate
    assert prompts == [["intro, 90 bpm"]]
    assert [descriptions for descriptions, _ in continued] == [["drop, 90 bpm"], ["outro, 90 bpm"]]
    assert [prompt.shape[-1] for _, prompt in continued] == [rate, 3 * rate], "the audio so far is the prompt"
    assert env.meta(done)["segments"] == [{"prompt": "intro", "seconds": 1, "start_seconds": 0.0},
                                          {"prompt": "drop", "seconds": 2, "start_seconds": 1.0},
                                          {"prompt": "outro", "seconds": 1, "start_seconds": 3.0}]
    generating = [p["progress"] for p in env.progress(ack["job_id"]) if p.get("phase") == "generating"]
    assert generating == sorted(generating), "one progress bar for the whole song"
    assert {p.get("phase") for p in env.progress(ack["job_id"])} >= {"generating"}


@pytest.mark.parametrize(("segments", "field"), [
    ([{"prompt": "a", "seconds": 200}, {"prompt": "b", "seconds": 101}], "segments"),
    ([{"prompt": "a", "seconds": 1}] * 11, "segments"),
    ([{"prompt": " ", "seconds": 1}], "segments.0.prompt"),
    ([{"prompt": "a", "seconds": 1}, {"prompt": "b", "seconds": 0}], "segments.1.seconds"),
    ("intro", "segments")])
def test_bad_song_structures_are_refused(env, segments, field):
    refused(env, field, segments=segments)


def test_a_track_is_a_melody_prompt_without_an_upload(env, monkeypatch):
    melodies = spy_on(monkeypatch, MusicGen, "generate_with_chroma",
                      lambda model, descriptions, melody, rate, *args, **kwargs: (melody.detach().cpu().numpy(), rate))
    base = env.generate(values={"seed": 14})
    original, rate = env.read(base)
    done = env.generate(model="melody", melody_track=base["name"], values={"seed": 15})
    (melody, melody_rate), = melodies
    assert melody_rate == rate
    np.testing.assert_array_equal(melody[0], original)
    meta = env.meta(done)
    assert meta["melody_track"] == base["name"] and meta["parameters"]["audio_prompt"] == base["name"]
    refused(env, "melody_track", melody_track=base["name"])


def test_the_rest_api_takes_the_same_fields(env):
    answer = env.http.post("/api/v1/generations", json={"prompt": "api loop", "duration": 1, "variations": 2,
                                                        "loop": {"bars": 1, "bpm": 240}, "auto_tune": False})
    assert answer.status_code == 202, answer.get_json()
    bad = env.http.post("/api/v1/generations", json={"prompt": "x", "loop": {"bars": 0, "bpm": 120}})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "loop.bars"
    gone = env.http.post("/api/v1/generations", json={"prompt": "x", "continue_track": "nothing_here"})
    assert gone.status_code == 400 and gone.get_json()["error"]["field"] == "continue_track"
    job_id = answer.get_json()["job_id"]
    env.sio.wait("on_finish_audio", where=lambda p: p["job_id"] == job_id)
    result = env.http.get(f"/api/v1/jobs/{job_id}").get_json()["result"]
    assert [take["name"] for take in result["takes"]][0] == result["name"] and len(result["takes"]) == 2
    assert all(take["audio_url"].startswith("/static/audio/") for take in result["takes"])
    listed = env.http.get("/api/v1/jobs").get_json()["recent"]
    assert all("meta" not in take for job in listed for take in (job["result"] or {}).get("takes") or [])
