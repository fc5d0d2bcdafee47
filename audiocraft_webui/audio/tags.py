"""Tags inside the audio files: the prompt as title, the artist, and the track's record, so a file carries its own
parameters wherever it is copied and can give them back when it is dropped on the page again.

mutagen writes and reads the tags: ID3v2 in MP3 (``TIT2``, ``TPE1``, ``TXXX:audiocraft-webui`` and a comment),
Vorbis comments in FLAC (``TITLE``, ``ARTIST``, ``AUDIOCRAFT_WEBUI``) and an ID3 chunk in WAV. WAV's LIST/INFO
(``INAM``, ``IART``, ``ICMT``), which mutagen cannot write, comes from libsndfile while encoding (:func:`strings`).
Reading decodes nothing and trusts nothing: the caller validates what it gets.
"""
from __future__ import annotations

import io
import json
from typing import IO

#: The ID3 TXXX description and the Vorbis comment field holding the record.
RECORD_KEY = "audiocraft-webui"
VORBIS_RECORD_KEY = "AUDIOCRAFT_WEBUI"
#: libsndfile reads a WAV string of at most about 4 kB back: a longer record leaves only its request in ICMT.
MAX_INFO_CHARS = 3900
#: Largest record text read back from a file's tags.
MAX_RECORD_CHARS = 200_000
#: Fields of the track JSON left out of the tags: the waveform is derived from the audio, the file name is the file's.
UNTAGGED = ("waveform", "audio_file")


class TagError(ValueError):
    """A file whose tags cannot be written or read; the message is fit to show."""


def record_text(record: dict) -> str:
    """The record as tagged: compact JSON without the derived fields."""
    return json.dumps({key: value for key, value in record.items() if key not in UNTAGGED}, ensure_ascii=False,
                      separators=(",", ":"))


def strings(record: dict) -> dict[str, str]:
    """libsndfile's strings for WAV LIST/INFO: title, artist and the record as comment (only its request if long)."""
    text = record_text(record)
    if len(text) > MAX_INFO_CHARS:
        text = json.dumps({"request": record.get("request")}, ensure_ascii=False, separators=(",", ":"))
    values = {"title": str(record.get("prompt", "")), "artist": str(record.get("parameters", {}).get("artist", "")),
              "comment": text if len(text) <= MAX_INFO_CHARS else ""}
    # libsndfile refuses a string holding NUL (C strings); the full text stays in the JSON and the ID3 chunk.
    return {name: value.replace("\x00", "") for name, value in values.items()}


def write(data: bytes, fmt: str, record: dict) -> bytes:
    """Add the record's tags to an encoded file held in memory; returns the tagged bytes.

    Raises:
        TagError: the bytes are not a file of that format.
    """
    from mutagen import MutagenError
    from mutagen.flac import FLAC
    from mutagen.id3 import COMM, ID3, TIT2, TPE1, TXXX
    from mutagen.wave import WAVE

    buffer = io.BytesIO(data)
    text = record_text(record)
    title, artist = str(record.get("prompt", "")), str(record.get("parameters", {}).get("artist", ""))
    frames = [TIT2(encoding=3, text=title), TXXX(encoding=3, desc=RECORD_KEY, text=text)]
    if artist:
        frames.append(TPE1(encoding=3, text=artist))
    try:
        if fmt == "flac":
            flac = FLAC(buffer)
            flac["TITLE"] = title
            if artist:
                flac["ARTIST"] = artist
            flac[VORBIS_RECORD_KEY] = text
            buffer.seek(0)
            flac.save(buffer)
        elif fmt == "wav":
            wave = WAVE(buffer)
            wave.add_tags()
            for frame in frames:
                wave.tags.add(frame)
            buffer.seek(0)
            wave.save(buffer)
        elif fmt == "mp3":
            tags = ID3()
            for frame in (*frames, COMM(encoding=3, lang="eng", desc=RECORD_KEY, text=text)):
                tags.add(frame)
            tags.save(buffer)
        else:
            raise TagError(f"no tags for format {fmt!r}")
    except MutagenError as exc:
        raise TagError(f"cannot tag the {fmt.upper()} file: {exc}") from exc
    return buffer.getvalue()


def read(source: IO[bytes]) -> dict | None:
    """The record tagged into a WAV, FLAC or MP3 file by :func:`write`, or None when it has none.

    Only the tags are parsed (mutagen reads headers and metadata blocks, never the audio).

    Raises:
        TagError: the record tag is there but is not a JSON object (or is too long).
    """
    import mutagen

    try:
        found = mutagen.File(source)
    except Exception as exc:  # noqa: BLE001 - hostile bytes may break the parser in any way; never a 500
        raise TagError(f"the file's tags cannot be read ({type(exc).__name__})") from exc
    tags = getattr(found, "tags", None)
    if tags is None:
        return None
    if hasattr(tags, "getall"):  # ID3 (MP3, WAV)
        values = [str(text) for frame in tags.getall(f"TXXX:{RECORD_KEY}") for text in frame.text]
    else:  # Vorbis comments (FLAC)
        values = list(tags.get(VORBIS_RECORD_KEY, []))
    if not values:
        return None
    if len(values[0]) > MAX_RECORD_CHARS:
        raise TagError("the record in the file's tags is too long")
    try:
        record = json.loads(values[0])
    except ValueError:
        raise TagError("the record in the file's tags is not valid JSON") from None
    if not isinstance(record, dict):
        raise TagError("the record in the file's tags is not an object")
    return record
