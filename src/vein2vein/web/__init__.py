"""vein2vein.web: the server-rendered pages (Jinja2, htmx), one folder of templates per feature.

The ASGI application mounts :data:`router` and :data:`STATIC_DIR`, and renders page errors
with :func:`error_page`. Every page but /login (and the icon) requires a signed-in
session (web/session.py); every form carries the session's CSRF token.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from vein2vein.web import (
    analytics,
    audit,
    batches,
    favicon,
    login,
    network,
    planning,
    qc,
    records,
    telemetry,
)
from vein2vein.web._common import STATIC_DIR
from vein2vein.web.errors import error_page, status_page
from vein2vein.web.session import current_identity

__all__ = ["STATIC_DIR", "error_page", "router", "status_page"]

# Pages are not part of the JSON API: they stay out of its OpenAPI schema and /api/docs.
router = APIRouter(include_in_schema=False)
# Every page needs a signed-in person, except signing in itself and the icon.
_signed_in = [Depends(current_identity)]
router.include_router(network.router, dependencies=_signed_in)
router.include_router(batches.router, dependencies=_signed_in)
router.include_router(records.router, dependencies=_signed_in)
router.include_router(audit.router, dependencies=_signed_in)
router.include_router(qc.router, dependencies=_signed_in)
router.include_router(analytics.router, dependencies=_signed_in)
router.include_router(planning.router, dependencies=_signed_in)
router.include_router(telemetry.router, dependencies=_signed_in)
router.include_router(login.router)
router.include_router(favicon.router)
