"""The wire contract: Socket.IO event names, parameter ranges and validation of client payloads.

Event names keep the original app's names where they were right (``submit_sliders``, ``progress``,
``on_finish_audio`` ...). Every server event about a job carries its ``job_id``. Validation never
trusts the browser: wrong types are refused with a message naming the field, finite numbers out
of range are clamped and the clamping is reported back.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from . import workflow
from .models import ModelCatalog
from .workflow import Loop, Segment, WorkflowError

Choice = TypeVar("Choice", str, int, str | int)

# Client -> server
SUBMIT_SLIDERS = "submit_sliders"
CANCEL_JOB = "cancel_job"
RERUN = "rerun"
REQUEST_STEMS = "request_stems"
DEMUCS_ANY = "demucs_any"
WATCH_PREVIEW = "watch_preview"

# Server -> client
AUDIO_JSON_PAIRS = "audio_json_pairs"
QUEUE_STATE = "queue_state"
UPDATE_SEED = "update_seed"
ADD_TO_QUEUE = "add_to_queue"
JOB_STARTED = "job_started"
PROGRESS = "progress"
ON_FINISH_AUDIO = "on_finish_audio"
REQUEST_ERROR = "request_error"
CONTINUATION_APPLIED = "continuation_applied"
POSTPROCESS_QUEUED = "postprocess_queued"
STEM_PROGRESS = "stem_progress"
POSTPROCESS_PROGRESS = "postprocess_progress"
POSTPROCESS_DONE = "postprocess_done"
DEMUCS_ANY_PROGRESS = "demucs_any_progress"
DEMUCS_ANY_DONE = "demucs_any_done"
TRACKS_CHANGED = "tracks_changed"
SESSION = "session"
AUDIO_PREVIEW = "audio_preview"

FORMATS = ("wav", "flac", "mp3")
SAMPLE_RATES: tuple[str | int, ...] = ("original", 48000, 32000, 16000)
STEM_TARGETS = ("", "vocals", "drums", "bass", "other", "all")
#: Loudness targets a request may choose (integrated LUFS), or ``off`` to keep the model's level.
LOUDNESS_TARGETS = ("-14", "-16", "-23", "off")
DEFAULT_LOUDNESS = "-14"
#: Highest true peak the loudness gain may produce, dBTP.
TRUE_PEAK_CEILING_DBTP = -1.0
MAX_PROMPT_CHARS = 2000
MAX_ARTIST_CHARS = 64
SEED_MAX = 2**32 - 1
AUTO_SEED = -1
UPLOAD_ID = re.compile(r"^[a-f0-9]{32}\.(wav|flac|mp3|ogg)$")

#: name -> (kind, minimum, maximum, default). Shared with the browser through the boot config.
RANGES: dict[str, tuple[type, float, float, float]] = {
    "duration": (int, 1, 300, 30),
    "top_k": (int, 0, 250, 250),
    "top_p": (float, 0.0, 1.0, 0.67),
    "temperature": (float, 0.1, 2.0, 1.2),
    "cfg_coef": (float, 1.0, 10.0, 4.0),
}


class RequestError(ValueError):
    """A client payload that cannot become a job; ``field`` names the culprit for the UI."""

    def __init__(self, field_name: str, message: str, kind: str = "invalid_request") -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message
        self.kind = kind

    def as_json(self) -> dict:
        """The error as sent to the browser; ``type`` is the stable code the UI maps to a message."""
        return {"type": self.kind, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class GenerationRequest:
    """A validated ``submit_sliders`` request: the user's values, before seed resolution and auto-tune."""

    prompt: str
    model: str
    duration: int = 30
    top_k: int = 250
    top_p: float = 0.67
    temperature: float = 1.2
    cfg_coef: float = 4.0
    seed: int = AUTO_SEED
    format: str = "wav"
    sample_rate: str | int = "original"
    keep_mono: bool = False
    auto_tune: bool = True
    mbd: bool = False
    preview: bool = True
    stem_split: str = ""
    artist: str = ""
    loudness: str = DEFAULT_LOUDNESS
    audio_prompt: str | None = None
    continuation: str | None = None
    variations: int = 1
    continue_track: str | None = None
    melody_track: str | None = None
    cut_at: float | None = None
    loop: Loop | None = None
    bpm: int | None = None
    key: str = ""
    bars: int | None = None
    segments: tuple[Segment, ...] = ()
    clamped: dict = field(default_factory=dict, compare=False)

    @property
    def target_lufs(self) -> float | None:
        """The loudness target in LUFS, or None when loudness normalisation is off."""
        return None if self.loudness == "off" else float(self.loudness)

    def as_json(self) -> dict:
        """Plain-dict form for last_run.json, the track JSON and job persistence."""
        data = asdict(self)
        data.pop("clamped")
        return data

    @classmethod
    def from_json(cls, data: dict) -> GenerationRequest:
        """Rebuild a request stored by :meth:`as_json` (trusted: written by this server)."""
        names = {f.name for f in fields(cls)} - {"clamped"}
        return cls(**workflow.from_json({k: v for k, v in data.items() if k in names}))


def _number(name: str, raw: object) -> float:
    """Read a finite number that may arrive as a JSON number or a numeric string (sliders send strings)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise RequestError(name, f"{name} must be a number, got {type(raw).__name__}")
    try:
        value = float(raw)
    except ValueError:
        raise RequestError(name, f"{name} must be a number, got {str(raw)[:20]!r}") from None
    if not math.isfinite(value):
        raise RequestError(name, f"{name} must be a finite number")
    return value


def _ranged(name: str, raw: object, clamped: dict) -> int | float:
    """Clamp a slider value into its documented range, noting any change in ``clamped``."""
    kind, low, high, _ = RANGES[name]
    value = _number(name, raw)
    used = min(max(value, low), high)
    used = int(round(used)) if kind is int else float(used)
    if used != value:
        clamped[name] = {"requested": value, "used": used}
    return used


def _flag(name: str, raw: object, default: bool) -> bool:
    """Read a checkbox: booleans, 0/1 and the strings 'true'/'false'."""
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0", "on", "off", ""):
        return raw.lower() in ("true", "1", "on")
    raise RequestError(name, f"{name} must be true or false")


def _choice(name: str, raw: object, options: tuple[Choice, ...], default: Choice) -> Choice:
    """Accept one of a fixed set of values (numbers may arrive as strings)."""
    if raw is None or raw == "":
        return default
    for option in options:
        if isinstance(raw, (str, int)) and not isinstance(raw, bool) and str(raw).lower() == str(option):
            return option
    raise RequestError(name, f"{name} must be one of {', '.join(str(o) or 'none' for o in options)}")


def _text(name: str, raw: object, limit: int) -> str:
    """Accept a string of at most ``limit`` characters."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise RequestError(name, f"{name} must be text, got {type(raw).__name__}")
    if len(raw) > limit:
        raise RequestError(name, f"{name} is too long ({len(raw)} characters, at most {limit})")
    return raw.strip()


def upload_ref(name: str, raw: object) -> str | None:
    """Reduce an upload reference (id, ``static/uploads/<id>`` or a same-site URL) to a bare upload id."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > 300:
        raise RequestError(name, f"{name} must be the id returned by the upload")
    candidate = raw.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    if not UPLOAD_ID.match(candidate):
        raise RequestError(name, f"{name} does not name an uploaded file; upload the audio again")
    return candidate


def _seed(raw: object) -> int:
    """Read the seed: -1 for auto, else 0 .. 2**32-1 (torch seeds are 64-bit, numpy's are 32-bit)."""
    if raw is None or raw == "":
        return AUTO_SEED
    value = _number("seed", raw)
    if value != int(value) or not (value == AUTO_SEED or 0 <= value <= SEED_MAX):
        raise RequestError("seed", f"seed must be -1 (auto) or a whole number from 0 to {SEED_MAX}")
    return int(value)


def parse_generation_request(payload: object, catalog: ModelCatalog) -> GenerationRequest:
    """Validate a ``submit_sliders`` payload into a request, or raise :class:`RequestError`.

    Accepts the original app's shape (slider values as strings under ``values``, ``audioPromptUrl``,
    ``continuationUrl`` + ``appendContinuation``) as well as plain top-level values.
    """
    if not isinstance(payload, dict):
        raise RequestError("payload", "the request must be an object")
    values = payload.get("values", {})
    if not isinstance(values, dict):
        raise RequestError("values", "values must be an object")
    merged = {**values, **{k: v for k, v in payload.items() if k in RANGES or k == "seed"}}

    raw_prompt = payload.get("prompt")
    if not isinstance(raw_prompt, str):
        raise RequestError("prompt", "prompt must be text")
    prompt = _text("prompt", raw_prompt, MAX_PROMPT_CHARS)
    if not prompt:
        raise RequestError("prompt", "the prompt is empty: describe the music you want")

    model_name = payload.get("model", "small")
    model = catalog.resolve(model_name) if isinstance(model_name, str) else None
    if model is None:
        raise RequestError("model",
                           f"unknown model {str(model_name)[:60]!r}; choose one of {', '.join(catalog.keys())}")

    clamped: dict = {}
    numbers: dict[str, Any] = {name: _ranged(name, merged[name], clamped) for name in RANGES
                               if merged.get(name) not in (None, "")}
    audio_prompt = upload_ref("audio_prompt", payload.get("audio_prompt", payload.get("audioPromptUrl")))
    append = _flag("appendContinuation", payload.get("appendContinuation", payload.get("append")), False)
    continuation = upload_ref("continuation", payload.get("continuation", payload.get("continuationUrl")))
    if append and continuation is None:
        raise RequestError("continuation", "append is on but no continuation clip was uploaded")
    try:
        extra = workflow.parse_workflow(payload, MAX_PROMPT_CHARS)
    except WorkflowError as exc:
        raise RequestError(exc.field, str(exc)) from None
    if (extra["melody_track"] or audio_prompt) and not model.melody:
        raise RequestError("melody_track" if extra["melody_track"] else "audio_prompt",
                           f"model {model.key!r} cannot use an audio prompt; choose a melody model")
    if extra["melody_track"] and audio_prompt:
        raise RequestError("melody_track", "give one melody: an uploaded clip or a track, not both")
    if extra["continue_track"] and append:
        raise RequestError("continue_track", "give one clip to continue: an uploaded clip or a track, not both")
    continues = append or extra["continue_track"] is not None
    if extra["loop"] and continues:
        raise RequestError("loop", "a loop is made from new audio only; drop the clip to continue")
    if extra["segments"] and (continues or audio_prompt or extra["melody_track"] or _flag("mbd", payload.get("mbd"),
                                                                                        False)):
        raise RequestError("segments", "a song structure is text only: no clip, melody or Multi-Band Diffusion")

    return GenerationRequest(
        prompt=prompt,
        model=model.key,
        seed=_seed(merged.get("seed")),
        format=_choice("format", payload.get("format"), FORMATS, "wav"),
        sample_rate=_choice("sample_rate", payload.get("sample_rate"), SAMPLE_RATES, "original"),
        keep_mono=_flag("keep_mono", payload.get("keep_mono"), False),
        auto_tune=_flag("auto_tune", payload.get("auto_tune"), True),
        mbd=_flag("mbd", payload.get("mbd"), False),
        preview=_flag("preview", payload.get("preview"), True),
        stem_split=_choice("stem_split", payload.get("stem_split"), STEM_TARGETS, ""),
        artist=_text("artist", payload.get("artist"), MAX_ARTIST_CHARS),
        loudness=_choice("loudness", payload.get("loudness"), LOUDNESS_TARGETS, DEFAULT_LOUDNESS),
        audio_prompt=audio_prompt,
        continuation=continuation if append else None,
        clamped=clamped,
        **numbers,
        **extra,
    )


def boot_ranges() -> dict:
    """Ranges and defaults for the browser, so the UI and the server agree (docs/DESIGN.md, "One set of ranges")."""
    return {name: {"min": low, "max": high, "default": default, "integer": kind is int}
            for name, (kind, low, high, default) in RANGES.items()}
