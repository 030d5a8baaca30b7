"""The audit ledger: append to the hash chain in the writer's transaction; read and verify it."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vein2vein.domain.audit import (
    GENESIS,
    ChainReport,
    chain_hash,
    record_body,
    verify_chain,
)
from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.events import Event
from vein2vein.domain.signatures import SignatureManifest, content_hash
from vein2vein.store import tables as t

__all__ = ["AuditEntry", "append_events", "iter_chain", "read_log", "verify"]

# Any fixed 64-bit number: the key of the PostgreSQL advisory lock that serialises writers
# at the head of the chain, so two transactions never both link to the same previous record.
_CHAIN_LOCK = 0x76327641_75646974  # "v2vAudit"


def append_events(connection: sa.Connection, events: Sequence[Event]) -> int | None:
    """Append one audit record per event, in order, to the chain; call inside the writer's
    transaction, just before its commit, so the chain's head is held for as short as possible.
    Returns the sequence number of the last record appended (None when there were none).
    """
    if not events:
        return None
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_CHAIN_LOCK)))
    # On SQLite the writer already holds the database's write lock (BEGIN IMMEDIATE).
    head = connection.execute(
        sa.select(t.audit_record.c.seq, t.audit_record.c.hash)
        .order_by(t.audit_record.c.seq.desc())
        .limit(1)
    ).one_or_none()
    seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
    rows, signatures = [], []
    for event in events:
        seq += 1
        fields = (
            seq,
            event.at,
            event.actor,
            event.name,
            event.entity_type,
            event.entity_id,
            event.new,
            event.old,
            event.reason,
        )
        manifest = None
        if event.signature is not None:
            # The signature covers the record as it would read without it.
            intent = event.signature
            manifest = SignatureManifest(
                intent.signer_id,
                intent.signer_name,
                intent.meaning,
                event.at,
                content_hash(record_body(*fields)),
            )
            signatures.append(
                {
                    "audit_seq": seq,
                    "entity_type": event.entity_type,
                    "entity_id": event.entity_id,
                    "signer_id": manifest.signer_id,
                    "signer_name": manifest.signer_name,
                    "meaning": manifest.meaning.value,
                    "signed_at": manifest.signed_at,
                    "record_hash": manifest.record_hash,
                }
            )
        body = record_body(*fields, None if manifest is None else manifest.as_json())
        digest = chain_hash(prev, body)
        rows.append({"seq": seq, "prev_hash": prev, "hash": digest, "body": body})
        prev = digest
    connection.execute(t.audit_record.insert(), rows)
    if signatures:
        connection.execute(t.signature.insert(), signatures)
    return seq


def iter_chain(
    connection: sa.Connection, batch_size: int = 20_000
) -> Generator[tuple[int, str, str, str], None, None]:
    """Every record as ``(seq, prev_hash, hash, body)`` in sequence order, streamed.

    Close the generator when stopping early (``contextlib.closing``): that closes the
    server-side cursor on PostgreSQL before its connection goes away.
    """
    with _chain_rows(connection, batch_size) as rows:
        yield from rows


@contextmanager
def _chain_rows(
    connection: sa.Connection,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
    after_seq: int = 0,
) -> Iterator[Iterator[tuple[int, str, str, str]]]:
    """The chain after ``after_seq`` as one flat iterator over streamed partitions; the
    cursor closes on exit.

    No Python frame runs per row (``chain.from_iterable`` is C), which is a quarter of the
    time of verifying a long chain. ``progress`` is called with the number of rows handed
    out before each further partition is fetched, each time it passes a multiple of 50,000.
    """
    a = t.audit_record
    result = connection.execution_options(stream_results=True, yield_per=batch_size).execute(
        sa.select(a.c.seq, a.c.prev_hash, a.c.hash, a.c.body)
        .where(a.c.seq > after_seq)
        .order_by(a.c.seq)
    )
    partitions: Iterable[Sequence[Any]] = result.partitions(batch_size)
    if progress is not None:
        partitions = _counted(partitions, progress)
    try:
        yield chain.from_iterable(partitions)
    finally:
        result.close()


def verify(
    connection: sa.Connection,
    progress: Callable[[int], None] | None = None,
    *,
    jobs: int | None = None,
    segment: int = 100_000,
) -> ChainReport:
    """Recompute the whole chain; ``progress`` is called with the count checked so far.

    A chain longer than two segments is verified by ``jobs`` worker processes (default:
    one per core, at most four), each proving whole segments on its own
    (store/_chain_worker.py); the segments are then joined in order, each one's first
    previous hash against the hash the segment before ended with. From the first segment
    that does not join or does not verify, and whenever a worker cannot run, the rest of the
    chain is verified here in one stream, so a broken link is always found and named by the
    same code, whatever ``jobs`` is.
    """
    jobs = min(4, os.cpu_count() or 1) if jobs is None else jobs
    if jobs < 1 or segment < 1:
        raise InvalidInput(f"audit verify: --jobs {jobs} must be at least 1 (segment {segment})")
    last = connection.execute(sa.select(sa.func.max(t.audit_record.c.seq))).scalar() or 0
    source = _worker_source(connection)
    after, running = 0, GENESIS
    if jobs > 1 and source is not None and last > 2 * segment:
        ranges = [(first, min(first + segment - 1, last)) for first in range(1, last + 1, segment)]
        with _Workers(source, min(jobs, len(ranges))) as workers:
            for proof in workers.proofs(ranges):
                if proof is None or not proof["ok"] or proof["entry"] != running:
                    break
                after, running = proof["last"], proof["head"]
                if progress is not None:
                    progress(after)
        if after == last:
            return ChainReport(last, last, running)
    counted = None if progress is None else (lambda n: progress(after + n))
    with _chain_rows(connection, _VERIFY_BATCH, counted, after) as rows:
        tail = verify_chain(rows, after_seq=after, prev_hash=running)
    return ChainReport(after + tail.checked, tail.last_seq, tail.head_hash, tail.first_break)


# Rows fetched per round trip when verifying; 50,000 also paces the progress reports.
_VERIFY_BATCH = 25_000


def _worker_source(connection: sa.Connection) -> dict[str, str] | None:
    """Where a worker process finds this database, or None when it cannot (in memory)."""
    url = connection.engine.url
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return {"dialect": "sqlite", "target": str(Path(database).expanduser().resolve())}
    if backend == "postgresql":
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return {"dialect": "postgresql", "target": libpq}
    return None


class _Workers:
    """Worker processes (store/_chain_worker.py), each with one segment at a time."""

    def __init__(self, source: dict[str, str], count: int) -> None:
        self._source = json.dumps(source)
        self._count = count
        self._processes: list[subprocess.Popen[str]] = []

    def __enter__(self) -> _Workers:
        for _ in range(self._count):
            process = subprocess.Popen(
                [sys.executable, "-m", "vein2vein.store._chain_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            self._processes.append(process)
            self._send(process, self._source)
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._processes:
            with suppress(OSError):
                process.stdin.close()  # type: ignore[union-attr]
        for process in self._processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            with suppress(OSError):
                process.stdout.close()  # type: ignore[union-attr]

    @staticmethod
    def _send(process: subprocess.Popen[str], line: str) -> None:
        assert process.stdin is not None
        process.stdin.write(line + "\n")
        process.stdin.flush()

    def proofs(self, ranges: Sequence[tuple[int, int]]) -> Iterator[dict[str, Any] | None]:
        """The workers' proofs in the order of ``ranges``; None (and the end) as soon as a
        worker reports an error or dies."""
        waiting = deque(ranges)
        done: dict[int, dict[str, Any]] = {}
        expected = ranges[0][0]
        with selectors.DefaultSelector() as selector:
            for process in self._processes:
                if waiting:
                    first, last = waiting.popleft()
                    self._send(process, json.dumps({"first": first, "last": last}))
                    selector.register(process.stdout, selectors.EVENT_READ, process)  # type: ignore[arg-type]
            while selector.get_map():
                for key, _ in selector.select():
                    process = key.data
                    # One request in flight per worker: at most one line is ever waiting.
                    line = process.stdout.readline()
                    answer: dict[str, Any] = (
                        json.loads(line) if line else {"error": "worker stopped"}
                    )
                    if "error" in answer:
                        yield None
                        return
                    done[answer["first"]] = answer
                    if waiting:
                        first, last = waiting.popleft()
                        self._send(process, json.dumps({"first": first, "last": last}))
                    else:
                        selector.unregister(process.stdout)
                while expected in done:
                    proof = done.pop(expected)
                    expected = proof["last"] + 1
                    yield proof


def _counted(
    partitions: Iterable[Sequence[Any]], progress: Callable[[int], None]
) -> Iterator[Sequence[Any]]:
    # A partition is asked for only once every row of the one before has been checked, so
    # the count reported is the count checked.
    done = reported = 0
    for partition in partitions:
        if done // 50_000 > reported // 50_000:
            progress(done)
            reported = done
        yield partition
        done += len(partition)
    if done // 50_000 > reported // 50_000:
        progress(done)


def count(connection: sa.Connection) -> int:
    return int(
        connection.execute(sa.select(sa.func.count()).select_from(t.audit_record)).scalar_one()
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record as a reader sees it."""

    seq: int
    at: str
    actor: str
    action: str
    entity_type: str
    entity_id: str
    new: dict[str, Any]
    old: dict[str, Any]
    reason: str | None
    hash: str
    prev_hash: str


def read_log(
    connection: sa.Connection,
    *,
    entity_type: str | None = None,
    entity_ids: Sequence[str] | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """The newest ``limit`` records (newest first), optionally filtered: some entities only,
    one actor, one action, and a period ``since <= at < until`` (canonical UTC times, which
    sort as text)."""
    a = t.audit_record
    query = _filtered(
        sa.select(a.c.seq, a.c.prev_hash, a.c.hash, a.c.body).order_by(a.c.seq.desc()),
        entity_type, entity_ids, actor, action, since, until,
    )  # fmt: skip
    entries = []
    for row in connection.execute(query.limit(limit)):
        body = json.loads(row.body)
        entries.append(
            AuditEntry(
                seq=row.seq,
                at=body["at"],
                actor=body["actor"],
                action=body["action"],
                entity_type=body["entity_type"],
                entity_id=body["entity_id"],
                new=body["new"],
                old=body["old"],
                reason=body["reason"],
                hash=row.hash,
                prev_hash=row.prev_hash,
            )
        )
    return entries


def count_log(
    connection: sa.Connection,
    *,
    entity_ids: Sequence[str] | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> int:
    """How many records :func:`read_log` would find with no limit."""
    a = t.audit_record
    query = _filtered(
        sa.select(sa.func.count()).select_from(a), None, entity_ids, actor, action, since, until
    )
    return int(connection.execute(query).scalar_one())


def _filtered(
    query: Any,
    entity_type: str | None,
    entity_ids: Sequence[str] | None,
    actor: str | None,
    action: str | None,
    since: str | None,
    until: str | None,
) -> Any:
    a = t.audit_record
    if entity_type is not None:
        query = query.where(a.c.entity_type == entity_type)
    if entity_ids is not None:
        query = query.where(a.c.entity_id.in_(list(entity_ids)))
    if actor is not None:
        query = query.where(a.c.actor == actor)
    if action is not None:
        query = query.where(a.c.action == action)
    if since is not None:
        query = query.where(a.c.at >= since)
    if until is not None:
        query = query.where(a.c.at < until)
    return query
