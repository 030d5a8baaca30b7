"""Repositories: load and save the domain's records over one SQLAlchemy connection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from vein2vein.domain.batch import Batch, BatchState
from vein2vein.domain.custody import CustodyEvent
from vein2vein.domain.errors import ConcurrencyConflict, DuplicateIdentifier, NotFound
from vein2vein.domain.identity import ChainOfIdentityId, Din
from vein2vein.domain.patient import Patient, Site, SiteKind, TherapyOrder
from vein2vein.store import tables as t

__all__ = [
    "BatchRepository",
    "OrderRepository",
    "PatientRepository",
    "SequenceAllocator",
    "SiteRepository",
]


class SiteRepository:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    def add(self, site: Site) -> None:
        if self.find(site.code) is not None:
            raise DuplicateIdentifier(f"site {site.code} exists already")
        self._c.execute(
            t.site.insert().values(
                code=site.code, name=site.name, kind=site.kind.value, fin=site.fin
            )
        )

    def find(self, code: str) -> Site | None:
        row = self._c.execute(sa.select(t.site).where(t.site.c.code == code)).one_or_none()
        return None if row is None else _site(row)

    def get(self, code: str) -> Site:
        site = self.find(code)
        if site is None:
            raise NotFound(f"site {code!r} does not exist")
        return site

    def list(self) -> list[Site]:
        rows = self._c.execute(sa.select(t.site).order_by(t.site.c.kind, t.site.c.code))
        return [_site(r) for r in rows]


def _site(row: sa.Row[Any]) -> Site:
    return Site(row.code, row.name, SiteKind(row.kind), row.fin)


class PatientRepository:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    def add(self, patient: Patient, at: datetime) -> None:
        if self.find(patient.pseudonym) is not None:
            raise DuplicateIdentifier(f"patient {patient.pseudonym} exists already")
        self._c.execute(
            t.patient.insert().values(
                pseudonym=patient.pseudonym,
                year_of_birth=patient.year_of_birth,
                weight_kg=patient.weight_kg,
                created_at=at,
            )
        )

    def set_weight(self, pseudonym: str, weight_kg: float) -> None:
        self._c.execute(
            t.patient.update().where(t.patient.c.pseudonym == pseudonym).values(weight_kg=weight_kg)
        )

    def find(self, pseudonym: str) -> Patient | None:
        row = self._c.execute(
            sa.select(t.patient).where(t.patient.c.pseudonym == pseudonym)
        ).one_or_none()
        if row is None:
            return None
        return Patient(row.pseudonym, row.year_of_birth, row.weight_kg)


class OrderRepository:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    def add(self, order: TherapyOrder) -> None:
        if self.find(order.reference) is not None:
            raise DuplicateIdentifier(f"order {order.reference} exists already")
        self._c.execute(
            t.therapy_order.insert().values(
                reference=order.reference,
                patient_pseudonym=order.patient_pseudonym,
                product=order.product,
                treatment_centre=order.treatment_centre,
                manufacturing_site=order.manufacturing_site,
                ordered_at=order.ordered_at,
                ordered_by=order.ordered_by,
            )
        )

    def find(self, reference: str) -> TherapyOrder | None:
        row = self._c.execute(
            sa.select(t.therapy_order).where(t.therapy_order.c.reference == reference)
        ).one_or_none()
        if row is None:
            return None
        return TherapyOrder(
            row.reference,
            row.patient_pseudonym,
            row.product,
            row.treatment_centre,
            row.manufacturing_site,
            row.ordered_at,
            row.ordered_by,
        )


class BatchRepository:
    """Batches, saved with optimistic locking on ``version``.

    The repository remembers the version each batch had when it was loaded; saving a batch
    whose row has moved on since is refused with :class:`ConcurrencyConflict`.
    """

    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._loaded: dict[str, tuple[Batch, int]] = {}
        self._new: list[Batch] = []

    @property
    def seen(self) -> list[Batch]:
        return self._new + [b for b, _ in self._loaded.values()]

    def add(self, batch: Batch) -> None:
        self._new.append(batch)

    def get(self, lot: str, *, for_update: bool = False) -> Batch:
        query = sa.select(t.batch).where(t.batch.c.lot == lot)
        if for_update:
            query = query.with_for_update()
        row = self._c.execute(query).one_or_none()
        if row is None:
            raise NotFound(f"batch {lot!r} does not exist")
        batch = _batch(row)
        self._loaded[lot] = (batch, batch.version)
        return batch

    def find_lot_by_identity(self, identity: Din | ChainOfIdentityId) -> str | None:
        column = t.batch.c.din if isinstance(identity, Din) else t.batch.c.coi
        return self._c.execute(
            sa.select(t.batch.c.lot).where(column == identity.value)
        ).scalar_one_or_none()

    def flush(self) -> None:
        """Write new and changed batches and their custody events."""
        for batch in self._new:
            self._c.execute(t.batch.insert().values(**_batch_values(batch)))
            self._add_custody(batch.custody_events)
        for batch, loaded_version in self._loaded.values():
            if batch.version == loaded_version:
                continue
            result = self._c.execute(
                t.batch.update()
                .where(t.batch.c.lot == batch.lot, t.batch.c.version == loaded_version)
                .values(**_batch_values(batch))
            )
            if result.rowcount != 1:
                current = self._c.execute(
                    sa.select(t.batch.c.version).where(t.batch.c.lot == batch.lot)
                ).scalar_one_or_none()
                raise ConcurrencyConflict(
                    f"batch {batch.lot} was changed by someone else (you read version "
                    f"{loaded_version}, it is now at version {current}); reload and try again"
                )
            self._add_custody(batch.custody_events)

    def _add_custody(self, events: Sequence[CustodyEvent]) -> None:
        if not events:
            return
        self._c.execute(
            t.custody_event.insert(),
            [
                {
                    "lot": e.lot,
                    "action": e.action,
                    "from_party": e.from_party,
                    "to_party": e.to_party,
                    "location": e.location,
                    "temperature_c": e.temperature_c,
                    "scanned": e.scanned,
                    "at": e.at,
                    "recorded_by": e.recorded_by,
                }
                for e in events
            ],
        )


def _batch_values(batch: Batch) -> dict[str, Any]:
    return {
        "lot": batch.lot,
        "coi": batch.coi.value,
        "din": batch.din.value if batch.din else None,
        "order_ref": batch.order_ref,
        "patient_pseudonym": batch.patient_pseudonym,
        "product": batch.product,
        "manufacturing_site": batch.manufacturing_site,
        "treatment_centre": batch.treatment_centre,
        "state": batch.state.value,
        "state_since": batch.state_since,
        "held_from": batch.held_from.value if batch.held_from else None,
        "created_at": batch.created_at,
        "version": batch.version,
    }


def _batch(row: sa.Row[Any]) -> Batch:
    return Batch(
        lot=row.lot,
        coi=ChainOfIdentityId(row.coi),
        din=Din(row.din) if row.din else None,
        order_ref=row.order_ref,
        patient_pseudonym=row.patient_pseudonym,
        product=row.product,
        manufacturing_site=row.manufacturing_site,
        treatment_centre=row.treatment_centre,
        state=BatchState(row.state),
        state_since=row.state_since,
        held_from=BatchState(row.held_from) if row.held_from else None,
        created_at=row.created_at,
        version=row.version,
    )


class SequenceAllocator:
    """Hands out sequence numbers per (kind, scope, year), never the same one twice.

    The counter row is locked by the UPDATE until commit (PostgreSQL), or the whole write
    transaction holds SQLite's write lock; every issued number is also inserted into
    ``issued_identifier``, whose primary key refuses a duplicate whatever the counter says.
    """

    def __init__(self, connection: sa.Connection, now: datetime) -> None:
        self._c = connection
        self._now = now

    def next_sequence(self, kind: str, fin: str, year: int) -> int:
        seq = t.identifier_sequence
        key = (seq.c.kind == kind, seq.c.scope == fin, seq.c.year == year)
        value = self._c.execute(
            seq.update().where(*key).values(last=seq.c.last + 1).returning(seq.c.last)
        ).scalar_one_or_none()
        if value is None:
            value = 1
            try:
                with self._c.begin_nested():
                    self._c.execute(seq.insert().values(kind=kind, scope=fin, year=year, last=1))
            except sa.exc.IntegrityError:
                raise ConcurrencyConflict(
                    f"{kind} sequence for {fin}/{year:02d} was started by another writer at "
                    "the same moment; try again"
                ) from None
        try:
            with self._c.begin_nested():
                self._c.execute(
                    t.issued_identifier.insert().values(
                        kind=kind, scope=fin, year=year, sequence=value, issued_at=self._now
                    )
                )
        except sa.exc.IntegrityError:
            raise DuplicateIdentifier(
                f"{kind} {fin}/{year:02d} sequence {value} was issued before; the sequence "
                "counter was tampered with"
            ) from None
        return value
