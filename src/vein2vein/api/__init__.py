"""vein2vein.api: the JSON API, one router per resource, mounted under /api by the ASGI app.

Its interactive documentation (/api/docs, :mod:`vein2vein.api.docs`) uses the site's own copy
of Swagger UI. Every route but ``POST /api/tokens`` (sign-in) and the docs needs
``Authorization: Bearer <token>`` (:mod:`vein2vein.api._deps`). Errors leave as
``{"error": code, "detail": message}`` with the status of
:data:`vein2vein.api.errors.HTTP_STATUS`; install them with :func:`install_error_handlers`.
"""

from __future__ import annotations

from fastapi import APIRouter

from vein2vein.api import audit, batches, docs, orders, tokens
from vein2vein.api.errors import (
    HTTP_STATUS,
    http_error_response,
    status_for,
    v2v_error_response,
    validation_error_response,
)

__all__ = [
    "HTTP_STATUS",
    "http_error_response",
    "router",
    "status_for",
    "v2v_error_response",
    "validation_error_response",
]

router = APIRouter()
router.include_router(tokens.router)
router.include_router(batches.router)
router.include_router(orders.router)
router.include_router(audit.router)
router.include_router(docs.router)
