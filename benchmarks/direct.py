"""The baseline side of the benchmark: the same work as an app job, called directly in a plain process.

The parent starts ``python -m benchmarks.direct --device D --threads N`` with the same hub,
device and torch thread count as the server, then sends one JSON request per line on stdin and reads
one JSON answer per line. Requests run in the process's main thread, as a script would run them:

* ``{"op": "generate", "params": {...}, "out": FILE}``: the app's engine generates with the same model,
  sampling parameters and seed, the audio is loudness-normalised and written to FILE as WAV, exactly
  what the app writes for the track (without its JSON, queue or events). The answer also gives
  ``generate_seconds``, the engine call alone.
* ``{"op": "separate", "model": NAME, "path": FILE, "out": DIR}``: ``demucs.api.Separator`` splits FILE
  and the four stems are written to DIR as 16-bit WAV, the way the app writes a stem set.

Each answer is ``{"seconds": wall, "cpu_seconds": process CPU time}`` for the request, or ``{"error": ...}``.
Anything the libraries print goes to stderr, so stdout carries answers only.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import IO

from audiocraft_webui import compat

from .procs import answer_channel


class DirectRunner:
    """Holds the loaded engine and splitter between requests, like a long-running script would."""

    def __init__(self, device: str, threads: int) -> None:
        from audiocraft_webui.engines import create_engine

        self.device = device
        self.threads = threads
        self.engine = create_engine("audiocraft", device=device, threads=threads)
        self.engine.prepare_thread()
        self._separators: dict[str, object] = {}

    def generate(self, params: dict, out: Path) -> float:
        """Generate with the engine and write the loudness-normalised WAV the app would write.

        Returns:
            Seconds the engine's ``generate`` took.
        """
        from audiocraft_webui import protocol
        from audiocraft_webui.audio import codecs, dsp, loudness
        from audiocraft_webui.engines import GenerationSpec
        from audiocraft_webui.models import ModelCatalog

        model = ModelCatalog().resolve(params["model"])
        self.engine.ensure_loaded(model, lambda _phase: None)
        spec = GenerationSpec(model=model, prompt=params["prompt"], duration=float(params["duration"]),
                              top_k=params["top_k"], top_p=params["top_p"], temperature=params["temperature"],
                              cfg_coef=params["cfg_coef"], seed=params["seed"])
        started = time.perf_counter()
        output = self.engine.generate(spec, lambda _fraction: None)
        generated = time.perf_counter() - started
        audio = dsp.to_output_channels(output.audio[:, output.prompt_samples:], keep_mono=False)
        audio, _ = loudness.normalize_loudness(audio, output.sample_rate,
                                               target_lufs=float(protocol.DEFAULT_LOUDNESS),
                                               ceiling_dbtp=protocol.TRUE_PEAK_CEILING_DBTP)
        with out.open("wb") as handle:
            codecs.encode(audio, output.sample_rate, "wav", handle)
        return generated

    def separate(self, model: str, path: Path, out: Path) -> None:
        """Split ``path`` with Demucs (model cached) and write each stem as 16-bit WAV into ``out``."""
        import soundfile as sf
        import torch

        separator = self._separator(model)
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
        _, stems = separator.separate_tensor(torch.from_numpy(samples.T.copy()), rate)
        out.mkdir(parents=True, exist_ok=True)
        for name, stem in stems.items():
            sf.write(str(out / f"{name}.wav"), stem.clamp(-1, 1).numpy().T, separator.samplerate, subtype="PCM_16")

    def _separator(self, model: str):
        """The Demucs separator for ``model``, loaded once, with the app's default shifts and overlap."""
        if model not in self._separators:
            from demucs.api import Separator

            from audiocraft_webui.config import DEFAULTS

            self._separators[model] = Separator(model=model, device=self.engine.device, progress=False,
                                                shifts=int(DEFAULTS["DEMUCS_SHIFTS"]),
                                                overlap=float(DEFAULTS["DEMUCS_OVERLAP"]))
        return self._separators[model]

    def handle(self, request: dict) -> dict:
        """Run one request and time it (wall clock and this process's CPU time)."""
        started, cpu_started = time.perf_counter(), time.process_time()
        extra = {}
        if request["op"] == "generate":
            extra["generate_seconds"] = self.generate(request["params"], Path(request["out"]))
        elif request["op"] == "separate":
            self.separate(request["model"], Path(request["path"]), Path(request["out"]))
        else:
            raise ValueError(f"unknown op {request['op']!r}")
        return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started,
                **extra}


def serve(runner: DirectRunner, requests: IO[str], answers: IO[str]) -> None:
    """Answer requests line by line until stdin closes."""
    for line in requests:
        try:
            answer = runner.handle(json.loads(line))
        except Exception as exc:  # noqa: BLE001 - the parent reports it; the process stays usable
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main(argv: list[str] | None = None) -> int:
    """Child-process entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.direct")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    answers = answer_channel()
    compat.install()
    serve(DirectRunner(args.device, args.threads), sys.stdin, answers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
