"""The variations scenario: N takes in one batched job against N single jobs of the same request, side by side.

Both sides run on one server, interleaved (A B, B A ...), with the same prompt, model and length; the batched
job writes N tracks, the single jobs one each. The ratio is the batched job's wall time over the N singles'.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from .appjobs import app_generate, generation_params, interleave
from .procs import AppClient, BenchError, Server
from .stats import summary

if TYPE_CHECKING:
    from .profiles import Profile


def variations_speed(hub: Path, work: Path, profile: Profile) -> dict:
    """Time ``variations: N`` against N single jobs (the seeds s .. s+N-1 either way)."""
    key, seconds, takes, reps = profile.variations
    server = Server(hub, work / "variations-data", work / "variations-server.log", device=profile.device,
                    threads=profile.threads)
    batched: list[float] = []
    singles: list[float] = []
    try:
        server.start()
        client = AppClient(server)
        params = generation_params(key, seconds)
        app_generate(client, params)  # loads the model

        def group(_index: int) -> None:
            timing = app_generate(client, {**params, "variations": takes})
            if len(timing.result.get("takes") or ()) != takes:
                raise BenchError(f"a job of {takes} variations did not answer {takes} takes")
            batched.append(timing.wall)

        def one_by_one(_index: int) -> None:
            singles.append(sum(app_generate(client, {**params, "seed": params["seed"] + take}).wall
                               for take in range(takes)))

        interleave(reps, group, one_by_one)
        client.close()
    finally:
        server.stop()
    ratios = [one / many for one, many in zip(batched, singles, strict=True)]
    return {"model": key, "audio_seconds": seconds, "takes": takes, "pairs": reps, "device": profile.device,
            "batched_s": summary(batched), "singles_s": summary(singles),
            "ratio": round(statistics.median(ratios), 4), "ratios": [round(ratio, 4) for ratio in ratios]}
