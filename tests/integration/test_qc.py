"""QC and release through the services, on SQLite and PostgreSQL: each rule of issue 6 with
a test that fails without it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.test_record_pdf import pdf_text
from tests.network import (
    ACCEPTABLE,
    PASSWORD,
    RELEASABLE,
    act,
    advance,
    order,
    pass_acceptance,
    pass_release_qc,
    people_of,
    results,
    sample,
    scan_code,
    small_network,
    spec_text,
)
from vein2vein.domain.batch import Action, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import (
    DuplicateIdentifier,
    IdentityMismatch,
    InvalidInput,
    PermissionDenied,
    RuleViolation,
)
from vein2vein.domain.qc import BlockerKind, ResultStatus
from vein2vein.domain.specification import Conformance
from vein2vein.services import qc, queries, specs
from vein2vein.services.app import App
from vein2vein.services.auth import Signing
from vein2vein.services.coa_pdf import certificate_pdf
from vein2vein.services.qc_views import batch_qc, workload
from vein2vein.store import tables as t


def _sign(user: str) -> Signing:
    return Signing(PASSWORD, user)


def _qc_pending(app: App, pseudonym: str = "PT-000101") -> str:
    lot = order(app, pseudonym)
    advance(app, lot, BatchState.QC_PENDING)
    return lot


def _count(app: App, table: sa.Table) -> int:
    with app.engine.connect() as c:
        return int(c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _audit(app: App, action: str) -> list[object]:
    return [e for e in queries.audit_log(app, limit=500) if e.action == action]


# -- specifications under change control -----------------------------------------------


def test_a_specification_is_imported_as_a_draft_and_made_effective_by_a_second_person(
    app: App,
) -> None:
    crew = small_network(app)
    text = spec_text("cart-cd19-release.yaml").replace("\nversion: 1\n", "\nversion: 2\n")
    draft = specs.import_spec(app.uow(), crew["qa.cp1"].actor, text, "rel-v2.yaml")
    assert (draft.code, draft.version, draft.status) == ("CART-CD19-REL", 2, "DRAFT")
    with pytest.raises(PermissionDenied, match="may not approve it too"):
        specs.approve_spec(
            app.uow(), crew.qa, "CART-CD19-REL", 2, reason="ok", signing=_sign("qa.cp1")
        )
    with pytest.raises(DuplicateIdentifier, match="exists already"):
        specs.import_spec(app.uow(), crew["qa.cp1"].actor, text, "again.yaml")
    done = specs.approve_spec(
        app.uow(),
        crew["qa2.cp1"],
        "CART-CD19-REL",
        2,
        reason="limits reviewed",
        signing=_sign("qa2.cp1"),
    )
    assert done.status == "EFFECTIVE"
    listed = {(v.code, v.version): v.status for v in specs.list_specs(app, crew.qa.actor)}
    assert listed[("CART-CD19-REL", 1)] == "SUPERSEDED"
    approved = _audit(app, "SpecificationApproved")[0]
    assert (approved.entity_id, approved.reason) == ("CART-CD19-REL v2", "limits reviewed")
    # A sample drawn now is bound to v2; one drawn before keeps v1.
    lot = order(app)
    advance(app, lot, BatchState.QC_PENDING)
    sample_id = sample(app, lot, "release")
    with app.uow() as uow:
        assert uow.qc.sample(sample_id).spec_version == 2


def test_an_invalid_specification_is_refused_naming_every_place_and_nothing_is_stored(
    app: App,
) -> None:
    crew = small_network(app)
    before = _count(app, t.specification)
    bad = spec_text("cart-cd19-release.yaml").replace("min: 70}", "min: 70, max: 60}", 1)
    bad = bad.replace("accepted: [detected]", "accepted: [positive]")
    with pytest.raises(InvalidInput) as refused:
        specs.import_spec(app.uow(), crew.qa.actor, bad, "bad.yaml")
    assert "attributes.viability: min 70 > max 60" in str(refused.value)
    assert "attributes.identity.accepted: 'positive' is not among the choices" in str(refused.value)
    assert _count(app, t.specification) == before


# -- samples and results ----------------------------------------------------------------


def test_a_sample_carries_the_coi_and_a_wrong_label_is_a_hard_stop_recorded(app: App) -> None:
    crew = small_network(app)
    lot, other = order(app), order(app, "PT-000202")
    advance(app, lot, BatchState.RECEIVED)
    advance(app, other, BatchState.RECEIVED)
    with pytest.raises(IdentityMismatch):
        qc.draw_sample(
            app.uow(),
            crew["operator.cp1"].actor,
            lot,
            stage="starting-material",
            scan=scan_code(app, other),
        )
    assert _count(app, t.qc_sample) == 0
    assert _audit(app, "IdentityMismatchDetected")[0].new["during"] == "sample"
    with pytest.raises(RuleViolation, match="is drawn when the batch is IN_PROCESS"):
        sample(app, lot, "in-process")
    sample_id = sample(app, lot, "starting-material")
    view = batch_qc(app, crew.qa.actor, lot)
    (drawn,) = view.samples
    assert drawn.sample.id == sample_id and drawn.sample.coi == view.batch.coi
    assert [a.name for a in drawn.outstanding] == list(ACCEPTABLE)


def test_a_result_is_rounded_to_its_precision_before_it_is_compared(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RECEIVED)
    sample_id = sample(app, lot, "starting-material")
    # Viability ≥ 80 %, reported to 0 decimals: 79.5 reports as 80 and conforms; 79.4 not.
    entered = results(app, sample_id, {"viability": "79.5", "tnc": "1.994"}, verify=False)
    assert (entered["viability"].reported, entered["viability"].conformance) == (
        "80",
        Conformance.CONFORMS,
    )
    assert (entered["tnc"].reported, entered["tnc"].conformance) == ("1.99", Conformance.OOS)


def test_a_result_is_verified_by_a_second_analyst_independent_of_the_sample(app: App) -> None:
    crew = small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RECEIVED)
    sample_id = sample(app, lot, "starting-material", by="qc2.cp1")  # qc2 draws the sample
    entered = results(app, sample_id, {"viability": "95"}, verify=False)["viability"]
    with pytest.raises(PermissionDenied, match="they entered it"):
        qc.verify_result(app.uow(), crew["qc.cp1"], entered.id, signing=_sign("qc.cp1"))
    with pytest.raises(PermissionDenied, match="they drew sample"):
        qc.verify_result(app.uow(), crew["qc2.cp1"], entered.id, signing=_sign("qc2.cp1"))
    with pytest.raises(PermissionDenied, match="needs the role qc-analyst"):
        qc.verify_result(app.uow(), crew.qa, entered.id, signing=_sign("qa.cp1"))
    with app.uow() as uow:
        assert uow.qc.result(entered.id).status is ResultStatus.ENTERED
    # A third analyst verifies: signed with the meaning "verified".
    from vein2vein.services import people

    people.create_user(
        app.uow(),
        crew.admin.actor,
        user_id="qc3.cp1",
        full_name="Ana Third",
        roles=["qc-analyst"],
        sites="CP1",
        password=PASSWORD,
        must_change_password=False,
    )
    from tests.network import sign_in

    third = sign_in(app, "qc3.cp1")
    verified = qc.verify_result(app.uow(), third, entered.id, signing=_sign("qc3.cp1"))
    assert (verified.status, verified.verified_by) == (ResultStatus.VERIFIED, "qc3.cp1")
    view = batch_qc(app, crew.qa.actor, lot)
    (shown,) = view.results
    assert shown.verification is not None and shown.verification.meaning == "verified"
    assert shown.verification.signer_name == "Ana Third" and shown.verification.matches


def test_a_result_is_replaced_only_by_invalidating_it_with_a_reason_and_retesting(
    app: App,
) -> None:
    crew = small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RECEIVED)
    sample_id = sample(app, lot, "starting-material")
    first = results(app, sample_id, {"volume": "250"})["volume"]
    with pytest.raises(RuleViolation, match="replaced only by invalidating it"):
        results(app, sample_id, {"volume": "260"})
    with pytest.raises(RuleViolation, match="only an invalidated result is retested"):
        qc.enter_result(
            app.uow(), crew["qc.cp1"].actor, sample_id, "volume", "260", retest_of=first.id
        )
    with pytest.raises(InvalidInput, match="needs a reason"):
        qc.invalidate_result(app.uow(), crew["qc.cp1"].actor, first.id, reason=" ")
    qc.invalidate_result(
        app.uow(), crew["qc.cp1"].actor, first.id, reason="balance out of calibration"
    )
    with pytest.raises(InvalidInput, match="enter the new result as its retest"):
        results(app, sample_id, {"volume": "260"})
    retest = qc.enter_result(
        app.uow(), crew["qc.cp1"].actor, sample_id, "volume", "262", retest_of=first.id
    )
    view = batch_qc(app, crew.qa.actor, lot)
    original, again = view.results
    assert original.result.status is ResultStatus.INVALIDATED
    assert original.result.reported == "250"  # the original is kept as it was
    assert original.result.invalid_reason == "balance out of calibration"
    assert original.retested_by == retest.id and again.result.retest_of == first.id


def test_a_method_version_other_than_the_specifications_is_refused(app: App) -> None:
    crew = small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RECEIVED)
    sample_id = sample(app, lot, "starting-material")
    with pytest.raises(InvalidInput, match=r"version '2\.9' is not the version CART-CD19-APH"):
        qc.enter_result(
            app.uow(), crew["qc.cp1"].actor, sample_id, "viability", "95", method_version="2.9"
        )
    with pytest.raises(InvalidInput, match="viability 'ninety': expected a number"):
        qc.enter_result(app.uow(), crew["qc.cp1"].actor, sample_id, "viability", "ninety")
    assert _count(app, t.test_result) == 0


# -- starting-material acceptance -------------------------------------------------------


def test_the_apheresis_is_accepted_only_on_verified_results_within_the_criteria(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RECEIVED)
    with pytest.raises(RuleViolation, match="results missing: tnc"):
        act(app, lot, Action.ACCEPT, reason="criteria met")
    sample_id = sample(app, lot, "starting-material")
    results(app, sample_id, ACCEPTABLE, verify=False)
    with pytest.raises(RuleViolation, match="results awaiting verification"):
        act(app, lot, Action.ACCEPT, reason="criteria met")
    assert queries.batch_view(app, lot).batch.state == "RECEIVED"


def test_an_apheresis_out_of_criteria_is_accepted_only_as_a_signed_reasoned_exception(
    app: App,
) -> None:
    crew = small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RECEIVED)
    pass_acceptance(app, lot, viability="72")
    with pytest.raises(RuleViolation, match="out of criteria: viability 72"):
        act(app, lot, Action.ACCEPT, reason="criteria met")
    with pytest.raises(InvalidInput, match="only to accept starting material"):
        act(app, lot, Action.REJECT_MATERIAL, reason="low", exception="x")
    act(
        app,
        lot,
        Action.ACCEPT,
        reason="accepted by exception",
        exception="no second collection possible; the treating physician agrees",
    )
    view = batch_qc(app, crew.qa.actor, lot)
    (granted,) = view.acceptance_exceptions
    assert granted.attributes == ("viability",) and granted.signed_by == "qa.cp1"
    (accepted,) = [
        e for e in queries.batch_view(app, lot).audit if e.action == "StartingMaterialAccepted"
    ]
    assert queries.batch_view(app, lot).signatures[accepted.seq].meaning == "approved"
    assert _audit(app, "AcceptanceExceptionGranted")[0].reason.startswith("no second")


def test_an_apheresis_out_of_criteria_can_be_rejected(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RECEIVED)
    pass_acceptance(app, lot, hours_from_collection="52.5")
    act(app, lot, Action.REJECT_MATERIAL, reason="52.5 h from collection")
    assert queries.batch_view(app, lot).batch.state == "REJECTED"


# -- OOS and OOT --------------------------------------------------------------------------


def test_an_oos_result_opens_an_investigation_and_its_flag_survives_invalidation(app: App) -> None:
    crew = small_network(app)
    lot = _qc_pending(app)
    sample_id = sample(app, lot, "release")
    entered = results(app, sample_id, {"endotoxin": "3.1"})["endotoxin"]
    assert entered.conformance is Conformance.OOS and entered.investigation.startswith("OOS-")
    with pytest.raises(RuleViolation, match="invalidated only when its OOS investigation"):
        qc.invalidate_result(app.uow(), crew["qc.cp1"].actor, entered.id, reason="typo")
    with pytest.raises(RuleViolation, match="confirmed only after a full \\(phase II\\)"):
        qc.conclude_oos(
            app.uow(),
            crew.qa,
            entered.investigation,
            outcome="confirmed",
            conclusion="real",
            signing=_sign("qa.cp1"),
        )
    qc.conclude_oos(
        app.uow(),
        crew.qa,
        entered.investigation,
        outcome="laboratory-error",
        conclusion="endotoxin-free water lot contaminated; standard curve failed",
        signing=_sign("qa.cp1"),
    )
    retest = qc.enter_result(
        app.uow(), crew["qc.cp1"].actor, sample_id, "endotoxin", "0.30", retest_of=entered.id
    )
    assert retest.conformance is Conformance.CONFORMS
    view = batch_qc(app, crew.qa.actor, lot)
    (flagged,) = view.oos_results  # invalidated, but the OOS flag is still shown
    assert flagged.result.id == entered.id and flagged.result.status is ResultStatus.INVALIDATED
    assert "laboratory error found by OOS-" in (flagged.result.invalid_reason or "")
    (inv,) = view.investigations
    assert inv.investigation.outcome.value == "laboratory-error" and inv.closed_by == "qa.cp1"
    assert view.signatures[f"oos:{inv.investigation.reference}"][0].meaning == "approved"


def test_an_out_of_trend_result_is_flagged_and_blocks_release_until_qa_reviews_it(
    app: App, clock: FixedClock
) -> None:
    crew = small_network(app)
    # History: ten released batches with CAR+ 40–44 %.
    for i in range(10):
        lot = order(app, f"PT-{300 + i:06d}")
        advance(app, lot, BatchState.QC_PENDING)
        pass_release_qc(app, lot, car_percent=str(40 + i % 5))
    lot = _qc_pending(app, "PT-000999")
    pass_release_qc(app, lot, car_percent="85")  # in spec (≥ 15), far off trend
    view = batch_qc(app, crew.qa.actor, lot)
    (car,) = [r for r in view.results if r.result.attribute == "car_percent"]
    assert car.result.oot and car.result.conformance is Conformance.CONFORMS
    assert [b.kind for b in view.release[1].blockers] == [BlockerKind.OOT]
    with pytest.raises(RuleViolation, match="out-of-trend result not reviewed: car_percent"):
        act(app, lot, Action.RELEASE, reason="in spec")
    qc.review_oot(
        app.uow(),
        crew.qa.actor,
        car.result.id,
        comment="new vector lot with higher titre; potency in line",
    )
    act(app, lot, Action.RELEASE, reason="in spec")
    assert queries.batch_view(app, lot).batch.state == "RELEASED"


# -- release ------------------------------------------------------------------------------


def test_the_release_check_lists_every_blocker(app: App) -> None:
    crew = small_network(app)
    lot = _qc_pending(app)
    from vein2vein.services import materials

    materials.open_deviation(
        app.uow(),
        crew["operator.cp1"].actor,
        lot,
        severity="major",
        description="freezer alarm during cryopreservation",
    )
    sample_id = sample(app, lot, "release")
    values = dict(RELEASABLE)
    del values["rcl"]
    results(app, sample_id, {k: v for k, v in values.items() if k != "vcn"})
    results(app, sample_id, {"vcn": "2.0"}, verify=False)
    _, check = batch_qc(app, crew.qa.actor, lot).release
    kinds = {(b.kind, b.subject) for b in check.blockers}
    assert (BlockerKind.MISSING, "rcl") in kinds
    assert (BlockerKind.UNVERIFIED, "vcn") in kinds
    assert (BlockerKind.RECORD, "batch record") in kinds
    assert any(k is BlockerKind.DEVIATION for k, _ in kinds)
    assert not check.releasable and not check.conditionally_releasable
    with pytest.raises(RuleViolation, match="result missing: rcl"):
        act(app, lot, Action.RELEASE, reason="in spec")


def test_only_qa_who_did_not_make_the_batch_reviews_its_record_with_a_signature(app: App) -> None:
    crew = small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.IN_PROCESS)
    with pytest.raises(RuleViolation, match="once processing is complete"):
        qc.review_record(app.uow(), crew.qa, lot, comment="ok", signing=_sign("qa.cp1"))
    advance(app, lot, BatchState.QC_PENDING)
    with pytest.raises(PermissionDenied, match="needs the role qa-reviewer"):
        qc.review_record(app.uow(), crew["qp.cp1"], lot, comment="ok", signing=_sign("qp.cp1"))
    review = qc.review_record(
        app.uow(), crew.qa, lot, comment="by exception: 0 deviations", signing=_sign("qa.cp1")
    )
    assert review.reviewed_by == "qa.cp1"
    with pytest.raises(RuleViolation, match="reviewed already"):
        qc.review_record(app.uow(), crew["qa2.cp1"], lot, comment="again", signing=_sign("qa2.cp1"))


def _all_but_culture(app: App, lot: str) -> str:
    values = {k: v for k, v in RELEASABLE.items() if k != "sterility_culture"}
    sample_id = sample(app, lot, "release")
    results(app, sample_id, values)
    qc.review_record(app.uow(), people_of(app).qa, lot, comment="reviewed", signing=_sign("qa.cp1"))
    return sample_id


def test_a_conditional_release_waits_for_the_culture_and_a_pass_makes_it_final(
    app: App, clock: FixedClock
) -> None:
    small_network(app)
    lot = _qc_pending(app)
    sample_id = _all_but_culture(app, lot)
    with pytest.raises(RuleViolation, match="a conditional release is possible"):
        act(app, lot, Action.RELEASE, reason="in spec")
    act(app, lot, Action.RELEASE_CONDITIONALLY, reason="rapid sterility negative")
    act(app, lot, Action.SHIP, scan=scan_code(app, lot))  # the dose travels meanwhile
    clock.advance(timedelta(days=14))
    results(app, sample_id, {"sterility_culture": "no growth"})
    view = batch_qc(app, people_of(app).qa.actor, lot)
    assert view.conditional is not None and view.conditional.status == "FINAL"
    assert view.batch.state == "SHIPPED"
    (final,) = _audit(app, "ConditionalReleaseMadeFinal")
    assert "sterility_culture" in final.reason


def test_a_conditional_release_still_in_the_plant_becomes_released_when_the_culture_passes(
    app: App,
) -> None:
    small_network(app)
    lot = _qc_pending(app)
    sample_id = _all_but_culture(app, lot)
    act(app, lot, Action.RELEASE_CONDITIONALLY, reason="rapid sterility negative")
    results(app, sample_id, {"sterility_culture": "no growth"})
    assert queries.batch_view(app, lot).batch.state == "RELEASED"


def test_a_conditional_release_needs_the_rapid_method_passed(app: App) -> None:
    small_network(app)
    lot = _qc_pending(app)
    values = {
        k: v for k, v in RELEASABLE.items() if k not in ("sterility_culture", "sterility_rapid")
    }
    results(app, sample(app, lot, "release"), values)
    qc.review_record(app.uow(), people_of(app).qa, lot, comment="reviewed", signing=_sign("qa.cp1"))
    with pytest.raises(RuleViolation, match="cannot be released conditionally"):
        act(app, lot, Action.RELEASE_CONDITIONALLY, reason="pending")
    assert queries.batch_view(app, lot).batch.state == "QC_PENDING"


def test_a_failed_culture_after_a_conditional_release_alerts_the_centre_and_opens_a_deviation(
    app: App,
) -> None:
    crew = small_network(app)
    lot = _qc_pending(app)
    sample_id = _all_but_culture(app, lot)
    act(app, lot, Action.RELEASE_CONDITIONALLY, reason="rapid sterility negative")
    act(app, lot, Action.SHIP, scan=scan_code(app, lot))
    entered = results(app, sample_id, {"sterility_culture": "growth"}, verify=False)
    alert_id = entered["sterility_culture"].alert
    assert alert_id is not None  # at entry, before any verification: at once
    view = batch_qc(app, crew.qa.actor, lot)
    assert view.conditional.status == "FAILED"
    (alert,) = view.alerts
    assert alert.treatment_centre == "TC1" and "Do not infuse" in alert.message
    from vein2vein.services import record_views

    deviation = record_views.deviation(app, crew.qa.actor, alert.deviation)
    assert deviation.deviation.severity.value == "critical"
    with pytest.raises(PermissionDenied):
        qc.acknowledge_alert(app.uow(), crew["qc.cp1"].actor, alert_id, note="seen")
    qc.acknowledge_alert(
        app.uow(),
        crew.coordinator.actor,
        alert_id,
        note="dose quarantined in the centre's LN2 store; physician informed",
    )
    with pytest.raises(RuleViolation, match="conditional release FAILED"):
        act(app, lot, Action.DELIVER, scan=scan_code(app, lot))  # the dose goes no further
    (acked,) = batch_qc(app, crew.qa.actor, lot).alerts
    assert acked.acknowledged_by == "coordinator.tc"
    assert _audit(app, "QcAlertAcknowledged")


def test_an_oos_dose_is_released_only_at_the_physicians_signed_request_and_marked(
    app: App,
) -> None:
    crew = small_network(app)
    lot = _qc_pending(app)
    pass_release_qc(app, lot, dose="0.38")
    (inv,) = batch_qc(app, crew.qa.actor, lot).investigations
    ref = inv.investigation.reference
    with pytest.raises(RuleViolation, match="OOS investigation open: dose"):
        act(app, lot, Action.RELEASE_OOS, reason="physician's request")
    qc.escalate_oos(app.uow(), crew["qc.cp1"].actor, ref, finding="count and calculation checked")
    qc.conclude_oos(
        app.uow(),
        crew.qa,
        ref,
        outcome="confirmed",
        conclusion="low expansion of the patient's cells",
        signing=_sign("qa.cp1"),
    )
    with pytest.raises(RuleViolation, match="no signed request of the treating physician"):
        act(app, lot, Action.RELEASE_OOS, reason="physician's request")
    with pytest.raises(PermissionDenied, match="needs the role physician"):
        qc.request_oos_release(
            app.uow(),
            crew.coordinator,
            lot,
            reason="x",
            document="y",
            signing=_sign("coordinator.tc"),
        )
    qc.request_oos_release(
        app.uow(),
        crew["dr.tc"],
        lot,
        reason="no alternative therapy; benefit outweighs the lower dose",
        document="TC1 letter 2026-03-02",
        signing=_sign("dr.tc"),
    )
    act(app, lot, Action.RELEASE_OOS, reason="physician's request, QP assessed")
    view = batch_qc(app, crew.qa.actor, lot)
    assert view.batch.state == "RELEASED_OOS"
    (request,) = view.oos_requests
    assert request.attributes == ("dose",) and request.signed_by == "dr.tc"
    assert any(s.meaning == "requested" for s in view.signatures["batch"])


def test_release_of_a_batch_with_all_results_in_spec_is_signed(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RELEASED)
    view = queries.batch_view(app, lot)
    (released,) = [e for e in view.audit if e.action == "BatchReleased"]
    assert view.signatures[released.seq].meaning == "released"


# -- QC workload -------------------------------------------------------------------------


def test_the_workload_lists_pending_tests_by_due_time_and_each_batch_timeline(
    app: App, clock: FixedClock
) -> None:
    crew = small_network(app)
    done = order(app)
    advance(app, done, BatchState.INFUSED, clock)
    lot = _qc_pending(app, "PT-000202")
    sample(app, lot, "release")
    clock.advance(timedelta(hours=5))
    view = workload(app, crew.qa.actor)
    mine = [p for p in view.pending if p.lot == lot]
    assert len(mine) == len(RELEASABLE)
    assert [p.due for p in mine] == sorted(p.due for p in mine)
    assert mine[0].overdue and not mine[-1].overdue  # 4 h viability is late; 336 h culture is not
    (timeline,) = [x for x in view.timelines if x.lot == done]
    assert timeline.harvest_to_release_days is not None and timeline.harvest_to_release_days > 0
    assert not timeline.so_far and timeline.vein_to_vein_days > timeline.harvest_to_release_days
    methods = {t.method for t in view.turnaround}
    assert "viability-7aad" in methods and "cell-count-nc" in methods


# -- what the cold review found (each test fails without its fix) ----------------------


def test_an_oos_result_after_a_release_alerts_the_centre_and_stops_the_dose(app: App) -> None:
    crew = small_network(app)
    lot = _qc_pending(app)
    first = pass_release_qc(app, lot)
    second = sample(app, lot, "release")  # a second release sample, drawn before the release
    act(app, lot, Action.RELEASE, reason="in spec")
    grown = results(app, second, {"sterility_culture": "growth"}, verify=False)
    assert grown["sterility_culture"].alert is not None and first != second
    (alert,) = batch_qc(app, crew.qa.actor, lot).alerts
    assert "after its release" in alert.message
    with pytest.raises(RuleViolation, match="critical deviation DEV-"):
        act(app, lot, Action.SHIP, scan=scan_code(app, lot))
    assert queries.batch_view(app, lot).batch.state == "RELEASED"


def test_closing_the_last_deviation_makes_a_conditional_release_final(app: App) -> None:
    crew = small_network(app)
    lot = _qc_pending(app)
    sample_id = _all_but_culture(app, lot)
    act(app, lot, Action.RELEASE_CONDITIONALLY, reason="rapid sterility negative")
    from vein2vein.services import materials

    reference = materials.open_deviation(
        app.uow(), crew["operator.cp1"].actor, lot, severity="major",
        description="cryo-shipper logger lost",
    )  # fmt: skip
    results(app, sample_id, {"sterility_culture": "no growth"})
    assert batch_qc(app, crew.qa.actor, lot).conditional.status == "PENDING"
    materials.close_deviation(app.uow(), crew.qa, reference, impact="logger found; no excursion",
                              capa="CAPA-2026-001", signing=_sign("qa.cp1"))  # fmt: skip
    view = batch_qc(app, crew.qa.actor, lot)
    assert view.conditional.status == "FINAL" and view.batch.state == "RELEASED"


def test_a_batch_stays_on_the_specification_its_first_sample_was_drawn_under(app: App) -> None:
    crew = small_network(app)
    lot = _qc_pending(app)
    first = sample(app, lot, "release")
    text = spec_text("cart-cd19-release.yaml").replace("\nversion: 1\n", "\nversion: 2\n")
    specs.import_spec(app.uow(), crew.admin.actor, text.replace("min: 70}", "min: 75}", 1), "v2")
    specs.approve_spec(app.uow(), crew.qa, "CART-CD19-REL", 2, reason="tighter viability",
                       signing=_sign("qa.cp1"))  # fmt: skip
    second = sample(app, lot, "release")
    with app.uow() as uow:
        assert {uow.qc.sample(x).spec_version for x in (first, second)} == {1}
    assert batch_qc(app, crew.qa.actor, lot).release[0].version == 1


def test_no_result_is_entered_on_a_rejected_batch_and_none_invalidated_after_release(
    app: App,
) -> None:
    crew = small_network(app)
    lot = _qc_pending(app)
    pass_release_qc(app, lot)
    act(app, lot, Action.RELEASE, reason="in spec")
    (potency,) = [r for r in batch_qc(app, crew.qa.actor, lot).results
                  if r.result.attribute == "potency"]  # fmt: skip
    with pytest.raises(RuleViolation, match="not invalidated after its disposition"):
        qc.invalidate_result(app.uow(), crew["qc.cp1"].actor, potency.result.id, reason="x")
    other = _qc_pending(app, "PT-000202")
    other_sample = sample(app, other, "release")
    act(app, other, Action.REJECT, reason="freezer failure")
    with pytest.raises(RuleViolation, match="is REJECTED: no more results"):
        results(app, other_sample, {"viability": "90"})


def test_an_apheresis_result_out_of_criteria_is_not_retested_into_them_by_its_analyst(
    app: App,
) -> None:
    crew = small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RECEIVED)
    sample_id = sample(app, lot, "starting-material")
    low = results(app, sample_id, {"viability": "72"})["viability"]
    with pytest.raises(PermissionDenied, match="only by QA, not by its analyst"):
        qc.invalidate_result(app.uow(), crew["qc.cp1"].actor, low.id, reason="re-run")
    qc.invalidate_result(app.uow(), crew.qa.actor, low.id, reason="sample clotted: QA assessed")


def test_the_analyst_of_an_oos_result_may_not_conclude_its_investigation_as_qa(
    app: App,
) -> None:
    crew = small_network(app)
    from tests.network import sign_in
    from vein2vein.services import people

    people.update_user(app.uow(), crew.admin.actor, "qc.cp1", roles=["qc-analyst", "qa-reviewer"],
                       reason="covers QA")  # fmt: skip
    both = sign_in(app, "qc.cp1")
    lot = _qc_pending(app)
    entered = results(app, sample(app, lot, "release"), {"endotoxin": "3.1"})["endotoxin"]
    with pytest.raises(PermissionDenied, match="they entered it"):
        qc.conclude_oos(app.uow(), both, entered.investigation, outcome="laboratory-error",
                        conclusion="mine", signing=_sign("qc.cp1"))  # fmt: skip


def test_the_trend_is_the_attributes_at_its_stage_and_report_only_results_have_none(
    app: App,
) -> None:
    crew = small_network(app)
    for i in range(10):  # apheresis viabilities of 95-99 % and CD4:CD8 ratios near 1.4
        lot = order(app, f"PT-{400 + i:06d}")
        advance(app, lot, BatchState.QC_PENDING)
        pass_release_qc(app, lot, cd4_cd8_ratio=f"{1.3 + i % 3 / 10:.2f}")
    lot = _qc_pending(app, "PT-000999")
    pass_release_qc(app, lot, viability="80", cd4_cd8_ratio="3.90")
    view = batch_qc(app, crew.qa.actor, lot)
    assert not any(r.result.oot for r in view.results)  # 80 % is no outlier among releases
    assert view.release[1].releasable


def test_the_certificate_reads_the_disposition_from_the_signed_record(
    app: App, tmp_path: Path
) -> None:
    crew = small_network(app)
    lot = _qc_pending(app)
    pass_release_qc(app, lot)
    act(app, lot, Action.HOLD, reason="shipper not available")
    text = pdf_text(certificate_pdf(app, crew.qa.actor, lot), tmp_path)
    assert "NOT RELEASED — the batch is ON_HOLD" in text
    assert "RELEASED — the batch meets" not in text


def test_signed_exceptions_are_append_only_in_the_database(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RECEIVED)
    pass_acceptance(app, lot, viability="75")
    act(app, lot, Action.ACCEPT, reason="by exception", exception="no second collection")
    for statement in ("UPDATE qc_exception SET reason = 'x'", "DELETE FROM qc_exception"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), app.engine.begin() as c:
            c.execute(sa.text(statement))
