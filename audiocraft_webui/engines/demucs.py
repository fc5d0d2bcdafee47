"""Demucs stem separation: the model is loaded once (``htdemucs`` by default, ``--demucs-model``)
through ``demucs.api.Separator`` and kept until ``--unload-after-gen`` drops it after every job.

Progress comes from Demucs' own per-chunk callback. Audio crosses these functions as float32 ``[C, T]``
with its sample rate; stems come out at the model's rate (44.1 kHz for htdemucs).
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..audio import dsp
from ..device import pick_device
from ..heap import release_memory
from .stemsplit import AudioSource, ProgressCallback, Separation, StemError, split_to_folder

if TYPE_CHECKING:  # demucs and torch are imported on first use only
    from demucs.api import Separator
    from demucs.apply import BagOfModels, Model

log = logging.getLogger(__name__)


class Splitter(Protocol):
    """What the stem jobs need from a source-separation backend."""

    model_name: str

    def load(self) -> None:
        """Load the model unless it is loaded already (slow the first time: it may download)."""

    def split(self, source: AudioSource, target: str, folder: Path,
              on_progress: ProgressCallback) -> tuple[list[str], int]:
        """Write the stems of ``source`` chosen for ``target`` into ``folder``; returns their names and rate."""

    def unload(self) -> None:
        """Drop the model and give its memory back."""


class DemucsSplitter:
    """Demucs through ``demucs.api.Separator``, loaded on first use and cached between jobs.

    Args:
        model: a Demucs model name (``htdemucs``, ``htdemucs_ft``, ``htdemucs_6s``, ``mdx_extra`` ...).
        device: ``auto`` (cuda, then mps, then cpu) or an explicit torch device, as for generation.
        shifts: random-shift passes averaged together (Demucs' own default is 1; each one costs a pass).
        overlap: overlap between the model's segments (0.25 as in Demucs; 0.1 is faster).
        split: cut the input into model-sized segments (needed for anything longer than one segment).
    """

    def __init__(self, model: str = "htdemucs", device: str = "auto", shifts: int = 1, overlap: float = 0.25,
                 split: bool = True) -> None:
        self.model_name = model
        self._requested_device = device
        self._device: str | None = None
        self.shifts = shifts
        self.overlap = overlap
        self.segmented = split
        self._separator = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model on the chosen device (once)."""
        self._get()

    def _get(self) -> Separator:
        """The cached ``demucs.api.Separator``, with its model moved to the device once."""
        with self._lock:
            if self._separator is None:
                from demucs.api import Separator

                self._device = pick_device(self._requested_device)
                started = time.perf_counter()
                try:
                    separator = Separator(model=self.model_name, device=self._device, shifts=self.shifts,
                                          overlap=self.overlap, split=self.segmented, progress=False)
                except Exception as exc:
                    raise StemError(f"could not load the Demucs model {self.model_name!r}: {exc}. Check "
                                    "the name (--demucs-model) and, on first use, the network") from exc
                # A bag moves each sub-model to the device and back on every call unless it lives there.
                separator.model.to(self._device)
                self._separator = separator
                log.info("loaded Demucs %s on %s in %.1f s", self.model_name, self._device,
                         time.perf_counter() - started)
            return self._separator

    def separate(self, audio: np.ndarray, sample_rate: int, on_progress: ProgressCallback) -> Separation:
        """Resample to the model rate (soxr), match its channels and separate.

        Args:
            audio: float32 ``[C, T]`` at ``sample_rate`` Hz.
            sample_rate: Hz.
            on_progress: called with the fraction done after every chunk; may raise to cancel.
        Returns:
            One float32 ``[model channels, T']`` array per model source, at the model's rate.
        """
        import torch
        from demucs.audio import convert_audio_channels

        separator = self._get()
        at_model_rate = dsp.resample(audio, sample_rate, separator.samplerate)
        wav = convert_audio_channels(torch.from_numpy(at_model_rate), separator.audio_channels)
        tracker = ChunkProgress(separator.model, self.shifts, self.overlap, self.segmented, on_progress)
        separator.update_parameter(callback=tracker)
        try:
            _, sources = separator.separate_tensor(wav.contiguous())
        finally:
            separator.update_parameter(callback=None)
        stems = {name: source.detach().cpu().numpy().astype(np.float32) for name, source in sources.items()}
        return Separation(stems, int(separator.samplerate))

    def split(self, source: AudioSource, target: str, folder: Path,
              on_progress: ProgressCallback) -> tuple[list[str], int]:
        """Separate a file of any length window by window into ``folder`` (see :mod:`.stemsplit`)."""
        return split_to_folder(self.separate, source, target, folder, on_progress)

    def unload(self) -> None:
        """Drop the model, give its memory back to the system and empty the accelerator cache."""
        with self._lock:
            if self._separator is None:
                return
            self._separator = None
        release_memory(self._device)
        log.info("unloaded Demucs %s", self.model_name)


class ChunkProgress:
    """Turn Demucs' per-chunk callback into the overall fraction done, across bag models and shifts.

    Demucs calls back with ``state`` start/end for every chunk, plus ``model_idx_in_bag``, ``shift_idx``,
    ``segment_offset`` (in samples) and ``audio_length``. A pass (one model, one shift) is done when
    its last chunk ends; a chunk at ``offset`` ends at about ``offset + stride`` samples.
    """

    def __init__(self, model: BagOfModels | Model, shifts: int, overlap: float, split: bool,
                 on_progress: ProgressCallback) -> None:
        self._models = list(getattr(model, "models", [model]))
        self._shifts = max(1, shifts)
        self._overlap = overlap
        self._split = split
        self._rate = int(model.samplerate)
        self._on_progress = on_progress

    def _stride(self, model_index: int, length: int) -> int:
        """Samples between the starts of two chunks of one pass (the whole input when not split)."""
        segment = getattr(self._models[min(model_index, len(self._models) - 1)], "segment", None)
        if not self._split or not segment:
            return length
        return max(1, int((1 - self._overlap) * int(self._rate * float(segment))))

    def __call__(self, info: dict) -> None:
        """Report the fraction done when a chunk ends."""
        if info.get("state") != "end":
            return
        length = max(1, int(info["audio_length"]))
        model_index = int(info.get("model_idx_in_bag", 0))
        within = min(1.0, (int(info["segment_offset"]) + self._stride(model_index, length)) / length)
        done = model_index * self._shifts + int(info.get("shift_idx", 0)) + within
        self._on_progress(done / (len(self._models) * self._shifts))
