"""Auto-tune (docs/DESIGN.md, "Auto-tune"): target table, locking, duration caps, JSON block, model buckets."""
from __future__ import annotations

import pytest

from audiocraft_webui import autotune
from audiocraft_webui.autotune import TuneResult, disabled_block, model_bucket, tune

DEFAULTS = {"temperature": 1.2, "cfg_coef": 4.0, "duration": 30}

# docs/DESIGN.md's target table, written out independently of the module's table.
TABLE = [
    ("small", "low", 1.25, 3.2, 35),
    ("small", "mid", 1.20, 4.0, 30),
    ("small", "high", 1.05, 3.5, 20),
    ("medium", "low", 1.18, 3.3, 40),
    ("medium", "mid", 1.15, 3.8, 30),
    ("medium", "high", 1.00, 3.4, 25),
    ("large", "low", 1.12, 3.2, 45),
    ("large", "mid", 1.05, 3.6, 30),
    ("large", "high", 0.95, 3.2, 25),
]
# A model of each bucket and a top_p that lands in each band.
BUCKET_MODEL = {"small": "small", "medium": "medium", "large": "large"}
BAND_TOP_P = {"low": 0.2, "mid": 0.5, "high": 0.9}


@pytest.mark.parametrize(("bucket", "band", "temperature", "cfg_coef", "cap"), TABLE)
def test_every_table_cell_with_unlocked_defaults(bucket, band, temperature, cfg_coef, cap):
    result = tune(BUCKET_MODEL[bucket], top_k=250, top_p=BAND_TOP_P[band], **DEFAULTS)

    assert result.block["band"] == band
    assert result.block["model_bucket"] == bucket
    assert result.values["temperature"] == temperature
    assert result.values["cfg_coef"] == cfg_coef
    assert result.values["duration"] == min(30, cap)
    assert isinstance(result.values["duration"], int)


@pytest.mark.parametrize(("bucket", "band", "temperature", "cfg_coef", "cap"), TABLE)
def test_module_table_matches_protocol(bucket, band, temperature, cfg_coef, cap):
    # Only 30 s is ever unlocked, so caps above 30 can only be checked through the module's table.
    assert autotune.TARGETS[(bucket, band)] == autotune.Target(temperature, cfg_coef, cap)


@pytest.mark.parametrize(("bucket", "band", "temperature", "cfg_coef", "cap"), TABLE)
def test_every_table_cell_records_changes(bucket, band, temperature, cfg_coef, cap):
    changes = tune(BUCKET_MODEL[bucket], top_k=250, top_p=BAND_TOP_P[band], **DEFAULTS).block["changes"]

    expected = {}
    if abs(temperature - 1.2) > 1e-6:
        expected["temperature"] = {"old": 1.2, "new": temperature}
    if abs(cfg_coef - 4.0) > 1e-6:
        expected["cfg_coef"] = {"old": 4.0, "new": cfg_coef}
    if cap < 30:
        expected["duration"] = {"old": 30, "new": cap, "cap_reason": f"diversity_{band}"}
    assert changes == expected


def test_small_mid_changes_nothing_and_is_not_applied():
    result = tune("small", top_k=250, top_p=0.67, **DEFAULTS)

    assert result.block["applied"] is False
    assert result.block["changes"] == {}
    assert result.values == DEFAULTS


# docs/DESIGN.md's worked examples.
def test_worked_example_ui_defaults_on_large():
    result = tune("large", top_k=250, top_p=0.67, **DEFAULTS)

    assert result.block == {
        "applied": True,
        "band": "mid",
        "model_bucket": "large",
        "source": "top_p",
        "diversity_metric": 0.67,
        "changes": {"temperature": {"old": 1.2, "new": 1.05}, "cfg_coef": {"old": 4.0, "new": 3.6}},
        "user_locked": {"temperature": False, "cfg_coef": False, "duration": False},
    }
    assert result.values == {"temperature": 1.05, "cfg_coef": 3.6, "duration": 30}


def test_worked_example_large_top_k_250_is_high():
    result = tune("large", top_k=250, top_p=0.0, **DEFAULTS)

    block = result.block
    assert (block["band"], block["source"], block["diversity_metric"]) == ("high", "top_k", 1.0)
    assert result.values == {"temperature": 0.95, "cfg_coef": 3.2, "duration": 25}
    assert result.block["changes"]["duration"] == {"old": 30, "new": 25, "cap_reason": "diversity_high"}


def test_worked_example_large_top_k_50_is_low_and_keeps_duration():
    result = tune("large", top_k=50, top_p=0.0, **DEFAULTS)

    assert (result.block["band"], result.block["diversity_metric"]) == ("low", 0.2)
    assert result.values == {"temperature": 1.12, "cfg_coef": 3.2, "duration": 30}
    assert "duration" not in result.block["changes"]


@pytest.mark.parametrize("top_k", [0, 40, 250])
def test_worked_example_small_top_p_09_whatever_top_k(top_k):
    result = tune("small", top_k=top_k, top_p=0.9, **DEFAULTS)

    assert result.block["band"] == "high"
    assert result.values == {"temperature": 1.05, "cfg_coef": 3.5, "duration": 20}
    assert result.block["changes"]["duration"]["cap_reason"] == "diversity_high"


def test_worked_example_medium_with_locked_temperature_and_duration():
    result = tune("medium", top_k=250, top_p=0.67, temperature=1.0, cfg_coef=4.0, duration=60)

    assert result.block["band"] == "mid"
    assert result.block["user_locked"] == {"temperature": True, "cfg_coef": False, "duration": True}
    assert result.block["changes"] == {"cfg_coef": {"old": 4.0, "new": 3.8}}
    assert result.values == {"temperature": 1.0, "cfg_coef": 3.8, "duration": 60}


# Locking.
def test_locked_temperature_is_kept():
    result = tune("large", top_k=250, top_p=0.0, temperature=1.3, cfg_coef=4.0, duration=30)

    assert result.block["user_locked"] == {"temperature": True, "cfg_coef": False, "duration": False}
    assert result.values == {"temperature": 1.3, "cfg_coef": 3.2, "duration": 25}
    assert set(result.block["changes"]) == {"cfg_coef", "duration"}


def test_locked_cfg_coef_is_kept():
    result = tune("large", top_k=250, top_p=0.0, temperature=1.2, cfg_coef=5.0, duration=30)

    assert result.block["user_locked"] == {"temperature": False, "cfg_coef": True, "duration": False}
    assert result.values == {"temperature": 0.95, "cfg_coef": 5.0, "duration": 25}
    assert set(result.block["changes"]) == {"temperature", "duration"}


def test_locked_duration_is_kept_even_above_the_cap():
    result = tune("small", top_k=250, top_p=0.9, temperature=1.2, cfg_coef=4.0, duration=45)

    assert result.block["user_locked"] == {"temperature": False, "cfg_coef": False, "duration": True}
    assert result.values == {"temperature": 1.05, "cfg_coef": 3.5, "duration": 45}
    assert set(result.block["changes"]) == {"temperature", "cfg_coef"}


def test_all_locked_applies_nothing():
    result = tune("large", top_k=250, top_p=0.0, temperature=0.7, cfg_coef=6.0, duration=12)

    assert result.block["applied"] is False
    assert result.block["changes"] == {}
    assert result.block["user_locked"] == {"temperature": True, "cfg_coef": True, "duration": True}
    assert result.values == {"temperature": 0.7, "cfg_coef": 6.0, "duration": 12}


def test_values_within_tolerance_of_the_defaults_are_not_locked():
    result = tune("large", top_k=250, top_p=0.0, temperature=1.2 + 5e-7, cfg_coef=4.0 - 5e-7, duration=30)

    assert result.block["user_locked"] == {"temperature": False, "cfg_coef": False, "duration": False}
    assert result.values["temperature"] == 0.95


def test_values_just_beyond_tolerance_are_locked():
    result = tune("large", top_k=250, top_p=0.0, temperature=1.2 + 2e-6, cfg_coef=4.0 - 2e-6, duration=30)

    assert result.block["user_locked"] == {"temperature": True, "cfg_coef": True, "duration": False}
    assert result.values["temperature"] == 1.2 + 2e-6


@pytest.mark.parametrize("duration", [29, 31])
def test_duration_other_than_30_is_locked(duration):
    assert tune("large", top_k=250, top_p=0.0, temperature=1.2, cfg_coef=4.0, duration=duration).block[
        "user_locked"
    ]["duration"] is True


@pytest.mark.parametrize(("model", "top_p"), [("large", 0.2), ("medium", 0.1), ("small", 0.05)])
def test_duration_is_never_raised_to_a_higher_cap(model, top_p):
    result = tune(model, top_k=250, top_p=top_p, **DEFAULTS)

    assert result.block["band"] == "low"
    assert autotune.TARGETS[(result.block["model_bucket"], "low")].duration_cap > 30
    assert result.values["duration"] == 30
    assert "duration" not in result.block["changes"]


def test_tuned_values_fed_back_would_count_as_user_locked():
    # Locking is decided from whatever tune() is given, so callers must pass (and store) the user's
    # values, never the effective ones; repeating with the user's values gives the same result.
    first = tune("large", top_k=250, top_p=0.0, **DEFAULTS)
    again = tune("large", top_k=250, top_p=0.0, **DEFAULTS)

    assert first == again
    assert tune("large", top_k=250, top_p=0.0, **first.values).block["user_locked"] == {
        "temperature": True,
        "cfg_coef": True,
        "duration": True,
    }


# Diversity metric and bands.
@pytest.mark.parametrize(
    ("top_p", "band"), [(0.25, "low"), (0.2500001, "mid"), (0.75, "mid"), (0.7500001, "high"), (1.0, "high")]
)
def test_band_boundaries_with_top_p(top_p, band):
    assert tune("large", top_k=250, top_p=top_p, **DEFAULTS).block["band"] == band


@pytest.mark.parametrize(
    ("top_k", "band", "metric"), [(62, "low", 0.248), (63, "mid", 0.252), (187, "mid", 0.748), (188, "high", 0.752)]
)
def test_band_boundaries_with_top_k(top_k, band, metric):
    block = tune("large", top_k=top_k, top_p=0.0, **DEFAULTS).block

    assert (block["band"], block["source"], block["diversity_metric"]) == (band, "top_k", metric)


def test_exact_boundaries_are_inclusive():
    assert autotune.band(0.25) == "low"
    assert autotune.band(0.75) == "mid"
    assert tune("large", top_k=0, top_p=0.25, **DEFAULTS).block["band"] == "low"
    assert tune("large", top_k=0, top_p=0.75, **DEFAULTS).block["band"] == "mid"


def test_top_k_zero_gives_metric_zero_and_low_band():
    block = tune("small", top_k=0, top_p=0.0, **DEFAULTS).block

    assert (block["diversity_metric"], block["source"], block["band"]) == (0.0, "top_k", "low")


def test_top_k_metric_is_clamped_to_one():
    assert autotune.diversity(500, 0.0) == (1.0, "top_k")
    assert autotune.diversity(-5, 0.0) == (0.0, "top_k")


def test_top_p_takes_precedence_over_top_k():
    block = tune("large", top_k=10, top_p=0.9, **DEFAULTS).block

    assert (block["source"], block["diversity_metric"], block["band"]) == ("top_p", 0.9, "high")


def test_diversity_metric_is_rounded_to_4_dp():
    assert tune("large", top_k=250, top_p=0.123456, **DEFAULTS).block["diversity_metric"] == 0.1235


# Model buckets (real size, not V3's substring rule).
@pytest.mark.parametrize(
    ("model", "bucket"),
    [
        ("small", "small"),
        ("stereo-small", "small"),
        ("medium", "medium"),
        ("melody", "medium"),
        ("stereo-medium", "medium"),
        ("stereo-melody", "medium"),
        ("large", "large"),
        ("melody-large", "large"),
        ("stereo-large", "large"),
        ("stereo-melody-large", "large"),
        ("facebook/musicgen-melody", "medium"),
        ("facebook/musicgen-stereo-melody-large", "large"),
        ("facebook/musicgen-small", "small"),
        ("Facebook/MusicGen-Large", "large"),
        ("someone/my-large-finetune", "large"),
        ("someone/musicgen-medium-jazz", "medium"),
        ("someone/custom", "small"),
        ("debug", "small"),
    ],
)
def test_model_bucket(model, bucket):
    assert model_bucket(model) == bucket


def test_melody_uses_the_medium_row_unlike_v3():
    result = tune("melody", top_k=250, top_p=0.67, **DEFAULTS)

    assert result.block["model_bucket"] == "medium"
    assert result.values == {"temperature": 1.15, "cfg_coef": 3.8, "duration": 30}


# Block shape, purity, errors.
def test_disabled_block():
    assert disabled_block() == {"applied": False, "disabled": True}
    disabled_block()["applied"] = True
    assert disabled_block()["applied"] is False


def test_block_has_exactly_the_documented_keys():
    block = tune("large", top_k=250, top_p=0.67, **DEFAULTS).block

    assert list(block) == ["applied", "band", "model_bucket", "source", "diversity_metric", "changes",
                           "user_locked"]


def test_input_is_not_mutated():
    submitted = {"top_k": 250, "top_p": 0.0, "temperature": 1.2, "cfg_coef": 4.0, "duration": 30}
    snapshot = dict(submitted)

    result = tune("large", **submitted)

    assert submitted == snapshot
    assert result.values is not submitted
    assert isinstance(result, TuneResult)
    with pytest.raises(AttributeError):
        result.values = {}  # type: ignore[misc]


def test_duration_stays_an_int_when_given_a_whole_float():
    result = tune("large", top_k=250, top_p=0.0, temperature=1.2, cfg_coef=4.0, duration=30.0)

    assert result.values["duration"] == 25
    assert type(result.values["duration"]) is int
    assert type(result.block["changes"]["duration"]["old"]) is int


@pytest.mark.parametrize(
    "bad",
    [{"temperature": float("nan")}, {"cfg_coef": float("inf")}, {"duration": 30.5}, {"top_p": float("nan")}],
)
def test_invalid_inputs_raise(bad):
    kwargs = {"top_k": 250, "top_p": 0.67, **DEFAULTS, **bad}
    with pytest.raises(ValueError):
        tune("large", **kwargs)
