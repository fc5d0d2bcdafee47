"""Tracks on disk: names, atomic commits, listing only complete tracks, safe delete, crash recovery."""
from __future__ import annotations

import json
import os
from datetime import datetime

import pytest

from audiocraft_webui.storage import TrackStore, UnsafeName, base_name, sanitize_artist

WHEN = datetime(2025, 8, 19, 14, 5)


@pytest.fixture
def store(tmp_path):
    """A store on an empty data folder."""
    return TrackStore(tmp_path / "data")


def commit(store, base="small_19082025_14_05", ext="wav", data=b"RIFF....", meta=None):
    """Commit a track with dummy bytes."""
    return store.commit(base, ext, lambda handle: handle.write(data), meta or {"prompt": "p"})


def test_names_follow_the_original_pattern():
    assert base_name("large", 48213377, "", WHEN) == "large_48213377_19082025_14_05"
    assert base_name("medium", None, "", WHEN) == "medium_19082025_14_05"
    assert base_name("medium", 7, "My Band", WHEN) == "My-Band_medium_7_19082025_14_05"


@pytest.mark.parametrize("artist,expected", [
    ("../../etc", "etc"), ("/", ""), ("CON", "CON"), ("Мой Бэнд", "Moy-Bend"), ("Щука", "Shchuka"), ("☃", ""),
    ("Émilie ☃ Jazz", "Emilie-Jazz"),
    ("a\nb\u202ec", "a-bc"), ("x" * 10_000, "x" * 40),
])
def test_artist_is_sanitised_to_a_short_ascii_prefix(artist, expected):
    assert sanitize_artist(artist) == expected
    name = base_name("small", None, artist, WHEN)
    assert name.isascii() and "/" not in name and ".." not in name and len(name) < 80


def test_commit_writes_audio_then_json_and_lists_it(store):
    track = commit(store, meta={"prompt": "lofi"})
    assert track.base == "small_19082025_14_05" and track.audio_file == "small_19082025_14_05.wav"
    assert (store.audio_dir / "small_19082025_14_05.wav").read_bytes() == b"RIFF...."
    meta = json.loads((store.audio_dir / "small_19082025_14_05.json").read_text())
    assert meta == {"prompt": "lofi", "audio_file": "small_19082025_14_05.wav"}
    assert [t.base for t in store.list_tracks()] == [track.base]
    assert not [p for p in store.audio_dir.iterdir() if p.name.startswith(".")]


def test_collisions_within_the_minute_get_a_suffix_across_formats(store):
    names = [commit(store, ext=ext).audio_file for ext in ("wav", "mp3", "flac")]
    assert names == ["small_19082025_14_05.wav", "small_19082025_14_05-2.mp3", "small_19082025_14_05-3.flac"]
    assert len(store.list_tracks()) == 3


def test_a_failed_json_commit_leaves_no_track_and_no_temp(store, monkeypatch):
    real_replace = os.replace

    def crash_on_json(src, dst):
        if str(dst).endswith(".json"):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_json)
    with pytest.raises(OSError):
        commit(store)
    assert store.list_tracks() == []
    assert list(store.audio_dir.iterdir()) == []


def test_a_failed_audio_write_leaves_nothing(store):
    def broken(handle):
        handle.write(b"half")
        raise OSError("encoder died")

    with pytest.raises(OSError):
        store.commit("x", "wav", broken, {})
    assert list(store.audio_dir.iterdir()) == []


def test_audio_without_json_never_appears(store):
    (store.audio_dir / "orphan.wav").write_bytes(b"x")
    (store.audio_dir / "bad.json").write_text("{")
    (store.audio_dir / "bad.wav").write_bytes(b"x")
    assert store.list_tracks() == []


def test_delete_removes_audio_json_and_stems(store):
    track = commit(store)
    stems = store.stems_dir / track.base
    stems.mkdir()
    (stems / "drums.wav").write_bytes(b"x")
    deleted = store.delete(track.base)
    assert sorted(deleted) == sorted([f"static/audio/{track.audio_file}", f"static/audio/{track.base}.json",
                                      f"static/stems/{track.base}"])
    assert list(store.audio_dir.iterdir()) == [] and list(store.stems_dir.iterdir()) == []


@pytest.mark.parametrize("name", [
    "../../webui.py", "..%2f..%2fwebui.py", "%252e%252e%252f", "..\\..\\webui.py", "/etc/passwd",
    "C:\\Windows\\win.ini", "//server/share", "a\x00.wav", "", ".", "..", "audio", "stems", "*", None, 5, ["x"],
])
def test_delete_refuses_hostile_names_and_the_sentinel_survives(store, tmp_path, name):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    mtime = sentinel.stat().st_mtime
    commit(store)
    with pytest.raises(UnsafeName):
        store.delete(name)
    assert sentinel.read_text() == "keep me" and sentinel.stat().st_mtime == mtime
    assert len(store.list_tracks()) == 1


def test_links_are_never_followed(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.wav").write_bytes(b"secret")
    (store.audio_dir / "link.wav").symlink_to(outside / "secret.wav")
    (store.audio_dir / "link.json").write_text("{}")
    track = commit(store)
    (store.stems_dir / track.base).symlink_to(outside, target_is_directory=True)
    assert [t.base for t in store.list_tracks()] == [track.base]
    with pytest.raises(UnsafeName):
        store.delete("link")
    store.delete(track.base)
    store.clear_all()
    assert (outside / "secret.wav").read_bytes() == b"secret"
    assert list(store.stems_dir.iterdir()) == []


def test_clear_all_removes_tracks_stems_and_extra_folders(store, tmp_path):
    commit(store)
    commit(store, ext="mp3")
    uploads = tmp_path / "data" / "static" / "uploads"
    uploads.mkdir()
    (uploads / "a.wav").write_bytes(b"x")
    (store.stems_dir / "small_19082025_14_05").mkdir()
    deleted = store.clear_all(extra_folders=(uploads,)).removed
    assert len(deleted) == 6
    assert store.list_tracks() == [] and list(uploads.iterdir()) == [] and list(store.stems_dir.iterdir()) == []


def test_recovery_sweep_cleans_temp_and_quarantines_orphans_and_corrupt_json(store):
    good = commit(store)
    (store.audio_dir / ".tmp-abc.wav").write_bytes(b"partial")
    (store.audio_dir / "orphan.wav").write_bytes(b"audio only")
    (store.audio_dir / "broken.json").write_text("{not json")
    (store.audio_dir / "lonely.json").write_text("{}")
    (store.stems_dir / ".tmp-x").mkdir()
    (store.audio_dir / ".trash-1").mkdir()
    (store.settings_dir / "last_run.json").write_bytes(b"")
    report = store.recover()
    assert report.removed_temp == ["static/audio/.tmp-abc.wav", "static/stems/.tmp-x"]
    assert report.finished_trash == ["static/audio/.trash-1"]
    reasons = {item["file"]: item["reason"] for item in report.quarantined}
    assert reasons == {"orphan.wav": "audio_without_json", "broken.json": "corrupt_json",
                       "lonely.json": "json_without_audio", "last_run.json": "corrupt_json"}
    assert (store.quarantine_dir / "orphan.wav").read_bytes() == b"audio only"
    assert [t.base for t in store.list_tracks()] == [good.base]
    assert sorted(p.name for p in store.audio_dir.iterdir()) == sorted([good.audio_file, f"{good.base}.json"])
    assert store.load_last_run() is None


def test_last_run_round_trip(store):
    store.save_last_run({"prompt": "Привет", "request": {"seed": -1}})
    assert store.load_last_run() == {"prompt": "Привет", "request": {"seed": -1}}
    assert "Привет" in (store.settings_dir / "last_run.json").read_text(encoding="utf-8")
