"""QC and release pages: the QC workload, a batch's QC (samples, results, OOS investigations,
acceptance and release checks, the release itself), the specifications, and the certificate.

Every form is a plain POST that comes back to the page (POST-redirect-GET) with a line saying
what was done (red, with its flag, when a result is out of specification), or the page again
with a red box beside the refused form naming what was refused, and what was typed kept
(never a password or a scan). The forms shown are those the person's roles allow at the
batch's sites; the services decide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vein2vein.domain.errors import InvalidInput, NotFound, V2VError
from vein2vein.domain.permissions import rule_for
from vein2vein.services import batches as batch_svc
from vein2vein.services import qc as svc
from vein2vein.services import qc_views, queries, specs
from vein2vein.services.authorise import permitted
from vein2vein.web import _qc_forms as forms
from vein2vein.web._common import AppDep, label
from vein2vein.web.batches import _has_signed, _number, _signing
from vein2vein.web.errors import Problem, problem_of, render_with_problem
from vein2vein.web.session import CsrfDep, IdentityDep

__all__ = ["router"]

router = APIRouter()

FormText = Annotated[str, Form()]

_OOS_SAID = "OUT OF SPECIFICATION"


# -- the QC workload -------------------------------------------------------------------------


def _workload(
    request: Request,
    app: AppDep,
    identity: IdentityDep,
    *,
    notice: str | None = None,
    problem: Problem | None = None,
    failed: str = "",
    kept: dict[str, str] | None = None,
) -> HTMLResponse:
    work = qc_views.workload(app, identity.actor)
    rule = rule_for("alert.acknowledge")
    context: dict[str, object] = {
        "work": work,
        "chart": forms.turnaround_chart(work),
        "may_acknowledge": {
            a.id for a in work.alerts if permitted(identity.actor, rule, [a.treatment_centre])
        },
        "overdue": sum(1 for p in work.pending if p.overdue),
        "csrf_token": identity.credential.csrf_token,
        "notice": notice,
        "failed": failed,
        "kept": kept or {},
        "page": "qc",
    }
    return render_with_problem(request, "qc/index.html", context, problem)


@router.get("/qc", response_class=HTMLResponse, name="qc_page_workload")
def qc_workload(
    request: Request, app: AppDep, identity: IdentityDep, done: str = ""
) -> HTMLResponse:
    return _workload(request, app, identity, notice=done or None)


@router.post("/qc/alerts/{alert_id}/acknowledge", name="qc_page_acknowledge")
def acknowledge_alert(
    request: Request,
    app: AppDep,
    alert_id: int,
    identity: CsrfDep,
    note: FormText = "",
    lot: FormText = "",
) -> Response:
    """Acknowledge an alert from the workload page or (``lot`` given) from the batch's page."""
    try:
        svc.acknowledge_alert(app.uow(), identity.actor, alert_id, note=note)
    except V2VError as error:
        failed, kept = f"ack:{alert_id}", {"note": note}
        if lot:
            return _batch(request, app, identity, lot, problem=problem_of(error), failed=failed,
                          kept=kept)  # fmt: skip
        return _workload(request, app, identity, problem=problem_of(error), failed=failed,
                         kept=kept)  # fmt: skip
    message = f"Alert {alert_id} acknowledged."
    if lot:
        return _done(request, lot, message, "alerts")
    url = request.url_for("qc_page_workload").include_query_params(done=message)
    return RedirectResponse(url, status_code=303)


# -- specifications ----------------------------------------------------------------------------


@router.get("/qc/specifications", response_class=HTMLResponse, name="qc_page_specs")
def spec_list(request: Request, app: AppDep, identity: IdentityDep) -> HTMLResponse:
    versions = specs.list_specs(app, identity.actor)
    return render_with_problem(request, "qc/specs.html", {"versions": versions, "page": "qc"}, None)


@router.get("/qc/specifications/{code}", response_class=HTMLResponse, name="qc_page_spec")
def spec_page(
    request: Request, app: AppDep, code: str, identity: IdentityDep, version: str = ""
) -> HTMLResponse:
    number = _number(version, "version", int)
    chosen = int(number) if number is not None else None
    record, spec = specs.show_spec(app, identity.actor, code, chosen)
    others = [v for v in specs.list_specs(app, identity.actor) if v.code == code]
    context = {
        "record": record,
        "spec": spec,
        "others": others,
        "sup": forms.sup,
        "subject_title": forms.subject_title,
        "page": "qc",
    }
    return render_with_problem(request, "qc/spec.html", context, None)


# -- a batch's QC --------------------------------------------------------------------------


def _batch(
    request: Request,
    app: AppDep,
    identity: IdentityDep,
    lot: str,
    *,
    notice: str | None = None,
    at: str = "",
    problem: Problem | None = None,
    failed: str = "",
    kept: dict[str, str] | None = None,
    flagged: bool = False,
) -> HTMLResponse:
    view = qc_views.batch_qc(app, identity.actor, lot)
    batch = queries.batch_view(app, lot)
    offer = forms.offer(identity, view, batch)
    context: dict[str, object] = {
        "view": view,
        "b": view.batch,
        "may": offer,
        "meaning_of": forms.meaning_of,
        "retests": forms.retest_targets(view),
        "results_by_id": {r.result.id: r for r in view.results},
        "entry_placeholder": forms.entry_placeholder,
        "sup": forms.sup,
        "shows_typed": forms.shows_typed,
        "subject_title": forms.subject_title,
        "steps": forms.sample_steps(app, identity, lot) if offer.draw else [],
        "now": app.clock.now(),
        "me": identity.actor,
        "csrf_token": identity.credential.csrf_token,
        "first_signature": not _has_signed(app, identity),
        "notice": notice,
        "flagged": flagged,
        "at": at,
        "failed": failed,
        "kept": kept or {},
        "page": "batches",
    }
    return render_with_problem(request, "qc/batch.html", context, problem)


def _done(request: Request, lot: str, message: str, at: str = "") -> RedirectResponse:
    """Back to the QC page of ``lot`` after a successful post, saying what was done (and
    where on the page: the section ``at`` is scrolled into view). A message that reports an
    out-of-specification result is shown in red, with its flag."""
    params = {"done": message} | ({"at": at} if at else {})
    if _OOS_SAID in message:
        params["flagged"] = "1"
    url = request.url_for("qc_page_batch", lot=lot).include_query_params(**params)
    return RedirectResponse(url, status_code=303)


def _attempt(
    request: Request,
    app: AppDep,
    identity: IdentityDep,
    lot: str,
    call: Callable[[], str],
    *,
    failed: str,
    kept: dict[str, str] | None = None,
    at: str = "",
) -> Response:
    """Call a service; back to the page saying what was done, or what was refused."""
    try:
        message = call()
    except V2VError as error:
        return _batch(
            request, app, identity, lot, problem=problem_of(error), failed=failed, kept=kept
        )
    return _done(request, lot, message, at)


def _result_of(app: AppDep, identity: IdentityDep, lot: str, result_id: int) -> None:
    """Refuse a result id that is not one of batch ``lot``'s (the form posted to its page)."""
    view = qc_views.batch_qc(app, identity.actor, lot)
    if result_id not in {r.result.id for r in view.results}:
        raise NotFound(f"result {result_id} is not one of batch {lot}")


def _investigation_of(app: AppDep, identity: IdentityDep, lot: str, reference: str) -> None:
    view = qc_views.batch_qc(app, identity.actor, lot)
    if reference not in {i.investigation.reference for i in view.investigations}:
        raise NotFound(f"OOS investigation {reference} is not one of batch {lot}")


@router.get("/batches/{lot}/qc", response_class=HTMLResponse, name="qc_page_batch")
def batch_qc(
    request: Request, app: AppDep, lot: str, identity: IdentityDep, done: str = "", at: str = "",
    flagged: str = "",
) -> HTMLResponse:  # fmt: skip
    return _batch(request, app, identity, lot, notice=done or None, at=at, flagged=bool(flagged))


@router.post("/batches/{lot}/qc/samples", name="qc_page_draw")
def draw_sample(
    request: Request,
    app: AppDep,
    lot: str,
    identity: CsrfDep,
    stage: FormText = "",
    step: FormText = "",
    scan: FormText = "",
) -> Response:
    def call() -> str:
        sample_id = svc.draw_sample(
            app.uow(), identity.actor, lot, stage=stage, scan=scan, step_id=step or None
        )
        return f"Sample {sample_id} drawn ({label(stage)}{f', step {step}' if step else ''})."

    # The scan is never given back: after a refusal the person scans the label again.
    return _attempt(request, app, identity, lot, call, failed="draw",
                    kept={"stage": stage, "step": step}, at="samples")  # fmt: skip


@router.post("/batches/{lot}/qc/samples/{sample_id}/results", name="qc_page_enter")
def enter_result(
    request: Request,
    app: AppDep,
    lot: str,
    sample_id: str,
    identity: CsrfDep,
    attribute: FormText = "",
    value: FormText = "",
    method_version: FormText = "",
    instrument: FormText = "",
    retest_of: FormText = "",
) -> Response:
    def call() -> str:
        if not value.strip():
            raise InvalidInput(f"{attribute}: enter the result")
        retest = _number(retest_of, "retest_of", int)
        done = svc.enter_result(
            app.uow(), identity.actor, sample_id, attribute, value,
            method_version=method_version.strip() or None, instrument=instrument or None,
            retest_of=int(retest) if retest is not None else None,
        )  # fmt: skip
        message = f"{attribute} = {done.reported} entered (result {done.id})"
        if done.investigation:
            message += f": {_OOS_SAID} — investigation {done.investigation} opened"
        elif done.conformance.value == "oos":
            message += f": {_OOS_SAID} (out of the acceptance criteria)"
        if done.oot:
            message += "; out of trend, for QA's review"
        if done.alert is not None:
            message += f"; the treating centre is alerted (alert {done.alert})"
        return message + "."

    kept = {"value": value, "method_version": method_version, "instrument": instrument}
    return _attempt(request, app, identity, lot, call, failed=f"enter:{sample_id}:{attribute}",
                    kept=kept, at=f"entries-{sample_id}")  # fmt: skip


@router.post("/batches/{lot}/qc/results/{result_id}/verify", name="qc_page_verify")
def verify_result(
    request: Request,
    app: AppDep,
    lot: str,
    result_id: int,
    identity: CsrfDep,
    signature_user_id: FormText = "",
    signature_password: FormText = "",
    at: FormText = "",
) -> Response:
    def call() -> str:
        _result_of(app, identity, lot, result_id)
        r = svc.verify_result(
            app.uow(), identity, result_id,
            signing=_signing(signature_user_id, signature_password),
        )  # fmt: skip
        return f"Result {result_id} ({r.attribute} = {r.reported}) verified and signed."

    return _attempt(request, app, identity, lot, call, failed=f"verify:{result_id}", at=at)


@router.post("/batches/{lot}/qc/results/{result_id}/invalidate", name="qc_page_invalidate")
def invalidate_result(
    request: Request,
    app: AppDep,
    lot: str,
    result_id: int,
    identity: CsrfDep,
    reason: FormText = "",
    at: FormText = "",
) -> Response:
    def call() -> str:
        _result_of(app, identity, lot, result_id)
        r = svc.invalidate_result(app.uow(), identity.actor, result_id, reason=reason)
        return f"Result {result_id} ({r.attribute}) invalidated; the original is kept. Retest it."

    return _attempt(request, app, identity, lot, call, failed=f"invalidate:{result_id}",
                    kept={"reason": reason}, at=at)  # fmt: skip


@router.post("/batches/{lot}/qc/results/{result_id}/oot-review", name="qc_page_review_oot")
def review_oot(
    request: Request,
    app: AppDep,
    lot: str,
    result_id: int,
    identity: CsrfDep,
    comment: FormText = "",
    at: FormText = "",
) -> Response:
    def call() -> str:
        _result_of(app, identity, lot, result_id)
        svc.review_oot(app.uow(), identity.actor, result_id, comment=comment)
        return f"Out-of-trend result {result_id} reviewed."

    return _attempt(request, app, identity, lot, call, failed=f"oot:{result_id}",
                    kept={"comment": comment}, at=at)  # fmt: skip


@router.post("/batches/{lot}/qc/oos/{reference}/escalate", name="qc_page_escalate")
def escalate_oos(
    request: Request, app: AppDep, lot: str, reference: str, identity: CsrfDep,
    finding: FormText = "",
) -> Response:  # fmt: skip
    def call() -> str:
        _investigation_of(app, identity, lot, reference)
        svc.escalate_oos(app.uow(), identity.actor, reference, finding=finding)
        return f"{reference} escalated to phase II (full investigation)."

    return _attempt(request, app, identity, lot, call, failed=f"escalate:{reference}",
                    kept={"finding": finding}, at="investigations")  # fmt: skip


@router.post("/batches/{lot}/qc/oos/{reference}/conclude", name="qc_page_conclude")
def conclude_oos(
    request: Request,
    app: AppDep,
    lot: str,
    reference: str,
    identity: CsrfDep,
    outcome: FormText = "",
    conclusion: FormText = "",
    signature_user_id: FormText = "",
    signature_password: FormText = "",
) -> Response:
    def call() -> str:
        _investigation_of(app, identity, lot, reference)
        done = svc.conclude_oos(
            app.uow(), identity, reference, outcome=outcome, conclusion=conclusion,
            signing=_signing(signature_user_id, signature_password),
        )  # fmt: skip
        if done.outcome is not None and done.outcome.value == "laboratory-error":
            return (
                f"{reference} concluded and signed: laboratory error; result {done.result_id} "
                "is invalidated (its OOS flag stays) and may be retested."
            )
        return f"{reference} concluded and signed: OOS confirmed."

    return _attempt(request, app, identity, lot, call, failed=f"conclude:{reference}",
                    kept={"outcome": outcome, "conclusion": conclusion},
                    at="investigations")  # fmt: skip


@router.post("/batches/{lot}/qc/review", name="qc_page_review_record")
def review_record(
    request: Request,
    app: AppDep,
    lot: str,
    identity: CsrfDep,
    comment: FormText = "",
    signature_user_id: FormText = "",
    signature_password: FormText = "",
) -> Response:
    def call() -> str:
        svc.review_record(
            app.uow(), identity, lot, comment=comment,
            signing=_signing(signature_user_id, signature_password),
        )  # fmt: skip
        return f"Batch record of {lot} reviewed and signed."

    return _attempt(request, app, identity, lot, call, failed="review",
                    kept={"comment": comment}, at="release")  # fmt: skip


@router.post("/batches/{lot}/qc/oos-request", name="qc_page_request_oos")
def request_oos_release(
    request: Request,
    app: AppDep,
    lot: str,
    identity: CsrfDep,
    reason: FormText = "",
    document: FormText = "",
    signature_user_id: FormText = "",
    signature_password: FormText = "",
) -> Response:
    def call() -> str:
        row = svc.request_oos_release(
            app.uow(), identity, lot, reason=reason, document=document,
            signing=_signing(signature_user_id, signature_password),
        )  # fmt: skip
        return (
            f"Request to release {lot} out of specification ({', '.join(row.attributes)}) "
            "signed; the QP decides."
        )

    return _attempt(request, app, identity, lot, call, failed="oos-request",
                    kept={"reason": reason, "document": document}, at="release")  # fmt: skip


@router.post("/batches/{lot}/qc/dispositions/{action}", name="qc_page_dispose")
def dispose(
    request: Request,
    app: AppDep,
    lot: str,
    action: str,
    identity: CsrfDep,
    reason: FormText = "",
    expected_version: FormText = "",
    signature_user_id: FormText = "",
    signature_password: FormText = "",
) -> Response:
    """Release (in any form), confirm or reject the batch: the batch transition, through the
    QC gate of perform_transition."""

    def call() -> str:
        if action not in forms.DISPOSITIONS:
            raise NotFound(f"{action!r} is not a disposition of a batch")
        version = _number(expected_version, "expected_version", int)
        before = queries.batch_view(app, lot).batch.state
        batch = batch_svc.perform_transition(
            app.uow(), lot, action, by=identity, reason=reason or None,
            expected_version=int(version) if version is not None else None,
            signing=_signing(signature_user_id, signature_password),
        )  # fmt: skip
        return (
            f"{label(action)} signed by {identity.actor.full_name}: "
            f"{label(before)} → {label(batch.state.value)}."
        )

    return _attempt(request, app, identity, lot, call, failed=f"dispose:{action}",
                    kept={"reason": reason}, at="release")  # fmt: skip


@router.get("/batches/{lot}/coa.pdf", name="qc_page_certificate")
def certificate(app: AppDep, lot: str, identity: IdentityDep) -> Response:
    """The certificate of analysis of batch ``lot`` (PDF)."""
    from vein2vein.services import coa_pdf

    pdf = coa_pdf.certificate_pdf(app, identity.actor, lot)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="certificate-of-analysis-{lot}.pdf"'},
    )
