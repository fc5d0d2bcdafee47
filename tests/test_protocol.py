"""Validation of client payloads: types refused with the field named, ranges clamped and reported."""
from __future__ import annotations

import pytest

from audiocraft_webui.models import ModelCatalog
from audiocraft_webui.protocol import RANGES, GenerationRequest, RequestError, parse_generation_request, upload_ref

CATALOG = ModelCatalog()
UPLOAD = "0123456789abcdef0123456789abcdef.wav"


def parse(**payload):
    """Parse a payload with a default prompt and model."""
    return parse_generation_request({"prompt": "lofi beat", "model": "small", **payload}, CATALOG)


def test_original_string_values_are_cast_to_the_right_types():
    request = parse(values={"top_k": "250.0", "duration": "12", "cfg_coef": "3.5", "top_p": "0", "temperature": "1",
                            "seed": "42"})
    assert request.top_k == 250 and isinstance(request.top_k, int)
    assert request.duration == 12 and isinstance(request.duration, int)
    assert request.cfg_coef == 3.5 and request.top_p == 0.0 and request.seed == 42
    assert request.clamped == {}


def test_defaults_when_values_are_missing():
    request = parse()
    assert (request.duration, request.top_k, request.top_p, request.temperature, request.cfg_coef, request.seed) == (
        30, 250, 0.67, 1.2, 4.0, -1)
    assert request.auto_tune is True and request.format == "wav" and request.sample_rate == "original"


@pytest.mark.parametrize("name,value,used", [
    ("duration", 0, 1), ("duration", 1e9, 300), ("top_k", -5, 0), ("top_k", 2.6, 3), ("top_p", 2, 1.0),
    ("temperature", 0, 0.1), ("cfg_coef", 1e6, 10.0),
])
def test_out_of_range_numbers_are_clamped_and_reported(name, value, used):
    request = parse(values={name: value})
    assert getattr(request, name) == used
    assert request.clamped[name] == {"requested": float(value), "used": used}
    assert RANGES[name][1] <= used <= RANGES[name][2]


@pytest.mark.parametrize("payload,field", [
    ({"prompt": ""}, "prompt"), ({"prompt": "   "}, "prompt"), ({"prompt": ["a"]}, "prompt"),
    ({"prompt": None}, "prompt"), ({"prompt": 5}, "prompt"), ({"prompt": "x" * 100_000}, "prompt"),
    ({"values": {"duration": "NaN"}}, "duration"), ({"values": {"duration": float("inf")}}, "duration"),
    ({"values": {"top_k": [1]}}, "top_k"), ({"values": {"top_k": True}}, "top_k"),
    ({"values": {"temperature": "warm"}}, "temperature"), ({"values": "x"}, "values"),
    ({"values": {"seed": "x"}}, "seed"), ({"values": {"seed": 2**64}}, "seed"), ({"values": {"seed": -2}}, "seed"),
    ({"values": {"seed": 1.5}}, "seed"), ({"format": "exe"}, "format"), ({"sample_rate": 12345}, "sample_rate"),
    ({"model": "../../x"}, "model"), ({"model": "/etc/passwd"}, "model"), ({"model": ["small"]}, "model"),
    ({"stem_split": "everything"}, "stem_split"), ({"mbd": "maybe"}, "mbd"), ({"artist": {"a": 1}}, "artist"),
    ({"audioPromptUrl": "../../webui.py", "model": "melody"}, "audio_prompt"),
    ({"audio_prompt": UPLOAD}, "audio_prompt"),
    ({"appendContinuation": True}, "continuation"),
])
def test_bad_payloads_name_the_field(payload, field):
    with pytest.raises(RequestError) as caught:
        parse(**payload)
    assert caught.value.field == field
    assert caught.value.as_json()["message"]


def test_payload_must_be_an_object():
    for payload in (None, [], "submit", 3):
        with pytest.raises(RequestError):
            parse_generation_request(payload, CATALOG)


def test_unknown_keys_are_ignored_and_full_hub_ids_accepted():
    request = parse_generation_request({"prompt": "x", "model": "facebook/musicgen-melody", "": 1.0, "junk": [1]},
                                       CATALOG)
    assert request.model == "melody"


def test_upload_references_reduce_to_server_ids():
    assert upload_ref("f", UPLOAD) == UPLOAD
    assert upload_ref("f", f"static/uploads/{UPLOAD}") == UPLOAD
    assert upload_ref("f", f"http://127.0.0.1:5000/static/uploads/{UPLOAD}?x=1") == UPLOAD
    assert upload_ref("f", "") is None
    for bad in ("http://127.0.0.1:5000/", "../x.wav", "a" * 400, "/etc/passwd", f"{UPLOAD}/..", 7):
        with pytest.raises(RequestError):
            upload_ref("f", bad)


def test_melody_prompt_accepted_for_melody_models_only():
    assert parse(model="melody", audio_prompt=UPLOAD).audio_prompt == UPLOAD
    assert parse(model="stereo-melody-large", audioPromptUrl=f"static/uploads/{UPLOAD}").audio_prompt == UPLOAD


def test_continuation_only_when_append_is_on():
    assert parse(continuation=UPLOAD).continuation is None
    assert parse(appendContinuation=True, continuationUrl=UPLOAD).continuation == UPLOAD


def test_request_round_trips_through_json():
    request = parse(values={"seed": 7, "duration": 5}, artist="Band", stem_split="drums", format="mp3",
                    sample_rate="48000")
    assert request.sample_rate == 48000
    assert GenerationRequest.from_json(request.as_json()) == request
