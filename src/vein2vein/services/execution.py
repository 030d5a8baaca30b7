"""Executing a batch record: record a step, correct a value, verify a step (issue 5).

Each use case runs in one unit of work with its audit records, with the batch row locked
so two people cannot record the same step at once. The rules live in the domain
(:class:`~vein2vein.domain.batch_record.BatchRecord`, :func:`check_step_inputs`); this module
loads, checks permission and the label scan, saves, and opens a deviation for every value
outside its proven acceptable range (major where the parameter is critical, else minor).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from vein2vein.domain.batch import Batch, BatchState
from vein2vein.domain.batch_record import RecordedValue, StepEntry, check_step_inputs
from vein2vein.domain.errors import (
    ConcurrencyConflict,
    IdentityMismatch,
    InvalidInput,
    PermissionDenied,
    RuleViolation,
)
from vein2vein.domain.events import Event
from vein2vein.domain.materials import Deviation, Severity
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.process import Outcome, ProcessDefinition
from vein2vein.domain.signatures import Meaning
from vein2vein.services.auth import Identity, Signing, recording_failures, signing_intent
from vein2vein.services.authorise import batch_sites, check_permission, record_denial
from vein2vein.services.batches import record_mismatch
from vein2vein.services.records import load_record
from vein2vein.store import monitoring as equipment_uses
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "StepRecorded",
    "batch_in_process",
    "correct_value",
    "open_deviation_for",
    "open_deviation_row",
    "record_step",
    "verify_step",
]


@dataclass(frozen=True, slots=True)
class StepRecorded:
    """A step as recorded, and the deviations its values opened."""

    lot: str
    entry: StepEntry
    deviations: tuple[str, ...]


def batch_in_process(uow: UnitOfWork, lot: str, by: Identity, permission: str) -> Batch:
    batch = uow.batches.get(lot, for_update=True)  # one writer of a batch record at a time
    rule = rule_for(permission)
    check_permission(by.actor, rule, batch_sites(rule.where, batch))
    if batch.state is not BatchState.IN_PROCESS:
        raise RuleViolation(
            f"batch {lot} is {batch.state.value}: its record is written only while IN_PROCESS"
        )
    return batch


def record_step(
    uow: UnitOfWork,
    lot: str,
    step_id: str,
    values: Mapping[str, float],
    *,
    by: Identity,
    scan: str,
    comments: Mapping[str, str] | None = None,
    material_lots: Sequence[str] = (),
    equipment: str | None = None,
    occurrence: int | None = None,
) -> StepRecorded:
    """Record one performance of ``step_id`` of batch ``lot`` as ``by``.

    ``scan`` is the batch's label, scanned at the step (it must match the chain of
    identity); ``material_lots`` are the lots consumed (one per material of the step);
    ``equipment`` the equipment used. Values are rounded and checked against their ranges;
    an excursion needs a comment; a value outside its PAR is recorded and opens a deviation.
    ``occurrence``, when given, is the performance the person means to record (the page
    they saw); if someone recorded it meanwhile the request is refused as a conflict.
    """
    actor = by.actor.user_id
    if not scan or not scan.strip():
        raise InvalidInput(f"step {step_id}: scan the batch's label first")
    try:
        with recording_failures(uow), uow:
            batch = batch_in_process(uow, lot, by, "step.record")
            batch.check_scan(scan.strip())
            now = uow.clock.now()
            record = load_record(uow, lot)
            entry = record.record_step(step_id, dict(values), by=actor, at=now,
                                       comments=dict(comments or {}))  # fmt: skip
            if occurrence is not None and entry.occurrence != occurrence:
                raise ConcurrencyConflict(
                    f"batch {lot}: step {step_id} #{occurrence} was recorded by someone else "
                    f"meanwhile (this would be #{entry.occurrence}); reload and check"
                )
            step = record.process.step(step_id)
            # Locked for share: a lot rejected or equipment recalibrated meanwhile waits for
            # this step to commit (PostgreSQL), so a step never consumes a lot just rejected.
            lots = uow.materials.get_many([m.strip() for m in material_lots if m.strip()],
                                          lock="share")  # fmt: skip
            equipment_id = (equipment or "").strip() or None
            used = check_step_inputs(
                step,
                lots,
                uow.equipment.get(equipment_id, share=True) if equipment_id else None,
                site=batch.manufacturing_site,
                on=now.date(),
            )
            entry.equipment = equipment_id
            entry.materials = {kind: lot_.lot for kind, lot_ in used.items()}
            uses = [(used[m.type].lot, m.quantity, m.unit) for m in step.materials]
            record_id = uow.records.add_entry(lot, entry, uses)
            if record.steps_on_equipment:
                # The steps before this one are over on their equipment, and so is this one
                # unless it is recorded more than once (a culture counted every day runs on).
                still = step_id if step.repeatable else None
                equipment_uses.end_uses(uow.connection, lot=lot, at=now, by=actor, other_than=still)
            uow.record(
                Event(
                    "StepRecorded",
                    actor,
                    now,
                    "batch",
                    lot,
                    new={
                        "step": step_id,
                        "occurrence": entry.occurrence,
                        "process": f"{record.process.process} v{record.process.version}",
                        "values": {k: _value_json(v) for k, v in entry.values.items()},
                        "equipment": entry.equipment,
                        "materials": entry.materials,
                    },
                )
            )
            opened = tuple(
                open_deviation_for(uow, lot, record.process, entry, name, record_id, actor, now)
                for name in entry.deviations
            )
            uow.commit()
    except PermissionDenied as denied:
        record_denial(uow, by.actor, "step.record", ("batch", lot), denied.message)
        raise
    except IdentityMismatch as mismatch:
        record_mismatch(uow, lot, f"step {step_id}", scan, actor, str(mismatch))
        raise
    return StepRecorded(lot, entry, opened)


def _value_json(v: RecordedValue) -> dict[str, object]:
    data: dict[str, object] = {
        "entered": v.entered, "reported": v.reported, "unit": v.unit, "outcome": v.outcome.value,
    }  # fmt: skip
    if v.computed:
        data["computed"] = True
    if v.comment:
        data["comment"] = v.comment
    return data


def open_deviation_for(
    uow: UnitOfWork,
    lot: str,
    process: ProcessDefinition,
    entry: StepEntry,
    name: str,
    record_id: int,
    actor: str,
    now: datetime,
) -> str:
    """Open the deviation a value outside its PAR calls for; its reference."""
    spec = process.step(entry.step_id).parameter(name)
    value = entry.values[name]
    severity = Severity.MAJOR if spec.critical else Severity.MINOR
    description = (
        f"step {entry.step_id} #{entry.occurrence}: {name} {value.reported:g} {spec.unit} is "
        f"outside the proven acceptable range {spec.par} (normal {spec.nor})"
        + (" — a critical parameter" if spec.critical else "")
    )
    return open_deviation_row(
        uow, lot, severity, description, record_id, actor, now, automatic=True
    )


def open_deviation_row(
    uow: UnitOfWork,
    lot: str,
    severity: Severity,
    description: str,
    record_id: int | None,
    actor: str,
    now: datetime,
    *,
    automatic: bool,
    how: str = "automatically (value outside its PAR)",
) -> str:
    number = uow.sequences.next_sequence("DEV", "DEVIATION", now.year % 100)
    reference = f"DEV-{now.year}-{number:05d}"
    deviation = Deviation(reference, lot, severity, description)
    uow.deviations.add(deviation, step_record_id=record_id, at=now, by=actor)
    uow.record(
        Event(
            "DeviationOpened",
            actor,
            now,
            "deviation",
            reference,
            new={
                "lot": lot,
                "severity": severity.value,
                "description": description,
                "opened": how if automatic else "by hand",
            },
        )
    )
    return reference


def correct_value(
    uow: UnitOfWork,
    lot: str,
    step_id: str,
    occurrence: int,
    name: str,
    value: float,
    *,
    by: Identity,
    why: str,
    comment: str | None = None,
) -> RecordedValue:
    """Correct a typed value of a recorded step while the batch is in process. The original
    value stays, with who, when and why; a step that needed verification needs it again; a
    corrected value outside its PAR opens a deviation."""
    actor = by.actor.user_id
    try:
        with uow:
            batch_in_process(uow, lot, by, "step.correct")
            now = uow.clock.now()
            record = load_record(uow, lot)
            try:
                before = record.entry(step_id, occurrence).values[name]
            except KeyError:
                raise InvalidInput(f"step {step_id}: no parameter {name!r}") from None
            corrected = record.correct(step_id, occurrence, name, value, by=actor, at=now,
                                       why=why, comment=comment)  # fmt: skip
            entry = record.entry(step_id, occurrence)
            uow.records.save_value(lot, entry, corrected, corrected.corrections[-1])
            changed = {(entry.step_id, entry.occurrence): entry}
            for other, name_ in record.recomputed:
                value_ = other.values[name_]
                uow.records.save_value(lot, other, value_, value_.corrections[-1])
                changed[(other.step_id, other.occurrence)] = other
            for other in changed.values():
                uow.records.save_verification(lot, other)
            uow.record(
                Event(
                    "StepValueCorrected",
                    actor,
                    now,
                    "batch",
                    lot,
                    new={
                        "step": step_id,
                        "occurrence": occurrence,
                        "parameter": name,
                        "value": corrected.reported,
                        "outcome": corrected.outcome.value,
                        "comment": corrected.comment,
                        "recomputed": [
                            {
                                "step": e.step_id,
                                "occurrence": e.occurrence,
                                "parameter": n,
                                "old": e.values[n].corrections[-1].old,
                                "new": e.values[n].reported,
                                "outcome": e.values[n].outcome.value,
                            }
                            for e, n in record.recomputed
                        ],
                        "verification needed again": sorted(
                            f"{e.step_id} #{e.occurrence}"
                            for e in changed.values()
                            if record.process.step(e.step_id).verification
                        ),
                    },
                    old={
                        "value": before.reported,
                        "outcome": before.outcome.value,
                        "comment": before.comment,
                    },
                    reason=why.strip(),
                )
            )
            # A value newly outside its PAR opens a deviation (one already outside has one).
            newly_out = [(entry, name)] if before.outcome is not Outcome.OUT_OF_PAR else []
            newly_out += [
                (e, n) for e, n in record.recomputed
                if e.values[n].outcome is Outcome.OUT_OF_PAR
                and not _was_out_of_par(record.process, e, n)
            ]  # fmt: skip
            for e, n in newly_out:
                if e.values[n].outcome is Outcome.OUT_OF_PAR:
                    open_deviation_for(
                        uow, lot, record.process, e, n,
                        uow.records.record_id(lot, e.step_id, e.occurrence), actor, now,
                    )  # fmt: skip
            uow.commit()
    except PermissionDenied as denied:
        record_denial(uow, by.actor, "step.correct", ("batch", lot), denied.message)
        raise
    return corrected


def _was_out_of_par(process: ProcessDefinition, entry: StepEntry, name: str) -> bool:
    """Whether a recomputed value was outside its PAR before its last correction."""
    value = entry.values[name]
    spec = process.step(entry.step_id).parameter(name)
    return value.corrections[-1].old not in spec.par


def verify_step(
    uow: UnitOfWork,
    lot: str,
    step_id: str,
    occurrence: int,
    *,
    by: Identity,
    signing: Signing | None,
    seen: str | None = None,
) -> StepEntry:
    """A second person verifies a recorded step with an electronic signature (*verified*);
    ``seen`` is the digest of the values the page showed (refused if they changed since)."""
    what = f"verification of step {step_id} #{occurrence} of batch {lot}"
    try:
        with recording_failures(uow), uow:
            batch_in_process(uow, lot, by, "step.verify")
            now = uow.clock.now()
            record = load_record(uow, lot)
            entry = record.verify(step_id, occurrence, by=by.actor, at=now, seen=seen)
            intent = signing_intent(uow, by, signing, Meaning.VERIFIED, what, ("batch", lot))
            uow.records.save_verification(lot, entry)
            uow.record(
                Event(
                    "StepVerified",
                    by.actor.user_id,
                    now,
                    "batch",
                    lot,
                    new={
                        "step": step_id,
                        "occurrence": occurrence,
                        "performed_by": entry.performed_by,
                        "values": {k: v.reported for k, v in entry.values.items()},
                    },
                    signature=intent,
                )
            )
            uow.commit()
    except PermissionDenied as denied:
        record_denial(uow, by.actor, "step.verify", ("batch", lot), denied.message)
        raise
    return entry
