"""The engine and the stem splitter as the server sees them when they run in the worker process.

They implement the same interfaces as the in-process objects (:class:`~..engines.base.MusicEngine`,
:class:`~..engines.demucs.Splitter`), so the jobs do not know where the work runs. What each call was
doing names it in the reason given if the worker dies during it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..engines.base import GenerationOutput, GenerationSpec, PhaseCallback, PreviewCallback, StepCallback
from ..engines.stemsplit import AudioSource, ProgressCallback
from ..models import ModelInfo
from .supervisor import WorkerProcess


class RemoteEngine:
    """The music engine of the worker process (:class:`~..engines.base.MusicEngine`)."""

    def __init__(self, worker: WorkerProcess, unload_ends_worker: bool = False) -> None:
        self._worker = worker
        self._unload_ends_worker = unload_ends_worker

    @property
    def loaded_model(self) -> str | None:
        """Key of the model the worker holds (None when no worker runs)."""
        return self._get("loaded_model") if self._worker.pid is not None else None

    @property
    def sample_rate(self) -> int:
        """Sample rate of the loaded model's audio."""
        return int(self._get("sample_rate"))

    @property
    def frame_rate(self) -> int:
        """Codec frames per second of the loaded model."""
        return int(self._get("frame_rate"))

    @property
    def device(self) -> str:
        """The device the worker generates on (starts the worker when none runs)."""
        return str(self._get("device"))

    def _get(self, name: str) -> Any:
        """An attribute of the worker's engine."""
        return self._worker.call("engine", "get", name, activity="answering")

    def prepare_thread(self) -> None:
        """The worker process prepares its own thread."""

    def ensure_loaded(self, model: ModelInfo, on_phase: PhaseCallback) -> None:
        """Load ``model`` in the worker."""
        self._worker.call("engine", "ensure_loaded", model, on_phase, activity=f"loading {model.key}")

    def generate(self, spec: GenerationSpec, on_step: StepCallback,
                 on_preview: PreviewCallback | None = None) -> GenerationOutput:
        """Generate in the worker (its tokens stay there, behind a handle, for a Multi-Band Diffusion decode)."""
        callbacks = (on_step,) if on_preview is None else (on_step, on_preview)
        return self._worker.call("engine", "generate", spec, *callbacks, activity=f"generating with {spec.model.key}")

    def decode_mbd(self, output: GenerationOutput, on_step: StepCallback) -> np.ndarray:
        """Decode the output's tokens with Multi-Band Diffusion in the worker."""
        return self._worker.call("engine", "decode_mbd", output, on_step, activity="decoding with Multi-Band Diffusion")

    def unload(self) -> None:
        """Drop every model: with ``--unload-after-gen`` the worker simply ends, which frees everything."""
        if self._unload_ends_worker:
            self._worker.stop()
        elif self._worker.pid is not None:
            self._worker.call("engine", "unload", activity="unloading")

    def free_memory(self) -> None:
        """Release cached memory in the worker (after a failure), if one runs."""
        if self._worker.pid is not None:
            self._worker.call("engine", "free_memory", activity="freeing memory")


class RemoteSplitter:
    """The Demucs splitter of the worker process (:class:`~..engines.demucs.Splitter`)."""

    def __init__(self, worker: WorkerProcess, model_name: str, unload_ends_worker: bool = False) -> None:
        self._worker = worker
        self.model_name = model_name
        self._unload_ends_worker = unload_ends_worker

    def load(self) -> None:
        """Load Demucs in the worker."""
        self._worker.call("splitter", "load", activity=f"loading Demucs {self.model_name}")

    def split(self, source: AudioSource, target: str, folder: Path,
              on_progress: ProgressCallback) -> tuple[list[str], int]:
        """Separate in the worker, which writes the stems into ``folder``."""
        return self._worker.call("splitter", "split", source, target, folder, on_progress,
                                 activity="separating stems")

    def unload(self) -> None:
        """Drop Demucs (with ``--unload-after-gen``: end the worker)."""
        if self._unload_ends_worker:
            self._worker.stop()
        elif self._worker.pid is not None:
            self._worker.call("splitter", "unload", activity="unloading Demucs")
