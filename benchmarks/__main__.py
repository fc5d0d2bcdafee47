"""Command line: ``python -m benchmarks [--quick] [--gpu] [--out FILE]`` (see docs/PERFORMANCE.md)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from audiocraft_webui.config import REPO_ROOT

from . import focused, profiles, report, scenarios
from .hubs import REAL_MUSICGEN, ensure_hub
from .memory import unload_memory

RESULTS_DIR = REPO_ROOT / "bench-results"
#: ``--only`` name of the scenarios that share one running app (:func:`.scenarios.run_app`).
APP_SCENARIOS = "app"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the whole app (real server, real Socket.IO client) against direct library calls.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="tiny models, one or two runs each (smoke test, ~1 min)")
    mode.add_argument("--gpu", action="store_true",
                      help="CUDA with random-weight musicgen-small and -medium, plus decode steps/s, MBD, htdemucs")
    parser.add_argument("--out", type=Path,
                        help="JSON file to write (default: bench-results/bench-<profile>-<time>.json)")
    parser.add_argument("--threads", type=int,
                        help="torch threads for the server and the direct runs (overrides the profile)")
    parser.add_argument("--pinned-pairs", type=int,
                        help="tiny pairs per couple with each side's model loop on a CPU of its own (a diagnosis; "
                             "overrides the profile)")
    parser.add_argument("--hubs", type=Path, default=RESULTS_DIR / "hubs",
                        help="cache folder for the generated model hubs (default: %(default)s)")
    parser.add_argument("--tiny-hub", type=Path, help="an existing tiny hub (tools.tinyhub) for --quick")
    parser.add_argument("--work", type=Path, default=RESULTS_DIR,
                        help="where to make the run's scratch folder (data folders, logs, audio; default: %(default)s)")
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch folder afterwards")
    parser.add_argument("--only", choices=sorted([*focused.FOCUSED, APP_SCENARIOS]), action="append", default=[],
                        help=f"run only this scenario (repeatable), on the profile's hub; {APP_SCENARIOS}: the "
                             "app-vs-direct overheads, first progress, stems and the memory of a switch")
    parser.add_argument("--prepare", action="store_true",
                        help="only build the profile's model hub into --hubs and exit (a separate first step)")
    return parser.parse_args(argv)


def architectures(hub_kind: str) -> dict[str, str]:
    """Model key -> architecture label of the models a hub holds (``tiny`` unless written at a real scale)."""
    labels = {key: "tiny" for key in ("large", "small", "medium", "stereo-small")}
    for repo_id, (scale, stereo) in REAL_MUSICGEN[hub_kind].items():
        labels[repo_id.removeprefix("facebook/musicgen-")] = f"{'stereo ' if stereo else ''}{scale}, random weights"
    return labels


def run(profile: profiles.Profile, hub: Path, work: Path, only: list[str]) -> dict:
    """Run every scenario of ``profile`` (or only those named) on ``hub`` and return the report (not yet written)."""
    started = time.perf_counter()
    facts = report.machine()
    results = focused_results(profile, hub, work, only) if only else everything(profile, hub, work, facts)
    facts["load_average_end"] = list(os.getloadavg())
    return {
        "bench": {"version": 1, "profile": profile.name, "created": datetime.now().isoformat(timespec="seconds"),
                  "seconds": round(time.perf_counter() - started, 1), "hub": hub.name, "only": only},
        "machine": facts,
        "settings": dataclasses.asdict(profile),
        "results": results,
        "targets": report.check_targets(results),
    }


def app_results(profile: profiles.Profile, hub: Path, work: Path) -> dict:
    """The scenarios of one running app, and the memory of a switch against the larger model alone."""
    results = scenarios.run_app(hub, work, profile, architectures(profile.hub))
    memory = results["memory"]
    memory["unload"] = unload_memory(hub, work, profile)
    memory["switch"]["model_alone_peak_mb"] = memory["unload"]["model_alone_peak_mb"]
    memory["switch"]["ratio"] = round(memory["switch"]["peak_mb"] / memory["unload"]["model_alone_peak_mb"], 4)
    return results


def focused_results(profile: profiles.Profile, hub: Path, work: Path, only: list[str]) -> dict:
    """The scenarios named by ``--only``, in the order given."""
    results: dict = {}
    for name in only:
        if name == APP_SCENARIOS:
            results.update(app_results(profile, hub, work))
        else:
            results[name] = focused.FOCUSED[name](hub, work, profile)
    return results


def everything(profile: profiles.Profile, hub: Path, work: Path, facts: dict) -> dict:
    """Every scenario of a full run; GPU facts are added to ``facts``."""
    results: dict = {"ui_ready": scenarios.ui_ready(hub, work, profile),
                     "postprocess": scenarios.postprocess_speed(profile.postprocess_seconds, profile.postprocess_reps)}
    if profile.name == "gpu":
        from . import gpu

        facts["gpu"], sections = gpu.run(hub, work, profile)
        results.update(sections)
    results.update(app_results(profile, hub, work))
    results.update({name: scenario(hub, work, profile) for name, scenario in focused.FOCUSED.items()})
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, write the JSON and print the table."""
    args = parse_args(argv)
    profile = profiles.PROFILES["quick" if args.quick else "gpu" if args.gpu else "cpu"]
    if args.threads is not None:
        profile = dataclasses.replace(profile, threads=args.threads)
    if args.pinned_pairs is not None:
        profile = dataclasses.replace(profile, tiny_dedicated_reps=args.pinned_pairs)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS_DIR / f"bench-{profile.name}-{stamp}.json"
    args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"work-{profile.name}-{stamp}-", dir=args.work))
    try:
        hub = ensure_hub(args.tiny_hub or args.hubs / profile.hub, profile.hub, work / "hub-build.log")
        if args.prepare:
            shutil.rmtree(work, ignore_errors=True)
            print(f"model hub ready in {hub}")
            return 0
        result = run(profile, hub, work, args.only)
    except Exception:
        print(f"benchmark failed; logs are in {work}", file=sys.stderr)
        raise
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    print(report.format_table(result))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
