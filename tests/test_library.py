"""The library's server side: favourite and lock flags, locked tracks under delete and clear-all, the filtered and
paged track list, and the record cache behind it.

Tracks are committed straight into the store (real WAV files); no generation is needed here.
"""
from __future__ import annotations

import json
import os
from urllib.parse import quote

import pytest

from audiocraft_webui.storage import tracks as tracks_module
from tests.stems_kit import (  # noqa: F401 - fixtures
    HOSTILE_NAMES,
    app,
    audio_bytes,
    fake_engine,
    make_stem_set,
    noise,
    sentinels,
)
from tests.test_security_paths import ROW1_NAMES

RATE = 32000
SAME_SITE = {"Host": "localhost", "Origin": "http://localhost"}


def commit(services, base: str, *, prompt: str = "warm lofi piano", model: str = "small", fmt: str = "wav",
           artist: str = "", seed: int = 1, created: str = "2025-08-19T14:05:31", **extra) -> str:
    """Commit a real track with a record shaped like a generated one; returns its name."""
    data = audio_bytes(noise(0.2, RATE), RATE, fmt)
    params = {"seed": seed, "format": fmt, **({"artist": artist} if artist else {})}
    meta = {"model": model, "prompt": prompt, "created": created, "parameters": params, "waveform": [0.1], **extra}
    return services.store.commit(base, fmt, lambda handle: handle.write(data), meta).base


def flags(client, name: str, body: object, **kwargs):
    """POST the flags of a track as a same-site page would."""
    kwargs.setdefault("data", json.dumps(body))
    kwargs.setdefault("content_type", "application/json")
    return client.post(f"/api/tracks/{quote(name, safe='')}/flags", headers=SAME_SITE, **kwargs)


def state_of(services, name: str) -> tuple[bytes, int, bytes, int]:
    """A track's JSON and audio, bytes and mtimes, to prove nothing changed."""
    folder = services.store.audio_dir
    audio = services.store.audio_of(name)
    json_path = folder / f"{name}.json"
    return json_path.read_bytes(), json_path.stat().st_mtime_ns, audio.read_bytes(), audio.stat().st_mtime_ns


def names(answer) -> list[str]:
    """The track names of a list answer."""
    assert answer.status_code == 200, answer.get_json()
    return [track["name"] for track in answer.get_json()]


# ---- favourite and lock ----------------------------------------------------------------------------------


def test_flags_are_set_in_the_record_and_every_tab_hears(app, client, services, sio):
    other = app.extensions["socketio"].test_client(app, flask_test_client=client)
    name = commit(services, "small_19082025_14_05")
    assert services.store.get(name).meta.get("favorite") is None, "absent means false"

    answer = flags(client, name, {"favorite": True})
    assert answer.status_code == 200 and answer.get_json()["ok"] is True
    track = answer.get_json()["track"]
    assert track["name"] == name and track["meta"]["favorite"] is True and "locked" not in track["meta"]
    on_disk = json.loads((services.store.audio_dir / f"{name}.json").read_text())
    assert on_disk["favorite"] is True and on_disk["prompt"] == "warm lofi piano"

    answer = flags(client, name, {"locked": True, "favorite": False})
    assert answer.get_json()["track"]["meta"] | {} == {**on_disk, "favorite": False, "locked": True}
    heard = [payload["updated"] for packet in other.get_received() if packet["name"] == "tracks_changed"
             for payload in packet["args"]]
    assert [(track["name"], track["meta"].get("favorite"), track["meta"].get("locked")) for track in heard] == [
        (name, True, None), (name, False, True)], "the other tab heard both changes, with the track"
    assert sio.wait("tracks_changed", where=lambda p: p["updated"]["meta"].get("locked"))["updated"]["name"] == name
    other.disconnect()


@pytest.mark.parametrize(("body", "field"), [
    ({"favorite": "true"}, "favorite"), ({"favorite": 1}, "favorite"), ({"locked": None}, "locked"),
    ({"locked": [True]}, "locked"), ({"favorite": {}}, "favorite"), ({"stars": 5}, "stars"),
    ({"favorite": True, "path": "../../x"}, "path"), ({}, "payload"), ([True], "payload"), ("favorite", "payload"),
    (None, "payload"),
])
def test_bad_flags_are_refused_by_name_and_change_nothing(client, services, body, field):
    name = commit(services, "small_19082025_14_05")
    before = state_of(services, name)
    answer = flags(client, name, body)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert answer.get_json()["ok"] is False and error["type"] == "invalid_request" and error["field"] == field
    assert error["message"]
    assert state_of(services, name) == before


@pytest.mark.parametrize("content_type,data", [("text/plain", '{"favorite": true}'),
                                               ("application/x-www-form-urlencoded", "favorite=true"),
                                               ("application/json", "{not json")])
def test_a_body_that_is_not_json_is_refused(client, services, content_type, data):
    name = commit(services, "small_19082025_14_05")
    before = state_of(services, name)
    answer = flags(client, name, None, data=data, content_type=content_type)
    assert answer.status_code == 400 and answer.get_json()["error"]["field"] == "payload"
    assert state_of(services, name) == before


@pytest.mark.parametrize("name", sorted(set(HOSTILE_NAMES + ROW1_NAMES) - {""}))
def test_hostile_or_unknown_names_reach_nothing(client, services, sentinels, name):
    real = commit(services, "small_19082025_14_05")
    before = state_of(services, real)
    answer = flags(client, name, {"locked": True}, follow_redirects=True)
    assert answer.status_code in (400, 404, 405)
    if answer.status_code == 404 and answer.is_json and isinstance(answer.get_json().get("error"), dict):
        assert answer.get_json()["error"]["type"] == "not_found"
    assert state_of(services, real) == before
    for path, mtime in sentinels:
        assert path.read_text() == "keep me" and path.stat().st_mtime == mtime


def test_an_unknown_track_is_a_404_with_the_error_object(client, services):
    answer = flags(client, "no_such_track", {"favorite": True})
    assert answer.status_code == 404
    assert answer.get_json() == {"ok": False, "error": {"type": "not_found", "field": "name",
                                                        "message": "no such track"}}


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"}])
def test_flags_from_another_site_are_refused_by_the_guard(client, services, headers):
    name = commit(services, "small_19082025_14_05")
    before = state_of(services, name)
    answer = client.post(f"/api/tracks/{name}/flags", data=json.dumps({"locked": True}),
                         content_type="application/json", headers={"Host": "localhost", **headers})
    assert answer.status_code == 403 and state_of(services, name) == before
    rebound = client.post(f"/api/tracks/{name}/flags", data=json.dumps({"locked": True}),
                          content_type="application/json",
                          headers={"Host": "evil.example", "Origin": "http://evil.example"})
    assert rebound.status_code == 400 and state_of(services, name) == before


# ---- locked tracks under delete and clear-all -----------------------------------------------------------


def test_a_locked_track_cannot_be_deleted_until_it_is_unlocked(client, services):
    name = commit(services, "small_19082025_14_05")
    make_stem_set(services.stems.tracks, name)
    flags(client, name, {"locked": True})
    before = state_of(services, name)

    answer = client.post("/delete_audio", json={"name": name}, headers=SAME_SITE)
    assert answer.status_code == 409
    body = answer.get_json()
    assert body["success"] is False and body["error_type"] == "locked" and "locked" in body["error"]
    assert state_of(services, name) == before and len(services.stems.tracks.names(name)) == 4

    flags(client, name, {"locked": False})
    assert client.post("/delete_audio", json={"name": name}, headers=SAME_SITE).status_code == 200
    assert services.store.get(name) is None and not (services.store.stems_dir / name).exists()


def test_clear_all_keeps_locked_tracks_with_their_stems_and_says_how_many(client, services, sio):
    keep = commit(services, "keep_01012025_10_00", fmt="flac")
    drop = commit(services, "drop_01012025_10_00")
    for name in (keep, drop):
        make_stem_set(services.stems.tracks, name)
    flags(client, keep, {"locked": True})
    before = state_of(services, keep)

    answer = client.post("/delete_all_audio", headers=SAME_SITE)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["kept"] == 1 and body["kept_names"] == [keep] and body["success"] is True
    assert f"static/audio/{drop}.json" in body["deleted"]
    assert not any(keep in path for path in body["deleted"])
    assert names(client.get("/api/tracks")) == [keep] and state_of(services, keep) == before
    assert len(services.stems.tracks.names(keep)) == 4 and not (services.store.stems_dir / drop).exists()
    event = sio.wait("tracks_changed", where=lambda p: p.get("clear_all"))
    assert event["kept"] == 1 and event["cleared"] is False

    flags(client, keep, {"locked": False})
    body = client.post("/delete_all_audio", headers=SAME_SITE).get_json()
    assert body["kept"] == 0 and names(client.get("/api/tracks")) == []
    assert sio.wait("tracks_changed", where=lambda p: p.get("clear_all") and p["kept"] == 0)["cleared"] is True


# ---- finding a take -------------------------------------------------------------------------------------


@pytest.fixture
def library(client, services) -> list[str]:
    """Five tracks of different models, formats, artists, seeds and days; two favourites, one locked."""
    made = [
        commit(services, "a_small", prompt="Warm LOFI piano with vinyl", seed=11, created="2025-08-01T09:00:00"),
        commit(services, "b_stereo", prompt="Drum and bass at 174", model="stereo-small", fmt="mp3", seed=22,
               artist="Neon Band", created="2025-08-10T12:00:00"),
        commit(services, "c_flac", prompt="lofi hip hop, rainy", fmt="flac", seed=33, artist="neon band",
               created="2025-08-19T23:59:00"),
        commit(services, "d_medium", prompt="Сказочный вальс", model="medium", seed=44, created="2025-08-20T00:00:00"),
        commit(services, "e_old", prompt="ambient drone", seed=55, created="not a date"),
    ]
    flags(client, "a_small", {"favorite": True})
    flags(client, "c_flac", {"favorite": True, "locked": True})
    return made


@pytest.mark.parametrize(("query", "expected"), [
    ("q=lofi", {"a_small", "c_flac"}), ("q=LOFI%20piano", {"a_small"}), ("q=вальс", {"d_medium"}),
    ("q=nothing", set()), ("model=stereo-small", {"b_stereo"}), ("format=mp3", {"b_stereo"}),
    ("format=FLAC", {"c_flac"}), ("favorite=true", {"a_small", "c_flac"}),
    ("favorite=false", {"b_stereo", "d_medium", "e_old"}), ("locked=1", {"c_flac"}),
    ("artist=NEON", {"b_stereo", "c_flac"}),
    ("seed=33", {"c_flac"}), ("since=2025-08-10&until=2025-08-19", {"b_stereo", "c_flac"}),
    ("since=2025-08-20", {"d_medium", "e_old"}), ("until=2025-08-01T09:00", {"a_small"}),
    ("q=lofi&favorite=true&format=wav", {"a_small"}),
])
def test_filters_find_the_right_takes(client, library, query, expected):
    answer = client.get(f"/api/tracks?{query}")
    assert set(names(answer)) == expected and answer.headers["X-Total-Count"] == str(len(expected))


def test_sort_order_and_pages(client, library):
    everything = names(client.get("/api/tracks"))
    # No parameter: every track, newest first, as before ("e_old" has no readable date: its file's time, now).
    assert everything == ["e_old", "d_medium", "c_flac", "b_stereo", "a_small"]
    assert names(client.get("/api/tracks?sort=name&order=asc")) == sorted(library)
    assert names(client.get("/api/tracks?sort=name")) == sorted(library, reverse=True)
    by_date = names(client.get("/api/tracks?sort=date&order=asc&until=2025-08-31"))
    assert by_date == ["a_small", "b_stereo", "c_flac", "d_medium"]
    page = client.get("/api/tracks?sort=name&order=asc&limit=2&offset=1")
    assert names(page) == sorted(library)[1:3] and page.headers["X-Total-Count"] == "5"
    assert names(client.get("/api/tracks?sort=name&order=asc&limit=2&offset=10")) == []


@pytest.mark.parametrize(("query", "field"), [
    ("sort=size", "sort"), ("order=up", "order"), ("favorite=yes", "favorite"), ("locked=2", "locked"),
    ("seed=-1", "seed"), ("seed=abc", "seed"), ("limit=0", "limit"), ("limit=1e3", "limit"), ("offset=-1", "offset"),
    ("since=yesterday", "since"), ("since=2025-08-20&until=2025-08-01", "since"), ("path=../../x", "path"),
    (f"q={'x' * 201}", "q"),
])
def test_bad_queries_are_refused_by_name(client, library, query, field):
    answer = client.get(f"/api/tracks?{query}")
    assert answer.status_code == 400
    assert answer.get_json()["ok"] is False and answer.get_json()["error"]["field"] == field


# ---- the record cache -----------------------------------------------------------------------------------


def test_unchanged_records_are_parsed_once_and_every_change_is_seen(client, services, monkeypatch):
    made = [commit(services, f"t{i:02d}", seed=i) for i in range(20)]
    parsed: list[str] = []
    real = tracks_module.read_json
    monkeypatch.setattr(tracks_module, "read_json", lambda path: parsed.append(path.stem) or real(path))

    assert len(names(client.get("/api/tracks"))) == 20
    first = list(parsed)
    assert len(names(client.get("/api/tracks?q=lofi"))) == 20 and parsed == first, "nothing re-parsed"

    flags(client, made[3], {"favorite": True})  # an update through the store
    assert names(client.get("/api/tracks?favorite=true")) == [made[3]]
    path = services.store.audio_dir / f"{made[5]}.json"  # an edit behind the store's back (a rename, as every write)
    edited = {**json.loads(path.read_text()), "prompt": "edited by hand"}
    (path.parent / "edit.tmp").write_text(json.dumps(edited))
    os.replace(path.parent / "edit.tmp", path)
    assert names(client.get("/api/tracks?q=edited")) == [made[5]]
    services.store.delete(made[7])
    assert made[7] not in names(client.get("/api/tracks"))
    assert len(parsed) - len(first) <= 3, "only the changed records were read again"
