"""MusicGen through audiocraft 1.3.0: lazy model loading, seeded generation, correct long-form progress.

torch and audiocraft are imported on first use only, so starting the web server stays instant.
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import compat, heap
from ..device import DEVICE_PATTERN, DeviceError, pick_device
from ..models import ModelInfo
from .base import (
    EngineError,
    GenerationOutput,
    GenerationSpec,
    ModelLoadError,
    PhaseCallback,
    PreviewCallback,
    StepCallback,
)
from .codecstream import PreviewStream, decode_in_windows
from .decoding import DEFAULT_CPU_WEIGHTS, DecoderChoice
from .tokentap import FirstTake, StreamingError

if TYPE_CHECKING:
    from audiocraft.modules.codebooks_patterns import CodebooksPatternProvider

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Window:
    """One pass of MusicGen's long-form loop: ``frames`` codec frames in all, the first ``prompt`` of them given."""

    frames: int
    prompt: int


def plan_windows(total_frames: int, max_frames: int, stride_frames: int, prompt_frames: int) -> list[Window]:
    """Predict the windows MusicGen generates, mirroring audiocraft's ``MusicGen._generate_tokens`` loop.

    Up to ``max_frames`` (30 s) there is one window. Beyond, each window is at most ``max_frames`` long
    and the next starts ``stride_frames`` (18 s) later, its first ``frames - stride_frames`` frames (12 s)
    being the prompt taken from the previous window.

    Args:
        total_frames: frames of the whole output, continuation prompt included.
        max_frames: the model's window (``max_duration`` x frame rate).
        stride_frames: ``extend_stride`` x frame rate.
        prompt_frames: frames of the continuation prompt (0 without one).

    Returns:
        The windows in generation order.
    """
    if total_frames <= max_frames:
        return [Window(total_frames, prompt_frames)]
    windows, offset, prompt = [], 0, prompt_frames
    while offset + prompt < total_frames:
        frames = min(total_frames - offset, max_frames)
        windows.append(Window(frames, prompt))
        prompt = frames - stride_frames
        offset += stride_frames
    return windows


def window_steps(pattern_provider: CodebooksPatternProvider, window: Window) -> int:
    """Count the decoding steps (one progress callback each) the LM runs for ``window``.

    The LM walks its codebook pattern (e.g. the delay pattern) from the first step holding a frame
    after the prompt to the pattern's end, exactly as ``LMModel.generate`` does.
    """
    pattern = pattern_provider.get_pattern(window.frames)
    return len(pattern.layout) - pattern.get_first_step_with_timesteps(window.prompt)


class WindowProgress:
    """Turn audiocraft's per-window callback into one monotonic fraction over the whole job.

    audiocraft calls back ``(generated + window_offset, steps_in_this_window)`` (issue #244), so its
    own ratio climbs past 1.0 after the first window. Each call is exactly one decoding step and a
    window ends after ``steps_in_this_window`` calls, so counting calls against the planned total of
    all windows gives the true fraction; the plan is corrected with the real count of each window.
    """

    def __init__(self, planned_steps: list[int], on_step: StepCallback) -> None:
        self._planned = planned_steps
        self._on_step = on_step
        self._window = 0
        self._done_before = 0
        self._in_window = 0
        self._window_total = planned_steps[0]
        self._best = 0.0

    def __call__(self, _generated: int, steps_in_window: int) -> None:
        """Record one decoding step (signature of audiocraft's progress callback)."""
        if self._in_window >= self._window_total:
            self._done_before += self._window_total
            self._window += 1
            self._in_window = 0
        self._in_window += 1
        self._window_total = steps_in_window
        remaining = sum(self._planned[self._window + 1:])
        fraction = (self._done_before + self._in_window) / (self._done_before + self._window_total + remaining)
        self._best = min(max(self._best, fraction), 1.0)
        self._on_step(self._best)


@contextlib.contextmanager
def windowed_decode(model) -> Iterator[None]:
    """Make the model's final decode run window by window (:func:`~.codecstream.decode_in_windows`) in the block.

    ``MusicGen.generate_audio`` is shadowed on the loaded *instance* only, and only for one generation.
    """
    if "generate_audio" in vars(model):
        raise EngineError("a decode hook is already installed on this model")
    model.generate_audio = lambda codes: decode_in_windows(model.compression_model, codes)
    try:
        yield
    finally:
        del model.generate_audio


def seed_everything(seed: int) -> None:
    """Seed every generator a generation draws from, so a fixed seed reproduces the track exactly.

    torch drives the token sampling; Python's ``random`` picks the random time shift of the Demucs
    pass inside the melody (chroma) conditioner.
    """
    import torch

    torch.manual_seed(seed)
    random.seed(seed)


def describe_load_error(model: ModelInfo, exc: BaseException) -> str:
    """Explain a failed load in words a musician can act on, naming the model."""
    text = f"{type(exc).__name__}: {exc}"
    offline_markers = ("LocalEntryNotFound", "offline", "Offline", "ConnectionError", "Max retries",
                       "Temporary failure in name resolution", "cannot find the requested files")
    if any(marker in text for marker in offline_markers):
        return (f"Could not load model '{model.source}': its weights are not in the local model cache and the "
                f"Hugging Face hub cannot be reached. Connect to the internet once so the weights can download, "
                f"or choose a model you have used before.")
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return f"Not enough memory to load model '{model.source}'; choose a smaller model or close other programs."
    return f"Could not load model '{model.source}': {text}"


class AudiocraftEngine:
    """audiocraft's MusicGen (and Multi-Band Diffusion), one model in memory at a time.

    The token loop is audiocraft's own or the app's static loop (:mod:`.decoding`: ``decoder`` and
    ``cpu_weights``); everything around it is audiocraft's either way.
    """

    def __init__(self, device: str = "auto", threads: int = 0, decoder: str = "auto",
                 cpu_weights: str = DEFAULT_CPU_WEIGHTS) -> None:
        if not DEVICE_PATTERN.match(device):
            raise ValueError(f"unknown device {device!r}: use auto, cpu, mps, cuda or cuda:N")
        self._requested_device = device
        self._threads = threads
        self._decoding = DecoderChoice(decoder, cpu_weights)
        self._device: str | None = None
        self._model = None
        self._model_key: str | None = None
        self._mbd = None

    @property
    def loaded_model(self) -> str | None:
        """Key of the model held in memory, if any."""
        return self._model_key

    @property
    def sample_rate(self) -> int:
        """Sample rate of the loaded model's audio (32 kHz for every MusicGen)."""
        return int(self._loaded().sample_rate)

    @property
    def frame_rate(self) -> int:
        """Codec frames per second of the loaded model (50 for every MusicGen)."""
        return int(self._loaded().frame_rate)

    @property
    def device(self) -> str:
        """The torch device in use, chosen on first use."""
        if self._device is None:
            try:
                self._device = pick_device(self._requested_device)
            except DeviceError as exc:
                raise ModelLoadError(str(exc)) from exc
        return self._device

    def prepare_thread(self) -> None:
        """Set torch's intra-op thread count in the worker thread (torch's default is slow off the main thread)."""
        import torch

        if self._threads > 0:
            torch.set_num_threads(self._threads)

    def ensure_loaded(self, model: ModelInfo, on_phase: PhaseCallback) -> None:
        """Load ``model`` unless loaded; the previous model is freed first so two are never resident.

        Multi-Band Diffusion stays cached across a switch: it decodes the tokens of every MusicGen.
        """
        if self._model_key == model.key and self._model is not None:
            return
        self._drop_model()
        on_phase("loading_model")
        compat.install()
        from audiocraft.models import MusicGen
        from transformers.utils import logging as transformers_logging

        # The text encoder's "Loading weights" bar would be drawn in the server's console at every load.
        transformers_logging.disable_progress_bar()

        try:
            with compat.checkpoint_globals():
                self._model = MusicGen.get_pretrained(model.source, device=self.device)
        except ModelLoadError:
            raise
        except Exception as exc:  # any loader failure becomes a clear message for this job only
            self._drop_model()
            raise ModelLoadError(describe_load_error(model, exc)) from exc
        self._model_key = model.key
        heap.trim_heap()  # the loader's copy of the weights is freed now: give its pages back
        log.info("loaded %s on %s", model.source, self.device)

    def generate(self, spec: GenerationSpec, on_step: StepCallback,
                 on_preview: PreviewCallback | None = None) -> GenerationOutput:
        """Generate ``[C, T]`` float32 audio at 32 kHz for ``spec`` (seeded, so reproducible on CPU).

        With ``on_preview`` the tokens go, as they are sampled, from the decode loop (tapped from audiocraft's,
        or fed by the static one) to preview chunks (:mod:`.tokentap`, :mod:`.codecstream`).

        Raises:
            EngineError: when the request does not fit the loaded model.
        """
        model = self._require(spec.model)
        if spec.melody is not None and not spec.model.melody:
            raise EngineError(f"model '{spec.model.key}' does not support an audio prompt")
        use_top_p = spec.top_p > 0
        model.set_generation_params(
            use_sampling=True, top_k=0 if use_top_p else int(spec.top_k), top_p=spec.top_p if use_top_p else 0.0,
            temperature=spec.temperature, duration=spec.duration, cfg_coef=spec.cfg_coef,
            extend_stride=spec.extend_stride)
        frame_rate = model.frame_rate
        prompt_frames = 0
        if spec.continuation is not None:
            prompt_frames = math.ceil(spec.continuation.seconds * frame_rate)
        windows = plan_windows(int(spec.duration * frame_rate), int(model.max_duration * frame_rate),
                               int(spec.extend_stride * frame_rate), prompt_frames)
        steps = [window_steps(model.lm.pattern_provider, window) for window in windows]
        model.set_custom_progress_callback(WindowProgress(steps, on_step))
        preview = self._preview_stream(model, spec, on_preview)
        use = self._decoding.choose(model, spec.model.key, self.device)
        sink = FirstTake(preview) if preview is not None and spec.batch > 1 else preview
        seed_everything(spec.seed)
        try:
            with windowed_decode(model), self._decoding.decoding(model, use, sink):
                result = self._run(model, spec)
        finally:
            model.set_custom_progress_callback(None)
        if preview is not None:
            preview.finish()  # a long-form job may end a frame short of int(duration * frame_rate)
        audio, tokens = result if spec.return_tokens else (result, None)
        hop = model.sample_rate / frame_rate
        takes = audio.detach().float().cpu().numpy()
        return GenerationOutput(audio=takes[0], sample_rate=model.sample_rate, tokens=tokens,
                                prompt_samples=int(round(prompt_frames * hop)), decoder=use.record(),
                                takes=tuple(takes) if spec.batch > 1 else ())

    def _preview_stream(self, model, spec: GenerationSpec,
                        on_preview: PreviewCallback | None) -> PreviewStream | None:
        """A sink decoding preview chunks for ``on_preview``; None when none is wanted or the codec cannot stream."""
        if on_preview is None:
            return None
        try:
            return PreviewStream(model.compression_model, lambda chunk: on_preview(chunk.start, chunk.samples),
                                 end_frame=int(spec.duration * model.frame_rate))
        except StreamingError as exc:
            log.warning("no preview for %s: %s", spec.model.key, exc)
            return None

    def _run(self, model, spec: GenerationSpec):
        """Call the right audiocraft entry point for text, melody or continuation, for ``spec.batch`` takes."""
        import torch

        def tensor(samples: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).to(self.device)

        def batch(samples: np.ndarray) -> torch.Tensor:  # the same clip for every take: [B, C, T]
            return tensor(samples)[None].expand(spec.batch, -1, -1)

        prompts = [spec.prompt] * spec.batch
        if spec.continuation is not None:
            clip = spec.continuation
            return model.generate_continuation(batch(clip.samples), clip.sample_rate, prompts,
                                               progress=True, return_tokens=spec.return_tokens)
        if spec.melody is not None:
            clip = spec.melody
            return model.generate_with_chroma(prompts, batch(clip.samples), clip.sample_rate,
                                              progress=True, return_tokens=spec.return_tokens)
        return model.generate(prompts, progress=True, return_tokens=spec.return_tokens)

    def decode_mbd(self, output: GenerationOutput, on_step: StepCallback) -> np.ndarray:
        """Decode tokens with Multi-Band Diffusion (cached), stereo codes split into left and right.

        The diffusion noise is seeded from the tokens themselves: the same tokens (so the same
        generation seed) always decode to the same audio, whether MBD was just loaded (which draws
        random numbers for its initial weights) or came from the cache.

        Returns:
            float32 ``[C, T]`` at the model's sample rate, the same shape as the EnCodec decode.
        """
        import torch

        if output.tokens is None:
            raise EngineError("Multi-Band Diffusion needs the generated tokens")
        mbd = self._load_mbd()
        tokens = output.tokens
        if tokens.shape[0] > 1:  # a batched generation's tokens hold every take
            tokens = tokens[output.take:output.take + 1]
        compression = self._model.compression_model if self._model is not None else None
        split_stereo = getattr(compression, "get_left_right_codes", None)
        on_step(0.0)
        torch.manual_seed(zlib.crc32(tokens.detach().cpu().numpy().tobytes()))
        with torch.no_grad():
            if split_stereo is not None:
                left, right = split_stereo(tokens)
                wav = mbd.tokens_to_wav(torch.cat([left, right], dim=0))
                wav = torch.cat([wav[: len(left)], wav[len(left):]], dim=1)
            else:
                wav = mbd.tokens_to_wav(tokens)
        on_step(1.0)
        return wav[0].detach().float().cpu().numpy()

    def _load_mbd(self):
        """Load Multi-Band Diffusion once and keep it for later jobs."""
        if self._mbd is None:
            from audiocraft.models import MultiBandDiffusion

            try:
                with compat.checkpoint_globals():
                    self._mbd = MultiBandDiffusion.get_mbd_musicgen(device=self.device)
            except Exception as exc:
                raise ModelLoadError(describe_load_error(
                    ModelInfo("mbd", "facebook/multiband-diffusion", "small", False, False), exc)) from exc
        return self._mbd

    def _loaded(self):
        """The model in memory; an error when none is loaded."""
        if self._model is None:
            raise EngineError("no model is loaded")
        return self._model

    def _require(self, model: ModelInfo):
        """Return the loaded model, refusing to run a different one than requested (never a silent model swap)."""
        if self._model_key != model.key:
            raise EngineError(f"model '{model.key}' is not loaded")
        return self._loaded()

    def _drop_model(self) -> None:
        """Drop the MusicGen model (keeping MBD) and return its memory to the system."""
        self._model = None
        self._model_key = None
        self._decoding.drop()
        self.free_memory()

    def unload(self) -> None:
        """Drop the MusicGen model and MBD and return their memory to the system."""
        self._mbd = None
        self._drop_model()

    def free_memory(self) -> None:
        """Give freed memory back to the system and the accelerator (after an unload, a failure or a cancel)."""
        heap.release_memory(self._device)
