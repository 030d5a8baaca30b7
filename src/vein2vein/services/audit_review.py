"""Audit trail review (EU GMP Annex 11 §9): filter, read, record a signed review, export.

QA filters the trail by batch, person, action and period, reads old → new values and
reasons, and records that the period was reviewed: an ``AuditTrailReviewed`` record signed
with the meaning *reviewed*, naming the filter, how many records it covered and the newest
record's hash at the time. The same view exports as CSV and as PDF (WeasyPrint).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import Any

from vein2vein.domain.audit import format_time
from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.events import Event
from vein2vein.domain.people import Actor
from vein2vein.domain.signatures import Meaning
from vein2vein.services.app import App
from vein2vein.services.auth import Identity, Signing, recording_failures, signing_intent
from vein2vein.services.authorise import authorise, require
from vein2vein.services.queries import SignatureView, check_limit
from vein2vein.store import audit as audit_store
from vein2vein.store import queries as q
from vein2vein.store.audit import AuditEntry
from vein2vein.store.people import signatures_for
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "AuditFilter",
    "AuditTrailView",
    "audit_trail",
    "record_review",
    "reviews",
    "to_csv",
    "to_pdf",
]

MAX_ROWS = 5_000  # one screen or export; a longer period is reviewed in parts


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which records: of one batch (``lot``), by one person, of one action, in a period
    ``since`` ≤ time < ``until`` (whole UTC days when given as dates)."""

    lot: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        lot: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> AuditFilter:
        """From text as people type it: dates ``YYYY-MM-DD`` (``until`` is inclusive)."""
        start = _day(since, "since") if since else None
        end = _day(until, "until") + timedelta(days=1) if until else None
        if start and end and end <= start:
            raise InvalidInput(f"period: until {until} is before since {since}")
        return cls(
            lot=(lot or "").strip() or None,
            actor=(actor or "").strip() or None,
            action=(action or "").strip() or None,
            since=start,
            until=end,
        )

    def describe(self) -> str:
        parts = []
        if self.lot:
            parts.append(f"batch {self.lot}")
        if self.actor:
            parts.append(f"by {self.actor}")
        if self.action:
            parts.append(f"action {self.action}")
        if self.since:
            parts.append(f"from {self.since:%Y-%m-%d}")
        if self.until:
            parts.append(f"to {(self.until - timedelta(days=1)):%Y-%m-%d}")
        return ", ".join(parts) or "the whole trail"

    def as_json(self) -> dict[str, str | None]:
        return {
            "lot": self.lot,
            "actor": self.actor,
            "action": self.action,
            "since": format_time(self.since) if self.since else None,
            "until": format_time(self.until) if self.until else None,
        }


def _day(text: str, name: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text.strip()), time(), tzinfo=UTC)
    except ValueError:
        raise InvalidInput(f"{name} {text!r}: expected a date YYYY-MM-DD") from None


@dataclass(frozen=True, slots=True)
class AuditTrailView:
    filter: AuditFilter
    entries: list[AuditEntry]  # newest first
    total: int
    signatures: dict[int, SignatureView] = field(default_factory=dict)
    head_seq: int = 0
    head_hash: str = ""

    @property
    def truncated(self) -> bool:
        return self.total > len(self.entries)


def audit_trail(app: App, by: Actor, filt: AuditFilter, *, limit: int = MAX_ROWS) -> AuditTrailView:
    """The records ``filt`` selects, newest first, with their signatures."""
    require(by, "records.read")
    check_limit(limit)
    where = _where(filt)
    with app.reader() as connection:
        if filt.lot is not None and not q.batch_rows(connection, lot=filt.lot):
            raise InvalidInput(f"lot {filt.lot!r}: no such batch")
        entries = audit_store.read_log(connection, limit=limit, **where)
        total = audit_store.count_log(connection, **where)
        signed = signatures_for(connection, seqs=[e.seq for e in entries]) if entries else []
        head = audit_store.read_log(connection, limit=1)
    return AuditTrailView(
        filter=filt,
        entries=entries,
        total=total,
        signatures={row.audit_seq: SignatureView.of(row) for row in signed},
        head_seq=head[0].seq if head else 0,
        head_hash=head[0].hash if head else "",
    )


def _where(filt: AuditFilter) -> dict[str, Any]:
    return {
        "entity_ids": [filt.lot] if filt.lot else None,
        "actor": filt.actor,
        "action": filt.action,
        "since": format_time(filt.since) if filt.since else None,
        "until": format_time(filt.until) if filt.until else None,
    }


def record_review(
    uow: UnitOfWork,
    by: Identity,
    filt: AuditFilter,
    *,
    comment: str,
    signing: Signing | None,
) -> int:
    """Record, signed (*reviewed*), that QA reviewed the records ``filt`` selects; returns
    the review record's sequence number."""
    if not comment or not comment.strip():
        raise InvalidInput("review: say what was found (a comment is required)")
    if filt.since is None or filt.until is None:
        raise InvalidInput("review: a review covers a period: give since and until")
    if filt.until > uow.clock.now() + timedelta(days=1):
        raise InvalidInput(
            f"review: until {(filt.until - timedelta(days=1)):%Y-%m-%d} is in the future; "
            "a review covers what has happened"
        )
    where = _where(filt)
    period = f"{filt.since:%Y-%m-%d}..{(filt.until - timedelta(days=1)):%Y-%m-%d}"
    with (
        recording_failures(uow),
        authorise(uow, by.actor, "audit.review", entity=("audit-trail", period)),
    ):
        covered = audit_store.count_log(uow.connection, **where)
        newest = audit_store.read_log(uow.connection, limit=1, **where)
        intent = signing_intent(
            uow, by, signing, Meaning.REVIEWED, f"review of {period}", ("audit-trail", period)
        )
        uow.record(
            Event(
                "AuditTrailReviewed",
                by.actor.user_id,
                uow.clock.now(),
                "audit-trail",
                period,
                new={
                    "filter": filt.as_json(),
                    "records": covered,
                    "newest_seq": newest[0].seq if newest else None,
                    "newest_hash": newest[0].hash if newest else None,
                },
                reason=" ".join(comment.split()),
                signature=intent,
            )
        )
        uow.commit()
    assert uow.last_seq is not None
    return uow.last_seq


def reviews(app: App, by: Actor, *, limit: int = 50) -> AuditTrailView:
    """The recorded reviews, newest first, with their signatures."""
    require(by, "records.read")
    with app.reader() as connection:
        entries = audit_store.read_log(
            connection, entity_type="audit-trail", action="AuditTrailReviewed", limit=limit
        )
        signed = signatures_for(connection, seqs=[e.seq for e in entries]) if entries else []
    return AuditTrailView(
        filter=AuditFilter(),
        entries=entries,
        total=len(entries),
        signatures={row.audit_seq: SignatureView.of(row) for row in signed},
    )


_COLUMNS = ("seq", "at", "actor", "action", "entity_type", "entity_id", "old", "new", "reason")


def _changes(entry: AuditEntry) -> tuple[str, str]:
    keys = sorted(set(entry.old) | set(entry.new))
    old = "; ".join(f"{k}={json.dumps(entry.old[k])}" for k in keys if k in entry.old)
    new = "; ".join(f"{k}={json.dumps(entry.new[k])}" for k in keys if k in entry.new)
    return old, new


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a leading = + - @ (a formula) or tab or
    carriage return is escaped with a quote (OWASP CSV injection)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(view: AuditTrailView) -> str:
    """The view as CSV (UTF-8, one record a row, oldest first), with its signatures; text
    that a spreadsheet would run as a formula is escaped."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*_COLUMNS, "signature", "hash"])
    for e in reversed(view.entries):
        old, new = _changes(e)
        signed = view.signatures.get(e.seq)
        writer.writerow(
            [_cell(v) for v in (e.seq, e.at, e.actor, e.action, e.entity_type, e.entity_id,
                                old, new, e.reason or "", str(signed) if signed else "", e.hash)]
        )  # fmt: skip
    return out.getvalue()


def to_pdf(view: AuditTrailView, *, printed_by: Actor, printed_at: datetime) -> bytes:
    """The view as a printable PDF (A4 landscape), headed with the filter, who printed it
    and when, and the head of the chain at that moment."""
    from weasyprint import HTML

    rows = []
    for e in reversed(view.entries):
        old, new = _changes(e)
        signed = view.signatures.get(e.seq)
        sig = ""
        if signed is not None:
            colour = "#1a7f37" if signed.matches else "#b42318"
            sig = f'<div class="sig" style="color:{colour}">✍ {escape(str(signed))}</div>'
        rows.append(
            f"<tr><td>{e.seq}</td><td>{escape(e.at[:19].replace('T', ' '))}</td>"
            f"<td>{escape(e.actor)}</td><td>{escape(e.action)}</td>"
            f"<td>{escape(e.entity_type)} {escape(e.entity_id)}</td>"
            f"<td>{escape(old)}</td><td>{escape(new)}</td>"
            f"<td>{escape(e.reason or '')}{sig}</td></tr>"
        )
    more = (
        f"<p class='warn'>Showing the newest {len(view.entries)} of {view.total} records: "
        "narrow the filter to print the rest.</p>"
        if view.truncated
        else ""
    )
    html = f"""<!doctype html><html><head><meta charset="utf-8"><style>
      @page {{ size: A4 landscape; margin: 14mm;
        @bottom-right {{ content: "page " counter(page) " of " counter(pages); font-size: 8pt; }} }}
      body {{ font-family: sans-serif; font-size: 8pt; }}
      h1 {{ font-size: 14pt; margin: 0 0 4pt; }}
      table {{ width: 100%; border-collapse: collapse; }}
      th, td {{ border-bottom: 0.5pt solid #ccc; padding: 2pt 3pt; vertical-align: top;
               text-align: left; word-break: break-word; }}
      th {{ background: #eee; }}
      .sig {{ margin-top: 2pt; font-weight: bold; }}
      .warn {{ color: #b42318; }}
    </style></head><body>
    <h1>Audit trail — {escape(view.filter.describe())}</h1>
    <p>{view.total} records. Printed by {escape(printed_by.full_name)}
    ({escape(printed_by.user_id)}) at {printed_at:%Y-%m-%d %H:%M} UTC.
    Chain head at printing: record {view.head_seq}, {escape(view.head_hash[:16])}…</p>{more}
    <table><thead><tr><th>seq</th><th>when (UTC)</th><th>who</th><th>action</th>
    <th>record</th><th>old</th><th>new</th><th>reason / signature</th></tr></thead>
    <tbody>{"".join(rows)}</tbody></table></body></html>"""
    return bytes(HTML(string=html).write_pdf())
