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

    Should the database refuse a value the checks let through, the batch is split in
    halves, each stored on its own, down to the message at fault, which is quarantined with
    the database's reason: one such message never stops the rest.

    Raises
    ------
    DatabaseError
        The database is away (:class:`~vein2vein.domain.errors.DatabaseUnavailable`) or
        refused the batch for another reason: nothing of the batch is stored.
    """
    try:
        return _ingest(app, messages)
    except store.ValueRefused as refused:
        if len(messages) > 1:
            half = len(messages) // 2
            first, second = ingest(app, messages[:half]), ingest(app, messages[half:])
            return IngestResult(first.stored + second.stored,
                                first.duplicates + second.duplicates,
                                first.quarantined + second.quarantined)  # fmt: skip
        (topic, payload), reason = messages[0], refused.message
        return _ingest(app, [], [(topic.replace("\x00", "\\x00"), payload, reason)])


def _ingest(
    app: App,
    messages: Sequence[tuple[str, bytes]],
    refused: list[tuple[str, bytes, str]] | None = None,
) -> IngestResult:
    readings: list[Reading] = []
    refused = list(refused or [])
    for topic, payload in messages:
        try:
            readings.append(parse_reading(topic, payload))
        except MalformedReading as bad:
            refused.append((topic, payload, bad.reason))
    uow = app.uow()
    with uow:
        now = uow.clock.now()
        stored = store.store_readings(uow.connection, readings, now)
        store.quarantine(uow.connection, refused, now)
        uow.commit()
    return IngestResult(stored, len(readings) - stored, len(refused))


def readings_of(app: App, equipment: str, sensor: str) -> list[tuple[int, object, float, str]]:
    """The stored readings of one sensor, in time order: (sequence, time, value, unit)."""
    with app.reader() as connection:
        return list(store.readings_of(connection, equipment, sensor))
