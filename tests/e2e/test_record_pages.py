"""Batch-record pages in real headless Chromium: an operator executes a whole batch on a
tablet, a second operator verifies with signatures, QA reviews only the exceptions and
closes a deviation, and the record shows corrections and prints as a PDF."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests import network
from tests.e2e.browser import TABLET, Site
from tests.e2e.test_pages import sign_in, visit
from vein2vein.domain.batch import BatchState
from vein2vein.services.record_views import record_view

pytestmark = pytest.mark.browser

PROCESS = network.PROCESS


def accepted(site: Site, pseudonym: str = "PT-000101") -> str:
    lot = network.order(site.app, pseudonym)
    network.advance(site.app, lot, BatchState.ACCEPTED)
    return lot


def second_tab(browser: Any, viewport: dict[str, int] = TABLET) -> Any:
    return browser.new_context(viewport=viewport).new_page()


def fill_step(site: Site, page: Any, lot: str, values: dict[str, float] | None = None) -> str:
    """Fill the operator page's current step: scans, lots, equipment, nominal values."""
    form = page.locator("form.step-form")
    step_id = form.get_attribute("data-step")
    step = network.bound_process(site.app, lot).step(step_id)
    form.get_by_test_id("scan").fill(network.scan_code(site.app, lot))
    if step.equipment_class:
        form.get_by_test_id("equipment").fill(network.equipment_for(step.equipment_class))
    for i, material in enumerate(step.materials, 1):
        form.get_by_test_id(f"lot-{i}").fill(network.material_lot(material.type))
    for p in step.parameters:
        if p.formula is None:
            value = (values or {}).get(p.name, network.nominal(p))
            form.get_by_test_id(f"value-{p.name}").fill(f"{value:g}")
    return step_id


def verify_all(site: Site, verifier: Any, lot: str) -> None:
    """The second operator verifies what awaits verification, signing each."""
    verifier.goto(site.url(f"/batches/{lot}/execute"))
    while verifier.locator("[data-testid^=verify-] button").count():
        form = verifier.locator("form[data-testid^=verify-]").first
        if form.locator("[name=signature_user_id]").count():
            form.locator("[name=signature_user_id]").fill("operator2.cp1")
        form.locator("[name=signature_password]").fill(network.PASSWORD)
        form.locator("button").click()
        verifier.wait_for_selector("[data-testid=notice]")
        assert "verified and signed" in verifier.get_by_test_id("notice").inner_text()


def test_an_operator_executes_a_whole_batch_in_the_browser(
    site: Site, page: Any, browser: Any
) -> None:
    lot = accepted(site)
    page.set_viewport_size(TABLET)
    visit(site, page, f"/batches/{lot}", "operator.cp1")
    start = page.locator("form[data-action=start-processing]")
    start.locator("[name=scan]").fill(network.scan_code(site.app, lot))
    start.get_by_test_id("process").select_option(PROCESS)
    start.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=state]:text('In process')")
    page.reload()
    page.get_by_test_id("operator-link").click()
    page.wait_for_url(site.url(f"/batches/{lot}/execute"))

    verifier = second_tab(browser)
    sign_in(site, verifier, "operator2.cp1")

    first = True
    recorded: list[str] = []
    while page.locator("form.step-form").count():
        showing = page.locator("form.step-form").get_attribute("data-step")
        if showing == "expansion" and recorded.count("expansion") == 2:
            # Two daily counts, then on to the harvest.
            page.locator(".step-choice a", has_text="next step").click()
            page.wait_for_url("**step=harvest_formulation")
        site.clock.advance(timedelta(minutes=5))
        step_id = fill_step(site, page, lot)
        if first:
            # Live feedback from the server as the value is typed: an excursion, then ok.
            field = page.get_by_test_id("value-viability_percent")
            field.fill("85")
            page.wait_for_selector("#fb-viability_percent [data-outcome=excursion]")
            assert "outside the normal range 90–100" in page.inner_text("#fb-viability_percent")
            page.get_by_test_id("record-step").click()
            page.wait_for_selector("[data-error=invalid-input]")
            assert "say why in a comment" in page.inner_text("[data-error=invalid-input]")
            # What was typed is still there (except the scan, scanned again).
            assert page.get_by_test_id("value-viability_percent").input_value() == "85"
            page.get_by_test_id("scan").fill(network.scan_code(site.app, lot))
            page.get_by_test_id("comment-viability_percent").fill("bag 40 h in transit")
            page.wait_for_selector("#fb-viability_percent [data-outcome=excursion]")
            first = False
        if step_id == "transduction":
            # The vector volume is worked out as the values are typed, before recording.
            page.get_by_test_id("value-vector_titre").fill("2.5")
            page.get_by_test_id("value-moi").fill("5")
            seeded = network.nominal(
                network.bound_process(site.app, lot)
                .step("selection_activation")
                .parameter("seeded_cells")
            )
            volume = 5 * seeded * 1e6 / 2.5e8
            page.wait_for_selector(f"[data-computed=vector_volume_ml]:has-text('{volume:g}')")
        page.get_by_test_id("record-step").click()
        page.wait_for_selector("[data-testid=notice]")
        recorded.append(step_id)
        occurrence = recorded.count(step_id)
        notice = page.get_by_test_id("notice").inner_text()
        assert f"Step {step_id} #{occurrence} recorded" in notice
        if page.get_by_test_id("awaiting").count():
            assert page.get_by_test_id("verify-own").count() >= 1  # not by the performer
            verify_all(site, verifier, lot)
            page.reload()
    assert page.get_by_test_id("all-recorded").count() == 1
    page.locator("[data-testid=all-recorded] a").click()
    complete = page.locator("form[data-action=complete-processing]")
    complete.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=state]:text('QC pending')")

    view = record_view(site.app, network.people_of(site.app).qa.actor, lot)
    assert view.complete
    assert recorded == [s.definition.id for s in view.steps for _ in s.entries]
    assert recorded.count("expansion") == 2
    assert [e.kind for e in view.exceptions] == ["excursion"]
    signers = {
        sig.signer_id for s in view.steps for sigs in s.verifications.values() for sig in sigs
    }
    assert signers == {"operator2.cp1"}
    verifier.context.close()


def in_process_with_exceptions(site: Site) -> str:
    """A batch with an excursion, an out-of-PAR value (a major deviation) and a correction."""
    lot = accepted(site)
    network.advance(site.app, lot, BatchState.IN_PROCESS)
    network.record(
        site.app, lot, "receipt", values={"viability_percent": 75.0, "total_nucleated_cells": 9.0}
    )
    from vein2vein.services import execution

    execution.correct_value(
        site.app.uow(),
        lot,
        "receipt",
        1,
        "total_nucleated_cells",
        9.5,
        by=network.people_of(site.app)["operator.cp1"],
        why="recount of the same sample",
    )
    network.record(
        site.app,
        lot,
        "selection_activation",
        values={"cd3_purity_percent": 88.0},
        comments={"cd3_purity_percent": "low CD3 purity after selection"},
    )
    return lot


def test_qa_reviews_only_the_exceptions_and_closes_the_deviation_with_a_signature(
    site: Site, page: Any
) -> None:
    lot = in_process_with_exceptions(site)
    visit(site, page, f"/batches/{lot}/review", "qa.cp1")
    kinds = [r.get_attribute("data-kind") for r in page.get_by_test_id("exception").all()]
    assert sorted(kinds) == ["correction", "excursion", "out-of-par", "unverified"]
    assert page.get_by_test_id("open-deviations").inner_text() == "1"
    reference = record_view(site.app, network.people_of(site.app).qa.actor, lot).deviations[0]
    ref = reference.deviation.reference
    row = page.get_by_test_id(f"deviation-{ref}")
    assert "blocks release" in row.inner_text() and "viability_percent 75 %" in row.inner_text()
    form = page.get_by_test_id(f"close-{ref}")
    form.locator("[name=impact]").fill("low viability at receipt; expansion and dose normal")
    form.locator("[name=signature_user_id]").fill("qa.cp1")
    form.locator("[name=signature_password]").fill(network.PASSWORD)
    form.locator("button").click()
    page.wait_for_selector("[data-error=invalid-input]")  # a major deviation needs a CAPA
    assert "needs a CAPA reference" in page.inner_text("[data-error=invalid-input]")
    form = page.get_by_test_id(f"close-{ref}")
    assert "low viability" in form.locator("[name=impact]").input_value()  # kept
    form.locator("[name=capa]").fill("CAPA-2026-031")
    form.locator("[name=signature_user_id]").fill("qa.cp1")
    form.locator("[name=signature_password]").fill(network.PASSWORD)
    form.locator("button").click()
    page.wait_for_selector("[data-testid=notice]")
    assert f"Deviation {ref} closed and signed" in page.get_by_test_id("notice").inner_text()
    assert page.get_by_test_id("open-deviations").inner_text() == "0"
    closure = page.get_by_test_id("closure-signature").inner_text()
    assert "approved by Quinn Assurance (qa.cp1)" in closure


def test_the_record_page_shows_changes_and_signatures_and_takes_a_correction(
    site: Site, page: Any
) -> None:
    lot = in_process_with_exceptions(site)
    visit(site, page, f"/batches/{lot}/record", "operator.cp1")
    receipt = page.locator("#step-receipt")
    correction = receipt.get_by_test_id("correction").inner_text()
    assert "changed 9 → 9.5 by Otto Perator (operator.cp1)" in correction
    assert "OUT OF PAR" in receipt.locator("tr[data-param=viability_percent]").inner_text()
    selection = page.locator("#step-selection_activation")
    assert (
        "verified by Vera Fier (operator2.cp1)"
        in selection.get_by_test_id("signature").inner_text()
    )
    selection.locator("details.correct summary").click()
    form = selection.locator("details.correct form")
    form.locator("[name=name]").select_option("seeded_cells")
    form.locator("[name=value]").fill("105")
    form.locator("[name=reason]").fill("count transcribed wrongly")
    form.locator("button").click()
    page.wait_for_selector("[data-testid=notice]")
    selection = page.locator("#step-selection_activation")
    assert "→ 105" in selection.get_by_test_id("correction").inner_text()
    assert "again" in selection.inner_text()  # verification needed again after the change
    old = selection.get_by_test_id("signature")
    assert "superseded" in old.inner_text() and "sig-old" in (old.get_attribute("class") or "")


def test_the_record_prints_as_a_pdf(site: Site, page: Any) -> None:
    lot = in_process_with_exceptions(site)
    visit(site, page, f"/batches/{lot}", "qa.cp1")
    response = page.request.get(site.url(f"/batches/{lot}/record.pdf"))
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.body()[:5] == b"%PDF-"


def test_an_operator_opens_a_deviation_by_hand_on_the_review_page(site: Site, page: Any) -> None:
    lot = accepted(site)
    network.advance(site.app, lot, BatchState.IN_PROCESS)
    visit(site, page, f"/batches/{lot}/review", "operator.cp1")
    page.locator("details.exceptional summary").click()
    form = page.get_by_test_id("open-deviation")
    form.locator("[name=severity]").select_option("major")
    form.locator("[name=description]").fill("incubator door found ajar for 5 min")
    form.locator("button").click()
    page.wait_for_selector("[data-testid=notice]")
    assert page.get_by_test_id("open-deviations").inner_text() == "1"
    view = record_view(site.app, network.people_of(site.app).qa.actor, lot)
    (row,) = view.deviations
    assert (row.deviation.severity.value, row.opened_by) == ("major", "operator.cp1")
    # A closure form of another batch's deviation is refused by name.
    other = accepted(site, "PT-000102")
    response = page.request.post(
        site.url(f"/batches/{other}/deviations/{row.deviation.reference}/close"),
        form={"impact": "x", "csrf_token": page.locator("[name=csrf_token]").first.input_value()},
    )
    assert response.status == 404
