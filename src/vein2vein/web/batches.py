"""Batch pages: the list, one batch (identity, state, next actions, custody, audit), its label.

Actions are plain HTML forms that htmx posts in place: the answer replaces the batch section,
with a red box when the action was refused. Without JavaScript the same form posts and the
browser is redirected back to the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vein2vein.domain.batch import Action, BatchState
from vein2vein.domain.errors import InvalidInput, V2VError
from vein2vein.domain.permissions import rule_for
from vein2vein.services import batches as svc
from vein2vein.services import qc_views, queries, record_views
from vein2vein.services.app import App
from vein2vein.services.auth import Identity, Signing
from vein2vein.web._common import AppDep, label, templates
from vein2vein.web.errors import Problem, problem_of
from vein2vein.web.session import CsrfDep, IdentityDep

__all__ = ["router"]

router = APIRouter(prefix="/batches")

# Exceptional actions sit apart from the next step, behind one more click.
_EXCEPTIONAL = {"hold", "terminate"}

FormText = Annotated[str, Form()]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """An ``IdentityMismatchDetected`` record of the batch, as the state card names it."""

    seq: int
    at: str
    actor: str
    scanned: str
    during: str  # the action that was refused, or "scan" for a spot check
    state: str | None  # the batch's state at the time
    detail: str  # what the service said, naming the identity expected


@dataclass(frozen=True, slots=True)
class StateReason:
    """Why the batch is in its state: the reason on the audit record that put it there."""

    seq: int
    at: str
    actor: str
    reason: str
    heading: str


# How the state card introduces the reason recorded with the step into each state.
_REASON_HEADING = {
    "ON_HOLD": "Reason for the hold",
    "TERMINATED": "Reason for termination",
    "REJECTED": "Reason for rejection",
    "RELEASED_OOS": "Reason for release out of specification",
    "CONDITIONALLY_RELEASED": "Condition of the release",
}


def _mismatches(view: queries.BatchView) -> list[Mismatch]:
    """The batch's identity mismatches, newest first (from the audit records of the view)."""
    return [
        Mismatch(
            e.seq,
            e.at,
            e.actor,
            str(e.new.get("scanned") or ""),
            str(e.new.get("during") or ""),
            e.new.get("state"),
            e.reason or "",
        )
        for e in view.audit
        if e.action == "IdentityMismatchDetected"
    ]


def _state_reason(view: queries.BatchView) -> StateReason | None:
    """The reason on the newest audit record that moved the batch into its current state, if
    that record carries one (holds, terminations and QA decisions always do)."""
    state = view.batch.state
    for e in view.audit:  # newest first
        if e.new.get("state") == state and "state" in e.old:
            if not e.reason:
                return None
            heading = _REASON_HEADING.get(state, "Reason recorded")
            return StateReason(e.seq, e.at, e.actor, e.reason, heading)
    return None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a successful action did, as the page confirms it."""

    action: str
    old_state: str
    new_state: str
    actor: str


@router.get("", response_class=HTMLResponse, name="batch_list")
def batch_list(
    request: Request, app: AppDep, state: str | None = None, site: str | None = None
) -> HTMLResponse:
    rows = queries.list_batches(app, state=state or None, site=site or None)
    response: HTMLResponse = templates.TemplateResponse(
        request,
        "batches/list.html",
        {
            "rows": rows,
            "states": [s.value for s in BatchState],
            "sites": queries.list_sites(app),
            "state": (state or "").upper(),
            "site": site or "",
            "ages": [_hours_since(app, r.state_since) for r in rows],
            "page": "batches",
        },
    )
    return response


def _hours_since(app: App, moment: datetime) -> float:
    return max(0.0, (app.clock.now() - moment).total_seconds() / 3600)


def _render_batch(
    request: Request,
    app: AppDep,
    lot: str,
    *,
    fragment: bool,
    problem: Problem | None = None,
    outcome: Outcome | None = None,
    failed_action: str | None = None,
    identity: Identity,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    view = queries.batch_view(app, lot)
    # Only what the person may do here: role and site scope (the service checks again).
    allowed = queries.offered_actions(view, identity.actor)
    primary = [a for a in allowed if a.action not in _EXCEPTIONAL]
    exceptional = [a for a in allowed if a.action in _EXCEPTIONAL]
    meanings = {
        a.action: (m.value if (m := rule_for(Action(a.action)).signature) else None)
        for a in allowed
    }
    response: HTMLResponse = templates.TemplateResponse(
        request,
        "batches/_batch.html" if fragment else "batches/detail.html",
        {
            "view": view,
            "b": view.batch,
            "qc": qc_views.qc_flags(app, identity.actor, lot),
            "identity": view.identity,
            "primary": primary,
            "exceptional": exceptional,
            "problem": problem,
            "outcome": outcome,
            "failed_action": failed_action,
            "typed": typed or {},
            "mismatches": _mismatches(view),
            "state_reason": _state_reason(view),
            "meanings": meanings,
            "first_signature": not _has_signed(app, identity),
            "csrf_token": identity.credential.csrf_token,
            "me": identity.actor,
            "hidden_actions": len(view.actions) - len(allowed),
            "record": record_views.record_of(app, lot),
            "processes": record_views.startable_processes(app, view.batch.product),
            "page": "batches",
        },
        status_code=problem.status if problem else 200,
    )
    return response


def _has_signed(app: App, identity: Identity) -> bool:
    """Whether this session has signed already (as stored now: it may have just signed)."""
    with app.uow() as uow:
        return uow.credentials.get(identity.token_id).has_signed


@router.get("/{lot}", response_class=HTMLResponse, name="batch_page")
def batch_page(request: Request, app: AppDep, lot: str, identity: IdentityDep) -> HTMLResponse:
    return _render_batch(request, app, lot, fragment=False, identity=identity)


def _number(text: str, field: str, kind: type[float] | type[int]) -> float | int | None:
    text = text.strip().replace(",", ".") if kind is float else text.strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise InvalidInput(f"{field} {text!r}: expected a number") from None


@router.post("/{lot}/actions/{action}", response_class=HTMLResponse, name="batch_action")
def batch_action(
    request: Request,
    app: AppDep,
    lot: str,
    action: str,
    identity: CsrfDep,
    reason: FormText = "",
    scan: FormText = "",
    from_party: FormText = "",
    to_party: FormText = "",
    location: FormText = "",
    temperature_c: FormText = "",
    expected_version: FormText = "",
    signature_user_id: FormText = "",
    signature_password: FormText = "",
    process: FormText = "",
    exception: FormText = "",
) -> Response:
    htmx = request.headers.get("HX-Request") == "true"
    typed = {
        "process": process,
        "scan": scan,
        "reason": reason,
        "from_party": from_party,
        "to_party": to_party,
        "location": location,
        "temperature_c": temperature_c,
        "exception": exception,
    }
    problem = outcome = None
    try:
        temperature = _number(temperature_c, "temperature_c", float)
        version = _number(expected_version, "expected_version", int)
        before = queries.batch_view(app, lot).batch.state
        batch = svc.perform_transition(
            app.uow(),
            lot,
            action,
            by=identity,
            reason=reason or None,
            scan=scan or None,
            handoff=svc.HandoffDetails(
                from_party=from_party.strip() or None,
                to_party=to_party.strip() or None,
                location=location.strip() or None,
                temperature_c=temperature,
            ),
            expected_version=int(version) if version is not None else None,
            signing=_signing(signature_user_id, signature_password),
            process=process.strip() or None,
            exception=exception.strip() or None,
        )
        outcome = Outcome(action, before, batch.state.value, identity.actor.full_name)
    except V2VError as error:
        problem = problem_of(error)
    response: Response
    if not htmx and problem is None:
        response = RedirectResponse(request.url_for("batch_page", lot=lot), status_code=303)
    else:
        response = _render_batch(
            request,
            app,
            lot,
            fragment=htmx,
            problem=problem,
            outcome=outcome,
            failed_action=action if problem else None,
            identity=identity,
            typed=_kept(problem, typed) if problem else None,
        )
    return response


def _signing(user_id: str, password: str) -> Signing | None:
    """The electronic signature typed in the form (none if no password was typed)."""
    if not password:
        return None
    return Signing(password, user_id.strip().lower() or None)


def _kept(problem: Problem, typed: dict[str, str]) -> dict[str, str]:
    """What goes back into the refused form: everything typed, except a scan that named
    another batch (the person must look at the bag and scan again, not resubmit it)."""
    kept = {name: value for name, value in typed.items() if value}
    if problem.code == "identity-mismatch":
        kept.pop("scan", None)
    return kept


@router.get("/{lot}/label", response_class=HTMLResponse, name="batch_label")
def batch_label(request: Request, app: AppDep, lot: str) -> HTMLResponse:
    view = queries.batch_view(app, lot)
    response: HTMLResponse = templates.TemplateResponse(
        request,
        "batches/label.html",
        {"view": view, "b": view.batch, "identity": view.identity, "label": label},
    )
    return response
