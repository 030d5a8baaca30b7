"""The pages in real headless Chromium, served by uvicorn over HTTP on a SQLite file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests import network
from tests.e2e.browser import DESKTOP, TABLET, Site  # the fixtures are in conftest.py
from vein2vein.domain.batch import BatchState
from vein2vein.domain.errors import AuthenticationFailed, IdentityMismatch
from vein2vein.services import auth, people, queries

pytestmark = pytest.mark.browser


def sign_in(site: Site, tab: Any, user_id: str = "coordinator.tc") -> auth.SignedIn:
    """Give the browser a fresh session of ``user_id`` (as the login form would)."""
    signed = auth.sign_in(
        site.app.uow(), user_id=user_id, password=network.PASSWORD, kind="session"
    )
    tab.context.add_cookies(
        [
            {
                "name": "v2v_session",
                "value": signed.token,
                "url": site.base,
                "httpOnly": True,
                "sameSite": "Strict",
            }
        ]
    )
    return signed


def visit(site: Site, tab: Any, path: str, user_id: str = "coordinator.tc") -> Any:
    """Sign in as ``user_id`` (now: the test clock may have jumped past the idle timeout)
    and open ``path``."""
    sign_in(site, tab, user_id)
    return tab.goto(site.url(path))


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

    visit(site, page, "/")

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

    visit(site, page, f"/batches/{lot}")

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
    visit(site, page, f"/batches/{lot}")

    perform(
        page,
        "dispatch",
        scan=network.scan_code(site.app, lot),
        to_party="MedCourier",
        temperature_c="4",
    )

    page.wait_for_selector("[data-testid=state]:text('In transit')")
    assert page.evaluate("window.__same_page") is True  # htmx swapped the section in place
    assert "Dispatch recorded by Cora Ordinator" in page.get_by_test_id("outcome").inner_text()
    assert "MedCourier" in page.locator(".timeline").inner_text()
    assert "4.0 °C" in page.locator(".timeline").inner_text()
    # The receipt is the plant's: a coordinator is not offered it.
    assert page.locator("form[data-action=receive]").count() == 0
    assert site.state(lot) == "IN_TRANSIT"


def test_a_wrong_scan_on_the_batch_page_shows_the_mismatch_and_changes_nothing(
    site: Site, page: Any
) -> None:
    lot = collected(site)
    other = collected(site, "PT-000303")
    visit(site, page, f"/batches/{lot}")

    perform(page, "dispatch", scan=network.scan_code(site.app, other))

    alert = page.locator(".alert-error[data-error=identity-mismatch]")
    alert.wait_for()
    assert "Identity mismatch — hard stop" in alert.inner_text()
    assert "does not belong to this batch" in alert.inner_text()
    assert "Nothing was changed" in alert.inner_text()
    assert page.get_by_test_id("state").inner_text() == "Collected"
    assert "IdentityMismatchDetected" in page.locator("table.audit").inner_text()
    assert site.state(lot) == "COLLECTED"


def test_acting_on_a_page_someone_else_changed_is_refused_and_shows_the_batch_as_it_is(
    site: Site, page: Any
) -> None:
    lot = collected(site)
    visit(site, page, f"/batches/{lot}")
    network.act(site.app, lot, "hold", reason="label reprint requested")

    perform(page, "dispatch", scan=network.scan_code(site.app, lot))

    page.locator(".alert-error[data-error=conflict]").wait_for()
    assert page.get_by_test_id("state").inner_text() == "On hold"
    assert page.locator("form[data-action=resume]").count() == 0  # QA's decision, not theirs
    assert site.state(lot) == "ON_HOLD"


def test_a_missing_reason_is_shown_in_the_form_not_as_an_error_page(site: Site, page: Any) -> None:
    lot = collected(site)
    visit(site, page, f"/batches/{lot}", "qa.cp1")
    page.locator("details.exceptional summary").click()
    page.locator("form[data-action=hold] [name=reason]").evaluate("e => e.required = false")

    perform(page, "hold")

    alert = page.locator(".alert-error[data-error=invalid-input]")
    alert.wait_for()
    assert "hold needs a reason" in alert.inner_text()
    assert site.state(lot) == "COLLECTED"


def test_the_label_page_carries_coi_and_din_as_text_and_barcodes(site: Site, page: Any) -> None:
    lot = collected(site)
    identity = queries.batch_view(site.app, lot).identity

    visit(site, page, f"/batches/{lot}/label")

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

    visit(site, page, "/batches")
    assert page.locator("#batch-list tbody tr").count() == 2
    page.select_option("select[name=state]", "COLLECTED")
    page.locator(".filters button").click()
    page.wait_for_url("**/batches?state=COLLECTED*")

    listed = page.locator("#batch-list").inner_text()
    assert moving in listed
    assert waiting not in listed


def test_an_unknown_lot_is_a_not_found_page_without_a_traceback(site: Site, page: Any) -> None:
    response = visit(site, page, "/batches/CP1-2026-99999")

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
            visit(site, tab, path)
            overflow = tab.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} is {overflow}px wider than a 768px tablet"
    finally:
        context.close()


def test_an_unknown_address_is_a_not_found_page(site: Site, page: Any) -> None:
    response = visit(site, page, "/no-such-page")

    assert response is not None and response.status == 404
    assert "Not found" in page.locator("main").inner_text()


def test_the_api_docs_page_draws_the_operations_with_nothing_loaded_from_elsewhere(
    site: Site, page: Any
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    # As on a machine with no internet: anything not asked of this server fails.
    page.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(site.base + "/") else route.abort()
        ),
    )
    visit(site, page, "/")

    page.locator(".topbar nav a", has_text="API").click()
    page.wait_for_url(site.url("/api/docs"))

    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/batches/{lot}" in [p.replace("\u200b", "") for p in paths]
    assert all(p.replace("\u200b", "").startswith("/api/") for p in paths)  # no page routes
    assert requested and all(url.startswith(site.base + "/") for url in requested), [
        url for url in requested if not url.startswith(site.base + "/")
    ]
    assert any(url.endswith("/static/vendor/swagger-ui-bundle.js") for url in requested)


def test_the_state_card_names_the_identity_mismatches_recorded_on_the_batch(
    site: Site, page: Any
) -> None:
    lot = collected(site)
    wrong = network.scan_code(site.app, collected(site, "PT-000303"))
    site.clock.advance(timedelta(hours=1))
    with pytest.raises(IdentityMismatch):
        network.act(site.app, lot, "dispatch", scan=wrong)
    right = network.scan_code(site.app, lot)
    network.act(site.app, lot, "dispatch", scan=right)

    visit(site, page, f"/batches/{lot}")

    card = page.get_by_test_id("mismatches")
    assert card.locator("xpath=ancestor::section").get_attribute("id") == "batch-status"
    text = card.inner_text()
    assert "1 identity mismatch recorded" in text
    assert "coordinator.tc scanned" in text and wrong in text
    assert "during the Dispatch step" in text and "(batch was Collected)" in text
    card.locator("a").click()
    row = page.locator("table.audit tr:target")
    assert "IdentityMismatchDetected" in row.inner_text()


def test_the_state_card_says_why_a_batch_is_on_hold_and_why_it_was_terminated(
    site: Site, page: Any
) -> None:
    lot = collected(site)
    network.act(site.app, lot, "hold", reason="label smudged; reprint ordered")

    visit(site, page, f"/batches/{lot}", "qa2.cp1")

    reason = page.get_by_test_id("state-reason")
    assert "Reason for the hold" in reason.inner_text()
    assert "qa.cp1" in reason.inner_text()
    assert "label smudged; reprint ordered" in reason.inner_text()
    assert "On hold — needs a QA decision" in page.get_by_test_id("needs-attention").inner_text()

    page.locator("details.exceptional summary").click()
    perform(page, "terminate", reason="patient withdrew consent")

    page.wait_for_selector("[data-testid=state]:text('Terminated')")
    reason = page.get_by_test_id("state-reason")
    assert "Reason for termination" in reason.inner_text()
    assert "qa2.cp1" in reason.inner_text()
    assert "patient withdrew consent" in reason.inner_text()
    assert "label smudged" not in reason.inner_text()


def test_a_hold_needs_someone_at_once_as_a_qa_decision_not_as_a_wait_too_long(
    site: Site, page: Any
) -> None:
    held = collected(site)
    network.act(site.app, held, "hold", reason="deviation")

    visit(site, page, "/")

    attention = page.locator("#attention")
    assert "On hold — needs a QA decision" in attention.inner_text()
    assert "longer than" not in attention.inner_text()
    assert held in page.locator("#attention-holds").inner_text()
    assert "Collected" in page.locator("#attention-holds").inner_text()  # held from
    assert page.get_by_test_id("attention-count").inner_text() == "1"

    late = collected(site, "PT-000202")
    site.clock.advance(timedelta(hours=13))
    visit(site, page, "/")

    assert held in page.locator("#attention-holds").inner_text()
    assert held not in page.locator("#attention-overdue").inner_text()
    assert late in page.locator("#attention-overdue").inner_text()
    assert "longer than they should" in attention.inner_text()
    assert page.get_by_test_id("attention-count").inner_text() == "2"


def test_the_state_table_gives_the_age_of_the_oldest_batch_and_its_counts_look_like_links(
    site: Site, page: Any
) -> None:
    collected(site)
    site.clock.advance(timedelta(hours=5))
    collected(site, "PT-000202")
    held = network.order(site.app, "PT-000303", centre="TC2")
    network.act(site.app, held, "hold", reason="deviation")
    site.clock.advance(timedelta(hours=9))  # the first collection is now 14 h old: overdue

    visit(site, page, "/")

    cell = page.locator("#state-table tr[data-state=COLLECTED] td[data-site=CP1]")
    assert cell.locator("a").inner_text() == "2"
    assert cell.locator(".age").inner_text() == "14 h"
    assert "age-late" in (cell.locator(".age").get_attribute("class") or "")
    assert "oldest has been in this state 14 h" in (cell.locator("a").get_attribute("title") or "")
    held_cell = page.locator("#state-table tr[data-state=ON_HOLD] td[data-site=CP1]")
    assert held_cell.locator(".age").inner_text() == "9 h"
    link = cell.locator("a")
    style = link.evaluate(
        "a => { const s = getComputedStyle(a); return [s.color, s.textDecorationLine]; }"
    )
    accent = page.evaluate("getComputedStyle(document.body).getPropertyValue('--accent')")
    assert accent.strip() == "#1d4ed8" and style == ["rgb(29, 78, 216)", "underline"]

    centre = page.locator("#site-table tr[data-site=TC2]")
    assert centre.get_by_test_id("site-open").inner_text() == "1"
    assert centre.get_by_test_id("site-all").inner_text() == "1"
    other = page.locator("#site-table tr[data-site=TC1]")
    assert other.get_by_test_id("site-open").inner_text() == "2"
    centre.get_by_test_id("site-all").locator("a").click()
    page.wait_for_url("**/batches?site=TC2")
    assert page.locator("#batch-list tbody tr").count() == 1


def test_at_tablet_width_the_batch_list_keeps_identifiers_whole_and_scrolls_in_its_card(
    site: Site, browser: Any
) -> None:
    for n in range(3):
        collected(site, f"PT-00010{n}")
    context = browser.new_context(viewport=TABLET)
    tab = context.new_page()
    try:
        visit(site, tab, "/batches")
        row = tab.locator("#batch-list tbody tr").first
        # A text that wraps has line boxes at more than one height.
        lines = row.evaluate(
            """tr => {
                 const out = [], walk = document.createTreeWalker(tr, NodeFilter.SHOW_TEXT);
                 for (let t = walk.nextNode(); t; t = walk.nextNode()) {
                   if (!t.data.trim()) continue;
                   const range = document.createRange(); range.selectNodeContents(t);
                   const tops = [...range.getClientRects()].map(r => Math.round(r.top));
                   out.push([t.data.trim(), new Set(tops).size]);
                 }
                 return out;
               }"""
        )
        assert [text for text, n in lines if n > 1] == []
        assert {text for text, _ in lines} >= {"PT-000102", "CART-CD19"}
        wrap = tab.locator("#batch-list").locator("xpath=..")
        sizes = wrap.evaluate("w => [w.scrollWidth, w.clientWidth]")
        assert sizes[0] > sizes[1], "the list fits: nothing to scroll"
        overflow = tab.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        coi = row.locator("td.mono")
        wrap.evaluate("w => { w.scrollLeft = w.scrollWidth; }")
        box, frame = coi.bounding_box(), wrap.bounding_box()
        assert box is not None and frame is not None
        assert box["x"] + box["width"] <= frame["x"] + frame["width"] + 1  # now in view
    finally:
        context.close()


def test_every_page_has_the_site_icon_and_no_request_fails(site: Site, page: Any) -> None:
    lot = collected(site)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    for path in ("/", "/batches", f"/batches/{lot}", f"/batches/{lot}/label", "/api/docs"):
        visit(site, page, path)
        page.wait_for_load_state("networkidle")
        icon = page.locator("link[rel~=icon]").get_attribute("href")
        assert icon is not None and icon.endswith("/static/favicon.svg"), path

    assert failed == []
    svg = page.request.get(site.url("/static/favicon.svg"))
    assert svg.status == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text()
    legacy = page.request.get(site.url("/favicon.ico"))
    assert legacy.status == 200 and legacy.url.endswith("/static/favicon.svg")


def test_a_refused_action_gives_back_what_the_person_typed(site: Site, page: Any) -> None:
    lot = collected(site)
    other = collected(site, "PT-000303")
    visit(site, page, f"/batches/{lot}")
    right = network.scan_code(site.app, lot)

    perform(
        page,
        "dispatch",
        scan=right,
        to_party="MedCourier",
        location="Dock 2",
        temperature_c="400",
    )

    page.locator(".alert-error[data-error=invalid-input]").wait_for()
    form = page.locator("form[data-action=dispatch]")
    typed = {
        name: form.locator(f"[name={name}]").input_value()
        for name in ("scan", "to_party", "location", "temperature_c")
    }
    assert typed == {
        "scan": right,
        "to_party": "MedCourier",
        "location": "Dock 2",
        "temperature_c": "400",
    }
    assert site.state(lot) == "COLLECTED"

    perform(page, "dispatch", scan=network.scan_code(site.app, other), temperature_c="4")

    page.locator(".alert-error[data-error=identity-mismatch]").wait_for()
    form = page.locator("form[data-action=dispatch]")
    assert form.locator("[name=scan]").input_value() == ""  # scan the bag again, do not resend
    assert form.locator("[name=to_party]").input_value() == "MedCourier"
    assert form.locator("[name=temperature_c]").input_value() == "4"

    perform(page, "dispatch", scan=right)

    page.wait_for_selector("[data-testid=state]:text('In transit')")
    assert "MedCourier" in page.locator(".timeline").inner_text()
    assert "Dock 2" in page.locator(".timeline").inner_text()


@pytest.mark.parametrize("viewport", [DESKTOP, TABLET], ids=["desktop", "tablet"])
def test_the_chart_names_every_open_state_in_full(
    site: Site, browser: Any, viewport: dict[str, int]
) -> None:
    states = [reached for _, reached in network.PATH if reached is not BatchState.INFUSED]
    for n, state in enumerate(states):
        network.advance(site.app, network.order(site.app, f"PT-0004{n:02d}"), state)
    held = network.order(site.app, "PT-000499")
    network.act(site.app, held, "hold", reason="deviation")
    context = browser.new_context(viewport=viewport)
    tab = context.new_page()
    try:
        visit(site, tab, "/")
        tab.wait_for_selector("#state-chart .xtick text")
        names = tab.locator("#state-chart .xtick text").all_text_contents()
        clipped = tab.evaluate(
            """() => {
              const svg = document.querySelector('#state-chart .main-svg').getBoundingClientRect();
              return [...document.querySelectorAll('#state-chart .xtick text')]
                .filter(t => {
                  const r = t.getBoundingClientRect();
                  return r.left < svg.left || r.right > svg.right || r.bottom > svg.bottom;
                })
                .map(t => t.textContent);
            }"""
        )
    finally:
        context.close()
    assert names[-1] == "On hold" and len(names) == len(states) + 1
    assert clipped == []


# -- issue 4: sign-in, sessions, CSRF and electronic signatures ---------------------------


def login_through_the_form(site: Site, tab: Any, user_id: str, password: str) -> None:
    tab.locator("[data-testid=login-form] [name=user_id]").fill(user_id)
    tab.locator("[data-testid=login-form] [name=password]").fill(password)
    tab.locator("[data-testid=login-form] button[type=submit]").click()


def test_every_page_sends_a_visitor_without_a_session_to_the_login_page(
    site: Site, page: Any
) -> None:
    lot = collected(site)
    for path in ("/", "/batches", f"/batches/{lot}", f"/batches/{lot}/label"):
        page.goto(site.url(path))
        page.wait_for_url("**/login?next=*")
        assert page.locator("[data-testid=login-form]").is_visible(), path
        assert page.url.endswith("next=" + path.replace("/", "%2F")), page.url
    refused = page.request.post(
        site.url(f"/batches/{lot}/actions/dispatch"), data={"scan": "x"}, max_redirects=0
    )
    assert refused.status == 303 and "/login?next=" in refused.headers["location"]
    assert site.state(lot) == "COLLECTED"
    for path in ("/login", "/static/app.css", "/favicon.ico"):
        assert page.request.get(site.url(path)).status == 200, path


def test_sign_in_through_the_form_then_act_as_that_person(site: Site, page: Any) -> None:
    lot = collected(site)
    page.goto(site.url(f"/batches/{lot}"))
    page.wait_for_url("**/login?next=*")

    login_through_the_form(site, page, "coordinator.tc", "not the password")
    error = page.get_by_test_id("login-error")
    error.wait_for()
    assert "unknown user id or wrong password" in error.inner_text()

    login_through_the_form(site, page, "coordinator.tc", network.PASSWORD)
    page.wait_for_url(site.url(f"/batches/{lot}"))
    who = page.get_by_test_id("who").inner_text()
    assert "Cora Ordinator" in who and "Coordinator" in who
    cookie = next(c for c in page.context.cookies() if c["name"] == "v2v_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert page.locator("[name=actor]").count() == 0  # no "Performed by": it is the session
    # A coordinator sees the dispatch, not what QA or the plant do.
    assert page.locator("form[data-action=dispatch]").count() == 1
    assert page.locator("form[data-action=hold]").count() == 0

    perform(page, "dispatch", scan=network.scan_code(site.app, lot))

    page.wait_for_selector("[data-testid=state]:text('In transit')")
    assert "recorded by Cora Ordinator" in page.get_by_test_id("outcome").inner_text()
    assert site.state(lot) == "IN_TRANSIT"
    assert "coordinator.tc" in page.locator("table.audit tbody tr").first.inner_text()


def test_a_wrong_csrf_token_is_refused_and_changes_nothing(site: Site, page: Any) -> None:
    lot = collected(site)
    visit(site, page, f"/batches/{lot}")
    form = page.locator("form[data-action=dispatch]")
    form.locator("[name=csrf_token]").evaluate("e => e.value = 'forged'")
    page.locator("body").evaluate(
        "b => b.setAttribute('hx-headers', JSON.stringify({'X-CSRF-Token': 'forged'}))"
    )

    perform(page, "dispatch", scan=network.scan_code(site.app, lot))

    flash = page.locator("#flash[data-status='403']")
    flash.wait_for()
    assert "security token (CSRF)" in flash.inner_text()
    assert "Nothing was changed" in flash.inner_text()
    assert site.state(lot) == "COLLECTED"

    # Without htmx, and with no token at all: the same refusal, as a page.
    response = page.request.post(
        site.url(f"/batches/{lot}/actions/dispatch"),
        form={"scan": network.scan_code(site.app, lot)},
    )
    assert response.status == 403 and "security token (CSRF)" in response.text()
    assert site.state(lot) == "COLLECTED"


def qc_pending(site: Site) -> str:
    lot = network.order(site.app)
    network.advance(site.app, lot, BatchState.QC_PENDING)
    network.pass_release_qc(site.app, lot)
    return lot


def test_a_qp_release_with_a_signature_shows_the_signature_beside_its_record(
    site: Site, page: Any
) -> None:
    lot = qc_pending(site)
    visit(site, page, f"/batches/{lot}", "qp.cp1")
    form = page.locator("form[data-action=release]")
    block = form.get_by_test_id("signature-block")
    assert "Signature — released" in block.locator("legend").inner_text()
    assert block.locator("[name=signature_user_id]").count() == 1  # first signature

    perform(
        page,
        "release",
        reason="all QC results within specification",
        signature_user_id="qp.cp1",
        signature_password=network.PASSWORD,
    )

    page.wait_for_selector("[data-testid=state]:text('Released')")
    assert site.state(lot) == "RELEASED"
    signature = page.locator("table.audit tbody tr").first.get_by_test_id("signature")
    text = signature.inner_text()
    assert "released" in text and "Dr Kim Lee" in text and "2026-03-02" in text
    assert "no longer matches" not in text
    # The signature of the QA acceptance is shown beside its own record too.
    assert "Quinn Assurance" in page.locator("table.audit").inner_text()


def test_a_signature_with_a_wrong_password_is_refused_with_a_message(site: Site, page: Any) -> None:
    lot = qc_pending(site)
    visit(site, page, f"/batches/{lot}", "qp.cp1")

    perform(
        page,
        "release",
        reason="all QC results within specification",
        signature_user_id="qp.cp1",
        signature_password="not my password",
    )

    alert = page.locator(".alert-error[data-error=signature-refused]")
    alert.wait_for()
    assert "signature refused: wrong password" in alert.inner_text()
    assert "Nothing was changed" in alert.inner_text()
    assert site.state(lot) == "QC_PENDING"
    form = page.locator("form[data-action=release]")
    assert form.locator("[name=signature_password]").input_value() == ""  # never sent back
    assert form.locator("[name=reason]").input_value() == "all QC results within specification"


def test_sign_out_ends_the_session(site: Site, page: Any) -> None:
    lot = collected(site)
    signed = sign_in(site, page, "coordinator.tc")
    page.goto(site.url(f"/batches/{lot}"))

    page.get_by_test_id("who").locator("button").click()

    page.wait_for_url("**/login?signed_out=1")
    assert page.get_by_test_id("signed-out").is_visible()
    with pytest.raises(AuthenticationFailed):
        auth.resolve_token(site.app.uow(), signed.token, kinds=("session",))
    # The old cookie, replayed, no longer opens a page.
    page.context.add_cookies([{"name": "v2v_session", "value": signed.token, "url": site.base}])
    page.goto(site.url("/batches"))
    page.wait_for_url("**/login?next=*")


def test_an_idle_session_ends_and_an_htmx_action_is_sent_to_the_login_page(
    site: Site, page: Any
) -> None:
    lot = collected(site)
    visit(site, page, f"/batches/{lot}")
    site.clock.advance(timedelta(hours=1))  # past the idle timeout

    perform(page, "dispatch", scan=network.scan_code(site.app, lot))

    page.wait_for_url("**/login?next=*")
    assert site.state(lot) == "COLLECTED"
    assert "ended after a time without activity" in page.get_by_test_id("login-ended").inner_text()
    # Signed out, the top bar offers nothing that would only lead back here.
    assert page.locator("header nav").count() == 0
    assert page.get_by_test_id("who").count() == 0


def test_an_administrator_sees_an_alert_when_an_account_is_locked(site: Site, page: Any) -> None:
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            auth.sign_in(site.app.uow(), user_id="qa2.cp1", password="wrong", kind="session")

    visit(site, page, "/", "admin")

    alert = page.get_by_test_id("locked-alert")
    assert "1 account locked" in alert.inner_text() and "qa2.cp1" in alert.inner_text()
    visit(site, page, "/", "coordinator.tc")
    assert page.get_by_test_id("locked-alert").count() == 0


def test_a_qp_is_offered_a_release_only_at_the_sites_in_their_scope(site: Site, page: Any) -> None:
    admin = network.people_of(site.app).admin.actor
    people.create_user(
        site.app.uow(), admin, user_id="qp.elsewhere", full_name="Dr Else Where", roles=["qp"],
        sites="TC1", password=network.PASSWORD, must_change_password=False,
    )  # fmt: skip
    lot = network.order(site.app)
    network.advance(site.app, lot, BatchState.QC_PENDING)

    visit(site, page, f"/batches/{lot}", "qp.elsewhere")
    assert page.locator("form[data-action=release]").count() == 0  # a release is the plant's
    assert page.locator("form[data-action=hold]").count() == 1  # a hold: centre or plant

    visit(site, page, f"/batches/{lot}", "qp.cp1")
    assert page.locator("form[data-action=release]").count() == 1
