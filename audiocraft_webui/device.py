"""Which torch device the worker uses: shared by generation (MusicGen, MBD) and stem separation (Demucs)."""
from __future__ import annotations

import re

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class DeviceError(RuntimeError):
    """The requested device cannot be used on this machine; the message says what to do instead."""


def pick_device(requested: str = "auto") -> str:
    """Choose cuda, then mps, then cpu; an explicit request is checked against what torch can use.

    Raises:
        DeviceError: an explicit device torch cannot use here.
    """
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {requested!r} was requested but torch sees no CUDA GPU "
                          f"(torch {torch.__version__}); use --device cpu or install a CUDA build of torch")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("device 'mps' was requested but this machine has no Apple GPU support in torch")
    return requested
