"""One generation job as both sides of a comparison run it, and the interleaving of the two sides."""
from __future__ import annotations

from collections.abc import Callable

from audiocraft_webui import protocol

from .procs import AppClient, BenchError, JobTiming

#: The prompt and seed every measured generation uses, on both sides.
PROMPT = "lofi hip hop beat with mellow piano and soft drums"
SEED = 1234


def generation_params(model: str, duration: int) -> dict:
    """The generation both sides run: fixed seed, explicit sampling values, no auto-tune."""
    return {"prompt": PROMPT, "model": model, "duration": duration, "seed": SEED, "top_k": 250, "top_p": 0.0,
            "temperature": 1.0, "cfg_coef": 3.0}


def app_generate(client: AppClient, params: dict) -> JobTiming:
    """One ``submit_sliders`` job through the app, checked to have written its audio file and JSON.

    Jobs make no preview unless ``params`` asks for one, so the overhead figures stay comparable across runs.
    """
    timing = client.run_job(protocol.SUBMIT_SLIDERS, {"preview": False, **params, "auto_tune": False,
                                                      "format": "wav", "sample_rate": "original"},
                            protocol.ON_FINISH_AUDIO, protocol.PROGRESS)
    root = client.server.data_dir
    for name in (timing.result.get("filename"), timing.result.get("json_filename")):
        if not name or not (root / name).is_file():
            raise BenchError(f"the job finished but {name!r} is not on disk")
    return timing


def interleave(reps: int, app: Callable[[int], None], direct: Callable[[int], None]) -> None:
    """Run ``reps`` pairs, alternating which side goes first (A B, B A, ...)."""
    for index in range(reps):
        sides = (app, direct) if index % 2 == 0 else (direct, app)
        for side in sides:
            side(index)
