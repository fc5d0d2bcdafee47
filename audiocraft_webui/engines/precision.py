"""Weight precision of the static loop's matrix products: fp32 as loaded, bf16 / fp16 copies, or int8.

Matrix products are 85 % of a CPU decoding step, and at batch 2 each one reads its whole weight matrix
for a few multiply-adds per weight, so smaller weights are what makes a step faster. Only the ``nn.Linear``
modules of a :class:`~.staticlm.StaticLM` change (the attention in-projections included, which are Linears
there); norms, embeddings, attention and the KV cache keep the model's dtype, and every Linear still takes
and returns that dtype, so the residual stream is not rounded.

* ``None`` or ``fp32`` (on the CPU, where audiocraft loads fp32): audiocraft's parameters, shared (no copy).
* ``bf16`` / ``fp16``: a copy of each weight in that type; the input is rounded to it for the product.
* ``int8``: PyTorch's dynamic quantisation (``torch.ao.quantization.quantize_dynamic``; int8 weights per
  output channel, activations quantised per call), run by fbgemm.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

FLOAT_TYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class CastLinear(nn.Module):
    """A Linear whose weight is kept in a smaller float type; it takes and returns its input's type."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().to(dtype), requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().to(dtype),
                                                                  requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[..., in]`` -> ``[..., out]`` in ``x``'s dtype, the product in the weight's."""
        return F.linear(x.to(self.weight.dtype), self.weight, self.bias).to(x.dtype)


def apply_weights(module: nn.Module, weights: str | None) -> nn.Module:
    """Give every ``nn.Linear`` inside ``module`` the precision ``weights`` (in place); returns ``module``.

    Raises:
        ValueError: for an unknown precision.
    """
    if weights is None or weights == "fp32":
        return module
    if weights in FLOAT_TYPES:
        for parent in list(module.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, CastLinear(child, FLOAT_TYPES[weights]))
        return module
    if weights == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        # torch.ao.quantization announces its move to torchao, but its dynamic int8 Linear (fbgemm) is the
        # one that runs fast in eager mode on a CPU; the warnings would be printed at every model load.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", "torch.quantize_per_tensor, torch.quantize_per_channel", UserWarning)
            return quantize_dynamic(module, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                                    inplace=True)
    raise ValueError(f"unknown weight precision {weights!r}: use fp32, bf16, fp16 or int8")


def weight_bytes(module: nn.Module) -> int:
    """Bytes of the parameters and packed quantised weights ``module`` holds (shared ones counted once)."""
    seen: set[int] = set()
    total = 0
    for tensor in [*module.parameters(), *_packed_weights(module)]:
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    return total


def _packed_weights(module: nn.Module) -> list[torch.Tensor]:
    """The int8 weights inside dynamically quantised Linears (they are not parameters)."""
    return [child.weight() for child in module.modules()
            if hasattr(child, "_packed_params") and callable(getattr(child, "weight", None))]
