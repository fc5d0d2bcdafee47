"""The REST API's queue routes through Flask's test client: submit, read, list, cancel, and the event stream.

Generation runs on the numpy FakeEngine; validation is the real one, compared with the Socket.IO event's.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os

import pytest

from audiocraft_webui import protocol
from audiocraft_webui.jobs import Job
from audiocraft_webui.protocol import GenerationRequest
from audiocraft_webui.web.api.schemas import GenerationBody
from tests.fakes import FakeEngine

BODY = {"prompt": "dreamy synthwave", "model": "small", "duration": 1, "top_p": 0, "seed": 7}
JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def fake_engine() -> FakeEngine:
    """A fast numpy generation engine."""
    return FakeEngine()


@pytest.fixture
def app(make_app, fake_engine):
    """An app on the fake engine."""
    return make_app(engine=fake_engine)


def post(client, body: object, path: str = "/api/v1/generations", **headers):
    """POST a JSON body as a script would (no Origin)."""
    return client.post(path, data=json.dumps(body), headers={**JSON_HEADERS, **headers})


def events_of(text: str) -> list[tuple[str, dict]]:
    """The events of a Server-Sent Events body, without comments."""
    parsed = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if lines:
            parsed.append((lines["event"], json.loads(lines["data"])))
    return parsed


def wait_done(client, job_id: str) -> dict:
    """Follow the job's event stream to its end and return its final view."""
    answer = client.get(f"/api/v1/jobs/{job_id}/events")
    assert answer.status_code == 200 and answer.mimetype == "text/event-stream"
    name, final = events_of(answer.get_data(as_text=True))[-1]
    assert name == "job"
    return final


def test_a_generation_is_queued_runs_and_its_result_names_the_track(client, sio, services, running_worker):
    answer = post(client, BODY)
    assert answer.status_code == 202, answer.get_json()
    created = answer.get_json()
    assert created["position"] == 1 and created["seed"] == 7 and created["clamped"] == {}
    assert answer.headers["Location"] == f"/api/v1/jobs/{created['job_id']}"
    # Every open page sees it like one of its own.
    added = sio.wait("add_to_queue", where=lambda p: p["job_id"] == created["job_id"])
    assert added["prompt"] == "dreamy synthwave"
    sio.wait("on_finish_audio", where=lambda p: p["job_id"] == created["job_id"])

    job = client.get(f"/api/v1/jobs/{created['job_id']}").get_json()
    assert job["state"] == "done" and job["progress"] == 1.0 and job["position"] is None and job["error"] is None
    result = job["result"]
    assert result["seed"] == 7 and result["meta"]["prompt"] == "dreamy synthwave"
    assert result["audio_url"] == f"/static/audio/{result['name']}.wav"
    assert result["json_url"] == f"/static/audio/{result['name']}.json"
    assert client.get(result["audio_url"]).status_code == 200
    listed = client.get("/api/v1/jobs").get_json()
    assert listed["running"] is None and listed["queued"] == [] and listed["max"] == 32
    assert listed["recent"][0]["job_id"] == created["job_id"] and listed["recent"][0]["result"]["meta"] is None
    assert services.store.load_last_run()["prompt"] == "dreamy synthwave"


def test_out_of_range_values_are_clamped_and_reported_like_on_the_socket(client, services):
    answer = post(client, {**BODY, "duration": 0, "temperature": 9})
    assert answer.status_code == 202
    assert answer.get_json()["clamped"] == {"duration": {"requested": 0.0, "used": 1},
                                            "temperature": {"requested": 9.0, "used": 2.0}}
    job = services.queue.get(answer.get_json()["job_id"])
    assert job.task.request.duration == 1 and job.owner is not None


BAD_BODIES = [
    {"prompt": ["a", "list"]},
    {"prompt": "   "},
    {"prompt": "x" * 2001},
    {"prompt": "a", "model": "../../etc/passwd"},
    {"prompt": "a", "duration": float("nan")},
    {"prompt": "a", "seed": 2**40},
    {"prompt": "a", "seed": "x"},
    {"prompt": "a", "format": "exe"},
    {"prompt": "a", "loudness": "+6"},
    {"prompt": "a", "sample_rate": 12345},
    {"prompt": "a", "keep_mono": "maybe"},
    {"prompt": "a", "audio_prompt": "../../x.wav", "model": "melody"},
    {"prompt": "a", "audio_prompt": "0" * 32 + ".wav"},
    {"prompt": "a", "continuation": "http://169.254.169.254/"},
    {"prompt": "a", "continuation": "0" * 32 + ".wav"},
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_a_bad_body_gets_the_same_error_as_the_socket_event(client, sio, services, body):
    answer = post(client, body)
    assert answer.status_code == 400, answer.get_json()
    error = answer.get_json()["error"]
    socket_body = {**body, "appendContinuation": "continuation" in body}
    ack = sio.client.emit(protocol.SUBMIT_SLIDERS, socket_body, callback=True)
    assert not ack["ok"] and error == ack["error"]
    assert services.queue.snapshot()["queued"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"prompt": "a", "values": {"duration": 1}}, "values"),
    ({"prompt": "a", "appendContinuation": True}, "appendContinuation"),
    ({"prompt": "a", "temprature": 1}, "temprature"),
    (["prompt"], "body"),
    ("prompt", "body"),
])
def test_unknown_fields_and_bodies_that_are_not_objects_are_refused_by_name(client, services, body, field):
    answer = post(client, body)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == field and answer.get_json()["error"]["type"] == "invalid_request"
    assert services.queue.snapshot()["queued"] == []


def test_only_json_bodies_are_accepted(client, services):
    form = client.post("/api/v1/generations", data={"prompt": "a"})
    plain = client.post("/api/v1/generations", data='{"prompt": "a"}', headers={"Content-Type": "text/plain"})
    broken = client.post("/api/v1/generations", data="{", headers=JSON_HEADERS)
    huge = post(client, {"prompt": "a", "artist": "x" * 1_100_000})
    assert form.status_code == plain.status_code == 415
    assert form.get_json()["error"]["type"] == "unsupported_media_type"
    assert broken.status_code == 400 and broken.get_json()["error"]["field"] == "body"
    assert huge.status_code == 413 and huge.get_json()["error"]["type"] == "too_large"
    assert services.queue.snapshot()["queued"] == []


def test_a_model_that_is_not_here_offline_is_a_422_and_a_full_queue_a_429(make_app, tmp_path, monkeypatch):
    app = make_app({"QUEUE_MAX": 1}, engine=FakeEngine())
    client = app.test_client()
    monkeypatch.setenv("AUDIOCRAFT_CACHE_DIR", str(tmp_path / "empty"))
    unavailable = post(client, BODY)
    assert unavailable.status_code == 422 and unavailable.get_json()["error"]["type"] == "model_unavailable"
    monkeypatch.delenv("AUDIOCRAFT_CACHE_DIR")
    assert post(client, BODY).status_code == 202
    full = post(client, BODY)
    assert full.status_code == 429 and full.get_json()["error"]["type"] == "queue_full"


def test_the_event_stream_carries_the_socket_events_between_two_job_views(client, sio, services, running_worker):
    job_id = post(client, BODY).get_json()["job_id"]
    answer = client.get(f"/api/v1/jobs/{job_id}/events")
    events = events_of(answer.get_data(as_text=True))
    names = [name for name, _ in events]
    assert names[0] == "job" and names[-1] == "job" and "on_finish_audio" in names
    assert names.index("job_started") < names.index("progress") < names.index("on_finish_audio")
    assert all(payload["job_id"] == job_id for name, payload in events[1:-1])
    assert "audio_preview" not in names
    progress = [payload["progress"] for name, payload in events if name == "progress"]
    assert progress == sorted(progress) and progress[-1] == 1.0
    socket_progress = [p for p in sio.named("progress") if p["job_id"] == job_id]
    assert [p for name, p in events if name == "progress"] == socket_progress
    assert events[-1][1]["state"] == "done" and events[-1][1]["result"]["seed"] == 7
    # A job already over gets its view only; the subscription is gone either way.
    again = events_of(client.get(f"/api/v1/jobs/{job_id}/events").get_data(as_text=True))
    assert [name for name, _ in again] == ["job"] and again[0][1]["state"] == "done"
    assert services.emit.events.open == 0


def test_a_client_that_leaves_the_stream_costs_nothing(client, services):
    job_id = post(client, BODY).get_json()["job_id"]  # queued, no worker: the stream would wait
    answer = client.get(f"/api/v1/jobs/{job_id}/events", buffered=False)
    first = next(answer.response)
    assert first.startswith(b"event: job") and services.emit.events.open == 1
    answer.close()
    assert services.emit.events.open == 0


def test_too_many_streams_is_a_429_and_an_unknown_job_a_404(client, services, monkeypatch):
    missing = client.get("/api/v1/jobs/nope/events")
    assert missing.status_code == 404 and missing.get_json()["error"]["type"] == "not_found"
    assert services.emit.events.open == 0
    monkeypatch.setattr(services.emit.events, "_limit", 0)
    job_id = post(client, BODY).get_json()["job_id"]
    refused = client.get(f"/api/v1/jobs/{job_id}/events")
    assert refused.status_code == 429 and refused.get_json()["error"]["type"] == "too_many_streams"


def test_cancel_removes_a_waiting_job_and_every_page_hears_it(client, sio, services):
    job_id = post(client, BODY).get_json()["job_id"]
    answer = client.delete(f"/api/v1/jobs/{job_id}")
    assert answer.status_code == 200 and answer.get_json() == {"job_id": job_id, "outcome": "removed"}
    heard = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == job_id)
    assert heard["state"] == "cancelled"
    assert client.get(f"/api/v1/jobs/{job_id}").get_json()["state"] == "cancelled"
    again = client.delete(f"/api/v1/jobs/{job_id}")
    assert again.status_code == 409 and again.get_json()["error"]["type"] == "finished"
    assert client.delete("/api/v1/jobs/nope").status_code == 404


def test_cancel_stops_a_running_job_within_a_step(client, services, fake_engine, running_worker):
    fake_engine.hold_at = 5
    job_id = post(client, BODY).get_json()["job_id"]
    assert fake_engine.held.wait(10)
    running = client.get(f"/api/v1/jobs/{job_id}").get_json()
    assert running["state"] == "running" and running["position"] == 0
    answer = client.delete(f"/api/v1/jobs/{job_id}")
    assert answer.get_json()["outcome"] == "cancelling"
    fake_engine.proceed.set()
    final = wait_done(client, job_id)
    assert final["state"] == "cancelled" and final["error"]["type"] == "cancelled"
    assert services.store.list_tracks() == []


def test_on_a_shared_server_the_api_cancels_only_its_own_jobs_unless_local(make_app):
    app = make_app({"HOST": "0.0.0.0", "AUTH_TOKEN": "login", "API_TOKEN": "k" * 24}, engine=FakeEngine())
    services = app.extensions["audiocraft_webui"]
    client = app.test_client()
    remote = {"REMOTE_ADDR": "192.168.1.5"}
    auth = {**JSON_HEADERS, "Authorization": "Bearer " + "k" * 24}
    parsed = protocol.parse_generation_request(BODY, services.catalog)
    page_job: Job
    page_job, _ = services.enqueue_generation(parsed, None, "a-page-owner-tag")
    own = client.post("/api/v1/generations", data=json.dumps(BODY), headers=auth, environ_base=remote).get_json()
    refused = client.delete(f"/api/v1/jobs/{page_job.id}", headers=auth, environ_base=remote)
    assert refused.status_code == 403 and refused.get_json()["error"]["type"] == "forbidden"
    assert client.delete(f"/api/v1/jobs/{own['job_id']}", headers=auth, environ_base=remote).status_code == 200
    local = client.delete(f"/api/v1/jobs/{page_job.id}", headers=auth, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert local.status_code == 200


def test_the_documented_body_is_the_request_the_shared_validator_builds(services):
    stored = {field.name: field.default for field in dataclasses.fields(GenerationRequest) if field.name != "clamped"}
    assert set(GenerationBody.model_fields) == set(stored)
    defaults = {name: default for name, default in stored.items() if default is not dataclasses.MISSING}
    assert {name: GenerationBody.model_fields[name].default for name in defaults} == defaults
    described = GenerationBody(prompt="x").model_dump()
    assert protocol.parse_generation_request(described, services.catalog).as_json() == \
        {**defaults, "prompt": "x", "model": "small"}
    schema = GenerationBody.model_json_schema()["properties"]
    for name, options in (("format", protocol.FORMATS), ("sample_rate", protocol.SAMPLE_RATES),
                          ("stem_split", protocol.STEM_TARGETS), ("loudness", protocol.LOUDNESS_TARGETS)):
        assert schema[name]["enum"] == list(options)
        for option in options:  # every documented choice is accepted
            protocol.parse_generation_request({**described, name: option}, services.catalog)


@pytest.mark.parametrize(("code", "status", "kind"),
                         [(errno.ENOSPC, 507, "disk_full"), (errno.EROFS, 500, "read_only")])
def test_a_data_folder_that_cannot_be_written_refuses_the_submit_without_a_path(client, services, monkeypatch,
                                                                                code, status, kind):
    def fail(_record: dict) -> None:
        raise OSError(code, os.strerror(code), str(services.store.root / "settings" / "last_run.json"))

    monkeypatch.setattr(services.store, "save_last_run", fail)
    answer = post(client, BODY)
    assert answer.status_code == status and answer.get_json()["error"]["type"] == kind
    assert str(services.store.root) not in answer.get_data(as_text=True)
    assert services.queue.snapshot()["queued"] == []
