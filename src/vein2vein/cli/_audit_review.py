"""`v2v audit trail` (filter, CSV, PDF), `v2v audit review` (signed) and `v2v audit reviews`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from vein2vein.cli import _auth
from vein2vein.cli._context import JsonOpt, _errors, _ready_app, _who
from vein2vein.cli._render import console, print_json, print_table, table
from vein2vein.domain import errors
from vein2vein.domain.permissions import rule_for
from vein2vein.services import audit_review as review
from vein2vein.services.authorise import permitted

__all__ = ["register"]

LotOpt = Annotated[str | None, typer.Option("--lot", help="Only records of this batch.")]
UserOpt = Annotated[str | None, typer.Option("--by", help="Only records by this user id.")]
ActionOpt = Annotated[
    str | None, typer.Option("--action", help="Only this action, e.g. BatchReleased.")
]
SinceOpt = Annotated[str | None, typer.Option("--since", help="From this UTC day, YYYY-MM-DD.")]
UntilOpt = Annotated[
    str | None, typer.Option("--until", help="To this UTC day, inclusive, YYYY-MM-DD.")
]


def _filter(
    lot: str | None, by: str | None, action: str | None, since: str | None, until: str | None
) -> review.AuditFilter:
    return review.AuditFilter.parse(lot=lot, actor=by, action=action, since=since, until=until)


def trail(
    lot: LotOpt = None,
    by: UserOpt = None,
    action: ActionOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Write the records as CSV.")] = None,
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Write a printable PDF here.")] = None,
    json_: JsonOpt = False,
) -> None:
    """The audit trail filtered by batch, person, action and period: old → new, reasons,
    signatures. Exports as CSV or PDF."""
    with _errors():
        application = _ready_app()
        who = _who().actor
        view = review.audit_trail(application, who, _filter(lot, by, action, since, until))
        if csv is not None:
            _write(csv, review.to_csv(view).encode("utf-8"))
        if pdf is not None:
            _write(pdf, review.to_pdf(view, printed_by=who, printed_at=application.clock.now()))
    if json_:
        print_json({"filter": view.filter.describe(), "total": view.total, "records": view.entries,
                    "signatures": view.signatures})  # fmt: skip
        return
    grid = table(
        "seq", "when (UTC)", "who", "action", "record", "old → new", "reason",
        ids=("seq", "when (UTC)", "who", "action", "record"),
    )  # fmt: skip
    for e in reversed(view.entries):
        changes = ", ".join(
            f"{k}: {e.old.get(k, '—')} → {e.new.get(k, '—')}"
            for k in sorted(set(e.old) | set(e.new))
            if e.old.get(k) != e.new.get(k)
        )
        reason = e.reason or ""
        signed = view.signatures.get(e.seq)
        if signed is not None:
            reason += f" [signed: {signed}]"
        grid.add_row(
            str(e.seq), e.at[:19].replace("T", " "), e.actor, e.action,
            f"{e.entity_type} {e.entity_id}", escape(changes), escape(reason),
        )  # fmt: skip
    print_table(grid)
    shown = f"{len(view.entries)} of {view.total}" if view.truncated else f"{view.total}"
    console.print(f"{shown} records: {view.filter.describe()}")
    for path in (csv, pdf):
        if path is not None:
            console.print(f"written: {path}")


def _write(path: Path, content: bytes) -> None:
    try:
        path.write_bytes(content)
    except OSError as exc:
        raise errors.InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None


def record(
    since: Annotated[str, typer.Option("--since", help="First UTC day reviewed, YYYY-MM-DD.")],
    until: Annotated[str, typer.Option("--until", help="Last UTC day reviewed, YYYY-MM-DD.")],
    comment: Annotated[str, typer.Option(help="What the review found.")],
    lot: LotOpt = None,
    by: UserOpt = None,
    action: ActionOpt = None,
) -> None:
    """Record, with your electronic signature (reviewed), that you reviewed this period."""
    with _errors():
        application = _ready_app()
        who = _who()
        filt = _filter(lot, by, action, since, until)
        # Ask for the signature only of someone the table lets review; the service refuses
        # (and records) anyone else before it would look at a signature.
        allowed = permitted(who.actor, rule_for("audit.review"))
        seq = review.record_review(
            application.uow(),
            who,
            filt,
            comment=comment,
            signing=_auth.signing(who, "reviewed") if allowed else None,
        )
    console.print(f"review recorded and signed: audit record {seq}")


def reviews(json_: JsonOpt = False) -> None:
    """The audit trail reviews recorded so far, newest first, with their signatures."""
    with _errors():
        view = review.reviews(_ready_app(), _who().actor)
    if json_:
        print_json({"reviews": view.entries, "signatures": view.signatures})
        return
    grid = table("seq", "period", "records", "comment", "signature", ids=("seq", "period"))
    for e in view.entries:
        signed = view.signatures.get(e.seq)
        grid.add_row(
            str(e.seq), e.entity_id, str(e.new.get("records", "")), escape(e.reason or ""),
            escape(str(signed)) if signed else "UNSIGNED",
        )  # fmt: skip
    print_table(grid)


def register(audit_app: typer.Typer) -> None:
    audit_app.command("trail")(trail)
    audit_app.command("review")(record)
    audit_app.command("reviews")(reviews)
