"""The worker process: what crossing to it costs, and the memory long inputs need in it.

* ``worker_ipc``: round trips of a call that does nothing, between the server's supervisor and a worker
  process, the cost one progress or preview event pays at most (an event is one way, half a round trip).
* ``worker_memory``: the worker's peak RSS above its idle level (model loaded) while it splits uploaded
  files of several lengths into stems, and while it generates 30 s and 300 s of audio (long-form windows).
  The inputs are silent FLACs, as in the adversarial probe: tiny to upload, as long as any other file to split.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from audiocraft_webui import protocol

from .procs import AppClient, BenchError, Server, memory_mb, reset_peak, worker_pids

#: Rate of the silent test files (an upload's rate does not change the work: Demucs resamples to 44.1 kHz).
SILENCE_RATE = 16000


def worker_ipc(hub: Path, work: Path, profile) -> dict:
    """Median round trip of an empty call to a worker process, over ``200`` calls after a warm-up."""
    from audiocraft_webui.workerproc.child import WorkerSettings
    from audiocraft_webui.workerproc.supervisor import WorkerProcess

    worker = WorkerProcess(WorkerSettings(engine="audiocraft", device=profile.device, threads=1,
                                          demucs_model="htdemucs", demucs_shifts=1, demucs_overlap=0.25))
    try:
        started = time.perf_counter()
        worker.call("engine", "get", "loaded_model")
        start_s = time.perf_counter() - started
        trips = []
        for _ in range(200):
            begin = time.perf_counter()
            worker.call("engine", "get", "loaded_model")
            trips.append(time.perf_counter() - begin)
    finally:
        worker.stop()
    roundtrip = statistics.median(trips) * 1000
    return {"start_s": round(start_s, 3), "roundtrip_ms": round(roundtrip, 4),
            "per_event_ms": round(roundtrip / 2, 4), "calls": len(trips)}


def silent_flac(path: Path, minutes: float) -> Path:
    """Write ``minutes`` of stereo silence as FLAC (a few hundred kB however long)."""
    frames = int(minutes * 60 * SILENCE_RATE)
    with sf.SoundFile(path, "w", SILENCE_RATE, 2, format="FLAC", subtype="PCM_16") as handle:
        block = np.zeros((SILENCE_RATE * 60, 2), dtype=np.float32)
        for start in range(0, frames, len(block)):
            handle.write(block[:frames - start])
    return path


def worker_memory(hub: Path, work: Path, profile) -> dict:
    """Peak worker RSS above idle while splitting files of ``profile.memory_minutes`` and generating long-form."""
    server = Server(hub, work / "memory-data", work / "memory-server.log", device=profile.device,
                    threads=profile.threads)
    try:
        server.start()
        client = AppClient(server)
        split = _split_peaks(client, server, work, profile.memory_minutes)
        generate = _generation_peaks(client, server, profile.memory_generation)
        client.close()
    finally:
        server.stop()
    return {"splits": split, "generation": generate,
            "added_mb_longest_split": split[-1]["added_mb"], "longest_split_minutes": split[-1]["minutes"]}


def _worker(server: Server) -> int:
    """The server's worker process id."""
    workers = worker_pids(server.pid)
    if len(workers) != 1:
        raise BenchError(f"expected one worker process, found {workers}")
    return workers[0]


def _peak_of(server: Server, run) -> tuple[float, float, float]:
    """``(idle MB, peak MB, seconds)`` of the worker around ``run()`` (its peak reset first)."""
    time.sleep(0.5)
    pid = _worker(server)
    idle = memory_mb(pid)["rss"]
    if not reset_peak(pid):
        raise BenchError("this kernel does not let the peak RSS be reset (/proc/<pid>/clear_refs)")
    started = time.perf_counter()
    run()
    return idle, memory_mb(pid)["peak"], time.perf_counter() - started


def _split_peaks(client: AppClient, server: Server, work: Path, minutes: tuple[float, ...]) -> list[dict]:
    """Split a short file first (loads Demucs), then each length; the peak above idle of each."""
    def split(path: Path) -> None:
        upload = client.upload(path)
        client.run_job(protocol.DEMUCS_ANY, {"id": upload}, protocol.DEMUCS_ANY_DONE, protocol.DEMUCS_ANY_PROGRESS)

    split(silent_flac(work / "warm.flac", 0.1))
    rows = []
    for length in minutes:
        path = silent_flac(work / f"silence-{length}.flac", length)
        idle, peak, seconds = _peak_of(server, lambda path=path: split(path))
        rows.append({"minutes": length, "idle_mb": round(idle), "peak_mb": round(peak),
                     "added_mb": round(peak - idle), "seconds": round(seconds, 1)})
    return rows


def _generation_peaks(client: AppClient, server: Server, durations: tuple[int, ...]) -> list[dict]:
    """Generate each duration with the tiny model; the worker's peak above idle of each."""
    def generate(seconds: int) -> None:
        client.run_job(protocol.SUBMIT_SLIDERS, {"prompt": "memory", "model": "large", "duration": seconds,
                                                 "seed": 1, "auto_tune": False, "preview": True},
                       protocol.ON_FINISH_AUDIO, protocol.PROGRESS)

    generate(1)
    rows = []
    for seconds in durations:
        idle, peak, took = _peak_of(server, lambda seconds=seconds: generate(seconds))
        rows.append({"audio_seconds": seconds, "idle_mb": round(idle), "peak_mb": round(peak),
                     "added_mb": round(peak - idle), "seconds": round(took, 1)})
    return rows
