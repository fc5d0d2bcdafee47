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
from .decoding import CPU_WEIGHTS, DECODERS, DEFAULT_CPU_WEIGHTS

ENGINES = ("audiocraft",)


def create_engine(name: str, *, device: str, threads: int, decoder: str = "auto",
                  cpu_weights: str = DEFAULT_CPU_WEIGHTS) -> MusicEngine:
    """Build the named engine (imports nothing heavy: models load on first use).

    ``decoder`` and ``cpu_weights`` choose its token loop (:mod:`.decoding`).
    """
    if name == "audiocraft":
        from .audiocraft_musicgen import AudiocraftEngine

        return AudiocraftEngine(device=device, threads=threads, decoder=decoder, cpu_weights=cpu_weights)
    raise ValueError(f"unknown engine {name!r}; available: {', '.join(ENGINES)}")


__all__ = ["CPU_WEIGHTS", "DECODERS", "DEFAULT_CPU_WEIGHTS", "AudioClip", "EngineError", "GenerationOutput",
           "GenerationSpec", "ModelLoadError", "MusicEngine", "PreviewCallback", "create_engine"]
