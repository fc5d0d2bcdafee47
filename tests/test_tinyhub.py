"""The real, unpatched audiocraft and demucs loaders run offline against the tiny hub and produce audio."""
from __future__ import annotations

import math
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from audiocraft.models import MultiBandDiffusion, MusicGen
from audiocraft.models.encodec import InterleaveStereoCompressionModel
from huggingface_hub.errors import LocalEntryNotFoundError

from audiocraft_webui import compat
from tools import tinyhub

SAMPLE_RATE = 32000


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    """Run torch on one thread: tiny models are dominated by per-op overhead, which threads only add to."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(previous)


def _load(repo_id: str, duration: float = 1.0) -> MusicGen:
    """Load a MusicGen repo from the hub exactly as the app does, set to a short duration."""
    model = MusicGen.get_pretrained(repo_id, device="cpu")
    model.set_generation_params(duration=duration)
    return model


def _assert_audio(wav: torch.Tensor, channels: int, samples: int) -> None:
    """Check a generated batch of one: shape [1, C, T], finite, and not silent."""
    assert wav.shape == (1, channels, samples)
    assert torch.isfinite(wav).all()
    assert wav.abs().max() > 0


@pytest.mark.parametrize("repo_id", list(tinyhub.MUSICGEN_REPOS))
def test_every_musicgen_repo_generates(tiny_hub: Path, repo_id: str) -> None:
    """Each repo loads with strict state dicts and turns a prompt into 1 s of 32 kHz audio."""
    stereo, _ = tinyhub.MUSICGEN_REPOS[repo_id]
    model = _load(repo_id)
    assert model.sample_rate == SAMPLE_RATE
    assert model.frame_rate == 50
    assert model.max_duration == 30
    _assert_audio(model.generate(["lofi beat with piano"]), 2 if stereo else 1, SAMPLE_RATE)


def test_stereo_uses_interleaved_codebooks(tiny_hub: Path) -> None:
    """Stereo repos wrap the mono codec like the released ones: 8 LM streams, 2 audio channels."""
    model = _load("facebook/musicgen-stereo-small", duration=0.5)
    assert isinstance(model.compression_model, InterleaveStereoCompressionModel)
    assert model.lm.n_q == 8
    wav, tokens = model.generate(["ambient pad"], return_tokens=True)
    assert tokens.shape == (1, 8, 25)
    _assert_audio(wav, 2, SAMPLE_RATE // 2)


def test_melody_model_generates_with_chroma(tiny_hub: Path) -> None:
    """The melody model runs its chroma-stem conditioner (tiny HTDemucs + chroma) on a reference tune."""
    model = _load("facebook/musicgen-melody")
    assert "self_wav" in model.lm.condition_provider.conditioners
    seconds = torch.arange(44100) / 44100
    tune = torch.sin(2 * math.pi * 440 * seconds).expand(1, 2, -1)  # [B, C, T] stereo at 44.1 kHz
    _assert_audio(model.generate_with_chroma(["jazz"], tune, 44100), 1, SAMPLE_RATE)


def test_multiband_diffusion_decodes_tokens(tiny_hub: Path) -> None:
    """MBD loads (only with the allow-list: its checkpoint stores DictConfigs) and decodes LM tokens."""
    with pytest.raises(pickle.UnpicklingError, match="omegaconf"):
        MultiBandDiffusion.get_mbd_musicgen(device="cpu")
    with compat.checkpoint_globals():
        mbd = MultiBandDiffusion.get_mbd_musicgen(device="cpu")
    _, tokens = _load("facebook/musicgen-small").generate(["drums"], return_tokens=True)
    _assert_audio(mbd.tokens_to_wav(tokens), 1, SAMPLE_RATE)


def test_htdemucs_loads_and_separates(tiny_hub: Path) -> None:
    """``get_model('htdemucs')``, as audiocraft's melody conditioner calls it, loads from the hub offline."""
    from demucs.apply import apply_model
    from demucs.pretrained import get_model

    model = get_model("htdemucs")
    assert model.sources == ["drums", "bass", "other", "vocals"]
    assert model.samplerate == 44100
    stems = apply_model(model, torch.randn(1, 2, 44100), device="cpu")
    assert stems.shape == (1, 4, 2, 44100)
    assert torch.isfinite(stems).all()


def test_build_is_idempotent(tiny_hub: Path) -> None:
    """A second build finds the stamp and rewrites nothing."""
    files = sorted(path for path in (tiny_hub / "hub").rglob("*") if path.is_file())
    before = {path: path.stat().st_mtime_ns for path in files}
    assert tinyhub.build(tiny_hub) == tiny_hub
    assert {path: path.stat().st_mtime_ns for path in files} == before
    assert sorted(path for path in (tiny_hub / "hub").rglob("*") if path.is_file()) == files


def test_build_refuses_a_folder_the_hub_does_not_read(tiny_hub: Path, tmp_path: Path) -> None:
    """Building elsewhere would load t5-base from the wrong cache, so it fails with instructions."""
    with pytest.raises(RuntimeError, match="HF_HOME"):
        tinyhub.build(tmp_path)
    assert not any(tmp_path.iterdir())


def test_empty_offline_cache_raises(tiny_hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing cached and the hub offline, loading raises an error the app can report."""
    monkeypatch.setenv("AUDIOCRAFT_CACHE_DIR", str(tmp_path))  # audiocraft passes it to hf_hub_download
    with pytest.raises(LocalEntryNotFoundError):
        MusicGen.get_pretrained("facebook/musicgen-small", device="cpu")
