"""The audit trail review page (issue 4 item 5, EU GMP Annex 11 §9) in real headless Chromium:
filter, signatures beside their records, CSV/PDF exports, a QA reviewer's signed review."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests import network
from tests.e2e.browser import DESKTOP, TABLET, Site
from tests.e2e.test_pages import collected, visit
from vein2vein.domain.batch import BatchState
from vein2vein.services import audit_review, queries

pytestmark = pytest.mark.browser

DAY = "2026-03-02"  # the test clock's day (tests/conftest.py)


def released(site: Site, pseudonym: str = "PT-000101") -> str:
    """A batch walked to RELEASED: the QP's release is signed (meaning: released)."""
    lot = network.order(site.app, pseudonym)
    network.advance(site.app, lot, BatchState.RELEASED)
    return lot


def count_of(site: Site, **filt: str) -> int:
    view = audit_review.audit_trail(
        site.app, network.people_of(site.app).qa.actor, audit_review.AuditFilter.parse(**filt)
    )
    return view.total


def filter_by(tab: Any, **fields: str) -> None:
    form = tab.get_by_test_id("audit-filter")
    for name, value in fields.items():
        form.locator(f"[name={name}]").fill(value)
    with tab.expect_navigation():
        form.locator("button[type=submit]").click()


def test_the_audit_pages_send_a_visitor_without_a_session_to_the_login_page(
    site: Site, page: Any
) -> None:
    for path in ("/audit", "/audit?lot=X", "/audit/export.csv", "/audit/export.pdf"):
        page.goto(site.url(path))
        page.wait_for_url("**/login?next=*")
        assert page.locator("[data-testid=login-form]").is_visible(), path
    refused = page.request.post(
        site.url("/audit/reviews"),
        form={"since": DAY, "until": DAY, "comment": "x", "signature_password": "x"},
        max_redirects=0,
    )
    assert refused.status == 303 and "/login?next=" in refused.headers["location"]
    assert audit_review.reviews(site.app, network.people_of(site.app).qa.actor).entries == []


def test_the_top_bar_links_to_the_audit_trail(site: Site, page: Any) -> None:
    visit(site, page, "/batches")
    page.locator(".topbar nav a", has_text="Audit trail").click()
    page.wait_for_url(site.url("/audit"))
    assert page.locator(".topbar nav a[aria-current=page]").inner_text() == "Audit trail"
    assert page.get_by_test_id("audit-count").is_visible()


def test_filtering_by_lot_shows_only_that_batchs_records_and_how_many(
    site: Site, page: Any
) -> None:
    lot = released(site)
    other = collected(site, "PT-000202")
    visit(site, page, "/audit")
    everything = page.locator("#audit-table tbody tr").count()
    assert other in page.locator("#audit-table").inner_text()

    filter_by(page, lot=lot)

    assert parse_qs(urlparse(page.url).query)["lot"] == [lot]  # the URL is the filter
    rows = page.locator("#audit-table tbody tr")
    expected = count_of(site, lot=lot)
    assert rows.count() == expected and 0 < expected < everything
    for text in rows.locator("td:nth-child(3)").all_inner_texts():
        assert lot in text
    assert other not in page.locator("#audit-table").inner_text()
    count = page.get_by_test_id("audit-count").inner_text()
    assert count.startswith(f"{expected} records match") and f"batch {lot}" in count
    assert page.get_by_test_id("audit-truncated").count() == 0
    # Newest first; old → new shows only what changed, readably.
    seqs = [int(s) for s in rows.locator("td.num").all_inner_texts()]
    assert seqs == sorted(seqs, reverse=True)
    release = page.locator("#audit-table tbody tr", has_text="BatchReleased")
    changes = release.locator("td.changes").inner_text()
    assert "state QC_PENDING → RELEASED" in changes
    assert "per SOP" in release.inner_text()  # the reason


def test_a_bad_date_or_an_unknown_lot_is_said_beside_the_filter(site: Site, page: Any) -> None:
    response = visit(site, page, "/audit?lot=CP1-2026-99999")
    assert response is not None and response.status == 422
    assert "no such batch" in page.get_by_test_id("filter-problem").inner_text()
    assert page.get_by_test_id("audit-filter").locator("[name=lot]").input_value() == (
        "CP1-2026-99999"
    )
    visit(site, page, f"/audit?since=2026-03-05&until={DAY}")
    assert "is before since" in page.get_by_test_id("filter-problem").inner_text()


def test_the_release_signature_shows_beside_the_release_record(site: Site, page: Any) -> None:
    lot = released(site)
    visit(site, page, f"/audit?lot={lot}&action=BatchReleased")

    rows = page.locator("#audit-table tbody tr")
    assert rows.count() == 1
    assert page.get_by_test_id("audit-count").inner_text().startswith("1 record match")
    signature = rows.first.get_by_test_id("signature")
    text = signature.inner_text()
    assert "released" in text and "Dr Kim Lee" in text and "qp.cp1" in text and DAY in text
    assert "no longer matches" not in text
    assert "sig-broken" not in (signature.get_attribute("class") or "")
    # The QA acceptance's signature is beside its own record, not the release's.
    visit(site, page, f"/audit?lot={lot}")
    accepted = page.locator("#audit-table tbody tr", has_text="StartingMaterialAccepted")
    assert "Quinn Assurance" in accepted.get_by_test_id("signature").inner_text()
    unsigned = page.locator("#audit-table tbody tr", has_text="TherapyOrdered")
    assert unsigned.get_by_test_id("signature").count() == 0


def test_the_exports_carry_the_same_filter_as_csv_and_pdf(site: Site, page: Any) -> None:
    lot = released(site)
    other = collected(site, "PT-000202")
    visit(site, page, f"/audit?lot={lot}&since={DAY}&until={DAY}")

    csv_link = page.get_by_test_id("export-csv")
    with page.expect_download() as download_info:
        csv_link.click()
    download = download_info.value
    assert download.suggested_filename == f"audit-trail_lot-{lot}_from-{DAY}_to-{DAY}.csv"
    response = page.request.get(csv_link.get_attribute("href"))
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    text = response.text()
    assert Path(download.path()).read_text(encoding="utf-8") == text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:9] == [
        "seq", "at", "actor", "action", "entity_type", "entity_id", "old", "new", "reason",
    ]  # fmt: skip
    assert len(rows) - 1 == count_of(site, lot=lot)
    assert all(row[5] == lot for row in rows[1:])
    assert other not in text
    release = next(row for row in rows if row[3] == "BatchReleased")
    assert "released by Dr Kim Lee (qp.cp1)" in release[9]

    pdf_link = page.get_by_test_id("export-pdf")
    response = page.request.get(pdf_link.get_attribute("href"))
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert f"audit-trail_lot-{lot}_from-{DAY}" in response.headers["content-disposition"]
    body = response.body()
    assert body.startswith(b"%PDF") and len(body) > 2_000
    out = os.environ.get("V2V_SCREENSHOTS")
    if out:
        Path(out, "audit-export.pdf").write_bytes(body)


def test_a_qa_reviewer_records_a_signed_review_of_a_period(site: Site, page: Any) -> None:
    released(site)
    visit(site, page, "/audit", "qa.cp1")
    form = page.get_by_test_id("review-form")
    assert form.locator("button[type=submit]").is_disabled()  # no period yet
    assert form.locator("[name=comment]").is_disabled()
    assert "set since and until" in page.get_by_test_id("review-needs-period").inner_text()

    filter_by(page, since=DAY, until=DAY)
    covered = count_of(site, since=DAY, until=DAY)
    form = page.get_by_test_id("review-form")
    assert form.locator("button[type=submit]").is_enabled()
    assert f"{covered} records" in form.inner_text()
    block = form.get_by_test_id("signature-block")
    assert "Signature — reviewed" in block.locator("legend").inner_text()
    assert block.locator("[name=signature_user_id]").count() == 1  # first signature

    form.locator("[name=comment]").fill("No unexplained changes; all deviations closed.")
    form.locator("[name=signature_user_id]").fill("qa.cp1")
    form.locator("[name=signature_password]").fill("not my password")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()

    problem = page.get_by_test_id("review-problem")
    assert "signature refused: wrong password" in problem.inner_text()
    assert "Nothing was changed" in problem.inner_text()
    assert audit_review.reviews(site.app, network.people_of(site.app).qa.actor).entries == []
    form = page.get_by_test_id("review-form")
    assert form.locator("[name=signature_password]").input_value() == ""  # never sent back
    assert form.locator("[name=comment]").input_value().startswith("No unexplained changes")

    form.locator("[name=signature_user_id]").fill("qa.cp1")
    form.locator("[name=signature_password]").fill(network.PASSWORD)
    covered = count_of(site, since=DAY, until=DAY)  # now with the refused signature's record
    with page.expect_navigation():
        form.locator("button[type=submit]").click()

    done = page.get_by_test_id("review-recorded")
    seq = audit_review.reviews(site.app, network.people_of(site.app).qa.actor).entries[0].seq
    assert f"Review recorded and signed (record {seq})" in done.inner_text()
    assert parse_qs(urlparse(page.url).query)["since"] == [DAY]
    row = page.get_by_test_id("reviews").locator(f"tr[data-seq='{seq}']")
    assert f"{DAY}..{DAY}" in row.inner_text()
    assert "No unexplained changes; all deviations closed." in row.inner_text()
    assert row.locator("td:nth-child(3)").inner_text() == str(covered)
    signature = row.get_by_test_id("signature").inner_text()
    assert "reviewed" in signature and "Quinn Assurance" in signature
    assert "no longer matches" not in signature
    out = os.environ.get("V2V_SCREENSHOTS")
    if out:
        page.screenshot(path=str(Path(out, "audit-reviewed.png")), full_page=True)
    # The session has signed now: the next signature asks for the password only.
    assert page.get_by_test_id("signature-block").locator("[name=signature_user_id]").count() == 0
    # The review is itself a record of the trail, signed beside it.
    visit(site, page, "/audit?action=AuditTrailReviewed", "qa.cp1")
    record = page.locator(f"#audit-{seq}")
    assert "Quinn Assurance" in record.get_by_test_id("signature").inner_text()


def test_a_coordinator_sees_the_trail_and_the_reviews_but_no_review_form(
    site: Site, page: Any
) -> None:
    released(site)
    visit(site, page, f"/audit?since={DAY}&until={DAY}", "coordinator.tc")

    assert page.get_by_test_id("audit-count").is_visible()
    assert page.get_by_test_id("review-form").count() == 0
    assert page.locator("#review").count() == 0
    assert "No review recorded yet" in page.get_by_test_id("reviews").inner_text()
    # Posting the form anyway is refused by the service, and nothing is recorded.
    token = page.locator("form[action$='/logout'] [name=csrf_token]").input_value()
    response = page.request.post(
        site.url("/audit/reviews"),
        form={"csrf_token": token, "since": DAY, "until": DAY, "comment": "x",
              "signature_user_id": "coordinator.tc", "signature_password": network.PASSWORD},
    )  # fmt: skip
    assert response.status == 403 and "Not allowed for your role" in response.text()
    assert audit_review.reviews(site.app, network.people_of(site.app).qa.actor).entries == []


def test_a_review_without_the_csrf_token_is_refused(site: Site, page: Any) -> None:
    visit(site, page, "/audit", "qa.cp1")
    response = page.request.post(
        site.url("/audit/reviews"),
        form={"since": DAY, "until": DAY, "comment": "x", "signature_user_id": "qa.cp1",
              "signature_password": network.PASSWORD},
    )  # fmt: skip
    assert response.status == 403 and "security token (CSRF)" in response.text()
    assert audit_review.reviews(site.app, network.people_of(site.app).qa.actor).entries == []


def test_at_tablet_width_the_audit_page_does_not_scroll_sideways(site: Site, browser: Any) -> None:
    lot = released(site)
    collected(site, "PT-000202")
    out = os.environ.get("V2V_SCREENSHOTS")
    for name, viewport in (("desktop", DESKTOP), ("tablet", TABLET)):
        context = browser.new_context(viewport=viewport)
        tab = context.new_page()
        try:
            for path in (f"/audit?since={DAY}&until={DAY}", f"/audit?lot={lot}"):
                visit(site, tab, path, "qa.cp1")
                overflow = tab.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, f"{path} is {overflow}px wider than the {name} viewport"
            if out:
                tab.screenshot(path=str(Path(out, f"audit-{name}.png")), full_page=True)
        finally:
            context.close()
    assert queries.batch_view(site.app, lot).batch.state == "RELEASED"
