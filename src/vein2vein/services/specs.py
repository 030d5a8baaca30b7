"""Change control of specifications: draft → approved (signed) → effective → superseded.

The same life as a master batch record (services/mbr.py): a version is imported as a DRAFT
with the SHA-256 of its text, a second person — a QA reviewer — approves it with an
electronic signature (*approved*), it becomes EFFECTIVE and the version effective until then
for the same code is SUPERSEDED in the same transaction. A sample is bound to the version
effective when it is drawn, so a batch is judged against the specification it was tested to.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from hashlib import sha256

from vein2vein.domain.errors import (
    InvalidInput,
    NotFound,
    RuleViolation,
)
from vein2vein.domain.events import Event
from vein2vein.domain.people import Actor
from vein2vein.domain.specification import Specification, Stage
from vein2vein.formats.spec import parse_spec
from vein2vein.services._change_control import (
    DRAFT,
    EFFECTIVE,
    Document,
    approve,
    check_new_version,
)
from vein2vein.services.app import App
from vein2vein.services.auth import Identity, Signing
from vein2vein.services.authorise import authorise, require
from vein2vein.store.qc import SpecRecord, SpecRepository
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "SpecVersion",
    "approve_spec",
    "definition",
    "effective_spec",
    "import_spec",
    "list_specs",
    "show_spec",
]


@dataclass(frozen=True, slots=True)
class SpecVersion:
    code: str
    version: int
    product: str
    stage: str
    title: str
    status: str
    content_hash: str
    imported_by: str
    approved_by: str | None

    @classmethod
    def of(cls, r: SpecRecord) -> SpecVersion:
        return cls(
            r.code,
            r.version,
            r.product,
            r.stage,
            r.title,
            r.status,
            r.content_hash,
            r.imported_by,
            r.approved_by,
        )


@lru_cache(maxsize=64)
def _parsed(source: str, name: str) -> Specification:
    return parse_spec(source, name)


def definition(record: SpecRecord) -> Specification:
    """The specification a stored version says (parsed once per text)."""
    return _parsed(record.source, f"{record.code} v{record.version}")


def import_spec(uow: UnitOfWork, by: Actor, text: str, source: str) -> SpecVersion:
    """Import a new version of a specification as a DRAFT; refused if the file is invalid or
    its version is not above every version of that code already imported."""
    spec = parse_spec(text, source)  # every problem named before anything is written
    digest = sha256(text.encode()).hexdigest()
    key = f"{spec.code} v{spec.version}"
    with authorise(uow, by, "spec.import", entity=("specification", key)):
        known = uow.specs.list(code=spec.code)
        check_new_version(SPEC, [r.version for r in known], spec.code, spec.version, source)
        if known and (known[-1].product, known[-1].stage) != (spec.product, spec.stage.value):
            raise InvalidInput(
                f"{source}: {spec.code} is the {known[-1].stage} specification of "
                f"{known[-1].product}; a new version keeps its product and stage"
            )
        now = uow.clock.now()
        record = SpecRecord(
            spec.code,
            spec.version,
            spec.product,
            spec.stage.value,
            spec.title,
            DRAFT,
            text,
            digest,
            now,
            by.user_id,
        )
        uow.specs.add(record)
        uow.record(
            Event(
                "SpecificationImported",
                by.user_id,
                now,
                "specification",
                key,
                new={
                    "status": DRAFT,
                    "product": spec.product,
                    "stage": spec.stage.value,
                    "content_hash": digest,
                    "attributes": [a.name for a in spec.attributes],
                },
                reason=f"imported from {source}",
            )
        )
        uow.commit()
    return SpecVersion.of(record)


SPEC = Document("specification", "specification", "Specification", "spec.approve", "specs")


def approve_spec(
    uow: UnitOfWork,
    by: Identity,
    code: str,
    version: int,
    *,
    reason: str,
    signing: Signing | None,
) -> SpecVersion:
    """Approve a DRAFT with an electronic signature (*approved*): it becomes EFFECTIVE and
    what was effective for the same product and stage until now — the previous version, or
    another code — is SUPERSEDED, in one transaction: one specification is effective per
    product and stage (services/_change_control.py)."""
    approve(
        uow, by, SPEC, code, version, reason=reason, signing=signing,
        superseded=lambda u, record: [
            (r.code, r.version)
            for r in u.specs.list(product=record.product, stage=record.stage, status=EFFECTIVE)
        ],
    )  # fmt: skip
    with uow:
        return SpecVersion.of(uow.specs.get(code, version))


def effective_spec(
    specs: SpecRepository, product: str, stage: Stage
) -> tuple[SpecRecord, Specification]:
    """The specification of ``product`` at ``stage`` effective now; refused when none is."""
    found = specs.list(product=product, stage=stage.value, status=EFFECTIVE)
    if not found:
        raise RuleViolation(
            f"product {product} has no effective {stage.value} specification "
            "(QA imports and approves one: v2v qc spec import / approve)"
        )
    return found[-1], definition(found[-1])


def list_specs(app: App, by: Actor) -> list[SpecVersion]:
    require(by, "qc.read")
    with app.reader() as connection:
        return [SpecVersion.of(r) for r in SpecRepository(connection).list()]


def show_spec(
    app: App, by: Actor, code: str, version: int | None = None
) -> tuple[SpecVersion, Specification]:
    """A version of a specification (the effective one, else the newest, when not given)."""
    require(by, "qc.read")
    with app.reader() as connection:
        versions = SpecRepository(connection).list(code=code)
    if not versions:
        raise NotFound(f"specification {code!r} does not exist")
    if version is None:
        chosen = next((r for r in versions if r.status == EFFECTIVE), versions[-1])
    else:
        match = [r for r in versions if r.version == version]
        if not match:
            raise NotFound(f"specification {code} has no version {version}")
        chosen = match[0]
    return SpecVersion.of(chosen), definition(chosen)
