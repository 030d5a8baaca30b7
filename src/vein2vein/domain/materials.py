"""Material lots, equipment and deviations: the rules a batch-record step checks (issue 5).

Pure and stdlib only; the store and services that keep them come next.

- A material lot moves QUARANTINE → RELEASED → (EXPIRED | REJECTED), or QUARANTINE → REJECTED;
  a step consumes only a released, unexpired lot of the type the MBR names.
- Equipment has a class, a site and a calibration due date; a step refuses equipment that is
  out of calibration, of another class, or at another site.
- A deviation is minor, major or critical; an open major or critical deviation blocks the
  release of its batch; QA closes it (with an electronic signature, in the service).

Examples
--------
>>> from datetime import UTC, date, datetime
>>> lot = MaterialLot("LV-24-0117", "Lentiviral vector (anti-CD19 CAR)", "VectorCo",
...                   expiry=date(2027, 1, 31), status=LotStatus.RELEASED)
>>> lot.check_consumable("Lentiviral vector (anti-CD19 CAR)", on=date(2026, 3, 2))
>>> blocks_release([Deviation("DV-1", "CP1-2026-00001", Severity.MINOR, "late count")])
False
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from vein2vein.domain.errors import InvalidInput, RuleViolation

__all__ = [
    "Deviation",
    "DeviationState",
    "Equipment",
    "LotStatus",
    "MaterialLot",
    "Severity",
    "blocking_release",
    "blocks_release",
]


class LotStatus(StrEnum):
    QUARANTINE = "QUARANTINE"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


_LOT_MOVES = {
    LotStatus.QUARANTINE: {LotStatus.RELEASED, LotStatus.REJECTED},
    LotStatus.RELEASED: {LotStatus.EXPIRED, LotStatus.REJECTED},
    LotStatus.EXPIRED: set(),
    LotStatus.REJECTED: set(),
}


@dataclass(frozen=True, slots=True)
class MaterialLot:
    """A lot of a material (reagent, vector, medium, bag) from a supplier."""

    lot: str
    type: str
    supplier: str
    expiry: date
    status: LotStatus = LotStatus.QUARANTINE

    def __post_init__(self) -> None:
        for name in ("lot", "type", "supplier"):
            if not getattr(self, name).strip():
                raise InvalidInput(f"material lot {name} is empty")

    def moved_to(self, status: LotStatus) -> MaterialLot:
        """The lot in ``status``; refused unless the lot's life allows that move."""
        if status not in _LOT_MOVES[self.status]:
            raise RuleViolation(
                f"material lot {self.lot}: cannot go from {self.status.value} to {status.value}"
            )
        return replace(self, status=status)

    def usable(self, *, on: date) -> bool:
        """Whether a step may consume this lot on ``on`` (released, not expired)."""
        try:
            self.check_consumable(self.type, on=on)
        except RuleViolation:
            return False
        return True

    def check_consumable(self, expected_type: str, *, on: date) -> None:
        """Refuse a lot a step may not consume: not released, expired, or another type."""
        if self.type != expected_type:
            raise RuleViolation(
                f"material lot {self.lot} is {self.type!r}, the step needs {expected_type!r}"
            )
        if self.status is not LotStatus.RELEASED:
            raise RuleViolation(
                f"material lot {self.lot} is {self.status.value}: only a released lot is used"
            )
        if on > self.expiry:
            raise RuleViolation(f"material lot {self.lot} expired on {self.expiry.isoformat()}")


@dataclass(frozen=True, slots=True)
class Equipment:
    """A device a step uses: its class (as the MBR names it), site, calibration due date."""

    id: str
    equipment_class: str
    site: str
    calibration_due: date

    def check_usable(self, expected_class: str | None, *, site: str, on: date) -> None:
        """Refuse equipment of another class, at another site, or out of calibration."""
        if expected_class is not None and self.equipment_class != expected_class:
            raise RuleViolation(
                f"equipment {self.id} is of class {self.equipment_class}, the step needs "
                f"{expected_class}"
            )
        if self.site != site:
            raise RuleViolation(f"equipment {self.id} is at {self.site}, the batch at {site}")
        if not self.calibrated(on=on):
            due = self.calibration_due.isoformat()
            raise RuleViolation(f"equipment {self.id} is out of calibration (due {due})")

    def calibrated(self, *, on: date) -> bool:
        """Whether the equipment is in calibration on ``on``."""
        return on <= self.calibration_due


class Severity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class DeviationState(StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class Deviation:
    """A departure from the MBR or a specification, for QA to assess and close."""

    reference: str
    lot: str
    severity: Severity
    description: str
    impact: str | None = None
    capa: str | None = None
    state: DeviationState = DeviationState.OPEN

    def __post_init__(self) -> None:
        if not self.description.strip():
            raise InvalidInput(f"deviation {self.reference}: the description is empty")

    def closed(
        self, *, impact: str, capa: str | None = None, severity: Severity | None = None
    ) -> Deviation:
        """The deviation closed by QA, with its impact assessment (and CAPA where one is
        raised), classified anew if QA says so; a major or critical one needs a CAPA
        reference."""
        if severity is not None and severity is not self.severity:
            return replace(self, severity=severity).closed(impact=impact, capa=capa)
        capa = capa.strip() if capa and capa.strip() else None
        if self.state is DeviationState.CLOSED:
            raise RuleViolation(f"deviation {self.reference} is closed already")
        if not impact or not impact.strip():
            raise InvalidInput(f"deviation {self.reference}: closing needs an impact assessment")
        if self.severity is not Severity.MINOR and capa is None:
            raise InvalidInput(
                f"deviation {self.reference} is {self.severity.value}: closing needs a CAPA "
                "reference"
            )
        return replace(self, state=DeviationState.CLOSED, impact=impact.strip(), capa=capa)


def blocking_release(deviations: Iterable[Deviation]) -> list[Deviation]:
    """The deviations that stop a batch's release: open, and major or critical."""
    return [d for d in deviations
            if d.state is DeviationState.OPEN and d.severity is not Severity.MINOR]  # fmt: skip


def blocks_release(deviations: Iterable[Deviation]) -> bool:
    """Whether a batch with these deviations may not be released: one is open and major or
    critical."""
    return bool(blocking_release(deviations))
