"""Material lots, equipment and deviations: their life outside a step (issue 5).

- A material lot is received into QUARANTINE; QA releases it (signed, *approved*) or rejects
  it (signed, *rejected*); a released lot is expired or rejected later (signed, *rejected*).
- Equipment is registered with its class, site and calibration due date; a calibration
  moves the due date.
- A deviation is opened by hand (or by a value outside its PAR, services/execution.py) and
  closed by QA with an impact assessment, a CAPA reference where it is major or critical,
  and an electronic signature (*approved*).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.events import Event
from vein2vein.domain.materials import Equipment, LotStatus, MaterialLot, Severity
from vein2vein.domain.patient import validate_code
from vein2vein.domain.people import Actor
from vein2vein.domain.permissions import rule_for
from vein2vein.services.auth import Identity, Signing, recording_failures, signing_intent
from vein2vein.services.authorise import authorise, batch_sites, check_permission
from vein2vein.services.execution import open_deviation_row
from vein2vein.services.release import finalise_if_ready
from vein2vein.store.records import DeviationRow
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "close_deviation",
    "move_lot",
    "open_deviation",
    "receive_lot",
    "record_calibration",
    "register_equipment",
]


def receive_lot(
    uow: UnitOfWork, by: Actor, *, lot: str, type: str, supplier: str, expiry: date
) -> MaterialLot:
    """Receive a material lot into QUARANTINE."""
    validate_code("material lot", lot)
    material = MaterialLot(lot, type.strip(), supplier.strip(), expiry)
    with authorise(uow, by, "material.register", entity=("material", lot)):
        now = uow.clock.now()
        if expiry < now.date():
            raise InvalidInput(f"material lot {lot}: expired on {expiry.isoformat()} already")
        uow.materials.add(material, now)
        uow.record(
            Event(
                "MaterialLotReceived",
                by.user_id,
                now,
                "material",
                lot,
                new={
                    "type": material.type,
                    "supplier": material.supplier,
                    "expiry": expiry.isoformat(),
                    "status": material.status.value,
                },
            )
        )
        uow.commit()
    return material


def move_lot(
    uow: UnitOfWork,
    by: Identity,
    lot: str,
    status: str,
    *,
    reason: str,
    signing: Signing | None,
) -> MaterialLot:
    """Release, reject or expire a material lot, with a reason and an electronic signature."""
    try:
        target = LotStatus(status.upper())
    except ValueError:
        choices = ", ".join(s.value for s in LotStatus if s is not LotStatus.QUARANTINE)
        raise InvalidInput(f"status {status!r}: expected one of {choices}") from None
    if not reason or not reason.strip():
        raise InvalidInput(f"material lot {lot}: a {target.value.lower()} status needs a reason")
    permission = "material.release" if target is LotStatus.RELEASED else "material.reject"
    meaning = rule_for(permission).signature
    assert meaning is not None
    with recording_failures(uow), authorise(uow, by.actor, permission, entity=("material", lot)):
        material = uow.materials.get(lot, lock="update")
        moved = material.moved_to(target)
        intent = signing_intent(uow, by, signing, meaning,
                                f"{target.value.lower()} status of material lot {lot}",
                                ("material", lot))  # fmt: skip
        uow.materials.save(moved)
        uow.record(
            Event(
                f"MaterialLot{target.value.title()}",
                by.actor.user_id,
                uow.clock.now(),
                "material",
                lot,
                new={"status": target.value},
                old={"status": material.status.value},
                reason=reason.strip(),
                signature=intent,
            )
        )
        uow.commit()
    return moved


def register_equipment(
    uow: UnitOfWork,
    by: Actor,
    *,
    equipment_id: str,
    equipment_class: str,
    site: str,
    description: str,
    calibration_due: date,
) -> Equipment:
    validate_code("equipment id", equipment_id)
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,63}", equipment_class):
        raise InvalidInput(
            f"equipment class {equipment_class!r}: expected lower-case letters, digits and "
            "dashes, as the MBR names it (e.g. biosafety-cabinet)"
        )
    if not description.strip():
        raise InvalidInput(f"equipment {equipment_id}: the description is empty")
    equipment = Equipment(equipment_id, equipment_class, site, calibration_due)
    with authorise(uow, by, "equipment.register", entity=("equipment", equipment_id)):
        uow.sites.get(site)  # an unknown site is named
        now = uow.clock.now()
        uow.equipment.add(equipment, description.strip(), now)
        uow.record(
            Event(
                "EquipmentRegistered",
                by.user_id,
                now,
                "equipment",
                equipment_id,
                new={
                    "class": equipment_class,
                    "site": site,
                    "description": description.strip(),
                    "calibration_due": calibration_due.isoformat(),
                },
            )
        )
        uow.commit()
    return equipment


def record_calibration(
    uow: UnitOfWork, by: Actor, equipment_id: str, *, due: date, reason: str
) -> Equipment:
    """Record a calibration: the equipment's next due date moves to ``due``."""
    if not reason or not reason.strip():
        raise InvalidInput(f"equipment {equipment_id}: a calibration needs a reference")
    with authorise(uow, by, "equipment.register", entity=("equipment", equipment_id)):
        before = uow.equipment.get(equipment_id)
        if due <= uow.clock.now().date():
            raise InvalidInput(
                f"equipment {equipment_id}: the next calibration due date {due.isoformat()} "
                "must lie in the future"
            )
        uow.equipment.set_calibration(equipment_id, due)
        uow.record(
            Event(
                "EquipmentCalibrated",
                by.user_id,
                uow.clock.now(),
                "equipment",
                equipment_id,
                new={"calibration_due": due.isoformat()},
                old={"calibration_due": before.calibration_due.isoformat()},
                reason=reason.strip(),
            )
        )
        uow.commit()
    return replace(before, calibration_due=due)


def _severity(value: str) -> Severity:
    try:
        return Severity(value.lower())
    except ValueError:
        choices = ", ".join(s.value for s in Severity)
        raise InvalidInput(f"severity {value!r}: expected one of {choices}") from None


def open_deviation(uow: UnitOfWork, by: Actor, lot: str, *, severity: str, description: str) -> str:
    """Open a deviation on batch ``lot`` by hand; its reference."""
    level = _severity(severity)
    if not description or not description.strip():
        raise InvalidInput(f"deviation on batch {lot}: the description is empty")
    rule = rule_for("deviation.open")
    with authorise(uow, by, "deviation.open", entity=("batch", lot)):
        batch = uow.batches.get(lot)
        check_permission(by, rule, batch_sites(rule.where, batch))
        reference = open_deviation_row(uow, lot, level, description.strip(), None, by.user_id,
                          uow.clock.now(), automatic=False)  # fmt: skip
        uow.commit()
    return reference


def close_deviation(
    uow: UnitOfWork,
    by: Identity,
    reference: str,
    *,
    impact: str,
    capa: str | None = None,
    severity: str | None = None,
    signing: Signing | None,
) -> DeviationRow:
    """QA closes a deviation: impact assessment, CAPA where needed, final classification,
    electronic signature (*approved*)."""
    level = _severity(severity) if severity else None
    rule = rule_for("deviation.close")
    with (
        recording_failures(uow),
        authorise(uow, by.actor, "deviation.close", entity=("deviation", reference)),
    ):
        row = uow.deviations.get(reference)
        batch = uow.batches.get(row.deviation.lot, for_update=True)
        check_permission(by.actor, rule, batch_sites(rule.where, batch))
        closed = row.deviation.closed(impact=impact, capa=capa, severity=level)
        assert rule.signature is not None
        intent = signing_intent(uow, by, signing, rule.signature, f"closure of {reference}",
                                ("deviation", reference))  # fmt: skip
        now = uow.clock.now()
        uow.deviations.close(closed, at=now, by=by.actor.user_id)
        uow.record(
            Event(
                "DeviationClosed",
                by.actor.user_id,
                now,
                "deviation",
                reference,
                new={
                    "lot": closed.lot,
                    "state": closed.state.value,
                    "severity": closed.severity.value,
                    "impact": closed.impact,
                    "capa": closed.capa,
                },
                old={"state": row.deviation.state.value, "severity": row.deviation.severity.value},
                signature=intent,
            )
        )
        # The deviation may have been all that kept a conditional release from being final.
        finalise_if_ready(uow, batch, by.actor.user_id, now)
        uow.commit()
    with uow:
        return uow.deviations.get(reference)
