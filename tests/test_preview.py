"""Listen while it generates, over the wire: ``audio_preview`` chunks and ``watch_preview``.

The real engine on the tiny models checks what the chunks hold (order, contiguity, length, samples); the
numpy FakeEngine, which can stop at an exact step, checks late listeners, cancel and disconnects.
"""
from __future__ import annotations

import numpy as np
import pytest

from audiocraft_webui.preview import pcm16
from tests.conftest import EventLog
from tests.fakes import FakeEngine
from tests.generation_support import module_env

env = module_env("preview")


def chunks_of(log: EventLog, job_id: str) -> list[dict]:
    """The ``audio_preview`` payloads of a job, in arrival order."""
    return [chunk for chunk in log.named("audio_preview") if chunk["job_id"] == job_id]


def joined(chunks: list[dict]) -> np.ndarray:
    """The int16 samples of the chunks, ``[T, C]``."""
    channels = chunks[0]["channels"]
    return np.concatenate([np.frombuffer(chunk["pcm"], dtype="<i2").reshape(-1, channels) for chunk in chunks])


def assert_contiguous(chunks: list[dict]) -> int:
    """Check seq counts 0, 1, 2 ... and each chunk starts where the one before ended; return the total frames."""
    assert [chunk["seq"] for chunk in chunks] == list(range(len(chunks)))
    end = 0
    for chunk in chunks:
        assert chunk["start"] == end
        end += len(chunk["pcm"]) // (2 * chunk["channels"])
    return end


@pytest.mark.parametrize("model,channels", [("small", 1), ("stereo-small", 2)])
def test_the_submitting_tab_gets_every_chunk_in_order_and_they_are_the_new_audio(env, model, channels):
    done = env.generate(model=model, keep_mono=True, values={"duration": 3})
    chunks = chunks_of(env.sio, done["job_id"])
    assert len(chunks) >= 3 and {chunk["sample_rate"] for chunk in chunks} == {32000}
    assert {chunk["channels"] for chunk in chunks} == {channels} and not any(chunk["mbd"] for chunk in chunks)
    assert all(16000 <= len(chunk["pcm"]) // (2 * channels) <= 32000 for chunk in chunks[:-1]), "0.5-1 s each"
    frames = assert_contiguous(chunks)
    audio, rate = env.read(done)
    assert rate == 32000 and frames == audio.shape[1] == 3 * 32000, "the chunks cover exactly the job's new audio"
    # The same seed through the engine directly: the preview is the codec's audio before any loudness change.
    from audiocraft_webui.engines import GenerationSpec

    engine, task = env.engine, env.services.queue.get(done["job_id"]).task
    spec = GenerationSpec(model=env.services.catalog.resolve(model), prompt=task.request.prompt, duration=3,
                          top_k=task.request.top_k, top_p=task.request.top_p, temperature=task.effective.temperature,
                          cfg_coef=task.effective.cfg_coef, seed=task.seed)
    direct = engine.generate(spec, lambda fraction: None)
    expected = np.frombuffer(pcm16(direct.audio), dtype="<i2").reshape(-1, channels)
    assert np.abs(joined(chunks).astype(int) - expected.astype(int)).max() <= 1


def test_a_continuation_previews_only_the_new_part_and_mbd_says_the_final_audio_differs(env, tmp_path):
    from tests.generation_support import write_clip

    clip = env.upload("/upload_continuation", "continuation", write_clip(tmp_path / "clip.wav", seconds=1.0,
                                                                         rate=32000))
    done = env.generate(continuation=clip, appendContinuation=True, mbd=True, values={"duration": 2})
    chunks = chunks_of(env.sio, done["job_id"])
    assert assert_contiguous(chunks) == 2 * 32000 and all(chunk["mbd"] for chunk in chunks)


def test_no_preview_is_made_when_the_request_asks_for_none(env):
    done = env.generate(preview=False, values={"duration": 2})
    assert chunks_of(env.sio, done["job_id"]) == []


def test_watching_an_unknown_or_finished_job_is_refused_with_a_reason(env):
    done = env.generate(values={"duration": 1})
    for job_id, kind in (("nope", "not_found"), (None, "not_found"), (done["job_id"], "finished")):
        ack = env.sio.client.emit("watch_preview", {"job_id": job_id}, callback=True)
        assert ack["ok"] is False and ack["error"]["type"] == kind and ack["error"]["message"]
    assert env.sio.client.emit("watch_preview", "junk", callback=True)["error"]["type"] == "not_found"


# ---- late listeners, cancel, disconnects (FakeEngine: it stops at an exact step) ----------------------------


@pytest.fixture
def fake_engine() -> FakeEngine:
    """The numpy engine, previewing 0.8 s (40 steps) at a time."""
    return FakeEngine()


@pytest.fixture
def fake(make_app, fake_engine):
    """An app on the fake engine with its worker running, and a connected client."""
    app = make_app(engine=fake_engine)
    services = app.extensions["audiocraft_webui"]
    log = EventLog(app.extensions["socketio"].test_client(app, flask_test_client=app.test_client()))
    services.worker.start()
    yield app, services, log
    services.worker.stop()


def submit(log: EventLog, duration: int = 4) -> str:
    """Queue a generation on the fake engine; returns its job id."""
    ack = log.client.emit("submit_sliders", {"prompt": "p", "model": "small", "auto_tune": False,
                                             "values": {"duration": duration}}, callback=True)
    assert ack["ok"], ack
    return ack["job_id"]


def test_a_late_listener_gets_the_chunks_made_so_far_then_the_live_ones(fake, fake_engine):
    app, services, tab = fake
    fake_engine.hold_at = 100  # after 2 chunks of 40 steps
    job_id = submit(tab)
    assert fake_engine.held.wait(10)
    other = EventLog(app.extensions["socketio"].test_client(app, flask_test_client=app.test_client()))
    ack = other.client.emit("watch_preview", {"job_id": job_id}, callback=True)
    assert ack == {"ok": True, "job_id": job_id, "chunks": 2}
    assert [chunk["seq"] for chunk in chunks_of(other, job_id)] == [0, 1]
    fake_engine.proceed.set()
    assert other.wait("on_finish_audio", where=lambda p: p["job_id"] == job_id)["state"] == "done"
    late, first = chunks_of(other, job_id), chunks_of(tab, job_id)
    assert assert_contiguous(late) == assert_contiguous(first) == 4 * 32000
    assert [chunk["pcm"] for chunk in late] == [chunk["pcm"] for chunk in first]
    assert services.preview._streams == {}, "a finished job's chunks are freed"


def test_no_chunk_follows_a_cancel(fake, fake_engine):
    _, services, tab = fake
    fake_engine.hold_at = 79  # the step that completes the second chunk
    job_id = submit(tab)
    assert fake_engine.held.wait(10)
    assert tab.client.emit("cancel_job", {"job_id": job_id}, callback=True)["outcome"] == "cancelling"
    fake_engine.proceed.set()
    assert tab.wait("on_finish_audio", where=lambda p: p["job_id"] == job_id)["state"] == "cancelled"
    assert [chunk["seq"] for chunk in chunks_of(tab, job_id)] == [0]
    assert services.preview._streams == {}


def test_a_tab_that_leaves_mid_stream_costs_nothing(fake, fake_engine):
    app, services, tab = fake
    fake_engine.hold_at = 60
    leaving = EventLog(app.extensions["socketio"].test_client(app, flask_test_client=app.test_client()))
    job_id = submit(leaving)
    assert fake_engine.held.wait(10)
    leaving.client.disconnect()
    fake_engine.proceed.set()
    assert tab.wait("on_finish_audio", where=lambda p: p["job_id"] == job_id)["state"] == "done"
    assert chunks_of(tab, job_id) == [], "chunks go to the job's listeners only"
    assert services.preview._streams == {} and services.worker.alive
    next_job = submit(tab, 1)
    assert tab.wait("on_finish_audio", where=lambda p: p["job_id"] == next_job)["state"] == "done"


def test_watching_a_job_made_without_a_preview_is_refused_with_no_preview(make_app, fake_engine):
    app = make_app(engine=fake_engine)  # its worker is not started: the job stays queued
    log = EventLog(app.extensions["socketio"].test_client(app, flask_test_client=app.test_client()))
    ack = log.client.emit("submit_sliders", {"prompt": "p", "model": "small", "auto_tune": False, "preview": False,
                                             "values": {"duration": 2}}, callback=True)
    assert ack["ok"], ack
    refused = log.client.emit("watch_preview", {"job_id": ack["job_id"]}, callback=True)
    assert refused["ok"] is False and refused["error"]["type"] == "no_preview" and refused["error"]["message"]
    log.client.disconnect()
