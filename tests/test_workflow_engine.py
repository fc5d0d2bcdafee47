"""The engine takes a batch: N takes of one spec in one pass, the preview following take 0 exactly, on both loops."""
from __future__ import annotations

import numpy as np
import pytest

from audiocraft_webui.engines import AudioClip, GenerationSpec
from audiocraft_webui.engines.audiocraft_musicgen import AudiocraftEngine
from audiocraft_webui.models import ModelCatalog

SMALL = ModelCatalog().resolve("small")


@pytest.fixture(scope="module", params=["static", "audiocraft"])
def engine(tiny_hub, request):
    """One CPU engine per decode loop (the app's static loop and audiocraft's own)."""
    import torch

    torch.set_num_threads(1)
    engine = AudiocraftEngine(device="cpu", threads=1, decoder=request.param)
    engine.ensure_loaded(SMALL, lambda phase: None)
    yield engine
    engine.unload()


def spec(**overrides) -> GenerationSpec:
    """A one-second request of three takes."""
    values = {"model": SMALL, "prompt": "batched takes", "duration": 1.0, "top_k": 250, "top_p": 0.0,
              "temperature": 1.0, "cfg_coef": 3.0, "seed": 55, "batch": 3, **overrides}
    return GenerationSpec(**values)


def test_a_batch_gives_distinct_takes_and_the_preview_follows_take_0(engine):
    chunks: list[tuple[int, np.ndarray]] = []
    fractions: list[float] = []
    output = engine.generate(spec(), fractions.append, lambda start, samples: chunks.append((start, samples)))
    takes = output.split()
    assert [take.take for take in takes] == [0, 1, 2] and all(take.audio.shape == (1, 32000) for take in takes)
    np.testing.assert_array_equal(takes[0].audio, output.audio)
    assert not np.array_equal(takes[0].audio, takes[1].audio) and not np.array_equal(takes[1].audio, takes[2].audio)
    assert [start for start, _ in chunks] == sorted(start for start, _ in chunks)
    preview = np.concatenate([samples for _, samples in chunks], axis=1)
    np.testing.assert_allclose(preview, output.audio, atol=1e-5, err_msg="the preview is take 0's audio")
    assert fractions[-1] == pytest.approx(1.0) and fractions == sorted(fractions)
    again = engine.generate(spec(), lambda fraction: None)
    for first, second in zip(output.takes, again.takes, strict=True):
        np.testing.assert_array_equal(first, second, err_msg="a batch is reproducible by its seed")


def test_a_batch_continues_one_clip_in_every_take(engine):
    clip = AudioClip(np.sin(np.linspace(0, 400, 16000, dtype=np.float32))[None] * 0.3, 32000)
    output = engine.generate(spec(duration=1.5, continuation=clip, batch=2), lambda fraction: None)
    assert output.prompt_samples == 16000 and len(output.takes) == 2
    assert all(take.shape == (1, 48000) for take in output.takes)
    assert not np.array_equal(output.takes[0][:, 16000:], output.takes[1][:, 16000:])
