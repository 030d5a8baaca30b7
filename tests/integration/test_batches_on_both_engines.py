"""Batches, custody and the audit trail on real SQLite and real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.network import act, advance, order, people_of, scan_code, small_network
from vein2vein.domain.audit import chain_hash
from vein2vein.domain.batch import Action, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import (
    ConcurrencyConflict,
    DatabaseNotReady,
    DuplicateIdentifier,
    IdentityMismatch,
    InvalidInput,
    NotFound,
    TransitionRefused,
)
from vein2vein.services import batches as svc
from vein2vein.services import queries
from vein2vein.services.app import App
from vein2vein.store import tables as t


def counts(app: App) -> dict[str, Any]:
    with app.reader() as c:
        return {
            "audit": c.execute(sa.select(sa.func.count()).select_from(t.audit_record)).scalar(),
            "custody": c.execute(sa.select(sa.func.count()).select_from(t.custody_event)).scalar(),
            "batches": c.execute(
                sa.select(
                    t.batch.c.lot, t.batch.c.state, t.batch.c.version, t.batch.c.din
                ).order_by(t.batch.c.lot)
            ).all(),
            "issued": c.execute(
                sa.select(sa.func.count()).select_from(t.issued_identifier)
            ).scalar(),
        }


def test_a_batch_goes_vein_to_vein_with_every_hand_off_in_custody_and_audit(
    app: App, clock: FixedClock
) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.INFUSED, clock)
    view = queries.batch_view(app, lot)
    assert view.batch.state == "INFUSED"
    assert [c.action for c in view.custody] == [
        "collect",
        "dispatch",
        "receive",
        "ship",
        "deliver",
        "infuse",
    ]
    assert view.custody[-1].to_party == "patient PT-000101"
    actions = [e.action for e in reversed(view.audit)]
    assert actions[0] == "TherapyOrdered" and actions[-1] == "CustodyTransferred"
    assert "DoseInfused" in actions
    assert view.audit_check.ok
    assert app.verify_audit().ok


def test_a_refused_transition_writes_nothing(app: App) -> None:
    small_network(app)
    lot = order(app)
    before = counts(app)
    with pytest.raises(TransitionRefused, match="cannot release from ORDERED"):
        act(app, lot, Action.RELEASE, reason="looks fine")
    with pytest.raises(InvalidInput, match="needs a reason"):
        act(app, lot, Action.HOLD)
    with pytest.raises(NotFound, match="NOPE-1"):
        act(app, "NOPE-1", Action.HOLD, reason="x")
    assert counts(app) == before


def test_a_refused_collection_does_not_use_up_a_din(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.COLLECTED)
    before = counts(app)
    with pytest.raises(TransitionRefused):
        act(app, lot, Action.COLLECT)
    assert counts(app) == before


def test_a_scan_of_another_patients_bag_at_receipt_is_a_hard_stop_that_is_recorded(
    app: App,
) -> None:
    small_network(app)
    mine, other = order(app, "PT-000101"), order(app, "PT-000202")
    advance(app, mine, BatchState.IN_TRANSIT)
    advance(app, other, BatchState.IN_TRANSIT)
    before = counts(app)
    with pytest.raises(IdentityMismatch, match="does not belong to this batch"):
        act(app, mine, Action.RECEIVE, scan=scan_code(app, other))
    after = counts(app)
    assert after["batches"] == before["batches"] and after["custody"] == before["custody"]
    assert after["audit"] == before["audit"] + 1
    (entry,) = queries.audit_log(app, lot=mine, limit=1)
    assert entry.action == "IdentityMismatchDetected" and entry.actor == "operator.cp1"
    assert entry.new["during"] == "receive" and entry.new["state"] == "IN_TRANSIT"
    assert app.verify_audit().ok


def test_a_spot_check_scan_is_audited_whether_it_matches_or_not(app: App) -> None:
    small_network(app)
    lot, other = order(app, "PT-000101"), order(app, "PT-000202")
    op = people_of(app)["operator.cp1"].actor
    result = svc.scan_identity(app.uow(), lot, scan_code(app, lot), by=op, location="QC")
    assert result.matches
    with pytest.raises(IdentityMismatch):
        svc.scan_identity(app.uow(), lot, scan_code(app, other), by=op)
    actions = [e.action for e in queries.audit_log(app, lot=lot, limit=2)]
    assert actions == ["IdentityMismatchDetected", "IdentityVerified"]


def test_a_stale_write_is_refused_and_nothing_is_overwritten(app: App) -> None:
    small_network(app)
    lot = order(app)
    seen = queries.batch_view(app, lot).batch.version
    act(app, lot, Action.HOLD, reason="check", expected_version=seen)
    before = counts(app)
    with pytest.raises(ConcurrencyConflict, match=f"you saw version {seen}"):
        act(
            app,
            lot,
            Action.TERMINATE,
            reason="withdrawn",
            expected_version=seen,
        )
    assert counts(app) == before


def run_together(*calls: Callable[[], object]) -> list[object]:
    """Start every call at the same moment on its own thread; return results or errors."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # collected and asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_writers_on_one_batch_one_wins_and_the_other_gets_a_conflict(app: App) -> None:
    small_network(app)
    lot = order(app)
    seen = queries.batch_view(app, lot).batch.version

    def hold() -> object:
        return act(app, lot, Action.HOLD, reason="hold", expected_version=seen)

    def terminate() -> object:
        return act(app, lot, Action.TERMINATE, reason="stop", expected_version=seen)

    results = run_together(hold, terminate)
    conflicts = [r for r in results if isinstance(r, ConcurrencyConflict)]
    wins = [r for r in results if not isinstance(r, Exception)]
    assert len(conflicts) == 1 and len(wins) == 1, results
    assert queries.batch_view(app, lot).batch.version == seen + 1
    assert app.verify_audit().ok


def test_many_concurrent_writers_leave_one_intact_chain(app: App) -> None:
    small_network(app)
    lots = [order(app, f"PT-{i:06d}") for i in range(6)]
    before = app.audit_count()
    rounds = 5

    def worker(lot: str) -> Callable[[], object]:
        def run() -> object:
            for i in range(rounds):
                act(app, lot, Action.HOLD, reason=f"h{i}")
                act(app, lot, Action.RESUME, reason=f"r{i}")
            return lot

        return run

    results = run_together(*(worker(lot) for lot in lots))
    assert results == lots
    report = app.verify_audit()
    assert report.ok, report.first_break
    assert report.checked == before + len(lots) * rounds * 2
    with app.reader() as c:
        seqs = c.execute(sa.select(t.audit_record.c.seq).order_by(t.audit_record.c.seq)).scalars()
        assert list(seqs) == list(range(1, report.checked + 1))


def test_the_audit_trail_refuses_update_and_delete(app: App) -> None:
    small_network(app)
    for statement in (
        "UPDATE audit_record SET body = '{}' WHERE seq = 1",
        "DELETE FROM audit_record WHERE seq = 1",
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), app.engine.begin() as c:
            c.execute(sa.text(statement))
    assert app.verify_audit().ok


def drop_audit_triggers(app: App) -> None:
    """What a rogue DBA would do before editing the trail."""
    with app.engine.begin() as c:
        if c.dialect.name == "postgresql":
            c.execute(sa.text("DROP TRIGGER audit_record_no_update_delete ON audit_record"))
        else:
            c.execute(sa.text("DROP TRIGGER audit_record_no_update"))
            c.execute(sa.text("DROP TRIGGER audit_record_no_delete"))


def test_a_record_altered_by_a_rogue_dba_is_found_by_verify(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.ACCEPTED)
    (entry,) = [
        e for e in queries.audit_log(app, lot=lot) if e.action == "StartingMaterialAccepted"
    ]
    drop_audit_triggers(app)
    with app.engine.begin() as c:
        c.execute(
            sa.text(
                "UPDATE audit_record SET body = replace(body, 'per SOP', 'waived') WHERE seq = :s"
            ),
            {"s": entry.seq},
        )
    report = app.verify_audit()
    assert not report.ok and report.first_break is not None
    assert report.first_break.seq == entry.seq
    assert "content changed" in report.first_break.what and "waived" in report.first_break.what
    assert report.checked == entry.seq - 1
    # The generated columns follow the body, so nothing else betrays the edit: only the hash.
    assert not queries.batch_view(app, lot).audit_check.ok


def test_a_record_edited_and_re_hashed_shows_on_its_own_batch_page(app: App) -> None:
    small_network(app)
    lot, other = order(app, "PT-000001"), order(app, "PT-000002")
    advance(app, lot, BatchState.ACCEPTED)
    advance(app, other, BatchState.ACCEPTED)  # the record after the edited one is another batch's
    (entry,) = [
        e for e in queries.audit_log(app, lot=lot) if e.action == "StartingMaterialAccepted"
    ]
    drop_audit_triggers(app)
    with app.engine.begin() as c:
        row = c.execute(
            sa.text("SELECT prev_hash, body FROM audit_record WHERE seq = :s"), {"s": entry.seq}
        ).one()
        body = row.body.replace("per SOP", "waived")
        c.execute(
            sa.text("UPDATE audit_record SET body = :b, hash = :h WHERE seq = :s"),
            {"b": body, "h": chain_hash(row.prev_hash, body), "s": entry.seq},
        )
    check = queries.batch_view(app, lot).audit_check
    assert not check.ok
    assert check.broken == [
        (entry.seq, f"record {entry.seq + 1} does not link to it (it was changed and re-hashed)")
    ]
    report = app.verify_audit()
    assert report.first_break is not None and report.first_break.seq == entry.seq + 1


def test_a_deleted_record_is_found_by_verify(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RECEIVED)
    drop_audit_triggers(app)
    with app.engine.begin() as c:
        c.execute(sa.text("DELETE FROM audit_record WHERE seq = 5"))
    report = app.verify_audit()
    assert report.first_break is not None and report.first_break.seq == 6
    assert "sequence gap" in report.first_break.what


def test_a_din_is_never_issued_twice_even_if_the_counter_is_tampered_with(app: App) -> None:
    small_network(app)
    first, second = order(app, "PT-000101"), order(app, "PT-000202")
    advance(app, first, BatchState.COLLECTED)
    with app.engine.begin() as c:
        c.execute(sa.text("UPDATE identifier_sequence SET last = 0 WHERE kind = 'DIN'"))
    before = counts(app)
    with pytest.raises(DuplicateIdentifier, match="was issued before"):
        act(app, second, Action.COLLECT)
    assert counts(app) == before


def test_dins_are_numbered_per_fin_and_year(app: App, clock: FixedClock) -> None:
    small_network(app)
    lots = [order(app, f"PT-{i:06d}") for i in range(3)]
    dins = [act(app, lot, Action.COLLECT).din for lot in lots]
    assert [d.value for d in dins if d] == ["A999926000001", "A999926000002", "A999926000003"]


def test_an_unmigrated_database_is_named_with_the_fix(database_url: str, clock: FixedClock) -> None:
    from vein2vein.config import Settings

    bare = App.connect(database_url, clock=clock, settings=Settings(database_url=database_url))
    try:
        with pytest.raises(DatabaseNotReady, match="run `v2v db upgrade`"):
            bare.check_ready()
    finally:
        bare.dispose()


def test_an_order_for_an_unknown_site_or_a_site_that_does_not_manufacture_is_refused(
    app: App,
) -> None:
    small_network(app)
    before = counts(app)
    common: dict[str, Any] = {
        "pseudonym": "PT-000101",
        "year_of_birth": 1970,
        "weight_kg": 70.0,
        "product": "CART-CD19",
        "by": people_of(app).coordinator.actor,
    }
    with pytest.raises(NotFound, match="site 'XX9'"):
        svc.place_order(app.uow(), treatment_centre="XX9", manufacturing_site="CP1", **common)
    with pytest.raises(InvalidInput, match="does not manufacture"):
        svc.place_order(app.uow(), treatment_centre="TC1", manufacturing_site="TC2", **common)
    assert counts(app) == before


def test_the_network_overview_ages_and_site_counts_agree_with_the_batches(
    app: App, clock: FixedClock
) -> None:
    small_network(app)
    first = order(app, "PT-000101")
    clock.advance(timedelta(hours=30))
    order(app, "PT-000202", centre="TC2")
    advance(app, first, BatchState.COLLECTED)
    clock.advance(timedelta(hours=5))
    overview = queries.network_overview(app)
    assert overview.oldest_hours[("CP1", "ORDERED")] == pytest.approx(5.0)
    assert overview.oldest_hours[("CP1", "COLLECTED")] == pytest.approx(5.0)
    assert overview.oldest_hours[("", "ORDERED")] == pytest.approx(5.0)
    rows = queries.list_batches(app)
    for code in ("CP1", "TC1", "TC2"):
        mine = [r for r in rows if code in (r.manufacturing_site, r.treatment_centre)]
        assert overview.site_counts[code] == (len(mine), len(mine))  # all still open
