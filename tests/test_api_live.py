"""The REST API on a real ``webui.py``: its OpenAPI document validated, fuzzed from the document with schemathesis,
and the command-line client end to end (generate with progress, list, stems, cancel; with a token when listening).

The server runs the real engine on the tiny offline models in its worker process (tests/serverproc.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
import requests
import schemathesis
import soundfile as sf
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from audiocraft_webui.client.__main__ import main as client_main
from audiocraft_webui.client.api import Client
from audiocraft_webui.web.api.base import spec
from tests.serverproc import ROOT, ServerProcess

#: Examples per operation and mode: about a minute for the whole API on 2 cores.
EXAMPLES = 12
#: The checks the fuzzing run holds the API to: never a 5xx, and every answer as its document says.
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def server(tiny_hub, tmp_path_factory):
    """A loopback webui.py with a short queue (generations the fuzzing queues are cancelled at once)."""
    process = ServerProcess(tiny_hub, tmp_path_factory.mktemp("api") / "data", args=("--queue-max", "3")).start()
    yield process
    process.stop()


def test_the_document_is_valid_openapi_3_1_and_covers_every_route(server):
    document = requests.get(f"{server.url}/api/v1/openapi.json", timeout=10).json()
    validate(document)
    assert document == json.loads(json.dumps(spec.document())), "the fuzzing below reads the served document"
    assert document["openapi"] == "3.1.0"
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    assert operations == {
        ("/api/v1/generations", "post"), ("/api/v1/jobs", "get"), ("/api/v1/jobs/{job_id}", "get"),
        ("/api/v1/jobs/{job_id}", "delete"), ("/api/v1/jobs/{job_id}/events", "get"), ("/api/v1/models", "get"),
        ("/api/v1/tracks", "get"), ("/api/v1/tracks/{name}", "get"), ("/api/v1/tracks/{name}", "patch"),
        ("/api/v1/tracks/{name}", "delete"), ("/api/v1/tracks/{name}/stems", "post"), ("/api/v1/uploads", "post"),
        ("/api/v1/uploads/{upload_id}/stems", "post"), ("/api/v1/token", "get")}
    body = document["components"]["schemas"]["GenerationBody"]
    assert body["properties"]["format"]["enum"] == ["wav", "flac", "mp3"] and body["additionalProperties"] is False


def test_the_docs_page_is_offline_with_its_own_policy(server):
    page = requests.get(f"{server.url}/api/v1/docs", timeout=10)
    assert page.status_code == 200 and "<rapi-doc" in page.text and "http" not in page.text.split("<body>")[1]
    assert 'load-fonts="false"' in page.text, "RapiDoc would fetch its fonts from a font server"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy
    script = requests.get(f"{server.url}/static/vendor/rapidoc-min.js", timeout=10)
    assert script.status_code == 200 and script.content.startswith(b"/*! RapiDoc")


# The document the server serves, generated here (schemathesis's fixture-loaded schemas need pytest < 9); the
# first test checks it is the one served. Each operation is a test of its own, bounded in examples.
schema = schemathesis.openapi.from_dict(spec.document())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES,
                                deterministic=True)


@schema.parametrize()
def test_the_api_keeps_to_its_document(case, server):
    """Property-based: every call the document allows (and many it does not) gets a 4xx or its documented answer."""
    response = case.call_and_validate(base_url=server.url, checks=CHECKS, timeout=60)
    if response.status_code == 202:  # a job was queued: cancel it, so the worker stays free for the next cases
        requests.delete(f"{server.url}/api/v1/jobs/{response.json()['job_id']}", timeout=10)


def run_client(server: ServerProcess, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m audiocraft_webui.client`` against the server."""
    env = {**os.environ, "AUDIOCRAFT_WEBUI_SERVER": server.url}
    env.pop("AUDIOCRAFT_WEBUI_API_TOKEN", None)
    command = [sys.executable, "-m", "audiocraft_webui.client", *(("--token", token) if token else ()), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_client_generates_with_progress_lists_and_splits(server, tmp_path):
    take = tmp_path / "take.flac"
    done = run_client(server, "generate", "warm lofi piano", "--duration", "1", "--model", "small", "--seed", "5",
                      "--out", str(take))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(take)
    assert "queued at" in done.stderr and "generating" in done.stderr and "100.0%" not in done.stdout
    audio, rate = sf.read(take)
    assert rate == 32000 and audio.shape[0] == 32000
    listed = run_client(server, "list", "--query", "lofi")
    name = listed.stdout.split("\t", 1)[0]
    assert listed.returncode == 0 and name.startswith("small_5_") and "warm lofi piano" in listed.stdout
    stems = run_client(server, "stems", name, "--target", "drums", "--out", str(tmp_path / "stems"))
    assert stems.returncode == 0, stems.stderr
    assert sorted(path.name for path in (tmp_path / "stems").iterdir()) == ["drums.wav", "no_drums.wav"]


def test_the_client_saves_every_take_and_makes_loops(server, tmp_path):
    take = tmp_path / "take.wav"
    done = run_client(server, "generate", "client takes", "--duration", "1", "--seed", "40", "--takes", "2",
                      "--out", str(take))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "take-A.wav"), str(tmp_path / "take-B.wav")]
    first, second = (sf.read(tmp_path / f"take-{letter}.wav")[0] for letter in "AB")
    assert first.shape == second.shape and not (first == second).all()
    loop = tmp_path / "loop.wav"
    looped = run_client(server, "generate", "client loop", "--bpm", "96", "--loop", "1", "--beats-per-bar", "3",
                        "--out", str(loop))
    assert looped.returncode == 0, looped.stderr
    assert sf.info(loop).frames == round(3 * 60 / 96 * 32000)
    refused = run_client(server, "generate", "x", "--bpm", "96", "--loop", "0")
    assert refused.returncode == 2 and "loop.bars" in refused.stderr


def test_the_client_cancels_and_says_why_a_request_is_refused(server, tmp_path):
    client = Client(server.url)
    created = client.call("POST", "/generations", {"prompt": "long", "duration": 300, "auto_tune": False})
    cancelled = run_client(server, "cancel", created["job_id"])
    assert cancelled.returncode == 0 and created["job_id"] in cancelled.stdout
    assert client.call("GET", f"/jobs/{created['job_id']}")["state"] in ("cancelled", "running")
    refused = run_client(server, "generate", "x", "--model", "../../etc/passwd")
    assert refused.returncode == 2 and "invalid_request" in refused.stderr and "model" in refused.stderr
    unreachable = client_main(["--server", "http://127.0.0.1:9", "list"])
    assert unreachable == 2


def test_the_client_with_the_token_of_a_listening_server(tiny_hub, tmp_path):
    token = "client-test-token-0123456789"
    listening = ServerProcess(tiny_hub, tmp_path / "data", args=("--listen", "--api-token", token)).start()
    try:
        refused = run_client(listening, "list")
        assert refused.returncode == 2 and "login_required" in refused.stderr
        assert run_client(listening, "list", token=token).returncode == 0
        # A job queued over the API is in every page's queue too (the same queue and emitter).
        created = Client(listening.url, token).call("POST", "/generations", {"prompt": "shared", "duration": 1})
        request = urllib.request.Request(f"{listening.url}/api/v1/jobs/{created['job_id']}",
                                         headers={"Authorization": f"Bearer {token}"})
        deadline = time.monotonic() + 120
        while json.load(urllib.request.urlopen(request, timeout=10))["state"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        listening.stop()
