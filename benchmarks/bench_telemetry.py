"""Telemetry (issue 10): readings per second from publish to stored, on PostgreSQL,
against a raw COPY of the same rows in the same run; the same messages to a C client that
stores nothing (the bound); and the latency from publish to alarm (``latency``).

Setup (untimed): a Mosquitto of the benchmark's own on a free port, configured as
docs/telemetry.md recommends (no cap on the messages queued for a session: Mosquitto's
default of 1,000 drops readings whenever the ingest falls that far behind; none on the
messages in flight, which MQTT 3.1.1 sessions need); a fresh PostgreSQL schema;
``v2v telemetry ingest --workers 2 --mqtt-version 3.1.1`` (two processes sharing one
subscription, each with its persistent session; or MQTT 5) connected and idle; 100,000
readings written as JSON lines, 5,000 for each of 20 sensors (one topic each).

Timed:

* measured: from starting 20 ``mosquitto_pub -q 1 -l`` publishers (the instruments, one a
  sensor, QoS 1) until the workers report the last of the 100,000 readings committed — the
  broker, the workers' paho clients, the check of every payload, COPY and the
  acknowledgement after commit, all on this machine (the table is counted afterwards);
* baseline: one ``COPY sensor_reading FROM STDIN`` of the same 100,000 rows, already
  parsed, into an empty table of another fresh schema (no broker, no checks).

Ratio = readings stored per second / rows copied per second.
"""

from __future__ import annotations

import json
import multiprocessing
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
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from _common import Result, _settings, postgres_app, say
from paho.mqtt.enums import CallbackAPIVersion

from vein2vein.telemetry.ingest import Totals
from vein2vein.telemetry.workers import IngestOptions, run_workers

READINGS, SENSORS, WORKERS = 100_000, 20, 2
BATCH = 5000
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
max_inflight_messages 0
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


def _publish(port: int, files: list[tuple[str, Path]]) -> list[subprocess.Popen[bytes]]:
    """One ``mosquitto_pub`` a sensor, publishing its file's lines with QoS 1."""
    return [
        subprocess.Popen(
            ["mosquitto_pub", "-p", str(port), "-q", "1", "-V", "5", "-t", topic, "-l"],
            stdin=path.open("rb"),
        )
        for topic, path in files
    ]


def _raw_copy_rate(rows: list[tuple[object, ...]]) -> float:
    """Rows per second of one raw COPY of ``rows`` into an empty table."""
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
            return len(rows) / (time.perf_counter() - begin)
        finally:
            raw.close()


def run_ceiling() -> Result:
    """What the broker and the publishers alone deliver on this machine: the same 100,000
    QoS 1 messages to ``mosquitto_sub`` (Mosquitto's own client, in C; MQTT 3.1.1 in a
    persistent session, as the ingest's line), which stores nothing and acknowledges each
    message on arrival. No ingest can store faster than
    its messages arrive, so this bounds the throughput line; its ratio is against the same
    raw COPY."""
    site = "BENCH" + uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as folder, private_broker(Path(folder)) as port:
        files = _lines(Path(folder), site)
        command = ["mosquitto_sub", "-p", str(port), "-q", "1", "-V", "311", "-c",
                   "-i", f"bench-ceiling-{site}", "-t", f"v2v/{site}/#",
                   "-C", str(READINGS)]  # fmt: skip
        subscriber = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        time.sleep(1.0)  # subscribed
        say(f"publishing {READINGS:,} readings to mosquitto_sub (C, stores nothing)")
        begin = time.perf_counter()
        publishers = _publish(port, files)
        try:
            subscriber.wait(300)
        except subprocess.TimeoutExpired:
            subscriber.kill()
            raise SystemExit("mosquitto_sub did not receive every message within 300 s") from None
        elapsed = time.perf_counter() - begin
        for p in publishers:
            p.wait(30)
        rows = _rows(files, T0)
    rate = READINGS / elapsed
    copy_rate = _raw_copy_rate(rows)
    say(f"publish to a C client {rate:,.0f}/s; raw COPY {copy_rate:,.0f}/s")
    return Result(
        name="Telemetry: the same messages to Mosquitto's C client, nothing stored",
        measured=f"{rate:,.0f} messages/s ({READINGS:,} in {elapsed:.2f} s)",
        baseline=f"raw COPY {copy_rate:,.0f} rows/s",
        ratio=rate / copy_rate,
        target=REFERENCE,
        met=True,
        note="the most any subscriber can receive here: it bounds the line above",
    )


def _said(met: bool) -> str:
    """The verdict on one of a line's two targets, in its target (run.py adds none)."""
    return " (met)" if met else " (**not met**)"


#: The target of a line that measures a bound, not the product (no verdict).
REFERENCE = "none (a bound)"


def run_throughput(mqtt_version: str = "3.1.1") -> Result:
    site = "BENCH" + uuid.uuid4().hex[:6]
    client_id = f"bench-ingest-{site}"
    with (tempfile.TemporaryDirectory() as folder, private_broker(Path(folder)) as port,
          postgres_app() as app):  # fmt: skip
        files = _lines(Path(folder), site)
        url = app.engine.url.render_as_string(hide_password=False)
        options = IngestOptions(port=port, client_id=client_id, topic=f"v2v/{site}/#",
                                batch_size=BATCH, mqtt_version=mqtt_version)  # fmt: skip
        stop, started = threading.Event(), threading.Event()
        result: list[Totals] = []

        committed = threading.Condition()
        stored = 0

        def report(t: Totals) -> None:  # the workers' totals, sent after each commit
            nonlocal stored
            with committed:
                stored = t.stored
                committed.notify()
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
        publishers = _publish(port, files)
        with committed:  # no polling of the database: it would take the CPU measured
            committed.wait_for(lambda: stored >= READINGS, timeout=300)
        elapsed = time.perf_counter() - begin
        for p in publishers:
            p.wait(30)
        stop.set()
        worker.join(60)
        stored = _stored(app.engine)  # what the table holds, not what the workers said
        rows = _rows(files, T0)
    if stored < READINGS:
        raise SystemExit(f"only {stored:,} of {READINGS:,} readings stored within 300 s")
    rate = READINGS / elapsed
    copy_rate = _raw_copy_rate(rows)
    ratio = rate / copy_rate
    say(f"publish to stored {rate:,.0f}/s; raw COPY {copy_rate:,.0f}/s")
    name = f"Telemetry: readings published (QoS 1) to stored, {WORKERS} ingest workers"
    return Result(
        name=f"{name} on MQTT {mqtt_version}",
        measured=f"{rate:,.0f} readings/s ({READINGS:,} in {elapsed:.2f} s)",
        baseline=f"raw COPY {copy_rate:,.0f} rows/s",
        ratio=ratio,
        target=f"≥ {RATE_TARGET:,}/s{_said(rate >= RATE_TARGET)} and ≥ {RATIO_TARGET} of "
        f"COPY{_said(ratio >= RATIO_TARGET)}",
        met=ratio >= RATIO_TARGET and rate >= RATE_TARGET,
        note=(
            f"{SENSORS} mosquitto_pub publishers, Mosquitto, {WORKERS} worker processes "
            "and PostgreSQL share the machine"
        ),
    )


UNITS, SENSORS_PER_UNIT, RATE_HZ, RUN_S = 100, 20, 1.0, 40.0
LATENCY_TARGET_S = 1.0
WATCHED = (("temperature", "°C", 37.0), ("ph", "pH", 7.2), ("do", "%", 50.0), ("co2", "%", 5.0))
NORMAL = {name: mid for name, _, mid in WATCHED}
UNIT_OF = {name: unit for name, unit, _ in WATCHED}  # as the MBR says: checked, not skipped


def _publish_network(port: int, site: str, seconds: float, ready: Any, sent_out: Any) -> None:
    """100 units of 20 sensors at 1 Hz for ``seconds`` (2,000 readings/s, QoS 1); each
    unit's temperature runs hot (38.6 °C) 8 s in every 20. The time in each payload is
    when it is published."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(5000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.wait()
    sensors = [w[0] for w in WATCHED] + [f"aux{i:02d}" for i in range(SENSORS_PER_UNIT - 4)]
    started, sent, seq = time.time(), 0, 0
    tick = 0.01  # 20 readings every 10 ms
    per_tick = int(UNITS * SENSORS_PER_UNIT * RATE_HZ * tick)
    order = [(u, s) for s in sensors for u in range(UNITS)]
    while (now := time.time()) - started < seconds:
        for _ in range(per_tick):
            unit, sensor = order[sent % len(order)]
            hot = ((now + unit * 0.37) % 20.0) < 8.0
            value = 38.6 if sensor == "temperature" and hot else NORMAL.get(sensor, 1.0)
            body = json.dumps({"time": datetime.fromtimestamp(now, UTC).isoformat(),
                               "value": value, "unit": UNIT_OF.get(sensor, "u"),
                               "seq": seq})  # fmt: skip
            client.publish(f"v2v/{site}/POC-{unit:03d}/{sensor}", body, qos=1)
            sent += 1
            seq += 1
        time.sleep(max(0.0, started + sent / (UNITS * SENSORS_PER_UNIT * RATE_HZ) - time.time()))
    client.disconnect()
    client.loop_stop()
    sent_out.value = sent


def run_latency() -> Result:
    from bench_step_record_pg import _setup

    from vein2vein.domain.telemetry import AlarmRule, MonitoredSensor, Monitoring
    from vein2vein.services.monitoring import RunningStep
    from vein2vein.telemetry.monitor import Monitor

    site = "LAT" + uuid.uuid4().hex[:6]
    with (tempfile.TemporaryDirectory() as folder, private_broker(Path(folder)) as port,
          postgres_app() as app):  # fmt: skip
        lot = _setup(app, 1)[0][0]
        watched = Monitoring(tuple(
            MonitoredSensor(name, unit, AlarmRule(mid * 0.97, mid * 1.03, persistence_s=3.0,
                                                  hysteresis=mid * 0.005))
            for name, unit, mid in WATCHED
        ), no_data_s=30.0)  # fmt: skip
        started = app.clock.now()
        steps = {f"POC-{u:03d}": RunningStep(f"POC-{u:03d}", site, lot, "culture", started,
                                             watched) for u in range(UNITS)}  # fmt: skip
        monitor = Monitor(app, port=port, client_id=f"monitor-{site}", topic=f"v2v/{site}/#",
                          context=lambda _: steps)  # fmt: skip
        monitor.start()
        url = app.engine.url.render_as_string(hide_password=False)
        options = IngestOptions(port=port, client_id=f"ingest-{site}", topic=f"v2v/{site}/#")
        stop, ingesting = threading.Event(), threading.Event()
        ingest = threading.Thread(target=lambda: run_workers(
            _settings(url), options, 1, stop, on_report=lambda _: ingesting.set()))  # fmt: skip
        ingest.start()
        ingesting.wait(60)
        checking = threading.Thread(target=monitor.run, args=(stop,))
        checking.start()
        spawn = multiprocessing.get_context("spawn")  # the devices: a process of their own
        ready, sent = spawn.Event(), spawn.Value("q", 0)
        publisher = spawn.Process(target=_publish_network, args=(port, site, RUN_S, ready, sent))
        publisher.start()
        time.sleep(2.0)  # the publisher connected
        say(f"publishing {UNITS} units × {SENSORS_PER_UNIT} sensors at {RATE_HZ:g} Hz for "
            f"{RUN_S:g} s, with the ingest and the monitor running")  # fmt: skip
        ready.set()
        publisher.join()
        deadline = time.monotonic() + 30
        while monitor.totals.checked < sent.value and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        checking.join(30)
        ingest.join(60)
        monitor.stop()
        stored = _stored(app.engine)
    latencies = sorted(monitor.totals.latencies_s)
    if not latencies:
        raise SystemExit("no alarm was raised: the latency benchmark measured nothing")
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    rate = sent.value / RUN_S
    say(f"{len(latencies)} alarms; publish to alarm p50 {p50 * 1000:.0f} ms, p99 "
        f"{p99 * 1000:.0f} ms; {monitor.totals.checked:,} readings checked")  # fmt: skip
    return Result(
        name=f"Telemetry: publish to alarm stored, {UNITS} units × {SENSORS_PER_UNIT} sensors",
        measured=f"p99 {p99 * 1000:,.0f} ms (p50 {p50 * 1000:,.0f} ms, {len(latencies)} alarms)",
        baseline=f"{rate:,.0f} readings/s published; {stored:,} of {sent.value:,} stored",
        ratio=LATENCY_TARGET_S / p99,
        target=f"p99 < {LATENCY_TARGET_S * 1000:.0f} ms at 2,000 readings/s",
        met=(
            p99 < LATENCY_TARGET_S
            and rate >= 0.95 * UNITS * SENSORS_PER_UNIT * RATE_HZ
            and stored == sent.value
        ),
        note="ratio = 1 s / p99; the ingest (1 worker) stores the same stream meanwhile",
    )


if __name__ == "__main__":
    import sys

    if "latency" in sys.argv:  # or "ceiling", "5" (the throughput on MQTT 5); else 3.1.1
        print(run_latency())
    elif "ceiling" in sys.argv:
        print(run_ceiling())
    else:
        print(run_throughput("5" if "5" in sys.argv else "3.1.1"))
