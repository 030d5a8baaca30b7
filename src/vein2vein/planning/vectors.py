"""Vector and plasmid planning (issue 9, DESIGN §9): from the patients a therapy must serve
to litres, batches, plasmid grams, order dates, stock and cost per dose, and the risk of
running out.

The plan is read from a vector plan file (:mod:`vein2vein.formats.vector_plan`) by
:meth:`VectorPlan.from_dict`. Time runs in months: the demand of a calendar year is spread
evenly over its months from the first patient of the first phase on. Vector is made in
batches of one scale; a batch yields ``scale × titre × downstream yield`` units, is made in
``production_days``, released ``qc_release_days`` later (a failed batch yields nothing and
is known only then) and expires ``shelf_life_days`` after the end of production. Stock is
used first-expiring first.

**The supply policy** (the same for the plan and for the Monte Carlo): at the start of each
month, when the stock on hand plus the batches in production fall short of the demand
expected until a batch started now would be released, plus the safety stock, enough
batches are started to cover the gap. It reacts: a batch that fails at release is replaced
by the next month's decision.

:mod:`vein2vein.planning.supply` runs that policy (the plan, the Monte Carlo of
stock-outs, the safety stock) and :mod:`vein2vein.planning.vector_scales` compares the
scales and recommends one.

Examples
--------
A dose of 6e8 TU (1e8 cells at MOI 5, plus 1e8 for QC and retains); 10 L batches of a
harvest at 1e10 TU/L with 30 % recovered: 3e10 TU, 50 doses a batch.

>>> from datetime import date
>>> plan = VectorPlan.from_dict({
...     "name": "paper", "indication": {"patients_per_year": {2030: 120}},
...     "modality": {"type": "ex-vivo-lv", "cells_transduced": 1e8, "moi": 5,
...                  "qc_and_retains_per_patient": 1e8, "overage": 0.0},
...     "vector": {"titre_per_litre": 1e10, "downstream_yield": 0.3, "scales_litres": [10],
...                "cost_per_batch": {10: 100000}, "batch_success_rate": 1.0,
...                "production_days": 30, "qc_release_days": 30, "shelf_life_days": 3650},
...     "plasmids": {"transfer": {"mg_per_litre": 2.0, "lead_time_days": 90}},
...     "phases": {"phase-1": {"first_patient": date(2030, 1, 1)}}})
>>> plan.dose_units(), plan.vector.per_batch(10) / plan.dose_units()
(600000000.0, 50.0)
>>> plan.vector.lead_months, plan.start   # 60 days from start to release: 2 months
(2, datetime.date(2029, 10, 1))
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np

from vein2vein.domain.errors import InvalidInput

__all__ = [
    "DAYS_PER_MONTH",
    "MAX_BATCHES",
    "InvalidVectorPlan",
    "Modality",
    "Plasmid",
    "Supply",
    "VectorPlan",
    "VectorProcess",
    "Weight",
]

DAYS_PER_MONTH = 365.25 / 12
UNITS = {"ex-vivo-lv": "TU", "in-vivo-lv": "TU", "in-vivo-aav": "vg"}
#: A scale needing more batches than this over the plan is not worked out: it is not a way
#: to make the vector (a titre off by orders of magnitude shows up here first).
MAX_BATCHES = 20_000


class InvalidVectorPlan(InvalidInput):
    """A plan whose parts do not fit; ``problems`` names each misfit by its place."""

    code = "invalid-vector-plan"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s): {'; '.join(problems)}")


# -- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Weight:
    """Body weight in kg: a normal distribution (``mean``, ``sd``) cut to ``low``–``high``."""

    mean: float
    sd: float = 0.0
    low: float | None = None
    high: float | None = None

    def _bounds(self) -> tuple[float, float]:
        if self.sd == 0:
            return (-math.inf, math.inf)
        low = -math.inf if self.low is None else (self.low - self.mean) / self.sd
        high = math.inf if self.high is None else (self.high - self.mean) / self.sd
        return low, high

    def moments(self) -> tuple[float, float]:
        """Mean and standard deviation of the cut distribution."""
        if self.sd == 0:
            return self.mean, 0.0
        from scipy.stats import truncnorm

        a, b = self._bounds()
        m, v = truncnorm.stats(a, b, loc=self.mean, scale=self.sd, moments="mv")
        return float(m), math.sqrt(float(v))


@dataclass(frozen=True, slots=True)
class Modality:
    """How much vector a patient takes, in ``unit`` (TU or vg): ``per_patient`` (cells ×
    MOI, or a flat dose) plus ``per_kg`` × body weight, plus ``qc_and_retains``, all times
    1 + ``overage``."""

    kind: Literal["ex-vivo-lv", "in-vivo-aav", "in-vivo-lv"]
    per_patient: float
    per_kg: float
    qc_and_retains: float
    overage: float

    @property
    def unit(self) -> str:
        return UNITS[self.kind]

    def units(self, weight_kg: float) -> float:
        return (self.per_patient + self.per_kg * weight_kg + self.qc_and_retains) * (
            1 + self.overage
        )


@dataclass(frozen=True, slots=True)
class VectorProcess:
    """How a batch of vector is made (see the module's docstring)."""

    titre_per_litre: float
    downstream_yield: float
    scales: tuple[float, ...]
    cost_per_batch: Mapping[float, float]
    success_rate: float
    production_days: float
    qc_release_days: float
    slot_booking_days: float
    shelf_life_days: float
    storage: str = ""

    def per_batch(self, scale: float) -> float:
        """Units of vector a successful batch of ``scale`` litres yields."""
        return scale * self.titre_per_litre * self.downstream_yield

    def check_scale(self, scale: float, where: str = "scale") -> float:
        """``scale`` if it is one of the plan's; else :class:`InvalidInput` naming them."""
        if scale not in self.scales:
            listed = ", ".join(f"{s:g}" for s in self.scales)
            raise InvalidInput(f"{where} {scale:g}: not one of the plan's scales ({listed})")
        return scale

    @property
    def lead_days(self) -> float:
        """From the start of a batch to its release."""
        return self.production_days + self.qc_release_days

    @property
    def lead_months(self) -> int:
        return max(1, math.ceil(self.lead_days / DAYS_PER_MONTH - 1e-9))

    @property
    def usable_months(self) -> int:
        """Months a batch can be used after its release (shelf life counts from the fill)."""
        return math.floor((self.shelf_life_days - self.qc_release_days) / DAYS_PER_MONTH + 1e-9)


@dataclass(frozen=True, slots=True)
class Plasmid:
    name: str
    mg_per_litre: float
    lead_time_days: float
    cost_per_gram: float


@dataclass(frozen=True, slots=True)
class Supply:
    """The Monte Carlo's settings."""

    runs: int = 2000
    stockout_target: float = 0.05
    forecast_cv: float = 0.0
    seed: int = 1


@dataclass(frozen=True, slots=True)
class VectorPlan:
    """A vector plan (see :mod:`vein2vein.formats.vector_plan` for its file)."""

    name: str
    patients_per_year: Mapping[int, float]
    modality: Modality
    vector: VectorProcess
    plasmids: tuple[Plasmid, ...]
    phases: tuple[tuple[str, date], ...]  # in the order of their first patients
    weight: Weight | None = None
    supply: Supply = field(default_factory=Supply)
    as_of: date | None = None
    description: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VectorPlan:
        """A plan from a checked file's data, after checking how its parts fit.

        Raises
        ------
        InvalidVectorPlan
            Naming every misfit by its place: a dose the modality does not define, a
            per-kg dose without body weights, a scale without a cost, a shelf life no
            longer than a batch takes to be released, a phase outside the years with
            patients.
        """
        problems: list[str] = []
        m, v, ind = data["modality"], data["vector"], data["indication"]
        kind = m["type"]
        per_patient, per_kg = 0.0, 0.0
        if kind == "ex-vivo-lv":
            for key in ("cells_transduced", "moi"):
                if key not in m:
                    problems.append(f"modality.{key}: needed for an ex vivo transduction")
            for key in ("dose_per_kg", "dose_per_patient"):
                if key in m:
                    problems.append(f"modality.{key}: an ex vivo dose is cells × MOI")
            per_patient = m.get("cells_transduced", 0.0) * m.get("moi", 0.0)
        else:
            given = [k for k in ("dose_per_kg", "dose_per_patient") if k in m]
            if len(given) != 1:
                problems.append("modality: give one of dose_per_kg, dose_per_patient")
            for key in ("cells_transduced", "moi"):
                if key in m:
                    problems.append(f"modality.{key}: only for an ex vivo transduction")
            per_patient = m.get("dose_per_patient", 0.0)
            per_kg = m.get("dose_per_kg", 0.0)
        weight = None
        if "body_weight_kg" in ind:
            w = ind["body_weight_kg"]
            weight = Weight(w["mean"], w.get("sd", 0.0), w.get("min", 0.0), w.get("max"))
            low = weight.low or 0.0
            high = math.inf if weight.high is None else weight.high
            if not low < weight.mean < high:
                problems.append(
                    f"indication.body_weight_kg: the mean {weight.mean:g} kg must lie between "
                    f"min {low:g} and max {'none' if weight.high is None else f'{high:g}'}"
                )
        elif per_kg:
            problems.append("indication.body_weight_kg: needed for a dose per kg")
        scales = tuple(sorted(set(v["scales_litres"])))
        costs = {float(k): float(c) for k, c in v["cost_per_batch"].items()}
        for scale in scales:
            if scale not in costs:
                problems.append(f"vector.cost_per_batch: no cost for the {scale:g} L scale")
        lead = v["production_days"] + v["qc_release_days"]
        process = VectorProcess(
            titre_per_litre=v["titre_per_litre"], downstream_yield=v["downstream_yield"],
            scales=scales, cost_per_batch=costs, success_rate=v["batch_success_rate"],
            production_days=v["production_days"], qc_release_days=v["qc_release_days"],
            slot_booking_days=v.get("slot_booking_days", 0.0),
            shelf_life_days=v["shelf_life_days"], storage=v.get("storage", ""),
        )  # fmt: skip
        if v["shelf_life_days"] < lead:
            problems.append(
                f"vector.shelf_life_days: {v['shelf_life_days']:g} days is shorter than the "
                f"lead time of a batch ({v['production_days']:g} days of production and "
                f"{v['qc_release_days']:g} of QC release = {lead:g}): plan with a shelf "
                "life at least as long"
            )
        elif process.usable_months < 1:
            problems.append(
                f"vector.shelf_life_days: {v['shelf_life_days']:g} days from the fill leave "
                f"less than a month of use after {v['qc_release_days']:g} days of QC release"
            )
        years = sorted(ind["patients_per_year"])
        phases = sorted(((name, p["first_patient"]) for name, p in data["phases"].items()),
                        key=lambda item: item[1])  # fmt: skip
        for name, first in phases:
            if not years[0] <= first.year <= years[-1]:
                problems.append(
                    f"phases.{name}.first_patient: {first.isoformat()} is outside the years "
                    f"with patients ({years[0]}–{years[-1]})"
                )
        if phases:
            first_name, first_day = phases[0]
            for year, count in sorted(ind["patients_per_year"].items()):
                if year < first_day.year and count > 0:
                    problems.append(
                        f"indication.patients_per_year[{year}]: {count:g} patients before the "
                        f"first phase starts ({first_name}, {first_day.isoformat()})"
                    )
        missing = [y for y in range(years[0], years[-1] + 1) if y not in ind["patients_per_year"]]
        if missing:
            problems.append(
                "indication.patients_per_year: no figure for "
                + ", ".join(str(y) for y in missing)
                + " (give 0 for a year without patients)"
            )
        if problems:
            raise InvalidVectorPlan(problems)
        s = data.get("supply", {})
        plan = cls(
            name=data["name"],
            description=data.get("description", ""),
            as_of=data.get("as_of"),
            patients_per_year={int(y): float(n) for y, n in ind["patients_per_year"].items()},
            weight=weight,
            modality=Modality(
                kind,
                per_patient,
                per_kg,
                m.get("qc_and_retains_per_patient", 0.0),
                m.get("overage", 0.0),
            ),
            vector=process,
            plasmids=tuple(
                Plasmid(name, p["mg_per_litre"], p["lead_time_days"], p.get("cost_per_gram", 0.0))
                for name, p in data["plasmids"].items()
            ),
            phases=tuple(phases),
            supply=Supply(
                s.get("runs", 2000),
                s.get("stockout_target", 0.05),
                s.get("forecast_cv", 0.0),
                s.get("seed", 1),
            ),
        )
        problems = plan.dose_checks()
        if problems:
            raise InvalidVectorPlan(problems)
        return plan

    # -- the demand --------------------------------------------------------------------

    @property
    def unit(self) -> str:
        return self.modality.unit

    def dose_units(self) -> float:
        """The vector one patient takes on average (at the mean body weight of the
        distribution, cut to its limits), in :attr:`unit`."""
        mean_kg = self.weight.moments()[0] if self.weight is not None else 0.0
        return self.modality.units(mean_kg)

    def dose_sd(self) -> float:
        """The standard deviation of one patient's vector (from the weights; 0 for a flat
        dose)."""
        if self.weight is None or not self.modality.per_kg:
            return 0.0
        return self.modality.per_kg * self.weight.moments()[1] * (1 + self.modality.overage)

    @property
    def start(self) -> date:
        """The first month of the plan: early enough to start the first batch (a lead time
        before the first patient)."""
        first = self.phases[0][1]
        return _add_months(date(first.year, first.month, 1), -(self.vector.lead_months + 1))

    def months(self) -> list[date]:
        """The first day of every month of the plan, to the end of the last year."""
        end = date(max(self.patients_per_year), 12, 1)
        out, month = [], self.start
        while month <= end:
            out.append(month)
            month = _add_months(month, 1)
        return out

    def patients_by_month(self) -> np.ndarray:
        """Expected patients in each month of :meth:`months`: a year's patients spread
        evenly over its months from the first patient of the first phase on."""
        first = self.phases[0][1]
        first_month = date(first.year, first.month, 1)
        months = self.months()
        out = np.zeros(len(months))
        for year, patients in self.patients_by_year().items():
            active = [i for i, m in enumerate(months) if m.year == year and m >= first_month]
            for i in active:
                out[i] = patients / len(active)
        return out

    def patients_by_year(self) -> dict[int, float]:
        first_year = self.phases[0][1].year
        return {
            y: (n if y >= first_year else 0.0) for y, n in sorted(self.patients_per_year.items())
        }

    def is_late(self, *due: date) -> bool:
        """Whether any of the ``due`` dates is before the plan's today (``as_of``)."""
        return self.as_of is not None and any(d < self.as_of for d in due)

    def dose_checks(self) -> list[str]:
        """What makes a dose impossible to plan: a dose or batch that is not a finite
        number, named by place (the file's ranges cannot catch a product of them)."""
        problems = []
        if not math.isfinite(self.dose_units()):
            problems.append("modality: the vector per patient is not a finite number")
        for scale in self.vector.scales:
            if not math.isfinite(self.vector.per_batch(scale)):
                problems.append(f"vector.titre_per_litre: a {scale:g} L batch is not a finite "
                                "number of units")  # fmt: skip
        return problems

    def phase_of(self, moment: date) -> str:
        """The phase under way on ``moment`` (the first phase before it starts)."""
        current = self.phases[0][0]
        for name, first in self.phases:
            if first <= moment:
                current = name
        return current


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))
