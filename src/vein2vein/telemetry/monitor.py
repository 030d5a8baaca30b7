"""The alarm monitor (issue 10): every reading, as it arrives, checked against the range of
the batch step running on its equipment; silent equipment noticed.

It subscribes on its own (a persistent MQTT 5 session of its own, QoS 1, not shared with
the ingest): the ingest stores, the monitor watches, and neither waits for the other. A
message is acknowledged once it has been checked (and any alarm it raised committed), so
an alarm is not lost when the monitor stops; a reading delivered again, or older than the
last one of its sensor, is skipped by the rules.

What runs where is read from the database (services/monitoring.running_steps) every
``refresh_s`` seconds: a step started on a unit is watched within that time. On start the
alarms still open are taken up again, so one that clears after a restart is cleared, not
raised a second time.
"""

from __future__ import annotations

import contextlib
import copy
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import paho.mqtt.client as mqtt

from vein2vein.domain.errors import InvalidInput, V2VError
from vein2vein.domain.telemetry import AlarmTracker, Reading, SilenceWatch
from vein2vein.formats.telemetry import MalformedReading, parse_reading
from vein2vein.services import monitoring
from vein2vein.services.app import App
from vein2vein.services.monitoring import RunningStep
from vein2vein.telemetry.ingest import connect_session, session_client

__all__ = ["Monitor", "MonitorTotals"]


@dataclass(slots=True)
class MonitorTotals:
    """Readings checked so far, and what came of them."""

    checked: int = 0
    unwatched: int = 0  # no step running on the equipment, or a sensor it does not watch
    late: int = 0  # older than the last reading of its sensor (delivered again)
    raised: int = 0
    cleared: int = 0
    silent: int = 0
    mismatched: int = 0  # the topic's site or the reading's unit is not the running step's
    before_step: int = 0  # measured before the running step began
    failures: int = 0  # checks that failed (the database away) and were tried again
    last_error: str | None = None
    latencies_s: list[float] = field(default_factory=list)  # publish time → alarm stored


@dataclass(slots=True)
class _Watch:
    step: RunningStep
    tracker: AlarmTracker
    alarm_id: int | None = None


@dataclass(slots=True)
class _Silence:
    step: RunningStep
    sensor: str
    watch: SilenceWatch
    alarm_id: int | None = None


class Monitor:
    """Check readings from the broker at ``host``:``port`` (``topic``) as ``client_id``.
    :meth:`start`, then :meth:`run`, then :meth:`stop`. ``context`` says what runs where
    (the database's running steps; a benchmark gives its own)."""

    def __init__(
        self,
        app: App,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        client_id: str = "v2v-monitor",
        topic: str = "v2v/#",
        refresh_s: float = 2.0,
        context: Callable[[App], dict[str, RunningStep]] = monitoring.running_steps,
    ) -> None:
        self.app, self.host, self.port, self.topic = app, host, port, topic
        self.refresh_s, self._context = refresh_s, context
        self.totals = MonitorTotals()
        self.connected = threading.Event()
        self._arrived: queue.SimpleQueue[tuple[str, bytes, int, int]] = queue.SimpleQueue()
        self._running: dict[str, RunningStep] = {}
        self._refreshed = 0.0
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._silences: dict[tuple[str, str], _Silence] = {}
        self._client = session_client(client_id, topic, self.connected, self._on_message)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self._arrived.put((message.topic, bytes(message.payload), message.mid, message.qos))

    def start(self, timeout_s: float = 10.0) -> None:
        """Read what runs where, take up the open alarms, connect and subscribe.

        Raises
        ------
        BrokerUnreachable
            When the broker does not answer within ``timeout_s`` seconds.
        """
        self.refresh(force=True)
        connect_session(self._client, self.host, self.port, self.connected, timeout_s)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # -- context ---------------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> None:
        """Read the running steps again (every ``refresh_s`` seconds, or now)."""
        if not force and time.monotonic() - self._refreshed < self.refresh_s:
            return
        self._refreshed = time.monotonic()
        running = self._context(self.app)
        now = self.app.clock.now()
        # watches of steps that ended are dropped (an alarm still open clears: its step is
        # over, nothing watches that sensor any more); new steps are watched from now
        for key in [k for k, w in self._watches.items() if running.get(k[0]) != w.step]:
            if (open_id := self._watches[key].alarm_id) is not None:
                monitoring.clear_alarm(self.app, open_id, now, None)
            del self._watches[key]
        for key in [k for k, s in self._silences.items() if running.get(k[0]) != s.step]:
            if (open_id := self._silences[key].alarm_id) is not None:
                monitoring.clear_alarm(self.app, open_id, now, None)
            del self._silences[key]
        for equipment, step in running.items():
            if step.monitoring is None:
                continue
            for watched in step.monitoring.sensors:
                key = (equipment, watched.sensor)
                if key not in self._silences:
                    watch = SilenceWatch(step.monitoring.no_data_s, last=now)
                    silence = _Silence(step, watched.sensor, watch)
                    self._take_up(silence, key)
                    self._silences[key] = silence
        self._running = running

    def _take_up(self, silence: _Silence, key: tuple[str, str]) -> None:
        for row in monitoring.alarms(self.app, lot=silence.step.lot, limit=500):
            if (row.equipment, row.sensor) == key and row.cleared_at is None:
                if row.kind == "no-data":
                    silence.watch.silent, silence.alarm_id = True, row.id
                else:
                    watched = silence.step.monitoring and silence.step.monitoring.sensor(key[1])
                    if watched:
                        tracker = AlarmTracker(watched.rule, raised=True)
                        self._watches[key] = _Watch(silence.step, tracker, row.id)

    # -- checking --------------------------------------------------------------------------

    def check(self, reading: Reading) -> None:
        """Check one reading against the step running on its equipment.

        Raises
        ------
        V2VError
            An alarm could not be stored (the database is away): nothing of this reading
            was taken into account, and checking it again does what this call would have.
        """
        step = self._running.get(reading.equipment)
        watched = step.monitoring.sensor(reading.sensor) if step and step.monitoring else None
        if step is None or watched is None:
            self.totals.unwatched += 1
            return
        if reading.site != step.site or reading.unit != watched.unit:
            # published under another site's topic, or in another unit than the MBR's: not
            # checked against a range it cannot be compared with (counted, and on the report)
            self.totals.mismatched += 1
            return
        if reading.time < step.started_at:
            self.totals.before_step += 1  # measured before this step began: another batch's
            return
        key = (reading.equipment, reading.sensor)
        silence = self._silences.get(key)
        if silence is not None:
            now = self.app.clock.now()  # when it arrived: a replayed backlog is heard now
            if silence.watch.silent and silence.alarm_id is not None:
                monitoring.clear_alarm(self.app, silence.alarm_id, now, None)
                silence.alarm_id = None
                self.totals.cleared += 1
            silence.watch.heard(now)
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = _Watch(step, AlarmTracker(watched.rule))
        before = copy.copy(watch.tracker)  # put back if an alarm cannot be stored
        try:
            events = watch.tracker.feed(reading.time, reading.value)
        except InvalidInput:
            self.totals.late += 1
            return
        for event in events:
            try:
                if event.kind == "raised":
                    row = monitoring.raise_alarm(
                        self.app, step, site=step.site, equipment=reading.equipment,
                        sensor=reading.sensor, kind=event.side or "high", since=event.since,
                        at=event.time, value=event.value,
                    )  # fmt: skip
                    watch.alarm_id = row.id
                    self.totals.raised += 1
                    self.totals.latencies_s.append(time.time() - reading.time.timestamp())
                elif event.kind == "cleared" and watch.alarm_id is not None:
                    monitoring.clear_alarm(self.app, watch.alarm_id, event.time, event.value)
                    watch.alarm_id = None
                    self.totals.cleared += 1
            except Exception:
                # not stored: the tracker goes back to before this reading, so the same
                # reading, checked again, raises (or clears) again
                watch.tracker = before
                raise
        self.totals.checked += 1

    def check_silence(self, now: datetime) -> None:
        """Raise "no data" for each watched sensor silent for longer than its step allows."""
        for (equipment, sensor), silence in self._silences.items():
            for event in silence.watch.check(now):
                try:
                    row = monitoring.raise_alarm(
                        self.app, silence.step, site=silence.step.site, equipment=equipment,
                        sensor=sensor, kind="no-data", since=event.since, at=event.time,
                        value=None,
                    )  # fmt: skip
                except Exception:
                    silence.watch.silent = False  # raised again on the next look
                    raise
                silence.alarm_id = row.id
                self.totals.silent += 1

    def run(
        self, stop: threading.Event, on_tick: Callable[[MonitorTotals], None] | None = None
    ) -> MonitorTotals:
        """Check what arrives, in order, until ``stop`` is set; look for silence once a
        second. A message whose check fails (the database is away) is checked again before
        any other, every second, until it succeeds: nothing later is acknowledged first."""
        last_silence = 0.0
        pending: tuple[str, bytes, int, int] | None = None
        while not stop.is_set():
            if pending is None:
                with contextlib.suppress(queue.Empty):
                    pending = self._arrived.get(timeout=0.2)
            try:
                self.refresh()
                if pending is not None:
                    topic, payload, mid, qos = pending
                    # a malformed message: the ingest keeps it in the quarantine, with the reason
                    with contextlib.suppress(MalformedReading):
                        self.check(parse_reading(topic, payload))
                    if qos > 0:
                        self._client.ack(mid, qos)
                    pending = None
                if time.monotonic() - last_silence >= 1.0:
                    last_silence = time.monotonic()
                    self.check_silence(self.app.clock.now())
                    if on_tick is not None:
                        on_tick(self.totals)
                self.totals.last_error = None
            except Exception as failed:  # the database is away (or worse): say so, retry
                message = failed.message if isinstance(failed, V2VError) else repr(failed)
                self.totals.last_error = message[:300]
                self.totals.failures += 1
                if on_tick is not None:
                    on_tick(self.totals)
                stop.wait(1.0)
        return self.totals
