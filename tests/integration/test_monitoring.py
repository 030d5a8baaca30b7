"""Telemetry in context on real SQLite and PostgreSQL (issue 10): a step started on its
equipment links that equipment's readings to the batch; the monitor checks them against
the step's MBR ranges (persistence, hysteresis, silence); alarms are stored with their
audit records, open the deviation the MBR asks for, and are acknowledged with a signature.

The monitor is driven here without a broker (``Monitor.check`` and ``check_silence``, the
code its MQTT loop runs); tests/integration/test_telemetry_mqtt.py drives it through
Mosquitto."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.network import (
    PASSWORD,
    advance,
    equipment_for,
    order,
    people_of,
    record,
    scan_code,
    small_network,
)
from vein2vein.domain.batch import BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import (
    DatabaseUnavailable,
    IdentityMismatch,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
    SignatureRefused,
)
from vein2vein.domain.telemetry import Reading
from vein2vein.services import monitoring
from vein2vein.services.app import App
from vein2vein.services.auth import Signing
from vein2vein.store import tables as t
from vein2vein.telemetry.monitor import Monitor

INCUBATOR = equipment_for("incubator")
EARLIER = ("receipt", "selection_activation", "transduction")


def counts(app: App) -> tuple[int, ...]:
    with app.engine.connect() as c:
        return tuple(
            c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (t.equipment_use, t.alarm, t.deviation, t.audit_record)
        )


def culture(app: App) -> str:
    """A batch whose expansion (watched: temperature 36–38 °C for 300 s, hysteresis 0.2,
    a major deviation; no data for 120 s) runs on the incubator."""
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.IN_PROCESS)
    for step in EARLIER:
        record(app, lot, step)
    crew = people_of(app)
    monitoring.start_step(app.uow(), lot, "expansion", INCUBATOR, by=crew["operator.cp1"],
                          scan=scan_code(app, lot))  # fmt: skip
    return lot


def temperature(at: datetime, value: float, seq: int, sensor: str = "temperature") -> Reading:
    return Reading("CP1", INCUBATOR, sensor, at, value, "°C", seq)


def feed(monitor: Monitor, start: datetime, values: list[float], every_s: int = 30) -> None:
    for i, value in enumerate(values):
        monitor.check(temperature(start + timedelta(seconds=every_s * i), value, i))


def test_a_started_step_links_its_equipment_to_the_batch_until_it_is_over(app: App) -> None:
    lot = culture(app)
    running = monitoring.running_steps(app)
    step = running[INCUBATOR]
    assert (step.lot, step.step_id, step.site) == (lot, "expansion", "CP1")
    assert step.monitoring is not None
    assert [s.sensor for s in step.monitoring.sensors] == ["temperature", "co2", "humidity"]
    record(app, lot, "expansion")  # a culture day: repeatable, the culture runs on
    assert INCUBATOR in monitoring.running_steps(app)
    record(app, lot, "harvest_formulation")  # the next step: the culture is over
    assert INCUBATOR not in monitoring.running_steps(app)
    with app.engine.connect() as c:
        ended = c.execute(sa.select(t.equipment_use.c.ended_by)).scalars().all()
    assert ended == ["operator.cp1"]


def test_a_step_is_refused_on_busy_or_wrong_equipment_and_nothing_is_written(app: App) -> None:
    lot = culture(app)
    crew = people_of(app)
    other = order(app, "PT-000102")
    advance(app, other, BatchState.IN_PROCESS)
    before = counts(app)
    with pytest.raises(RuleViolation, match=f"equipment {INCUBATOR} runs step expansion of "
                                            f"batch {lot}"):  # fmt: skip
        monitoring.start_step(app.uow(), other, "expansion", INCUBATOR,
                              by=crew["operator.cp1"], scan=scan_code(app, other))  # fmt: skip
    with pytest.raises(RuleViolation, match="is of class cell-processor, the step needs"):
        monitoring.start_step(app.uow(), other, "expansion", equipment_for("cell-processor"),
                              by=crew["operator.cp1"], scan=scan_code(app, other))  # fmt: skip
    with pytest.raises(NotFound, match="no step 'culture'"):
        monitoring.start_step(app.uow(), other, "culture", INCUBATOR,
                              by=crew["operator.cp1"], scan=scan_code(app, other))  # fmt: skip
    with pytest.raises(IdentityMismatch):
        monitoring.start_step(app.uow(), other, "selection_activation",
                              equipment_for("cell-processor"), by=crew["operator.cp1"],
                              scan=scan_code(app, lot))  # fmt: skip
    with pytest.raises(PermissionDenied):
        monitoring.start_step(app.uow(), other, "selection_activation",
                              equipment_for("cell-processor"), by=crew["qc.cp1"],
                              scan=scan_code(app, other))  # fmt: skip
    after = counts(app)
    assert after[:3] == before[:3]  # no use, no alarm, no deviation; refusals are audited


def test_an_excursion_raises_exactly_one_alarm_and_the_deviation_the_mbr_asks_for(
    app: App, clock: FixedClock
) -> None:
    lot = culture(app)
    monitor = Monitor(app)
    monitor.refresh(force=True)
    t0 = clock.now()
    # a single noisy reading pages nobody; then 10 minutes above 38 °C; then back, but only
    # by less than the hysteresis at first
    feed(monitor, t0, [37.0, 38.9, 37.1] + [38.6] * 20 + [37.9, 37.9, 37.5, 37.2, 38.4])
    assert (monitor.totals.raised, monitor.totals.cleared) == (1, 1)
    [alarm] = monitoring.alarms(app)
    assert (alarm.kind, alarm.lot, alarm.step_id, alarm.value) == ("high", lot, "expansion",
                                                                    38.6)  # fmt: skip
    assert alarm.since == t0 + timedelta(seconds=90)  # when the excursion began
    assert alarm.raised_at == t0 + timedelta(seconds=90 + 300)  # after its persistence
    assert alarm.cleared_at == t0 + timedelta(seconds=30 * 25)  # 37.5: inside by 0.2
    assert alarm.limits == "36–38 °C" and alarm.deviation is not None
    with app.engine.connect() as c:
        deviation = c.execute(sa.select(t.deviation).where(
            t.deviation.c.reference == alarm.deviation)).one()  # fmt: skip
        names = c.execute(sa.select(t.audit_record.c.action).where(
            t.audit_record.c.entity_type == "alarm")).scalars().all()  # fmt: skip
    assert (deviation.lot, deviation.severity, deviation.state) == (lot, "major", "OPEN")
    assert "temperature on EQ-I above range (38.6 °C)" in deviation.description
    assert names == ["AlarmRaised", "AlarmCleared"]


def test_a_sensor_the_step_does_not_watch_and_an_idle_unit_raise_nothing(
    app: App, clock: FixedClock
) -> None:
    culture(app)
    monitor = Monitor(app)
    monitor.refresh(force=True)
    t0 = clock.now()
    for i in range(30):
        monitor.check(temperature(t0 + timedelta(seconds=30 * i), 99.0, i, sensor="door"))
        monitor.check(Reading("CP1", "EQ-NOTHING", "temperature", t0 + timedelta(seconds=30 * i),
                              99.0, "°C", i))  # fmt: skip
    assert monitor.totals.unwatched == 60 and monitoring.alarms(app) == []


def test_a_silent_unit_raises_no_data_once_and_clears_when_heard(
    app: App, clock: FixedClock
) -> None:
    lot = culture(app)
    monitor = Monitor(app)
    monitor.refresh(force=True)
    feed(monitor, clock.now(), [37.0])
    monitor.check(Reading("CP1", INCUBATOR, "co2", clock.now(), 5.0, "%", 0))
    monitor.check(Reading("CP1", INCUBATOR, "humidity", clock.now(), 95.0, "%", 0))
    clock.advance(timedelta(seconds=119))
    monitor.check_silence(clock.now())
    assert monitoring.alarms(app) == []
    clock.advance(timedelta(seconds=2))
    monitor.check_silence(clock.now())
    monitor.check_silence(clock.now() + timedelta(seconds=30))  # still silent: no second alarm
    silent = monitoring.alarms(app)
    assert sorted(a.sensor for a in silent) == ["co2", "humidity", "temperature"]
    assert {(a.kind, a.lot, a.deviation) for a in silent} == {("no-data", lot, None)}
    assert silent[0].limits == "a reading at least every 120 s"
    feed(monitor, clock.now(), [37.0])
    cleared = {a.sensor: a.cleared_at for a in monitoring.alarms(app)}
    assert cleared["temperature"] == clock.now() and cleared["co2"] is None


def test_a_restarted_monitor_clears_the_open_alarm_instead_of_raising_it_again(
    app: App, clock: FixedClock
) -> None:
    culture(app)
    first = Monitor(app)
    first.refresh(force=True)
    t0 = clock.now()
    feed(first, t0, [38.6] * 12)
    assert first.totals.raised == 1
    again = Monitor(app)  # a restart: the alarm is still open
    again.refresh(force=True)
    feed(again, t0 + timedelta(seconds=400), [38.7, 37.0])
    [alarm] = monitoring.alarms(app)
    assert again.totals.raised == 0 and alarm.cleared_at is not None


def test_an_alarm_is_acknowledged_once_with_a_signature_and_a_comment(
    app: App, clock: FixedClock
) -> None:
    culture(app)
    crew = people_of(app)
    monitor = Monitor(app)
    monitor.refresh(force=True)
    feed(monitor, clock.now(), [38.6] * 12)
    [alarm] = monitoring.alarms(app, unacknowledged=True)
    operator = crew["operator2.cp1"]
    with pytest.raises(InvalidInput, match="a comment"):
        monitoring.acknowledge_alarm(app.uow(), alarm.id, by=operator, comment=" ",
                                     signing=Signing(PASSWORD, "operator2.cp1"))  # fmt: skip
    with pytest.raises(SignatureRefused):
        monitoring.acknowledge_alarm(app.uow(), alarm.id, by=operator, comment="door shut",
                                     signing=Signing("wrong", "operator2.cp1"))  # fmt: skip
    with pytest.raises(PermissionDenied):
        monitoring.acknowledge_alarm(app.uow(), alarm.id, by=crew["qc.cp1"], comment="seen",
                                     signing=Signing(PASSWORD, "qc.cp1"))  # fmt: skip
    assert monitoring.alarms(app, unacknowledged=True) == [alarm]
    done = monitoring.acknowledge_alarm(
        app.uow(), alarm.id, by=operator, comment="door left open; shut, culture checked",
        signing=Signing(PASSWORD, "operator2.cp1"),
    )  # fmt: skip
    assert (done.acknowledged_by, done.acknowledged_at) == ("operator2.cp1", clock.now())
    assert monitoring.alarms(app, unacknowledged=True) == []
    with pytest.raises(RuleViolation, match=r"was acknowledged by operator2\.cp1"):
        monitoring.acknowledge_alarm(app.uow(), alarm.id, by=crew["qa.cp1"], comment="again",
                                     signing=Signing(PASSWORD, "qa.cp1"))  # fmt: skip
    with app.engine.connect() as c:
        signed = c.execute(sa.select(t.signature.c.meaning, t.signature.c.signer_id)).all()
    assert ("reviewed", "operator2.cp1") in [tuple(s) for s in signed]


def _message(at: datetime, value: float, seq: int, *, site: str = "CP1", unit: str = "°C",
             sensor: str = "temperature") -> tuple[str, bytes, int, int]:  # fmt: skip
    body = {"time": at.isoformat(), "value": value, "unit": unit, "seq": seq}
    return (f"v2v/{site}/{INCUBATOR}/{sensor}", json.dumps(body).encode(), 0, 0)


def _run(monitor: Monitor, messages: list[tuple[str, bytes, int, int]]) -> None:
    """The monitor's own loop over ``messages`` (QoS 0: nothing to acknowledge)."""
    for m in messages:
        monitor._arrived.put(m)
    stop = threading.Event()
    worker = threading.Thread(target=monitor.run, args=(stop,), daemon=True)
    worker.start()
    deadline = time.monotonic() + 20
    while not monitor._arrived.empty() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    stop.set()
    worker.join(10)


def test_an_alarm_the_database_could_not_store_is_raised_when_it_is_back(
    app: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database away at the very moment an excursion alarms: the same message is checked
    again, before any later one, and the alarm is raised once — not lost behind a later
    reading back in range."""
    lot = culture(app)
    real, failures = monitoring.raise_alarm, []

    def away_once(*args: object, **kwargs: object) -> object:
        if not failures:
            failures.append(1)
            raise DatabaseUnavailable("database: connection refused (test)")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(monitoring, "raise_alarm", away_once)
    monitor = Monitor(app)
    monitor.refresh(force=True)
    t0 = clock.now()
    values = [38.6] * 11 + [37.0]  # the 11th reading alarms; the 12th is back in range
    _run(monitor, [_message(t0 + timedelta(seconds=30 * i), v, i) for i, v in enumerate(values)])
    [alarm] = monitoring.alarms(app)
    assert failures == [1] and monitor.totals.failures >= 1 and monitor.totals.late == 0
    assert (alarm.lot, alarm.kind, alarm.cleared_at) == (lot, "high", t0 + timedelta(seconds=330))
    with app.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(t.deviation)).scalar_one() == 1


def test_a_replayed_backlog_raises_no_false_silence_and_old_readings_belong_to_no_step(
    app: App, clock: FixedClock
) -> None:
    culture(app)
    monitor = Monitor(app)
    monitor.refresh(force=True)
    started = clock.now()
    clock.advance(timedelta(minutes=30))  # the monitor was away; now the backlog arrives
    for i in range(60):  # half an hour of in-range readings, every 30 s, since the start
        for sensor, value, unit in (("temperature", 37.0, "°C"), ("co2", 5.0, "%"),
                                    ("humidity", 94.0, "%")):  # fmt: skip
            at = started + timedelta(seconds=30 * i)
            monitor.check(Reading("CP1", INCUBATOR, sensor, at, value, unit, i))
        monitor.check_silence(clock.now())
    monitor.check(temperature(started - timedelta(minutes=5), 38.9, 999))  # the batch before
    assert monitoring.alarms(app) == [] and monitor.totals.before_step == 1


def test_a_reading_under_another_sites_topic_or_in_another_unit_is_not_checked(
    app: App, clock: FixedClock
) -> None:
    culture(app)
    monitor = Monitor(app)
    monitor.refresh(force=True)
    t0 = clock.now()
    for i in range(20):
        at = t0 + timedelta(seconds=30 * i)
        monitor.check(Reading("CP2", INCUBATOR, "temperature", at, 38.6, "°C", i))
        monitor.check(Reading("CP1", INCUBATOR, "temperature", at, 101.5, "°F", 100 + i))
    assert monitoring.alarms(app) == [] and monitor.totals.mismatched == 40


def test_a_no_data_alarm_whose_clearing_failed_clears_when_tried_again(
    app: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    culture(app)
    monitor = Monitor(app)
    monitor.refresh(force=True)
    clock.advance(timedelta(seconds=121))
    monitor.check_silence(clock.now())
    assert {a.kind for a in monitoring.alarms(app)} == {"no-data"}
    real = monitoring.clear_alarm

    def away(*args: object, **kwargs: object) -> None:
        raise DatabaseUnavailable("database: connection refused (test)")

    monkeypatch.setattr(monitoring, "clear_alarm", away)
    with pytest.raises(DatabaseUnavailable):
        monitor.check(temperature(clock.now(), 37.0, 1))
    monkeypatch.setattr(monitoring, "clear_alarm", real)
    monitor.check(temperature(clock.now(), 37.0, 1))
    cleared = {a.sensor: a.cleared_at for a in monitoring.alarms(app)}
    assert cleared["temperature"] == clock.now()


def test_an_alarm_open_when_its_step_ends_is_cleared_not_left_active(
    app: App, clock: FixedClock
) -> None:
    lot = culture(app)
    monitor = Monitor(app)
    monitor.refresh(force=True)
    feed(monitor, clock.now(), [38.6] * 12)
    record(app, lot, "expansion")
    record(app, lot, "harvest_formulation")  # the culture is over, its alarm still open
    monitor.refresh(force=True)
    [alarm] = monitoring.alarms(app)
    assert alarm.cleared_at == clock.now()
