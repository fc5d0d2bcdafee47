"""A generation job from request to committed track: seed, auto-tune, engine, MBD, append, encode, JSON.

``prepare`` runs in the Socket.IO handler (so the seed and auto-tune are known at once and the
job is self-contained); ``GenerationRunner.run`` runs on the worker thread. The fields of the
track JSON are documented in the README's "JSON schema" section.
"""
from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO

import numpy as np

from . import autotune, modelcache, protocol
from .audio import dsp, loudness, output
from .engines import AudioClip, GenerationOutput, GenerationSpec, MusicEngine
from .jobs import Job
from .models import ModelCatalog, ModelInfo
from .preview import PreviewHub
from .protocol import GenerationRequest
from .storage import Track, TrackStore, base_name
from .tasks import Effective, GenerateTask
from .uploads import UploadStore
from .version import __version__
from .worker import JobCancelled, Progress

log = logging.getLogger(__name__)

#: Longest clip tail used as the continuation prompt: audiocraft needs it strictly shorter than 30 s.
MAX_CONTINUATION_PROMPT_SECONDS = 29.5
#: The continuation prompt is cut to whole multiples of this (25 codec frames): such durations are exact
#: in binary floating point, so audiocraft's ``int(duration * frame_rate)`` never loses a frame.
CONTINUATION_PROMPT_STEP_SECONDS = 0.5
MBD_IMPL = "audiocraft_mbd"


class ContinuationError(RuntimeError):
    """An append job could not continue its clip; the job fails instead of saving a plain generation."""


def draw_seed() -> int:
    """Draw a seed for auto mode (the original app's range, easy to read and retype)."""
    return secrets.randbelow(100_000_000)


def prepare(request: GenerationRequest, catalog: ModelCatalog) -> GenerateTask:
    """Resolve the seed and auto-tune into the self-contained task of a generation job.

    The user's own values stay in ``request``, so rerun and last_run.json repeat what the user
    asked (with auto seed still auto, and auto-tune's output never fed back as user values); the
    values actually used go in ``effective``.
    """
    model = catalog.resolve(request.model)
    assert model is not None, "the request was validated against the catalogue"
    seed = draw_seed() if request.seed == protocol.AUTO_SEED else request.seed
    if request.auto_tune:
        tuned = autotune.tune(model.key, top_k=request.top_k, top_p=request.top_p, temperature=request.temperature,
                              cfg_coef=request.cfg_coef, duration=request.duration)
        values, tune_block = tuned.values, tuned.block
        effective = Effective(float(values["temperature"]), float(values["cfg_coef"]), int(values["duration"]))
    else:
        effective = Effective(request.temperature, request.cfg_coef, request.duration)
        tune_block = autotune.disabled_block()
    return GenerateTask(request, seed, effective, tune_block, request.clamped)


def sampling_params(request: GenerationRequest) -> dict:
    """The one sampling parameter that reaches the model: top_p when > 0, else top_k."""
    return {"top_p": request.top_p} if request.top_p > 0 else {"top_k": request.top_k}


@dataclass
class Rendered:
    """Audio ready to encode (float32 ``[C, T]`` at ``sample_rate``), plus the JSON fields describing it."""

    audio: np.ndarray
    sample_rate: int
    fields: dict
    generate_seconds: float
    new_seconds: float


class GenerationRunner:
    """Runs generation jobs on the worker thread."""

    def __init__(self, engine: MusicEngine, catalog: ModelCatalog, store: TrackStore, uploads: UploadStore,
                 emit: Callable[..., None], preview: PreviewHub, unload_after: bool = False) -> None:
        self.engine = engine
        self.preview = preview
        self.catalog = catalog
        self.store = store
        self.uploads = uploads
        self.emit = emit
        self.unload_after = unload_after

    def run(self, job: Job, progress: Progress) -> dict:
        """Generate, post-process and commit one track; returns the ``on_finish_audio`` fields."""
        task = job.task
        assert isinstance(task, GenerateTask), "the worker routes generate jobs here"
        request = task.request
        model = self.catalog.resolve(request.model)
        if model is None:
            raise ValueError(f"model {request.model!r} is no longer offered")
        started = time.perf_counter()
        try:
            progress.phase("loading_model", 0.0, 0.05)
            if self.engine.loaded_model != model.key:
                self._download(model, progress)
            self.engine.ensure_loaded(model, lambda name: progress.phase(name, 0.0, 0.05))
            rendered = self._render(job, task, model, progress)
            progress.phase("writing", 0.95, 1.0)
            track = self._commit(job, task, model, rendered, started)
        finally:
            self.preview.close(job.id)
            if self.unload_after:
                self.engine.unload()
        return {"prompt": request.prompt, "filename": track.pair()[0], "json_filename": track.pair()[1],
                "name": track.base, "seed": task.seed, "meta": track.meta}

    @staticmethod
    def _download(model: ModelInfo, progress: Progress) -> None:
        """Fetch a model's missing checkpoint files first, so the job's progress shows bytes and percent."""
        if not modelcache.missing_files(model):
            return
        progress.phase("downloading", 0.0, 0.04)
        modelcache.fetch(model, lambda done, total: progress.update(
            done / total if total else 0.0, {"downloaded_bytes": done, "total_bytes": total}))

    def _render(self, job: Job, task: GenerateTask, model: ModelInfo, progress: Progress) -> Rendered:
        """Render the audio; an append job that fails says so and fails (never a plain track claiming an append)."""
        request = task.request
        try:
            return self._render_audio(job, task, model, progress)
        except JobCancelled:
            raise
        except Exception as exc:
            if request.continuation is None:
                raise
            reason = str(exc) or type(exc).__name__
            self.emit(protocol.CONTINUATION_APPLIED, {
                "job_id": job.id, "prompt": request.prompt, "error": reason,
                "continuation_source": self.uploads.display_name(request.continuation)})
            raise ContinuationError(f"the continuation failed: {reason}") from exc

    def _render_audio(self, job: Job, task: GenerateTask, model: ModelInfo, progress: Progress) -> Rendered:
        """Run the engine (and MBD, append) and shape the audio for the requested output."""
        request, effective = task.request, task.effective
        melody = self._clip(request.audio_prompt)
        clip = self._clip(request.continuation)
        prompt_clip = continuation_prompt(clip, self.engine.sample_rate) if clip else None
        duration = effective.duration + (prompt_clip.seconds if prompt_clip else 0.0)
        spec = GenerationSpec(
            model=model, prompt=request.prompt, duration=duration, top_k=request.top_k, top_p=request.top_p,
            temperature=effective.temperature, cfg_coef=effective.cfg_coef, seed=task.seed,
            melody=melody, continuation=prompt_clip, return_tokens=request.mbd)
        generate_end = 0.75 if request.mbd else 0.9
        progress.phase("generating", 0.05, generate_end)
        rate = self.engine.sample_rate
        on_preview = (lambda start, samples: self.preview.publish(job, start, samples, rate)) if request.preview \
            else None
        generate_started = time.perf_counter()
        output = self.engine.generate(spec, progress.update, on_preview)
        generate_seconds = time.perf_counter() - generate_started
        new_audio, mbd_info = self._decode(output, request, progress, generate_end)
        fields: dict = {"multi_band_diffusion": mbd_info}
        if output.decoder is not None:
            fields["decoder"] = output.decoder
        progress.phase("postprocessing", 0.9, 0.95)
        if clip is not None and prompt_clip is not None:
            joined, native_rate = self._append(job, request, clip, prompt_clip, new_audio, output.sample_rate, fields)
            rate = output_rate(request, native_rate)
            audio, target = dsp.resample(joined, native_rate, rate), None  # the new part was matched to the clip
        else:
            rate = output_rate(request, output.sample_rate)
            audio, target = dsp.resample(new_audio, output.sample_rate, rate), request.target_lufs
        fields["channels_original"] = int(audio.shape[0])
        # Normalised and measured as written (final channels and rate), so the JSON states what the file holds.
        audio, fields["loudness"] = loudness.normalize_loudness(
            dsp.to_output_channels(audio, keep_mono=request.keep_mono), rate, target_lufs=target,
            ceiling_dbtp=protocol.TRUE_PEAK_CEILING_DBTP)
        return Rendered(audio, rate, fields, generate_seconds, new_audio.shape[1] / output.sample_rate)

    def _clip(self, upload_id: str | None) -> AudioClip | None:
        """Load an uploaded clip from its saved file by upload id (never by a client path or URL)."""
        if upload_id is None:
            return None
        samples, rate = self.uploads.read(upload_id)
        return AudioClip(samples, rate)

    def _decode(self, output: GenerationOutput, request: GenerationRequest, progress: Progress,
                start: float) -> tuple[np.ndarray, dict]:
        """The new part of the audio, decoded by MBD when asked; an MBD failure keeps the EnCodec audio.

        With a continuation the tokens hold the prompt too: MBD decodes them all (so the new part has
        its context) and the prompt's share is cut off afterwards, before the clip is put back, so the
        user's own clip is never replaced by MBD's reconstruction of it.

        Returns:
            ``(float32 [C, T_new] at output.sample_rate, the multi_band_diffusion JSON block)``.
        """
        new_audio = output.audio[:, output.prompt_samples:]
        if not request.mbd:
            return new_audio, {"requested": False, "status": "not_requested", "impl": None}
        progress.phase("mbd", start, 0.9)
        try:
            decoded = self.engine.decode_mbd(output, progress.update)
        except JobCancelled:
            raise
        except Exception as exc:  # MBD is optional: never lose the track because of it
            log.exception("MBD decode failed; keeping the EnCodec audio")
            return new_audio, {"requested": True, "status": "failed", "impl": MBD_IMPL,
                               "error": f"{type(exc).__name__}: {exc}"[:300]}
        return decoded[:, output.prompt_samples:], {"requested": True, "status": "applied", "impl": MBD_IMPL}

    def _append(self, job: Job, request: GenerationRequest, clip: AudioClip, prompt_clip: AudioClip,
                new_audio: np.ndarray, rate: int, fields: dict) -> tuple[np.ndarray, int]:
        """Put the original clip samples before the loudness-matched new part, at the clip's own rate.

        Args:
            clip: the uploaded clip, float32 ``[C1, T1]`` at its own rate.
            prompt_clip: the part of the clip the model continued (for the JSON).
            new_audio: the model's new part, float32 ``[C2, T2]`` at ``rate``.

        Returns:
            ``(float32 [C, T1 + T2 * clip_rate / rate], clip_rate)``.
        """
        matched, loudness_fields = loudness.match_loudness(clip.samples, new_audio)
        fields.update(loudness_fields)
        original, new_part = match_channels(clip.samples, dsp.resample(matched, rate, clip.sample_rate))
        fields.update({"append_mode": True, "continuation_original_seconds": round(clip.seconds, 3),
                       "continuation_prompt_seconds": round(prompt_clip.seconds, 3)})
        self.emit(protocol.CONTINUATION_APPLIED, {
            "job_id": job.id, "prompt": request.prompt,
            "continuation_source": self.uploads.display_name(request.continuation),
            "continuation_original_seconds": fields["continuation_original_seconds"]})
        return np.concatenate([original, new_part], axis=1), clip.sample_rate

    def _commit(self, job: Job, task: GenerateTask, model: ModelInfo, rendered: Rendered, started: float) -> Track:
        """Encode, describe and tag the file in memory, then commit it with its JSON (the same record)."""
        request = task.request
        when = datetime.now()

        def describe(encoded_fields: dict, measured: dict | None) -> dict:
            if measured is not None:  # a lossy file: state what its decoder gives back
                rendered.fields["loudness"].update(measured)
            meta = self._meta(job, task, model, rendered, encoded_fields, when)
            meta["timing"] = {
                "generate_seconds": round(rendered.generate_seconds, 3),
                "total_seconds": round(time.perf_counter() - started, 3),
                "realtime_factor": round(rendered.generate_seconds / max(rendered.new_seconds, 1e-9), 4),
                "device": self.engine.device}
            return meta

        written = output.encode_track(rendered.audio, rendered.sample_rate, request.format, describe)
        seed = None if request.seed == protocol.AUTO_SEED else task.seed
        base = base_name(model.key, seed, request.artist, when)
        return self.store.commit(base, written.format, lambda handle: write_all(handle, written.data), written.record)

    def _meta(self, job: Job, task: GenerateTask, model: ModelInfo, rendered: Rendered, encoded_fields: dict,
              when: datetime) -> dict:
        """The track's JSON (README, "JSON schema"): what was asked, what was used, what was written."""
        request, effective = task.request, task.effective
        parameters = {
            **sampling_params(request),
            "temperature": effective.temperature,
            "cfg_coef": effective.cfg_coef,
            "duration": effective.duration,
            "seed": task.seed,
            "seed_requested": request.seed,
            "format_requested": request.format,
            **encoded_fields,
            "sample_rate": rendered.sample_rate,
            "sample_rate_requested": request.sample_rate,
            "channels": int(rendered.audio.shape[0]),
            "keep_mono": request.keep_mono,
            "audio_prompt": self.uploads.display_name(request.audio_prompt),
            "continuation_source": self.uploads.display_name(request.continuation),
            "append_mode": False,
            "auto_tune": task.auto_tune,
            **rendered.fields,
        }
        if request.artist:
            parameters["artist"] = request.artist
        if request.stem_split:
            parameters["stem_split"] = {"requested": request.stem_split, "status": "queued"}
        if task.clamped:
            parameters["clamped"] = task.clamped
        return {
            "model": model.key,
            "model_id": model.source if not model.custom else model.key,
            "prompt": request.prompt,
            "created": when.isoformat(timespec="seconds"),
            "job_id": job.id,
            "app_version": __version__,
            "duration_seconds": round(rendered.audio.shape[1] / rendered.sample_rate, 3),
            "parameters": parameters,
            "request": request.as_json(),
            "waveform": dsp.waveform_peaks(rendered.audio),
        }


def output_rate(request: GenerationRequest, native_rate: int) -> int:
    """The sample rate to write: the requested one, or ``native_rate`` (model or clip rate) for "original"."""
    return native_rate if request.sample_rate == "original" else int(request.sample_rate)


def continuation_prompt(clip: AudioClip, model_rate: int) -> AudioClip:
    """The clip's last (up to 29.5) seconds at the model rate, cut to a whole multiple of 0.5 s.

    Cutting at the start keeps the clip's end, so the model's new audio begins exactly where the
    clip ends and the original clip can be put back in front without a gap.

    Args:
        clip: float32 ``[C, T]`` at its own rate.
        model_rate: the model's sample rate, Hz.

    Returns:
        float32 ``[C, T']`` at ``model_rate``, T' a multiple of 0.5 s.

    Raises:
        ValueError: when the clip is shorter than 0.5 s.
    """
    samples = dsp.resample(clip.samples, clip.sample_rate, model_rate)
    step = int(CONTINUATION_PROMPT_STEP_SECONDS * model_rate)
    keep = min(samples.shape[1], int(MAX_CONTINUATION_PROMPT_SECONDS * model_rate))
    keep -= keep % step
    if keep <= 0:
        raise ValueError(f"the continuation clip lasts {clip.seconds:.2f} s; it must last at least "
                         f"{CONTINUATION_PROMPT_STEP_SECONDS:g} s")
    return AudioClip(samples[:, samples.shape[1] - keep:], model_rate)


def match_channels(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give two ``[C, T]`` signals the same channel count before joining them.

    Mono is repeated to the other's count; otherwise both keep only the channels they share
    (the first ``min(C1, C2)``), as the original app did.
    """
    if first.shape[0] == second.shape[0]:
        return first, second
    if first.shape[0] == 1:
        return np.repeat(first, second.shape[0], axis=0), second
    if second.shape[0] == 1:
        return first, np.repeat(second, first.shape[0], axis=0)
    shared = min(first.shape[0], second.shape[0])
    return first[:shared], second[:shared]


def write_all(handle: IO[bytes], data: bytes) -> None:
    """Write encoded audio into the temp file the store opened."""
    handle.write(data)
