"""Each workaround in audiocraft_webui.compat, proven by a test that fails without it.

conftest.py has already called ``compat.install()`` in this process, as the app's entry point does.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from audiocraft_webui import compat

REPO_ROOT = Path(__file__).resolve().parents[1]


class _RunsShellCommand:
    """A pickle payload that would run a shell command when unpickled by a full (unsafe) loader."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (self.command,)


def test_torchaudio_works_through_the_extension_stub() -> None:
    """The pure-torch DSP that audiocraft uses works although torchaudio's compiled library cannot load."""
    import torchaudio

    assert sys.modules["torchaudio._extension"]._IS_TORCHAUDIO_EXT_AVAILABLE is False
    wav = torch.randn(1, 16000)
    spectrogram = torchaudio.transforms.Spectrogram(n_fft=400)(wav)
    assert spectrogram.shape == (1, 201, 81)
    assert torch.isfinite(spectrogram).all()
    resampled = torchaudio.functional.resample(wav, 16000, 32000)
    assert resampled.shape == (1, 32000)


def test_install_recovers_after_a_failed_torchaudio_import() -> None:
    """A failed ``import torchaudio`` leaves stale submodules; install() clears them so a retry works."""
    script = """
import json, sys
try:
    import torchaudio
    first_error = None
except OSError as exc:
    first_error = repr(exc)
stale = sorted(name for name in sys.modules if name.startswith("torchaudio."))
from audiocraft_webui import compat
compat.install()
compat.install()
import torch, torchaudio
spectrogram = torchaudio.transforms.Spectrogram(n_fft=400)(torch.randn(1, 16000))
print(json.dumps({"first_error": first_error, "stale": stale, "shape": list(spectrogram.shape)}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # The registry's torchaudio 2.11.0 is a CUDA build: its library cannot load next to a CPU torch.
    assert report["first_error"] is not None and "_torchaudio" in report["first_error"]
    assert report["stale"], "the failed import is expected to leave torchaudio submodules behind"
    assert report["shape"] == [1, 201, 81]


def test_audiocraft_imports_without_spacy() -> None:
    """audiocraft's conditioners import spacy at module level; the empty stand-in satisfies that import."""
    assert getattr(sys.modules["spacy"], "__file__", None) is None, "spacy must not be installed"
    from audiocraft.modules import conditioners

    assert conditioners.spacy is sys.modules["spacy"]
    assert importlib.util.find_spec("spacy") is not None  # transformers' availability probe must not raise


def test_checkpoint_with_omegaconf_config_needs_the_allow_list(tmp_path: Path) -> None:
    """An omegaconf config in a checkpoint is refused by weights-only loading, and loads inside the block."""
    path = tmp_path / "with_config.th"
    cfg = OmegaConf.create({"schedule": {"num_steps": 1000, "beta_t0": 1e-5}, "bands": [1, 2], "name": None})
    torch.save({"cfg": cfg, "state": {"weight": torch.ones(3)}}, path)

    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        torch.load(path)
    with compat.checkpoint_globals():
        loaded = torch.load(path)
    assert isinstance(loaded["cfg"], DictConfig)
    assert loaded["cfg"] == cfg
    assert torch.equal(loaded["state"]["weight"], torch.ones(3))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # the allow-list ends with the block


def test_allow_list_still_refuses_code_execution(tmp_path: Path) -> None:
    """A pickle whose ``__reduce__`` calls ``os.system`` is refused even inside ``checkpoint_globals()``."""
    marker = tmp_path / "pwned"
    path = tmp_path / "malicious.th"
    torch.save({"payload": _RunsShellCommand(f"touch {marker}")}, path)

    with compat.checkpoint_globals(), pytest.raises(pickle.UnpicklingError, match="system"):
        torch.load(path)
    assert not marker.exists()


def test_audiocraft_runs_causal_attention_through_the_xformers_stand_in() -> None:
    """audiocraft imports xformers at module level; the stand-in gives its torch attention path the same result
    as audiocraft's own non-xformers path, and nothing prints the xformers warning."""
    script = """
import json, sys, torch
from audiocraft_webui import compat
compat.install()
from audiocraft.modules.transformer import StreamingMultiheadAttention
torch.manual_seed(0)
efficient = StreamingMultiheadAttention(16, 2, causal=True, memory_efficient=True)
plain = StreamingMultiheadAttention(16, 2, causal=True, memory_efficient=False)
plain.load_state_dict(efficient.state_dict())
x = torch.randn(1, 5, 16)
difference = (efficient(x, x, x)[0] - plain(x, x, x)[0]).abs().max().item()
print(json.dumps({"stub": getattr(sys.modules["xformers"], "__file__", None) is None, "difference": difference}))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["stub"] and report["difference"] < 1e-6
    assert "XFORMERS" not in result.stderr.upper() and "XFORMERS" not in result.stdout.upper()
    with pytest.raises(RuntimeError, match="runs attention through torch"):
        sys.modules["xformers.ops"].memory_efficient_attention(None, None, None)
