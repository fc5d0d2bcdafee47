"""What a track's JSON must look like to be used: a record that parses but has the wrong structure or types
(a string where the parameters belong, a request field of the wrong type) is treated like a corrupt one.

Every field is optional, so records of older versions stay valid; only what is present is checked.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, TypeAdapter, ValidationError

from ..protocol import GenerationRequest

_REQUEST = TypeAdapter(GenerationRequest)
_REQUEST_FIELDS = {field.name for field in fields(GenerationRequest)}


class _Record(BaseModel):
    """The fields of a track record that the app reads, with their types."""

    model_config = ConfigDict(extra="allow")

    prompt: str | None = None
    model: str | None = None
    created: str | None = None
    audio_file: str | None = None
    duration_seconds: float | None = None
    parameters: dict[str, Any] | None = None
    request: dict[str, Any] | None = None
    postprocess: dict[str, Any] | None = None
    timing: dict[str, Any] | None = None
    waveform: list[float] | None = None
    favorite: StrictBool | None = None
    locked: StrictBool | None = None


def record_problem(meta: object) -> str | None:
    """Why a parsed track JSON cannot be used (the first field that is wrong), or None when it can."""
    try:
        record = _Record.model_validate(meta)
    except ValidationError as exc:
        return ".".join(str(part) for part in exc.errors()[0]["loc"]) or "record"
    if record.request is None:
        return None
    try:
        request = _REQUEST.validate_python(record.request)
    except ValidationError as exc:
        return "request." + ".".join(str(part) for part in exc.errors()[0]["loc"])
    # Lax validation converts ("30" -> 30); a stored value that needed converting has the wrong type.
    # Compared in JSON form, where a tuple of segments is a list and a loop an object.
    stored = _REQUEST.dump_python(request, mode="json")
    wrong = [name for name, value in record.request.items() if name in _REQUEST_FIELDS and stored[name] != value]
    return f"request.{wrong[0]}" if wrong else None
