"""Read-side SQL: what pages, the API and the CLI show. Nothing here writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from vein2vein.domain.audit import chain_hash
from vein2vein.domain.batch import TRANSITIONS
from vein2vein.domain.custody import CustodyEvent
from vein2vein.domain.permissions import MAKERS
from vein2vein.store import tables as t

__all__ = [
    "BatchRow",
    "LinkCheck",
    "batch_makers",
    "batch_rows",
    "check_links",
    "custody_for",
    "state_counts",
]


@dataclass(frozen=True, slots=True)
class BatchRow:
    lot: str
    coi: str
    din: str | None
    order_ref: str
    patient_pseudonym: str
    product: str
    manufacturing_site: str
    treatment_centre: str
    state: str
    state_since: datetime
    held_from: str | None
    created_at: datetime
    version: int
    weight_kg: float
    year_of_birth: int


def batch_rows(
    connection: sa.Connection,
    *,
    lot: str | None = None,
    states: Sequence[str] | None = None,
    site: str | None = None,
    limit: int | None = None,
) -> list[BatchRow]:
    b, p = t.batch, t.patient
    query = (
        sa.select(b, p.c.weight_kg, p.c.year_of_birth)
        .join(p, p.c.pseudonym == b.c.patient_pseudonym)
        .order_by(b.c.created_at.desc(), b.c.lot.desc())
    )
    if lot is not None:
        query = query.where(b.c.lot == lot)
    if states:
        query = query.where(b.c.state.in_(list(states)))
    if site is not None:
        query = query.where(sa.or_(b.c.manufacturing_site == site, b.c.treatment_centre == site))
    if limit is not None:
        query = query.limit(limit)
    return [BatchRow(**row._asdict()) for row in connection.execute(query)]


def state_counts(connection: sa.Connection) -> list[tuple[str, str, int, datetime]]:
    """(manufacturing site, state, number of batches, the earliest ``state_since`` among
    them: how long the longest-waiting one has been there)."""
    b = t.batch
    query = (
        sa.select(
            b.c.manufacturing_site,
            b.c.state,
            sa.func.count(),
            # An aggregate would lose the column's type (SQLite hands back text): keep it.
            sa.type_coerce(sa.func.min(b.c.state_since), t.UTCDateTime),
        )
        .group_by(b.c.manufacturing_site, b.c.state)
        .order_by(b.c.manufacturing_site, b.c.state)
    )
    return [(r[0], r[1], int(r[2]), r[3]) for r in connection.execute(query)]


def site_counts(
    connection: sa.Connection, open_states: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """Per site code, (open batches, all batches) made there or ordered from there — the
    batches the batch list shows for that site."""
    b = t.batch
    is_open = sa.case((b.c.state.in_(list(open_states)), 1), else_=0)
    sides = sa.union_all(
        sa.select(b.c.manufacturing_site.label("code"), is_open.label("open")),
        sa.select(b.c.treatment_centre.label("code"), is_open.label("open")),
    ).subquery()
    query = sa.select(sides.c.code, sa.func.sum(sides.c.open), sa.func.count()).group_by(
        sides.c.code
    )
    return {r[0]: (int(r[1] or 0), int(r[2])) for r in connection.execute(query)}


def custody_for(connection: sa.Connection, lot: str) -> list[CustodyEvent]:
    c = t.custody_event
    rows = connection.execute(sa.select(c).where(c.c.lot == lot).order_by(c.c.at, c.c.id))
    return [
        CustodyEvent(
            r.lot,
            r.action,
            r.from_party,
            r.to_party,
            r.location,
            r.temperature_c,
            r.scanned,
            r.at,
            r.recorded_by,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class LinkCheck:
    """Local verification of some records: each hash recomputes and links to both neighbours."""

    checked: int
    broken: list[tuple[int, str]]

    @property
    def ok(self) -> bool:
        return not self.broken


def check_links(connection: sa.Connection, seqs: Sequence[int]) -> LinkCheck:
    """Recompute records ``seqs`` and check each against the records just before and after.

    The record after matters: a record edited and re-hashed recomputes on its own and still
    links to the one before; only the next record's stored previous hash betrays it. (The
    newest record of the whole chain has no record after it; ``v2v audit verify`` prints the
    head hash to be kept outside the database for that.)
    """
    if not seqs:
        return LinkCheck(0, [])
    a = t.audit_record
    wanted = set(seqs) | {s - 1 for s in seqs if s > 1} | {s + 1 for s in seqs}
    rows: dict[int, Any] = {
        r.seq: r
        for r in connection.execute(
            sa.select(a.c.seq, a.c.prev_hash, a.c.hash, a.c.body).where(a.c.seq.in_(wanted))
        )
    }
    head = connection.execute(sa.select(sa.func.max(a.c.seq))).scalar() or 0
    broken = []
    for seq in sorted(seqs):
        row = rows.get(seq)
        if row is None:
            broken.append((seq, "record is missing"))
            continue
        after = rows.get(seq + 1)
        if chain_hash(row.prev_hash, row.body) != row.hash:
            broken.append((seq, "content no longer matches its hash"))
        elif seq > 1 and (seq - 1 not in rows or rows[seq - 1].hash != row.prev_hash):
            broken.append((seq, f"does not link to record {seq - 1}"))
        elif seq < head and (after is None or after.prev_hash != row.hash):
            broken.append(
                (seq, f"record {seq + 1} does not link to it (it was changed and re-hashed)")
            )
    return LinkCheck(len(seqs), broken)


# Recording or correcting a step of the batch record makes the batch too.
_MAKING_EVENTS = ("StepRecorded", "StepValueCorrected")


def batch_makers(connection: sa.Connection, lot: str) -> set[str]:
    """The user ids who made batch ``lot``: performed an action of permissions.MAKERS, or
    recorded or corrected a step of its record."""
    a = t.audit_record
    names = [TRANSITIONS[action].event for action in MAKERS] + list(_MAKING_EVENTS)
    return set(
        connection.execute(
            sa.select(a.c.actor).where(
                a.c.entity_type == "batch", a.c.entity_id == lot, a.c.action.in_(names)
            )
        ).scalars()
    )
