"""Starting material → manufacturing outcome: what in the apheresis predicts a failed batch.

Autologous therapies start from the patient's own cells, and some starting material does not
make a product: the batch fails to expand, or does not reach the dose. Two questions follow,
one function each:

* :func:`fit_outcome` — which attributes of the starting material (CD3+ count, viability,
  the patient's lymphocyte count, days since the last chemotherapy…) predict the outcome,
  and how strongly. A logistic regression (statsmodels ``Logit``, maximum likelihood) for a
  0/1 outcome such as *failed to reach dose*; ordinary least squares for a continuous one
  such as *log fold expansion*. Coefficients come with 95 % Wald intervals and p-values,
  odds ratios for the logistic model, and a standardized effect (the effect of one standard
  deviation of the predictor) to rank what matters.
* :func:`tightening` — what a stricter acceptance criterion on one attribute would have
  done to the batches already made: how many patients it would have turned away, how many
  failures it would have avoided and how many good batches it would have cost. Counted on
  the history, not modelled.

These are associations in observational data: they say which material to watch, not that
changing an attribute would change the outcome.

Examples
--------
>>> import pandas as pd
>>> history = pd.DataFrame({
...     "cd3_percent": [35, 42, 48, 51, 55, 58, 61, 64, 67, 70, 72, 75],
...     "log_expansion": [1.1, 1.6, 1.7, 2.0, 2.4, 2.3, 2.6, 2.9, 3.0, 3.3, 3.2, 3.6],
... })
>>> model = fit_outcome(history, outcome="log_expansion", predictors=["cd3_percent"],
...                     kind="linear")
>>> round(model.term("cd3_percent").coef, 4), round(model.r2 or 0, 3)
(0.0611, 0.981)
>>> model.important
('cd3_percent',)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from numpy.typing import NDArray
from scipy import special
from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

from vein2vein.domain.errors import InvalidInput

__all__ = [
    "INTERCEPT",
    "OutcomeModel",
    "Term",
    "TighteningRow",
    "fit_outcome",
    "tightening",
]

INTERCEPT = "(intercept)"
EVENTS_PER_PREDICTOR = 10  # the rule of thumb for a stable logistic model (Peduzzi 1996)

Kind = Literal["logistic", "linear"]


@dataclass(frozen=True, slots=True)
class Term:
    """One term of an :class:`OutcomeModel`.

    ``coef`` is the change in the outcome (linear) or in the log-odds of the outcome
    (logistic) per unit of the predictor, the others held fixed; ``ci_low``/``ci_high`` its
    95 % confidence interval and ``p_value`` the test that it is 0. ``odds_ratio`` =
    e^coef (logistic only): the factor by which the odds of the outcome multiply per unit
    of the predictor. ``standardized`` = coef × the predictor's standard deviation: the
    effect of a typical (one-SD) difference, comparable across predictors in different
    units. The intercept (named ``"(intercept)"``) has neither odds ratio nor standardized
    effect."""

    name: str
    coef: float
    ci_low: float
    ci_high: float
    p_value: float
    odds_ratio: float | None
    standardized: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "coef": self.coef,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "odds_ratio": self.odds_ratio,
            "standardized": self.standardized,
        }


@dataclass(frozen=True, slots=True)
class OutcomeModel:
    """A fitted :func:`fit_outcome` model.

    ``n`` rows were used and ``n_dropped`` left out for a missing value. ``terms`` starts
    with the intercept, then one term per predictor in the order given. ``aic`` (Akaike's
    information criterion; lower is better, only comparable between models of the same
    outcome on the same rows); ``pseudo_r2`` (McFadden's, 1 − logL/logL₀, logistic only:
    0 is no better than the overall failure rate, values of 0.2-0.4 are already a good fit);
    ``r2`` (the fraction of the outcome's variance explained, linear only). ``important``
    lists the predictors with p < 0.05, largest standardized effect first; ``warnings``
    says when the model is not to be trusted (too few events per predictor)."""

    kind: Kind
    outcome: str
    predictors: tuple[str, ...]
    n: int
    n_dropped: int
    terms: tuple[Term, ...]
    aic: float
    pseudo_r2: float | None
    r2: float | None
    important: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def term(self, name: str) -> Term:
        """The term of ``name`` (a predictor, or ``"(intercept)"``)."""
        for term in self.terms:
            if term.name == name:
                return term
        raise InvalidInput(f"outcome model: no term {name!r} (terms: {self._names()})")

    def _names(self) -> str:
        return ", ".join(t.name for t in self.terms)

    def predict(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        """The predicted outcome of each row of ``frame``: the probability of the outcome
        (logistic) or its expected value (linear). A row with a missing predictor gets NaN.

        Raises
        ------
        InvalidInput
            ``frame`` lacks a predictor column, or one is not numeric.
        """
        data = _columns(frame, self.predictors, "predict")
        x = np.column_stack([np.ones(len(data)), data.to_numpy(dtype=np.float64)])
        linear = x @ np.array([t.coef for t in self.terms], dtype=np.float64)
        if self.kind == "logistic":
            return np.asarray(special.expit(linear), dtype=np.float64)
        return np.asarray(linear, dtype=np.float64)

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "outcome": self.outcome,
            "predictors": list(self.predictors),
            "n": self.n,
            "n_dropped": self.n_dropped,
            "terms": [t.as_json() for t in self.terms],
            "aic": self.aic,
            "pseudo_r2": self.pseudo_r2,
            "r2": self.r2,
            "important": list(self.important),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, slots=True)
class TighteningRow:
    """What one stricter criterion would have done to the history.

    ``turned_away``: patients whose starting material fails the new criterion;
    ``failures_avoided``: failed batches among them; ``successes_turned_away``: good batches
    among them (patients who would have lost a product that worked);
    ``failures_remaining``: failed batches among the patients still accepted;
    ``failure_rate_accepted``: the failure rate among those still accepted (None when the
    criterion would have turned everyone away)."""

    threshold: float
    turned_away: int
    failures_avoided: int
    failures_remaining: int
    successes_turned_away: int
    failure_rate_accepted: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "turned_away": self.turned_away,
            "failures_avoided": self.failures_avoided,
            "failures_remaining": self.failures_remaining,
            "successes_turned_away": self.successes_turned_away,
            "failure_rate_accepted": self.failure_rate_accepted,
        }


def _columns(frame: Any, names: Sequence[str], who: str) -> Any:
    """The numeric columns ``names`` of ``frame`` as floats, or InvalidInput naming the
    column that is missing or not numeric."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"{who}: expected a pandas DataFrame, got {type(frame).__name__}")
    for name in names:
        if name not in frame.columns:
            raise InvalidInput(f"{who}: no column {name!r} in the frame")
        column = frame[name]
        if isinstance(column, pd.DataFrame):
            raise InvalidInput(f"{who}: the frame has more than one column {name!r}")
        if not pd.api.types.is_numeric_dtype(column):
            raise InvalidInput(f"{who}: column {name!r} is not numeric (dtype {column.dtype})")
    return frame[list(names)].astype(np.float64)


def _zero_one(values: NDArray[np.float64], name: str, who: str) -> None:
    odd = values[(values != 0) & (values != 1)]
    if len(odd):
        raise InvalidInput(f"{who}: column {name!r} must be 0 or 1; found {odd[0]:g}")


def _separating(x: NDArray[np.float64], y: NDArray[np.float64], *, strict: bool) -> str | None:
    """'above' or 'below' when x alone separates y (every 1 above, or below, every 0; with
    ``strict`` False, ties at the boundary allowed — quasi-complete separation), else None."""
    ones, zeros = x[y == 1], x[y == 0]
    if ones.min() > zeros.max() or (not strict and ones.min() >= zeros.max()):
        return "above"
    if ones.max() < zeros.min() or (not strict and ones.max() <= zeros.min()):
        return "below"
    return None


def fit_outcome(
    frame: pd.DataFrame,
    *,
    outcome: str,
    predictors: Sequence[str],
    kind: Kind,
) -> OutcomeModel:
    """Fit the outcome of manufacturing on attributes of the starting material.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per batch (per patient); the columns named below must be numeric (booleans
        count as 0/1). Other columns are ignored.
    outcome : str
        The column to explain: 0/1 for ``kind="logistic"`` (1 = the event, e.g. failed to
        reach dose), a number for ``kind="linear"`` (e.g. log fold expansion).
    predictors : sequence of str
        The starting-material attributes that may explain it; each is one term, in its own
        units (transform before, e.g. log of a count, if that is the scale that matters).
    kind : {"logistic", "linear"}
        Logistic regression by maximum likelihood (Wald intervals and z tests) or ordinary
        least squares (t intervals and tests).

    Returns
    -------
    OutcomeModel
        Intercept and one term per predictor with 95 % intervals and p-values, fit
        statistics, the predictors that matter ranked, and ``predict``.

    Raises
    ------
    InvalidInput
        An unknown or non-numeric column, no predictors or a repeated one, an outcome that
        is not 0/1 (logistic) or does not vary, fewer complete rows than max(10, 5 ×
        predictors), a constant predictor, predictors that are linear combinations of
        each other, a predictor that separates the outcome perfectly (its odds ratio would
        be infinite), or a fit that does not converge.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(2)
    >>> cd3 = rng.normal(60, 12, 2000)  # % CD3+; true log-odds of failure: 4 - 0.09 × cd3
    >>> failed = (rng.random(2000) < 1 / (1 + np.exp(-(4 - 0.09 * cd3)))).astype(int)
    >>> model = fit_outcome(pd.DataFrame({"cd3_percent": cd3, "failed": failed}),
    ...                     outcome="failed", predictors=["cd3_percent"], kind="logistic")
    >>> term = model.term("cd3_percent")
    >>> round(term.coef, 3), round(term.odds_ratio or 0, 2), term.ci_low < -0.09 < term.ci_high
    (-0.094, 0.91, True)
    """
    who = "fit outcome"
    if kind not in ("logistic", "linear"):
        raise InvalidInput(f"{who}: kind {kind!r} must be 'logistic' or 'linear'")
    if isinstance(predictors, str):
        raise InvalidInput(f"{who}: predictors must be a list of column names, not a string")
    names = list(predictors)
    if not names:
        raise InvalidInput(f"{who}: give at least one predictor")
    repeated = sorted({p for p in names if names.count(p) > 1})
    if repeated:
        raise InvalidInput(f"{who}: predictor {repeated[0]!r} is given more than once")
    if outcome in names:
        raise InvalidInput(f"{who}: the outcome {outcome!r} cannot also be a predictor")
    if INTERCEPT in names:
        raise InvalidInput(f"{who}: {INTERCEPT!r} is reserved for the intercept")
    used = _columns(frame, [outcome, *names], who)
    complete = used.notna().all(axis=1)
    data = used[complete]
    n, n_dropped = len(data), len(used) - len(data)
    values = data.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        column = [outcome, *names][int(np.flatnonzero(~np.isfinite(values).all(axis=0))[0])]
        raise InvalidInput(f"{who}: column {column!r} has an infinite value")
    minimum = max(10, 5 * len(names))
    if n < minimum:
        raise InvalidInput(
            f"{who}: {n} complete rows ({n_dropped} dropped for missing values); at least "
            f"{minimum} are needed for {len(names)} predictor(s)"
        )
    y, x = values[:, 0], values[:, 1:]
    if kind == "logistic":
        _zero_one(y, outcome, who)
    if np.ptp(y) == 0:
        raise InvalidInput(
            f"{who}: the outcome {outcome!r} is {y[0]:g} in every one of the {n} rows; "
            "there is nothing to explain"
        )
    for j, name in enumerate(names):
        if np.ptp(x[:, j]) == 0:
            raise InvalidInput(
                f"{who}: predictor {name!r} is constant ({x[0, j]:g} in every row); "
                "it cannot explain the outcome"
            )
    design = np.column_stack([np.ones(n), x])
    for j, name in enumerate(names):
        if np.linalg.matrix_rank(design[:, : j + 2]) < j + 2:
            raise InvalidInput(
                f"{who}: predictor {name!r} is a linear combination of the intercept and "
                "the predictors before it; leave one of them out"
            )
    if kind == "logistic":
        for j, name in enumerate(names):
            side = _separating(x[:, j], y, strict=True)
            if side is not None:
                raise InvalidInput(
                    f"{who}: {name!r} separates the outcome perfectly (every row with "
                    f"{outcome} = 1 is {side} every row with {outcome} = 0); its odds ratio "
                    "would be infinite"
                )
        result = _fit_logistic(y, design, names, outcome)
        aic, pseudo_r2, r2 = float(result.aic), float(result.prsquared), None
    else:
        result = sm.OLS(y, design).fit()
        aic, pseudo_r2, r2 = float(result.aic), None, float(result.rsquared)
    params = np.asarray(result.params, dtype=np.float64)
    intervals = np.asarray(result.conf_int(alpha=0.05), dtype=np.float64)
    p_values = np.asarray(result.pvalues, dtype=np.float64)
    sds = x.std(axis=0, ddof=1)
    terms = [
        Term(
            name=INTERCEPT,
            coef=float(params[0]),
            ci_low=float(intervals[0, 0]),
            ci_high=float(intervals[0, 1]),
            p_value=float(p_values[0]),
            odds_ratio=None,
            standardized=None,
        )
    ]
    for j, name in enumerate(names):
        coef = float(params[j + 1])
        terms.append(
            Term(
                name=name,
                coef=coef,
                ci_low=float(intervals[j + 1, 0]),
                ci_high=float(intervals[j + 1, 1]),
                p_value=float(p_values[j + 1]),
                odds_ratio=math.exp(coef) if kind == "logistic" else None,
                standardized=coef * float(sds[j]),
            )
        )
    ranked = sorted(
        (t for t in terms[1:] if t.p_value < 0.05),
        key=lambda t: -abs(t.standardized or 0.0),
    )
    cautions: list[str] = []
    if kind == "logistic":
        events = int(min(y.sum(), len(y) - y.sum()))
        if events < EVENTS_PER_PREDICTOR * len(names):
            cautions.append(
                f"only {events} events (the rarer outcome) for {len(names)} predictors, fewer "
                f"than {EVENTS_PER_PREDICTOR} per predictor: the estimates and p-values are "
                "unstable (Peduzzi et al. 1996); use fewer predictors or more batches"
            )
    return OutcomeModel(
        kind=kind,
        outcome=outcome,
        predictors=tuple(names),
        n=n,
        n_dropped=n_dropped,
        terms=tuple(terms),
        aic=aic,
        pseudo_r2=pseudo_r2,
        r2=r2,
        important=tuple(t.name for t in ranked),
        warnings=tuple(cautions),
    )


def _fit_logistic(
    y: NDArray[np.float64], design: NDArray[np.float64], names: list[str], outcome: str
) -> Any:
    who = "fit outcome"
    together = (
        f"{who}: the predictors {', '.join(map(repr, names))} together separate the outcome "
        f"{outcome!r} perfectly; some odds ratios would be infinite"
    )
    # statsmodels reports separation and non-convergence as warnings; they are our errors.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = sm.Logit(y, design).fit(method="newton", maxiter=100, disp=False)
        except PerfectSeparationError as exc:
            raise InvalidInput(together) from exc
        except np.linalg.LinAlgError as exc:
            raise InvalidInput(f"{who}: the logistic fit failed ({exc})") from exc
    if any(issubclass(w.category, PerfectSeparationWarning) for w in caught):
        raise InvalidInput(together)
    if not result.mle_retvals.get("converged", False):
        nearly = [
            name
            for j, name in enumerate(names)
            if _separating(design[:, j + 1], y, strict=False) is not None
        ]
        suspect = f"{nearly[0]!r} separates" if nearly else "a predictor may separate"
        raise InvalidInput(
            f"{who}: the logistic fit did not converge; {suspect} the outcome {outcome!r} "
            "almost perfectly (only rows on the boundary overlap)"
        )
    return result


def tightening(
    frame: pd.DataFrame,
    *,
    attribute: str,
    failed: str,
    thresholds: Sequence[float],
    direction: Literal["min", "max"],
) -> tuple[TighteningRow, ...]:
    """What each candidate acceptance criterion on ``attribute`` would have done to the
    batches in ``frame``.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per patient with a batch made: the attribute of the starting material and
        whether the batch failed.
    attribute : str
        The numeric column the criterion applies to (e.g. ``"cd3_count"``).
    failed : str
        The 0/1 column, 1 for a failed batch.
    thresholds : sequence of float
        The candidate limits, one row of the result each, in the order given.
    direction : {"min", "max"}
        ``"min"``: the threshold is a new minimum — patients with attribute < threshold
        would have been turned away. ``"max"``: a new maximum — attribute > threshold turned
        away. A value equal to the threshold is accepted.

    Returns
    -------
    tuple of TighteningRow
        For each threshold: patients turned away, failures avoided, good batches lost,
        failures remaining and the failure rate among the patients still accepted.

    Raises
    ------
    InvalidInput
        A missing or non-numeric column, a missing value in either column (decide first
        what those patients would have been), ``failed`` not 0/1, no thresholds or a
        non-finite one, or a direction other than "min"/"max".

    Examples
    --------
    >>> import pandas as pd
    >>> history = pd.DataFrame({"cd3": [120, 300, 450, 80, 600, 220],
    ...                         "failed": [1, 0, 0, 1, 0, 1]})
    >>> row, = tightening(history, attribute="cd3", failed="failed", thresholds=[150],
    ...                   direction="min")
    >>> row.turned_away, row.failures_avoided, row.successes_turned_away
    (2, 2, 0)
    >>> row.failures_remaining, row.failure_rate_accepted
    (1, 0.25)
    """
    who = "tightening"
    if direction not in ("min", "max"):
        raise InvalidInput(f"{who}: direction {direction!r} must be 'min' or 'max'")
    if attribute == failed:
        raise InvalidInput(f"{who}: attribute and failed are the same column {attribute!r}")
    limits = [float(t) for t in thresholds]
    if not limits:
        raise InvalidInput(f"{who}: give at least one threshold")
    if not all(math.isfinite(t) for t in limits):
        raise InvalidInput(f"{who}: every threshold must be a finite number")
    data = _columns(frame, [attribute, failed], who)
    for name in (attribute, failed):
        missing = int(data[name].isna().sum())
        if missing:
            raise InvalidInput(f"{who}: {missing} row(s) have no {name!r}; drop or fill them first")
    values = data[attribute].to_numpy(dtype=np.float64)
    outcome = data[failed].to_numpy(dtype=np.float64)
    _zero_one(outcome, failed, who)
    is_failure = outcome == 1
    rows = []
    for limit in limits:
        away = values < limit if direction == "min" else values > limit
        kept = ~away
        accepted = int(kept.sum())
        remaining = int((is_failure & kept).sum())
        avoided = int((is_failure & away).sum())
        rows.append(
            TighteningRow(
                threshold=limit,
                turned_away=int(away.sum()),
                failures_avoided=avoided,
                failures_remaining=remaining,
                successes_turned_away=int(away.sum()) - avoided,
                failure_rate_accepted=remaining / accepted if accepted else None,
            )
        )
    return tuple(rows)
