"""Decode loops side by side: audiocraft's eager loop against the app's static loop at each weight precision.

``python -m benchmarks --only decoders`` (CPU profile: the real musicgen-small architecture, random weights)
runs this module in a child process on the profile's hub and reports, in one run:

* **speed**: seconds per second of audio of the token loop alone (``MusicGen._generate_tokens``: T5 once,
  then one step per pattern position; the codec decode is the same for every setting and left out) for
  audiocraft's loop in fp32 and the static loop in fp32, bf16 and int8, interleaved in rotating order, each
  as a ratio to audiocraft's fp32 loop;
* **quality**: the mean KL divergence from fp32 of the next-token distributions (CFG 3, temperature 1, the
  whole vocabulary) over fixed prompts and fixed prefixes, teacher-forced: the reference is audiocraft's
  own ``LMModel.forward`` in fp32 on the whole prefix, each precision runs the static loop step by step on
  the same prefix. fp16 weights (as audiocraft loads the LM on CUDA) and a temperature change of one step of
  the UI's slider (0.01) are measured the same way, as yardsticks for the bound in docs/PERFORMANCE.md;
* **memory**: the weight bytes of each precision, and the static cache of a 30 s window for the released
  small, medium and large shapes (computed from the architecture).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from audiocraft_webui.engines.decoding import DEFAULT_CPU_WEIGHTS

from .hubs import offline_env
from .procs import BenchError, answer_channel, log_tail
from .profiles import Profile

PROMPTS = ("lofi hip hop beat with mellow piano and soft drums", "epic orchestral trailer with choir",
           "funky bass line with slap and wah guitar", "ambient drone with field recordings")
#: (loop, weights) in the order of the speed table; audiocraft's fp32 loop is the reference.
SETTINGS = (("audiocraft", "fp32"), ("static", "fp32"), ("static", "bf16"), ("static", "int8"))
QUALITY_WEIGHTS = ("fp32", "bf16", "fp16", "int8")
TOP_K, CFG, SEED = 250, 3.0, 1234
#: One step of the UI's temperature slider (static/js/settings.js, FLOAT_STEP): the smallest change a user can
#: choose, the yardstick of the default precision's bound (docs/PERFORMANCE.md).
TEMPERATURE_STEP = 0.01
FRAME_RATE = 50
WINDOW_SECONDS = 30


def load(model_key: str, device: str):
    """A MusicGen from the hub, loaded as the app loads it."""
    from audiocraft.models import MusicGen

    from audiocraft_webui import compat

    with compat.checkpoint_globals():
        return MusicGen.get_pretrained(f"facebook/musicgen-{model_key}", device=device)


def timed_tokens(model, decoder, seconds: float, seed: int = SEED) -> tuple[float, object]:
    """Generate ``seconds`` of tokens for the first prompt with ``decoder`` (None: audiocraft's loop).

    Returns:
        ``(wall seconds of the token loop, codes [1, K, T])``.
    """
    import torch

    from audiocraft_webui.engines.decoder import installed

    model.set_generation_params(duration=seconds, top_k=TOP_K, temperature=1.0, cfg_coef=CFG)
    attributes, _ = model._prepare_tokens_and_attributes([PROMPTS[0]], None)
    torch.manual_seed(seed)
    with installed(decoder, model, None) if decoder is not None else contextlib.nullcontext():
        started = time.perf_counter()
        tokens = model._generate_tokens(attributes, None)
        if tokens.is_cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - started, tokens


def speed(model, decoders: dict, seconds: float, reps: int) -> dict:
    """Every setting ``reps`` times in rotating order after one warm-up each; medians and ratios to eager fp32."""
    runs: dict[str, list[float]] = {f"{loop} {weights}": [] for loop, weights in SETTINGS}
    for loop, weights in SETTINGS:
        timed_tokens(model, decoders.get((loop, weights)), 1)
    for rep in range(reps):
        order = SETTINGS[rep % len(SETTINGS):] + SETTINGS[:rep % len(SETTINGS)]
        for loop, weights in order:
            runs[f"{loop} {weights}"].append(timed_tokens(model, decoders.get((loop, weights)), seconds)[0])
    reference = statistics.median(runs["audiocraft fp32"])
    return {name: {"seconds": [round(value, 3) for value in values],
                   "seconds_per_audio_second": round(statistics.median(values) / seconds, 3),
                   "speedup": round(reference / statistics.median(values), 3)} for name, values in runs.items()}


def reference_logits(model, codes, conditions):
    """audiocraft's fp32 ``LMModel.forward`` on the whole pattern sequence of ``codes``: ``[2, K, S, card]``."""
    import torch

    lm = model.lm
    sequence, _, _ = lm.pattern_provider.get_pattern(codes.shape[-1]).build_pattern_sequence(codes,
                                                                                             lm.special_token_id)
    with torch.no_grad():
        return sequence, lm(torch.cat([sequence, sequence]), conditions=[], condition_tensors=conditions)


def forced_logits(decoder, attributes, sequence, frames: int):
    """The static loop's logits ``[steps, 2, K, card]`` with every step fed the reference ``sequence``."""
    import torch

    from audiocraft_webui.engines.sampling import Sampling

    window = decoder.open(None, attributes, frames, Sampling(True, 1.0, TOP_K, 0.0, CFG))
    window.sequence.copy_(sequence)  # filled positions are never overwritten: the steps read the reference
    collected = []
    with torch.no_grad():
        for _ in range(window.steps):
            window.step(window.position + 1, False)
            window.done += 1
            collected.append(window.logits.clone())
    decoder.release()
    return window.start, window.valid, torch.stack(collected)


def kl_per_position(reference, other, valid, temperature: float = 1.0, other_temperature: float = 1.0):
    """Mean KL(reference || other) over valid (codebook, step) pairs of CFG-mixed logits ``[steps, 2, K, card]``."""
    import torch

    from audiocraft_webui.engines.sampling import guided

    def log_probs(logits, temp):
        mixed = torch.stack([guided(step, 1, CFG) for step in logits])[:, 0]  # [steps, K, card]
        return torch.log_softmax(mixed.float() / temp, dim=-1)

    p, q = log_probs(reference, temperature), log_probs(other, other_temperature)
    kl = (p.exp() * (p - q)).sum(-1)  # [steps, K]
    entropy = -(p.exp() * p).sum(-1)
    mask = valid.T  # [steps, K]
    return kl[mask].mean().item(), entropy[mask].mean().item()


def quality(model, frames: int) -> dict:
    """Mean KL from fp32 per precision (and the yardsticks) over :data:`PROMPTS`, teacher-forced."""
    import torch

    from audiocraft_webui.engines.decoder import StaticDecoder
    from audiocraft_webui.engines.sampling import Sampling

    decoders = {weights: StaticDecoder(model.lm, weights) for weights in QUALITY_WEIGHTS}
    kls: dict[str, list[float]] = {weights: [] for weights in (*QUALITY_WEIGHTS, "temperature_step")}
    entropies = []
    for number, prompt in enumerate(PROMPTS):
        attributes, _ = model._prepare_tokens_and_attributes([prompt], None)
        torch.manual_seed(SEED + number)
        window = decoders["fp32"].open(None, attributes, frames, Sampling(True, 1.0, TOP_K, 0.0, CFG))
        with torch.no_grad():
            for _ in range(window.steps):
                window.step(window.position + 1, False)
                window.done += 1
        codes = window.codes(False)
        sequence, logits = reference_logits(model, codes, window.condition_tensors)
        for weights, decoder in decoders.items():
            start, valid, forced = forced_logits(decoder, attributes, sequence, frames)
            reference = logits[:, :, start - 1:start - 1 + forced.shape[0]].permute(2, 0, 1, 3)
            kl, entropy = kl_per_position(reference, forced, valid[:, start:])
            kls[weights].append(kl)
            if weights == "fp32":
                entropies.append(entropy)
                kls["temperature_step"].append(kl_per_position(reference, reference, valid[:, start:], 1.0,
                                                               1.0 + TEMPERATURE_STEP)[0])
    return {"prompts": len(PROMPTS), "frames": frames, "mean_entropy_nats": round(statistics.mean(entropies), 3),
            "mean_kl_nats": {name: float(f"{statistics.mean(values):.3g}") for name, values in kls.items()}}


def memory(decoders: dict) -> dict:
    """Weight bytes per precision, and the 30 s window's static cache of the released shapes."""
    from audiocraft_webui.engines.precision import weight_bytes
    from audiocraft_webui.engines.staticlm import cache_bytes
    from tools.tinyhub import LM_SCALES

    window = WINDOW_SECONDS * FRAME_RATE + 3  # the delay pattern's positions after the first, 4 codebooks
    caches = {scale: {"layers": shape["num_layers"], "dim": shape["dim"], "positions": window,
                      "fp16_mb": round(cache_bytes(shape["num_layers"], shape["dim"], window) / 2**20, 1),
                      "fp32_mb": round(cache_bytes(shape["num_layers"], shape["dim"], window,
                                                   element_bytes=4) / 2**20, 1)}
              for scale, shape in LM_SCALES.items() if scale != "tiny"}
    weights = {f"static {weights}": round(weight_bytes(decoder.net) / 2**20, 1)
               for (loop, weights), decoder in decoders.items() if loop == "static"}
    return {"weights_mb": weights, "cache_30s_window": caches}


def measure(model_key: str, device: str, seconds: float, reps: int, frames: int) -> dict:
    """Speed, quality and memory for one model (child process)."""
    import torch

    from audiocraft_webui import compat
    from audiocraft_webui.engines.decoder import StaticDecoder

    compat.install()
    model = load(model_key, device)
    decoders = {(loop, weights): StaticDecoder(model.lm, weights) for loop, weights in SETTINGS if loop == "static"}
    speeds = speed(model, decoders, seconds, reps)
    return {"model": model_key, "device": device, "torch_threads": torch.get_num_threads(),
            "audio_seconds": seconds, "reps": reps, "speed": speeds, "default_weights": DEFAULT_CPU_WEIGHTS,
            "default_speedup": speeds[f"static {DEFAULT_CPU_WEIGHTS}"]["speedup"],
            "quality": quality(model, frames), "memory": memory(decoders)}


def run(hub: Path, work: Path, profile: Profile) -> dict:
    """The decoders section, measured in a child process on ``hub`` (HF_HOME must be set before the imports)."""
    log = work / "decoders.log"
    assert profile.decoders is not None
    model, seconds, reps, frames = profile.decoders
    command = [sys.executable, "-m", __name__, "--device", profile.device, "--model", model, "--seconds",
               str(seconds), "--reps", str(reps), "--frames", str(frames), "--threads", str(profile.decoders_threads)]
    with log.open("ab") as err:
        answer = subprocess.run(command, env=offline_env(hub), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, text=True, check=False)
    if answer.returncode != 0:
        raise BenchError(f"the decode loop comparison failed:\n{log_tail(log)}")
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Child-process entry point: print the decoders section as one JSON line."""
    import torch

    parser = argparse.ArgumentParser(prog="python -m benchmarks.decoders")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="small")
    parser.add_argument("--seconds", type=float, default=3.0, help="audio per timed generation")
    parser.add_argument("--reps", type=int, default=2, help="timed generations per setting")
    parser.add_argument("--frames", type=int, default=50, help="frames per prompt of the quality prefixes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    answers = answer_channel()
    answers.write(json.dumps(measure(args.model, args.device, args.seconds, args.reps, args.frames)) + "\n")
    answers.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
