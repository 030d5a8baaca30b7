"""Equivalence tests (TOST, Welch) against published values.

Sources:

* Student's sleep data — the worked example of R's ``t.test`` help page,
  ``t.test(extra ~ group, data = sleep)`` (R Core Team, package *stats*;
  https://stat.ethz.ch/R-manual/R-devel/library/stats/html/t.test.html). The data are the
  extra hours of sleep of 10 patients on two drugs (Cushny & Peebles, as given by Student
  (1908), "The probable error of a mean", *Biometrika* 6, 1-25; R's ``datasets::sleep``).
  Printed output: "Welch Two Sample t-test … t = -1.8608, df = 17.776, p-value = 0.07939 …
  95 percent confidence interval: -3.3654832 0.2054832 … mean in group 1 0.75, mean in
  group 2 2.33" (difference group 1 − group 2).
* The NCSS two-sample equivalence example (yields of two processes, equivalence limits
  ±110, α = 0.025, unequal variances), as checked in TOSTER's validation test
  ``tests/testthat/test-NCSS1.R`` ("NCSS TOST 198-1 to 197-8"; D. Lakens & A. R. Caldwell,
  TOSTER, https://github.com/Lakens/TOSTER): df 19.169, standard error 53.618547, difference
  -8.1153846, confidence interval (-120.27336, 104.04259), one-sided p-values 0.03628
  (lower) and 0.02002 (upper).

A TOST's one-sided statistics are the Welch t statistic shifted by ±margin/SE, and at
level α its interval is the two-sided (1 − 2α) Welch interval: so a published Welch t-test
checks the TOST's standard error, degrees of freedom and interval.
"""

from __future__ import annotations

import pytest

from vein2vein.analytics.comparability import tost

SLEEP_DRUG_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_DRUG_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]

YIELD_A = [452, 874, 554, 447, 356, 754, 558, 574, 664, 682, 547, 435, 245]
YIELD_B = [546, 547, 774, 465, 459, 665, 467, 365, 589, 534, 456, 651, 654, 665, 546, 537]


def test_the_welch_statistics_of_the_sleep_data_match_rs_t_test_example() -> None:
    # Reference drug 2, test drug 1: the difference is group 1 − group 2, as R prints it.
    found = tost(SLEEP_DRUG_2, SLEEP_DRUG_1, margin=0.5, alpha=0.025)
    assert found.mean_test == pytest.approx(0.75) and found.mean_reference == pytest.approx(2.33)
    assert found.df == pytest.approx(17.776, abs=5e-4)
    # The two one-sided statistics straddle the Welch t by ±margin/SE.
    assert (found.t_lower + found.t_upper) / 2 == pytest.approx(-1.8608, abs=5e-5)
    # At α = 0.025 the TOST interval is R's 95 % interval.
    assert found.ci_low == pytest.approx(-3.3654832, abs=5e-8)
    assert found.ci_high == pytest.approx(0.2054832, abs=5e-8)
    assert not found.equivalent  # the interval is far wider than ±0.5 hours


def test_with_a_vanishing_margin_the_one_sided_p_values_halve_rs_two_sided_p_value() -> None:
    found = tost(SLEEP_DRUG_2, SLEEP_DRUG_1, margin=1e-12)
    assert 2 * min(found.p_lower, found.p_upper) == pytest.approx(0.07939, abs=5e-6)


def test_the_ncss_equivalence_example_is_reproduced() -> None:
    found = tost(YIELD_B, YIELD_A, margin=110, alpha=0.025)
    assert found.df == pytest.approx(19.169, abs=5e-4)
    assert found.difference == pytest.approx(-8.1153846, abs=5e-8)
    standard_error = 2 * found.margin / (found.t_lower - found.t_upper)
    assert standard_error == pytest.approx(53.618547, abs=5e-7)
    assert found.ci_low == pytest.approx(-120.27336, abs=5e-6)
    assert found.ci_high == pytest.approx(104.04259, abs=5e-6)
    assert found.p_lower == pytest.approx(0.03628, abs=5e-6)
    assert found.p_upper == pytest.approx(0.02002, abs=5e-6)
    # 0.03628 > 0.025 and the interval reaches below -110: equivalence is not shown.
    assert found.p_value == found.p_lower and not found.equivalent
