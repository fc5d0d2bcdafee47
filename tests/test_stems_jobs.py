"""Stem jobs end to end over Socket.IO: split after generation, request_stems, demucs_any, faults, restarts.

Every split runs the real tiny Demucs on the one worker; generation uses the numpy FakeEngine.
"""
from __future__ import annotations

import io
import time

import pytest

from audiocraft_webui.audio import dsp
from audiocraft_webui.jobs import JobState, QueueFull
from tests.stems_kit import (  # noqa: F401 - fixtures
    HOSTILE_NAMES,
    STEM_RATE,
    app,
    assert_untouched,
    audio_bytes,
    fake_engine,
    leftovers,
    make_track,
    noise,
    read_wav,
    sentinels,
)

FOUR = ["vocals", "drums", "bass", "other"]


def generate(sio, stem_split: str) -> str:
    """Submit a 1 s generation asking for stems; returns its job id."""
    payload = {"prompt": "drums and bass", "model": "small", "auto_tune": False, "stem_split": stem_split,
               "values": {"duration": 1}}
    ack = sio.client.emit("submit_sliders", payload, callback=True)
    assert ack["ok"], ack
    return ack["job_id"]


def request_stems(sio, payload: dict) -> dict:
    """Send ``request_stems`` and return the ack."""
    return sio.client.emit("request_stems", payload, callback=True)


def record_task_states(services, monkeypatch) -> list[str]:
    """Collect every stem task status written to any track JSON, in order."""
    states: list[str] = []
    real = services.store.update_meta

    def update_meta(base, change):
        meta = real(base, change)
        if meta:
            states.append(meta["postprocess"]["tasks"][-1]["status"])
        return meta

    monkeypatch.setattr(services.store, "update_meta", update_meta)
    return states


@pytest.mark.parametrize("target,expected", [("all", FOUR), ("vocals", ["vocals", "no_vocals"])])
def test_generation_with_stem_split_queues_demucs_and_records_real_states(sio, services, running_worker,
                                                                          monkeypatch, target, expected):
    states = record_task_states(services, monkeypatch)
    job_id = generate(sio, target)
    finished = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == job_id)
    name = finished["name"]
    queued = sio.wait("postprocess_queued", where=lambda p: p["name"] == name)
    done = sio.wait("postprocess_done", where=lambda p: p["job_id"] == queued["job_id"])

    assert done["state"] == "done" and done["error"] is None
    assert done["name"] == name and done["task"] == "stem_split"
    assert [stem["name"] for stem in done["stems"]] == expected
    assert done["stems"][0]["url"] == f"/static/stems/{name}/{expected[0]}.wav"
    order = [event for event, payload in sio.events if isinstance(payload, dict)
             and payload.get("job_id") in (job_id, queued["job_id"])]
    assert order.index("on_finish_audio") < order.index("postprocess_queued") < order.index("stem_progress") \
        < order.index("postprocess_done")
    for event in ("stem_progress", "postprocess_progress"):
        bar = [p for p in sio.named(event) if p["job_id"] == queued["job_id"]]
        assert bar and all(p["name"] == name for p in bar), event
        values = [p["progress"] for p in bar]
        assert values == sorted(values) and values[-1] == 1.0 and all(0 <= v <= 1 for v in values)
        assert "separating" in {p["phase"] for p in bar}

    folder = services.store.stems_dir / name
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{stem}.wav" for stem in expected)
    audio, rate = read_wav((folder / f"{expected[0]}.wav").read_bytes())
    assert rate == STEM_RATE and audio.shape == (2, STEM_RATE) and dsp.peak(audio) > 0
    meta = services.store.get(name).meta
    assert meta["parameters"]["stem_split"] == {"requested": target, "status": "done"}
    task = meta["postprocess"]["tasks"][0]
    assert meta["postprocess"]["status"] == "done"
    assert task["status"] == "done" and task["type"] == "stem_split"
    assert task["stems"] == [f"static/stems/{name}/{stem}.wav" for stem in expected] and "error" not in task
    assert states == ["queued", "running", "done"]
    assert leftovers(services.store.root) == []


def test_no_stem_split_queues_nothing(sio, services, running_worker):
    job_id = generate(sio, "")
    name = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == job_id)["name"]
    assert sio.named("postprocess_queued") == [] and "postprocess" not in services.store.get(name).meta


def test_a_split_that_cannot_be_queued_marks_the_new_track_failed(sio, services, monkeypatch):
    real_submit = services.queue.submit

    def submit(job):
        if job.kind == "stems":
            raise QueueFull("the queue is full (32 jobs waiting)")
        return real_submit(job)

    monkeypatch.setattr(services.queue, "submit", submit)
    job_id = generate(sio, "all")
    services.worker.run_once(timeout=1)
    done = sio.wait("postprocess_done", where=lambda p: p["job_id"] == job_id)
    assert done["state"] == "failed" and done["error"]["type"] == "queue_full"
    meta = services.store.get(done["name"]).meta
    assert meta["postprocess"]["status"] == "failed"
    assert meta["parameters"]["stem_split"]["status"] == "failed"
    assert "queue is full" in meta["postprocess"]["tasks"][0]["error"]


def test_request_stems_splits_a_track_once(sio, services, running_worker):
    name = make_track(services)
    ack = request_stems(sio, {"name": name, "target": "drums"})
    assert ack["ok"] and ack["name"] == name and ack["target"] == "drums"
    again = request_stems(sio, {"name": name})
    assert not again["ok"] and again["error"]["type"] in ("busy", "already_split")
    done = sio.wait("postprocess_done", where=lambda p: p["job_id"] == ack["job_id"])
    assert [stem["name"] for stem in done["stems"]] == ["drums", "no_drums"]
    later = request_stems(sio, {"json": f"static/audio/{name}.json", "target": "all"})  # the original shape
    assert later == {"ok": False, "error": {"type": "already_split", "field": "name",
                                            "message": "this track already has stems"}}
    assert sio.named("request_error")[-1]["event"] == "request_stems"


@pytest.mark.parametrize("payload", [{"name": name} for name in HOSTILE_NAMES] + [
    {"json": "static/audio/../../sentinel.json"}, {"name": ["x"]}, {"name": None}, "x", None])
def test_request_stems_refuses_hostile_names(sio, services, sentinels, payload):
    ack = request_stems(sio, payload)
    assert not ack["ok"] and ack["error"]["type"] in ("not_found", "invalid_request")
    assert services.queue.pending_count() == 0
    assert_untouched(sentinels)


@pytest.mark.parametrize("target", ["vocalz", "../x", 3, "none"])
def test_request_stems_refuses_unknown_targets(sio, services, target):
    ack = request_stems(sio, {"name": make_track(services), "target": target})
    assert not ack["ok"] and ack["error"]["field"] == "target"


def test_demucs_failing_mid_job_leaves_nothing_half_done_and_the_worker_goes_on(sio, services, running_worker,
                                                                                monkeypatch):
    from demucs.htdemucs import HTDemucs

    real_forward, calls = HTDemucs.forward, []

    def forward_then_fail(self, mix):
        calls.append(1)
        if len(calls) == 2:  # the second chunk of the first job
            raise RuntimeError("demucs exploded mid-job")
        return real_forward(self, mix)

    monkeypatch.setattr(HTDemucs, "forward", forward_then_fail)
    name = make_track(services, seconds=2.0)
    first = request_stems(sio, {"name": name})
    failed = sio.wait("postprocess_done", where=lambda p: p["job_id"] == first["job_id"])
    assert failed["state"] == "failed" and failed["name"] == name and failed["task"] == "stem_split"
    assert failed["error"] == {"type": "RuntimeError", "message": "demucs exploded mid-job"}
    assert not (services.store.stems_dir / name).exists() and leftovers(services.store.root) == []
    meta = services.store.get(name).meta
    assert meta["postprocess"]["status"] == "failed"
    assert meta["postprocess"]["tasks"][0]["status"] == "failed"
    assert meta["postprocess"]["tasks"][0]["error"] == "demucs exploded mid-job"
    assert meta["parameters"]["stem_split"]["status"] == "failed"

    second = request_stems(sio, {"name": name})  # a failed split may be retried
    assert second["ok"]
    done = sio.wait("postprocess_done", where=lambda p: p["job_id"] == second["job_id"])
    assert done["state"] == "done" and running_worker.alive
    assert services.store.get(name).meta["postprocess"]["status"] == "done"


def test_deleting_a_track_while_it_is_split_leaves_no_stems_behind(sio, services, monkeypatch):
    name = make_track(services)
    separate = services.stems.splitter.separate

    def separate_then_delete(*args):
        separation = separate(*args)
        services.store.delete(name)  # the user deletes the track while the stems are being written
        return separation

    monkeypatch.setattr(services.stems.splitter, "separate", separate_then_delete)
    ack = request_stems(sio, {"name": name})
    services.worker.run_once(timeout=1)
    done = sio.wait("postprocess_done", where=lambda p: p["job_id"] == ack["job_id"])
    assert done["state"] == "failed" and "deleted" in done["error"]["message"]
    assert list(services.store.stems_dir.iterdir()) == [] and leftovers(services.store.root) == []


def test_cancelling_a_running_split_leaves_no_folder(sio, services, running_worker, monkeypatch):
    from demucs.htdemucs import HTDemucs

    real_forward = HTDemucs.forward

    def slow_forward(self, mix):
        time.sleep(0.15)
        return real_forward(self, mix)

    monkeypatch.setattr(HTDemucs, "forward", slow_forward)
    name = make_track(services, seconds=3.0)
    ack = request_stems(sio, {"name": name})
    sio.wait("stem_progress", where=lambda p: p["job_id"] == ack["job_id"] and p["phase"] == "separating")
    assert sio.client.emit("cancel_job", {"job_id": ack["job_id"]}, callback=True)["outcome"] == "cancelling"
    done = sio.wait("postprocess_done", where=lambda p: p["job_id"] == ack["job_id"])
    assert done["state"] == "cancelled" and done["name"] == name
    assert not (services.store.stems_dir / name).exists() and leftovers(services.store.root) == []
    assert services.store.get(name).meta["postprocess"]["status"] == "cancelled"


def test_a_split_cancelled_in_the_queue_is_closed_and_can_be_asked_again(sio, client, services):
    name = make_track(services)
    ack = request_stems(sio, {"name": name})
    assert sio.client.emit("cancel_job", {"job_id": ack["job_id"]}, callback=True)["outcome"] == "removed"
    task = client.get(f"/api/stems/{name}").get_json()["task"]
    assert task["status"] == "cancelled"
    assert services.store.get(name).meta["postprocess"]["status"] == "cancelled"
    closed = sio.wait("postprocess_done", where=lambda p: p["job_id"] == ack["job_id"])
    assert closed["state"] == "cancelled" and closed["name"] == name
    assert request_stems(sio, {"name": name})["ok"]


def test_a_split_running_at_a_crash_is_marked_failed_after_restart(make_app, fake_engine, sio, services):
    name = make_track(services)
    request_stems(sio, {"name": name})
    services.queue.take()  # the worker took it ... and the server died
    restarted = make_app({"DEMUCS_SHIFTS": 0}, engine=fake_engine).extensions["audiocraft_webui"]
    meta = restarted.store.get(name).meta
    assert meta["postprocess"]["status"] == "failed"
    assert "server stopped" in meta["postprocess"]["tasks"][0]["error"]


def test_unload_after_gen_releases_demucs_after_each_split(make_app, fake_engine):
    services = make_app({"DEMUCS_SHIFTS": 0, "UNLOAD_AFTER_GEN": True}, engine=fake_engine).extensions[
        "audiocraft_webui"]
    job, _ = services.stems.request_track_split(make_track(services), "all")
    services.worker.run_once(timeout=1)
    assert job.state is JobState.DONE and services.stems.splitter._separator is None


# ---- any file ------------------------------------------------------------------------------------------


def upload(client, data: bytes, filename: str = "song.wav"):
    """POST a file to /upload_demucs_any."""
    return client.post("/upload_demucs_any", data={"file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_any_file_upload_accepts_each_audio_format(client, services, fmt):
    response = upload(client, audio_bytes(noise(0.5, 44100), 44100, fmt), f"x.{fmt}")
    assert response.status_code == 200 and response.get_json()["format"] == fmt
    assert services.uploads.info(response.get_json()["id"]).purpose == "demucs"


def test_any_file_is_split_into_stems_any_without_a_track(sio, client, services, running_worker):
    fmt = "mp3"  # decoded, resampled 32 -> 44.1 kHz and mono -> stereo on the way in
    data = audio_bytes(noise(1.0, 32000, channels=1), 32000, fmt)
    response = upload(client, data, f"Мой трек.{fmt}")
    assert response.status_code == 200, response.get_json()
    info = response.get_json()
    ack = sio.client.emit("demucs_any", {"id": info["id"]}, callback=True)
    assert ack["ok"] and ack["upload"] == info["id"] and ack["display_name"] == f"Мой трек.{fmt}"
    done = sio.wait("demucs_any_done", where=lambda p: p["job_id"] == ack["job_id"])
    key = info["id"].split(".")[0]
    assert done["state"] == "done" and done["id"] == key and done["display_name"] == f"Мой трек.{fmt}"
    assert [stem["name"] for stem in done["stems"]] == FOUR
    assert done["stems"][0]["url"] == f"/static/stems_any/{key}/vocals.wav"
    bar = [p for p in sio.named("demucs_any_progress") if p["job_id"] == ack["job_id"]]
    assert bar and bar[-1]["progress"] == 1.0 and all(p["id"] == key for p in bar)
    written = sorted(p.name for p in (services.stems.any.root / key).iterdir())
    assert written == sorted(f"{stem}.wav" for stem in FOUR)
    assert services.store.list_tracks() == [] and list(services.store.audio_dir.iterdir()) == []
    assert not sio.client.emit("demucs_any", {"id": info["id"]}, callback=True)["ok"]  # already split


def test_an_any_file_split_removed_from_the_queue_ends_with_its_own_event(sio, client, services):
    info = upload(client, audio_bytes(noise(0.5, 44100), 44100, "wav")).get_json()
    ack = sio.client.emit("demucs_any", {"id": info["id"]}, callback=True)
    assert sio.client.emit("cancel_job", {"job_id": ack["job_id"]}, callback=True)["outcome"] == "removed"
    closed = sio.wait("demucs_any_done", where=lambda p: p["job_id"] == ack["job_id"])
    assert closed["state"] == "cancelled" and closed["upload"] == info["id"]
    assert not [p for p in sio.named("postprocess_done") if p["job_id"] == ack["job_id"]]


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"just some text, not audio at all" * 10, ""),
    (audio_bytes(noise(1.0), 32000, "wav")[:200], ""),  # truncated RIFF
    (b"\x89PNG\r\n\x1a\n" + bytes(500), ""),
    (audio_bytes(noise(1201, 8000, channels=1) * 0, 8000, "flac"), "1200"),  # 20 min of silence: too long
])
def test_bad_any_files_get_a_clear_4xx_and_leave_nothing(client, services, data, message):
    response = upload(client, data, "bad.wav")
    body = response.get_json()
    assert 400 <= response.status_code < 500 and body["ok"] is False and message in body["error"]
    assert [p.name for p in services.uploads.folder.iterdir()] == []


def test_demucs_any_refuses_unknown_and_hostile_ids(sio, services, sentinels):
    for bad in ["0" * 32 + ".wav", "../../sentinel", "/etc/passwd", None, 5]:
        ack = sio.client.emit("demucs_any", {"id": bad}, callback=True)
        assert not ack["ok"] and ack["error"]["field"] == "id"
    assert services.queue.pending_count() == 0
    assert_untouched(sentinels)
