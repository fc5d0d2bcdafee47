"""Memory of the running app: after a job settles, while switching models, and with ``--unload-after-gen``."""
from __future__ import annotations

import time
from pathlib import Path

from .appjobs import app_generate, generation_params
from .procs import AppClient, Server, app_memory_mb, reset_app_peak
from .profiles import TINY_KEY, Profile

#: Seconds to let a finished job's clean-up settle before reading the server's RSS.
SETTLE_SECONDS = 0.5


def settled_memory(pid: int) -> dict[str, float]:
    """The memory of the server and its worker after a short pause for clean-up, in MB."""
    time.sleep(SETTLE_SECONDS)
    return app_memory_mb(pid)


def switch_peak(client: AppClient, server: Server, profile: Profile) -> dict:
    """Peak RSS while the server switches from the model it holds (the profile's first) to the larger one."""
    first, second = profile.switch
    exact = reset_app_peak(server.pid)
    app_generate(client, generation_params(second, 1))
    return {"from": first, "to": second, "peak_mb": app_memory_mb(server.pid)["peak"], "peak_reset": exact}


def model_alone_peak(hub: Path, work: Path, profile: Profile, model: str) -> dict[str, float | bool]:
    """Peak RSS of a fresh server whose worker has loaded only ``model`` and run one job with it.

    Read while the worker lives: with ``--unload-after-gen`` the worker ends after the job, and its peak with it.
    """
    server = Server(hub, work / "alone-data", work / "server-alone.log", device=profile.device,
                    threads=profile.threads)
    try:
        server.start()
        client = AppClient(server)
        exact = reset_app_peak(server.pid)
        app_generate(client, generation_params(model, 1))
        peak = settled_memory(server.pid)["peak"]
        client.close()
    finally:
        server.stop()
    return {"peak_mb": peak, "peak_reset": exact}


def unload_memory(hub: Path, work: Path, profile: Profile) -> dict:
    """RSS of a ``--unload-after-gen`` server before and after a job, and the model's peak alone.

    "Before" is after a tiny warm-up job: the runtime (torch, audiocraft) is imported and no model is held,
    which is the state the server returns to after every unloading job.
    """
    server = Server(hub, work / "unload-data", work / "server-unload.log", device=profile.device,
                    threads=profile.threads, flags=("--unload-after-gen",))
    try:
        server.start()
        client = AppClient(server)
        start = app_memory_mb(server.pid)["rss"]
        app_generate(client, generation_params(TINY_KEY, 1))
        before = settled_memory(server.pid)["rss"]
        model = profile.switch[1]
        app_generate(client, generation_params(model, 1))
        after = settled_memory(server.pid)["rss"]
        client.close()
    finally:
        server.stop()
    alone = model_alone_peak(hub, work, profile, model)
    return {"start_mb": start, "before_mb": before, "after_mb": after, "model": model,
            "model_alone_peak_mb": alone["peak_mb"], "peak_reset": alone["peak_reset"],
            "ratio": round(after / before, 4)}
