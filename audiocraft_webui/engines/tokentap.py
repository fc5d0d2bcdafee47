"""Tokens as MusicGen makes them: a tap on audiocraft's own decoding loop, without copying the loop.

For one generation :func:`tap_tokens` shadows two methods of the loaded ``LMModel`` *instance*.
``generate`` is called once per window by ``MusicGen._generate_tokens`` (once up to 30 s, then once per
``extend_stride``) and gives the window's prompt and length; its result verifies what was tapped.
``_sample_next_token`` is called once per decoding step, and ``LMModel.generate`` writes its ``[B, K, 1]``
result into pattern step ``offset``; its ``sequence`` argument is ``gen_sequence[..., prev:offset]``, so
summing those lengths gives ``offset``. The LM's pattern layout (not a hard-coded delay) maps each row to
its ``(timestep, codebook)``; a frame is complete once all ``K`` codebooks are in. (The progress callback
gets two counters, not the tokens.) Everything relied on is checked, and a violation raises
:class:`StreamingError` rather than previewing wrong audio: the signatures, where the first sampling call
starts, each window's returned codes equalling the tapped ones, and each later window's prompt being the
previous window's tail (never re-sent).

Any decode loop (audiocraft's through this tap, or the app's own :mod:`.decoder`) feeds a :class:`TokenSink` the
same way, through a :class:`TokenStream`.
torch is imported inside functions, so importing this module stays cheap.
"""
from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch


class StreamingError(RuntimeError):
    """audiocraft no longer behaves as the tap or the decoder rely on (see the module docstring)."""


class TokenSink(Protocol):
    """Receives one generation's tokens; any decode loop (audiocraft's or one of ours) can feed it."""

    def on_prompt(self, frames: torch.Tensor) -> None:
        """Context frames ``[B, K, T_prompt]`` (continuation prompt) preceding the new audio; once, first."""

    def on_frames(self, frames: torch.Tensor) -> None:
        """Newly complete frames ``[B, K, T_new]``, in output-time order, each frame exactly once."""


class FirstTake:
    """A sink passing on take 0 of a batch only: the preview follows the first take of a batched generation."""

    def __init__(self, sink: TokenSink) -> None:
        self._sink = sink

    def on_prompt(self, frames: torch.Tensor) -> None:
        """Take 0's context frames."""
        self._sink.on_prompt(frames[:1])

    def on_frames(self, frames: torch.Tensor) -> None:
        """Take 0's new frames."""
        self._sink.on_frames(frames[:1])


class FrameAssembler:
    """Fill one window's codes ``[B, K, T]`` step by step; return the frames each step completes."""

    def __init__(self, lm: Any, prompt: torch.Tensor | None, length: int) -> None:
        self._pattern = lm.pattern_provider.get_pattern(length)
        self._prompt, self._length, self._k = prompt, length, int(lm.num_codebooks)
        self._start = self._emitted = 0 if prompt is None else prompt.shape[-1]
        self._missing = [0] * self._start + [self._k] * (length - self._start)
        self._codes: Any = None  # [B, K, T] long, allocated at the first step (when B is known)
        self._offset = 0

    def add_step(self, consumed: int, tokens: torch.Tensor) -> torch.Tensor | None:
        """Record ``tokens`` ``[B, K, 1]``, sampled after ``consumed`` more steps; return new frames."""
        if self._codes is None:
            self._begin(consumed, tokens)
        elif consumed != 1:
            raise StreamingError(f"a sampling call after step {self._offset} covered {consumed} steps")
        self._offset += consumed
        if tuple(tokens.shape[1:]) != (self._k, 1):
            raise StreamingError(f"sampled tokens {tuple(tokens.shape)} are not [B, {self._k}, 1]")
        # Prompt tokens are kept as given, and the layout runs past the window's end.
        coords = [(c.q, c.t) for c in self._pattern.layout[self._offset] if self._start <= c.t < self._length]
        if coords:
            qs, ts = zip(*coords, strict=True)
            self._codes[:, qs, ts] = tokens[:, qs, 0]
            for t in ts:
                self._missing[t] -= 1
        done = self._emitted
        while self._emitted < self._length and self._missing[self._emitted] == 0:
            self._emitted += 1
        return self._codes[..., done:self._emitted].clone() if self._emitted > done else None

    def _begin(self, consumed: int, tokens: torch.Tensor) -> None:
        """Allocate the codes; the first call must cover every step before the first one to sample."""
        import torch

        first_step = self._pattern.get_first_step_with_timesteps(self._start)
        if consumed != first_step:
            raise StreamingError(f"the first sampling call covered {consumed} steps, not {first_step}")
        self._codes = torch.full((tokens.shape[0], self._k, self._length), -1, device=tokens.device)
        if self._prompt is not None:
            self._codes[..., :self._start] = self._prompt

    def finish(self, returned: torch.Tensor, remove_prompts: bool) -> torch.Tensor:
        """Check the window's returned codes are the tapped ones; return the full codes ``[B, K, T]``."""
        import torch

        codes = self._codes
        expected = None if codes is None else codes[..., self._start:] if remove_prompts else codes
        if self._emitted != self._length or expected is None or not torch.equal(expected, returned):
            raise StreamingError("the tapped tokens differ from what LMModel.generate returned")
        return codes


class TokenStream:
    """One generation's windows fed to a sink: the continuation prompt once, each frame once, windows stitched.

    A decode loop calls :meth:`open` at the start of each window (``LMModel.generate``'s ``prompt`` and
    ``max_gen_len``), :meth:`add` after each sampling call and :meth:`close` with the window's returned codes.
    """

    def __init__(self, lm: Any, sink: TokenSink) -> None:
        self._lm, self._sink = lm, sink
        self._window: FrameAssembler | None = None
        self._previous: torch.Tensor | None = None
        self.windows = 0

    def open(self, prompt: torch.Tensor | None, length: int) -> None:
        """Start a window of ``length`` frames whose first ``prompt.shape[-1]`` are given."""
        self._check_prompt(prompt)
        self._window = FrameAssembler(self._lm, prompt, length)

    def add(self, consumed: int, tokens: torch.Tensor) -> None:
        """Record one sampling call's tokens ``[B, K, 1]`` (after ``consumed`` pattern steps); send new frames."""
        if self._window is None:
            raise StreamingError("tokens were sampled outside a window")
        frames = self._window.add_step(consumed, tokens)
        if frames is not None:
            self._sink.on_frames(frames)

    def close(self, returned: torch.Tensor, remove_prompts: bool) -> None:
        """End the window, checking ``returned`` (what the window's generate returns) against the tokens sent."""
        window, self._window = self._window, None
        if window is None:
            raise StreamingError("a window was closed that was never opened")
        self._previous = window.finish(returned, remove_prompts)
        self.windows += 1

    def abandon(self) -> None:
        """Forget the window in progress (its generate raised)."""
        self._window = None

    def _check_prompt(self, prompt: torch.Tensor | None) -> None:
        """First window: pass a continuation prompt on. Later ones: it must be the previous window's tail."""
        import torch

        if prompt is None or prompt.shape[-1] == 0:
            return
        if self.windows == 0:
            self._sink.on_prompt(prompt)
            return
        n, previous = prompt.shape[-1], self._previous
        if previous is None or n > previous.shape[-1] or not torch.equal(previous[..., -n:], prompt):
            raise StreamingError("a long-form window's prompt is not the tail of the previous window")


class _WindowTap:
    """The two wrappers :func:`tap_tokens` installs around audiocraft's loop, feeding a :class:`TokenStream`."""

    def __init__(self, lm: Any, sink: TokenSink) -> None:
        self._generate, self._sample = lm.generate, lm._sample_next_token
        self._signature = inspect.signature(self._generate)
        missing = {"prompt", "max_gen_len", "remove_prompts"} - set(self._signature.parameters)
        if missing:
            raise StreamingError(f"LMModel.generate lost its parameters {sorted(missing)}")
        self.stream = TokenStream(lm, sink)
        self._in_window = False

    @property
    def windows(self) -> int:
        """Windows completed so far."""
        return self.stream.windows

    def generate(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Run one window of audiocraft's loop while tapping its steps; verify its result."""
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        self.stream.open(bound.arguments["prompt"], int(bound.arguments["max_gen_len"]))
        self._in_window = True
        try:
            returned = self._generate(*args, **kwargs)
            self.stream.close(returned, bool(bound.arguments["remove_prompts"]))
        finally:
            self._in_window = False
            self.stream.abandon()
        return returned

    def sample(self, sequence: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Sample one step with audiocraft's own code, then hand the frames it completes to the sink."""
        if not self._in_window:
            raise StreamingError("_sample_next_token was called outside LMModel.generate")
        tokens = self._sample(sequence, *args, **kwargs)
        self.stream.add(sequence.shape[-1], tokens)
        return tokens


@contextlib.contextmanager
def tap_tokens(model: Any, sink: TokenSink) -> Iterator[_WindowTap]:
    """Feed ``sink`` every token audiocraft's ``MusicGen`` ``model`` samples inside the block.

    Wrap one ``generate`` / ``generate_with_chroma`` / ``generate_continuation`` call. Long-form windows
    are stitched: the sink sees the job's stream once, in order. The wrappers are removed on exit.

    Raises:
        StreamingError: on entry if a tap is installed or the LM's methods changed; inside the block if
            audiocraft's loop stops behaving as the tap relies on.
    """
    lm = model.lm
    if "generate" in vars(lm) or "_sample_next_token" in vars(lm):
        raise StreamingError("a token tap is already installed on this model")
    if not callable(getattr(lm, "_sample_next_token", None)) or not hasattr(lm, "pattern_provider"):
        raise StreamingError("LMModel has no _sample_next_token / pattern_provider: audiocraft changed")
    tap = _WindowTap(lm, sink)
    lm.generate, lm._sample_next_token = tap.generate, tap.sample
    try:
        yield tap
    finally:
        del lm.generate, lm._sample_next_token
