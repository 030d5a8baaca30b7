"""QC and release pages in real headless Chromium: an analyst draws a sample and enters the
release results on the page, one out of specification; after the investigation, the retest,
the second analyst and the record review, the QP signs the release on the page."""

from __future__ import annotations

from typing import Any

import pytest

from tests import network
from tests.e2e.browser import TABLET, Site
from tests.e2e.test_pages import sign_in, visit
from vein2vein.domain.batch import BatchState
from vein2vein.services import qc, qc_views
from vein2vein.services.auth import Signing

pytestmark = pytest.mark.browser


def qc_pending(site: Site, pseudonym: str = "PT-000101") -> str:
    """A batch made and awaiting QC (its apheresis accepted, no release sample yet)."""
    lot = network.order(site.app, pseudonym)
    network.advance(site.app, lot, BatchState.QC_PENDING)
    return lot


def enter(page: Any, attribute: str, value: str) -> str:
    """Type ``value`` into the entry row of ``attribute`` and enter it; the green line."""
    form = page.locator(f"form[data-testid=enter-{attribute}]")
    field = form.get_by_test_id(f"value-{attribute}")
    if field.evaluate("e => e.tagName") == "SELECT":
        field.select_option(value)
    else:
        field.fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=notice]")
    return str(page.get_by_test_id("notice").inner_text())


def test_an_analyst_enters_results_sees_the_oos_flag_and_a_qp_signs_the_release(
    site: Site, page: Any
) -> None:
    app = site.app
    crew = network.people_of(app)
    lot = qc_pending(site)

    # The analyst draws the release sample on the page (the label scanned) ...
    visit(site, page, f"/batches/{lot}/qc", "qc.cp1")
    page.locator("summary", has_text="Draw a sample").click()
    draw = page.get_by_test_id("draw-form")
    assert draw.get_by_test_id("stage").input_value() == "release"
    draw.get_by_test_id("scan").fill(network.scan_code(app, lot))
    draw.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=notice]")
    assert "drawn (Release)" in page.get_by_test_id("notice").inner_text()

    # ... and enters every release result, viability out of specification.
    typed = network.RELEASABLE | {"viability": "64"}
    said = {attribute: enter(page, attribute, value) for attribute, value in typed.items()}

    assert "OUT OF SPECIFICATION" in said["viability"] and "OOS-" in said["viability"]
    assert "OUT OF SPECIFICATION" not in said["car_percent"]
    release = page.locator("article[data-stage=release]")
    oos_row = release.locator("tr[data-attribute=viability]")
    assert oos_row.get_by_test_id("oos-flag").is_visible()
    assert oos_row.get_attribute("data-conformance") == "oos"
    assert page.locator("[data-testid=oos-flag]").count() == 1
    assert "64 %" in page.get_by_test_id("oos-summary").inner_text()
    assert page.get_by_test_id("oos-count").inner_text() == "1"
    assert "1250 (mean of 3)" in release.locator("tr[data-attribute=potency]").inner_text()
    # Every result is in: no entry row is left, and the analyst may not verify their own.
    assert page.locator("form[data-testid^=enter-]").count() == 0
    assert page.locator("form[data-testid^=verify-]").count() == 0
    kinds = page.locator("[data-testid=blocker]").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)"
    )
    assert "investigation" in kinds and "unverified" in kinds and "record" in kinds

    # Through the services: laboratory error, retest, second analyst, record review.
    view = qc_views.batch_qc(app, crew["qc.cp1"].actor, lot)
    (investigation,) = view.investigations
    reference = investigation.investigation.reference
    qc.conclude_oos(
        app.uow(),
        crew.qa,
        reference,
        outcome="laboratory-error",
        conclusion="pipetting error in the 7-AAD staining",
        signing=Signing(network.PASSWORD, "qa.cp1"),
    )
    sample_id = view.samples[-1].sample.id
    qc.enter_result(
        app.uow(),
        crew["qc.cp1"].actor,
        sample_id,
        "viability",
        "86",
        retest_of=investigation.investigation.result_id,
    )
    for r in qc_views.batch_qc(app, crew["qc.cp1"].actor, lot).results:
        if r.result.status.value == "entered":
            qc.verify_result(
                app.uow(),
                crew["qc2.cp1"],
                r.result.id,
                signing=Signing(network.PASSWORD, "qc2.cp1"),
            )
    qc.review_record(
        app.uow(),
        crew.qa,
        lot,
        comment="reviewed by exception",
        signing=Signing(network.PASSWORD, "qa.cp1"),
    )

    # The QP sees nothing stopping the release, and signs it on the page.
    visit(site, page, f"/batches/{lot}/qc", "qp.cp1")
    assert "Nothing stops the release" in page.get_by_test_id("release-verdict").inner_text()
    release = page.locator("form[data-action=release]")
    release.locator("[name=reason]").fill("all QC results within specification")
    release.locator("[name=signature_user_id]").fill("qp.cp1")  # first signature
    release.locator("[name=signature_password]").fill(network.PASSWORD)
    release.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=notice]")

    assert site.state(lot) == "RELEASED"
    assert page.get_by_test_id("state").inner_text() == "Released"
    assert "QC pending → Released" in page.get_by_test_id("notice").inner_text()
    signatures = page.locator("#release [data-testid=signature]").all_inner_texts()
    assert any("released" in s and "Dr Kim Lee" in s for s in signatures)
    assert page.locator("form[data-action=release]").count() == 0
    # The OOS flag stays on the invalidated result, after the release too.
    sample = page.locator("article[data-stage=release]")
    first = sample.locator("tr[data-attribute=viability][data-status=invalidated]")
    assert first.get_by_test_id("oos-flag").is_visible()
    assert "laboratory error found by " + reference in first.inner_text()
    retest = sample.locator("tr[data-attribute=viability][data-status=verified]")
    assert retest.get_attribute("data-conformance") == "conforms"
    assert "Cass Second" in retest.get_by_test_id("signature").inner_text()
    assert first.get_by_test_id("retest-link").get_attribute("href") == retest.evaluate(
        "r => '#' + r.id"
    )
    # The certificate of analysis is one click away.
    href = page.get_by_test_id("coa-link").get_attribute("href")
    assert href is not None and href.endswith(f"/batches/{lot}/coa.pdf")
    pdf = page.request.get(href)
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")


def test_only_a_qc_analyst_is_offered_the_result_entry(site: Site, page: Any) -> None:
    lot = qc_pending(site)
    network.sample(site.app, lot, "release")

    visit(site, page, f"/batches/{lot}/qc", "qc.cp1")
    assert page.locator("form[data-testid^=enter-]").count() == len(network.RELEASABLE)

    for someone in ("operator.cp1", "qp.cp1", "qa.cp1"):
        visit(site, page, f"/batches/{lot}/qc", someone)
        assert page.locator("form[data-testid^=enter-]").count() == 0, someone
        sample = page.locator("article[data-stage=release]").inner_text()
        assert "QC analysts of CP1 enter them" in sample, someone


def test_a_refused_result_keeps_what_was_typed_beside_its_form(site: Site, page: Any) -> None:
    lot = qc_pending(site)
    network.sample(site.app, lot, "release")
    visit(site, page, f"/batches/{lot}/qc", "qc.cp1")

    form = page.locator("form[data-testid=enter-car_percent]")
    form.get_by_test_id("value-car_percent").fill("42")
    form.locator("[name=method_version]").fill("9.9")
    form.locator("[name=instrument]").fill("FC-07")
    form.locator("button[type=submit]").click()

    box = page.locator(".qc-problem[data-error=invalid-input]")
    box.wait_for()
    assert "version '9.9' is not the version" in box.inner_text()
    # The box sits just above the refused form, and the form keeps what was typed.
    assert box.evaluate("b => b.nextElementSibling.dataset.testid") == "enter-car_percent"
    form = page.locator("form[data-testid=enter-car_percent]")
    assert form.get_by_test_id("value-car_percent").input_value() == "42"
    assert form.locator("[name=instrument]").input_value() == "FC-07"
    view = qc_views.batch_qc(site.app, network.people_of(site.app).qa.actor, lot)
    assert [r for r in view.results if r.result.attribute == "car_percent"] == []


def test_after_a_laboratory_error_the_entry_row_retests_the_invalidated_result(
    site: Site, page: Any
) -> None:
    crew = network.people_of(site.app)
    lot = qc_pending(site)
    sample_id = network.sample(site.app, lot, "release")
    oos = network.results(site.app, sample_id, {"viability": "64"}, verify=False)["viability"]
    assert oos.investigation is not None
    qc.conclude_oos(
        site.app.uow(),
        crew.qa,
        oos.investigation,
        outcome="laboratory-error",
        conclusion="wrong gating template",
        signing=Signing(network.PASSWORD, "qa.cp1"),
    )

    visit(site, page, f"/batches/{lot}/qc", "qc.cp1")
    form = page.locator("form[data-testid=enter-viability]")
    assert f"retest of result {oos.id}" in form.inner_text()
    said = enter(page, "viability", "86")

    assert "viability = 86 entered" in said and "OUT OF SPECIFICATION" not in said
    sample = page.locator("article[data-stage=release]")
    retest = sample.locator("tr[data-attribute=viability][data-status=entered]")
    assert f"retest of {oos.id}" in retest.inner_text()
    first = sample.locator(f"#result-{oos.id}")
    assert first.get_attribute("data-status") == "invalidated"
    assert first.get_by_test_id("oos-flag").is_visible()
    link = first.get_by_test_id("retest-link")
    assert link.get_attribute("href") == "#" + str(retest.get_attribute("id"))


def test_the_treating_centre_acknowledges_a_failed_culture_alert_on_the_qc_page(
    site: Site, page: Any
) -> None:
    app = site.app
    lot = qc_pending(site)
    sample_id = network.sample(app, lot, "release")
    pending = {k: v for k, v in network.RELEASABLE.items() if k != "sterility_culture"}
    network.results(app, sample_id, pending)
    qc.review_record(
        app.uow(),
        network.people_of(app).qa,
        lot,
        comment="reviewed",
        signing=Signing(network.PASSWORD, "qa.cp1"),
    )
    network.act(app, lot, "release-conditionally", reason="culture pending, rapid passed")
    failed = network.results(app, sample_id, {"sterility_culture": "growth"}, verify=False)
    alert = failed["sterility_culture"].alert
    assert alert is not None

    visit(site, page, "/qc", "qc.cp1")  # QC sees the alert, but it is the centre's to answer
    assert page.get_by_test_id("alert-count").inner_text() == "1"
    assert page.get_by_test_id(f"alert-{alert}").locator("form").count() == 0

    visit(site, page, "/qc", "coordinator.tc")
    box = page.get_by_test_id(f"alert-{alert}")
    assert "Do not infuse" in box.inner_text()
    box.locator("[name=note]").fill("dose quarantined in the centre, patient not infused")
    box.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=notice]")

    assert f"Alert {alert} acknowledged" in page.get_by_test_id("notice").inner_text()
    assert page.get_by_test_id("alert-count").inner_text() == "0"
    page.goto(site.url(f"/batches/{lot}/qc"))
    acknowledged = page.get_by_test_id(f"alert-{alert}").get_by_test_id("acknowledged")
    assert "Cora Ordinator" in acknowledged.inner_text()
    assert "FAILED" in page.get_by_test_id("conditional").inner_text()


def test_the_qc_pages_fit_a_tablet(site: Site, browser: Any) -> None:
    lot = qc_pending(site)
    sample_id = network.sample(site.app, lot, "release")
    network.results(site.app, sample_id, {"viability": "64", "car_percent": "42"}, verify=False)
    tab = browser.new_context(viewport=TABLET).new_page()
    try:
        for path in (
            "/qc",
            f"/batches/{lot}/qc",
            "/qc/specifications",
            "/qc/specifications/CART-CD19-REL",
        ):
            sign_in(site, tab, "qc2.cp1")
            response = tab.goto(site.url(path))
            assert response is not None and response.status == 200, path
            overflow = tab.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} is {overflow}px wider than a 768px tablet"
    finally:
        tab.context.close()


def test_qa_accepts_an_apheresis_out_of_criteria_only_with_an_exception_shown_on_the_qc_page(
    site: Site, page: Any
) -> None:
    lot = network.order(site.app)
    network.advance(site.app, lot, BatchState.RECEIVED)
    network.pass_acceptance(site.app, lot, viability="60")
    visit(site, page, f"/batches/{lot}", "qa.cp1")
    page.get_by_test_id("qc-link").wait_for()

    def accept(exception: str) -> None:
        form = page.locator("form[data-action=accept]")
        form.locator("[name=reason]").fill("apheresis checked on receipt")
        if exception:
            details = form.locator("details.exception-field")
            if not details.evaluate("d => d.open"):
                details.locator("summary").click()
            form.get_by_test_id("exception").fill(exception)
        if form.locator("[name=signature_user_id]").count():
            form.locator("[name=signature_user_id]").fill("qa.cp1")
        form.locator("[name=signature_password]").fill(network.PASSWORD)
        form.locator("button[type=submit]").click()

    accept("")
    refused = page.locator(".alert-error[data-error=rule-violation]")
    refused.wait_for()
    assert "accept it as a signed exception with its reason" in refused.inner_text()
    assert site.state(lot) == "RECEIVED"

    accept("patient relapsing, no second collection possible; viability 60 % accepted")
    page.wait_for_selector("[data-testid=state]:text('Accepted')")
    assert site.state(lot) == "ACCEPTED"

    page.get_by_test_id("qc-link").click()
    page.wait_for_url(site.url(f"/batches/{lot}/qc"))
    exception = page.get_by_test_id("acceptance-exception")
    assert "no second collection possible" in exception.inner_text()
    assert "with Viability out of criteria" in exception.inner_text()
    signature = exception.get_by_test_id("signature").inner_text()
    assert "approved" in signature and "Quinn Assurance" in signature
    starting = page.locator("article[data-stage=starting-material]")
    assert starting.locator("tr[data-attribute=viability]").get_by_test_id("oos-flag").is_visible()


def test_the_batch_page_keeps_the_oos_flag_after_the_batch_moves_on(site: Site, page: Any) -> None:
    app = site.app
    lot = qc_pending(site)
    network.pass_release_qc(app, lot, dose="0.38")  # OOS: below 0.5 × 10^6/kg
    crew = network.people_of(app)
    (inv,) = qc_views.batch_qc(app, crew.qa.actor, lot).investigations
    ref = inv.investigation.reference
    qc.escalate_oos(app.uow(), crew["qc.cp1"].actor, ref, finding="no laboratory error")
    qc.conclude_oos(
        app.uow(),
        crew.qa,
        ref,
        outcome="confirmed",
        conclusion="low expansion",
        signing=Signing(network.PASSWORD, "qa.cp1"),
    )
    qc.request_oos_release(
        app.uow(),
        crew["dr.tc"],
        lot,
        reason="no alternative",
        document="LETTER-1",
        signing=Signing(network.PASSWORD, "dr.tc"),
    )
    network.act(app, lot, "release-oos", reason="at the physician's request")
    network.act(app, lot, "ship", scan=network.scan_code(app, lot))
    visit(site, page, f"/batches/{lot}", "coordinator.tc")
    flags = page.get_by_test_id("qc-flags")
    assert "OOS: dose" in flags.inner_text()
    assert "at the treating physician's request" in flags.inner_text()
