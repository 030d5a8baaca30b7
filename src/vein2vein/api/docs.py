"""The API's interactive documentation (Swagger UI) at /api/docs, served from this server.

FastAPI's own docs page loads Swagger UI from a CDN, which leaves the page blank offline and
breaks the rule that browser libraries come from the npm registry at build time. This page
loads the copies ``make web-assets`` puts under ``/static/vendor`` (``swagger-ui-dist``,
pinned in package-lock.json), the site's own favicon, and asks Swagger UI not to call its
online validator: no request leaves the server it came from. ReDoc is not offered.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

__all__ = ["router"]

router = APIRouter()


@router.get("/docs", include_in_schema=False, name="api_docs")
def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI over the application's OpenAPI schema, with locally served assets."""
    app = request.app
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    return get_swagger_ui_html(
        openapi_url=root_path + str(app.openapi_url),
        title=f"{app.title} API",
        swagger_js_url=str(request.url_for("static", path="vendor/swagger-ui-bundle.js")),
        swagger_css_url=str(request.url_for("static", path="vendor/swagger-ui.css")),
        swagger_favicon_url=str(request.url_for("static", path="favicon.svg")),
        oauth2_redirect_url=None,
        # Swagger UI would otherwise send the whole schema to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
