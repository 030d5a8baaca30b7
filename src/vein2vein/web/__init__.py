"""vein2vein.web: the server-rendered pages (Jinja2, htmx), one folder of templates per feature.

The ASGI application mounts :data:`router` and :data:`STATIC_DIR`, and renders page errors
with :func:`error_page`.
"""

from __future__ import annotations

from fastapi import APIRouter

from vein2vein.web import batches, favicon, network
from vein2vein.web._common import STATIC_DIR
from vein2vein.web.errors import error_page, status_page

__all__ = ["STATIC_DIR", "error_page", "router", "status_page"]

# Pages are not part of the JSON API: they stay out of its OpenAPI schema and /api/docs.
router = APIRouter(include_in_schema=False)
router.include_router(network.router)
router.include_router(batches.router)
router.include_router(favicon.router)
