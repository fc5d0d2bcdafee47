"""Stems of audio of any length in bounded memory: window by window, written to disk as they come.

Demucs separates a whole input tensor at once, so a 20-minute file needed gigabytes (the input, four
sources and their copies). Here the input is read in windows of :data:`WINDOW_SECONDS` plus
:data:`OVERLAP_SECONDS` of look-ahead; each window is separated on its own and the overlap is
crossfaded linearly into the next window, which hides both Demucs' and the resampler's edges (their
weight there is near zero). Stems go to float32 files first, while the common peak is tracked; a
second pass writes the final 16-bit WAVs, scaled by one gain when any stem would clip, so the stems
still add up to the mix. An input shorter than one window is separated exactly as a whole.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

#: The order stems are listed in; sources a model adds beyond these (guitar, piano) follow by name.
STEM_ORDER = ("vocals", "drums", "bass", "other")
WINDOW_SECONDS = 60.0
OVERLAP_SECONDS = 2.0
#: Share of the progress bar the second pass (float stems to 16-bit WAVs) takes.
WRITING_SHARE = 0.05
_READ_FRAMES = 1 << 16
_FLOAT_SUFFIX = ".f32.wav"

ProgressCallback = Callable[[float], None]


class StemError(RuntimeError):
    """A stem job that cannot finish (model not loadable, track or upload gone, model without the stem)."""


@dataclass(frozen=True)
class Separation:
    """The sources of one mix: name -> float32 ``[C, T]``, all at ``sample_rate`` Hz and of equal length."""

    stems: dict[str, np.ndarray]
    sample_rate: int


Separate = Callable[[np.ndarray, int, ProgressCallback], Separation]


@dataclass(frozen=True)
class AudioSource:
    """The input of a split: an audio file, or raw float32 frames (``[T, C]``) the sandboxed decoder wrote.

    Picklable, so it crosses to the worker process as it is.
    """

    path: str
    raw_rate: int = 0
    raw_channels: int = 0
    gain: float = 1.0

    @property
    def raw(self) -> bool:
        """Whether the file is headerless float32 samples."""
        return self.raw_rate > 0

    def describe(self) -> tuple[int, int]:
        """``(sample rate, frames)``."""
        if self.raw:
            return self.raw_rate, os.path.getsize(self.path) // (4 * self.raw_channels)
        info = sf.info(self.path)
        return int(info.samplerate), int(info.frames)

    def read(self, start: int, frames: int) -> np.ndarray:
        """float32 ``[C, frames']`` from frame ``start`` (fewer at the end)."""
        if self.raw:
            samples = np.memmap(self.path, dtype=np.float32, mode="r").reshape(-1, self.raw_channels)
            return np.array(samples[start:start + frames].T, dtype=np.float32) * np.float32(self.gain)
        with sf.SoundFile(self.path) as handle:
            handle.seek(start)
            return np.ascontiguousarray(handle.read(frames, dtype="float32", always_2d=True).T)


@dataclass(frozen=True)
class Window:
    """One window: input frames ``[start, stop)``; its output is kept up to input frame ``keep_until``."""

    start: int
    stop: int
    keep_until: int


def windows(total: int, rate: int, window_seconds: float = WINDOW_SECONDS,
            overlap_seconds: float = OVERLAP_SECONDS) -> list[Window]:
    """Cut ``total`` input frames into windows that overlap by the crossfade length."""
    size, overlap = int(window_seconds * rate), int(overlap_seconds * rate)
    cuts = list(range(0, max(total, 1), size))
    if len(cuts) > 1 and total - cuts[-1] < size // 4:
        cuts.pop()  # a short remainder joins the window before it rather than being separated on its own
    ends = [*cuts[1:], total]
    return [Window(start, total if end == total else min(start + size + overlap, total), end)
            for start, end in zip(cuts, ends, strict=True)]


def split_to_folder(separate: Separate, source: AudioSource, target: str, folder: Path,
                    on_progress: ProgressCallback) -> tuple[list[str], int]:
    """Separate ``source`` window by window and write the stems chosen for ``target`` into ``folder``.

    Returns:
        The stem names written (``<name>.wav`` in ``folder``) and their sample rate.
    """
    rate, total = source.describe()
    plan = windows(total, rate)
    writers: dict[str, sf.SoundFile] = {}
    peak, model_rate, tail = 0.0, 0, None
    with ExitStack() as stack:
        for index, window in enumerate(plan):
            def inner(fraction: float, done: int = index) -> None:
                on_progress((done + min(max(fraction, 0.0), 1.0)) / len(plan) * (1 - WRITING_SHARE))

            separation = separate(source.read(window.start, window.stop - window.start), rate, inner)
            model_rate = separation.sample_rate
            stems = _fit(choose_stems(separation.stems, target), window, rate, model_rate)
            kept, tail = _crossfade(stems, tail, window, rate, model_rate)
            for name, audio in kept.items():
                if name not in writers:
                    writers[name] = stack.enter_context(sf.SoundFile(
                        folder / f"{name}{_FLOAT_SUFFIX}", "w", model_rate, audio.shape[0], subtype="FLOAT"))
                writers[name].write(audio.T)
                peak = max(peak, float(np.abs(audio).max(initial=0.0)))
    names = sorted(writers, key=stem_sort_key)
    for done, name in enumerate(names):
        _finish(folder, name, 1.0 / peak if peak > 1.0 else 1.0)
        on_progress(1 - WRITING_SHARE + WRITING_SHARE * (done + 1) / len(names))
    return names, model_rate


def _boundary(frame: int, rate: int, model_rate: int) -> int:
    """An input frame's position in the output (the same rounding wherever it is asked)."""
    return round(Fraction(frame * model_rate, rate))


def _fit(stems: dict[str, np.ndarray], window: Window, rate: int, model_rate: int) -> dict[str, np.ndarray]:
    """Trim or zero-pad each stem to the window's exact output length, so windows tile without drift."""
    length = _boundary(window.stop, rate, model_rate) - _boundary(window.start, rate, model_rate)
    fitted = {}
    for name, audio in stems.items():
        out = np.zeros((audio.shape[0], length), dtype=np.float32)
        out[:, :min(length, audio.shape[1])] = audio[:, :length]
        fitted[name] = out
    return fitted


def _crossfade(stems: dict[str, np.ndarray], tail: dict[str, np.ndarray] | None, window: Window, rate: int,
               model_rate: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Blend the previous window's look-ahead into this window's start; split off this window's own look-ahead.

    Returns:
        ``(audio to write now, look-ahead to blend into the next window)``.
    """
    if tail:
        for name, audio in stems.items():
            overlap = min(tail[name].shape[1], audio.shape[1])
            weight = np.linspace(0.0, 1.0, overlap, endpoint=False, dtype=np.float32)
            audio[:, :overlap] = tail[name][:, :overlap] * (1 - weight) + audio[:, :overlap] * weight
    keep = _boundary(window.keep_until, rate, model_rate) - _boundary(window.start, rate, model_rate)
    return ({name: audio[:, :keep] for name, audio in stems.items()},
            {name: audio[:, keep:] for name, audio in stems.items()})


def _finish(folder: Path, name: str, gain: float) -> None:
    """Turn one float stem into its final 16-bit WAV (times ``gain``) and remove the float file."""
    source = folder / f"{name}{_FLOAT_SUFFIX}"
    with sf.SoundFile(source) as reader, sf.SoundFile(folder / f"{name}.wav", "w", reader.samplerate,
                                                       reader.channels, subtype="PCM_16") as writer:
        for block in _blocks(reader):
            writer.write(np.clip(block * np.float32(gain), -1.0, 1.0))
    source.unlink()


def _blocks(reader: sf.SoundFile) -> Iterator[np.ndarray]:
    """float32 ``[T, C]`` blocks of an open file."""
    while len(block := reader.read(_READ_FRAMES, dtype="float32", always_2d=True)):
        yield block


def choose_stems(sources: dict[str, np.ndarray], target: str) -> dict[str, np.ndarray]:
    """Every source for ``all``, else the source and ``no_<source>`` (the sum of the others), unscaled.

    Raises:
        StemError: the model has no such source.
    """
    if target == "all":
        return dict(sources)
    if target not in sources:
        raise StemError(f"the Demucs model has no '{target}' stem; it separates {', '.join(sources)}")
    others = [audio for name, audio in sources.items() if name != target]
    return {target: sources[target], f"no_{target}": np.sum(others, axis=0)}


def stem_sort_key(name: str) -> tuple[int, str, bool]:
    """Sort stems as vocals, drums, bass, other, extra sources, each followed by its ``no_`` complement."""
    base = name.removeprefix("no_")
    rank = STEM_ORDER.index(base) if base in STEM_ORDER else len(STEM_ORDER)
    return rank, base, name != base
