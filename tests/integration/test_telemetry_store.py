"""Readings stored on both engines (services/telemetry.py, store/telemetry.py): in bulk
(COPY on PostgreSQL), each once however often it is delivered, malformed messages kept
with their reason, a batch whole or not at all, and the raw data never changed."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from vein2vein.services import telemetry
from vein2vein.services.app import App
from vein2vein.store import tables as t

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def message(seq: int, value: float = 37.0, sensor: str = "temperature") -> tuple[str, bytes]:
    body = {"time": (T0 + timedelta(seconds=seq)).isoformat(), "value": value, "unit": "°C",
            "seq": seq}  # fmt: skip
    return (f"v2v/POC1/BR-01/{sensor}", json.dumps(body).encode())


def test_readings_are_stored_each_once_however_often_delivered(app: App) -> None:
    first = telemetry.ingest(app, [message(i) for i in range(1, 501)])
    assert (first.stored, first.duplicates, first.quarantined) == (500, 0, 0)
    # a broker's redelivery after a reconnect, and a duplicate inside one batch
    again = telemetry.ingest(app, [message(i) for i in range(400, 601)] + [message(600)])
    assert (again.stored, again.duplicates) == (100, 102)
    stored = telemetry.readings_of(app, "BR-01", "temperature")
    assert [s for s, *_ in stored] == list(range(1, 601))
    seq, at, value, unit = stored[0]
    assert (seq, at, value, unit) == (1, T0 + timedelta(seconds=1), 37.0, "°C")
    # the same sequence number on another sensor is another reading
    other = telemetry.ingest(app, [message(1, sensor="ph")])
    assert other.stored == 1


def test_a_malformed_message_is_kept_with_its_reason_and_stops_nothing(app: App) -> None:
    batch = [message(1), ("v2v/POC1/BR-01/temperature", b"{not json"), message(2),
             ("v2v/POC1", message(3)[1]), message(4, value=36.5)]  # fmt: skip
    result = telemetry.ingest(app, batch)
    assert (result.stored, result.duplicates, result.quarantined) == (3, 0, 2)
    with app.reader() as connection:
        kept = connection.execute(
            sa.select(t.reading_quarantine.c.topic, t.reading_quarantine.c.payload,
                      t.reading_quarantine.c.reason).order_by(t.reading_quarantine.c.id)
        ).all()  # fmt: skip
    assert [(topic, bytes(payload)) for topic, payload, _ in kept] == [batch[1], batch[3]]
    assert kept[0].reason.startswith("payload: not JSON")
    assert kept[1].reason == "topic 'v2v/POC1': expected v2v/<site>/<equipment>/<sensor>"


def test_a_malformed_message_naming_a_nul_is_kept_and_stops_nothing(app: App) -> None:
    """A payload with a field named by a NUL character: its reason names the field, and
    PostgreSQL's text holds no NUL; the reason says it as \\x00, the payload is kept as it
    came, and the batch's readings are stored (before, the whole batch was refused)."""
    topic, body = message(2)
    odd = body.replace(b'"seq": 2', b'"seq": 2, "\\u0000": 1')
    result = telemetry.ingest(app, [message(1), (topic, odd)])
    assert (result.stored, result.quarantined) == (1, 1)
    with app.reader() as connection:
        kept = connection.execute(
            sa.select(t.reading_quarantine.c.payload, t.reading_quarantine.c.reason)
        ).one()
    assert bytes(kept.payload) == odd
    assert "\x00" not in kept.reason and "payload.\\x00: " in kept.reason


def test_a_value_that_is_not_a_number_is_refused_at_the_edge(app: App) -> None:
    topic, body = message(2)
    overflow = body.replace(b'"value": 37.0', b'"value": 1e309')  # JSON's "infinity"
    result = telemetry.ingest(app, [message(1), (topic, overflow)])
    assert (result.stored, result.quarantined) == (1, 1)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE sensor_reading SET value = 0",
        "DELETE FROM sensor_reading",
        "DELETE FROM reading_quarantine",
    ],
)
def test_readings_and_refused_messages_are_never_changed(app: App, statement: str) -> None:
    telemetry.ingest(app, [message(1), ("v2v/x", b"{}")])
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), app.engine.begin() as c:
        c.execute(sa.text(statement))
    assert len(telemetry.readings_of(app, "BR-01", "temperature")) == 1


def test_a_reading_another_batch_is_storing_at_the_same_moment_is_counted_once(
    postgres_app: App,
) -> None:
    """Two ingest workers storing the same reading at once on PostgreSQL (a redelivery
    racing the first delivery; SQLite has one writer at a time): the second batch waits
    for the first, then counts the reading a duplicate."""
    app = postgres_app
    first = app.engine.connect()
    first.begin()
    first.execute(t.sensor_reading.insert(), [{
        "equipment": "BR-01", "sensor": "temperature", "seq": 5, "site": "POC1",
        "measured_at": T0 + timedelta(seconds=5), "value": 37.0, "unit": "°C",
        "received_at": T0}])  # fmt: skip
    results: list[telemetry.IngestResult] = []
    second = threading.Thread(
        target=lambda: results.append(telemetry.ingest(app, [message(i) for i in range(1, 11)]))
    )
    second.start()
    # (each look in a transaction of its own: statistics are a snapshot per transaction)
    waiting = ("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
               "AND query LIKE 'COPY sensor_reading%'")  # fmt: skip
    deadline = time.monotonic() + 20
    try:
        while True:  # the second batch waits on the first one's reading
            with app.engine.connect() as watch:
                if watch.execute(sa.text(waiting)).scalar_one():
                    break
            assert time.monotonic() < deadline, "the second batch never waited on the first"
            time.sleep(0.05)
        assert second.is_alive()
        first.commit()
    finally:
        first.close()
        second.join(30)
    assert (results[0].stored, results[0].duplicates) == (9, 1)
    assert [s for s, *_ in telemetry.readings_of(app, "BR-01", "temperature")] == list(range(1, 11))


def test_a_value_the_database_refuses_is_quarantined_and_the_rest_stored(app: App) -> None:
    """Should the database refuse a value the checks let through (here a rule added to the
    table for this test), the batch is split down to the message at fault, which is kept
    with the database's reason; one bad message never stops the others."""
    with app.engine.begin() as c:
        if app.engine.dialect.name == "postgresql":
            c.execute(sa.text("ALTER TABLE sensor_reading ADD CONSTRAINT test_not_below "
                              "CHECK (value > -1000)"))  # fmt: skip
        else:
            c.execute(sa.text("CREATE TRIGGER test_not_below BEFORE INSERT ON sensor_reading "
                              "WHEN NEW.value <= -1000 BEGIN SELECT RAISE(ABORT, "
                              "'value below -1000'); END"))  # fmt: skip
    batch = [message(i) for i in range(1, 21)]
    batch[13] = message(14, value=-5000.0)
    result = telemetry.ingest(app, batch)
    assert (result.stored, result.duplicates, result.quarantined) == (19, 0, 1)
    stored = [s for s, *_ in telemetry.readings_of(app, "BR-01", "temperature")]
    assert stored == [i for i in range(1, 21) if i != 14]
    with app.reader() as connection:
        kept = connection.execute(
            sa.select(t.reading_quarantine.c.payload, t.reading_quarantine.c.reason)
        ).one()
    assert bytes(kept.payload) == batch[13][1]
    assert kept.reason.startswith("refused by the database: ")
    assert "test_not_below" in kept.reason or "below -1000" in kept.reason
