"""A numpy fake engine for worker and queue unit tests: fast, with knobs for delays, errors and OOM.

It never stands in for the product: protocol, end-to-end and browser tests use the real engine.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from audiocraft_webui.engines import GenerationOutput, GenerationSpec
from audiocraft_webui.models import ModelInfo


class FakeOutOfMemoryError(RuntimeError):
    """Stands in for torch.cuda.OutOfMemoryError (same class name, same message)."""


FakeOutOfMemoryError.__name__ = "OutOfMemoryError"


class FakeClock:
    """A monotonic clock that moves only when told to, for throttles that must be tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        """The current fake time, in seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the time forward."""
        self.now += seconds


class FakeEngine:
    """Sine-wave "generation" with one callback per 20 ms frame, like MusicGen's token steps.

    A step takes ``step_delay`` seconds: of the fake ``clock`` when one is given, else of real time.
    With ``hold_at`` set, the step of that index waits until ``proceed`` is set, after setting ``held``.
    ``steps_done`` counts the steps of the last generation.
    """

    sample_rate = 32000
    frame_rate = 50
    device = "cpu"

    def __init__(self, step_delay: float = 0.0, clock: FakeClock | None = None) -> None:
        self.step_delay = step_delay
        self.clock = clock
        self.loaded_model: str | None = None
        self.fail_with: BaseException | None = None
        self.freed = 0
        self.loads: list[str] = []
        self.hold_at: int | None = None
        self.held = threading.Event()
        self.proceed = threading.Event()
        self.steps_done = 0

    def prepare_thread(self) -> None:
        """Nothing to prepare."""

    def ensure_loaded(self, model: ModelInfo, on_phase) -> None:
        """Pretend to load."""
        if self.loaded_model != model.key:
            on_phase("loading_model")
            self.loads.append(model.key)
            self.loaded_model = model.key

    def generate(self, spec: GenerationSpec, on_step, on_preview=None) -> GenerationOutput:
        """Step through the frames (raising an injected failure half-way), then return a sine.

        ``on_preview`` gets the sine 0.8 s at a time as its steps go by, the rest after the last step.
        """
        steps = int(spec.duration * self.frame_rate)
        t = np.arange(int(spec.duration * self.sample_rate)) / self.sample_rate
        audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        hop, chunk_frames, sent = self.sample_rate // self.frame_rate, 40, 0
        self.steps_done = 0
        for step in range(steps):
            if self.fail_with is not None and step == steps // 2:
                error, self.fail_with = self.fail_with, None
                raise error
            if step == self.hold_at:
                self.held.set()
                self.proceed.wait(10)
            self._take_time()
            self.steps_done += 1
            if on_preview is not None and (step + 1) % chunk_frames == 0:
                on_preview(sent, audio[:, sent:(step + 1) * hop])
                sent = (step + 1) * hop
            on_step((step + 1) / steps)
        if on_preview is not None and sent < audio.shape[1]:
            on_preview(sent, audio[:, sent:])
        return GenerationOutput(audio=audio, sample_rate=self.sample_rate)

    def _take_time(self) -> None:
        """Spend one step's time, fake or real."""
        if self.clock is not None:
            self.clock.advance(self.step_delay)
        elif self.step_delay:
            time.sleep(self.step_delay)

    def decode_mbd(self, output: GenerationOutput, on_step) -> np.ndarray:
        """Return the same audio."""
        return output.audio

    def unload(self) -> None:
        """Forget the model."""
        self.loaded_model = None

    def free_memory(self) -> None:
        """Count frees."""
        self.freed += 1
