"""Outcome models against published and certified values.

Sources:

* Linear least squares — NIST/ITL Statistical Reference Datasets (StRD), *Norris*
  (calibration of ozone monitors; 36 observations, y = B0 + B1·x), data and certified
  regression statistics: https://www.itl.nist.gov/div898/strd/lls/data/Norris.shtml
  (suite: https://www.itl.nist.gov/div898/strd/lls/lls.shtml). Certified: B0 =
  -0.262323073774029 (SD 0.232818234301152), B1 = 1.00211681802045 (SD
  0.429796848199937E-03), R-squared 0.999993745883712, residual df 34.
* Logistic regression, 24 launches — Montgomery, D. C. & Runger, G. C., *Applied
  Statistics and Probability for Engineers*, 3rd ed. (Wiley, 2003), supplement to
  chapter 11, "Logistic regression", p. S11-9: launch temperature (°F) and O-ring failure
  (at least one) for the 24 shuttle launches before Challenger, with Minitab's "Binary
  Logistic Regression: O-Ring Failure versus Temperature": Constant 10.875 (SE 5.703,
  P 0.057); Temperature -0.17132 (SE 0.08344, P 0.040), odds ratio 0.84, 95 % CI
  0.72-0.99; Log-Likelihood -11.515; "Test that all slopes are zero: G = 5.944, DF = 1".
  (Read at https://issuhub.com/view/index?id=5218&pageIndex=478, where the text extraction
  drops minus signs; the slope is negative — odds ratio 0.84 < 1, "failures tend to occur
  at lower temperatures".)
* Logistic regression, 23 flights — the 23 flights with a recovered booster (Dalal,
  Fowlkes & Hoadley (1989), "Risk analysis of the space shuttle: pre-Challenger prediction
  of failure", *JASA* 84, 945-957), damaged O-rings per flight as tabulated in Diez,
  Çetinkaya-Rundel & Barr, *OpenIntro Statistics*, 4th ed., exercise 9.16; failure = at
  least one damaged O-ring. R's ``glm(Fail > 0 ~ Temp, family = binomial)`` on these
  flights, as printed in BYU-Idaho's *Statistics Notebook*, "Challenger" logistic
  regression example
  (https://byuistats.github.io/Statistics-Notebook/Analyses/Logistic%20Regression/Examples/challengerLogisticReg.html):
  (Intercept) 15.0429 (SE 7.3786, p 0.0415), Temp -0.2322 (SE 0.1082, p 0.0320).

Standard errors are not fields of a term; they are recovered from the 95 % interval's
half-width (t with the residual df for least squares, z for the logistic model).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from vein2vein.analytics.outcome import INTERCEPT, Term, fit_outcome

NORRIS_Y = [
    0.1, 338.8, 118.1, 888.0, 9.2, 228.1, 668.5, 998.5, 449.1, 778.9, 559.2, 0.3,
    0.1, 778.1, 668.8, 339.3, 448.9, 10.8, 557.7, 228.3, 998.0, 888.8, 119.6, 0.3,
    0.6, 557.6, 339.3, 888.0, 998.5, 778.9, 10.2, 117.6, 228.9, 668.4, 449.2, 0.2,
]  # fmt: skip
NORRIS_X = [
    0.2, 337.4, 118.2, 884.6, 10.1, 226.5, 666.3, 996.3, 448.6, 777.0, 558.2, 0.4,
    0.6, 775.5, 666.9, 338.0, 447.5, 11.6, 556.0, 228.1, 995.8, 887.6, 120.2, 0.3,
    0.3, 556.8, 339.1, 887.2, 999.0, 779.0, 11.1, 118.3, 229.2, 669.1, 448.9, 0.5,
]  # fmt: skip

LAUNCH_TEMPERATURE = [53, 56, 57, 63, 66, 67, 67, 67, 68, 69, 70, 70,
                      70, 70, 72, 73, 75, 75, 76, 76, 78, 79, 80, 81]  # fmt: skip
LAUNCH_FAILURE = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]

FLIGHT_TEMPERATURE = [53, 57, 58, 63, 66, 67, 67, 67, 68, 69, 70, 70,
                      70, 70, 72, 73, 75, 75, 76, 76, 78, 79, 81]  # fmt: skip
FLIGHT_DAMAGED_O_RINGS = [5, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]


def _z_standard_error(term: Term) -> float:
    return (term.ci_high - term.ci_low) / 2 / float(stats.norm.ppf(0.975))


def test_least_squares_reproduces_nists_certified_norris_regression() -> None:
    frame = pd.DataFrame({"x": NORRIS_X, "y": NORRIS_Y})
    model = fit_outcome(frame, outcome="y", predictors=["x"], kind="linear")
    b0, b1 = model.term(INTERCEPT), model.term("x")
    assert b0.coef == pytest.approx(-0.262323073774029, rel=1e-9)
    assert b1.coef == pytest.approx(1.00211681802045, rel=1e-9)
    t = float(stats.t.ppf(0.975, 34))
    assert (b0.ci_high - b0.ci_low) / 2 / t == pytest.approx(0.232818234301152, rel=1e-8)
    assert (b1.ci_high - b1.ci_low) / 2 / t == pytest.approx(0.429796848199937e-03, rel=1e-8)
    assert model.r2 == pytest.approx(0.999993745883712, abs=1e-12)
    assert model.n == 36


def test_the_logistic_model_reproduces_montgomery_and_rungers_o_ring_fit() -> None:
    frame = pd.DataFrame({"temperature": LAUNCH_TEMPERATURE, "failure": LAUNCH_FAILURE})
    model = fit_outcome(frame, outcome="failure", predictors=["temperature"], kind="logistic")
    constant, slope = model.term(INTERCEPT), model.term("temperature")
    assert constant.coef == pytest.approx(10.875, abs=5e-4)
    assert _z_standard_error(constant) == pytest.approx(5.703, abs=5e-4)
    assert constant.p_value == pytest.approx(0.057, abs=5e-4)
    assert slope.coef == pytest.approx(-0.17132, abs=5e-6)
    assert _z_standard_error(slope) == pytest.approx(0.08344, abs=5e-6)
    assert slope.p_value == pytest.approx(0.040, abs=5e-4)
    assert slope.odds_ratio == pytest.approx(0.84, abs=5e-3)
    assert math.exp(slope.ci_low) == pytest.approx(0.72, abs=5e-3)
    assert math.exp(slope.ci_high) == pytest.approx(0.99, abs=5e-3)
    # AIC = -2·logL + 2·(2 parameters), from the printed log-likelihood -11.515.
    assert model.aic == pytest.approx(2 * 11.515 + 4, abs=1e-3)
    # McFadden: 1 − logL/logL0, with logL0 = logL − G/2 from the printed G = 5.944.
    assert model.pseudo_r2 == pytest.approx((5.944 / 2) / (11.515 + 5.944 / 2), abs=1e-4)


def test_the_logistic_model_reproduces_the_23_flight_challenger_fit() -> None:
    frame = pd.DataFrame(
        {
            "temp": FLIGHT_TEMPERATURE,
            "fail": [int(d > 0) for d in FLIGHT_DAMAGED_O_RINGS],
        }
    )
    model = fit_outcome(frame, outcome="fail", predictors=["temp"], kind="logistic")
    intercept, temp = model.term(INTERCEPT), model.term("temp")
    assert intercept.coef == pytest.approx(15.0429, abs=5e-5)
    assert _z_standard_error(intercept) == pytest.approx(7.3786, abs=5e-5)
    assert intercept.p_value == pytest.approx(0.0415, abs=5e-5)
    assert temp.coef == pytest.approx(-0.2322, abs=5e-5)
    assert _z_standard_error(temp) == pytest.approx(0.1082, abs=5e-5)
    assert temp.p_value == pytest.approx(0.0320, abs=5e-5)
