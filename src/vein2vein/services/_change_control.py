"""Change control, one set of rules for every versioned document (master batch records,
specifications): draft → approved by a second person with a signature → effective, the
version effective before it superseded in the same transaction; versions only go up and a
version's text never changes.

services/mbr.py and services/specs.py say what their documents are (:class:`Document`) and
which versions an approval supersedes; the rules live here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from vein2vein.domain.errors import (
    DuplicateIdentifier,
    InvalidInput,
    PermissionDenied,
    RuleViolation,
)
from vein2vein.domain.events import Event
from vein2vein.domain.signatures import Meaning
from vein2vein.services.auth import Identity, Signing, recording_failures, signing_intent
from vein2vein.services.authorise import authorise
from vein2vein.store.uow import UnitOfWork

__all__ = ["DRAFT", "EFFECTIVE", "SUPERSEDED", "Document", "approve", "check_new_version"]

DRAFT, EFFECTIVE, SUPERSEDED = "DRAFT", "EFFECTIVE", "SUPERSEDED"


@dataclass(frozen=True, slots=True)
class Document:
    """A kind of versioned document: what its messages, audit records and permission say."""

    noun: str  # "master batch record"
    entity: str  # the audit records' entity type: "mbr"
    event: str  # the audit records' action prefix: "MasterBatchRecord"
    permission: str  # who approves: "mbr.approve"
    repository: str  # the unit of work's repository of its versions: "mbrs"

    def versions(self, uow: UnitOfWork) -> _Versions:
        repository: _Versions = getattr(uow, self.repository)
        return repository


class _Version(Protocol):
    @property
    def version(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def imported_by(self) -> str: ...
    @property
    def content_hash(self) -> str: ...


class _Versions(Protocol):
    """A repository of versions: MbrRepository, SpecRepository."""

    def get(self, name: str, version: int, /) -> _Version: ...

    def set_status(
        self,
        name: str,
        version: int,
        /,
        *,
        was: str,
        now: str,
        approved_at: datetime | None = None,
        approved_by: str | None = None,
    ) -> None: ...


def check_new_version(
    document: Document, known: Sequence[int], name: str, version: int, source: str
) -> None:
    """Refuse a version imported twice, or below a version already imported."""
    if version in known:
        raise DuplicateIdentifier(
            f"{document.noun} {name} v{version} exists already; a change is a new version"
        )
    if known and version < max(known):
        raise InvalidInput(
            f"{source}: version {version} is below version {max(known)} of {name}; versions "
            "only go up"
        )


def approve(
    uow: UnitOfWork,
    by: Identity,
    document: Document,
    name: str,
    version: int,
    *,
    superseded: Callable[[UnitOfWork, Any], Sequence[tuple[str, int]]],
    reason: str,
    signing: Signing | None,
) -> None:
    """Approve DRAFT ``name`` v``version`` with an electronic signature (*approved*): it
    becomes EFFECTIVE and the versions ``superseded(uow, record)`` names (name, version;
    effective until now, read in the same transaction) become SUPERSEDED. Refused for
    anything but a draft, for the person who imported it (a second person approves), and
    for a version older than one it would supersede under the same name."""
    key = f"{name} v{version}"
    if not reason or not reason.strip():
        raise InvalidInput(f"approval of {key} needs a reason (what was reviewed)")
    with (
        recording_failures(uow),
        authorise(uow, by.actor, document.permission, entity=(document.entity, key)),
    ):
        versions = document.versions(uow)
        record = versions.get(name, version)
        if record.status != DRAFT:
            raise RuleViolation(f"{key} is {record.status}: only a draft is approved")
        if record.imported_by == by.actor.user_id:
            raise PermissionDenied(
                f"{by.actor.user_id} imported {key} and may not approve it too (a second "
                "person approves)"
            )
        effective = superseded(uow, record)
        newer = [v for n, v in effective if n == name and v > version]
        if newer:
            raise RuleViolation(
                f"{key} is older than the effective version {max(newer)}: versions only go up"
            )
        intent = signing_intent(
            uow, by, signing, Meaning.APPROVED, f"approval of {key}", (document.entity, key)
        )
        now = uow.clock.now()
        for old_name, old_version in effective:
            versions.set_status(old_name, old_version, was=EFFECTIVE, now=SUPERSEDED)
            uow.record(
                Event(
                    f"{document.event}Superseded",
                    by.actor.user_id,
                    now,
                    document.entity,
                    f"{old_name} v{old_version}",
                    new={"status": SUPERSEDED, "by_version": version, "by": key},
                    old={"status": EFFECTIVE},
                )
            )
        versions.set_status(
            name, version, was=DRAFT, now=EFFECTIVE, approved_at=now, approved_by=by.actor.user_id
        )
        uow.record(
            Event(
                f"{document.event}Approved",
                by.actor.user_id,
                now,
                document.entity,
                key,
                new={"status": EFFECTIVE, "content_hash": record.content_hash},
                old={"status": DRAFT},
                reason=reason.strip(),
                signature=intent,
            )
        )
        uow.commit()
