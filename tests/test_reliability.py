"""Findings of the adversarial probe: every refusal is answered, records are validated on load, no server path
reaches a client, oversize long-polling requests hold nothing, and jobs belong to the page that queued them."""
from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path

import pytest

from audiocraft_webui import fileio
from audiocraft_webui.worker import error_info
from tests.conftest import EventLog
from tests.fakes import FakeEngine
from tests.serverproc import ServerProcess


@pytest.fixture
def app(make_app):
    """An app on the fake engine (the refusals happen before any generation)."""
    return make_app(engine=FakeEngine())


def generation(sio, **extra) -> dict:
    """Send a short generation request; the ack."""
    return sio.client.emit("submit_sliders", {"prompt": "p", "model": "small", "auto_tune": False,
                                              "values": {"duration": 1}, **extra}, callback=True)


def refusing_writes(monkeypatch, code: int) -> None:
    """Make every atomic write fail as a full, read-only or forbidden disk does."""
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), "/very/secret/server/path/.tmp-x")

    monkeypatch.setattr(fileio.tempfile, "mkstemp", refuse)


# ---- every refusal answered (E1, E2) ---------------------------------------------------------------------------


@pytest.mark.parametrize("code,kind", [(errno.EROFS, "read_only"), (errno.ENOSPC, "disk_full"),
                                       (errno.EACCES, "permission")])
def test_a_disk_error_before_queueing_answers_the_ack_and_queues_nothing(sio, services, monkeypatch, code, kind):
    track = services.store.commit("t", "wav", lambda handle: handle.write(b"RIFF"), {"prompt": "p"})
    refusing_writes(monkeypatch, code)
    ack = generation(sio)
    assert ack["ok"] is False and ack["error"]["type"] == kind and "/very" not in ack["error"]["message"]
    stems = sio.client.emit("request_stems", {"name": track.base}, callback=True)
    assert stems["ok"] is False and stems["error"]["type"] == kind
    assert services.queue.snapshot()["queued"] == [] and services.queue.pending_count() == 0
    assert [payload["event"] for payload in sio.named("request_error")] == ["submit_sliders", "request_stems"]


@pytest.mark.parametrize("code,kind,status", [(errno.ENOSPC, "disk_full", 507), (errno.EROFS, "read_only", 500),
                                              (errno.EACCES, "permission", 500)])
def test_http_routes_answer_disk_errors_as_json_without_a_path(client, services, monkeypatch, code, kind, status):
    services.store.commit("t", "wav", lambda handle: handle.write(b"RIFF"), {"prompt": "p"})
    refusing_writes(monkeypatch, code)
    for answer in (client.post("/delete_audio", json={"name": "t"}), client.post("/delete_all_audio"),
                   client.post("/upload_melody", data={"melody": (open(os.devnull, "rb"), "x.wav")})):  # noqa: SIM115
        if answer.status_code == 400:
            continue  # the empty upload is refused before anything is written
        body = answer.get_json()
        assert answer.status_code == status and body["ok"] is False and body["error"]["type"] == kind, body
        assert "/very" not in json.dumps(body)


def test_errors_sent_or_stored_never_hold_a_server_path():
    permission = error_info(OSError(errno.EPERM, "Operation not permitted", "/srv/app/static/audio/.tmp-1.wav"))
    assert permission["type"] == "permission" and "/srv" not in permission["message"]
    other = error_info(OSError(errno.EIO, "Input/output error", "/srv/app/static/audio/x.wav"))
    assert other == {"type": "OSError", "message": "Input/output error"}
    wrapped = error_info(RuntimeError("Error opening '/home/ann/webui/static/audio/t.wav': System error."))
    assert wrapped["message"] == "Error opening 't.wav': System error."


# ---- records validated on load (E3) ---------------------------------------------------------------------------


def test_a_record_with_wrong_types_is_quarantined_at_start_and_ignored_later(make_app, data_dir, tmp_path):
    audio = data_dir / "static" / "audio"
    audio.mkdir(parents=True)
    good = {"prompt": "p", "request": {"prompt": "p", "model": "small", "duration": 5}}
    for name, meta in (("good", good), ("params", {**good, "parameters": "a string"}),
                       ("req", {**good, "request": {"prompt": "p", "model": "small", "duration": "five"}}),
                       ("flag", {**good, "favorite": "yes"})):
        (audio / f"{name}.wav").write_bytes(b"RIFF")
        (audio / f"{name}.json").write_text(json.dumps(meta))
    app = make_app(engine=FakeEngine())
    services = app.extensions["audiocraft_webui"]
    quarantined = {entry["file"]: entry["reason"] for entry in services.recovery.quarantined}
    assert quarantined == {"params.json": "invalid_record", "req.json": "invalid_record",
                           "flag.json": "invalid_record", "params.wav": "audio_without_json",
                           "req.wav": "audio_without_json", "flag.wav": "audio_without_json"}
    assert [track.base for track in services.store.list_tracks()] == ["good"]
    # A record that turns bad while the server runs is ignored by every handler, never raised from.
    (audio / "good.json").write_text(json.dumps({**good, "parameters": 7}))
    sio = EventLog(app.extensions["socketio"].test_client(app, flask_test_client=app.test_client()))
    for event, payload in (("rerun", {"name": "good"}), ("request_stems", {"name": "good"})):
        ack = sio.client.emit(event, payload, callback=True)
        assert ack["ok"] is False and ack["error"]["type"] == "not_found", ack
    assert app.test_client().get("/api/tracks").get_json() == []


# ---- Engine.IO limits (D1) ------------------------------------------------------------------------------------


def test_an_oversize_or_lengthless_polling_post_is_refused_at_once_and_holds_no_thread(tiny_hub, tmp_path):
    server = ServerProcess(tiny_hub, tmp_path / "data").start()
    try:
        before = len(os.listdir(f"/proc/{server.process.pid}/task"))
        for length in ("50000000", None):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
                head = (f"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                        f"Origin: {server.url}\r\nContent-Type: text/plain\r\n")
                head += f"Content-Length: {length}\r\n\r\n" if length else "Transfer-Encoding: chunked\r\n\r\n"
                connection.sendall(head.encode() + b"x" * 1000)  # then nothing more, as the probe did
                started = time.monotonic()
                answer = connection.recv(4096)
                assert answer.split(b" ")[1] in (b"413", b"411") and time.monotonic() - started < 5
                while answer:  # the rest of the answer, then the end: the server closes instead of waiting
                    answer = connection.recv(4096)
        deadline = time.monotonic() + 10
        while len(os.listdir(f"/proc/{server.process.pid}/task")) > before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(os.listdir(f"/proc/{server.process.pid}/task")) <= before
    finally:
        server.stop()


# ---- jobs belong to their owner (D2) ---------------------------------------------------------------------------


@pytest.fixture
def shared(make_app):
    """A --listen app (token login) on the fake engine, whose worker is not started (jobs stay queued)."""
    return make_app({"HOST": "0.0.0.0", "AUTH_TOKEN": "t" * 32}, engine=FakeEngine())


def page(app, client_id: str, address: str) -> EventLog:
    """A logged-in page with its own client id, connecting from ``address``."""
    http = app.test_client()
    http.environ_base["REMOTE_ADDR"] = address
    http.get(f"/?token={'t' * 32}", headers={"Host": "192.168.1.5:5000"})
    sio = app.extensions["socketio"].test_client(app, flask_test_client=http, auth={"client": client_id},
                                                 headers={"Host": "192.168.1.5:5000",
                                                          "Origin": "http://192.168.1.5:5000"})
    return EventLog(sio)


def test_only_the_page_that_queued_a_job_or_the_local_user_may_cancel_it(shared):
    ann, bob = page(shared, "ann-" + "a" * 20, "192.168.1.20"), page(shared, "bob-" + "b" * 20, "192.168.1.30")
    ann_session, bob_session = ann.wait("session"), bob.wait("session")
    assert ann_session["owner"] != bob_session["owner"] and ann_session["cancel_any"] is False
    job_id = generation(ann)["job_id"]
    queued = shared.extensions["audiocraft_webui"].queue.snapshot()["queued"]
    assert [(job["id"], job["owner"]) for job in queued] == [(job_id, ann_session["owner"])]
    refused = bob.client.emit("cancel_job", {"job_id": job_id}, callback=True)
    assert refused["ok"] is False and refused["error"]["type"] == "forbidden"
    reloaded = page(shared, "ann-" + "a" * 20, "192.168.1.20")  # the same page after a reload
    assert reloaded.wait("session")["owner"] == ann_session["owner"]
    assert reloaded.client.emit("cancel_job", {"job_id": job_id}, callback=True)["outcome"] == "removed"
    local = page(shared, "admin-" + "c" * 20, "127.0.0.1")
    assert local.wait("session")["cancel_any"] is True
    other = generation(bob)["job_id"]
    assert local.client.emit("cancel_job", {"job_id": other}, callback=True)["outcome"] == "removed"


def test_on_a_loopback_server_everyone_is_the_local_user(sio, services):
    assert sio.wait("session")["cancel_any"] is True
    assert Path(services.store.root).is_dir()
