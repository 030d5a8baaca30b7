"""A long audit chain verified by worker processes, on real SQLite and real PostgreSQL.

Whatever the number of workers, verification must say exactly what one stream says: the
same count, the same head, and the same first broken link named the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.integration.test_batches_on_both_engines import drop_audit_triggers
from vein2vein.domain.audit import GENESIS, ChainReport, chain_hash, record_body
from vein2vein.services.app import App
from vein2vein.store import audit as audit_store
from vein2vein.store import tables as t

RECORDS = 640
SEGMENT = 50  # 13 segments: the last one short, so boundaries fall everywhere


def fill_chain(app: App, n: int = RECORDS) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    prev, rows = GENESIS, []
    for seq in range(1, n + 1):
        body = record_body(
            seq, start + timedelta(minutes=seq), "operator.cp1", "BatchHeld", "batch",
            f"CP1-2026-{seq:05d}", {"state": "ON_HOLD"}, {"state": "IN_PROCESS"}, "per SOP",
        )  # fmt: skip
        digest = chain_hash(prev, body)
        rows.append({"seq": seq, "prev_hash": prev, "hash": digest, "body": body})
        prev = digest
    with app.engine.begin() as c:
        c.execute(t.audit_record.insert(), rows)


def verify(app: App, jobs: int) -> ChainReport:
    with app.reader() as c:
        return audit_store.verify(c, jobs=jobs, segment=SEGMENT)


def test_workers_verify_an_intact_chain_to_the_same_head_as_one_stream(app: App) -> None:
    fill_chain(app)
    seen: list[int] = []
    with app.reader() as c:
        in_workers = audit_store.verify(c, seen.append, jobs=3, segment=SEGMENT)
    alone = verify(app, jobs=1)
    assert in_workers.ok and alone.ok
    assert (
        (in_workers.checked, in_workers.last_seq, in_workers.head_hash)
        == (
            alone.checked,
            alone.last_seq,
            alone.head_hash,
        )
        == (RECORDS, RECORDS, alone.head_hash)
    )
    # Progress climbs segment by segment to the end.
    assert seen == sorted(seen) and seen[-1] == RECORDS and len(seen) >= RECORDS // SEGMENT


def test_each_worker_proves_its_segments_from_its_own_connection(app: App) -> None:
    fill_chain(app)
    with app.reader() as c:
        source = audit_store._worker_source(c)
    assert source is not None
    ranges = [(first, min(first + SEGMENT - 1, RECORDS)) for first in range(1, RECORDS, SEGMENT)]
    with audit_store._Workers(source, 2) as workers:
        proofs = list(workers.proofs(ranges))
    assert [(p["first"], p["last"]) for p in proofs if p] == ranges
    running = GENESIS
    for proof in proofs:
        assert proof is not None and proof["ok"] and proof["entry"] == running
        running = proof["head"]
    assert running == verify(app, jobs=1).head_hash


TAMPERING = {
    "body of a record in the middle of a segment": (
        "UPDATE audit_record SET body = replace(body, 'per SOP', 'waived') WHERE seq = 333"
    ),
    "body of the first record of a segment": (
        "UPDATE audit_record SET body = replace(body, 'per SOP', 'waived') WHERE seq = 301"
    ),
    "body of the last record of a segment": (
        "UPDATE audit_record SET body = replace(body, 'per SOP', 'waived') WHERE seq = 300"
    ),
    "only the stored previous hash": ("UPDATE audit_record SET prev_hash = hash WHERE seq = 420"),
    "a record deleted at a segment boundary": "DELETE FROM audit_record WHERE seq = 451",
    "the last record of a segment deleted": "DELETE FROM audit_record WHERE seq = 500",
    "the genesis record deleted": "DELETE FROM audit_record WHERE seq = 1",
    "a whole segment deleted": "DELETE FROM audit_record WHERE seq BETWEEN 101 AND 150",
    "the head record re-hashed": (
        f"UPDATE audit_record SET hash = '{'f' * 64}' WHERE seq = {RECORDS}"
    ),
}


@pytest.mark.parametrize("tampering", TAMPERING.values(), ids=list(TAMPERING))
def test_workers_find_and_name_the_first_broken_link_as_one_stream_does(
    app: App, tampering: str
) -> None:
    fill_chain(app)
    drop_audit_triggers(app)
    with app.engine.begin() as c:
        c.execute(sa.text(tampering))
    alone = verify(app, jobs=1)
    in_workers = verify(app, jobs=2)
    assert not alone.ok and alone.first_break is not None
    assert in_workers == alone


def test_when_no_worker_can_open_the_database_verification_runs_here(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_chain(app)
    unreachable = {"dialect": "postgresql", "target": "postgresql://nobody@127.0.0.1:9/none"}
    with audit_store._Workers(unreachable, 2) as workers:
        assert list(workers.proofs([(1, 50), (51, 100)])) == [None]
    monkeypatch.setattr(audit_store, "_worker_source", lambda _connection: unreachable)
    report = verify(app, jobs=2)
    assert report.ok and report.checked == RECORDS
    assert report == verify(app, jobs=1)


def test_an_impossible_number_of_jobs_is_refused_by_name(app: App) -> None:
    from vein2vein.domain.errors import InvalidInput

    with pytest.raises(InvalidInput, match="--jobs 0"):
        verify(app, jobs=0)
