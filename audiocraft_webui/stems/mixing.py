"""Which stems a split keeps (every source, or one source and its complement) and summing stem files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio import dsp
from ..engines.stemsplit import Separation, choose_stems, stem_sort_key


def select_stems(separation: Separation, target: str) -> dict[str, np.ndarray]:
    """The stems to write for a target: every source for ``all``, else the source and ``no_<source>``.

    ``no_<source>`` is the sum of the other sources (Demucs' ``--two-stems`` "add" mode). When any stem
    would clip, all of them are scaled by one common gain, so the stems still add up to the mix.

    Raises:
        StemError: the model has no such source.
    """
    chosen = choose_stems(separation.stems, target)
    peak = max(dsp.peak(audio) for audio in chosen.values())
    if peak > 1.0:
        chosen = {name: audio / peak for name, audio in chosen.items()}
    return {name: chosen[name] for name in sorted(chosen, key=stem_sort_key)}


def mix_files(files: list[tuple[Path, float]], block: int = 1 << 16) -> tuple[np.ndarray, int]:
    """Sum stem files, each times its gain, read block by block so only the mix is held in memory.

    The mix is peak-normalised only when it would clip (peak above 1.0); otherwise it is the exact sum.

    Args:
        files: ``(path, gain)`` pairs of WAV files at one sample rate (the stems of one set).
        block: frames read at a time.
    Returns:
        ``(mix, sample_rate)``: float32 ``[C, T]`` in [-1, 1], T the longest stem, C the most channels.
    Raises:
        ValueError: no files, or stems at different sample rates.
    """
    import soundfile as sf

    if not files:
        raise ValueError("nothing to mix")
    infos = [sf.info(str(path)) for path, _ in files]
    rates = {info.samplerate for info in infos}
    if len(rates) != 1:
        raise ValueError(f"the stems have different sample rates: {sorted(rates)}")
    channels, frames = max(info.channels for info in infos), max(info.frames for info in infos)
    mix = np.zeros((channels, frames), dtype=np.float32)
    for path, gain in files:
        position = 0
        with sf.SoundFile(str(path)) as handle:
            for chunk in handle.blocks(blocksize=block, dtype="float32", always_2d=True):
                mix[:, position:position + len(chunk)] += gain * chunk.T
                position += len(chunk)
    peak = dsp.peak(mix)
    if peak > 1.0:
        mix /= peak
    return mix, rates.pop()
