"""Parameter auto-tune: V3's diversity-driven adjustment of temperature, cfg_coef and duration.

The rules are those of docs/DESIGN.md, "Auto-tune", with two deliberate differences from V3:

* **Model bucket by real size.** V3 picked the bucket by substring ("large", then "medium", else small), which
  put ``melody`` (a 1.5B model) in ``small``. Here every known MusicGen checkpoint goes to the bucket of its
  parameter count; see :func:`model_bucket`.
* **No feedback loop.** :func:`tune` decides what is user-locked from the values the *user*
  submitted and returns the effective values separately, so tuned values are never mistaken for user choices on a rerun.

Everything here is pure: no torch, no Flask, no I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

#: The reference defaults; a submitted value that differs from these is "user-locked" and never changed.
REFERENCE_TEMPERATURE = 1.2
REFERENCE_CFG_COEF = 4.0
REFERENCE_DURATION = 30
#: Two floats closer than this count as equal (for locking and for recording a change).
TOLERANCE = 1e-6

#: top_k is mapped to a diversity metric in [0, 1] by dividing by this.
TOP_K_SCALE = 250
#: Upper bounds (inclusive) of the ``low`` and ``mid`` diversity bands; anything above is ``high``.
LOW_BAND_MAX = 0.25
MID_BAND_MAX = 0.75


@dataclass(frozen=True)
class Target:
    """The tuned values for one (model bucket, diversity band) cell; duration is a cap, never a raise."""

    temperature: float
    cfg_coef: float
    duration_cap: int


#: docs/DESIGN.md's target table, keyed by (bucket, band).
TARGETS: dict[tuple[str, str], Target] = {
    ("small", "low"): Target(1.25, 3.2, 35),
    ("small", "mid"): Target(1.20, 4.0, 30),
    ("small", "high"): Target(1.05, 3.5, 20),
    ("medium", "low"): Target(1.18, 3.3, 40),
    ("medium", "mid"): Target(1.15, 3.8, 30),
    ("medium", "high"): Target(1.00, 3.4, 25),
    ("large", "low"): Target(1.12, 3.2, 45),
    ("large", "mid"): Target(1.05, 3.6, 30),
    ("large", "high"): Target(0.95, 3.2, 25),
}

#: Known MusicGen checkpoints (short names) by parameter count: 300M, 1.5B and 3.3B.
MODEL_BUCKETS: dict[str, str] = {
    "small": "small",
    "stereo-small": "small",
    "medium": "medium",
    "melody": "medium",
    "stereo-medium": "medium",
    "stereo-melody": "medium",
    "large": "large",
    "melody-large": "large",
    "stereo-large": "large",
    "stereo-melody-large": "large",
}

_MODEL_ID_PREFIX = "musicgen-"


@dataclass(frozen=True)
class TuneResult:
    """What auto-tune decided: the effective values to generate with and the JSON block to store.

    Attributes:
        values: effective ``temperature`` (float), ``cfg_coef`` (float) and ``duration`` (int, seconds).
        block: the ``parameters.auto_tune`` JSON block (docs/DESIGN.md, "Auto-tune").
    """

    values: dict[str, float | int]
    block: dict


def short_model_name(model: str) -> str:
    """Reduce a model id such as ``facebook/musicgen-large`` to its short name (``large``) for lookups."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    return name.removeprefix(_MODEL_ID_PREFIX)


def model_bucket(model: str) -> str:
    """Return the target-table bucket (``small`` / ``medium`` / ``large``) for a model by its real size.

    Known checkpoints map by parameter count: ``small`` and ``stereo-small`` (300M) → small; ``medium``,
    ``melody``, ``stereo-medium`` and ``stereo-melody`` (1.5B) → medium; ``large``, ``melody-large``,
    ``stereo-large`` and ``stereo-melody-large`` (3.3B) → large. An unknown or custom model is ``large`` if
    its name contains "large", else ``medium`` if it contains "medium", else ``small``.

    V3 used that substring rule for every model, so its ``melody`` landed in ``small``; this
    function deliberately fixes that.

    Args:
        model: a short name (``"stereo-melody"``) or a full id (``"facebook/musicgen-stereo-melody"``).

    Returns:
        ``"small"``, ``"medium"`` or ``"large"``.
    """
    name = short_model_name(model)
    if name in MODEL_BUCKETS:
        return MODEL_BUCKETS[name]
    if "large" in name:
        return "large"
    if "medium" in name:
        return "medium"
    return "small"


def diversity(top_k: int, top_p: float) -> tuple[float, str]:
    """Measure sampling diversity in [0, 1] the way V3 does: top_p when it is used, else top_k / 250.

    Returns:
        ``(metric, source)`` where source is ``"top_p"`` or ``"top_k"``.
    """
    if top_p > 0:
        return float(top_p), "top_p"
    return min(max(top_k / TOP_K_SCALE, 0.0), 1.0), "top_k"


def band(metric: float) -> str:
    """Classify a diversity metric: ≤ 0.25 ``low``, ≤ 0.75 ``mid``, otherwise ``high`` (bounds inclusive)."""
    if metric <= LOW_BAND_MAX:
        return "low"
    if metric <= MID_BAND_MAX:
        return "mid"
    return "high"


def disabled_block() -> dict:
    """Return the ``auto_tune`` block stored when the user turned auto-tune off."""
    return {"applied": False, "disabled": True}


def tune(
    model: str, *, top_k: int, top_p: float, temperature: float, cfg_coef: float, duration: int
) -> TuneResult:
    """Apply the auto-tune target table to the user's submitted values (after the server's clamps).

    A parameter is user-locked when the submitted value differs from the reference default (temperature 1.2,
    cfg_coef 4.0 by more than 1e-6; duration not exactly 30 s) and is then never changed. An unlocked
    temperature or cfg_coef takes the target value; an unlocked duration is only ever lowered to the cap.

    Args:
        model: short name or full id of the model that will generate (see :func:`model_bucket`).
        top_k: the user's top_k (0-250); used for the metric only when ``top_p`` is 0.
        top_p: the user's top_p (0-1); a value > 0 takes precedence over top_k.
        temperature: the user's temperature.
        cfg_coef: the user's classifier-free guidance coefficient.
        duration: the user's duration of the generated part, in whole seconds.

    Returns:
        The effective values and the JSON block; no argument is modified.

    Raises:
        ValueError: if a value is not finite or ``duration`` is not a whole number of seconds.
    """
    if not all(math.isfinite(v) for v in (top_k, top_p, temperature, cfg_coef, duration)):
        raise ValueError("auto-tune needs finite top_k, top_p, temperature, cfg_coef and duration")
    if int(duration) != duration:
        raise ValueError(f"duration must be a whole number of seconds, got {duration!r}")
    user_duration = int(duration)

    metric, source = diversity(top_k, top_p)
    diversity_band = band(metric)
    bucket = model_bucket(model)
    target = TARGETS[(bucket, diversity_band)]

    locked = {
        "temperature": abs(temperature - REFERENCE_TEMPERATURE) > TOLERANCE,
        "cfg_coef": abs(cfg_coef - REFERENCE_CFG_COEF) > TOLERANCE,
        "duration": user_duration != REFERENCE_DURATION,
    }
    values: dict[str, float | int] = {
        "temperature": temperature,
        "cfg_coef": cfg_coef,
        "duration": user_duration,
    }
    changes: dict[str, dict] = {}
    for name, new in (("temperature", target.temperature), ("cfg_coef", target.cfg_coef)):
        old = values[name]
        if not locked[name] and abs(new - old) > TOLERANCE:
            values[name] = new
            changes[name] = {"old": old, "new": new}
    if not locked["duration"] and user_duration > target.duration_cap:
        values["duration"] = target.duration_cap
        changes["duration"] = {
            "old": user_duration,
            "new": target.duration_cap,
            "cap_reason": f"diversity_{diversity_band}",
        }

    block = {
        "applied": bool(changes),
        "band": diversity_band,
        "model_bucket": bucket,
        "source": source,
        "diversity_metric": round(metric, 4),
        "changes": changes,
        "user_locked": locked,
    }
    return TuneResult(values=values, block=block)
