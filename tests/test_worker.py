"""The worker survives every failure, sends one terminal event per job, and reports sane progress."""
from __future__ import annotations

import time

import pytest

from audiocraft_webui.jobs import Job
from audiocraft_webui.tasks import TrackSplitTask
from audiocraft_webui.worker import Progress
from tests.fakes import FakeClock, FakeEngine, FakeOutOfMemoryError


@pytest.fixture
def fake_engine():
    """A fast numpy engine with fault knobs."""
    return FakeEngine()


@pytest.fixture
def app(make_app, fake_engine):
    """An app whose worker runs the fake engine (the full pipeline otherwise: postprocess, storage)."""
    return make_app(engine=fake_engine)


def submit(sio, prompt: str = "test", **values) -> str:
    """Submit a short generation and return its job id."""
    ack = sio.client.emit("submit_sliders", {"prompt": prompt, "model": "small", "auto_tune": False,
                                             "values": {"duration": 2, **values}}, callback=True)
    assert ack["ok"], ack
    return ack["job_id"]


def test_exception_fails_only_that_job_and_the_next_one_succeeds(sio, services, fake_engine, running_worker):
    fake_engine.fail_with = ValueError("boom in the engine")
    failed = submit(sio, "first")
    done = submit(sio, "second")
    failure = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == failed)
    assert failure["state"] == "failed" and failure["error"] == {"type": "ValueError", "message": "boom in the engine"}
    assert failure.get("filename") is None
    success = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == done)
    assert success["state"] == "done" and success["filename"].startswith("static/audio/")
    assert running_worker.alive
    assert fake_engine.freed >= 1


def test_out_of_memory_frees_memory_and_says_so(sio, services, fake_engine, running_worker):
    fake_engine.fail_with = FakeOutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    job_id = submit(sio)
    failure = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == job_id)
    assert failure["error"]["type"] == "out_of_memory" and "shorter duration" in failure["error"]["message"]
    assert fake_engine.freed == 1
    next_job = submit(sio)
    assert sio.wait("on_finish_audio", where=lambda p: p["job_id"] == next_job)["state"] == "done"


def test_progress_is_monotonic_throttled_and_ends_at_one(sio, services, fake_engine):
    clock = FakeClock()
    fake_engine.clock, fake_engine.step_delay = clock, 0.004  # 100 steps over 0.4 s: far more callbacks than events
    services.worker.clock = clock
    services.worker.start()
    job_id = submit(sio)
    sio.wait("on_finish_audio", where=lambda p: p["job_id"] == job_id)
    values = [p["progress"] for p in sio.named("progress") if p["job_id"] == job_id]
    assert values == sorted(values) and values[-1] == 1.0 and all(0 <= v <= 1 for v in values)
    generating = [p for p in sio.named("progress") if p["job_id"] == job_id and p["phase"] == "generating"]
    assert 1 <= len(generating) <= 7


def test_throttle_allows_at_most_ten_events_per_second():
    sent, clock = [], FakeClock()
    job = Job(TrackSplitTask("x", "all"))
    progress = Progress(job, lambda event, payload: sent.append(clock()), clock=clock)
    progress.phase("generating")
    start = clock()
    while clock() - start < 0.55:
        progress.update((clock() - start) / 0.55)
        clock.advance(0.001)
    gaps = [b - a for a, b in zip(sent[1:], sent[2:], strict=False)]
    assert len(sent) <= 8 and all(gap >= 0.099 for gap in gaps)


def test_cancel_stops_the_running_job_within_a_step_and_writes_nothing(sio, services, fake_engine, running_worker):
    fake_engine.hold_at = 50
    job_id = submit(sio, duration=10)
    assert fake_engine.held.wait(10)
    cancelled_at = time.monotonic()
    assert sio.client.emit("cancel_job", {"job_id": job_id}, callback=True)["outcome"] == "cancelling"
    fake_engine.proceed.set()
    result = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == job_id)
    assert result["state"] == "cancelled"
    assert time.monotonic() - cancelled_at < 0.5
    assert fake_engine.steps_done == 51, "the step under way when the user cancelled is the last one"
    assert list(services.store.audio_dir.iterdir()) == []


def test_cancel_removes_a_queued_job(sio, services, fake_engine):
    first, second = submit(sio), submit(sio)
    ack = sio.client.emit("cancel_job", {"job_id": second}, callback=True)
    assert ack == {"ok": True, "job_id": second, "outcome": "removed"}
    assert sio.wait("on_finish_audio", where=lambda p: p["job_id"] == second)["state"] == "cancelled"
    assert [job["id"] for job in services.queue.snapshot()["queued"]] == [first]


def test_two_clients_are_served_one_job_at_a_time(app, client, sio, services, fake_engine, running_worker):
    fake_engine.step_delay = 0.002
    other = app.extensions["socketio"].test_client(app, flask_test_client=app.test_client())
    ids = [submit(sio, "tab one"), other.emit("submit_sliders", {"prompt": "tab two", "model": "small",
                                                                 "values": {"duration": 2}}, callback=True)["job_id"]]
    for job_id in ids:
        sio.wait("on_finish_audio", where=lambda p, j=job_id: p["job_id"] == j)
    recent = {job["id"]: job for job in services.queue.snapshot()["recent"]}
    first, second = recent[ids[0]], recent[ids[1]]
    assert first["finished"] <= second["started"]
    assert any(p["queued"] for p in sio.named("queue_state"))
    other.disconnect()
