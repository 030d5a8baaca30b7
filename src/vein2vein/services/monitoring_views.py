"""What the monitoring pages show (issue 10): units and their sensors now, a unit's live
traces, a batch step's historical trace beside its recorded values, and one parameter's
profile site by site with the comparability statistics (analytics/comparability.py).

Read-only; the rules (ranges, alarms) stay in domain/telemetry.py and services/monitoring.py.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from vein2vein.analytics.comparability import AttributeComparison, compare_attribute
from vein2vein.domain.errors import InvalidInput, NotFound
from vein2vein.domain.materials import Equipment
from vein2vein.domain.telemetry import MonitoredSensor, Monitoring
from vein2vein.services._change_control import EFFECTIVE
from vein2vein.services.app import App
from vein2vein.services.monitoring import RunningStep, limits_text, running_steps
from vein2vein.services.records import definition_of, load_record
from vein2vein.store import monitoring as store
from vein2vein.store.mbr import MbrRepository
from vein2vein.store.monitoring import AlarmRow, UseRow

__all__ = [
    "Overlay",
    "SensorNow",
    "StepTrace",
    "Trace",
    "UnitView",
    "site_overlay",
    "step_traces",
    "thin",
    "unit_traces",
    "units_overview",
    "watched_pairs",
]

#: A sensor not heard for this long shows as silent even where no step watches it.
QUIET_S = 120.0


@dataclass(frozen=True, slots=True)
class SensorNow:
    """A sensor's last reading and how it stands against the running step's range."""

    sensor: str
    unit: str
    value: float | None
    at: datetime | None
    limits: str | None  # None: the running step does not watch it
    state: Literal["ok", "alarm", "silent", "unwatched"]


@dataclass(frozen=True, slots=True)
class UnitView:
    site: str
    equipment: str
    equipment_class: str
    step: RunningStep | None
    sensors: tuple[SensorNow, ...]
    open_alarms: int


@dataclass(frozen=True, slots=True)
class Trace:
    """One sensor's readings, with the range it had to keep (``None``: not watched)."""

    sensor: str
    unit: str
    times: list[datetime]
    values: list[float]
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, slots=True)
class StepTrace:
    """A step of a batch on its equipment: the readings from its start to its end, the
    values recorded by hand meanwhile, and the alarms it raised."""

    use: UseRow
    traces: list[Trace]
    recorded: list[tuple[datetime, str, float, str]]  # (performed at, name, value, unit)
    alarms: list[AlarmRow]


@dataclass(frozen=True, slots=True)
class Overlay:
    """``sensor`` during ``step_id`` of ``process`` at each site: each run's profile
    against hours since the step started, each run's mean, and every site compared with
    the first."""

    step_id: str
    sensor: str
    unit: str
    profiles: dict[str, list[tuple[str, list[float], list[float]]]]  # site → (lot, h, v)
    means: dict[str, list[float]]  # site → one mean per run
    reference: str | None
    margin_basis: str = ""
    process: str = ""
    comparisons: dict[str, AttributeComparison | str] = field(default_factory=dict)


def _state(
    watched: MonitoredSensor | None, value: float | None, at: datetime | None,
    alarmed: bool, now: datetime, quiet_s: float,
) -> Literal["ok", "alarm", "silent", "unwatched"]:  # fmt: skip
    if at is None or (now - at).total_seconds() > quiet_s:
        return "silent" if watched is not None else "unwatched"
    if watched is None:
        return "unwatched"
    if alarmed or (value is not None and watched.rule.side(value) is not None):
        return "alarm"
    return "ok"


def units_overview(app: App, sites: list[str] | None = None) -> list[UnitView]:
    """Every unit that has published readings or runs a watched step, by site and id."""
    running = running_steps(app)
    now = app.clock.now()
    with app.reader() as connection:
        open_alarms = store.alarms(connection, unacknowledged=True, sites=sites, limit=1000)
        equipment = [e for e, _ in _equipment(app, sites)]
        latest = store.latest_readings(connection, [e.id for e in equipment])
    alarmed = {(a.equipment, a.sensor) for a in open_alarms if a.cleared_at is None}
    views = []
    for e in equipment:
        step = running.get(e.id)
        watched = step.monitoring if step else None
        names = {s for (eq, s) in latest if eq == e.id}
        names |= {w.sensor for w in watched.sensors} if watched else set()
        if not names:
            continue
        sensors = []
        for name in sorted(names, key=lambda n: (watched is None or watched.sensor(n) is None, n)):
            w = watched.sensor(name) if watched else None
            last = latest.get((e.id, name))
            at, value = (last[0], last[1]) if last else (None, None)
            unit = last[2] if last else (w.unit if w else "")
            quiet = watched.no_data_s if watched else QUIET_S
            sensors.append(SensorNow(name, unit, value, at, limits_text(w) if w else None,
                                     _state(w, value, at, (e.id, name) in alarmed, now,
                                            quiet)))  # fmt: skip
        views.append(UnitView(e.site, e.id, e.equipment_class, step, tuple(sensors),
                              sum(1 for a in open_alarms if a.equipment == e.id)))  # fmt: skip
    return sorted(views, key=lambda v: (v.site, v.step is None, v.equipment))


def _equipment(app: App, sites: list[str] | None) -> list[tuple[Equipment, str]]:
    with app.uow() as uow:
        found = uow.equipment.list()
    return [(e, d) for e, d in found if sites is None or e.site in sites]


def unit_traces(
    app: App, equipment: str, minutes: float = 15.0, *, after: datetime | None = None
) -> tuple[RunningStep | None, list[Trace]]:
    """The last ``minutes`` of every sensor of ``equipment`` (or only what came after
    ``after``: the live page's next poll), with the running step's ranges.

    Raises
    ------
    NotFound
        No such equipment.
    """
    if not 0 < minutes <= 24 * 60:
        raise InvalidInput(f"minutes {minutes!r}: expected 1 to 1440")
    with app.uow() as uow:
        if uow.equipment.find(equipment) is None:
            raise NotFound(f"no equipment {equipment!r}")
    step = running_steps(app, equipment).get(equipment)  # polled: this unit's only
    start = after or app.clock.now() - timedelta(minutes=minutes)
    with app.reader() as connection:
        rows = store.readings_between(connection, equipment, start, None)
    if after is not None:
        rows = [r for r in rows if r[1] > after]
    return step, _traces(rows, step.monitoring.sensors if step and step.monitoring else ())


#: The most points a trace of a step or a run keeps for drawing: a nine-day expansion at
#: one reading a second is 777,600 per sensor, more than a browser should draw.
MAX_POINTS = 4000


def thin(
    times: list[datetime], values: list[float], max_points: int = MAX_POINTS
) -> tuple[list[datetime], list[float]]:
    """At most ``max_points`` of a trace, for drawing: the lowest and the highest reading of
    each of ``max_points / 2`` equal spans of it, in time order, so an excursion shorter
    than a span still shows. Fewer points are returned as they are.

    >>> from datetime import UTC, datetime, timedelta
    >>> t0 = datetime(2026, 11, 24, tzinfo=UTC)
    >>> times = [t0 + timedelta(seconds=s) for s in range(10)]
    >>> thin(times, [37, 37, 37, 39.5, 37, 37, 37, 37, 36.1, 37], max_points=4)[1]
    [37, 39.5, 37, 36.1]
    """
    if len(values) <= max_points:
        return times, values
    spans = max(1, max_points // 2)
    edges = np.linspace(0, len(values), spans + 1).astype(int)
    out_t: list[datetime] = []
    out_v: list[float] = []
    for a, b in itertools.pairwise(edges):
        if a == b:
            continue
        chunk = values[a:b]
        low, high = a + int(np.argmin(chunk)), a + int(np.argmax(chunk))
        for i in sorted({low, high}):
            out_t.append(times[i])
            out_v.append(values[i])
    return out_t, out_v


def _traces(
    rows: list[tuple[str, datetime, float, str]], watched: tuple[MonitoredSensor, ...]
) -> list[Trace]:
    by_sensor: dict[str, list[tuple[datetime, float, str]]] = defaultdict(list)
    for sensor, at, value, unit in rows:
        by_sensor[sensor].append((at, value, unit))
    rules = {w.sensor: w for w in watched}
    order = [w.sensor for w in watched] + sorted(set(by_sensor) - set(rules))
    traces = []
    for sensor in order:
        points = by_sensor.get(sensor, [])
        w = rules.get(sensor)
        unit = points[0][2] if points else (w.unit if w else "")
        times, values = thin([p[0] for p in points], [p[1] for p in points])
        traces.append(Trace(sensor, unit, times, values, w.rule.low if w else None,
                            w.rule.high if w else None))  # fmt: skip
    return traces


def step_traces(app: App, lot: str) -> list[StepTrace]:
    """Each step of batch ``lot`` that ran on monitored equipment, with its trace (none
    before processing started).

    Raises
    ------
    NotFound
        No batch ``lot``.
    """
    with app.uow() as uow:
        uow.batches.get(lot)
        if uow.records.header_and_hash(lot) is None:
            return []
        record = load_record(uow, lot)
        uses = store.uses_of(uow.connection, lot)
        found = []
        for use in uses:
            step = record.process.step(use.step_id)
            watched = step.monitoring.sensors if step.monitoring else ()
            rows = store.readings_between(uow.connection, use.equipment, use.started_at,
                                          use.ended_at)  # fmt: skip
            recorded = [
                (e.performed_at, name, v.reported, v.unit)
                for e in record.entries if e.step_id == use.step_id
                for name, v in e.values.items()
            ]  # fmt: skip
            alarms = [a for a in store.alarms(uow.connection, lot=lot, limit=500)
                      if a.step_id == use.step_id]  # fmt: skip
            found.append(StepTrace(use, _traces(rows, watched), recorded, alarms))
    return found


def site_overlay(app: App, step_id: str, sensor: str, runs: int = 60) -> Overlay:
    """``sensor`` during the last ``runs`` runs of ``step_id``, site by site (runs of the
    process of the latest run only).

    Raises
    ------
    NotFound
        No run of ``step_id`` on equipment, or none with readings of ``sensor``.
    """
    profiles: dict[str, list[tuple[str, list[float], list[float]]]] = defaultdict(list)
    means: dict[str, list[float]] = defaultdict(list)
    unit = ""
    with app.uow() as uow:
        uses = [u for u in store.uses_of_step(uow.connection, step_id, runs) if u.ended_at]
        if not uses:
            raise NotFound(f"no finished run of step {step_id!r} on monitored equipment")
        # one process: another product's step of the same name is not the same step
        uses = [u for u in uses if u.process == uses[0].process]
        for use in uses:
            rows = store.readings_between(uow.connection, use.equipment, use.started_at,
                                          use.ended_at, sensor)  # fmt: skip
            if not rows:
                continue
            unit = rows[0][3]
            values = [v for _, _, v, _ in rows]
            means[use.site].append(float(np.mean(values)))  # of every reading
            times, drawn = thin([at for _, at, _, _ in rows], values, MAX_POINTS // 4)
            hours = [(at - use.started_at).total_seconds() / 3600 for at in times]
            profiles[use.site].append((use.lot, hours, drawn))
        process = definition_of(uow.mbrs.get(uses[0].process, uses[0].process_version))
    if not profiles:
        raise NotFound(f"no readings of {sensor!r} during step {step_id!r}")
    sites = sorted(means, key=lambda s: (-len(means[s]), s))
    reference = sites[0]
    margin, basis = _margin(process.step(step_id).monitoring, sensor)
    overlay = Overlay(step_id, sensor, unit, dict(profiles), dict(means), reference,
                      margin_basis=basis, process=process.process)  # fmt: skip
    for site in sites[1:]:
        try:
            overlay.comparisons[site] = compare_attribute(
                f"mean {sensor} during {step_id}", means[reference], means[site], margin=margin
            )
        except InvalidInput as too_few:
            overlay.comparisons[site] = too_few.message
    return overlay


#: The equivalence margin of a process parameter between sites: this share of the width of
#: the range the step must keep (a mean 0.2 °C apart on a 36–38 °C range is equivalent).
MARGIN_OF_RANGE = 0.10


def _margin(watched: Monitoring | None, sensor: str) -> tuple[float | None, str]:
    rule = watched.sensor(sensor) if watched else None
    if rule is None or rule.rule.low is None or rule.rule.high is None:
        return None, "1.5 × the reference site's SD (the step gives no range)"
    width = rule.rule.high - rule.rule.low
    return MARGIN_OF_RANGE * width, (
        f"{MARGIN_OF_RANGE:.0%} of the step's range {limits_text(rule)}"
    )


def watched_pairs(app: App) -> list[tuple[str, str]]:
    """(step, sensor) pairs the effective MBRs watch: what the overlay can compare."""
    with app.reader() as connection:
        records = [r for r in MbrRepository(connection).list() if r.status == EFFECTIVE]
    pairs = {
        (step.id, watched.sensor)
        for record in records
        for step in definition_of(record).steps
        if step.monitoring is not None
        for watched in step.monitoring.sensors
    }
    return sorted(pairs)
