"""The ingest against a real Mosquitto broker (telemetry/ingest.py): readings published
with QoS 1 are stored, each once; malformed messages are kept in the quarantine; what
arrives while the ingest is away is delivered when it comes back (persistent session),
and a message is acknowledged only once stored."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import service_missing, settings_for
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import DatabaseUnavailable, InvalidInput
from vein2vein.services import monitoring, telemetry
from vein2vein.services.app import App
from vein2vein.telemetry import ingest as ingest_module
from vein2vein.telemetry.ingest import BrokerUnreachable, Ingest, Totals
from vein2vein.telemetry.monitor import Monitor
from vein2vein.telemetry.simulator import Simulator, Unit
from vein2vein.telemetry.workers import IngestOptions, run_workers

HOST, PORT = "127.0.0.1", 1883
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@pytest.fixture
def broker() -> None:
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        service_missing("Mosquitto", f"nothing listens on {HOST}:{PORT} ({exc})")


@pytest.fixture(params=["5", "3.1.1"])
def mqtt_version(request: pytest.FixtureRequest) -> str:
    """The ingest speaks either (the broker here keeps Mosquitto's 20 messages in flight
    for 3.1.1: slower, still whole)."""
    return str(request.param)


@pytest.fixture
def site() -> str:
    return "T" + uuid.uuid4().hex[:8]  # topics of this test only


@pytest.fixture
def publisher(broker: None) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(HOST, PORT)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def body(seq: int, value: float = 37.0) -> bytes:
    return json.dumps({"time": (T0 + timedelta(seconds=seq)).isoformat(), "value": value,
                       "unit": "°C", "seq": seq}).encode()  # fmt: skip


def publish(client: mqtt.Client, topic: str, payloads: list[bytes]) -> None:
    for payload in payloads:
        client.publish(topic, payload, qos=1).wait_for_publish(30)  # a loaded CI machine


def run_until(ingest: Ingest, done: object, within_s: float = 20.0) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=ingest.run, args=(stop,), daemon=True)
    worker.start()
    deadline = time.monotonic() + within_s
    while not done() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)
    stop.set()
    worker.join(10)
    assert not worker.is_alive(), "the ingest did not stop"


def forget_session(client_id: str) -> None:
    """Remove ``client_id``'s session (and what it kept) from the broker."""
    cleanup = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    cleanup.connect(HOST, PORT)
    cleanup.disconnect()


def test_published_readings_are_stored_each_once_and_malformed_ones_kept(
    sqlite_app: App, publisher: mqtt.Client, site: str, mqtt_version: str
) -> None:
    ingest = Ingest(sqlite_app, client_id=f"ingest-{site}", topic=f"v2v/{site}/#", flush_s=0.05,
                    mqtt_version=mqtt_version)  # fmt: skip
    ingest.start()
    try:
        topic = f"v2v/{site}/BR-01/temperature"
        publish(publisher, topic, [body(i) for i in range(1, 301)])
        publish(publisher, topic, [body(i) for i in range(290, 301)])  # delivered again
        publish(publisher, topic, [b"{broken", body(400).replace(b'"seq"', b'"sequence"')])
        run_until(ingest, lambda: ingest.totals.received >= 313)
    finally:
        ingest.stop()
    t = ingest.totals
    assert (t.received, t.stored, t.duplicates, t.quarantined) == (313, 300, 11, 2)
    stored = telemetry.readings_of(sqlite_app, "BR-01", "temperature")
    assert [s for s, *_ in stored] == list(range(1, 301))
    # every message was acknowledged before the ingest stopped: its session holds none.
    # (A new connection under the same id at that very instant may take the session over
    # before the broker has read the closed one's last packets: a moment between.)
    time.sleep(0.5)
    again = Ingest(sqlite_app, client_id=f"ingest-{site}", topic=f"v2v/{site}/#", flush_s=0.05,
                   mqtt_version=mqtt_version)  # fmt: skip
    again.start()
    try:
        run_until(again, lambda: False, within_s=1.5)
    finally:
        again.stop()
    assert again.totals.received == 0
    forget_session(f"ingest-{site}")


def test_a_batch_the_database_refuses_is_kept_unacknowledged_and_stored_once_later(
    sqlite_app: App, publisher: mqtt.Client, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = telemetry.ingest
    calls = []

    def database_away_once(app: App, messages: list[tuple[str, bytes]]) -> object:
        calls.append(len(messages))
        if len(calls) == 1:  # the database goes away for the first batch
            raise DatabaseUnavailable("cannot connect to the test database: gone")
        return real(app, messages)

    monkeypatch.setattr(ingest_module.telemetry, "ingest", database_away_once)
    ingest = Ingest(sqlite_app, client_id=f"ingest-{site}", topic=f"v2v/{site}/#", flush_s=0.05)
    ingest.start()
    seen: list[Totals] = []
    try:
        publish(publisher, f"v2v/{site}/BR-04/temperature", [body(i) for i in range(1, 41)])
        stop = threading.Event()
        worker = threading.Thread(
            target=ingest.run, args=(stop,), kwargs={"on_flush": seen.append}, daemon=True
        )
        worker.start()
        deadline = time.monotonic() + 30
        while ingest.totals.stored < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        worker.join(10)
    finally:
        ingest.stop()
    t = ingest.totals
    assert (t.failed_batches, t.stored, t.duplicates, t.last_error) == (1, 40, 0, None)
    assert t.received == 40  # not delivered again: kept, tried again, then acknowledged
    assert calls[1] >= calls[0]  # the refused batch (and any later message) the second time
    assert [s for s, *_ in telemetry.readings_of(sqlite_app, "BR-04", "temperature")] == list(
        range(1, 41)
    )
    forget_session(f"ingest-{site}")


def test_what_arrives_while_the_ingest_is_away_is_delivered_when_it_returns(
    sqlite_app: App, publisher: mqtt.Client, site: str, mqtt_version: str
) -> None:
    client_id = f"ingest-{site}"
    first = Ingest(sqlite_app, client_id=client_id, topic=f"v2v/{site}/#", flush_s=0.05,
                   mqtt_version=mqtt_version)  # fmt: skip
    first.start()  # the broker now keeps a session for this client id
    first.stop()
    topic = f"v2v/{site}/BR-02/ph"
    publish(publisher, topic, [body(i, 7.1) for i in range(1, 51)])  # nobody listening
    again = Ingest(sqlite_app, client_id=client_id, topic=f"v2v/{site}/#", flush_s=0.05,
                   mqtt_version=mqtt_version)  # fmt: skip
    again.start()
    try:
        run_until(again, lambda: again.totals.stored >= 50)
    finally:
        again.stop()
    assert again.totals.stored == 50
    assert len(telemetry.readings_of(sqlite_app, "BR-02", "ph")) == 50
    forget_session(client_id)


SENSORS = ("temperature", "ph", "do", "co2")


def test_workers_share_the_subscription_and_store_each_reading_once(
    app: App, publisher: mqtt.Client, site: str
) -> None:
    options = IngestOptions(client_id=f"ingest-{site}", topic=f"v2v/{site}/#", batch_size=50)
    stop, reported = threading.Event(), threading.Event()
    result: list[Totals] = []

    def work() -> None:
        result.append(run_workers(settings_for(app.url), options, 2, stop,
                                  on_report=lambda t: reported.set()))  # fmt: skip

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        assert reported.wait(60), "the two workers did not connect"
        for sensor in SENSORS:
            publish(publisher, f"v2v/{site}/POC-01/{sensor}", [body(i) for i in range(1, 51)])
        publish(publisher, f"v2v/{site}/POC-01/ph", [body(i) for i in range(1, 11)])  # again
        publish(publisher, f"v2v/{site}/POC-01/ph", [b"not json"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stored = [len(telemetry.readings_of(app, "POC-01", s)) for s in SENSORS]
            if stored == [50] * 4:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(60)
    totals = result[0]
    assert stored == [50] * 4
    assert (totals.received, totals.stored, totals.duplicates, totals.quarantined) == (
        211, 200, 10, 1)  # fmt: skip
    for k in range(2):  # the workers' sessions
        forget_session(f"ingest-{site}-{k}")


def test_a_broker_that_does_not_answer_is_named(sqlite_app: App) -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))
        free = s.getsockname()[1]
    ingest = Ingest(sqlite_app, port=free, client_id="nobody")
    with pytest.raises(BrokerUnreachable, match=f"MQTT broker 127.0.0.1:{free}: "):
        ingest.start()
    options = IngestOptions(port=free, client_id="nobody")
    with pytest.raises(BrokerUnreachable, match=f"MQTT broker 127.0.0.1:{free}: "):
        run_workers(settings_for(sqlite_app.url), options, 2, threading.Event())


def test_an_mqtt_version_not_spoken_is_named_before_anything_starts(sqlite_app: App) -> None:
    said = "MQTT version '3.1': expected one of 5, 3.1.1"
    with pytest.raises(InvalidInput, match=re.escape(said)):
        Ingest(sqlite_app, mqtt_version="3.1")
    options = IngestOptions(client_id="nobody", mqtt_version="3.1")
    with pytest.raises(InvalidInput, match=re.escape(said)):
        run_workers(settings_for(sqlite_app.url), options, 2, threading.Event())
    with pytest.raises(InvalidInput, match=re.escape("batch_size must be at least 1 (got 0)")):
        Ingest(sqlite_app, batch_size=0)
    with pytest.raises(InvalidInput, match=re.escape("flush_s above 0 (got 0.0)")):
        Ingest(sqlite_app, flush_s=0.0)


MOSQUITTO = ["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"]


def _port_open() -> bool:
    try:
        socket.create_connection((HOST, PORT), timeout=0.5).close()
        return True
    except OSError:
        return False


def restart_broker() -> None:
    """Stop the broker (it saves its sessions and queued messages: `persistence true`)
    and start it again, as `.ci/run` starts it."""
    found = subprocess.run(["pgrep", "-x", "mosquitto"], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    if not pids or shutil.which("mosquitto") is None:
        service_missing("A broker this test can restart", "no mosquitto process or binary")
    try:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
    except PermissionError:
        service_missing("A broker this test can restart", "not allowed to stop mosquitto")
    deadline = time.monotonic() + 30
    while _port_open() and time.monotonic() < deadline:
        time.sleep(0.05)
    subprocess.run(MOSQUITTO, check=True)
    deadline = time.monotonic() + 30
    while not _port_open() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _port_open(), "mosquitto did not come back"


def test_a_broker_restart_loses_nothing_and_doubles_nothing(
    sqlite_app: App, publisher: mqtt.Client, site: str, mqtt_version: str
) -> None:
    ingest = Ingest(sqlite_app, client_id=f"ingest-{site}", topic=f"v2v/{site}/#", flush_s=0.05,
                    mqtt_version=mqtt_version)  # fmt: skip
    ingest.start()
    topic = f"v2v/{site}/BR-03/do"
    try:
        publish(publisher, topic, [body(i, 40.0) for i in range(1, 51)])
        run_until(ingest, lambda: ingest.totals.stored >= 50)
        restart_broker()
        again = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub2-{site}")
        again.connect(HOST, PORT)
        again.loop_start()
        # published while the ingest is still reconnecting: the broker queues them
        publish(again, topic, [body(i, 41.0) for i in range(51, 101)])
        publish(again, topic, [body(i, 41.0) for i in range(45, 56)])  # and some twice
        again.disconnect()
        again.loop_stop()
        run_until(ingest, lambda: ingest.totals.stored >= 100, within_s=60)
    finally:
        ingest.stop()
    stored = telemetry.readings_of(sqlite_app, "BR-03", "do")
    assert [s for s, *_ in stored] == list(range(1, 101))
    assert ingest.totals.stored == 100 and ingest.totals.duplicates >= 11
    forget_session(f"ingest-{site}")


def test_an_excursion_published_to_the_broker_raises_exactly_one_alarm_and_silence_no_data(
    app: App, publisher: mqtt.Client, site: str, clock: FixedClock
) -> None:
    """End to end through Mosquitto: the monitor hears a unit running a watched step; ten
    minutes above 38 °C raise one alarm (not one per reading), the return clears it, and a
    sensor that then stops publishing raises "no data" once."""
    from tests.integration.test_monitoring import INCUBATOR, culture

    lot = culture(app)
    unit = f"v2v/CP1/{INCUBATOR}"  # where the incubator is registered: CP1
    monitor = Monitor(app, client_id=f"monitor-{site}", topic=f"{unit}/#")
    monitor.start()
    stop = threading.Event()
    worker = threading.Thread(target=monitor.run, args=(stop,), daemon=True)
    worker.start()
    try:
        t0 = clock.now()
        values = [37.0, 38.9, 37.1] + [38.6] * 20 + [37.5, 37.2]
        for i, value in enumerate(values):
            payload = json.dumps({"time": (t0 + timedelta(seconds=30 * i)).isoformat(),
                                  "value": value, "unit": "°C", "seq": i}).encode()  # fmt: skip
            publish(publisher, f"{unit}/temperature", [payload])
        publish(publisher, f"{unit}/temperature", [payload])  # again
        deadline = time.monotonic() + 20
        while monitor.totals.checked < len(values) + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (monitor.totals.raised, monitor.totals.cleared) == (1, 1)
        [alarm] = monitoring.alarms(app)
        assert (alarm.kind, alarm.lot, alarm.site) == ("high", lot, "CP1")
        # co2 and humidity never spoke; the temperature's last reading was at 12 minutes
        clock.advance(timedelta(seconds=30 * (len(values) - 1) + 121))
        deadline = time.monotonic() + 10
        while monitor.totals.silent < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(10)
        monitor.stop()
    kinds = sorted((a.sensor, a.kind) for a in monitoring.alarms(app))
    assert kinds == [("co2", "no-data"), ("humidity", "no-data"), ("temperature", "high"),
                     ("temperature", "no-data")]  # fmt: skip
    forget_session(f"monitor-{site}")


def test_the_simulator_publishes_every_sensor_of_every_unit_with_its_events(
    sqlite_app: App, site: str
) -> None:
    units = [Unit(site, "ACP-1", "automated-cell-processor"), Unit(site, "INC-1", "incubator"),
             Unit(site, "BSC-1", "biosafety-cabinet")]  # fmt: skip
    simulator = Simulator(units, hz=1.0)
    assert [u.equipment for u in simulator.units] == ["ACP-1", "INC-1"]  # no sensors: left out
    calm = (False, False)
    assert simulator.state(0, 100.0) == (True, False) and simulator.state(0, 500.0) == calm
    assert simulator.state(1, 700.0) == (False, True) and simulator.state(1, 1300.0) == calm
    ingest = Ingest(sqlite_app, client_id=f"ingest-{site}", topic=f"v2v/{site}/#", flush_s=0.05)
    ingest.start()
    simulator.start()
    try:
        now = time.time()
        assert simulator.tick(now, 0.0) == 4 + 3  # four sensors and three
        assert simulator.tick(now + 1, 100.0) == 7  # the first unit runs hot
        assert simulator.tick(now + 2, 700.0) == 4  # the second is silent
        run_until(ingest, lambda: ingest.totals.stored >= 18)
    finally:
        simulator.stop()
        ingest.stop()
    hot = telemetry.readings_of(sqlite_app, "ACP-1", "temperature")
    assert [round(v) for _, _, v, _ in hot] == [37, 39, 37]
    assert len(telemetry.readings_of(sqlite_app, "INC-1", "humidity")) == 2
    forget_session(f"ingest-{site}")


def _read_packet(conn: socket.socket) -> tuple[int, bytes]:
    """One MQTT packet: its type byte and its body."""
    first = conn.recv(1)
    if not first:
        raise ConnectionError("closed")
    length, shift = 0, 0
    while True:
        byte = conn.recv(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    body = b""
    while len(body) < length:
        body += conn.recv(length - len(body))
    return first[0], body


def test_a_broker_that_closes_every_new_connection_is_tried_again_less_and_less_often(
    sqlite_app: App,
) -> None:
    """A broker that takes the connection and then drops it (bad credentials, too many
    clients, another ingest under the same client id): the ingest waits 1 s, 2 s, 4 s …
    between attempts instead of hammering it. A broker of the test's own, speaking just
    enough MQTT 5 to accept one session."""
    server = socket.socket()
    server.bind((HOST, 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list[float] = []
    over = threading.Event()

    def serve() -> None:
        while not over.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            accepted.append(time.monotonic())
            with conn:
                if len(accepted) > 1:
                    continue  # closed at once
                _read_packet(conn)  # CONNECT
                conn.sendall(bytes([0x20, 3, 0, 0, 0]))  # CONNACK: accepted, no properties
                _, subscribe = _read_packet(conn)
                conn.sendall(bytes([0x90, 4, *subscribe[:2], 0, 1]))  # SUBACK: QoS 1
                time.sleep(0.3)  # then the connection is lost

    serving = threading.Thread(target=serve, daemon=True)
    serving.start()
    ingest = Ingest(sqlite_app, port=server.getsockname()[1], client_id="backoff")
    try:
        ingest.start()
        stop = threading.Event()
        worker = threading.Thread(target=ingest.run, args=(stop,), daemon=True)
        worker.start()
        time.sleep(4.0)
        stop.set()
        worker.join(10)
        assert not worker.is_alive()
    finally:
        ingest.stop()
        over.set()
        serving.join(5)
        server.close()
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(accepted[1:])]
    # lost at 0.3 s: at once, then 1 s and 2 s later (the next, 4 s later, is past the end)
    assert len(accepted) == 4, (len(accepted), gaps)
    assert 0.8 <= gaps[0] <= 1.6 and 1.8 <= gaps[1] <= 2.6, gaps
