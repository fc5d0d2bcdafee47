"""GPU figures for ``--gpu``: decode speed against the memory-bandwidth floor, Multi-Band Diffusion, htdemucs.

* Decode: random-weight musicgen-small and -medium (real architecture, loaded by audiocraft's own loader,
  fp16 on CUDA) generate 10 s with CFG (batch 1, effective 2). Steps per second come from the token loop
  alone (``_generate_tokens``: T5 once, then one step per frame); the floor per step is the LM's weight
  bytes over the GPU's memory bandwidth (docs/PERFORMANCE.md, "GPU run"), so ``percent_of_limit`` = floor ÷ measured.
  The same generation runs through audiocraft's eager loop and through the app's static loop
  (:mod:`audiocraft_webui.engines.decoder`), without (``static_cache``) and with CUDA graphs (``cuda_graph``),
  side by side in one process, each with its speed-up over the eager loop.
* MBD: four real-size diffusion U-Nets (audiocraft's ``score/basic`` model, 20 sampling steps each) on
  the small model's codec, decoding the tokens just generated.
* htdemucs: the released architecture from the hub, its load time apart from a 30 s stereo separation.

It runs in a child process (``python -m benchmarks.gpu``) that prints one JSON object, so
the GPU is free again before the app scenarios start. ``--device cpu`` runs the same code on a CPU
(slowly, with the tiny models: a check of the code path, not a figure).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .hubs import offline_env
from .procs import BenchError, answer_channel, log_tail
from .profiles import Profile

#: Published memory bandwidth in GB/s by a piece of the CUDA device name, most specific first
#: (H100 SXM reports itself as "H100 80GB HBM3").
BANDWIDTH_GB_S: tuple[tuple[str, float], ...] = (
    ("H200", 4800), ("GH200", 4000), ("H100 NVL", 3900), ("H100 PCIe", 2000), ("H100", 3350),
    ("A100-SXM4-80GB", 2039), ("A100 80GB PCIe", 1935), ("A100", 1555), ("L40S", 864), ("L40", 864),
    ("A10G", 600), ("A10", 600), ("L4", 300), ("RTX 4090", 1008), ("RTX 3090", 936), ("V100", 900), ("T4", 320),
)
PROMPT = "lofi hip hop beat with mellow piano and soft drums"
FRAME_RATE = 50
DECODE_SECONDS = 10
STEM_SECONDS = 30
#: Real Multi-Band Diffusion: four bands of audiocraft's ``score/basic`` U-Net on the 128-dim 32 kHz codec.
MBD_BANDS = 4
MBD_UNET = {"hidden": 48, "depth": 4, "res_blocks": 1, "norm_groups": 4, "kernel": 8, "stride": 4, "growth": 4,
            "max_channels": 10_000, "dropout": 0.0, "emb_all_layers": True, "bilstm": False, "codec_dim": 128,
            "transformer": False, "cross_attention": False}
MBD_SCHEDULE = {"repartition": "power", "variable_step_batch": True, "beta_t0": 1.0e-5, "beta_t1": 2.9e-2,
                "beta_exp": 7.5, "num_steps": 1000, "variance": "beta", "clip": 5.0, "rescale": 1.0,
                "n_bands": None, "noise_scale": 1.0}


def table_bandwidth(name: str) -> float | None:
    """Published bandwidth (GB/s) of a device by its name; None when the table has no entry."""
    return next((value for key, value in BANDWIDTH_GB_S if key in name), None)


def timed(fn: Callable[[], object], device: str) -> tuple[float, object]:
    """Run ``fn`` and return (seconds, its result), synchronising the GPU before each clock read."""
    import torch

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    sync()
    started = time.perf_counter()
    result = fn()
    sync()
    return time.perf_counter() - started, result


def device_facts(device: str) -> dict:
    """The device's name, size, table bandwidth and a measured device-to-device copy bandwidth."""
    import torch

    buffer = torch.empty(256 * 1024 * 1024, dtype=torch.float32, device=device).uniform_()
    target = torch.empty_like(buffer)
    target.copy_(buffer)
    copies = 10
    seconds, _ = timed(lambda: [target.copy_(buffer) for _ in range(copies)], device)
    measured = 2 * buffer.numel() * buffer.element_size() * copies / seconds / 1e9
    if not device.startswith("cuda"):
        return {"name": "cpu", "measured_copy_gb_s": round(measured, 1), "table_gb_s": None}
    props = torch.cuda.get_device_properties(device)
    return {"name": props.name, "capability": f"{props.major}.{props.minor}", "multiprocessors":
            props.multi_processor_count, "memory_gb": round(props.total_memory / 1e9, 1),
            "table_gb_s": table_bandwidth(props.name), "measured_copy_gb_s": round(measured, 1),
            "torch": torch.__version__, "cuda": torch.version.cuda}


def decode_speed(model_key: str, device: str, bandwidth_gb_s: float, audio_seconds: int) -> tuple[dict, object]:
    """Steps per second of the token loop for one model, against the bandwidth floor: audiocraft's eager loop,
    then the app's static loop without and with CUDA graphs (the same ``_generate_tokens`` call).

    Returns:
        The section, and the loaded MusicGen (its tokens and codec feed the MBD timing).
    """
    from audiocraft_webui.engines.decoder import StaticDecoder

    load_seconds, model = timed(lambda: _load_musicgen(model_key, device), device)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.lm.parameters())
    floor = weight_bytes / (bandwidth_gb_s * 1e9)
    eager, generated = loop_speed(model, None, audio_seconds, device, floor)
    static = {name: loop_speed(model, StaticDecoder(model.lm, graphs=graphs), audio_seconds, device, floor)[0]
              for name, graphs in (("static_cache", False), ("cuda_graph", True))
              if not graphs or device.startswith("cuda")}
    for variant in static.values():
        variant["speedup_vs_eager"] = round(eager["seconds"] / variant["seconds"], 3)
    return {
        "model": model_key, "dtype": str(next(model.lm.parameters()).dtype).removeprefix("torch."),
        "lm_parameters_m": round(sum(p.numel() for p in model.lm.parameters()) / 1e6, 1),
        "weights_gb": round(weight_bytes / 1e9, 3), "load_s": round(load_seconds, 2),
        "audio_seconds": audio_seconds, "bandwidth_gb_s": bandwidth_gb_s, "floor_ms_per_step": round(floor * 1000, 4),
        **eager, "fast": static,
    }, (model, generated)


def loop_speed(model, decoder, audio_seconds: int, device: str, floor: float) -> tuple[dict, object]:
    """Time ``audio_seconds`` of the token loop (T5 once, then one step per pattern position) after a 1 s warm-up.

    ``decoder`` is the app's :class:`~audiocraft_webui.engines.decoder.StaticDecoder`, or None for audiocraft's
    own loop; either one calls the progress callback once per step.

    Returns:
        ``{steps, seconds, steps_per_second, ms_per_step, percent_of_limit, realtime_factor}`` and the codes.
    """
    from audiocraft_webui.engines.decoder import installed

    steps: list[int] = []
    model.set_custom_progress_callback(lambda generated, total: steps.append(generated))
    attributes, prompt = model._prepare_tokens_and_attributes([PROMPT], None)

    def tokens(seconds: float) -> object:
        steps.clear()
        model.set_generation_params(duration=seconds, top_k=250, temperature=1.0, cfg_coef=3.0)
        with installed(decoder, model, None) if decoder is not None else contextlib.nullcontext():
            return model._generate_tokens(attributes, prompt, progress=True)

    tokens(1)  # warm-up: allocator, kernels selection
    seconds, generated = timed(lambda: tokens(audio_seconds), device)
    model.set_custom_progress_callback(None)
    step_seconds = seconds / len(steps)
    return {"steps": len(steps), "seconds": round(seconds, 3), "steps_per_second": round(len(steps) / seconds, 1),
            "ms_per_step": round(step_seconds * 1000, 3), "percent_of_limit": round(100 * floor / step_seconds, 1),
            "realtime_factor": round(len(steps) / seconds / FRAME_RATE, 2)}, generated


def _load_musicgen(model_key: str, device: str):
    """Load a MusicGen from the hub exactly as the app's engine does."""
    from audiocraft.models import MusicGen

    from audiocraft_webui import compat

    with compat.checkpoint_globals():
        return MusicGen.get_pretrained(f"facebook/musicgen-{model_key}", device=device)


def mbd_speed(model, tokens, device: str) -> dict:
    """Seconds of Multi-Band Diffusion per second of audio, decoding ``tokens`` with real-size U-Nets."""
    import torch
    from audiocraft.models import builders
    from audiocraft.models.multibanddiffusion import DiffusionProcess, MultiBandDiffusion
    from audiocraft.modules.diffusion_schedule import NoiseSchedule
    from omegaconf import OmegaConf

    codec = model.compression_model
    cfg = OmegaConf.create({"channels": 1, "schedule": MBD_SCHEDULE,
                            "diffusion_unet": {**MBD_UNET, "codec_dim": codec.quantizer.dimension}})
    processes = [DiffusionProcess(model=builders.get_diffusion_model(cfg).to(device).eval(),
                                  noise_schedule=NoiseSchedule(**MBD_SCHEDULE, device=device))
                 for _ in range(MBD_BANDS)]
    mbd = MultiBandDiffusion(processes, codec)
    audio_seconds = tokens.shape[-1] / FRAME_RATE
    with torch.no_grad():
        mbd.tokens_to_wav(tokens[..., :FRAME_RATE])  # warm-up
        seconds, _ = timed(lambda: mbd.tokens_to_wav(tokens), device)
    return {"bands": MBD_BANDS, "unet": "score/basic (hidden 48, depth 4)", "audio_seconds": round(audio_seconds, 2),
            "seconds": round(seconds, 3), "seconds_per_audio_second": round(seconds / audio_seconds, 3),
            "processors": "identity (their cost is negligible)"}


def htdemucs_speed(device: str, audio_seconds: int) -> dict:
    """Load time of htdemucs from the hub, and the separation of ``audio_seconds`` of stereo (after a warm-up)."""
    import torch
    from demucs.apply import apply_model
    from demucs.pretrained import get_model

    load_seconds, model = timed(lambda: get_model("htdemucs").to(device).eval(), device)
    mix = torch.randn(1, 2, audio_seconds * model.samplerate, device=device) * 0.1
    with torch.no_grad():
        apply_model(model, mix[..., : 2 * model.samplerate], device=device, progress=False)
        seconds, _ = timed(lambda: apply_model(model, mix, device=device, progress=False), device)
    return {"model": "htdemucs", "load_s": round(load_seconds, 2), "audio_seconds": audio_seconds,
            "seconds": round(seconds, 3), "realtime_factor": round(audio_seconds / seconds, 1)}


def measure(device: str, models: list[str], audio_seconds: int = DECODE_SECONDS,
            stem_seconds: int = STEM_SECONDS) -> dict:
    """Every GPU figure (child process): device facts, decode per model, MBD, htdemucs."""
    import torch

    from audiocraft_webui import compat

    compat.install()
    facts = device_facts(device)
    bandwidth = facts["table_gb_s"] or facts["measured_copy_gb_s"]
    decode: dict = {}
    mbd: dict = {}
    for key in models:
        decode[key], (model, tokens) = decode_speed(key, device, bandwidth, audio_seconds)
        if not mbd:
            mbd = mbd_speed(model, tokens, device)
        del model, tokens
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return {"gpu_device": facts, "decode": decode, "mbd": mbd, "htdemucs": htdemucs_speed(device, stem_seconds)}


def run(hub: Path, work: Path, profile: Profile) -> tuple[str, dict]:
    """Measure in a child process on the hub; returns the device name and the result sections."""
    log = work / "gpu.log"
    command = [sys.executable, "-m", __name__, "--device", profile.device, "--models", *sorted(profile.real),
               "--seconds", str(profile.decode_seconds), "--stem-seconds", str(round(profile.stem_seconds))]
    with log.open("ab") as err:
        answer = subprocess.run(command, env=offline_env(hub), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, text=True, check=False)
    if answer.returncode != 0:
        raise BenchError(f"the GPU measurements failed:\n{log_tail(log)}")
    sections = json.loads(answer.stdout.strip().splitlines()[-1])
    return sections["gpu_device"]["name"], sections


def main(argv: list[str] | None = None) -> int:
    """Child-process entry point: print the GPU sections as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", nargs="+", default=["small", "medium"])
    parser.add_argument("--seconds", type=int, default=DECODE_SECONDS, help="audio generated per model")
    parser.add_argument("--stem-seconds", type=int, default=STEM_SECONDS, help="audio separated by htdemucs")
    args = parser.parse_args(argv)
    answers = answer_channel()
    answers.write(json.dumps(measure(args.device, args.models, args.seconds, args.stem_seconds)) + "\n")
    answers.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
