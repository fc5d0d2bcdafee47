"""The static loop samples audiocraft's distribution: CFG, temperature, then top-k or top-p, one token per row.

Statistical checks over many draws with fixed seeds (deterministic): the empirical distribution of each
sampler is within a total-variation bound of the exact one computed independently in float64, and a
chi-square test does not reject it. On the CPU the capturable sampler (the one a CUDA graph replays) even
draws the very tokens audiocraft's ``torch.multinomial`` draws for a seed, since that is its algorithm.
"""
from __future__ import annotations

import pytest

from audiocraft_webui import compat

compat.install()

DRAWS = 40_000
CARD = 64
#: Expected total variation of DRAWS draws over at most CARD categories is about 0.01; the bound is 2.5 x that.
TV_BOUND = 0.025
CASES = {"top_k": {"top_k": 12, "top_p": 0.0}, "top_p": {"top_k": 0, "top_p": 0.7}, "full": {"top_k": 0, "top_p": 0.0}}


def sampling(case: str):
    """The case's sampling settings (temperature 1.3, CFG 3)."""
    from audiocraft_webui.engines.sampling import Sampling

    return Sampling(True, 1.3, cfg_coef=3.0, **CASES[case])


def logits_pair():
    """Conditional and unconditional logits ``[2, 1, CARD]`` of one position, fixed."""
    import torch

    generator = torch.Generator().manual_seed(11)
    return torch.randn(2, 1, CARD, generator=generator, dtype=torch.float64) * 2


def exact(case: str):
    """The distribution audiocraft samples from, in float64: CFG, softmax at the temperature, truncation."""
    import torch

    settings = sampling(case)
    conditional, unconditional = logits_pair()[:, 0]
    probs = torch.softmax((unconditional + (conditional - unconditional) * settings.cfg_coef)
                          / settings.temperature, dim=-1)
    if settings.top_k:
        probs = probs * (probs >= torch.topk(probs, settings.top_k).values[-1])
    elif settings.top_p:
        ordered, order = torch.sort(probs, descending=True)
        kept = torch.zeros_like(probs)
        kept[order] = ordered * ((ordered.cumsum(0) - ordered) <= settings.top_p)
        probs = kept
    return probs / probs.sum()


def draws(sampler, case: str, seed: int = 5):
    """``DRAWS`` tokens from ``sampler`` for the fixed logits: the pair repeated as a batch."""
    import torch

    conditional, unconditional = logits_pair().float()
    batch = torch.cat([conditional.expand(DRAWS, 1, CARD), unconditional.expand(DRAWS, 1, CARD)]).contiguous()
    torch.manual_seed(seed)
    return sampler(batch, DRAWS, sampling(case)).flatten()


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", ["audiocraft", "capturable"])
def test_each_sampler_draws_audiocrafts_distribution(case, name):
    import torch
    from scipy.stats import chisquare

    from audiocraft_webui.engines.sampling import capturable_tokens, next_tokens

    tokens = draws(next_tokens if name == "audiocraft" else capturable_tokens, case)
    expected = exact(case)
    counts = torch.bincount(tokens, minlength=CARD).double()
    assert bool((counts[expected == 0] == 0).all()), "nothing outside top-k / top-p is ever drawn"
    total_variation = 0.5 * float((counts / DRAWS - expected).abs().sum())
    assert total_variation < TV_BOUND
    support = expected > 0
    assert chisquare(counts[support].numpy(), (expected[support] * DRAWS).numpy()).pvalue > 1e-3


@pytest.mark.parametrize("case", list(CASES))
def test_on_the_cpu_the_capturable_sampler_draws_the_same_tokens_as_audiocrafts_for_a_seed(case):
    import torch

    from audiocraft_webui.engines.sampling import capturable_tokens, next_tokens

    assert torch.equal(draws(next_tokens, case), draws(capturable_tokens, case))


def test_greedy_takes_the_argmax_of_the_guided_logits():
    import torch

    from audiocraft_webui.engines.sampling import Sampling, capturable_tokens, guided, next_tokens

    logits = logits_pair().float()
    settings = Sampling(False, 1.0, 250, 0.0, 3.0)
    best = torch.argmax(guided(logits, 1, 3.0), dim=-1, keepdim=True)
    assert torch.equal(next_tokens(logits, 1, settings), best)
    assert torch.equal(capturable_tokens(logits, 1, settings), best)
