"""A reader of MPEG Layer III frame headers, so tests can check that every frame of an MP3 has one bitrate (CBR)."""
from __future__ import annotations

import os

from audiocraft_webui.audio.codecs import AudioProbeError, AudioSource

# MPEG audio Layer III frame header tables, indexed by the header's version bits (3 = MPEG-1, 2 = MPEG-2,
# 0 = MPEG-2.5; 1 is reserved).
_MPEG1 = 3
_LAYER_III = 1
_MPEG2_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MP3_KBPS = {
    _MPEG1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: _MPEG2_KBPS,
    0: _MPEG2_KBPS,
}
_MP3_RATES = {_MPEG1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_MP3_MAX_FRAME_BYTES = 1441  # 144 * 320000 / 32000 + 1 padding byte
_MP3_SYNC_SEARCH_BYTES = 64 * 1024


def mp3_frame_bitrates(source: AudioSource, max_frames: int = 64) -> list[int]:
    """Walk the first MPEG Layer III frame headers to verify an MP3's bitrate (all equal means CBR).

    The headers are parsed directly (sync word, version, layer, bitrate and rate indices, padding), skipping
    a leading ID3v2 tag; the walk stops at the first byte run that is not a valid frame header.

    Args:
        source: a path or a binary file object (read from its current position, which is restored).
        max_frames: how many consecutive frames to inspect.

    Returns:
        Bitrate in kbps of each frame found, in order.

    Raises:
        AudioProbeError: no Layer III frame header was found.
    """
    data = _read_mp3_head(source, max_frames)
    offset = _find_mp3_frame(data)
    if offset is None:
        raise AudioProbeError("no MPEG Layer III frame found")
    bitrates: list[int] = []
    while len(bitrates) < max_frames:
        header = _parse_mp3_header(data, offset)
        if header is None:
            break
        kbps, length = header
        bitrates.append(kbps)
        offset += length
    return bitrates



def _read_mp3_head(source: AudioSource, max_frames: int) -> bytes:
    """Read enough of the file to hold an ID3v2 tag, some junk and ``max_frames`` maximal frames."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            return _read_mp3_head(handle, max_frames)
    position = source.tell()
    try:
        head = source.read(10)
        tag_size = 0
        if len(head) == 10 and head[:3] == b"ID3":
            # ID3v2 size is a 28-bit "syncsafe" integer; bit 4 of the flags adds a 10-byte footer.
            tag_size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
            tag_size += 10 if head[5] & 0x10 else 0
        rest = source.read(tag_size + _MP3_SYNC_SEARCH_BYTES + max_frames * _MP3_MAX_FRAME_BYTES)
    finally:
        source.seek(position)
    data = head + rest
    if data[:3] == b"ID3":
        return data[10 + tag_size:]
    return data


def _find_mp3_frame(data: bytes) -> int | None:
    """Return the offset of the first valid Layer III header followed by another one (or by the end)."""
    limit = min(len(data) - 3, _MP3_SYNC_SEARCH_BYTES)
    for offset in range(max(limit, 0)):
        header = _parse_mp3_header(data, offset)
        if header is None:
            continue
        following = offset + header[1]
        if following + 4 > len(data) or _parse_mp3_header(data, following) is not None:
            return offset
    return None


def _parse_mp3_header(data: bytes, offset: int) -> tuple[int, int] | None:
    """Decode the 4-byte frame header at ``offset`` into ``(kbps, frame length in bytes)``, or None."""
    if offset + 4 > len(data) or data[offset] != 0xFF or data[offset + 1] & 0xE0 != 0xE0:
        return None
    version = (data[offset + 1] >> 3) & 0x3
    layer = (data[offset + 1] >> 1) & 0x3
    bitrate_index = data[offset + 2] >> 4
    rate_index = (data[offset + 2] >> 2) & 0x3
    padding = (data[offset + 2] >> 1) & 0x1
    if version not in _MP3_KBPS or layer != _LAYER_III or bitrate_index in (0, 15) or rate_index == 3:
        return None
    kbps = _MP3_KBPS[version][bitrate_index]
    sample_rate = _MP3_RATES[version][rate_index]
    # A Layer III frame holds 1152 samples (MPEG-1) or 576 (MPEG-2/2.5): bytes = samples / 8 * bitrate / rate.
    coefficient = 144 if version == _MPEG1 else 72
    return kbps, coefficient * kbps * 1000 // sample_rate + padding
