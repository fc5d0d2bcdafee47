"""Paths from clients resolve strictly inside their folder; links are never followed; names are made safe.

Checklist rows 1-6, 12 and 15 of docs/SECURITY.md (the stem routes' own matrix is in test_stems_http.py).
Every test plants sentinel files where a traversal would land and checks they survive with the same mtime.
"""
from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
import zipfile
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import soundfile as sf

from audiocraft_webui.config import REPO_ROOT
from audiocraft_webui.protocol import UPLOAD_ID
from audiocraft_webui.storage import WINDOWS_DEVICES, base_name
from audiocraft_webui.web.views import DATA_FOLDERS
from tests.fakes import FakeEngine
from tests.stems_kit import make_stem_set, make_track

TRACK = "small_01012025_10_00"
#: The classic path-traversal names, plus encodings of the same ideas.
ROW1_NAMES = ["../../webui.py", "..%2f..%2fwebui.py", "%252e%252e%252f", "..\\..\\webui.py", "/etc/passwd",
              "C:\\Windows\\win.ini", "//server/share", "a%00.wav", "a\x00.wav", "", ".", "..", "audio", "stems", "*",
              "../webui", "..%5c..%5cwebui.py", "%2e%2e", "CON", "CON.wav", "NUL.json", "webui.py ", "x.",
              "\\\\?\\C:\\x"]


@pytest.fixture
def app(make_app):
    """An app on the fake engine (these tests never generate with the real one)."""
    return make_app(engine=FakeEngine())


@pytest.fixture
def planted(tmp_path: Path, data_dir: Path) -> list[tuple[Path, float]]:
    """Sentinel ``webui.py`` files where ``..`` names would land, plus the app's real ``webui.py``."""
    files = []
    for folder in (tmp_path, data_dir, data_dir / "static"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "webui.py").write_text("sentinel")
        files.append(folder / "webui.py")
    files.append(REPO_ROOT / "webui.py")
    return [(path, path.stat().st_mtime) for path in files]


def assert_intact(planted: list[tuple[Path, float]], services) -> None:
    """Every sentinel is unchanged and every data folder still exists."""
    for path, mtime in planted:
        assert path.exists() and path.stat().st_mtime == mtime, path
    for folder in (services.store.audio_dir, services.store.stems_dir, services.uploads.folder,
                   services.store.settings_dir):
        assert folder.is_dir(), folder


def wav(seconds: float = 0.5, rate: int = 16000, channels: int = 1, subtype: str = "PCM_16",
        audio: np.ndarray | None = None) -> bytes:
    """A small WAV file in memory (a 330 Hz tone unless ``audio`` [T, C] is given)."""
    if audio is None:
        audio = np.repeat(0.3 * np.sin(2 * np.pi * 330 * np.arange(int(seconds * rate)) / rate)[:, None], channels, 1)
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def routes(name: str) -> list[tuple[str, str, dict]]:
    """Every HTTP route that takes a file or set name, with ``name`` in it (URL-quoted where it is in the path)."""
    quoted = quote(name, safe="")
    return [
        ("POST", "/delete_audio", {"json": {"name": name}}),
        ("POST", "/delete_audio", {"json": {"wav": f"static/audio/{name}"}}),
        ("GET", f"/static/audio/{quoted}", {}), ("GET", f"/static/audio/{quoted}.json", {}),
        ("GET", f"/static/uploads/{quoted}", {}), ("GET", f"/static/{quoted}", {}),
        ("GET", f"/api/stems/{quoted}", {}), ("GET", f"/static/stems/{quoted}/vocals.wav", {}),
        ("GET", f"/static/stems/{TRACK}/{quoted}", {}), ("GET", f"/stems_zip/{quoted}", {}),
        ("POST", f"/stems_mix/{quoted}", {}), ("GET", f"/static/stems_any/{quoted}/vocals.wav", {}),
        ("GET", f"/stems_any_zip/{quoted}", {}), ("GET", f"/api/stems_any/{quoted}", {}),
    ]


@pytest.mark.parametrize("name", ROW1_NAMES)
def test_every_route_that_takes_a_name_refuses_hostile_ones(client, services, planted, name):
    make_track(services, TRACK)
    make_stem_set(services.stems.tracks, TRACK)
    for method, path, body in routes(name):
        answer = client.open(path, method=method, follow_redirects=True, **body)
        assert answer.status_code in (400, 404), (method, path, answer.status_code)
    assert [track.base for track in services.store.list_tracks()] == [TRACK]
    assert len(services.stems.tracks.names(TRACK)) == 4
    assert_intact(planted, services)


@pytest.mark.parametrize("name", ROW1_NAMES)
def test_every_event_that_takes_a_name_refuses_hostile_ones(sio, services, planted, name):
    make_track(services, TRACK)
    for event, payload in (("rerun", {"name": name}), ("request_stems", {"name": name}),
                           ("request_stems", {"json": f"static/audio/{name}.json"}), ("demucs_any", {"id": name}),
                           ("demucs_any", {"path": f"static/uploads/{name}"}), ("cancel_job", {"job_id": name})):
        ack = sio.client.emit(event, payload, callback=True)
        assert ack["ok"] is False and ack["error"]["message"], (event, payload)
    assert services.queue.snapshot()["queued"] == []
    assert_intact(planted, services)


@pytest.mark.parametrize("path", [
    "/static/audio/..%2f..%2fwebui.py", "/static/stems/x/%2e%2e/%2e%2e/webui.py", "/static/.env",
    "/static/..%2fwebui.py", "/static/%2e%2e/%2e%2e/webui.py", "/static/CON", "/static/CON.txt", "/static/js/NUL",
    "/static/x/NUL", "/static/js/main.js%20", "/static/js/main.js.", "/static/audio/sub/x.wav", "/static/uploads/a/b",
    "/static/audio/", "/static/stems_any/../../webui.py", "/static/%00", "/static/js/%2e%2e/%2e%2e/webui.py",
    "/static/vendor/..%5c..%5cwebui.py",
])
def test_static_and_media_urls_never_leave_their_folder(client, services, planted, path):
    answer = client.get(path)
    assert answer.status_code in (400, 404) and b"sentinel" not in answer.data
    assert_intact(planted, services)


def test_the_static_route_still_serves_every_file_of_the_app(client):
    assets = [path for path in (REPO_ROOT / "static").rglob("*")
              if path.is_file() and path.relative_to(REPO_ROOT / "static").parts[0] not in DATA_FOLDERS]
    assert len(assets) > 5
    for path in assets:
        answer = client.get(f"/static/{path.relative_to(REPO_ROOT / 'static').as_posix()}")
        assert answer.status_code == 200 and answer.headers["X-Content-Type-Options"] == "nosniff", path


def test_links_planted_in_the_output_folders_are_never_served_listed_or_followed(client, services, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.wav"
    secret.write_bytes(wav())
    mtime = secret.stat().st_mtime
    audio, uploads = services.store.audio_dir, services.uploads.folder
    (audio / "x.wav").symlink_to(secret)
    (audio / "x.json").write_text(json.dumps({"prompt": "p"}))
    (audio / "y.json").symlink_to(outside / "secret.wav")
    upload_id = "ab" * 16 + ".wav"
    (uploads / upload_id).symlink_to(secret)
    (uploads / f"{upload_id}.json").write_text(json.dumps({"id": upload_id, "name": "x", "purpose": "melody"}))
    (services.store.stems_dir / "x").symlink_to(outside, target_is_directory=True)
    (services.stems.any.root / ("cd" * 16)).symlink_to(outside, target_is_directory=True)

    for url in ("/static/audio/x.wav", "/static/audio/y.json", f"/static/uploads/{upload_id}",
                "/static/stems/x/secret.wav", f"/static/stems_any/{'cd' * 16}/secret.wav", "/stems_zip/x",
                f"/stems_any_zip/{'cd' * 16}", "/api/stems/x"):
        assert client.get(url).status_code == 404, url
    assert client.get("/api/tracks").get_json() == []
    assert client.post("/delete_audio", json={"name": "x"}).status_code == 404
    answer = client.post("/delete_all_audio")
    assert answer.status_code == 200 and "static/audio/x.wav" in answer.get_json()["deleted"]
    assert not any(os.path.lexists(path) for path in (audio / "x.wav", uploads / upload_id,
                                                      services.store.stems_dir / "x"))
    assert secret.read_bytes() == wav() and secret.stat().st_mtime == mtime
    assert sorted(p.name for p in outside.iterdir()) == ["secret.wav"]


def test_a_stem_zip_holds_exactly_the_stems_whatever_else_is_in_the_folder(client, services, tmp_path):
    make_track(services, TRACK)
    make_stem_set(services.stems.tracks, TRACK)
    folder = services.store.stems_dir / TRACK
    (folder / "notes.txt").write_text("not a stem")
    (folder / "evil.wav").symlink_to(REPO_ROOT / "webui.py")
    (folder / "sub").mkdir()
    (folder / "sub" / "nested.wav").write_bytes(wav())
    assert client.get(f"/stems_zip/{quote('../../x', safe='')}").status_code == 404
    answer = client.get(f"/stems_zip/{TRACK}")
    assert answer.status_code == 200
    with zipfile.ZipFile(io.BytesIO(answer.data)) as archive:
        names = archive.namelist()
        assert sorted(names) == [f"{TRACK}_{stem}.wav" for stem in ("bass", "drums", "other", "vocals")]
        assert not any(mark in name for name in names for mark in ("/", "\\", ".."))
        target = tmp_path / "unzipped"
        archive.extractall(target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == sorted(names)


@pytest.mark.parametrize("artist", ["x" * 64, "/", "..", "../../etc/passwd", "🎵🎶 Band", "a\nb\r\nc",
                                    "\u202egnp.exe", "CON", "NUL", "Мой Бэнд", "   ", "\x00"])
def test_text_that_reaches_a_file_name_is_ascii_capped_and_never_empty(sio, services, running_worker, artist):
    ack = sio.client.emit("submit_sliders", {"prompt": "<b>prompt</b> " + "p" * 1900, "model": "small",
                                             "artist": artist, "values": {"duration": 1}}, callback=True)
    assert ack["ok"], ack
    done = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == ack["job_id"])
    name = done["name"]
    assert name and name.isascii() and len(name.encode()) <= 80
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name) and ".." not in name
    assert name.split(".")[0].upper() not in WINDOWS_DEVICES
    meta = json.loads((services.store.audio_dir / f"{name}.json").read_text(encoding="utf-8"))
    assert meta["prompt"].startswith("<b>prompt</b>") and meta["request"]["artist"] == artist.strip()


def test_ten_thousand_characters_are_refused_before_they_reach_a_name(sio, services):
    for field in ("prompt", "artist"):
        ack = sio.client.emit("submit_sliders", {"prompt": "p", "model": "small", field: "x" * 10_000},
                              callback=True)
        assert ack["ok"] is False and ack["error"]["field"] == field
    assert services.queue.snapshot()["queued"] == []


def test_names_are_unique_under_concurrent_commits_without_an_exists_loop(services):
    base = base_name("small", 7, "Band", datetime(2025, 1, 1, 10, 0))
    names, barrier = [], threading.Barrier(16)

    def commit(index: int) -> None:
        barrier.wait()
        track = services.store.commit(base, "wav", lambda handle: handle.write(bytes([index]) * 10), {"i": index})
        names.append((track.base, index))

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({name for name, _ in names}) == 16
    for name, index in names:  # nothing was overwritten: each file holds what its own commit wrote
        assert (services.store.audio_dir / f"{name}.wav").read_bytes() == bytes([index]) * 10


@pytest.mark.parametrize("field,value", [
    ("audioPromptUrl", "../../webui.py"), ("audioPromptUrl", "/etc/passwd"),
    ("audioPromptUrl", "http://evil.example/x.wav"), ("audioPromptUrl", "http://169.254.169.254/latest/meta-data/"),
    ("audio_prompt", "file:///etc/passwd"), ("audio_prompt", "\\\\server\\share\\x.wav"),
    ("continuationUrl", "../../static/uploads/x.wav"), ("continuationUrl", "http://169.254.169.254/x.wav"),
    ("continuation", "C:\\Windows\\win.ini"), ("audioPromptUrl", "http://evil.example/" + "ab" * 16 + ".wav"),
])
def test_file_fields_of_a_job_resolve_only_through_the_upload_ids(sio, services, planted, monkeypatch, field, value):
    connections: list = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: connections.append(address))
    payload = {"prompt": "p", "model": "melody", "values": {"duration": 1}, field: value}
    if field.startswith("continuation"):
        payload["appendContinuation"] = True
    ack = sio.client.emit("submit_sliders", payload, callback=True)
    assert ack["ok"] is False and ack["error"]["field"] in ("audio_prompt", "continuation", "upload")
    assert connections == [] and services.queue.snapshot()["queued"] == []
    assert_intact(planted, services)


HOSTILE_FILE_NAMES = ["../../static/index.html", "..\\x.wav", "/etc/cron.d/x", "CON.wav", ".htaccess",
                      "a" * 1000 + ".wav", "\u202egnp.wav", "", "x.php", "<script>.wav", "C:\\x.wav"]


@pytest.mark.parametrize("filename", HOSTILE_FILE_NAMES)
def test_uploads_are_stored_under_server_names_whatever_the_client_calls_them(client, services, data_dir, filename):
    before = {p for p in data_dir.rglob("*")}
    answer = client.post("/upload_melody", data={"melody": (io.BytesIO(wav()), filename)},
                         content_type="multipart/form-data")
    body = answer.get_json()
    assert answer.status_code == 200 and UPLOAD_ID.match(body["id"]) and body["id"].endswith(".wav")
    created = sorted(str(p.relative_to(data_dir)) for p in set(data_dir.rglob("*")) - before
                     if "jobs.json" not in p.name)
    assert created == [f"static/uploads/{body['id']}", f"static/uploads/{body['id']}.json"]
    name = json.loads((services.uploads.folder / f"{body['id']}.json").read_text())["name"]
    assert name == body["name"] and "/" not in name and "\\" not in name and "\u202e" not in name
    assert 0 < len(name) <= 120


@pytest.mark.parametrize("content", [
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', b"<html><script>alert(1)</script></html>",
    b'<?xml version="1.0"?><x/>', b"GIF89a" + b"\0" * 100,
])
def test_markup_is_never_accepted_as_audio(client, services, content):
    for filename in ("x.svg", "x.wav", "x.mp3"):
        answer = client.post("/upload_melody", data={"melody": (io.BytesIO(content), filename)},
                             content_type="multipart/form-data")
        assert answer.status_code == 400 and "unsupported or corrupt audio" in answer.get_json()["error"]
    assert list(services.uploads.folder.iterdir()) == []


def test_served_files_carry_their_own_type_and_nosniff_and_prompts_stay_data(client, sio, services, running_worker):
    upload = client.post("/upload_melody", data={"melody": (io.BytesIO(wav()), "x.html")},
                         content_type="multipart/form-data").get_json()
    served = client.get(f"/static/uploads/{upload['id']}")
    assert served.headers["Content-Type"] == "audio/wav" and served.headers["X-Content-Type-Options"] == "nosniff"
    prompt = '<img src=x onerror="alert(1)">'
    ack = sio.client.emit("submit_sliders", {"prompt": prompt, "model": "small", "values": {"duration": 1}},
                          callback=True)
    done = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == ack["job_id"])
    meta = client.get(f"/{done['json_filename']}")
    assert meta.headers["Content-Type"] == "application/json" and meta.headers["X-Content-Type-Options"] == "nosniff"
    assert meta.get_json()["prompt"] == prompt
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "object-src 'none'" in csp
    assert prompt not in page.get_data(as_text=True)  # the boot JSON escapes it (no raw markup in the page)

