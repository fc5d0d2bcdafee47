"""What each kind of job carries: one frozen dataclass per kind, kept in the queue file as JSON.

A task is self-contained: everything the worker needs to run the job was resolved when it was
queued (the seed, the auto-tuned values), so a restart re-runs exactly what the user was told.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

from .protocol import GenerationRequest

#: The task a track's JSON records a stem split under.
STEM_SPLIT_TASK = "stem_split"


@dataclass(frozen=True)
class Effective:
    """The sampling values a generation really uses (the user's, or auto-tune's when it is on)."""

    temperature: float
    cfg_coef: float
    duration: int


@dataclass(frozen=True)
class GenerateTask:
    """Generate one track.

    Attributes:
        request: the user's own values (kept for rerun and last_run.json: auto-tune's output is never fed back).
        seed: the seed used (drawn at submit time in auto mode).
        effective: the values used after auto-tune.
        auto_tune: the ``parameters.auto_tune`` JSON block.
        clamped: request values the server moved into range, ``{field: {requested, used}}``.
    """

    kind: ClassVar[str] = "generate"
    request: GenerationRequest
    seed: int
    effective: Effective
    auto_tune: dict
    clamped: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What the queue shows: the prompt."""
        return self.request.prompt

    def event_fields(self) -> dict:
        """Fields every event of the job carries besides its id: none for a generation."""
        return {}

    def as_json(self) -> dict:
        """The task as stored in the queue file."""
        return {"request": self.request.as_json(), "seed": self.seed, "effective": asdict(self.effective),
                "auto_tune": self.auto_tune, "clamped": self.clamped}

    @classmethod
    def from_json(cls, data: dict) -> GenerateTask:
        """Rebuild a stored task (written by this server; raises on a malformed one)."""
        return cls(GenerationRequest.from_json(data["request"]), int(data["seed"]), Effective(**data["effective"]),
                   dict(data["auto_tune"]), dict(data.get("clamped") or {}))


@dataclass(frozen=True)
class TrackSplitTask:
    """Split a committed track into stems (``static/stems/<name>/``); ``target`` is ``all`` or one stem."""

    kind: ClassVar[str] = "stems"
    name: str
    target: str

    @property
    def label(self) -> str:
        """What the queue shows: the track's name."""
        return self.name

    def event_fields(self) -> dict:
        """Every event of the split names its track, task and target (even a failure's)."""
        return {"name": self.name, "task": STEM_SPLIT_TASK, "target": self.target}

    def as_json(self) -> dict:
        """The task as stored in the queue file."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrackSplitTask:
        """Rebuild a stored task."""
        return cls(str(data["name"]), str(data["target"]))


@dataclass(frozen=True)
class UploadSplitTask:
    """Split an uploaded file into ``static/stems_any/<id>/``.

    Attributes:
        id: the stem set's key (the upload id without its extension).
        upload: the upload id.
        display_name: the file's original name (for the UI only).
    """

    kind: ClassVar[str] = "demucs_any"
    id: str
    upload: str
    display_name: str

    @property
    def label(self) -> str:
        """What the queue shows: the uploaded file's name."""
        return self.display_name

    def event_fields(self) -> dict:
        """Every event of the split names the upload."""
        return asdict(self)

    def as_json(self) -> dict:
        """The task as stored in the queue file."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> UploadSplitTask:
        """Rebuild a stored task."""
        return cls(str(data["id"]), str(data["upload"]), str(data["display_name"]))


Task = GenerateTask | TrackSplitTask | UploadSplitTask
#: Task classes by the job kind stored with them.
TASK_TYPES: dict[str, type[GenerateTask] | type[TrackSplitTask] | type[UploadSplitTask]] = {
    task.kind: task for task in (GenerateTask, TrackSplitTask, UploadSplitTask)}
