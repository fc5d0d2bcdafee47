"""Property-based fuzzing of every client -> server Socket.IO event (checklist rows 16-19 of docs/SECURITY.md).

Whatever a client sends (wrong types, lists for strings, huge or non-finite numbers, missing and unknown keys,
100 kB strings), each event answers with a clean ack (``{ok: false, error: {type, message}}`` or an accepted
job), no exception escapes a handler (the Socket.IO test client would re-raise it here), and every job in the
queue is valid. Examples are bounded so the module runs in seconds.
"""
from __future__ import annotations

import io
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiocraft_webui.protocol import (
    FORMATS,
    MAX_ARTIST_CHARS,
    MAX_PROMPT_CHARS,
    RANGES,
    SAMPLE_RATES,
    STEM_TARGETS,
    UPLOAD_ID,
    parse_generation_request,
)
from tests.conftest import build_app
from tests.fakes import FakeEngine
from tests.stems_kit import audio_bytes, noise

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HUGE = ["x" * 100_000, "я" * 100_000, "../" * 30_000]
KNOWN_KEYS = ["prompt", "model", "values", "format", "sample_rate", "seed", "duration", "top_k", "top_p",
              "temperature", "cfg_coef", "audioPromptUrl", "audio_prompt", "continuationUrl", "continuation",
              "appendContinuation", "mbd", "stem_split", "artist", "auto_tune", "keep_mono", "name", "json", "target",
              "job_id", "id", "path", "filePath", ""]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40), st.sampled_from(HUGE),
    st.sampled_from(["small", "melody", "../../x", "/etc/passwd", "facebook/musicgen-small", "NaN", "inf", "1e309",
                     "30", "-1", "", " ", "wav", "exe", "48000", "12345", "all", "vocals", "true",
                     "static/audio/x.json"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4), max_leaves=8)
payloads = st.one_of(
    values,
    st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=10), values, max_size=10),
    st.fixed_dictionaries({"prompt": st.text(min_size=1, max_size=60) | st.sampled_from(HUGE), "model": scalars},
                          optional={"values": st.dictionaries(st.sampled_from([*RANGES, "seed", "x"]), scalars),
                                    **{key: values for key in KNOWN_KEYS[2:]}}),
)


@pytest.fixture(scope="module")
def fuzz(tiny_hub, tmp_path_factory):
    """One app for the module (jobs are queued, never run), a connected client, a track and an upload."""
    app = build_app({"TESTING": True, "DATA_DIR": str(tmp_path_factory.mktemp("fuzz")), "QUEUE_MAX": 100_000},
                    engine=FakeEngine())
    services = app.extensions["audiocraft_webui"]
    request = parse_generation_request({"prompt": "seed track", "model": "small"}, services.catalog)
    data = audio_bytes(noise(0.5), 32000, "wav")
    services.store.commit("fuzz_track", "wav", lambda handle: handle.write(data),
                          {"prompt": "seed track", "request": request.as_json()})
    upload = services.uploads.save(io.BytesIO(data), "clip.wav", "demucs")
    client = app.extensions["socketio"].test_client(app)
    yield app, services, client, upload.id
    client.disconnect()


def check_job(services, job_id: str) -> None:
    """A queued job is one the worker can run: re-validating what it holds gives the same thing."""
    job = services.queue.get(job_id)
    assert job is not None and job.state.value == "queued"
    if job.kind == "generate":
        request = job.task.request
        assert parse_generation_request(request.as_json(), services.catalog) == request
        assert 0 < len(request.prompt) <= MAX_PROMPT_CHARS and len(request.artist) <= MAX_ARTIST_CHARS
        for name, (kind, low, high, _) in RANGES.items():
            value = getattr(request, name)
            assert isinstance(value, kind) and low <= value <= high and math.isfinite(value)
        assert request.format in FORMATS and request.sample_rate in SAMPLE_RATES
        assert request.stem_split in STEM_TARGETS and isinstance(job.task.seed, int)
    elif job.kind == "stems":
        assert services.store.get(job.task.name) is not None and job.task.target in STEM_TARGETS[1:]
    else:
        assert job.kind == "demucs_any" and UPLOAD_ID.match(job.task.upload)
        assert services.uploads.info(job.task.upload) is not None


def check_ack(services, ack: object) -> None:
    """Every answer is a clean ack; an accepted one names a valid queued job."""
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
    if ack["ok"]:
        check_job(services, ack["job_id"])
    else:
        error = ack["error"]
        assert isinstance(error["type"], str) and isinstance(error["message"], str) and error["message"]
        assert "Traceback" not in error["message"]


def emit(fuzz, event: str, payload: object) -> None:
    """Send one event, check the ack, and cancel what got queued (so later examples are not 'already queued')."""
    _, services, client, _ = fuzz
    ack = client.emit(event, payload, callback=True)
    check_ack(services, ack)
    if ack["ok"]:
        assert client.emit("cancel_job", {"job_id": ack["job_id"]}, callback=True)["outcome"] == "removed"


@FUZZ
@given(payload=payloads)
def test_submit_sliders_never_breaks_and_never_queues_an_invalid_job(fuzz, payload):
    emit(fuzz, "submit_sliders", payload)


@FUZZ
@given(payload=payloads, name=st.sampled_from(["fuzz_track", "../fuzz_track", "fuzz_track.json"]) | values)
def test_rerun_never_breaks(fuzz, payload, name):
    emit(fuzz, "rerun", payload if not isinstance(payload, dict) else {**payload, "name": name})


@settings(FUZZ, max_examples=60)
@given(payload=payloads, job_id=values)
def test_cancel_job_never_breaks(fuzz, payload, job_id):
    client = fuzz[2]
    ack = client.emit("cancel_job", payload if not isinstance(payload, dict) else {**payload, "job_id": job_id},
                      callback=True)
    assert isinstance(ack, dict) and isinstance(ack["ok"], bool)
    assert ack["ok"] is False or ack["outcome"] in ("removed", "cancelling")


@settings(FUZZ, max_examples=80)
@given(payload=payloads, name=st.sampled_from(["fuzz_track", "static/audio/fuzz_track.json"]) | values,
       target=st.sampled_from(list(STEM_TARGETS)) | values)
def test_request_stems_never_breaks(fuzz, payload, name, target):
    key = "json" if isinstance(name, str) and name.startswith("static/") else "name"
    emit(fuzz, "request_stems", payload if not isinstance(payload, dict) else {**payload, key: name, "target": target})


@settings(FUZZ, max_examples=80)
@given(payload=payloads, upload=st.sampled_from(["UPLOAD", "static/uploads/UPLOAD", "../UPLOAD"]) | values)
def test_demucs_any_never_breaks(fuzz, payload, upload):
    real = upload.replace("UPLOAD", fuzz[3]) if isinstance(upload, str) else upload
    emit(fuzz, "demucs_any", payload if not isinstance(payload, dict) else {**payload, "id": real})


def test_the_server_is_still_up_and_serves_a_valid_request_after_the_fuzzing(fuzz):
    app, services, client, _ = fuzz
    assert client.is_connected()
    ack = client.emit("submit_sliders", {"prompt": "still here", "model": "small", "values": {"duration": "3"}},
                      callback=True)
    assert ack["ok"] and services.queue.get(ack["job_id"]).task.request.duration == 3
    assert app.test_client().get("/api/tracks").status_code == 200


@pytest.mark.parametrize("field,value,used", [
    ("duration", 0, 1), ("duration", -1, 1), ("duration", 1e9, 300), ("duration", float("nan"), None),
    ("duration", "30", 30), ("top_k", -1, 0), ("top_k", 1e9, 250), ("top_k", 2.6, 3), ("top_p", 2, 1.0),
    ("temperature", 0, 0.1), ("temperature", -1, 0.1), ("temperature", float("inf"), None), ("cfg_coef", 1e6, 10.0),
    ("seed", 2**64, None), ("seed", -2, None), ("seed", "x", None), ("sample_rate", 12345, None),
    ("format", "exe", None),
])
def test_each_bad_value_of_row_16_is_refused_by_name_or_clamped_and_reported(fuzz, field, value, used):
    _, services, client, _ = fuzz
    numbers = field in RANGES or field == "seed"
    payload = {"prompt": "p", "model": "small", **({"values": {field: value}} if numbers else {field: value})}
    before = services.queue.pending_count()
    ack = client.emit("submit_sliders", payload, callback=True)
    check_ack(services, ack)
    if used is None:  # not a finite number, or not an allowed choice: refused, naming the field
        assert ack["ok"] is False and ack["error"]["field"] == field
        assert services.queue.pending_count() == before
        return
    # A finite number is clamped into the documented range (the same ranges the page's controls get) and the
    # ack says so.
    job = services.queue.get(ack["job_id"])
    assert getattr(job.task.request, field) == used
    assert ack["clamped"].get(field, {"used": used})["used"] == used
    assert (field in ack["clamped"]) == (float(value) != used)
    client.emit("cancel_job", {"job_id": ack["job_id"]}, callback=True)


@pytest.mark.parametrize("payload", [
    {"prompt": ["a", "b"], "model": "small"}, {"prompt": {"text": "a"}, "model": "small"},
    {"prompt": 5, "model": "small"}, {"prompt": None, "model": "small"}, ["prompt"], "prompt", 7, None,
    {"prompt": "p", "model": "../../x"}, {"prompt": "p", "model": "/abs/checkpoint.th"},
    {"prompt": "p", "model": "facebook/musicgen-unknown"}, {"prompt": "p", "model": "someone/evil-model"},
])
def test_type_confusion_and_unknown_models_get_an_error_ack(fuzz, payload):
    _, services, client, _ = fuzz
    before = services.queue.pending_count()
    ack = client.emit("submit_sliders", payload, callback=True)
    assert ack["ok"] is False and ack["error"]["field"] in ("payload", "prompt", "model")
    assert services.queue.pending_count() == before


def test_a_flood_fills_the_queue_to_its_cap_and_the_rest_hear_queue_full(make_app):
    app = make_app({"QUEUE_MAX": 32}, engine=FakeEngine())
    client = app.extensions["socketio"].test_client(app)
    acks = [client.emit("submit_sliders", {"prompt": f"p{i}", "model": "small"}, callback=True) for i in range(300)]
    accepted = [ack for ack in acks if ack["ok"]]
    refused = [ack for ack in acks if not ack["ok"]]
    assert len(accepted) == 32 and len(refused) == 268
    assert {ack["error"]["type"] for ack in refused} == {"queue_full"}
    assert "queue is full" in refused[0]["error"]["message"]
    assert app.extensions["audiocraft_webui"].queue.pending_count() == 32
    assert app.test_client().get("/api/tracks").status_code == 200
    client.disconnect()
