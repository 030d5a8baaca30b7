"""/api/batches: list, read, move through the transition table, spot-check a scan."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from vein2vein.api._deps import AppDep
from vein2vein.api.schemas import (
    AuditCheckPublic,
    BatchDetailPublic,
    BatchPublic,
    ChainBreakPublic,
    ScanCreate,
    ScanPublic,
    TransitionCreate,
)
from vein2vein.services import batches as svc
from vein2vein.services import queries
from vein2vein.services.app import App

__all__ = ["router"]

router = APIRouter(prefix="/batches", tags=["batches"])


def _detail(app: App, lot: str) -> BatchDetailPublic:
    view = queries.batch_view(app, lot)
    check = view.audit_check
    return BatchDetailPublic.model_validate(
        {
            "batch": view.batch,
            "identity": view.identity,
            "age_hours": round(view.age_hours, 2),
            "needs_attention": view.needs_attention,
            "actions": view.actions,
            "custody": view.custody,
            "audit": view.audit,
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
    state: Annotated[str | None, Query(description="e.g. IN_TRANSIT")] = None,
    site: Annotated[str | None, Query(description="manufacturing site or treatment centre")] = None,
) -> list[BatchPublic]:
    rows = queries.list_batches(app, state=state or None, site=site or None)
    return [BatchPublic.model_validate(r) for r in rows]


@router.get("/{lot}", response_model=BatchDetailPublic)
def read_batch(app: AppDep, lot: str) -> BatchDetailPublic:
    return _detail(app, lot)


@router.post("/{lot}/transitions/{action}", response_model=BatchDetailPublic)
def perform_transition(
    app: AppDep, lot: str, action: str, body: TransitionCreate
) -> BatchDetailPublic:
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
        actor=body.actor,
        reason=body.reason or None,
        scan=body.scan or None,
        handoff=handoff,
        expected_version=body.expected_version,
    )
    return _detail(app, lot)


@router.post("/{lot}/scan", response_model=ScanPublic)
def scan_identity(app: AppDep, lot: str, body: ScanCreate) -> ScanPublic:
    result = svc.scan_identity(
        app.uow(), lot, body.scan, actor=body.actor, location=body.location or None
    )
    return ScanPublic.model_validate(result)
