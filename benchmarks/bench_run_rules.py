"""Run rules over 1,000,000 standardized points against numpy's mean and standard deviation.

Setup (untimed): 1,000,000 points of an in-control standard normal series from a seeded
``numpy.random.Generator``, with patterns planted every 50,000 points so that every rule
fires: a shift of 2 sigma, a steady trend, an alternation, a stretch hugging the center line,
a mixture beyond 1 sigma on both sides and a point beyond 3 sigma. Timed: analytics/
control_charts.py ``run_rules(z)`` with all twelve rules (Western Electric 1-4, Nelson 1-8),
its work forced by ``counts()`` — against ``z.mean(); z.std()`` over the same points, the
least a monitoring pass over them could cost. No database.
"""

from __future__ import annotations

import numpy as np
from _common import Result, best_of, say
from numpy.typing import NDArray

from vein2vein.analytics.control_charts import RULES, run_rules

TARGET = 0.1  # within 10 times the baseline
SEED = 20261124


def standardized_points(n: int, seed: int = SEED) -> NDArray[np.float64]:
    """``n`` in-control points, (x - center) / sigma, with a pattern of each kind planted
    every 50,000 points."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    for at in range(10_000, n - 200, 50_000):
        z[at : at + 40] += 2.0  # a shift: 2 of 3, 4 of 5, runs on one side
        z[at + 60 : at + 70] = np.linspace(-1.0, 1.5, 10)  # a trend
        z[at + 80 : at + 100] = np.tile([0.6, -0.4], 10)  # alternating up and down
        z[at + 110 : at + 140] = rng.uniform(-0.5, 0.5, 30)  # hugging the center line
        z[at + 150 : at + 162] = np.tile([1.8, -1.6], 6)  # a mixture beyond 1 sigma
        z[at + 180] = 4.5  # beyond 3 sigma
    return z


def run(points: int = 1_000_000) -> Result:
    say(f"run rules: {points:,} standardized points")
    z = standardized_points(points)

    def baseline() -> None:
        z.mean()
        z.std()

    def measured() -> dict[str, int]:
        return run_rules(z).counts()  # counts() forces nothing more: the work is done

    counts = measured()  # once untimed, to check every rule fires
    assert set(counts) == set(RULES), counts
    say("run rules: baseline z.mean(); z.std()")
    base = best_of(50, baseline)
    say(f"  {base * 1e3:.2f} ms")
    say("run rules: run_rules(z), all 12 rules")
    took = best_of(30, measured)
    say(f"  {took * 1e3:.2f} ms")
    ratio = base / took
    found = sum(counts.values())
    return Result(
        name=f"run rules, {points:,} points, all 12 rules",
        measured=f"{took * 1e3:.1f} ms ({points / took / 1e6:,.0f} M points/s)",
        baseline=f"{base * 1e3:.2f} ms numpy mean + std",
        ratio=ratio,
        target=f"≥ {TARGET} (within 10×)",
        met=ratio >= TARGET,
        note=(
            f"{found:,} violations found ("
            + ", ".join(f"{rule} {n:,}" for rule, n in counts.items())
            + "); best of 30 (baseline best of 50); one thread"
        ),
    )


if __name__ == "__main__":
    print(run())
