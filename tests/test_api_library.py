"""The REST API's library routes through Flask's test client: models, tracks, flags, delete, uploads, stems, token.

Tracks are committed straight into the store; splits run the real tiny Demucs (tests/stems_kit.py).
"""
from __future__ import annotations

import io
import json
from urllib.parse import quote

import pytest

from tests.stems_kit import (  # noqa: F401 - fixtures
    HOSTILE_NAMES,
    app,
    assert_untouched,
    audio_bytes,
    fake_engine,
    make_stem_set,
    noise,
    sentinels,
)
from tests.test_library import commit
from tests.test_security_paths import ROW1_NAMES

JSON_HEADERS = {"Content-Type": "application/json"}


def send(client, method: str, path: str, body: object = None):
    """Call the API with a JSON body (or none) as a script would."""
    if body is None:
        return client.open(path, method=method)
    return client.open(path, method=method, data=json.dumps(body), headers=JSON_HEADERS)


def upload(client, data: bytes, purpose: str | None = "continuation", name: str = "clip.wav"):
    """POST a file to the upload route."""
    form: dict = {"file": (io.BytesIO(data), name)}
    if purpose is not None:
        form["purpose"] = purpose
    return client.post("/api/v1/uploads", data=form, content_type="multipart/form-data")


def test_models_are_the_catalogue_with_what_is_here(client):
    models = client.get("/api/v1/models").get_json()["models"]
    assert models == client.get("/api/models").get_json()
    assert {"small", "melody"} <= {model["key"] for model in models}


def test_tracks_are_listed_newest_first_filtered_and_paged(client, services):
    commit(services, "small_a", prompt="warm lofi piano", created="2025-08-19T10:00:00")
    commit(services, "small_b", prompt="dark techno", created="2025-08-20T10:00:00", favorite=True)
    commit(services, "medium_c", prompt="warm strings", model="medium", created="2025-08-21T10:00:00")
    everything = client.get("/api/v1/tracks").get_json()
    assert [track["name"] for track in everything["tracks"]] == ["medium_c", "small_b", "small_a"]
    assert (everything["total"], everything["limit"], everything["offset"]) == (3, 50, 0)
    first = everything["tracks"][0]
    assert first["audio_url"] == "/static/audio/medium_c.wav" and first["json_url"] == "/static/audio/medium_c.json"
    assert first["meta"]["prompt"] == "warm strings" and client.get(first["audio_url"]).status_code == 200

    def names(query: str) -> list[str]:
        return [track["name"] for track in client.get(f"/api/v1/tracks?{query}").get_json()["tracks"]]

    assert names("q=warm") == ["medium_c", "small_a"]
    assert names("model=small&favorite=false") == ["small_a"]
    assert names("sort=name&order=asc&limit=2") == ["medium_c", "small_a"]
    page = client.get("/api/v1/tracks?limit=1&offset=1").get_json()
    assert [t["name"] for t in page["tracks"]] == ["small_b"] and page["total"] == 3 and page["limit"] == 1


@pytest.mark.parametrize("query", ["path=../../x", "sort=size", "favorite=yes", "limit=0", "since=yesterday",
                                   "seed=-1", "q=" + "x" * 201])
def test_bad_queries_are_refused_by_name(client, query):
    answer = client.get(f"/api/v1/tracks?{query}")
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == query.split("=")[0]


def test_one_track_is_read_flagged_and_deleted_and_every_page_hears_it(client, sio, services):
    name = commit(services, "small_a")
    assert client.get(f"/api/v1/tracks/{name}").get_json()["meta"]["prompt"] == "warm lofi piano"
    flagged = send(client, "PATCH", f"/api/v1/tracks/{name}", {"favorite": True, "locked": True})
    assert flagged.status_code == 200 and flagged.get_json()["meta"]["favorite"] is True
    assert sio.wait("tracks_changed", where=lambda p: "updated" in p)["updated"]["name"] == name
    locked = send(client, "DELETE", f"/api/v1/tracks/{name}")
    assert locked.status_code == 409 and locked.get_json()["error"]["type"] == "locked"
    send(client, "PATCH", f"/api/v1/tracks/{name}", {"locked": False})
    deleted = send(client, "DELETE", f"/api/v1/tracks/{name}")
    assert deleted.status_code == 200 and f"static/audio/{name}.wav" in deleted.get_json()["deleted"]
    assert sio.wait("tracks_changed", where=lambda p: "deleted" in p)["deleted"] == deleted.get_json()["deleted"]
    assert client.get(f"/api/v1/tracks/{name}").status_code == 404


@pytest.mark.parametrize(("body", "field"), [({"favorite": "true"}, "favorite"), ({"locked": 1}, "locked"),
                                             ({"path": "x"}, "path"), ({}, "payload"), ([True], "payload")])
def test_bad_flags_are_refused_by_name_and_change_nothing(client, services, body, field):
    name = commit(services, "small_a")
    before = (services.store.audio_dir / f"{name}.json").read_bytes()
    answer = send(client, "PATCH", f"/api/v1/tracks/{name}", body)
    assert answer.status_code == 400 and answer.get_json()["error"]["field"] == field
    assert (services.store.audio_dir / f"{name}.json").read_bytes() == before


def test_flags_only_as_json(client, services):
    name = commit(services, "small_a")
    assert client.patch(f"/api/v1/tracks/{name}", data={"favorite": "true"}).status_code == 415


@pytest.mark.parametrize("name", sorted(set(HOSTILE_NAMES + ROW1_NAMES) - {""}))
def test_hostile_names_reach_nothing(client, services, sentinels, name):
    track = commit(services, "small_a")
    make_stem_set(services.stems.tracks, track)
    quoted = quote(name, safe="")
    for method, path, body in [("GET", f"/api/v1/tracks/{quoted}", None),
                               ("PATCH", f"/api/v1/tracks/{quoted}", {"favorite": True}),
                               ("DELETE", f"/api/v1/tracks/{quoted}", None),
                               ("POST", f"/api/v1/tracks/{quoted}/stems", {}),
                               ("POST", f"/api/v1/uploads/{quoted}/stems", None),
                               ("GET", f"/api/v1/jobs/{quoted}", None),
                               ("DELETE", f"/api/v1/jobs/{quoted}", None),
                               ("GET", f"/api/v1/jobs/{quoted}/events", None)]:
        answer = send(client, method, path, body)
        assert answer.status_code in (404, 405), (method, path, answer.status_code)
        assert answer.get_json()["error"]["type"] in ("not_found", "method_not_allowed")
    assert [t.base for t in services.store.list_tracks()] == [track]
    assert len(services.stems.tracks.names(track)) == 4
    assert_untouched(sentinels)


def test_an_upload_is_stored_under_a_server_id_and_feeds_a_generation(client, services):
    answer = upload(client, audio_bytes(noise(1.0), 32000, "wav"), name="../../evil.wav")
    assert answer.status_code == 201, answer.get_json()
    info = answer.get_json()
    assert info["purpose"] == "continuation" and info["name"] == "evil.wav" and info["channels"] == 2
    assert (services.uploads.folder / info["id"]).is_file() and "filePath" not in info
    queued = send(client, "POST", "/api/v1/generations", {"prompt": "go on", "continuation": info["id"]})
    assert queued.status_code == 202, queued.get_json()
    job = services.queue.get(queued.get_json()["job_id"])
    assert job.task.request.continuation == info["id"]


@pytest.mark.parametrize(("data", "purpose", "status", "kind", "field"), [
    (b"", "melody", 422, "empty_file", "file"),
    (b"<svg onload=alert(1)>", "melody", 422, "invalid_audio", "file"),
    (b"RIFF", None, 400, "invalid_request", "purpose"),
    (b"RIFF", "../x", 400, "invalid_request", "purpose"),
])
def test_bad_uploads_are_refused_and_nothing_is_kept(client, services, data, purpose, status, kind, field):
    answer = upload(client, data, purpose)
    assert answer.status_code == status
    assert answer.get_json()["error"] == {**answer.get_json()["error"], "type": kind, "field": field}
    assert list(services.uploads.folder.iterdir()) == []


def test_an_upload_needs_a_multipart_body_with_a_file(client):
    assert send(client, "POST", "/api/v1/uploads", {"file": "x"}).status_code == 415
    missing = client.post("/api/v1/uploads", data={"purpose": "melody"}, content_type="multipart/form-data")
    assert missing.status_code == 400 and missing.get_json()["error"]["field"] == "file"


def test_a_track_and_an_upload_are_split_and_the_jobs_hold_their_stems(client, services, running_worker):
    name = commit(services, "small_a")
    queued = send(client, "POST", f"/api/v1/tracks/{name}/stems", {"target": "vocals"})
    assert queued.status_code == 202 and queued.get_json()["name"] == name and queued.get_json()["target"] == "vocals"
    busy = send(client, "POST", f"/api/v1/tracks/{name}/stems", {"target": "vocals"})
    assert busy.status_code == 409 and busy.get_json()["error"]["type"] in ("busy", "already_split")
    upload_id = upload(client, audio_bytes(noise(1.0), 32000, "wav"), "demucs").get_json()["id"]
    split = client.post(f"/api/v1/uploads/{upload_id}/stems")
    assert split.status_code == 202 and split.get_json()["id"] == upload_id.split(".")[0]
    for job_id in (queued.get_json()["job_id"], split.get_json()["job_id"]):
        text = client.get(f"/api/v1/jobs/{job_id}/events").get_data(as_text=True)
        final = json.loads(text.strip().rsplit("data: ", 1)[1])
        assert final["state"] == "done", final
        stems = final["result"]["stems"]
        assert stems and all(client.get(stem["url"]).status_code == 200 for stem in stems)
    assert {stem["name"] for stem in final["result"]["stems"]} == {"vocals", "drums", "bass", "other"}
    again = send(client, "POST", f"/api/v1/tracks/{name}/stems", {})
    assert again.status_code == 409 and again.get_json()["error"]["type"] == "already_split"


@pytest.mark.parametrize(("body", "field"), [({"target": "kazoo"}, "target"), ({"target": "all", "x": 1}, "body"),
                                             ("all", "body")])
def test_a_bad_stem_request_is_refused_by_name(client, services, body, field):
    name = commit(services, "small_a")
    answer = send(client, "POST", f"/api/v1/tracks/{name}/stems", body)
    assert answer.status_code == 400 and answer.get_json()["error"]["field"] == field
    assert client.post("/api/v1/uploads/0123456789abcdef0123456789abcdef.wav/stems", json={"x": 1}).status_code == 400


def test_the_token_route_says_none_is_needed_on_loopback_and_refuses_other_sites(client, make_app):
    assert client.get("/api/v1/token").get_json() == {"token": None, "required": False}
    assert client.get("/api/v1/token", headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.get("/api/v1/token", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    given = make_app({"API_TOKEN": "t" * 30}).test_client()
    assert given.get("/api/v1/token").get_json() == {"token": "t" * 30, "required": True}
