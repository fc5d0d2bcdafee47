"""Tags in the files: the prompt, the artist and the record travel inside every WAV, FLAC and MP3, written before
the commit, readable by mutagen (and WAV's LIST/INFO by libsndfile); ``POST /api/tags`` reads them back as data.
"""
from __future__ import annotations

import io
import json

import mutagen
import numpy as np
import pytest
import soundfile as sf

from audiocraft_webui.audio import codecs, tags
from tests.generation_support import module_env
from tests.support import mp3frames

env = module_env("tags")


def record_of(env, done: dict) -> dict:
    """The track's JSON as the tags carry it (without the derived waveform and the file's own name)."""
    meta = env.meta(done)
    return {key: value for key, value in meta.items() if key not in ("waveform", "audio_file")}


def post_tags(env, data: bytes, name: str = "dropped.bin", **headers):
    """Send a file to ``POST /api/tags``."""
    return env.http.post("/api/tags", data={"file": (io.BytesIO(data), name)}, headers=headers)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
def test_every_format_carries_title_artist_and_the_record(env, fmt):
    done = env.generate(format=fmt, artist="Нео Band", prompt="Тёплый lofi piano", values={"duration": 1, "seed": 5})
    path = env.path(done)
    found = mutagen.File(path)
    expected = record_of(env, done)
    if fmt == "flac":
        assert found.tags["TITLE"] == ["Тёплый lofi piano"] and found.tags["ARTIST"] == ["Нео Band"]
        assert json.loads(found.tags["AUDIOCRAFT_WEBUI"][0]) == expected
    else:
        assert found.tags["TIT2"].text == ["Тёплый lofi piano"] and found.tags["TPE1"].text == ["Нео Band"]
        assert json.loads(found.tags["TXXX:audiocraft-webui"].text[0]) == expected
    if fmt == "mp3":
        assert json.loads(found.tags["COMM:audiocraft-webui:eng"].text[0]) == expected
        assert set(mp3frames.mp3_frame_bitrates(path)) == {320}
    if fmt == "wav":  # LIST/INFO, for the tools that read RIFF INFO
        with sf.SoundFile(path) as info:
            assert (info.title, info.artist) == ("Тёплый lofi piano", "Нео Band")
            assert json.loads(info.comment) == expected
    assert sf.info(path).frames == 32000, "the tags change no sample"
    assert tags.read(io.BytesIO(path.read_bytes())) == expected


def test_the_tags_give_the_request_back(env):
    done = env.generate(format="mp3", loudness="-16", stem_split="", values={"duration": 2, "seed": 77})
    answer = post_tags(env, env.path(done).read_bytes(), "take.mp3")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["ok"] is True and body["seed"] == 77 and body["clamped"] == {}
    assert body["request"] == env.meta(done)["request"]
    assert list(env.services.uploads.folder.iterdir()) == [], "nothing of the file is kept"


@pytest.mark.parametrize(("request_tag", "field"), [
    ({"prompt": ["a list"], "model": "small"}, "prompt"), ({"prompt": "x", "model": "../../etc/passwd"}, "model"),
    ({"prompt": "x", "model": "small", "format": "exe"}, "format"), ({"prompt": "x", "seed": 2 ** 70}, "seed"),
    ({"prompt": "x", "loudness": "+6"}, "loudness"), ({"prompt": "x", "duration": "NaN"}, "duration"),
])
def test_forged_tags_are_data_and_refused_by_the_field_they_break(env, request_tag, field):
    data = tags.write(wav_bytes(), "wav", {"prompt": "forged", "request": request_tag, "parameters": {}})
    answer = post_tags(env, data, "forged.wav")
    assert answer.status_code == 422
    assert answer.get_json()["error"]["type"] == "invalid_request" and answer.get_json()["error"]["field"] == field


def wav_bytes() -> bytes:
    """Half a second of a plain WAV."""
    buffer = io.BytesIO()
    codecs.encode(np.zeros((1, 8000), np.float32), 16000, "wav", buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "kind"), [
    (wav_bytes(), "no_tags"), (b"", "no_tags"), (b"\x00" * 1000, "no_tags"), (b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f", None),
    (b"fLaC" + b"\xff" * 64, None), (b"RIFF\xff\xff\xff\xffWAVEid3 \xff\xff\xff\x7f", None),
])
def test_files_without_our_tags_or_broken_ones_are_a_clear_4xx(env, data, kind):
    answer = post_tags(env, data)
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["field"] == "file" and error["type"] in ({kind} if kind else {"no_tags", "invalid_tags"})


def test_a_record_that_is_not_an_object_is_refused(env):
    buffer = io.BytesIO(wav_bytes())
    found = mutagen.File(buffer)
    found.add_tags()
    from mutagen.id3 import TXXX
    found.tags.add(TXXX(encoding=3, desc="audiocraft-webui", text="[1, 2, 3]"))
    buffer.seek(0)
    found.save(buffer)
    answer = post_tags(env, buffer.getvalue())
    assert answer.status_code == 422 and answer.get_json()["error"]["type"] == "invalid_tags"


def test_no_file_or_another_site_is_refused(env):
    assert env.http.post("/api/tags").status_code == 400
    assert env.http.post("/api/tags").get_json()["error"]["field"] == "file"
    answer = post_tags(env, wav_bytes(), Host="localhost", Origin="https://evil.example")
    assert answer.status_code == 403
