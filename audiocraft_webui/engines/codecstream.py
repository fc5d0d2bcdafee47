"""Exact incremental decoding: complete token frames to audio as they come, equal to the final decode.

:class:`IncrementalDecoder` makes audio equal to audiocraft's one-shot ``compression_model.decode`` of the
whole stream. The codec has no streaming mode (``EncodecModel`` is a plain ``nn.Module``; SEANet's
convolutions are non-causal), so the decoder is cut at its ``StreamableLSTM``: convolution stacks run
overlap-and-discard with the left context and look-ahead their kernels imply, the LSTM carries its
``(h, c)`` state (no finite context replaces it). The RVQ decode is per frame. :class:`PreviewStream`
is the :class:`~.tokentap.TokenSink` that turns a generation's frames into preview chunks.

torch and audiocraft are imported inside functions, so importing this module stays cheap.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .tokentap import StreamingError

if TYPE_CHECKING:
    import torch
    from torch import nn


def _receptive_field(module: nn.Module, rate: int = 1) -> tuple[float, float, int]:
    """Bound what a SEANet stack's outputs need: ``(left, right, rate_out)``; unknown layers raise.

    An output at position ``p`` (in input samples) needs inputs ``[p - left, p + right]``; ``rate`` is
    output samples per input sample so far.
    """
    from audiocraft.modules.conv import StreamableConv1d, StreamableConvTranspose1d
    from audiocraft.modules.seanet import SEANetResnetBlock
    from torch import nn

    if isinstance(module, nn.Sequential):
        left = right = 0.0
        for layer in module:
            more_left, more_right, rate = _receptive_field(layer, rate)
            left, right = left + more_left, right + more_right
        return left, right, rate
    if isinstance(module, SEANetResnetBlock):
        block, skip = _receptive_field(module.block, rate), _receptive_field(module.shortcut, rate)
        return max(block[0], skip[0]), max(block[1], skip[1]), rate
    if isinstance(module, StreamableConv1d) and module.conv.conv.stride[0] == 1:
        span = (module.conv.conv.kernel_size[0] - 1) * module.conv.conv.dilation[0]
        pad_right = 0 if module.causal else span // 2
        return (span - pad_right) / rate, pad_right / rate, rate
    if isinstance(module, StreamableConvTranspose1d):
        kernel, stride = module.convtr.convtr.kernel_size[0], module.convtr.convtr.stride[0]
        total = kernel - stride
        pad_right = math.ceil(total * module.trim_right_ratio) if module.causal else total // 2
        trim_left = total - pad_right  # output j is raw output j + trim_left = sum over i*stride + tap
        return (kernel - 1 - trim_left) / stride / rate, trim_left / stride / rate, rate * stride
    if isinstance(module, nn.Identity) or type(module).__module__ == "torch.nn.modules.activation":
        return 0.0, 0.0, rate
    raise StreamingError(f"cannot stream the codec decoder layer {type(module).__name__}")


class _ConvStage:
    """Overlap-and-discard over a finite-receptive-field stack; exact given enough context each side."""

    def __init__(self, layers: nn.Sequential) -> None:
        left, right, self.up = _receptive_field(layers)
        self._layers = layers
        self._left, self._right = math.ceil(left) + 1, math.ceil(right) + 1  # +1: rounding margin
        self._x: torch.Tensor | None = None  # inputs [B, C, n - base] kept for context
        self._base = self._n = self._done = 0

    def skip(self, inputs: int) -> None:
        """Never compute the outputs of the first ``inputs`` inputs; call before any input."""
        self._done = inputs

    def push(self, x: torch.Tensor | None, final: bool = False) -> torch.Tensor | None:
        """Add inputs ``[B, C, t]``; return the outputs ``[B, C', t' * up]`` now final (all, if ``final``)."""
        import torch

        if x is not None:
            self._x = x if self._x is None else torch.cat([self._x, x], dim=-1)
            self._n += x.shape[-1]
        ready = self._n if final else self._n - self._right
        if self._x is None or ready <= self._done:
            return None
        start = max(self._base, self._done - self._left)
        out = self._layers(self._x[..., start - self._base:])[..., (self._done - start) * self.up:]
        out = out[..., :(ready - self._done) * self.up]
        self._done = ready
        keep = max(self._base, ready - self._left)
        self._x, self._base = self._x[..., keep - self._base:], keep
        return out


class _LSTMStage:
    """audiocraft's ``StreamableLSTM`` with its ``(h, c)`` carried from call to call."""

    up = 1

    def __init__(self, layer: Any) -> None:
        from torch import nn

        if not isinstance(getattr(layer, "lstm", None), nn.LSTM) or not hasattr(layer, "skip"):
            raise StreamingError("StreamableLSTM lost its lstm / skip attributes: audiocraft changed")
        self._layer = layer
        self._state: tuple[torch.Tensor, torch.Tensor] | None = None

    def skip(self, inputs: int) -> None:
        """An LSTM must see every input."""

    def push(self, x: torch.Tensor | None, final: bool = False) -> torch.Tensor | None:
        """Run new inputs ``[B, C, t]`` on from the carried state; return ``[B, C, t]``."""
        if x is None or x.shape[-1] == 0:
            return None
        seq = x.permute(2, 0, 1)
        y, self._state = self._layer.lstm(seq, self._state)
        return (y + seq if self._layer.skip else y).permute(1, 2, 0)


def _stages(decoder: nn.Module) -> list[_ConvStage | _LSTMStage]:
    """Cut a ``SEANetDecoder`` at its LSTMs into streaming stages; only the last may upsample."""
    from audiocraft.modules.lstm import StreamableLSTM
    from torch import nn

    layers = getattr(decoder, "model", None)
    if not isinstance(layers, nn.Sequential):
        raise StreamingError(f"cannot stream the codec decoder {type(decoder).__name__}")
    stages: list[_ConvStage | _LSTMStage] = []
    run: list[nn.Module] = []
    for layer in [*layers, None]:
        if layer is not None and not isinstance(layer, StreamableLSTM):
            run.append(layer)
            continue
        if run:
            stages.append(_ConvStage(nn.Sequential(*run)))
        if layer is not None:
            stages.append(_LSTMStage(layer))
        run = []
    if any(stage.up != 1 for stage in stages[:-1]):
        raise StreamingError("only the codec decoder's last stage may upsample")
    return stages


@dataclass(frozen=True)
class AudioChunk:
    """Preview audio: float32 ``samples`` ``[C, T]`` at the model's rate, ``start`` samples into new audio."""

    start: int
    samples: np.ndarray


class IncrementalDecoder:
    """Decode frames as they complete into chunks that concatenate to the one-shot decode of all frames.

    For audiocraft's ``EncodecModel`` and its ``InterleaveStereoCompressionModel`` (left and right are decoded
    as a batch of two). Audio lags the frames pushed by the decoder's look-ahead (6 frames for MusicGen's
    codec); :meth:`flush` decodes the rest against the stream's true end. Batch size 1 only.
    """

    def __init__(self, compression_model: Any, chunk_frames: int | None = None) -> None:
        self._codec = compression_model
        self._stereo = hasattr(compression_model, "get_left_right_codes")
        if getattr(compression_model, "per_timestep", False):
            raise StreamingError("per-timestep stereo interleaving is not supported")
        self._mono = compression_model.model if self._stereo else compression_model
        self._stages = _stages(self._mono.decoder)
        self.chunk_frames = chunk_frames or round(0.8 * float(compression_model.frame_rate))
        self._pending: list[torch.Tensor] = []
        self.pushed_frames = self.emitted_samples = 0
        self.flushed = False

    def prime(self, frames: torch.Tensor) -> None:
        """Feed context frames ``[B, K, T]`` (a continuation prompt) whose audio is not wanted; call first."""
        if self.pushed_frames:
            raise ValueError("prime() must come before push()")
        self._stages[-1].skip(frames.shape[-1])
        self._decode(frames, final=False)

    def push(self, frames: torch.Tensor) -> AudioChunk | None:
        """Add complete frames ``[B, K, t]`` in time order; a chunk once ``chunk_frames`` are pending."""
        if self.flushed:
            raise StreamingError("frames arrived after the end of the stream")
        self._pending.append(frames)
        self.pushed_frames += frames.shape[-1]
        ready = sum(pending.shape[-1] for pending in self._pending) >= self.chunk_frames
        return self._take(final=False) if ready else None

    def flush(self) -> AudioChunk | None:
        """Decode everything left against the true end of the stream, which this call declares."""
        self.flushed = True
        return self._take(final=True)

    def _take(self, final: bool) -> AudioChunk | None:
        import torch

        codes, self._pending = (torch.cat(self._pending, dim=-1) if self._pending else None), []
        return self._decode(codes, final)

    def _decode(self, codes: torch.Tensor | None, final: bool) -> AudioChunk | None:
        """RVQ-decode codes ``[B, K, t]`` and run every stage; the new audio as a chunk, if any."""
        import torch

        device = next(self._codec.parameters()).device
        # Autocast off: audiocraft samples under fp16 autocast on GPU but decodes outside it.
        with torch.no_grad(), torch.autocast(device_type=device.type, enabled=False):
            x = None if codes is None else self._latent(codes)
            for stage in self._stages:
                x = stage.push(x, final)
        if x is None or x.shape[-1] == 0:
            return None
        if self._stereo:
            x = torch.cat([x[: x.shape[0] // 2], x[x.shape[0] // 2:]], dim=1)
        if x.shape[0] != 1:
            raise ValueError("preview chunks need a batch of one")
        chunk = AudioChunk(self.emitted_samples, x[0].float().cpu().numpy())
        self.emitted_samples += x.shape[-1]
        return chunk

    def _latent(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, t]`` to the latent ``[B, D, t]`` (stereo: ``[2B, D, t]``, left first)."""
        import torch

        if self._stereo:
            codes = torch.cat(self._codec.get_left_right_codes(codes), dim=0)
        return self._mono.decode_latent(codes)


#: Frames decoded at a time by :func:`decode_in_windows` (30 s): memory then does not grow with the length.
DECODE_WINDOW_FRAMES = 1500


def decode_in_windows(compression_model: Any, codes: torch.Tensor,
                      window_frames: int = DECODE_WINDOW_FRAMES) -> torch.Tensor:
    """The codec's decode of ``codes`` ``[B, K, T]`` as ``[B, C, T * hop]``, computed 30 s at a time.

    audiocraft decodes a long-form job's whole token stream at once, and the decoder's activations grow
    with its length (about 1.3 GB more for 300 s than for 30 s with the tiny test codec). The exact
    incremental decoder gives the same audio with activations bounded by one window. It holds one take's
    state, so the takes of a batch are decoded one after another.
    """
    import torch

    if codes.shape[0] > 1:
        return torch.cat([decode_in_windows(compression_model, codes[row:row + 1], window_frames)
                          for row in range(codes.shape[0])])

    decoder = IncrementalDecoder(compression_model, chunk_frames=window_frames)
    pieces = [chunk.samples for start in range(0, codes.shape[-1], window_frames)
              if (chunk := decoder.push(codes[..., start:start + window_frames])) is not None]
    if (last := decoder.flush()) is not None:
        pieces.append(last.samples)
    device = next(compression_model.parameters()).device
    return torch.from_numpy(np.concatenate(pieces, axis=-1)).to(device)[None]


class PreviewStream:
    """A :class:`TokenSink` that decodes frames as they complete and passes each chunk to ``on_chunk``.

    ``end_frame`` (the job's total frames, prompt included: ``int(duration * frame_rate)``) lets the last
    chunk go out with the last frame, before audiocraft's final decode; otherwise :meth:`finish` sends it.
    """

    def __init__(self, compression_model: Any, on_chunk: Callable[[AudioChunk], None],
                 chunk_frames: int | None = None, end_frame: int | None = None) -> None:
        self.decoder = IncrementalDecoder(compression_model, chunk_frames)
        self._on_chunk, self._end_frame = on_chunk, end_frame
        self.prompt_frames = 0

    def on_prompt(self, frames: torch.Tensor) -> None:
        """Prime the decoder with the continuation prompt (not previewed)."""
        self.prompt_frames = frames.shape[-1]
        self.decoder.prime(frames)

    def on_frames(self, frames: torch.Tensor) -> None:
        """Decode new frames; hand out a chunk when one is ready (and the rest at ``end_frame``)."""
        self._send(self.decoder.push(frames))
        if self.prompt_frames + self.decoder.pushed_frames == self._end_frame:
            self.finish()

    def finish(self) -> None:
        """Decode and hand out the rest; call after the generation returned (a no-op the second time)."""
        if not self.decoder.flushed:
            self._send(self.decoder.flush())

    def _send(self, chunk: AudioChunk | None) -> None:
        if chunk is not None:
            self._on_chunk(chunk)
