"""Audit trail review (EU GMP Annex 11 §9): filter the trail, read old → new and reasons with
the signatures beside their records, export CSV or PDF, and — for QA — record a signed review.

The filter is a GET form, so a filtered view is a link to share; the exports take the same
query. The review is a plain POST form (CSRF token, signature block as on the batch pages);
on success the browser is sent back to the filtered page, which confirms the record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vein2vein.domain.batch import TRANSITIONS
from vein2vein.domain.errors import V2VError
from vein2vein.domain.permissions import rule_for
from vein2vein.services import audit_review as review
from vein2vein.services.auth import Identity
from vein2vein.store.audit import AuditEntry
from vein2vein.web._common import AppDep, templates
from vein2vein.web.batches import _signing
from vein2vein.web.errors import Problem, problem_of
from vein2vein.web.session import CsrfDep, IdentityDep

__all__ = ["router"]

router = APIRouter(prefix="/audit")

FormText = Annotated[str, Form()]

_FIELDS = ("lot", "actor", "action", "since", "until")

# Suggestions for the action field (any other action name can be typed).
_ACTIONS = sorted(
    {t.event for t in TRANSITIONS.values()}
    | {
        "AccountLocked",
        "AuditTrailReviewed",
        "CredentialRevoked",
        "CustodyTransferred",
        "IdentityMismatchDetected",
        "IdentityVerified",
        "PasswordChanged",
        "PermissionDenied",
        "SignatureRefused",
        "SignedIn",
        "SignedOut",
        "SignInFailed",
        "SiteRegistered",
        "TherapyOrdered",
        "UserCreated",
    }
)


@dataclass(frozen=True, slots=True)
class Change:
    """One key of a record that changed: ``old`` is None when the key is new."""

    key: str
    old: str | None
    new: str | None


def _readable(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value) or "(none)"
    if isinstance(value, dict):
        given = {k: v for k, v in sorted(value.items()) if v is not None}
        return "; ".join(f"{k}: {_readable(v)}" for k, v in given.items()) or "(none)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def changes(entry: AuditEntry) -> list[Change]:
    """The keys whose value differs between old and new, in a stable order."""
    out = []
    for key in sorted(set(entry.old) | set(entry.new)):
        before, after = entry.old.get(key), entry.new.get(key)
        if key in entry.old and key in entry.new and before == after:
            continue
        if key not in entry.old and after is None:
            continue  # an empty field of a new record says nothing
        out.append(
            Change(
                key,
                _readable(before) if key in entry.old else None,
                _readable(after) if key in entry.new else None,
            )
        )
    return out


def seconds(at: str) -> str:
    """``2026-03-02 08:00:05`` from a canonical UTC time (an audit trail needs the second)."""
    return at[:19].replace("T", " ")


templates.env.filters["audit_changes"] = changes
templates.env.filters["audit_time"] = seconds


def _typed(**given: str | None) -> dict[str, str]:
    return {name: (given.get(name) or "").strip() for name in _FIELDS}


def _filter_query(
    lot: str = "", actor: str = "", action: str = "", since: str = "", until: str = ""
) -> dict[str, str]:
    """The filter as typed in the address (a dependency of every GET that filters)."""
    return _typed(lot=lot, actor=actor, action=action, since=since, until=until)


TypedFilter = Annotated[dict[str, str], Depends(_filter_query)]


def _query(typed: dict[str, str]) -> str:
    return urlencode({k: v for k, v in typed.items() if v})


def _filter(typed: dict[str, str]) -> review.AuditFilter:
    return review.AuditFilter.parse(**{k: v or None for k, v in typed.items()})


def _can_review(identity: Identity) -> bool:
    return rule_for("audit.review").allows(identity.actor)


def _render(
    request: Request,
    app: AppDep,
    identity: Identity,
    typed: dict[str, str],
    *,
    problem: Problem | None = None,
    review_problem: Problem | None = None,
    comment: str = "",
    recorded: int | None = None,
) -> HTMLResponse:
    view = None
    if problem is None:
        try:
            view = review.audit_trail(app, identity.actor, _filter(typed))
        except V2VError as error:
            problem = problem_of(error)
    past = review.reviews(app, identity.actor)
    confirmed = next(
        (e for e in past.entries if e.seq == recorded and e.actor == identity.actor.user_id),
        None,
    )
    shown = problem or review_problem
    status = shown.status if shown else 200
    response: HTMLResponse = templates.TemplateResponse(
        request,
        "audit/index.html",
        {
            "view": view,
            "typed": typed,
            "query": _query(typed),
            "problem": problem,
            "review_problem": review_problem,
            "comment": comment,
            "confirmed": confirmed,
            "reviews": past,
            "actions": _ACTIONS,
            "can_review": _can_review(identity),
            "period_set": bool(typed["since"] and typed["until"]),
            "first_signature": not identity.credential.has_signed,
            "csrf_token": identity.credential.csrf_token,
            "me": identity.actor,
            "max_rows": review.MAX_ROWS,
            "page": "audit",
        },
        status_code=status,
    )
    return response


@router.get("", response_class=HTMLResponse, name="audit_page")
def audit_page(
    request: Request,
    app: AppDep,
    identity: IdentityDep,
    typed: TypedFilter,
    recorded: int | None = None,
) -> HTMLResponse:
    return _render(request, app, identity, typed, recorded=recorded)


def _filename(filt: review.AuditFilter, suffix: str) -> str:
    """``audit-trail_lot-CP1-2026-00001_from-2026-03-01_to-2026-03-02.csv``."""
    parts = ["audit-trail"]
    for name, value in (("lot", filt.lot), ("by", filt.actor), ("action", filt.action)):
        if value:
            parts.append(f"{name}-{value}")
    description = filt.describe()
    for word in ("from", "to"):
        match = re.search(rf"\b{word} (\d{{4}}-\d\d-\d\d)", description)
        if match:
            parts.append(f"{word}-{match.group(1)}")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(parts))[:150]
    return f"{name}.{suffix}"


@router.get("/export.csv", name="audit_csv")
def audit_csv(
    app: AppDep,
    identity: IdentityDep,
    typed: TypedFilter,
) -> Response:
    filt = _filter(typed)
    view = review.audit_trail(app, identity.actor, filt)
    return Response(
        review.to_csv(view).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{_filename(filt, "csv")}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/export.pdf", name="audit_pdf")
def audit_pdf(
    app: AppDep,
    identity: IdentityDep,
    typed: TypedFilter,
) -> Response:
    filt = _filter(typed)
    view = review.audit_trail(app, identity.actor, filt)
    pdf = review.to_pdf(view, printed_by=identity.actor, printed_at=app.clock.now())
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{_filename(filt, "pdf")}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/reviews", name="audit_reviews")
def audit_reviews(request: Request) -> RedirectResponse:
    """The reviews are listed on the audit page (a reload of a refused review lands here)."""
    return RedirectResponse(str(request.url_for("audit_page")) + "#reviews", status_code=303)


@router.post("/reviews", response_class=HTMLResponse, name="audit_review")
def audit_review(
    request: Request,
    app: AppDep,
    identity: CsrfDep,
    lot: FormText = "",
    actor: FormText = "",
    action: FormText = "",
    since: FormText = "",
    until: FormText = "",
    comment: FormText = "",
    signature_user_id: FormText = "",
    signature_password: FormText = "",
) -> Response:
    typed = _typed(lot=lot, actor=actor, action=action, since=since, until=until)
    try:
        seq = review.record_review(
            app.uow(),
            identity,
            _filter(typed),
            comment=comment,
            signing=_signing(signature_user_id, signature_password),
        )
    except V2VError as error:
        return _render(
            request, app, identity, typed, review_problem=problem_of(error), comment=comment
        )
    query = urlencode({**{k: v for k, v in typed.items() if v}, "recorded": seq})
    target = str(request.url_for("audit_page")) + f"?{query}#review-done"
    return RedirectResponse(target, status_code=303)
