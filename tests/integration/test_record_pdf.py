"""The executed batch record prints as a PDF a reviewer can read, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

from tests.conftest import service_missing
from tests.network import (
    PASSWORD,
    advance,
    execute_record,
    order,
    people_of,
    record,
    small_network,
)
from vein2vein.domain.batch import BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.services import execution, materials
from vein2vein.services.app import App
from vein2vein.services.auth import Signing
from vein2vein.services.record_pdf import to_pdf
from vein2vein.services.record_views import RecordView, record_view

REASON = "transcription error: the balance read 262 mL"


def executed_batch(app: App, clock: FixedClock, *, days: int = 1) -> tuple[str, str]:
    """A conventional batch with an excursion (commented), a corrected value verified again,
    a value out of its PAR (a minor deviation, closed by QA) and ``days`` expansion records,
    released by the QP; returns its lot and the deviation's reference."""
    crew = small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.IN_PROCESS, clock)
    clock.advance(timedelta(hours=2))
    record(app, lot, "receipt", values={"viability_percent": 88.0},
           comments={"viability_percent": "transit 30 h; inside the PAR per SOP-042"})  # fmt: skip
    clock.advance(timedelta(minutes=40))
    execution.correct_value(
        app.uow(), lot, "receipt", 1, "apheresis_volume_ml", 262.0, by=crew["operator.cp1"],
        why=REASON,
    )  # fmt: skip
    clock.advance(timedelta(minutes=10))
    execution.verify_step(app.uow(), lot, "receipt", 1, by=crew["operator2.cp1"],
                          signing=Signing(PASSWORD, "operator2.cp1"))  # fmt: skip
    clock.advance(timedelta(hours=6))
    done = record(app, lot, "selection_activation", values={"seeded_cells": 160.0})
    (deviation,) = done.deviations
    clock.advance(timedelta(hours=4))
    record(app, lot, "transduction")
    for day in range(days):
        clock.advance(timedelta(hours=24))
        values = {"culture_day": 3.0 + day, "viable_cells": round(0.4 * 1.6**day, 2)}
        comments = {}
        if day == 2:  # an excursion in the daily counts
            values["glucose_mmol_l"] = 4.2
            comments["glucose_mmol_l"] = "fed 0.5 L ahead of the schedule"
        record(app, lot, "expansion", values=values, comments=comments)
    execute_record(app, lot, clock)
    materials.close_deviation(
        app.uow(), crew.qa, deviation,
        impact="160e6 cells seeded; expansion and CAR expression within range; no impact",
        capa="CAPA-2026-0007", signing=Signing(PASSWORD, "qa.cp1"),
    )  # fmt: skip
    advance(app, lot, BatchState.RELEASED, clock)
    return lot, deviation


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        service_missing("pdftotext (poppler-utils)", "install it to read the PDF's text")
    path = tmp_path / "record.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return done.stdout


def section(text: str, title: str, following: str) -> str:
    start = text.index(title)
    return text[start : text.index(following, start)]


def test_the_executed_record_prints_with_its_signatures_changes_and_deviations(
    app: App, clock: FixedClock, tmp_path: Path
) -> None:
    lot, deviation = executed_batch(app, clock, days=3)
    qa = people_of(app).qa.actor
    view: RecordView = record_view(app, qa, lot)
    pdf = to_pdf(view, printed_by=qa, printed_at=clock.now())
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf, tmp_path)
    pages = text.split("\f")
    pages = [p for p in pages if p.strip()]
    assert len(pages) > 1
    for number, page in enumerate(pages, start=1):  # the running header and the page number
        assert lot in page and view.batch.coi in page and "CART-CD19-CONV v1" in page
        assert f"page {number} of {len(pages)}" in page
    assert "Record COMPLETE" in text and "PT-000101" in text and "72 kg" in text
    assert "Printed" in text and "Quinn Assurance (qa.cp1)" in text
    assert re.search(r"Signed: verified by Vera Fier \(operator2\.cp1\)", text)
    assert "EXCURSION" in text and "transit 30 h" in text and "OUT OF PAR" in text
    assert "CORRECTED" in text and "COMPUTED" in text
    assert re.search(r"Record 3, glucose_mmol_l: Comment: fed 0\.5 L", text)  # the daily table
    assert "SUPERSEDED: a value changed after this verification" in text  # the first one
    signatures = section(text, "Signatures", "Data changed after first entry")
    assert re.search(r"released\s+Dr Kim Lee\s+2026-03-\d\d \d\d:\d\d:\d\d UTC", signatures)
    assert "qp.cp1" in signatures and "NO LONGER MATCHES" not in text
    changed = section(text, "Data changed after first entry", "Exceptions (review")
    assert "apheresis_volume" in changed and "250 → 262 mL" in changed
    assert "transcription error" in changed and "operator.cp1" in changed
    deviations = section(text, "Deviations", "Genealogy")
    assert deviation in deviations and "CLOSED" in deviations and "CAPA-2026-0007" in deviations
    assert "Signed: approved" in deviations  # the closure signature (columns interleave)
    assert "LOT-CSR" in section(text, "Genealogy", "end of the batch record")


def test_a_record_in_progress_shows_the_steps_not_performed(
    app: App, clock: FixedClock, tmp_path: Path
) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.IN_PROCESS, clock)
    record(app, lot, "receipt", verify=False)
    qa = people_of(app).qa.actor
    pdf = to_pdf(record_view(app, qa, lot), printed_by=qa, printed_at=clock.now())
    text = pdf_text(pdf, tmp_path)
    assert "Record INCOMPLETE" in text and "AWAITS VERIFICATION" in text
    assert "NOT PERFORMED — the next step to record" in text
    assert text.count("NOT PERFORMED") == 5
    assert "No batch-level signatures" not in text  # acceptance was signed
