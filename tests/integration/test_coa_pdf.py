"""The certificate of analysis as a PDF, read back as text (pdftotext): identity, results
against the specification, OOS flags that survive, exceptions and signatures."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.test_record_pdf import pdf_text
from tests.network import (
    PASSWORD,
    act,
    advance,
    order,
    pass_acceptance,
    pass_release_qc,
    people_of,
    scan_code,
    small_network,
)
from vein2vein.domain.batch import Action, BatchState
from vein2vein.services import qc
from vein2vein.services.app import App
from vein2vein.services.auth import Signing
from vein2vein.services.coa_pdf import certificate_pdf
from vein2vein.services.qc_views import batch_qc


def test_the_certificate_shows_results_oos_flags_exceptions_and_signatures(
    app: App, tmp_path: Path
) -> None:
    crew = small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RECEIVED)
    pass_acceptance(app, lot, viability="74")
    act(app, lot, Action.ACCEPT, reason="by exception", exception="no second collection possible")
    advance(app, lot, BatchState.QC_PENDING)
    sample_id = pass_release_qc(app, lot, endotoxin="3.0")
    (inv,) = batch_qc(app, crew.qa.actor, lot).investigations
    qc.conclude_oos(
        app.uow(), crew.qa, inv.investigation.reference, outcome="laboratory-error",
        conclusion="LAL standard curve out of range", signing=Signing(PASSWORD, "qa.cp1"),
    )  # fmt: skip
    retest = qc.enter_result(app.uow(), crew["qc.cp1"].actor, sample_id, "endotoxin", "0.22",
                             retest_of=inv.investigation.result_id)  # fmt: skip
    qc.verify_result(app.uow(), crew["qc2.cp1"], retest.id, signing=Signing(PASSWORD, "qc2.cp1"))
    act(app, lot, Action.RELEASE, reason="meets the specification")
    act(app, lot, Action.SHIP, scan=scan_code(app, lot))
    text = pdf_text(certificate_pdf(app, crew.qa.actor, lot), tmp_path)
    view = batch_qc(app, crew.qa.actor, lot)
    assert f"Certificate of analysis — {lot}" in text
    assert view.batch.coi in text and view.batch.din in text
    assert "RELEASED — the batch meets its release specification" in text  # shipped since
    assert "CART-CD19-REL v1" in text and "CART-CD19-APH v1" in text
    assert "≥ 70 %" in text and "88 %" in text  # criterion and reported value
    assert "retest of result" in text and "0.22 EU/mL" in text
    # The OOS endotoxin was invalidated by its investigation: still on the certificate.
    assert "3.00 EU/mL" in text and "laboratory error found by OOS-" in text
    assert "accepted by QA's" in text and "no second collection" in text
    for meaning in ("approved", "reviewed", "released"):
        assert meaning in text
    assert re.search(r"^\s*release\s+Dr Kim Lee \(qp\.cp1\)\s+released", text, re.MULTILINE)
    assert "page 1 of" in text


def test_a_batch_not_yet_released_says_so_on_its_certificate(app: App, tmp_path: Path) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.QC_PENDING)
    text = pdf_text(certificate_pdf(app, people_of(app).qa.actor, lot), tmp_path)
    assert "NOT RELEASED — the batch is QC_PENDING" in text
    assert "No sample drawn." in text.split("Release results")[1].split("Starting material")[0]
