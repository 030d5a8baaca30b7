"""/api/batches: list, read, move through the transition table, spot-check a scan."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from vein2vein.api._deps import AppDep, IdentityDep
from vein2vein.api.schemas import (
    ActionPublic,
    AuditCheckPublic,
    AuditEntryPublic,
    BatchDetailPublic,
    BatchPublic,
    ChainBreakPublic,
    ScanCreate,
    ScanPublic,
    SignaturePublic,
    TransitionCreate,
    signing_of,
)
from vein2vein.domain.batch import Action
from vein2vein.domain.permissions import rule_for
from vein2vein.services import batches as svc
from vein2vein.services import queries
from vein2vein.services.app import App
from vein2vein.services.authorise import require

__all__ = ["router"]

router = APIRouter(prefix="/batches", tags=["batches"])


def _meaning(action: str) -> str | None:
    meaning = rule_for(Action(action)).signature
    return meaning.value if meaning is not None else None


def _detail(app: App, lot: str) -> BatchDetailPublic:
    view = queries.batch_view(app, lot)
    check = view.audit_check
    signatures = {
        seq: SignaturePublic.model_validate(s) for seq, s in sorted(view.signatures.items())
    }
    audit = [
        AuditEntryPublic.model_validate(e).model_copy(update={"signature": signatures.get(e.seq)})
        for e in view.audit
    ]
    return BatchDetailPublic.model_validate(
        {
            "batch": view.batch,
            "identity": view.identity,
            "age_hours": round(view.age_hours, 2),
            "needs_attention": view.needs_attention,
            "actions": [
                ActionPublic.model_validate(a).model_copy(update={"signature": _meaning(a.action)})
                for a in view.actions
            ],
            "custody": view.custody,
            "audit": audit,
            "signatures": list(signatures.values()),
            "audit_check": AuditCheckPublic(
                ok=check.ok,
                checked=check.checked,
                broken=[ChainBreakPublic(seq=s, what=w) for s, w in check.broken],
            ),
        },
        from_attributes=True,
    )


@router.get("", response_model=list[BatchPublic])
def list_batches(
    app: AppDep,
    identity: IdentityDep,
    state: Annotated[str | None, Query(description="e.g. IN_TRANSIT")] = None,
    site: Annotated[str | None, Query(description="manufacturing site or treatment centre")] = None,
) -> list[BatchPublic]:
    require(identity.actor, "records.read")
    rows = queries.list_batches(app, state=state or None, site=site or None)
    return [BatchPublic.model_validate(r) for r in rows]


@router.get("/{lot}", response_model=BatchDetailPublic)
def read_batch(app: AppDep, identity: IdentityDep, lot: str) -> BatchDetailPublic:
    require(identity.actor, "records.read")
    return _detail(app, lot)


@router.post("/{lot}/transitions/{action}", response_model=BatchDetailPublic)
def perform_transition(
    app: AppDep, identity: IdentityDep, lot: str, action: str, body: TransitionCreate
) -> BatchDetailPublic:
    """Move the batch by ``action``, as the signed-in person. Where the permission table asks
    for an electronic signature (e.g. release), send ``signature``: your password again, and
    your user id at the first signature made with this token. ``process`` chooses the MBR
    that start-processing binds the batch to, where more than one is effective; ``exception``
    is QA's reason to accept an apheresis out of its criteria. Acceptance and every release
    are refused by the QC gate with everything that stops them."""
    sig = body.signature
    signing = signing_of(sig)
    handoff = svc.HandoffDetails(
        from_party=body.from_party or None,
        to_party=body.to_party or None,
        location=body.location or None,
        temperature_c=body.temperature_c,
    )
    svc.perform_transition(
        app.uow(),
        lot,
        action,
        by=identity,
        reason=body.reason or None,
        scan=body.scan or None,
        handoff=handoff,
        expected_version=body.expected_version,
        signing=signing,
        process=body.process or None,
        exception=body.exception or None,
    )
    return _detail(app, lot)


@router.post("/{lot}/scan", response_model=ScanPublic)
def scan_identity(app: AppDep, identity: IdentityDep, lot: str, body: ScanCreate) -> ScanPublic:
    result = svc.scan_identity(
        app.uow(), lot, body.scan, by=identity.actor, location=body.location or None
    )
    return ScanPublic.model_validate(result)
