"""Batch-record pages: the operator's tablet page for the current step, the batch record,
review by exception for QA, and the printed record (PDF).

The operator page asks the server how each typed value falls against its ranges as it is
typed (``value_feedback``: the domain's one classify rule), so the page never re-implements
a range check. Recording, verifying, correcting and closing deviations are plain forms that
post and come back to the page, with a red box naming what was refused and the typed values
kept (never a password).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vein2vein.domain.errors import InvalidInput, NotFound, V2VError
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.process import StepDefinition
from vein2vein.services import execution, materials, queries, record_views
from vein2vein.services.auth import Identity
from vein2vein.services.authorise import batch_sites, permitted
from vein2vein.web._common import AppDep, templates
from vein2vein.web.batches import _has_signed, _number, _signing
from vein2vein.web.errors import Problem, problem_of, render_with_problem
from vein2vein.web.session import CsrfDep, IdentityDep

__all__ = ["router"]

router = APIRouter(prefix="/batches")

FormText = Annotated[str, Form()]


@dataclass
class Notice:
    """A green line at the top of the page after a successful post."""

    text: str


@dataclass
class Typed:
    """What the operator typed into a refused step form, given back to them."""

    step: str = ""
    values: dict[str, str] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    lots: dict[str, str] = field(default_factory=dict)
    equipment: str = ""


def _may(identity: Identity, permission: str, b: queries.BatchRow) -> bool:
    rule = rule_for(permission)
    return permitted(identity.actor, rule, batch_sites(rule.where, b))


def _context(
    request: Request, app: AppDep, identity: Identity, lot: str, **extra: object
) -> dict[str, object]:
    view = record_views.record_view(app, identity.actor, lot)
    b = view.batch
    return {
        "view": view,
        "b": b,
        "me": identity.actor,
        "csrf_token": identity.credential.csrf_token,
        "first_signature": not _has_signed(app, identity),
        "may_record": _may(identity, "step.record", b) and b.state == "IN_PROCESS",
        "may_verify": _may(identity, "step.verify", b) and b.state == "IN_PROCESS",
        "may_correct": _may(identity, "step.correct", b) and b.state == "IN_PROCESS",
        "may_close": _may(identity, "deviation.close", b),
        "may_open": _may(identity, "deviation.open", b),
        "page": "batches",
        **extra,
    }


def _typed(text: str, name: str) -> float:
    """A value typed into a form field that must hold a number."""
    number = _number(text, name, float)
    if number is None:
        raise InvalidInput(f"{name} {text!r}: expected a number")
    return number


def _done(request: Request, page: str, lot: str, message: str) -> RedirectResponse:
    """Back to ``page`` of batch ``lot`` after a successful post, saying what was done."""
    url = request.url_for(page, lot=lot).include_query_params(done=message)
    return RedirectResponse(url, status_code=303)


# -- the batch record ----------------------------------------------------------------------


@router.get("/{lot}/record", response_class=HTMLResponse, name="record_page")
def record_page(
    request: Request, app: AppDep, lot: str, identity: IdentityDep, done: str = ""
) -> HTMLResponse:
    context = _context(request, app, identity, lot, notice=done or None)
    return render_with_problem(request, "records/record.html", context, None)


@router.get("/{lot}/review", response_class=HTMLResponse, name="review_page")
def review_page(
    request: Request, app: AppDep, lot: str, identity: IdentityDep, done: str = ""
) -> HTMLResponse:
    context = _context(request, app, identity, lot, notice=done or None)
    return render_with_problem(request, "records/review.html", context, None)


@router.get("/{lot}/record.pdf", name="record_pdf")
def record_pdf(app: AppDep, lot: str, identity: IdentityDep) -> Response:
    from vein2vein.services import record_pdf

    view = record_views.record_view(app, identity.actor, lot)
    pdf = record_pdf.to_pdf(view, printed_by=identity.actor, printed_at=app.clock.now())
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="batch-record-{lot}.pdf"'},
    )


# -- the operator's page ---------------------------------------------------------------------


def _choose(next_steps: list[StepDefinition], wanted: str) -> StepDefinition | None:
    for step in next_steps:
        if step.id == wanted:
            return step
    return next_steps[0] if next_steps else None


def _execute(
    request: Request,
    app: AppDep,
    identity: Identity,
    lot: str,
    *,
    step: str = "",
    problem: Problem | None = None,
    typed: Typed | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    context = _context(request, app, identity, lot, notice=notice)
    view = context["view"]
    assert isinstance(view, record_views.RecordView)
    current = _choose(view.next_steps, typed.step if typed else step)
    site = view.batch.manufacturing_site
    options_lots: dict[str, list[str]] = {}
    options_equipment: list[str] = []
    if current is not None:
        for m in current.materials:
            options_lots[m.type] = [
                v.lot.lot for v in record_views.list_lots(app, identity.actor, type=m.type)
                if v.usable
            ]  # fmt: skip
        options_equipment = [
            e.equipment.id
            for e in record_views.list_equipment(app, identity.actor, site=site)
            if e.equipment.equipment_class == current.equipment_class and e.calibrated
        ]
    awaiting = [
        (s, e) for s in view.steps for e in s.entries
        if s.definition.verification and e.verified_by is None
    ]  # fmt: skip
    context |= {
        "current": current,
        "typed": typed or Typed(),
        "lot_options": options_lots,
        "equipment_options": options_equipment,
        "awaiting": awaiting,
    }
    return render_with_problem(request, "records/execute.html", context, problem)


@router.get("/{lot}/execute", response_class=HTMLResponse, name="execute_page")
def execute_page(
    request: Request, app: AppDep, lot: str, identity: IdentityDep, step: str = "", done: str = ""
) -> HTMLResponse:
    return _execute(request, app, identity, lot, step=step, notice=done or None)


@router.get("/{lot}/execute/check", response_class=HTMLResponse, name="execute_check")
def execute_check(
    request: Request, app: AppDep, lot: str, identity: IdentityDep, step: str, name: str,
    value: str = "",
) -> HTMLResponse:  # fmt: skip
    """The live NOR/PAR feedback of one field (htmx swaps it in beside the field)."""
    feedback = problem = None
    try:
        number = _number(value, name, float)
        if number is not None:
            feedback = record_views.value_feedback(app, identity.actor, lot, step, name, number)
    except V2VError as error:
        problem = problem_of(error)
    response: HTMLResponse = templates.TemplateResponse(
        request, "records/_feedback.html", {"f": feedback, "problem": problem, "name": name}
    )
    return response


@router.get("/{lot}/execute/computed", response_class=HTMLResponse, name="execute_computed")
def execute_computed(
    request: Request, app: AppDep, lot: str, identity: IdentityDep
) -> HTMLResponse:
    """The computed values of the step as the typed values give them (htmx, live)."""
    query = request.query_params
    typed: dict[str, float] = {}
    for key, text in query.items():
        if key.startswith("value:"):
            try:
                number = _number(text, key[6:], float)
            except InvalidInput:
                continue  # not a number yet: the field's own feedback says so
            if number is not None:
                typed[key[6:]] = number
    problem: Problem | None = None
    preview: list[record_views.Feedback | str] = []
    try:
        preview = record_views.computed_preview(
            app, identity.actor, lot, query.get("step", ""), typed
        )
    except V2VError as error:
        problem = problem_of(error)
    response: HTMLResponse = templates.TemplateResponse(
        request, "records/_computed.html", {"preview": preview, "problem": problem}
    )
    return response


@router.post("/{lot}/execute/{step}", response_class=HTMLResponse, name="execute_step")
async def execute_step(
    request: Request, app: AppDep, lot: str, step: str, identity: CsrfDep
) -> Response:
    form = await request.form()
    fields = {k: str(v) for k, v in form.items()}
    typed = Typed(
        step=step,
        values={k[6:]: v for k, v in fields.items() if k.startswith("value:")},
        comments={k[8:]: v for k, v in fields.items() if k.startswith("comment:")},
        lots={k[4:]: v for k, v in fields.items() if k.startswith("lot:")},
        equipment=fields.get("equipment", ""),
    )
    try:
        values = {k: _typed(v, k) for k, v in typed.values.items() if v.strip()}
        done = execution.record_step(
            app.uow(), lot, step, values, by=identity, scan=fields.get("scan", ""),
            comments=typed.comments, material_lots=[v for v in typed.lots.values() if v.strip()],
            equipment=typed.equipment or None,
            occurrence=int(seen) if (seen := fields.get("occurrence", "")).isdigit() else None,
        )  # fmt: skip
    except V2VError as error:
        # The scan is never given back (the form has no value for it): the person scans the
        # bag again after any refusal.
        problem = problem_of(error)
        return _execute(request, app, identity, lot, problem=problem, typed=typed)
    message = f"Step {step} #{done.entry.occurrence} recorded."
    if done.deviations:
        message += f" Deviation {', '.join(done.deviations)} opened (value outside its PAR)."
    return _done(request, "execute_page", lot, message)


@router.post("/{lot}/record/{step}/{occurrence}/verify", name="record_verify")
def verify_step(
    request: Request,
    app: AppDep,
    lot: str,
    step: str,
    occurrence: int,
    identity: CsrfDep,
    back: FormText = "record",
    seen: FormText = "",
    signature_user_id: FormText = "",
    signature_password: FormText = "",
) -> Response:
    try:
        execution.verify_step(
            app.uow(), lot, step, occurrence, by=identity,
            signing=_signing(signature_user_id, signature_password), seen=seen or None,
        )  # fmt: skip
    except V2VError as error:
        problem = problem_of(error)
        if back == "execute":
            return _execute(request, app, identity, lot, problem=problem)
        context = _context(request, app, identity, lot, failed=f"{step}:{occurrence}")
        return render_with_problem(request, "records/record.html", context, problem)
    page = "execute_page" if back == "execute" else "record_page"
    message = f"Step {step} #{occurrence} verified and signed."
    return _done(request, page, lot, message)


@router.post("/{lot}/record/{step}/{occurrence}/correct", name="record_correct")
def correct_value(
    request: Request,
    app: AppDep,
    lot: str,
    step: str,
    occurrence: int,
    identity: CsrfDep,
    name: FormText = "",
    value: FormText = "",
    reason: FormText = "",
    comment: FormText = "",
) -> Response:
    try:
        execution.correct_value(
            app.uow(), lot, step, occurrence, name, _typed(value, name), by=identity, why=reason,
            comment=comment or None,
        )  # fmt: skip
    except V2VError as error:
        context = _context(
            request, app, identity, lot, failed=f"{step}:{occurrence}",
            kept={"name": name, "value": value, "reason": reason, "comment": comment},
        )  # fmt: skip
        return render_with_problem(request, "records/record.html", context, problem_of(error))
    message = f"{name} of step {step} #{occurrence} corrected; the original value is kept."
    return _done(request, "record_page", lot, message)


@router.post("/{lot}/deviations/{reference}/close", name="record_close_deviation")
def close_deviation(
    request: Request,
    app: AppDep,
    lot: str,
    reference: str,
    identity: CsrfDep,
    impact: FormText = "",
    capa: FormText = "",
    severity: FormText = "",
    signature_user_id: FormText = "",
    signature_password: FormText = "",
) -> Response:
    try:
        if record_views.deviation(app, identity.actor, reference).deviation.lot != lot:
            raise NotFound(f"deviation {reference} is not one of batch {lot}")
        materials.close_deviation(
            app.uow(), identity, reference, impact=impact, capa=capa or None,
            severity=severity or None, signing=_signing(signature_user_id, signature_password),
        )  # fmt: skip
    except V2VError as error:
        context = _context(
            request, app, identity, lot, failed=reference,
            kept={"impact": impact, "capa": capa, "severity": severity},
        )  # fmt: skip
        return render_with_problem(request, "records/review.html", context, problem_of(error))
    message = f"Deviation {reference} closed and signed."
    return _done(request, "review_page", lot, message)


@router.post("/{lot}/deviations", name="record_open_deviation")
def open_deviation(
    request: Request,
    app: AppDep,
    lot: str,
    identity: CsrfDep,
    severity: FormText = "",
    description: FormText = "",
) -> Response:
    try:
        reference = materials.open_deviation(
            app.uow(), identity.actor, lot, severity=severity, description=description
        )
    except V2VError as error:
        context = _context(
            request, app, identity, lot, failed="new",
            kept={"severity": severity, "description": description},
        )  # fmt: skip
        return render_with_problem(request, "records/review.html", context, problem_of(error))
    message = f"Deviation {reference} opened ({severity})."
    return _done(request, "review_page", lot, message)
