"""Chain of custody: every hand-off of a patient's material, who to whom, where and how cold."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.events import Event

__all__ = ["CustodyEvent", "Handoff"]

# A liquid-nitrogen dry shipper runs below -150 °C; fresh apheresis travels at 2-8 °C or
# ambient. Anything outside these bounds is a typing error, not a temperature.
_MIN_C, _MAX_C = -200.0, 45.0


@dataclass(frozen=True, slots=True)
class Handoff:
    """What a person says at a hand-off: from whom, to whom, where, at what temperature (°C)."""

    from_party: str
    to_party: str
    location: str
    temperature_c: float | None = None

    def __post_init__(self) -> None:
        for name in ("from_party", "to_party", "location"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(f"hand-off {name}: expected a non-empty name, got {value!r}")
        t = self.temperature_c
        if t is not None and (not math.isfinite(t) or not _MIN_C <= t <= _MAX_C):
            raise InvalidInput(
                f"hand-off temperature_c {t!r}: expected {_MIN_C:g} to {_MAX_C:g} °C"
            )

    def to_event(
        self, lot: str, action: str, *, scanned: str | None, at: datetime, by: str
    ) -> CustodyEvent:
        return CustodyEvent(
            lot=lot,
            action=action,
            from_party=self.from_party,
            to_party=self.to_party,
            location=self.location,
            temperature_c=self.temperature_c,
            scanned=scanned,
            at=at,
            recorded_by=by,
        )


@dataclass(frozen=True, slots=True)
class CustodyEvent:
    """One recorded change of custody of a batch's material."""

    lot: str
    action: str
    from_party: str
    to_party: str
    location: str
    temperature_c: float | None
    scanned: str | None
    at: datetime
    recorded_by: str

    def event(self) -> Event:
        return Event(
            "CustodyTransferred",
            self.recorded_by,
            self.at,
            "custody",
            self.lot,
            new={
                "action": self.action,
                "from": self.from_party,
                "to": self.to_party,
                "location": self.location,
                "temperature_c": self.temperature_c,
                "scanned": self.scanned,
            },
        )
