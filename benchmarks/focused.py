"""Scenarios that run on a server or process of their own, so ``--only`` can run each alone."""
from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

from .appjobs import app_generate, generation_params, interleave
from .library import library_speed
from .procs import AppClient, BenchError, JobTiming, Server
from .profiles import Profile
from .stats import pair_ratio, summary
from .variations import variations_speed
from .worker import worker_ipc, worker_memory


def preview_cost(hub: Path, work: Path, profile: Profile) -> dict:
    """Listening while it generates: jobs with the preview against the same jobs without, interleaved on one
    server, and the time to the first ``audio_preview`` against the time to generate one second of audio."""
    key, seconds, reps = profile.preview
    server = Server(hub, work / "preview-data", work / "preview-server.log", device=profile.device,
                    threads=profile.threads)
    try:
        server.start()
        client = AppClient(server)
        params = generation_params(key, seconds)
        app_generate(client, params)  # loads the model
        with_preview: list[JobTiming] = []
        without: list[JobTiming] = []
        one_second: list[float] = []
        interleave(reps, lambda _i: with_preview.append(app_generate(client, {**params, "preview": True})),
                   lambda _i: without.append(app_generate(client, params)))
        for _ in range(reps):
            reference = app_generate(client, generation_params(key, 1))
            one_second.append(reference.phases["postprocessing"])
        client.close()
    finally:
        server.stop()
    first_audio = [run.first_preview for run in with_preview if run.first_preview is not None]
    if len(first_audio) != reps:
        raise BenchError("a job asked for a preview and sent none")
    return {"model": key, "audio_seconds": seconds, "pairs": reps,
            "with_s": summary([run.wall for run in with_preview]), "without_s": summary([run.wall for run in without]),
            "ratio": round(pair_ratio([run.wall for run in with_preview], [run.wall for run in without]), 4),
            "first_audio_s": summary(first_audio), "first_second_s": summary(one_second),
            "first_audio_ratio": round(statistics.median(first_audio) / statistics.median(one_second), 4)}


def decoders(hub: Path, work: Path, profile: Profile) -> dict:
    """audiocraft's decode loop against the static loop at each CPU weight precision (:mod:`.decoders`)."""
    from . import decoders as comparison

    if profile.decoders is None:
        return {"not_run": "this profile compares the decode loops in its GPU section"}
    return comparison.run(hub, work, profile)


#: Scenarios that run on a server or process of their own, so ``--only`` can run them alone.
FOCUSED: dict[str, Callable[[Path, Path, Profile], dict]] = {
    "preview": preview_cost, "library": library_speed, "worker_ipc": worker_ipc, "worker_memory": worker_memory,
    "decoders": decoders, "variations": variations_speed}
