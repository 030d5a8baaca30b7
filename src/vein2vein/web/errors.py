"""How an error looks on a page (statuses come from services.http_status).

A person never sees a traceback: a vein2vein error becomes a page (or, inside a form, a red
box) that says what happened, whether anything changed, and what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from vein2vein.domain.errors import V2VError
from vein2vein.services.http_status import status_for
from vein2vein.web._common import templates

__all__ = ["Problem", "error_page", "problem_of", "status_page"]

_TITLE = {
    "identity-mismatch": "Identity mismatch — hard stop",
    "conflict": "Someone else changed this batch",
    "transition-refused": "Not allowed from this state",
    "rule-violation": "Refused by a GMP rule",
    "not-found": "Not found",
    "invalid-scan": "The scan could not be read",
    "invalid-identifier": "Not a valid identifier",
    "invalid-input": "Please check the form",
    "duplicate-identifier": "Identifier already issued",
    "database-unavailable": "The database cannot be reached",
    "database-not-ready": "The database needs an upgrade",
    "database": "The database cannot serve this request",
    "authentication-failed": "Refused: your identity could not be confirmed",
    "signature-refused": "Signature refused",
    "account-locked": "Account locked",
    "password-expired": "Password expired",
    "permission-denied": "Not allowed for your role",
}

_NEXT = {
    "identity-mismatch": (
        "Nothing was changed. The attempt is recorded in the audit trail. Check that the bag "
        "in your hands belongs to this batch before you scan again."
    ),
    "conflict": (
        "Nothing was changed. The section below now shows the batch as it is; check it and "
        "try again if the action is still needed."
    ),
    "transition-refused": "Nothing was changed.",
    "rule-violation": "Nothing was changed.",
    "invalid-scan": "Nothing was changed. Scan the DIN or COI bar code on the label.",
    "invalid-identifier": "Nothing was changed.",
    "invalid-input": "Nothing was changed.",
    "authentication-failed": "Nothing was changed. The attempt is recorded in the audit trail.",
    "signature-refused": (
        "Nothing was changed: the change is made only with a valid signature. The attempt is "
        "recorded in the audit trail. Re-enter your password to sign."
    ),
    "account-locked": (
        "Nothing was changed. After too many wrong passwords the account is locked; an "
        "administrator must unlock it."
    ),
    "permission-denied": "Nothing was changed. The attempt is recorded in the audit trail.",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """An error as a page shows it."""

    code: str
    title: str
    detail: str
    next_step: str
    status: int


def problem_of(error: V2VError) -> Problem:
    code = error.code
    return Problem(
        code=code,
        title=_TITLE.get(code, "Something went wrong"),
        detail=error.message,
        next_step=_NEXT.get(code, ""),
        status=status_for(error),
    )


def render_with_problem(
    request: Request, template: str, context: dict[str, object], problem: Problem | None
) -> HTMLResponse:
    """``template`` with ``context``; a form's ``problem``, if any, shown beside the form and
    answered with its HTTP status (the page is the same, with the refusal on it)."""
    response: HTMLResponse = templates.TemplateResponse(
        request,
        template,
        context | {"problem": problem},
        status_code=problem.status if problem else 200,
    )
    return response


def error_page(request: Request, error: Exception) -> Response:
    """The whole page for an error raised while rendering a page (404 for an unknown lot)."""
    assert isinstance(error, V2VError)
    problem = problem_of(error)
    response: HTMLResponse = templates.TemplateResponse(
        request, "errors/error.html", {"problem": problem}, status_code=problem.status
    )
    return response


def status_page(request: Request, status: int, detail: str) -> Response:
    """The page for an HTTP error that is not vein2vein's (an unknown address, a wrong method).

    A redirect (sign in first) has no body; an htmx request gets the message in the page's
    red flash box rather than a whole page swapped into a section.
    """
    if 300 <= status < 400:
        return Response(status_code=status)
    if request.headers.get("HX-Request") == "true":
        fragment: HTMLResponse = templates.TemplateResponse(
            request,
            "errors/_flash.html",
            {"detail": detail, "status": status},
            status_code=status,
            headers={"HX-Retarget": "#flash", "HX-Reswap": "outerHTML"},
        )
        return fragment
    title = "Not found" if status == 404 else f"HTTP {status}"
    problem = Problem(f"http-{status}", title, detail, "", status)
    response: HTMLResponse = templates.TemplateResponse(
        request, "errors/error.html", {"problem": problem}, status_code=status
    )
    return response
