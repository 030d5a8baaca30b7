"""Repositories of electronic batch records, material lots, equipment and deviations.

A batch record is kept as rows (step_record, step_value, value_correction, material_use)
and loaded back into the domain's :class:`~vein2vein.domain.batch_record.BatchRecord`
entries; the services decide, these only read and write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from vein2vein.domain.batch_record import Correction, RecordedValue, StepEntry
from vein2vein.domain.errors import ConcurrencyConflict, DuplicateIdentifier, NotFound
from vein2vein.domain.materials import (
    Deviation,
    DeviationState,
    Equipment,
    LotStatus,
    MaterialLot,
    Severity,
)
from vein2vein.domain.process import Outcome
from vein2vein.store import tables as t

__all__ = [
    "BatchRecordRepository",
    "DeviationRepository",
    "DeviationRow",
    "EquipmentRepository",
    "MaterialRepository",
    "MaterialUse",
    "RecordHeader",
]


@dataclass(frozen=True, slots=True)
class RecordHeader:
    """Which MBR version a batch is bound to, and for which patient weight."""

    lot: str
    process: str
    process_version: int
    patient_weight_kg: float
    started_at: datetime
    started_by: str
    steps_on_equipment: int = 0  # its steps running on equipment now (issue 10)


@dataclass(frozen=True, slots=True)
class MaterialUse:
    """One line of genealogy: a material lot consumed by a batch at a step."""

    batch_lot: str
    step_id: str
    occurrence: int
    material_lot: str
    material_type: str
    quantity: float
    unit: str
    at: datetime


class BatchRecordRepository:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    def start(self, header: RecordHeader) -> None:
        if self.header(header.lot) is not None:
            raise DuplicateIdentifier(f"batch {header.lot} has a batch record already")
        row = _fields(header)
        row.pop("steps_on_equipment")  # counted from equipment_use, not stored
        self._c.execute(t.batch_record.insert().values(**row))

    def header(self, lot: str) -> RecordHeader | None:
        row = self._c.execute(
            sa.select(t.batch_record).where(t.batch_record.c.lot == lot)
        ).one_or_none()
        return None if row is None else RecordHeader(**row._mapping)

    def header_and_hash(self, lot: str) -> tuple[RecordHeader, str] | None:
        """The header (with how many of its steps run on equipment now) and the content
        hash of the MBR version it is bound to (one query)."""
        br, pd, use = t.batch_record, t.process_definition, t.equipment_use
        running = (
            sa.select(sa.func.count())
            .where(use.c.lot == br.c.lot, use.c.ended_at.is_(None))
            .scalar_subquery()
            .label("steps_on_equipment")
        )
        row = self._c.execute(
            sa.select(br, pd.c.content_hash, running)
            .join(pd, (pd.c.process == br.c.process) & (pd.c.version == br.c.process_version))
            .where(br.c.lot == lot)
        ).one_or_none()
        if row is None:
            return None
        fields = dict(row._mapping)
        content_hash = fields.pop("content_hash")
        return RecordHeader(**fields), content_hash

    def entries(self, lot: str) -> list[StepEntry]:
        """Every step recorded for ``lot``, in the order recorded, with values, corrections,
        equipment and the material lots consumed (two queries, each by the batch)."""
        sr, sv, vc, mu, ml = (
            t.step_record, t.step_value, t.value_correction, t.material_use, t.material_lot
        )  # fmt: skip
        # Steps, their values and the values' corrections in one query (corrections are
        # rare, so the rows they repeat are few).
        rows = self._c.execute(
            sa.select(sr, sv.c.name, sv.c.unit, sv.c.entered, sv.c.reported, sv.c.outcome,
                      sv.c.computed, sv.c.comment, vc.c.old, vc.c.new, vc.c.corrected_by,
                      vc.c.corrected_at, vc.c.why)
            .outerjoin(sv, sv.c.step_record_id == sr.c.id)
            .outerjoin(vc, (vc.c.step_record_id == sr.c.id) & (vc.c.name == sv.c.name))
            .where(sr.c.lot == lot)
            .order_by(sr.c.id, vc.c.id)
        ).all()  # fmt: skip
        if not rows:
            return []
        corrections: dict[tuple[int, str], list[Correction]] = {}
        for r in rows:
            if r.corrected_by is not None:
                corrections.setdefault((r.id, r.name), []).append(
                    Correction(r.old, r.new, r.corrected_by, r.corrected_at, r.why)
                )
        materials: dict[int, dict[str, str]] = {}
        for u in self._c.execute(
            sa.select(mu.c.step_record_id, mu.c.material_lot, ml.c.type)
            .join(ml, ml.c.lot == mu.c.material_lot)
            .where(mu.c.batch_lot == lot)
        ):
            materials.setdefault(u.step_record_id, {})[u.type] = u.material_lot
        entries: dict[int, StepEntry] = {}
        for r in rows:
            entry = entries.get(r.id)
            if entry is None:
                entry = entries[r.id] = StepEntry(
                    r.step_id, r.occurrence, r.performed_by, r.performed_at, {}, r.verified_by,
                    r.verified_at, r.equipment_id, materials.get(r.id, {}),
                )  # fmt: skip
            if r.name is not None and r.name not in entry.values:
                entry.values[r.name] = RecordedValue(
                    r.name, r.unit, r.entered, r.reported, Outcome(r.outcome), r.computed,
                    r.comment, tuple(corrections.get((r.id, r.name), ())),
                )  # fmt: skip
        return list(entries.values())

    def _id(self, lot: str, step_id: str, occurrence: int) -> int:
        sr = t.step_record
        found = self._c.execute(
            sa.select(sr.c.id).where(
                sr.c.lot == lot, sr.c.step_id == step_id, sr.c.occurrence == occurrence
            )
        ).scalar_one_or_none()
        if found is None:
            raise NotFound(f"batch {lot}: step {step_id} #{occurrence} is not recorded")
        return int(found)

    def add_entry(self, lot: str, entry: StepEntry, uses: Sequence[tuple[str, float, str]]) -> int:
        """Write one step record, its values and the lots it consumed (lot, quantity, unit)."""
        record_id = self._c.execute(
            t.step_record.insert()
            .values(
                lot=lot,
                step_id=entry.step_id,
                occurrence=entry.occurrence,
                performed_by=entry.performed_by,
                performed_at=entry.performed_at,
                equipment_id=entry.equipment,
            )
            .returning(t.step_record.c.id)
        ).scalar_one()
        self._c.execute(
            t.step_value.insert(),
            [_value_row(record_id, v) for v in entry.values.values()],
        )
        if uses:
            self._c.execute(
                t.material_use.insert(),
                [
                    {
                        "step_record_id": record_id,
                        "material_lot": m,
                        "batch_lot": lot,
                        "quantity": q,
                        "unit": u,
                    }
                    for m, q, u in uses
                ],
            )
        return int(record_id)

    def save_value(
        self, lot: str, entry: StepEntry, value: RecordedValue, correction: Correction
    ) -> None:
        """Save a changed value of ``entry`` and the correction that changed it."""
        record_id = self._id(lot, entry.step_id, entry.occurrence)
        sv = t.step_value
        self._c.execute(
            sv.update()
            .where(sv.c.step_record_id == record_id, sv.c.name == value.name)
            .values(
                entered=value.entered,
                reported=value.reported,
                outcome=value.outcome.value,
                comment=value.comment,
            )
        )
        self._c.execute(
            t.value_correction.insert().values(
                step_record_id=record_id,
                name=value.name,
                old=correction.old,
                new=correction.new,
                corrected_by=correction.by,
                corrected_at=correction.at,
                why=correction.why,
            )
        )

    def save_verification(self, lot: str, entry: StepEntry) -> None:
        sr = t.step_record
        self._c.execute(
            sr.update()
            .where(sr.c.id == self._id(lot, entry.step_id, entry.occurrence))
            .values(verified_by=entry.verified_by, verified_at=entry.verified_at)
        )

    def record_id(self, lot: str, step_id: str, occurrence: int) -> int:
        return self._id(lot, step_id, occurrence)

    # -- genealogy -----------------------------------------------------------------------
    def _uses(self, where: sa.ColumnElement[bool]) -> list[MaterialUse]:
        mu, sr, ml = t.material_use, t.step_record, t.material_lot
        rows = self._c.execute(
            sa.select(
                mu.c.batch_lot,
                sr.c.step_id,
                sr.c.occurrence,
                mu.c.material_lot,
                ml.c.type,
                mu.c.quantity,
                mu.c.unit,
                sr.c.performed_at,
            )
            .join(sr, sr.c.id == mu.c.step_record_id)
            .join(ml, ml.c.lot == mu.c.material_lot)
            .where(where)
            .order_by(sr.c.performed_at, mu.c.batch_lot, mu.c.material_lot)
        )
        return [MaterialUse(*r) for r in rows]

    def batches_using(self, material_lot: str) -> list[MaterialUse]:
        """Which batches consumed ``material_lot`` (for a recall)."""
        return self._uses(t.material_use.c.material_lot == material_lot)

    def lots_in(self, batch_lot: str) -> list[MaterialUse]:
        """Which material lots went into ``batch_lot``."""
        return self._uses(t.material_use.c.batch_lot == batch_lot)


def _value_row(record_id: int, v: RecordedValue) -> dict[str, Any]:
    return {
        "step_record_id": record_id, "name": v.name, "unit": v.unit, "entered": v.entered,
        "reported": v.reported, "outcome": v.outcome.value, "computed": v.computed,
        "comment": v.comment,
    }  # fmt: skip


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


class MaterialRepository:
    """Material lots, saved with optimistic locking on ``version``."""

    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._versions: dict[str, int] = {}

    def add(self, lot: MaterialLot, at: datetime) -> None:
        if self.find(lot.lot) is not None:
            raise DuplicateIdentifier(f"material lot {lot.lot} exists already")
        self._c.execute(
            t.material_lot.insert().values(
                lot=lot.lot,
                type=lot.type,
                supplier=lot.supplier,
                expiry=lot.expiry,
                status=lot.status.value,
                received_at=at,
                version=1,
            )
        )

    def find(self, lot: str, *, lock: str | None = None) -> MaterialLot | None:
        """The lot, or None; ``lock`` "share" (a step consumes it: nobody may change its
        status until the step commits) or "update" (its status is about to change)."""
        query = sa.select(t.material_lot).where(t.material_lot.c.lot == lot)
        if lock is not None:
            query = query.with_for_update(read=lock == "share")
        row = self._c.execute(query).one_or_none()
        if row is None:
            return None
        self._versions[lot] = row.version
        return _material(row)

    def get(self, lot: str, *, lock: str | None = None) -> MaterialLot:
        found = self.find(lot, lock=lock)
        if found is None:
            raise NotFound(f"material lot {lot!r} does not exist")
        return found

    def get_many(self, lots: Sequence[str], *, lock: str | None = None) -> list[MaterialLot]:
        """Several lots in one query, in the order asked; an unknown one is named."""
        if not lots:
            return []
        query = sa.select(t.material_lot).where(t.material_lot.c.lot.in_(list(lots)))
        if lock is not None:
            query = query.with_for_update(read=lock == "share")
        found = {}
        for row in self._c.execute(query):
            self._versions[row.lot] = row.version
            found[row.lot] = _material(row)
        for lot in lots:
            if lot not in found:
                raise NotFound(f"material lot {lot!r} does not exist")
        return [found[lot] for lot in lots]

    def save(self, lot: MaterialLot) -> None:
        ml = t.material_lot
        version = self._versions[lot.lot]
        done = self._c.execute(
            ml.update()
            .where(ml.c.lot == lot.lot, ml.c.version == version)
            .values(status=lot.status.value, version=version + 1)
        )
        if done.rowcount != 1:
            raise ConcurrencyConflict(f"material lot {lot.lot} was changed by someone else")
        self._versions[lot.lot] = version + 1

    def list(self, *, type: str | None = None) -> list[tuple[MaterialLot, datetime]]:
        ml = t.material_lot
        query = sa.select(ml).order_by(ml.c.type, ml.c.expiry, ml.c.lot)
        if type is not None:
            query = query.where(ml.c.type == type)
        return [(_material(r), r.received_at) for r in self._c.execute(query)]


def _material(row: sa.Row[Any]) -> MaterialLot:
    return MaterialLot(row.lot, row.type, row.supplier, row.expiry, LotStatus(row.status))


class EquipmentRepository:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    def add(self, equipment: Equipment, description: str, at: datetime) -> None:
        if self.find(equipment.id) is not None:
            raise DuplicateIdentifier(f"equipment {equipment.id} exists already")
        self._c.execute(
            t.equipment.insert().values(
                id=equipment.id,
                equipment_class=equipment.equipment_class,
                site=equipment.site,
                description=description,
                calibration_due=equipment.calibration_due,
                registered_at=at,
            )
        )

    def find(
        self, equipment_id: str, *, share: bool = False, exclusive: bool = False
    ) -> Equipment | None:
        query = sa.select(t.equipment).where(t.equipment.c.id == equipment_id)
        if exclusive:  # a step starts on it: one at a time decides whether it is free
            query = query.with_for_update()
        elif share:  # a step uses it: its calibration may not move until the step commits
            query = query.with_for_update(read=True)
        row = self._c.execute(query).one_or_none()
        return None if row is None else _equipment(row)

    def get(self, equipment_id: str, *, share: bool = False, exclusive: bool = False) -> Equipment:
        found = self.find(equipment_id, share=share, exclusive=exclusive)
        if found is None:
            raise NotFound(f"equipment {equipment_id!r} does not exist")
        return found

    def set_calibration(self, equipment_id: str, due: date) -> None:
        self._c.execute(
            t.equipment.update().where(t.equipment.c.id == equipment_id).values(calibration_due=due)
        )

    def list(self, *, site: str | None = None) -> list[tuple[Equipment, str]]:
        eq = t.equipment
        query = sa.select(eq).order_by(eq.c.site, eq.c.equipment_class, eq.c.id)
        if site is not None:
            query = query.where(eq.c.site == site)
        return [(_equipment(r), r.description) for r in self._c.execute(query)]


def _equipment(row: sa.Row[Any]) -> Equipment:
    return Equipment(row.id, row.equipment_class, row.site, row.calibration_due)


@dataclass(frozen=True, slots=True)
class DeviationRow:
    """A deviation as kept: the domain's deviation and who opened and closed it, when."""

    deviation: Deviation
    step: str | None  # "step_id #occurrence" where it was opened from a step
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None
    closed_by: str | None


class DeviationRepository:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    def add(
        self, deviation: Deviation, *, step_record_id: int | None, at: datetime, by: str
    ) -> None:
        self._c.execute(
            t.deviation.insert().values(
                reference=deviation.reference,
                lot=deviation.lot,
                step_record_id=step_record_id,
                severity=deviation.severity.value,
                description=deviation.description,
                impact=deviation.impact,
                capa=deviation.capa,
                state=deviation.state.value,
                opened_at=at,
                opened_by=by,
            )
        )

    def _select(self) -> sa.Select[Any]:
        d, sr = t.deviation, t.step_record
        return (
            sa.select(d, sr.c.step_id, sr.c.occurrence)
            .outerjoin(sr, sr.c.id == d.c.step_record_id)
            .order_by(d.c.opened_at, d.c.reference)
        )

    def get(self, reference: str) -> DeviationRow:
        row = self._c.execute(
            self._select().where(t.deviation.c.reference == reference)
        ).one_or_none()
        if row is None:
            raise NotFound(f"deviation {reference!r} does not exist")
        return _deviation(row)

    def for_lot(self, lot: str) -> list[DeviationRow]:
        return [_deviation(r) for r in self._c.execute(
            self._select().where(t.deviation.c.lot == lot))]  # fmt: skip

    def list(self, *, states: Iterable[str] | None = None) -> list[DeviationRow]:
        query = self._select()
        if states is not None:
            query = query.where(t.deviation.c.state.in_(list(states)))
        return [_deviation(r) for r in self._c.execute(query)]

    def close(self, deviation: Deviation, *, at: datetime, by: str) -> None:
        d = t.deviation
        done = self._c.execute(
            d.update()
            .where(d.c.reference == deviation.reference, d.c.state == DeviationState.OPEN.value)
            .values(
                severity=deviation.severity.value,
                impact=deviation.impact,
                capa=deviation.capa,
                state=deviation.state.value,
                closed_at=at,
                closed_by=by,
            )
        )
        if done.rowcount != 1:
            raise ConcurrencyConflict(f"deviation {deviation.reference} was closed already")


def _deviation(row: sa.Row[Any]) -> DeviationRow:
    deviation = Deviation(
        row.reference, row.lot, Severity(row.severity), row.description, row.impact, row.capa,
        DeviationState(row.state),
    )  # fmt: skip
    step = None if row.step_id is None else f"{row.step_id} #{row.occurrence}"
    return DeviationRow(deviation, step, row.opened_at, row.opened_by, row.closed_at,
                        row.closed_by)  # fmt: skip
