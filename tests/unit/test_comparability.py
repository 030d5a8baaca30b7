"""Comparability of an attribute before and after a change (analytics/comparability.py)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from vein2vein.analytics.comparability import Tost, compare_attribute, quality_range, tost
from vein2vein.domain.errors import InvalidInput

BEFORE = [10.1, 9.8, 10.3, 10.0, 9.9, 10.2, 10.0, 9.7]
AFTER = [10.0, 10.2, 9.9, 10.1, 10.0, 10.3]
SHIFTED = [10.6, 10.8, 10.5, 10.7, 10.9, 10.6]


def test_the_test_is_equivalent_when_its_confidence_interval_lies_inside_the_margin() -> None:
    found = tost(BEFORE, AFTER, margin=0.4)
    assert -0.4 < found.ci_low < found.ci_high < 0.4
    assert found.equivalent and found.p_value < 0.05


def test_a_shifted_process_is_not_shown_equivalent_and_its_interval_leaves_the_margin() -> None:
    found = tost(BEFORE, SHIFTED, margin=0.4)
    assert found.ci_high > 0.4
    assert not found.equivalent and found.p_value >= 0.05
    assert found.p_value == found.p_upper  # the test lots are too high, not too low


def test_the_difference_and_interval_are_welch_statistics_of_test_minus_reference() -> None:
    found = tost(BEFORE, AFTER, margin=0.4, alpha=0.05)
    v_r = np.var(BEFORE, ddof=1) / len(BEFORE)
    v_t = np.var(AFTER, ddof=1) / len(AFTER)
    se = math.sqrt(v_r + v_t)
    df = (v_r + v_t) ** 2 / (v_r**2 / (len(BEFORE) - 1) + v_t**2 / (len(AFTER) - 1))
    assert found.difference == pytest.approx(np.mean(AFTER) - np.mean(BEFORE))
    assert found.df == pytest.approx(df)
    half = stats.t.ppf(0.95, df) * se  # the 90 % interval for α = 0.05
    assert (found.ci_low, found.ci_high) == pytest.approx(
        (found.difference - half, found.difference + half)
    )
    assert found.t_lower == pytest.approx((found.difference + 0.4) / se)
    assert found.t_upper == pytest.approx((found.difference - 0.4) / se)
    assert found.p_lower == pytest.approx(stats.t.sf(found.t_lower, df))
    assert found.p_upper == pytest.approx(stats.t.cdf(found.t_upper, df))
    assert found.p_value == max(found.p_lower, found.p_upper)


def test_the_p_value_reaches_alpha_exactly_when_the_interval_touches_the_margin() -> None:
    first = tost(BEFORE, SHIFTED, margin=1.0, alpha=0.05)
    touching = max(abs(first.ci_low), abs(first.ci_high))
    at_edge = tost(BEFORE, SHIFTED, margin=touching, alpha=0.05)
    assert at_edge.p_value == pytest.approx(0.05)
    assert tost(BEFORE, SHIFTED, margin=touching * 1.001).equivalent
    assert not tost(BEFORE, SHIFTED, margin=touching * 0.999).equivalent


def test_swapping_reference_and_test_mirrors_the_result() -> None:
    forward = tost(BEFORE, SHIFTED, margin=0.5)
    backward = tost(SHIFTED, BEFORE, margin=0.5)
    assert backward.difference == pytest.approx(-forward.difference)
    assert (backward.ci_low, backward.ci_high) == pytest.approx((-forward.ci_high, -forward.ci_low))
    assert backward.t_lower == pytest.approx(-forward.t_upper)
    assert backward.p_lower == pytest.approx(forward.p_upper)
    assert backward.p_value == pytest.approx(forward.p_value)
    assert backward.df == pytest.approx(forward.df)


def test_one_group_without_variation_leaves_the_other_groups_degrees_of_freedom() -> None:
    found = tost([5.0, 5.0, 5.0, 5.0], [4.9, 5.1, 5.0, 5.2, 4.8], margin=0.5)
    assert found.sd_reference == 0 and found.df == pytest.approx(4)


def test_the_tost_result_serialises_every_field_with_its_method() -> None:
    found = tost(BEFORE, AFTER, margin=0.4)
    as_json = found.as_json()
    assert as_json["method"] == "TOST"
    assert as_json["equivalent"] is True and as_json["n_test"] == 6
    assert set(as_json) == {"method"} | {f.name for f in dataclasses.fields(Tost)}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reference": BEFORE, "test": AFTER, "margin": 0.0}, "margin 0.0 must be a positive"),
        ({"reference": BEFORE, "test": AFTER, "margin": -1.0}, "margin -1.0 must be a positive"),
        ({"reference": BEFORE, "test": AFTER, "margin": math.nan}, "margin nan"),
        ({"reference": BEFORE, "test": AFTER, "margin": 1.0, "alpha": 0.5}, "alpha 0.5"),
        ({"reference": [1.0], "test": AFTER, "margin": 1.0}, "reference: 1 values, at least 2"),
        ({"reference": BEFORE, "test": [], "margin": 1.0}, "test: 0 values, at least 2"),
        ({"reference": BEFORE, "test": [1.0, math.inf], "margin": 1.0}, "test: value 1 is inf"),
        ({"reference": [[1.0, 2.0]], "test": AFTER, "margin": 1.0}, "flat sequence"),
        ({"reference": ["a", "b"], "test": AFTER, "margin": 1.0}, "sequence of numbers"),
        ({"reference": [3.0, 3.0], "test": [4.0, 4.0], "margin": 1.0}, "neither the reference"),
    ],
)
def test_tost_refuses_what_it_cannot_test(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        tost(**kwargs)  # type: ignore[arg-type]


def test_the_quality_range_counts_the_test_lots_inside_the_mean_plus_minus_k_sd() -> None:
    reference = [10.0, 12.0, 11.0, 9.0, 13.0, 11.0]  # mean 11, SD √2
    sd = math.sqrt(2.0)
    found = quality_range(reference, [11.0, 12.0, 18.0, 10.0, 4.0], k=3)
    assert found.mean_reference == pytest.approx(11.0)
    assert found.sd_reference == pytest.approx(sd)
    assert (found.low, found.high) == pytest.approx((11 - 3 * sd, 11 + 3 * sd))
    assert found.inside == 3 and found.outside == (2, 4)
    assert found.fraction_inside == pytest.approx(0.6)
    assert not found.within


def test_a_test_value_on_the_limit_is_inside_and_the_required_fraction_is_inclusive() -> None:
    reference = [10.0, 12.0, 11.0, 9.0, 13.0, 11.0]
    high = 11 + 2 * math.sqrt(2.0)
    found = quality_range(reference, [high, 11.0, 11.5, 30.0], k=2, required_fraction=0.75)
    assert found.inside == 3 and found.outside == (3,)
    assert found.fraction_inside == 0.75 and found.within
    as_json = found.as_json()
    assert as_json["method"] == "quality range" and as_json["outside"] == [3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0.0}, "k 0.0 must be a positive"),
        ({"required_fraction": 0.0}, r"required_fraction 0.0 must be in \(0, 1\]"),
        ({"required_fraction": 1.5}, "required_fraction 1.5"),
        ({"reference": [5.0, 5.0, 5.0]}, "reference values do not vary"),
        ({"test": []}, "test: 0 values, at least 1"),
        ({"reference": [1.0, math.nan]}, "reference: value 1 is nan"),
    ],
)
def test_the_quality_range_refuses_what_it_cannot_count(
    kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"reference": BEFORE, "test": AFTER, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        quality_range(**arguments)  # type: ignore[arg-type]


def test_comparing_an_attribute_takes_the_margin_from_the_reference_sd_and_says_so() -> None:
    found = compare_attribute("viability", BEFORE, AFTER)
    assert found.tost.margin == pytest.approx(1.5 * np.std(BEFORE, ddof=1))
    assert found.margin_basis == "1.5 × reference SD"
    assert found.conclusion == "equivalent"
    assert found.reason.startswith("TOST: the 90% confidence interval")
    assert "quality range: 6 of 6 test lots (100%) inside" in found.reason
    assert found.quality_range.k == 3.0


def test_a_given_margin_is_used_as_given() -> None:
    found = compare_attribute("viability", BEFORE, AFTER, margin=0.25, margin_sd=99)
    assert found.tost.margin == 0.25 and found.margin_basis == "given"
    found = compare_attribute("viability", BEFORE, AFTER, margin_sd=2)
    assert found.margin_basis == "2 × reference SD"


def test_a_failed_tost_alone_is_named_as_the_reason() -> None:
    # Every lot inside mean ± 3 SD (9.4 to 10.6), but the mean 0.41 above, beyond 1.5 SD.
    found = compare_attribute("viability", BEFORE, [10.35, 10.45, 10.4, 10.5, 10.3, 10.45])
    assert found.quality_range.within and not found.tost.equivalent
    assert found.conclusion == "not shown equivalent"
    assert found.reason.startswith("TOST failed: the 90% confidence interval")
    assert "quality range" not in found.reason


def test_a_failed_quality_range_alone_is_named_as_the_reason() -> None:
    # Nine lots on target and one far out: the mean stays inside a generous margin, the lot
    # does not stay inside the range, and 9 of 10 is short of 95 %.
    after = [10.0] * 9 + [11.5]
    found = compare_attribute("viability", BEFORE, after, margin=1.0, required_fraction=0.95)
    assert found.tost.equivalent and not found.quality_range.within
    assert found.quality_range.outside == (9,)
    assert found.conclusion == "not shown equivalent"
    assert found.reason.startswith("quality range failed: only 9 of 10 test lots (90%)")
    assert found.reason.endswith("95% required")


def test_both_failures_are_named() -> None:
    found = compare_attribute("potency", BEFORE, [12.0, 12.5, 13.0])
    assert found.reason.startswith("TOST failed") and "; quality range failed" in found.reason
    as_json = found.as_json()
    assert as_json["attribute"] == "potency" and as_json["conclusion"] == "not shown equivalent"
    assert isinstance(as_json["tost"], dict) and isinstance(as_json["quality_range"], dict)


@pytest.mark.parametrize(
    ("name", "reference", "kwargs", "message"),
    [
        ("  ", BEFORE, {}, "needs a name"),
        ("viability", BEFORE, {"margin_sd": 0.0}, "margin_sd 0.0 must be positive"),
        ("viability", [7.0, 7.0, 7.0], {}, "viability: the reference values do not vary"),
        ("viability", BEFORE, {"margin": -2.0}, "margin -2.0"),
    ],
)
def test_comparing_refuses_a_comparison_it_cannot_make(
    name: str, reference: list[float], kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        compare_attribute(name, reference, AFTER, **kwargs)
