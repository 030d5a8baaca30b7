"""Executing batch records on real SQLite and real PostgreSQL: every rule of issue 5.

Each test would fail without the rule it names: the refusal is checked, and so is that
nothing was written (no step row, no audit record) when a request is refused.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.network import (
    PASSWORD,
    PROCESS,
    act,
    advance,
    equipment_for,
    example_text,
    execute_record,
    material_lot,
    nominal,
    order,
    pass_release_qc,
    people_of,
    record,
    scan_code,
    small_network,
)
from vein2vein.domain.batch import TRANSITIONS, Action, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import (
    IdentityMismatch,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
    SignatureRefused,
)
from vein2vein.services import execution, materials, mbr, queries
from vein2vein.services.app import App
from vein2vein.services.auth import Signing
from vein2vein.services.record_views import genealogy_of_lot, list_deviations, record_view
from vein2vein.store import tables as t

RECEIPT = "receipt"


def counts(app: App) -> tuple[int, ...]:
    """(step records, deviations, corrections, material uses, audit records): what a refused
    request must not change — the audit count last."""
    tables = (t.step_record, t.deviation, t.value_correction, t.material_use, t.audit_record)
    with app.engine.connect() as c:
        return tuple(
            c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in tables
        )


def start(app: App, lot: str, process: str | None) -> None:
    act(app, lot, Action.START_PROCESSING, process=process, scan=scan_code(app, lot))


def in_process(app: App) -> str:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.IN_PROCESS)
    return lot


def receipt_values(**override: float) -> dict[str, float]:

    return override  # record() fills the rest with nominal values; kept for readability


# -- binding to the MBR ------------------------------------------------------------------


def test_a_batch_starts_on_the_effective_version_and_stays_bound_to_it(
    app: App, clock: FixedClock
) -> None:
    crew = small_network(app)
    first = order(app, "PT-000101")
    advance(app, first, BatchState.IN_PROCESS)
    # A new version becomes effective while the first batch is in process.
    v2 = re.sub(r"(?m)^version: 1$", "version: 2", example_text("cart-cd19-conventional.yaml"))
    v2 = v2.replace("expected_hours: 1\n", "expected_hours: 2\n", 1)
    mbr.import_mbr(app.uow(), crew.admin.actor, v2, "v2.yaml")
    mbr.approve_mbr(
        app.uow(), crew.qa, PROCESS, 2, reason="ok", signing=Signing(PASSWORD, "qa.cp1")
    )
    second = order(app, "PT-000102")
    advance(app, second, BatchState.IN_PROCESS)
    assert record_view(app, crew.qa.actor, first).process_label == f"{PROCESS} v1"
    assert record_view(app, crew.qa.actor, second).process_label == f"{PROCESS} v2"
    # The first batch still runs on v1 to the end.
    advance(app, first, BatchState.QC_PENDING)
    assert record_view(app, crew.qa.actor, first).complete


def test_only_an_effective_mbr_starts_a_batch(app: App) -> None:
    small_network(app, processes=False)
    lot = order(app)
    advance(app, lot, BatchState.ACCEPTED)
    with pytest.raises(RuleViolation, match="no master batch record is effective"):
        start(app, lot, None)
    crew = people_of(app)
    mbr.import_mbr(app.uow(), crew.admin.actor, example_text("cart-cd19-conventional.yaml"), "c")
    with pytest.raises(RuleViolation, match="has no effective version"):
        start(app, lot, PROCESS)  # a draft does not start a batch
    with pytest.raises(RuleViolation, match="process NOPE does not exist"):
        start(app, lot, "NOPE")
    assert queries.batch_view(app, lot).batch.state == "ACCEPTED"
    with app.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(t.batch_record)).scalar_one() == 0


def test_with_two_effective_processes_the_operator_chooses(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.ACCEPTED)
    with pytest.raises(InvalidInput, match="choose the process: CART-CD19-CONV, CART-CD19-RAPID"):
        start(app, lot, None)
    start(app, lot, "CART-CD19-RAPID")
    view = record_view(app, people_of(app).qa.actor, lot)
    assert view.process_label == "CART-CD19-RAPID v1"
    opened = queries.audit_log(app, lot=lot, limit=2)
    started = TRANSITIONS[Action.START_PROCESSING].event
    assert [e.action for e in opened] == ["BatchRecordOpened", started]
    assert opened[0].new["patient_weight_kg"] == 72.0


def test_complete_processing_needs_every_step_recorded_and_verified(app: App) -> None:
    lot = in_process(app)
    with pytest.raises(RuleViolation, match="steps not recorded: receipt, selection_activation"):
        act(app, lot, Action.COMPLETE_PROCESSING)
    record(app, lot, RECEIPT, verify=False)
    with pytest.raises(RuleViolation, match="steps awaiting verification: receipt #1"):
        act(app, lot, Action.COMPLETE_PROCESSING)
    assert queries.batch_view(app, lot).batch.state == "IN_PROCESS"


# -- the sequence of steps ---------------------------------------------------------------


def test_steps_follow_the_mbr_no_skipping_no_repeats(app: App) -> None:
    lot = in_process(app)
    before = counts(app)
    with pytest.raises(RuleViolation, match="cannot be recorded now; next: receipt"):
        record(app, lot, "transduction")
    assert counts(app) == before
    record(app, lot, RECEIPT)
    with pytest.raises(RuleViolation, match="recorded already and is not repeatable"):
        record(app, lot, RECEIPT)
    with pytest.raises(InvalidInput, match="has no step 'nope'"):
        execution.record_step(
            app.uow(), lot, "nope", {}, by=people_of(app)["operator.cp1"], scan=scan_code(app, lot)
        )


def test_a_repeatable_step_repeats_until_the_next_step_starts(app: App) -> None:
    lot = in_process(app)
    for step in ("receipt", "selection_activation", "transduction"):
        record(app, lot, step)
    for day in (3, 5, 7):
        done = record(app, lot, "expansion", values={"culture_day": day})
        assert done.entry.occurrence == (day - 1) // 2
    record(app, lot, "harvest_formulation")
    with pytest.raises(RuleViolation, match="repeatable only until the next step starts"):
        record(app, lot, "expansion")


def test_the_batch_label_is_scanned_at_each_step(app: App) -> None:
    lot = in_process(app)
    other = order(app, "PT-000102")
    advance(app, other, BatchState.COLLECTED)
    before = counts(app)
    with pytest.raises(IdentityMismatch):
        execution.record_step(
            app.uow(),
            lot,
            RECEIPT,
            {},
            by=people_of(app)["operator.cp1"],
            scan=scan_code(app, other),
        )
    after = counts(app)
    assert after[:-1] == before[:-1] and after[-1] == before[-1] + 1  # the attempt only
    assert queries.audit_log(app, lot=lot, limit=1)[0].action == "IdentityMismatchDetected"


def test_steps_are_recorded_only_while_in_process(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.QC_PENDING)
    with pytest.raises(RuleViolation, match="only while IN_PROCESS"):
        execution.record_step(
            app.uow(), lot, RECEIPT, {}, by=people_of(app)["operator.cp1"], scan=scan_code(app, lot)
        )


# -- values: rounding, NOR, PAR, computed ------------------------------------------------


def test_values_are_rounded_then_classified(app: App) -> None:
    lot = in_process(app)
    # viability NOR 90–100, PAR 80–100, one decimal: 89.96 reports as 90.0 → ok.
    done = record(app, lot, RECEIPT, values={"viability_percent": 89.96})
    value = done.entry.values["viability_percent"]
    assert (value.entered, value.reported, value.outcome.value) == (89.96, 90.0, "ok")


def test_an_excursion_needs_a_comment_and_nothing_is_written_without_one(app: App) -> None:
    lot = in_process(app)
    before = counts(app)
    with pytest.raises(InvalidInput, match="viability_percent 85 % is outside the normal range"):
        record(app, lot, RECEIPT, values={"viability_percent": 85.0})
    assert counts(app) == before
    done = record(
        app,
        lot,
        RECEIPT,
        values={"viability_percent": 85.0},
        comments={"viability_percent": "long transit; within PAR"},
    )
    assert done.entry.values["viability_percent"].outcome.value == "excursion"
    assert done.deviations == ()
    kinds = [e.kind for e in record_view(app, people_of(app).qa.actor, lot).exceptions]
    assert kinds == ["excursion"]


def test_a_value_outside_the_par_is_recorded_and_opens_a_deviation(app: App) -> None:
    lot = in_process(app)
    done = record(app, lot, RECEIPT, values={"viability_percent": 75.0})  # PAR 80–100, critical
    assert done.entry.values["viability_percent"].outcome.value == "out-of-par"
    (reference,) = done.deviations
    (deviation,) = list_deviations(app, people_of(app).qa.actor, state="open")
    assert deviation.deviation.reference == reference
    assert deviation.deviation.severity.value == "major"  # a critical parameter
    assert deviation.step == "receipt #1"
    assert "viability_percent 75 %" in deviation.deviation.description
    opened = [e for e in queries.audit_log(app, limit=3) if e.action == "DeviationOpened"]
    assert opened and opened[0].entity_id == reference


def test_computed_values_are_computed_from_the_record_and_the_patients_weight(app: App) -> None:
    lot = in_process(app)
    for step in ("receipt", "selection_activation"):
        record(app, lot, step)
    with pytest.raises(InvalidInput, match="vector_volume_ml is computed, never typed"):
        record(app, lot, "transduction", values={"vector_volume_ml": 1.0})
    done = record(app, lot, "transduction", values={"vector_titre": 2.5, "moi": 5.0})
    seeded = nominal(
        record_view(app, people_of(app).qa.actor, lot).steps[1].definition.parameter("seeded_cells")
    )
    expected = 5.0 * seeded * 1e6 / (2.5 * 1e8)
    assert done.entry.values["vector_volume_ml"].reported == pytest.approx(expected, abs=0.01)
    record(app, lot, "expansion")
    done = record(
        app, lot, "harvest_formulation", values={"car_concentration": 8.0, "dose_per_kg": 2.0}
    )
    # dose volume = dose per kg × the ordered patient's 72 kg / concentration
    assert done.entry.values["dose_volume_ml"].reported == pytest.approx(2.0 * 72.0 / 8.0)


# -- verification ------------------------------------------------------------------------


def test_verification_is_by_another_person_with_a_signature(app: App) -> None:
    lot = in_process(app)
    record(app, lot, RECEIPT, verify=False)
    crew = people_of(app)
    with pytest.raises(PermissionDenied, match="they performed it"):
        execution.verify_step(
            app.uow(),
            lot,
            RECEIPT,
            1,
            by=crew["operator.cp1"],
            signing=Signing(PASSWORD, "operator.cp1"),
        )
    assert queries.audit_log(app, lot=lot, limit=1)[0].action == "PermissionDenied"
    with pytest.raises(SignatureRefused):
        execution.verify_step(
            app.uow(),
            lot,
            RECEIPT,
            1,
            by=crew["operator2.cp1"],
            signing=Signing("wrong-password", "operator2.cp1"),
        )
    with pytest.raises(InvalidInput, match="needs your electronic signature"):
        execution.verify_step(app.uow(), lot, RECEIPT, 1, by=crew["operator2.cp1"], signing=None)
    execution.verify_step(
        app.uow(),
        lot,
        RECEIPT,
        1,
        by=crew["operator2.cp1"],
        signing=Signing(PASSWORD, "operator2.cp1"),
    )
    view = record_view(app, crew.qa.actor, lot)
    (signature,) = view.steps[0].verifications[1]
    assert (signature.signer_id, signature.meaning, signature.matches) == (
        "operator2.cp1",
        "verified",
        True,
    )
    with pytest.raises(RuleViolation, match=r"verified already by operator2\.cp1"):
        execution.verify_step(
            app.uow(), lot, RECEIPT, 1, by=crew.qa, signing=Signing(PASSWORD, "qa.cp1")
        )


def test_a_coordinator_may_not_record_and_an_operator_only_at_their_site(app: App) -> None:
    lot = in_process(app)
    crew = people_of(app)
    with pytest.raises(PermissionDenied, match="needs the role operator"):
        execution.record_step(
            app.uow(), lot, RECEIPT, {}, by=crew.coordinator, scan=scan_code(app, lot)
        )
    from vein2vein.services import people

    people.update_user(app.uow(), crew.admin.actor, "operator2.cp1", sites="TC1", reason="move")
    from tests.network import sign_in

    moved = sign_in(app, "operator2.cp1")
    with pytest.raises(PermissionDenied, match="outside their site scope"):
        execution.record_step(app.uow(), lot, RECEIPT, {}, by=moved, scan=scan_code(app, lot))


# -- corrections -------------------------------------------------------------------------


def test_a_correction_keeps_the_original_and_asks_for_verification_again(
    app: App, clock: FixedClock
) -> None:
    lot = in_process(app)
    record(app, lot, RECEIPT, values={"total_nucleated_cells": 12.0})
    crew = people_of(app)
    with pytest.raises(InvalidInput, match="needs a reason"):
        execution.correct_value(
            app.uow(),
            lot,
            RECEIPT,
            1,
            "total_nucleated_cells",
            13.0,
            by=crew["operator.cp1"],
            why=" ",
        )
    clock.advance(timedelta(minutes=30))
    execution.correct_value(
        app.uow(),
        lot,
        RECEIPT,
        1,
        "total_nucleated_cells",
        13.0,
        by=crew["operator.cp1"],
        why="transcription error",
    )
    view = record_view(app, crew.qa.actor, lot)
    value = view.steps[0].entries[0].values["total_nucleated_cells"]
    (correction,) = value.corrections
    assert (value.reported, correction.old, correction.new, correction.by, correction.why) == (
        13.0,
        12.0,
        13.0,
        "operator.cp1",
        "transcription error",
    )
    assert view.steps[0].entries[0].verified_by is None  # the verifier saw 12.0
    assert view.changed_after_entry == [(view.steps[0].entries[0], "total_nucleated_cells")]
    assert {e.kind for e in view.exceptions} == {"correction", "unverified"}
    with pytest.raises(RuleViolation, match="awaiting verification: receipt #1"):
        act(app, lot, Action.COMPLETE_PROCESSING)
    audit = queries.audit_log(app, lot=lot, limit=1)[0]
    assert (audit.action, audit.old["value"], audit.new["value"]) == (
        "StepValueCorrected",
        12.0,
        13.0,
    )


def test_a_correction_outside_the_par_opens_a_deviation(app: App) -> None:
    lot = in_process(app)
    record(app, lot, RECEIPT)
    execution.correct_value(
        app.uow(),
        lot,
        RECEIPT,
        1,
        "bag_temperature_c",
        12.0,
        by=people_of(app)["operator.cp1"],
        why="logger read again",
    )
    (deviation,) = list_deviations(app, people_of(app).qa.actor)
    assert deviation.deviation.severity.value == "major" and deviation.step == "receipt #1"


# -- materials and equipment -------------------------------------------------------------


def _step_with_lots(app: App, lot: str, lots: list[str], equipment: str | None = None) -> None:
    from tests.network import bound_process

    step = bound_process(app, lot).step("selection_activation")
    execution.record_step(
        app.uow(),
        lot,
        step.id,
        {p.name: nominal(p) for p in step.parameters if not p.formula},
        by=people_of(app)["operator.cp1"],
        scan=scan_code(app, lot),
        material_lots=lots,
        equipment=equipment or equipment_for("cell-processor"),
    )


def test_a_step_consumes_only_released_unexpired_lots_of_the_right_type(
    app: App, clock: FixedClock
) -> None:
    lot = in_process(app)
    record(app, lot, RECEIPT)
    crew = people_of(app)
    needed = ["CD4/CD8 selection reagent", "T-cell activation reagent", "T-cell culture medium"]
    good = [material_lot(m) for m in needed]
    materials.receive_lot(
        app.uow(),
        crew["logistics.cp1"].actor,
        lot="Q-0001",
        type=needed[0],
        supplier="S",
        expiry=clock.now().date() + timedelta(days=9),
    )
    before = counts(app)
    with pytest.raises(RuleViolation, match="Q-0001 is QUARANTINE: only a released lot is used"):
        _step_with_lots(app, lot, ["Q-0001", *good[1:]])
    with pytest.raises(RuleViolation, match="which this step does not use"):
        _step_with_lots(app, lot, [*good, material_lot("Lentiviral vector (anti-CD19 CAR)")])
    with pytest.raises(InvalidInput, match="scan the lot of T-cell culture medium"):
        _step_with_lots(app, lot, good[:2])
    with pytest.raises(NotFound, match="material lot 'NOPE' does not exist"):
        _step_with_lots(app, lot, ["NOPE", *good[1:]])
    materials.move_lot(
        app.uow(),
        crew.qa,
        "Q-0001",
        "released",
        reason="CoA ok",
        signing=Signing(PASSWORD, "qa.cp1"),
    )
    clock.advance(timedelta(days=10))
    with pytest.raises(RuleViolation, match="Q-0001 expired on"):
        _step_with_lots(app, lot, ["Q-0001", *good[1:]])
    assert counts(app)[:-1] == before[:-1]
    _step_with_lots(app, lot, good)


def test_a_step_refuses_equipment_out_of_calibration_of_another_class_or_site(
    app: App, clock: FixedClock
) -> None:
    lot = in_process(app)
    record(app, lot, RECEIPT)
    crew = people_of(app)
    needed = ["CD4/CD8 selection reagent", "T-cell activation reagent", "T-cell culture medium"]
    good = [material_lot(m) for m in needed]
    with pytest.raises(RuleViolation, match="is of class incubator, the step needs cell-processor"):
        _step_with_lots(app, lot, good, equipment_for("incubator"))
    today = clock.now().date()
    materials.register_equipment(
        app.uow(),
        crew.admin.actor,
        equipment_id="CP-OLD",
        equipment_class="cell-processor",
        site="CP1",
        description="old",
        calibration_due=today,
    )
    materials.register_equipment(
        app.uow(),
        crew.admin.actor,
        equipment_id="CP-TC1",
        equipment_class="cell-processor",
        site="TC1",
        description="away",
        calibration_due=today + timedelta(days=99),
    )
    with pytest.raises(RuleViolation, match="CP-TC1 is at TC1, the batch at CP1"):
        _step_with_lots(app, lot, good, "CP-TC1")
    clock.advance(timedelta(days=1))
    with pytest.raises(RuleViolation, match="CP-OLD is out of calibration"):
        _step_with_lots(app, lot, good, "CP-OLD")
    materials.record_calibration(
        app.uow(), crew.admin.actor, "CP-OLD", due=today + timedelta(days=180), reason="CAL-2026-17"
    )
    _step_with_lots(app, lot, good, "CP-OLD")


def test_genealogy_goes_both_ways(app: App) -> None:
    small_network(app)
    first, second = order(app, "PT-000101"), order(app, "PT-000102")
    for lot in (first, second):
        advance(app, lot, BatchState.QC_PENDING)
    vector = material_lot("Lentiviral vector (anti-CD19 CAR)")
    qa = people_of(app).qa.actor
    _, uses = genealogy_of_lot(app, qa, vector)
    assert [(u.batch_lot, u.step_id) for u in uses] == [
        (first, "transduction"),
        (second, "transduction"),
    ]
    inside = record_view(app, qa, first).materials
    assert vector in {u.material_lot for u in inside}
    assert {u.material_type for u in inside} >= {"Infusion bag", "Cryopreservation medium"}


def test_a_material_lot_moves_through_its_life_with_signatures(app: App) -> None:
    crew = small_network(app)
    today = app.clock.now().date()
    materials.receive_lot(
        app.uow(),
        crew["logistics.cp1"].actor,
        lot="M-0001",
        type="Infusion bag",
        supplier="S",
        expiry=today + timedelta(days=30),
    )
    with pytest.raises(PermissionDenied, match="needs the role qa-reviewer"):
        materials.move_lot(
            app.uow(),
            crew["logistics.cp1"],
            "M-0001",
            "released",
            reason="x",
            signing=Signing(PASSWORD, "logistics.cp1"),
        )
    with pytest.raises(RuleViolation, match="cannot go from QUARANTINE to EXPIRED"):
        materials.move_lot(
            app.uow(), crew.qa, "M-0001", "expired", reason="x", signing=Signing(PASSWORD, "qa.cp1")
        )
    materials.move_lot(
        app.uow(),
        crew.qa,
        "M-0001",
        "released",
        reason="CoA reviewed",
        signing=Signing(PASSWORD, "qa.cp1"),
    )
    entry = queries.audit_log(app, limit=1)[0]
    assert (entry.action, entry.entity_id, entry.new["status"]) == (
        "MaterialLotReleased",
        "M-0001",
        "RELEASED",
    )
    with pytest.raises(InvalidInput, match="expired on"):
        materials.receive_lot(
            app.uow(),
            crew["logistics.cp1"].actor,
            lot="M-0002",
            type="Infusion bag",
            supplier="S",
            expiry=today - timedelta(days=1),
        )


# -- deviations and release --------------------------------------------------------------


def test_an_open_major_deviation_blocks_release_until_qa_closes_it(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.IN_PROCESS)
    done = record(app, lot, RECEIPT, values={"viability_percent": 75.0})
    (reference,) = done.deviations
    advance(app, lot, BatchState.QC_PENDING)
    pass_release_qc(app, lot)
    with pytest.raises(RuleViolation, match=f"deviation open: {reference}"):
        act(app, lot, Action.RELEASE, reason="in spec")
    assert queries.batch_view(app, lot).batch.state == "QC_PENDING"
    crew = people_of(app)
    with pytest.raises(InvalidInput, match="needs a CAPA reference"):
        materials.close_deviation(
            app.uow(),
            crew.qa,
            reference,
            impact="none on the dose",
            signing=Signing(PASSWORD, "qa.cp1"),
        )
    with pytest.raises(PermissionDenied, match="needs the role qa-reviewer"):
        materials.close_deviation(
            app.uow(),
            crew["operator.cp1"],
            reference,
            impact="x",
            capa="CAPA-1",
            signing=Signing(PASSWORD, "operator.cp1"),
        )
    closed = materials.close_deviation(
        app.uow(),
        crew.qa,
        reference,
        impact="viability 75 % at receipt; expansion normal",
        capa="CAPA-2026-004",
        signing=Signing(PASSWORD, "qa.cp1"),
    )
    assert (closed.deviation.state.value, closed.closed_by) == ("CLOSED", "qa.cp1")
    signed = queries.audit_log(app, limit=1)[0]
    assert signed.action == "DeviationClosed"
    act(app, lot, Action.RELEASE, reason="in spec")
    assert queries.batch_view(app, lot).batch.state == "RELEASED"


def test_a_minor_deviation_opened_by_hand_does_not_block_release(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.QC_PENDING)
    crew = people_of(app)
    with pytest.raises(InvalidInput, match="severity 'small'"):
        materials.open_deviation(
            app.uow(), crew["operator.cp1"].actor, lot, severity="small", description="x"
        )
    reference = materials.open_deviation(
        app.uow(),
        crew["operator.cp1"].actor,
        lot,
        severity="minor",
        description="label printed twice",
    )
    assert reference.startswith("DEV-")
    pass_release_qc(app, lot)
    act(app, lot, Action.RELEASE, reason="in spec")
    assert queries.batch_view(app, lot).batch.state == "RELEASED"


def test_qa_may_classify_a_deviation_anew_when_closing_it(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.QC_PENDING)
    crew = people_of(app)
    reference = materials.open_deviation(
        app.uow(),
        crew["operator.cp1"].actor,
        lot,
        severity="minor",
        description="incubator door alarm",
    )
    with pytest.raises(InvalidInput, match="is critical: closing needs a CAPA"):
        materials.close_deviation(
            app.uow(),
            crew.qa,
            reference,
            impact="x",
            severity="critical",
            signing=Signing(PASSWORD, "qa.cp1"),
        )
    closed = materials.close_deviation(
        app.uow(),
        crew.qa,
        reference,
        impact="door open 4 min",
        severity="major",
        capa="CAPA-9",
        signing=Signing(PASSWORD, "qa.cp1"),
    )
    assert closed.deviation.severity.value == "major"
    entry = queries.audit_log(app, limit=1)[0]
    assert (entry.old["severity"], entry.new["severity"]) == ("minor", "major")


def test_a_whole_batch_runs_to_release_with_its_record(app: App, clock: FixedClock) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.IN_PROCESS, clock)
    execute_record(app, lot, clock)
    advance(app, lot, BatchState.RELEASED, clock)
    view = record_view(app, people_of(app).qa.actor, lot)
    assert view.complete and view.exceptions == [] and view.deviations == []
    assert all(s.status == "done" for s in view.steps)


def test_a_new_order_updates_the_weight_the_dose_is_computed_for(app: App) -> None:
    from vein2vein.services import batches as svc

    crew = small_network(app)
    first = order(app, "PT-000101")  # 72 kg
    advance(app, first, BatchState.IN_PROCESS)
    again = svc.place_order(
        app.uow(), pseudonym="PT-000101", year_of_birth=1968, weight_kg=68.5, product="CART-CD19",
        treatment_centre="TC1", manufacturing_site="CP1", by=crew.coordinator.actor,
    )  # fmt: skip
    updated = queries.audit_log(app, limit=3)
    assert any(e.action == "PatientWeightUpdated" and e.old["weight_kg"] == 72.0 for e in updated)
    advance(app, again.lot, BatchState.IN_PROCESS)
    assert record_view(app, crew.qa.actor, again.lot).header.patient_weight_kg == 68.5
    # The first batch stays bound to the weight it started with.
    assert record_view(app, crew.qa.actor, first).header.patient_weight_kg == 72.0


def test_a_correction_into_the_excursion_band_needs_a_comment_which_replaces_the_old(
    app: App,
) -> None:
    lot = in_process(app)
    record(app, lot, RECEIPT, values={"viability_percent": 86.0},
           comments={"viability_percent": "transit 30 h"})  # fmt: skip
    operator = people_of(app)["operator.cp1"]
    before = counts(app)
    with pytest.raises(InvalidInput, match="viability_percent 84 % is outside the normal range"):
        execution.correct_value(app.uow(), lot, RECEIPT, 1, "viability_percent", 84.0,
                                by=operator, why="recounted")  # fmt: skip
    assert counts(app) == before
    execution.correct_value(app.uow(), lot, RECEIPT, 1, "viability_percent", 84.0, by=operator,
                            why="recounted", comment="transit 30 h; recount confirms")  # fmt: skip
    execution.correct_value(app.uow(), lot, RECEIPT, 1, "viability_percent", 95.0, by=operator,
                            why="wrong sample counted")  # fmt: skip
    view = record_view(app, people_of(app).qa.actor, lot)
    value = view.steps[0].entries[0].values["viability_percent"]
    assert (value.reported, value.outcome.value, value.comment) == (95.0, "ok", None)
    assert [c.new for c in value.corrections] == [84.0, 95.0]
    last = queries.audit_log(app, lot=lot, limit=1)[0]
    assert last.old["comment"] == "transit 30 h; recount confirms" and last.new["comment"] is None


def test_a_correction_is_carried_into_later_computed_values_with_a_deviation_if_out_of_par(
    app: App,
) -> None:
    lot = in_process(app)
    for step in ("receipt", "selection_activation"):
        record(app, lot, step)
    record(app, lot, "transduction", values={"vector_titre": 2.5, "moi": 5.0})
    operator = people_of(app)["operator.cp1"]
    before = record_view(app, people_of(app).qa.actor, lot).steps[2].entries[0]
    assert before.verified_by == "operator2.cp1"
    # 40e6 seeded cells instead of 100e6: outside the PAR 50–150 itself (a deviation), and
    # the vector volume for MOI 5 at 2.5e8 TU/mL follows (2.0 → 0.8 mL).
    execution.correct_value(app.uow(), lot, "selection_activation", 1, "seeded_cells", 40.0,
                            by=operator, why="count of the wrong tube")  # fmt: skip
    view = record_view(app, people_of(app).qa.actor, lot)
    transduction = view.steps[2].entries[0]
    volume = transduction.values["vector_volume_ml"]
    assert volume.reported == 0.8 and volume.corrections[-1].old == 2.0
    assert "recomputed after seeded_cells was corrected" in volume.corrections[-1].why
    assert transduction.verified_by is None  # its verifier saw 2.0 mL
    assert (transduction, "vector_volume_ml") in view.changed_after_entry
    (deviation,) = view.deviations
    assert "seeded_cells 40" in deviation.deviation.description
    audit = queries.audit_log(app, lot=lot, limit=3)
    corrected = next(e for e in audit if e.action == "StepValueCorrected")
    (change,) = corrected.new["recomputed"]
    assert (change["step"], change["parameter"], change["old"], change["new"]) == (
        "transduction",
        "vector_volume_ml",
        2.0,
        0.8,
    )


def test_who_corrected_a_step_may_not_verify_it(app: App) -> None:
    lot = in_process(app)
    record(app, lot, RECEIPT)  # performed by operator.cp1, verified by operator2.cp1
    crew = people_of(app)
    execution.correct_value(app.uow(), lot, RECEIPT, 1, "cd3_percent", 46.0,
                            by=crew["operator2.cp1"], why="recount")  # fmt: skip
    with pytest.raises(PermissionDenied, match="they changed its values"):
        execution.verify_step(app.uow(), lot, RECEIPT, 1, by=crew["operator2.cp1"],
                              signing=Signing(PASSWORD, "operator2.cp1"))  # fmt: skip
    execution.verify_step(app.uow(), lot, RECEIPT, 1, by=crew.qa,
                          signing=Signing(PASSWORD, "qa.cp1"))  # fmt: skip


def test_a_correction_that_changes_nothing_or_comes_after_processing_is_refused(
    app: App,
) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.IN_PROCESS)
    record(app, lot, RECEIPT, values={"cd3_percent": 45.0})
    operator = people_of(app)["operator.cp1"]
    before = counts(app)
    with pytest.raises(InvalidInput, match="nothing to correct"):
        execution.correct_value(app.uow(), lot, RECEIPT, 1, "cd3_percent", 45.04,
                                by=operator, why="again")  # fmt: skip
    assert counts(app) == before
    advance(app, lot, BatchState.QC_PENDING)
    with pytest.raises(RuleViolation, match="only while IN_PROCESS"):
        execution.correct_value(app.uow(), lot, RECEIPT, 1, "cd3_percent", 46.0,
                                by=operator, why="late fix")  # fmt: skip


def test_a_step_needs_its_scan_its_equipment_and_each_lot_once(app: App) -> None:
    lot = in_process(app)
    operator = people_of(app)["operator.cp1"]
    before = counts(app)
    with pytest.raises(InvalidInput, match="scan the batch's label first"):
        execution.record_step(app.uow(), lot, RECEIPT, {}, by=operator, scan=" ")
    from tests.network import bound_process

    receipt = bound_process(app, lot).step(RECEIPT)
    values = {p.name: nominal(p) for p in receipt.parameters if not p.formula}
    with pytest.raises(InvalidInput, match="scan the equipment used"):
        execution.record_step(app.uow(), lot, RECEIPT, values, by=operator,
                              scan=scan_code(app, lot))  # fmt: skip
    record(app, lot, RECEIPT)
    needed = ["CD4/CD8 selection reagent", "T-cell activation reagent", "T-cell culture medium"]
    good = [material_lot(m) for m in needed]
    with pytest.raises(InvalidInput, match="is given twice"):
        _step_with_lots(app, lot, [*good, good[0]])
    after = counts(app)
    assert after[0] == before[0] + 1 and after[3] == before[3]  # only the receipt


@pytest.mark.parametrize(
    ("to", "action"),
    [
        (BatchState.QC_PENDING, Action.RELEASE_CONDITIONALLY),
        (BatchState.QC_PENDING, Action.RELEASE_OOS),
    ],
)
def test_every_form_of_release_is_blocked_by_an_open_major_deviation(
    app: App, to: BatchState, action: Action
) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.IN_PROCESS)
    (reference,) = record(app, lot, RECEIPT, values={"viability_percent": 75.0}).deviations
    advance(app, lot, to)
    with pytest.raises(RuleViolation, match=f"deviation open: {reference}"):
        act(app, lot, action, reason="physician's request")
    assert queries.batch_view(app, lot).batch.state == to.value


def test_who_corrected_a_value_made_the_batch_and_may_not_release_it(app: App) -> None:
    crew = small_network(app)
    from vein2vein.services import people

    people.update_user(
        app.uow(), crew.admin.actor, "qp.cp1", roles=["qp", "operator"], reason="cover"
    )
    from tests.network import sign_in

    qp = sign_in(app, "qp.cp1")
    lot = order(app)
    advance(app, lot, BatchState.IN_PROCESS)
    record(app, lot, RECEIPT)
    execution.correct_value(app.uow(), lot, RECEIPT, 1, "cd3_percent", 46.0, by=qp,
                            why="recount")  # fmt: skip
    execution.verify_step(app.uow(), lot, RECEIPT, 1, by=crew["operator2.cp1"],
                          signing=Signing(PASSWORD, "operator2.cp1"))  # fmt: skip
    advance(app, lot, BatchState.QC_PENDING)
    with pytest.raises(PermissionDenied, match="they made it"):
        act(app, lot, Action.RELEASE, by=qp, reason="in spec")


def test_a_stale_page_cannot_record_a_repeatable_step_twice(app: App) -> None:
    lot = in_process(app)
    for step in ("receipt", "selection_activation", "transduction"):
        record(app, lot, step)
    from tests.network import bound_process

    expansion = bound_process(app, lot).step("expansion")
    values = {p.name: nominal(p) for p in expansion.parameters if not p.formula}
    operator = people_of(app)["operator.cp1"]

    def day(seen: int) -> execution.StepRecorded:
        return execution.record_step(
            app.uow(), lot, "expansion", values, by=operator, scan=scan_code(app, lot),
            material_lots=[material_lot("T-cell culture medium")],
            equipment=equipment_for("incubator"), occurrence=seen,
        )  # fmt: skip

    assert day(1).entry.occurrence == 1
    from vein2vein.domain.errors import ConcurrencyConflict

    with pytest.raises(ConcurrencyConflict, match="expansion #1 was recorded by someone else"):
        day(1)  # a second tablet that saw the same page
    assert day(2).entry.occurrence == 2


def test_two_operators_recording_the_same_step_at_once_record_it_once(app: App) -> None:
    from concurrent.futures import ThreadPoolExecutor

    lot = in_process(app)
    crew = people_of(app)
    from tests.network import bound_process

    receipt = bound_process(app, lot).step(RECEIPT)
    values = {p.name: nominal(p) for p in receipt.parameters if not p.formula}
    label = scan_code(app, lot)

    def attempt(user: str) -> str:
        try:
            execution.record_step(app.uow(), lot, RECEIPT, values, by=crew[user], scan=label,
                                  equipment=equipment_for("biosafety-cabinet"))  # fmt: skip
        except Exception as refused:
            return type(refused).__name__
        return "recorded"

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(attempt, ["operator.cp1", "operator2.cp1"]))
    assert results[1] == "recorded" and results[0] in {"RuleViolation", "ConcurrencyConflict"}
    with app.engine.connect() as c:
        rows = c.execute(sa.select(sa.func.count()).select_from(t.step_record)).scalar_one()
    assert rows == 1


def test_corrections_and_material_use_are_append_only_in_the_database(app: App) -> None:
    lot = in_process(app)
    record(app, lot, RECEIPT)
    record(app, lot, "selection_activation")
    execution.correct_value(app.uow(), lot, RECEIPT, 1, "cd3_percent", 46.0,
                            by=people_of(app)["operator.cp1"], why="recount")  # fmt: skip
    for statement in (
        "UPDATE value_correction SET new = 99",
        "DELETE FROM value_correction",
        "UPDATE material_use SET quantity = 0",
        "DELETE FROM material_use",
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), app.engine.begin() as c:
            c.execute(sa.text(statement))


def test_a_verification_from_a_page_that_showed_other_values_is_refused(app: App) -> None:
    lot = in_process(app)
    record(app, lot, RECEIPT, verify=False)
    crew = people_of(app)
    shown = record_view(app, crew.qa.actor, lot).steps[0].entries[0].digest
    execution.correct_value(app.uow(), lot, RECEIPT, 1, "cd3_percent", 46.0,
                            by=crew["operator.cp1"], why="recount")  # fmt: skip
    from vein2vein.domain.errors import ConcurrencyConflict

    before = counts(app)
    with pytest.raises(ConcurrencyConflict, match="changed since you looked at it"):
        execution.verify_step(app.uow(), lot, RECEIPT, 1, by=crew["operator2.cp1"],
                              signing=Signing(PASSWORD, "operator2.cp1"), seen=shown)  # fmt: skip
    assert counts(app) == before
    now_shown = record_view(app, crew.qa.actor, lot).steps[0].entries[0].digest
    assert now_shown != shown
    execution.verify_step(app.uow(), lot, RECEIPT, 1, by=crew["operator2.cp1"],
                          signing=Signing(PASSWORD, "operator2.cp1"), seen=now_shown)  # fmt: skip
