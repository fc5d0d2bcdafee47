"""Pool the tiny model's pairs of several runs: ``python -m benchmarks.pool RUN.json ...``.

One run's tiny ratio moves by a percent or two on a shared machine (docs/PERFORMANCE.md, "Reading
them"); the pairs of many runs, each couple of fresh processes kept as one draw, tell where it really lies.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from .stats import couple_interval, pair_ratios


def couple_groups(run: dict) -> list[list[float]]:
    """Each process couple's pair ratios (app ÷ direct) of a run's JSON, whose pairs are stored couple by couple."""
    tiny = run["results"]["overhead_tiny"]
    ratios = pair_ratios(tiny["app_s"]["samples"], tiny["direct_s"]["samples"])
    size = run["settings"]["tiny_reps"]
    return [ratios[start:start + size] for start in range(0, len(ratios), size)]


def pooled(runs: list[dict]) -> dict:
    """The median pair ratio over every pair of ``runs``, its 95 % interval over couples, and the couples' mean."""
    groups = [group for run in runs for group in couple_groups(run)]
    couples = [ratio for run in runs for ratio in run["results"]["overhead_tiny"]["process_couples"]]
    return {"runs": len(runs), "couples": len(groups), "pairs": sum(len(group) for group in groups),
            "ratio": round(statistics.median(ratio for group in groups for ratio in group), 4),
            "ratio_interval_95": couple_interval(groups),
            "couples_mean": round(statistics.mean(couples), 4),
            "couples_standard_error": round(statistics.stdev(couples) / len(couples) ** 0.5, 4) if len(couples) > 1
            else None}


def main(argv: list[str] | None = None) -> int:
    """Print each run's tiny ratio, then the pooled figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pool", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="benchmark JSON files (profile cpu or gpu)")
    args = parser.parse_args(argv)
    runs = [json.loads(path.read_text()) for path in args.runs]
    for path, run in zip(args.runs, runs, strict=True):
        tiny = run["results"]["overhead_tiny"]
        print(f"{path.name}: {run['bench']['created']}, tiny {tiny['ratio']} over {tiny['pairs']} pairs "
              f"from {len(tiny['process_couples'])} couples")
    print(json.dumps(pooled(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
