"""The measurements: each function runs one scenario side by side and returns its section of the results.

Every ratio compares the app with the same work done directly, measured in the same run with the runs
interleaved (A B, B A, A B ...), so slow drifts of a shared machine fall on both sides alike.
"""
from __future__ import annotations

import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

from audiocraft_webui import protocol
from audiocraft_webui.audio import codecs, dsp, loudness
from audiocraft_webui.jobs import RECENT_LIMIT

from .appjobs import app_generate, generation_params, interleave
from .hubs import offline_env
from .memory import settled_memory, switch_peak
from .procs import (
    AppClient,
    DirectProcess,
    JobTiming,
    Server,
    app_memory_mb,
    busiest_thread,
    set_affinity,
    timed_process,
)
from .profiles import TINY_KEY, Profile
from .stats import couple_interval, cpu_ratio, pair_ratio, summary, wall_ratio, wall_ratios

T = TypeVar("T")

#: What a "fresh process importing audiocraft" runs (the compat shims are needed for the import to work at all).
IMPORT_AUDIOCRAFT = "from audiocraft_webui import compat; compat.install(); import audiocraft.models"
MODEL_RATE = 32000
POSTPROCESS_RATE = 48000
STEM_RATE = 44100


def synth_audio(seconds: float, rate: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Deterministic music-like float32 ``[C, T]``: chords, a bass line and noise hits; speed is all it is for."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    bass = np.sin(2 * np.pi * 55.0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    hits = rng.standard_normal(t.size) * np.exp(-((t % 0.5) * 30))
    mono = 0.25 * chord + 0.3 * bass + 0.2 * hits
    return np.stack([np.roll(mono, 37 * c) for c in range(channels)]).astype(np.float32)


def interleaved_generations(client: AppClient, direct: DirectProcess, params: dict, reps: int,
                            out: Path) -> tuple[list[JobTiming], list[dict]]:
    """``reps`` app jobs and as many direct runs of the same generation, interleaved, model loaded."""
    app: list[JobTiming] = []
    direct_runs: list[dict] = []
    interleave(reps, lambda _i: app.append(app_generate(client, params)),
               lambda i: direct_runs.append(direct.call({"op": "generate", "params": params,
                                                         "out": str(out / f"direct-{params['model']}-{i}.wav")})))
    return app, direct_runs


def overhead_section(params: dict, architecture: str, app: list[JobTiming], direct_runs: list[dict]) -> dict:
    """The results of app jobs vs direct runs of the same generation, paired in order."""
    app_s = [run.wall for run in app]
    direct_s = [run["seconds"] for run in direct_runs]
    return {
        "model": params["model"], "architecture": architecture, "audio_seconds": params["duration"],
        "pairs": len(app), "app_s": summary(app_s), "direct_s": summary(direct_s),
        "ratio": wall_ratio(app, direct_runs),
        "ratio_of_medians": round(statistics.median(app_s) / statistics.median(direct_s), 4),
        "overhead_ms": round((statistics.median(app_s) - statistics.median(direct_s)) * 1000, 1),
        "cpu_ratio": cpu_ratio(app, direct_runs),
        "ack_ms": summary([run.ack for run in app], 1000, 1),
        **outside_generation(app, direct_runs),
    }


def outside_generation(app: list[JobTiming], direct_runs: list[dict]) -> dict:
    """Each side's time outside the model's own loop, and the loops' speed ratio.

    The app's loop runs from its ``generating`` to its ``postprocessing`` progress event, the direct
    side's is the engine call alone. What is left is what each side adds around the same loop (the
    app: queue, events, commit; the direct side: normalising and writing the WAV): it hardly varies
    from job to job, unlike the loop, whose speed moves by several percent with the machine's load
    and with each process's memory layout.
    """
    loops = model_loops(app)
    if loops is None:
        return {}
    app_rest = [run.wall - loop for run, loop in zip(app, loops, strict=True)]
    direct_rest = [run["seconds"] - run["generate_seconds"] for run in direct_runs]
    fixed = statistics.median(app_rest) - statistics.median(direct_rest)
    return {
        "outside_generation_ms": {"app": summary(app_rest, 1000, 1), "direct": summary(direct_rest, 1000, 1),
                                  "app_adds": round(fixed * 1000, 1)},
        "app_adds_fraction": round(fixed / statistics.median(run["seconds"] for run in direct_runs), 4),
        "generation_ratio": loop_ratio(loops, direct_runs),
    }


def model_loops(app: list[JobTiming]) -> list[float] | None:
    """Seconds each app job spent in the model's loop (``generating`` to ``postprocessing``); None if unknown."""
    loops = [run.span("generating", "postprocessing") for run in app]
    return None if any(loop is None for loop in loops) else loops


def loop_ratio(loops: list[float], direct_runs: list[dict]) -> float:
    """Median over pairs of the app's loop ÷ the direct engine call, rounded."""
    return round(pair_ratio(loops, [run["generate_seconds"] for run in direct_runs]), 4)


def generation_overhead(client: AppClient, direct: DirectProcess, params: dict, reps: int, out: Path,
                        architecture: str) -> tuple[dict, list[float]]:
    """App job vs the same generation on the engine plus writing the same WAV, on one server and direct process.

    Returns:
        The section, and the first-progress latencies (seconds) of the app runs.
    """
    app, direct_runs = interleaved_generations(client, direct, params, reps, out)
    return overhead_section(params, architecture, app, direct_runs), [run.first_progress for run in app]


def tiny_overhead(hub: Path, work: Path, profile: Profile, architecture: str) -> tuple[dict, list[float]]:
    """The tiny model's overhead, pairs pooled over several fresh couples of server and direct process.

    The tiny model's loop is bound by the Python interpreter, and two identical processes running it
    differ by a few percent for the whole of their life (memory layout, hash seed): two direct
    processes measured side by side came out 3.0 % and 1.4 % apart over 12 interleaved runs. One couple
    of processes would report its own luck; fresh couples, each with its history filled, average it out.

    Returns:
        The section (with the ratio of each couple), and the first-progress latencies (seconds).
    """
    params = generation_params(TINY_KEY, profile.tiny_duration)
    app: list[JobTiming] = []
    direct_runs: list[dict] = []
    couples: list[tuple[list[JobTiming], list[dict]]] = []
    dedicated: list[tuple[list[JobTiming], list[dict]]] = []
    for index in range(profile.tiny_instances):
        folder = work / f"tiny-{index}"
        folder.mkdir(parents=True, exist_ok=True)
        server = Server(hub, folder / "data", folder / "server.log", device=profile.device, threads=profile.threads)
        direct = DirectProcess(hub, folder / "direct.log", device=profile.device, threads=profile.threads)
        try:
            server.start()
            client = AppClient(server)
            warm_up(client, direct, params, folder)
            fill_history(client)
            runs = interleaved_generations(client, direct, params, profile.tiny_reps, folder)
            if profile.tiny_dedicated_reps:
                pinned = on_dedicated_core(server, direct, partial(
                    interleaved_generations, client, direct, params, profile.tiny_dedicated_reps, folder))
                dedicated += [pinned] if pinned else []
            client.close()
        finally:
            direct.close()
            server.stop()
        couples.append(runs)
        app += runs[0]
        direct_runs += runs[1]
    section = {**overhead_section(params, architecture, app, direct_runs),
               "process_couples": [wall_ratio(*runs) for runs in couples],
               "ratio_interval_95": couple_interval([wall_ratios(*runs) for runs in couples])}
    if dedicated:
        section["dedicated_core"] = dedicated_core_section(dedicated)
    return section, [run.first_progress for run in app]


def on_dedicated_core(server: Server, direct: DirectProcess, measure: Callable[[], T]) -> T | None:
    """Run ``measure`` with the model's loop of each side on a CPU that nothing else of the benchmark uses.

    The server's worker thread and the direct process get the last CPU; the server's other threads
    (Socket.IO writers, HTTP) and this process (the client) get the others. It tells what the app's
    own work costs from what sharing two CPUs with its helper threads and the client costs. None
    (nothing measured) with fewer than two CPUs.
    """
    cpus = os.sched_getaffinity(0)
    if len(cpus) < 2:
        return None
    core = max(cpus)
    set_affinity(server.pid, cpus - {core})
    os.sched_setaffinity(busiest_thread(server.pid), {core})
    set_affinity(direct.process.pid, {core})
    set_affinity(os.getpid(), cpus - {core})
    try:
        return measure()
    finally:
        for pid in (server.pid, direct.process.pid, os.getpid()):
            set_affinity(pid, cpus)


def dedicated_core_section(couples: list[tuple[list[JobTiming], list[dict]]]) -> dict:
    """The tiny model's pairs run by :func:`on_dedicated_core`, pooled, with each couple's ratio."""
    app = [run for runs, _ in couples for run in runs]
    direct_runs = [run for _, runs in couples for run in runs]
    section = {"pairs": len(app), "ratio": wall_ratio(app, direct_runs),
               "process_couples": [wall_ratio(*runs) for runs in couples]}
    loops = model_loops(app)
    if loops is not None:
        section["generation_ratio"] = loop_ratio(loops, direct_runs)
    return section


def stems_overhead(client: AppClient, direct: DirectProcess, server: Server, clip: Path, reps: int,
                   cli_reps: int, work: Path) -> dict:
    """A ``demucs_any`` job through the app vs Demucs called directly vs one ``demucs`` CLI process per job."""
    model = "htdemucs"

    def app_split() -> JobTiming:
        upload = client.upload(clip)
        return client.run_job(protocol.DEMUCS_ANY, {"id": upload}, protocol.DEMUCS_ANY_DONE,
                              protocol.DEMUCS_ANY_PROGRESS)

    def direct_split(index: int) -> dict:
        return direct.call({"op": "separate", "model": model, "path": str(clip), "out": str(work / f"direct-{index}")})

    with ThreadPoolExecutor(1) as pool:  # both load the model (untimed) at the same time
        warm = pool.submit(direct_split, -1)
        app_split()
        warm.result()
    app: list[JobTiming] = []
    direct_runs: list[dict] = []
    interleave(reps, lambda _i: app.append(app_split()), lambda i: direct_runs.append(direct_split(i)))
    app_s = [run.wall for run in app]
    direct_s = [run["seconds"] for run in direct_runs]
    env = offline_env(server.hub)
    threads = server.command[server.command.index("--threads") + 1]
    if threads != "0":
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    device = server.command[server.command.index("--device") + 1]
    cli = [timed_process([sys.executable, "-m", "demucs", "-n", model, "-d", device, "-o", str(work / f"cli-{i}"),
                          str(clip)], env, work / "demucs-cli.log") for i in range(cli_reps)]
    return {
        "model": model, "audio_seconds": round(codecs.probe(clip).duration, 3), "pairs": reps,
        "app_s": summary(app_s), "direct_s": summary(direct_s), "cli_s": summary(cli),
        "ratio": wall_ratio(app, direct_runs),
        "ratio_of_medians": round(statistics.median(app_s) / statistics.median(direct_s), 4),
        "cpu_ratio": cpu_ratio(app, direct_runs),
        "cli_ratio": round(statistics.median(cli) / statistics.median(direct_s), 4),
    }


def ui_ready(hub: Path, work: Path, profile: Profile) -> dict:
    """Server start to the first ``GET /`` answer, against a fresh process importing ``audiocraft.models``."""
    ready: list[float] = []
    imports: list[float] = []
    log = work / "ui-ready.log"

    def start(index: int) -> None:
        server = Server(hub, work / f"ui-data-{index}", log, device=profile.device, threads=profile.threads)
        try:
            ready.append(server.start())
        finally:
            server.stop()

    interleave(profile.ui_reps, start,
               lambda _i: imports.append(timed_process([sys.executable, "-c", IMPORT_AUDIOCRAFT],
                                                       offline_env(hub), log)))
    return {"ready_s": summary(ready), "import_audiocraft_s": summary(imports),
            "ratio": round(statistics.median(ready) / statistics.median(imports), 4)}


def postprocess_speed(seconds: float, reps: int) -> dict:
    """Resample stereo model-rate audio to 48 kHz and encode it to each format, as a fraction of its duration."""
    audio = synth_audio(seconds, MODEL_RATE)
    formats = {}
    for fmt in codecs.ENCODINGS:
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            resampled = dsp.resample(audio, MODEL_RATE, POSTPROCESS_RATE)
            codecs.encode(resampled, POSTPROCESS_RATE, fmt, io.BytesIO())
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        formats[fmt] = {"seconds": summary(times), "fraction_of_duration": round(median / seconds, 5)}
    started = time.perf_counter()
    loudness.normalize_loudness(audio, MODEL_RATE)
    normalize_s = time.perf_counter() - started
    return {"audio_seconds": seconds, "channels": 2, "rate_in": MODEL_RATE, "rate_out": POSTPROCESS_RATE,
            "formats": formats, "normalize_loudness_fraction": round(normalize_s / seconds, 5),
            "worst_fraction": max(entry["fraction_of_duration"] for entry in formats.values())}


def run_app(hub: Path, work: Path, profile: Profile, architectures: dict[str, str]) -> dict:
    """Everything that needs the running app: overheads, first progress, stems, memory of a switch.

    Args:
        hub: the offline hub (``HF_HOME``).
        work: a scratch folder for data folders, logs and outputs.
        profile: what to measure.
        architectures: model key -> architecture label, for the results.
    """
    results: dict = {}
    results["overhead_tiny"], first_progress = tiny_overhead(hub, work, profile, architectures[TINY_KEY])
    server = Server(hub, work / "app-data", work / "server.log", device=profile.device, threads=profile.threads)
    direct = DirectProcess(hub, work / "direct.log", device=profile.device, threads=profile.threads)
    try:
        server.start()
        client = AppClient(server)
        memory = {"start_mb": app_memory_mb(server.pid)["rss"]}
        fill_history(client)  # its first job imports the runtime and loads the tiny model
        memory["runtime_mb"] = settled_memory(server.pid)["rss"]
        for key, seconds in profile.real.items():
            params = generation_params(key, seconds)
            warm_up(client, direct, params, work)
            memory.setdefault("loaded_mb", settled_memory(server.pid)["rss"])
            section, first = generation_overhead(client, direct, params, profile.real_reps, work, architectures[key])
            results[f"overhead_{key}"] = section
            first_progress += first
        results["first_progress"] = {"ms": summary(first_progress, 1000, 1), "model_loaded": True,
                                     "history_jobs": RECENT_LIMIT}
        memory["switch"] = switch_peak(client, server, profile)
        clip = work / "stems-clip.wav"
        with clip.open("wb") as handle:
            codecs.encode(synth_audio(profile.stem_seconds, STEM_RATE, seed=1), STEM_RATE, "wav", handle)
        results["stems"] = stems_overhead(client, direct, server, clip, profile.stem_reps, profile.cli_reps, work)
        results["memory"] = memory
        client.close()
    finally:
        direct.close()
        server.stop()
    return results


def fill_history(client: AppClient) -> None:
    """Run short tiny jobs until the queue's history is full, so every measured job pays its steady-state cost.

    The queue file and the snapshots sent after every change carry the recent jobs: a fresh server
    with an empty history answers faster than one that has been used.
    """
    for _ in range(RECENT_LIMIT):
        app_generate(client, generation_params(TINY_KEY, 1))


def warm_up(client: AppClient, direct: DirectProcess, params: dict, work: Path) -> None:
    """Load a model on both sides at once and run it once each (untimed)."""
    with ThreadPoolExecutor(1) as pool:
        warm = pool.submit(direct.call, {"op": "generate", "params": params, "out": str(work / "warm-up.wav")})
        app_generate(client, params)
        warm.result()


