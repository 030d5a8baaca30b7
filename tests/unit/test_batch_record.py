"""Executing a batch against the conventional CAR-T MBR: every rule of the record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import pytest

from vein2vein.domain.batch_record import BatchRecord
from vein2vein.domain.errors import InvalidInput, PermissionDenied, RuleViolation
from vein2vein.domain.people import ALL_SITES, Actor, Role
from vein2vein.domain.process import Outcome
from vein2vein.formats.mbr import load_mbr

PROCESS = load_mbr(Path(str(files("vein2vein.examples") / "mbr")) / "cart-cd19-conventional.yaml")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
QA = Actor("qa.one", "Quinn One", frozenset({Role.QA_REVIEWER}), ALL_SITES)
OP2 = Actor("op.two", "Olive Two", frozenset({Role.OPERATOR}), ALL_SITES)

GOOD = {
    "receipt": {"bag_temperature_c": 4.2, "apheresis_volume_ml": 250, "total_nucleated_cells": 12.5,
                "cd3_percent": 45.0, "viability_percent": 97.1},
    "selection_activation": {"cd3_purity_percent": 96.0, "seeded_cells": 100,
                             "activator_ratio": 1.0},
    "transduction": {"vector_titre": 2.5, "moi": 5.0},
    "expansion": {"culture_day": 5, "viable_cells": 2.1, "viability_percent": 93.0,
                  "glucose_mmol_l": 12.0, "incubator_temperature_c": 37.0},
    "harvest_formulation": {"final_cells": 5.2, "car_positive_percent": 40.0,
                            "car_concentration": 7.0, "dose_per_kg": 2.0, "bags": 1},
    "cryopreservation": {"minutes_to_freezer": 20, "cooling_rate_c_min": -1.0,
                         "end_temperature_c": -90},
}  # fmt: skip


def fresh() -> BatchRecord:
    return BatchRecord("CP1-2026-00001", PROCESS, patient_weight_kg=70.0)


def run_all(record: BatchRecord) -> None:
    at = T0
    for step in PROCESS.steps:
        at += timedelta(hours=step.expected_hours)
        record.record_step(step.id, GOOD[step.id], by="op.one", at=at)
        if step.verification:
            record.verify(step.id, 1, by=QA, at=at + timedelta(minutes=5))


def test_a_whole_batch_runs_in_order_and_the_record_is_complete() -> None:
    record = fresh()
    run_all(record)
    assert record.complete and record.exceptions() == []
    harvest = record.entries[-2]
    # computed, never typed: fold expansion 5.2e9 / 100e6 = 52; dose volume 2.0 × 70 / 7.0 = 20
    assert harvest.values["fold_expansion"].reported == 52.0
    assert harvest.values["fold_expansion"].computed
    assert harvest.values["dose_volume_ml"].reported == 20.0
    transduction = record.entries[2]
    assert transduction.values["vector_volume_ml"].reported == 2.0  # 5 × 1e8 TU / 2.5e8 TU/mL


def test_no_step_is_skipped_and_none_done_twice_unless_repeatable() -> None:
    record = fresh()
    with pytest.raises(RuleViolation, match="transduction cannot be recorded now; next: receipt"):
        record.record_step("transduction", GOOD["transduction"], by="op.one", at=T0)
    record.record_step("receipt", GOOD["receipt"], by="op.one", at=T0)
    with pytest.raises(RuleViolation, match="recorded already and is not repeatable"):
        record.record_step("receipt", GOOD["receipt"], by="op.one", at=T0)
    with pytest.raises(InvalidInput, match="has no step 'centrifuge'"):
        record.record_step("centrifuge", {}, by="op.one", at=T0)
    for step in ("selection_activation", "transduction", "expansion"):
        record.record_step(step, GOOD[step], by="op.one", at=T0)
    day6 = GOOD["expansion"] | {"culture_day": 6, "viable_cells": 3.0}
    again = record.record_step("expansion", day6, by="op.one", at=T0)  # repeatable
    assert again.occurrence == 2
    record.record_step("harvest_formulation", GOOD["harvest_formulation"], by="op.one", at=T0)
    with pytest.raises(RuleViolation, match="expansion is repeatable only until the next step"):
        record.record_step("expansion", day6, by="op.one", at=T0)  # the next step has started


def test_an_excursion_needs_a_comment_and_a_value_out_of_par_asks_for_a_deviation() -> None:
    record = fresh()
    low = GOOD["receipt"] | {"viability_percent": 86.04}  # reports as 86.0: outside NOR 90-100
    with pytest.raises(InvalidInput, match="viability_percent 86 % is outside the normal range"):
        record.record_step("receipt", low, by="op.one", at=T0)
    entry = record.record_step(
        "receipt", low, by="op.one", at=T0, comments={"viability_percent": "long transit"}
    )
    assert entry.values["viability_percent"].outcome is Outcome.EXCURSION
    assert entry.deviations == []
    hot = GOOD["selection_activation"] | {"cd3_purity_percent": 75.0}  # PAR is 80-100
    out = record.record_step("selection_activation", hot, by="op.one", at=T0)
    assert out.deviations == ["cd3_purity_percent"]
    kinds = [(e.step_id, e.kind) for e in record.exceptions()]
    assert ("receipt", "excursion") in kinds and ("selection_activation", "out-of-par") in kinds


def test_values_are_complete_typed_only_and_named() -> None:
    record = fresh()
    with pytest.raises(InvalidInput, match="missing cd3_percent"):
        record.record_step(
            "receipt", {k: v for k, v in GOOD["receipt"].items() if k != "cd3_percent"},
            by="op.one", at=T0,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="colour is not a parameter"):
        record.record_step("receipt", GOOD["receipt"] | {"colour": 1.0}, by="op.one", at=T0)
    for step in ("receipt", "selection_activation"):
        record.record_step(step, GOOD[step], by="op.one", at=T0)
    with pytest.raises(InvalidInput, match="vector_volume_ml is computed, never typed"):
        record.record_step(
            "transduction", GOOD["transduction"] | {"vector_volume_ml": 3.0}, by="op.one", at=T0
        )


def test_a_correction_keeps_the_original_and_the_computed_values_follow() -> None:
    record = fresh()
    run_all(record)
    later = T0 + timedelta(days=11)
    with pytest.raises(InvalidInput, match="needs a reason"):
        record.correct("harvest_formulation", 1, "final_cells", 6.5, by="op.one", at=later, why="")
    with pytest.raises(InvalidInput, match="is computed; correct what it comes from"):
        record.correct("harvest_formulation", 1, "fold_expansion", 60, by="op.one", at=later,
                       why="typo")  # fmt: skip
    corrected = record.correct(
        "harvest_formulation", 1, "final_cells", 6.5, by="op.one", at=later, why="recount"
    )
    (change,) = corrected.corrections
    assert (change.old, change.new, change.by, change.why) == (5.2, 6.5, "op.one", "recount")
    assert record.entries[-2].values["fold_expansion"].reported == 65.0
    # The verifier saw 5.2: the corrected step needs verifying again.
    assert record.entries[-2].verified_by is None
    # fold expansion, worked out from it, changed after first entry too, and says why.
    fold = record.entries[-2].values["fold_expansion"].corrections[-1]
    assert (fold.old, fold.new, fold.why) == (
        52.0, 65.0, "recomputed after final_cells was corrected at harvest_formulation #1"
    )  # fmt: skip
    assert [e.kind for e in record.exceptions()] == ["correction", "correction", "unverified"]
    assert not record.complete
    with pytest.raises(InvalidInput, match=r"is 6\.5 1e9 cells already; nothing to correct"):
        record.correct("harvest_formulation", 1, "final_cells", 6.5, by="op.one", at=later,
                       why="again")  # fmt: skip


def test_a_correction_is_carried_into_the_computed_values_of_later_steps() -> None:
    record = fresh()
    run_all(record)
    later = T0 + timedelta(days=11)
    record.correct("selection_activation", 1, "seeded_cells", 80, by="op.one", at=later,
                   why="count of the wrong tube")  # fmt: skip
    changed = [(e.step_id, name) for e, name in record.recomputed]
    assert changed == [
        ("transduction", "vector_volume_ml"),
        ("harvest_formulation", "fold_expansion"),
    ]
    transduction, harvest = record.entries[2], record.entries[-2]
    assert transduction.values["vector_volume_ml"].reported == 1.6  # 5 × 80e6 / 2.5e8
    assert harvest.values["fold_expansion"].reported == 65.0  # 5.2e9 / 80e6
    # Every step whose values changed is verified again; the others keep their verification.
    assert [e.step_id for e in record.entries if e.verified_by is None and
            PROCESS.step(e.step_id).verification] == [
        "selection_activation", "transduction", "harvest_formulation"]  # fmt: skip


def test_who_changed_a_steps_values_may_not_verify_it() -> None:
    record = fresh()
    record.record_step("receipt", GOOD["receipt"], by="op.one", at=T0)
    record.correct("receipt", 1, "cd3_percent", 46.0, by="qa.one", at=T0, why="recount")
    with pytest.raises(PermissionDenied, match="they changed its values"):
        record.verify("receipt", 1, by=QA, at=T0)
    record.verify("receipt", 1, by=OP2, at=T0)


def test_the_verifier_of_a_step_is_not_its_performer() -> None:
    record = fresh()
    record.record_step("receipt", GOOD["receipt"], by="op.two", at=T0)
    with pytest.raises(PermissionDenied, match=r"op\.two may not verify step receipt"):
        record.verify("receipt", 1, by=OP2, at=T0)
    assert not record.complete
    assert [e.kind for e in record.exceptions()] == ["unverified"]
    record.verify("receipt", 1, by=QA, at=T0)
    with pytest.raises(RuleViolation, match=r"verified already by qa\.one"):
        record.verify("receipt", 1, by=QA, at=T0)
    for step in ("selection_activation", "transduction", "expansion"):
        record.record_step(step, GOOD[step], by="op.two", at=T0)
    with pytest.raises(RuleViolation, match="needs no verification"):
        record.verify("expansion", 1, by=QA, at=T0)


def test_a_step_that_took_half_as_long_again_as_expected_is_flagged_late() -> None:
    record = fresh()
    record.record_step("receipt", GOOD["receipt"], by="op.one", at=T0)
    record.verify("receipt", 1, by=QA, at=T0)
    record.record_step(  # 6 h expected; 10 h taken
        "selection_activation", GOOD["selection_activation"], by="op.one",
        at=T0 + timedelta(hours=10),
    )  # fmt: skip
    record.verify("selection_activation", 1, by=QA, at=T0 + timedelta(hours=10))
    late = [e for e in record.exceptions() if e.kind == "late"]
    assert [(e.step_id, e.detail) for e in late] == [("selection_activation", "10 h, expected 6 h")]


def test_a_value_that_is_not_a_finite_number_is_refused_and_not_recorded() -> None:
    record = fresh()
    for bad in (float("nan"), float("inf")):
        with pytest.raises(InvalidInput, match="expected a finite number"):
            record.record_step("receipt", GOOD["receipt"] | {"viability_percent": bad},
                               by="op.one", at=T0)  # fmt: skip
    assert record.entries == []


def test_a_preview_works_out_the_computed_values_without_recording() -> None:
    record = fresh()
    for step in ("receipt", "selection_activation"):
        record.record_step(step, GOOD[step], by="op.one", at=T0)
    assert record.preview("transduction", {"vector_titre": 2.5}) == {"vector_volume_ml": None}
    assert record.preview("transduction", {"vector_titre": 2.5, "moi": 5.0}) == {
        "vector_volume_ml": 2.0
    }
    assert len(record.entries) == 2
