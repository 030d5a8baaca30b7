"""The pages in real headless Chromium, served by uvicorn over HTTP on a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import network
from tests.conftest import service_missing
from tests.e2e.live_server import serving
from vein2vein.domain.batch import BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.services import batches as svc
from vein2vein.services import queries
from vein2vein.services.app import App

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
TABLET = {"width": 768, "height": 1024}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        service_missing("Chromium", f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Site:
    """The running web site, its application and clock, for arranging and checking."""

    base: str
    app: App
    clock: FixedClock

    def url(self, path: str) -> str:
        return self.base + path

    def state(self, lot: str) -> str:
        return queries.batch_view(self.app, lot).batch.state


@pytest.fixture
def site(sqlite_app: App, clock: FixedClock) -> Iterator[Site]:
    network.small_network(sqlite_app)
    with serving(sqlite_app) as base:
        yield Site(base, sqlite_app, clock)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def collected(site: Site, pseudonym: str = "PT-000101") -> str:
    lot = network.order(site.app, pseudonym)
    network.advance(site.app, lot, BatchState.COLLECTED)
    return lot


def perform(page: Any, action: str, **fields: str) -> None:
    """Fill the form of ``action`` on the batch page and submit it (htmx, in place)."""
    form = page.locator(f"form[data-action={action}]")
    for name, value in fields.items():
        form.locator(f"[name={name}]").fill(value)
    page.evaluate("window.__same_page = true")
    form.locator("button[type=submit]").click()


def test_the_network_page_shows_first_the_batches_that_need_someone_now(
    site: Site, page: Any
) -> None:
    late = collected(site)
    network.order(site.app, "PT-000202")  # just ordered: waits on no one
    site.clock.advance(timedelta(hours=13))

    page.goto(site.url("/"))

    attention = page.locator("#attention")
    assert attention.locator("tbody tr").count() == 1
    row = attention.locator("tbody tr").first
    assert late in row.inner_text()
    assert "collected, not yet handed to the courier" in row.inner_text()
    assert "13 h" in row.inner_text()
    assert page.get_by_test_id("attention-count").inner_text() == "1"
    first_section = page.locator("main section").first
    assert first_section.get_attribute("id") == "attention"
    assert "Collected" in page.locator("#state-table").inner_text()
    page.wait_for_selector("#state-chart .main-svg")  # Plotly drew the chart
    row.locator("a").click()
    page.wait_for_url(site.url(f"/batches/{late}"))


def test_the_batch_page_shows_the_din_with_its_check_character_the_coi_and_barcodes(
    site: Site, page: Any
) -> None:
    lot = collected(site)
    identity = queries.batch_view(site.app, lot).identity
    assert identity.din_eye_readable and identity.check_character

    page.goto(site.url(f"/batches/{lot}"))

    assert page.get_by_test_id("din").inner_text() == identity.din_eye_readable
    assert page.get_by_test_id("din-k").inner_text() == identity.check_character
    assert page.get_by_test_id("din-flags").inner_text() == identity.type3_flags
    assert page.get_by_test_id("coi").inner_text() == identity.coi_eye_readable
    barcodes = page.locator(".identity svg.barcode")
    assert barcodes.count() == 2
    assert barcodes.nth(1).locator("title").text_content() == f"DIN {identity.din}"
    assert "NOT FOR CLINICAL USE" in page.locator(".banner-demo").inner_text()
    assert page.get_by_test_id("state").inner_text() == "Collected"
    assert "records verify" in page.get_by_test_id("audit-check").inner_text()


def test_dispatch_with_the_right_scan_moves_the_batch_on_the_page(site: Site, page: Any) -> None:
    lot = collected(site)
    page.goto(site.url(f"/batches/{lot}"))

    perform(
        page,
        "dispatch",
        actor="nurse.a",
        scan=network.scan_code(site.app, lot),
        to_party="MedCourier",
        temperature_c="4",
    )

    page.wait_for_selector("[data-testid=state]:text('In transit')")
    assert page.evaluate("window.__same_page") is True  # htmx swapped the section in place
    assert "Dispatch recorded by nurse.a" in page.get_by_test_id("outcome").inner_text()
    assert "MedCourier" in page.locator(".timeline").inner_text()
    assert "4.0 °C" in page.locator(".timeline").inner_text()
    assert page.locator("form[data-action=receive]").count() == 1
    assert site.state(lot) == "IN_TRANSIT"


def test_a_wrong_scan_on_the_batch_page_shows_the_mismatch_and_changes_nothing(
    site: Site, page: Any
) -> None:
    lot = collected(site)
    other = collected(site, "PT-000303")
    page.goto(site.url(f"/batches/{lot}"))

    perform(page, "dispatch", actor="nurse.a", scan=network.scan_code(site.app, other))

    alert = page.locator(".alert-error[data-error=identity-mismatch]")
    alert.wait_for()
    assert "Identity mismatch — hard stop" in alert.inner_text()
    assert "does not belong to this batch" in alert.inner_text()
    assert "Nothing was changed" in alert.inner_text()
    assert page.get_by_test_id("state").inner_text() == "Collected"
    assert "IdentityMismatchDetected" in page.locator("table.audit").inner_text()
    assert page.locator("form[data-action=dispatch] [name=actor]").input_value() == "nurse.a"
    assert site.state(lot) == "COLLECTED"


def test_acting_on_a_page_someone_else_changed_is_refused_and_shows_the_batch_as_it_is(
    site: Site, page: Any
) -> None:
    lot = collected(site)
    page.goto(site.url(f"/batches/{lot}"))
    svc.perform_transition(
        site.app.uow(), lot, "hold", actor="qa.jones", reason="label reprint requested"
    )

    perform(page, "dispatch", actor="nurse.a", scan=network.scan_code(site.app, lot))

    page.locator(".alert-error[data-error=conflict]").wait_for()
    assert page.get_by_test_id("state").inner_text() == "On hold"
    assert page.locator("form[data-action=resume]").count() == 1
    assert site.state(lot) == "ON_HOLD"


def test_a_missing_reason_is_shown_in_the_form_not_as_an_error_page(site: Site, page: Any) -> None:
    lot = collected(site)
    page.goto(site.url(f"/batches/{lot}"))
    page.locator("details.exceptional summary").click()
    page.locator("form[data-action=hold] [name=reason]").evaluate("e => e.required = false")

    perform(page, "hold", actor="qa.jones")

    alert = page.locator(".alert-error[data-error=invalid-input]")
    alert.wait_for()
    assert "hold needs a reason" in alert.inner_text()
    assert site.state(lot) == "COLLECTED"


def test_the_label_page_carries_coi_and_din_as_text_and_barcodes(site: Site, page: Any) -> None:
    lot = collected(site)
    identity = queries.batch_view(site.app, lot).identity

    page.goto(site.url(f"/batches/{lot}/label"))

    label = page.locator("article.label")
    assert page.get_by_test_id("label-coi").inner_text() == identity.coi_eye_readable
    assert page.get_by_test_id("label-din").inner_text() == identity.din_eye_readable
    assert label.locator("svg.barcode").count() == 2
    assert page.get_by_test_id("label-demo").inner_text() == "DEMONSTRATION — NOT FOR CLINICAL USE"
    for text in (lot, "CART-CD19", "PT-000101"):
        assert text in label.inner_text()
    page.emulate_media(media="print")
    assert page.locator(".no-print").is_hidden()
    assert label.is_visible()


def test_the_batch_list_filters_by_state(site: Site, page: Any) -> None:
    moving = collected(site)
    waiting = network.order(site.app, "PT-000404")

    page.goto(site.url("/batches"))
    assert page.locator("#batch-list tbody tr").count() == 2
    page.select_option("select[name=state]", "COLLECTED")
    page.locator(".filters button").click()
    page.wait_for_url("**/batches?state=COLLECTED*")

    listed = page.locator("#batch-list").inner_text()
    assert moving in listed
    assert waiting not in listed


def test_an_unknown_lot_is_a_not_found_page_without_a_traceback(site: Site, page: Any) -> None:
    response = page.goto(site.url("/batches/CP1-2026-99999"))

    assert response is not None and response.status == 404
    text = page.locator("main").inner_text()
    assert "Not found" in text
    assert "batch 'CP1-2026-99999' does not exist" in text
    assert "Traceback" not in page.content()


def test_at_tablet_width_no_page_scrolls_sideways(site: Site, browser: Any) -> None:
    lot = collected(site)
    network.order(site.app, "PT-000505")
    site.clock.advance(timedelta(days=3))
    context = browser.new_context(viewport=TABLET)
    tab = context.new_page()
    try:
        for path in ("/", "/batches", f"/batches/{lot}", f"/batches/{lot}/label"):
            tab.goto(site.url(path))
            overflow = tab.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} is {overflow}px wider than a 768px tablet"
    finally:
        context.close()


def test_an_unknown_address_is_a_not_found_page(site: Site, page: Any) -> None:
    response = page.goto(site.url("/no-such-page"))

    assert response is not None and response.status == 404
    assert "Not found" in page.locator("main").inner_text()
