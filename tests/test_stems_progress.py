"""Stem split progress reaches the chat in all three cases: after a generation, on request and for an uploaded
file. Every progress event names its job and phase, climbs to 1.0 through the real phases, and reaches every tab.

Splits run the real tiny Demucs; generation uses the numpy FakeEngine (stems_kit).
"""
from __future__ import annotations

import io

from tests.conftest import EventLog
from tests.stems_kit import app, audio_bytes, fake_engine, make_track, noise  # noqa: F401 - fixtures

PHASES = ["reading", "loading_model", "separating", "writing"]


def assert_bar(log: EventLog, event: str, job_id: str, **fields) -> None:
    """One job's ``event`` bar: the job id and phase on every event, the four phases in order, 0 ... 1."""
    bar = [payload for payload in log.named(event) if payload["job_id"] == job_id]
    assert bar, f"no {event} for {job_id}"
    assert all(payload["phase"] in PHASES and {**payload, **fields} == payload for payload in bar), bar
    seen = list(dict.fromkeys(payload["phase"] for payload in bar))
    assert seen == PHASES, seen
    values = [payload["progress"] for payload in bar]
    assert values == sorted(values) and values[-1] == 1.0 and values[0] >= 0


def another_tab(app, client) -> EventLog:
    """A second connected tab."""
    return EventLog(app.extensions["socketio"].test_client(app, flask_test_client=client))


def test_a_split_after_a_generation_reports_to_every_tab(app, client, sio, running_worker):
    other = another_tab(app, client)
    ack = sio.client.emit("submit_sliders", {"prompt": "funk", "model": "small", "auto_tune": False,
                                             "stem_split": "drums", "values": {"duration": 1}}, callback=True)
    name = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == ack["job_id"])["name"]
    job_id = sio.wait("postprocess_queued", where=lambda p: p["name"] == name)["job_id"]
    sio.wait("postprocess_done", where=lambda p: p["job_id"] == job_id)
    other.wait("postprocess_done", where=lambda p: p["job_id"] == job_id)
    for log in (sio, other):
        for event in ("stem_progress", "postprocess_progress"):
            assert_bar(log, event, job_id, name=name, task="stem_split", target="drums", label=name)
    other.client.disconnect()


def test_a_split_on_request_reports_to_every_tab(app, client, sio, services, running_worker):
    other = another_tab(app, client)
    name = make_track(services)
    ack = sio.client.emit("request_stems", {"name": name, "target": "all"}, callback=True)
    assert ack["ok"], ack
    sio.wait("postprocess_done", where=lambda p: p["job_id"] == ack["job_id"])
    other.wait("postprocess_done", where=lambda p: p["job_id"] == ack["job_id"])
    for log in (sio, other):
        for event in ("stem_progress", "postprocess_progress"):
            assert_bar(log, event, ack["job_id"], name=name, task="stem_split", target="all")
    other.client.disconnect()


def test_a_split_of_an_uploaded_file_reports_to_every_tab(app, client, sio, running_worker):
    other = another_tab(app, client)
    data = audio_bytes(noise(1.0, 44100), 44100, "wav")
    upload = client.post("/upload_demucs_any", data={"file": (io.BytesIO(data), "take one.wav")}).get_json()
    ack = sio.client.emit("demucs_any", {"id": upload["id"]}, callback=True)
    assert ack["ok"], ack
    sio.wait("demucs_any_done", where=lambda p: p["job_id"] == ack["job_id"])
    other.wait("demucs_any_done", where=lambda p: p["job_id"] == ack["job_id"])
    for log in (sio, other):
        assert_bar(log, "demucs_any_progress", ack["job_id"], id=ack["id"], upload=upload["id"],
                   display_name="take one.wav", label="take one.wav")
    other.client.disconnect()
