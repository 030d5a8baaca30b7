"""Change control of master batch records on real SQLite and real PostgreSQL."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from tests.network import PASSWORD, small_network
from vein2vein.domain.errors import (
    DuplicateIdentifier,
    InvalidInput,
    PermissionDenied,
    RuleViolation,
    SignatureRefused,
)
from vein2vein.formats.mbr import InvalidProcessFile
from vein2vein.services import audit_review as review
from vein2vein.services import mbr, queries
from vein2vein.services.app import App
from vein2vein.services.auth import Signing

CONVENTIONAL = Path(str(files("vein2vein.examples") / "mbr")) / "cart-cd19-conventional.yaml"
TEXT = CONVENTIONAL.read_text(encoding="utf-8")


def version(n: int, moi_nor: str = "[3, 7]") -> str:
    return TEXT.replace("\nversion: 1\n", f"\nversion: {n}\n").replace(
        "target: 5, nor: [3, 7]", f"target: 5, nor: {moi_nor}"
    )


def test_a_draft_is_approved_with_a_signature_and_supersedes_the_effective_one(app: App) -> None:
    crew = small_network(app, processes=False)
    admin, qa = crew.admin, crew.qa
    draft = mbr.import_mbr(app.uow(), admin.actor, version(1), "conventional.yaml")
    assert (draft.status, draft.version) == (mbr.DRAFT, 1)
    with pytest.raises(RuleViolation, match="no effective master batch record"):
        mbr.effective_mbr(app, "CART-CD19-CONV")

    approved = mbr.approve_mbr(
        app.uow(), qa, "CART-CD19-CONV", 1, reason="reviewed against the process description",
        signing=Signing(PASSWORD, "qa.cp1"),
    )  # fmt: skip
    assert approved.status == mbr.EFFECTIVE and approved.approved_by == "qa.cp1"
    assert mbr.effective_mbr(app, "CART-CD19-CONV").version == 1

    mbr.import_mbr(app.uow(), admin.actor, version(2, "[4, 6]"), "conventional-v2.yaml")
    imported = queries.audit_log(app, limit=1)[0]
    assert imported.new["changes_from_effective"] == [
        "version: 1 → 2",
        "steps.transduction.parameters.moi.nor: 3–7 → 4–6",
    ]
    mbr.approve_mbr(
        app.uow(), qa, "CART-CD19-CONV", 2, reason="narrower MOI after PPQ",
        signing=Signing(PASSWORD),
    )  # fmt: skip
    statuses = {(v.version, v.status) for v in mbr.list_mbrs(app, qa.actor)}
    assert statuses == {(1, mbr.SUPERSEDED), (2, mbr.EFFECTIVE)}
    effective = mbr.effective_mbr(app, "CART-CD19-CONV")
    assert effective.step("transduction").parameter("moi").nor.low == 4

    trail = [e for e in queries.audit_log(app, limit=10) if e.entity_type == "mbr"]
    approval = next(e for e in trail if e.action == "MasterBatchRecordApproved")
    assert approval.new["content_hash"] == mbr.list_mbrs(app, qa.actor)[-1].content_hash
    approvals = review.audit_trail(
        app, qa.actor, review.AuditFilter(action="MasterBatchRecordApproved")
    )
    signed = approvals.signatures[approval.seq]
    assert (signed.meaning, signed.signer_id, signed.matches) == ("approved", "qa.cp1", True)
    assert {e.action for e in trail} >= {
        "MasterBatchRecordImported",
        "MasterBatchRecordApproved",
        "MasterBatchRecordSuperseded",
    }
    assert app.verify_audit().ok


def test_change_control_refuses_what_it_must(app: App) -> None:
    crew = small_network(app, processes=False)
    admin, qa = crew.admin, crew.qa
    with pytest.raises(InvalidProcessFile, match=r"steps\[2\]\.parameters\.moi\.nor: low > high"):
        mbr.import_mbr(app.uow(), admin.actor, version(1, "[7, 3]"), "bad.yaml")
    with pytest.raises(PermissionDenied, match="needs the role"):
        mbr.import_mbr(app.uow(), crew["operator.cp1"].actor, version(1), "x.yaml")
    mbr.import_mbr(app.uow(), admin.actor, version(2), "v2.yaml")
    with pytest.raises(DuplicateIdentifier, match="exists already; a change is a new version"):
        mbr.import_mbr(app.uow(), admin.actor, version(2), "v2-again.yaml")
    with pytest.raises(InvalidInput, match="versions only go up"):
        mbr.import_mbr(app.uow(), admin.actor, version(1), "v1.yaml")
    with pytest.raises(PermissionDenied, match="needs the role qa-reviewer"):
        mbr.approve_mbr(app.uow(), crew["qp.cp1"], "CART-CD19-CONV", 2, reason="ok",
                        signing=Signing(PASSWORD, "qp.cp1"))  # fmt: skip
    with pytest.raises(SignatureRefused):
        mbr.approve_mbr(app.uow(), qa, "CART-CD19-CONV", 2, reason="ok",
                        signing=Signing("wrong", "qa.cp1"))  # fmt: skip
    with pytest.raises(InvalidInput, match="needs your electronic signature"):
        mbr.approve_mbr(app.uow(), qa, "CART-CD19-CONV", 2, reason="ok", signing=None)
    # Whoever imported a version may not approve it.
    mbr.import_mbr(app.uow(), qa.actor, version(3), "v3.yaml")
    with pytest.raises(PermissionDenied, match="may not approve it too"):
        mbr.approve_mbr(app.uow(), qa, "CART-CD19-CONV", 3, reason="ok",
                        signing=Signing(PASSWORD, "qa.cp1"))  # fmt: skip
    mbr.approve_mbr(app.uow(), qa, "CART-CD19-CONV", 2, reason="ok",
                    signing=Signing(PASSWORD, "qa.cp1"))  # fmt: skip
    with pytest.raises(RuleViolation, match="is EFFECTIVE: only a draft is approved"):
        mbr.approve_mbr(app.uow(), crew["qa2.cp1"], "CART-CD19-CONV", 2, reason="again",
                        signing=Signing(PASSWORD, "qa2.cp1"))  # fmt: skip
    assert [v.status for v in mbr.list_mbrs(app, qa.actor)] == [
        mbr.EFFECTIVE,
        mbr.DRAFT,
    ]
    # An older draft never replaces a newer effective version.
    mbr.import_mbr(app.uow(), admin.actor, version(4), "v4.yaml")
    mbr.approve_mbr(app.uow(), crew["qa2.cp1"], "CART-CD19-CONV", 4, reason="ok",
                    signing=Signing(PASSWORD, "qa2.cp1"))  # fmt: skip
    with pytest.raises(RuleViolation, match="older than the effective version 4"):
        mbr.approve_mbr(app.uow(), crew["qa2.cp1"], "CART-CD19-CONV", 3, reason="late",
                        signing=Signing(PASSWORD))  # fmt: skip
