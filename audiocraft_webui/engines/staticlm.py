"""MusicGen's transformer for the app's own decode loop: audiocraft's weights, a static KV cache, any positions.

:class:`StaticLM` is built from a loaded ``LMModel`` and runs the same network as ``LMModel.forward`` on the
same weights, but it takes its keys and values from a :class:`KVCache` allocated once per generation and
written in place (audiocraft grows its cache with ``torch.cat`` at every step), and it projects the text
condition's cross-attention keys and values once per window instead of once per step. Every ``nn.Linear``
of the network is a module of its own here, the attention in-projections included (audiocraft keeps them as
packed parameters), so a weight precision (:mod:`.precision`) reaches every matrix product.

The norms, embeddings, layer scales and activations are audiocraft's own modules; the Linears share
audiocraft's parameters (no copy) until a precision replaces them. Only the configuration MusicGen ships
is reproduced (pre-norm layers, sinusoidal positions, audiocraft's SDPA attention); :func:`unsupported`
names anything else, and the app then keeps audiocraft's loop.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def unsupported(lm: Any) -> str | None:
    """Why ``lm`` cannot run in :class:`StaticLM` (a few words), or None when it can."""
    from audiocraft.models.lm import LMModel
    from audiocraft.modules import transformer

    transformer_module = lm.transformer
    checks = [
        (type(lm) is not LMModel, f"{type(lm).__name__} is not audiocraft's plain LMModel"),
        (getattr(lm, "_fsdp", None) is not None, "the LM is wrapped in FSDP"),
        (bool(lm.two_step_cfg), "two-step classifier-free guidance"),
        (transformer_module.positional_embedding != "sin", "positions other than sinusoidal"),
        (transformer_module.checkpointing != "none", "activation checkpointing"),
        (transformer._efficient_attention_backend != "torch", "the xformers attention backend"),
        (any(lm.fuser.fuse2cond.get(op) for op in ("sum", "input_interpolate")),
         "conditions summed into the input"),
    ]
    for layer in transformer_module.layers:
        attentions = [layer.self_attn] + ([layer.cross_attention] if layer.cross_attention is not None else [])
        checks += [
            (not layer.norm_first, "post-norm layers"),
            (any(not a.custom or not a.memory_efficient for a in attentions), "attention other than SDPA"),
            (any(a.qk_layer_norm or a.attention_as_float32 or a.kv_repeat != 1 for a in attentions),
             "qk layer norm, float32 attention or repeated keys"),
            (layer.self_attn.past_context is not None or layer.self_attn.rope is not None,
             "a limited past context or rotary positions"),
            (not layer.self_attn.causal, "non-causal self-attention"),
        ]
    reasons = sorted({reason for failed, reason in checks if failed})
    return ", ".join(reasons) if reasons else None


def shared_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """An ``nn.Linear`` over (a slice of) existing parameters, sharing their storage."""
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    linear.weight = nn.Parameter(weight.detach(), requires_grad=False)
    if bias is not None:
        linear.bias = nn.Parameter(bias.detach(), requires_grad=False)
    return linear


def split_heads(x: torch.Tensor, parts: int, heads: int) -> torch.Tensor:
    """``[B, T, parts * H * d]`` -> ``[parts, B, H, T, d]`` (audiocraft's ``b t (p h d)`` packing)."""
    batch, time, width = x.shape
    return x.view(batch, time, parts, heads, width // (parts * heads)).permute(2, 0, 3, 1, 4)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, H, T, d]`` -> ``[B, T, H * d]``."""
    batch, heads, time, width = x.shape
    return x.transpose(1, 2).reshape(batch, time, heads * width)


@dataclass
class KVCache:
    """Self-attention keys and values of every layer, ``[rows, H, length, d]`` each, written in place."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @classmethod
    def allocate(cls, layers: int, rows: int, heads: int, length: int, head_dim: int, device: torch.device,
                 dtype: torch.dtype) -> KVCache:
        """Zeros, not empty: a masked column still enters the attention product and must be finite."""
        shape = (rows, heads, length, head_dim)
        return cls([torch.zeros(shape, device=device, dtype=dtype) for _ in range(layers)],
                   [torch.zeros(shape, device=device, dtype=dtype) for _ in range(layers)])

    @property
    def length(self) -> int:
        """Columns (positions) the cache holds."""
        return int(self.keys[0].shape[2])

    def matches(self, rows: int, length: int, device: torch.device, dtype: torch.dtype) -> bool:
        """Whether this cache can serve a window of ``rows`` rows and ``length`` positions."""
        key = self.keys[0]
        return key.shape[0] == rows and self.length >= length and key.device == device and key.dtype == dtype


def cache_bytes(layers: int, dim: int, length: int, rows: int = 2, element_bytes: int = 2) -> int:
    """Bytes of a :class:`KVCache`: keys and values of ``layers`` layers, ``rows`` x ``length`` x ``dim`` each."""
    return 2 * layers * rows * length * dim * element_bytes


class StaticLayer(nn.Module):
    """One pre-norm transformer layer of MusicGen over a static cache (audiocraft's weights)."""

    def __init__(self, layer: Any) -> None:
        super().__init__()
        attention, cross = layer.self_attn, layer.cross_attention
        self.heads = attention.num_heads
        self.norm1, self.norm2 = layer.norm1, layer.norm2
        self.scale_1, self.scale_2 = layer.layer_scale_1, layer.layer_scale_2
        self.qkv = shared_linear(attention.in_proj_weight, attention.in_proj_bias)
        self.out = attention.out_proj
        self.linear1, self.linear2 = layer.linear1, layer.linear2
        self.activation = layer.activation
        self.cross: nn.ModuleDict | None = None
        if cross is not None:
            dim, weight, bias = cross.embed_dim, cross.in_proj_weight, cross.in_proj_bias
            self.cross = nn.ModuleDict({
                "norm": layer.norm_cross, "scale": layer.layer_scale_cross, "out": cross.out_proj,
                "q": shared_linear(weight[:dim], None if bias is None else bias[:dim]),
                "kv": shared_linear(weight[dim:], None if bias is None else bias[dim:]),
            })

    def cross_keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project the cross-attention source ``[rows, Tc, D]`` into keys and values ``[rows, H, Tc, d]``."""
        assert self.cross is not None
        keys, values = split_heads(self.cross["kv"](source), 2, self.heads)
        return keys, values

    def forward(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, index: torch.Tensor, length: int,
                mask: torch.Tensor | None, cross: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """Run new positions ``x`` ``[rows, T, D]``, stored at cache columns ``index`` ``[T]``.

        They attend to columns ``[:length]``, through ``mask`` ``[T, length]`` (True: attend) when given.
        """
        query, key, value = split_heads(self.qkv(self.norm1(x)), 3, self.heads)
        keys.index_copy_(2, index, key)
        values.index_copy_(2, index, value)
        attended = F.scaled_dot_product_attention(query, keys[:, :, :length], values[:, :, :length], attn_mask=mask)
        x = x + self.scale_1(self.out(merge_heads(attended)))
        if self.cross is not None and cross is not None:
            query = split_heads(self.cross["q"](self.cross["norm"](x)), 1, self.heads)[0]
            attended = F.scaled_dot_product_attention(query, *cross)
            x = x + self.cross["scale"](self.cross["out"](merge_heads(attended)))
        return x + self.scale_2(self.linear2(self.activation(self.linear1(self.norm2(x)))))


class StaticLM(nn.Module):
    """``LMModel``'s transformer and output heads over a :class:`KVCache` (see the module docstring)."""

    def __init__(self, lm: Any) -> None:
        super().__init__()
        self.layers = nn.ModuleList(StaticLayer(layer) for layer in lm.transformer.layers)
        self.out_norm = lm.out_norm
        # New containers around audiocraft's modules: a precision swaps our Linears, never the LM's own.
        self.linears = nn.ModuleList(lm.linears)
        self.emb = nn.ModuleList(lm.emb)
        self.dim = int(lm.dim)
        self.heads = self.layers[0].heads
        self.max_period = float(lm.transformer.max_period)
        self.positional_scale = float(lm.transformer.positional_scale)

    def embed(self, tokens: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
        """Tokens ``[rows, K, T]`` to inputs ``[rows, T, D]``, plus sinusoidal ``positions`` ``[T]`` when given."""
        x = sum(self.emb[k](tokens[:, k]) for k in range(tokens.shape[1]))
        assert isinstance(x, torch.Tensor)
        return x if positions is None else self.add_positions(x, positions)

    def add_positions(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Add the sinusoidal embedding of ``positions`` ``[T]`` to ``x`` ``[rows, T, D]``, as the transformer does."""
        from audiocraft.modules.transformer import create_sin_embedding

        embedding = create_sin_embedding(positions.view(1, -1, 1), self.dim, max_period=self.max_period,
                                         dtype=x.dtype)
        return x + self.positional_scale * embedding

    def cross_keys_values(self, source: torch.Tensor | None) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Every layer's cross-attention keys and values of ``source`` ``[rows, Tc, D]``, projected once."""
        if source is None or self.layers[0].cross is None:
            return None
        return [layer.cross_keys_values(source) for layer in self.layers]

    def allocate(self, rows: int, length: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        """A cache for ``rows`` rows and ``length`` positions."""
        return KVCache.allocate(len(self.layers), rows, self.heads, length, self.dim // self.heads, device, dtype)

    def forward(self, x: torch.Tensor, cache: KVCache, index: torch.Tensor, length: int, mask: torch.Tensor | None,
                cross: list[tuple[torch.Tensor, torch.Tensor]] | None) -> torch.Tensor:
        """Logits ``[rows, K, T, card]`` of new positions ``x`` ``[rows, T, D]`` (see :meth:`StaticLayer.forward`)."""
        for number, layer in enumerate(self.layers):
            x = layer(x, cache.keys[number], cache.values[number], index, length, mask,
                      None if cross is None else cross[number])
        if self.out_norm is not None:
            x = self.out_norm(x)
        return torch.stack([linear(x) for linear in self.linears], dim=1)
