"""A manufacturing network to simulate (DESIGN §9): sites and their devices, staff and QC
labs, the process, QC and release, logistics, demand, failures, losses and costs.

Every part is a frozen dataclass that checks its own values; :class:`Scenario` checks that
the parts fit together (each treatment centre served by a manufacturing site that runs its
process, a route for each, the roles and instruments that are used exist and are priced)
and reports every problem at once, each with its place in the file's shape
(``logistics.serves.TC2: treatment centre 'TC2' is served by no manufacturing site``).

Units are in the names: ``*_hours``, ``*_days``, ``patients_per_year``, ``*_per_week``;
money is in one currency (EUR in the examples). Durations are :data:`Distribution` values.
The simulation clock runs in days.

:meth:`Scenario.from_dict` builds a scenario from the plain shape of a scenario file (see
:mod:`vein2vein.formats.scenario`, which checks the file and gives that shape).

Examples
--------
>>> Triangular(2, 3, 7).mean
4.0
>>> Shift(headcount=3, hours_per_day=8, days_per_week=5).hours_per_year
6257.142857142857
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from vein2vein.domain.errors import InvalidInput
from vein2vein.planning._scenario_checks import consistency_problems

__all__ = [
    "GRADES",
    "CentreDemand",
    "Costs",
    "Demand",
    "Devices",
    "Distribution",
    "Exponential",
    "Failures",
    "Fixed",
    "InvalidScenario",
    "Logistics",
    "Lognormal",
    "ManufacturingSite",
    "Process",
    "QcLab",
    "QcTest",
    "Release",
    "Route",
    "Scenario",
    "Shift",
    "Site",
    "Step",
    "Sterility",
    "TreatmentCentre",
    "Triangular",
]

#: Cleanroom grades (EU GMP Annex 1) of the room a suite or device stands in; ``CNC`` is
#: controlled, not classified. Grade A is the cabinet inside a grade B room.
GRADES = ("B", "C", "D", "CNC")
DAYS_PER_YEAR = 365.0


class InvalidScenario(InvalidInput):
    """A scenario whose parts do not fit together; ``problems`` lists each with its place."""

    code = "invalid-scenario"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f"; … {len(problems) - 10} more" if len(problems) > 10 else ""
        super().__init__(f"scenario: {len(problems)} problem(s): {'; '.join(problems[:10])}{more}")


def _finite(name: str, value: float, *, low: float = 0.0, strict: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (strict and value == low):
        sign = ">" if strict else "≥"
        raise InvalidInput(f"{name}: must be a number {sign} {low:g}, got {value!r}")


def _whole(name: str, value: int, *, low: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InvalidInput(f"{name}: must be a whole number ≥ {low}, got {value!r}")


def _probability(name: str, value: float) -> None:
    _finite(name, value)
    if value > 1:
        raise InvalidInput(f"{name}: a probability is at most 1, got {value!r}")


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


# -- durations -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always ``value`` (in the unit of the field that holds it)."""

    value: float

    def __post_init__(self) -> None:
        _finite("fixed", self.value)

    @property
    def mean(self) -> float:
        return float(self.value)


@dataclass(frozen=True, slots=True)
class Triangular:
    """Triangular between ``low`` and ``high`` with its peak at ``mode``."""

    low: float
    mode: float
    high: float

    def __post_init__(self) -> None:
        for name in ("low", "mode", "high"):
            _finite(f"triangular.{name}", getattr(self, name))
        if not self.low <= self.mode <= self.high:
            raise InvalidInput(
                f"triangular: expected min ≤ mode ≤ max, got {self.low:g}, {self.mode:g}, "
                f"{self.high:g}"
            )

    @property
    def mean(self) -> float:
        return (self.low + self.mode + self.high) / 3


@dataclass(frozen=True, slots=True)
class Lognormal:
    """Lognormal with ``median`` (e^μ) and ``sigma`` (σ of the logarithm): long right tail."""

    median: float
    sigma: float

    def __post_init__(self) -> None:
        _finite("lognormal.median", self.median, strict=True)
        _finite("lognormal.sigma", self.sigma, strict=True)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)


@dataclass(frozen=True, slots=True)
class Exponential:
    """Exponential with ``mean``: memoryless, as queueing theory's service times."""

    mean: float

    def __post_init__(self) -> None:
        _finite("exponential.mean", self.mean, strict=True)


Distribution = Fixed | Triangular | Lognormal | Exponential
ZERO = Fixed(0.0)


# -- sites ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shift:
    """A role's cover: ``headcount`` people on duty at once for ``hours_per_day`` hours from
    ``start_hour`` (0–24, clock time) on the first ``days_per_week`` days of each week
    (Monday first). 24 hours on 7 days is round-the-clock cover. Work that runs over the end
    of a shift is finished (overtime); work that has not started waits for the next shift."""

    headcount: int
    hours_per_day: float = 24.0
    days_per_week: int = 7
    start_hour: float = 8.0

    def __post_init__(self) -> None:
        _whole("headcount", self.headcount)
        _finite("hours_per_day", self.hours_per_day, strict=True)
        if self.hours_per_day > 24:
            raise InvalidInput(f"hours_per_day: at most 24, got {self.hours_per_day:g}")
        _whole("days_per_week", self.days_per_week)
        if self.days_per_week > 7:
            raise InvalidInput(f"days_per_week: at most 7, got {self.days_per_week}")
        _finite("start_hour", self.start_hour)
        if self.start_hour >= 24:
            raise InvalidInput(f"start_hour: below 24, got {self.start_hour:g}")

    @property
    def round_the_clock(self) -> bool:
        return self.hours_per_day >= 24 and self.days_per_week == 7

    @property
    def hours_per_year(self) -> float:
        """Paid person-hours per year: headcount × hours per day × days per week × 365/7."""
        return self.headcount * self.hours_per_day * self.days_per_week * DAYS_PER_YEAR / 7


@dataclass(frozen=True, slots=True)
class Devices:
    """The suites or automated devices of a manufacturing site, all alike.

    ``type`` is ``suite`` (a cleanroom suite, open or closed manual processing) or
    ``automated`` (a closed automated device); ``count`` of them, each running up to
    ``batches_at_once`` batches (so ``count × batches_at_once`` slots), in rooms of
    cleanroom ``grade``. Each batch needs ``operators_per_batch`` people of
    ``operator_role`` during the hands-on hours of its steps, and holds its slot for
    ``changeover_hours`` (cleaning, line clearance) after it ends. ``processes`` names the
    processes the devices run."""

    type: Literal["suite", "automated"]
    count: int
    processes: tuple[str, ...]
    batches_at_once: int = 1
    grade: str = "C"
    changeover_hours: Distribution = ZERO
    operators_per_batch: int = 0
    operator_role: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ("suite", "automated"):
            raise InvalidInput(f"devices.type: suite or automated, got {self.type!r}")
        _whole("devices.count", self.count)
        _whole("devices.batches_at_once", self.batches_at_once)
        object.__setattr__(self, "processes", tuple(self.processes))
        if not self.processes:
            raise InvalidInput("devices.processes: name at least one process")
        if self.grade not in GRADES:
            raise InvalidInput(f"devices.grade: one of {', '.join(GRADES)}, got {self.grade!r}")
        _whole("devices.operators_per_batch", self.operators_per_batch, low=0)
        if self.operators_per_batch and not self.operator_role:
            raise InvalidInput("devices.operator_role: needed when operators_per_batch > 0")

    @property
    def slots(self) -> int:
        return self.count * self.batches_at_once


@dataclass(frozen=True, slots=True)
class QcLab:
    """A manufacturing site's QC lab: ``analysts`` and how many ``instruments`` of each
    test method (``{flow-cytometer: 2, qpcr: 1}``)."""

    analysts: Shift
    instruments: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "instruments", _frozen(self.instruments))
        for method, count in self.instruments.items():
            _whole(f"qc.instruments.{method}", count)


@dataclass(frozen=True, slots=True)
class ManufacturingSite:
    """A ``central-plant`` or a ``point-of-care`` unit inside a hospital: its devices, its
    staff by role (``{operator: Shift, qa: Shift}``) and its QC lab."""

    id: str
    kind: Literal["central-plant", "point-of-care"]
    devices: Devices
    staff: Mapping[str, Shift] = field(default_factory=dict)
    qc: QcLab | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("central-plant", "point-of-care"):
            raise InvalidInput(f"kind: central-plant or point-of-care, got {self.kind!r}")
        object.__setattr__(self, "staff", _frozen(self.staff))


@dataclass(frozen=True, slots=True)
class TreatmentCentre:
    """A hospital that orders, collects (apheresis ``apheresis_after_order_days`` after the
    order) and infuses (``infusion_after_receipt_days`` after the product arrives, the
    lymphodepletion having been timed to it)."""

    id: str
    apheresis_after_order_days: Distribution = ZERO
    infusion_after_receipt_days: Distribution = ZERO
    name: str = ""
    kind: Literal["treatment-centre"] = "treatment-centre"


Site = ManufacturingSite | TreatmentCentre


# -- process, QC and release ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a process: it lasts ``hours``; its first ``hands_on_hours`` (at most the
    step's duration) need the device's operators; the rest is walk-away time."""

    id: str
    hours: Distribution
    hands_on_hours: float = 0.0

    def __post_init__(self) -> None:
        _finite(f"{self.id}.hands_on_hours", self.hands_on_hours)


@dataclass(frozen=True, slots=True)
class Process:
    """A manufacturing process: its ``steps`` in order, or the ``mbr`` (an MBR's process
    code) whose steps' expected hours give them; a process named only by its MBR must be
    resolved (its steps filled in) before it is simulated."""

    name: str
    steps: tuple[Step, ...] = ()
    mbr: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps and not self.mbr:
            raise InvalidInput(f"processes.{self.name}: give its steps or the mbr they come from")
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise InvalidInput(f"processes.{self.name}.steps: a step id is used twice")

    @property
    def mean_hours(self) -> float:
        return sum(s.hours.mean for s in self.steps)


@dataclass(frozen=True, slots=True)
class QcTest:
    """A release test run in the manufacturing site's QC lab, in parallel with the others:
    it occupies an instrument of ``method`` for ``hours`` and an analyst for the first
    ``analyst_hours`` of them."""

    name: str
    method: str
    hours: Distribution
    analyst_hours: float = 0.0

    def __post_init__(self) -> None:
        _finite(f"tests.{self.name}.analyst_hours", self.analyst_hours)


@dataclass(frozen=True, slots=True)
class Sterility:
    """The sterility test: the compendial ``culture`` (14 days) or a ``rapid`` method, read
    after ``days``; ``days`` 0 means no sterility wait is modelled."""

    method: Literal["culture", "rapid"] = "culture"
    days: float = 14.0

    def __post_init__(self) -> None:
        if self.method not in ("culture", "rapid"):
            raise InvalidInput(f"sterility.method: culture or rapid, got {self.method!r}")
        _finite("sterility.days", self.days)


@dataclass(frozen=True, slots=True)
class Release:
    """QC and release: the ``tests``, the ``sterility`` test, and the QA review of
    ``review_hours`` by ``reviewer_role`` (no role: a plain delay). With
    ``conditional`` release the product ships once the other tests pass and the sterility
    culture has shown nothing for ``conditional_after_days``, before its final read."""

    tests: tuple[QcTest, ...] = ()
    sterility: Sterility = field(default_factory=Sterility)
    conditional: bool = False
    conditional_after_days: float = 0.0
    review_hours: Distribution = ZERO
    reviewer_role: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tests", tuple(self.tests))
        _finite("qc_release.conditional_after_days", self.conditional_after_days)
        names = [t.name for t in self.tests]
        if len(set(names)) != len(names):
            raise InvalidInput("qc_release.tests: a test name is used twice")

    @property
    def sterility_wait_days(self) -> float:
        """Days from the start of QC that release waits for the sterility test."""
        if self.conditional:
            return min(self.conditional_after_days, self.sterility.days)
        return self.sterility.days


# -- logistics, demand, failures, costs ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """Between a treatment ``centre`` and a manufacturing ``site``: fresh apheresis
    transport to the site (``transport_hours``, 2–8 °C) and cryo-shipping of the product back
    (``shipping_hours``, vapour-phase nitrogen)."""

    centre: str
    site: str
    transport_hours: Distribution = ZERO
    shipping_hours: Distribution = ZERO


@dataclass(frozen=True, slots=True)
class Logistics:
    """Which manufacturing site ``serves`` each treatment centre, and the ``routes``."""

    serves: Mapping[str, str]
    routes: tuple[Route, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "serves", _frozen(self.serves))
        object.__setattr__(self, "routes", tuple(self.routes))

    def route(self, centre: str, site: str) -> Route | None:
        return next((r for r in self.routes if r.centre == centre and r.site == site), None)


@dataclass(frozen=True, slots=True)
class CentreDemand:
    """``patients_per_year`` ordered at a treatment centre (Poisson), for ``process``."""

    patients_per_year: float
    process: str

    def __post_init__(self) -> None:
        _finite("patients_per_year", self.patients_per_year)


@dataclass(frozen=True, slots=True)
class Demand:
    """Orders by treatment centre. The rate at year t (from the start of the run) is
    patients_per_year × (1 + ``growth_per_year``)ᵗ × (1 + ``seasonality`` × cos 2πt): a
    fraction per year, and an amplitude between 0 and 1 with its peak at the start of the
    year."""

    centres: Mapping[str, CentreDemand]
    growth_per_year: float = 0.0
    seasonality: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "centres", _frozen(self.centres))
        _finite("demand.growth_per_year", self.growth_per_year, low=-0.9)
        _probability("demand.seasonality", self.seasonality)

    @property
    def patients_per_year(self) -> float:
        return sum(c.patients_per_year for c in self.centres.values())

    def scaled(self, multiplier: float) -> Demand:
        """The same demand with every centre's rate multiplied by ``multiplier``."""
        _finite("demand multiplier", multiplier)
        centres = {
            k: replace(c, patients_per_year=c.patients_per_year * multiplier)
            for k, c in self.centres.items()
        }
        return replace(self, centres=centres)


@dataclass(frozen=True, slots=True)
class Failures:
    """Probabilities per attempt: the apheresis is refused at acceptance
    (``apheresis_rejected``), the batch fails in processing (``manufacturing``), a release
    test is out of specification (``out_of_specification``). After a failure the patient is
    collected again, ``recollection_days`` later, with probability ``remanufacture``, up to
    ``max_attempts`` attempts in all; otherwise the patient gets no dose."""

    apheresis_rejected: float = 0.0
    manufacturing: float = 0.0
    out_of_specification: float = 0.0
    remanufacture: float = 0.0
    recollection_days: Distribution = ZERO
    max_attempts: int = 2

    def __post_init__(self) -> None:
        for name in ("apheresis_rejected", "manufacturing", "out_of_specification",
                     "remanufacture"):  # fmt: skip
            _probability(f"failures.{name}", getattr(self, name))
        _whole("failures.max_attempts", self.max_attempts)


@dataclass(frozen=True, slots=True)
class Costs:
    """Money, in one currency. Fixed per year: ``facility_per_year`` per suite or device by
    the cleanroom grade of its room (running costs and the room's amortised build),
    ``device_capex`` per unit by device type amortised over ``amortisation_years``, labour
    (``labour_per_hour`` by role × the paid hours of each role's cover, QC analysts under
    ``qc-analyst``) and ``overheads_per_year`` per site by kind. Variable:
    ``materials_per_batch`` and ``vector_per_batch`` per batch started,
    ``qc_per_test`` per test run by test name (the sterility test as ``sterility``), and
    ``fresh_shipping_per_trip`` / ``cryo_shipping_per_trip`` per transport."""

    amortisation_years: float = 10.0
    facility_per_year: Mapping[str, float] = field(default_factory=dict)
    device_capex: Mapping[str, float] = field(default_factory=dict)
    labour_per_hour: Mapping[str, float] = field(default_factory=dict)
    overheads_per_year: Mapping[str, float] = field(default_factory=dict)
    materials_per_batch: float = 0.0
    vector_per_batch: float = 0.0
    qc_per_test: Mapping[str, float] = field(default_factory=dict)
    fresh_shipping_per_trip: float = 0.0
    cryo_shipping_per_trip: float = 0.0

    def __post_init__(self) -> None:
        _finite("costs.amortisation_years", self.amortisation_years, strict=True)
        for name in ("facility_per_year", "device_capex", "labour_per_hour",
                     "overheads_per_year", "qc_per_test"):  # fmt: skip
            table = _frozen(getattr(self, name))
            object.__setattr__(self, name, table)
            for key, value in table.items():
                _finite(f"costs.{name}.{key}", value)
        for name in ("materials_per_batch", "vector_per_batch", "fresh_shipping_per_trip",
                     "cryo_shipping_per_trip"):  # fmt: skip
            _finite(f"costs.{name}", getattr(self, name))


# -- the scenario --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    """A manufacturing network: everything :func:`vein2vein.planning.model.simulate` needs.

    ``loss_hazard_per_week`` is the rate at which a waiting patient is lost (progression,
    death, or a switch to another therapy): the probability of still being there after w
    weeks from the order is exp(−hazard × w).

    Raises
    ------
    InvalidScenario
        With every problem found, each with its place, when the parts do not fit together.
    """

    name: str
    sites: Mapping[str, Site]
    processes: Mapping[str, Process]
    release: Release
    logistics: Logistics
    demand: Demand
    failures: Failures = field(default_factory=Failures)
    loss_hazard_per_week: float = 0.0
    costs: Costs = field(default_factory=Costs)
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sites", _frozen(self.sites))
        object.__setattr__(self, "processes", _frozen(self.processes))
        _finite("patients_lost.hazard_per_week", self.loss_hazard_per_week)
        problems = consistency_problems(self)
        if problems:
            raise InvalidScenario(problems)

    @property
    def manufacturing_sites(self) -> dict[str, ManufacturingSite]:
        return {k: s for k, s in self.sites.items() if isinstance(s, ManufacturingSite)}

    @property
    def treatment_centres(self) -> dict[str, TreatmentCentre]:
        return {k: s for k, s in self.sites.items() if isinstance(s, TreatmentCentre)}

    def with_demand(self, multiplier: float) -> Scenario:
        """The same network with every centre's demand multiplied by ``multiplier``."""
        return replace(self, demand=self.demand.scaled(multiplier))

    def with_devices(self, site: str, count: int) -> Scenario:
        """The same network with ``count`` suites or devices at manufacturing site ``site``.

        Raises :class:`InvalidInput` naming the site when it is not a manufacturing site
        of the scenario, or the count when it is not a whole number ≥ 1."""
        plant = self.manufacturing_sites.get(site)
        if plant is None:
            known = ", ".join(self.manufacturing_sites) or "none"
            raise InvalidInput(f"sites.{site}: not a manufacturing site (these are: {known})")
        devices = replace(plant.devices, count=count)
        return replace(self, sites={**self.sites, site: replace(plant, devices=devices)})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """A scenario from the plain shape of a scenario file (``schema_version`` ignored).

        Raises
        ------
        InvalidInput
            Naming the place of the first malformed value; :class:`InvalidScenario` with
            every problem when the parts do not fit together.
        """
        from vein2vein.planning._scenario_dict import scenario_from_dict

        return scenario_from_dict(data)
