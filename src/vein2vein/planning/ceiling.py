"""The capacity ceiling of a network: the most demand it serves with the p90 vein-to-vein
time under a target (DESIGN §9).

Demand is scaled by a multiplier on every treatment centre's rate; each multiplier is run
with the same seeds (common random numbers, so neighbouring multipliers differ by the demand
and not by luck), and its p90 is the mean of the runs' p90s. The ceiling is found by
doubling until the target is missed and then by bisection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from vein2vein.domain.errors import InvalidInput
from vein2vein.planning.model import SimulationResult, simulate
from vein2vein.planning.scenario import Scenario

__all__ = ["CapacityCeiling", "RunSeeds", "Tried", "capacity_ceiling", "check_target"]


@dataclass(frozen=True, slots=True)
class Tried:
    """One demand ``multiplier`` the search ran: its mean ``p90_days`` (None when no
    patient was dosed) and ``doses_per_year``, and whether it was ``within`` the target."""

    multiplier: float
    p90_days: float | None
    doses_per_year: float
    within: bool

    def as_json(self) -> dict[str, object]:
        return {
            "multiplier": self.multiplier,
            "p90_days": self.p90_days,
            "doses_per_year": self.doses_per_year,
            "within": self.within,
        }


def check_target(target_p90_days: float) -> None:
    """Raise :class:`InvalidInput` unless the target is a number of days > 0."""
    if not (math.isfinite(target_p90_days) and target_p90_days > 0):
        raise InvalidInput(f"target p90 {target_p90_days!r}: expected a number of days > 0")


#: Runs ``scenario`` once per seed and gives the results in the order of the seeds.
RunSeeds = Callable[[Scenario, Sequence[int]], Sequence[SimulationResult]]


def _here(scenario: Scenario, seeds: Sequence[int], *, years: float, warmup_days: float,
          drain_days: float) -> list[SimulationResult]:  # fmt: skip
    return [simulate(scenario, seed=s, years=years, warmup_days=warmup_days,
                     drain_days=drain_days) for s in seeds]  # fmt: skip


@dataclass(frozen=True, slots=True)
class CapacityCeiling:
    """The highest demand ``multiplier`` found whose mean p90 vein-to-vein time stays under
    ``target_p90_days``, and ``patients_per_year`` at that multiplier (of the scenario's
    ``base_patients_per_year``); the ``p90_days`` and ``doses_per_year`` measured there;
    the number of ``simulations`` run and each multiplier ``tried`` in the order of the
    search.

    ``met`` is False when even the lowest multiplier tried (1/``max_multiplier``) misses
    the target: then ``multiplier`` is 0 and the figures measured there are None.
    ``capped`` is True when the search stopped at ``max_multiplier`` still within the
    target (the ceiling is at least that).
    """

    scenario: str
    multiplier: float
    patients_per_year: float
    base_patients_per_year: float
    target_p90_days: float
    p90_days: float | None
    doses_per_year: float | None
    simulations: int
    tried: tuple[Tried, ...]
    met: bool
    capped: bool

    def as_json(self) -> dict[str, object]:
        """``{"scenario": …, "capacity_ceiling": {…}}``, as the CLI's ``--json`` gives it."""
        return {
            "scenario": self.scenario,
            "capacity_ceiling": {
                "multiplier": self.multiplier,
                "patients_per_year": self.patients_per_year,
                "base_patients_per_year": self.base_patients_per_year,
                "target_p90_days": self.target_p90_days,
                "p90_days": self.p90_days,
                "doses_per_year": self.doses_per_year,
                "met": self.met,
                "capped": self.capped,
                "simulations": self.simulations,
                "tried": [t.as_json() for t in self.tried],
            },
        }


def capacity_ceiling(
    scenario: Scenario,
    *,
    target_p90_days: float,
    seeds: Sequence[int] = (1, 2, 3),
    years: float = 1.0,
    warmup_days: float = 90.0,
    tolerance: float = 0.05,
    max_multiplier: float = 64.0,
    run: RunSeeds | None = None,
    progress: Callable[[int], None] | None = None,
) -> CapacityCeiling:
    """The highest demand multiplier of ``scenario`` whose p90 vein-to-vein time, averaged
    over ``seeds``, is at most ``target_p90_days``.

    Parameters
    ----------
    target_p90_days : float
        The p90 of first apheresis to infusion, in days, not to be exceeded.
    seeds : sequence of int
        One run per seed at each multiplier tried.
    years, warmup_days : float
        As for :func:`~vein2vein.planning.model.simulate`.
    tolerance : float
        Stop when the bracket is narrower than this fraction of its upper end.
    max_multiplier : float
        Search no higher than this (the answer is then ``capped``), and no lower than its
        inverse (the answer is then not ``met``).
    run : callable, optional
        ``run(scenario, seeds)`` → the results of one run per seed (e.g. on worker
        processes); by default they run here, one after another. Each is run with a drain
        of twice the target (see below).
    progress : callable, optional
        ``progress(runs)`` after each multiplier, with the number of runs so far (how many
        the search will take is not known in advance).

    Raises
    ------
    InvalidInput
        For a target or tolerance that is not positive, or no seeds.

    Examples
    --------
    >>> from vein2vein.planning.scenario import (Costs, CentreDemand, Demand, Devices,
    ...     Fixed, Logistics, ManufacturingSite, Process, Release, Route, Scenario, Step,
    ...     Sterility, TreatmentCentre)
    >>> plant = ManufacturingSite("P", "central-plant", Devices("automated", 4, ("p",)))
    >>> scenario = Scenario(
    ...     "four devices, ten-day batches", sites={"P": plant, "H": TreatmentCentre("H")},
    ...     processes={"p": Process("p", (Step("batch", Fixed(240)),))},
    ...     release=Release(sterility=Sterility(days=0)),
    ...     logistics=Logistics({"H": "P"}, (Route("H", "P"),)),
    ...     demand=Demand({"H": CentreDemand(73, "p")}),
    ...     costs=Costs(facility_per_year={"C": 0}, device_capex={"automated": 0},
    ...                 overheads_per_year={"central-plant": 0}))
    >>> ceiling = capacity_ceiling(scenario, target_p90_days=20, seeds=(1,))
    >>> 100 < ceiling.patients_per_year < 4 * 365 / 10  # below the 146 batches a year they make
    True
    >>> capacity_ceiling(scenario, target_p90_days=5, seeds=(1,)).met  # a batch takes 10 days
    False
    """
    check_target(target_p90_days)
    if not seeds:
        raise InvalidInput("seeds: give at least one")
    if not 0 < tolerance < 1:
        raise InvalidInput(f"tolerance {tolerance!r}: expected between 0 and 1")
    # Patients left at the end count with their time so far: a drain as long as twice the
    # target tells an overloaded network from one that meets it.
    drain = target_p90_days * 2
    run_seeds: RunSeeds = run or partial(_here, years=years, warmup_days=warmup_days,
                                         drain_days=drain)  # fmt: skip
    runs = 0
    measured: dict[float, tuple[float, float]] = {}
    tried: list[Tried] = []

    def within(multiplier: float) -> bool:
        nonlocal runs
        results = run_seeds(scenario.with_demand(multiplier), seeds)
        runs += len(results)
        if progress is not None:
            progress(runs)
        p90s = [math.inf if r.vein_to_vein_days.p90 is None else r.vein_to_vein_days.p90
                for r in results]  # fmt: skip
        doses = [r.doses_per_year for r in results]
        mean_p90, mean_doses = sum(p90s) / len(p90s), sum(doses) / len(doses)
        measured[multiplier] = (mean_p90, mean_doses)
        ok = mean_p90 <= target_p90_days
        tried.append(Tried(multiplier, mean_p90 if math.isfinite(mean_p90) else None,
                           mean_doses, ok))  # fmt: skip
        return ok

    low, high = 0.0, 1.0
    while within(high):
        low = high
        if high >= max_multiplier:
            break
        high = min(high * 2, max_multiplier)
    floor = 1 / max_multiplier
    if low == 0.0:  # even today's demand misses: halve until within, down to the floor
        while high > floor:
            high_was = high
            high = max(high / 2, floor)
            if within(high):
                low, high = high, high_was
                break
            if high == floor:
                break
    if 0 < low < high:
        while high - low > tolerance * high:
            middle = (low + high) / 2
            if within(middle):
                low = middle
            else:
                high = middle
    p90, doses = measured.get(low, (math.nan, math.nan))
    base = scenario.demand.patients_per_year
    return CapacityCeiling(
        scenario=scenario.name,
        multiplier=low,
        patients_per_year=base * low,
        base_patients_per_year=base,
        target_p90_days=target_p90_days,
        p90_days=None if not math.isfinite(p90) else p90,
        doses_per_year=None if math.isnan(doses) else doses,
        simulations=runs,
        tried=tuple(tried),
        met=low > 0,
        capped=low >= max_multiplier,
    )
