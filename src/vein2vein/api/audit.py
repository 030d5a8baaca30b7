"""/api/audit: recompute the whole hash chain and name the first broken link."""

from __future__ import annotations

from fastapi import APIRouter

from vein2vein.api._deps import AppDep, IdentityDep
from vein2vein.api.schemas import AuditVerifyPublic, ChainBreakPublic
from vein2vein.services.authorise import require

__all__ = ["router"]

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/verify", response_model=AuditVerifyPublic)
def verify_audit(app: AppDep, identity: IdentityDep) -> AuditVerifyPublic:
    """Recompute the chain (QA reviewer, QP or administrator)."""
    require(identity.actor, "audit.verify")
    report = app.verify_audit()
    brk = report.first_break
    return AuditVerifyPublic(
        ok=report.ok,
        checked=report.checked,
        last_seq=report.last_seq,
        head_hash=report.head_hash,
        first_break=ChainBreakPublic(seq=brk.seq, what=brk.what) if brk else None,
    )
