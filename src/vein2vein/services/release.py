"""The QC gate of a batch's acceptance and release, and the checks the pages show.

:func:`qc_gate` is called by perform_transition (services/batches.py) before an acceptance
or any form of release is applied; it refuses with everything that stops it, or returns
what to write with the transition. :func:`release_check_for` and :func:`acceptance_for`
are what the pages, the API and the CLI show: the same checks, never re-implemented.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from vein2vein.domain.batch import Action, Batch, BatchState
from vein2vein.domain.errors import InvalidInput, PermissionDenied, RuleViolation
from vein2vein.domain.events import Event
from vein2vein.domain.materials import DeviationState, Severity, blocking_release
from vein2vein.domain.people import Actor
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.qc import (
    AcceptanceCheck,
    BlockerKind,
    ConditionalStatus,
    ReleaseCheck,
    acceptance_check,
    release_check,
)
from vein2vein.domain.specification import Specification, Stage
from vein2vein.services.auth import Identity, Signing, recording_failures, signing_intent
from vein2vein.services.authorise import authorise, batch_sites, check_permission
from vein2vein.services.specs import definition, effective_spec
from vein2vein.store.qc import (
    ConditionalRelease,
    ExceptionRow,
    QcRepository,
    ReviewRow,
    SampleRow,
    SpecRepository,
)
from vein2vein.store.queries import batch_makers
from vein2vein.store.records import DeviationRepository
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "ACCEPTANCE_EXCEPTION",
    "OOS_RELEASE_REQUEST",
    "QC_GATED",
    "acceptance_for",
    "acknowledge_alert",
    "check_release",
    "finalise_if_ready",
    "qc_allows",
    "qc_gate",
    "release_check_for",
    "request_oos_release",
    "review_record",
    "spec_of",
    "what_stops",
]

ACCEPTANCE_EXCEPTION = "acceptance-exception"
OOS_RELEASE_REQUEST = "oos-release-request"


def spec_of(specs: SpecRepository, sample: SampleRow) -> Specification:
    """The specification version a sample was drawn under."""
    return definition(specs.get(sample.spec_code, sample.spec_version))


# -- checks shared by the gate and the views ---------------------------------------------


class _OfProduct(Protocol):
    """A batch, or a row of one: its lot and product are all the checks need."""

    @property
    def lot(self) -> str: ...
    @property
    def product(self) -> str: ...


def spec_for(
    qc: QcRepository, specs: SpecRepository, batch: _OfProduct, stage: Stage
) -> Specification:
    """The one specification a batch is judged against at ``stage``: the version its first
    sample of that stage was drawn under (draw_sample binds every later one to it), or the
    effective version before any sample."""
    samples = [s for s in qc.samples(batch.lot) if s.stage is stage]
    if samples:
        return spec_of(specs, samples[0])
    return effective_spec(specs, batch.product, stage)[1]


def acceptance_for(
    qc: QcRepository, specs: SpecRepository, batch: _OfProduct
) -> tuple[Specification, AcceptanceCheck]:
    """The batch's starting-material results against its acceptance specification."""
    spec = spec_for(qc, specs, batch, Stage.STARTING_MATERIAL)
    return spec, acceptance_check(spec, qc.results(batch.lot))


def check_release(
    qc: QcRepository, specs: SpecRepository, deviations: DeviationRepository, batch: _OfProduct
) -> tuple[Specification, ReleaseCheck]:
    """What stops the release of ``batch`` (domain/qc.py release_check) against its
    release specification (``spec_for``)."""
    spec = spec_for(qc, specs, batch, Stage.RELEASE)
    blocking = [
        d.reference for d in blocking_release(r.deviation for r in deviations.for_lot(batch.lot))
    ]
    check = release_check(
        spec,
        qc.results(batch.lot),
        open_investigations=[i.investigation for i in qc.investigations(batch.lot, open_only=True)],
        open_deviations=blocking,
        record_reviewed=qc.review(batch.lot) is not None,
    )
    return spec, check


def release_check_for(uow: UnitOfWork, batch: Batch) -> tuple[Specification, ReleaseCheck]:
    return check_release(uow.qc, uow.specs, uow.deviations, batch)


def what_stops(check: ReleaseCheck) -> str:
    """The blockers of a release check in one line, grouped by kind."""
    groups: dict[str, list[str]] = {}
    for b in check.blockers:
        groups.setdefault(b.kind.value, []).append(
            b.subject if b.kind is BlockerKind.MISSING else f"{b.subject} ({b.detail})"
        )
    return "what stops it: " + "; ".join(
        f"{kind}: {', '.join(items)}" for kind, items in groups.items()
    )


def finalise_if_ready(uow: UnitOfWork, batch: Batch, actor: str, now: datetime) -> None:
    """Make a pending conditional release final once nothing stops the release any more;
    called whenever that may have changed (a result verified, a trend reviewed, an
    investigation concluded, a deviation closed). A batch rejected or terminated since
    keeps its disposition."""
    conditional = uow.qc.conditional(batch.lot)
    if conditional is None or conditional.status is not ConditionalStatus.PENDING:
        return
    if batch.state in (BatchState.REJECTED, BatchState.TERMINATED):
        return
    _, check = release_check_for(uow, batch)
    if not check.releasable:
        return
    last = _last_pending_result(uow, conditional)
    uow.qc.close_conditional(batch.lot, status=ConditionalStatus.FINAL, at=now, result_id=last)
    reason = (
        f"the results pending at the conditional release of "
        f"{conditional.released_at:%Y-%m-%d %H:%M} UTC by {conditional.released_by} "
        f"({', '.join(conditional.pending)}) conform and are verified (result {last}); made "
        "final under that signed conditional release"
    )
    uow.record(
        Event(
            "ConditionalReleaseMadeFinal",
            actor,
            now,
            "batch",
            batch.lot,
            new={"result": last, "status": ConditionalStatus.FINAL.value},
            reason=reason,
        )
    )
    if batch.state is BatchState.CONDITIONALLY_RELEASED:
        batch.confirm_release(by=actor, at=now, reason=reason)


def _last_pending_result(uow: UnitOfWork, conditional: ConditionalRelease) -> int:
    """The standing result that read out last among those the conditional release awaited."""
    return max(
        r.id
        for r in uow.qc.results(conditional.lot)
        if r.attribute in conditional.pending and r.current
    )


# -- the gate of acceptance and release -----------------------------------------------

QC_GATED = frozenset(
    {
        Action.ACCEPT,
        Action.RELEASE,
        Action.RELEASE_CONDITIONALLY,
        Action.RELEASE_OOS,
        Action.CONFIRM_RELEASE,
        Action.SHIP,
        Action.DELIVER,
        Action.INFUSE,
    }
)
# The dose moves on only while nothing found after its release says it must not.
_ONWARD = frozenset({Action.SHIP, Action.DELIVER, Action.INFUSE})


# What each form of release needs of the release check (the gate refuses with the reasons).
_RELEASE_NEEDS: dict[Action, Callable[[ReleaseCheck], bool]] = {
    Action.RELEASE: lambda c: c.releasable,
    Action.CONFIRM_RELEASE: lambda c: c.releasable,
    Action.RELEASE_CONDITIONALLY: lambda c: c.conditionally_releasable,
    Action.RELEASE_OOS: lambda c: c.releasable_oos,
}


def qc_allows(
    qc: QcRepository,
    specs: SpecRepository,
    deviations: DeviationRepository,
    batch: _OfProduct,
    action: Action,
) -> bool:
    """Whether QC would let ``action`` through as things stand (for a prompt deciding
    whether to ask for a signature; the gate checks again and says why not)."""
    if action in _RELEASE_NEEDS:
        return _RELEASE_NEEDS[action](check_release(qc, specs, deviations, batch)[1])
    if action is Action.ACCEPT:
        return acceptance_for(qc, specs, batch)[1].complete
    return True


def qc_gate(
    uow: UnitOfWork, batch: Batch, action: Action, *, actor: str, exception: str | None = None
) -> Callable[[datetime], None]:
    """Check what QC says about ``action`` on ``batch`` before it is applied; refused with
    everything that stops it. Returns what to write once the transition is applied (in the
    same transaction): an acceptance exception, a conditional release awaiting its results,
    the closure of a conditional release. A dose whose conditional release failed, or with a
    critical deviation open, is not shipped, delivered or infused."""
    if action in _ONWARD:
        return _check_onward(uow, batch, action)
    if action is Action.ACCEPT:
        spec, acceptance = acceptance_for(uow.qc, uow.specs, batch)
        if not acceptance.complete:
            raise RuleViolation(
                f"batch {batch.lot}: the apheresis cannot be accepted yet "
                f"({'; '.join(acceptance.problems())})"
            )
        if acceptance.out_of_criteria:
            if not exception or not exception.strip():
                raise RuleViolation(
                    f"batch {batch.lot}: the apheresis is out of the criteria of {spec.code} "
                    f"({'; '.join(acceptance.problems())}): reject it, or accept it as a signed "
                    "exception with its reason"
                )
            attrs = tuple(r.attribute for r in acceptance.out_of_criteria)

            def after_exception(now: datetime) -> None:
                uow.qc.add_exception(
                    ExceptionRow(
                        0,
                        batch.lot,
                        ACCEPTANCE_EXCEPTION,
                        attrs,
                        exception.strip(),
                        None,
                        actor,
                        now,
                    )
                )
                uow.record(
                    Event(
                        "AcceptanceExceptionGranted",
                        actor,
                        now,
                        "batch",
                        batch.lot,
                        new={"attributes": list(attrs)},
                        reason=exception.strip(),
                    )
                )

            return after_exception
        if exception is not None:
            raise InvalidInput(
                f"batch {batch.lot} meets the acceptance criteria: no exception is needed"
            )
        return _nothing
    _, check = release_check_for(uow, batch)
    if action in (Action.RELEASE, Action.CONFIRM_RELEASE):
        if not _RELEASE_NEEDS[action](check):
            hint = ""
            if action is Action.RELEASE and check.conditionally_releasable:
                hint = " (a conditional release is possible)"
            raise RuleViolation(f"batch {batch.lot} cannot be released{hint}: {what_stops(check)}")
        if action is Action.CONFIRM_RELEASE:
            conditional = uow.qc.conditional(batch.lot)
            if conditional is not None and conditional.status is ConditionalStatus.FAILED:
                raise RuleViolation(
                    f"batch {batch.lot}: its conditional release FAILED (result "
                    f"{conditional.result_id}); it is not confirmed — QA rejects the batch"
                )
            return lambda now: _confirm_conditional(uow, batch.lot, actor, now)
        return _nothing
    if action is Action.RELEASE_CONDITIONALLY:
        if not _RELEASE_NEEDS[action](check):
            raise RuleViolation(
                f"batch {batch.lot} cannot be released conditionally: only a result allowed to "
                "be pending (the 14-day culture, with its rapid method passed) may be missing; "
                + what_stops(check)
            )
        pending = check.pending_conditional

        def after_conditional(now: datetime) -> None:
            uow.qc.add_conditional(
                ConditionalRelease(batch.lot, pending, now, actor, ConditionalStatus.PENDING)
            )
            uow.record(
                Event(
                    "ConditionalReleasePending",
                    actor,
                    now,
                    "batch",
                    batch.lot,
                    new={"pending": list(pending), "status": ConditionalStatus.PENDING.value},
                )
            )

        return after_conditional
    # RELEASE_OOS
    if not _RELEASE_NEEDS[action](check):
        raise RuleViolation(
            f"batch {batch.lot} cannot be released out of specification: only "
            "confirmed OOS results may stand in the way; " + what_stops(check)
        )
    requests = [e for e in uow.qc.exceptions(batch.lot) if e.kind == OOS_RELEASE_REQUEST]
    if any(e.signed_by == actor for e in requests):
        raise PermissionDenied(
            f"{actor} requested the release of {batch.lot} out of specification and may not "
            "release it too (the treating physician requests, the QP decides)"
        )
    requested = {a for e in requests for a in e.attributes}
    missing = [a for a in check.oos_attributes if a not in requested]
    if missing:
        raise RuleViolation(
            f"batch {batch.lot}: no signed request of the treating physician to "
            f"release it with {', '.join(missing)} out of specification"
        )
    return _nothing


def _nothing(now: datetime) -> None:
    return None


def _confirm_conditional(uow: UnitOfWork, lot: str, actor: str, now: datetime) -> None:
    conditional = uow.qc.conditional(lot)
    if conditional is not None and conditional.status is ConditionalStatus.PENDING:
        last = _last_pending_result(uow, conditional)
        uow.qc.close_conditional(lot, status=ConditionalStatus.FINAL, at=now, result_id=last)
        uow.record(
            Event(
                "ConditionalReleaseMadeFinal",
                actor,
                now,
                "batch",
                lot,
                new={"result": last, "status": ConditionalStatus.FINAL.value},
                reason="confirmed by the QP",
            )
        )


def _check_onward(uow: UnitOfWork, batch: Batch, action: Action) -> Callable[[datetime], None]:
    conditional = uow.qc.conditional(batch.lot)
    if conditional is not None and conditional.status is ConditionalStatus.FAILED:
        raise RuleViolation(
            f"batch {batch.lot} may not be {action.value}ed: its conditional release FAILED "
            f"(result {conditional.result_id}); do not use the dose"
        )
    critical = [
        r.deviation.reference
        for r in uow.deviations.for_lot(batch.lot)
        if r.deviation.state is DeviationState.OPEN and r.deviation.severity is Severity.CRITICAL
    ]
    if critical:
        raise RuleViolation(
            f"batch {batch.lot} may not be {action.value}ed while critical deviation "
            f"{', '.join(critical)} is open"
        )
    return _nothing


# -- what QA, the physician and the treating centre sign or say ------------------------


def review_record(
    uow: UnitOfWork, by: Identity, lot: str, *, comment: str, signing: Signing | None
) -> ReviewRow:
    """QA signs (*reviewed*) the review of a completed batch record; one who made the batch
    may not review it."""
    if not comment or not comment.strip():
        raise InvalidInput(f"review of batch {lot}: say what was reviewed")
    rule = rule_for("record.review")
    with recording_failures(uow), authorise(uow, by.actor, "record.review", entity=("batch", lot)):
        batch = uow.batches.get(lot, for_update=True)
        check_permission(by.actor, rule, batch_sites(rule.where, batch))
        if batch.state is not BatchState.QC_PENDING:
            raise RuleViolation(
                f"batch {lot} is {batch.state.value}: its record is reviewed "
                "once processing is complete (QC_PENDING)"
            )
        if uow.qc.review(lot) is not None:
            raise RuleViolation(f"the batch record of {lot} is reviewed already")
        if by.actor.user_id in batch_makers(uow.connection, lot):
            raise PermissionDenied(
                f"{by.actor.user_id} may not review the record of batch {lot}: they made it"
            )
        assert rule.signature is not None
        intent = signing_intent(
            uow, by, signing, rule.signature, f"review of the batch record of {lot}", ("batch", lot)
        )
        now = uow.clock.now()
        review = ReviewRow(lot, by.actor.user_id, now, comment.strip())
        uow.qc.add_review(review)
        uow.record(
            Event(
                "BatchRecordReviewed",
                by.actor.user_id,
                now,
                "batch",
                lot,
                reason=review.comment,
                signature=intent,
            )
        )
        uow.commit()
    return review


def request_oos_release(
    uow: UnitOfWork,
    by: Identity,
    lot: str,
    *,
    reason: str,
    document: str,
    signing: Signing | None,
) -> ExceptionRow:
    """The treating physician requests, signed (*requested*), the release of a dose out of
    specification: their documented clinical reason and the document's reference. Only a
    batch whose sole blockers are confirmed OOS results can be the subject of a request."""
    if not reason or not reason.strip():
        raise InvalidInput(f"request for batch {lot}: give the clinical reason")
    if not document or not document.strip():
        raise InvalidInput(
            f"request for batch {lot}: give the reference of the signed request "
            "document (e.g. the letter in the patient's file)"
        )
    rule = rule_for("release.request-oos")
    with (
        recording_failures(uow),
        authorise(uow, by.actor, "release.request-oos", entity=("batch", lot)),
    ):
        batch = uow.batches.get(lot, for_update=True)
        check_permission(by.actor, rule, batch_sites(rule.where, batch))
        if batch.state is not BatchState.QC_PENDING:
            raise RuleViolation(
                f"batch {lot} is {batch.state.value}: an OOS release is "
                "requested while it awaits its disposition (QC_PENDING)"
            )
        _, check = release_check_for(uow, batch)
        if not check.releasable_oos:
            raise RuleViolation(
                f"batch {lot}: a release out of specification is requested "
                "only when confirmed OOS results are all that stop release; " + what_stops(check)
            )
        assert rule.signature is not None
        intent = signing_intent(
            uow,
            by,
            signing,
            rule.signature,
            f"request to release batch {lot} out of specification",
            ("batch", lot),
        )
        now = uow.clock.now()
        row = ExceptionRow(
            0,
            lot,
            OOS_RELEASE_REQUEST,
            tuple(check.oos_attributes),
            reason.strip(),
            document.strip(),
            by.actor.user_id,
            now,
        )
        uow.qc.add_exception(row)
        uow.record(
            Event(
                "OosReleaseRequested",
                by.actor.user_id,
                now,
                "batch",
                lot,
                new={"attributes": list(row.attributes), "document": row.document},
                reason=row.reason,
                signature=intent,
            )
        )
        uow.commit()
    return row


def acknowledge_alert(uow: UnitOfWork, by: Actor, alert_id: int, *, note: str) -> None:
    """The treating centre acknowledges a QC alert, saying what it did."""
    if not note or not note.strip():
        raise InvalidInput(f"alert {alert_id}: say what was done (e.g. dose quarantined)")
    rule = rule_for("alert.acknowledge")
    with authorise(uow, by, "alert.acknowledge", entity=("alert", str(alert_id))):
        alert = uow.qc.alert(alert_id)
        check_permission(by, rule, [alert.treatment_centre])
        if alert.acknowledged_by is not None:
            raise RuleViolation(f"alert {alert_id} was acknowledged by {alert.acknowledged_by}")
        now = uow.clock.now()
        uow.qc.acknowledge(alert_id, by=by.user_id, at=now, note=note.strip())
        uow.record(
            Event(
                "QcAlertAcknowledged",
                by.user_id,
                now,
                "alert",
                str(alert_id),
                new={"lot": alert.lot},
                reason=note.strip(),
            )
        )
        uow.commit()
