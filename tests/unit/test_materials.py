"""Material lots, equipment and deviations: the rules a step and a release check."""

from __future__ import annotations

from datetime import date

import pytest

from vein2vein.domain.errors import InvalidInput, RuleViolation
from vein2vein.domain.materials import (
    Deviation,
    DeviationState,
    Equipment,
    LotStatus,
    MaterialLot,
    Severity,
    blocks_release,
)

VECTOR = "Lentiviral vector (anti-CD19 CAR)"
TODAY = date(2026, 3, 2)


def lot(status: LotStatus = LotStatus.RELEASED, expiry: date = date(2027, 1, 31)) -> MaterialLot:
    return MaterialLot("LV-24-0117", VECTOR, "VectorCo", expiry, status)


def test_a_step_consumes_only_a_released_unexpired_lot_of_the_right_type() -> None:
    lot().check_consumable(VECTOR, on=TODAY)
    with pytest.raises(RuleViolation, match="is QUARANTINE: only a released lot is used"):
        lot(LotStatus.QUARANTINE).check_consumable(VECTOR, on=TODAY)
    with pytest.raises(RuleViolation, match="expired on 2026-03-01"):
        lot(expiry=date(2026, 3, 1)).check_consumable(VECTOR, on=TODAY)
    with pytest.raises(RuleViolation, match="the step needs 'T-cell culture medium'"):
        lot().check_consumable("T-cell culture medium", on=TODAY)
    lot(expiry=TODAY).check_consumable(VECTOR, on=TODAY)  # usable on its expiry day


def test_a_lot_moves_only_forward_through_its_life() -> None:
    released = lot(LotStatus.QUARANTINE).moved_to(LotStatus.RELEASED)
    assert released.moved_to(LotStatus.EXPIRED).status is LotStatus.EXPIRED
    with pytest.raises(RuleViolation, match="cannot go from REJECTED to RELEASED"):
        lot(LotStatus.REJECTED).moved_to(LotStatus.RELEASED)
    with pytest.raises(RuleViolation, match="cannot go from RELEASED to QUARANTINE"):
        released.moved_to(LotStatus.QUARANTINE)
    with pytest.raises(InvalidInput, match="supplier is empty"):
        MaterialLot("L1", VECTOR, " ", TODAY)


def test_a_step_refuses_equipment_of_another_class_site_or_out_of_calibration() -> None:
    freezer = Equipment("CRF-02", "controlled-rate-freezer", "CP1", date(2026, 6, 30))
    freezer.check_usable("controlled-rate-freezer", site="CP1", on=TODAY)
    needs = "of class controlled-rate-freezer, the step needs incubator"
    with pytest.raises(RuleViolation, match=needs):
        freezer.check_usable("incubator", site="CP1", on=TODAY)
    with pytest.raises(RuleViolation, match="is at CP1, the batch at POC1"):
        freezer.check_usable("controlled-rate-freezer", site="POC1", on=TODAY)
    with pytest.raises(RuleViolation, match=r"out of calibration \(due 2026-06-30\)"):
        freezer.check_usable("controlled-rate-freezer", site="CP1", on=date(2026, 7, 1))


def test_an_open_major_or_critical_deviation_blocks_release() -> None:
    minor = Deviation("DV-1", "CP1-2026-00001", Severity.MINOR, "count taken 2 h late")
    major = Deviation("DV-2", "CP1-2026-00001", Severity.MAJOR, "viability below PAR")
    assert not blocks_release([minor])
    assert blocks_release([minor, major])
    with pytest.raises(InvalidInput, match="closing needs a CAPA reference"):
        major.closed(impact="no impact on the dose")
    with pytest.raises(InvalidInput, match="needs an impact assessment"):
        minor.closed(impact=" ")
    closed = major.closed(impact="dose within specification after re-test", capa="CAPA-9")
    assert closed.state is DeviationState.CLOSED and not blocks_release([minor, closed])
    with pytest.raises(RuleViolation, match="is closed already"):
        closed.closed(impact="again", capa="CAPA-9")
