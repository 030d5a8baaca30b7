"""Synthetic in-line sensor signals of the demo's units (issue 10): what the device
simulator (telemetry/simulator.py) publishes live, and what the demo build uploads as the
history of past culture steps. Synthetic data only.

Each sensor sits near its set point with measurement noise; pH and dissolved oxygen drift
down as the cells grow and come back with each medium exchange (every ``FEED_S``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DROP_OUT", "EXCURSION", "FEED_S", "HOT", "PROFILES", "Signal", "reading_value"]


@dataclass(frozen=True, slots=True)
class Signal:
    set_point: float
    noise: float
    unit: str
    drift: float = 0.0  # how far it falls over a feeding cycle (pH, dissolved oxygen)


#: The sensors of each class of monitored equipment, near their set points.
PROFILES: dict[str, dict[str, Signal]] = {
    "automated-cell-processor": {
        "temperature": Signal(37.0, 0.04, "°C"),
        "ph": Signal(7.30, 0.01, "pH", drift=0.18),
        "do": Signal(60.0, 0.8, "%", drift=25.0),
        "co2": Signal(5.0, 0.03, "%"),
    },
    "incubator": {
        "temperature": Signal(37.0, 0.05, "°C"),
        "co2": Signal(5.0, 0.04, "%"),
        "humidity": Signal(94.0, 0.4, "%"),
    },
}

FEED_S = 6 * 3600  # a medium exchange every six hours: the drift starts again
EXCURSION = (60.0, 480.0)  # seconds into each cycle: the first unit runs hot
DROP_OUT = (600.0, 840.0)  # seconds into each cycle: the second unit is silent
HOT = 38.6


def reading_value(
    signal: Signal, sensor: str, t: float, *, hot: bool, noise: float
) -> float:  # fmt: skip
    """The value of ``signal`` at ``t`` seconds (Unix time): set point, drift over the
    feeding cycle, ``noise`` (a standard normal draw) and the excursion when ``hot``."""
    phase = (t % FEED_S) / FEED_S
    value = signal.set_point - signal.drift * phase + signal.noise * noise
    if hot and sensor == "temperature":
        value = HOT + signal.noise * noise
    return round(value, 3)
