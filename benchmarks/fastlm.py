"""MusicGen decoding with a static KV cache, replayable as one CUDA graph per step (the ``--gpu`` fast path).

audiocraft's ``LMModel.generate`` grows each layer's key/value cache with ``torch.cat`` and launches
several hundred small kernels per step from eager Python, so at batch 2 (one prompt with CFG) the
GPU mostly waits for the CPU (launch overhead: docs/PERFORMANCE.md). :class:`StaticDecoder` runs the same
network on the same weights with every shape fixed in advance:

* self-attention keys and values live in preallocated ``[2B, heads, steps, head_dim]`` buffers, the
  step writes its own column and attends to all columns through an additive mask;
* the cross-attention keys and values of the text condition are projected once per generation;
* the step reads its input column of the delay-pattern sequence, runs the layers, mixes conditional
  and unconditional logits (CFG), samples top-k and writes the next column, all on the device, so on
  CUDA the whole step is captured once and replayed with ``CUDAGraph.replay()``.

Sampling draws with the exponential-race form of the categorical distribution (``argmax(p / E)``,
``E ~ Exp(1)``): the same distribution as ``torch.multinomial``, but capturable in a graph, so tokens
differ from audiocraft's for the same seed while the logits are the same (tests/test_bench.py checks
them against ``LMModel.forward``). Supported: text-conditioned models (cross-attention, sinusoidal
positions, pre-norm layers, the custom attention path audiocraft uses for MusicGen); anything else
raises ``NotImplementedError``. It is measured by the GPU benchmark only; the app still decodes with
audiocraft.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from audiocraft.modules.transformer import create_sin_embedding

UNKNOWN_TOKEN = -1


def check_supported(lm) -> None:
    """Refuse LM configurations the static step does not reproduce exactly."""
    transformer = lm.transformer
    problems = []
    if transformer.positional_embedding != "sin":
        problems.append(f"positional embedding {transformer.positional_embedding!r}")
    if list(lm.fuser.fuse2cond.get("prepend", [])) or list(lm.fuser.fuse2cond.get("sum", [])):
        problems.append("prepended or summed conditions (melody models)")
    if getattr(lm.fuser, "cross_attention_pos_emb", False):
        problems.append("cross-attention positional embedding")
    for layer in transformer.layers:
        attention = layer.self_attn
        if not layer.norm_first or layer.cross_attention is None:
            problems.append("post-norm layers or no cross-attention")
        if not attention.custom or attention.rope is not None or attention.kv_repeat != 1:
            problems.append("attention other than audiocraft's custom MHA without rope")
        if attention.qk_layer_norm or attention.past_context is not None or attention.attention_as_float32:
            problems.append("qk layer norm, limited past context or float32 attention")
    if lm.two_step_cfg:
        problems.append("two-step CFG")
    if problems:
        raise NotImplementedError("static decoding does not support " + ", ".join(sorted(set(problems))))


class StaticDecoder:
    """Decode ``frames`` codec frames for ``batch`` prompts with CFG, every tensor allocated up front.

    Args:
        lm: audiocraft's ``LMModel`` (eval mode, on its device and dtype).
        condition_tensors: the CFG condition tensors, conditional rows first then unconditional ones,
            as ``LMModel.generate`` builds them (``condition_provider(tokenize(conds + null_conds))``).
        frames: codec frames to generate (50 per second).
        temperature, top_k, cfg_coef: sampling as in ``LMModel.generate`` (top-k sampling only).
    """

    def __init__(self, lm, condition_tensors: dict, frames: int, *, temperature: float = 1.0, top_k: int = 250,
                 cfg_coef: float = 3.0) -> None:
        check_supported(lm)
        self.lm = lm
        self.temperature = temperature
        self.top_k = top_k
        self.cfg_coef = cfg_coef
        parameter = next(lm.parameters())
        device, dtype = parameter.device, parameter.dtype
        pattern = lm.pattern_provider.get_pattern(frames)
        self.pattern = pattern
        self.frames = frames
        codes = torch.full((1, lm.num_codebooks, frames), UNKNOWN_TOKEN, dtype=torch.long, device=device)
        sequence, _, mask = pattern.build_pattern_sequence(codes, lm.special_token_id)
        self.start = pattern.get_first_step_with_timesteps(0)
        self.initial = sequence
        self.sequence = sequence.clone()
        self.valid = mask.to(device)  # [K, S]: which pattern positions hold a real token
        self.length = sequence.shape[-1]
        self.offset = torch.tensor([self.start], dtype=torch.long, device=device)
        cross = lm.fuser(torch.zeros(1, 1, lm.dim, device=device, dtype=dtype), condition_tensors)[1]
        self.rows = cross.shape[0]  # 2 x batch: conditional then unconditional
        self.cross_kv = [self._cross_keys_values(layer, cross) for layer in lm.transformer.layers]
        heads = lm.transformer.layers[0].self_attn.num_heads
        shape = (self.rows, heads, self.length, lm.dim // heads)
        # Zeros, not empty: masked columns still enter the attention product and must be finite.
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in lm.transformer.layers]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in lm.transformer.layers]
        self.positions = torch.arange(self.length, device=device)
        self.logits = torch.zeros(self.rows, lm.num_codebooks, lm.card, device=device, dtype=torch.float32)
        self.graph: torch.cuda.CUDAGraph | None = None

    @staticmethod
    def _cross_keys_values(layer, cross: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project the condition once into one layer's cross-attention keys and values ``[rows, H, T, d]``."""
        attention = layer.cross_attention
        dim = attention.embed_dim
        weight, bias = attention.in_proj_weight, attention.in_proj_bias
        keys = F.linear(cross, weight[dim:2 * dim], None if bias is None else bias[dim:2 * dim])
        values = F.linear(cross, weight[2 * dim:], None if bias is None else bias[2 * dim:])
        return _heads(keys, attention.num_heads), _heads(values, attention.num_heads)

    def reset(self) -> None:
        """Start a new generation (same condition and length): empty sequence, offset at the first step."""
        self.sequence.copy_(self.initial)
        self.offset.fill_(self.start)

    @torch.no_grad()
    def step(self) -> None:
        """One decoding step, all on the device: read the previous column, write the next one."""
        lm = self.lm
        previous = self.sequence.index_select(2, self.offset - 1)  # [B, K, 1]
        tokens = previous.repeat(self.rows // previous.shape[0], 1, 1)
        x = sum(lm.emb[k](tokens[:, k]) for k in range(lm.num_codebooks))  # [rows, 1, D]
        position = self.offset - 1
        embedding = create_sin_embedding(position.view(1, 1, 1), lm.dim, max_period=lm.transformer.max_period,
                                         dtype=x.dtype)
        x = x + lm.transformer.positional_scale * embedding
        mask = torch.zeros(self.length, device=x.device, dtype=x.dtype).masked_fill(
            self.positions > position, float("-inf")).view(1, 1, 1, -1)
        for index, layer in enumerate(lm.transformer.layers):
            x = x + layer.layer_scale_1(self._self_attention(layer, layer.norm1(x), index, position, mask))
            x = x + layer.layer_scale_cross(self._cross_attention(layer, layer.norm_cross(x), index))
            x = x + layer.layer_scale_2(layer._ff_block(layer.norm2(x)))
        if lm.out_norm is not None:
            x = lm.out_norm(x)
        logits = torch.stack([lm.linears[k](x[:, 0]) for k in range(lm.num_codebooks)], dim=1).float()
        self.logits.copy_(logits)  # [rows, K, card]
        conditional, unconditional = logits.chunk(2)
        mixed = unconditional + (conditional - unconditional) * self.cfg_coef
        probs = torch.softmax(mixed / self.temperature, dim=-1)
        threshold = torch.topk(probs, self.top_k, dim=-1).values[..., -1:]
        probs = probs * (probs >= threshold)
        sampled = (probs / torch.empty_like(probs).exponential_()).argmax(-1, keepdim=True)  # [B, K, 1]
        sampled = torch.where(self.valid.index_select(1, self.offset)[None], sampled, lm.special_token_id)
        current = self.sequence.index_select(2, self.offset)
        self.sequence.index_copy_(2, self.offset, torch.where(current == UNKNOWN_TOKEN, sampled, current))
        self.offset.add_(1)

    def _self_attention(self, layer, x: torch.Tensor, index: int, position: torch.Tensor,
                        mask: torch.Tensor) -> torch.Tensor:
        """Causal self-attention of one new position against the static cache (written in place)."""
        attention = layer.self_attn
        projected = F.linear(x, attention.in_proj_weight, attention.in_proj_bias)
        query, key, value = (_heads(part, attention.num_heads) for part in projected.chunk(3, dim=-1))
        self.keys[index].index_copy_(2, position, key)
        self.values[index].index_copy_(2, position, value)
        out = F.scaled_dot_product_attention(query, self.keys[index], self.values[index], attn_mask=mask)
        return attention.out_proj(_merge(out))

    def _cross_attention(self, layer, x: torch.Tensor, index: int) -> torch.Tensor:
        """Attention of the new position over the (precomputed) condition keys and values."""
        attention = layer.cross_attention
        dim = attention.embed_dim
        bias = attention.in_proj_bias
        query = _heads(F.linear(x, attention.in_proj_weight[:dim], None if bias is None else bias[:dim]),
                       attention.num_heads)
        keys, values = self.cross_kv[index]
        return attention.out_proj(_merge(F.scaled_dot_product_attention(query, keys, values)))

    def capture(self) -> None:
        """Record one step as a CUDA graph (after two warm-up steps on a side stream), then reset."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.step()
        torch.cuda.current_stream().wait_stream(stream)
        self.reset()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.step()
        self.reset()

    def steps(self) -> int:
        """Decoding steps of one generation (one per pattern position after the first)."""
        return self.length - self.start

    @torch.no_grad()
    def generate(self) -> torch.Tensor:
        """Run a whole generation (graph replays when captured) and return the codes ``[B, K, frames]``."""
        self.reset()
        for _ in range(self.steps()):
            if self.graph is not None:
                self.graph.replay()
            else:
                self.step()
        codes, _, _ = self.pattern.revert_pattern_sequence(self.sequence, special_token=UNKNOWN_TOKEN)
        return codes[..., :self.frames]


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, T, H*d]`` -> ``[B, H, T, d]``."""
    batch, time, width = x.shape
    return x.view(batch, time, heads, width // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """``[B, H, T, d]`` -> ``[B, T, H*d]``."""
    batch, heads, time, width = x.shape
    return x.transpose(1, 2).reshape(batch, time, heads * width)


def cfg_condition_tensors(model, prompt: str) -> dict:
    """The CFG condition tensors of one text prompt, built as ``LMModel.generate`` builds them."""
    from audiocraft.modules.conditioners import ClassifierFreeGuidanceDropout

    attributes, _ = model._prepare_tokens_and_attributes([prompt], None)
    null = ClassifierFreeGuidanceDropout(p=1.0)(attributes)
    provider = model.lm.condition_provider
    with torch.no_grad():
        return provider(provider.tokenize(attributes + null))
