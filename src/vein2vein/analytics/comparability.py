"""Comparability of a quality attribute before and after a process change: pure numpy/scipy.

A process change (a new site, a new reagent lot, a new step) is acceptable when the product
made after it (*test* lots) is comparable with the product made before it (*reference* lots).
Two statistical arguments are used, one per function, and :func:`compare_attribute` runs both:

* :func:`tost` — Schuirmann's two one-sided tests for the equivalence of two independent
  means, Welch form (unequal variances, Welch-Satterthwaite degrees of freedom). The null
  hypothesis is that the means differ by at least the equivalence margin; rejecting both
  one-sided nulls at level α is the same as the (1 − 2α) confidence interval of the difference
  lying inside ±margin. Schuirmann, D. J. (1987), "A comparison of the two one-sided tests
  procedure and the power approach for assessing the equivalence of average
  bioavailability", *J. Pharmacokinet. Biopharm.* 15(6), 657-680.
* :func:`quality_range` — the quality-range method: test lots should fall inside the
  reference mean ± k·SD of the reference lots (k = 3 by default).

The defaults follow FDA practice for analytical similarity: an equivalence margin of
1.5 σ_R (1.5 × the reference standard deviation) for the most critical ("tier 1")
attributes — FDA draft guidance *Statistical Approaches to Evaluate Analytical Similarity*
(September 2017, withdrawn 2018); Tsong, Dong & Shen (2017), *J. Biopharm. Stat.* 27(2),
197-205 — and a quality range of mean ± 3 SD of the reference lots, which the FDA draft
guidance *Development of Therapeutic Protein Biosimilars: Comparative Analytical Assessment
and Other Quality-Related Considerations* (May 2019) recommends for most attributes.

Examples
--------
>>> before = [10.1, 9.8, 10.3, 10.0, 9.9, 10.2, 10.0, 9.7]
>>> after = [10.0, 10.2, 9.9, 10.1, 10.0, 10.3]
>>> result = compare_attribute("viability", before, after)
>>> result.conclusion, result.margin_basis
('equivalent', '1.5 × reference SD')
>>> round(result.tost.margin, 3), round(result.tost.p_value, 4)
(0.3, 0.0189)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from vein2vein.domain.errors import InvalidInput

__all__ = [
    "AttributeComparison",
    "QualityRange",
    "Tost",
    "compare_attribute",
    "quality_range",
    "tost",
]


@dataclass(frozen=True, slots=True)
class Tost:
    """The result of :func:`tost`; every difference is *test − reference*, in the units of
    the attribute.

    ``ci_low``/``ci_high`` bound the (1 − 2α) confidence interval of the difference (90 % for
    α = 0.05). ``t_lower``/``p_lower`` test H0: difference ≤ −margin, ``t_upper``/``p_upper``
    test H0: difference ≥ +margin; ``p_value`` is the larger of the two, and the lots are
    ``equivalent`` when it is below ``alpha`` — exactly when the interval lies inside
    ±margin."""

    n_reference: int
    n_test: int
    mean_reference: float
    mean_test: float
    sd_reference: float
    sd_test: float
    difference: float
    margin: float
    alpha: float
    df: float
    ci_low: float
    ci_high: float
    t_lower: float
    t_upper: float
    p_lower: float
    p_upper: float
    p_value: float
    equivalent: bool

    def as_json(self) -> dict[str, object]:
        return {
            "method": "TOST",
            "n_reference": self.n_reference,
            "n_test": self.n_test,
            "mean_reference": self.mean_reference,
            "mean_test": self.mean_test,
            "sd_reference": self.sd_reference,
            "sd_test": self.sd_test,
            "difference": self.difference,
            "margin": self.margin,
            "alpha": self.alpha,
            "df": self.df,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "t_lower": self.t_lower,
            "t_upper": self.t_upper,
            "p_lower": self.p_lower,
            "p_upper": self.p_upper,
            "p_value": self.p_value,
            "equivalent": self.equivalent,
        }


@dataclass(frozen=True, slots=True)
class QualityRange:
    """The result of :func:`quality_range`: the range [``low``, ``high``] = reference mean ±
    k·SD, how many test values fall inside it (``inside``, ``fraction_inside``), whether that
    is at least ``required_fraction`` (``within``), and the 0-based positions of the test
    values outside it (``outside``), to look at those lots."""

    n_reference: int
    n_test: int
    mean_reference: float
    sd_reference: float
    k: float
    low: float
    high: float
    inside: int
    fraction_inside: float
    required_fraction: float
    within: bool
    outside: tuple[int, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "method": "quality range",
            "n_reference": self.n_reference,
            "n_test": self.n_test,
            "mean_reference": self.mean_reference,
            "sd_reference": self.sd_reference,
            "k": self.k,
            "low": self.low,
            "high": self.high,
            "inside": self.inside,
            "fraction_inside": self.fraction_inside,
            "required_fraction": self.required_fraction,
            "within": self.within,
            "outside": list(self.outside),
        }


@dataclass(frozen=True, slots=True)
class AttributeComparison:
    """Both arguments for one attribute. ``conclusion`` is ``"equivalent"`` only when the TOST
    shows equivalence *and* the quality range holds, otherwise ``"not shown equivalent"``
    (absence of proof, not proof of a difference); ``reason`` says why in words, naming the
    test that failed. ``margin_basis`` says where the TOST margin came from."""

    attribute: str
    tost: Tost
    quality_range: QualityRange
    margin_basis: str
    conclusion: str
    reason: str

    def as_json(self) -> dict[str, object]:
        return {
            "attribute": self.attribute,
            "tost": self.tost.as_json(),
            "quality_range": self.quality_range.as_json(),
            "margin_basis": self.margin_basis,
            "conclusion": self.conclusion,
            "reason": self.reason,
        }


def _values(x: ArrayLike, name: str, *, minimum: int) -> NDArray[np.float64]:
    try:
        values = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name}: expected a sequence of numbers") from exc
    if values.ndim != 1:
        raise InvalidInput(f"{name}: expected a flat sequence of numbers")
    if len(values) < minimum:
        raise InvalidInput(f"{name}: {len(values)} values, at least {minimum} are needed")
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise InvalidInput(
            f"{name}: value {bad} is {float(values[bad])!r}; every value must be finite"
        )
    return values


def tost(reference: ArrayLike, test: ArrayLike, *, margin: float, alpha: float = 0.05) -> Tost:
    """Two one-sided Welch t-tests that the test mean is within ±``margin`` of the
    reference mean (Schuirmann 1987).

    Parameters
    ----------
    reference, test : sequence of float
        The attribute measured on lots made before (reference) and after (test) the change;
        at least 2 of each, in the same units.
    margin : float
        The equivalence margin, in the attribute's units: the largest difference of means
        that does not matter. Must be positive.
    alpha : float
        The level of each one-sided test (0 < α < 0.5); the confidence interval reported is
        the (1 − 2α) one.

    Returns
    -------
    Tost
        The difference (test − reference), its (1 − 2α) Welch confidence interval, the two
        one-sided t statistics and p-values on Welch-Satterthwaite degrees of freedom, and
        whether equivalence is shown.

    Raises
    ------
    InvalidInput
        A non-positive margin, α outside (0, 0.5), fewer than 2 values in a group, a
        non-finite value, or no variation in either group.

    Examples
    --------
    >>> result = tost([100, 102, 98, 101, 99], [101, 100, 102, 99, 100], margin=3)
    >>> round(result.difference, 3), result.equivalent
    (0.4, True)
    >>> round(result.ci_low, 3), round(result.ci_high, 3), round(result.p_value, 4)
    (-1.242, 2.042, 0.0098)
    """
    if not (math.isfinite(margin) and margin > 0):
        raise InvalidInput(f"tost: margin {margin!r} must be a positive number")
    if not 0 < alpha < 0.5:
        raise InvalidInput(f"tost: alpha {alpha!r} must be between 0 and 0.5")
    ref = _values(reference, "tost: reference", minimum=2)
    new = _values(test, "tost: test", minimum=2)
    n_r, n_t = len(ref), len(new)
    mean_r, mean_t = float(ref.mean()), float(new.mean())
    sd_r, sd_t = float(ref.std(ddof=1)), float(new.std(ddof=1))
    if sd_r == 0 and sd_t == 0:
        raise InvalidInput(
            "tost: neither the reference nor the test values vary; the t statistic is undefined"
        )
    v_r, v_t = sd_r**2 / n_r, sd_t**2 / n_t
    se = math.sqrt(v_r + v_t)
    df = (v_r + v_t) ** 2 / (v_r**2 / (n_r - 1) + v_t**2 / (n_t - 1))
    difference = mean_t - mean_r
    t_lower = (difference + margin) / se
    t_upper = (difference - margin) / se
    p_lower = float(stats.t.sf(t_lower, df))
    p_upper = float(stats.t.cdf(t_upper, df))
    half = float(stats.t.ppf(1 - alpha, df)) * se
    p_value = max(p_lower, p_upper)
    return Tost(
        n_reference=n_r,
        n_test=n_t,
        mean_reference=mean_r,
        mean_test=mean_t,
        sd_reference=sd_r,
        sd_test=sd_t,
        difference=difference,
        margin=float(margin),
        alpha=alpha,
        df=df,
        ci_low=difference - half,
        ci_high=difference + half,
        t_lower=t_lower,
        t_upper=t_upper,
        p_lower=p_lower,
        p_upper=p_upper,
        p_value=p_value,
        equivalent=p_value < alpha,
    )


def quality_range(
    reference: ArrayLike, test: ArrayLike, *, k: float = 3.0, required_fraction: float = 0.9
) -> QualityRange:
    """The quality-range method: how many test values fall inside the reference mean ± k·SD.

    Parameters
    ----------
    reference : sequence of float
        The attribute on the reference lots (at least 2, not all equal).
    test : sequence of float
        The attribute on the test lots (at least 1).
    k : float
        How many reference standard deviations either side of the reference mean the range
        extends (3 by default, FDA 2019).
    required_fraction : float
        The fraction of test values that must fall inside the range, in (0, 1].

    Returns
    -------
    QualityRange
        The range, the count and fraction of test values inside it (the bounds count as
        inside), whether the fraction is at least ``required_fraction``, and the positions of
        the test values outside.

    Raises
    ------
    InvalidInput
        k not positive, ``required_fraction`` outside (0, 1], too few or non-finite values,
        or reference values that do not vary.

    Examples
    --------
    >>> found = quality_range([10, 12, 11, 9, 13, 11], [11, 12, 18, 10])
    >>> round(found.low, 3), round(found.high, 3)
    (6.757, 15.243)
    >>> found.inside, found.outside, found.within
    (3, (2,), False)
    """
    if not (math.isfinite(k) and k > 0):
        raise InvalidInput(f"quality range: k {k!r} must be a positive number")
    if not 0 < required_fraction <= 1:
        raise InvalidInput(
            f"quality range: required_fraction {required_fraction!r} must be in (0, 1]"
        )
    ref = _values(reference, "quality range: reference", minimum=2)
    new = _values(test, "quality range: test", minimum=1)
    mean_r, sd_r = float(ref.mean()), float(ref.std(ddof=1))
    if sd_r == 0:
        raise InvalidInput(
            "quality range: the reference values do not vary; the range needs their spread"
        )
    low, high = mean_r - k * sd_r, mean_r + k * sd_r
    inside_mask = (new >= low) & (new <= high)
    inside = int(inside_mask.sum())
    fraction = inside / len(new)
    return QualityRange(
        n_reference=len(ref),
        n_test=len(new),
        mean_reference=mean_r,
        sd_reference=sd_r,
        k=float(k),
        low=low,
        high=high,
        inside=inside,
        fraction_inside=fraction,
        required_fraction=float(required_fraction),
        within=fraction >= required_fraction,
        outside=tuple(int(i) for i in np.flatnonzero(~inside_mask)),
    )


def compare_attribute(
    name: str,
    reference: ArrayLike,
    test: ArrayLike,
    *,
    margin: float | None = None,
    margin_sd: float = 1.5,
    alpha: float = 0.05,
    k: float = 3.0,
    required_fraction: float = 0.9,
) -> AttributeComparison:
    """Compare one attribute before and after a change with both :func:`tost` and
    :func:`quality_range`.

    Parameters
    ----------
    name : str
        The attribute, as the report should name it (``"viability"``, ``"CD3+ %"``).
    reference, test : sequence of float
        The attribute on the lots made before and after the change.
    margin : float, optional
        The TOST equivalence margin in the attribute's units. When not given it is
        ``margin_sd`` × the reference standard deviation, and ``margin_basis`` says so.
    margin_sd : float
        The multiple of the reference SD used when ``margin`` is not given (1.5, the FDA tier 1
        margin).
    alpha : float
        The level of each one-sided test.
    k, required_fraction : float
        Passed to :func:`quality_range`.

    Returns
    -------
    AttributeComparison
        Both results, the margin's basis, the conclusion and its reason in words.

    Raises
    ------
    InvalidInput
        An empty name, a non-positive ``margin_sd``, or anything :func:`tost` or
        :func:`quality_range` refuse.

    Examples
    --------
    >>> before = [10.1, 9.8, 10.3, 10.0, 9.9, 10.2, 10.0, 9.7]
    >>> shifted = [10.6, 10.8, 10.5, 10.7, 10.9, 10.6]
    >>> result = compare_attribute("viability", before, shifted)
    >>> result.conclusion
    'not shown equivalent'
    >>> result.reason.split(":")[0]
    'TOST failed'
    """
    if not name.strip():
        raise InvalidInput("compare attribute: the attribute needs a name")
    if margin is None:
        if not (math.isfinite(margin_sd) and margin_sd > 0):
            raise InvalidInput(f"compare attribute: margin_sd {margin_sd!r} must be positive")
        sd_r = float(np.std(_values(reference, f"{name}: reference", minimum=2), ddof=1))
        if sd_r == 0:
            raise InvalidInput(
                f"{name}: the reference values do not vary, so a margin of "
                f"{margin_sd:g} × reference SD would be 0; give the margin explicitly"
            )
        margin = margin_sd * sd_r
        basis = f"{margin_sd:g} × reference SD"
    else:
        basis = "given"
    equivalence = tost(reference, test, margin=margin, alpha=alpha)
    in_range = quality_range(reference, test, k=k, required_fraction=required_fraction)
    confidence = f"{1 - 2 * alpha:.0%}"
    interval = f"[{equivalence.ci_low:.4g}, {equivalence.ci_high:.4g}]"
    if equivalence.equivalent:
        tost_says = (
            f"TOST: the {confidence} confidence interval of the difference, {interval}, "
            f"lies inside ±{equivalence.margin:.4g} (p = {equivalence.p_value:.3g})"
        )
    else:
        tost_says = (
            f"TOST failed: the {confidence} confidence interval of the difference, {interval}, "
            f"is not inside ±{equivalence.margin:.4g} (p = {equivalence.p_value:.3g})"
        )
    counted = (
        f"{in_range.inside} of {in_range.n_test} test lots "
        f"({in_range.fraction_inside:.0%}) inside [{in_range.low:.4g}, {in_range.high:.4g}]"
    )
    if in_range.within:
        range_says = f"quality range: {counted}"
    else:
        range_says = (
            f"quality range failed: only {counted}, {in_range.required_fraction:.0%} required"
        )
    if equivalence.equivalent and in_range.within:
        conclusion, reason = "equivalent", f"{tost_says}; {range_says}"
    else:
        failed = [s for s in (tost_says, range_says) if "failed" in s.split(":")[0]]
        conclusion, reason = "not shown equivalent", "; ".join(failed)
    return AttributeComparison(
        attribute=name,
        tost=equivalence,
        quality_range=in_range,
        margin_basis=basis,
        conclusion=conclusion,
        reason=reason,
    )
