"""The running application: one engine, one clock, one settings object, passed down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vein2vein.config import Settings
from vein2vein.domain.audit import ChainReport
from vein2vein.domain.clock import Clock
from vein2vein.domain.errors import DatabaseNotReady
from vein2vein.domain.people import Security
from vein2vein.services.security import security_from
from vein2vein.store import audit as audit_store
from vein2vein.store.engine import (
    SCHEMA_REVISION,
    Engine,
    current_revision,
    make_engine,
    upgrade,
)
from vein2vein.store.uow import Reader, UnitOfWork

__all__ = ["App"]


@dataclass
class App:
    engine: Engine
    clock: Clock
    settings: Settings
    url: str
    security: Security

    @classmethod
    def connect(cls, url: str, *, clock: Clock, settings: Settings) -> App:
        return cls(make_engine(url), clock, settings, url, security_from(settings))

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, self.clock, self.security)

    def reader(self) -> Reader:
        return Reader(self.engine)

    def upgrade(self) -> str | None:
        return upgrade(self.engine)

    def check_ready(self) -> None:
        """Raise :class:`DatabaseNotReady` unless the schema is at the latest migration."""
        current, head = current_revision(self.engine), SCHEMA_REVISION
        if current != head:
            raise DatabaseNotReady(
                f"database {self.safe_url} is at migration {current or 'none'}, expected "
                f"{head}; run `v2v db upgrade`"
            )

    @property
    def safe_url(self) -> str:
        """The database URL with any password hidden."""
        head, sep, tail = self.url.partition("@")
        if not sep or ":" not in head.split("//", 1)[-1]:
            return self.url
        scheme, _, credentials = head.partition("//")
        return f"{scheme}//{credentials.split(':', 1)[0]}:***@{tail}"

    def verify_audit(
        self, progress: Callable[[int], None] | None = None, *, jobs: int | None = None
    ) -> ChainReport:
        """Recompute the whole audit chain; ``jobs`` worker processes for a long one
        (default: one per core, at most four)."""
        with self.reader() as connection:
            return audit_store.verify(connection, progress, jobs=jobs)

    def audit_count(self) -> int:
        with self.reader() as connection:
            return audit_store.count(connection)

    def dispose(self) -> None:
        self.engine.dispose()
