"""Who a page request comes from: the session cookie, the sign-in redirect, and CSRF.

Every page except /login, /static and the favicon depends on :func:`current_identity`: a
request without a live session (none, idle too long, revoked) is sent to
``/login?next=…`` (an htmx request gets ``HX-Redirect`` instead, so the login page is not
swapped into a section). Every POST also depends on :func:`check_csrf`: the form's hidden
``csrf_token`` (or the ``X-CSRF-Token`` header htmx sends) must equal the session's.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from vein2vein.domain.errors import AuthenticationFailed, V2VError
from vein2vein.domain.people import Role
from vein2vein.services import auth, queries
from vein2vein.services.auth import Identity
from vein2vein.web._common import AppDep

__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "CsrfDep",
    "IdentityDep",
    "check_csrf",
    "current_identity",
    "safe_next",
]

SESSION_COOKIE = "v2v_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_REFUSED = (
    "Refused: this form's security token (CSRF) is missing or does not match your session. "
    "Nothing was changed. Reload the page and try again."
)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# Why a session ended, as a code the sign-in page turns into its own words (never text
# taken from the address, which anyone could write).
ENDED = {
    "idle": "Your session ended after a time without activity. Sign in again to go on.",
    "expired": "Your session expired. Sign in again to go on.",
    "revoked": "Your session was ended (signed out elsewhere or revoked). Sign in again.",
}


def _sign_in_first(request: Request, why: str, ended: str | None = None) -> HTTPException:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":  # after signing in, go back to the page, not to a POST
        here = request.headers.get("HX-Current-URL") or "/"
        if "://" in here:
            here = "/" + here.split("://", 1)[1].partition("/")[2]
    params = {"next": safe_next(here)}
    if ended in ENDED:
        params["ended"] = ended
    login = str(request.url_for("login_page").include_query_params(**params))
    if request.headers.get("HX-Request") == "true":
        return HTTPException(401, why, headers={"HX-Redirect": login})
    return HTTPException(303, why, headers={"Location": login})


def current_identity(request: Request, app: AppDep) -> Identity:
    """The signed-in person, or a redirect to the sign-in page."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise _sign_in_first(request, "sign in first")
    try:
        identity = auth.resolve_token(app.uow(), token, kinds=("session",))
    except AuthenticationFailed as error:
        raise _sign_in_first(request, error.message, error.ended) from None
    request.state.identity = identity
    request.state.locked_accounts = _locked_accounts(app, identity)
    return identity


def _locked_accounts(app: AppDep, identity: Identity) -> list[str]:
    """The user ids of locked accounts, for the administrator's alert in the top bar."""
    if Role.ADMINISTRATOR not in identity.actor.roles:
        return []
    try:
        return [u.user_id for u in queries.list_users(app, identity.actor) if u.locked]
    except V2VError:
        return []


IdentityDep = Annotated[Identity, Depends(current_identity)]


async def check_csrf(request: Request, identity: IdentityDep) -> Identity:
    """Refuse (403, nothing changed) a POST whose CSRF token is not the session's."""
    expected = identity.credential.csrf_token or ""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()  # Starlette keeps it for the route's own Form fields
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(403, CSRF_REFUSED, headers={"X-V2V-Error": CSRF_REFUSED})
    return identity


CsrfDep = Annotated[Identity, Depends(check_csrf)]
