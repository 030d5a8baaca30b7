"""The one table from vein2vein's error codes to HTTP statuses.

Both HTTP adapters (the API and the pages) answer with these statuses; they may not import
each other, so the table lives here, beside the read side they share.
"""

from __future__ import annotations

from vein2vein.domain.errors import V2VError

__all__ = ["HTTP_STATUS", "status_for"]

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
    "authentication-failed": 401,
    "account-locked": 401,
    "password-expired": 401,
    "signature-refused": 403,  # signed in, but the signature's password was wrong
    "permission-denied": 403,
    "invalid-setting": 422,
    "database": 503,
    "database-unavailable": 503,
    "database-not-ready": 503,
    "service-unavailable": 503,
}


def status_for(error: V2VError) -> int:
    """The HTTP status that answers ``error``: its own code's, else the nearest parent
    class's (an invalid MBR or specification file is invalid input: 422)."""
    for kind in type(error).__mro__:
        code = getattr(kind, "code", None)
        if isinstance(code, str) and code in HTTP_STATUS:
            return HTTP_STATUS[code]
    return 500
