"""Read side of batch records: the record, review by exception, genealogy, lots, equipment,
deviations — what the pages, the PDF, the API and the CLI show (nothing here writes)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date

from vein2vein.domain.batch_record import BatchRecord, Exception_, StepEntry
from vein2vein.domain.errors import InvalidInput, NotFound
from vein2vein.domain.materials import DeviationState, Equipment, MaterialLot
from vein2vein.domain.people import Actor
from vein2vein.domain.process import ParameterSpec, StepDefinition
from vein2vein.services.app import App
from vein2vein.services.authorise import require
from vein2vein.services.mbr import EFFECTIVE
from vein2vein.services.queries import SignatureView
from vein2vein.services.records import _load
from vein2vein.store import queries as q
from vein2vein.store.mbr import MbrRepository
from vein2vein.store.people import UserRepository, signatures_for
from vein2vein.store.queries import BatchRow
from vein2vein.store.records import (
    BatchRecordRepository,
    DeviationRepository,
    DeviationRow,
    EquipmentRepository,
    MaterialRepository,
    MaterialUse,
    RecordHeader,
)

__all__ = [
    "EquipmentView",
    "Feedback",
    "LotView",
    "RecordView",
    "StepView",
    "computed_preview",
    "deviation",
    "genealogy_of_lot",
    "list_deviations",
    "list_equipment",
    "list_lots",
    "record_of",
    "record_view",
    "startable_processes",
    "value_feedback",
]


@dataclass(frozen=True, slots=True)
class StepView:
    """One step of the MBR and what was recorded for it (nothing yet, once, or repeatedly)."""

    definition: StepDefinition
    entries: list[StepEntry]
    verifications: dict[int, list[SignatureView]]  # by occurrence, oldest first
    is_next: bool
    # The audit seqs of verifications given before a later change of the step's values:
    # they stay on the record, but no longer verify what it says now.
    superseded: frozenset[int] = frozenset()

    @property
    def status(self) -> str:
        if not self.entries:
            return "next" if self.is_next else "to do"
        if self.definition.verification and any(e.verified_by is None for e in self.entries):
            return "awaits verification"
        return "done"


@dataclass(frozen=True, slots=True)
class RecordView:
    batch: BatchRow
    header: RecordHeader
    title: str
    steps: list[StepView]
    exceptions: list[Exception_]
    deviations: list[DeviationRow]
    materials: list[MaterialUse]
    complete: bool
    batch_signatures: list[SignatureView] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # user id → full name
    # The closure signatures of the batch's deviations, by reference.
    deviation_signatures: dict[str, list[SignatureView]] = field(default_factory=dict)

    def name(self, user_id: str | None) -> str:
        """``Full Name (user.id)`` of a person the record names, or the id alone."""
        if not user_id:
            return ""
        full = self.names.get(user_id)
        return f"{full} ({user_id})" if full else user_id

    @property
    def next_steps(self) -> list[StepDefinition]:
        return [s.definition for s in self.steps if s.is_next]

    @property
    def changed_after_entry(self) -> list[tuple[StepEntry, str]]:
        """(entry, parameter) of every value changed after its first entry (Annex 11 §8)."""
        return [
            (e, v.name) for s in self.steps for e in s.entries for v in e.values.values()
            if v.corrections
        ]  # fmt: skip

    @property
    def process_label(self) -> str:
        return f"{self.header.process} v{self.header.process_version}"


def record_view(app: App, by: Actor, lot: str) -> RecordView:
    """The batch record of ``lot``: every MBR step with its entries, verifications (signed),
    exceptions, deviations and the material lots consumed."""
    require(by, "records.read")
    with app.reader() as connection:
        rows = q.batch_rows(connection, lot=lot)
        if not rows:
            raise NotFound(f"batch {lot!r} does not exist")
        records = BatchRecordRepository(connection)
        header = records.header(lot)
        if header is None:
            raise NotFound(f"batch {lot} has no batch record yet: processing has not started")
        record: BatchRecord = _load(records, MbrRepository(connection), lot)
        deviations = DeviationRepository(connection).for_lot(lot)
        uses = records.lots_in(lot)
        signed = signatures_for(connection, entity_type="batch", entity_ids=[lot])
        names = {u.user_id: u.full_name for u in UserRepository(connection).list()}
        closures = signatures_for(
            connection,
            entity_type="deviation",
            entity_ids=[d.deviation.reference for d in deviations],
        )
    verifications: dict[tuple[str, int], list[SignatureView]] = {}
    batch_signatures = []
    for row in signed:
        body = json.loads(row.body) if row.body else {}
        view = SignatureView.of(row)
        if body.get("action") == "StepVerified":
            new = body.get("new", {})
            verifications.setdefault((new.get("step"), new.get("occurrence")), []).append(view)
        else:
            batch_signatures.append(view)
    superseded: set[int] = set()
    for entry in record.entries:
        sigs = verifications.get((entry.step_id, entry.occurrence), [])
        current = sigs[-1:] if entry.verified_by is not None else []
        superseded |= {sig.seq for sig in sigs if sig not in current}
    next_ids = {s.id for s in record.next_steps()}
    steps = [
        StepView(
            definition=step,
            entries=[e for e in record.entries if e.step_id == step.id],
            verifications={
                occ: sigs for (sid, occ), sigs in verifications.items() if sid == step.id
            },
            is_next=step.id in next_ids,
            superseded=frozenset(superseded),
        )
        for step in record.process.steps
    ]
    return RecordView(
        batch=rows[0],
        header=header,
        title=record.process.title,
        steps=steps,
        exceptions=record.exceptions(),
        deviations=deviations,
        materials=uses,
        complete=record.complete,
        batch_signatures=batch_signatures,
        names=names,
        deviation_signatures={
            ref: [SignatureView.of(r) for r in closures if r.entity_id == ref]
            for ref in {r.entity_id for r in closures}
        },
    )


@dataclass(frozen=True, slots=True)
class LotView:
    lot: MaterialLot
    received_at: str
    usable: bool  # released and not past its expiry today
    used_by: int  # how many batches consumed it


def list_lots(app: App, by: Actor, *, type: str | None = None) -> list[LotView]:
    require(by, "records.read")
    today = app.clock.now().date()
    with app.reader() as connection:
        lots = MaterialRepository(connection).list(type=type)
        records = BatchRecordRepository(connection)
        return [
            LotView(
                lot,
                received.strftime("%Y-%m-%d"),
                lot.usable(on=today),
                len({u.batch_lot for u in records.batches_using(lot.lot)}),
            )
            for lot, received in lots
        ]


def genealogy_of_lot(
    app: App, by: Actor, material_lot: str
) -> tuple[MaterialLot, list[MaterialUse]]:
    """A material lot and every batch that consumed it (for a recall)."""
    require(by, "records.read")
    with app.reader() as connection:
        lot = MaterialRepository(connection).get(material_lot)
        return lot, BatchRecordRepository(connection).batches_using(material_lot)


@dataclass(frozen=True, slots=True)
class EquipmentView:
    equipment: Equipment
    description: str
    calibrated: bool  # in calibration today

    @property
    def due(self) -> date:
        return self.equipment.calibration_due


def list_equipment(app: App, by: Actor, *, site: str | None = None) -> list[EquipmentView]:
    require(by, "records.read")
    today = app.clock.now().date()
    with app.reader() as connection:
        return [
            EquipmentView(e, d, e.calibrated(on=today))
            for e, d in EquipmentRepository(connection).list(site=site)
        ]


def list_deviations(app: App, by: Actor, *, state: str | None = None) -> list[DeviationRow]:
    require(by, "records.read")
    states = None
    if state is not None:
        try:
            states = [DeviationState(state.upper()).value]
        except ValueError:
            choices = ", ".join(s.value for s in DeviationState)
            raise InvalidInput(f"state {state!r}: expected one of {choices}") from None
    with app.reader() as connection:
        return DeviationRepository(connection).list(states=states)


@dataclass(frozen=True, slots=True)
class Feedback:
    """What the operator page says about a value as it is typed (the domain's classify)."""

    name: str
    unit: str
    reported: float
    outcome: str  # ok, excursion, out-of-par
    nor: str
    par: str
    bounded: bool = True  # False for a value with no range at all (nothing to compare)

    @classmethod
    def of(cls, spec: ParameterSpec, value: float) -> Feedback:
        """``value`` rounded and classified by ``spec`` (the one rule, as recording does)."""
        classified = spec.classify(value)
        bounded = any(v is not None for v in (spec.par.low, spec.par.high))
        return cls(spec.name, spec.unit, classified.reported, classified.outcome.value,
                   str(spec.nor), str(spec.par), bounded)  # fmt: skip


def value_feedback(
    app: App, by: Actor, lot: str, step_id: str, name: str, value: float
) -> Feedback:
    """Round and classify a typed value of ``name`` at ``step_id`` of batch ``lot``, as
    recording would, without recording anything."""
    require(by, "records.read")
    with app.reader() as connection:
        record = _load(BatchRecordRepository(connection), MbrRepository(connection), lot)
    return Feedback.of(record.process.step(step_id).parameter(name), value)


def record_of(app: App, lot: str) -> RecordHeader | None:
    """The header of batch ``lot``'s record (its MBR version), or None before processing."""
    with app.reader() as connection:
        return BatchRecordRepository(connection).header(lot)


def startable_processes(app: App, product: str) -> list[str]:
    """The processes with an effective MBR for ``product``: what start-processing offers."""
    with app.reader() as connection:
        return [
            r.process for r in MbrRepository(connection).list(status=EFFECTIVE, product=product)
        ]


def deviation(app: App, by: Actor, reference: str) -> DeviationRow:
    """One deviation, as listed."""
    require(by, "records.read")
    with app.reader() as connection:
        return DeviationRepository(connection).get(reference)


def computed_preview(
    app: App, by: Actor, lot: str, step_id: str, typed: dict[str, float]
) -> list[Feedback | str]:
    """The computed values of a step as the values typed so far give them (the operator
    page shows them before recording), each classified like a recorded one; the name alone
    where a value it needs is missing. Typed values that are not parameters of the step or
    not finite are left out."""
    require(by, "records.read")
    with app.reader() as connection:
        record = _load(BatchRecordRepository(connection), MbrRepository(connection), lot)
    step = record.process.step(step_id)
    names = {p.name for p in step.parameters}
    values = {n: v for n, v in typed.items() if n in names and math.isfinite(v)}
    return [
        name if value is None else Feedback.of(step.parameter(name), value)
        for name, value in record.preview(step_id, values).items()
    ]
