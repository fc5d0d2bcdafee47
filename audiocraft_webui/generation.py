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
from .audio import codecs, dsp, loops, loudness, output
from .composing import Composed, Composer, continuation_prompt, model_prompt, new_audio_seconds, workflow_fields
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
from .workflow import bars_seconds

log = logging.getLogger(__name__)

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
    seed: int
    top: dict


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
        """Generate, post-process and commit the job's tracks; returns the ``on_finish_audio`` fields.

        With variations the fields are take 0's, and ``takes`` lists every take's.
        """
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
            takes = self._render(job, task, model, progress)
            progress.phase("writing", 0.95, 1.0)
            tracks = [self._commit(job, task, model, rendered, started) for rendered in takes]
        finally:
            self.preview.close(job.id)
            if self.unload_after:
                self.engine.unload()
        results = [{"prompt": request.prompt, "filename": track.pair()[0], "json_filename": track.pair()[1],
                    "name": track.base, "seed": rendered.seed, "meta": track.meta}
                   for track, rendered in zip(tracks, takes, strict=True)]
        return {**results[0], "takes": results} if len(results) > 1 else results[0]

    @staticmethod
    def _download(model: ModelInfo, progress: Progress) -> None:
        """Fetch a model's missing checkpoint files first, so the job's progress shows bytes and percent."""
        if not modelcache.missing_files(model):
            return
        progress.phase("downloading", 0.0, 0.04)
        modelcache.fetch(model, lambda done, total: progress.update(
            done / total if total else 0.0, {"downloaded_bytes": done, "total_bytes": total}))

    def _render(self, job: Job, task: GenerateTask, model: ModelInfo, progress: Progress) -> list[Rendered]:
        """Render every take; an append job that fails says so and fails (never a plain track claiming an append)."""
        request = task.request
        try:
            return self._render_audio(job, task, model, progress)
        except JobCancelled:
            raise
        except Exception as exc:
            if request.continuation is None and request.continue_track is None:
                raise
            reason = str(exc) or type(exc).__name__
            self.emit(protocol.CONTINUATION_APPLIED, {
                "job_id": job.id, "prompt": request.prompt, "error": reason,
                "continuation_source": self._source_name(request)})
            raise ContinuationError(f"the continuation failed: {reason}") from exc

    def _source_name(self, request: GenerationRequest) -> str | None:
        """What the track continues: a library track's name, or the uploaded clip's file name."""
        return request.continue_track or self.uploads.display_name(request.continuation)

    def _render_audio(self, job: Job, task: GenerateTask, model: ModelInfo, progress: Progress) -> list[Rendered]:
        """Run the engine (takes or song segments), then MBD, append, loop and shape each take for its file."""
        request, effective = task.request, task.effective
        melody = self._track_clip(request.melody_track) if request.melody_track else self._clip(request.audio_prompt)
        clip, source_samples = self._continued_clip(request)
        prompt_clip = continuation_prompt(clip, self.engine.sample_rate) if clip else None
        new_seconds = new_audio_seconds(request, effective.duration, clip, source_samples)
        spec = GenerationSpec(
            model=model, prompt=model_prompt(request),
            duration=new_seconds + (prompt_clip.seconds if prompt_clip else 0.0), top_k=request.top_k,
            top_p=request.top_p, temperature=effective.temperature, cfg_coef=effective.cfg_coef,
            seed=task.seed, melody=melody, continuation=prompt_clip, return_tokens=request.mbd,
            batch=request.variations)
        generate_end = 0.75 if request.mbd else 0.9
        progress.phase("generating", 0.05, generate_end)
        rate = self.engine.sample_rate
        on_preview = (lambda start, samples: self.preview.publish(job, start, samples, rate)) if request.preview \
            else None
        generate_started = time.perf_counter()
        composer = Composer(self.engine)
        composed = composer.song(spec, request, progress.update, on_preview) if request.segments \
            else composer.takes(spec, progress.update, on_preview)
        generate_seconds = time.perf_counter() - generate_started
        return [self._shape(job, task, output, composed, (clip, prompt_clip, source_samples), progress,
                            generate_end, generate_seconds) for output in composed.outputs]

    def _shape(self, job: Job, task: GenerateTask, output: GenerationOutput, composed: Composed,
               continued: tuple[AudioClip | None, AudioClip | None, int], progress: Progress, generate_end: float,
               generate_seconds: float) -> Rendered:
        """Decode (MBD), append or loop one take and shape it for the requested output.

        ``continued`` is the clip continued, the part of it the model heard and the source's length in samples.
        """
        request = task.request
        clip, prompt_clip, source_samples = continued
        new_audio, mbd_info = self._decode(output, request, progress, generate_end)
        fields: dict = {"multi_band_diffusion": mbd_info}
        if output.decoder is not None:
            fields["decoder"] = output.decoder
        progress.phase("postprocessing", 0.9, 0.95)
        top = workflow_fields(request, job.id, output.take, composed, clip, source_samples)
        if clip is not None and prompt_clip is not None:
            joined, native_rate = self._append(job, request, clip, prompt_clip, new_audio, output.sample_rate, fields)
            rate = output_rate(request, native_rate)
            audio, target = dsp.resample(joined, native_rate, rate), None  # the new part was matched to the clip
            if request.cut_at is not None:  # regenerate from here keeps the source's own length
                audio = audio[:, :round(source_samples * rate / native_rate)]
        else:
            rate = output_rate(request, output.sample_rate)
            audio, target = dsp.resample(new_audio, output.sample_rate, rate), request.target_lufs
            audio = self._exact_length(request, audio, rate, top)
        fields["channels_original"] = int(audio.shape[0])
        # Normalised and measured as written (final channels and rate), so the JSON states what the file holds.
        audio, fields["loudness"] = loudness.normalize_loudness(
            dsp.to_output_channels(audio, keep_mono=request.keep_mono), rate, target_lufs=target,
            ceiling_dbtp=protocol.TRUE_PEAK_CEILING_DBTP)
        seed = task.seed + output.take
        made = new_audio.shape[1] / output.sample_rate * len(composed.outputs)  # the pass made every take's audio
        return Rendered(audio, rate, fields, generate_seconds, made, seed, top)

    @staticmethod
    def _exact_length(request: GenerationRequest, audio: np.ndarray, rate: int, top: dict) -> np.ndarray:
        """Cut a loop (seamless, exact) or a length in bars (exact) out of the slightly longer generation."""
        if request.loop is not None:
            looped, cut = loops.make_loop(audio, rate, request.loop.seconds)
            top["loop"].update(cut)
            return looped
        if request.bars is not None and request.bpm is not None:
            return audio[:, :round(bars_seconds(request.bars, request.bpm) * rate)]
        return audio

    def _continued_clip(self, request: GenerationRequest) -> tuple[AudioClip | None, int]:
        """The clip the new audio continues (an upload, or a library track up to ``cut_at``) and its source's length.

        Returns:
            ``(clip or None, samples of the whole source at the clip's rate)``.
        """
        if request.continue_track is None:
            clip = self._clip(request.continuation)
            return clip, 0 if clip is None else clip.samples.shape[1]
        clip = self._track_clip(request.continue_track)
        total = clip.samples.shape[1]
        if request.cut_at is None:
            return clip, total
        keep = round(request.cut_at * clip.sample_rate)
        if keep >= total:
            raise ValueError(f"cut_at ({request.cut_at:g} s) is past the end of {request.continue_track!r}")
        return AudioClip(clip.samples[:, :keep], clip.sample_rate), total

    def _track_clip(self, name: str) -> AudioClip:
        """A library track's samples, found by name inside the audio folder (never by a client path)."""
        path = self.store.audio_of(name) if self.store.get(name) is not None else None
        if path is None:
            raise ValueError(f"the track {name!r} is no longer in the library")
        samples, rate = codecs.read_audio(path)
        return AudioClip(samples, rate)

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
        original, new_part = dsp.match_channels(clip.samples, dsp.resample(matched, rate, clip.sample_rate))
        fields.update({"append_mode": True, "continuation_original_seconds": round(clip.seconds, 3),
                       "continuation_prompt_seconds": round(prompt_clip.seconds, 3)})
        self.emit(protocol.CONTINUATION_APPLIED, {
            "job_id": job.id, "prompt": request.prompt,
            "continuation_source": self._source_name(request),
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
        seed = None if request.seed == protocol.AUTO_SEED else rendered.seed
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
            "seed": rendered.seed,
            "seed_requested": request.seed,
            "format_requested": request.format,
            **encoded_fields,
            "sample_rate": rendered.sample_rate,
            "sample_rate_requested": request.sample_rate,
            "channels": int(rendered.audio.shape[0]),
            "keep_mono": request.keep_mono,
            "audio_prompt": request.melody_track or self.uploads.display_name(request.audio_prompt),
            "continuation_source": self._source_name(request),
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
        if rendered.top.get("group_batched"):  # the takes shared one random stream: the group reruns them
            parameters["batch_seed"] = task.seed
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
            **rendered.top,
        }


def output_rate(request: GenerationRequest, native_rate: int) -> int:
    """The sample rate to write: the requested one, or ``native_rate`` (model or clip rate) for "original"."""
    return native_rate if request.sample_rate == "original" else int(request.sample_rate)


def write_all(handle: IO[bytes], data: bytes) -> None:
    """Write encoded audio into the temp file the store opened."""
    handle.write(data)
