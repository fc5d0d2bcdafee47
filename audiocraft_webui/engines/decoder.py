"""The app's own MusicGen decode loop: one window of ``LMModel.generate`` over a static cache, on CPU or CUDA.

:class:`StaticDecoder.generate` takes ``LMModel.generate``'s arguments and returns what it returns, so it
replaces that one method on the loaded LM's *instance* for one call (:func:`installed`) while audiocraft's
``MusicGen`` does everything around it unchanged: the prompt encoding, the melody's chroma, the long-form
window loop past 30 s with its ``extend_stride``, autocast and the codec decode.

Within a window it does what ``LMModel.generate`` does, in the same order and with audiocraft's own pieces
(condition provider, CFG dropout, fuser, pattern provider, embeddings, norms, sampling functions): the
conditional and null conditions in one batch of ``2B`` rows, the pattern sequence with its special and
unknown tokens, and one step per pattern position. The difference is the network (:mod:`.staticlm`): the
prompt, the prepended conditions and every step run against a :class:`~.staticlm.KVCache` allocated once,
with the cross-attention keys and values projected once per window. A :class:`Window` step reads its input
column and writes its sampled column through a position held on the device; on CUDA the step is replayed as
CUDA graphs (:mod:`.cudagraph`) and reads nothing back from the device, elsewhere it runs eagerly.

Every completed frame goes to a :class:`~.tokentap.TokenStream` exactly as the tap on audiocraft's loop sends
it, so the streaming preview does not know which loop made the tokens.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from .precision import apply_weights
from .sampling import Sampling, capturable_tokens, next_tokens
from .staticlm import KVCache, StaticLM
from .tokentap import StreamingError, TokenSink, TokenStream

#: ``LMModel.generate``'s value for pattern positions not generated yet.
UNKNOWN_TOKEN = -1


class Window:
    """One ``LMModel.generate`` call: conditions, pattern sequence ``[B, K, S]``, cache, position on the device.

    Building it computes the CFG conditions and runs the prompt and any prepended condition through the
    network (the prefill); then :meth:`step` is called once per remaining pattern position.
    """

    def __init__(self, lm: Any, net: StaticLM, prompt: torch.Tensor | None, conditions: Sequence[Any],
                 length: int, sampling: Sampling, cache: Callable[[int, int, torch.dtype], KVCache]) -> None:
        from audiocraft.modules.conditioners import ClassifierFreeGuidanceDropout

        self.lm, self.net, self.sampling, self.frames = lm, net, sampling, length
        device = next(iter(lm.parameters())).device
        self.batch = len(conditions) if prompt is None else prompt.shape[0]
        given = 0 if prompt is None else prompt.shape[-1]
        null = ClassifierFreeGuidanceDropout(p=1.0)(list(conditions))
        provider = lm.condition_provider
        self.condition_tensors = provider(provider.tokenize(list(conditions) + null))
        self.pattern = lm.pattern_provider.get_pattern(length)
        codes = torch.full((self.batch, lm.num_codebooks, length), UNKNOWN_TOKEN, dtype=torch.long, device=device)
        if prompt is not None:
            codes[..., :given] = prompt
        self.sequence, _, valid = self.pattern.build_pattern_sequence(codes, lm.special_token_id)
        self.valid = valid.to(device)  # [K, S]: pattern positions that hold a real token
        self.given = given
        self.start = self.pattern.get_first_step_with_timesteps(given)
        self.steps = self.sequence.shape[-1] - self.start
        self.done = 0  # steps run so far (host side)
        x = net.embed(self.rows(self.sequence[..., :self.start - 1]), None)
        x, cross = lm.fuser(x, self.condition_tensors)
        self.prefix = x.shape[1] - (self.start - 1)  # prepended conditions (melody), in positions
        self.cache = cache(2 * self.batch, self.prefix + self.sequence.shape[-1] - 1, _compute_dtype(device, x))
        self.columns = torch.arange(self.cache.length, device=device)
        self.cross = net.cross_keys_values(cross)
        if x.shape[1]:
            positions = self.columns[:x.shape[1]]
            causal = positions[None, :] <= positions[:, None]
            net(net.add_positions(x, positions), self.cache, positions, x.shape[1], causal, self.cross)
        self.offset = torch.tensor([self.start], device=device)  # the pattern position the next step writes
        self.logits = torch.zeros(2 * self.batch, lm.num_codebooks, lm.card, device=device)
        self._sample = next_tokens if device.type == "cpu" else capturable_tokens

    def rows(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, K, T]`` -> ``[2B, K, T]``: the conditional rows, then the same tokens for the null condition."""
        return torch.cat([tokens, tokens], dim=0)

    @property
    def position(self) -> int:
        """Cache column (transformer position) of the token the next step reads."""
        return self.prefix + self.start + self.done - 1

    def column(self, step: int) -> torch.Tensor:
        """Tokens ``[B, K, 1]`` that step number ``step`` (from 0) wrote."""
        at = self.start + step
        return self.sequence[..., at:at + 1]

    def step(self, length: int, masked: bool) -> None:
        """One pattern position, all on the device: read the previous column, sample, write the next one.

        The new position attends to cache columns ``[:length]``: exactly the positions so far when not
        ``masked``, else a fixed ``length`` with the later columns masked out (the shape a CUDA graph keeps).
        """
        tokens = self.sequence.index_select(2, self.offset - 1)  # [B, K, 1]
        index = self.offset - 1 + self.prefix
        mask = (self.columns[:length] <= index).view(1, length) if masked else None
        logits = self.net(self.net.embed(self.rows(tokens), index), self.cache, index, length, mask, self.cross)
        self.logits.copy_(logits[:, :, -1])
        sampled = self._sample(logits[:, :, -1], self.batch, self.sampling)
        sampled = torch.where(self.valid.index_select(1, self.offset)[None], sampled, self.lm.special_token_id)
        current = self.sequence.index_select(2, self.offset)  # prompt tokens are kept, as audiocraft does
        self.sequence.index_copy_(2, self.offset, torch.where(current == UNKNOWN_TOKEN, sampled, current))
        self.offset.add_(1)

    def snapshot(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The state a step changes besides cache columns it will write again (for warm-up runs)."""
        return self.sequence.clone(), self.offset.clone()

    def restore(self, state: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Undo the steps run since :meth:`snapshot`."""
        self.sequence.copy_(state[0])
        self.offset.copy_(state[1])

    def codes(self, remove_prompts: bool) -> torch.Tensor:
        """The window's codes ``[B, K, T]`` as ``LMModel.generate`` returns them."""
        codes, _, _ = self.pattern.revert_pattern_sequence(self.sequence, special_token=UNKNOWN_TOKEN)
        codes = codes[..., self.given if remove_prompts else 0:self.frames]
        if bool((codes < 0).any()):
            raise StreamingError("the decode loop left pattern positions unfilled")
        return codes


def _compute_dtype(device: torch.device, x: torch.Tensor) -> torch.dtype:
    """The dtype keys and values come out in: autocast's on its device, else the inputs'."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return x.dtype


class EagerSteps:
    """Run a window's steps one by one (CPU, MPS, or CUDA without graphs)."""

    #: Steps between two hand-overs of tokens to the preview stream.
    feed_every = 1

    def __init__(self, window: Window, masked: bool = False) -> None:
        self.window, self.masked = window, masked

    def step(self) -> None:
        """The next step: attending to exactly the positions so far, or (``masked``) over the whole cache."""
        window = self.window
        window.step(window.cache.length if self.masked else window.position + 1, self.masked)
        window.done += 1

    def finish(self) -> None:
        """Nothing is pending."""


class StaticDecoder:
    """``LMModel.generate`` for one window over a static cache, for one loaded model (see the module docstring).

    Args:
        lm: audiocraft's ``LMModel`` (eval mode, on its device).
        weights: precision of the matrix products (:mod:`.precision`; None keeps the model's own).
        graphs: replay each step as a CUDA graph (default: on CUDA).
    """

    def __init__(self, lm: Any, weights: str | None = None, graphs: bool | None = None) -> None:
        self.lm = lm
        self.weights = weights
        self.net = apply_weights(StaticLM(lm).eval(), weights)
        self.device = next(iter(lm.parameters())).device
        self.graphs = self.device.type == "cuda" if graphs is None else graphs
        self._cache: KVCache | None = None

    def cache(self, rows: int, length: int, dtype: torch.dtype) -> KVCache:
        """The generation's cache, reused by its later windows when it is large enough."""
        if self._cache is None or not self._cache.matches(rows, length, self.device, dtype):
            self._cache = None  # the old one goes before the new one is allocated
            self._cache = self.net.allocate(rows, length, self.device, dtype)
        return self._cache

    def release(self) -> None:
        """Free the cache (after a generation; the weights stay)."""
        self._cache = None

    @torch.no_grad()
    def open(self, prompt: torch.Tensor | None, conditions: Sequence[Any], length: int,
             sampling: Sampling) -> Window:
        """Start a window of ``length`` frames (its first ``prompt.shape[-1]`` given); the prefill has run."""
        if not conditions:
            raise StreamingError("the static loop needs conditions (audiocraft runs unconditional generation)")
        return Window(self.lm, self.net, prompt, conditions, length, sampling, self.cache)

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor | None = None, conditions: Sequence[Any] = (),
                 num_samples: int | None = None, max_gen_len: int = 256, use_sampling: bool = True,
                 temp: float = 1.0, top_k: int = 250, top_p: float = 0.0, cfg_coef: float | None = None,
                 two_step_cfg: bool | None = None, remove_prompts: bool = False, check: bool = False,
                 callback: Callable[[int, int], None] | None = None, stream: TokenStream | None = None,
                 **_: Any) -> torch.Tensor:
        """``LMModel.generate`` for one window, feeding ``stream`` (if any) each step's tokens; codes ``[B, K, T]``."""
        if two_step_cfg:
            raise StreamingError("the static loop does not run two-step CFG")
        sampling = Sampling(use_sampling, temp, top_k, top_p, self.lm.cfg_coef if cfg_coef is None else cfg_coef)
        window = self.open(prompt, conditions, max_gen_len, sampling)
        steps = self._steps(window)
        if stream is not None:
            stream.open(prompt, max_gen_len)
        fed = 0
        for number in range(window.steps):
            steps.step()
            if callback is not None:
                callback(number + 1, window.steps)
            if stream is not None and (number + 1) % steps.feed_every == 0:
                fed = _feed(stream, window, fed, number + 1)
        steps.finish()
        if stream is not None:
            _feed(stream, window, fed, window.steps)
        codes = window.codes(remove_prompts)
        if stream is not None:
            stream.close(codes, remove_prompts)
        return codes

    def _steps(self, window: Window) -> Any:
        """How this window's steps run: CUDA graphs on CUDA, else eagerly."""
        if self.graphs:
            from .cudagraph import GraphSteps

            return GraphSteps(window)
        return EagerSteps(window)


def _feed(stream: TokenStream, window: Window, start: int, end: int) -> int:
    """Hand the tokens of steps ``[start, end)`` to ``stream`` in order; returns ``end``."""
    for number in range(start, end):
        stream.add(window.start if number == 0 else 1, window.column(number))
    return end


@contextlib.contextmanager
def installed(decoder: StaticDecoder, model: Any, sink: TokenSink | None) -> Iterator[None]:
    """Make ``model.lm.generate`` the static loop inside the block (every window), feeding ``sink`` if given.

    Raises:
        StreamingError: if another loop or a tap is installed on this LM already.
    """
    lm = model.lm
    if "generate" in vars(lm) or "_sample_next_token" in vars(lm):
        raise StreamingError("a decode loop or token tap is already installed on this model")
    stream = None if sink is None else TokenStream(lm, sink)
    lm.generate = functools.partial(decoder.generate, stream=stream)
    try:
        yield
    finally:
        del lm.generate
        decoder.release()
