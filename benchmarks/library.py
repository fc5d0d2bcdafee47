"""The library scenario: the track list route of a server holding 1,000 tracks, whole and filtered.

Each track is a real (tiny) WAV with a record shaped like a generated one, 600-point waveform included, so
the route reads, parses and sends what a large library holds. The first request after start parses every
record; later ones reuse the store's cache (only changed files are read again).
"""
from __future__ import annotations

import http.client
import io
import json
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audiocraft_webui.audio import codecs

from .procs import BenchError, Server

if TYPE_CHECKING:
    from .profiles import Profile

TRACKS = 1000
REQUESTS = 9
#: Queries a library view sends: text search, a favourites view, and a combined filter with a sorted page.
QUERIES = {"search": "q=piano", "favorites": "favorite=true",
           "combined": "q=lofi&model=small&format=wav&sort=name&order=asc&limit=50"}
PROMPTS = ("warm lofi piano with vinyl crackle", "drum and bass at 174 bpm", "ambient drone with strings",
           "funk groove with slap bass", "cinematic orchestral build")


def write_library(data_dir: Path, count: int = TRACKS, seed: int = 0) -> None:
    """Fill ``static/audio`` with ``count`` tracks: a 0.1 s WAV and a generated-shaped JSON record each."""
    folder = data_dir / "static" / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    codecs.encode(np.zeros((2, 3200), np.float32), 32000, "wav", buffer)
    rng = random.Random(seed)
    for index in range(count):
        base = f"small_{index:04d}_01012026_10_00"
        record = {
            "model": "small", "model_id": "facebook/musicgen-small", "prompt": f"{PROMPTS[index % 5]} #{index}",
            "created": f"2026-01-{1 + index % 28:02d}T10:{index % 60:02d}:00", "job_id": f"{index:012x}",
            "app_version": "bench", "duration_seconds": 0.1, "favorite": index % 10 == 0,
            "parameters": {"top_p": 0.67, "temperature": 1.2, "cfg_coef": 4.0, "duration": 30, "seed": index,
                           "format": "wav", "sample_rate": 32000, "channels": 2,
                           "loudness": {"target_lufs": -14.0, "lufs": -14.0, "true_peak_dbtp": -2.0}},
            "request": {"prompt": PROMPTS[index % 5], "model": "small", "duration": 30, "format": "wav"},
            "timing": {"generate_seconds": 40.0, "total_seconds": 42.0, "realtime_factor": 1.33, "device": "cpu"},
            "waveform": [round(rng.random(), 3) for _ in range(600)],
            "audio_file": f"{base}.wav",
        }
        (folder / f"{base}.wav").write_bytes(buffer.getvalue())
        (folder / f"{base}.json").write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")


def timed_get(port: int, path: str) -> tuple[float, int, int]:
    """Seconds to ``GET path`` and read the whole answer, its status and the X-Total-Count it gives."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        return elapsed, response.status, int(response.headers.get("X-Total-Count", -1))
    finally:
        connection.close()


def median_ms(port: int, path: str, requests: int = REQUESTS) -> dict:
    """The median and every sample of ``requests`` GETs, in ms, with the count of tracks matched."""
    samples, total = [], -1
    for _ in range(requests):
        elapsed, status, total = timed_get(port, path)
        if status != 200:
            raise BenchError(f"GET {path} answered {status}")
        samples.append(elapsed * 1000)
    return {"samples": [round(value, 1) for value in samples], "median": round(float(np.median(samples)), 1),
            "matched": total}


def library_speed(hub: Path, work: Path, profile: Profile) -> dict:
    """``GET /api/tracks`` on a server with 1,000 tracks: the first (cold) request, then medians, whole and filtered."""
    data_dir = work / "library-data"
    write_library(data_dir)
    server = Server(hub, data_dir, work / "library-server.log", device=profile.device, threads=profile.threads)
    try:
        server.start()
        cold_s, status, total = timed_get(server.port, "/api/tracks")
        if status != 200 or total != TRACKS:
            raise BenchError(f"the list answered {status} with {total} tracks")
        results = {"tracks": TRACKS, "requests": REQUESTS, "first_ms": round(cold_s * 1000, 1),
                   "list_ms": median_ms(server.port, "/api/tracks")}
        results["filtered_ms"] = {name: median_ms(server.port, f"/api/tracks?{query}")
                                  for name, query in QUERIES.items()}
    finally:
        server.stop()
    return results
