"""QC and release (issue 6): specifications, samples, results, OOS investigations, the batch
record review, the physician's OOS release request, a batch's QC, the workload, alerts and
the certificate of analysis.

- ``GET|POST /api/specifications``; ``GET /api/specifications/{code}?version=``;
  ``POST /api/specifications/{code}/{version}/approve`` (signed: *approved*).
- ``POST /api/batches/{lot}/samples``; ``POST /api/samples/{sample_id}/results``;
  ``POST /api/results/{id}/verify`` (signed: *verified*), ``…/invalidate``, ``…/oot-review``.
- ``POST /api/oos/{reference}/escalate``; ``POST /api/oos/{reference}/conclude`` (signed).
- ``POST /api/batches/{lot}/record-review`` (signed: *reviewed*);
  ``POST /api/batches/{lot}/oos-release-request`` (signed: *requested*).
- ``GET /api/batches/{lot}/qc``; ``GET /api/qc/workload``; ``GET /api/qc/alerts``;
  ``POST /api/qc/alerts/{id}/acknowledge``; ``GET /api/batches/{lot}/coa.pdf``.

Acceptance and release are the batch transitions (``POST /api/batches/{lot}/transitions/
{action}``: accept, with ``exception`` out of criteria; release, release-conditionally,
release-oos, confirm-release), refused by the QC gate with everything that stops them.
Signed requests carry ``signature`` as the batch transitions do. Route names start with
``api_qc_``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import Response

from vein2vein.api._deps import AppDep, IdentityDep
from vein2vein.api._qc_schemas import (
    AcceptancePublic,
    AcknowledgementCreate,
    AlertPublic,
    AttributePublic,
    BatchQcPublic,
    BlockerPublic,
    ConclusionCreate,
    ConditionalReleasePublic,
    EscalationCreate,
    ExceptionPublic,
    InvalidationCreate,
    InvestigationPublic,
    MethodPublic,
    OosReleaseRequestCreate,
    OotReviewCreate,
    PendingTestPublic,
    RecordReviewCreate,
    ReleasePublic,
    ResultCreate,
    ResultEnteredPublic,
    ResultPublic,
    ReviewPublic,
    SampleCreate,
    SamplePublic,
    SpecApprovalCreate,
    SpecCreate,
    SpecificationPublic,
    SpecVersionPublic,
    TestResultPublic,
    TimelinePublic,
    TurnaroundPublic,
    VerifyCreate,
    WorkloadPublic,
)
from vein2vein.api.schemas import SignaturePublic, signing_of
from vein2vein.domain.errors import InvalidInput, NotFound
from vein2vein.domain.people import Actor
from vein2vein.domain.specification import Specification
from vein2vein.formats.spec import InvalidSpecificationFile
from vein2vein.services import qc, qc_views, specs
from vein2vein.services.app import App
from vein2vein.services.qc_views import BatchQc, ResultView, SampleView
from vein2vein.services.queries import SignatureView
from vein2vein.store.qc import InvestigationRow

__all__ = ["router"]

router = APIRouter()
CREATED = status.HTTP_201_CREATED


def _signatures(views: list[SignatureView]) -> list[SignaturePublic]:
    return [SignaturePublic.model_validate(s) for s in views]


# -- from the services' views to the schemas --------------------------------------------
def _spec(version: specs.SpecVersion, spec: Specification) -> SpecificationPublic:
    return SpecificationPublic(
        **SpecVersionPublic.model_validate(version).model_dump(),
        methods=[MethodPublic.model_validate(m) for m in spec.methods.values()],
        attributes=[
            AttributePublic(
                name=a.name, title=a.title, method=a.method, kind=a.kind.value, unit=a.unit,
                precision=a.precision, criterion=a.criterion, low=a.limits.low,
                high=a.limits.high, choices=list(a.choices), accepted=sorted(a.accepted),
                replicates=a.replicates, pending_allowed_with=a.pending_allowed_with,
            )
            for a in spec.attributes
        ],
    )  # fmt: skip


def _result(view: ResultView) -> ResultPublic:
    return ResultPublic(
        **TestResultPublic.model_validate(view.result).model_dump(),
        title=view.attribute.title, criterion=view.attribute.criterion,
        method_title=view.method_title,
        verification=(SignaturePublic.model_validate(view.verification)
                      if view.verification is not None else None),
        investigation=view.investigation, retested_by=view.retested_by,
    )  # fmt: skip


def _sample(view: SampleView) -> SamplePublic:
    s = view.sample
    return SamplePublic(
        id=s.id, lot=s.lot, coi=s.coi, stage=s.stage.value, step=s.step_id,
        spec=f"{s.spec_code} v{s.spec_version}", drawn_at=s.drawn_at, drawn_by=s.drawn_by,
        results=[_result(r) for r in view.results],
        outstanding=[a.name for a in view.outstanding], due=view.due,
    )  # fmt: skip


def _investigation(
    row: InvestigationRow, signatures: list[SignatureView] | None = None
) -> InvestigationPublic:
    i = row.investigation
    return InvestigationPublic(
        reference=i.reference, lot=i.lot, result_id=i.result_id, phase=i.phase,
        phase_i_finding=i.phase_i_finding,
        outcome=i.outcome.value if i.outcome is not None else None, conclusion=i.conclusion,
        open=i.open, opened_at=row.opened_at, closed_at=row.closed_at, closed_by=row.closed_by,
        signatures=_signatures(signatures or []),
    )  # fmt: skip


def _batch_qc(view: BatchQc) -> BatchQcPublic:
    b = view.batch
    acceptance = release = None
    if view.acceptance is not None:
        spec, a = view.acceptance
        acceptance = AcceptancePublic(
            spec=f"{spec.code} v{spec.version}", complete=a.complete,
            meets_criteria=a.meets_criteria, missing=list(a.missing),
            unverified=list(a.unverified), out_of_criteria=[r.id for r in a.out_of_criteria],
            problems=a.problems(),
        )  # fmt: skip
    if view.release is not None:
        spec, c = view.release
        release = ReleasePublic(
            spec=f"{spec.code} v{spec.version}",
            blockers=[BlockerPublic(kind=x.kind.value, subject=x.subject, detail=x.detail)
                      for x in c.blockers],
            pending_conditional=list(c.pending_conditional), releasable=c.releasable,
            conditionally_releasable=c.conditionally_releasable,
            releasable_oos=c.releasable_oos,
        )  # fmt: skip
    return BatchQcPublic(
        lot=b.lot, state=b.state, product=b.product, coi=b.coi, din=b.din,
        treatment_centre=b.treatment_centre, samples=[_sample(s) for s in view.samples],
        acceptance=acceptance, release=release,
        oos_results=[r.result.id for r in view.oos_results],
        investigations=[
            _investigation(i, view.signatures.get(f"oos:{i.investigation.reference}"))
            for i in view.investigations
        ],
        acceptance_exceptions=[ExceptionPublic.model_validate(e)
                               for e in view.acceptance_exceptions],
        oos_requests=[ExceptionPublic.model_validate(e) for e in view.oos_requests],
        conditional=(ConditionalReleasePublic.model_validate(view.conditional)
                     if view.conditional is not None else None),
        alerts=[AlertPublic.model_validate(a) for a in view.alerts],
        review=ReviewPublic.model_validate(view.review) if view.review is not None else None,
        signatures=_signatures(view.signatures.get("batch", [])),
    )  # fmt: skip


def _result_of(app: App, actor: Actor, lot: str, result_id: int) -> ResultPublic:
    for view in qc_views.batch_qc(app, actor, lot).results:
        if view.result.id == result_id:
            return _result(view)
    raise NotFound(f"result {result_id} does not exist")


def _investigation_of(app: App, actor: Actor, lot: str, reference: str) -> InvestigationPublic:
    view = qc_views.batch_qc(app, actor, lot)
    for row in view.investigations:
        if row.investigation.reference == reference:
            return _investigation(row, view.signatures.get(f"oos:{reference}"))
    raise NotFound(f"OOS investigation {reference!r} does not exist")


def _alert_of(app: App, actor: Actor, alert_id: int) -> AlertPublic:
    for row in qc_views.alerts(app, actor):
        if row.id == alert_id:
            return AlertPublic.model_validate(row)
    raise NotFound(f"alert {alert_id} does not exist")


# -- specifications ----------------------------------------------------------------------
@router.get("/specifications", response_model=list[SpecVersionPublic], tags=["specifications"],
            name="api_qc_list_specs")  # fmt: skip
def list_specs(app: AppDep, identity: IdentityDep) -> list[SpecVersionPublic]:
    """Every version of every specification, with its status under change control."""
    return [SpecVersionPublic.model_validate(v) for v in specs.list_specs(app, identity.actor)]


@router.get("/specifications/{code}", response_model=SpecificationPublic, tags=["specifications"],
            name="api_qc_read_spec")  # fmt: skip
def read_spec(
    app: AppDep,
    identity: IdentityDep,
    code: str,
    version: Annotated[
        int | None, Query(ge=1, description="The effective version (else the newest) if none.")
    ] = None,
) -> SpecificationPublic:
    """A version of a specification: its methods, attributes and criteria."""
    return _spec(*specs.show_spec(app, identity.actor, code, version))


@router.post("/specifications", response_model=SpecificationPublic, status_code=CREATED,
             tags=["specifications"], name="api_qc_import_spec")  # fmt: skip
def import_spec(app: AppDep, identity: IdentityDep, body: SpecCreate) -> SpecificationPublic:
    """Import a specification file as a DRAFT (QA, administrators); every problem of the
    file is named with its place. A change is a new version."""
    try:
        imported = specs.import_spec(app.uow(), identity.actor, body.text,
                                     body.source or "request")  # fmt: skip
    except InvalidSpecificationFile as invalid:
        # Its code has no row in services/http_status.py (it would leave as a 500): it is
        # answered as the invalid input it is, every problem named with its place.
        raise InvalidInput(invalid.message) from invalid
    return _spec(*specs.show_spec(app, identity.actor, imported.code, imported.version))


@router.post("/specifications/{code}/{version}/approve", response_model=SpecificationPublic,
             tags=["specifications"], name="api_qc_approve_spec")  # fmt: skip
def approve_spec(
    app: AppDep, identity: IdentityDep, code: str, version: int, body: SpecApprovalCreate
) -> SpecificationPublic:
    """A second person, a QA reviewer, approves a DRAFT with a signature (approved): it
    becomes EFFECTIVE and the version effective until now is SUPERSEDED."""
    approved = specs.approve_spec(app.uow(), identity, code, version, reason=body.reason,
                                  signing=signing_of(body.signature))  # fmt: skip
    return _spec(*specs.show_spec(app, identity.actor, approved.code, approved.version))


# -- samples and results -----------------------------------------------------------------
@router.post("/batches/{lot}/samples", response_model=SamplePublic, status_code=CREATED,
             tags=["QC"], name="api_qc_draw_sample")  # fmt: skip
def draw_sample(app: AppDep, identity: IdentityDep, lot: str, body: SampleCreate) -> SamplePublic:
    """Draw a QC sample with the batch's label scanned (the sample carries the COI), bound
    to the specification of its stage effective now. A scan of another batch is a hard stop."""
    sample_id = qc.draw_sample(app.uow(), identity.actor, lot, stage=body.stage, scan=body.scan,
                               step_id=body.step or None)  # fmt: skip
    for view in qc_views.batch_qc(app, identity.actor, lot).samples:
        if view.sample.id == sample_id:
            return _sample(view)
    raise NotFound(f"sample {sample_id} does not exist")


@router.post("/samples/{sample_id}/results", response_model=ResultEnteredPublic,
             status_code=CREATED, tags=["QC"], name="api_qc_enter_result")  # fmt: skip
def enter_result(
    app: AppDep, identity: IdentityDep, sample_id: str, body: ResultCreate
) -> ResultEnteredPublic:
    """Enter a result (QC analysts): rounded to the reportable precision, then compared. An
    OOS result opens an investigation; after a conditional release it alerts the treating
    centre and opens a critical deviation."""
    entered = qc.enter_result(
        app.uow(), identity.actor, sample_id, body.attribute, body.value,
        method_version=body.method_version or None, instrument=body.instrument or None,
        tested_at=body.tested_at, retest_of=body.retest_of,
    )  # fmt: skip
    return ResultEnteredPublic(
        id=entered.id, reported=entered.reported, conformance=entered.conformance.value,
        oot=entered.oot, investigation=entered.investigation, alert=entered.alert,
    )  # fmt: skip


@router.post("/results/{result_id}/verify", response_model=ResultPublic, tags=["QC"],
             name="api_qc_verify_result")  # fmt: skip
def verify_result(
    app: AppDep, identity: IdentityDep, result_id: int, body: VerifyCreate
) -> ResultPublic:
    """A second analyst, who neither entered the result nor drew its sample, verifies it
    with a signature (verified)."""
    verified = qc.verify_result(app.uow(), identity, result_id, signing=signing_of(body.signature))
    return _result_of(app, identity.actor, verified.lot, result_id)


@router.post("/results/{result_id}/invalidate", response_model=ResultPublic, tags=["QC"],
             name="api_qc_invalidate_result")  # fmt: skip
def invalidate_result(
    app: AppDep, identity: IdentityDep, result_id: int, body: InvalidationCreate
) -> ResultPublic:
    """Invalidate a result with a reason; the original stays. An OOS result is invalidated
    only by its investigation concluding a laboratory error."""
    invalid = qc.invalidate_result(app.uow(), identity.actor, result_id, reason=body.reason)
    return _result_of(app, identity.actor, invalid.lot, result_id)


@router.post("/results/{result_id}/oot-review", response_model=ResultPublic, tags=["QC"],
             name="api_qc_review_oot")  # fmt: skip
def review_oot(
    app: AppDep, identity: IdentityDep, result_id: int, body: OotReviewCreate
) -> ResultPublic:
    """QA reviews an out-of-trend result, with a comment."""
    reviewed = qc.review_oot(app.uow(), identity.actor, result_id, comment=body.comment)
    return _result_of(app, identity.actor, reviewed.lot, result_id)


# -- OOS investigations ------------------------------------------------------------------
@router.post("/oos/{reference}/escalate", response_model=InvestigationPublic, tags=["QC"],
             name="api_qc_escalate_oos")  # fmt: skip
def escalate_oos(
    app: AppDep, identity: IdentityDep, reference: str, body: EscalationCreate
) -> InvestigationPublic:
    """Phase I found no laboratory cause: the investigation goes to phase II."""
    after = qc.escalate_oos(app.uow(), identity.actor, reference, finding=body.finding)
    return _investigation_of(app, identity.actor, after.lot, reference)


@router.post("/oos/{reference}/conclude", response_model=InvestigationPublic, tags=["QC"],
             name="api_qc_conclude_oos")  # fmt: skip
def conclude_oos(
    app: AppDep, identity: IdentityDep, reference: str, body: ConclusionCreate
) -> InvestigationPublic:
    """QA concludes with a signature (approved): a laboratory error invalidates the result
    (a retest may follow); a confirmed OOS stands. The OOS flag stays either way."""
    after = qc.conclude_oos(
        app.uow(), identity, reference, outcome=body.outcome, conclusion=body.conclusion,
        signing=signing_of(body.signature),
    )  # fmt: skip
    return _investigation_of(app, identity.actor, after.lot, reference)


# -- the record review and the physician's request ---------------------------------------
@router.post("/batches/{lot}/record-review", response_model=ReviewPublic, status_code=CREATED,
             tags=["release"], name="api_qc_review_record")  # fmt: skip
def review_record(
    app: AppDep, identity: IdentityDep, lot: str, body: RecordReviewCreate
) -> ReviewPublic:
    """QA signs (reviewed) the review of a complete batch record; not one who made it."""
    review = qc.review_record(app.uow(), identity, lot, comment=body.comment,
                              signing=signing_of(body.signature))  # fmt: skip
    return ReviewPublic.model_validate(review)


@router.post("/batches/{lot}/oos-release-request", response_model=ExceptionPublic,
             status_code=CREATED, tags=["release"], name="api_qc_request_oos_release")  # fmt: skip
def request_oos_release(
    app: AppDep, identity: IdentityDep, lot: str, body: OosReleaseRequestCreate
) -> ExceptionPublic:
    """The treating physician requests, signed (requested), the release of a dose whose
    only blockers are confirmed OOS results: the clinical reason and the document."""
    row = qc.request_oos_release(
        app.uow(), identity, lot, reason=body.reason, document=body.document,
        signing=signing_of(body.signature),
    )  # fmt: skip
    return ExceptionPublic.model_validate(row)


# -- reading -----------------------------------------------------------------------------
@router.get("/batches/{lot}/qc", response_model=BatchQcPublic, tags=["release"],
            name="api_qc_batch")  # fmt: skip
def read_batch_qc(app: AppDep, identity: IdentityDep, lot: str) -> BatchQcPublic:
    """Everything QC knows about a batch: samples and results (flags, verification
    signatures), the acceptance and release checks, investigations, exceptions, the
    conditional release, alerts and the record review. OOS flags are never hidden."""
    return _batch_qc(qc_views.batch_qc(app, identity.actor, lot))


@router.get("/qc/workload", response_model=WorkloadPublic, tags=["QC"], name="api_qc_workload")
def read_workload(app: AppDep, identity: IdentityDep) -> WorkloadPublic:
    """Pending tests by due time, turnaround per method, each batch's time from harvest to
    release and vein to vein so far, open investigations, alerts, results out of trend."""
    w = qc_views.workload(app, identity.actor)
    return WorkloadPublic(
        now=w.now, pending=[PendingTestPublic.model_validate(p) for p in w.pending],
        turnaround=[TurnaroundPublic.model_validate(t) for t in w.turnaround],
        timelines=[TimelinePublic.model_validate(t) for t in w.timelines],
        open_investigations=[_investigation(i) for i in w.open_investigations],
        alerts=[AlertPublic.model_validate(a) for a in w.alerts],
        oot_to_review=[TestResultPublic.model_validate(r) for r in w.oot_to_review],
    )  # fmt: skip


@router.get("/qc/alerts", response_model=list[AlertPublic], tags=["QC"], name="api_qc_alerts")
def list_alerts(app: AppDep, identity: IdentityDep) -> list[AlertPublic]:
    """Every QC alert to a treating centre, newest first."""
    return [AlertPublic.model_validate(a) for a in qc_views.alerts(app, identity.actor)]


@router.post("/qc/alerts/{alert_id}/acknowledge", response_model=AlertPublic, tags=["QC"],
             name="api_qc_acknowledge_alert")  # fmt: skip
def acknowledge_alert(
    app: AppDep, identity: IdentityDep, alert_id: int, body: AcknowledgementCreate
) -> AlertPublic:
    """The treating centre (coordinator, physician) acknowledges an alert: what it did."""
    qc.acknowledge_alert(app.uow(), identity.actor, alert_id, note=body.note)
    return _alert_of(app, identity.actor, alert_id)


@router.get("/batches/{lot}/coa.pdf", response_class=Response, tags=["release"],
            name="api_qc_certificate",
            responses={200: {"content": {"application/pdf": {}},
                             "description": "The certificate of analysis."}})  # fmt: skip
def certificate(app: AppDep, identity: IdentityDep, lot: str) -> Response:
    """The certificate of analysis: specification, results with their OOS flags,
    exceptions and signatures, the batch's DIN and COI."""
    from vein2vein.services import coa_pdf

    pdf = coa_pdf.certificate_pdf(app, identity.actor, lot)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="coa-{lot}.pdf"'},
    )
