"""Starting material → manufacturing outcome (analytics/outcome.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import special

from vein2vein.analytics.outcome import (
    INTERCEPT,
    OutcomeModel,
    TighteningRow,
    fit_outcome,
    tightening,
)
from vein2vein.domain.errors import InvalidInput


def simulated_history(n: int = 20_000, seed: int = 2026) -> pd.DataFrame:
    """Batches whose failure follows a known logistic model: log-odds = 2.0 − 0.05·CD3 % +
    0.4·days since chemotherapy / 7, and viability that has no effect at all."""
    rng = np.random.default_rng(seed)
    cd3 = rng.normal(60.0, 15.0, n)
    weeks = rng.uniform(2.0, 12.0, n)
    viability = rng.normal(90.0, 4.0, n)
    log_odds = 2.0 - 0.05 * cd3 + 0.4 * weeks
    failed = (rng.random(n) < special.expit(log_odds)).astype(int)
    expansion = 1.0 + 0.03 * cd3 - 0.1 * weeks + rng.normal(0.0, 0.5, n)
    return pd.DataFrame(
        {
            "cd3_percent": cd3,
            "weeks_since_chemo": weeks,
            "viability": viability,
            "failed": failed,
            "log_expansion": expansion,
        }
    )


PREDICTORS = ["cd3_percent", "weeks_since_chemo", "viability"]


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return simulated_history()


@pytest.fixture(scope="module")
def logistic(history: pd.DataFrame) -> OutcomeModel:
    return fit_outcome(history, outcome="failed", predictors=PREDICTORS, kind="logistic")


def test_the_logistic_model_recovers_the_coefficients_that_made_the_data(
    logistic: OutcomeModel,
) -> None:
    # With 20,000 batches the standard errors are about 0.002 (CD3), 0.007 (weeks) and
    # 0.006 (viability): the tolerances are 4 standard errors or more.
    assert logistic.term("cd3_percent").coef == pytest.approx(-0.05, abs=0.008)
    assert logistic.term("weeks_since_chemo").coef == pytest.approx(0.4, abs=0.03)
    assert logistic.term("viability").coef == pytest.approx(0.0, abs=0.025)
    for name, truth in (("cd3_percent", -0.05), ("weeks_since_chemo", 0.4)):
        term = logistic.term(name)
        assert term.ci_low < truth < term.ci_high and term.p_value < 1e-6


def test_odds_ratios_and_standardized_effects_follow_from_the_coefficients(
    history: pd.DataFrame, logistic: OutcomeModel
) -> None:
    for name in PREDICTORS:
        term = logistic.term(name)
        assert term.odds_ratio == pytest.approx(np.exp(term.coef))
        assert term.standardized == pytest.approx(term.coef * history[name].std(ddof=1))
    intercept = logistic.terms[0]
    assert intercept.name == INTERCEPT
    assert intercept.odds_ratio is None and intercept.standardized is None
    assert [t.name for t in logistic.terms] == [INTERCEPT, *PREDICTORS]


def test_what_matters_is_ranked_by_the_effect_of_one_standard_deviation(
    logistic: OutcomeModel,
) -> None:
    # One SD of weeks (≈ 2.9) moves the log-odds by ≈ 1.15, one SD of CD3 (15 %) by ≈ 0.75;
    # viability does nothing and is left out.
    assert logistic.important == ("weeks_since_chemo", "cd3_percent")


def test_the_logistic_fit_reports_its_size_and_fit(logistic: OutcomeModel) -> None:
    assert logistic.kind == "logistic" and logistic.n == 20_000 and logistic.n_dropped == 0
    assert logistic.pseudo_r2 is not None and 0 < logistic.pseudo_r2 < 1
    assert logistic.r2 is None and logistic.aic > 0


def test_a_prediction_is_the_probability_of_the_outcome(logistic: OutcomeModel) -> None:
    rows = pd.DataFrame(
        {"cd3_percent": [30.0, 110.0], "weeks_since_chemo": [10.0, 2.0], "viability": [90, 92]}
    )
    coefs = [t.coef for t in logistic.terms]
    expected = special.expit(
        coefs[0] + rows.to_numpy(dtype=float) @ np.array(coefs[1:], dtype=float)
    )
    predicted = logistic.predict(rows)
    assert predicted == pytest.approx(expected)
    # The true probabilities: expit(4.5) = 0.989 and expit(-2.7) = 0.063.
    assert predicted == pytest.approx([0.989, 0.063], abs=0.02)


def test_the_linear_model_recovers_its_coefficients_and_explains_the_variance(
    history: pd.DataFrame,
) -> None:
    model = fit_outcome(history, outcome="log_expansion", predictors=PREDICTORS, kind="linear")
    assert model.term(INTERCEPT).coef == pytest.approx(1.0, abs=0.1)
    assert model.term("cd3_percent").coef == pytest.approx(0.03, abs=0.001)
    assert model.term("weeks_since_chemo").coef == pytest.approx(-0.1, abs=0.005)
    assert model.term("viability").coef == pytest.approx(0.0, abs=0.004)
    assert all(t.odds_ratio is None for t in model.terms)
    # Variance explained: (0.03·15)² + (0.1·2.89)² = 0.286 over that plus 0.5², ≈ 0.53.
    assert model.r2 == pytest.approx(0.53, abs=0.02) and model.pseudo_r2 is None
    assert model.important == ("cd3_percent", "weeks_since_chemo")
    rows = history.head(3)
    coefs = np.array([t.coef for t in model.terms])
    expected = coefs[0] + rows[PREDICTORS].to_numpy() @ coefs[1:]
    assert model.predict(rows) == pytest.approx(expected)


def test_rows_with_a_missing_value_in_a_used_column_are_dropped_and_counted() -> None:
    frame = simulated_history(200, seed=3)
    frame.loc[[0, 5, 9], "cd3_percent"] = np.nan
    frame.loc[[5, 12], "failed"] = np.nan
    frame.loc[[20, 21], "not_used"] = np.nan  # a column the model does not use
    model = fit_outcome(
        frame, outcome="failed", predictors=["cd3_percent", "weeks_since_chemo"], kind="logistic"
    )
    assert model.n_dropped == 4 and model.n == 196
    prediction = model.predict(frame.head(2))
    assert np.isnan(prediction[0]) and 0 < prediction[1] < 1


def test_boolean_outcomes_and_predictors_count_as_zero_and_one() -> None:
    frame = simulated_history(500, seed=4)
    frame["failed"] = frame["failed"].astype(bool)
    frame["prior_car_t"] = np.arange(500) % 3 == 0
    model = fit_outcome(
        frame, outcome="failed", predictors=["cd3_percent", "prior_car_t"], kind="logistic"
    )
    assert model.n == 500


def test_the_model_serialises_with_its_terms() -> None:
    frame = simulated_history(300, seed=5)
    model = fit_outcome(frame, outcome="failed", predictors=["cd3_percent"], kind="logistic")
    as_json = model.as_json()
    assert set(as_json) == {f.name for f in dataclasses.fields(OutcomeModel)}
    assert as_json["predictors"] == ["cd3_percent"]
    terms = as_json["terms"]
    assert isinstance(terms, list) and terms[1]["name"] == "cd3_percent"
    assert terms[0]["odds_ratio"] is None
    with pytest.raises(InvalidInput, match="no term 'viability'"):
        model.term("viability")


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        {
            "cd3": rng.normal(60, 10, n),
            "weeks": rng.uniform(2, 12, n),
            "failed": np.arange(n) % 2,
            "site": ["A", "B"] * (n // 2),
            "expansion": rng.normal(2, 0.5, n),
        }
    )


@pytest.mark.parametrize(
    ("outcome", "predictors", "kind", "message"),
    [
        ("failed", ["cd4"], "logistic", "no column 'cd4' in the frame"),
        ("failure", ["cd3"], "logistic", "no column 'failure' in the frame"),
        ("failed", ["site"], "logistic", r"column 'site' is not numeric \(dtype"),
        ("failed", [], "logistic", "at least one predictor"),
        ("failed", "cd3", "logistic", "not a string"),
        ("failed", ["cd3", "cd3"], "logistic", "'cd3' is given more than once"),
        ("failed", ["cd3", "failed"], "logistic", "outcome 'failed' cannot also be"),
        ("failed", ["cd3"], "probit", "kind 'probit' must be"),
        ("expansion", ["cd3"], "logistic", "column 'expansion' must be 0 or 1; found"),
    ],
)
def test_a_model_that_cannot_be_fitted_is_refused_naming_the_column(
    outcome: str, predictors: list[str], kind: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        fit_outcome(_frame(), outcome=outcome, predictors=predictors, kind=kind)  # type: ignore[arg-type]


def test_something_other_than_a_frame_is_refused() -> None:
    with pytest.raises(InvalidInput, match="expected a pandas DataFrame, got dict"):
        fit_outcome({"a": [1]}, outcome="a", predictors=["b"], kind="linear")


def test_a_constant_predictor_is_refused() -> None:
    frame = _frame().assign(volume=250.0)
    with pytest.raises(InvalidInput, match=r"predictor 'volume' is constant \(250 in every row\)"):
        fit_outcome(frame, outcome="failed", predictors=["cd3", "volume"], kind="logistic")


def test_an_outcome_that_never_changes_is_refused() -> None:
    frame = _frame().assign(failed=0)
    with pytest.raises(InvalidInput, match="outcome 'failed' is 0 in every one of the 40 rows"):
        fit_outcome(frame, outcome="failed", predictors=["cd3"], kind="logistic")


def test_too_few_complete_rows_are_refused() -> None:
    frame = _frame(12)
    frame.loc[[0, 1, 2], "cd3"] = np.nan
    with pytest.raises(InvalidInput, match=r"9 complete rows \(3 dropped for missing values\)"):
        fit_outcome(frame, outcome="failed", predictors=["cd3"], kind="logistic")
    with pytest.raises(InvalidInput, match="at least 15 are needed for 3 predictor"):
        fit_outcome(
            _frame(14).assign(x=np.arange(14.0)),
            outcome="expansion",
            predictors=["cd3", "weeks", "x"],
            kind="linear",
        )


def test_an_infinite_value_is_refused() -> None:
    frame = _frame()
    frame.loc[3, "weeks"] = np.inf
    with pytest.raises(InvalidInput, match="column 'weeks' has an infinite value"):
        fit_outcome(frame, outcome="failed", predictors=["cd3", "weeks"], kind="logistic")


def test_a_predictor_that_repeats_the_others_is_refused() -> None:
    frame = _frame().assign(days=lambda f: f["weeks"] * 7 + 1)
    with pytest.raises(InvalidInput, match="'days' is a linear combination"):
        fit_outcome(frame, outcome="expansion", predictors=["weeks", "days"], kind="linear")


def test_a_predictor_that_separates_the_outcome_perfectly_is_refused_by_name() -> None:
    frame = _frame().assign(failed=lambda f: (f["cd3"] < 60).astype(int))
    with pytest.raises(InvalidInput, match="'cd3' separates the outcome perfectly"):
        fit_outcome(frame, outcome="failed", predictors=["weeks", "cd3"], kind="logistic")


def test_predictors_that_separate_the_outcome_together_are_refused() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=60), rng.normal(size=60)
    keep = np.abs(a + b) > 0.3
    frame = pd.DataFrame({"a": a[keep], "b": b[keep], "y": (a + b > 0)[keep].astype(int)})
    with pytest.raises(InvalidInput, match="'a', 'b' together separate the outcome 'y'"):
        fit_outcome(frame, outcome="y", predictors=["a", "b"], kind="logistic")


def test_a_predictor_that_separates_except_on_the_boundary_stops_the_fit() -> None:
    frame = pd.DataFrame(
        {
            "x": [-5.0, -4, -3, -2, -1, 0, 0, 0, 0, 1, 2, 3, 4, 5],
            "y": [0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1],
        }
    )
    with pytest.raises(InvalidInput, match="did not converge; 'x' separates"):
        fit_outcome(frame, outcome="y", predictors=["x"], kind="logistic")


def test_predicting_needs_the_predictor_columns(logistic: OutcomeModel) -> None:
    with pytest.raises(InvalidInput, match="predict: no column 'viability'"):
        logistic.predict(pd.DataFrame({"cd3_percent": [50.0], "weeks_since_chemo": [4.0]}))


# -- tightening -----------------------------------------------------------------------------

# Eight patients, checked by hand: CD3 count (cells/µL) of the apheresis and whether the
# batch failed.
HISTORY = pd.DataFrame(
    {
        "cd3": [90, 150, 210, 240, 300, 380, 450, 600],
        "failed": [1, 1, 0, 1, 0, 0, 1, 0],
    }
)


def test_a_new_minimum_counts_the_patients_below_it_and_their_failures() -> None:
    at_100, at_200, at_300 = tightening(
        HISTORY, attribute="cd3", failed="failed", thresholds=[100, 200, 300], direction="min"
    )
    # Below 100: the 90 (failed). Accepted: 7, of which 3 failed.
    assert at_100 == TighteningRow(100.0, 1, 1, 3, 0, 3 / 7)
    # Below 200: 90 and 150, both failed. Accepted: 6, of which 2 failed (240 and 450).
    assert at_200 == TighteningRow(200.0, 2, 2, 2, 0, 2 / 6)
    # Below 300 (300 itself is accepted): 90, 150, 210, 240; 3 failed, 210 was a good batch.
    assert at_300 == TighteningRow(300.0, 4, 3, 1, 1, 1 / 4)


def test_a_new_maximum_counts_the_patients_above_it() -> None:
    (row,) = tightening(
        HISTORY, attribute="cd3", failed="failed", thresholds=[380], direction="max"
    )
    # Above 380: 450 (failed) and 600 (good). Accepted: 6 with 3 failures.
    assert row == TighteningRow(380.0, 2, 1, 3, 1, 0.5)
    assert row.as_json() == {
        "threshold": 380.0,
        "turned_away": 2,
        "failures_avoided": 1,
        "failures_remaining": 3,
        "successes_turned_away": 1,
        "failure_rate_accepted": 0.5,
    }


def test_a_criterion_that_turns_everyone_away_has_no_failure_rate() -> None:
    loose, strict = tightening(
        HISTORY, attribute="cd3", failed="failed", thresholds=[0, 1000], direction="min"
    )
    assert loose.turned_away == 0 and loose.failure_rate_accepted == pytest.approx(4 / 8)
    assert strict.turned_away == 8 and strict.failures_avoided == 4
    assert strict.failures_remaining == 0 and strict.failure_rate_accepted is None


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (HISTORY, {"direction": "above"}, "direction 'above' must be 'min' or 'max'"),
        (HISTORY, {"thresholds": []}, "at least one threshold"),
        (HISTORY, {"thresholds": [float("nan")]}, "every threshold must be a finite number"),
        (HISTORY, {"attribute": "cd4"}, "no column 'cd4'"),
        (HISTORY, {"failed": "cd3"}, "are the same column 'cd3'"),
        (HISTORY.assign(failed=[1, 2, 0, 1, 0, 0, 1, 0]), {}, "'failed' must be 0 or 1; found 2"),
        (HISTORY.assign(cd3=[90, None, 210, 240, 300, 380, 450, 600]), {}, "1 row"),
        (HISTORY.assign(cd3=["low"] * 8), {}, "column 'cd3' is not numeric"),
    ],
)
def test_tightening_refuses_what_it_cannot_count(
    frame: pd.DataFrame, kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "attribute": "cd3",
        "failed": "failed",
        "thresholds": [200],
        "direction": "min",
        **kwargs,
    }
    with pytest.raises(InvalidInput, match=message):
        tightening(frame, **arguments)  # type: ignore[arg-type]


def test_a_logistic_model_with_few_events_per_predictor_says_so() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(0, 1, (400, 3))
    rare = (rng.random(400) < 1 / (1 + np.exp(-(-3.2 + 0.8 * x[:, 0])))).astype(int)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "failed": rare})
    few = fit_outcome(frame, outcome="failed", predictors=["a", "b", "c"], kind="logistic")
    events = int(min(rare.sum(), 400 - rare.sum()))
    assert events < 30
    assert few.warnings and f"only {events} events" in few.warnings[0]
    common = (rng.random(400) < 0.5).astype(int)
    frame["failed"] = common
    enough = fit_outcome(frame, outcome="failed", predictors=["a", "b", "c"], kind="logistic")
    assert enough.warnings == ()
