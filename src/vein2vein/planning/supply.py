"""The vector supply policy, run on the expected demand (:func:`schedule`) or many times
with random batch failures and patients (:func:`simulate_supply`), and the safety stock
that keeps the risk of a stock-out under a target (:func:`safety_stock`).

The policy, reviewed at the start of every month ``m``: project the stock at ``m + L``
(``L`` the months from a batch's start to its release) from what is on hand and in
production, after the demand expected until then (the lots expiring before ``m + L`` are
used first, and what they cannot cover comes out of the others); when that projection is
below the safety stock plus the demand expected in month ``m + L``, start enough batches
to fill the gap. A batch's success is known at its release; a failed one yields nothing,
and the next month's review sees the gap and orders again.

The safety stock is a number of patient doses, the same all along the plan. It is there
for the batch that fails: with batches of hundreds of doses, the risk early in a programme
is that the one batch a trial depends on fails at release with no time to make another,
and only a second batch in stock covers that, whatever the trial's monthly demand (a
safety stock in months of demand would hold a few doses in phase 1 and run out).

Each run of the Monte Carlo draws its patients month by month (Poisson around the
forecast, the forecast itself off by a lognormal factor each year with coefficient of
variation ``forecast_cv``) and its batches' successes; a run *stocks out* when some month's
patients cannot all be dosed. Every level of safety stock is tried on the same random
draws (common random numbers), so two levels differ by the policy, not by the draws.

Examples
--------
The plan of :mod:`vein2vein.planning.vectors`'s example: 120 patients in 2030, 50 doses a
batch, 60 days from start to release.

>>> from datetime import date
>>> plan = VectorPlan.from_dict({
...     "name": "paper", "indication": {"patients_per_year": {2030: 120}},
...     "modality": {"type": "ex-vivo-lv", "cells_transduced": 1e8, "moi": 5,
...                  "qc_and_retains_per_patient": 1e8},
...     "vector": {"titre_per_litre": 1e10, "downstream_yield": 0.3, "scales_litres": [10],
...                "cost_per_batch": {10: 100000}, "batch_success_rate": 0.9,
...                "production_days": 30, "qc_release_days": 30, "shelf_life_days": 3650},
...     "plasmids": {"transfer": {"mg_per_litre": 2.0, "lead_time_days": 90}},
...     "phases": {"phase-1": {"first_patient": date(2030, 1, 1)}}})
>>> s = schedule(plan, 10)
>>> len(s.batches), s.doses_made, s.patients   # 120 patients need 3 batches of 50
(3, 150.0, 120.0)
>>> [b.start.isoformat() for b in s.batches]  # each two months before it is needed
['2029-11-01', '2030-04-01', '2030-09-01']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from vein2vein.domain.errors import InvalidInput
from vein2vein.planning.vectors import MAX_BATCHES, VectorPlan

__all__ = [
    "Batch",
    "SafetySearch",
    "Schedule",
    "SupplyRisk",
    "expected_batches",
    "safety_stock",
    "schedule",
    "simulate_supply",
]

#: The largest safety stock searched: this many years of the peak year's patients, plus
#: two batches (so a scale whose one batch is years of demand can still hold a second).
MAX_SAFETY_YEARS = 3.0

_TINY = 1e-9


@dataclass(frozen=True, slots=True)
class Batch:
    """One vector batch of a schedule: when it starts, fills (end of production), is
    released and expires; the phase under way at its release; and the latest dates to
    book its manufacturing slot and to order each plasmid (``plasmid_orders``). ``late``
    when one of those dates is before the plan's ``as_of``."""

    number: int
    start: date
    fill: date
    release: date
    expires: date
    phase: str
    slot_booking_by: date
    plasmid_orders: dict[str, date]
    late: bool


@dataclass(frozen=True, slots=True)
class Schedule:
    """The policy on the expected demand with every batch succeeding, at one ``scale``
    with ``safety_doses`` of safety stock: the ``batches`` and, for each of ``months``,
    the patients' demand and the stock on hand at its end, in patient doses; the doses
    expired unused, made, and left at the end."""

    scale: float
    safety_doses: float
    months: tuple[date, ...]
    batches: tuple[Batch, ...]
    demand_doses: tuple[float, ...]
    stock_doses: tuple[float, ...]
    expired_doses: float
    doses_made: float
    left_doses: float
    patients: float

    def batches_by_year(self) -> dict[int, int]:
        """Batches started in each calendar year of the plan (0 for a year without)."""
        years = {m.year: 0 for m in self.months}
        for b in self.batches:
            years[b.start.year] = years.get(b.start.year, 0) + 1
        return years


@dataclass(frozen=True, slots=True)
class SupplyRisk:
    """What ``runs`` runs of the policy at one ``scale`` and ``safety_doses`` of safety
    stock give: the probability of a stock-out over the whole plan (with the half-width of
    its 95 % interval), and the mean over the runs of the batches started and failed, the
    patients, the patients who could not be dosed in their month, the doses made, expired
    unused and left at the end, and of those left what patients after the plan (at its
    last month's rate) could use before they expire; ``batches_by_year`` the mean batches
    started each year."""

    scale: float
    safety_doses: float
    runs: int
    p_stockout: float
    p_half_width: float
    batches: float
    failed_batches: float
    patients: float
    patients_short: float
    made_doses: float
    expired_doses: float
    left_doses: float
    usable_left_doses: float
    batches_by_year: dict[int, float]


@dataclass(slots=True)
class _Outcome:
    starts: np.ndarray  # (runs, months) batches started
    good: np.ndarray  # (runs, months) of those, how many succeed
    stock_end: np.ndarray  # (runs, months) units on hand at the month's end
    short: np.ndarray  # (runs,) units of demand that could not be met
    stockout: np.ndarray  # (runs,) bool
    patients: np.ndarray  # (runs,)
    patients_short: np.ndarray  # (runs,)
    expired: np.ndarray  # (runs,) units
    left: np.ndarray  # (runs,) units on hand or in production at the end
    usable_left: np.ndarray  # (runs,) of those, what later patients could use in time
    demand: np.ndarray  # (runs, months) units


@dataclass(slots=True)
class _Draws:
    """The random numbers of ``runs`` runs, drawn once and shared by every safety level:
    the patients and the weight noise of each month, and one uniform number per batch in
    the order each run starts them (more are drawn, the same for every level, when a run
    starts more batches than there are)."""

    seed: int
    patients: np.ndarray  # (runs, months)
    noise: np.ndarray | None  # (runs, months) standard normal; None: doses do not vary
    batches: np.ndarray  # (runs, k) uniform

    def batch(self, rows: np.ndarray, column: np.ndarray) -> np.ndarray:
        while int(column.max()) >= self.batches.shape[1]:
            width = self.batches.shape[1]
            more = np.random.default_rng([self.seed, width]).random((self.batches.shape[0], width))
            self.batches = np.concatenate([self.batches, more], axis=1)
        return self.batches[rows, column]  # type: ignore[no-any-return]


def _draws(plan: VectorPlan, runs: int, seed: int, random_demand: bool, k: int) -> _Draws:
    rng = np.random.default_rng(seed)
    expected = plan.patients_by_month()
    months = plan.months()
    if random_demand:
        cv = plan.supply.forecast_cv
        years = sorted({m.year for m in months})
        sigma = math.sqrt(math.log1p(cv * cv))
        factor = rng.lognormal(-sigma * sigma / 2, sigma, size=(runs, len(years)))
        index = np.array([years.index(m.year) for m in months])
        patients = rng.poisson(expected[None, :] * factor[:, index]).astype(float)
        noise = rng.standard_normal((runs, len(months))) if plan.dose_sd() else None
    else:
        patients = np.broadcast_to(expected, (runs, len(months))).copy()
        noise = None
    return _Draws(seed, patients, noise, rng.random((runs, max(k, 1))))


def _consume(lots: np.ndarray, need: np.ndarray) -> np.ndarray:
    """Take ``need`` (one amount per run) from ``lots`` (per run, in the order they are to
    be used), in place; returns what they could not give."""
    held = np.cumsum(lots, axis=1)
    after = np.maximum(held - need[:, None], 0.0)
    lots[:] = np.diff(after, axis=1, prepend=0.0)
    return np.asarray(np.maximum(need - held[:, -1], 0.0))


def _run(plan: VectorPlan, scale: float, safety_doses: float, draws: _Draws,
         always_succeed: bool) -> _Outcome:  # fmt: skip
    v = plan.vector
    runs, months = draws.patients.shape
    lead = v.lead_months
    usable = min(v.usable_months, months + lead + 1)  # past the plan's end, it does not matter
    per_batch = v.per_batch(scale)
    dose, dose_sd = plan.dose_units(), plan.dose_sd()
    expected = np.concatenate([plan.patients_by_month() * dose, np.zeros(lead + 2)])
    safety_units = safety_doses * dose
    demand = draws.patients * dose
    if dose_sd and draws.noise is not None:
        demand = np.maximum(demand + np.sqrt(draws.patients) * dose_sd * draws.noise, 0.0)
    width = months + lead + usable + 2
    stock = np.zeros((runs, width))  # by the month index at which it expires
    arriving = np.zeros((runs, width))  # good units released at that month
    nominal = np.zeros((runs, width))  # units in production, as the planner counts them
    starts = np.zeros((runs, months), dtype=np.int64)
    good_starts = np.zeros((runs, months), dtype=np.int64)
    stock_end = np.zeros((runs, months))
    short = np.zeros(runs)
    patients_short = np.zeros(runs)
    expired = np.zeros(runs)
    used = np.zeros(runs, dtype=np.int64)  # batches drawn so far in each run
    rows = np.arange(runs)
    p = v.success_rate
    for m in range(months):
        stock[:, m + usable] += arriving[:, m]  # released now, usable until m + usable
        expired += stock[:, m]  # lots expiring now are thrown away
        stock[:, m] = 0.0
        # -- review: the stock projected at m + lead, before that month's demand: the
        # expected demand of the months until then taken first-expiring first from what
        # is on hand and what arrives from production (counted as the planner counts it),
        # each lot serving only the months between its arrival and its expiry.
        ahead = stock[:, m + 1 : m + lead + usable + 1].copy()  # by expiry, from m + 1
        for t in range(m, m + lead):
            if t > m:
                ahead[:, t + usable - m - 1] += nominal[:, t]
            _consume(ahead[:, t - m :], np.full(runs, expected[t]))
        ahead[:, lead + usable - 1] += nominal[:, m + lead]
        projected = ahead[:, lead:].sum(axis=1)
        gap = safety_units + expected[m + lead] - projected
        n = np.where(gap > _TINY * per_batch, np.ceil(gap / per_batch - _TINY), 0).astype(np.int64)
        if n.any():
            starts[:, m] = n
            if always_succeed:
                good = n
            else:
                good = np.zeros(runs, dtype=np.int64)
                for j in range(int(n.max())):
                    good += (n > j) & (draws.batch(rows, used + j) < p)
                used += n
            good_starts[:, m] = good
            nominal[:, m + lead] += n * per_batch
            arriving[:, m + lead] += good * per_batch
        # -- the month's patients, from the lots expiring first
        need = _consume(stock[:, m + 1 : m + usable + 1], demand[:, m])
        missing = need > _TINY * dose
        short += np.where(missing, need, 0.0)
        patients_short += np.where(missing, np.ceil(need / dose - _TINY), 0.0)
        stock_end[:, m] = stock.sum(axis=1)
    for a in range(months, months + lead + 1):  # released after the plan's last month
        stock[:, min(a + usable, width - 1)] += arriving[:, a]
    left = stock.sum(axis=1)
    # Of what is left, what the patients after the plan (at its last month's rate) could
    # use, first-expiring first, before it expires.
    rate = expected[months - 1] if months else 0.0
    usable_left, taken = np.zeros(runs), np.zeros(runs)
    shift = v.usable_months - usable  # lots are kept by their expiry as clamped above
    for e in range(months, width):
        room = np.maximum(rate * (e + shift - months) - taken, 0.0)
        take = np.minimum(stock[:, e], room)
        usable_left += take
        taken += take
    return _Outcome(starts, good_starts, stock_end, short, short > _TINY * dose,
                    draws.patients.sum(axis=1), patients_short, expired, left, usable_left,
                    demand)  # fmt: skip


def _check(plan: VectorPlan, scale: float, safety_doses: float) -> None:
    plan.vector.check_scale(scale)
    if not (math.isfinite(safety_doses) and safety_doses >= 0):
        raise InvalidInput(f"safety stock {safety_doses!r}: expected a number of doses ≥ 0")


def expected_batches(plan: VectorPlan, scale: float) -> float:
    """The batches the plan's patients need at ``scale``, failures included, on average."""
    total = sum(plan.patients_by_year().values()) * plan.dose_units()
    return float(total / plan.vector.per_batch(scale) / plan.vector.success_rate)


def schedule(plan: VectorPlan, scale: float, safety_doses: float = 0.0) -> Schedule:
    """The batch plan at ``scale`` litres with ``safety_doses`` of safety stock: the
    policy on the expected demand, every batch succeeding. The order dates are counted
    back from each batch's start (see :class:`Batch`)."""
    _check(plan, scale, safety_doses)
    dose = plan.dose_units()
    draws = _draws(plan, 1, 0, False, 1)
    out = _run(plan, scale, safety_doses, draws, always_succeed=True)
    months = plan.months()
    v = plan.vector
    batches: list[Batch] = []
    for m, n in enumerate(out.starts[0]):
        for _ in range(int(n)):
            start = months[m]
            fill = start + timedelta(days=v.production_days)
            release = fill + timedelta(days=v.qc_release_days)
            booking = start - timedelta(days=v.slot_booking_days)
            orders = {p.name: start - timedelta(days=p.lead_time_days) for p in plan.plasmids}
            batches.append(Batch(
                number=len(batches) + 1, start=start, fill=fill, release=release,
                expires=fill + timedelta(days=v.shelf_life_days), phase=plan.phase_of(release),
                slot_booking_by=booking, plasmid_orders=orders,
                late=plan.is_late(booking, *orders.values()),
            ))  # fmt: skip
    return Schedule(
        scale=scale, safety_doses=safety_doses, months=tuple(months), batches=tuple(batches),
        demand_doses=tuple(float(x) for x in out.demand[0] / dose),
        stock_doses=tuple(float(x) for x in out.stock_end[0] / dose),
        expired_doses=float(out.expired[0] / dose),
        doses_made=float(out.good.sum() * v.per_batch(scale) / dose),
        left_doses=float(out.left[0] / dose),
        patients=float(out.patients[0]),
    )  # fmt: skip


def _batch_draws(plan: VectorPlan, scale: float) -> int:
    """Draws per run to start with (more are drawn if a run needs them)."""
    return int(min(2 * expected_batches(plan, scale) + 20, 10 * MAX_BATCHES))


def simulate_supply(
    plan: VectorPlan,
    scale: float,
    safety_doses: float = 0.0,
    *,
    runs: int | None = None,
    seed: int | None = None,
    random_demand: bool = True,
) -> SupplyRisk:
    """``runs`` runs of the policy (default: the plan's ``supply.runs``, seeded with its
    ``supply.seed``) with random batch failures and, unless ``random_demand`` is False,
    random patients, at ``safety_doses`` of safety stock."""
    _check(plan, scale, safety_doses)
    runs = plan.supply.runs if runs is None else runs
    if runs < 1:
        raise InvalidInput(f"runs {runs!r}: expected a whole number ≥ 1")
    draws = _draws(plan, runs, plan.supply.seed if seed is None else seed, random_demand,
                   _batch_draws(plan, scale))  # fmt: skip
    return _risk(plan, scale, safety_doses, draws)


def _risk(plan: VectorPlan, scale: float, safety_doses: float, draws: _Draws) -> SupplyRisk:
    dose = plan.dose_units()
    out = _run(plan, scale, safety_doses, draws, always_succeed=False)
    runs = out.stockout.size
    p = float(out.stockout.mean())
    half = 1.96 * math.sqrt(max(p * (1 - p), 0.25 / runs) / runs)
    years = sorted({m.year for m in plan.months()})
    by_year = {y: 0.0 for y in years}
    for i, month in enumerate(plan.months()):
        by_year[month.year] += float(out.starts[:, i].mean())
    per_batch = plan.vector.per_batch(scale)
    return SupplyRisk(
        scale=scale, safety_doses=safety_doses, runs=runs, p_stockout=p, p_half_width=half,
        batches=float(out.starts.sum(axis=1).mean()),
        failed_batches=float((out.starts - out.good).sum(axis=1).mean()),
        patients=float(out.patients.mean()), patients_short=float(out.patients_short.mean()),
        made_doses=float(out.good.sum(axis=1).mean() * per_batch / dose),
        expired_doses=float(out.expired.mean() / dose), left_doses=float(out.left.mean() / dose),
        usable_left_doses=float(out.usable_left.mean() / dose), batches_by_year=by_year,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SafetySearch:
    """The search for the safety stock: the ``risk`` at the level found (or at the
    search's limit when ``reachable`` is False) and ``without``, the risk with none, on
    the same draws."""

    risk: SupplyRisk
    reachable: bool
    without: SupplyRisk


def max_safety_doses(plan: VectorPlan, scale: float) -> int:
    """The largest safety stock searched at ``scale`` (see :data:`MAX_SAFETY_YEARS`)."""
    peak = max(plan.patients_by_year().values(), default=0.0)
    per_batch = plan.vector.per_batch(scale) / plan.dose_units()
    return math.ceil(MAX_SAFETY_YEARS * peak + 2 * per_batch)


def safety_stock(
    plan: VectorPlan, scale: float, *, target: float | None = None, runs: int | None = None,
    seed: int | None = None, random_demand: bool = True,
) -> SafetySearch:  # fmt: skip
    """The smallest safety stock, in whole patient doses (to 1 % above 100 doses), whose
    stock-out probability is at most ``target`` (default: the plan's
    ``supply.stockout_target``), found by doubling and bisection with every level on the
    same random draws; searched up to
    :func:`max_safety_doses`. ``random_demand`` False: the patients are the forecast's,
    only the batches fail."""
    target = plan.supply.stockout_target if target is None else target
    runs = plan.supply.runs if runs is None else runs
    draws = _draws(plan, runs, plan.supply.seed if seed is None else seed, random_demand,
                   _batch_draws(plan, scale))  # fmt: skip
    cap = max_safety_doses(plan, scale)
    tried: dict[int, SupplyRisk] = {}

    def risk(doses: int) -> SupplyRisk:
        if doses not in tried:
            tried[doses] = _risk(plan, scale, float(doses), draws)
        return tried[doses]

    none = risk(0)
    if none.p_stockout <= target:
        return SafetySearch(none, True, none)
    low, high = 0, 1
    while risk(high).p_stockout > target:
        if high >= cap:
            return SafetySearch(risk(high), False, none)
        low, high = high, min(high * 2, cap)
    while high - low > max(1, high // 100):  # to a dose, or to 1 % of a large level
        middle = (low + high) // 2
        if risk(middle).p_stockout <= target:
            high = middle
        else:
            low = middle
    return SafetySearch(risk(high), True, none)
