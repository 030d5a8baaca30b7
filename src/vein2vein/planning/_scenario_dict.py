"""A :class:`~vein2vein.planning.scenario.Scenario` from the plain shape of a scenario file
(what :mod:`vein2vein.formats.scenario` gives after checking the YAML)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from vein2vein.domain.errors import InvalidInput
from vein2vein.planning.scenario import (
    ZERO,
    CentreDemand,
    Costs,
    Demand,
    Devices,
    Distribution,
    Exponential,
    Failures,
    Fixed,
    Logistics,
    Lognormal,
    ManufacturingSite,
    Process,
    QcLab,
    QcTest,
    Release,
    Route,
    Scenario,
    Shift,
    Site,
    Step,
    Sterility,
    TreatmentCentre,
    Triangular,
)

__all__ = ["distribution", "scenario_from_dict"]

T = TypeVar("T")
_FIELD = re.compile(r"^[\w.\[\]-]+: ")


def distribution(spec: float | Mapping[str, Any]) -> Distribution:
    """A distribution from its plain shape: a number (fixed), ``{fixed: x}``,
    ``{triangular: [min, mode, max]}``, ``{lognormal: {median: m, sigma: s}}`` or
    ``{exponential: mean}``; raises :class:`InvalidInput` on anything else."""
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return Fixed(float(spec))
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise InvalidInput(
            "expected a number or one of {fixed: x}, {triangular: [min, mode, max]}, "
            "{lognormal: {median: m, sigma: s}}, {exponential: mean}"
        )
    ((kind, value),) = spec.items()
    try:
        if kind == "fixed":
            return Fixed(float(value))
        if kind == "triangular":
            low, mode, high = value
            return Triangular(float(low), float(mode), float(high))
        if kind == "lognormal":
            return Lognormal(float(value["median"]), float(value["sigma"]))
        if kind == "exponential":
            return Exponential(float(value))
    except (TypeError, ValueError, KeyError) as bad:
        if isinstance(bad, InvalidInput):
            raise
        raise InvalidInput(f"{kind}: malformed ({bad})") from None
    raise InvalidInput(f"unknown distribution {kind!r}")


def _at(place: str, build: Callable[[], T]) -> T:
    """``build()``, its :class:`InvalidInput` given ``place`` in front."""
    try:
        return build()
    except InvalidInput as bad:
        message = bad.message
        if message.startswith(place):
            raise
        joined = f"{place}.{message}" if _FIELD.match(message) else f"{place}: {message}"
        raise InvalidInput(joined) from None
    except (KeyError, TypeError, ValueError, AttributeError) as bad:
        raise InvalidInput(f"{place}: malformed ({bad})") from None


def _dist(raw: Mapping[str, Any], key: str, place: str) -> Distribution:
    if raw.get(key) is None:
        return ZERO
    return _at(f"{place}.{key}", lambda: distribution(raw[key]))


def _shift(raw: Mapping[str, Any], place: str) -> Shift:
    keys = ("headcount", "hours_per_day", "days_per_week", "start_hour")
    return _at(place, lambda: Shift(**{k: raw[k] for k in keys if k in raw}))


def _site(key: str, raw: Mapping[str, Any]) -> Site:
    place = f"sites.{key}"
    if raw.get("kind") == "treatment-centre":
        return _at(place, lambda: TreatmentCentre(
            id=key,
            name=raw.get("name", ""),
            apheresis_after_order_days=_dist(raw, "apheresis_after_order_days", place),
            infusion_after_receipt_days=_dist(raw, "infusion_after_receipt_days", place),
        ))  # fmt: skip
    d = raw["devices"]
    devices = _at(place, lambda: Devices(
        type=d["type"], count=d["count"], processes=tuple(d["processes"]),
        batches_at_once=d.get("batches_at_once", 1), grade=d.get("grade", "C"),
        changeover_hours=_dist(d, "changeover_hours", f"{place}.devices"),
        operators_per_batch=d.get("operators_per_batch", 0),
        operator_role=d.get("operator_role"),
    ))  # fmt: skip
    staff = {
        role: _shift(shift, f"{place}.staff.{role}")
        for role, shift in (raw.get("staff") or {}).items()
    }
    qc = None
    if raw.get("qc") is not None:
        q = raw["qc"]
        analysts = _shift(q["analysts"], f"{place}.qc.analysts")
        qc = _at(f"{place}.qc", lambda: QcLab(analysts, dict(q.get("instruments") or {})))
    return _at(place, lambda: ManufacturingSite(
        id=key, kind=raw["kind"], devices=devices, staff=staff, qc=qc,
        name=raw.get("name", ""),
    ))  # fmt: skip


def _step(raw: Mapping[str, Any], place: str) -> Step:
    return _at(place, lambda: Step(
        id=raw["id"], hours=_dist(raw, "hours", place),
        hands_on_hours=raw.get("hands_on_hours", 0.0),
    ))  # fmt: skip


def _process(name: str, raw: Mapping[str, Any]) -> Process:
    place = f"processes.{name}"
    steps = tuple(_step(s, f"{place}.steps[{i}]") for i, s in enumerate(raw.get("steps") or []))
    return _at(place, lambda: Process(name=name, steps=steps, mbr=raw.get("mbr")))


def _test(raw: Mapping[str, Any], place: str) -> QcTest:
    return _at(place, lambda: QcTest(
        name=raw["name"], method=raw["method"], hours=_dist(raw, "hours", place),
        analyst_hours=raw.get("analyst_hours", 0.0),
    ))  # fmt: skip


def _release(raw: Mapping[str, Any]) -> Release:
    place = "qc_release"
    tests = tuple(_test(t, f"{place}.tests[{i}]") for i, t in enumerate(raw.get("tests") or []))
    s = raw.get("sterility") or {}
    sterility = _at(f"{place}.sterility", lambda: Sterility(**s))
    return _at(place, lambda: Release(
        tests=tests, sterility=sterility,
        conditional=bool(raw.get("conditional_release", False)),
        conditional_after_days=raw.get("conditional_release_after_days", 0.0),
        review_hours=_dist(raw, "review_hours", place),
        reviewer_role=raw.get("reviewer_role"),
    ))  # fmt: skip


def _route(raw: Mapping[str, Any], place: str) -> Route:
    return _at(place, lambda: Route(
        centre=raw["centre"], site=raw["site"],
        transport_hours=_dist(raw, "transport_hours", place),
        shipping_hours=_dist(raw, "shipping_hours", place),
    ))  # fmt: skip


def _logistics(raw: Mapping[str, Any]) -> Logistics:
    routes = tuple(
        _route(r, f"logistics.routes[{i}]") for i, r in enumerate(raw.get("routes") or [])
    )
    return _at("logistics", lambda: Logistics(serves=dict(raw["serves"]), routes=routes))


def _centre_demand(raw: Mapping[str, Any], place: str, only: str | None) -> CentreDemand:
    process = raw.get("process", only)
    if process is None:
        raise InvalidInput(f"{place}.process: name it (the scenario has several processes)")
    return _at(place, lambda: CentreDemand(raw["patients_per_year"], process))


def _demand(raw: Mapping[str, Any], processes: Mapping[str, Process]) -> Demand:
    only = next(iter(processes)) if len(processes) == 1 else None
    centres = {
        key: _centre_demand(c, f"demand.centres.{key}", only)
        for key, c in (raw.get("centres") or {}).items()
    }
    return _at("demand", lambda: Demand(
        centres=centres, growth_per_year=raw.get("growth_per_year", 0.0),
        seasonality=raw.get("seasonality", 0.0),
    ))  # fmt: skip


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """The scenario of ``data`` (the plain shape of a scenario file)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("scenario: expected a mapping")
    sites = {key: _site(key, raw) for key, raw in (data.get("sites") or {}).items()}
    processes = {k: _process(k, raw) for k, raw in (data.get("processes") or {}).items()}
    f = data.get("failures") or {}
    failures = _at("failures", lambda: Failures(
        **{k: v for k, v in f.items() if k != "recollection_days"},
        recollection_days=_dist(f, "recollection_days", "failures"),
    ))  # fmt: skip
    costs = _at("costs", lambda: Costs(**(data.get("costs") or {})))
    return Scenario(
        name=data.get("name", ""),
        description=data.get("description", ""),
        sites=sites,
        processes=processes,
        release=_release(data.get("qc_release") or {}),
        logistics=_logistics(data.get("logistics") or {"serves": {}}),
        demand=_demand(data.get("demand") or {}, processes),
        failures=failures,
        loss_hazard_per_week=(data.get("patients_lost") or {}).get("hazard_per_week", 0.0),
        costs=costs,
    )
