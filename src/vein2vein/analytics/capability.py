"""Process capability and tolerance intervals (DESIGN §8): pure numpy/scipy.

* :func:`capability` — Cp, Cpk (within-subgroup sigma, from the moving range of individuals
  or from subgroups) and Pp, Ppk (overall sigma), with confidence intervals (chi-square for
  Cp/Pp, Bissell's approximation for Cpk/Ppk), one-sided specifications, and a normality
  check (Shapiro-Wilk) that warns when the indices are not to be trusted.
* :func:`tolerance_factor` — normal tolerance factors: one-sided from the noncentral t
  distribution, two-sided *exact* by integration (Odeh & Owen), and
  :func:`nonparametric_tolerance` from order statistics.

Examples
--------
>>> round(tolerance_factor(10, coverage=0.90, confidence=0.95, sides=1), 3)
2.355
>>> round(tolerance_factor(10, coverage=0.90, confidence=0.95, sides=2), 3)
2.856
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, optimize, stats

from vein2vein.analytics.control_charts import constants
from vein2vein.domain.errors import InvalidInput

__all__ = [
    "Capability",
    "Interval",
    "NonparametricTolerance",
    "capability",
    "nonparametric_tolerance",
    "tolerance_factor",
    "tolerance_interval",
]


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Capability:
    n: int
    mean: float
    sigma_within: float
    sigma_overall: float
    lsl: float | None
    usl: float | None
    cp: Interval | None  # None for a one-sided specification
    cpk: Interval
    pp: Interval | None
    ppk: Interval
    normality_p: float | None  # Shapiro-Wilk p-value (None below 3 or above 5000 points)
    warnings: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        def iv(value: Interval | None) -> dict[str, float] | None:
            if value is None:
                return None
            return {
                "estimate": float(value.estimate),
                "low": float(value.low),
                "high": float(value.high),
            }

        return {
            "n": self.n,
            "mean": self.mean,
            "sigma_within": self.sigma_within,
            "sigma_overall": self.sigma_overall,
            "lsl": self.lsl,
            "usl": self.usl,
            "cp": iv(self.cp),
            "cpk": iv(self.cpk),
            "pp": iv(self.pp),
            "ppk": iv(self.ppk),
            "normality_p": self.normality_p,
            "warnings": list(self.warnings),
        }


def capability(
    x: ArrayLike,
    *,
    lsl: float | None = None,
    usl: float | None = None,
    subgroup: int = 1,
    confidence: float = 0.95,
) -> Capability:
    """Capability of ``x`` against ``lsl``/``usl`` (either may be absent, not both). The
    within sigma is MR̄/d2 of the individuals (``subgroup`` 1) or S̄/c4 of consecutive
    subgroups of ``subgroup``; the overall sigma is the sample standard deviation."""
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2 * max(subgroup, 2):
        raise InvalidInput("capability: expected a sequence of at least 4 points")
    if not np.all(np.isfinite(values)):
        raise InvalidInput("capability: every point must be a finite number")
    if lsl is None and usl is None:
        raise InvalidInput("capability: give a lower or an upper specification limit, or both")
    if lsl is not None and usl is not None and lsl >= usl:
        raise InvalidInput(f"capability: lsl {lsl:g} is not below usl {usl:g}")
    if not 0.5 < confidence < 1:
        raise InvalidInput(f"confidence {confidence!r}: expected between 0.5 and 1")
    n = len(values)
    mean = float(values.mean())
    overall = float(values.std(ddof=1))
    if subgroup == 1:
        within = float(np.abs(np.diff(values)).mean()) / constants(2).d2
    else:
        groups = values[: n // subgroup * subgroup].reshape(-1, subgroup)
        within = float(groups.std(axis=1, ddof=1).mean()) / constants(subgroup).c4
    warnings: list[str] = []
    if within == 0 or overall == 0:
        raise InvalidInput("capability: the points do not vary; no index can be computed")
    normality_p = float(stats.shapiro(values).pvalue) if 3 <= n <= 5000 else None
    if normality_p is not None and normality_p < 0.05:
        warnings.append(
            f"the data are not normal (Shapiro-Wilk p = {normality_p:.3g}): the indices "
            "assume a normal distribution and are not to be trusted"
        )
    if n < 30:
        warnings.append(f"only {n} points: the confidence intervals are wide")
    z = stats.norm.ppf(1 - (1 - confidence) / 2)

    def potential(sigma: float) -> Interval | None:
        if lsl is None or usl is None:
            return None
        value = (usl - lsl) / (6 * sigma)
        nu = n - 1
        low = value * math.sqrt(stats.chi2.ppf((1 - confidence) / 2, nu) / nu)
        high = value * math.sqrt(stats.chi2.ppf(1 - (1 - confidence) / 2, nu) / nu)
        return Interval(value, low, high)

    def actual(sigma: float) -> Interval:
        sides = [
            s
            for s in (
                (usl - mean) if usl is not None else None,
                (mean - lsl) if lsl is not None else None,
            )
            if s is not None
        ]
        value = min(sides) / (3 * sigma)
        half = z * math.sqrt(1 / (9 * n) + value**2 / (2 * (n - 1)))  # Bissell (1990)
        return Interval(value, value - half, value + half)

    return Capability(
        n,
        mean,
        within,
        overall,
        lsl,
        usl,
        potential(within),
        actual(within),
        potential(overall),
        actual(overall),
        normality_p,
        tuple(warnings),
    )


# -- tolerance intervals -------------------------------------------------------------------


def tolerance_factor(n: int, *, coverage: float, confidence: float, sides: int) -> float:
    """k such that mean ± k·s (two-sided) or mean + k·s (one-sided) contains at least
    ``coverage`` of a normal population with ``confidence``.

    One-sided: k = t'(n-1, δ = z_p·√n)⁻¹(confidence) / √n (noncentral t). Two-sided, exact:
    k solves √(2n/π) ∫₀^∞ P(χ²_(n-1) > (n-1)·r(x)²/k²) e^(-n x²/2) dx = confidence, where
    r(x) solves Φ(x/√n + r) - Φ(x/√n - r) = coverage (Odeh & Owen 1980)."""
    if not isinstance(n, int) or n < 2:
        raise InvalidInput(f"tolerance factor: n {n!r} must be 2 or more")
    if not (0 < coverage < 1 and 0 < confidence < 1):
        raise InvalidInput("tolerance factor: coverage and confidence are between 0 and 1")
    nu = n - 1
    if sides == 1:
        delta = stats.norm.ppf(coverage) * math.sqrt(n)
        return float(stats.nct.ppf(confidence, nu, delta) / math.sqrt(n))
    if sides != 2:
        raise InvalidInput(f"tolerance factor: sides {sides!r} must be 1 or 2")

    def r_of(x: float) -> float:
        return float(
            optimize.brentq(
                lambda r: stats.norm.cdf(x + r) - stats.norm.cdf(x - r) - coverage, 0, 40
            )
        )

    # The integrand in terms of y = x/√n: weight is the N(0, 1/n) density of the mean.
    nodes = np.linspace(0, 8 / math.sqrt(n), 161)
    radii = np.array([r_of(float(y)) for y in nodes])
    weights = 2 * stats.norm.pdf(nodes, scale=1 / math.sqrt(n))

    def content(k: float) -> float:
        probs = stats.chi2.sf(nu * radii**2 / k**2, nu)
        return float(integrate.simpson(weights * probs, x=nodes))

    return float(optimize.brentq(lambda k: content(k) - confidence, 0.1, 100))


def tolerance_interval(
    x: ArrayLike, *, coverage: float = 0.99, confidence: float = 0.95, sides: int = 2
) -> tuple[float | None, float | None, float]:
    """(lower, upper, k): the normal tolerance interval of ``x``; a one-sided interval gives
    both one-sided bounds (each is a separate one-sided statement)."""
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 1 or len(values) < 3 or not np.all(np.isfinite(values)):
        raise InvalidInput("tolerance interval: expected at least 3 finite points")
    k = tolerance_factor(len(values), coverage=coverage, confidence=confidence, sides=sides)
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    return mean - k * sd, mean + k * sd, k


@dataclass(frozen=True, slots=True)
class NonparametricTolerance:
    lower: float | None
    upper: float | None
    confidence: float  # achieved confidence that the interval holds ``coverage``
    ranks: tuple[int, int]  # 1-based order statistics used


def nonparametric_tolerance(
    x: ArrayLike,
    *,
    coverage: float = 0.90,
    confidence: float = 0.95,
    sides: Sequence[str] = ("low", "high"),
) -> NonparametricTolerance:
    """A distribution-free tolerance interval from order statistics: the widest interval
    trimmed symmetrically whose confidence (binomial) still reaches ``confidence``; refused
    when even the sample's extremes do not."""
    values = np.sort(np.asarray(x, dtype=np.float64))
    n = len(values)
    if n < 2 or not np.all(np.isfinite(values)):
        raise InvalidInput("nonparametric tolerance: expected at least 2 finite points")
    two = "low" in sides and "high" in sides
    best: tuple[int, int, float] | None = None
    for trim in range(0, n // 2):
        lo, hi = 1 + trim, n - trim
        if not two:
            lo, hi = (1 + trim, n) if "low" in sides else (1, n - trim)
        covered = hi - lo if two else (n - lo + 1 if "low" in sides else hi)
        # P(content ≥ coverage) = P(Binomial(n, coverage) ≤ covered - 1) for the interval
        # between order statistics lo and hi (two-sided), or beyond one of them (one-sided).
        achieved = float(stats.binom.cdf(covered - 1, n, coverage))
        if achieved >= confidence:
            best = (lo, hi, achieved)
        else:
            break
    if best is None:
        needed = next(
            m
            for m in range(n, 100_000)
            if stats.binom.cdf(m - 2 if two else m - 1, m, coverage) >= confidence
        )
        raise InvalidInput(
            f"nonparametric tolerance: {n} points cannot give {coverage:.0%} coverage with "
            f"{confidence:.0%} confidence; {needed} are needed"
        )
    lo, hi, achieved = best
    return NonparametricTolerance(
        float(values[lo - 1]) if "low" in sides else None,
        float(values[hi - 1]) if "high" in sides else None,
        achieved,
        (lo, hi),
    )
