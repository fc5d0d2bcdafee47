"""The audiocraft engine on the tiny offline models: seeding, sampling parameters, loading, freeing, devices."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from audiocraft_webui import heap
from audiocraft_webui.device import DeviceError, pick_device
from audiocraft_webui.engines import GenerationSpec, ModelLoadError
from audiocraft_webui.engines.audiocraft_musicgen import AudiocraftEngine
from audiocraft_webui.models import ModelCatalog

CATALOG = ModelCatalog()
SMALL, MELODY = CATALOG.resolve("small"), CATALOG.resolve("melody")


@pytest.fixture(scope="module")
def engine(tiny_hub):
    """One CPU engine for the module (models load in ~0.1 s from the tiny hub)."""
    import torch

    torch.set_num_threads(1)
    engine = AudiocraftEngine(device="cpu", threads=1)
    yield engine
    engine.unload()


def spec(model=SMALL, **overrides) -> GenerationSpec:
    """A one-second generation request."""
    values = {"model": model, "prompt": "warm lofi piano", "duration": 1.0, "top_k": 250, "top_p": 0.0,
              "temperature": 1.0, "cfg_coef": 3.0, "seed": 1234, **overrides}
    return GenerationSpec(**values)


def generate(engine, request: GenerationSpec) -> np.ndarray:
    """Load the request's model and generate."""
    engine.ensure_loaded(request.model, lambda phase: None)
    return engine.generate(request, lambda fraction: None).audio


def test_same_seed_and_parameters_reproduce_the_same_audio(engine):
    first, second = generate(engine, spec()), generate(engine, spec())
    assert first.shape == (1, 32000) and first.dtype == np.float32 and np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, generate(engine, spec(seed=4321)))


@pytest.mark.parametrize("top_k,top_p,expected", [(50, 0.0, {"top_k": 50, "top_p": 0.0}),
                                                 (50, 0.9, {"top_k": 0, "top_p": 0.9})])
def test_exactly_one_of_top_k_and_top_p_reaches_the_model(engine, monkeypatch, top_k, top_p, expected):
    engine.ensure_loaded(SMALL, lambda phase: None)
    model = engine._model
    seen = {}
    original = model.set_generation_params
    monkeypatch.setattr(model, "set_generation_params", lambda **kw: (seen.update(kw), original(**kw)))
    engine.generate(spec(top_k=top_k, top_p=top_p), lambda fraction: None)
    assert {key: seen[key] for key in ("top_k", "top_p")} == expected
    assert isinstance(seen["top_k"], int)


def test_progress_is_reported_per_step_and_reaches_one(engine):
    fractions = []
    engine.ensure_loaded(SMALL, lambda phase: None)
    engine.generate(spec(), fractions.append)
    assert len(fractions) >= 50
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] > 0


def test_switching_models_frees_the_old_one_before_loading_the_new(engine, monkeypatch):
    from audiocraft.models import MusicGen

    engine.ensure_loaded(SMALL, lambda phase: None)
    old = weakref.ref(engine._model)
    alive_during_load = []
    real = MusicGen.get_pretrained

    def spying_loader(name, device=None):
        gc.collect()
        alive_during_load.append(old() is not None)
        return real(name, device=device)

    monkeypatch.setattr(MusicGen, "get_pretrained", staticmethod(spying_loader))
    trims = []
    monkeypatch.setattr(heap, "trim_heap", lambda: trims.append(engine.loaded_model))
    phases = []
    engine.ensure_loaded(MELODY, phases.append)
    assert alive_during_load == [False]
    assert engine.loaded_model == "melody" and phases == ["loading_model"]
    assert trims == [None, "melody"], "the heap is trimmed after the old model goes and after the new one loads"
    engine.ensure_loaded(MELODY, phases.append)
    assert phases == ["loading_model"], "an already loaded model is not loaded again"
    assert trims == [None, "melody"]


def test_unload_releases_the_model(engine):
    engine.ensure_loaded(SMALL, lambda phase: None)
    model = weakref.ref(engine._model)
    engine.unload()
    gc.collect()
    assert model() is None and engine.loaded_model is None


def test_missing_weights_with_no_hub_fail_with_a_message_naming_the_model(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOCRAFT_CACHE_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelLoadError) as caught:
        engine.ensure_loaded(CATALOG.resolve("large"), lambda phase: None)
    message = str(caught.value)
    assert "facebook/musicgen-large" in message and "cannot be reached" in message
    assert engine.loaded_model is None


def test_device_choice(monkeypatch):
    import torch

    assert pick_device("auto") == "cpu"
    assert pick_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        pick_device("cuda:0")
    with pytest.raises(ValueError, match="unknown device"):
        AudiocraftEngine(device="tpu")
