"""What one benchmark run measures: the profiles ``quick``, ``cpu`` and ``gpu``."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """How much one benchmark run measures.

    Attributes:
        name: ``quick`` (smoke test, tiny models), ``cpu`` or ``gpu``.
        hub: the hub kind (see :mod:`.hubs`).
        device: torch device for the server and the direct process.
        threads: torch intra-op threads for both (the server's ``--threads``).
        tiny_instances, tiny_reps, tiny_duration: fresh server-and-direct process couples, interleaved
            pairs on each, and seconds of audio, for the tiny model.
        tiny_dedicated_reps: further pairs on each couple with the server's worker thread and the direct
            process on a CPU of their own (see :func:`on_dedicated_core`; 0: none).
        real: seconds of audio per real-architecture model key, measured with ``real_reps`` pairs each.
        switch: two model keys, the larger last: the server switches from the first to the second.
        stem_seconds, stem_reps, cli_reps: clip length, app/direct pairs and CLI runs of the stem scenario.
        ui_reps: server starts (and as many fresh ``import audiocraft.models`` processes).
        postprocess_seconds, postprocess_reps: audio length and repetitions of the post-processing timing.
        preview: model key, seconds of audio and pairs of the preview scenario (jobs with and without it).
        memory_minutes, memory_generation: lengths of the files split and of the tiny-model generations
            whose worker memory is measured.
        decode_seconds: audio generated per model by the GPU decode timing (``--gpu`` only).
        decoders: the decode loops compared side by side (:mod:`.decoders`): model key, seconds of audio per
            timed run, runs per setting, frames per quality prefix; None where ``--gpu`` measures them instead.
        decoders_threads: torch threads of that comparison (0: torch's choice, every core).
        variations: model key, seconds of audio, takes and pairs of the variations scenario (one batched job
            of N takes against N single jobs).
    """

    name: str
    hub: str
    device: str
    threads: int
    tiny_instances: int
    tiny_reps: int
    tiny_duration: int
    tiny_dedicated_reps: int
    real: dict[str, int]
    real_reps: int
    switch: tuple[str, str]
    stem_seconds: float
    stem_reps: int
    cli_reps: int
    ui_reps: int
    postprocess_seconds: float
    postprocess_reps: int
    preview: tuple[str, int, int] = ("small", 2, 1)
    memory_minutes: tuple[float, ...] = (0.5, 1.0)
    memory_generation: tuple[int, ...] = (5, 35)
    decode_seconds: int = 10
    decoders: tuple[str, float, int, int] | None = ("small", 3.0, 2, 50)
    decoders_threads: int = 0
    variations: tuple[str, int, int, int] = ("small", 2, 4, 2)


#: Repo of the tiny model in every hub kind: ``musicgen-large`` stays tiny in all of them.
TINY_KEY = "large"

#: The benchmark's profiles: ``quick`` checks that every figure is produced (tiny models, a minute);
#: ``cpu`` is the full CPU run (about 20 minutes on two cores); ``gpu`` the real sizes on CUDA. None runs the
#: dedicated-core pairs unless asked (``--pinned-pairs``): they are a diagnosis, not a target.
PROFILES = {
    "quick": Profile(name="quick", hub="tiny", device="cpu", threads=1, tiny_instances=1, tiny_reps=2,
                     tiny_duration=5, tiny_dedicated_reps=0, real={"small": 2}, real_reps=1,
                     switch=("small", "stereo-small"), stem_seconds=3.0, stem_reps=1, cli_reps=1, ui_reps=1,
                     postprocess_seconds=5.0, postprocess_reps=1, preview=("small", 2, 1),
                     decoders=("small", 1.0, 1, 10)),
    "cpu": Profile(name="cpu", hub="cpu", device="cpu", threads=1, tiny_instances=12, tiny_reps=8,
                   tiny_duration=30, tiny_dedicated_reps=0, real={"small": 2}, real_reps=3,
                   switch=("small", "stereo-small"), stem_seconds=5.0, stem_reps=8, cli_reps=2, ui_reps=3,
                   postprocess_seconds=30.0, postprocess_reps=3, preview=("small", 2, 3),
                   memory_minutes=(5.0, 10.0, 20.0), memory_generation=(30, 300)),
    "gpu": Profile(name="gpu", hub="gpu", device="cuda", threads=0, tiny_instances=2, tiny_reps=3,
                   tiny_duration=10, tiny_dedicated_reps=0, real={"medium": 10, "small": 10}, real_reps=3,
                   switch=("small", "medium"), stem_seconds=30.0, stem_reps=3, cli_reps=2, ui_reps=3,
                   postprocess_seconds=30.0, postprocess_reps=3, preview=("medium", 10, 3),
                   memory_minutes=(5.0, 10.0, 20.0), memory_generation=(30, 300), decoders=None),
}
