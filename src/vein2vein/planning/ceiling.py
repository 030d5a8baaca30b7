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

from vein2vein.domain.errors import InvalidInput
from vein2vein.planning.model import simulate
from vein2vein.planning.scenario import Scenario

__all__ = ["CapacityCeiling", "Tried", "capacity_ceiling"]


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


@dataclass(frozen=True, slots=True)
class CapacityCeiling:
    """The highest demand ``multiplier`` found whose mean p90 vein-to-vein time stays under
    ``target_p90_days``: ``patients_per_year`` at that multiplier, the ``p90_days`` and
    ``doses_per_year`` measured there (None when the target is missed even at the lowest
    multiplier tried), the number of ``simulations`` run, and each multiplier ``tried``
    in the order of the search."""

    multiplier: float
    patients_per_year: float
    target_p90_days: float
    p90_days: float | None
    doses_per_year: float | None
    simulations: int
    tried: tuple[Tried, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "multiplier": self.multiplier,
            "patients_per_year": self.patients_per_year,
            "target_p90_days": self.target_p90_days,
            "p90_days": self.p90_days,
            "doses_per_year": self.doses_per_year,
            "simulations": self.simulations,
            "tried": [t.as_json() for t in self.tried],
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
        Search no higher (the answer is then ``max_multiplier``).
    progress : callable, optional
        ``progress(runs)`` after each run, with the number of runs so far (how many the
        search will take is not known in advance).

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
    """
    if not (math.isfinite(target_p90_days) and target_p90_days > 0):
        raise InvalidInput(f"target_p90_days {target_p90_days!r}: expected a number > 0")
    if not seeds:
        raise InvalidInput("seeds: give at least one")
    if not 0 < tolerance < 1:
        raise InvalidInput(f"tolerance {tolerance!r}: expected between 0 and 1")
    runs = 0
    measured: dict[float, tuple[float, float]] = {}
    tried: list[Tried] = []

    def within(multiplier: float) -> bool:
        nonlocal runs
        p90s, doses = [], []
        for seed in seeds:
            # Patients left at the end count with their time so far: a drain as long as
            # the target tells an overloaded network from one that meets it.
            result = simulate(scenario.with_demand(multiplier), seed=seed, years=years,
                              warmup_days=warmup_days, drain_days=target_p90_days * 2)  # fmt: skip
            runs += 1
            if progress is not None:
                progress(runs)
            p90 = result.vein_to_vein_days.p90
            p90s.append(math.inf if p90 is None else p90)
            doses.append(result.doses_per_year)
        measured[multiplier] = (sum(p90s) / len(p90s), sum(doses) / len(doses))
        ok = measured[multiplier][0] <= target_p90_days
        mean_p90 = measured[multiplier][0]
        tried.append(Tried(multiplier, mean_p90 if math.isfinite(mean_p90) else None,
                           measured[multiplier][1], ok))  # fmt: skip
        return ok

    low, high = 0.0, 1.0
    while within(high):
        low = high
        if high >= max_multiplier:
            break
        high = min(high * 2, max_multiplier)
    if low < high:
        while high - low > tolerance * high:
            middle = (low + high) / 2
            if within(middle):
                low = middle
            else:
                high = middle
    p90, doses = measured.get(low, (math.nan, math.nan))
    return CapacityCeiling(
        multiplier=low,
        patients_per_year=scenario.demand.patients_per_year * low,
        target_p90_days=target_p90_days,
        p90_days=None if math.isnan(p90) or math.isinf(p90) else p90,
        doses_per_year=None if math.isnan(doses) else doses,
        simulations=runs,
        tried=tuple(tried),
    )
