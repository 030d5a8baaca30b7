"""Scenario files (YAML, ``schema_version: 1``): a manufacturing network to simulate.

A file is read with PyYAML's safe loader (a key given twice is refused) and checked by
Pydantic: unknown keys, wrong types and values out of range are reported all at once, each
with its place, e.g. ``sites.CP1.devices.count: must be ≥ 1``. What comes out is the
file's plain shape with the defaults filled in, which
:meth:`vein2vein.planning.scenario.Scenario.from_dict` turns into a scenario; that step
checks how the parts fit together (each treatment centre served by a manufacturing site
that runs its process, a route for each, the roles, instruments and prices that are used),
naming places the same way. (The formats and planning layers do not import each other: the
caller composes the two.)

Units are in the names: ``*_hours``, ``*_days``, ``patients_per_year``, ``*_per_week``;
money in one currency. A duration is a number (fixed) or one of ``{fixed: x}``,
``{triangular: [min, mode, max]}``, ``{lognormal: {median: m, sigma: s}}``,
``{exponential: mean}``.

The shape (see ``examples/scenario/*.yaml``)::

    schema_version: 1
    name: One central plant
    sites:
      CP1:
        kind: central-plant            # or point-of-care; treatment-centre (below)
        devices: {type: automated, count: 24, batches_at_once: 1, grade: C,
                  processes: [conventional], changeover_hours: 4,
                  operators_per_batch: 1, operator_role: operator}
        staff:
          operator: {headcount: 8, hours_per_day: 16, days_per_week: 7, start_hour: 6}
          qa: {headcount: 2, hours_per_day: 8, days_per_week: 5}
        qc:
          analysts: {headcount: 4, hours_per_day: 8, days_per_week: 5}
          instruments: {flow-cytometer: 2, qpcr: 1}
      TC1:
        kind: treatment-centre
        apheresis_after_order_days: {triangular: [3, 7, 14]}
        infusion_after_receipt_days: {triangular: [1, 2, 3]}
    processes:
      conventional:
        mbr: CART-CD19-CONV            # optional: the MBR whose expected hours give the steps
        steps:
          - {id: activation, hours: 6, hands_on_hours: 3}
          - {id: expansion, hours: {triangular: [168, 216, 264]}, hands_on_hours: 2}
    qc_release:
      tests:
        - {name: identity, method: flow-cytometer, hours: 6, analyst_hours: 2}
      sterility: {method: culture, days: 14}   # or {method: rapid, days: 7}
      conditional_release: false
      conditional_release_after_days: 3
      review_hours: {triangular: [2, 4, 8]}
      reviewer_role: qa
    logistics:
      serves: {TC1: CP1}
      routes:
        - {centre: TC1, site: CP1, transport_hours: {triangular: [12, 24, 48]},
           shipping_hours: {triangular: [24, 48, 72]}}
    demand:
      growth_per_year: 0.1
      seasonality: 0.1
      centres:
        TC1: {patients_per_year: 150, process: conventional}
    failures: {apheresis_rejected: 0.02, manufacturing: 0.05, out_of_specification: 0.03,
               remanufacture: 0.7, recollection_days: 14, max_attempts: 2}
    patients_lost: {hazard_per_week: 0.01}
    costs:
      amortisation_years: 10
      facility_per_year: {B: 250000, C: 60000}       # per suite or device, by grade
      device_capex: {suite: 0, automated: 200000}    # per unit
      labour_per_hour: {operator: 45, qa: 70, qc-analyst: 50}
      overheads_per_year: {central-plant: 4000000, point-of-care: 300000}
      materials_per_batch: 12000
      vector_per_batch: 15000
      qc_per_test: {identity: 300, sterility: 400}
      fresh_shipping_per_trip: 1200
      cryo_shipping_per_trip: 2500
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AfterValidator, Field, field_validator, model_validator

from vein2vein.formats._yaml import (
    Count,
    InvalidFile,
    NonNegative,
    NonNegativeInt,
    Positive,
    Probability,
    Strict,
    Versioned,
    at_least,
    at_most,
    read_model,
    read_text,
)

__all__ = ["SCHEMA_VERSION", "InvalidScenarioFile", "load_scenario", "parse_scenario"]

SCHEMA_VERSION = 1
_ID = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"  # no dots: a place is written with dots
_NAME = r"^[a-z][a-z0-9_-]{0,39}$"


class InvalidScenarioFile(InvalidFile):
    """A scenario file that cannot be used; ``problems`` holds every error with its place."""

    code = "invalid-scenario-file"


Id = Annotated[str, Field(pattern=_ID)]
Name = Annotated[str, Field(pattern=_NAME)]


class _Lognormal(Strict):
    median: Positive
    sigma: Positive


class _Duration(Strict):
    fixed: NonNegative | None = None
    triangular: Annotated[list[NonNegative], Field(min_length=3, max_length=3)] | None = None
    lognormal: _Lognormal | None = None
    exponential: Positive | None = None

    @model_validator(mode="before")
    @classmethod
    def _number_is_fixed(cls, raw: Any) -> Any:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return {"fixed": raw}
        return raw

    @model_validator(mode="after")
    def _one_kind(self) -> _Duration:
        given = [k for k in ("fixed", "triangular", "lognormal", "exponential")
                 if getattr(self, k) is not None]  # fmt: skip
        if len(given) != 1:
            raise ValueError(
                "give one of fixed, triangular, lognormal, exponential"
                + (f", not {' and '.join(given)}" if given else "")
            )
        if self.triangular is not None:
            low, mode, high = self.triangular
            if not low <= mode <= high:
                raise ValueError(f"triangular: expected min ≤ mode ≤ max, got {low:g}, "
                                 f"{mode:g}, {high:g}")  # fmt: skip
        return self


Duration = _Duration | None


class _Shift(Strict):
    headcount: Count
    hours_per_day: Annotated[Positive, AfterValidator(at_most(24))] = 24.0
    days_per_week: Annotated[Count, AfterValidator(at_most(7))] = 7
    start_hour: Annotated[NonNegative, AfterValidator(at_most(23.99))] = 8.0


class _Devices(Strict):
    type: Literal["suite", "automated"]
    count: Count
    processes: Annotated[list[Name], Field(min_length=1)]
    batches_at_once: Count = 1
    grade: Literal["B", "C", "D", "CNC"] = "C"
    changeover_hours: Duration = None
    operators_per_batch: NonNegativeInt = 0
    operator_role: Name | None = None

    @model_validator(mode="after")
    def _role_named(self) -> _Devices:
        if self.operators_per_batch and self.operator_role is None:
            raise ValueError("operator_role: needed when operators_per_batch > 0")
        return self


class _Qc(Strict):
    analysts: _Shift
    instruments: dict[Name, Count] = Field(default_factory=dict)


class _Site(Strict):
    kind: Literal["central-plant", "point-of-care", "treatment-centre"]
    name: str = Field(default="", max_length=120)
    devices: _Devices | None = None
    staff: dict[Name, _Shift] = Field(default_factory=dict)
    qc: _Qc | None = None
    apheresis_after_order_days: Duration = None
    infusion_after_receipt_days: Duration = None

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> _Site:
        if self.kind == "treatment-centre":
            extra = [k for k in ("devices", "qc") if getattr(self, k) is not None]
            extra += ["staff"] if self.staff else []
            if extra:
                raise ValueError(f"a treatment centre has no {', '.join(extra)}")
        else:
            if self.devices is None:
                raise ValueError(f"a {self.kind} needs devices")
            extra = [k for k in ("apheresis_after_order_days", "infusion_after_receipt_days")
                     if getattr(self, k) is not None]  # fmt: skip
            if extra:
                raise ValueError(f"{', '.join(extra)}: only for a treatment centre")
        return self


class _Step(Strict):
    id: Name
    hours: _Duration
    hands_on_hours: NonNegative = 0.0


class _Process(Strict):
    mbr: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    steps: list[_Step] = Field(default_factory=list)

    @model_validator(mode="after")
    def _steps_or_mbr(self) -> _Process:
        if not self.steps and self.mbr is None:
            raise ValueError("give its steps, or the mbr they come from")
        return self

    @field_validator("steps")
    @classmethod
    def _unique(cls, steps: list[_Step]) -> list[_Step]:
        ids = [s.id for s in steps]
        twice = _repeated(ids)
        if twice:
            raise ValueError(f"step id {', '.join(map(repr, twice))} is used twice")
        return steps


Key = TypeVar("Key", str, tuple[str, str])


def _repeated(items: list[Key]) -> list[Key]:
    """The items given more than once, each once, sorted."""
    return sorted({x for x in items if items.count(x) > 1})


class _Test(Strict):
    name: Name
    method: Name
    hours: _Duration
    analyst_hours: NonNegative = 0.0


class _Sterility(Strict):
    method: Literal["culture", "rapid"] = "culture"
    days: NonNegative = 14.0


class _Release(Strict):
    tests: list[_Test] = Field(default_factory=list)
    sterility: _Sterility = Field(default_factory=_Sterility)
    conditional_release: bool = False
    conditional_release_after_days: NonNegative = 0.0
    review_hours: Duration = None
    reviewer_role: Name | None = None

    @field_validator("tests")
    @classmethod
    def _unique(cls, tests: list[_Test]) -> list[_Test]:
        names = [t.name for t in tests]
        twice = _repeated(names)
        if twice:
            raise ValueError(f"test {', '.join(map(repr, twice))} is listed twice")
        return tests


class _Route(Strict):
    centre: Id
    site: Id
    transport_hours: Duration = None
    shipping_hours: Duration = None


class _Logistics(Strict):
    serves: dict[Id, Id]
    routes: list[_Route] = Field(default_factory=list)

    @field_validator("routes")
    @classmethod
    def _one_route_per_pair(cls, routes: list[_Route]) -> list[_Route]:
        pairs = [(r.centre, r.site) for r in routes]
        twice = _repeated(pairs)
        if twice:
            raise ValueError(f"more than one route between {twice[0][0]} and {twice[0][1]}")
        return routes


class _CentreDemand(Strict):
    patients_per_year: NonNegative
    process: Name | None = None


class _Demand(Strict):
    centres: dict[Id, _CentreDemand]
    growth_per_year: Annotated[float, Field(allow_inf_nan=False),
                               AfterValidator(at_least(-0.9))] = 0.0  # fmt: skip
    seasonality: Probability = 0.0


class _Failures(Strict):
    apheresis_rejected: Probability = 0.0
    manufacturing: Probability = 0.0
    out_of_specification: Probability = 0.0
    remanufacture: Probability = 0.0
    recollection_days: Duration = None
    max_attempts: Count = 2


class _Lost(Strict):
    hazard_per_week: NonNegative = 0.0


class _Costs(Strict):
    amortisation_years: Positive = 10.0
    facility_per_year: dict[Literal["B", "C", "D", "CNC"], NonNegative] = Field(
        default_factory=dict
    )
    device_capex: dict[Literal["suite", "automated"], NonNegative] = Field(default_factory=dict)
    labour_per_hour: dict[Name, NonNegative] = Field(default_factory=dict)
    overheads_per_year: dict[Literal["central-plant", "point-of-care"], NonNegative] = Field(
        default_factory=dict
    )
    materials_per_batch: NonNegative = 0.0
    vector_per_batch: NonNegative = 0.0
    qc_per_test: dict[Name, NonNegative] = Field(default_factory=dict)
    fresh_shipping_per_trip: NonNegative = 0.0
    cryo_shipping_per_trip: NonNegative = 0.0


class _File(Versioned):
    SCHEMA_VERSION: ClassVar[int] = SCHEMA_VERSION
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    sites: Annotated[dict[Id, _Site], Field(min_length=2)]
    processes: Annotated[dict[Name, _Process], Field(min_length=1)]
    qc_release: _Release = Field(default_factory=_Release)
    logistics: _Logistics
    demand: _Demand
    failures: _Failures = Field(default_factory=_Failures)
    patients_lost: _Lost = Field(default_factory=_Lost)
    costs: _Costs = Field(default_factory=_Costs)


def parse_scenario(text: str, source: str = "<scenario>") -> dict[str, Any]:
    """The scenario in YAML ``text``, checked, as plain data with the defaults filled in
    (the shape :meth:`~vein2vein.planning.scenario.Scenario.from_dict` takes).

    Raises
    ------
    InvalidScenarioFile
        With every problem found, each with its place.
    """
    model = read_model(text, source, _File, InvalidScenarioFile)
    return model.model_dump(exclude_none=True)


def load_scenario(path: Path) -> dict[str, Any]:
    """Read and check the scenario file at ``path`` (see :func:`parse_scenario`)."""
    text = read_text(path)
    return parse_scenario(text, str(path))
