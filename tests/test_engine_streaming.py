"""Listen-while-generating on the tiny offline models: the token tap and the exact incremental decoder.

Every generation runs audiocraft's real loop with the tap installed and checks three things against what
audiocraft itself returns: the sink saw every token once, in order, as soon as its frame was complete; the
preview chunks concatenate to the final decode of the new audio; chunks are 0.5-1 s except the last.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pytest

from audiocraft_webui.engines.codecstream import AudioChunk, IncrementalDecoder, PreviewStream
from audiocraft_webui.engines.tokentap import StreamingError, tap_tokens

TOLERANCE = 1e-3  # max abs difference between the preview and the final decode
MIN_CHUNK, MAX_CHUNK = 16000, 32000  # 0.5 s and 1 s at 32 kHz


class Recorder(PreviewStream):
    """A PreviewStream that also records what the tap handed it and how many steps had run by then."""

    def __init__(self, model, chunks: list[AudioChunk], end_frame: int) -> None:
        super().__init__(model.compression_model, chunks.append, end_frame=end_frame)
        self.prompts: list = []
        self.frames: list = []
        self.steps_at_frames: list[int] = []
        self.steps = 0

    def on_prompt(self, frames) -> None:
        self.prompts.append(frames.clone())
        super().on_prompt(frames)

    def on_frames(self, frames) -> None:
        self.frames.append(frames.clone())
        self.steps_at_frames.append(self.steps)
        super().on_frames(frames)

    def count_step(self, _generated: int, _total: int) -> None:
        """audiocraft's progress callback: called once per decoding step, after the step's tokens."""
        self.steps += 1


@dataclass
class Run:
    """One generation with the tap: audiocraft's own outputs next to what the sink received."""

    model: object
    audio: np.ndarray  # final decode [C, T], prompt included
    tokens: object  # [1, K, T] as returned with return_tokens=True
    stream: Recorder
    windows: int
    chunks: list[AudioChunk] = field(default_factory=list)


def noise(seconds: float, channels: int = 1):
    """Reproducible quiet noise ``[1, C, T]`` at 32 kHz for melody and continuation prompts."""
    import torch

    generator = torch.Generator().manual_seed(7)
    return 0.1 * torch.randn(1, channels, int(seconds * 32000), generator=generator)


def generate(model, kind: str, duration: float, extend_stride: float = 18.0) -> Run:
    """Generate ``duration`` s of ``kind`` (text / melody / continuation) with the tap and a preview."""
    import torch

    model.set_generation_params(duration=duration, extend_stride=extend_stride, top_k=250, cfg_coef=3.0)
    chunks: list[AudioChunk] = []
    stream = Recorder(model, chunks, end_frame=int(duration * model.frame_rate))
    model.set_custom_progress_callback(stream.count_step)
    torch.manual_seed(0)
    try:
        with tap_tokens(model, stream) as tap:
            if kind == "text":
                audio, tokens = model.generate(["lofi"], progress=True, return_tokens=True)
            elif kind == "melody":
                audio, tokens = model.generate_with_chroma(["lofi"], noise(2.0), 32000, progress=True,
                                                           return_tokens=True)
            else:
                audio, tokens = model.generate_continuation(noise(1.0), 32000, ["lofi"], progress=True,
                                                            return_tokens=True)
    finally:
        model.set_custom_progress_callback(None)
    return Run(model, audio[0].numpy(), tokens, stream, tap.windows, chunks)


def check_tokens(run: Run) -> int:
    """The sink got the prompt (if any) then every new token exactly once, in order; returns prompt frames."""
    import torch

    prompt = run.stream.prompts[0].shape[-1] if run.stream.prompts else 0
    assert len(run.stream.prompts) <= 1
    if prompt:
        assert torch.equal(run.stream.prompts[0], run.tokens[..., :prompt])
    assert torch.equal(torch.cat(run.stream.frames, dim=-1), run.tokens[..., prompt:])
    return prompt


def check_preview(run: Run, prompt: int) -> float:
    """Chunks are contiguous, 0.5-1 s but the last, all out before generate returned, equal to the final."""
    hop = run.model.sample_rate // run.model.frame_rate
    assert run.stream.decoder.flushed  # end_frame sent the last chunk with the last frame
    sizes = [chunk.samples.shape[-1] for chunk in run.chunks]
    assert len(sizes) >= 2 and all(MIN_CHUNK <= size <= MAX_CHUNK for size in sizes[:-1]), sizes
    assert [chunk.start for chunk in run.chunks] == [sum(sizes[:i]) for i in range(len(sizes))]
    assert all(chunk.samples.dtype == np.float32 for chunk in run.chunks)
    preview = np.concatenate([chunk.samples for chunk in run.chunks], axis=-1)
    expected = run.audio[..., prompt * hop:]
    assert preview.shape == expected.shape and expected.shape[-1] == (run.tokens.shape[-1] - prompt) * hop
    error = float(np.abs(preview - expected).max())
    assert error <= TOLERANCE and np.abs(expected).max() > 0
    return error


@pytest.mark.parametrize("name,kind", [("small", "text"), ("stereo-small", "text"), ("melody", "melody"),
                                       ("stereo-melody", "melody"), ("small", "continuation"),
                                       ("stereo-small", "continuation")])
def test_preview_equals_final_decode_and_tokens_arrive_once_as_frames_complete(models, name, kind):
    model = models(name)
    run = generate(model, kind, duration=2.5 if kind == "continuation" else 2.0)
    prompt = check_tokens(run)
    assert run.windows == 1 and (prompt == 50) == (kind == "continuation")
    assert run.audio.shape[0] == (2 if name.startswith("stereo") else 1)
    # One frame per step, frame i (after the prompt) as soon as its most delayed codebook is sampled.
    max_delay = max(model.lm.pattern_provider.delays)
    assert [frames.shape[-1] for frames in run.stream.frames] == [1] * len(run.stream.frames)
    assert run.stream.steps_at_frames == [i + max_delay for i in range(len(run.stream.frames))]
    check_preview(run, prompt)


def test_long_form_preview_carries_across_windows_without_repeating_the_overlap(models):
    # 31 s: a 30 s window, then one re-generated from its last 12 s that adds the final second.
    run = generate(models("small"), "text", duration=31.0, extend_stride=18.0)
    assert run.windows == 2 and run.tokens.shape[-1] == 31 * 50
    assert check_tokens(run) == 0
    check_preview(run, 0)


def test_preview_is_decoded_outside_the_lms_autocast(models, monkeypatch):
    # On a GPU audiocraft samples under fp16 autocast but decodes outside it; bf16 autocast on the CPU
    # stands in here. A preview decoded under the LM's autocast would be about 3e-3 off.
    import torch
    from audiocraft.utils.autocast import TorchAutocast

    model = models("small")
    autocast = TorchAutocast(enabled=True, device_type="cpu", dtype=torch.bfloat16)
    monkeypatch.setattr(model, "autocast", autocast)
    run = generate(model, "text", duration=2.0)
    check_preview(run, check_tokens(run))


def test_real_size_codec_with_lstm_decodes_incrementally_exactly():
    """MusicGen's real 32 kHz EnCodec decoder (2-layer LSTM, random weights) against its one-shot decode."""
    import torch
    from audiocraft.models.encodec import EncodecModel
    from audiocraft.modules.seanet import SEANetDecoder, SEANetEncoder
    from audiocraft.quantization import ResidualVectorQuantizer

    seanet = {"dimension": 128, "n_residual_layers": 1, "ratios": [8, 5, 4, 4], "norm": "weight_norm",
              "pad_mode": "constant", "true_skip": True, "compress": 2}
    torch.manual_seed(0)
    codec = EncodecModel(SEANetEncoder(n_filters=4, **seanet), SEANetDecoder(n_filters=64, lstm=2, **seanet),
                         ResidualVectorQuantizer(dimension=128, n_q=4, bins=2048, kmeans_init=False),
                         frame_rate=50, sample_rate=32000, channels=1).eval()
    # A random LSTM forgets within a few frames; a forget-gate bias of 3 gives it a long memory, so a
    # decoder that dropped its (h, c) between chunks would be off by about 0.01 here.
    with torch.no_grad():
        for name, bias in codec.decoder.model[1].lstm.named_parameters():
            if name.startswith("bias_ih"):
                bias[bias.shape[0] // 4:bias.shape[0] // 2] = 3.0
    codes = torch.randint(0, 2048, (1, 4, 90), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = codec.decode(codes)[0].numpy()
    decoder = IncrementalDecoder(codec, chunk_frames=25)
    decoder.prime(codes[..., :20])
    chunks = [decoder.push(codes[..., t:t + 1]) for t in range(20, 90)] + [decoder.flush()]
    preview = np.concatenate([chunk.samples for chunk in chunks if chunk is not None], axis=-1)
    assert preview.shape == full[..., 20 * 640:].shape
    assert np.abs(preview - full[..., 20 * 640:]).max() <= TOLERANCE and np.abs(full).max() > 0


def test_the_tap_is_removed_after_the_block_even_when_the_sink_fails(models):
    model = models("small")
    model.set_generation_params(duration=0.5)

    class Failing:
        def on_prompt(self, frames) -> None:
            pass

        def on_frames(self, frames) -> None:
            raise KeyError("sink failed")

    with pytest.raises(KeyError), tap_tokens(model, Failing()):
        with pytest.raises(StreamingError), tap_tokens(model, Failing()):
            pass  # a second tap on the same model is refused
        model.generate(["lofi"])
    assert "generate" not in vars(model.lm) and "_sample_next_token" not in vars(model.lm)


def test_a_changed_audiocraft_loop_fails_loudly(models, monkeypatch):
    model = models("small")
    model.set_generation_params(duration=0.5)
    lm_class = type(model.lm)
    original = lm_class.generate

    @functools.wraps(original)
    def reordering_generate(self, *args, **kwargs):
        return original(self, *args, **kwargs).flip(-1)  # tokens no longer what the steps sampled

    monkeypatch.setattr(lm_class, "generate", reordering_generate)
    with pytest.raises(StreamingError, match="differ"), tap_tokens(model, PreviewStream(
            model.compression_model, lambda chunk: None)):
        model.generate(["lofi"])


def test_an_unknown_codec_decoder_is_refused():
    from types import SimpleNamespace

    from torch import nn

    codec = SimpleNamespace(frame_rate=50, decoder=SimpleNamespace(model=nn.Sequential(nn.Conv1d(1, 1, 3))))
    with pytest.raises(StreamingError, match="Conv1d"):
        IncrementalDecoder(codec)


@pytest.mark.parametrize("name", ["small", "stereo-small"])
def test_the_final_decode_window_by_window_equals_audiocrafts_one_shot_decode(models, name):
    """Long-form jobs are decoded 30 s at a time (bounded memory); the audio is the same as one decode."""
    import torch

    from audiocraft_webui.engines.codecstream import decode_in_windows

    model = models(name)
    model.set_generation_params(duration=3)
    torch.manual_seed(3)
    _, tokens = model.generate(["windows"], return_tokens=True)
    one_shot = model.compression_model.decode(tokens, None)
    windowed = decode_in_windows(model.compression_model, tokens, window_frames=40)
    assert windowed.shape == one_shot.shape
    assert (windowed - one_shot).abs().max().item() <= TOLERANCE
