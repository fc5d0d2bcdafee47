"""Crash safety: SIGKILL a real server at exact points of a job, restart it, and check that nothing is lost.

Checklist rows 27-30 of docs/SECURITY.md. The server runs the real engine on the tiny offline models and
stops at a test pause point (``AUDIOCRAFT_WEBUI_TEST_PAUSE_AT``, see audiocraft_webui/hooks.py): half-way
through a generation, between a track's audio and its JSON, half-way through a stem split, and after the
first rename of a clear-all. After the restart: no half-written track is listed, temp files are gone,
orphans and corrupt JSON are in quarantine and reported, queued jobs run, and the job that was running is
``interrupted`` (never ``done``, never re-queued).
"""
from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
from pathlib import Path

import pytest

from audiocraft_webui.hooks import PAUSE_ENV
from audiocraft_webui.storage import TrackStore
from tests.serverproc import LiveClient, ServerProcess, request
from tests.stems_kit import audio_bytes, noise

pytestmark = pytest.mark.slow  # each test restarts a real server two to four times


def paused(point: str) -> dict:
    """The environment that stops the server at ``point``."""
    return {PAUSE_ENV: point}


def clear_all_until_killed(server: ServerProcess) -> None:
    """Ask for a clear-all whose answer never comes: the test kills the server half-way through it."""
    with contextlib.suppress(ConnectionError, http.client.HTTPException):
        request(server.port, "POST", "/delete_all_audio", {"Origin": server.url})


def wait_paused(server: ServerProcess, point: str) -> None:
    """Wait until the server sits at the pause point."""
    server.wait_for_log(f"test pause point {point!r} reached")


def boot(server: ServerProcess) -> dict:
    """The boot configuration the page receives (recovery report, interrupted jobs ...)."""
    status, _, html = request(server.port, "GET", "/")
    assert status == 200
    return json.loads(re.search(rb'<script type="application/json" id="boot">(.*?)</script>', html, re.DOTALL).group(1))


def tracks(server: ServerProcess) -> list[dict]:
    """The committed tracks the server lists."""
    return json.loads(request(server.port, "GET", "/api/tracks")[2])


def queue_state(server: ServerProcess) -> dict:
    """The queue snapshot a (re)connecting tab gets."""
    client = LiveClient(server.port, origin=server.url)
    try:
        return client.wait("queue_state")
    finally:
        client.close()


def states(snapshot: dict) -> dict[str, str]:
    """Job id -> state of the recent jobs."""
    return {job["id"]: job["state"] for job in snapshot["recent"]}


def leftovers(data_dir: Path) -> list[str]:
    """Temp and trash entries anywhere in the data folder."""
    return [str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.name.startswith((".tmp-", ".trash-"))]


def commit_tracks(data_dir: Path, *bases: str) -> dict[str, bytes]:
    """Commit real WAV tracks straight into the data folder before a server starts; returns their audio."""
    store = TrackStore(data_dir)
    written = {}
    for index, base in enumerate(bases):
        data = audio_bytes(noise(1.0, seed=index), 32000, "wav")
        store.commit(base, "wav", lambda handle, data=data: handle.write(data), {"prompt": base})
        written[base] = data
    return written


def submit(client: LiveClient, prompt: str) -> str:
    """Queue a one-second generation on the real tiny engine; returns the job id."""
    ack = client.emit("submit_sliders", {"prompt": prompt, "model": "small", "values": {"duration": 1, "seed": 1}})
    assert ack["ok"], ack
    return ack["job_id"]


def test_kills_mid_generation_and_between_audio_and_json_lose_nothing_and_finish_nothing(tiny_hub, tmp_path):
    server = ServerProcess(tiny_hub, tmp_path / "data")
    audio_dir, data = server.data_dir / "static" / "audio", server.data_dir
    try:
        server.start(env=paused("generating"))
        client = LiveClient(server.port, origin=server.url)
        first, second, third = (submit(client, f"job {n}") for n in range(3))
        wait_paused(server, "generating")
        client.close()
        server.kill()

        # The queued jobs are restored from disk and run: the second is done, and the server dies between the
        # third one's audio and its JSON.
        server.start(env=paused("commit_json:2"))
        wait_paused(server, "commit_json")
        half_written = [p.name for p in audio_dir.iterdir() if p.stem not in {t["name"] for t in tracks(server)}]
        assert len([name for name in half_written if name.endswith(".wav")]) == 1, half_written
        assert next(name for name in half_written if name.endswith(".json")).startswith(".tmp-"), half_written
        server.kill()
        (audio_dir / "broken.json").write_text("{not json")
        (audio_dir / "empty.json").write_bytes(b"")
        (data / "settings" / "last_run.json").write_bytes(b"")

        server.start()
        snapshot = queue_state(server)
        assert states(snapshot) == {first: "interrupted", second: "done", third: "interrupted"}
        assert snapshot["queued"] == [] and snapshot["running"] is None
        listed = tracks(server)
        assert [track["meta"]["job_id"] for track in listed] == [second]
        report = boot(server)
        assert [job["id"] for job in report["interrupted"]] == [third]
        assert report["interrupted"][0]["error"]["type"] == "interrupted"
        reasons = {item["file"]: item["reason"] for item in report["recovery"]["quarantined"]}
        orphan = next(name for name in half_written if name.endswith(".wav") and not name.startswith("."))
        assert reasons == {orphan: "audio_without_json", "broken.json": "corrupt_json", "empty.json": "corrupt_json",
                           "last_run.json": "corrupt_json"}
        assert [Path(p).name for p in report["recovery"]["removed_temp"]] == [
            name for name in half_written if name.startswith(".tmp-")]
        assert (data / "quarantine" / orphan).stat().st_size > 0
        assert [p.name.split("-")[0] for p in (data / "settings").glob("last_run.json.corrupt-*")] == [
            "last_run.json.corrupt"]
        assert leftovers(data) == []
        server.kill()

        # A further restart neither reports nor re-queues the interrupted jobs, and never calls them done.
        server.start()
        again = queue_state(server)
        assert states(again) == {first: "interrupted", second: "done", third: "interrupted"}
        assert again["queued"] == [] and boot(server)["interrupted"] == []
    finally:
        server.stop()


def test_a_kill_in_the_middle_of_clear_all_is_finished_at_restart(tiny_hub, tmp_path):
    server = ServerProcess(tiny_hub, tmp_path / "data")
    names = list(commit_tracks(server.data_dir, "a_01012025_10_00", "b_01012025_10_00", "c_01012025_10_00"))
    stems = server.data_dir / "static" / "stems" / names[0]
    stems.mkdir(parents=True)
    (stems / "vocals.wav").write_bytes(audio_bytes(noise(0.5), 44100, "wav"))
    try:
        server.start(env=paused("trash"))
        clearing = threading.Thread(target=clear_all_until_killed, args=(server,), daemon=True)
        clearing.start()
        wait_paused(server, "trash")
        visible = [p.name for p in (server.data_dir / "static" / "audio").iterdir() if not p.name.startswith(".")]
        assert 0 < len(visible) < 6  # half-way: some files moved, some not
        server.kill()

        server.start()
        assert tracks(server) == []
        assert list((server.data_dir / "static" / "audio").iterdir()) == []
        assert list((server.data_dir / "static" / "stems").iterdir()) == []
        recovery = boot(server)["recovery"]
        assert recovery["finished_trash"] and recovery["quarantined"] == []
        assert not (server.data_dir / "settings" / "pending_removal.json").exists()
        assert leftovers(server.data_dir) == []
    finally:
        server.stop()


def test_a_kill_mid_stem_split_leaves_no_partial_stems_and_the_track_intact(tiny_hub, tmp_path):
    server = ServerProcess(tiny_hub, tmp_path / "data", args=("--demucs-model", "htdemucs"))
    name = "small_01012025_10_00"
    audio = commit_tracks(server.data_dir, name)[name]
    try:
        server.start(env=paused("separating"))
        client = LiveClient(server.port, origin=server.url)
        job_id = client.emit("request_stems", {"name": name})["job_id"]
        wait_paused(server, "separating")
        client.close()
        server.kill()
        partial = server.data_dir / "static" / "stems" / f".tmp-{name}-crash"
        partial.mkdir()
        (partial / "vocals.wav").write_bytes(b"RIFF half")

        server.start()
        stems = json.loads(request(server.port, "GET", f"/api/stems/{name}")[2])
        assert stems["stems"] == [] and stems["task"]["status"] not in ("queued", "running", "done")
        assert states(queue_state(server))[job_id] == "interrupted"
        assert [track["name"] for track in tracks(server)] == [name]
        assert (server.data_dir / "static" / "audio" / f"{name}.wav").read_bytes() == audio
        assert f"static/stems/.tmp-{name}-crash" in boot(server)["recovery"]["removed_temp"]
        assert leftovers(server.data_dir) == []
    finally:
        server.stop()
