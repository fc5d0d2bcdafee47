"""The app's static decode loop against audiocraft's own, on the tiny offline models (CPU).

Every kind of model the app offers: text, melody (chroma prepended), stereo (8 interleaved codebooks) and
continuation (prompt tokens). The static loop's logits equal ``LMModel.forward``'s on the same prefix at
every step, both as the CPU runs a step and as a CUDA graph would (masked attention over the whole cache);
through ``MusicGen``'s own entry points it draws audiocraft's tokens for a seed; the preview stream gets every
frame once across long-form windows; and the engine records which loop ran and frees its weights on unload.
"""
from __future__ import annotations

import gc
import logging
import weakref

import numpy as np
import pytest

from audiocraft_webui.engines import GenerationSpec
from audiocraft_webui.engines.audiocraft_musicgen import AudiocraftEngine
from audiocraft_webui.engines.codecstream import AudioChunk, PreviewStream
from audiocraft_webui.engines.decoding import DecoderChoice
from audiocraft_webui.models import ModelCatalog

FRAMES = 12
MODEL_OF = {"text": "small", "melody": "melody", "stereo": "stereo-small", "continuation": "small"}


def tone(seconds: float):
    """A mono test clip ``[1, 1, T]`` at 32 kHz (two partials with a tremolo, so the chroma has a melody)."""
    import torch

    t = torch.arange(int(seconds * 32000)) / 32000
    return (0.3 * (0.6 + 0.4 * torch.sin(2 * torch.pi * 2 * t)) * torch.sin(2 * torch.pi * 220 * t)
            + 0.1 * torch.sin(2 * torch.pi * 330 * t))[None, None]


def window_inputs(model, kind: str):
    """The conditions and prompt tokens ``LMModel.generate`` would get for a generation of ``kind``."""
    import torch

    melody = [tone(2.0)[0]] if kind == "melody" else None
    attributes, _ = model._prepare_tokens_and_attributes(["warm lofi piano"], None, *([melody] if melody else []))
    generator = torch.Generator().manual_seed(7)
    prompt = (torch.randint(0, model.lm.card, (1, model.lm.num_codebooks, 5), generator=generator)
              if kind == "continuation" else None)
    return attributes, prompt


@pytest.mark.parametrize("masked", [False, True], ids=["cpu-step", "graph-step"])
@pytest.mark.parametrize("kind", list(MODEL_OF))
def test_every_step_gives_the_logits_of_audiocrafts_forward_on_the_same_prefix(models, kind, masked):
    import torch

    from audiocraft_webui.engines.decoder import StaticDecoder
    from audiocraft_webui.engines.sampling import Sampling

    model = models(MODEL_OF[kind])
    attributes, prompt = window_inputs(model, kind)
    torch.manual_seed(0)
    window = StaticDecoder(model.lm).open(prompt, attributes, FRAMES, Sampling(True, 1.0, 250, 0.0, 3.0))
    assert (window.prefix > 0) == (kind == "melody") and (window.given > 0) == (kind == "continuation")
    with torch.no_grad():
        for _ in range(window.steps):
            window.step(window.cache.length if masked else window.position + 1, masked)
            window.done += 1
            inputs = window.sequence[..., :int(window.offset) - 1]
            reference = model.lm(torch.cat([inputs, inputs]), conditions=[],
                                 condition_tensors=window.condition_tensors)[:, :, -1]
            torch.testing.assert_close(window.logits, reference, rtol=1e-4, atol=1e-5)
    codes = window.codes(remove_prompts=False)
    assert codes.shape == (1, model.lm.num_codebooks, FRAMES)
    assert bool(((codes >= 0) & (codes < model.lm.card)).all())
    if prompt is not None:
        assert torch.equal(codes[..., :prompt.shape[-1]], prompt), "prompt tokens are kept"


def generate_both(model, call, seed: int = 1234):
    """Run ``call(model)`` (a MusicGen entry point with ``return_tokens``) with audiocraft's loop and the static one."""
    import torch

    from audiocraft_webui.engines.decoder import StaticDecoder, installed

    torch.manual_seed(seed)
    _, audiocraft_tokens = call(model)
    torch.manual_seed(seed)
    with installed(StaticDecoder(model.lm), model, None):
        _, static_tokens = call(model)
    return audiocraft_tokens, static_tokens


@pytest.mark.parametrize(("kind", "params"), [
    ("text", {"top_k": 250}), ("text", {"top_k": 0, "top_p": 0.9, "temperature": 1.3}), ("stereo", {"top_k": 50}),
    ("melody", {"top_k": 250}), ("continuation", {"top_k": 250}),
])
def test_musicgen_entry_points_draw_audiocrafts_tokens_for_a_seed(models, kind, params):
    """Same logits up to rounding and the same random stream give the same draws (on the CPU, in practice all)."""
    import torch

    model = models(MODEL_OF[kind])
    model.set_generation_params(duration=1.0, cfg_coef=3.0, **params)
    if kind == "melody":
        tokens = generate_both(model, lambda m: m.generate_with_chroma(["lofi"], tone(2.0), 32000, return_tokens=True))
    elif kind == "continuation":
        tokens = generate_both(model, lambda m: m.generate_continuation(tone(0.4), 32000, ["lofi"],
                                                                        return_tokens=True))
    else:
        tokens = generate_both(model, lambda m: m.generate(["lofi"], return_tokens=True))
    assert tokens[0].shape == tokens[1].shape == (1, model.lm.num_codebooks, 50)
    assert torch.equal(*tokens)


class Recorder(PreviewStream):
    """A PreviewStream keeping what the static loop fed it."""

    def __init__(self, model, chunks: list[AudioChunk], end_frame: int) -> None:
        super().__init__(model.compression_model, chunks.append, end_frame=end_frame)
        self.prompts: list = []
        self.frames: list = []

    def on_prompt(self, frames) -> None:
        self.prompts.append(frames.clone())
        super().on_prompt(frames)

    def on_frames(self, frames) -> None:
        self.frames.append(frames.clone())
        super().on_frames(frames)


@pytest.mark.parametrize("feed_every", [1, 16], ids=["every-step", "grouped-as-with-graphs"])
def test_the_preview_gets_every_frame_once_across_long_form_windows_and_equals_the_final_decode(models, monkeypatch,
                                                                                               feed_every):
    import torch

    from audiocraft_webui.engines.decoder import EagerSteps, StaticDecoder, installed

    monkeypatch.setattr(EagerSteps, "feed_every", feed_every)
    model = models("small")
    model.set_generation_params(duration=31.0, top_k=250, cfg_coef=3.0, extend_stride=18)
    chunks: list[AudioChunk] = []
    stream = Recorder(model, chunks, end_frame=31 * 50)
    torch.manual_seed(3)
    windows = []
    decoder = StaticDecoder(model.lm)
    real_open = decoder.open
    decoder.open = lambda *args, **kwargs: windows.append(real_open(*args, **kwargs)) or windows[-1]
    with installed(decoder, model, stream):
        audio, tokens = model.generate_continuation(tone(1.0), 32000, ["lofi"], return_tokens=True)
    assert len(windows) == 2 and windows[1].given == 12 * 50, "a second window continues the first one's tail"
    prompt = stream.prompts[0]
    assert len(stream.prompts) == 1 and torch.equal(prompt, tokens[..., :prompt.shape[-1]])
    assert torch.equal(torch.cat(stream.frames, dim=-1), tokens[..., prompt.shape[-1]:])
    previewed = np.concatenate([chunk.samples for chunk in chunks], axis=-1)
    new_audio = audio[0].numpy()[:, prompt.shape[-1] * 640:]
    assert previewed.shape == new_audio.shape and np.abs(previewed - new_audio).max() < 1e-3


def engine_spec(key: str = "small", **overrides) -> GenerationSpec:
    """A one-second request for the engine."""
    values = {"model": ModelCatalog().resolve(key), "prompt": "warm lofi piano", "duration": 1.0, "top_k": 250,
              "top_p": 0.0, "temperature": 1.0, "cfg_coef": 3.0, "seed": 99, **overrides}
    return GenerationSpec(**values)


def test_the_engine_reproduces_a_seed_records_its_loop_and_frees_the_weights_on_unload(tiny_hub):
    engine = AudiocraftEngine(device="cpu", threads=1, decoder="static", cpu_weights="int8")
    spec = engine_spec()
    engine.ensure_loaded(spec.model, lambda phase: None)
    first, second = (engine.generate(spec, lambda fraction: None) for _ in range(2))
    np.testing.assert_array_equal(first.audio, second.audio)
    assert first.decoder == {"name": "static", "device": "cpu", "weights": "int8"}
    weights = weakref.ref(engine._decoding._static)
    engine.unload()
    gc.collect()
    assert weights() is None and engine.loaded_model is None


def test_auto_takes_the_static_loop_only_where_it_is_measured_faster(models):
    model = models("small")
    assert DecoderChoice("auto", "bf16").choose(model, "small", "cpu").record() == {
        "name": "static", "device": "cpu", "weights": "bf16"}
    assert DecoderChoice("auto").choose(model, "small", "cuda:0").record() == {
        "name": "audiocraft", "device": "cuda:0", "weights": "fp32"}
    assert DecoderChoice("static").choose(model, "small", "cuda").name == "static"
    assert DecoderChoice("audiocraft").choose(model, "small", "cpu").name == "audiocraft"
    with pytest.raises(ValueError, match="unknown decoder"):
        DecoderChoice("fast")
    with pytest.raises(ValueError, match="unknown CPU weight precision"):
        DecoderChoice("auto", "int4")


def test_a_model_the_static_loop_does_not_reproduce_keeps_audiocrafts_loop_with_one_log_line(models, monkeypatch,
                                                                                           caplog):
    model = models("small")
    monkeypatch.setattr(model.lm, "two_step_cfg", True)
    with caplog.at_level(logging.INFO, logger="audiocraft_webui.engines.decoding"):
        use = DecoderChoice("static").choose(model, "small", "cpu")
    assert use.record() == {"name": "audiocraft", "device": "cpu", "weights": "fp32",
                            "fallback": "two-step classifier-free guidance"}
    assert [record.getMessage() for record in caplog.records] == [
        "small decodes with audiocraft's loop: the static loop does not support two-step classifier-free guidance"]


@pytest.mark.parametrize("weights", ["bf16", "int8"])
def test_a_weight_precision_reaches_every_matrix_product_and_keeps_the_logits_close(models, weights):
    import torch
    from torch import nn

    from audiocraft_webui.engines.decoder import StaticDecoder
    from audiocraft_webui.engines.sampling import Sampling

    model = models("small")
    lm = model.lm
    fp32, low = StaticDecoder(lm), StaticDecoder(lm, weights)
    assert not [name for name, module in low.net.named_modules() if type(module) is nn.Linear]
    per_layer = 7 if lm.transformer.layers[0].cross_attention is not None else 4  # in-projections split
    assert sum(hasattr(module, "weight") and "Linear" in type(module).__name__
               for module in low.net.modules()) == per_layer * len(lm.transformer.layers) + lm.num_codebooks
    assert all(type(module) is nn.Linear for module in lm.modules() if "Linear" in type(module).__name__), \
        "audiocraft's own modules are untouched"
    attributes, _ = window_inputs(model, "text")
    sampling = Sampling(True, 1.0, 250, 0.0, 3.0)
    windows = [decoder.open(None, attributes, FRAMES, sampling) for decoder in (fp32, low)]
    with torch.no_grad():
        for _ in range(windows[0].steps):
            for window in windows:
                window.step(window.position + 1, False)
                window.done += 1
            windows[1].sequence.copy_(windows[0].sequence)  # both read the same prefix
            reference = torch.log_softmax(windows[0].logits, -1)
            kl = (reference.exp() * (reference - torch.log_softmax(windows[1].logits, -1))).sum(-1)
            assert float(kl.mean()) < 1e-2


def test_the_cache_holds_what_its_size_formula_says(models):
    from audiocraft_webui.engines.staticlm import StaticLM, cache_bytes

    lm = models("small").lm
    cache = StaticLM(lm).allocate(rows=2, length=53, device=next(lm.parameters()).device, dtype=lm.emb[0].weight.dtype)
    held = sum(t.numel() * t.element_size() for t in cache.keys + cache.values)
    assert held == cache_bytes(len(lm.transformer.layers), lm.dim, 53, rows=2, element_bytes=4)
