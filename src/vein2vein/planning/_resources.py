"""What the model's SimPy resources keep besides their queue: time-averages for utilisation,
the waits, and staff shifts (a shift's end takes the staff away with requests that jump
the queue, so work not started waits for the next shift and work under way finishes)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Generator, Iterator
from typing import Any

import numpy as np
import simpy
from simpy.resources.resource import SortedQueue

from vein2vein.planning.scenario import (
    Distribution,
    Exponential,
    Fixed,
    Lognormal,
    Shift,
)

__all__ = ["OFF_DUTY", "Draws", "Level", "Pool", "PriorityResource", "sampler", "shift_process"]

#: The priority of the requests that take staff off duty: before any work.
OFF_DUTY = -1
_BLOCK = 4096


class Draws:
    """Uniform and standard normal variates from one seeded generator, drawn in blocks
    (numpy's per-call overhead would otherwise cost more than the simulation's events)."""

    __slots__ = ("_normal", "_rng", "_uniform")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._uniform: list[float] = []
        self._normal: list[float] = []

    def uniform(self) -> float:
        """A draw from [0, 1)."""
        if not self._uniform:
            self._uniform = self._rng.random(_BLOCK).tolist()
        return self._uniform.pop()

    def normal(self) -> float:
        if not self._normal:
            self._normal = self._rng.standard_normal(_BLOCK).tolist()
        return self._normal.pop()


def sampler(dist: Distribution, draws: Draws, scale: float) -> Callable[[], float]:
    """A function drawing from ``dist`` times ``scale`` (e.g. 1/24: hours to days)."""
    if isinstance(dist, Fixed):
        value = dist.value * scale
        return lambda: value
    if isinstance(dist, Exponential):
        mean = dist.mean * scale
        return lambda: -mean * math.log(1.0 - draws.uniform())
    if isinstance(dist, Lognormal):
        median, sigma = dist.median * scale, dist.sigma
        return lambda: median * math.exp(sigma * draws.normal())
    low, mode, high = dist.low * scale, dist.mode * scale, dist.high * scale
    if high == low:
        return lambda: low
    cut = (mode - low) / (high - low)

    def triangular() -> float:  # inverse of the distribution function
        u = draws.uniform()
        if u < cut:
            return low + math.sqrt(u * (high - low) * (mode - low))
        return high - math.sqrt((1 - u) * (high - low) * (high - mode))

    return triangular


def _key(request: Any) -> Any:
    return request.key


class _PriorityQueue(SortedQueue):
    """SimPy's sorted put queue, kept sorted by insertion (O(log n) comparisons) rather than
    by sorting the whole queue on each request: the same order (priority, then time, then
    first come), without the cost that grows with the queue."""

    def append(self, item: Any) -> None:
        if self.maxlen is not None and len(self) >= self.maxlen:
            raise RuntimeError("Cannot append event. Queue is full.")
        bisect.insort_right(self, item, key=_key)


class PriorityResource(simpy.PriorityResource):
    """:class:`simpy.PriorityResource` with :class:`_PriorityQueue` as its ``PutQueue`` (the
    extension point SimPy's ``BaseResource`` documents)."""

    PutQueue = _PriorityQueue


class Level:
    """A count that changes in time (patients in the system, busy servers), integrated over
    the measurement window [start, end] for its time-average."""

    __slots__ = ("area", "end", "last", "start", "value")

    def __init__(self, start: float, end: float, value: float = 0.0) -> None:
        self.start, self.end = start, end
        self.value = value
        self.last = 0.0
        self.area = 0.0

    def add(self, now: float, change: float) -> None:
        low = self.last if self.last > self.start else self.start
        high = now if now < self.end else self.end
        if high > low:
            self.area += self.value * (high - low)
        self.last = now
        self.value += change

    def mean(self) -> float:
        """The time-average over the window; call once the clock has passed its end."""
        tail = self.end - max(self.last, self.start)
        area = self.area + (self.value * tail if tail > 0 else 0.0)
        return area / (self.end - self.start)


class Pool:
    """A :class:`simpy.PriorityResource` of ``capacity`` units (suites, device slots,
    operators, analysts, instruments) with its busy and on-duty time and the waits of the
    requests made in the window."""

    __slots__ = ("busy", "env", "name", "on_duty", "resource", "waits", "window")

    def __init__(self, env: simpy.Environment, name: str, capacity: int,
                 window: tuple[float, float]) -> None:  # fmt: skip
        self.env = env
        self.name = name
        self.resource = PriorityResource(env, capacity=capacity)
        self.window = window
        self.busy = Level(*window)
        self.on_duty = Level(*window, value=capacity)
        self.waits: list[float] = []

    def got(self, asked_at: float, units: int = 1) -> None:
        """Record ``units`` granted now to requests made at ``asked_at``."""
        now = self.env.now
        self.busy.add(now, units)
        if self.window[0] <= asked_at < self.window[1]:
            self.waits.append(now - asked_at)

    def release(self, request: simpy.resources.resource.PriorityRequest) -> None:
        self.busy.add(self.env.now, -1)
        self.resource.release(request)

    def utilisation(self) -> float:
        duty = self.on_duty.mean()
        return self.busy.mean() / duty if duty > 0 else 0.0


def _on_periods(shift: Shift) -> Iterator[tuple[float, float]]:
    """The shift's on-duty periods in days from Monday 00:00, overlapping ones merged."""

    def raw() -> Iterator[tuple[float, float]]:
        week = 0
        while True:
            for day in range(shift.days_per_week):
                start = 7 * week + day + shift.start_hour / 24
                yield start, start + shift.hours_per_day / 24
            week += 1

    periods = raw()
    start, end = next(periods)
    for nxt_start, nxt_end in periods:
        if nxt_start <= end:
            end = max(end, nxt_end)
            continue
        yield start, end
        start, end = nxt_start, nxt_end


def shift_process(
    env: simpy.Environment, pool: Pool, shift: Shift
) -> Generator[simpy.Event, Any, None]:
    """Take ``pool``'s staff off duty between the shift's periods, for ever."""
    resource, headcount = pool.resource, shift.headcount
    for start, end in _on_periods(shift):
        if start > env.now:
            void: set[object] = set()

            def granted(event: Any, void: set[object] = void) -> None:
                if event in void:  # the shift began before this hand-over was processed
                    resource.release(event)
                else:
                    pool.on_duty.add(env.now, -1)

            held = [resource.request(priority=OFF_DUTY) for _ in range(headcount)]
            for request in held:
                request.callbacks.append(granted)
            yield env.timeout(start - env.now)
            for request in held:
                if request.processed:
                    pool.on_duty.add(env.now, 1)
                    resource.release(request)
                elif request.triggered:
                    void.add(request)
                else:
                    request.cancel()
        yield env.timeout(end - env.now)
