"""The ASGI application: the JSON API under /api, the pages, and their static files.

``uvicorn.run("vein2vein.asgi:create_app", factory=True)`` serves it (``v2v serve``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from vein2vein import api, web
from vein2vein.api import qc as api_qc
from vein2vein.api import records as api_records
from vein2vein.bootstrap import bootstrap
from vein2vein.domain.errors import V2VError
from vein2vein.services.app import App
from vein2vein.services.planning_runs import PlanningRuns

__all__ = ["create_app"]


def _is_api(request: Request) -> bool:
    return request.url.path == "/api" or request.url.path.startswith("/api/")


def create_app(app: App | None = None) -> FastAPI:
    """Build the ASGI application around ``app`` (bootstrapped from the environment if None).

    An application built here from the environment is disposed of when the server stops; one
    passed in belongs to the caller.
    """
    owned = app is None
    application = bootstrap() if app is None else app

    planning_runs = PlanningRuns()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        planning_runs.close()
        if owned:
            application.dispose()

    asgi = FastAPI(
        title="vein2vein",
        summary="Cell and gene therapy manufacturing, vein to vein.",
        version="0.1.0",
        # The docs page is api.docs, served with local assets; FastAPI's own loads a CDN's.
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    asgi.state.v2v = application
    asgi.state.planning_runs = planning_runs  # simulations started from the planning page

    async def on_v2v_error(request: Request, error: Exception) -> Response:
        if _is_api(request):
            return api.v2v_error_response(request, error)
        return web.error_page(request, error)

    async def on_invalid_request(request: Request, error: Exception) -> Response:
        return api.validation_error_response(request, error)

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        response: Response
        if _is_api(request):
            response = api.http_error_response(error.status_code, str(error.detail))
        else:
            response = web.status_page(request, error.status_code, str(error.detail))
        response.headers.update(error.headers or {})
        return response

    @asgi.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        # Records are never kept by a browser or proxy (Back after sign-out shows nothing),
        # and no page may be framed by another site (clickjacking).
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    asgi.add_exception_handler(V2VError, on_v2v_error)
    asgi.add_exception_handler(RequestValidationError, on_invalid_request)
    asgi.add_exception_handler(HTTPException, on_http_error)
    asgi.include_router(api.router, prefix="/api")
    asgi.include_router(api_records.router, prefix="/api")
    asgi.include_router(api_qc.router, prefix="/api")
    asgi.include_router(web.router)
    asgi.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    return asgi
