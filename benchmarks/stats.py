"""Ratios of paired runs and their bootstrap interval: the statistics every scenario reports."""
from __future__ import annotations

import random
import statistics

from .procs import JobTiming

#: Seed of the bootstrap's draws, fixed so a run's interval can be recomputed from its JSON.
BOOTSTRAP_SEED = 1234


def summary(samples: list[float], scale: float = 1.0, digits: int = 4) -> dict:
    """``{"samples": [...], "median": m}``, each value times ``scale`` and rounded."""
    return {"samples": [round(value * scale, digits) for value in samples],
            "median": round(statistics.median(samples) * scale, digits)}


def pair_ratios(app: list[float], direct: list[float]) -> list[float]:
    """App time ÷ direct time of each interleaved pair."""
    return [a / d for a, d in zip(app, direct, strict=True)]


def pair_ratio(app: list[float], direct: list[float]) -> float:
    """Median over interleaved pairs of app time ÷ direct time."""
    return statistics.median(pair_ratios(app, direct))


def couple_interval(groups: list[list[float]], rounds: int = 2000, seed: int = BOOTSTRAP_SEED) -> list[float]:
    """95 % interval of the median of pooled pair ratios, resampling whole process couples (bootstrap).

    A fresh process runs the model a few percent faster or slower for its whole life, so the couples,
    not the pairs, are the independent draws: the interval shows how far another run of as many couples
    may land on the same machine.

    Args:
        groups: each couple's pair ratios (app ÷ direct).
    """
    draw = random.Random(seed)
    medians = sorted(statistics.median(ratio for group in draw.choices(groups, k=len(groups)) for ratio in group)
                     for _ in range(rounds))
    return [round(medians[int(rounds * 0.025)], 4), round(medians[int(rounds * 0.975) - 1], 4)]


def wall_ratios(app: list[JobTiming], direct: list[dict]) -> list[float]:
    """Each interleaved pair's app job wall time ÷ its direct run's."""
    return pair_ratios([run.wall for run in app], [run["seconds"] for run in direct])


def wall_ratio(app: list[JobTiming], direct: list[dict]) -> float:
    """Median over interleaved pairs of an app job's wall time ÷ its direct run's, rounded."""
    return round(statistics.median(wall_ratios(app, direct)), 4)


def cpu_ratio(app: list[JobTiming], direct: list[dict]) -> float:
    """Median CPU seconds of the server per app job ÷ median CPU seconds of the direct process per run.

    CPU time hardly moves when other programs share the cores, so this ratio stays readable on a busy
    machine where wall-clock ratios do not (it misses time spent waiting, e.g. for fsync).
    """
    return round(statistics.median(run.server_cpu for run in app)
                 / statistics.median(run["cpu_seconds"] for run in direct), 4)
