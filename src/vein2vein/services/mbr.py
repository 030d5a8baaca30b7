"""Change control of master batch records: draft → approved (signed) → effective → superseded.

A version is imported as a DRAFT: the file exactly as given, checked (formats/mbr.py), with
the SHA-256 of its text. A QA reviewer approves it with an electronic signature (meaning
*approved*) whose record names that hash; it becomes EFFECTIVE, and the version that was
effective for the same process is SUPERSEDED in the same transaction. Versions only go up,
and a version's text never changes: a change is a new version.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256

from vein2vein.domain.errors import (
    RuleViolation,
)
from vein2vein.domain.events import Event
from vein2vein.domain.people import Actor
from vein2vein.domain.process import ProcessDefinition, diff_processes
from vein2vein.formats.mbr import parse_mbr
from vein2vein.services._change_control import (
    DRAFT,
    EFFECTIVE,
    SUPERSEDED,
    Document,
    approve,
    check_new_version,
)
from vein2vein.services.app import App
from vein2vein.services.auth import Identity, Signing
from vein2vein.services.authorise import authorise, require
from vein2vein.store.mbr import MbrRecord, MbrRepository
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "DRAFT",
    "EFFECTIVE",
    "SUPERSEDED",
    "MbrVersion",
    "approve_mbr",
    "effective_mbr",
    "import_mbr",
    "list_mbrs",
]


@dataclass(frozen=True, slots=True)
class MbrVersion:
    """A version as listed: its place in change control, never its text."""

    process: str
    version: int
    product: str
    title: str
    status: str
    content_hash: str
    imported_by: str
    approved_by: str | None

    @classmethod
    def of(cls, r: MbrRecord) -> MbrVersion:
        return cls(r.process, r.version, r.product, r.title, r.status, r.content_hash,
                   r.imported_by, r.approved_by)  # fmt: skip


def import_mbr(uow: UnitOfWork, by: Actor, text: str, source: str) -> MbrVersion:
    """Import a new version of an MBR as a DRAFT; refused if the file is invalid, or its
    version is not above every version of that process already imported."""
    definition = parse_mbr(text, source)  # every problem named before anything is written
    digest = sha256(text.encode()).hexdigest()
    key = f"{definition.process} v{definition.version}"
    with authorise(uow, by, "mbr.import", entity=("mbr", key)):
        known = [r.version for r in uow.mbrs.versions(definition.process)]
        check_new_version(MBR, known, definition.process, definition.version, source)
        record = MbrRecord(
            process=definition.process,
            version=definition.version,
            product=definition.product,
            title=definition.title,
            status=DRAFT,
            source=text,
            content_hash=digest,
            imported_at=uow.clock.now(),
            imported_by=by.user_id,
        )
        uow.mbrs.add(record)
        changes = _changes_from_effective(uow.mbrs, definition)
        uow.record(
            Event(
                "MasterBatchRecordImported",
                by.user_id,
                uow.clock.now(),
                "mbr",
                key,
                new={
                    "status": DRAFT,
                    "product": definition.product,
                    "content_hash": digest,
                    "steps": [s.id for s in definition.steps],
                    "changes_from_effective": changes,
                },
                reason=f"imported from {source}",
            )
        )
        uow.commit()
    return MbrVersion.of(record)


def _changes_from_effective(repo: MbrRepository, new: ProcessDefinition) -> list[str] | None:
    effective = [r for r in repo.versions(new.process) if r.status == EFFECTIVE]
    if not effective:
        return None
    return diff_processes(parse_mbr(effective[0].source), new)


MBR = Document("master batch record", "mbr", "MasterBatchRecord", "mbr.approve", "mbrs")


def approve_mbr(
    uow: UnitOfWork,
    by: Identity,
    process: str,
    version: int,
    *,
    reason: str,
    signing: Signing | None,
) -> MbrVersion:
    """Approve a DRAFT with an electronic signature (*approved*): it becomes EFFECTIVE and
    the version effective until now is SUPERSEDED, in one transaction (services/
    _change_control.py)."""
    approve(
        uow, by, MBR, process, version, reason=reason, signing=signing,
        superseded=lambda u, _: [
            (r.process, r.version) for r in u.mbrs.versions(process) if r.status == EFFECTIVE
        ],
    )  # fmt: skip
    with uow:
        return MbrVersion.of(uow.mbrs.get(process, version))


def list_mbrs(app: App, by: Actor) -> list[MbrVersion]:
    """Every version of every process, with its status."""
    require(by, "records.read")
    with app.reader() as connection:
        return [MbrVersion.of(r) for r in MbrRepository(connection).list()]


def effective_mbr(app: App, process: str) -> ProcessDefinition:
    """The effective version of ``process`` (what a batch starts with)."""
    with app.reader() as connection:
        versions = MbrRepository(connection).versions(process)
    effective = [r for r in versions if r.status == EFFECTIVE]
    if not effective:
        raise RuleViolation(f"process {process} has no effective master batch record")
    return parse_mbr(effective[0].source, f"{process} v{effective[0].version}")
