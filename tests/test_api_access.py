"""Who may call the REST API: Host and Origin as for the page, and the bearer token with a login or --api-token.

Also the in-process event fan-out the API's event streams read, and the emitter feeding it.
"""
from __future__ import annotations

import json
import threading

import pytest

from audiocraft_webui.fanout import JobEvents, TooManySubscriptions
from audiocraft_webui.web.security import LOGIN_FAILURES
from tests.fakes import FakeEngine

API_TOKEN = "a" * 32
LOGIN = "login-token-1234"
BODY = json.dumps({"prompt": "a", "duration": 1})
JSON_HEADERS = {"Content-Type": "application/json"}
#: A call of each method on the API (path, method, body).
CALLS = [("/api/v1/generations", "POST", BODY), ("/api/v1/jobs/x", "DELETE", None),
         ("/api/v1/tracks/x", "PATCH", '{"favorite": true}'), ("/api/v1/tracks/x/stems", "POST", "{}")]


@pytest.fixture
def listening(make_app):
    """An app listening on the network with a login token and the API token."""
    return make_app({"HOST": "0.0.0.0", "AUTH_TOKEN": LOGIN, "API_TOKEN": API_TOKEN}, engine=FakeEngine())


def bearer(token: str) -> dict:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(("path", "method", "body"), CALLS)
@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                     {"Origin": "http://localhost:8080"}, {"Sec-Fetch-Site": "cross-site"}])
def test_another_site_cannot_change_anything(client, services, path, method, body, headers):
    answer = client.open(path, method=method, data=body, headers={**JSON_HEADERS, **headers})
    assert answer.status_code == 403
    assert answer.get_json()["error"]["type"] == "cross_site"
    assert services.queue.snapshot()["queued"] == []


def test_a_rebinding_host_is_refused_and_the_same_site_passes(client):
    refused = client.get("/api/v1/jobs", headers={"Host": "evil.example:5000"})
    assert refused.status_code == 400 and refused.get_json()["error"]["type"] == "bad_host"
    same = client.post("/api/v1/generations", data=BODY,
                       headers={**JSON_HEADERS, "Origin": "http://localhost", "Host": "localhost"})
    assert same.status_code == 202


def test_listening_every_api_call_needs_the_api_token(listening):
    client = listening.test_client()
    for headers in ({}, bearer(LOGIN), bearer(API_TOKEN + "x"), {"Authorization": "Basic eDp5"}):
        answer = client.get("/api/v1/jobs", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.get_json()["error"]["type"] == "login_required"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    # A logged-in page (cookie) still needs the token for the API, and can read it.
    assert client.get(f"/?token={LOGIN}").status_code == 303
    assert client.get("/api/v1/jobs").status_code == 401
    assert client.get("/api/v1/token").get_json() == {"token": API_TOKEN, "required": True}
    assert client.get("/api/v1/openapi.json").status_code == 200 and client.get("/api/v1/docs").status_code == 200
    assert client.get("/api/v1/jobs", headers=bearer(API_TOKEN)).status_code == 200
    queued = client.post("/api/v1/generations", data=BODY, headers={**JSON_HEADERS, **bearer(API_TOKEN)})
    assert queued.status_code == 202


def test_listening_without_a_login_the_token_and_the_document_are_closed(listening):
    client = listening.test_client()
    for path in ("/api/v1/token", "/api/v1/openapi.json", "/api/v1/docs"):
        assert client.get(path).status_code == 401, path


def test_a_drawn_token_when_listening_without_one(make_app):
    app = make_app({"HOST": "0.0.0.0", "AUTH_BASIC": "ann:s3cret"}, engine=FakeEngine())
    client = app.test_client()
    token = client.get("/api/v1/token", headers={"Authorization": "Basic YW5uOnMzY3JldA=="}).get_json()["token"]
    assert token and len(token) >= 32
    assert client.get("/api/v1/jobs", headers=bearer(token)).status_code == 200


def test_an_api_token_on_loopback_is_required_too(make_app):
    client = make_app({"API_TOKEN": API_TOKEN}, engine=FakeEngine()).test_client()
    assert client.get("/api/v1/models").status_code == 401
    assert client.get("/api/v1/models", headers=bearer(API_TOKEN)).status_code == 200
    assert client.get("/api/tracks").status_code == 200, "the page's own routes stay open on loopback"


def test_guessing_the_token_is_throttled_per_address(listening):
    client = listening.test_client()
    here, there = {"REMOTE_ADDR": "10.0.0.7"}, {"REMOTE_ADDR": "10.0.0.8"}
    for _ in range(LOGIN_FAILURES):
        assert client.get("/api/v1/jobs", headers=bearer("guess"), environ_base=here).status_code == 401
    locked = client.get("/api/v1/jobs", headers=bearer(API_TOKEN), environ_base=here)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert locked.get_json()["error"]["type"] == "too_many_logins"
    assert client.get("/api/v1/jobs", headers=bearer(API_TOKEN), environ_base=there).status_code == 200


def test_the_fan_out_keeps_order_bounds_its_buffer_and_forgets_closed_subscriptions():
    events = JobEvents(buffered=3, limit=2)
    first, other = events.subscribe("job1"), events.subscribe("job2")
    with pytest.raises(TooManySubscriptions):
        events.subscribe("job3")
    for index in range(5):
        events.publish("progress", {"job_id": "job1", "progress": index})
    events.publish("queue_state", {"running": None})
    events.publish("progress", [1, 2])
    assert [first.next(0)[1]["progress"] for _ in range(3)] == [2, 3, 4]
    assert first.next(0) is None and other.next(0) is None
    first.close()
    first.close()
    assert events.open == 1
    events.subscribe("job3").close()
    late: list = []
    reader = threading.Thread(target=lambda: late.append(other.next(5)))
    reader.start()
    events.publish("on_finish_audio", {"job_id": "job2", "state": "done"})
    reader.join(5)
    assert late == [("on_finish_audio", {"job_id": "job2", "state": "done"})]


def test_the_emitter_feeds_job_events_but_never_preview_audio(services):
    subscription = services.emit.events.subscribe("j1")
    services.emit("audio_preview", {"job_id": "j1", "pcm": b"\0\0"})
    services.emit("progress", {"job_id": "j1", "progress": 0.5}, to="some-sid")
    assert subscription.next(0) == ("progress", {"job_id": "j1", "progress": 0.5})
    assert subscription.next(0) is None
    subscription.close()
