"""The repository of master batch record versions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa

from vein2vein.domain.errors import ConcurrencyConflict, NotFound
from vein2vein.store import tables as t

__all__ = ["MbrRecord", "MbrRepository", "set_version_status"]


@dataclass(frozen=True, slots=True)
class MbrRecord:
    process: str
    version: int
    product: str
    title: str
    status: str  # DRAFT, EFFECTIVE, SUPERSEDED
    source: str
    content_hash: str
    imported_at: datetime
    imported_by: str
    approved_at: datetime | None = None
    approved_by: str | None = None


class MbrRepository:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    def add(self, record: MbrRecord) -> None:
        self._c.execute(t.process_definition.insert().values(**asdict(record)))

    def versions(self, process: str) -> list[MbrRecord]:
        pd = t.process_definition
        rows = self._c.execute(sa.select(pd).where(pd.c.process == process).order_by(pd.c.version))
        return [MbrRecord(**r._mapping) for r in rows]

    def list(self, *, status: str | None = None, product: str | None = None) -> list[MbrRecord]:
        """Every version (of ``product``, in ``status``, when given), by process and version."""
        pd = t.process_definition
        query = sa.select(pd).order_by(pd.c.process, pd.c.version)
        if status is not None:
            query = query.where(pd.c.status == status)
        if product is not None:
            query = query.where(pd.c.product == product)
        return [MbrRecord(**r._mapping) for r in self._c.execute(query)]

    def get(self, process: str, version: int) -> MbrRecord:
        pd = t.process_definition
        row = self._c.execute(
            sa.select(pd).where(pd.c.process == process, pd.c.version == version)
        ).one_or_none()
        if row is None:
            raise NotFound(f"master batch record {process} v{version} does not exist")
        return MbrRecord(**row._mapping)

    def set_status(
        self,
        process: str,
        version: int,
        *,
        was: str,
        now: str,
        approved_at: datetime | None = None,
        approved_by: str | None = None,
    ) -> None:
        """Move a version from ``was`` to ``now``; refused if it is no longer ``was``."""
        set_version_status(
            self._c, t.process_definition.c.process, process, version, was=was, now=now,
            approved_at=approved_at, approved_by=approved_by, noun="master batch record",
        )  # fmt: skip


def set_version_status(
    connection: sa.Connection,
    name_column: sa.Column[str],
    name: str,
    version: int,
    *,
    was: str,
    now: str,
    approved_at: datetime | None,
    approved_by: str | None,
    noun: str,
) -> None:
    """Move a version of a change-controlled document (its table is ``name_column``'s) from
    ``was`` to ``now``, stamping the approval; refused if it is no longer ``was`` (someone
    else moved it meanwhile)."""
    table = name_column.table
    values: dict[str, object] = {"status": now}
    if approved_at is not None:
        values |= {"approved_at": approved_at, "approved_by": approved_by}
    done = connection.execute(
        sa.update(table)
        .where(name_column == name, table.c.version == version, table.c.status == was)
        .values(**values)
    )
    if done.rowcount != 1:
        raise ConcurrencyConflict(f"{noun} {name} v{version} is no longer {was}; reload")
