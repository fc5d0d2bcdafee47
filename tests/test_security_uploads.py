"""Uploads: size and form limits, content checks, and decoding in a sandboxed child with limits.

Checklist rows 11, 13 and 14 of docs/SECURITY.md. Every refused upload must answer a clear 4xx, leave no
file behind (no temp, no sidecar) and leave the server able to take the next upload.
"""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import webui
from audiocraft_webui.audio import sandbox, sandbox_child
from audiocraft_webui.uploads import MAX_SECONDS, limits_for
from tests.fakes import FakeEngine

MB = 1024 * 1024


@pytest.fixture
def app(make_app):
    """An app on the fake engine with a 2 MB upload limit."""
    return make_app({"MAX_CONTENT_LENGTH": 2 * MB}, engine=FakeEngine())


def tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    """A 330 Hz tone, float32 ``[T, C]`` (soundfile's layout)."""
    wave = 0.3 * np.sin(2 * np.pi * 330 * np.arange(int(seconds * rate)) / rate)
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def encode(audio: np.ndarray, rate: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    """Encode ``[T, C]`` audio in memory."""
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def wav_header(channels: int, rate: int, data_bytes: int, bits: int = 16, tag: int = 1,
               block_align: int | None = None) -> bytes:
    """A RIFF/WAVE header whose fmt and data chunks say whatever the test wants."""
    align = channels * bits // 8 if block_align is None else block_align
    fmt = struct.pack("<HHIIHH", tag, channels & 0xFFFF, rate, rate * align & 0xFFFFFFFF, align & 0xFFFF, bits)
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes & 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + fmt + b"data" + struct.pack("<I", data_bytes))


def flac_declaring(total_frames: int, seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A real FLAC whose STREAMINFO claims ``total_frames`` (0 = unknown length)."""
    data = bytearray(encode(tone(seconds, rate), rate, "FLAC"))
    field = int.from_bytes(data[21:26], "big") & ~((1 << 36) - 1) | total_frames
    data[21:26] = field.to_bytes(5, "big")
    return bytes(data)


def ima_adpcm_overflow() -> bytes:
    """An IMA-ADPCM WAV whose block geometry is inconsistent (the class of decoder bugs behind SIGFPE reports)."""
    fmt = struct.pack("<HHIIHHHH", 0x11, 2, 44100, 0, 0, 4, 2, 0xFFFF)
    return (b"RIFF" + struct.pack("<I", 4 + 8 + 20 + 8 + 1000) + b"WAVE" + b"fmt " + struct.pack("<I", 20) + fmt
            + b"data" + struct.pack("<I", 1000) + os.urandom(1000))


MALFORMED = {
    "empty": b"",
    "random-bytes": bytes(np.random.default_rng(1).integers(1, 255, 4000, dtype=np.uint8)),
    "truncated-riff": encode(tone(1.0, 16000), 16000)[:2000],
    "truncated-header": encode(tone(1.0, 16000), 16000)[:30],
    "rate-0": wav_header(1, 0, 64000) + bytes(64000),
    "channels-0": wav_header(0, 16000, 64000) + bytes(64000),
    "channels-65535": wav_header(65535, 16000, 64000) + bytes(64000),
    "ima-adpcm-overflow": ima_adpcm_overflow(),
    "png-as-mp3": b"\x89PNG\r\n\x1a\n" + bytes(2000),
    "zip-as-mp3": b"PK\x03\x04" + bytes(2000),
    "truncated-flac": encode(tone(1.0, 16000), 16000, "FLAC")[:3000],
    "html": b"<!doctype html><script>alert(1)</script>",
}


def upload(client, data: bytes, filename: str = "clip.wav", route: str = "/upload_melody", field: str = "melody"):
    """POST one file; returns the response."""
    return client.post(route, data={field: (io.BytesIO(data), filename)}, content_type="multipart/form-data")


def assert_nothing_left(services) -> None:
    """The uploads folder holds no file, temp file or sidecar."""
    assert list(services.uploads.folder.iterdir()) == []


def assert_still_serving(client, services) -> None:
    """A good upload right after a bad one is accepted (the server is up and unharmed)."""
    answer = upload(client, encode(tone(0.5, 16000), 16000))
    assert answer.status_code == 200, answer.get_json()
    services.uploads.folder.joinpath(answer.get_json()["id"]).unlink()
    services.uploads.folder.joinpath(answer.get_json()["id"] + ".json").unlink()


# ---- size and form limits (row 11) ---------------------------------------------------------------------------


def test_a_body_over_the_limit_gets_413_with_the_limit_in_words(client, services):
    answer = upload(client, bytes(3 * MB))
    assert answer.status_code == 413 and answer.get_json()["error"] == "the upload is too large (limit 2 MB)"
    assert_nothing_left(services)


def test_a_chunked_body_without_length_is_cut_at_the_limit_too(client, services):
    body = (b'--x\r\nContent-Disposition: form-data; name="melody"; filename="a.wav"\r\n\r\n' + bytes(3 * MB)
            + b"\r\n--x--\r\n")
    answer = client.post("/upload_melody", input_stream=io.BytesIO(body),
                         headers={"Transfer-Encoding": "chunked", "Content-Type": "multipart/form-data; boundary=x"},
                         environ_overrides={"wsgi.input_terminated": True})
    assert answer.status_code == 413
    assert_nothing_left(services)


@pytest.mark.parametrize("form,route", [
    ({f"f{i}": "x" for i in range(10_000)}, "/upload_melody"),
    ({"prompt": "x" * 1_000_000}, "/upload_continuation"),
    ({"note": "x" * 5_000_000}, "/upload_demucs_any"),
])
def test_many_parts_or_a_huge_text_field_get_413(make_app, form, route):
    big_app = make_app({"MAX_CONTENT_LENGTH": 50 * MB}, engine=FakeEngine())
    answer = big_app.test_client().post(route, data=form, content_type="multipart/form-data")
    assert answer.status_code == 413
    assert answer.get_json()["error"] == "the form has too many parts or a text field that is too large"


def test_the_max_upload_flag_sets_the_limit(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(webui, "serve", lambda app, host, port: seen.update(app=app))
    webui.main(["--max-upload-mb", "3", "--data-dir", str(tmp_path), "--device", "cpu"])
    assert seen["app"].config["MAX_CONTENT_LENGTH"] == 3 * MB
    assert webui.parse_args([]).max_upload_mb == 200


# ---- content checks (rows 12-14) ------------------------------------------------------------------------------


@pytest.mark.parametrize("name,route,field", [
    *[(name, "/upload_melody", "melody") for name in MALFORMED],
    ("ima-adpcm-overflow", "/upload_continuation", "continuation"), ("png-as-mp3", "/upload_demucs_any", "file"),
])
def test_malformed_files_get_a_clear_400_and_leave_nothing(client, services, name, route, field):
    answer = upload(client, MALFORMED[name], "x.mp3" if "mp3" in name else "x.wav", route, field)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error == "the file is empty" if name == "empty" else error.startswith("unsupported or corrupt audio")
    assert_nothing_left(services)
    assert_still_serving(client, services)


@pytest.mark.parametrize("data,why", [
    (flac_declaring(10 * 3600 * 8000), "declares 36000.0 s"),
    (wav_header(2, 48000, 0x7FFFFFF0) + bytes(64000), "declares 11184.8 s"),
    (encode(tone(0.01, 384000, 32), 384000, subtype="PCM_16"), "32 channels"),
    (encode(tone(0.05, 384000, 2), 384000, subtype="PCM_16"), "sample rate 384000 Hz"),
    (wav_header(8, 192000, 200 * 192000 * 16) + bytes(6400), "at most 18.8 s"),
    (encode(tone(MAX_SECONDS["melody"] + 1, 8000), 8000, "FLAC"), "at most 300.0 s"),
])
def test_bombs_are_refused_from_the_header_before_the_full_decode(client, services, data, why):
    answer = upload(client, data)
    assert answer.status_code == 400 and why in answer.get_json()["error"], answer.get_json()
    assert_nothing_left(services)


def test_a_length_the_header_hides_is_still_cut_while_decoding(monkeypatch, tmp_path):
    # In-process on purpose: the header of this file is made to say "length unknown" (as streamed files do).
    path = tmp_path / "stream.wav"
    path.write_bytes(encode(tone(3.0, 8000), 8000))
    monkeypatch.setattr(sf.SoundFile, "frames", property(lambda self: sandbox_child._UNKNOWN_FRAMES))
    monkeypatch.setattr(sandbox_child, "_wav_declared_frames", lambda path: None)
    request = {"path": str(path), "output": None, "container": "WAV", **asdict(limits_for("melody")),
               "max_seconds": 2.0}
    with pytest.raises(sandbox_child._Refused, match="lasts longer than the 2.0 s accepted"):
        sandbox_child._scan(request)
    assert sandbox_child._scan({**request, "max_seconds": 5.0})["frames"] == 24000


def test_a_long_mp3_decodes_exactly_as_a_single_read_of_the_whole_file(tmp_path):
    # libsndfile 1.2 garbles MP3 samples read in several calls; the sandbox must not (checked against one read).
    path = tmp_path / "long.mp3"
    path.write_bytes(encode(tone(3.0, 48000, 2), 48000, "MP3"))
    audio, rate, probe = sandbox.decode(path, limits_for("melody"), tmp_path)
    whole, _ = sf.read(path, dtype="float32", always_2d=True)
    assert rate == 48000 and probe.frames == len(whole) > sandbox_child.BLOCK_FRAMES
    np.testing.assert_array_equal(audio, whole.T)


def test_every_container_is_accepted_by_content_and_stored_under_its_own_extension(client, services):
    for fmt, subtype, ext in (("WAV", "PCM_24", "wav"), ("FLAC", None, "flac"), ("OGG", "VORBIS", "ogg"),
                              ("MP3", None, "mp3")):
        answer = upload(client, encode(tone(1.0, 32000, 2), 32000, fmt, subtype), "named-wrong.txt")
        body = answer.get_json()
        assert answer.status_code == 200 and body["id"].endswith(f".{ext}") and body["channels"] == 2, body
        assert abs(body["duration"] - 1.0) < 0.1


def test_nan_inf_and_overs_in_a_float_wav_are_sanitised_before_they_reach_a_track(client, sio, services,
                                                                                  running_worker):
    audio = tone(1.0, 32000)
    audio[100:200] = np.nan
    audio[300] = np.inf
    audio[400] = -np.inf
    audio[500] = 4.0
    answer = upload(client, encode(audio, 32000, subtype="FLOAT"), "nan.wav", "/upload_continuation", "continuation")
    assert answer.status_code == 200
    upload_id = answer.get_json()["id"]
    decoded, rate = services.uploads.read(upload_id)
    assert rate == 32000 and np.isfinite(decoded).all() and np.abs(decoded).max() <= 1.0
    ack = sio.client.emit("submit_sliders", {"prompt": "p", "model": "small", "appendContinuation": True,
                                             "continuationUrl": upload_id, "values": {"duration": 1}}, callback=True)
    assert ack["ok"], ack
    done = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == ack["job_id"])
    assert done["state"] == "done", done
    track, _ = sf.read(services.store.audio_dir / Path(done["filename"]).name, dtype="float32")
    assert np.isfinite(track).all() and track.shape[0] > 32000


# ---- the sandbox itself (row 13) ------------------------------------------------------------------------------


@pytest.mark.parametrize("code,signal_name", [
    ("import ctypes; ctypes.string_at(0)", "SIGSEGV"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGFPE)", "SIGFPE"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "SIGKILL"),
])
def test_a_decoder_that_crashes_is_a_clean_400_and_the_server_goes_on(client, services, monkeypatch, tmp_path,
                                                                     code, signal_name):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sandbox, "_child_command", lambda: [sys.executable, "-c", code])
    answer = upload(client, encode(tone(0.5, 16000), 16000))
    assert answer.status_code == 400
    assert answer.get_json()["error"] == f"unsupported or corrupt audio: the decoder crashed ({signal_name})"
    assert_nothing_left(services)
    assert not list(tmp_path.glob("core*"))
    monkeypatch.undo()
    assert_still_serving(client, services)


def test_a_decoder_that_hangs_or_overeats_is_stopped(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(encode(tone(0.5, 16000), 16000))
    with pytest.raises(sandbox.UnsafeAudio, match="took longer than"):
        sandbox.inspect(path, sandbox.Limits(max_seconds=10, max_samples=10**6, timeout=0.05))
    with pytest.raises(sandbox.UnsafeAudio, match="unsupported or corrupt audio"):
        sandbox.inspect(path, sandbox.Limits(max_seconds=10, max_samples=10**6, memory_bytes=32 * MB))
    assert sandbox.inspect(path, sandbox.Limits(max_seconds=10, max_samples=10**6)).frames == 8000


def test_the_child_caps_its_memory_cpu_output_and_core_dumps():
    code = ("import resource; from audiocraft_webui.audio.sandbox_child import _limit_resources; "
            "_limit_resources(1 << 30, 7, 1 << 20); "
            "print([resource.getrlimit(r)[0] for r in (resource.RLIMIT_AS, resource.RLIMIT_CPU, "
            "resource.RLIMIT_FSIZE, resource.RLIMIT_CORE)])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                            cwd=Path(webui.__file__).parent)
    assert result.stdout.strip() == str([1 << 30, 8, 1 << 20, 0])


def test_the_server_never_decodes_an_upload_in_process(client, services, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("soundfile used in the server process")

    data = encode(tone(0.5, 16000), 16000)
    monkeypatch.setattr(sf, "SoundFile", forbidden)
    monkeypatch.setattr(sf, "read", forbidden)
    monkeypatch.setattr(sf, "info", forbidden)
    answer = upload(client, data)
    assert answer.status_code == 200
    audio, rate = services.uploads.read(answer.get_json()["id"])
    assert audio.shape == (1, 8000) and rate == 16000
    assert not [p for p in services.uploads.folder.iterdir() if p.name.startswith(".tmp-")]


def test_the_limits_grow_with_the_purpose():
    assert [limits_for(purpose).max_seconds for purpose in ("melody", "continuation", "demucs")] == [300, 600, 1200]
    assert limits_for("demucs").max_samples == 1200 * 2 * 48000 and limits_for("demucs").timeout > 60
