"""Telemetry (issue 10, DESIGN §10): MQTT messages in, readings stored — the one place the
ingest adapter (telemetry/) calls.

:func:`ingest` takes a batch of raw messages (topic, payload): each is checked
(:mod:`vein2vein.formats.telemetry`); the readings are stored in bulk, each once, and the
messages that are not readings are kept in the quarantine with the reason — both in one
transaction, so a batch is stored whole or not at all, and a malformed message never
stops the others. Readings are raw data, not decisions: they are not written to the audit
trail one by one; their table is append-only instead (decision 19).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vein2vein.domain.telemetry import Reading
from vein2vein.formats.telemetry import MalformedReading, parse_reading
from vein2vein.services.app import App
from vein2vein.store import telemetry as store

__all__ = ["IngestResult", "ingest", "readings_of"]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What a batch of messages came to: readings ``stored`` (new), ``duplicates`` (a
    reading already stored, or twice in the batch) and ``quarantined`` (not readings)."""

    stored: int
    duplicates: int
    quarantined: int


def ingest(app: App, messages: Sequence[tuple[str, bytes]]) -> IngestResult:
    """Check and store a batch of MQTT messages (topic, payload), in one transaction.

    Should the database refuse a value the checks let through, that message is
    quarantined with the database's reason and the rest stored, still in the one
    transaction (store.store_each): one such message never stops the others.

    Raises
    ------
    DatabaseError
        The database is away (:class:`~vein2vein.domain.errors.DatabaseUnavailable`) or
        failed otherwise: nothing of the batch is stored.
    """
    readings: list[Reading] = []
    sources: list[tuple[str, bytes]] = []
    refused: list[tuple[str, bytes, str]] = []
    for topic, payload in messages:
        try:
            readings.append(parse_reading(topic, payload))
            sources.append((topic, payload))
        except MalformedReading as bad:
            refused.append((topic, payload, bad.reason))
    uow = app.uow()
    with uow:
        now = uow.clock.now()
        stored, by_database = store.store_each(uow.connection, readings, now)
        refused += [(*sources[k], reason) for k, reason in sorted(by_database.items())]
        store.quarantine(uow.connection, refused, now)
        uow.commit()
    return IngestResult(stored, len(readings) - len(by_database) - stored, len(refused))


def readings_of(app: App, equipment: str, sensor: str) -> list[tuple[int, object, float, str]]:
    """The stored readings of one sensor, in time order: (sequence, time, value, unit)."""
    with app.reader() as connection:
        return list(store.readings_of(connection, equipment, sensor))
