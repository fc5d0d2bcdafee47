"""Which decode loop runs a generation, the app's static loop or audiocraft's own, and what the track records.

``--decoder static`` runs the static loop (:mod:`.decoder`) wherever the model allows it; ``audiocraft`` keeps
audiocraft's eager loop; ``auto`` (the default) takes the static loop only on the kinds of device where it
is tested and measured faster (:data:`MEASURED_FASTER`, docs/PERFORMANCE.md), else audiocraft's. A model
the static loop does not reproduce (:func:`.staticlm.unsupported`) keeps audiocraft's loop, with one log line
saying why. On the CPU ``--cpu-weights`` sets the precision of the static loop's matrix products.

torch is imported inside functions, so importing this module stays cheap.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .tokentap import TokenSink, tap_tokens

log = logging.getLogger(__name__)

DECODERS = ("auto", "static", "audiocraft")
CPU_WEIGHTS = ("fp32", "bf16", "int8")
#: The CPU precision used unless ``--cpu-weights`` says otherwise (its speed and quality: docs/PERFORMANCE.md).
DEFAULT_CPU_WEIGHTS = "fp32"
#: Device kinds where the static loop is tested and measured faster than audiocraft's, so ``auto`` takes it.
#: CUDA joins once ``python -m benchmarks --gpu`` has measured it (not yet: no GPU was available).
MEASURED_FASTER = frozenset({"cpu"})
DTYPE_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


@dataclass(frozen=True)
class DecoderUse:
    """The loop one generation runs: ``static`` or ``audiocraft``, its device and weight precision.

    ``fallback`` says why the static loop was wanted but not used.
    """

    name: str
    device: str
    weights: str
    fallback: str | None = None

    def record(self) -> dict:
        """The track JSON's ``parameters.decoder`` (README, "JSON schema")."""
        fields = {"name": self.name, "device": self.device, "weights": self.weights}
        return fields if self.fallback is None else {**fields, "fallback": self.fallback}


class DecoderChoice:
    """The engine's decode-loop policy, holding the static loop's weights for the loaded model.

    Raises:
        ValueError: for an unknown ``decoder`` or ``cpu_weights``.
    """

    def __init__(self, decoder: str = "auto", cpu_weights: str = DEFAULT_CPU_WEIGHTS) -> None:
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}: use one of {', '.join(DECODERS)}")
        if cpu_weights not in CPU_WEIGHTS:
            raise ValueError(f"unknown CPU weight precision {cpu_weights!r}: use one of {', '.join(CPU_WEIGHTS)}")
        self.decoder, self.cpu_weights = decoder, cpu_weights
        self._static: Any = None  # StaticDecoder of the loaded model, built on its first static generation

    def choose(self, model: Any, key: str, device: str) -> DecoderUse:
        """The loop for a generation of ``model`` (loaded as ``key``) on ``device``."""
        from .staticlm import unsupported

        kind = device.split(":")[0]
        own = DTYPE_NAMES.get(str(next(iter(model.lm.parameters())).dtype).removeprefix("torch."), "other")
        if self.decoder == "audiocraft" or (self.decoder == "auto" and kind not in MEASURED_FASTER):
            return DecoderUse("audiocraft", device, own)
        reason = unsupported(model.lm)
        if reason is not None:
            log.info("%s decodes with audiocraft's loop: the static loop does not support %s", key, reason)
            return DecoderUse("audiocraft", device, own, fallback=reason)
        return DecoderUse("static", device, self.cpu_weights if kind == "cpu" else own)

    @contextlib.contextmanager
    def decoding(self, model: Any, use: DecoderUse, sink: TokenSink | None) -> Iterator[None]:
        """Run ``model``'s generate calls inside the block with the loop ``use`` names, feeding ``sink`` if given."""
        if use.name == "static":
            from .decoder import installed

            with installed(self._decoder(model, use.weights if use.device == "cpu" else None), model, sink):
                yield
        elif sink is not None:
            with tap_tokens(model, sink):
                yield
        else:
            yield

    def _decoder(self, model: Any, weights: str | None) -> Any:
        """The static loop for ``model`` with ``weights`` (None: as loaded), prepared once per model and precision."""
        from .decoder import StaticDecoder

        if self._static is None or self._static.lm is not model.lm or self._static.weights != weights:
            self._static = None  # a previous precision's weight copies go first
            self._static = StaticDecoder(model.lm, weights)
        return self._static

    def drop(self) -> None:
        """Forget the static loop's weights (the model is being unloaded)."""
        self._static = None
