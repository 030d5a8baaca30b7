"""What many runs of a scenario say together: each metric's mean over the replications with
its 95 % confidence interval, a sweep's grid of cells, and two scenarios side by side.

A replication is one run with its own seed; the runs of a scenario are independent, so the
interval is Student's t on their values (n − 1 degrees of freedom). Two scenarios compared
on the same seeds are paired: their difference's interval is taken on the per-seed
differences, which common random numbers make much narrower than the two intervals apart.

Examples
--------
Five values 1…5: mean 3, s = 1.581, and t(0.975, 4) = 2.776 (any t table).

>>> e = Estimate.of([1.0, 2.0, 3.0, 4.0, 5.0])
>>> round(e.mean, 3), round(e.ci_low, 3), round(e.ci_high, 3)
(3.0, 1.037, 4.963)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from vein2vein.planning.model import SimulationResult

__all__ = ["METRICS", "Comparison", "Estimate", "Replications", "Sweep", "SweepCell"]

CONFIDENCE = 0.95


def _p90(r: SimulationResult) -> float | None:
    return r.vein_to_vein_days.p90


def _median(r: SimulationResult) -> float | None:
    return r.vein_to_vein_days.median


#: The metrics estimated over replications, by name, read from one run's result.
METRICS: Mapping[str, Callable[[SimulationResult], float | None]] = {
    "doses_per_year": lambda r: r.doses_per_year,
    "vein_to_vein_median": _median,
    "vein_to_vein_p90": _p90,
    "cost_per_dose": lambda r: r.cost_per_dose.total,
    "patients_lost": lambda r: float(r.patients_lost),
}


@dataclass(frozen=True, slots=True)
class Estimate:
    """The ``mean`` of a metric over ``n`` values and its 95 % confidence interval
    (``ci_low``, ``ci_high``: mean ± t(0.975, n − 1)·s/√n). The interval is None with
    fewer than two values; everything is None with none (a run without doses has no
    vein-to-vein time or cost per dose, and is left out)."""

    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Estimate:
        kept = [float(v) for v in values if v is not None and math.isfinite(v)]
        n = len(kept)
        if n == 0:
            return cls(None, None, None, 0)
        mean = math.fsum(kept) / n
        if n == 1:
            return cls(mean, None, None, 1)
        from scipy.stats import t

        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in kept) / (n - 1))
        half = float(t.ppf((1 + CONFIDENCE) / 2, n - 1)) * sd / math.sqrt(n)
        return cls(mean, mean - half, mean + half, n)

    def as_json(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return math.fsum(kept) / len(kept) if kept else None


def _bottleneck(
    results: Sequence[SimulationResult], utilisation: Mapping[str, float]
) -> str | None:
    """The resource most often the bottleneck; a tie goes to the most used, then the name."""
    counts = Counter(r.bottleneck for r in results if r.bottleneck is not None)
    if not counts:
        return None
    return min(counts, key=lambda k: (-counts[k], -utilisation.get(k, 0.0), k))


@dataclass(frozen=True, slots=True)
class Replications:
    """Runs of one scenario, one per seed, summarised.

    ``estimates`` holds an :class:`Estimate` per name of :data:`METRICS`;
    ``utilisation`` is each resource's mean utilisation (busy over on-duty time, 0–1);
    ``bottleneck`` the resource most often the most used, and ``bottlenecks`` how many
    runs named each; ``cost_breakdown`` the mean cost per dose of each item; ``runs``
    each run's result, in seed order; ``vein_to_vein_histogram`` the runs' histograms
    of vein-to-vein time (whole days) added together; ``waiting_days`` each resource's
    mean wait in days (the mean of the runs' means; None where no request waited for it).
    """

    scenario: str
    seeds: tuple[int, ...]
    years: float
    estimates: Mapping[str, Estimate]
    utilisation: Mapping[str, float]
    bottleneck: str | None
    bottlenecks: Mapping[str, int]
    cost_breakdown: Mapping[str, float | None]
    waiting_days: Mapping[str, float | None]
    runs: tuple[SimulationResult, ...]

    @property
    def vein_to_vein_histogram(self) -> tuple[int, ...]:
        longest = max((len(r.vein_to_vein_histogram) for r in self.runs), default=0)
        pooled = [0] * longest
        for run in self.runs:
            for day, count in enumerate(run.vein_to_vein_histogram):
                pooled[day] += count
        return tuple(pooled)

    @classmethod
    def of(
        cls, scenario: str, seeds: Sequence[int], years: float, runs: Sequence[SimulationResult]
    ) -> Replications:
        if len(seeds) != len(runs):
            raise ValueError(f"{len(seeds)} seeds for {len(runs)} runs")
        resources = sorted({k for r in runs for k in r.utilisation})
        utilisation = {
            k: math.fsum(r.utilisation.get(k, 0.0) for r in runs) / len(runs) for k in resources
        }
        items = sorted({k for r in runs for k in r.cost_per_dose.breakdown})
        return cls(
            scenario=scenario,
            seeds=tuple(seeds),
            years=years,
            estimates={name: Estimate.of([get(r) for r in runs]) for name, get in METRICS.items()},
            utilisation=utilisation,
            bottleneck=_bottleneck(runs, utilisation),
            bottlenecks=dict(Counter(r.bottleneck for r in runs if r.bottleneck is not None)),
            cost_breakdown={
                k: _mean([r.cost_per_dose.breakdown.get(k) for r in runs]) for k in items
            },
            waiting_days={
                k: _mean([w.mean if (w := r.waiting_days.get(k)) else None for r in runs])
                for k in resources
            },
            runs=tuple(runs),
        )

    def as_json(self, *, runs: bool = True) -> dict[str, object]:
        """The issue's keys, each aggregated metric as ``{mean, ci_low, ci_high, n}``;
        ``runs`` adds each run's own ``as_json()`` with its ``seed``."""
        e = self.estimates
        out: dict[str, object] = {
            "scenario": self.scenario,
            "replications": len(self.seeds),
            "seeds": list(self.seeds),
            "years": self.years,
            "doses_per_year": e["doses_per_year"].as_json(),
            "vein_to_vein_days": {
                "median": e["vein_to_vein_median"].as_json(),
                "p90": e["vein_to_vein_p90"].as_json(),
            },
            "utilisation": dict(self.utilisation),
            "bottleneck": self.bottleneck,
            "bottlenecks": dict(self.bottlenecks),
            "cost_per_dose": {
                **e["cost_per_dose"].as_json(),
                "breakdown": dict(self.cost_breakdown),
            },
            "patients_lost": e["patients_lost"].as_json(),
            "waiting_days": dict(self.waiting_days),
            "vein_to_vein_histogram": {"bin_days": 1, "counts": list(self.vein_to_vein_histogram)},
        }
        if runs:
            out["runs"] = [
                {"seed": seed, **run.as_json()}
                for seed, run in zip(self.seeds, self.runs, strict=True)
            ]
        return out


@dataclass(frozen=True, slots=True)
class SweepCell:
    """One cell of a sweep: parameter values ``a`` and ``b``, the mean p90 vein-to-vein
    time in days, the doses per year, and the cell's ``bottleneck`` with its mean
    utilisation (0–1)."""

    a: float
    b: float
    vein_to_vein_p90: Estimate
    doses_per_year: Estimate
    bottleneck: str | None
    bottleneck_utilisation: float | None

    @classmethod
    def of(cls, a: float, b: float, runs: Sequence[SimulationResult]) -> SweepCell:
        resources = {k for r in runs for k in r.utilisation}
        utilisation = {
            k: math.fsum(r.utilisation.get(k, 0.0) for r in runs) / len(runs) for k in resources
        }
        bottleneck = _bottleneck(runs, utilisation)
        return cls(
            a=a,
            b=b,
            vein_to_vein_p90=Estimate.of([_p90(r) for r in runs]),
            doses_per_year=Estimate.of([r.doses_per_year for r in runs]),
            bottleneck=bottleneck,
            bottleneck_utilisation=None if bottleneck is None else utilisation[bottleneck],
        )

    def as_json(self) -> dict[str, object]:
        return {
            "a": self.a,
            "b": self.b,
            "vein_to_vein_days": {"p90": self.vein_to_vein_p90.as_json()},
            "doses_per_year": self.doses_per_year.as_json(),
            "bottleneck": self.bottleneck,
            "bottleneck_utilisation": self.bottleneck_utilisation,
        }


@dataclass(frozen=True, slots=True)
class Sweep:
    """A grid over two parameters: ``cells[i][j]`` was run at ``values_a[i]`` and
    ``values_b[j]``, every cell on the same ``seeds`` (common random numbers: cells differ
    by their parameters, not by luck)."""

    scenario: str
    parameter_a: str
    values_a: tuple[float, ...]
    parameter_b: str
    values_b: tuple[float, ...]
    seeds: tuple[int, ...]
    years: float
    cells: tuple[tuple[SweepCell, ...], ...]

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.values_a), len(self.values_b))

    def as_json(self) -> dict[str, object]:
        """The parameters, and ``cells`` row by row (``a`` major), each with its ``a``
        and ``b``."""
        return {
            "scenario": self.scenario,
            "parameter_a": self.parameter_a,
            "values_a": list(self.values_a),
            "parameter_b": self.parameter_b,
            "values_b": list(self.values_b),
            "replications": len(self.seeds),
            "seeds": list(self.seeds),
            "years": self.years,
            "cells": [cell.as_json() for row in self.cells for cell in row],
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Scenario ``a`` and scenario ``b`` run on the same seeds, and ``difference``: for each
    name of :data:`METRICS`, b − a estimated on the per-seed differences (seeds where
    either has no value are left out)."""

    a: Replications
    b: Replications
    difference: Mapping[str, Estimate]

    @classmethod
    def of(cls, a: Replications, b: Replications) -> Comparison:
        if a.seeds != b.seeds:
            raise ValueError("a comparison needs the same seeds on both sides")
        difference = {}
        for name, get in METRICS.items():
            pairs = [(get(x), get(y)) for x, y in zip(a.runs, b.runs, strict=True)]
            difference[name] = Estimate.of(
                [y - x for x, y in pairs if x is not None and y is not None]
            )
        return cls(a, b, difference)

    def as_json(self) -> dict[str, object]:
        """``a`` and ``b`` as :meth:`Replications.as_json` without their runs, and the
        ``difference`` (b − a) under the same keys."""
        d = self.difference
        return {
            "a": self.a.as_json(runs=False),
            "b": self.b.as_json(runs=False),
            "difference": {
                "doses_per_year": d["doses_per_year"].as_json(),
                "vein_to_vein_days": {
                    "median": d["vein_to_vein_median"].as_json(),
                    "p90": d["vein_to_vein_p90"].as_json(),
                },
                "cost_per_dose": d["cost_per_dose"].as_json(),
                "patients_lost": d["patients_lost"].as_json(),
            },
        }
