"""Capability indices and tolerance intervals (analytics/capability.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from vein2vein.analytics.capability import capability, tolerance_factor, tolerance_interval
from vein2vein.domain.errors import InvalidInput


def test_the_two_sided_exact_factor_covers_with_its_confidence_by_simulation() -> None:
    # Not only against itself: 200,000 samples of 10 normals; mean ± k·s must contain at
    # least 90 % of the population in 95 % of them (Monte Carlo SE ≈ 0.0005).
    k = tolerance_factor(10, coverage=0.90, confidence=0.95, sides=2)
    rng = np.random.default_rng(2026)
    x = rng.standard_normal((200_000, 10))
    m, s = x.mean(axis=1), x.std(axis=1, ddof=1)
    content = stats.norm.cdf(m + k * s) - stats.norm.cdf(m - k * s)
    assert (content >= 0.90).mean() == pytest.approx(0.95, abs=0.002)


def test_capability_of_individuals_uses_the_moving_range_within_and_the_sd_overall() -> None:
    x = [9.8, 10.1, 10.0, 10.3, 9.9, 10.0, 10.2, 9.7, 10.1, 10.0]
    found = capability(x, lsl=9.0, usl=11.0)
    within = np.abs(np.diff(x)).mean() / 1.128379
    overall = float(np.std(x, ddof=1))
    assert found.sigma_within == pytest.approx(within, rel=1e-5)
    assert found.cp is not None and found.cp.estimate == pytest.approx(2 / (6 * within), rel=1e-5)
    assert found.pp is not None and found.pp.estimate == pytest.approx(2 / (6 * overall))
    nearest = min(11.0 - np.mean(x), np.mean(x) - 9.0)
    assert found.cpk.estimate == pytest.approx(nearest / (3 * within), rel=1e-5)
    # Cp's interval from the chi-square distribution with n - 1 degrees of freedom.
    low = found.cp.estimate * math.sqrt(stats.chi2.ppf(0.025, 9) / 9)
    assert found.cp.low == pytest.approx(low) and found.cp.low < found.cp.estimate < found.cp.high
    assert any("only 10 points" in w for w in found.warnings)


def test_a_one_sided_specification_has_cpk_but_no_cp() -> None:
    found = capability([96.0, 95.5, 97.1, 96.4, 95.9, 96.8], lsl=90.0)
    assert found.cp is None and found.pp is None and found.cpk.estimate > 1


def test_non_normal_data_are_flagged_as_untrustworthy() -> None:
    skewed = np.random.default_rng(7).exponential(1.0, 200)
    found = capability(skewed, usl=10.0)
    assert found.normality_p is not None and found.normality_p < 0.05
    assert any("not to be trusted" in w for w in found.warnings)


def test_bad_specifications_are_refused() -> None:
    with pytest.raises(InvalidInput, match="lower or an upper"):
        capability([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(InvalidInput, match="is not below"):
        capability([1.0, 2.0, 3.0, 4.0], lsl=5, usl=1)
    with pytest.raises(InvalidInput, match="do not vary"):
        capability([1.0, 1.0, 1.0, 1.0], usl=2)


def test_a_tolerance_interval_is_the_mean_plus_minus_k_sd() -> None:
    x = [88.0, 90.0, 85.0, 92.0, 87.0, 91.0, 89.0, 86.0, 90.0, 88.0]
    low, high, k = tolerance_interval(x, coverage=0.90, confidence=0.95)
    assert k == pytest.approx(tolerance_factor(10, coverage=0.9, confidence=0.95, sides=2))
    assert low == pytest.approx(np.mean(x) - k * np.std(x, ddof=1))
    assert (
        high is not None
        and low is not None
        and high - np.mean(x) == pytest.approx(np.mean(x) - low)
    )
