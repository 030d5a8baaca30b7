"""Control charts and run rules (DESIGN §8): pure numpy/scipy, estimator style.

A chart is *fitted* on a baseline (phase I: limits from in-control history, points excluded
with a recorded reason) and then *evaluates* points (phase II: monitoring), returning the
limits, the plotted statistic and the run-rule violations, each naming its rule and points.

Charts: individuals and moving range (I-MR), X̄-R, X̄-S, p, np, c, u (variable sample sizes
where they apply), EWMA and tabular CUSUM. Run rules: Western Electric 1-4 and Nelson 1-8.
The control-chart constants (d2, d3, c4 and the factors built from them) are computed from
their definitions, not copied from a table; tests/reference checks them against the
published tables.

Examples
--------
>>> chart = IndividualsChart().fit([10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.1, 10.0])
>>> round(chart.center, 4), round(chart.sigma, 4)
(10.0125, 0.1772)
>>> [v.rule for v in chart.evaluate([10.0, 11.2]).violations]
['WE1', 'N1']
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate, special

from vein2vein.analytics.run_rules import RULES, Violation, Violations, run_rules
from vein2vein.domain.errors import InvalidInput

__all__ = [
    "RULES",
    "ChartResult",
    "Constants",
    "CusumChart",
    "EwmaChart",
    "IndividualsChart",
    "Violation",
    "Violations",
    "XbarRChart",
    "XbarSChart",
    "attribute_chart",
    "constants",
    "run_rules",
]

Floats = NDArray[np.float64]


# -- constants ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Constants:
    """Control-chart constants for subgroups of ``n``."""

    n: int
    d2: float
    d3: float
    c4: float

    @property
    def A2(self) -> float:
        return 3 / (self.d2 * math.sqrt(self.n))

    @property
    def D3(self) -> float:
        return max(0.0, 1 - 3 * self.d3 / self.d2)

    @property
    def D4(self) -> float:
        return 1 + 3 * self.d3 / self.d2

    @property
    def A3(self) -> float:
        return 3 / (self.c4 * math.sqrt(self.n))

    @property
    def B3(self) -> float:
        return max(0.0, 1 - 3 * math.sqrt(1 - self.c4**2) / self.c4)

    @property
    def B4(self) -> float:
        return 1 + 3 * math.sqrt(1 - self.c4**2) / self.c4


@lru_cache(maxsize=64)
def constants(n: int) -> Constants:
    """d2 = E[range]/σ, d3 = SD[range]/σ and c4 = E[s]/σ of a normal subgroup of ``n``,
    from their definitions (numerical integration; c4 from the gamma function)."""
    if not isinstance(n, int) or not 2 <= n <= 50:
        raise InvalidInput(f"subgroup size {n!r}: expected 2 to 50")
    c4 = math.sqrt(2 / (n - 1)) * math.exp(special.gammaln(n / 2) - special.gammaln((n - 1) / 2))
    if n == 2:  # the moving range of the I-MR chart: |X1 - X2| ~ σ√2·|Z|, in closed form
        return Constants(2, 2 / math.sqrt(math.pi), math.sqrt(2 - 4 / math.pi), c4)
    # P(W ≤ w) = n ∫ φ(x) (Φ(x + w) - Φ(x))^(n-1) dx, on grids fine enough for 1e-6;
    # d2 = ∫ P(W > w) dw and E[W²] = ∫ 2w P(W > w) dw.
    x = np.linspace(-9.0, 9.0, 3601)
    w = np.linspace(0.0, 16.0, 3201)
    pdf = np.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
    cdf_x = special.ndtr(x)
    survival = np.empty(len(w))
    for i in range(0, len(w), 400):  # in blocks, to keep memory small
        block = w[i : i + 400, None]
        inside = (special.ndtr(x[None, :] + block) - cdf_x[None, :]) ** (n - 1)
        survival[i : i + 400] = 1 - n * integrate.trapezoid(pdf[None, :] * inside, x, axis=1)
    d2 = float(integrate.trapezoid(survival, w))
    d3 = math.sqrt(max(float(integrate.trapezoid(2 * w * survival, w)) - d2**2, 0.0))
    return Constants(n, d2, d3, c4)


# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChartResult:
    """What a chart plots and finds; limits are per point (variable sample sizes)."""

    chart: str
    values: Floats
    center: Floats
    lcl: Floats
    ucl: Floats
    violations: Violations
    companion: ChartResult | None = None  # the MR, R or S chart beside I or X̄

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "chart": self.chart,
            "values": self.values.tolist(),
            "center": _scalar_or_list(self.center),
            "lcl": _scalar_or_list(self.lcl),
            "ucl": _scalar_or_list(self.ucl),
            "violations": [
                {"rule": v.rule, "points": list(v.points), "description": v.description}
                for v in self.violations
            ],
        }
        if self.companion is not None:
            out["companion"] = self.companion.as_json()
        return out


def _scalar_or_list(values: Floats) -> float | list[float]:
    return float(values[0]) if np.all(values == values[0]) else values.tolist()


def _full(value: float, length: int) -> Floats:
    return np.full(length, value, dtype=np.float64)


def _finite(name: str, values: ArrayLike, *, ndim: int = 1) -> Floats:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise InvalidInput(f"{name}: expected {'a sequence' if ndim == 1 else 'subgroups'}")
    if array.size == 0:
        raise InvalidInput(f"{name}: no points")
    bad = np.flatnonzero(~np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1))
    if bad.size:
        raise InvalidInput(f"{name}: point {int(bad[0]) + 1} is not a finite number")
    return array


def _kept(length: int, exclude: Sequence[int]) -> NDArray[np.bool_]:
    keep = np.ones(length, dtype=bool)
    for index in exclude:
        if not 0 <= index < length:
            raise InvalidInput(f"excluded point {index}: outside 0..{length - 1}")
        keep[index] = False
    return keep


# -- variables charts --------------------------------------------------------------------


@dataclass
class IndividualsChart:
    """I-MR: individuals with limits center ± 3·MR̄/d2, and the moving range (span 2)."""

    rules: Sequence[str] = field(default_factory=lambda: tuple(RULES))
    center: float = math.nan
    sigma: float = math.nan
    mr_bar: float = math.nan

    def fit(self, x: ArrayLike, exclude: Sequence[int] = ()) -> IndividualsChart:
        """Phase I: limits from ``x`` without the points ``exclude`` (0-based)."""
        values = _finite("individuals", x)
        kept = values[_kept(len(values), exclude)]
        if len(kept) < 2:
            raise InvalidInput("individuals: at least 2 points are needed to set limits")
        self.center = float(kept.mean())
        self.mr_bar = float(np.abs(np.diff(kept)).mean())
        self.sigma = self.mr_bar / constants(2).d2
        return self

    def evaluate(self, x: ArrayLike) -> ChartResult:
        """Phase II: the points ``x`` against the fitted limits."""
        if math.isnan(self.center):
            raise InvalidInput("individuals chart: fit it on a baseline first")
        values = _finite("individuals", x)
        n = len(values)
        z = (values - self.center) / self.sigma if self.sigma > 0 else np.zeros(n)
        mr = np.abs(np.diff(values))
        k = constants(2)
        companion = ChartResult(
            "MR",
            mr,
            _full(self.mr_bar, len(mr)),
            _full(k.D3 * self.mr_bar, len(mr)),
            _full(k.D4 * self.mr_bar, len(mr)),
            Violations(),
        )
        return ChartResult(
            "I",
            values,
            _full(self.center, n),
            _full(self.center - 3 * self.sigma, n),
            _full(self.center + 3 * self.sigma, n),
            run_rules(z, self.rules),
            companion,
        )


@dataclass
class _SubgroupChart(ABC):
    """X̄ with a dispersion chart beside it; the subclass says which dispersion (range or
    standard deviation) and which constants turn its mean into limits."""

    rules: Sequence[str] = field(default_factory=lambda: tuple(RULES))
    center: float = math.nan
    spread_bar: float = math.nan
    n: int = 0
    spread_name = ""

    @staticmethod
    @abstractmethod
    def _spread(data: Floats) -> Floats:
        """Each subgroup's dispersion: its range or its standard deviation."""

    @staticmethod
    @abstractmethod
    def _factors(k: Constants) -> tuple[float, float, float]:
        """(mean factor, lower and upper dispersion factors): A2, D3, D4 or A3, B3, B4."""

    def fit(self, subgroups: ArrayLike, exclude: Sequence[int] = ()) -> Self:
        data = _finite("subgroups", subgroups, ndim=2)
        kept = data[_kept(len(data), exclude)]
        self.n = data.shape[1]
        self.center = float(kept.mean())
        self.spread_bar = float(self._spread(kept).mean())
        return self

    def evaluate(self, subgroups: ArrayLike) -> ChartResult:
        data = _subgroups_of(self.n, subgroups)
        mean_factor, low, high = self._factors(constants(self.n))
        means, spreads = data.mean(axis=1), self._spread(data)
        sigma_mean = mean_factor * self.spread_bar / 3
        z = (means - self.center) / sigma_mean if sigma_mean > 0 else np.zeros(len(means))
        m = len(means)
        companion = ChartResult(
            self.spread_name,
            spreads,
            _full(self.spread_bar, m),
            _full(low * self.spread_bar, m),
            _full(high * self.spread_bar, m),
            Violations(),
        )
        return ChartResult(
            "Xbar",
            means,
            _full(self.center, m),
            _full(self.center - 3 * sigma_mean, m),
            _full(self.center + 3 * sigma_mean, m),
            run_rules(z, self.rules),
            companion,
        )


@dataclass
class XbarRChart(_SubgroupChart):
    """X̄-R: subgroup means with limits X̿ ± A2·R̄; ranges with D3·R̄ and D4·R̄."""

    spread_name = "R"

    @property
    def r_bar(self) -> float:
        return self.spread_bar

    @staticmethod
    def _spread(data: Floats) -> Floats:
        return np.asarray(np.ptp(data, axis=1), dtype=np.float64)

    @staticmethod
    def _factors(k: Constants) -> tuple[float, float, float]:
        return k.A2, k.D3, k.D4


@dataclass
class XbarSChart(_SubgroupChart):
    """X̄-S: subgroup means with limits X̿ ± A3·S̄; standard deviations with B3·S̄, B4·S̄."""

    spread_name = "S"

    @property
    def s_bar(self) -> float:
        return self.spread_bar

    @staticmethod
    def _spread(data: Floats) -> Floats:
        return np.asarray(data.std(axis=1, ddof=1), dtype=np.float64)

    @staticmethod
    def _factors(k: Constants) -> tuple[float, float, float]:
        return k.A3, k.B3, k.B4


def _subgroups_of(n: int, subgroups: ArrayLike) -> Floats:
    if n == 0:
        raise InvalidInput("chart: fit it on a baseline first")
    data = _finite("subgroups", subgroups, ndim=2)
    if data.shape[1] != n:
        raise InvalidInput(f"subgroups of {data.shape[1]}: the chart was fitted on {n}")
    return data


# -- attribute charts ----------------------------------------------------------------------


def attribute_chart(
    kind: str,
    counts: ArrayLike,
    sizes: ArrayLike | None = None,
    *,
    baseline: slice | None = None,
    rules: Sequence[str] = ("WE1", "N1"),
) -> ChartResult:
    """A p, np, c or u chart of ``counts`` (defectives or defects) in samples of ``sizes``
    (required for p and u, constant for np), its center from the ``baseline`` points (all
    by default); limits vary with the sample size for p and u. Only the rules that hold for
    a skewed count (beyond the limits) are applied by default."""
    c = _finite("counts", counts)
    if np.any(c < 0):
        raise InvalidInput("counts: expected counts of zero or more")
    base = baseline or slice(None)
    if kind in ("p", "np", "u"):
        if sizes is None:
            raise InvalidInput(f"{kind} chart: the sample sizes are needed")
        n = _finite("sizes", sizes)
        if n.shape != c.shape or np.any(n <= 0):
            raise InvalidInput("sizes: one positive size per count")
        if kind == "p" and np.any(c > n):
            raise InvalidInput("p chart: a count exceeds its sample size")
    if kind == "p":
        p_bar = float(c[base].sum() / n[base].sum())
        values, center = c / n, _full(p_bar, len(c))
        half = 3 * np.sqrt(p_bar * (1 - p_bar) / n)
        lcl, ucl = np.clip(center - half, 0, 1), np.clip(center + half, 0, 1)
    elif kind == "np":
        if not np.all(n == n[0]):
            raise InvalidInput("np chart: the sample size must be constant (use a p chart)")
        p_bar = float(c[base].sum() / n[base].sum())
        values, center = c, _full(n[0] * p_bar, len(c))
        half = _full(3 * math.sqrt(n[0] * p_bar * (1 - p_bar)), len(c))
        lcl, ucl = np.clip(center - half, 0, None), center + half
    elif kind == "c":
        c_bar = float(c[base].mean())
        values, center = c, _full(c_bar, len(c))
        half = _full(3 * math.sqrt(c_bar), len(c))
        lcl, ucl = np.clip(center - half, 0, None), center + half
    elif kind == "u":
        u_bar = float(c[base].sum() / n[base].sum())
        values, center = c / n, _full(u_bar, len(c))
        half = 3 * np.sqrt(u_bar / n)
        lcl, ucl = np.clip(center - half, 0, None), center + half
    else:
        raise InvalidInput(f"attribute chart {kind!r}: expected p, np, c or u")
    sigma = (ucl - center) / 3
    z = np.divide(values - center, sigma, out=np.zeros(len(values)), where=sigma > 0)
    return ChartResult(
        kind,
        values.astype(np.float64),
        center,
        lcl.astype(np.float64),
        ucl.astype(np.float64),
        run_rules(z, rules),
    )


# -- time-weighted charts ------------------------------------------------------------------


@dataclass
class EwmaChart:
    """EWMA: z_i = λ·x_i + (1-λ)·z_(i-1) from z_0 = μ0, with the exact (time-varying)
    limits μ0 ± L·σ·√(λ/(2-λ)·(1-(1-λ)^(2i)))."""

    lam: float = 0.2
    L: float = 3.0
    mu0: float = math.nan
    sigma: float = math.nan

    def fit(self, x: ArrayLike, exclude: Sequence[int] = ()) -> EwmaChart:
        if not 0 < self.lam <= 1:
            raise InvalidInput(f"EWMA lambda {self.lam!r}: expected 0 < λ ≤ 1")
        chart = IndividualsChart().fit(x, exclude)
        self.mu0, self.sigma = chart.center, chart.sigma
        return self

    def evaluate(self, x: ArrayLike) -> ChartResult:
        values = _finite("EWMA", x)
        z = np.empty(len(values))
        previous = self.mu0
        for i, value in enumerate(values):
            previous = self.lam * value + (1 - self.lam) * previous
            z[i] = previous
        steps = np.arange(1, len(values) + 1)
        width = (
            self.L
            * self.sigma
            * np.sqrt(self.lam / (2 - self.lam) * (1 - (1 - self.lam) ** (2 * steps)))
        )
        center = _full(self.mu0, len(values))
        out = np.flatnonzero((z > center + width) | (z < center - width))
        violations = Violations()
        violations.add("EWMA", 1, out, "EWMA statistic beyond its limit")
        return ChartResult("EWMA", z, center, center - width, center + width, violations)


@dataclass
class CusumChart:
    """Tabular CUSUM: C+_i = max(0, x_i - (μ0 + k·σ) + C+_(i-1)), C-_i = max(0, (μ0 - k·σ)
    - x_i + C-_(i-1)); a signal where either exceeds h·σ."""

    k: float = 0.5
    h: float = 5.0
    mu0: float = math.nan
    sigma: float = math.nan

    def fit(self, x: ArrayLike, exclude: Sequence[int] = ()) -> CusumChart:
        chart = IndividualsChart().fit(x, exclude)
        self.mu0, self.sigma = chart.center, chart.sigma
        return self

    def evaluate(self, x: ArrayLike) -> ChartResult:
        values = _finite("CUSUM", x)
        upper, lower = np.empty(len(values)), np.empty(len(values))
        hi = lo = 0.0
        for i, value in enumerate(values):
            hi = max(0.0, value - (self.mu0 + self.k * self.sigma) + hi)
            lo = max(0.0, (self.mu0 - self.k * self.sigma) - value + lo)
            upper[i], lower[i] = hi, lo
        limit = self.h * self.sigma
        signals = np.flatnonzero((upper > limit) | (lower > limit))
        violations = Violations()
        violations.add("CUSUM", 1, signals, "cumulative sum beyond h·sigma")
        n = len(values)
        lower_chart = ChartResult(
            "CUSUM-", lower, _full(0.0, n), _full(0.0, n), _full(limit, n), Violations()
        )
        return ChartResult(
            "CUSUM+", upper, _full(0.0, n), _full(0.0, n), _full(limit, n), violations, lower_chart
        )
