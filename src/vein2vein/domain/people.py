"""People: user accounts, their roles and site scope, and the password policy (issue 4).

A person is known by a unique user id and acts with the roles an administrator gave them,
on the sites in their scope. Accounts are deactivated, never deleted, so every record
stays attributable to one person (21 CFR 11.10(d), 11.300; EU GMP Annex 11 §12).

Examples
--------
>>> person = Actor("qa.jones", "Dr Ada Jones", frozenset({Role.QA_REVIEWER}), ALL_SITES)
>>> person.may_act_on("CP1"), person.has(Role.OPERATOR)
(True, False)
>>> PasswordPolicy().problems("short", user_id="qa.jones")[0]
'at least 12 characters'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from vein2vein.domain.errors import InvalidInput

__all__ = [
    "ALL_SITES",
    "Actor",
    "PasswordHasher",
    "PasswordPolicy",
    "Role",
    "Security",
    "validate_user_id",
]


class Role(StrEnum):
    """What a person is allowed to do; a person may hold several roles."""

    COORDINATOR = "coordinator"  # treatment centre: orders, collection, receipt, infusion
    OPERATOR = "operator"  # manufacturing: receipt, processing, scans
    QC_ANALYST = "qc-analyst"  # QC samples, results, second-analyst verification
    PHYSICIAN = "physician"  # treating physician: requests an OOS release, hears alerts
    QA_REVIEWER = "qa-reviewer"  # acceptance, holds, dispositions, audit trail review
    QP = "qp"  # qualified person: release
    LOGISTICS = "logistics"  # couriers, shipment, custody
    PLANNER = "planner"  # capacity and vector planning (read-mostly)
    ADMINISTRATOR = "administrator"  # users, sites


# The site scope of a person who may act on every site (e.g. central QA, an administrator).
ALL_SITES: frozenset[str] = frozenset({"*"})

_USER_ID = re.compile(r"[a-z][a-z0-9._-]{1,48}[a-z0-9]")


def validate_user_id(user_id: object) -> str:
    """A user id: 3–50 lower-case letters, digits and ``. _ -``, starting with a letter."""
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        raise InvalidInput(
            f"user id {user_id!r}: expected 3-50 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter and ending with a letter or digit"
        )
    return user_id


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated person, as the services see them: who, with which roles, where."""

    user_id: str
    full_name: str
    roles: frozenset[Role]
    sites: frozenset[str]

    def __post_init__(self) -> None:
        validate_user_id(self.user_id)
        if not self.full_name.strip():
            raise InvalidInput(f"user {self.user_id}: full name is empty")

    def has(self, role: Role) -> bool:
        return role in self.roles

    def may_act_on(self, site: str) -> bool:
        """Whether ``site`` is in this person's scope."""
        return self.sites == ALL_SITES or site in self.sites

    @property
    def scope(self) -> str:
        return "all sites" if self.sites == ALL_SITES else ", ".join(sorted(self.sites))


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """Length, variety, no user id inside, a maximum age, and lockout after failures.

    The defaults follow common GMP practice (NIST SP 800-63B length; 90-day aging and a
    five-attempt lockout, which many quality systems still require).
    """

    min_length: int = 12
    min_classes: int = 3  # of: lower case, upper case, digits, other characters
    max_age_days: int = 90
    lockout_after: int = 5

    def __post_init__(self) -> None:
        for name in ("min_length", "min_classes", "max_age_days", "lockout_after"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"password policy {name}: expected at least 1")
        if self.min_classes > 4:
            raise InvalidInput("password policy min_classes: expected 1..4")

    def problems(self, password: str, *, user_id: str) -> list[str]:
        """What is wrong with ``password`` for ``user_id`` (empty when it is acceptable)."""
        found = []
        if len(password) < self.min_length:
            found.append(f"at least {self.min_length} characters")
        classes = sum(
            (
                any(c.islower() for c in password),
                any(c.isupper() for c in password),
                any(c.isdigit() for c in password),
                any(not c.isalnum() for c in password),
            )
        )
        if classes < self.min_classes:
            found.append(
                f"characters of at least {self.min_classes} kinds (lower case, upper case, "
                "digits, others)"
            )
        if user_id and user_id.lower() in password.lower():
            found.append("not containing the user id")
        return found

    def check(self, password: str, *, user_id: str) -> None:
        """Raise :class:`InvalidInput` naming every rule ``password`` breaks."""
        found = self.problems(password, user_id=user_id)
        if found:
            raise InvalidInput(f"password for {user_id}: needs {'; '.join(found)}")

    def expired(self, changed_at: datetime, now: datetime) -> bool:
        """Whether a password last changed at ``changed_at`` must be changed ``now``."""
        return now - changed_at > timedelta(days=self.max_age_days)


class PasswordHasher(Protocol):
    """Turns passwords into one-way hashes and checks them (services: argon2)."""

    def hash(self, password: str) -> str: ...

    def verify(self, hashed: str, password: str) -> bool: ...

    def needs_rehash(self, hashed: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Security:
    """The security settings the services apply, built once from the settings."""

    hasher: PasswordHasher
    policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    session_idle_minutes: int = 15  # a web session ends after this long without a request
    session_hours: int = 12  # and at the latest this long after sign-in
    token_days: int = 30  # API tokens
    cli_hours: int = 12  # the CLI's token (`v2v login`)

    def __post_init__(self) -> None:
        for name in ("session_idle_minutes", "session_hours", "token_days", "cli_hours"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"security {name}: expected at least 1")
