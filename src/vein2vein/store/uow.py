"""The unit of work: one transaction, its repositories, and its audit records.

Only the unit of work commits. At commit it saves the batches it handed out (refusing stale
ones), then turns every event raised in the transaction into an audit record on the hash
chain, then commits: the change and its audit record land together or not at all.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import sqlalchemy as sa

from vein2vein.domain.clock import Clock
from vein2vein.domain.errors import ConcurrencyConflict, DatabaseUnavailable
from vein2vein.domain.events import Event
from vein2vein.domain.people import Security
from vein2vein.store import audit
from vein2vein.store.engine import WRITE, connect
from vein2vein.store.mbr import MbrRepository
from vein2vein.store.people import CredentialRepository, UserRepository
from vein2vein.store.qc import QcRepository, SpecRepository
from vein2vein.store.records import (
    BatchRecordRepository,
    DeviationRepository,
    EquipmentRepository,
    MaterialRepository,
)
from vein2vein.store.repositories import (
    BatchRepository,
    OrderRepository,
    PatientRepository,
    SequenceAllocator,
    SiteRepository,
)

__all__ = ["Reader", "UnitOfWork"]


#: PostgreSQL's "try again" errors: a serialization failure, a deadlock.
_CONFLICTS = ("40001", "40P01")


def _conflict(exc: sa.exc.DBAPIError) -> ConcurrencyConflict:
    return ConcurrencyConflict(
        "another writer changed the same records at the same moment; nothing was "
        f"saved, try again ({type(exc.orig).__name__})"
    )


class UnitOfWork:
    """``with uow: ...; uow.commit()`` — anything not committed is rolled back on exit."""

    connection: sa.Connection
    sites: SiteRepository
    patients: PatientRepository
    orders: OrderRepository
    batches: BatchRepository
    sequences: SequenceAllocator
    users: UserRepository
    credentials: CredentialRepository
    mbrs: MbrRepository
    records: BatchRecordRepository
    materials: MaterialRepository
    equipment: EquipmentRepository
    deviations: DeviationRepository

    def __init__(self, engine: sa.Engine, clock: Clock, security: Security) -> None:
        self._engine = engine
        self.clock = clock
        self.security = security
        self._events: list[Event] = []
        self._transaction: sa.RootTransaction | None = None
        # The sequence number of the last audit record the latest commit appended.
        self.last_seq: int | None = None

    def __enter__(self) -> Self:
        self.connection = connect(self._engine).execution_options(**{WRITE: True})
        try:
            self._transaction = self.connection.begin()
        except sa.exc.OperationalError as exc:
            self.connection.close()
            raise DatabaseUnavailable(f"cannot start a transaction: {exc.orig}") from exc
        self._events = []
        self.sites = SiteRepository(self.connection)
        self.patients = PatientRepository(self.connection)
        self.orders = OrderRepository(self.connection)
        self.batches = BatchRepository(self.connection)
        self.sequences = SequenceAllocator(self.connection, self.clock.now())
        self.users = UserRepository(self.connection)
        self.credentials = CredentialRepository(self.connection)
        self.mbrs = MbrRepository(self.connection)
        self.records = BatchRecordRepository(self.connection)
        self.materials = MaterialRepository(self.connection)
        self.equipment = EquipmentRepository(self.connection)
        self.deviations = DeviationRepository(self.connection)
        self.specs = SpecRepository(self.connection)
        self.qc = QcRepository(self.connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._transaction is not None and self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self._transaction = None
            self.connection.close()

    def record(self, event: Event) -> None:
        """Add an event that belongs to no loaded batch (a new order, a site, a mismatch)."""
        self._events.append(event)

    def commit(self) -> None:
        assert self._transaction is not None, "commit outside `with`"
        committing = False
        try:
            self.batches.flush()
            events = list(self._events)
            for batch in self.batches.seen:
                events.extend(batch.events)
            self.last_seq = audit.append_events(self.connection, events)
            committing = True
            self._transaction.commit()
        except sa.exc.IntegrityError as exc:
            raise _conflict(exc) from exc
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) in _CONFLICTS:
                raise _conflict(exc) from exc
            if committing:  # the answer to COMMIT itself was lost: it may have happened
                raise DatabaseUnavailable(
                    f"the database went away while saving ({exc.orig}); whether it saved is "
                    "unknown: check before trying again"
                ) from exc
            raise DatabaseUnavailable(f"nothing was saved: {exc.orig}") from exc
        for batch in self.batches.seen:
            batch.events.clear()
            batch.custody_events.clear()
        self._events.clear()

    def rollback(self) -> None:
        if self._transaction is not None and self._transaction.is_active:
            self._transaction.rollback()


class Reader:
    """A read-only connection for queries: ``with Reader(engine) as connection: ...``."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def __enter__(self) -> sa.Connection:
        self._connection = connect(self._engine)
        return self._connection

    def __exit__(self, *exc: object) -> None:
        self._connection.close()
