"""Pure DSP and audio I/O: shapes, resampling, loudness, the append RMS match, encoders, probing, peaks."""
from __future__ import annotations

import io
import math
import struct
import sys

import numpy as np
import pytest
import soundfile as sf

from audiocraft_webui.audio import codecs, dsp, loudness
from audiocraft_webui.audio.codecs import AudioProbeError, AudioTooLongError, EncodeError
from tests.support import mp3frames

MODEL_RATE = 32000


def sine(freq: float, seconds: float, rate: int, amplitude: float = 1.0, channels: int = 1) -> np.ndarray:
    """float32 [C, T] sine, identical in every channel."""
    t = np.arange(round(seconds * rate)) / rate
    return np.repeat((amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)[np.newaxis], channels, 0)


def noise(seconds: float, rate: int = MODEL_RATE, scale: float = 0.1, channels: int = 1, seed: int = 0):
    """float32 [C, T] Gaussian noise clipped to [-1, 1]."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0, scale, (channels, round(seconds * rate))), -1, 1).astype(np.float32)


def wav_bytes(channels: int, rate: int, data_bytes: int) -> bytes:
    """A hand-built 16-bit PCM WAV, so headers the writers refuse to produce can be tested."""
    block = max(channels, 1) * 2
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, 16)
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", data_bytes) + b"\x00" * data_bytes
    )


def encoded(audio: np.ndarray, rate: int, fmt: str) -> io.BytesIO:
    """Encode into a rewound BytesIO."""
    buffer = io.BytesIO()
    codecs.encode(audio, rate, fmt, buffer)
    buffer.seek(0)
    return buffer


# ---- shapes and channels ----


def test_as_channels_first_accepts_mono_vector():
    out = dsp.as_channels_first(np.zeros(100, dtype=np.float64))

    assert out.shape == (1, 100)
    assert out.dtype == np.float32


def test_as_channels_first_keeps_channels_first():
    audio = noise(0.01, channels=2)

    np.testing.assert_array_equal(dsp.as_channels_first(audio), audio)


def test_as_channels_first_transposes_soundfile_layout():
    audio = noise(0.01, channels=2)

    out = dsp.as_channels_first(audio.T.copy())

    assert out.shape == audio.shape
    np.testing.assert_array_equal(out, audio)
    assert out.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("bad", [np.zeros((1, 2, 100), np.float32), np.zeros(10, np.int16), np.float32(1.0)])
def test_as_channels_first_rejects_other_shapes_and_dtypes(bad):
    with pytest.raises(ValueError):
        dsp.as_channels_first(bad)


def test_mono_is_duplicated_to_stereo_by_default():
    mono = noise(0.1)

    out = dsp.to_output_channels(mono, keep_mono=False)

    assert out.shape == (2, mono.shape[1])
    np.testing.assert_array_equal(out[0], mono[0])
    np.testing.assert_array_equal(out[1], mono[0])


def test_keep_mono_leaves_mono():
    mono = noise(0.1)

    assert dsp.to_output_channels(mono, keep_mono=True).shape == (1, mono.shape[1])


@pytest.mark.parametrize("keep_mono", [True, False])
def test_stereo_stays_stereo(keep_mono):
    stereo = noise(0.1, channels=2)

    np.testing.assert_array_equal(dsp.to_output_channels(stereo, keep_mono=keep_mono), stereo)


def test_sanitize_replaces_non_finite_and_counts_them():
    audio = np.array([[0.5, np.nan, np.inf], [-np.inf, 0.25, np.nan]], dtype=np.float32)
    original = audio.copy()

    clean, count = dsp.sanitize(audio)

    assert count == 4
    np.testing.assert_array_equal(clean, [[0.5, 0, 0], [0, 0.25, 0]])
    np.testing.assert_array_equal(audio, original)


def test_sanitize_leaves_finite_audio_alone():
    audio = noise(0.1)

    clean, count = dsp.sanitize(audio)

    assert count == 0
    np.testing.assert_array_equal(clean, audio)


# ---- resampling ----

FRAME_COUNTS = [0, 1, 3, 7, 999, 31_999, 32_000, 32_001, 96_013, 30 * MODEL_RATE]


@pytest.mark.parametrize("rate_out", [MODEL_RATE, 48000, 44100, 16000])
@pytest.mark.parametrize("frames", FRAME_COUNTS)
def test_resample_length_is_exact(rate_out, frames):
    audio = noise(frames / MODEL_RATE, channels=2)
    assert audio.shape[1] == frames

    out = dsp.resample(audio, MODEL_RATE, rate_out)

    assert out.shape == (2, round(frames * rate_out / MODEL_RATE))
    assert out.dtype == np.float32


def test_resample_identity_returns_input():
    audio = noise(0.5)

    assert dsp.resample(audio, MODEL_RATE, MODEL_RATE) is audio


@pytest.mark.parametrize("rate_out", [48000, 16000])
def test_resample_is_accurate(rate_out):
    out = dsp.resample(sine(1000, 2.0, MODEL_RATE, 0.5), MODEL_RATE, rate_out)

    reference = sine(1000, 2.0, rate_out, 0.5)
    middle = slice(rate_out // 10, -rate_out // 10)  # away from the filter's edge transients
    error = out[:, middle] - reference[:, middle]
    snr_db = 10 * math.log10(np.mean(reference[:, middle] ** 2) / np.mean(error**2))
    assert snr_db > 90


def test_resample_rejects_bad_rates():
    with pytest.raises(ValueError):
        dsp.resample(noise(0.1), 0, 48000)


# ---- measurements ----


def test_rms_and_peak_over_all_channels():
    audio = np.array([[0.5, -0.5], [1.0, -1.0]], dtype=np.float32)

    assert dsp.rms(audio) == pytest.approx(math.sqrt((0.25 * 2 + 1.0 * 2) / 4))
    assert dsp.peak(audio) == 1.0
    assert dsp.rms(np.zeros((2, 0), np.float32)) == 0.0
    assert dsp.peak(np.zeros((2, 0), np.float32)) == 0.0


def test_k_weighting_matches_bs1770_coefficients_at_48k():
    sos = loudness.k_weighting_sos(48000)

    # ITU-R BS.1770-4, tables 1 and 2.
    np.testing.assert_allclose(sos[0, :3], [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-9)
    np.testing.assert_allclose(sos[0, 4:], [-1.69065929318241, 0.73248077421585], atol=1e-9)
    np.testing.assert_allclose(sos[1, :3], [1.0, -2.0, 1.0])
    np.testing.assert_allclose(sos[1, 4:], [-1.99004745483398, 0.99007225036621], atol=1e-9)


def test_full_scale_997hz_sine_at_48k_is_minus_3_01_lufs():
    assert loudness.integrated_loudness(sine(997, 5.0, 48000), 48000) == pytest.approx(-3.01, abs=0.005)


@pytest.mark.parametrize("rate", [44100, 32000])
def test_reference_sine_reads_the_same_at_other_rates(rate):
    assert loudness.integrated_loudness(sine(997, 5.0, rate), rate) == pytest.approx(-3.01, abs=0.02)


def test_loudness_sums_channels_and_scales_with_level():
    assert loudness.integrated_loudness(sine(997, 5.0, 48000, channels=2), 48000) == pytest.approx(0.0, abs=0.005)
    assert loudness.integrated_loudness(sine(997, 5.0, 48000, 0.1), 48000) == pytest.approx(-23.01, abs=0.005)


def test_absolute_gate_ignores_silence():
    tone = sine(997, 3.0, 48000, 0.1)
    padded = np.concatenate([tone, np.zeros((1, 48000 * 6), np.float32)], axis=1)

    # 27 full blocks and 3 straddling the edge (75/50/25 % tone) pass; the 57 silent blocks are gated out.
    expected = loudness.integrated_loudness(tone, 48000) + 10 * math.log10((27 + 0.75 + 0.5 + 0.25) / 30)
    assert loudness.integrated_loudness(padded, 48000) == pytest.approx(expected, abs=0.01)


def test_relative_gate_ignores_much_quieter_passages():
    loud = sine(997, 4.0, 48000, 1.0)
    quiet = sine(997, 4.0, 48000, 0.01)  # -40 dB: inside the absolute gate, far below the relative gate

    mixed = np.concatenate([loud, quiet], axis=1)

    # 37 loud blocks and 3 straddling the edge pass; the 37 quiet blocks (-43 LUFS) fall below the relative
    # gate (about -13 LUFS). Without that gate the result would be about -6 LUFS.
    expected = -3.01 + 10 * math.log10((37 + 0.75 + 0.5 + 0.25) / 40)
    assert loudness.integrated_loudness(mixed, 48000) == pytest.approx(expected, abs=0.01)


def test_silence_has_no_loudness():
    assert loudness.integrated_loudness(np.zeros((2, 48000), np.float32), 48000) == -math.inf


# ---- loudness normalisation ----


def test_normalize_reaches_the_target():
    audio = noise(5.0, 48000, scale=0.02, channels=2)

    out, info = loudness.normalize_loudness(audio, 48000, target_lufs=-14.0)

    assert loudness.integrated_loudness(out, 48000) == pytest.approx(-14.0, abs=0.01)
    assert info["lufs"] == pytest.approx(-14.0, abs=0.01) and info["target_lufs"] == -14.0
    assert info["gain_db"] == pytest.approx(-14.0 - info["lufs_before"], abs=0.02)
    assert info["peak_limited"] is False
    assert info["true_peak_dbtp"] == pytest.approx(20 * math.log10(loudness.true_peak(out, 48000)), abs=0.01)
    assert info["true_peak_dbtp"] <= -1.0
    assert out.dtype == np.float32 and out.shape == audio.shape


def test_normalize_limits_gain_at_the_true_peak_ceiling():
    audio = sine(997, 5.0, 48000, 0.5)  # about -9 LUFS; reaching -3 would need a true peak of +3 dBTP

    out, info = loudness.normalize_loudness(audio, 48000, target_lufs=-3.0, ceiling_dbtp=-1.0)

    assert info["peak_limited"] is True
    assert loudness.true_peak(out, 48000) == pytest.approx(10 ** (-1 / 20), abs=1e-4)
    assert info["true_peak_dbtp"] == -1.0
    assert info["lufs"] < -3.0 and info["lufs"] == pytest.approx(loudness.integrated_loudness(out, 48000), abs=0.01)


@pytest.mark.parametrize("audio", [np.zeros((2, 48000), np.float32), sine(997, 2.0, 48000, 1e-4)])
def test_normalize_never_amplifies_silence(audio):
    out, info = loudness.normalize_loudness(audio, 48000)

    np.testing.assert_array_equal(out, audio)
    assert info["lufs_before"] is None and info["lufs"] is None
    assert info["gain_db"] == 0.0


def test_normalize_off_only_measures():
    audio = noise(2.0, 32000, scale=0.05, channels=2)

    out, info = loudness.normalize_loudness(audio, 32000, target_lufs=None)

    assert out is audio and info["gain_db"] == 0.0 and info["target_lufs"] is None
    assert info["lufs"] == info["lufs_before"] == round(loudness.integrated_loudness(audio, 32000), 2)
    assert info == {**info, **loudness.measure(audio, 32000)}


def test_duplicated_mono_is_three_decibels_louder_than_the_mono():
    mono = noise(3.0, 32000, scale=0.05)
    stereo = np.repeat(mono, 2, axis=0)

    assert loudness.integrated_loudness(stereo, 32000) - loudness.integrated_loudness(mono, 32000) == \
        pytest.approx(10 * math.log10(2), abs=0.01)


@pytest.mark.parametrize("kwargs", [{"ceiling_dbtp": 0.5}, {"target_lufs": math.nan}])
def test_normalize_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        loudness.normalize_loudness(noise(1.0), MODEL_RATE, **kwargs)


# ---- true peak (BS.1770-4 Annex 2) ----


@pytest.mark.parametrize("rate", [16000, 32000, 48000])
def test_true_peak_finds_the_peak_between_samples(rate):
    # A sine at a quarter of the rate, 45 degrees off: every sample sits at 0.707, the waveform reaches 1.0.
    t = np.arange(rate) / rate
    audio = np.sin(2 * np.pi * rate / 4 * t + np.pi / 4).astype(np.float32)[None]

    assert dsp.peak(audio) == pytest.approx(0.7071, abs=1e-3)
    assert 20 * math.log10(loudness.true_peak(audio, rate)) == pytest.approx(0.0, abs=0.2)


@pytest.mark.parametrize("freq", [100, 997, 5000, 12000])
def test_true_peak_of_a_sine_is_its_amplitude(freq):
    audio = sine(freq, 1.0, 48000, 0.5, channels=2)

    assert loudness.true_peak(audio, 48000) == pytest.approx(0.5, rel=0.025)  # +-0.2 dB
    assert loudness.true_peak(np.zeros((1, 0), np.float32), 48000) == 0.0
    assert loudness.to_db(0.0) is None


# ---- append-mode loudness match (docs/DESIGN.md, "Append mode") ----


def test_match_unclamped_gives_the_clip_rms():
    clip = noise(2.0, scale=0.2, seed=1)
    generated = noise(3.0, scale=0.1, channels=2, seed=2)

    matched, fields = loudness.match_loudness(clip, generated)

    assert dsp.rms(matched) == pytest.approx(dsp.rms(clip), rel=1e-4)
    assert fields["continuation_loudness_gain_applied"] == round(dsp.rms(clip) / dsp.rms(generated), 4)
    assert 1.5 < fields["continuation_loudness_gain_applied"] < 2.5
    assert fields["continuation_loudness_rms_cont"] == round(dsp.rms(clip), 6)
    assert fields["continuation_loudness_rms_gen_before"] == round(dsp.rms(generated), 6)
    assert fields["continuation_loudness_rms_gen_after"] == round(dsp.rms(matched), 6)
    assert fields["continuation_loudness_reverted"] is False
    assert "continuation_loudness_revert_reason" not in fields
    assert "continuation_loudness_note" not in fields


def test_match_gain_is_clamped_at_4():
    clip = noise(1.0, scale=0.4, seed=1)
    generated = noise(1.0, scale=0.01, seed=2)

    matched, fields = loudness.match_loudness(clip, generated)

    assert fields["continuation_loudness_gain_applied"] == 4.0
    np.testing.assert_allclose(matched, generated * 4, rtol=1e-6)


def test_match_gain_is_clamped_at_quarter():
    clip = noise(1.0, scale=0.01, seed=1)
    generated = noise(1.0, scale=0.3, seed=2)

    matched, fields = loudness.match_loudness(clip, generated)

    assert fields["continuation_loudness_gain_applied"] == 0.25
    np.testing.assert_allclose(matched, generated * 0.25, rtol=1e-6)


def test_match_hard_clips_to_full_scale():
    clip = noise(1.0, scale=0.5, seed=1)
    generated = noise(1.0, scale=0.2, seed=2)
    generated[0, 10] = 0.9  # gained by about 2.5, this sample would exceed 1

    matched, fields = loudness.match_loudness(clip, generated)

    assert fields["continuation_loudness_gain_applied"] > 2
    assert dsp.peak(matched) == 1.0
    assert matched[0, 10] == 1.0


def test_match_reverts_when_the_gained_part_is_near_silent():
    clip = np.full((1, 1000), 1e-4, dtype=np.float32)
    generated = np.full((1, 1000), 2e-3, dtype=np.float32)  # x0.25 -> peak 5e-4 < 1e-3

    matched, fields = loudness.match_loudness(clip, generated)

    np.testing.assert_array_equal(matched, generated)
    assert fields["continuation_loudness_reverted"] is True
    assert fields["continuation_loudness_gain_applied"] == 0.25
    assert fields["continuation_loudness_rms_gen_after"] == fields["continuation_loudness_rms_gen_before"]
    assert "below 0.001" in fields["continuation_loudness_revert_reason"]


@pytest.mark.parametrize("silent", ["clip", "generated"])
def test_match_skips_gain_when_an_rms_is_zero(silent):
    clip = np.zeros((1, 1000), np.float32) if silent == "clip" else noise(0.1, seed=1)
    generated = np.zeros((2, 1000), np.float32) if silent == "generated" else noise(0.1, channels=2, seed=2)

    matched, fields = loudness.match_loudness(clip, generated)

    np.testing.assert_array_equal(matched, generated)
    assert fields["continuation_loudness_gain_applied"] is None
    assert fields["continuation_loudness_reverted"] is False
    expected_word = "clip" if silent == "clip" else "generated"
    assert expected_word in fields["continuation_loudness_note"]


def test_match_fields_are_json_ready_and_rounded():
    _, fields = loudness.match_loudness(noise(0.5, scale=0.123, seed=3), noise(0.5, scale=0.0456, seed=4))

    for key in ("continuation_loudness_rms_cont", "continuation_loudness_rms_gen_before",
                "continuation_loudness_rms_gen_after"):
        assert fields[key] == round(fields[key], 6)
    gain = fields["continuation_loudness_gain_applied"]
    assert gain == round(gain, 4)
    assert type(fields["continuation_loudness_reverted"]) is bool


# ---- encoding ----


def test_encodings_table():
    assert tuple(codecs.ENCODINGS) == ("wav", "flac", "mp3")
    assert [e.extension for e in codecs.ENCODINGS.values()] == [".wav", ".flac", ".mp3"]
    assert [e.mime_type for e in codecs.ENCODINGS.values()] == ["audio/wav", "audio/flac", "audio/mpeg"]


@pytest.mark.parametrize("fmt", ["wav", "flac"])
@pytest.mark.parametrize(("rate", "channels"), [(32000, 1), (48000, 2), (16000, 2), (44100, 1)])
def test_lossless_round_trip(fmt, rate, channels):
    audio = noise(1.3, rate, scale=0.2, channels=channels)

    data, read_rate = sf.read(encoded(audio, rate, fmt), dtype="float32", always_2d=True)

    assert read_rate == rate
    assert data.shape == (audio.shape[1], channels)
    np.testing.assert_allclose(data.T, audio, atol=1.5 / 32768)
    assert sf.info(encoded(audio, rate, fmt)).subtype == "PCM_16"


def test_encode_into_a_temp_file(tmp_path):
    audio = noise(1.0, 48000, channels=2)
    for fmt in codecs.ENCODINGS:
        path = tmp_path / f"track{codecs.ENCODINGS[fmt].extension}"
        with open(path, "wb") as dest:
            codecs.encode(audio, 48000, fmt, dest)

        info = codecs.probe(path)
        assert (info.format, info.sample_rate, info.channels) == (fmt, 48000, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["track.flac", "track.mp3", "track.wav"]


def test_encode_clips_out_of_range_samples():
    audio = np.array([[1.5, -2.0, 0.5]], dtype=np.float32)

    data, _ = sf.read(encoded(audio, 32000, "wav"), dtype="float32")

    np.testing.assert_allclose(data, [32767 / 32768, -1.0, 0.5], atol=1 / 32768)


@pytest.mark.parametrize("rate", [48000, 32000, 44100])
@pytest.mark.parametrize("channels", [1, 2])
def test_mp3_is_320_kbps_cbr(rate, channels):
    audio = sine(440, 2.0, rate, 0.5, channels=channels)

    buffer = encoded(audio, rate, "mp3")
    bitrates = mp3frames.mp3_frame_bitrates(buffer)

    assert len(bitrates) >= 50
    assert set(bitrates) == {320}
    assert codecs.mp3_bitrate(buffer) == 320
    assert codecs.mp3_cbr_kbps(rate) == 320
    # 320 kbps for 2 s, give or take the encoder's delay and final frame.
    assert 2 * 320_000 / 8 <= len(buffer.getvalue()) <= 2.1 * 320_000 / 8


@pytest.mark.parametrize("rate", [48000, 32000, 44100, 16000])
def test_mp3_decodes_back(rate):
    audio = sine(440, 1.5, rate, 0.5, channels=2)

    data, read_rate = sf.read(encoded(audio, rate, "mp3"), dtype="float32", always_2d=True)

    assert read_rate == rate
    assert data.shape[1] == 2
    frames = audio.shape[1]
    assert frames <= data.shape[0] <= frames + 3 * 1152  # encoder delay plus frame padding
    middle = slice(frames // 4, 3 * frames // 4)  # clear of the encoder delay and the padded tail
    # LAME at MPEG-2 bitrates (160 kbps and below) decodes a pure tone about 0.45 dB lower.
    assert dsp.rms(data[middle].T) == pytest.approx(dsp.rms(audio), rel=0.07)


def test_mp3_at_16k_uses_the_mpeg2_maximum():
    buffer = encoded(sine(440, 2.0, 16000, 0.5, channels=2), 16000, "mp3")

    assert codecs.mp3_cbr_kbps(16000) == 160
    assert set(mp3frames.mp3_frame_bitrates(buffer)) == {160}


def test_bitrate_parser_sees_variable_bitrate():
    buffer = io.BytesIO()
    sf.write(buffer, noise(2.0, 44100, channels=2).T, 44100, format="MP3")  # libsndfile default is VBR
    buffer.seek(0)

    assert len(set(mp3frames.mp3_frame_bitrates(buffer))) > 1


def test_bitrate_parser_skips_an_id3v2_tag(tmp_path):
    mp3 = encoded(sine(440, 1.0, 48000, 0.5), 48000, "mp3").getvalue()
    text = b"\x03title"
    body = b"TIT2" + struct.pack(">I", len(text)) + b"\x00\x00" + text
    size = len(body)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    path = tmp_path / "tagged.mp3"
    path.write_bytes(b"ID3\x03\x00\x00" + syncsafe + body + mp3)

    assert set(mp3frames.mp3_frame_bitrates(path)) == {320}


def test_bitrate_parser_rejects_non_mp3():
    with pytest.raises(AudioProbeError):
        codecs.mp3_bitrate(encoded(noise(0.5), 32000, "wav"))


@pytest.mark.parametrize(
    ("fmt", "rate", "channels"),
    [("mp3", 96000, 2), ("mp3", 32000, 3), ("ogg", 32000, 2), ("flac", 700_000, 1), ("flac", 32000, 9)],
)
def test_unsupported_cases_raise_encode_error(fmt, rate, channels):
    buffer = io.BytesIO()
    with pytest.raises(EncodeError):
        codecs.encode(np.zeros((channels, 1000), np.float32), rate, fmt, buffer)
    if fmt == "mp3":
        assert buffer.getvalue() == b""


def test_missing_mp3_encoder_raises_encode_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)

    with pytest.raises(EncodeError, match="unavailable"):
        codecs.encode(noise(0.1), 32000, "mp3", io.BytesIO())


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_encode_refuses_nan(fmt):
    audio = noise(0.1)
    audio[0, 5] = np.nan
    buffer = io.BytesIO()

    with pytest.raises(ValueError):
        codecs.encode(audio, 32000, fmt, buffer)
    assert buffer.getvalue() == b""


# ---- probing and reading ----


def test_probe_reads_the_header(tmp_path):
    path = tmp_path / "clip.flac"
    sf.write(path, noise(2.5, 44100, channels=2).T, 44100)

    info = codecs.probe(path)

    assert info == codecs.AudioInfo(format="flac", sample_rate=44100, channels=2, frames=110250, duration=2.5)


def test_probe_restores_the_file_position():
    buffer = encoded(noise(0.5), 32000, "wav")

    codecs.probe(buffer)

    assert buffer.tell() == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable audio file"),
        (np.random.default_rng(0).bytes(4096), "not a readable audio file"),
        (wav_bytes(1, 32000, 400)[:40], "not a readable audio file"),
        (wav_bytes(1, 32000, 0), "contains no audio"),
        (wav_bytes(0, 32000, 400), "not a readable audio file"),
        (wav_bytes(1, 0, 400), "not a readable audio file"),
    ],
    ids=["empty", "random-bytes", "truncated-header", "no-frames", "zero-channels", "zero-rate"],
)
def test_probe_rejects_unusable_files(tmp_path, content, message):
    path = tmp_path / "upload.wav"
    path.write_bytes(content)

    with pytest.raises(AudioProbeError, match=message) as excinfo:
        codecs.probe(path)
    assert str(tmp_path) not in str(excinfo.value)
    assert "object at 0x" not in str(excinfo.value)


def test_probe_missing_file(tmp_path):
    with pytest.raises(AudioProbeError, match="not found"):
        codecs.probe(tmp_path / "nope.wav")


def test_read_audio_returns_channels_first(tmp_path):
    audio = noise(1.0, 48000, scale=0.2, channels=2)
    path = tmp_path / "clip.wav"
    sf.write(path, audio.T, 48000, subtype="FLOAT")

    data, rate = codecs.read_audio(path, max_seconds=5)

    assert rate == 48000
    assert data.dtype == np.float32
    np.testing.assert_array_equal(data, audio)


def test_read_audio_refuses_long_files_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros((16000 * 3, 1), np.float32), 16000)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a file that should have been refused")

    monkeypatch.setattr(codecs.sf, "read", no_decoding)
    with pytest.raises(AudioTooLongError, match="3.0 s long; the limit is 2.5 s"):
        codecs.read_audio(path, max_seconds=2.5)


def test_read_audio_sanitizes_non_finite_samples(tmp_path):
    audio = np.array([[0.1, np.nan, -np.inf, 0.2]], dtype=np.float32)
    path = tmp_path / "bad.wav"
    sf.write(path, audio.T, 8000, subtype="FLOAT")

    data, _ = codecs.read_audio(path)

    np.testing.assert_array_equal(data, np.array([[0.1, 0.0, 0.0, 0.2]], np.float32))


# ---- waveform peaks ----


def test_waveform_peaks_shape_and_values():
    audio = np.zeros((2, 6000), np.float32)
    audio[0, 5] = 0.5  # bucket 0
    audio[1, 15] = -0.8  # bucket 1, other channel
    audio[0, 5999] = 0.12345  # last bucket

    peaks = dsp.waveform_peaks(audio, buckets=600)

    assert len(peaks) == 600
    assert peaks[0] == 0.5
    assert peaks[1] == 0.8
    assert peaks[-1] == 0.123
    assert sum(peaks) == pytest.approx(0.5 + 0.8 + 0.123)
    assert all(type(p) is float for p in peaks)


def test_waveform_peaks_of_short_and_empty_audio():
    assert dsp.waveform_peaks(np.array([[0.1, -0.2, 0.3]], np.float32), buckets=600) == [0.1, 0.2, 0.3]
    assert dsp.waveform_peaks(np.zeros((1, 0), np.float32)) == []


def test_waveform_peaks_cover_every_sample():
    audio = noise(1.0, 32000, scale=0.3)

    peaks = dsp.waveform_peaks(audio, buckets=7)

    assert len(peaks) == 7
    assert max(peaks) == round(dsp.peak(audio), 3)
