"""Targets, machine facts and the printed table of a benchmark run."""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class Target:
    """One acceptance target: the figure at ``path`` (keys into the results) compared with ``limit``."""

    label: str
    path: tuple[str, ...]
    limit: float
    at_most: bool = True
    unit: str = ""

    def value(self, results: dict) -> float | None:
        """The figure, or None when this run did not measure it."""
        node: object = results
        for key in self.path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return float(node) if isinstance(node, (int, float)) else None

    def check(self, results: dict) -> dict | None:
        """``{label, value, limit, at_most, met}`` for the results, or None when not measured."""
        value = self.value(results)
        if value is None:
            return None
        met = value <= self.limit if self.at_most else value >= self.limit
        return {"label": self.label, "value": value, "limit": self.limit, "at_most": self.at_most,
                "unit": self.unit, "met": met}


TARGETS = (
    Target("overhead ratio, tiny model", ("overhead_tiny", "ratio"), 1.03),
    Target("overhead ratio, small architecture", ("overhead_small", "ratio"), 1.03),
    Target("overhead ratio, medium architecture", ("overhead_medium", "ratio"), 1.03),
    Target("first progress latency, median", ("first_progress", "ms", "median"), 50.0, unit="ms"),
    Target("UI ready / import audiocraft.models", ("ui_ready", "ratio"), 0.25),
    Target("stems overhead ratio", ("stems", "ratio"), 1.10),
    Target("job with preview / without", ("preview", "ratio"), 1.05),
    Target("worker MB added splitting the longest file", ("worker_memory", "added_mb_longest_split"), 1500.0,
           unit="MB"),
    Target("first audio_preview / one second generated", ("preview", "first_audio_ratio"), 1.2),
    Target("track list, 1,000 tracks, median", ("library", "list_ms", "median"), 200.0, unit="ms"),
    Target("RSS after unload / before load", ("memory", "unload", "ratio"), 1.10),
    Target("peak RSS switching / larger model alone", ("memory", "switch", "ratio"), 1.10),
    Target("decode % of bandwidth limit, small (app, eager)", ("decode", "small", "percent_of_limit"), 50.0,
           False, "%"),
    Target("decode % of bandwidth limit, medium (app, eager)", ("decode", "medium", "percent_of_limit"), 50.0,
           False, "%"),
    Target("decode % of bandwidth limit, small (static, CUDA graph)",
           ("decode", "small", "fast", "cuda_graph", "percent_of_limit"), 50.0, False, "%"),
    Target("decode % of bandwidth limit, medium (static, CUDA graph)",
           ("decode", "medium", "fast", "cuda_graph", "percent_of_limit"), 50.0, False, "%"),
    Target("decode speed-up over eager, medium (static, CUDA graph)",
           ("decode", "medium", "fast", "cuda_graph", "speedup_vs_eager"), 2.5, False, "x"),
    Target("CPU decode speed-up over eager, small (static, default weights)",
           ("decoders", "default_speedup"), 1.0, False, "x"),
)


def check_targets(results: dict) -> list[dict]:
    """Every target this run measured, with whether it is met."""
    return [checked for target in TARGETS if (checked := target.check(results)) is not None]


def _read(path: str) -> str:
    """A /proc file's text, or empty."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(package: str) -> str | None:
    """An installed distribution's version, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    """Facts about the machine the figures come from."""
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) // 1024 for line in _read("/proc/meminfo").splitlines()
                if line.startswith("MemTotal")), None)
    return {
        "platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)), "memory_mb": mem, "python": sys.version.split()[0],
        "torch": _version("torch"), "audiocraft": _version("audiocraft"), "demucs": _version("demucs"),
        "load_average_start": list(os.getloadavg()),
    }


def _number(value: float) -> str:
    """A figure with sensible precision."""
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def _medians(section: dict, *keys: str) -> str:
    """The medians of some timing summaries of a section, in seconds, joined by slashes."""
    return " / ".join(f"{section[key]['median']:.3f}" for key in keys) + " s"


def _breakdown(section: dict) -> str:
    """What the app adds outside the model's loop, each server-and-direct process couple's ratio, their spread."""
    text = ""
    if "outside_generation_ms" in section:
        text += (f", outside the loop +{section['outside_generation_ms']['app_adds']} ms "
                 f"({section['app_adds_fraction']:.2%}), loop ratio {section['generation_ratio']}")
    couples = section.get("process_couples")
    if couples:
        text += f", {section['pairs']} pairs, couples {' '.join(f'{value:.3f}' for value in couples)}"
    if "ratio_interval_95" in section:
        low, high = section["ratio_interval_95"]
        text += f", 95 % interval over couples {low}-{high}"
    if "dedicated_core" in section:
        pinned = section["dedicated_core"]
        text += f"; loops on a CPU of their own: {pinned['ratio']} ({pinned['pairs']} pairs)"
    return text


def detail_rows(results: dict) -> list[tuple[str, str]]:
    """The figures behind the targets, as ``(label, value)`` rows."""
    rows = [(f"  {key}: {section['model']} ({section['architecture']}), {section['audio_seconds']} s, app / direct",
             f"{_medians(section, 'app_s', 'direct_s')}, {section['overhead_ms']:+} ms, CPU {section['cpu_ratio']}"
             f"{_breakdown(section)}")
            for key, section in results.items() if key.startswith("overhead_")]
    if "ui_ready" in results:
        rows.append(("  UI ready / import audiocraft.models", _medians(results["ui_ready"], "ready_s",
                                                                      "import_audiocraft_s")))
    if "stems" in results:
        stems = results["stems"]
        rows.append((f"  stems ({stems['model']}, {stems['audio_seconds']} s): app / direct / CLI",
                     f"{_medians(stems, 'app_s', 'direct_s', 'cli_s')}, CLI {stems['cli_ratio']}x direct"))
    if "preview" in results:
        preview = results["preview"]
        rows.append((f"  preview ({preview['model']}, {preview['audio_seconds']} s): with / without",
                     _medians(preview, "with_s", "without_s")))
        rows.append(("  first audio_preview / one second generated, s", _medians(preview, "first_audio_s",
                                                                                 "first_second_s")))
    if "library" in results:
        library = results["library"]
        rows.append((f"  track list, {library['tracks']} tracks: first / median, ms",
                     f"{library['first_ms']} / {library['list_ms']['median']}"))
        rows.extend((f"  track list filtered ({name}, {entry['matched']} matched), median ms", f"{entry['median']}")
                    for name, entry in library["filtered_ms"].items())
    if "worker_ipc" in results:
        ipc = results["worker_ipc"]
        rows.append(("  worker process: start s / call round trip ms / per event ms",
                     f"{ipc['start_s']} / {ipc['roundtrip_ms']} / {ipc['per_event_ms']}"))
    for row in results.get("worker_memory", {}).get("splits", []):
        rows.append((f"  stems of {row['minutes']} min: worker MB idle / peak / added",
                     f"{row['idle_mb']} / {row['peak_mb']} / {row['added_mb']} ({row['seconds']} s)"))
    for row in results.get("worker_memory", {}).get("generation", []):
        rows.append((f"  tiny generation of {row['audio_seconds']} s: worker MB idle / peak / added",
                     f"{row['idle_mb']} / {row['peak_mb']} / {row['added_mb']} ({row['seconds']} s)"))
    if "postprocess" in results:
        post = results["postprocess"]
        fractions = ", ".join(f"{fmt} {entry['fraction_of_duration']:.4f}" for fmt, entry in post["formats"].items())
        rows.append((f"  resample + encode {post['audio_seconds']:.0f} s stereo at 48 kHz, x duration", fractions))
    if "memory" in results:
        memory = results["memory"]
        unload, switch = memory["unload"], memory["switch"]
        rows.append(("  RSS MB: start / runtime imported / model loaded",
                     f"{memory['start_mb']:.0f} / {memory['runtime_mb']:.0f} / {memory['loaded_mb']:.0f}"))
        rows.append((f"  RSS MB, unload-after-gen, {unload['model']}: before / after / peak",
                     f"{unload['before_mb']:.0f} / {unload['after_mb']:.0f} / {unload['model_alone_peak_mb']:.0f}"))
        rows.append((f"  peak RSS MB switching {switch['from']} -> {switch['to']}", f"{switch['peak_mb']:.0f}"))
    for name, entry in results.get("decode", {}).items():
        speed = (f"{entry['steps_per_second']:.1f} steps/s, {entry['ms_per_step']:.3f} ms/step, floor "
                 f"{entry['floor_ms_per_step']:.3f} ms at {entry['bandwidth_gb_s']:.0f} GB/s")
        rows.append((f"  decode {name} ({entry['dtype']}, {entry['weights_gb']} GB), eager", speed))
        rows.extend((f"  decode {name}, static loop, {variant}", f"{fast['steps_per_second']:.1f} steps/s, "
                     f"{fast['percent_of_limit']} % of the limit, x{fast['speedup_vs_eager']} eager")
                    for variant, fast in entry["fast"].items())
    decoders = results.get("decoders", {})
    for name, entry in decoders.get("speed", {}).items():
        kl = decoders["quality"]["mean_kl_nats"].get(name.split()[-1]) if name.startswith("static") else None
        rows.append((f"  {decoders['model']} on {decoders['device']}, {name}: s per s of audio, x eager, KL",
                     f"{entry['seconds_per_audio_second']}, x{entry['speedup']}" + ("" if kl is None else f", {kl}")))
    if "mbd" in results:
        rows.append(("  MBD, s per s of audio", f"{results['mbd']['seconds_per_audio_second']}"))
    if "htdemucs" in results:
        demucs = results["htdemucs"]
        rows.append(("  htdemucs: load s, x real time", f"{demucs['load_s']}, {demucs['realtime_factor']}"))
    return rows


def format_table(report: dict) -> str:
    """The run as a plain-text table: targets first, then the figures behind them."""
    facts = report["machine"]
    title = (f"audiocraft-webui benchmark, profile {report['bench']['profile']}: {facts['cpu']} "
             f"({facts['cpus_usable']} CPUs), torch {facts['torch']}, threads {report['settings']['threads']}, "
             f"load average {facts['load_average_start'][0]:.1f} -> {facts['load_average_end'][0]:.1f}")
    if facts.get("gpu"):
        title += f", GPU {facts['gpu']}"
    width = 52
    lines = [title, f"{'target':<{width}} {'value':>10} {'limit':>9}  met"]
    for row in report["targets"]:
        limit = ("<= " if row["at_most"] else ">= ") + _number(row["limit"]) + row["unit"]
        lines.append(f"{row['label']:<{width}} {_number(row['value']) + row['unit']:>10} {limit:>9}  "
                     f"{'yes' if row['met'] else 'NO'}")
    lines.append("")
    lines.extend(f"{label:<{width}} {value}" for label, value in detail_rows(report["results"]))
    return "\n".join(lines)
