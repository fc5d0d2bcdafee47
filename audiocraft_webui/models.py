"""The catalogue of MusicGen models the UI offers: short names, hub ids or local folders, capabilities.

The browser only ever sends a short name from this catalogue; no checkpoint path comes from a client.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HUB_PREFIX = "facebook/musicgen-"

_BUILTIN = (
    # key, size bucket, melody, stereo
    ("small", "small", False, False),
    ("medium", "medium", False, False),
    ("large", "large", False, False),
    ("melody", "medium", True, False),
    ("melody-large", "large", True, False),
    ("stereo-small", "small", False, True),
    ("stereo-medium", "medium", False, True),
    ("stereo-large", "large", False, True),
    ("stereo-melody", "medium", True, True),
    ("stereo-melody-large", "large", True, True),
)


@dataclass(frozen=True)
class ModelInfo:
    """One selectable model.

    Attributes:
        key: short name used in the UI, in file names and in the JSON (e.g. ``small``, ``stereo-melody``).
        source: what the engine loads: a hub id (``facebook/musicgen-small``) or a local folder.
        size: ``small`` / ``medium`` / ``large`` (auto-tune bucket, memory hints).
        melody: accepts an audio prompt (chroma conditioning).
        stereo: generates two channels.
        custom: configured by the user rather than built in.
    """

    key: str
    source: str
    size: str
    melody: bool
    stereo: bool
    custom: bool = False

    def public(self) -> dict:
        """Describe the model for the browser (never the local path of a custom model)."""
        return {"key": self.key, "size": self.size, "melody": self.melody, "stereo": self.stereo,
                "custom": self.custom}


def _custom_key(source: str) -> str:
    """Derive a file-name-safe key for a custom model from its hub id or folder name."""
    name = Path(source.rstrip("/\\")).name if Path(source).is_dir() else source.split("/")[-1]
    return "custom-" + (re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-")[:40] or "model")


def _guess_size(name: str) -> str:
    """Guess the size bucket of a custom model from its name (small unless it says otherwise)."""
    lowered = name.lower()
    return "large" if "large" in lowered else "medium" if ("medium" in lowered or "melody" in lowered) else "small"


class ModelCatalog:
    """Built-in MusicGen models plus the custom ones named on the command line."""

    def __init__(self, custom_sources: list[str] | tuple[str, ...] = ()) -> None:
        self._models: dict[str, ModelInfo] = {
            key: ModelInfo(key, HUB_PREFIX + key, size, melody, stereo) for key, size, melody, stereo in _BUILTIN
        }
        for source in custom_sources:
            key = _custom_key(source)
            lowered = source.lower()
            self._models[key] = ModelInfo(key, source, _guess_size(source), "melody" in lowered,
                                          "stereo" in lowered, custom=True)

    def resolve(self, name: str) -> ModelInfo | None:
        """Find a model by short name or by its full built-in hub id; None when it is not offered."""
        if name.startswith(HUB_PREFIX) and name[len(HUB_PREFIX):] in self._models:
            name = name[len(HUB_PREFIX):]
        return self._models.get(name)

    def keys(self) -> list[str]:
        """Short names in display order."""
        return list(self._models)

    def models(self) -> list[ModelInfo]:
        """Every model offered, in display order."""
        return list(self._models.values())
