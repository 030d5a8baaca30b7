"""QC write side: samples, results, verification, invalidation, OOS investigations,
out-of-trend review, the batch record review, the physician's OOS release request, culture
alerts — and the QC gate every acceptance and release of a batch passes through.

Each use case is one transaction with its audit records; the rules are in domain/qc.py and
domain/specification.py, called from here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from vein2vein.domain.batch import Batch, BatchState
from vein2vein.domain.errors import IdentityMismatch, InvalidInput, RuleViolation
from vein2vein.domain.events import Event
from vein2vein.domain.materials import Severity
from vein2vein.domain.people import Actor
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.qc import (
    ConditionalStatus,
    OosInvestigation,
    OosOutcome,
    ResultStatus,
    TestResult,
    check_invalidation,
    check_new_result,
    check_not_the_analyst,
    check_result_verifier,
    out_of_trend,
)
from vein2vein.domain.specification import Conformance, Kind, Stage
from vein2vein.services.auth import Identity, Signing, recording_failures, signing_intent
from vein2vein.services.authorise import authorise, batch_sites, check_permission
from vein2vein.services.batches import record_mismatch
from vein2vein.services.execution import open_deviation_row
from vein2vein.services.records import load_record
from vein2vein.services.release import (
    acknowledge_alert,
    finalise_if_ready,
    request_oos_release,
    review_record,
    spec_of,
)
from vein2vein.services.specs import effective_spec
from vein2vein.store.qc import (
    SampleRow,
)
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "ResultEntered",
    "acknowledge_alert",  # defined in services/release.py, offered here with the rest
    "conclude_oos",
    "draw_sample",
    "enter_result",
    "escalate_oos",
    "invalidate_result",
    "request_oos_release",
    "review_oot",
    "review_record",
    "verify_result",
]


# Where a sample of each stage may be drawn: the apheresis on receipt, the rest in process.
_AFTER_RELEASE = frozenset(
    {
        BatchState.RELEASED,
        BatchState.CONDITIONALLY_RELEASED,
        BatchState.RELEASED_OOS,
        BatchState.SHIPPED,
        BatchState.DELIVERED,
        BatchState.INFUSED,
    }
)
_SAMPLING_STATES = {
    Stage.STARTING_MATERIAL: {BatchState.RECEIVED},
    Stage.IN_PROCESS: {BatchState.IN_PROCESS},
    Stage.RELEASE: {BatchState.IN_PROCESS, BatchState.QC_PENDING},
}


def _stage(stage: str | Stage) -> Stage:
    try:
        return Stage(stage)
    except ValueError:
        choices = ", ".join(s.value for s in Stage)
        raise InvalidInput(f"stage {stage!r}: expected one of {choices}") from None


def draw_sample(
    uow: UnitOfWork,
    by: Actor,
    lot: str,
    *,
    stage: str | Stage,
    scan: str,
    step_id: str | None = None,
) -> str:
    """Draw a QC sample from batch ``lot`` (its label scanned: the sample carries the COI),
    bound to the specification of the stage effective when the batch's first sample of that
    stage was drawn; returns the sample id."""
    level = _stage(stage)
    if not scan or not scan.strip():
        raise InvalidInput(f"sample of batch {lot}: scan the batch label (DIN or COI)")
    rule = rule_for("sample.draw")
    try:
        with authorise(uow, by, "sample.draw", entity=("batch", lot)):
            batch = uow.batches.get(lot)
            check_permission(by, rule, batch_sites(rule.where, batch))
            if batch.state not in _SAMPLING_STATES[level]:
                allowed = ", ".join(sorted(s.value for s in _SAMPLING_STATES[level]))
                raise RuleViolation(
                    f"batch {lot} is {batch.state.value}: a {level.value} sample "
                    f"is drawn when the batch is {allowed}"
                )
            batch.check_scan(scan)
            if level is Stage.STARTING_MATERIAL:
                if step_id:
                    raise InvalidInput(
                        "a starting-material sample is drawn on receipt, not at a step"
                    )
            elif step_id:
                header = uow.records.header_and_hash(lot)
                if header is None:
                    raise RuleViolation(f"batch {lot} has no batch record to sample a step of")
                load_record(uow, lot).process.step(step_id)  # NotFound names the steps
            # A batch stays on the specification version its first sample of the stage was
            # drawn under (as it stays on its MBR version); the first binds it.
            earlier = [x for x in uow.qc.samples(lot) if x.stage is level]
            if earlier:
                record = uow.specs.get(earlier[0].spec_code, earlier[0].spec_version)
            else:
                record, _ = effective_spec(uow.specs, batch.product, level)
            now = uow.clock.now()
            number = uow.sequences.next_sequence("SMP", "SAMPLE", now.year % 100)
            sample_id = f"SMP-{now.year}-{number:06d}"
            uow.qc.add_sample(
                SampleRow(
                    sample_id,
                    lot,
                    batch.coi.value,
                    level,
                    step_id or None,
                    record.code,
                    record.version,
                    now,
                    by.user_id,
                )
            )
            uow.record(
                Event(
                    "SampleDrawn",
                    by.user_id,
                    now,
                    "batch",
                    lot,
                    new={
                        "sample": sample_id,
                        "stage": level.value,
                        "step": step_id,
                        "coi": batch.coi.value,
                        "specification": f"{record.code} v{record.version}",
                    },
                )
            )
            uow.commit()
    except IdentityMismatch as mismatch:
        record_mismatch(uow, lot, "sample", scan, by.user_id, str(mismatch))
        raise
    return sample_id


@dataclass(frozen=True, slots=True)
class ResultEntered:
    id: int
    reported: str
    unit: str
    conformance: Conformance
    oot: bool
    investigation: str | None  # the OOS investigation it opened
    alert: int | None  # the alert it raised (a failed culture after a conditional release)


def enter_result(
    uow: UnitOfWork,
    by: Actor,
    sample_id: str,
    attribute: str,
    value: str,
    *,
    method_version: str | None = None,
    instrument: str | None = None,
    tested_at: datetime | None = None,
    retest_of: int | None = None,
) -> ResultEntered:
    """Enter the result of ``attribute`` on a sample: rounded, compared and flagged at entry.

    An OOS result (beyond the starting material) opens an OOS investigation; a numeric
    result out of the product's trend (same attribute, same stage) is flagged for QA's
    review; an OOS result on a batch already released — conditionally or not, shipped or
    infused — fails a pending conditional release, alerts the treating centre at once and
    opens a critical deviation, in the same transaction. No result is entered on a batch
    rejected or terminated."""
    rule = rule_for("result.enter")
    with authorise(uow, by, "result.enter", entity=("sample", sample_id)):
        sample = uow.qc.sample(sample_id)
        batch = uow.batches.get(sample.lot, for_update=True)
        check_permission(by, rule, batch_sites(rule.where, batch))
        if batch.state in (BatchState.REJECTED, BatchState.TERMINATED):
            raise RuleViolation(f"batch {batch.lot} is {batch.state.value}: no more results")
        spec = spec_of(uow.specs, sample)
        spec_attr = spec.attribute(attribute)
        method = spec.method_of(spec_attr)
        if method_version is not None and method_version.strip() != method.version:
            raise InvalidInput(
                f"{attribute}: method {method.code} version {method_version.strip()!r} is not "
                f"the version {spec.code} v{spec.version} names ({method.version})"
            )
        evaluated = spec_attr.evaluate(spec_attr.parse(value))
        now = uow.clock.now()
        when = tested_at or now
        if when.tzinfo is None:
            raise InvalidInput(f"{attribute}: the test time {when!r} has no time zone")
        if when > now or when < sample.drawn_at:
            raise InvalidInput(
                f"{attribute}: tested at {when.isoformat()} is not between the "
                f"sample's drawing ({sample.drawn_at.isoformat()}) and now"
            )
        existing = uow.qc.results(sample.lot, sample_id=sample_id)
        check_new_result(sample_id, attribute, existing, retest_of)
        oot = (
            evaluated.number is not None
            and spec_attr.kind in (Kind.NUMERIC, Kind.MULTI)  # report-only never fails
            and out_of_trend(
                evaluated.number,
                uow.qc.history(batch.product, attribute, sample.stage, excluding_lot=batch.lot),
            )
        )
        result = TestResult(
            0,
            batch.lot,
            sample_id,
            sample.stage,
            f"{spec.code} v{spec.version}",
            attribute,
            method.code,
            method.version,
            by.user_id,
            (instrument or "").strip() or None,
            when,
            value.strip(),
            evaluated.reported,
            evaluated.number,
            spec_attr.unit,
            evaluated.conformance,
            oot,
            ResultStatus.ENTERED,
            retest_of,
        )
        result_id = uow.qc.add_result(result, entered_at=now)
        uow.record(
            Event(
                "TestResultEntered",
                by.user_id,
                now,
                "result",
                str(result_id),
                new={
                    "lot": batch.lot,
                    "sample": sample_id,
                    "attribute": attribute,
                    "method": method.code,
                    "method_version": method.version,
                    "instrument": result.instrument,
                    "tested_at": when.isoformat(),
                    "entered": result.entered,
                    "reported": evaluated.reported,
                    "unit": spec_attr.unit,
                    "conformance": evaluated.conformance.value,
                    "out_of_trend": oot,
                    "retest_of": retest_of,
                },
            )
        )
        investigation = alert = None
        if evaluated.conformance is Conformance.OOS and sample.stage is not Stage.STARTING_MATERIAL:
            investigation = _open_investigation(uow, batch.lot, result_id, by.user_id, now)
            alert = _alert_after_release(
                uow, batch, result_id, attribute, evaluated.reported, by.user_id, now
            )
        uow.commit()
    return ResultEntered(
        result_id,
        evaluated.reported,
        spec_attr.unit,
        evaluated.conformance,
        oot,
        investigation,
        alert,
    )


def _open_investigation(
    uow: UnitOfWork, lot: str, result_id: int, actor: str, now: datetime
) -> str:
    number = uow.sequences.next_sequence("OOS", "OOS", now.year % 100)
    reference = f"OOS-{now.year}-{number:05d}"
    uow.qc.add_investigation(OosInvestigation(reference, lot, result_id), at=now)
    uow.record(
        Event(
            "OosInvestigationOpened",
            actor,
            now,
            "oos",
            reference,
            new={"lot": lot, "result": result_id, "phase": 1},
        )
    )
    return reference


def _alert_after_release(
    uow: UnitOfWork,
    batch: Batch,
    result_id: int,
    attribute: str,
    reported: str,
    actor: str,
    now: datetime,
) -> int | None:
    """An OOS result on a batch already released: a pending conditional release FAILS, a
    critical deviation opens and the treating centre is alerted. None if not released."""
    conditional = uow.qc.conditional(batch.lot)
    pending = conditional is not None and conditional.status is ConditionalStatus.PENDING
    if not pending and batch.state not in _AFTER_RELEASE:
        return None
    if pending:
        assert conditional is not None
        uow.qc.close_conditional(
            batch.lot, status=ConditionalStatus.FAILED, at=now, result_id=result_id
        )
        when = f"the conditional release of {conditional.released_at:%Y-%m-%d}"
        uow.record(
            Event(
                "ConditionalReleaseFailed",
                actor,
                now,
                "batch",
                batch.lot,
                new={"result": result_id, "attribute": attribute, "reported": reported},
            )
        )
    else:
        when = "its release"
    deviation = open_deviation_row(
        uow,
        batch.lot,
        Severity.CRITICAL,
        f"{attribute} is {reported} (result {result_id}) after {when}: the dose may have been "
        f"infused; treating centre {batch.treatment_centre} alerted",
        None,
        actor,
        now,
        automatic=True,
    )
    message = (
        f"Batch {batch.lot} (COI {batch.coi.value}), released, is out of specification after "
        f"{when}: {attribute} {reported}. Do not infuse; if infused, follow the patient "
        f"closely and contact the manufacturer. Deviation {deviation}."
    )
    alert_id = uow.qc.add_alert(
        lot=batch.lot,
        treatment_centre=batch.treatment_centre,
        result_id=result_id,
        deviation=deviation,
        message=message,
        raised_at=now,
    )
    uow.record(
        Event(
            "QcAlertRaised",
            actor,
            now,
            "alert",
            str(alert_id),
            new={"lot": batch.lot, "treatment_centre": batch.treatment_centre, "message": message},
        )
    )
    return alert_id


def verify_result(
    uow: UnitOfWork, by: Identity, result_id: int, *, signing: Signing | None
) -> TestResult:
    """The second analyst verifies a result (signed, *verified*); neither its analyst nor
    the one who drew its sample may. A release made conditionally becomes final once every
    result it waited for is in, verified and conforming."""
    rule = rule_for("result.verify")
    with (
        recording_failures(uow),
        authorise(uow, by.actor, "result.verify", entity=("result", str(result_id))),
    ):
        batch, result = _locked(uow, result_id)
        check_permission(by.actor, rule, batch_sites(rule.where, batch))
        check_result_verifier(by.actor.user_id, result, uow.qc.sample(result.sample_id).drawn_by)
        assert rule.signature is not None
        intent = signing_intent(
            uow,
            by,
            signing,
            rule.signature,
            f"verification of result {result_id}",
            ("result", str(result_id)),
        )
        now = uow.clock.now()
        verified = replace(
            result, status=ResultStatus.VERIFIED, verified_by=by.actor.user_id, verified_at=now
        )
        uow.qc.update_result(result, verified)
        uow.record(
            Event(
                "TestResultVerified",
                by.actor.user_id,
                now,
                "result",
                str(result_id),
                new={
                    "lot": result.lot,
                    "attribute": result.attribute,
                    "reported": result.reported,
                    "conformance": result.conformance.value,
                },
                old={"status": result.status.value},
                signature=intent,
            )
        )
        finalise_if_ready(uow, batch, by.actor.user_id, now)
        uow.commit()
    return verified


def invalidate_result(uow: UnitOfWork, by: Actor, result_id: int, *, reason: str) -> TestResult:
    """Invalidate a result with a reason; the original stays and the attribute may be
    retested. The rules of who may and when are ``check_invalidation`` (domain/qc.py): an
    OOS result only by its investigation, an apheresis result out of criteria only by QA,
    an out-of-trend one once reviewed, and none after the batch's disposition."""
    rule = rule_for("result.invalidate")
    with authorise(uow, by, "result.invalidate", entity=("result", str(result_id))):
        batch, result = _locked(uow, result_id)
        check_permission(by, rule, batch_sites(rule.where, batch))
        opened = [
            i.investigation.reference
            for i in uow.qc.investigations(result.lot)
            if i.investigation.result_id == result_id
        ]
        check_invalidation(result, by, batch.state, opened[0] if opened else None)
        invalid = _invalidate(uow, result, by.user_id, reason)
        uow.commit()
    return invalid


def _locked(uow: UnitOfWork, result_id: int) -> tuple[Batch, TestResult]:
    """The batch of a result, then the result, each locked for update: always in that
    order (batch first, as every QC and batch write does), so two writers never deadlock."""
    lot = uow.qc.result(result_id).lot
    batch = uow.batches.get(lot, for_update=True)
    return batch, uow.qc.result(result_id, lock=True)


def _invalidate(uow: UnitOfWork, result: TestResult, actor: str, reason: str) -> TestResult:
    now = uow.clock.now()
    invalid = result.invalidated(by=actor, at=now, reason=reason)
    uow.qc.update_result(result, invalid)
    uow.record(
        Event(
            "TestResultInvalidated",
            actor,
            now,
            "result",
            str(result.id),
            new={
                "lot": result.lot,
                "attribute": result.attribute,
                "status": "invalidated",
                "reported": result.reported,
                "conformance": result.conformance.value,
            },
            old={"status": result.status.value},
            reason=invalid.invalid_reason,
        )
    )
    return invalid


def review_oot(uow: UnitOfWork, by: Actor, result_id: int, *, comment: str) -> TestResult:
    """QA reviews an out-of-trend result, with a comment (what was looked at, why it stands)."""
    if not comment or not comment.strip():
        raise InvalidInput(f"review of result {result_id}: the comment is empty")
    rule = rule_for("oot.review")
    with authorise(uow, by, "oot.review", entity=("result", str(result_id))):
        batch, result = _locked(uow, result_id)
        check_permission(by, rule, batch_sites(rule.where, batch))
        check_not_the_analyst(by.user_id, result, "review the trend of")
        if not result.oot:
            raise RuleViolation(f"result {result_id} is not out of trend: nothing to review")
        if result.oot_reviewed_by is not None:
            raise RuleViolation(f"result {result_id} was reviewed by {result.oot_reviewed_by}")
        now = uow.clock.now()
        reviewed = replace(result, oot_reviewed_by=by.user_id, oot_comment=comment.strip())
        uow.qc.update_result(result, reviewed)
        uow.record(
            Event(
                "OutOfTrendReviewed",
                by.user_id,
                now,
                "result",
                str(result_id),
                new={"lot": result.lot, "attribute": result.attribute},
                reason=comment.strip(),
            )
        )
        finalise_if_ready(uow, batch, by.user_id, now)
        uow.commit()
    return reviewed


def escalate_oos(uow: UnitOfWork, by: Actor, reference: str, *, finding: str) -> OosInvestigation:
    """Phase I (laboratory) found no assignable cause: the investigation goes to phase II."""
    rule = rule_for("oos.escalate")
    with authorise(uow, by, "oos.escalate", entity=("oos", reference)):
        row = uow.qc.investigation(reference)
        check_permission(by, rule, batch_sites(rule.where, uow.batches.get(row.investigation.lot)))
        after = row.investigation.escalated(finding)
        uow.qc.save_investigation(row.investigation, after)
        uow.record(
            Event(
                "OosInvestigationEscalated",
                by.user_id,
                uow.clock.now(),
                "oos",
                reference,
                new={"phase": 2, "phase_i_finding": after.phase_i_finding},
                old={"phase": 1},
            )
        )
        uow.commit()
    return after


def conclude_oos(
    uow: UnitOfWork,
    by: Identity,
    reference: str,
    *,
    outcome: str,
    conclusion: str,
    signing: Signing | None,
) -> OosInvestigation:
    """QA concludes an OOS investigation with a signature (*approved*). A laboratory error
    invalidates the result in the same transaction (a retest may follow); a confirmed OOS
    stands: the batch is rejected, or released out of specification on a physician's
    request. The OOS flag of the result stays visible either way."""
    try:
        verdict = OosOutcome(outcome)
    except ValueError:
        choices = ", ".join(o.value for o in OosOutcome)
        raise InvalidInput(f"outcome {outcome!r}: expected one of {choices}") from None
    rule = rule_for("oos.conclude")
    with (
        recording_failures(uow),
        authorise(uow, by.actor, "oos.conclude", entity=("oos", reference)),
    ):
        row = uow.qc.investigation(reference)
        batch = uow.batches.get(row.investigation.lot, for_update=True)
        check_permission(by.actor, rule, batch_sites(rule.where, batch))
        after = row.investigation.concluded(verdict, conclusion)
        check_not_the_analyst(
            by.actor.user_id, uow.qc.result(after.result_id), "conclude the investigation of"
        )
        assert rule.signature is not None
        intent = signing_intent(
            uow, by, signing, rule.signature, f"conclusion of {reference}", ("oos", reference)
        )
        now = uow.clock.now()
        uow.qc.save_investigation(row.investigation, after, at=now, by=by.actor.user_id)
        uow.record(
            Event(
                "OosInvestigationConcluded",
                by.actor.user_id,
                now,
                "oos",
                reference,
                new={
                    "lot": batch.lot,
                    "result": after.result_id,
                    "outcome": verdict.value,
                    "phase": after.phase,
                },
                reason=after.conclusion,
                signature=intent,
            )
        )
        if verdict is OosOutcome.LABORATORY_ERROR:
            result = uow.qc.result(after.result_id, lock=True)
            _invalidate(
                uow,
                result,
                by.actor.user_id,
                f"laboratory error found by {reference}: {after.conclusion}",
            )
        finalise_if_ready(uow, batch, by.actor.user_id, now)
        uow.commit()
    return after
