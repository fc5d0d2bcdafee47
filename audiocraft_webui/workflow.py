"""The musician's workflow fields of a generation request: takes, continue, regenerate, loop, key, song structure.

:func:`parse_workflow` validates them for :func:`protocol.parse_generation_request` (so the page and the REST API
share one contract); the length rules here tell the runner how long the new audio must be, to the sample.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

MAX_VARIATIONS = 8
BPM_RANGE = (30, 300)
MAX_BARS = 512
BEATS_PER_BAR_RANGE = (1, 16)
#: Beats per bar when only ``bars`` and ``bpm`` are given (no loop block).
DEFAULT_BEATS_PER_BAR = 4
MAX_SEGMENTS = 10
#: Longest song structure (all segments), seconds: the duration slider's own limit.
MAX_TOTAL_SECONDS = 300
MAX_TRACK_NAME_CHARS = 200
NOTES = ("C", "C#", "Db", "D", "D#", "Eb", "E", "F", "F#", "Gb", "G", "G#", "Ab", "A", "A#", "Bb", "B")
SCALES = ("major", "minor")
KEY_PATTERN = re.compile(rf"^({'|'.join(NOTES)}) ({'|'.join(SCALES)})$")
#: Track base names as the store writes them (letters, digits, ``_ - .``): anything else is no track.
TRACK_NAME = re.compile(r"^[\w][\w.\- ]*$")


class WorkflowError(ValueError):
    """A workflow field that cannot be used; ``field`` names it (turned into a RequestError by the protocol)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class Loop:
    """A loop request: the track lasts exactly ``bars`` bars of ``beats_per_bar`` beats at ``bpm``."""

    bars: int
    bpm: int
    beats_per_bar: int = DEFAULT_BEATS_PER_BAR

    @property
    def seconds(self) -> float:
        """The loop's exact length."""
        return self.bars * self.beats_per_bar * 60 / self.bpm


@dataclass(frozen=True)
class Segment:
    """One part of a song structure: its own prompt and length in whole seconds."""

    prompt: str
    seconds: int


def _whole(name: str, raw: object, low: int, high: int) -> int:
    """A whole number in ``[low, high]`` (numbers may arrive as strings from form fields)."""
    if isinstance(raw, bool):
        raise WorkflowError(name, f"{name} must be a whole number")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise WorkflowError(name, f"{name} must be a whole number") from None
    if not math.isfinite(value) or value != int(value) or not low <= value <= high:
        raise WorkflowError(name, f"{name} must be a whole number from {low} to {high}")
    return int(value)


def _optional(name: str, raw: object, low: int, high: int) -> int | None:
    """:func:`_whole`, or None when the field is absent or empty."""
    return None if raw in (None, "") else _whole(name, raw, low, high)


def track_name(name: str, raw: object) -> str | None:
    """A track's base name as a client may name it (looked up later, safely, by the store), or None."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw) > MAX_TRACK_NAME_CHARS or not TRACK_NAME.match(raw):
        raise WorkflowError(name, f"{name} must be the name of a track in the library")
    return raw


def parse_loop(raw: object) -> Loop | None:
    """Read ``loop: {bars, bpm, beats_per_bar}`` (None when absent)."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, dict):
        raise WorkflowError("loop", "loop must be an object {bars, bpm, beats_per_bar}")
    unknown = set(raw) - {"bars", "bpm", "beats_per_bar"}
    if unknown:
        raise WorkflowError("loop", f"loop has an unknown field {sorted(unknown)[0][:30]!r}")
    return Loop(_whole("loop.bars", raw.get("bars"), 1, MAX_BARS), _whole("loop.bpm", raw.get("bpm"), *BPM_RANGE),
                _whole("loop.beats_per_bar", raw.get("beats_per_bar", DEFAULT_BEATS_PER_BAR), *BEATS_PER_BAR_RANGE))


def parse_segments(raw: object, prompt_limit: int) -> tuple[Segment, ...]:
    """Read a song structure: up to 10 ``{prompt, seconds}`` segments lasting at most 300 s together."""
    if raw is None or raw == "" or raw == [] or raw == ():
        return ()
    if not isinstance(raw, (list, tuple)) or len(raw) > MAX_SEGMENTS:
        raise WorkflowError("segments", f"segments must be a list of 1 to {MAX_SEGMENTS} segments")
    segments = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str) or not item["prompt"].strip():
            raise WorkflowError(f"segments.{index}.prompt", f"segment {index + 1} needs a prompt")
        if len(item["prompt"]) > prompt_limit:
            raise WorkflowError(f"segments.{index}.prompt", f"segment {index + 1}'s prompt is too long")
        seconds = _whole(f"segments.{index}.seconds", item.get("seconds"), 1, MAX_TOTAL_SECONDS)
        segments.append(Segment(item["prompt"].strip(), seconds))
    total = sum(segment.seconds for segment in segments)
    if total > MAX_TOTAL_SECONDS:
        raise WorkflowError("segments", f"the segments last {total} s together; the limit is {MAX_TOTAL_SECONDS} s")
    return tuple(segments)


def _cut(raw: object) -> float | None:
    """Read ``cut_at``, the second from which a track is regenerated (None when absent)."""
    if raw in (None, ""):
        return None
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise WorkflowError("cut_at", "cut_at must be a number of seconds") from None
    if isinstance(raw, bool) or not math.isfinite(value) or value <= 0:
        raise WorkflowError("cut_at", "cut_at must be a positive number of seconds")
    return round(value, 3)


def parse_workflow(payload: dict, prompt_limit: int) -> dict[str, Any]:
    """Validate the workflow fields of a ``submit_sliders`` payload into GenerationRequest keyword arguments."""
    key = payload.get("key") or ""
    if not isinstance(key, str) or (key and not KEY_PATTERN.match(key)):
        raise WorkflowError("key", f"key must be a note and a scale, e.g. 'C minor' ({', '.join(SCALES)})")
    fields: dict[str, Any] = {
        "variations": _whole("variations", payload.get("variations", 1), 1, MAX_VARIATIONS),
        "continue_track": track_name("continue_track", payload.get("continue_track")),
        "melody_track": track_name("melody_track", payload.get("melody_track")),
        "cut_at": _cut(payload.get("cut_at")),
        "loop": parse_loop(payload.get("loop")),
        "bpm": _optional("bpm", payload.get("bpm"), *BPM_RANGE),
        "key": key,
        "bars": _optional("bars", payload.get("bars"), 1, MAX_BARS),
        "segments": parse_segments(payload.get("segments"), prompt_limit),
    }
    _check_combinations(fields)
    return fields


def _check_combinations(fields: dict[str, Any]) -> None:
    """Refuse fields that make no sense together, naming the one to drop."""
    if fields["cut_at"] is not None and fields["continue_track"] is None:
        raise WorkflowError("cut_at", "cut_at needs continue_track: the track to regenerate from that point")
    if fields["bars"] is not None and fields["bpm"] is None:
        raise WorkflowError("bars", "bars needs bpm: the length of a bar depends on the tempo")
    if fields["loop"] is not None and fields["bpm"] is not None and fields["bpm"] != fields["loop"].bpm:
        raise WorkflowError("bpm", "bpm and loop.bpm differ; give the tempo once")
    shaped = [name for name in ("loop", "segments", "cut_at", "bars") if fields[name]]
    if len(shaped) > 1:
        raise WorkflowError(shaped[1], f"{shaped[0]} and {shaped[1]} both set the length; use one of them")
    if fields["segments"] and fields["variations"] > 1:
        raise WorkflowError("variations", "a song structure is generated as one take")


def with_musical_terms(prompt: str, bpm: int | None, key: str) -> str:
    """The prompt with tempo and key appended as MusicGen's training captions state them ("..., 120 bpm, C minor")."""
    terms = [f"{bpm} bpm"] if bpm else []
    if key:
        terms.append(key)
    return ", ".join([prompt, *terms])


def bars_seconds(bars: int, bpm: int, beats_per_bar: int = DEFAULT_BEATS_PER_BAR) -> float:
    """How long ``bars`` bars last at ``bpm``."""
    return bars * beats_per_bar * 60 / bpm


def from_json(data: dict) -> dict[str, Any]:
    """Rebuild the nested workflow values of a stored request (written by this server)."""
    loop = data.get("loop")
    return {**data, "loop": Loop(**loop) if isinstance(loop, dict) else loop,
            "segments": tuple(Segment(**item) if isinstance(item, dict) else item
                              for item in data.get("segments") or ())}
