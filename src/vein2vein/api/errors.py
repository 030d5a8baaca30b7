"""The JSON body of every API error; statuses come from services.http_status.

Every error body is ``{"error": code, "detail": message}``; a request that does not parse
also says which fields were wrong, in ``fields``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from vein2vein.domain.errors import V2VError
from vein2vein.services.http_status import HTTP_STATUS, status_for

__all__ = [
    "HTTP_STATUS",
    "http_error_response",
    "status_for",
    "v2v_error_response",
    "validation_error_response",
]


def v2v_error_response(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, V2VError)
    status = status_for(error)
    # A 401 says how to authenticate (RFC 9110 §11.6.1): with a bearer token.
    headers = {"WWW-Authenticate": 'Bearer realm="vein2vein"'} if status == 401 else None
    return JSONResponse(
        {"error": error.code, "detail": error.message}, status_code=status, headers=headers
    )


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "actor") -> "actor"; ("query", "state") -> "state"
    parts = [str(p) for p in location]
    if parts and parts[0] in {"body", "query", "path", "header"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


def validation_error_response(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    fields = [
        {"field": _field(e.get("loc", ())), "problem": str(e.get("msg", "invalid"))}
        for e in error.errors()
    ]
    detail = "; ".join(f"{f['field']}: {f['problem']}" for f in fields) or "invalid request"
    return JSONResponse(
        {"error": "invalid-input", "detail": detail, "fields": fields}, status_code=422
    )


def http_error_response(status: int, detail: str) -> JSONResponse:
    """An HTTP error raised by routing (unknown address, wrong method) in the same shape."""
    code = "not-found" if status == 404 else f"http-{status}"
    return JSONResponse({"error": code, "detail": detail}, status_code=status)
