"""Faults while jobs run: out of memory, a full or read-only disk, cancel, delete during a write, disconnects, emits.

Checklist rows 20-26 of docs/SECURITY.md. The numpy FakeEngine injects the faults; everything else (queue,
worker, storage, Socket.IO) is the real thing.
"""
from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from audiocraft_webui import fileio, generation
from tests.fakes import FakeEngine


@pytest.fixture
def fake_engine() -> FakeEngine:
    """A fast numpy engine with fault knobs."""
    return FakeEngine()


@pytest.fixture
def app(make_app, fake_engine):
    """An app whose worker runs the fake engine through the real pipeline."""
    return make_app(engine=fake_engine)


def submit(sio, prompt: str = "p", duration: float = 1) -> str:
    """Queue a short generation; returns its job id."""
    ack = sio.client.emit("submit_sliders", {"prompt": prompt, "model": "small", "auto_tune": False,
                                             "values": {"duration": duration}}, callback=True)
    assert ack["ok"], ack
    return ack["job_id"]


def finished(sio, job_id: str) -> dict:
    """The job's terminal event."""
    return sio.wait("on_finish_audio", where=lambda p: p["job_id"] == job_id)


def leftovers(root: Path) -> list[str]:
    """Temp and trash entries anywhere below the data folder."""
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.name.startswith((".tmp-", ".trash-"))]


def assert_consistent(services) -> None:
    """Every audio file has its JSON and vice versa, nothing is half-written, and a restart would find nothing."""
    audio_dir = services.store.audio_dir
    stems = {p.stem for p in audio_dir.iterdir() if p.suffix in (".wav", ".flac", ".mp3")}
    jsons = {p.stem for p in audio_dir.glob("*.json")}
    assert stems == jsons == {track.base for track in services.store.list_tracks()}
    assert leftovers(services.store.root) == []
    report = services.store.recover(extra_folders=(services.uploads.folder,)).as_json()
    assert report == {"removed_temp": [], "quarantined": [], "finished_trash": []}


# ---- out of memory and other engine failures (row 22) ---------------------------------------------------------


@pytest.mark.parametrize("error,kind", [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB"), "out_of_memory"),
    (MemoryError(), "out_of_memory"), (RuntimeError("cuDNN error"), "RuntimeError"),
])
def test_a_failing_engine_fails_that_job_only_frees_memory_and_the_next_one_runs(sio, services, fake_engine,
                                                                                 running_worker, error, kind):
    fake_engine.fail_with = error
    failed, after = submit(sio, "first"), submit(sio, "second")
    failure = finished(sio, failed)
    assert failure["state"] == "failed" and failure["error"]["type"] == kind and failure["error"]["message"]
    assert "Traceback" not in failure["error"]["message"]
    assert fake_engine.freed == 1
    assert finished(sio, after)["state"] == "done" and running_worker.alive
    states = {job["id"]: job["state"] for job in services.queue.snapshot()["recent"]}
    assert states == {failed: "failed", after: "done"}
    assert_consistent(services)


# ---- cancel (row 23) ------------------------------------------------------------------------------------------


def test_cancel_at_half_way_leaves_no_file_and_frees_memory(sio, services, fake_engine, running_worker):
    fake_engine.hold_at = 100  # half of the 200 steps of 4 s
    job_id = submit(sio, duration=4)
    assert fake_engine.held.wait(10)
    assert sio.client.emit("cancel_job", {"job_id": job_id}, callback=True)["outcome"] == "cancelling"
    fake_engine.proceed.set()
    result = finished(sio, job_id)
    assert result["state"] == "cancelled" and result["error"]["type"] == "cancelled"
    assert fake_engine.freed == 1
    assert list(services.store.audio_dir.iterdir()) == [] and leftovers(services.store.root) == []
    assert services.queue.snapshot()["running"] is None
    assert finished(sio, submit(sio))["state"] == "done"


# ---- a full or read-only disk (row 24) ------------------------------------------------------------------------


def failing_write(code: int):
    """A write_all that writes half of the audio and then fails like a full or read-only disk."""
    def write(handle, data: bytes) -> None:
        handle.write(data[: len(data) // 2])
        raise OSError(code, "No space left on device" if code == errno.ENOSPC else "Read-only file system")

    return write


@pytest.mark.parametrize("code,kind", [(errno.ENOSPC, "disk_full"), (errno.EROFS, "read_only")])
def test_a_full_or_read_only_disk_fails_the_job_keeps_earlier_tracks_and_removes_the_temp(
        sio, services, running_worker, monkeypatch, code, kind):
    earlier = finished(sio, submit(sio, "earlier"))
    earlier_path = services.store.audio_dir / Path(earlier["filename"]).name
    before = earlier_path.read_bytes()
    monkeypatch.setattr(generation, "write_all", failing_write(code))
    failure = finished(sio, submit(sio, "doomed"))
    assert failure["state"] == "failed" and failure["error"]["type"] == kind
    assert "earlier tracks are intact" in failure["error"]["message"]
    assert earlier_path.read_bytes() == before and [t.base for t in services.store.list_tracks()] == [earlier["name"]]
    assert_consistent(services)
    monkeypatch.undo()
    assert finished(sio, submit(sio, "after"))["state"] == "done"


def test_a_read_only_folder_when_the_json_is_written_takes_the_audio_back(sio, services, running_worker,
                                                                          monkeypatch):
    real_mkstemp = fileio.tempfile.mkstemp

    def read_only_for_json(*args, suffix: str = "", **kwargs):
        if suffix == ".json" and Path(kwargs["dir"]) == services.store.audio_dir:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkstemp(*args, suffix=suffix, **kwargs)

    monkeypatch.setattr(fileio.tempfile, "mkstemp", read_only_for_json)
    failure = finished(sio, submit(sio))
    assert failure["state"] == "failed" and failure["error"]["type"] == "read_only"
    assert list(services.store.audio_dir.iterdir()) == []
    assert_consistent(services)


# ---- delete and clear during a write (row 21) -----------------------------------------------------------------


class ContendedLock:
    """Wraps the store's re-entrant lock and tells when a second thread has to wait for it."""

    def __init__(self, lock) -> None:
        self._lock = lock
        self.contended = threading.Event()

    def __enter__(self):
        if not self._lock.acquire(blocking=False):
            self.contended.set()
            self._lock.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()


@pytest.mark.parametrize("action", ["clear", "delete"])
def test_clear_or_delete_during_a_commit_waits_and_leaves_all_or_nothing(app, client, sio, services, running_worker,
                                                                         monkeypatch, action):
    kept = finished(sio, submit(sio, "kept"))["name"]
    reached, release = threading.Event(), threading.Event()

    def hold(name: str) -> None:
        if name == "commit_json":
            reached.set()
            release.wait(10)

    monkeypatch.setattr(services.store, "pause", hold)
    waiting = ContendedLock(services.store._lock)
    monkeypatch.setattr(services.store, "_lock", waiting)
    job_id = submit(sio, "being written")
    assert reached.wait(10)
    answers: list = []
    body = {"path": "/delete_all_audio"} if action == "clear" else {"path": "/delete_audio", "json": {"name": kept}}
    request = threading.Thread(target=lambda: answers.append(client.post(**body)))
    request.start()
    assert waiting.contended.wait(10), "the removal reaches the store's lock"
    assert answers == []  # the removal waits for the commit instead of tearing it apart
    release.set()
    request.join(10)
    assert answers[0].status_code == 200
    done = finished(sio, job_id)
    assert done["state"] == "done"
    names = {track.base for track in services.store.list_tracks()}
    assert names == (set() if action == "clear" else {done["name"]})
    assert_consistent(services)


def test_a_json_update_after_a_delete_does_not_bring_the_track_back(sio, services, running_worker):
    name = finished(sio, submit(sio))["name"]
    services.store.delete(name)
    assert services.store.update_meta(name, lambda meta: meta.update(stems=["x"])) is None
    assert list(services.store.audio_dir.iterdir()) == []


# ---- two tabs and disconnects (rows 20, 25) -------------------------------------------------------------------


def test_two_tabs_submitting_at_once_are_run_one_after_the_other(app, sio, services, fake_engine, running_worker):
    fake_engine.step_delay = 0.002
    tabs = [app.extensions["socketio"].test_client(app) for _ in range(2)]
    acks: list = []
    barrier = threading.Barrier(2)

    def send(tab, prompt):
        barrier.wait()
        acks.append(tab.emit("submit_sliders", {"prompt": prompt, "model": "small", "values": {"duration": 1}},
                             callback=True))

    threads = [threading.Thread(target=send, args=(tab, f"tab {i}")) for i, tab in enumerate(tabs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ack["position"] for ack in acks if ack["ok"]) in ([1, 2], [1, 1])
    for ack in acks:
        assert finished(sio, ack["job_id"])["state"] == "done"
    runs = sorted((job["started"], job["finished"]) for job in services.queue.snapshot()["recent"])
    assert runs[0][1] <= runs[1][0]  # never two at once
    for tab in tabs:
        tab.disconnect()


def test_a_tab_that_disconnects_mid_job_gets_the_state_back_on_reconnect(app, client, services, fake_engine,
                                                                         running_worker):
    from tests.conftest import EventLog

    fake_engine.hold_at = 50
    socketio = app.extensions["socketio"]
    first = EventLog(socketio.test_client(app, flask_test_client=client))
    job_id = submit(first, "survives", duration=3)
    assert fake_engine.held.wait(10)
    first.client.disconnect()
    again = EventLog(socketio.test_client(app, flask_test_client=client))
    snapshot = again.wait("queue_state")
    assert snapshot["running"]["id"] == job_id and snapshot["running"]["state"] == "running"
    fake_engine.proceed.set()
    done = again.wait("on_finish_audio", where=lambda p: p["job_id"] == job_id)
    assert done["state"] == "done"
    third = EventLog(socketio.test_client(app, flask_test_client=client))
    pairs = third.wait("audio_json_pairs")
    assert pairs == [[done["filename"], done["json_filename"]]]
    assert [job["id"] for job in third.wait("queue_state")["recent"]] == [job_id]
    for log in (again, third):
        log.client.disconnect()


# ---- emits from several threads (row 26) ----------------------------------------------------------------------


def test_emits_from_the_worker_and_request_threads_never_overlap(app, services, monkeypatch):
    socketio = app.extensions["socketio"]
    inside, overlaps, sent = [0], [], []

    def slow_emit(event, payload, to=None, **kwargs):
        inside[0] += 1
        overlaps.append(inside[0])
        time.sleep(0.001)
        sent.append(event)
        inside[0] -= 1

    monkeypatch.setattr(socketio, "emit", slow_emit)
    threads = [threading.Thread(target=lambda i=i: [services.emit("progress", {"job_id": str(i), "n": n})
                                                    for n in range(25)]) for i in range(8)]
    threads.append(threading.Thread(target=lambda: [services.emit_job_event("progress", {"job_id": "w", "n": n})
                                                    for n in range(25)]))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent) == 225 and max(overlaps) == 1
    assert services.generation.emit is services.emit and services.worker.emit == services.emit_job_event


def test_nan_from_the_engine_never_reaches_a_file(sio, services, fake_engine, running_worker, monkeypatch):
    real_generate = fake_engine.generate

    def poisoned(spec, on_step, on_preview=None):
        output = real_generate(spec, on_step, on_preview)
        output.audio[:, ::97] = np.nan
        return output

    monkeypatch.setattr(fake_engine, "generate", poisoned)
    done = finished(sio, submit(sio))
    assert done["state"] == "failed" and "NaN or Inf" in done["error"]["message"]
    assert list(services.store.audio_dir.iterdir()) == []
    assert_consistent(services)
