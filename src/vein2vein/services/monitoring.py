"""Telemetry in context (issue 10, DESIGN §10): which batch step runs on which equipment,
and the alarms its monitored sensors raise against the ranges of that step's MBR.

* An operator **starts a step on equipment** (:func:`start_step`): from then until the step
  is recorded the equipment's readings belong to that step of that batch (a repeatable
  step, recorded once a day, runs until another step of the batch starts or is recorded;
  services/execution.py ends it). This is the link from a
  reading to the batch record: the equipment and the time.
* The monitor (telemetry/monitor.py) checks each reading of a running step against the
  step's ``monitoring`` (domain/telemetry.py: persistence, hysteresis, silence) and calls
  :func:`raise_alarm` / :func:`clear_alarm`: each in one transaction with its audit record,
  and with the deviation the MBR asks for.
* A person **acknowledges** an alarm with an e-signature (:func:`acknowledge_alarm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from vein2vein.domain.errors import (
    IdentityMismatch,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
)
from vein2vein.domain.events import Event
from vein2vein.domain.materials import Severity
from vein2vein.domain.people import ALL_SITES, Actor
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.signatures import Meaning
from vein2vein.domain.telemetry import MonitoredSensor, Monitoring
from vein2vein.services.app import App
from vein2vein.services.auth import Identity, Signing, recording_failures, signing_intent
from vein2vein.services.authorise import check_permission, record_denial
from vein2vein.services.batches import record_mismatch
from vein2vein.services.execution import batch_in_process, open_deviation_row
from vein2vein.services.records import definition_of
from vein2vein.store import monitoring as store
from vein2vein.store.monitoring import AlarmRow
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "AlarmRow",
    "RunningStep",
    "acknowledge_alarm",
    "alarms",
    "clear_alarm",
    "equipment_units",
    "limits_text",
    "raise_alarm",
    "running_steps",
    "start_step",
    "uses_since",
    "visible_sites",
]

#: Who raises and clears alarms in the audit trail: the monitor, not a person.
MONITOR = "system:monitor"


@dataclass(frozen=True, slots=True)
class RunningStep:
    """A step of batch ``lot`` running on ``equipment`` at ``site`` since ``started_at``,
    and what its MBR step watches there (``None``: nothing)."""

    equipment: str
    site: str
    lot: str
    step_id: str
    started_at: datetime
    monitoring: Monitoring | None


def start_step(
    uow: UnitOfWork, lot: str, step_id: str, equipment: str, *, by: Identity, scan: str
) -> RunningStep:
    """``by`` starts ``step_id`` of batch ``lot`` on ``equipment`` (the batch's label
    scanned): from now until the step is recorded, the equipment's readings belong to it.

    Raises
    ------
    RuleViolation
        The batch is not IN_PROCESS, the step needs no equipment or another class, the
        equipment is at another site or out of calibration, or already runs a step.
    """
    actor = by.actor.user_id
    if not scan or not scan.strip():
        raise InvalidInput(f"step {step_id}: scan the batch's label first")
    try:
        with recording_failures(uow), uow:
            batch = batch_in_process(uow, lot, by, "step.start")
            batch.check_scan(scan.strip())
            header = uow.records.header_and_hash(lot)
            if header is None:
                raise RuleViolation(f"batch {lot} has no batch record yet")
            process = definition_of(uow.mbrs.get(header[0].process, header[0].process_version))
            step = process.step(step_id)
            if step.equipment_class is None:
                raise RuleViolation(f"step {step_id} of {process.process} uses no equipment")
            now = uow.clock.now()
            device = uow.equipment.get(equipment.strip(), exclusive=True)
            device.check_usable(step.equipment_class, site=batch.manufacturing_site,
                                on=now.date())  # fmt: skip
            busy = store.open_uses(uow.connection, device.id)
            if busy:
                raise RuleViolation(
                    f"equipment {device.id} runs step {busy[0].step_id} of batch "
                    f"{busy[0].lot} since {busy[0].started_at:%Y-%m-%d %H:%M} UTC: record "
                    "that step first"
                )
            store.end_uses(uow.connection, lot=lot, at=now, by=actor, other_than=step_id)
            store.start_use(uow.connection, device.id, lot, step_id, now, actor)
            uow.record(Event("StepStarted", actor, now, "batch", lot,
                             new={"step": step_id, "equipment": device.id}))  # fmt: skip
            uow.commit()
    except PermissionDenied as denied:
        record_denial(uow, by.actor, "step.start", ("batch", lot), denied.message)
        raise
    except IdentityMismatch as mismatch:
        record_mismatch(uow, lot, f"start of step {step_id}", scan, actor, str(mismatch))
        raise
    return RunningStep(device.id, device.site, lot, step_id, now, step.monitoring)


def running_steps(app: App, equipment: str | None = None) -> dict[str, RunningStep]:
    """The steps running now, by equipment (on ``equipment`` only, if given), with what
    each watches."""
    with app.uow() as uow:
        uses = store.open_uses(uow.connection, equipment)
        found = {}
        for use in uses:
            process = definition_of(uow.mbrs.get(use.process, use.process_version))
            found[use.equipment] = RunningStep(use.equipment, use.site, use.lot, use.step_id,
                                               use.started_at,
                                               process.step(use.step_id).monitoring)  # fmt: skip
    return found


def uses_since(app: App, since: datetime) -> list[store.UseRow]:
    """The steps that ran on equipment since ``since`` or still run, oldest first."""
    with app.reader() as connection:
        return store.uses_since(connection, since)


def equipment_units(app: App, site: str | None = None) -> list[tuple[str, str, str]]:
    """Every registered piece of equipment (at ``site``): (site, id, class), by id."""
    with app.uow() as uow:
        found = uow.equipment.list(site=site)
    return sorted(((e.site, e.id, e.equipment_class) for e, _ in found), key=lambda u: u[1])


def limits_text(watched: MonitoredSensor) -> str:
    """The range a sensor must keep, for people: ``36–38 °C``, ``≥ 20 %``."""
    low, high, unit = watched.rule.low, watched.rule.high, watched.unit
    if low is not None and high is not None:
        return f"{low:g}–{high:g} {unit}"
    return f"≥ {low:g} {unit}" if low is not None else f"≤ {high:g} {unit}"


def raise_alarm(
    app: App,
    step: RunningStep | None,
    *,
    site: str,
    equipment: str,
    sensor: str,
    kind: Literal["high", "low", "no-data"],
    since: datetime,
    at: datetime,
    value: float | None,
) -> AlarmRow:
    """Store an alarm with its audit record, and open the deviation the MBR asks for (on
    the batch of ``step``), in one transaction."""
    watched = None
    if step is not None and step.monitoring is not None:
        watched = step.monitoring.sensor(sensor)
    if kind == "no-data":
        timeout = step.monitoring.no_data_s if step and step.monitoring else 0
        limits = f"a reading at least every {timeout:g} s"
    else:
        limits = limits_text(watched) if watched is not None else "—"
    uow = app.uow()
    with uow:
        now = uow.clock.now()
        alarm_id = store.add_alarm(
            uow.connection, site=site, equipment=equipment, sensor=sensor, kind=kind,
            lot=step.lot if step else None, step_id=step.step_id if step else None,
            limits=limits, since=since, raised_at=at, value=value,
        )  # fmt: skip
        described = (f"{sensor} on {equipment} {_what(kind, value, watched)} since "
                     f"{since:%Y-%m-%d %H:%M:%S} UTC (allowed: {limits})")  # fmt: skip
        deviation = None
        if step is not None and watched is not None and watched.deviation and kind != "no-data":
            deviation = open_deviation_row(
                uow, step.lot, Severity(watched.deviation),
                f"step {step.step_id}: alarm {alarm_id}: {described}", None, MONITOR, now,
                automatic=True, how="automatically (a monitored sensor's alarm)",
            )  # fmt: skip
            store.set_deviation(uow.connection, alarm_id, deviation)
        uow.record(Event("AlarmRaised", MONITOR, now, "alarm", str(alarm_id),
                         new={"alarm": described, "lot": step.lot if step else None,
                              "step": step.step_id if step else None,
                              "deviation": deviation}))  # fmt: skip
        uow.commit()
        row = store.alarm(uow.connection, alarm_id)
    assert row is not None
    return row


def _what(kind: str, value: float | None, watched: MonitoredSensor | None) -> str:
    if kind == "no-data":
        return "silent"
    unit = f" {watched.unit}" if watched else ""
    return f"{'above' if kind == 'high' else 'below'} range ({value:g}{unit})"


def clear_alarm(app: App, alarm_id: int, at: datetime, value: float | None) -> None:
    """The sensor is back inside its range (or heard again): the alarm clears (it stays to
    be acknowledged)."""
    uow = app.uow()
    with uow:
        store.clear(uow.connection, alarm_id, at)
        uow.record(Event("AlarmCleared", MONITOR, uow.clock.now(), "alarm", str(alarm_id),
                         new={"cleared_at": at.isoformat(), "value": value}))  # fmt: skip
        uow.commit()


def acknowledge_alarm(
    uow: UnitOfWork, alarm_id: int, *, by: Identity, comment: str, signing: Signing | None
) -> AlarmRow:
    """``by`` acknowledges an alarm with an e-signature (*reviewed*) and a comment (what
    they saw, what they did).

    Raises
    ------
    NotFound
        No such alarm.
    RuleViolation
        Acknowledged already.
    """
    if not comment or not comment.strip():
        raise InvalidInput(f"alarm {alarm_id}: say what you saw and did (a comment)")
    what = f"acknowledgement of alarm {alarm_id}"
    try:
        with recording_failures(uow), uow:
            row = store.alarm(uow.connection, alarm_id, for_update=True)
            if row is None:
                raise NotFound(f"no alarm {alarm_id}")
            check_permission(by.actor, rule_for("alarm.acknowledge"), [row.site])
            if row.acknowledged_at is not None:
                raise RuleViolation(f"alarm {alarm_id} was acknowledged by {row.acknowledged_by} "
                                    f"at {row.acknowledged_at:%Y-%m-%d %H:%M} UTC")  # fmt: skip
            intent = signing_intent(uow, by, signing, Meaning.REVIEWED, what,
                                    ("alarm", str(alarm_id)))  # fmt: skip
            now = uow.clock.now()
            store.acknowledge(uow.connection, alarm_id, by.actor.user_id, now, comment.strip())
            uow.record(Event("AlarmAcknowledged", by.actor.user_id, now, "alarm", str(alarm_id),
                             new={"comment": comment.strip(), "lot": row.lot},
                             signature=intent))  # fmt: skip
            uow.commit()
            done = store.alarm(uow.connection, alarm_id)
    except PermissionDenied as denied:
        record_denial(uow, by.actor, "alarm.acknowledge", ("alarm", str(alarm_id)),
                      denied.message)  # fmt: skip
        raise
    assert done is not None
    return done


def visible_sites(app: App, by: Actor) -> list[str] | None:
    """The sites whose units and alarms ``by`` sees: those of their scope (None: all)."""
    if by.sites == ALL_SITES:
        return None
    return sorted({site for site, _, _ in equipment_units(app) if by.may_act_on(site)})


def alarms(
    app: App, *, unacknowledged: bool = False, sites: list[str] | None = None,
    lot: str | None = None, limit: int = 200,
) -> list[AlarmRow]:  # fmt: skip
    """Alarms, newest first (see :func:`vein2vein.store.monitoring.alarms`); ``sites``:
    only theirs (give :func:`visible_sites` of the person asking)."""
    with app.reader() as connection:
        return store.alarms(connection, unacknowledged=unacknowledged, sites=sites, lot=lot,
                            limit=limit)  # fmt: skip
