"""Compatibility shims that let audiocraft 1.3.0 run on current torch (2.13) without editing site-packages.

audiocraft 1.3.0 was released for torch 2.1 and is installed with ``--no-deps``. Three things break on the
current stack, and this module is the one place that works around them:

* torchaudio 2.11.0 from the package registry is a CUDA build whose compiled extension cannot load next to a
  CPU torch, so ``import torchaudio`` (and with it audiocraft and ``transformers.audio_utils``) fails.
  :func:`install` replaces the loader of the compiled code with a stub module.
* audiocraft imports spacy at module level although only its ``whitespace`` tokenizer uses it; spacy is a
  126 MB dependency we do not ship. :func:`install` registers an empty stand-in when spacy is missing.
* audiocraft imports xformers at module level, and the registry's xformers wheel is built for another torch,
  so importing it prints a ``WARNING[XFORMERS]`` block at every start. With audiocraft's default attention
  backend (``torch``) only two trivial pieces of it are ever used. :func:`install` registers a stand-in with
  those pieces, so xformers need not be installed at all.
* torch >= 2.6 loads checkpoints with ``weights_only=True``; audiocraft checkpoints that store omegaconf
  configs (the Multi-Band Diffusion one) are then refused. :func:`checkpoint_globals` allow-lists just those
  config classes for the duration of a load, keeping weights-only unpickling on.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.machinery
import importlib.util
import logging
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

_TORCHAUDIO_EXTENSION = "torchaudio._extension"
_STUB_MARKER = "__audiocraft_webui_stub__"


def install() -> None:
    """Register the torchaudio and spacy stand-ins; call before anything imports torchaudio or audiocraft.

    Idempotent and cheap: it imports neither torch nor torchaudio.
    """
    _install_torchaudio_extension_stub()
    _install_spacy_stub()
    _install_xformers_stub()


def _install_torchaudio_extension_stub() -> None:
    """Stand in for ``torchaudio._extension`` so ``import torchaudio`` works without its compiled library.

    Without it: the registry's torchaudio 2.11.0 wheel is built against CUDA torch, so loading
    ``_torchaudio.abi3.so`` raises ``OSError: libc10_cuda.so: cannot open shared object file`` and every
    importer of torchaudio fails (audiocraft, and transformers' MusicGen classes via ``audio_utils``).

    Why it is safe: torchaudio already supports running without its extension. With
    ``_IS_TORCHAUDIO_EXT_AVAILABLE = False`` it selects its pure-torch code paths (``Spectrogram``,
    ``resample``, ``lfilter`` ...), which is all audiocraft uses; only forced alignment needs the compiled
    code, and it raises a clear error instead. We never use torchaudio for file I/O (that needs TorchCodec).
    """
    current = sys.modules.get(_TORCHAUDIO_EXTENSION)
    if getattr(current, _STUB_MARKER, False):
        return
    if "torchaudio" in sys.modules:
        # torchaudio is already imported with its real extension; replacing the loader now changes nothing.
        return
    # A failed ``import torchaudio`` leaves half-initialised submodules behind; they would keep references to
    # the real loader, so drop them all and let the next import start clean.
    for name in [key for key in sys.modules if key.startswith("torchaudio.")]:
        del sys.modules[name]
    sys.modules[_TORCHAUDIO_EXTENSION] = _torchaudio_extension_stub()
    logger.debug("registered the %s stub", _TORCHAUDIO_EXTENSION)


def _torchaudio_extension_stub() -> types.ModuleType:
    """Build the stand-in module with the names torchaudio imports from its real ``_extension``."""
    stub = _stub_module(_TORCHAUDIO_EXTENSION, "Stand-in for torchaudio's compiled-extension loader.")
    vars(stub).update(_IS_TORCHAUDIO_EXT_AVAILABLE=False, _IS_ALIGN_AVAILABLE=False, _load_lib=_load_no_lib,
                      _check_cuda_version=_check_no_cuda_version, fail_if_no_align=_fail_without_align)
    return stub


def _stub_module(name: str, doc: str) -> types.ModuleType:
    """Create a marked, empty module with a spec, so ``importlib.util.find_spec`` does not raise on it."""
    stub = types.ModuleType(name, doc)
    stub.__spec__ = importlib.machinery.ModuleSpec(name, None)
    setattr(stub, _STUB_MARKER, True)
    return stub


def _load_no_lib(lib: str) -> bool:
    """Report that no compiled torchaudio library is available, as the real loader does when it fails."""
    return False


def _check_no_cuda_version() -> None:
    """Skip the CUDA version check: with no extension loaded there is nothing to compare."""


def _fail_without_align(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an alignment function so calling it raises, as torchaudio does without alignment support."""

    @functools.wraps(func)
    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{func.__module__}.{func.__name__} requires torchaudio's compiled extension")

    return unavailable


def _install_spacy_stub() -> None:
    """Register an empty ``spacy`` module when spacy is not installed.

    Without it: ``audiocraft.modules.conditioners`` does ``import spacy`` at module level, so
    ``from audiocraft.models import MusicGen`` fails with ``ModuleNotFoundError``.

    Why it is safe: spacy is only used by audiocraft's ``WhiteSpaceTokenizer`` (the ``whitespace`` tokenizer
    of the LUT conditioner and T5's ``normalize_text``); no MusicGen release uses either. If something did,
    it would fail loudly with an ``AttributeError`` on the empty module rather than misbehave.
    """
    if "spacy" in sys.modules or importlib.util.find_spec("spacy") is not None:
        return
    sys.modules["spacy"] = _stub_module("spacy", "Empty stand-in for spacy, which is not installed.")
    logger.debug("registered an empty spacy stub")


def _install_xformers_stub() -> None:
    """Register a stand-in ``xformers`` package whose ``ops`` has what audiocraft's torch attention path uses.

    Without it: ``audiocraft.modules.transformer`` does ``from xformers import ops`` at module level, so
    audiocraft needs xformers installed; the registry's wheel (0.0.35) is built for torch 2.10 + CUDA and
    prints a ``WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions`` block to the user's console at
    every start, although nothing of it is ever run.

    Why it is safe: with audiocraft's default attention backend (``torch``, which the app never changes)
    a MusicGen transformer uses only ``ops.unbind`` (the same as :func:`torch.unbind`) and
    ``ops.LowerTriangularMask``, whose instance merely tells the torch path to attend causally
    (``is_causal=attn_mask is not None``). ``memory_efficient_attention``, the one real kernel, is only
    reached with the ``xformers`` backend (MAGNeT models, which the app does not offer): it raises here.
    ``xformers.profiler`` stays missing, which audiocraft reads as "not profiling". A real xformers that
    was already imported is left alone.
    """
    if "xformers" in sys.modules:
        return
    package = _stub_module("xformers", "Stand-in for xformers: the pieces audiocraft's torch attention uses.")
    ops = _stub_module("xformers.ops", "Stand-in for xformers.ops.")
    vars(ops).update(unbind=_unbind, LowerTriangularMask=LowerTriangularMask,
                     memory_efficient_attention=_no_memory_efficient_attention)
    vars(package).update(ops=ops)
    sys.modules["xformers"] = package
    sys.modules["xformers.ops"] = ops
    logger.debug("registered the xformers stand-in")


def _unbind(tensor: Any, dim: int = 0) -> tuple[Any, ...]:
    """Split a tensor along ``dim`` into views, as ``xformers.ops.unbind`` does."""
    return tensor.unbind(dim)


class LowerTriangularMask:
    """Marks causal self-attention; audiocraft's torch path only checks that a mask was given."""


def _no_memory_efficient_attention(*args: Any, **kwargs: Any) -> Any:
    """Refuse clearly: only the ``xformers`` attention backend (MAGNeT) would call this."""
    raise RuntimeError("xformers' memory_efficient_attention is not available: audiocraft-webui runs attention "
                       "through torch (audiocraft's default 'torch' backend)")


def _allowed_checkpoint_globals() -> list[Any]:
    """List the classes audiocraft checkpoints pickle besides tensors: omegaconf configs and their parts."""
    import collections
    import typing

    from omegaconf import DictConfig, ListConfig
    from omegaconf.base import ContainerMetadata, Metadata
    from omegaconf.nodes import AnyNode

    return [
        DictConfig,
        ListConfig,
        ContainerMetadata,
        Metadata,
        AnyNode,
        typing.Any,
        dict,
        list,
        int,
        float,
        str,
        bool,
        collections.defaultdict,
    ]


@contextlib.contextmanager
def checkpoint_globals() -> Iterator[None]:
    """Allow the omegaconf config classes in weights-only ``torch.load`` calls made inside the block.

    Without it: since torch 2.6 ``torch.load`` defaults to ``weights_only=True``, and audiocraft 1.3.0 calls
    it without arguments, so a checkpoint that stores an omegaconf ``DictConfig`` (the Multi-Band Diffusion
    checkpoint does) fails with ``UnpicklingError: Weights only load failed``.

    Why it is safe: weights-only unpickling stays on and only these plain config classes are added to its
    allow-list; any other global, such as a callable smuggled in through ``__reduce__``, is still refused.
    The scope ends with the block, unlike ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` which would turn full pickle
    loading on for the whole process.

    torch keeps the allow-list in a process-wide set and removes these entries on exit, so enter the block
    from one thread at a time (the model worker); overlapping blocks can only make a load fail, never unsafe.
    """
    import torch

    with torch.serialization.safe_globals(_allowed_checkpoint_globals()):
        yield
