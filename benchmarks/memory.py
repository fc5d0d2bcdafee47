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


def unload_memory(hub: Path, work: Path, profile: Profile) -> dict:
    """RSS of a ``--unload-after-gen`` server before and after a job, and that job's peak (the model alone).

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
        exact = reset_app_peak(server.pid)
        model = profile.switch[1]
        app_generate(client, generation_params(model, 1))
        after = settled_memory(server.pid)
        client.close()
    finally:
        server.stop()
    return {"start_mb": start, "before_mb": before, "after_mb": after["rss"], "model": model,
            "model_alone_peak_mb": after["peak"], "peak_reset": exact, "ratio": round(after["rss"] / before, 4)}
