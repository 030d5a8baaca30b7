"""Which step runs on which equipment, and the alarms of monitored sensors (issue 10):
rows only; the rules are in services/monitoring.py and domain/telemetry.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from vein2vein.store import tables as t

__all__ = [
    "AlarmRow",
    "UseRow",
    "acknowledge",
    "add_alarm",
    "alarm",
    "alarms",
    "clear",
    "end_uses",
    "latest_readings",
    "open_alarm",
    "open_uses",
    "readings_between",
    "set_deviation",
    "start_use",
    "uses_of",
    "uses_of_step",
    "uses_since",
]


@dataclass(frozen=True, slots=True)
class UseRow:
    """A step on a piece of equipment, with the MBR version of its batch."""

    id: int
    equipment: str
    site: str
    lot: str
    step_id: str
    started_at: datetime
    started_by: str
    ended_at: datetime | None
    process: str
    process_version: int


@dataclass(frozen=True, slots=True)
class AlarmRow:
    id: int
    site: str
    equipment: str
    sensor: str
    kind: str
    lot: str | None
    step_id: str | None
    limits: str
    since: datetime
    raised_at: datetime
    value: float | None
    cleared_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    comment: str | None
    deviation: str | None


def start_use(
    connection: sa.Connection, equipment: str, lot: str, step_id: str, at: datetime, by: str
) -> int:
    row = {"equipment_id": equipment, "lot": lot, "step_id": step_id, "started_at": at,
           "started_by": by}  # fmt: skip
    key = connection.execute(t.equipment_use.insert().values(row)).inserted_primary_key
    assert key is not None
    return int(key[0])


def end_uses(
    connection: sa.Connection, *, lot: str, at: datetime, by: str, step_id: str | None = None,
    other_than: str | None = None,
) -> int:  # fmt: skip
    """End the open uses of ``lot``: of ``step_id`` only, or of every step but
    ``other_than``, or all of them."""
    u = t.equipment_use
    query = sa.update(u).where(u.c.lot == lot, u.c.ended_at.is_(None))
    if step_id is not None:
        query = query.where(u.c.step_id == step_id)
    if other_than is not None:
        query = query.where(u.c.step_id != other_than)
    return int(connection.execute(query.values(ended_at=at, ended_by=by)).rowcount)


def _uses() -> sa.Select[Any]:
    u, e, r = t.equipment_use, t.equipment, t.batch_record
    return (
        sa.select(
            u.c.id,
            u.c.equipment_id,
            e.c.site,
            u.c.lot,
            u.c.step_id,
            u.c.started_at,
            u.c.started_by,
            u.c.ended_at,
            r.c.process,
            r.c.process_version,
        )
        .join(e, e.c.id == u.c.equipment_id)
        .join(r, r.c.lot == u.c.lot)
    )


def open_uses(connection: sa.Connection, equipment: str | None = None) -> list[UseRow]:
    """The steps running now (on ``equipment`` only, if given)."""
    query = _uses().where(t.equipment_use.c.ended_at.is_(None))
    if equipment is not None:
        query = query.where(t.equipment_use.c.equipment_id == equipment)
    return [UseRow(*row) for row in connection.execute(query.order_by(t.equipment_use.c.id))]


def uses_of(connection: sa.Connection, lot: str) -> list[UseRow]:
    """Every use of equipment by the steps of ``lot``, oldest first."""
    query = _uses().where(t.equipment_use.c.lot == lot).order_by(t.equipment_use.c.started_at)
    return [UseRow(*row) for row in connection.execute(query)]


def add_alarm(connection: sa.Connection, **values: object) -> int:
    key = connection.execute(t.alarm.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def open_alarm(connection: sa.Connection, equipment: str, sensor: str) -> AlarmRow | None:
    """The alarm of this sensor not cleared yet, if any (the latest)."""
    a = t.alarm
    query = (
        sa.select(a)
        .where(a.c.equipment == equipment, a.c.sensor == sensor, a.c.cleared_at.is_(None))
        .order_by(a.c.id.desc())
        .limit(1)
    )
    row = connection.execute(query).first()
    return None if row is None else AlarmRow(*row)


def alarm(connection: sa.Connection, alarm_id: int, *, for_update: bool = False) -> AlarmRow | None:
    query = sa.select(t.alarm).where(t.alarm.c.id == alarm_id)
    if for_update:
        query = query.with_for_update()
    row = connection.execute(query).first()
    return None if row is None else AlarmRow(*row)


def set_deviation(connection: sa.Connection, alarm_id: int, deviation: str) -> None:
    connection.execute(
        sa.update(t.alarm).where(t.alarm.c.id == alarm_id).values(deviation=deviation)
    )


def clear(connection: sa.Connection, alarm_id: int, at: datetime) -> None:
    connection.execute(sa.update(t.alarm).where(t.alarm.c.id == alarm_id).values(cleared_at=at))


def acknowledge(
    connection: sa.Connection, alarm_id: int, by: str, at: datetime, comment: str
) -> None:
    connection.execute(
        sa.update(t.alarm)
        .where(t.alarm.c.id == alarm_id)
        .values(acknowledged_by=by, acknowledged_at=at, comment=comment)
    )


def alarms(
    connection: sa.Connection, *, unacknowledged: bool = False, sites: list[str] | None = None,
    lot: str | None = None, limit: int = 200,
) -> list[AlarmRow]:  # fmt: skip
    """Alarms, newest first: only those not acknowledged yet, at ``sites``, of ``lot``."""
    a = t.alarm
    query = sa.select(a).order_by(a.c.raised_at.desc(), a.c.id.desc()).limit(limit)
    if unacknowledged:
        query = query.where(a.c.acknowledged_at.is_(None))
    if sites is not None:
        query = query.where(a.c.site.in_(sites))
    if lot is not None:
        query = query.where(a.c.lot == lot)
    return [AlarmRow(*row) for row in connection.execute(query)]


def uses_since(connection: sa.Connection, since: datetime) -> list[UseRow]:
    """Every use of equipment still open or ended at or after ``since``, oldest first."""
    u = t.equipment_use
    query = _uses().where(sa.or_(u.c.ended_at.is_(None), u.c.ended_at >= since))
    return [UseRow(*row) for row in connection.execute(query.order_by(u.c.started_at))]


def uses_of_step(connection: sa.Connection, step_id: str, limit: int = 60) -> list[UseRow]:
    """The latest ``limit`` uses of equipment by ``step_id`` (any batch), newest first."""
    u = t.equipment_use
    query = _uses().where(u.c.step_id == step_id).order_by(u.c.started_at.desc()).limit(limit)
    return [UseRow(*row) for row in connection.execute(query)]


def readings_between(
    connection: sa.Connection, equipment: str, start: datetime, end: datetime | None,
    sensor: str | None = None,
) -> list[tuple[str, datetime, float, str]]:  # fmt: skip
    """The readings of ``equipment`` (of ``sensor`` only, if given) measured from ``start``
    to ``end`` (open: until now), in time order: (sensor, time, value, unit)."""
    r = t.sensor_reading
    query = sa.select(r.c.sensor, r.c.measured_at, r.c.value, r.c.unit).where(
        r.c.equipment == equipment, r.c.measured_at >= start
    )
    if end is not None:
        query = query.where(r.c.measured_at <= end)
    if sensor is not None:
        query = query.where(r.c.sensor == sensor)
    rows = connection.execute(query.order_by(r.c.sensor, r.c.measured_at))
    return [(s, at, float(v), u) for s, at, v, u in rows]


def latest_readings(
    connection: sa.Connection, equipment: list[str]
) -> dict[tuple[str, str], tuple[datetime, float, str]]:
    """The last reading of every sensor of ``equipment``: (equipment, sensor) → (time,
    value, unit)."""
    r = t.sensor_reading
    last = (
        sa.select(r.c.equipment, r.c.sensor, sa.func.max(r.c.measured_at).label("at"))
        .where(r.c.equipment.in_(equipment))
        .group_by(r.c.equipment, r.c.sensor)
        .subquery()
    )
    query = sa.select(r.c.equipment, r.c.sensor, r.c.measured_at, r.c.value, r.c.unit).join(
        last,
        sa.and_(r.c.equipment == last.c.equipment, r.c.sensor == last.c.sensor,
                r.c.measured_at == last.c.at),
    )  # fmt: skip
    return {(e, s): (at, float(v), u) for e, s, at, v, u in connection.execute(query)}
