"""The API's one table from error codes to HTTP statuses, and the JSON body of every error.

Every error body is ``{"error": code, "detail": message}``; a request that does not parse
also says which fields were wrong, in ``fields``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from vein2vein.domain.errors import V2VError

__all__ = [
    "HTTP_STATUS",
    "http_error_response",
    "status_for",
    "v2v_error_response",
    "validation_error_response",
]

# One row per code of vein2vein.domain.errors; a code missing here is a 500.
HTTP_STATUS: dict[str, int] = {
    "invalid-input": 422,
    "invalid-identifier": 422,
    "invalid-scan": 422,
    "not-found": 404,
    "rule-violation": 409,
    "transition-refused": 409,
    "identity-mismatch": 409,
    "conflict": 409,
    "duplicate-identifier": 409,
    "audit-chain-broken": 500,
    "database": 503,
    "database-unavailable": 503,
    "database-not-ready": 503,
}


def status_for(error: V2VError) -> int:
    return HTTP_STATUS.get(error.code, 500)


def v2v_error_response(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, V2VError)
    return JSONResponse(
        {"error": error.code, "detail": error.message}, status_code=status_for(error)
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
