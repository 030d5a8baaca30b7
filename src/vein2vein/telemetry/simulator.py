"""A device simulator for the demo (issue 10): realistic in-line sensor traces for the
network's incubators and automated cell processors, published over MQTT as the real
units would (topic ``v2v/<site>/<equipment>/<sensor>``, QoS 1, one reading a second).

Each unit's sensors sit near their set point with measurement noise; pH and dissolved
oxygen drift down slowly as the cells grow and come back with each medium exchange. And,
every ``cycle_s`` seconds (20 minutes by default), two things go wrong so the demo has
something to show:

* the first unit's temperature climbs past 38 °C for seven minutes (an **excursion**:
  longer than any MBR's persistence time, so exactly one alarm per cycle);
* the second unit goes **silent** for four minutes (a network cut: "no data").

Synthetic data only. The sequence number of a reading is its time in milliseconds, so a
simulator started again never reuses one.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from vein2vein.formats.telemetry import topic
from vein2vein.services.device_signals import DROP_OUT, EXCURSION, PROFILES, reading_value
from vein2vein.telemetry.ingest import BrokerUnreachable

__all__ = ["Simulator", "Unit"]


@dataclass(frozen=True, slots=True)
class Unit:
    """A monitored unit: where it is, its id and class."""

    site: str
    equipment: str
    equipment_class: str


class Simulator:
    """Publish readings of ``units`` at ``hz`` readings a second per sensor to the broker
    at ``host``:``port``; with ``events``, the excursion and the drop-out every
    ``cycle_s`` seconds (from the start)."""

    def __init__(
        self,
        units: list[Unit],
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        hz: float = 1.0,
        events: bool = True,
        cycle_s: float = 1200.0,
        seed: int = 7,
    ) -> None:
        self.units = [u for u in units if u.equipment_class in PROFILES]
        self.host, self.port, self.hz, self.events, self.cycle_s = host, port, hz, events, cycle_s
        self.published = 0
        self._rng = np.random.default_rng(seed)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)  # nothing dropped while the broker is away

    def start(self) -> None:
        """Connect.

        Raises
        ------
        BrokerUnreachable
            When nothing answers at ``host``:``port``.
        """
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise BrokerUnreachable(
                f"MQTT broker {self.host}:{self.port}: {exc.strerror or exc} (is it running?)"
            ) from None
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def state(self, index: int, elapsed: float) -> tuple[bool, bool]:
        """Whether unit ``index`` runs hot, and whether it is silent, ``elapsed`` seconds
        after the start."""
        if not self.events:
            return False, False
        into = elapsed % self.cycle_s
        hot = index == 0 and EXCURSION[0] <= into < EXCURSION[1]
        silent = index == 1 and DROP_OUT[0] <= into < DROP_OUT[1]
        return hot, silent

    def tick(self, now: float, elapsed: float) -> int:
        """Publish one reading of every sensor of every unit that is not silent; how many."""
        sent = 0
        at = datetime.fromtimestamp(now, UTC)
        for index, unit in enumerate(self.units):
            hot, silent = self.state(index, elapsed)
            if silent:
                continue
            for sensor, signal in PROFILES[unit.equipment_class].items():
                value = reading_value(signal, sensor, now, hot=hot,
                                      noise=float(self._rng.standard_normal()))  # fmt: skip
                payload = json.dumps({"time": at.isoformat(), "value": value,
                                      "unit": signal.unit, "seq": int(now * 1000)})  # fmt: skip
                self._client.publish(topic(unit.site, unit.equipment, sensor), payload, qos=1)
                sent += 1
        self.published += sent
        return sent

    def run(self, stop: threading.Event, on_tick: Callable[[int], None] | None = None) -> int:
        """Publish every 1/``hz`` seconds until ``stop`` is set; returns how many readings."""
        started = time.time()
        period = 1.0 / self.hz
        next_at = float(math.ceil(started))
        while not stop.is_set():
            stop.wait(max(0.0, next_at - time.time()))
            if stop.is_set():
                break
            self.tick(next_at, next_at - started)
            if on_tick is not None:
                on_tick(self.published)
            next_at += period
            if next_at < time.time() - 5:  # fell far behind (a suspended laptop): catch up
                next_at = float(math.ceil(time.time()))
        return self.published
