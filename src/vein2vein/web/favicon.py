"""The site's icon: a drop, as SVG; /favicon.ico points there for clients that ask by habit."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

__all__ = ["router"]

router = APIRouter()


@router.get("/favicon.ico", include_in_schema=False, name="favicon")
def favicon(request: Request) -> RedirectResponse:
    # Permanent: the icon's address does not change, so browsers may remember the redirect.
    return RedirectResponse(request.url_for("static", path="favicon.svg"), status_code=301)
