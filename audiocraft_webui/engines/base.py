"""The narrow interface between the app and a music generation backend.

The worker only sees :class:`MusicEngine`: load a model, generate from a :class:`GenerationSpec`,
report per-step progress through a callback, free memory. audiocraft's MusicGen is the backend
today; another (e.g. transformers' MusicGen) can be added by implementing the same protocol.
Audio crosses this boundary as ``np.float32`` ``[C, T]`` in [-1, 1] with its sample rate.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from ..models import ModelInfo

#: Called with the overall fraction of token generation done, in [0, 1], once per decoding step.
StepCallback = Callable[[float], None]
#: Called with preview audio while a generation runs: ``(start, samples)``, ``samples`` float32 ``[C, T]`` at
#: the model's rate and ``start`` its offset in samples into the new audio (after any continuation prompt).
PreviewCallback = Callable[[int, np.ndarray], None]
#: Called with a phase name (``loading_model``, ``downloading`` ...) when the engine changes phase.
PhaseCallback = Callable[[str], None]


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message names the model and says what to do."""


class EngineError(RuntimeError):
    """A generation request the loaded model cannot serve (e.g. a melody prompt on a text-only model)."""


@dataclass(frozen=True)
class AudioClip:
    """Reference audio handed to the engine: ``samples`` is float32 ``[C, T]`` at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return self.samples.shape[-1] / self.sample_rate


@dataclass(frozen=True)
class GenerationSpec:
    """Everything one generation needs, after validation, seed resolution and auto-tune.

    Exactly one of top_k / top_p is active: ``top_p > 0`` wins, otherwise ``top_k`` is used.
    ``duration`` is the length of the output in seconds; with ``continuation`` it includes the clip
    prompt (audiocraft's semantics), the app computes it from the clip length plus the new part.
    ``batch`` takes of the same spec are generated in one pass (one random stream seeded with ``seed``).
    """

    model: ModelInfo
    prompt: str
    duration: float
    top_k: int
    top_p: float
    temperature: float
    cfg_coef: float
    seed: int
    melody: AudioClip | None = None
    continuation: AudioClip | None = None
    return_tokens: bool = False
    extend_stride: float = 18.0
    batch: int = 1


@dataclass(frozen=True)
class GenerationOutput:
    """Generated audio ``[C, T]`` float32 at ``sample_rate``; ``tokens`` is opaque (for MBD decode).

    With a continuation prompt, the first ``prompt_samples`` samples are the codec's reconstruction
    of the prompt and the rest is new audio. ``decoder`` says which decode loop made the tokens, on which
    device and with which weight precision (the track JSON's ``parameters.decoder``). A batched generation
    holds every take's audio in ``takes`` (``audio`` is take 0) and every take's tokens; ``take`` says which
    of them an output split off by :meth:`split` stands for.
    """

    audio: np.ndarray
    sample_rate: int
    tokens: Any = None
    prompt_samples: int = 0
    decoder: dict | None = None
    takes: tuple[np.ndarray, ...] = ()
    take: int = 0

    def split(self) -> list[GenerationOutput]:
        """One output per take (sharing the tokens, each naming its ``take``); ``[self]`` when not batched."""
        if len(self.takes) <= 1:
            return [self]
        return [replace(self, audio=audio, takes=(), take=index) for index, audio in enumerate(self.takes)]


class MusicEngine(Protocol):
    """What the worker needs from a generation backend."""

    @property
    def loaded_model(self) -> str | None:
        """Key of the model held in memory, if any."""

    @property
    def sample_rate(self) -> int:
        """Sample rate of the loaded model's audio, in Hz."""

    @property
    def frame_rate(self) -> int:
        """Token frames per second of the loaded model's codec."""

    @property
    def device(self) -> str:
        """The torch device generation runs on (``cpu``, ``cuda``, ``mps`` ...); raises ModelLoadError if unusable."""

    def prepare_thread(self) -> None:
        """Set per-thread runtime options in the worker thread (e.g. torch's thread count)."""

    def ensure_loaded(self, model: ModelInfo, on_phase: PhaseCallback) -> None:
        """Load ``model`` unless it is already loaded, freeing any other model first."""

    def generate(self, spec: GenerationSpec, on_step: StepCallback,
                 on_preview: PreviewCallback | None = None) -> GenerationOutput:
        """Generate audio for ``spec``; ``on_step`` may raise to cancel.

        ``on_preview``, when given, receives the codec's audio while it is made, about 0.8 s at a time; the
        chunks concatenate to ``output.audio[:, output.prompt_samples:]`` (before any MBD decode).
        """

    def decode_mbd(self, output: GenerationOutput, on_step: StepCallback) -> np.ndarray:
        """Decode ``output.tokens`` with Multi-Band Diffusion; returns ``[C, T]`` at the same rate."""

    def unload(self) -> None:
        """Drop every model and free its memory."""

    def free_memory(self) -> None:
        """Release cached memory after a failure (e.g. out of memory) without unloading."""
