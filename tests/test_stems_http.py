"""Stem HTTP routes: list, serve, ZIP, mixdown, delete and clear-all, including hostile names and symlinks.

Stem sets are written straight into the folders (no Demucs needed to test the routes).
"""
from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

from tests.stems_kit import (  # noqa: F401 - fixtures
    HOSTILE_NAMES,
    STEM_RATE,
    app,
    assert_untouched,
    fake_engine,
    leftovers,
    make_stem_set,
    make_track,
    read_wav,
    sentinels,
)

FOUR = ["vocals", "drums", "bass", "other"]


@pytest.fixture
def track(services) -> tuple[str, dict]:
    """A track with four stems; returns its name and the stems written (float32 ``[2, T]`` at 44.1 kHz)."""
    name = make_track(services)
    return name, make_stem_set(services.stems.tracks, name)


def mix(client, path: str, settings: object):
    """POST a mixdown request."""
    return client.post(path, data=json.dumps(settings), content_type="application/json")


def test_api_lists_the_stems_and_serves_each_as_wav(client, track):
    name, stems = track
    listing = client.get(f"/api/stems/{name}").get_json()
    assert listing["stems"] == [{"name": stem, "url": f"/static/stems/{name}/{stem}.wav"} for stem in FOUR]
    response = client.get(listing["stems"][0]["url"])
    assert response.status_code == 200 and response.mimetype == "audio/wav"
    assert response.headers["Content-Disposition"] == f"inline; filename={name}_vocals.wav"
    audio, rate = read_wav(response.data)
    assert rate == STEM_RATE and np.array_equal(audio, stems["vocals"])
    assert client.get("/api/stems/no_such_track").status_code == 404


@pytest.mark.parametrize("query,expected", [("", FOUR), ("?stems=vocals,drums", ["vocals", "drums"]),
                                            ("?stems=bass", ["bass"])])
def test_zip_holds_exactly_the_chosen_stems_with_plain_names(client, services, track, query, expected):
    name, _ = track
    response = client.get(f"/stems_zip/{name}{query}")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert f'filename="{name}_stems.zip"' in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [f"{name}_{stem}.wav" for stem in expected]
        for stem in expected:
            stored = services.store.stems_dir / name / f"{stem}.wav"
            assert archive.read(f"{name}_{stem}.wav") == stored.read_bytes()
    assert leftovers(services.store.root) == []


def test_zip_refuses_unknown_stems(client, track):
    name, _ = track
    response = client.get(f"/stems_zip/{name}?stems=vocals,../../x")
    assert response.status_code == 400 and "no such stem" in response.get_json()["error"]


def test_mix_is_the_gained_sum_of_the_unmuted_stems(client, track):
    name, stems = track
    settings = {"vocals": {"gain": 0.8, "mute": False}, "drums": {"gain": 1.5},
                "bass": {"gain": 2, "mute": True}}
    response = mix(client, f"/stems_mix/{name}", {"stems": settings})
    assert response.status_code == 200 and response.mimetype == "audio/wav"
    audio, rate = read_wav(response.data)
    expected = 0.8 * stems["vocals"] + 1.5 * stems["drums"]
    assert rate == STEM_RATE and audio.shape == expected.shape and np.abs(expected).max() < 1
    np.testing.assert_allclose(audio, expected, atol=1 / 32767)


def test_a_mix_that_would_clip_is_peak_normalised_and_all_stems_by_default(client, track):
    name, stems = track
    all_at_four = {"stems": {stem: {"gain": 4} for stem in FOUR}}
    loud, _ = read_wav(mix(client, f"/stems_mix/{name}", all_at_four).data)
    expected = 4 * sum(stems.values())
    np.testing.assert_allclose(loud, expected / np.abs(expected).max(), atol=1 / 32767)
    plain, _ = read_wav(client.post(f"/stems_mix/{name}").data)
    np.testing.assert_allclose(plain, sum(stems.values()), atol=1 / 32767)


@pytest.mark.parametrize("settings", [
    {"stems": {"guitar": {"gain": 1}}}, {"stems": {"vocals": {"gain": -1}}},
    {"stems": {"vocals": {"gain": 1e9}}}, {"stems": {"vocals": {"gain": "1"}}},
    {"stems": {"vocals": {"gain": True}}}, {"stems": {"vocals": {"mute": 1}}},
    {"stems": {"vocals": {"mute": True}}}, {"stems": {}}, {"stems": ["vocals"]}, ["vocals"],
])
def test_bad_mix_requests_get_400(client, track, settings):
    response = mix(client, f"/stems_mix/{track[0]}", settings)
    assert response.status_code == 400 and response.get_json()["error"]


def test_stems_of_an_uploaded_file_have_the_same_routes(client, services):
    key = "ab" * 16
    stems = make_stem_set(services.stems.any, key)
    assert client.get(f"/api/stems_any/{key}").get_json()["stems"][1] == {
        "name": "drums", "url": f"/static/stems_any/{key}/drums.wav"}
    assert client.get(f"/static/stems_any/{key}/drums.wav").mimetype == "audio/wav"
    with zipfile.ZipFile(io.BytesIO(client.get(f"/stems_any_zip/{key}?stems=other").data)) as archive:
        assert archive.namelist() == [f"{key}_other.wav"]
    audio, _ = read_wav(mix(client, f"/stems_any_mix/{key}", {"stems": {"bass": {"gain": 0.5}}}).data)
    np.testing.assert_allclose(audio, 0.5 * stems["bass"], atol=1 / 32767)
    assert client.get(f"/api/stems_any/{'cd' * 16}").status_code == 404


# ---- hostile names and links ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_reach_nothing(client, services, track, sentinels, name):
    link = services.store.stems_dir / "sentinel"
    link.symlink_to(sentinels[0][0].parent, target_is_directory=True)
    for method, path in [("get", f"/api/stems/{name}"), ("get", f"/static/stems/{name}/vocals.wav"),
                         ("get", f"/static/stems/{track[0]}/{name}"), ("get", f"/stems_zip/{name}"),
                         ("get", f"/stems_zip/{track[0]}?stems={name}"), ("post", f"/stems_mix/{name}"),
                         ("get", f"/static/stems_any/{name}/vocals.wav"), ("get", f"/stems_any_zip/{name}"),
                         ("post", f"/stems_any_mix/{name}")]:
        response = getattr(client, method)(path)
        assert response.status_code in (400, 404, 405), (path, response.status_code)
    response = client.post("/delete_audio", json={"name": name})
    assert response.status_code in (400, 404)
    assert client.post("/delete_audio", json={"wav": f"static/audio/{name}"}).status_code in (400, 404)
    assert_untouched(sentinels)
    assert services.store.get(track[0]) is not None and services.stems.tracks.names(track[0]) == FOUR


def test_symlinks_in_stem_folders_are_never_followed(client, services, track, sentinels, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "vocals.wav").write_bytes((services.store.stems_dir / track[0] / "vocals.wav").read_bytes())
    (services.store.stems_dir / "linked").symlink_to(outside, target_is_directory=True)
    (services.store.stems_dir / track[0] / "leak.wav").symlink_to(outside / "vocals.wav")
    assert client.get("/static/stems/linked/vocals.wav").status_code == 404
    assert client.get("/stems_zip/linked").status_code == 404
    assert client.post("/stems_mix/linked").status_code == 404
    assert client.get(f"/static/stems/{track[0]}/leak.wav").status_code == 404
    # Deeper paths must not fall through to Flask's own static route, which follows links.
    assert client.get("/static/stems/linked/sub/vocals.wav").status_code == 404
    assert "leak" not in [s["name"] for s in client.get(f"/api/stems/{track[0]}").get_json()["stems"]]
    with zipfile.ZipFile(io.BytesIO(client.get(f"/stems_zip/{track[0]}").data)) as archive:
        assert "leak.wav" not in archive.namelist()
    assert client.get(f"/stems_zip/{track[0]}?stems=leak").status_code == 400
    assert mix(client, f"/stems_mix/{track[0]}", {"stems": {"leak": {}}}).status_code == 400
    assert (outside / "vocals.wav").exists()
    assert_untouched(sentinels)


# ---- delete and clear ----------------------------------------------------------------------------------


def test_delete_removes_audio_json_and_stems_and_says_so(client, services, track, sentinels):
    name, _ = track
    other = make_track(services, "small_02012025_10_00")
    response = client.post("/delete_audio", json={"name": name})
    assert response.status_code == 200
    assert sorted(response.get_json()["deleted"]) == sorted(
        [f"static/audio/{name}.wav", f"static/audio/{name}.json", f"static/stems/{name}"])
    assert services.store.get(name) is None and not (services.store.stems_dir / name).exists()
    assert client.get(f"/static/stems/{name}/vocals.wav").status_code == 404
    assert services.store.get(other) is not None
    assert leftovers(services.store.root) == []
    assert_untouched(sentinels)


def test_delete_of_a_track_whose_stems_folder_is_a_link_removes_only_the_link(client, services, sentinels):
    name = make_track(services)
    (services.store.stems_dir / name).symlink_to(sentinels[0][0].parent, target_is_directory=True)
    assert client.post("/delete_audio", json={"name": name}).status_code == 200
    assert not os.path.lexists(services.store.stems_dir / name)
    assert_untouched(sentinels)


def test_clear_all_removes_tracks_stems_stems_any_and_uploads(client, services, track, sentinels):
    make_stem_set(services.stems.any, "ef" * 16)
    wav = (services.store.stems_dir / track[0] / "bass.wav").read_bytes()
    upload = client.post("/upload_demucs_any", data={"file": (io.BytesIO(wav), "a.wav")},
                         content_type="multipart/form-data")
    assert upload.status_code == 200
    response = client.post("/delete_all_audio")
    deleted = response.get_json()["deleted"]
    assert response.status_code == 200 and f"static/stems/{track[0]}" in deleted
    assert f"static/stems_any/{'ef' * 16}" in deleted
    assert f"static/uploads/{upload.get_json()['id']}" in deleted
    for folder in (services.store.audio_dir, services.store.stems_dir, services.stems.any.root,
                   services.uploads.folder):
        assert list(folder.iterdir()) == [], folder
    assert_untouched(sentinels)
