"""Offline model hubs for the benchmark, built once into a cache folder and reused while their recipe holds.

* ``tiny``: the test suite's tiny random models (every repo the app offers; see ``tools.tinyhub``).
* ``cpu``: the tiny hub, with ``musicgen-small`` and ``musicgen-stereo-small`` replaced by random-weight
  models of musicgen-small's real architecture, and ``htdemucs`` by the released HTDemucs architecture.
* ``gpu``: the tiny hub, with ``musicgen-small`` and ``musicgen-medium`` at their real architectures and
  the real-size ``htdemucs``.

Random weights run exactly as fast as the released ones: step time depends on shapes, dtype and kernels,
never on the values. Every other repo of a real hub stays tiny, which the benchmark
uses for warm-up jobs. Building imports torch and the hub libraries, which read ``HF_HOME`` once, so it
runs in a child process: ``python -m benchmarks.hubs KIND DIR``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from tools import tinyhub

STAMP_NAME = "bench-hub.json"
RECIPE_VERSION = 1
#: Real-architecture MusicGen repos of each hub kind: repo id -> (model scale, stereo).
REAL_MUSICGEN: dict[str, dict[str, tuple[str, bool]]] = {
    "tiny": {},
    "cpu": {"facebook/musicgen-small": ("small", False), "facebook/musicgen-stereo-small": ("small", True)},
    "gpu": {"facebook/musicgen-small": ("small", False), "facebook/musicgen-medium": ("medium", False)},
}
#: The released ``htdemucs`` (signature 955717e8) where it differs from ``HTDemucs``' defaults: four sources,
#: 7.8 s segments (a Fraction, JSON-encoded as demucs' exporter does), compressed residual branches with
#: attention and LSTM (``dconv_mode`` 3) and a 512-channel bottleneck around the cross-domain transformer.
HTDEMUCS_KWARGS: dict[str, object] = {
    "sources": ["drums", "bass", "other", "vocals"],
    "samplerate": 44100,
    "segment": {"_type": "fraction", "numerator": 39, "denominator": 5},
    "dconv_mode": 3,
    "bottom_channels": 512,
}


def offline_env(hf_home: Path) -> dict[str, str]:
    """The environment of a process that loads every model from ``hf_home`` and never from the network."""
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1"}
    env.pop("AUDIOCRAFT_CACHE_DIR", None)
    return env


def _stamp(folder: Path, name: str) -> dict:
    """The JSON stamp a finished build left in ``folder`` (empty when there is none)."""
    try:
        data = json.loads((folder / name).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _expected_stamp(kind: str) -> dict:
    """What the stamp of an up-to-date hub of ``kind`` says."""
    return {"recipe": RECIPE_VERSION, "kind": kind, "tinyhub_recipe": tinyhub.RECIPE_VERSION}


def is_built(folder: Path, kind: str) -> bool:
    """Whether ``folder`` holds a finished hub of ``kind`` built by the current recipes."""
    if kind == "tiny":
        return _stamp(folder, tinyhub.STAMP_NAME).get("recipe") == tinyhub.RECIPE_VERSION
    return _stamp(folder, STAMP_NAME) == _expected_stamp(kind)


def ensure_hub(folder: Path, kind: str, log: Path) -> Path:
    """Build the hub of ``kind`` into ``folder`` unless it is there already; the build's output goes to ``log``.

    Returns:
        The absolute hub folder, to use as ``HF_HOME``.
    Raises:
        subprocess.CalledProcessError: the build failed (its log says why).
    """
    folder = folder.resolve()
    if not is_built(folder, kind):
        folder.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            subprocess.run([sys.executable, "-m", __name__, kind, str(folder)], env=offline_env(folder),
                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=True)
    return folder


def build(folder: Path, kind: str) -> None:
    """Write the hub (child process only: ``HF_HOME`` must already be ``folder``, offline)."""
    from audiocraft_webui import compat

    compat.install()
    (folder / STAMP_NAME).unlink(missing_ok=True)
    tinyhub.build(folder)
    for repo_id, (scale, stereo) in REAL_MUSICGEN[kind].items():
        tinyhub.write_musicgen_repo(folder, repo_id, scale, stereo=stereo)
    if kind != "tiny":
        write_real_htdemucs(folder)
    (folder / STAMP_NAME).write_text(json.dumps(_expected_stamp(kind)))


def write_real_htdemucs(folder: Path) -> None:
    """Replace the tiny ``htdemucs`` of a tiny hub with random weights of the released architecture."""
    from demucs.hf import _decode_json
    from demucs.htdemucs import HTDemucs
    from safetensors.torch import save_file

    model = HTDemucs(**_decode_json(HTDEMUCS_KWARGS))
    snapshot = (folder / "hub" / ("models--" + tinyhub.HTDEMUCS_REPO.replace("/", "--")) / "snapshots"
                / tinyhub.REVISION)
    metadata = {"klass": "demucs.htdemucs.HTDemucs", "args": "[]", "kwargs": json.dumps(HTDEMUCS_KWARGS)}
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, snapshot / f"{tinyhub.HTDEMUCS_SIGNATURE}.safetensors", metadata=metadata)


def main(argv: list[str] | None = None) -> int:
    """Child-process entry point: build one hub."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hubs", description=build.__doc__)
    parser.add_argument("kind", choices=list(REAL_MUSICGEN))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    build(args.folder.resolve(), args.kind)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
