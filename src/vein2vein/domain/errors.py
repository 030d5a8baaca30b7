"""The one family tree of vein2vein's errors.

Every error has a stable ``code`` that adapters show and map to an exit code or an HTTP
status (each adapter in one table). Each class also subclasses the builtin it resembles,
so callers that know nothing of vein2vein can still catch it sensibly::

    V2VError
    ├── InvalidInput (ValueError)              code: invalid-input
    │   ├── InvalidIdentifier                  code: invalid-identifier
    │   ├── InvalidScan                        code: invalid-scan
    │   └── InvalidSetting                     code: invalid-setting
    ├── NotFound (LookupError)                 code: not-found
    ├── RuleViolation                          code: rule-violation
    │   ├── TransitionRefused                  code: transition-refused
    │   └── IdentityMismatch                   code: identity-mismatch
    ├── ConcurrencyConflict                    code: conflict
    ├── DuplicateIdentifier                    code: duplicate-identifier
    ├── AuditChainBroken                       code: audit-chain-broken
    ├── AuthenticationFailed (PermissionError) code: authentication-failed
    │   ├── AccountLocked                      code: account-locked
    │   ├── PasswordExpired                    code: password-expired
    │   └── SignatureRefused                   code: signature-refused
    ├── PermissionDenied (PermissionError)     code: permission-denied
    ├── DatabaseError (RuntimeError)           code: database
    │   ├── DatabaseUnavailable                code: database-unavailable
    │   └── DatabaseNotReady                   code: database-not-ready
    └── ServiceUnavailable (ConnectionError)   code: service-unavailable
"""

from __future__ import annotations

__all__ = [
    "AccountLocked",
    "AuditChainBroken",
    "AuthenticationFailed",
    "ConcurrencyConflict",
    "DatabaseError",
    "DatabaseNotReady",
    "DatabaseUnavailable",
    "DuplicateIdentifier",
    "IdentityMismatch",
    "InvalidIdentifier",
    "InvalidInput",
    "InvalidScan",
    "InvalidSetting",
    "NotFound",
    "PasswordExpired",
    "PermissionDenied",
    "RuleViolation",
    "ServiceUnavailable",
    "SignatureRefused",
    "TransitionRefused",
    "V2VError",
]


class V2VError(Exception):
    """Base of every error vein2vein raises on purpose."""

    code = "error"

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class InvalidInput(V2VError, ValueError):
    """A value given to vein2vein is malformed; nothing was changed."""

    code = "invalid-input"


class InvalidIdentifier(InvalidInput):
    """An ISBT 128 identifier (DIN, COI, check character, flags) is not well formed."""

    code = "invalid-identifier"


class InvalidScan(InvalidInput):
    """A scanned code could not be read as a DIN or a chain-of-identity identifier."""

    code = "invalid-scan"


class InvalidSetting(InvalidInput):
    """A setting (a ``V2V_*`` environment variable) has a value vein2vein cannot use."""

    code = "invalid-setting"


class NotFound(V2VError, LookupError):
    """A record that was asked for does not exist."""

    code = "not-found"


class RuleViolation(V2VError):
    """A GMP rule refuses the request; nothing was changed."""

    code = "rule-violation"


class TransitionRefused(RuleViolation):
    """A batch cannot move from its state by this action."""

    code = "transition-refused"


class IdentityMismatch(RuleViolation):
    """A scanned identity is not the one expected: a hard stop.

    The transition it guarded was refused; the attempt itself was recorded in the audit
    trail as ``IdentityMismatchDetected``.
    """

    code = "identity-mismatch"


class ConcurrencyConflict(V2VError):
    """Someone else changed the record since it was read; reload and try again."""

    code = "conflict"


class DuplicateIdentifier(V2VError):
    """An identifier that must be unique (a DIN sequence, a lot) was issued twice."""

    code = "duplicate-identifier"


class AuditChainBroken(V2VError):
    """The audit trail's hash chain does not verify."""

    code = "audit-chain-broken"


class AuthenticationFailed(V2VError, PermissionError):
    """Who is asking could not be established: unknown user, wrong password, expired or
    revoked token or session. The message never says which of user id and password was
    wrong. ``ended`` says why a credential that worked before no longer does (``idle``,
    ``expired``, ``revoked``), for a sign-in page to say so in its own words."""

    code = "authentication-failed"

    def __init__(self, message: str, *, ended: str | None = None) -> None:
        super().__init__(message)
        self.ended = ended


class AccountLocked(AuthenticationFailed):
    """Too many failed sign-ins: an administrator must unlock the account."""

    code = "account-locked"


class PasswordExpired(AuthenticationFailed):
    """The password is older than the policy allows (or was set by an administrator):
    the person must change it before doing anything else."""

    code = "password-expired"


class SignatureRefused(AuthenticationFailed):
    """An electronic signature's password was wrong: the signed-in person stays signed in,
    the change it would have signed was not made."""

    code = "signature-refused"


class PermissionDenied(V2VError, PermissionError):
    """The person is known but not allowed to do this (role, site scope, independence)."""

    code = "permission-denied"


class DatabaseError(V2VError, RuntimeError):
    """The database cannot serve the request."""

    code = "database"


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached (wrong URL, server down, file not writable)."""

    code = "database-unavailable"


class DatabaseNotReady(DatabaseError):
    """The database has not been migrated to this version of vein2vein."""

    code = "database-not-ready"


class ServiceUnavailable(V2VError, ConnectionError):
    """A service vein2vein was asked to use (a Dask scheduler, a broker) cannot be reached;
    nothing was done."""

    code = "service-unavailable"
