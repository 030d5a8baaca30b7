"""Signing in and out of the pages: ``GET/POST /login``, the password change an expired
password asks for, and ``POST /logout``.

A successful sign-in sets the session cookie (HttpOnly, SameSite=Strict, Secure over https,
Path=/) holding the session token, and goes back to the page that asked for it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vein2vein.domain.errors import PasswordExpired, V2VError
from vein2vein.services import auth, people
from vein2vein.web._common import AppDep, templates
from vein2vein.web.session import ENDED, SESSION_COOKIE, CsrfDep, safe_next

__all__ = ["router"]

router = APIRouter()

FormText = Annotated[str, Form()]


def _page(
    request: Request,
    *,
    next_: str,
    user_id: str = "",
    error: str = "",
    expired: str = "",
    ended: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    response: HTMLResponse = templates.TemplateResponse(
        request,
        "login.html",
        {
            "next": safe_next(next_),
            "user_id": user_id,
            "error": error,
            "expired": expired,
            "ended": ENDED.get(ended or ""),
        },
        status_code=status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _signed_in(request: Request, signed: auth.SignedIn, next_: str) -> Response:
    response = RedirectResponse(safe_next(next_), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.get("/login", response_class=HTMLResponse, name="login_page")
def login_page(request: Request, next: str = "/", ended: str | None = None) -> HTMLResponse:
    return _page(request, next_=next, ended=ended)


@router.post("/login", response_class=HTMLResponse, name="login")
def login(
    request: Request,
    app: AppDep,
    user_id: FormText = "",
    password: FormText = "",
    next: FormText = "/",
) -> Response:
    try:
        signed = auth.sign_in(
            app.uow(),
            user_id=user_id,
            password=password,
            kind="session",
            label=f"web: {request.headers.get('user-agent', '')[:150]}",
        )
    except PasswordExpired as error:
        return _page(request, next_=next, user_id=user_id.strip().lower(), expired=error.message)
    except V2VError as error:
        return _page(request, next_=next, user_id=user_id, error=error.message, status=401)
    return _signed_in(request, signed, next)


@router.post("/login/password", response_class=HTMLResponse, name="change_password")
def change_password(
    request: Request,
    app: AppDep,
    user_id: FormText = "",
    old_password: FormText = "",
    new_password: FormText = "",
    confirm_password: FormText = "",
    next: FormText = "/",
) -> Response:
    user_id = user_id.strip().lower()
    if new_password != confirm_password:
        return _page(
            request,
            next_=next,
            user_id=user_id,
            expired="The two new passwords differ; type the same one twice.",
            status=422,
        )
    try:
        people.change_password(
            app.uow(), user_id=user_id, old_password=old_password, new_password=new_password
        )
        signed = auth.sign_in(
            app.uow(), user_id=user_id, password=new_password, kind="session", label="web"
        )
    except PasswordExpired as error:  # pragma: no cover - just changed
        return _page(request, next_=next, user_id=user_id, expired=error.message)
    except V2VError as error:
        return _page(request, next_=next, user_id=user_id, expired=error.message, status=422)
    return _signed_in(request, signed, next)


@router.post("/logout", name="logout")
def logout(request: Request, app: AppDep, identity: CsrfDep) -> Response:
    auth.sign_out(app.uow(), identity)
    response = RedirectResponse(
        str(request.url_for("login_page").include_query_params(signed_out="1")), status_code=303
    )
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response
