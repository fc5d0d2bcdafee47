"""The benchmark runs end to end in its quick mode and reports every figure (a smoke test, never a timing)."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from audiocraft_webui.config import REPO_ROOT
from benchmarks import gpu, pool, report, stats

#: Every figure a CPU run reports, as paths into its "results".
FIGURES = [
    ("overhead_tiny", "ratio"), ("overhead_tiny", "cpu_ratio"), ("overhead_tiny", "overhead_ms"),
    ("overhead_tiny", "outside_generation_ms", "app_adds"), ("overhead_tiny", "app_adds_fraction"),
    ("overhead_tiny", "generation_ratio"),
    ("overhead_small", "ratio"), ("overhead_small", "app_s", "median"), ("overhead_small", "direct_s", "median"),
    ("first_progress", "ms", "median"),
    ("ui_ready", "ratio"), ("ui_ready", "ready_s", "median"), ("ui_ready", "import_audiocraft_s", "median"),
    ("stems", "ratio"), ("stems", "cli_ratio"), ("stems", "cli_s", "median"),
    ("postprocess", "formats", "wav", "fraction_of_duration"),
    ("postprocess", "formats", "flac", "fraction_of_duration"),
    ("postprocess", "formats", "mp3", "fraction_of_duration"),
    ("memory", "start_mb"), ("memory", "loaded_mb"), ("memory", "unload", "before_mb"),
    ("memory", "unload", "after_mb"),
    ("memory", "unload", "ratio"), ("memory", "switch", "peak_mb"), ("memory", "switch", "ratio"),
    ("preview", "ratio"), ("preview", "first_audio_ratio"), ("preview", "first_audio_s", "median"),
    ("preview", "first_second_s", "median"),
    ("library", "first_ms"), ("library", "list_ms", "median"), ("library", "filtered_ms", "search", "median"),
    ("library", "filtered_ms", "combined", "median"),
    ("decoders", "default_speedup"), ("decoders", "speed", "audiocraft fp32", "seconds_per_audio_second"),
    ("decoders", "speed", "static int8", "speedup"), ("decoders", "quality", "mean_kl_nats", "bf16"),
    ("decoders", "quality", "mean_kl_nats", "int8"), ("decoders", "memory", "cache_30s_window", "medium", "fp16_mb"),
    ("variations", "ratio"), ("variations", "batched_s", "median"), ("variations", "singles_s", "median"),
]


def figure(results: dict, path: tuple[str, ...]) -> object:
    """The value at ``path``, or None."""
    node: object = results
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


@pytest.mark.slow
def test_quick_bench_reports_every_figure(tiny_hub: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "benchmarks", "--quick", "--tiny-hub", str(tiny_hub),
               "--pinned-pairs", "1", "--work", str(tmp_path), "--out", str(out)]
    run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    data = json.loads(out.read_text())
    missing = [path for path in FIGURES if not isinstance(figure(data["results"], path), (int, float))]
    assert missing == []
    tiny = data["results"]["overhead_tiny"]
    assert len(tiny["process_couples"]) == data["settings"]["tiny_instances"]
    assert tiny["pairs"] == data["settings"]["tiny_instances"] * data["settings"]["tiny_reps"]
    low, high = tiny["ratio_interval_95"]
    assert low <= tiny["ratio"] <= high and "95 % interval over couples" in run.stdout
    assert data["settings"]["tiny_dedicated_reps"] == 1
    if len(os.sched_getaffinity(0)) >= 2:
        pinned = tiny["dedicated_core"]
        assert pinned["pairs"] == data["settings"]["tiny_instances"] * data["settings"]["tiny_dedicated_reps"]
        assert pinned["ratio"] > 0 and len(pinned["process_couples"]) == data["settings"]["tiny_instances"]
        assert "loops on a CPU of their own" in run.stdout
    assert {row["label"] for row in data["targets"]} == {target.label for target in report.TARGETS
                                                        if target.value(data["results"]) is not None}
    assert len(data["targets"]) == 12
    assert data["machine"]["cpus"] and data["settings"]["name"] == "quick"
    assert "overhead ratio, tiny model" in run.stdout and str(out) in run.stdout
    assert list(tmp_path.glob("work-*")) == []


@pytest.mark.parametrize(("name", "bandwidth"), [
    ("NVIDIA H100 80GB HBM3", 3350), ("NVIDIA H100 PCIe", 2000), ("NVIDIA H200", 4800),
    ("NVIDIA A100-SXM4-80GB", 2039), ("NVIDIA A100-SXM4-40GB", 1555), ("NVIDIA GeForce RTX 4090", 1008),
    ("Tesla T4", 320), ("NVIDIA A10G", 600), ("Some Future GPU", None),
])
def test_bandwidth_table_knows_the_usual_gpus(name: str, bandwidth: float | None) -> None:
    assert gpu.table_bandwidth(name) == bandwidth


def test_couple_interval_resamples_whole_couples() -> None:
    alike = [[0.98, 1.0, 1.02]] * 6
    assert stats.couple_interval(alike) == [1.0, 1.0]
    apart = [[0.95, 0.96], [1.0, 1.01], [1.05, 1.06], [0.99, 1.02], [1.03, 0.97]]
    low, high = stats.couple_interval(apart)
    pooled = statistics.median(ratio for couple in apart for ratio in couple)
    assert 0.95 <= low < pooled < high <= 1.06
    assert stats.couple_interval(apart) == [low, high]


def bench_run(created: str, couples: list[list[float]]) -> dict:
    """A run's JSON as far as pooling reads it: direct runs of 1 s, so each app time is its pair's ratio."""
    app = [ratio for couple in couples for ratio in couple]
    return {"bench": {"created": created}, "settings": {"tiny_reps": len(couples[0])},
            "results": {"overhead_tiny": {"ratio": statistics.median(app), "pairs": len(app),
                                          "process_couples": [statistics.median(couple) for couple in couples],
                                          "app_s": {"samples": app}, "direct_s": {"samples": [1.0] * len(app)}}}}


def test_pool_pools_the_pairs_of_several_runs_couple_by_couple(tmp_path: Path, capsys) -> None:
    runs = [bench_run("2026-11-25T01:00:00", [[1.0, 1.02], [0.98, 1.0]]),
            bench_run("2026-11-25T02:00:00", [[1.04, 1.06]])]
    result = pool.pooled(runs)
    assert (result["runs"], result["couples"], result["pairs"]) == (2, 3, 6)
    assert result["ratio"] == 1.01 and result["couples_mean"] == round((1.01 + 0.99 + 1.05) / 3, 4)
    low, high = result["ratio_interval_95"]
    assert 0.98 <= low <= 1.01 <= high <= 1.06 and result["couples_standard_error"] > 0
    paths = []
    for index, run in enumerate(runs):
        paths.append(tmp_path / f"run-{index}.json")
        paths[-1].write_text(json.dumps(run))
    assert pool.main([str(path) for path in paths]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("run-0.json: 2026-11-25T01:00:00, tiny 1.0 over 4 pairs from 2 couples")
    assert json.loads(lines[-1]) == result


def test_targets_compare_in_the_right_direction() -> None:
    results = {"overhead_tiny": {"ratio": 1.01}, "decode": {"small": {"percent_of_limit": 42.0}}}
    rows = {row["label"]: row["met"] for row in report.check_targets(results)}
    assert rows == {"overhead ratio, tiny model": True, "decode % of bandwidth limit, small (app, eager)": False}


def test_queue_broadcast_keeps_track_metadata_only_for_the_newest_finished_job(services) -> None:
    """The snapshot sent after each change stays small however long the history (a performance fix)."""
    from audiocraft_webui.jobs import Job, JobState
    from audiocraft_webui.tasks import TrackSplitTask

    for name in ("older", "newer"):
        job = Job(TrackSplitTask(name, "all"))
        services.queue.submit(job)
        services.queue.take(0)
        services.queue.finish(job, JobState.DONE, result={"name": name, "meta": {"waveform": [0.5] * 600}})
    recent = services.queue_update()["recent"]
    assert [job["result"] for job in recent] == [{"name": "newer", "meta": {"waveform": [0.5] * 600}},
                                                 {"name": "older"}]
    assert "meta" in services.queue.snapshot()["recent"][1]["result"]  # the on-connect snapshot is complete
