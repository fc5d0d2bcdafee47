"""Generation backends behind the :class:`~.base.MusicEngine` protocol, chosen by name."""
from __future__ import annotations

from .base import (
    AudioClip,
    EngineError,
    GenerationOutput,
    GenerationSpec,
    ModelLoadError,
    MusicEngine,
    PreviewCallback,
)

ENGINES = ("audiocraft",)


def create_engine(name: str, *, device: str, threads: int) -> MusicEngine:
    """Build the named engine (imports nothing heavy: models load on first use)."""
    if name == "audiocraft":
        from .audiocraft_musicgen import AudiocraftEngine

        return AudiocraftEngine(device=device, threads=threads)
    raise ValueError(f"unknown engine {name!r}; available: {', '.join(ENGINES)}")


__all__ = ["AudioClip", "EngineError", "GenerationOutput", "GenerationSpec", "ModelLoadError", "MusicEngine",
           "PreviewCallback", "create_engine"]
