"""Readings stored in bulk, each once (issue 10): on PostgreSQL through COPY straight into
the table, or, when a reading of the batch is already there, COPY into a temporary table
and one INSERT … ON CONFLICT DO NOTHING; on SQLite one INSERT … ON CONFLICT (key) DO
NOTHING over all of them. Either way a reading already stored (the same equipment, sensor and
sequence number, delivered again after a reconnect) is counted, not stored twice."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import psycopg
import sqlalchemy as sa
from psycopg.errors import UniqueViolation
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from vein2vein.domain.errors import DatabaseError, DatabaseUnavailable, InvalidInput
from vein2vein.domain.telemetry import Reading
from vein2vein.store import tables as t

__all__ = ["ValueRefused", "quarantine", "readings_of", "store_each", "store_readings"]


class ValueRefused(InvalidInput):
    """The database refused a value of the batch that the checks let through."""


@contextmanager
def _database_errors() -> Iterator[None]:
    """The driver's errors as vein2vein's: a refused value (the batch may be split to find
    it), the database away (try later), or anything else the database said."""
    try:
        yield
    except (psycopg.DataError, psycopg.IntegrityError, sa.exc.DataError,
            sa.exc.IntegrityError) as exc:  # fmt: skip
        raise ValueRefused(f"refused by the database: {_said(exc)}") from exc
    except (psycopg.OperationalError, sa.exc.OperationalError) as exc:
        raise DatabaseUnavailable(f"readings not stored: {_said(exc)}") from exc
    except (psycopg.Error, sa.exc.DBAPIError) as exc:
        raise DatabaseError(f"readings not stored: {_said(exc)}") from exc


def _said(exc: Exception) -> str:
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


_COLUMNS = ("equipment", "sensor", "seq", "site", "measured_at", "value", "unit", "received_at")
_KEY = ", ".join(_COLUMNS[:3])  # a reading is stored once per equipment, sensor and seq


def store_each(
    connection: sa.Connection, readings: Sequence[Reading], received_at: datetime
) -> tuple[int, dict[int, str]]:
    """Store ``readings`` (in the caller's transaction) but those the database refuses:
    how many were new, and the refused ones' places in ``readings`` with the database's
    reason. The batch goes in one savepoint; a refused value undoes it, and the batch is
    split in halves, each in a savepoint of its own, down to the readings at fault — so one
    bad value never stops the rest, and the caller's transaction stays whole.

    Raises
    ------
    DatabaseUnavailable
        The database went away.
    """
    refused: dict[int, str] = {}

    def attempt(first: int, part: Sequence[Reading]) -> int:
        try:
            with connection.begin_nested():
                return store_readings(connection, part, received_at)
        except ValueRefused as refusal:
            if len(part) == 1:
                refused[first] = refusal.message
                return 0
            half = len(part) // 2
            return attempt(first, part[:half]) + attempt(first + half, part[half:])

    return (attempt(0, readings) if readings else 0), refused


def store_readings(
    connection: sa.Connection, readings: Sequence[Reading], received_at: datetime
) -> int:
    """Store ``readings`` (in the caller's transaction); returns how many were new.

    Raises
    ------
    ValueRefused
        The database refused a value of the batch.
    DatabaseUnavailable
        The database went away.
    """
    if not readings:
        return 0
    with _database_errors():
        if connection.dialect.name == "postgresql":
            return _copy(connection, readings, received_at)
        rows = [_row(r, received_at) for r in readings]
        # sqlite3 sums the rows each INSERT of an executemany changed (an ignored one: none);
        # ON CONFLICT of the key, not OR IGNORE, which would skip any other refusal silently
        insert = sqlite_insert(t.sensor_reading).on_conflict_do_nothing(
            index_elements=_COLUMNS[:3]
        )
        result = connection.execute(insert, rows)
        return int(result.rowcount)


def _values(r: Reading, received_at: datetime) -> tuple[object, ...]:
    """A reading's values in the order of :data:`_COLUMNS`, its key first."""
    return (r.equipment, r.sensor, r.sequence, r.site, r.time, r.value, r.unit, received_at)


def _row(r: Reading, received_at: datetime) -> dict[str, object]:
    return dict(zip(_COLUMNS, _values(r, received_at), strict=True))


def _copy(connection: sa.Connection, readings: Sequence[Reading], received_at: datetime) -> int:
    rows = sorted(_values(r, received_at) for r in readings)
    # (sorted by key: two workers storing the same readings lock them in the same order)
    columns = ", ".join(_COLUMNS)
    raw = connection.connection.driver_connection  # psycopg 3
    assert raw is not None
    # Usually no reading of the batch is stored yet: COPY straight into the table, in a
    # savepoint. A reading delivered again (after a reconnect, or twice in the batch)
    # breaks the table's key and undoes the savepoint; then the batch goes the careful way.
    try:
        with (connection.begin_nested(), raw.cursor() as cursor,
              cursor.copy(f"COPY sensor_reading ({columns}) FROM STDIN") as copy):  # fmt: skip
            for row in rows:
                copy.write_row(row)
        return len(rows)
    except UniqueViolation:
        pass
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS incoming_reading "
            "(LIKE sensor_reading INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY incoming_reading ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO sensor_reading ({columns}) "
            f"SELECT DISTINCT ON ({_KEY}) {columns} FROM incoming_reading "
            f"ON CONFLICT ({_KEY}) DO NOTHING"
        )
        stored = cursor.rowcount
        cursor.execute("DELETE FROM incoming_reading")
    return int(stored)


def _text(untrusted: str) -> str:
    return untrusted.replace("\x00", "\\x00")


def quarantine(
    connection: sa.Connection, refused: Sequence[tuple[str, bytes, str]], received_at: datetime
) -> None:
    """Keep each refused message (topic, payload, reason). The payload is kept as it came;
    a NUL in the topic or the reason (which may name a field of the payload) is written
    ``\\x00``, since PostgreSQL's text holds none and would refuse the whole batch."""
    if refused:
        rows = [{"topic": _text(topic)[:300], "payload": payload, "reason": _text(reason),
                 "received_at": received_at} for topic, payload, reason in refused]  # fmt: skip
        with _database_errors():
            connection.execute(t.reading_quarantine.insert(), rows)


def readings_of(
    connection: sa.Connection, equipment: str, sensor: str
) -> list[tuple[int, datetime, float, str]]:
    """The stored readings of one sensor, in time order: (sequence, time, value, unit)."""
    r = t.sensor_reading
    query = (
        sa.select(r.c.seq, r.c.measured_at, r.c.value, r.c.unit)
        .where(r.c.equipment == equipment, r.c.sensor == sensor)
        .order_by(r.c.measured_at, r.c.seq)
    )
    return [(int(s), at, float(v), u) for s, at, v, u in connection.execute(query)]
