"""The next token from a decoding step's logits, as ``LMModel._sample_next_token`` picks it.

:func:`next_tokens` mixes the conditional and unconditional rows (audiocraft's one-batch CFG), divides by
the temperature and samples with audiocraft's own ``sample_top_p`` / ``sample_top_k`` / ``multinomial``.
Those end in ``torch.multinomial``, whose argument checks read the device (``.item()``), which a CUDA graph
cannot hold; :func:`capturable_tokens` therefore draws the same distribution the way ``torch.multinomial``
itself draws one sample (``argmax(p / E)`` with ``E ~ Exp(1)``, its own algorithm) without the checks, and
keeps audiocraft's top-k / top-p truncation. tests/test_decoder_sampling.py checks both against audiocraft's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Sampling:
    """``LMModel.generate``'s sampling arguments (``cfg_coef`` is the coefficient actually used)."""

    use_sampling: bool
    temperature: float
    top_k: int
    top_p: float
    cfg_coef: float

    @property
    def greedy(self) -> bool:
        """audiocraft takes the argmax when sampling is off or the temperature is not positive."""
        return not self.use_sampling or self.temperature <= 0.0


def guided(logits: torch.Tensor, batch: int, cfg_coef: float) -> torch.Tensor:
    """CFG: logits ``[2B, K, card]`` (conditional rows first) -> ``[B, K, card]``; ``[B, ...]`` passes through."""
    if logits.shape[0] == batch:
        return logits
    conditional, unconditional = logits.split(batch, dim=0)
    return unconditional + (conditional - unconditional) * cfg_coef


def next_tokens(logits: torch.Tensor, batch: int, sampling: Sampling) -> torch.Tensor:
    """Tokens ``[B, K, 1]`` from logits ``[rows, K, card]`` with audiocraft's sampling functions."""
    from audiocraft.utils import utils

    mixed = guided(logits, batch, sampling.cfg_coef)
    if sampling.greedy:
        return torch.argmax(mixed, dim=-1, keepdim=True)
    probs = torch.softmax(mixed / sampling.temperature, dim=-1)
    if sampling.top_p > 0.0:
        return utils.sample_top_p(probs, p=sampling.top_p)
    if sampling.top_k > 0:
        return utils.sample_top_k(probs, k=sampling.top_k)
    return utils.multinomial(probs, num_samples=1)


def exponential_race(probs: torch.Tensor) -> torch.Tensor:
    """One draw per row of ``probs`` ``[..., card]`` (need not sum to 1): ``[..., 1]``, as ``torch.multinomial``."""
    return (probs / torch.empty_like(probs).exponential_()).argmax(dim=-1, keepdim=True)


def capturable_tokens(logits: torch.Tensor, batch: int, sampling: Sampling) -> torch.Tensor:
    """:func:`next_tokens` with nothing that reads the device, so a CUDA graph can hold it: ``[B, K, 1]``."""
    mixed = guided(logits, batch, sampling.cfg_coef)
    if sampling.greedy:
        return torch.argmax(mixed, dim=-1, keepdim=True)
    probs = torch.softmax(mixed / sampling.temperature, dim=-1)
    if sampling.top_p > 0.0:
        ordered, order = torch.sort(probs, dim=-1, descending=True)
        kept = ordered * ((ordered.cumsum(dim=-1) - ordered) <= sampling.top_p)
        return torch.gather(order, -1, exponential_race(kept))
    if sampling.top_k > 0:
        threshold = torch.topk(probs, sampling.top_k, dim=-1).values[..., -1:]
        return exponential_race(probs * (probs >= threshold))
    return exponential_race(probs)
