"""The QC rules (issue 6): who verifies a result, when a result may be entered or retested,
out-of-trend results, OOS investigations, apheresis acceptance and the release check."""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from vein2vein.domain.batch import BatchState
from vein2vein.domain.errors import InvalidInput, PermissionDenied, RuleViolation
from vein2vein.domain.people import ALL_SITES, Actor, Role
from vein2vein.domain.process import Range
from vein2vein.domain.qc import (
    BlockerKind,
    OosInvestigation,
    OosOutcome,
    ReleaseCheck,
    ResultStatus,
    TestResult,
    acceptance_check,
    check_invalidation,
    check_new_result,
    check_not_the_analyst,
    check_result_verifier,
    current_results,
    out_of_trend,
    release_check,
)
from vein2vein.domain.specification import (
    Attribute,
    Conformance,
    Kind,
    Method,
    Specification,
    Stage,
)

NOW = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
VERIFIED, ENTERED, INVALIDATED = (
    ResultStatus.VERIFIED,
    ResultStatus.ENTERED,
    ResultStatus.INVALIDATED,
)
OK, OOS = Conformance.CONFORMS, Conformance.OOS


def result(
    id: int,
    attribute: str,
    conformance: Conformance = OK,
    status: ResultStatus = VERIFIED,
    *,
    sample_id: str = "S-REL",
    stage: Stage = Stage.RELEASE,
    **changes: object,
) -> TestResult:
    made = TestResult(
        id=id, lot="LOT-1", sample_id=sample_id, stage=stage, spec="TEST v1",
        attribute=attribute, method="m", method_version="1.0", analyst="qc.cp1",
        instrument=None, tested_at=NOW, entered="x", reported="x", number=None, unit="",
        conformance=conformance, status=status,
    )  # fmt: skip
    return replace(made, **changes)  # type: ignore[arg-type]


# -- verification ------------------------------------------------------------------------


def test_a_second_analyst_verifies_a_result() -> None:
    check_result_verifier("qc2.cp1", result(1, "viability", status=ENTERED), "operator.cp1")


def test_the_analyst_who_entered_a_result_may_not_verify_it() -> None:
    with pytest.raises(PermissionDenied, match=r"qc.cp1 may not verify result 1: they entered it"):
        check_result_verifier("qc.cp1", result(1, "viability", status=ENTERED), "operator.cp1")


def test_the_person_who_drew_the_sample_may_not_verify_its_results() -> None:
    with pytest.raises(PermissionDenied, match="they drew sample S-REL"):
        check_result_verifier("qc2.cp1", result(1, "viability", status=ENTERED), "qc2.cp1")


@pytest.mark.parametrize("status", [VERIFIED, INVALIDATED])
def test_a_result_is_verified_once_and_never_once_invalidated(status: ResultStatus) -> None:
    with pytest.raises(RuleViolation, match=f"result 1 is {status.value}: nothing to verify"):
        check_result_verifier("qc2.cp1", result(1, "viability", status=status), "operator.cp1")


# -- entering and retesting --------------------------------------------------------------


def test_a_first_result_is_entered() -> None:
    other_sample = result(1, "viability", sample_id="S-IPC")
    other_attribute = result(2, "potency")
    check_new_result("S-REL", "viability", [other_sample, other_attribute], None)


def test_a_second_current_result_of_an_attribute_on_a_sample_is_refused() -> None:
    for status in (ENTERED, VERIFIED):
        with pytest.raises(RuleViolation, match="sample S-REL has result 1 for viability already"):
            check_new_result("S-REL", "viability", [result(1, "viability", status=status)], None)


def test_a_result_after_an_invalidation_must_be_entered_as_its_retest() -> None:
    invalidated = result(1, "viability", OOS, INVALIDATED)
    with pytest.raises(InvalidInput, match="invalidated \\(result 1\\); enter the new result as"):
        check_new_result("S-REL", "viability", [invalidated], None)
    check_new_result("S-REL", "viability", [invalidated], 1)


def test_a_retest_of_a_standing_result_is_refused_no_testing_into_compliance() -> None:
    for status in (ENTERED, VERIFIED):
        standing = result(1, "viability", OOS, status)
        with pytest.raises(RuleViolation, match="only an invalidated result is retested"):
            check_new_result("S-REL", "viability", [standing], 1)


def test_a_retest_while_another_retest_stands_is_refused() -> None:
    history = [result(1, "viability", OOS, INVALIDATED), result(2, "viability", retest_of=1)]
    with pytest.raises(RuleViolation, match="has result 2 for viability already"):
        check_new_result("S-REL", "viability", history, 1)


def test_a_retest_of_a_retest_that_was_invalidated_is_entered() -> None:
    history = [
        result(1, "viability", OOS, INVALIDATED),
        result(2, "viability", OOS, INVALIDATED, retest_of=1),
    ]
    check_new_result("S-REL", "viability", history, 2)


@pytest.mark.parametrize(
    ("sample_id", "attribute", "retest_of"),
    [("S-REL", "potency", 1), ("S-OTHER", "viability", 1), ("S-REL", "viability", 99)],
)
def test_a_retest_of_another_attribute_or_sample_or_of_nothing_is_refused(
    sample_id: str, attribute: str, retest_of: int
) -> None:
    invalidated = result(1, "viability", OOS, INVALIDATED)
    with pytest.raises(InvalidInput, match=f"retest of result {retest_of}: no result"):
        check_new_result(sample_id, attribute, [invalidated], retest_of)


def test_an_invalidation_needs_a_reason_and_keeps_what_was_reported() -> None:
    original = result(1, "viability", OOS, reported="62", number=62.0)
    for reason in ("", "   "):
        with pytest.raises(InvalidInput, match="result 1: invalidation needs a reason"):
            original.invalidated(by="qa.cp1", at=NOW, reason=reason)
    gone = original.invalidated(by="qa.cp1", at=NOW, reason="  pipette out of calibration ")
    assert (gone.status, gone.current, gone.invalid_reason) == (
        INVALIDATED, False, "pipette out of calibration"
    )  # fmt: skip
    assert (gone.invalidated_by, gone.invalidated_at) == ("qa.cp1", NOW)
    assert (gone.reported, gone.number, gone.conformance, gone.oos) == ("62", 62.0, OOS, True)
    with pytest.raises(RuleViolation, match="result 1 is invalidated already"):
        gone.invalidated(by="qa.cp1", at=NOW, reason="again")


def test_the_current_results_are_those_not_invalidated_oldest_first() -> None:
    results = [
        result(3, "viability", retest_of=1),
        result(1, "viability", OOS, INVALIDATED),
        result(2, "potency", status=ENTERED),
    ]
    current = current_results(results)
    assert {k: [r.id for r in v] for k, v in current.items()} == {"viability": [3], "potency": [2]}


# -- out of trend ------------------------------------------------------------------------

HISTORY = [80.0, 82, 81, 79, 83, 80, 81, 82, 80, 81]


def test_a_result_beyond_3_standard_deviations_either_side_is_out_of_trend() -> None:
    mean, sd = statistics.fmean(HISTORY), statistics.stdev(HISTORY)
    assert not out_of_trend(mean + 2.99 * sd, HISTORY)
    assert out_of_trend(mean + 3.01 * sd, HISTORY)
    assert not out_of_trend(mean - 2.99 * sd, HISTORY)
    assert out_of_trend(mean - 3.01 * sd, HISTORY)
    assert out_of_trend(mean + 2.01 * sd, HISTORY, sigmas=2.0)


def test_too_little_history_says_nothing_about_a_trend() -> None:
    assert not out_of_trend(10.0, HISTORY[:9])
    assert out_of_trend(10.0, HISTORY[:10])
    assert out_of_trend(10.0, HISTORY[:5], min_history=5)


def test_a_constant_history_has_no_trend_to_leave() -> None:
    flat = [80.0] * 10
    assert not out_of_trend(80.0, flat)
    assert not out_of_trend(80.1, flat) and not out_of_trend(60.0, flat)


# -- OOS investigations ------------------------------------------------------------------


def investigation() -> OosInvestigation:
    return OosInvestigation("OOS-2025-0001", "LOT-1", result_id=7)


def test_an_investigation_is_escalated_to_phase_ii_with_the_phase_i_finding() -> None:
    opened = investigation()
    assert (opened.phase, opened.open) == (1, True)
    for finding in ("", "  "):
        with pytest.raises(InvalidInput, match="escalation needs the phase I finding"):
            opened.escalated(finding)
    escalated = opened.escalated(" no laboratory cause found ")
    assert (escalated.phase, escalated.phase_i_finding) == (2, "no laboratory cause found")
    with pytest.raises(RuleViolation, match="in phase II already"):
        escalated.escalated("again")


def test_a_closed_investigation_is_not_escalated() -> None:
    closed = investigation().concluded(OosOutcome.LABORATORY_ERROR, "wrong dilution")
    with pytest.raises(RuleViolation, match="OOS-2025-0001 is closed"):
        closed.escalated("no laboratory cause")


def test_an_oos_is_confirmed_only_after_phase_ii() -> None:
    with pytest.raises(RuleViolation, match="confirmed only after a full \\(phase II\\)"):
        investigation().concluded(OosOutcome.CONFIRMED, "the batch is out of specification")
    confirmed = (
        investigation()
        .escalated("no laboratory cause")
        .concluded(OosOutcome.CONFIRMED, " low viability confirmed ")
    )
    assert (confirmed.outcome, confirmed.conclusion, confirmed.open) == (
        OosOutcome.CONFIRMED, "low viability confirmed", False
    )  # fmt: skip


def test_a_laboratory_error_may_be_concluded_in_phase_i_or_phase_ii() -> None:
    in_phase_i = investigation().concluded(OosOutcome.LABORATORY_ERROR, "wrong dilution")
    assert (in_phase_i.outcome, in_phase_i.phase, in_phase_i.open) == (
        OosOutcome.LABORATORY_ERROR, 1, False
    )  # fmt: skip
    in_phase_ii = investigation().escalated("none").concluded(OosOutcome.LABORATORY_ERROR, "seal")
    assert in_phase_ii.outcome is OosOutcome.LABORATORY_ERROR


def test_an_investigation_is_concluded_once_and_with_a_conclusion() -> None:
    with pytest.raises(InvalidInput, match="the conclusion is empty"):
        investigation().concluded(OosOutcome.LABORATORY_ERROR, "  ")
    closed = investigation().concluded(OosOutcome.LABORATORY_ERROR, "wrong dilution")
    with pytest.raises(RuleViolation, match="closed already"):
        closed.concluded(OosOutcome.LABORATORY_ERROR, "again")


# -- apheresis acceptance ----------------------------------------------------------------


def _numeric(name: str, low: float) -> Attribute:
    return Attribute(name, name.title(), "count", Kind.NUMERIC, limits=Range(low, None))


METHODS = {
    "count": Method("count", "Cell count", "1.0", 2),
    "rapid": Method("rapid", "Rapid sterility", "1.0", 72),
    "culture": Method("culture", "14-day culture", "5.0", 336),
}
GROWTH = {"choices": ("no growth", "growth"), "accepted": frozenset({"no growth"})}
ACCEPTANCE = Specification(
    "TEST-APH", "TEST", Stage.STARTING_MATERIAL, 1, "Acceptance", METHODS,
    (_numeric("tnc", 2.0), _numeric("viability", 80.0)),
)  # fmt: skip
RELEASE = Specification(
    "TEST-REL", "TEST", Stage.RELEASE, 1, "Release", METHODS,
    (
        _numeric("viability", 70.0),
        Attribute("sterility_rapid", "Sterility (rapid)", "rapid", Kind.CATEGORICAL, **GROWTH),  # type: ignore[arg-type]
        Attribute("sterility_culture", "Sterility (culture)", "culture", Kind.CATEGORICAL,
                  pending_allowed_with="sterility_rapid", **GROWTH),  # type: ignore[arg-type]
    ),
)  # fmt: skip


def aph(id: int, attribute: str, conformance: Conformance = OK, status: ResultStatus = VERIFIED,
        **changes: object) -> TestResult:  # fmt: skip
    return result(id, attribute, conformance, status, sample_id="S-APH",
                  stage=Stage.STARTING_MATERIAL, **changes)  # fmt: skip


def test_an_apheresis_with_every_result_verified_and_conforming_is_accepted() -> None:
    check = acceptance_check(ACCEPTANCE, [aph(1, "tnc"), aph(2, "viability")])
    assert (check.complete, check.meets_criteria, check.problems()) == (True, True, [])


def test_acceptance_lists_missing_unverified_and_out_of_criteria_results() -> None:
    check = acceptance_check(ACCEPTANCE, [aph(1, "tnc", OOS, reported="1.50")])
    assert (check.missing, check.complete, check.meets_criteria) == (("viability",), False, False)
    assert [r.id for r in check.out_of_criteria] == [1]
    check = acceptance_check(ACCEPTANCE, [aph(1, "tnc"), aph(2, "viability", status=ENTERED)])
    assert (check.unverified, check.complete) == (("viability",), False)
    check = acceptance_check(ACCEPTANCE, [aph(1, "tnc", OOS, reported="1.50"), aph(2, "viability")])
    assert (check.complete, check.meets_criteria) == (True, False)
    assert check.problems() == ["out of criteria: tnc 1.50 (result 1)"]


def test_an_invalidated_result_does_not_count_for_acceptance_and_its_retest_does() -> None:
    invalidated = aph(1, "tnc", OOS, INVALIDATED)
    check = acceptance_check(ACCEPTANCE, [invalidated, aph(2, "viability")])
    assert (check.missing, check.out_of_criteria) == (("tnc",), ())
    retest = aph(3, "tnc", retest_of=1)
    check = acceptance_check(ACCEPTANCE, [invalidated, aph(2, "viability"), retest])
    assert check.meets_criteria


def test_results_of_other_stages_do_not_count_for_acceptance() -> None:
    check = acceptance_check(ACCEPTANCE, [result(1, "tnc"), result(2, "viability", OOS)])
    assert check.missing == ("tnc", "viability") and not check.out_of_criteria


def test_acceptance_and_release_are_checked_against_their_own_stage_s_specification() -> None:
    with pytest.raises(InvalidInput, match="TEST-REL is a release specification, not acceptance"):
        acceptance_check(RELEASE, [])
    with pytest.raises(InvalidInput, match="TEST-APH is a starting-material specification, not"):
        release_check(ACCEPTANCE, [], record_reviewed=True)


# -- the release check -------------------------------------------------------------------


def passing() -> list[TestResult]:
    return [
        result(1, "viability", reported="82"),
        result(2, "sterility_rapid", reported="no growth"),
        result(3, "sterility_culture", reported="no growth"),
    ]


def check(
    results: list[TestResult],
    *,
    investigations: tuple[OosInvestigation, ...] = (),
    deviations: tuple[str, ...] = (),
    reviewed: bool = True,
) -> ReleaseCheck:
    return release_check(
        RELEASE,
        results,
        open_investigations=investigations,
        open_deviations=deviations,
        record_reviewed=reviewed,
    )


def kinds(release: ReleaseCheck) -> list[tuple[BlockerKind, str]]:
    return [(b.kind, b.subject) for b in release.blockers]


def test_a_batch_with_every_result_verified_and_conforming_and_its_record_reviewed_releases() -> (
    None
):
    release = check(passing())
    assert (release.blockers, release.releasable) == ((), True)
    assert not release.conditionally_releasable and not release.releasable_oos


def test_a_missing_release_result_blocks_release() -> None:
    release = check(passing()[:1] + passing()[2:])
    assert kinds(release) == [(BlockerKind.MISSING, "sterility_rapid")]
    assert "no result yet (Rapid sterility)" in release.blockers[0].detail
    assert not release.releasable and not release.conditionally_releasable


def test_an_in_process_result_does_not_stand_for_a_release_result() -> None:
    in_process = result(1, "viability", sample_id="S-IPC", stage=Stage.IN_PROCESS)
    release = check([in_process, *passing()[1:]])
    assert kinds(release) == [(BlockerKind.MISSING, "viability")]


def test_an_unverified_result_blocks_release() -> None:
    results = passing()
    results[0] = replace(results[0], status=ENTERED)
    release = check(results)
    assert kinds(release) == [(BlockerKind.UNVERIFIED, "viability")]
    assert "result 1 (82) awaits a second analyst" in str(release.blockers[0])


def test_an_oos_result_under_investigation_blocks_release_and_then_stands_as_oos() -> None:
    results = passing()
    results[0] = replace(results[0], conformance=OOS, reported="62")
    opened = OosInvestigation("OOS-2025-0001", "LOT-1", result_id=1)
    release = check(results, investigations=(opened,))
    assert kinds(release) == [(BlockerKind.INVESTIGATION, "viability")]
    assert "result 1 (62): OOS-2025-0001 is open" in release.blockers[0].detail
    assert not release.releasable_oos
    confirmed = opened.escalated("no lab cause").concluded(OosOutcome.CONFIRMED, "low viability")
    release = check(results, investigations=(confirmed,))  # a closed one is not open
    assert kinds(release) == [(BlockerKind.OOS, "viability")]
    assert release.releasable_oos and release.oos_attributes == ["viability"]
    assert not release.releasable and not release.conditionally_releasable


def test_an_investigation_of_another_result_does_not_stand_for_this_one() -> None:
    results = passing()
    results[0] = replace(results[0], conformance=OOS)
    other = OosInvestigation("OOS-2025-0002", "LOT-1", result_id=99)
    assert kinds(check(results, investigations=(other,))) == [(BlockerKind.OOS, "viability")]


def test_an_out_of_specification_in_process_result_blocks_release() -> None:
    in_process = result(9, "viability", OOS, sample_id="S-IPC", stage=Stage.IN_PROCESS)
    release = check([*passing(), in_process])
    assert kinds(release) == [(BlockerKind.OOS, "viability")]
    assert "result 9" in release.blockers[0].detail


def test_an_invalidated_oos_result_does_not_block_release() -> None:
    invalidated = result(9, "viability", OOS, INVALIDATED, sample_id="S-IPC",
                         stage=Stage.IN_PROCESS, oot=True)  # fmt: skip
    assert check([*passing(), invalidated]).releasable


def test_starting_material_results_are_ignored_by_the_release_check() -> None:
    apheresis = [
        aph(7, "viability", OOS, ENTERED, oot=True),
        aph(8, "tnc", OOS, VERIFIED),
    ]
    assert check([*passing(), *apheresis]).releasable
    # and an apheresis result does not stand for a missing release result:
    release = check([*passing()[1:], aph(7, "viability")])
    assert kinds(release) == [(BlockerKind.MISSING, "viability")]


def test_an_out_of_trend_result_blocks_release_until_qa_reviews_it() -> None:
    results = passing()
    results[0] = replace(results[0], oot=True)
    assert kinds(check(results)) == [(BlockerKind.OOT, "viability")]
    results[0] = replace(results[0], oot_reviewed_by="qa.cp1", oot_comment="donor variability")
    assert check(results).releasable


def test_an_open_deviation_blocks_release() -> None:
    release = check(passing(), deviations=("DEV-2025-0003",))
    assert kinds(release) == [(BlockerKind.DEVIATION, "DEV-2025-0003")]
    assert not release.conditionally_releasable and not release.releasable_oos


def test_a_batch_record_not_reviewed_blocks_release() -> None:
    release = check(passing(), reviewed=False)
    assert kinds(release) == [(BlockerKind.RECORD, "batch record")]
    assert not release.releasable_oos


def test_every_blocker_is_listed_at_once() -> None:
    results = [
        result(1, "viability", OOS, ENTERED, oot=True),
        result(2, "sterility_rapid", OOS),
    ]
    release = check(results, deviations=("DEV-1",), reviewed=False)
    assert kinds(release) == [
        (BlockerKind.MISSING, "sterility_culture"),
        (BlockerKind.UNVERIFIED, "viability"),
        (BlockerKind.OOS, "viability"),
        (BlockerKind.OOT, "viability"),
        (BlockerKind.OOS, "sterility_rapid"),
        (BlockerKind.DEVIATION, "DEV-1"),
        (BlockerKind.RECORD, "batch record"),
    ]
    assert release.pending_conditional == ()  # the rapid method did not conform


# -- conditional release -----------------------------------------------------------------


def test_a_batch_is_released_conditionally_when_only_the_culture_is_pending_and_rapid_passed() -> (
    None
):
    release = check(passing()[:2])
    assert kinds(release) == [(BlockerKind.MISSING, "sterility_culture")]
    assert release.pending_conditional == ("sterility_culture",)
    assert "Sterility (rapid) conforms, so it may be pending" in release.blockers[0].detail
    assert release.conditionally_releasable
    assert not release.releasable and not release.releasable_oos


def test_an_invalidated_culture_may_be_pending_at_a_conditional_release() -> None:
    culture = result(3, "sterility_culture", OOS, INVALIDATED)
    assert check([*passing()[:2], culture]).conditionally_releasable


@pytest.mark.parametrize(
    "blocking",
    [
        {"deviations": ("DEV-1",)},
        {"reviewed": False},
    ],
)
def test_no_conditional_release_while_anything_else_blocks(blocking: dict[str, object]) -> None:
    release = check(passing()[:2], **blocking)  # type: ignore[arg-type]
    assert release.pending_conditional == ("sterility_culture",)
    assert not release.conditionally_releasable


@pytest.mark.parametrize(
    "change",
    [
        {"status": ENTERED},  # viability unverified
        {"conformance": OOS},  # viability OOS
        {"oot": True},  # viability out of trend, not reviewed
    ],
)
def test_no_conditional_release_when_another_result_blocks(change: dict[str, object]) -> None:
    results = passing()[:2]
    results[0] = replace(results[0], **change)  # type: ignore[arg-type]
    release = check(results)
    assert release.pending_conditional == ("sterility_culture",)
    assert not release.conditionally_releasable


def test_no_conditional_release_when_another_result_is_missing() -> None:
    release = check([passing()[1]])
    assert kinds(release) == [
        (BlockerKind.MISSING, "viability"),
        (BlockerKind.MISSING, "sterility_culture"),
    ]
    assert not release.conditionally_releasable


@pytest.mark.parametrize(
    "rapid",
    [
        result(2, "sterility_rapid", OOS, reported="growth"),
        result(2, "sterility_rapid", status=ENTERED),
        result(2, "sterility_rapid", OOS, INVALIDATED),
    ],
    ids=["oos", "unverified", "invalidated"],
)
def test_no_conditional_release_unless_the_rapid_method_passed_verified(rapid: TestResult) -> None:
    release = check([passing()[0], rapid])
    assert release.pending_conditional == ()
    assert (BlockerKind.MISSING, "sterility_culture") in kinds(release)
    assert not release.conditionally_releasable


def test_no_conditional_release_when_an_in_process_rapid_result_is_oos() -> None:
    in_process = result(8, "sterility_rapid", OOS, sample_id="S-IPC", stage=Stage.IN_PROCESS)
    release = check([*passing()[:2], in_process])
    assert release.pending_conditional == ()
    assert not release.conditionally_releasable


def test_a_culture_result_awaiting_verification_is_not_pending() -> None:
    culture = result(3, "sterility_culture", status=ENTERED)
    release = check([*passing()[:2], culture])
    assert kinds(release) == [(BlockerKind.UNVERIFIED, "sterility_culture")]
    assert release.pending_conditional == () and not release.conditionally_releasable


def test_release_out_of_specification_only_when_oos_results_are_all_that_block() -> None:
    results = passing()
    results[0] = replace(results[0], conformance=OOS)
    assert check(results).releasable_oos
    assert not check(results[:2]).releasable_oos  # the culture is missing too
    assert not check(results, reviewed=False).releasable_oos
    assert not check(results, deviations=("DEV-1",)).releasable_oos
    unverified = [replace(results[0], status=ENTERED), *results[1:]]
    assert not check(unverified).releasable_oos


# -- invalidation and independence ------------------------------------------------------


def _person(user_id: str, *roles: Role) -> Actor:
    return Actor(user_id, user_id, frozenset(roles), ALL_SITES)


ANALYST = _person("qc.cp1", Role.QC_ANALYST)
QA = _person("qa.cp1", Role.QA_REVIEWER)
BOTH = _person("qc.cp1", Role.QC_ANALYST, Role.QA_REVIEWER)  # the result's own analyst


def test_a_conforming_result_is_invalidated_with_a_reason_before_the_disposition() -> None:
    check_invalidation(result(1, "potency"), ANALYST, BatchState.QC_PENDING)


def test_an_oos_release_result_is_invalidated_only_by_its_investigation() -> None:
    with pytest.raises(RuleViolation, match=r"only when its OOS investigation \(none\) concludes"):
        check_invalidation(result(1, "potency", OOS), QA, BatchState.QC_PENDING)


def test_an_apheresis_result_out_of_criteria_is_invalidated_only_by_qa_not_its_analyst() -> None:
    low = result(1, "viability", OOS, stage=Stage.STARTING_MATERIAL)
    for who in (ANALYST, BOTH):
        with pytest.raises(PermissionDenied, match="only by QA, not by its analyst"):
            check_invalidation(low, who, BatchState.RECEIVED)
    check_invalidation(low, QA, BatchState.RECEIVED)


def test_an_out_of_trend_result_is_invalidated_only_once_reviewed() -> None:
    odd = result(1, "car_percent", oot=True)
    with pytest.raises(RuleViolation, match="QA reviews it before it can be invalidated"):
        check_invalidation(odd, ANALYST, BatchState.QC_PENDING)
    check_invalidation(replace(odd, oot_reviewed_by="qa.cp1"), ANALYST, BatchState.QC_PENDING)


@pytest.mark.parametrize("state", [BatchState.RELEASED, BatchState.INFUSED, BatchState.REJECTED])
def test_no_result_is_invalidated_after_the_batchs_disposition(state: BatchState) -> None:
    with pytest.raises(RuleViolation, match="not invalidated after its disposition"):
        check_invalidation(result(1, "potency"), QA, state)


def test_the_analyst_of_a_result_does_not_decide_about_it_whatever_their_other_roles() -> None:
    with pytest.raises(PermissionDenied, match=r"qc\.cp1 may not conclude the investigation of"):
        check_not_the_analyst(
            BOTH.user_id, result(1, "endotoxin", OOS), "conclude the investigation of"
        )
    check_not_the_analyst(QA.user_id, result(1, "endotoxin", OOS), "conclude the investigation of")
