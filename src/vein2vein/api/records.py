"""Electronic batch records (issue 5): a batch's record and its steps, material lots,
equipment and deviations.

- ``GET /api/batches/{lot}/record``; ``POST /api/batches/{lot}/steps`` records a step;
  ``POST …/steps/{step}/{occurrence}/corrections`` corrects a value;
  ``POST …/steps/{step}/{occurrence}/verification`` verifies it (signed: *verified*).
- ``GET|POST /api/material-lots``; ``POST /api/material-lots/{lot}/status`` releases,
  rejects or expires a lot (signed); ``GET /api/material-lots/{lot}/uses`` (genealogy).
- ``GET|POST /api/equipment``; ``POST /api/equipment/{id}/calibrations``.
- ``GET|POST /api/deviations``; ``POST /api/deviations/{reference}/closure`` (signed).

Signed requests carry ``signature`` as the batch transitions do: the password again, and the
user id at the first signature made with the token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, status

from vein2vein.api._deps import AppDep, IdentityDep
from vein2vein.api._record_schemas import (
    BatchRecordPublic,
    CalibrationCreate,
    CorrectionCreate,
    CorrectionPublic,
    DeviationClosureCreate,
    DeviationCreate,
    DeviationPublic,
    EquipmentCreate,
    EquipmentPublic,
    ExceptionPublic,
    LotStatusCreate,
    MaterialLotCreate,
    MaterialLotPublic,
    MaterialLotUsesPublic,
    MaterialUsePublic,
    StepEntryPublic,
    StepPublic,
    StepRecordCreate,
    StepRecordedPublic,
    ValuePublic,
    VerificationCreate,
)
from vein2vein.api.schemas import SignaturePublic, signing_of
from vein2vein.domain.batch_record import RecordedValue, StepEntry
from vein2vein.domain.errors import NotFound
from vein2vein.domain.people import Actor
from vein2vein.domain.process import StepDefinition
from vein2vein.services import execution, materials
from vein2vein.services import record_views as views
from vein2vein.services.app import App
from vein2vein.services.queries import SignatureView
from vein2vein.store.records import DeviationRow, MaterialUse

__all__ = ["router"]

router = APIRouter()
CREATED = status.HTTP_201_CREATED


# -- from the services' views to the schemas --------------------------------------------
def _value(v: RecordedValue) -> ValuePublic:
    return ValuePublic(
        name=v.name, unit=v.unit, entered=v.entered, reported=v.reported,
        outcome=v.outcome.value, computed=v.computed, comment=v.comment,
        corrections=[CorrectionPublic(old=c.old, new=c.new, by=c.by, at=c.at, why=c.why)
                     for c in v.corrections],
    )  # fmt: skip


def _entry(
    e: StepEntry, step: StepDefinition | None = None, signatures: Sequence[SignatureView] = ()
) -> StepEntryPublic:
    # In the MBR's order where it is known (the store keeps none).
    rank = {p.name: i for i, p in enumerate(step.parameters)} if step is not None else {}
    ordered = sorted(e.values.values(), key=lambda v: rank.get(v.name, len(rank)))
    return StepEntryPublic(
        step=e.step_id, occurrence=e.occurrence, performed_by=e.performed_by,
        performed_at=e.performed_at, verified_by=e.verified_by, verified_at=e.verified_at,
        equipment=e.equipment, materials=dict(e.materials),
        values=[_value(v) for v in ordered],
        signatures=[SignaturePublic.model_validate(s) for s in signatures],
    )  # fmt: skip


def _deviation(row: DeviationRow) -> DeviationPublic:
    d = row.deviation
    return DeviationPublic(
        reference=d.reference, lot=d.lot, severity=d.severity.value, state=d.state.value,
        description=d.description, step=row.step, impact=d.impact, capa=d.capa,
        opened_at=row.opened_at, opened_by=row.opened_by, closed_at=row.closed_at,
        closed_by=row.closed_by,
    )  # fmt: skip


def _use(u: MaterialUse) -> MaterialUsePublic:
    return MaterialUsePublic(
        batch_lot=u.batch_lot, step=u.step_id, occurrence=u.occurrence,
        material_lot=u.material_lot, material_type=u.material_type, quantity=u.quantity,
        unit=u.unit, at=u.at,
    )  # fmt: skip


def _lot(view: views.LotView) -> MaterialLotPublic:
    m = view.lot
    return MaterialLotPublic(
        lot=m.lot, type=m.type, supplier=m.supplier, expiry=m.expiry, status=m.status.value,
        received_at=view.received_at, usable=view.usable, used_by=view.used_by,
    )  # fmt: skip


def _lot_by_number(app: App, actor: Actor, lot: str, type_: str) -> MaterialLotPublic:
    for view in views.list_lots(app, actor, type=type_):
        if view.lot.lot == lot:
            return _lot(view)
    raise NotFound(f"material lot {lot!r} does not exist")


def _equipment(view: views.EquipmentView) -> EquipmentPublic:
    e = view.equipment
    return EquipmentPublic(
        id=e.id, equipment_class=e.equipment_class, site=e.site, description=view.description,
        calibration_due=e.calibration_due, in_calibration=view.calibrated,
    )  # fmt: skip


def _equipment_by_id(app: App, actor: Actor, equipment_id: str, site: str) -> EquipmentPublic:
    for view in views.list_equipment(app, actor, site=site):
        if view.equipment.id == equipment_id:
            return _equipment(view)
    raise NotFound(f"equipment {equipment_id!r} does not exist")


# -- the batch record --------------------------------------------------------------------
@router.get("/batches/{lot}/record", response_model=BatchRecordPublic, tags=["batch records"])
def read_record(app: AppDep, identity: IdentityDep, lot: str) -> BatchRecordPublic:
    """The batch record: every step of its MBR version with what was recorded, then the
    exceptions (review by exception), deviations and material lots consumed."""
    view = views.record_view(app, identity.actor, lot)
    h = view.header
    return BatchRecordPublic(
        lot=lot, state=view.batch.state, product=view.batch.product, process=h.process,
        process_version=h.process_version, title=view.title, started_at=h.started_at,
        started_by=h.started_by, patient_weight_kg=h.patient_weight_kg, complete=view.complete,
        next_steps=[s.id for s in view.next_steps],
        steps=[
            StepPublic(
                id=s.definition.id, name=s.definition.name, status=s.status,
                verification=s.definition.verification, repeatable=s.definition.repeatable,
                equipment_class=s.definition.equipment_class,
                entries=[_entry(e, s.definition, s.verifications.get(e.occurrence, []))
                         for e in s.entries],
            )
            for s in view.steps
        ],
        exceptions=[ExceptionPublic(step=x.step_id, occurrence=x.occurrence, kind=x.kind,
                                    detail=x.detail) for x in view.exceptions],
        deviations=[_deviation(d) for d in view.deviations],
        materials=[_use(u) for u in view.materials],
    )  # fmt: skip


@router.post("/batches/{lot}/steps", response_model=StepRecordedPublic, status_code=CREATED,
             tags=["batch records"])  # fmt: skip
def record_step(
    app: AppDep, identity: IdentityDep, lot: str, body: StepRecordCreate
) -> StepRecordedPublic:
    """Record one performance of a step (operators), with the batch's label scanned. An
    excursion needs a comment; a value outside its PAR is recorded and opens a deviation."""
    done = execution.record_step(
        app.uow(), lot, body.step, body.values, by=identity, scan=body.scan,
        comments=body.comments, material_lots=body.material_lots,
        equipment=body.equipment or None, occurrence=body.occurrence,
    )  # fmt: skip
    return StepRecordedPublic(lot=lot, entry=_entry(done.entry), deviations=list(done.deviations))


@router.post("/batches/{lot}/steps/{step}/{occurrence}/corrections", response_model=ValuePublic,
             status_code=CREATED, tags=["batch records"])  # fmt: skip
def correct_value(
    app: AppDep, identity: IdentityDep, lot: str, step: str, occurrence: int,
    body: CorrectionCreate,
) -> ValuePublic:  # fmt: skip
    """Correct a recorded value with a reason; the original stays. A verified step needs its
    verification again; a corrected value outside its PAR opens a deviation."""
    corrected = execution.correct_value(app.uow(), lot, step, occurrence, body.parameter,
                                        body.value, by=identity, why=body.reason,
                                        comment=body.comment)  # fmt: skip
    return _value(corrected)


@router.post("/batches/{lot}/steps/{step}/{occurrence}/verification",
             response_model=StepEntryPublic, tags=["batch records"])  # fmt: skip
def verify_step(
    app: AppDep, identity: IdentityDep, lot: str, step: str, occurrence: int,
    body: VerificationCreate,
) -> StepEntryPublic:  # fmt: skip
    """A second person verifies a step, with an electronic signature (verified)."""
    entry = execution.verify_step(app.uow(), lot, step, occurrence, by=identity,
                                  signing=signing_of(body.signature))  # fmt: skip
    return _entry(entry)


# -- material lots -----------------------------------------------------------------------
@router.get("/material-lots", response_model=list[MaterialLotPublic], tags=["material lots"])
def list_lots(
    app: AppDep,
    identity: IdentityDep,
    type: Annotated[str | None, Query(description="Only lots of this material type.")] = None,
) -> list[MaterialLotPublic]:
    return [_lot(v) for v in views.list_lots(app, identity.actor, type=type or None)]


@router.post("/material-lots", response_model=MaterialLotPublic, status_code=CREATED,
             tags=["material lots"])  # fmt: skip
def receive_lot(app: AppDep, identity: IdentityDep, body: MaterialLotCreate) -> MaterialLotPublic:
    """Receive a material lot into QUARANTINE (logistics, QA reviewers)."""
    received = materials.receive_lot(app.uow(), identity.actor, lot=body.lot, type=body.type,
                                     supplier=body.supplier, expiry=body.expiry)  # fmt: skip
    return _lot_by_number(app, identity.actor, received.lot, received.type)


@router.post("/material-lots/{lot}/status", response_model=MaterialLotPublic,
             tags=["material lots"])  # fmt: skip
def move_lot(
    app: AppDep, identity: IdentityDep, lot: str, body: LotStatusCreate
) -> MaterialLotPublic:
    """Release (signed: approved), reject or expire (signed: rejected) a lot, with a reason."""
    moved = materials.move_lot(app.uow(), identity, lot, body.status, reason=body.reason,
                               signing=signing_of(body.signature))  # fmt: skip
    return _lot_by_number(app, identity.actor, moved.lot, moved.type)


@router.get("/material-lots/{lot}/uses", response_model=MaterialLotUsesPublic,
            tags=["material lots"])  # fmt: skip
def lot_uses(app: AppDep, identity: IdentityDep, lot: str) -> MaterialLotUsesPublic:
    """Every batch that consumed the lot, at which step (genealogy, for a recall)."""
    material, uses = views.genealogy_of_lot(app, identity.actor, lot)
    return MaterialLotUsesPublic(
        lot=_lot_by_number(app, identity.actor, material.lot, material.type),
        batches=list(dict.fromkeys(u.batch_lot for u in uses)),
        uses=[_use(u) for u in uses],
    )


# -- equipment ---------------------------------------------------------------------------
@router.get("/equipment", response_model=list[EquipmentPublic], tags=["equipment"])
def list_equipment(
    app: AppDep,
    identity: IdentityDep,
    site: Annotated[str | None, Query(description="Only equipment at this site.")] = None,
) -> list[EquipmentPublic]:
    return [_equipment(v) for v in views.list_equipment(app, identity.actor, site=site or None)]


@router.post("/equipment", response_model=EquipmentPublic, status_code=CREATED,
             tags=["equipment"])  # fmt: skip
def register_equipment(
    app: AppDep, identity: IdentityDep, body: EquipmentCreate
) -> EquipmentPublic:
    """Register equipment (administrators, QA reviewers)."""
    eq = materials.register_equipment(
        app.uow(), identity.actor, equipment_id=body.id, equipment_class=body.equipment_class,
        site=body.site, description=body.description, calibration_due=body.calibration_due,
    )  # fmt: skip
    return _equipment_by_id(app, identity.actor, eq.id, eq.site)


@router.post("/equipment/{equipment_id}/calibrations", response_model=EquipmentPublic,
             status_code=CREATED, tags=["equipment"])  # fmt: skip
def record_calibration(
    app: AppDep, identity: IdentityDep, equipment_id: str, body: CalibrationCreate
) -> EquipmentPublic:
    """Record a calibration: the next due date moves to ``due``."""
    eq = materials.record_calibration(app.uow(), identity.actor, equipment_id, due=body.due,
                                      reason=body.reason)  # fmt: skip
    return _equipment_by_id(app, identity.actor, eq.id, eq.site)


# -- deviations --------------------------------------------------------------------------
@router.get("/deviations", response_model=list[DeviationPublic], tags=["deviations"])
def list_deviations(
    app: AppDep,
    identity: IdentityDep,
    state: Annotated[str | None, Query(description="OPEN or CLOSED.")] = None,
) -> list[DeviationPublic]:
    return [_deviation(r) for r in views.list_deviations(app, identity.actor, state=state or None)]


@router.post("/deviations", response_model=DeviationPublic, status_code=CREATED,
             tags=["deviations"])  # fmt: skip
def open_deviation(app: AppDep, identity: IdentityDep, body: DeviationCreate) -> DeviationPublic:
    """Open a deviation on a batch by hand (operators, QA reviewers, QPs)."""
    reference = materials.open_deviation(
        app.uow(), identity.actor, body.lot, severity=body.severity, description=body.description
    )
    for row in views.list_deviations(app, identity.actor):
        if row.deviation.reference == reference:
            return _deviation(row)
    raise NotFound(f"deviation {reference!r} does not exist")


@router.post("/deviations/{reference}/closure", response_model=DeviationPublic,
             tags=["deviations"])  # fmt: skip
def close_deviation(
    app: AppDep, identity: IdentityDep, reference: str, body: DeviationClosureCreate
) -> DeviationPublic:
    """QA closes a deviation: impact, CAPA where major or critical, final class, signature."""
    row = materials.close_deviation(
        app.uow(), identity, reference, impact=body.impact, capa=body.capa or None,
        severity=body.severity or None, signing=signing_of(body.signature),
    )  # fmt: skip
    return _deviation(row)
