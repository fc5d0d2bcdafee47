"""A generation job from request to committed track: seed, auto-tune, engine, MBD, append, encode, JSON.

``prepare`` runs in the Socket.IO handler (so the seed and auto-tune are known at once and the
job is self-contained); ``GenerationJob.run`` runs on the worker thread.
"""
from __future__ import annotations

import io
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import IO

import numpy as np

from . import __version__, autotune, postprocess, protocol
from .engines import AudioClip, GenerationOutput, GenerationSpec, MusicEngine
from .jobs import Job
from .models import ModelCatalog, ModelInfo
from .protocol import GenerationRequest
from .storage import Track, TrackStore, base_name
from .uploads import UploadStore
from .worker import Progress

log = logging.getLogger(__name__)

#: Longest clip tail used as the continuation prompt: audiocraft needs it strictly shorter than 30 s.
MAX_CONTINUATION_PROMPT_SECONDS = 29.5
#: Seconds of generated audio normalised towards this integrated loudness (streaming-style level).
TARGET_LUFS = -14.0


def draw_seed() -> int:
    """Draw a seed for auto mode (the original app's range, easy to read and retype)."""
    return secrets.randbelow(100_000_000)


def prepare(request: GenerationRequest, catalog: ModelCatalog) -> dict:
    """Resolve the seed and auto-tune into the self-contained payload of a generation job.

    The user's own values stay in ``request`` (for rerun and last_run.json, D17/D18); the values
    actually used go in ``effective``.
    """
    model = catalog.resolve(request.model)
    assert model is not None, "the request was validated against the catalogue"
    seed = draw_seed() if request.seed == protocol.AUTO_SEED else request.seed
    if request.auto_tune:
        tuned = autotune.tune(model.key, top_k=request.top_k, top_p=request.top_p, temperature=request.temperature,
                              cfg_coef=request.cfg_coef, duration=request.duration)
        effective, tune_block = dict(tuned.values), tuned.block
    else:
        effective = {"temperature": request.temperature, "cfg_coef": request.cfg_coef, "duration": request.duration}
        tune_block = autotune.disabled_block()
    return {"request": request.as_json(), "seed": seed, "effective": effective, "auto_tune": tune_block,
            "clamped": request.clamped}


def sampling_params(request: GenerationRequest) -> dict:
    """The one sampling parameter that reaches the model: top_p when > 0, else top_k."""
    return {"top_p": request.top_p} if request.top_p > 0 else {"top_k": request.top_k}


@dataclass
class Rendered:
    """Audio ready to encode, plus the JSON fields describing how it was made."""

    audio: np.ndarray
    sample_rate: int
    fields: dict


class GenerationRunner:
    """Runs generation jobs on the worker thread."""

    def __init__(self, engine: MusicEngine, catalog: ModelCatalog, store: TrackStore, uploads: UploadStore,
                 emit, unload_after: bool = False) -> None:
        self.engine = engine
        self.catalog = catalog
        self.store = store
        self.uploads = uploads
        self.emit = emit
        self.unload_after = unload_after

    def run(self, job: Job, progress: Progress) -> dict:
        """Generate, post-process and commit one track; returns the ``on_finish_audio`` fields."""
        request = GenerationRequest.from_json(job.payload["request"])
        model = self.catalog.resolve(request.model)
        if model is None:
            raise ValueError(f"model {request.model!r} is no longer offered")
        try:
            progress.phase("loading_model", 0.0, 0.05)
            self.engine.ensure_loaded(model, lambda name: progress.phase(name, 0.0, 0.05))
            rendered = self._render(job, request, model, progress)
            progress.phase("writing", 0.95, 1.0)
            track = self._commit(job, request, model, rendered)
        finally:
            if self.unload_after:
                self.engine.unload()
        return {"prompt": request.prompt, "filename": track.pair()[0], "json_filename": track.pair()[1],
                "name": track.base, "seed": job.payload["seed"], "meta": track.meta}

    def _render(self, job: Job, request: GenerationRequest, model: ModelInfo, progress: Progress) -> Rendered:
        """Run the engine (and MBD, append) and shape the audio for the requested output."""
        effective = job.payload["effective"]
        melody = self._clip(request.audio_prompt)
        clip = self._clip(request.continuation)
        prompt_clip = continuation_prompt(clip, self.engine.sample_rate, self.engine.frame_rate) if clip else None
        duration = effective["duration"] + (prompt_clip.seconds if prompt_clip else 0.0)
        spec = GenerationSpec(
            model=model, prompt=request.prompt, duration=duration, top_k=request.top_k, top_p=request.top_p,
            temperature=effective["temperature"], cfg_coef=effective["cfg_coef"], seed=job.payload["seed"],
            melody=melody, continuation=prompt_clip, return_tokens=request.mbd)
        generate_end = 0.75 if request.mbd else 0.9
        progress.phase("generating", 0.05, generate_end)
        output = self.engine.generate(spec, progress.update)
        fields: dict = {}
        new_audio, mbd_info = self._decode(output, request, progress, generate_end)
        fields["multi_band_diffusion"] = mbd_info
        progress.phase("postprocessing", 0.9, 0.95)
        if clip is not None:
            audio, rate = self._append(job, request, clip, new_audio, output.sample_rate, fields)
        else:
            audio, loudness = postprocess.normalize_loudness(new_audio, output.sample_rate, target_lufs=TARGET_LUFS)
            fields["loudness"] = loudness
            rate = output.sample_rate
        fields["channels_original"] = int(audio.shape[0])
        audio = postprocess.to_output_channels(audio, keep_mono=request.keep_mono)
        target_rate = rate if request.sample_rate == "original" else int(request.sample_rate)
        audio = postprocess.resample(audio, rate, target_rate)
        return Rendered(audio, target_rate, fields)

    def _clip(self, upload_id: str | None) -> AudioClip | None:
        """Load an uploaded clip by id (never by a client path)."""
        if upload_id is None:
            return None
        samples, rate = self.uploads.read(upload_id)
        return AudioClip(samples, rate)

    def _decode(self, output: GenerationOutput, request: GenerationRequest, progress: Progress,
                start: float) -> tuple[np.ndarray, dict]:
        """The new part of the audio, decoded by MBD when asked; MBD failure keeps the EnCodec audio."""
        new_audio = output.audio[:, output.prompt_samples:]
        if not request.mbd:
            return new_audio, {"requested": False, "status": "not_requested"}
        progress.phase("mbd", start, 0.9)
        try:
            decoded = self.engine.decode_mbd(output, progress.update)
        except Exception as exc:  # MBD is optional: never lose the track because of it
            log.exception("MBD decode failed; keeping the EnCodec audio")
            return new_audio, {"requested": True, "status": "failed", "impl": "audiocraft_mbd",
                               "error": f"{type(exc).__name__}: {exc}"[:300]}
        return decoded[:, output.prompt_samples:], {"requested": True, "status": "applied", "impl": "audiocraft_mbd"}

    def _append(self, job: Job, request: GenerationRequest, clip: AudioClip, new_audio: np.ndarray,
                rate: int, fields: dict) -> tuple[np.ndarray, int]:
        """Put the original clip samples before the loudness-matched new part, at the clip's own rate."""
        matched, loudness_fields = postprocess.match_loudness(clip.samples, new_audio)
        fields.update(loudness_fields)
        new_part = postprocess.resample(matched, rate, clip.sample_rate)
        original = clip.samples
        channels = max(original.shape[0], new_part.shape[0])
        original = np.repeat(original, channels // original.shape[0], axis=0)
        new_part = np.repeat(new_part, channels // new_part.shape[0], axis=0)
        fields.update({"append_mode": True, "continuation_original_seconds": round(clip.seconds, 3),
                       "continuation_prompt_seconds": round(min(clip.seconds, MAX_CONTINUATION_PROMPT_SECONDS), 3)})
        self.emit(protocol.CONTINUATION_APPLIED, {
            "job_id": job.id, "prompt": request.prompt, "continuation_source": self.uploads.display_name(
                request.continuation), "continuation_original_seconds": fields["continuation_original_seconds"]})
        return np.concatenate([original, new_part], axis=1), clip.sample_rate

    def _commit(self, job: Job, request: GenerationRequest, model: ModelInfo, rendered: Rendered) -> Track:
        """Encode straight into a temp file and commit it with its JSON; WAV when the format fails."""
        fmt, note = request.format, None
        audio, rate = rendered.audio, rendered.sample_rate
        try:
            data = encode_bytes(audio, rate, fmt)
        except postprocess.EncodeError as exc:
            fmt, note = "wav", f"fallback_to_wav: {exc}"
            data = encode_bytes(audio, rate, "wav")
        seed = job.payload["seed"]
        when = datetime.now()
        base = base_name(model.key, None if request.seed == protocol.AUTO_SEED else seed, request.artist, when)
        meta = self._meta(job, request, model, rendered, fmt, note, when)
        return self.store.commit(base, fmt, lambda handle: write_all(handle, data), meta)

    def _meta(self, job: Job, request: GenerationRequest, model: ModelInfo, rendered: Rendered, fmt: str,
              note: str | None, when: datetime) -> dict:
        """The track's JSON (see the README's schema): what was asked, what was used, what was written."""
        effective = job.payload["effective"]
        parameters = {
            **sampling_params(request),
            "temperature": effective["temperature"],
            "cfg_coef": effective["cfg_coef"],
            "duration": effective["duration"],
            "seed": job.payload["seed"],
            "seed_requested": request.seed,
            "format": fmt,
            "format_requested": request.format,
            "sample_rate": rendered.sample_rate,
            "sample_rate_requested": request.sample_rate,
            "channels": int(rendered.audio.shape[0]),
            "audio_prompt": self.uploads.display_name(request.audio_prompt),
            "continuation_source": self.uploads.display_name(request.continuation),
            "append_mode": False,
            "auto_tune": job.payload["auto_tune"],
            **rendered.fields,
        }
        if note:
            parameters["format_note"] = note
        if request.artist:
            parameters["artist"] = request.artist
        if request.stem_split:
            parameters["stem_split"] = {"requested": request.stem_split, "status": "queued"}
        if job.payload.get("clamped"):
            parameters["clamped"] = job.payload["clamped"]
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
            "waveform": postprocess.waveform_peaks(rendered.audio),
        }


def continuation_prompt(clip: AudioClip, model_rate: int, frame_rate: int) -> AudioClip:
    """The clip's last (up to 29.5) seconds at the model rate, trimmed to whole codec frames.

    Trimming the start to a multiple of the codec hop makes the model's new audio begin exactly
    where the clip ends, so the original clip can be put back in front without a gap.
    """
    samples = postprocess.resample(clip.samples, clip.sample_rate, model_rate)
    hop = model_rate // frame_rate
    keep = min(samples.shape[1], int(MAX_CONTINUATION_PROMPT_SECONDS * model_rate))
    keep -= keep % hop
    if keep <= 0:
        raise ValueError("the continuation clip is too short (less than one codec frame)")
    return AudioClip(samples[:, samples.shape[1] - keep:], model_rate)


def encode_bytes(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode to memory first, so a failed encoder never leaves a partial file."""
    buffer = io.BytesIO()
    postprocess.encode(audio, sample_rate, fmt, buffer)
    return buffer.getvalue()


def write_all(handle: IO[bytes], data: bytes) -> None:
    """Write encoded audio into the temp file the store opened."""
    handle.write(data)
