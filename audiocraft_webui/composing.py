"""The engine calls of one generation job: N takes in one batched pass, or a song structure segment by segment.

:class:`Composer` sits between :class:`~.generation.GenerationRunner` and the engine. Takes go in one batch
(audiocraft generates a batch of prompts at once, far cheaper on a GPU than N jobs); when the batch does not fit
in memory they are generated one after another, each with its own seed. A song structure continues the audio so
far with each segment's own prompt, in one job whose progress runs once from 0 to 1.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from .audio import dsp, loops
from .engines import AudioClip, GenerationOutput, GenerationSpec, MusicEngine
from .engines.base import PreviewCallback, StepCallback
from .protocol import GenerationRequest
from .worker import error_info
from .workflow import Segment, bars_seconds, with_musical_terms

log = logging.getLogger(__name__)

#: Longest clip tail used as the continuation prompt: audiocraft needs it strictly shorter than 30 s.
MAX_CONTINUATION_PROMPT_SECONDS = 29.5
#: The continuation prompt is cut to whole multiples of this (25 codec frames): such durations are exact
#: in binary floating point, so audiocraft's ``int(duration * frame_rate)`` never loses a frame.
CONTINUATION_PROMPT_STEP_SECONDS = 0.5
#: Extra seconds generated when the length is cut to the sample afterwards (a few codec frames).
EXACT_PAD_SECONDS = 0.1

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



def musical_bpm(request: GenerationRequest) -> int | None:
    """The tempo of the request: its own ``bpm`` or its loop's."""
    return request.bpm or (request.loop.bpm if request.loop else None)


def model_prompt(request: GenerationRequest, text: str | None = None) -> str:
    """The text the model reads: the prompt (or a segment's) with the tempo and key appended."""
    return with_musical_terms(request.prompt if text is None else text, musical_bpm(request), request.key)


def new_audio_seconds(request: GenerationRequest, duration: int, clip: AudioClip | None, source_samples: int) -> float:
    """Seconds of new audio to generate: a little more where the length is cut to the sample afterwards."""
    if request.segments:
        return float(sum(segment.seconds for segment in request.segments))
    if request.loop is not None:
        return request.loop.seconds + loops.MARGIN_SECONDS
    if request.bars is not None and request.bpm is not None:
        return bars_seconds(request.bars, request.bpm) + EXACT_PAD_SECONDS
    if request.cut_at is not None and clip is not None:
        return (source_samples - clip.samples.shape[1]) / clip.sample_rate + EXACT_PAD_SECONDS
    return float(duration)


def workflow_fields(request: GenerationRequest, group: str, take: int, composed: Composed, clip: AudioClip | None,
                    source_samples: int) -> dict:
    """The top-level JSON fields of the workflow (README, "JSON schema"): group, musical terms, loop, segments."""
    top: dict = {}
    if request.variations > 1:
        top.update({"group": group, "group_index": take, "group_size": request.variations,
                    "group_batched": composed.batched})
    bpm = musical_bpm(request)
    if bpm or request.key or request.bars:
        top["musical"] = {"bpm": bpm, "key": request.key or None, "bars": request.bars,
                          "model_prompt": model_prompt(request)}
    if request.loop is not None:
        top["loop"] = {"bars": request.loop.bars, "bpm": request.loop.bpm, "beats_per_bar": request.loop.beats_per_bar}
    if composed.segments:
        top["segments"] = composed.segments
    if request.continue_track is not None:
        top["source_track"] = request.continue_track
    if request.cut_at is not None and clip is not None:
        top["regenerated_from"] = {"track": request.continue_track, "cut_at": request.cut_at,
                                   "source_seconds": round(source_samples / clip.sample_rate, 3)}
    if request.melody_track is not None:
        top["melody_track"] = request.melody_track
    return top


def scaled(on_step: StepCallback, start: float, share: float) -> StepCallback:
    """A step callback filling ``[start, start + share]`` of the job's generation progress."""
    return lambda fraction: on_step(start + share * fraction)


@dataclass(frozen=True)
class Composed:
    """What the engine made for a job: one output per take, and the JSON ``segments`` of a song structure."""

    outputs: list[GenerationOutput]
    batched: bool
    segments: list[dict]


class Composer:
    """Runs the engine for takes and song structures."""

    def __init__(self, engine: MusicEngine) -> None:
        self.engine = engine

    def takes(self, spec: GenerationSpec, on_step: StepCallback, on_preview: PreviewCallback | None) -> Composed:
        """``spec.batch`` takes: one batched pass, or one take after another when the batch runs out of memory."""
        if spec.batch == 1:
            return Composed([self.engine.generate(spec, on_step, on_preview)], False, [])
        try:
            return Composed(self.engine.generate(spec, on_step, on_preview).split(), True, [])
        except Exception as exc:
            if error_info(exc)["type"] != "out_of_memory":
                raise
            log.warning("%d takes do not fit in memory at once; generating them one by one", spec.batch)
            self.engine.free_memory()
        outputs = []
        for index in range(spec.batch):
            single = replace(spec, batch=1, seed=spec.seed + index)
            output = self.engine.generate(single, scaled(on_step, index / spec.batch, 1 / spec.batch),
                                          on_preview if index == 0 else None)
            outputs.append(replace(output, take=index))
        return Composed(outputs, False, [])

    def song(self, spec: GenerationSpec, request: GenerationRequest, on_step: StepCallback,
             on_preview: PreviewCallback | None) -> Composed:
        """Generate the segments in order, each continuing the audio so far with its own prompt."""
        total = sum(segment.seconds for segment in request.segments)
        audio: np.ndarray | None = None
        rate, done, records = self.engine.sample_rate, 0, []
        output: GenerationOutput | None = None
        for index, segment in enumerate(request.segments):
            records.append({"prompt": segment.prompt, "seconds": segment.seconds,
                            "start_seconds": round(0.0 if audio is None else audio.shape[1] / rate, 3)})
            output = self._segment(spec, request, segment, index, audio, scaled(on_step, done / total,
                                   segment.seconds / total), _shifted(on_preview, audio))
            new = output.audio[:, output.prompt_samples:]
            audio = new if audio is None else np.concatenate([audio, new], axis=1)
            done += segment.seconds
        assert output is not None and audio is not None, "a song structure has at least one segment"
        return Composed([replace(output, audio=audio, prompt_samples=0, tokens=None)], False, records)

    def _segment(self, spec: GenerationSpec, request: GenerationRequest, segment: Segment, index: int,
                 audio: np.ndarray | None, on_step: StepCallback,
                 on_preview: PreviewCallback | None) -> GenerationOutput:
        """One segment: the first from its text alone, the next ones continuing the audio so far."""
        rate = self.engine.sample_rate
        prompt = None if audio is None else continuation_prompt(AudioClip(audio, rate), rate)
        seconds = segment.seconds + (prompt.seconds if prompt else 0.0)
        part = replace(spec, prompt=model_prompt(request, segment.prompt), duration=seconds, seed=spec.seed + index,
                       continuation=prompt, return_tokens=False)
        return self.engine.generate(part, on_step, on_preview)


def _shifted(on_preview: PreviewCallback | None, before: np.ndarray | None) -> PreviewCallback | None:
    """A preview callback placing a segment's chunks after the audio made before it."""
    if on_preview is None:
        return None
    offset = 0 if before is None else before.shape[1]
    return lambda start, samples: on_preview(offset + start, samples)

