"""Sensor readings and the alarms they raise (issue 10, DESIGN §10), as pure rules.

A :class:`Reading` is one value of one sensor of one piece of equipment at a site, with the
sequence number its publisher gave it (equipment, sensor and sequence identify it: a
reading delivered twice is the same reading).

An :class:`AlarmTracker` watches one sensor against an :class:`AlarmRule` (the range an MBR
step allows): a value outside the range starts an *excursion*; only an excursion that lasts
``persistence_s`` seconds raises an alarm, so a single noisy reading pages nobody. A raised
alarm clears when the value is back inside the range narrowed by ``hysteresis`` (so a
value wavering on the limit does not raise and clear over and over). A
:class:`SilenceWatch` raises a "no data" alarm when a sensor has said nothing for
``timeout_s`` seconds, once, and clears it with the next reading.

Time is given, never read from a clock: the rules are the same for live data and for a
history replayed in a test.

Examples
--------
>>> from datetime import UTC, datetime, timedelta
>>> rule = AlarmRule(low=36.0, high=38.0, persistence_s=60, hysteresis=0.2)
>>> tracker = AlarmTracker(rule)
>>> t0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
>>> at = lambda s: t0 + timedelta(seconds=s)
>>> tracker.feed(at(0), 38.5)     # out of range: an excursion starts, no alarm yet
[]
>>> tracker.feed(at(30), 37.0)    # back within 30 s: forgotten
[]
>>> tracker.feed(at(40), 38.4)
[]
>>> [e.kind for e in tracker.feed(at(100), 38.6)]   # out for 60 s: one alarm
['raised']
>>> tracker.feed(at(110), 37.9)   # inside, but not by the hysteresis: still raised
[]
>>> [e.kind for e in tracker.feed(at(120), 37.7)]
['cleared']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from vein2vein.domain.errors import InvalidInput

__all__ = [
    "AlarmEvent",
    "AlarmRule",
    "AlarmTracker",
    "MonitoredSensor",
    "Monitoring",
    "Reading",
    "SilenceWatch",
]


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of ``sensor`` on ``equipment`` at ``site``, measured at ``time`` (aware,
    UTC) in ``unit``; ``sequence`` is its publisher's number for it."""

    site: str
    equipment: str
    sensor: str
    time: datetime
    value: float
    unit: str
    sequence: int

    @property
    def key(self) -> tuple[str, str, int]:
        """What makes a reading the same reading: equipment, sensor, sequence."""
        return (self.equipment, self.sensor, self.sequence)


@dataclass(frozen=True, slots=True)
class AlarmRule:
    """The range a sensor must stay in (``low``, ``high``; either may be None), how long
    a value must stay outside before it alarms (``persistence_s``, seconds) and how far
    back inside it must come to clear (``hysteresis``, in the sensor's unit)."""

    low: float | None
    high: float | None
    persistence_s: float = 0.0
    hysteresis: float = 0.0

    def __post_init__(self) -> None:
        if self.low is None and self.high is None:
            raise InvalidInput("alarm rule: give a low limit, a high limit or both")
        for name in ("low", "high"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise InvalidInput(f"alarm rule: {name} {value!r} is not a number")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise InvalidInput(f"alarm rule: low {self.low:g} is not below high {self.high:g}")
        if not (math.isfinite(self.persistence_s) and self.persistence_s >= 0):
            raise InvalidInput(f"alarm rule: persistence {self.persistence_s!r} s is not ≥ 0")
        if not (math.isfinite(self.hysteresis) and self.hysteresis >= 0):
            raise InvalidInput(f"alarm rule: hysteresis {self.hysteresis!r} is not ≥ 0")
        if (self.low is not None and self.high is not None
                and self.low + self.hysteresis >= self.high - self.hysteresis):  # fmt: skip
            raise InvalidInput(
                f"alarm rule: a hysteresis of {self.hysteresis:g} leaves no room to clear "
                f"between {self.low:g} and {self.high:g}"
            )

    def side(self, value: float) -> Literal["high", "low"] | None:
        """Which limit ``value`` is beyond, if any."""
        if self.high is not None and value > self.high:
            return "high"
        if self.low is not None and value < self.low:
            return "low"
        return None

    def cleared(self, value: float) -> bool:
        """Whether ``value`` is inside the range narrowed by the hysteresis."""
        if self.high is not None and value > self.high - self.hysteresis:
            return False
        return not (self.low is not None and value < self.low + self.hysteresis)


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """An alarm ``raised`` (at the reading that made the excursion last long enough;
    ``since`` is when the excursion began, ``side`` which limit) or ``cleared``, or a
    sensor gone ``silent`` and ``heard`` again."""

    kind: Literal["raised", "cleared", "silent", "heard"]
    time: datetime
    since: datetime
    side: Literal["high", "low"] | None
    value: float | None


@dataclass(slots=True)
class AlarmTracker:
    """Watches one sensor's readings, in time order, against ``rule`` (see the module)."""

    rule: AlarmRule
    raised: bool = False
    _since: datetime | None = field(default=None, repr=False)
    _side: Literal["high", "low"] | None = field(default=None, repr=False)
    _last: datetime | None = field(default=None, repr=False)

    def feed(self, time: datetime, value: float) -> list[AlarmEvent]:
        """The events this reading brings: none, one raised or one cleared — or, for a value
        that swings from beyond one limit to beyond the other, the alarm cleared and (once
        the new excursion has lasted its persistence time) another raised.

        Raises
        ------
        InvalidInput
            For a reading older than the last one fed (replay a history in time order) or a
            value that is not a number.
        """
        if not math.isfinite(value):
            raise InvalidInput(f"reading at {time.isoformat()}: value {value!r} is not a number")
        if self._last is not None and time < self._last:
            raise InvalidInput(
                f"reading at {time.isoformat()}: older than the last one "
                f"({self._last.isoformat()}); feed readings in time order"
            )
        self._last = time
        side = self.rule.side(value)
        events: list[AlarmEvent] = []
        if self.raised:
            swung = side is not None and self._side is not None and side != self._side
            if not (self.rule.cleared(value) or swung):
                return []
            # back inside (by the hysteresis), or beyond the other limit: this alarm clears
            # and, if it swung, a new excursion starts now
            events.append(AlarmEvent("cleared", time, self._since or time, None, value))
            self.raised, self._since, self._side = False, None, None
        if side is None:
            self._since, self._side = None, None
            return events
        if self._since is None or side != self._side:
            self._since, self._side = time, side
        if (time - self._since).total_seconds() >= self.rule.persistence_s:
            self.raised = True
            events.append(AlarmEvent("raised", time, self._since, side, value))
        return events


@dataclass(slots=True)
class SilenceWatch:
    """Raises "no data" once when a sensor has been silent for ``timeout_s`` seconds, and
    clears it with its next reading."""

    timeout_s: float
    last: datetime | None = None
    silent: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise InvalidInput(f"no-data timeout {self.timeout_s!r} s: expected a number > 0")

    def heard(self, time: datetime) -> list[AlarmEvent]:
        """A reading arrived at ``time``."""
        was_silent, since = self.silent, self.last
        self.last = time if self.last is None else max(self.last, time)  # never backwards
        self.silent = False
        if was_silent and since is not None:
            return [AlarmEvent("heard", time, since, None, None)]
        return []

    def check(self, now: datetime) -> list[AlarmEvent]:
        """Whether the sensor has gone silent by ``now`` (an event the first time only)."""
        if self.silent or self.last is None:
            return []
        if (now - self.last).total_seconds() >= self.timeout_s:
            self.silent = True
            return [AlarmEvent("silent", now, self.last, None, None)]
        return []


@dataclass(frozen=True, slots=True)
class MonitoredSensor:
    """A sensor an MBR step watches on its equipment: the ``rule`` its readings must keep
    (in ``unit``), and the severity of the deviation an alarm opens (``None``: the alarm is
    acknowledged, no deviation)."""

    sensor: str
    unit: str
    rule: AlarmRule
    deviation: Literal["minor", "major"] | None = None


@dataclass(frozen=True, slots=True)
class Monitoring:
    """What an MBR step watches while it runs: its sensors, and how long the equipment may
    say nothing (``no_data_s``) before a "no data" alarm."""

    sensors: tuple[MonitoredSensor, ...]
    no_data_s: float = 120.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.no_data_s) and self.no_data_s > 0):
            raise InvalidInput(f"no-data timeout {self.no_data_s!r} s: expected a number > 0")

    def sensor(self, name: str) -> MonitoredSensor | None:
        """The watched sensor called ``name``, if the step watches it."""
        for watched in self.sensors:
            if watched.sensor == name:
                return watched
        return None
