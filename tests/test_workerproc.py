"""The worker in a process of its own: jobs, preview, cancel and stems through it, and the server surviving its death.

Each app here runs the real worker process on the tiny offline models (the other tests run the engine in
the test process, where they can reach into it). The worker's test hooks stop it half-way through a call
(``TEST_PAUSE_AT``) so it can be killed there, or make it abort natively (``TEST_ABORT_AT``).
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests.conftest import EventLog

pytestmark = pytest.mark.slow  # each test starts a worker process and loads a model in it


@pytest.fixture
def isolated(make_app):
    """Start an app whose worker runs in a process; the process is stopped at teardown."""
    started = []

    def start(**config):
        app = make_app({"ISOLATE_WORKER": True, **config})
        services = app.extensions["audiocraft_webui"]
        log = EventLog(app.extensions["socketio"].test_client(app, flask_test_client=app.test_client()))
        services.worker.start()
        started.append(services)
        return services, log

    yield start
    for services in started:
        services.worker.stop()
        services.worker_process.stop()


def submit(log: EventLog, duration: int = 2, **extra) -> str:
    """Queue a generation; its job id."""
    ack = log.client.emit("submit_sliders", {"prompt": "worker process", "model": "small", "auto_tune": False,
                                             "values": {"duration": duration, "seed": 7}, **extra}, callback=True)
    assert ack["ok"], ack
    return ack["job_id"]


def finished(log: EventLog, job_id: str, event: str = "on_finish_audio") -> dict:
    """The terminal event of a job."""
    return log.wait(event, where=lambda payload: payload["job_id"] == job_id, timeout=120)


def wait_phase(services, point: str) -> None:
    """Wait until the running job has entered ``point`` (the worker then stops at its pause point)."""
    deadline = time.monotonic() + 120
    while (services.queue.snapshot()["running"] or {}).get("phase") != point:
        assert time.monotonic() < deadline, f"the job never reached {point}"
        time.sleep(0.05)


def test_jobs_run_in_the_worker_process_with_preview_and_cancel(isolated):
    services, log = isolated()
    done = finished(log, submit(log, preview=True))
    assert done["state"] == "done" and (services.store.root / done["filename"]).is_file()
    worker_pid = services.worker_process.pid
    assert worker_pid is not None and worker_pid != os.getpid()
    chunks = [chunk for chunk in log.named("audio_preview") if chunk["job_id"] == done["job_id"]]
    assert sum(len(chunk["pcm"]) // 2 for chunk in chunks) == 2 * 32000
    job_id = submit(log, duration=20)
    log.wait("progress", where=lambda p: p["job_id"] == job_id and p["phase"] == "generating" and p["progress"] > 0.1)
    assert log.client.emit("cancel_job", {"job_id": job_id}, callback=True)["outcome"] == "cancelling"
    cancelled = finished(log, job_id)
    assert cancelled["state"] == "cancelled" and services.worker_process.pid == worker_pid, "the worker lives on"
    split = log.client.emit("request_stems", {"name": done["name"], "target": "vocals"}, callback=True)
    assert split["ok"], split
    stems = finished(log, split["job_id"], "postprocess_done")
    assert stems["state"] == "done" and [stem["name"] for stem in stems["stems"]] == ["vocals", "no_vocals"]
    assert services.stems.tracks.names(done["name"]) == ["vocals", "no_vocals"]


@pytest.mark.parametrize("point", ["generating", "separating"])
def test_a_killed_worker_fails_its_job_with_the_reason_and_the_next_job_gets_a_fresh_worker(isolated, point):
    services, log = isolated(TEST_PAUSE_AT=point)
    if point == "separating":
        track = finished(log, submit(log))
        job_id = log.client.emit("request_stems", {"name": track["name"]}, callback=True)["job_id"]
        terminal = "postprocess_done"
    else:
        job_id, terminal = submit(log), "on_finish_audio"
    wait_phase(services, point)
    victim = services.worker_process.pid
    os.kill(victim, signal.SIGKILL)
    failed = finished(log, job_id, terminal)
    assert failed["state"] == "failed"
    message = failed["error"]["message"]
    assert "killed by the system (SIGKILL)" in message and "out of memory" in message, message
    assert ("generating" if point == "generating" else "separating stems") in message
    next_job = finished(log, submit(log))
    assert next_job["state"] == "done" and services.worker_process.pid not in (None, victim)
    assert services.worker.alive


def test_a_native_crash_in_the_worker_is_a_failed_job_and_the_server_goes_on(isolated):
    services, log = isolated(TEST_ABORT_AT="generating")
    failed = finished(log, submit(log))
    assert failed["state"] == "failed" and "crashed (SIGABRT) while generating" in failed["error"]["message"]
    done = finished(log, submit(log))
    assert done["state"] == "done" and [track.base for track in services.store.list_tracks()] == [done["name"]]


def test_a_worker_that_cannot_start_is_reported_not_restarted_forever(isolated):
    services, log = isolated(ENGINE="no-such-engine")
    first = finished(log, submit(log))
    assert first["state"] == "failed" and "failed to start 3 times in a row" in first["error"]["message"]
    assert services.worker_process.starts == 3
    second = finished(log, submit(log))
    assert second["state"] == "failed" and services.worker_process.starts == 3, "no restart loop"


class SentEvents:
    """Stands in for the worker's event pipe: keeps what would cross it."""

    def __init__(self) -> None:
        self.messages: list[tuple] = []

    def send(self, message: tuple) -> None:
        self.messages.append(message)


def test_progress_crosses_at_most_every_interval_while_results_and_the_end_always_cross():
    from audiocraft_webui.workerproc.child import PROGRESS_INTERVAL_S, Cancelled, Worker, WorkerSettings
    from audiocraft_webui.workerproc.wire import CallbackRef

    events = SentEvents()
    worker = Worker(WorkerSettings(engine="audiocraft", device="cpu", threads=1, demucs_model="htdemucs",
                                   demucs_shifts=1, demucs_overlap=0.25), events)
    on_step = worker._callback(7, CallbackRef(0), "generate")
    on_chunk = worker._callback(7, CallbackRef(1), "generate")
    started = time.monotonic()
    for step in range(2000):
        on_step(step / 2000)
        on_chunk({"seq": step})
    on_step(1.0)
    elapsed = time.monotonic() - started
    progress = [message[3][0] for message in events.messages if message[2] == 0]
    chunks = [message for message in events.messages if message[2] == 1]
    assert len(chunks) == 2000  # preview audio is never dropped
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    assert len(progress) <= elapsed / PROGRESS_INTERVAL_S + 2 < 2001
    worker.cancelled.add(7)
    with pytest.raises(Cancelled):
        on_step(0.99)
