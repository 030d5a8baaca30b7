"""Tolerance intervals against published values.

Sources: one-sided normal tolerance factors — the tables of Natrella, *Experimental
Statistics* (NBS Handbook 91), Table A-7, reproduced in Krishnamoorthy & Mathew,
*Statistical Tolerance Regions* (2009), Table B1; distribution-free sample sizes — Wilks
(1941), as tabulated in the NIST/SEMATECH e-Handbook §7.2.6.4: the smallest sample whose
extremes cover the proportion with the confidence.
"""

from __future__ import annotations

import pytest
from scipy import stats

from vein2vein.analytics.capability import nonparametric_tolerance, tolerance_factor
from vein2vein.domain.errors import InvalidInput


@pytest.mark.parametrize(
    ("n", "coverage", "confidence", "k"),
    [(10, 0.90, 0.95, 2.355), (10, 0.95, 0.95, 2.911), (20, 0.90, 0.95, 1.926)],
)
def test_one_sided_normal_factors_match_the_published_table(
    n: int, coverage: float, confidence: float, k: float
) -> None:
    assert tolerance_factor(n, coverage=coverage, confidence=confidence, sides=1) == (
        pytest.approx(k, abs=1e-3)
    )


@pytest.mark.parametrize(
    ("coverage", "confidence", "sides", "n"),
    [(0.90, 0.95, ("low", "high"), 46), (0.95, 0.95, ("low", "high"), 93),
     (0.90, 0.95, ("high",), 29), (0.95, 0.95, ("high",), 59)],
)  # fmt: skip
def test_the_extremes_of_wilks_sample_sizes_are_a_tolerance_interval_and_one_fewer_is_not(
    coverage: float, confidence: float, sides: tuple[str, ...], n: int
) -> None:
    values = stats.norm.ppf([(i + 0.5) / n for i in range(n)])
    found = nonparametric_tolerance(values, coverage=coverage, confidence=confidence, sides=sides)
    assert found.confidence >= confidence and found.ranks in ((1, n), (1, n))
    with pytest.raises(InvalidInput, match=f"{n} are needed"):
        nonparametric_tolerance(values[:-1], coverage=coverage, confidence=confidence,
                                sides=sides)  # fmt: skip
