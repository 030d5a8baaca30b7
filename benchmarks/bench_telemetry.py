"""Telemetry (issue 10): readings per second from publish to stored, on PostgreSQL,
against a raw COPY of the same rows in the same run.

Setup (untimed): a Mosquitto of the benchmark's own on a free port, configured as
docs/telemetry.md recommends (no cap on the messages queued for a session: Mosquitto's
default of 1,000 drops readings whenever the ingest falls that far behind); a fresh
PostgreSQL schema; ``v2v telemetry ingest --workers 2`` (two processes sharing one MQTT 5
subscription, each with its persistent session) connected and idle; 100,000 readings
written as JSON lines, 5,000 for each of 20 sensors (one topic each).

Timed:

* measured: from starting 20 ``mosquitto_pub -q 1 -l`` publishers (the instruments, one a
  sensor, QoS 1) until the last of the 100,000 readings is committed — the broker, the
  workers' paho clients, the check of every payload, COPY + ON CONFLICT and the
  acknowledgement after commit, all on this machine;
* baseline: one ``COPY sensor_reading FROM STDIN`` of the same 100,000 rows, already
  parsed, into an empty table of another fresh schema (no broker, no checks).

Ratio = readings stored per second / rows copied per second.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from _common import Result, _settings, postgres_app, say

from vein2vein.telemetry.ingest import Totals
from vein2vein.telemetry.workers import IngestOptions, run_workers

READINGS, SENSORS, WORKERS = 100_000, 20, 2
RATIO_TARGET, RATE_TARGET = 0.3, 20_000
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
COLUMNS = "equipment, sensor, seq, site, measured_at, value, unit, received_at"


def _lines(folder: Path, site: str) -> list[tuple[str, Path]]:
    """One file of JSON lines per sensor: its topic and the file."""
    per = READINGS // SENSORS
    out = []
    for k in range(SENSORS):
        path = folder / f"sensor{k}.jsonl"
        with path.open("w") as f:
            for s in range(per):
                f.write(json.dumps({"time": (T0 + timedelta(seconds=s)).isoformat(),
                                    "value": 37.0 + (s % 11) / 10, "unit": "°C",
                                    "seq": s}) + "\n")  # fmt: skip
        out.append((f"v2v/{site}/POC-{k // 4:02d}/sensor{k}", path))
    return out


def _rows(files: list[tuple[str, Path]], received: datetime) -> list[tuple[object, ...]]:
    rows = []
    for topic, path in files:
        _, site, equipment, sensor = topic.split("/")
        for line in path.read_text().splitlines():
            r = json.loads(line)
            at = datetime.fromisoformat(r["time"])
            rows.append((equipment, sensor, r["seq"], site, at, r["value"], r["unit"], received))
    return rows


def _stored(engine: sa.Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(sa.text("SELECT count(*) FROM sensor_reading")).scalar_one())


BROKER_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
"""


@contextmanager
def private_broker(folder: Path) -> Iterator[int]:
    """A Mosquitto of this benchmark's own; yields its port."""
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_pub") is None:
        raise SystemExit("bench_telemetry needs mosquitto and mosquitto_pub")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = folder / "mosquitto.conf"
    conf.write_text(BROKER_CONF.format(port=port))
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"mosquitto on port {port} did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        broker.terminate()
        broker.wait(10)


def run_throughput() -> Result:
    site = "BENCH" + uuid.uuid4().hex[:6]
    client_id = f"bench-ingest-{site}"
    with (tempfile.TemporaryDirectory() as folder, private_broker(Path(folder)) as port,
          postgres_app() as app):  # fmt: skip
        files = _lines(Path(folder), site)
        url = app.engine.url.render_as_string(hide_password=False)
        options = IngestOptions(port=port, client_id=client_id, topic=f"v2v/{site}/#",
                                batch_size=5000)  # fmt: skip
        stop, started = threading.Event(), threading.Event()
        result: list[Totals] = []

        def report(t: Totals) -> None:
            started.set()

        worker = threading.Thread(
            target=lambda: result.append(
                run_workers(_settings(url), options, WORKERS, stop, on_report=report)
            )
        )
        worker.start()
        if not started.wait(60):
            stop.set()
            raise SystemExit("the ingest workers did not start within 60 s")
        time.sleep(1.0)  # subscriptions settled
        say(f"publishing {READINGS:,} readings on {SENSORS} topics (QoS 1)")
        begin = time.perf_counter()
        publishers = [
            subprocess.Popen(
                ["mosquitto_pub", "-p", str(port), "-q", "1", "-V", "5", "-t", topic, "-l"],
                stdin=path.open("rb"),
            )
            for topic, path in files
        ]
        stored = 0
        while stored < READINGS and time.perf_counter() - begin < 300:
            time.sleep(0.02)
            stored = _stored(app.engine)
        elapsed = time.perf_counter() - begin
        for p in publishers:
            p.wait(30)
        stop.set()
        worker.join(60)
        rows = _rows(files, T0)
    if stored < READINGS:
        raise SystemExit(f"only {stored:,} of {READINGS:,} readings stored within 300 s")
    rate = READINGS / elapsed
    with postgres_app() as fresh:
        raw = fresh.engine.raw_connection()
        try:
            begin = time.perf_counter()
            sql = f"COPY sensor_reading ({COLUMNS}) FROM STDIN"
            cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
            raw.commit()
            copy_s = time.perf_counter() - begin
        finally:
            raw.close()
    copy_rate = READINGS / copy_s
    ratio = rate / copy_rate
    say(f"publish to stored {rate:,.0f}/s; raw COPY {copy_rate:,.0f}/s")
    return Result(
        name=f"Telemetry: readings published (QoS 1) to stored, {WORKERS} ingest workers",
        measured=f"{rate:,.0f} readings/s ({READINGS:,} in {elapsed:.2f} s)",
        baseline=f"raw COPY {copy_rate:,.0f} rows/s",
        ratio=ratio,
        target=f"≥ {RATIO_TARGET} and ≥ {RATE_TARGET:,}/s",
        met=ratio >= RATIO_TARGET and rate >= RATE_TARGET,
        note=(
            f"{SENSORS} mosquitto_pub publishers, Mosquitto, {WORKERS} worker processes "
            "and PostgreSQL share the machine"
        ),
    )


if __name__ == "__main__":
    print(run_throughput())
