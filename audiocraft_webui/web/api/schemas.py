"""The REST API's request and response models (pydantic), from which the OpenAPI document is generated.

Every request is *validated* by the function behind its Socket.IO event or older route (a generation by
:func:`protocol.parse_generation_request`, flags by ``library.parse_flags``, a track query by
``library.parse_query``, a stem target by the stem service), so the page and the API accept, clamp and
refuse exactly the same values. The request models *describe* those contracts for the document, their
choices and ranges read from the same constants; tests check them against the validators.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ... import protocol, workflow
from ...jobs import JobState
from ...storage.library import MAX_LIMIT, MAX_QUERY_CHARS

#: JSON-schema pattern of an upload id (``<32 hex>.<ext>``), as returned by ``POST /api/v1/uploads``.
UPLOAD_ID_PATTERN = protocol.UPLOAD_ID.pattern
STEM_TARGETS = tuple(target for target in protocol.STEM_TARGETS if target)


def choice(options: tuple, description: str) -> Any:
    """A value that must be one of the protocol's ``options`` (the document lists them as an enum)."""
    return WithJsonSchema({"enum": list(options), "description": description})


def ranged(name: str, description: str) -> Any:
    """A slider value: its default and range come from :data:`protocol.RANGES`."""
    kind, low, high, default = protocol.RANGES[name]
    return Field(kind(default), description=f"{description}. Range {kind(low)} to {kind(high)}: a finite value "
                                            "outside it is clamped into it and reported in `clamped`.")


class Strict(BaseModel):
    """A model that refuses fields it does not know."""

    model_config = ConfigDict(extra="forbid")


class LoopBody(Strict):
    """A loop: the track lasts exactly ``bars x beats_per_bar x 60 / bpm`` seconds and joins its start."""

    bars: int = Field(ge=1, le=workflow.MAX_BARS)
    bpm: int = Field(ge=workflow.BPM_RANGE[0], le=workflow.BPM_RANGE[1])
    beats_per_bar: int = Field(workflow.DEFAULT_BEATS_PER_BAR, ge=workflow.BEATS_PER_BAR_RANGE[0],
                               le=workflow.BEATS_PER_BAR_RANGE[1])


class SegmentBody(Strict):
    """One part of a song structure, continuing the previous part with its own prompt."""

    prompt: str = Field(min_length=1, max_length=protocol.MAX_PROMPT_CHARS, pattern=r"\S")
    seconds: int = Field(ge=1, le=workflow.MAX_TOTAL_SECONDS)


class GenerationBody(Strict):
    """A generation request: the fields and checks of the Socket.IO event ``submit_sliders``."""

    prompt: str = Field(min_length=1, max_length=protocol.MAX_PROMPT_CHARS, pattern=r"\S",
                        description="What the music should be (trimmed; not empty).")
    model: str = Field("small", description="A model key of `GET /api/v1/models`.")
    duration: int = ranged("duration", "Seconds of new audio")
    top_k: int = ranged("top_k", "Top-k sampling (used when top_p is 0)")
    top_p: float = ranged("top_p", "Nucleus sampling; above 0 it wins over top_k")
    temperature: float = ranged("temperature", "Sampling temperature")
    cfg_coef: float = ranged("cfg_coef", "Classifier-free guidance")
    seed: int = Field(protocol.AUTO_SEED, ge=protocol.AUTO_SEED, le=protocol.SEED_MAX,
                      description="-1 draws a seed (answered in `seed`); else the same seed gives the same audio.")
    format: Annotated[str, choice(protocol.FORMATS, "Audio format of the track.")] = "wav"
    sample_rate: Annotated[str | int, choice(protocol.SAMPLE_RATES, "Sample rate of the file.")] = "original"
    keep_mono: bool = Field(False, description="Keep a mono model's output mono (else both channels).")
    auto_tune: bool = Field(True, description="Let auto-tune adjust values you left at their defaults.")
    mbd: bool = Field(False, description="Decode with Multi-Band Diffusion.")
    preview: bool = Field(True, description="Make preview audio while it generates (Socket.IO listeners).")
    stem_split: Annotated[str, choice(protocol.STEM_TARGETS, "Split the new track into stems ('' = no).")] = ""
    artist: str = Field("", max_length=protocol.MAX_ARTIST_CHARS, description="Artist prefix of the file name.")
    loudness: Annotated[str, choice(protocol.LOUDNESS_TARGETS, "Loudness target in LUFS, or off.")] = \
        protocol.DEFAULT_LOUDNESS
    audio_prompt: str | None = Field(None, pattern=UPLOAD_ID_PATTERN,
                                     description="Upload id of a melody clip (melody models only).")
    continuation: str | None = Field(None, pattern=UPLOAD_ID_PATTERN,
                                     description="Upload id of a clip to continue: the track is the clip and "
                                                 "its continuation.")
    variations: int = Field(1, ge=1, le=workflow.MAX_VARIATIONS,
                            description="Takes of this request (seeds s .. s+N-1), one track each, one `group`.")
    continue_track: str | None = Field(None, max_length=workflow.MAX_TRACK_NAME_CHARS,
                                       pattern=workflow.TRACK_NAME.pattern,
                                       description="A track to continue by `duration` seconds (its samples "
                                                   "come first, untouched); with `cut_at`, regenerate from there.")
    melody_track: str | None = Field(None, max_length=workflow.MAX_TRACK_NAME_CHARS,
                                     pattern=workflow.TRACK_NAME.pattern,
                                     description="A track used as the melody prompt (melody models only).")
    cut_at: float | None = Field(None, gt=0, description="Seconds of `continue_track` kept; the rest is "
                                                         "generated again, to the track's own length.")
    loop: LoopBody | None = Field(None, description="Make a seamless loop of an exact number of bars.")
    bpm: int | None = Field(None, ge=workflow.BPM_RANGE[0], le=workflow.BPM_RANGE[1],
                            description="Tempo, added to the prompt (\"..., 120 bpm\").")
    key: str = Field("", pattern=f"^$|{workflow.KEY_PATTERN.pattern}",
                     description="Key and scale, added to the prompt (e.g. 'C minor').")
    bars: int | None = Field(None, ge=1, le=workflow.MAX_BARS,
                             description="Length in bars of 4 beats at `bpm` (exact to the sample).")
    segments: tuple[SegmentBody, ...] = Field((), max_length=workflow.MAX_SEGMENTS,
                                              description="A song structure: each segment continues the previous "
                                                          "audio with its own prompt (at most 300 s together).")


class Clamp(BaseModel):
    """A value the server moved into its range."""

    requested: float
    used: float


class JobCreated(BaseModel):
    """A queued generation."""

    job_id: str
    position: int = Field(description="1 = runs next.")
    seed: int = Field(description="The seed the job uses (drawn when the request said -1).")
    clamped: dict[str, Clamp] = Field(description="Values moved into their range, by field.")


class StemJobCreated(BaseModel):
    """A queued stem split."""

    job_id: str
    position: int
    name: str | None = Field(None, description="The track split (a track's split).")
    id: str | None = Field(None, description="The stem set's key (an upload's split).")
    target: str | None = None


class ErrorDetail(BaseModel):
    """Why a request was refused; ``type`` is a stable code (README, "Error codes")."""

    type: str
    field: str | None = Field(None, description="The field or parameter at fault, when one is.")
    message: str


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    error: ErrorDetail


class JobError(BaseModel):
    """Why a job failed or stopped."""

    type: str
    message: str


class StemFile(BaseModel):
    """One stem and where to get it."""

    name: str
    url: str


class TakeResult(BaseModel):
    """One take of a generation with `variations`."""

    name: str
    audio_url: str
    json_url: str
    seed: int


class GenerationResult(BaseModel):
    """The track a generation made (with `variations`: take A's, and every take in `takes`)."""

    name: str
    audio_url: str
    json_url: str
    seed: int
    meta: dict | None = Field(None, description="The track's JSON record (left out of the queue listing).")
    takes: list[TakeResult] | None = Field(None, description="Every take in order (only with `variations` > 1).")


class StemResult(BaseModel):
    """The stems a split made."""

    name: str | None = Field(None, description="The track (a track's split).")
    id: str | None = Field(None, description="The stem set's key (an upload's split).")
    target: str | None = None
    stems: list[StemFile]


class JobView(BaseModel):
    """A job of the queue, from queued to its end."""

    job_id: str
    kind: Literal["generate", "stems", "demucs_any"]
    label: str
    state: JobState
    progress: float = Field(ge=0, le=1)
    phase: str
    position: int | None = Field(description="Place in the queue (1 = next), 0 while running, null when over.")
    error: JobError | None
    result: GenerationResult | StemResult | None
    created: float
    started: float | None
    finished: float | None


class JobList(BaseModel):
    """The queue: the running job, the waiting ones in order, the recent history (newest first)."""

    running: JobView | None
    queued: list[JobView]
    recent: list[JobView]
    max: int = Field(description="Most jobs that may wait.")


class CancelAnswer(BaseModel):
    """What a cancel did: a waiting job is removed, a running one stops at its next step."""

    job_id: str
    outcome: Literal["removed", "cancelling"]


class ModelView(BaseModel):
    """A model offered, and whether it is on this machine."""

    key: str
    size: str
    melody: bool
    stereo: bool
    custom: bool
    cached: bool = Field(description="Loads without a download.")
    size_bytes: int | None
    size_source: Literal["cache", "local", "estimate", "unknown"]


class ModelList(BaseModel):
    """Every model offered."""

    models: list[ModelView]


class TrackView(BaseModel):
    """A committed track."""

    name: str
    audio_url: str
    json_url: str
    meta: dict = Field(description="The track's JSON record (README, \"JSON schema\").")
    mtime: float


class TrackList(BaseModel):
    """One page of tracks."""

    tracks: list[TrackView]
    total: int = Field(description="Tracks matched before the page.")
    limit: int
    offset: int


class TrackQuery(Strict):
    """Filters, sort and page of the track list (every one optional)."""

    q: str | None = Field(None, max_length=MAX_QUERY_CHARS, description="Words in the prompt (all of them).")
    model: str | None = Field(None, max_length=MAX_QUERY_CHARS)
    format: Literal["wav", "flac", "mp3"] | None = None
    favorite: bool | None = None
    locked: bool | None = None
    artist: str | None = Field(None, max_length=MAX_QUERY_CHARS, description="Part of the artist.")
    seed: int | None = Field(None, ge=0, le=protocol.SEED_MAX)
    since: str | None = Field(None, description="2025-08-19 (that whole day) or 2025-08-19T14:05.")
    until: str | None = Field(None, description="2025-08-19 (that whole day) or 2025-08-19T14:05.")
    sort: Literal["date", "name"] = "date"
    order: Literal["desc", "asc"] = "desc"
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_LIMIT * 100)


class TrackFlags(Strict):
    """Flags to set on a track (at least one)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    favorite: bool | None = None
    locked: bool | None = None


class Deleted(BaseModel):
    """What a delete removed (paths under the data folder)."""

    deleted: list[str]


class UploadForm(BaseModel):
    """An audio file to upload and what it is for."""

    file: bytes = Field(description="WAV, FLAC, MP3 or Ogg audio.")
    purpose: Literal["melody", "continuation", "demucs"]


class UploadView(BaseModel):
    """A stored upload: use its ``id`` as ``audio_prompt``, ``continuation`` or for a stem split."""

    id: str
    name: str = Field(description="The file's original name (display only).")
    purpose: str
    format: str
    sample_rate: int
    channels: int
    duration: float


class StemsBody(Strict):
    """Which stems a split makes: all of them, or one and its complement."""

    target: Annotated[str, choice(STEM_TARGETS, "Stems to make.")] = "all"


class TokenView(BaseModel):
    """The API token for a logged-in page (send it as ``Authorization: Bearer``)."""

    token: str | None
    required: bool = Field(description="Whether API calls must carry the token.")
