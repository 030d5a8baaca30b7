"""The discrete-event model of a manufacturing network (DESIGN §9), built with SimPy.

:func:`simulate` runs a :class:`~vein2vein.planning.scenario.Scenario` for ``warmup_days``
(not measured) and then ``years`` (measured); orders stop at the end and the patients
already in the system are followed until they leave (or ``drain_days`` more have passed),
so every patient ordered in the window has a complete journey. It is a pure function of
the scenario and the seed: one :class:`numpy.random.Generator` seeded once, SimPy's
deterministic event order, and nothing else.

What is measured, and over what:

* ``doses_per_year``: infusions that happened inside the window, per year.
* ``vein_to_vein_days``: first apheresis to infusion, for the patients ordered inside the
  window who were dosed (a patient still in the system when the run stops counts with the
  time so far, a lower bound).
* ``utilisation``: for each resource, busy time over on-duty time in the window (staff off
  shift are not on duty); ``bottleneck`` is the resource most used.
* ``waiting_days``: for each resource, the wait of the requests made in the window.
* ``cost_per_dose``: fixed costs for the window's years and the variable costs incurred
  in it, over the doses of the window.
* ``little``: the orders' arrival rate λ in the window, their mean time in the system W
  (order to infusion, loss, or giving up), and the time-average number in the system L over
  the window: Little's law says L = λW.

Examples
--------
One suite working an exponential day per batch, for one order every two days on average,
with nothing else in the way: an M/M/1 queue with ρ = 0.5, whose mean wait for the suite is
ρ/(μ − λ) = 1 day.

>>> from vein2vein.planning.scenario import (Costs, CentreDemand, Demand, Devices,
...     Exponential, Logistics, ManufacturingSite, Process, Release, Route, Scenario, Step,
...     Sterility, TreatmentCentre)
>>> suite = ManufacturingSite("P", "central-plant", Devices("suite", 1, ("p",)))
>>> scenario = Scenario(
...     "M/M/1", sites={"P": suite, "H": TreatmentCentre("H")},
...     processes={"p": Process("p", (Step("batch", Exponential(24)),))},
...     release=Release(sterility=Sterility(days=0)),
...     logistics=Logistics({"H": "P"}, (Route("H", "P"),)),
...     demand=Demand({"H": CentreDemand(365 / 2, "p")}),
...     costs=Costs(facility_per_year={"C": 0}, device_capex={"suite": 0},
...                 overheads_per_year={"central-plant": 0}))
>>> result = simulate(scenario, seed=7, years=40)  # some 7,300 batches
>>> wait = result.waiting_days["P.devices"].mean
>>> abs(wait - 1.0) < 0.15, round(result.utilisation["P.devices"], 2)
(True, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from simpy.core import StopSimulation

from vein2vein.domain.errors import InvalidInput
from vein2vein.planning._journey import Counters, Network
from vein2vein.planning._resources import Draws
from vein2vein.planning.scenario import DAYS_PER_YEAR, Scenario

__all__ = [
    "CostPerDose",
    "Little",
    "SimulationResult",
    "Summary",
    "simulate",
]

QC_ANALYST_ROLE = "qc-analyst"
FAILURES = ("apheresis_rejected", "manufacturing", "out_of_specification", "remanufactured")


@dataclass(frozen=True, slots=True)
class Summary:
    """A distribution of times in days: ``median``, ``p90``, ``mean`` (None when empty)
    and the number of values ``n``."""

    median: float | None
    p90: float | None
    mean: float | None
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        if not values:
            return cls(None, None, None, 0)
        array = np.asarray(values)
        return cls(
            float(np.median(array)), float(np.quantile(array, 0.9)), float(array.mean()),
            len(values),
        )  # fmt: skip

    def as_json(self) -> dict[str, float | None]:
        return {"median": self.median, "p90": self.p90, "mean": self.mean}


@dataclass(frozen=True, slots=True)
class CostPerDose:
    """Cost per dose delivered, ``total`` and its ``breakdown`` (facility, devices, labour,
    overheads, materials, vector, qc, shipping); None when no dose was delivered."""

    total: float | None
    breakdown: Mapping[str, float | None]

    def as_json(self) -> dict[str, object]:
        return {"total": self.total, "breakdown": dict(self.breakdown)}


@dataclass(frozen=True, slots=True)
class Little:
    """Little's law on the window: ``arrival_rate_per_day`` λ, ``mean_days_in_system`` W
    and ``mean_in_system`` L (a time-average); L ≈ λ·W."""

    arrival_rate_per_day: float
    mean_days_in_system: float
    mean_in_system: float

    def as_json(self) -> dict[str, float]:
        return {
            "arrival_rate_per_day": self.arrival_rate_per_day,
            "mean_days_in_system": self.mean_days_in_system,
            "mean_in_system": self.mean_in_system,
        }


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """What one run of :func:`simulate` measured (see the module's docstring).

    ``patients`` counts the patients ordered in the window by how they left (``ordered``,
    ``dosed``, ``lost``, ``without_dose``, ``unfinished``); ``failures`` counts the
    failures in the window by reason, and the re-manufactures they led to; ``events`` is
    the number of SimPy events processed; ``vein_to_vein_histogram[d]`` is the number of
    the vein-to-vein times of ``vein_to_vein_days`` in whole day ``d`` (from d to d + 1).
    """

    doses_per_year: float
    vein_to_vein_days: Summary
    utilisation: Mapping[str, float]
    bottleneck: str | None
    cost_per_dose: CostPerDose
    patients_lost: int
    waiting_days: Mapping[str, Summary]
    patients: Mapping[str, int]
    failures: Mapping[str, int]
    events: int
    little: Little
    vein_to_vein_histogram: tuple[int, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "doses_per_year": self.doses_per_year,
            "vein_to_vein_days": self.vein_to_vein_days.as_json(),
            "utilisation": dict(self.utilisation),
            "bottleneck": self.bottleneck,
            "cost_per_dose": self.cost_per_dose.as_json(),
            "patients_lost": self.patients_lost,
            "waiting_days": {k: v.as_json() for k, v in self.waiting_days.items()},
            "patients": dict(self.patients),
            "failures": dict(self.failures),
            "events": self.events,
            "little": self.little.as_json(),
        }


def simulate(
    scenario: Scenario,
    *,
    seed: int,
    years: float = 1.0,
    warmup_days: float = 90.0,
    drain_days: float = 365.0,
) -> SimulationResult:
    """Run ``scenario`` for ``warmup_days`` and then ``years`` measured, with ``seed``.

    Parameters
    ----------
    scenario : Scenario
        The network; every process it uses must have its steps (an MBR-only process must be
        resolved first).
    seed : int
        Seeds the one random generator: the same seed gives the same result.
    years : float
        Length of the measurement window, in years of 365 days.
    warmup_days : float
        Days simulated before the window, so it starts from a loaded network, not an empty
        one.
    drain_days : float
        At most this many days after the window to follow the patients still in the system.

    Returns
    -------
    SimulationResult

    Raises
    ------
    InvalidInput
        For a negative or non-integer seed, a window that is not positive, or a process
        without steps.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InvalidInput(f"seed {seed!r}: expected a whole number ≥ 0")
    if not (math.isfinite(years) and years > 0):
        raise InvalidInput(f"years {years!r}: expected a number > 0")
    for name, value in (("warmup_days", warmup_days), ("drain_days", drain_days)):
        if not (math.isfinite(value) and value >= 0):
            raise InvalidInput(f"{name} {value!r}: expected a number ≥ 0")
    for centre, wanted in scenario.demand.centres.items():
        if not scenario.processes[wanted.process].steps:
            raise InvalidInput(
                f"demand.centres.{centre}.process: {wanted.process!r} names MBR "
                f"{scenario.processes[wanted.process].mbr!r} but its steps were not filled in"
            )
    window = (warmup_days, warmup_days + years * DAYS_PER_YEAR)
    network = Network(scenario, Draws(np.random.default_rng(seed)), window)
    env, stop = network.env, window[1] + drain_days
    if network.open_arrivals == 0:
        network.emptied.succeed()
    # Environment.run(until=...) with two ends, counting the events on the way.
    for end in (network.emptied, env.timeout(stop)):
        end.callbacks.append(StopSimulation.callback)
    step, events = env.step, 0
    try:
        while True:
            step()
            events += 1
    except StopSimulation:
        pass
    return _result(scenario, network, years, stop, events)


def _result(
    scenario: Scenario, network: Network, years: float, stop: float, events: int
) -> SimulationResult:
    start, end = network.window
    cohort = [p for p in network.patients if start <= p.ordered < end]
    outcomes = {"dose": 0, "lost": 0, "without-dose": 0, "": 0}
    v2v, stays = [], []
    for p in cohort:
        outcomes[p.outcome] += 1
        left = p.left if p.left is not None else stop
        stays.append(left - p.ordered)
        if p.apheresis is not None and p.outcome in ("dose", ""):
            v2v.append(left - p.apheresis)
    utilisation = {pool.name: pool.utilisation() for pool in network.pools}
    window_days = end - start
    counters = network.counters
    return SimulationResult(
        doses_per_year=counters.doses / years,
        vein_to_vein_days=Summary.of(v2v),
        vein_to_vein_histogram=_by_whole_day(v2v),
        utilisation=utilisation,
        bottleneck=max(utilisation, key=lambda k: utilisation[k]) if utilisation else None,
        cost_per_dose=_cost_per_dose(scenario, counters, years),
        patients_lost=outcomes["lost"],
        waiting_days={pool.name: Summary.of(pool.waits) for pool in network.pools},
        patients={
            "ordered": len(cohort),
            "dosed": outcomes["dose"],
            "lost": outcomes["lost"],
            "without_dose": outcomes["without-dose"],
            "unfinished": outcomes[""],
        },
        failures={reason: counters.failures.get(reason, 0) for reason in FAILURES},
        events=events,
        little=Little(
            arrival_rate_per_day=len(cohort) / window_days,
            mean_days_in_system=float(np.mean(stays)) if stays else 0.0,
            mean_in_system=network.in_system.mean(),
        ),
    )


def _by_whole_day(days: list[float]) -> tuple[int, ...]:
    """How many of ``days`` fall in each whole day 0, 1, 2, … up to the longest."""
    if not days:
        return ()
    return tuple(int(n) for n in np.bincount(np.floor(np.asarray(days)).astype(np.int64)))


def _cost_per_dose(scenario: Scenario, counters: Counters, years: float) -> CostPerDose:
    costs = scenario.costs
    spent = dict.fromkeys(
        ("facility", "devices", "labour", "overheads", "materials", "vector", "qc", "shipping"),
        0.0,
    )
    for site in scenario.manufacturing_sites.values():
        d = site.devices
        spent["facility"] += costs.facility_per_year.get(d.grade, 0.0) * d.count * years
        spent["devices"] += (
            costs.device_capex.get(d.type, 0.0) * d.count / costs.amortisation_years * years
        )
        for role, shift in site.staff.items():
            spent["labour"] += shift.hours_per_year * costs.labour_per_hour.get(role, 0.0) * years
        if site.qc is not None:
            rate = costs.labour_per_hour.get(QC_ANALYST_ROLE, 0.0)
            spent["labour"] += site.qc.analysts.hours_per_year * rate * years
        spent["overheads"] += costs.overheads_per_year.get(site.kind, 0.0) * years
    spent["materials"] = counters.batches * costs.materials_per_batch
    spent["vector"] = counters.batches * costs.vector_per_batch
    spent["qc"] = sum(n * costs.qc_per_test.get(test, 0.0) for test, n in counters.tests.items())
    spent["shipping"] = (
        counters.fresh_trips * costs.fresh_shipping_per_trip
        + counters.cryo_trips * costs.cryo_shipping_per_trip
    )
    if counters.doses == 0:
        return CostPerDose(None, dict.fromkeys(spent))
    per_dose = {k: v / counters.doses for k, v in spent.items()}
    return CostPerDose(sum(per_dose.values()), per_dose)
