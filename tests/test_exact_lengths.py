"""Every output format decodes to exactly ``round(duration x rate)`` frames, read by soundfile and by PyAV.

MP3 carries LAME's gapless header (encoder delay and padding), so its decoders drop exactly what the encoder
added; lameenc wrote none, and a 2 s MP3 decoded to 2.052-2.088 s.
"""
from __future__ import annotations

import io

import av
import numpy as np
import pytest
import soundfile as sf

from audiocraft_webui.audio import codecs
from tests.support import mp3frames


def pyav_frames(data: bytes) -> tuple[int, int, int]:
    """Decode with FFmpeg (PyAV): ``(frames, rate, channels)``."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        frames = sum(frame.samples for frame in container.decode(stream))
        return frames, stream.rate, stream.channels


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
@pytest.mark.parametrize("rate", [16000, 32000, 48000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("seconds", [2.0, 1.337])
def test_every_format_decodes_to_exactly_its_length(fmt, rate, channels, seconds):
    frames = round(seconds * rate)
    t = np.arange(frames) / rate
    audio = np.repeat((0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)[None], channels, 0)
    buffer = io.BytesIO()
    codecs.encode(audio, rate, fmt, buffer)
    data = buffer.getvalue()

    decoded, read_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    assert decoded.shape == (frames, channels) and read_rate == rate
    assert pyav_frames(data) == (frames, rate, channels)
    assert codecs.probe(io.BytesIO(data)).frames == frames


@pytest.mark.parametrize(("rate", "kbps"), [(32000, 320), (44100, 320), (48000, 320), (16000, 160)])
def test_mp3_stays_constant_bitrate_with_the_gapless_header(rate, kbps):
    buffer = io.BytesIO()
    codecs.encode(np.zeros((2, 3 * rate), np.float32), rate, "mp3", buffer)
    buffer.seek(0)
    frames = mp3frames.mp3_frame_bitrates(buffer)
    assert len(frames) > 50 and set(frames) == {kbps}
    assert b"Info" in buffer.getvalue()[:2048], "the LAME/Xing header frame of a CBR file"
    assert codecs.mp3_bitrate(buffer) == kbps
