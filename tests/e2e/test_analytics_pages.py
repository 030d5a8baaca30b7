"""The analytics pages in real headless Chromium, on a history made through the services.

One history for the module (building it takes a while): a second plant, CP2, made 30
batches whose post-thaw viability drops by about 8 points from the 21st on (still inside the
70 % specification); CP1 made 8 batches. Every batch's apheresis differs, and batches from
apheresis with fewer CD3+ cells tend to miss their dose.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import network
from tests.conftest import settings_for
from tests.e2e.browser import TABLET, Site
from tests.e2e.live_server import serving
from tests.e2e.test_pages import sign_in, visit
from vein2vein.domain.batch import Action, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.formats.mbr import parse_mbr
from vein2vein.services import analytics, comparability, execution, materials, people
from vein2vein.services import batches as svc
from vein2vein.services.app import App
from vein2vein.services.auth import Signing

pytestmark = pytest.mark.browser

PRODUCT = "CART-CD19"
SHIFTED = 30  # batches at CP2; its viability drops from batch SHIFT_FROM + 1 on
SHIFT_FROM = 20
OTHERS = 8  # batches at CP1
CHART = f"/analytics/chart?product={PRODUCT}&stage=release&attribute=viability&site=CP2"
MAKERS = ("operator.cp1", "operator2.cp1", "logistics.cp1", "qp.cp1", "qc.cp1", "qc2.cp1")


def _equipment(site: str, kind: str) -> str:
    """The plant's piece of equipment of a class (CP1's are the small network's)."""
    ours = network.equipment_for(kind)
    return ours.replace("EQ-", "EQ2-") if site == "CP2" else ours


def _second_plant(app: App) -> None:
    """CP2, a plant with its own equipment; CP1's staff work at both."""
    crew = network.people_of(app)
    admin = crew.admin.actor
    svc.register_site(app.uow(), code="CP2", name="Second plant", kind="manufacturing-facility",
                      fin="G1235", by=admin)  # fmt: skip
    for user_id in (*MAKERS, "qa.cp1"):
        people.update_user(app.uow(), admin, user_id, reason="also at CP2", sites="CP1,CP2")
        crew.identities[user_id] = network.sign_in(app, user_id)
    classes = {
        step.equipment_class
        for step in parse_mbr(network.example_text(network.EXAMPLES[0]), "mbr").steps
        if step.equipment_class
    }
    for kind in sorted(classes):
        materials.register_equipment(
            app.uow(), admin, equipment_id=_equipment("CP2", kind), equipment_class=kind,
            site="CP2", description=f"CP2 {kind}",
            calibration_due=app.clock.now().date() + timedelta(days=365),
        )  # fmt: skip


def _record(app: App, lot: str, site: str, *, final_cells: float, dose: float) -> None:
    """Record every step of the batch record; the harvest as given (a dose below the normal
    range needs a comment)."""
    crew = network.people_of(app)
    process = network.bound_process(app, lot)
    for step in process.steps:
        typed = {p.name: network.nominal(p, process.process) for p in step.parameters
                 if p.formula is None}  # fmt: skip
        comments = None
        if step.id == "harvest_formulation":
            typed |= {"final_cells": final_cells, "dose_per_kg": dose}
            comments = {"dose_per_kg": "poor expansion"} if dose < 1.5 else None
        done = execution.record_step(
            app.uow(), lot, step.id, typed, by=crew["operator.cp1"],
            scan=network.scan_code(app, lot), comments=comments,
            material_lots=[network.material_lot(m.type) for m in step.materials],
            equipment=_equipment(site, step.equipment_class) if step.equipment_class else None,
        )  # fmt: skip
        if step.verification:
            execution.verify_step(
                app.uow(), lot, step.id, done.entry.occurrence, by=crew["operator2.cp1"],
                signing=Signing(network.PASSWORD, "operator2.cp1"),
            )  # fmt: skip


def _batch(app: App, k: int, site: str, rng: np.random.Generator, *, viability: float) -> None:
    """One patient's batch, from the order to its verified release results."""
    age = int(rng.integers(25, 80))
    placed = svc.place_order(
        app.uow(), pseudonym=f"PT-{k:06d}", year_of_birth=2026 - age,
        weight_kg=float(rng.integers(50, 100)), product=PRODUCT, treatment_centre="TC1",
        manufacturing_site=site, by=network.people_of(app).coordinator.actor,
    )  # fmt: skip
    lot = placed.lot
    network.advance(app, lot, BatchState.RECEIVED)
    cd3 = float(rng.uniform(20, 70))
    network.pass_acceptance(
        app, lot, cd3_percent=f"{cd3:.1f}", viability=f"{rng.uniform(82, 99):.0f}",
        cd3_cells=f"{rng.uniform(1.2, 5.0):.2f}",
    )  # fmt: skip
    network.act(app, lot, Action.ACCEPT, reason="meets the acceptance criteria")
    network.advance(app, lot, BatchState.IN_PROCESS)
    # Fewer CD3+ cells, poorer expansion; the poorest miss the dose (not always: chance).
    failed = rng.random() < 0.05 + 0.8 / (1 + math.exp((cd3 - 35) / 4))
    final_cells = float(rng.uniform(2.5, 4.0) if failed else rng.uniform(6, 16))
    _record(app, lot, site, final_cells=round(final_cells, 2), dose=1.2 if failed else 2.0)
    network.advance(app, lot, BatchState.QC_PENDING)
    network.pass_release_qc(
        app, lot, viability=f"{viability:.0f}", car_percent=f"{rng.normal(42, 5):.0f}",
        dose=f"{rng.normal(1.5, 0.2):.2f}", vcn=f"{rng.normal(2.1, 0.3):.1f}",
        endotoxin=f"{rng.uniform(0.1, 0.4):.2f}",
        potency=", ".join(f"{rng.normal(1250, 80):.0f}" for _ in range(3)),
    )  # fmt: skip


def build_history(app: App, clock: FixedClock) -> None:
    """38 batches, one every 12 hours: 30 at CP2 (viability down by about 8 points after the
    20th), 8 at CP1 (every fifth, from the third)."""
    network.small_network(app)
    _second_plant(app)
    rng = np.random.default_rng(11)
    at_cp2 = 0
    for k in range(SHIFTED + OTHERS):
        clock.advance(timedelta(hours=12))
        if k % 5 == 2:
            _batch(app, k, "CP1", rng, viability=float(rng.normal(89, 2)))
            continue
        mean = 89.0 if at_cp2 < SHIFT_FROM else 81.0
        _batch(app, k, "CP2", rng, viability=float(rng.normal(mean, 2)))
        at_cp2 += 1


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path_factory.mktemp('analytics') / 'v2v.sqlite3'}"
    clock = FixedClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    app = App.connect(url, clock=clock, settings=settings_for(url))
    app.upgrade()
    build_history(app, clock)
    with serving(app) as base:
        yield Site(base, app, clock)
    app.dispose()


def _drawn(page: Any, holder: str) -> dict[str, list[Any]]:
    """The points Plotly drew in ``holder``, per trace name: [x, y, hover text]."""
    page.wait_for_selector(f"#{holder} .main-svg")
    traces = page.evaluate(
        f"""() => document.getElementById({holder!r}).data.map(
            t => [t.name || '', t.x || [], t.y || [], t.text || []])"""
    )
    return {name: [x, y, text] for name, x, y, text in traces}


def _overflow(page: Any) -> int:
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def test_the_signals_put_the_shifted_viability_first_as_a_shift_going_on_now(
    history: Site, page: Any
) -> None:
    visit(history, page, f"/analytics?product={PRODUCT}", "qa.cp1")

    first = page.get_by_test_id("signals").locator("tbody tr").first
    assert first.get_attribute("data-site") == "CP2"
    assert first.get_attribute("data-stage") == "release"
    assert first.get_attribute("data-attribute") == "viability"
    assert first.get_attribute("data-ongoing") == "yes"
    found = analytics.signals(history.app, network.people_of(history.app).qa.actor, PRODUCT)[0]
    text = first.inner_text()
    assert f"{found.recent} — a shift now" in text
    assert "WE4" in text and f"{found.points}" in text and found.first_lot in text
    # CP1's viability is stable: it is not among the signals.
    assert page.locator("tr[data-site=CP1][data-attribute=viability]").count() == 0
    first.get_by_test_id("signal-link").click()
    page.wait_for_url("**/analytics/chart?*site=CP2*")
    assert page.get_by_test_id("chart-title").inner_text() == "Viability · Release · CP2"


def test_the_chart_marks_the_batches_that_break_run_rules_and_names_the_rules(
    history: Site, page: Any
) -> None:
    visit(history, page, CHART, "qa.cp1")

    drawn = _drawn(page, "control-chart")
    red_x, _, red_text = drawn["Breaks a run rule"]
    assert SHIFTED in red_x  # the latest batch is part of the signal
    # A window of a rule may reach back from the first shifted batch (WE4's is 8 long);
    # nothing earlier is flagged.
    assert min(red_x) > SHIFT_FROM - 8
    assert sum(1 for x in red_x if x > SHIFT_FROM) >= 8
    assert any("<b>Breaks WE" in t and "WE4" in t and "CP2-2026-" in t for t in red_text)
    centre = drawn["Centre line"][1]
    lower = drawn["Lower control limit"][1]
    assert 86 < centre[0] < 92 and lower[0] < centre[0]
    assert drawn["Specification ≥ 70 %"][1][0] == 70
    verdict = page.get_by_test_id("verdict")
    assert verdict.get_attribute("data-verdict") == "shift"
    assert "the process has probably shifted" in verdict.inner_text()
    assert int(page.get_by_test_id("in-recent").inner_text()) >= 8
    we4 = page.get_by_test_id("violations").locator("tr[data-rule=WE4]")
    assert "8 consecutive points on the same side of the center line" in we4.inner_text()
    page.get_by_test_id("capability-link").click()
    page.wait_for_url("**/analytics/capability?*attribute=viability*")
    assert "Capability · Viability" in page.get_by_test_id("capability-title").inner_text()
    assert page.locator("[data-testid=indices] tr[data-index=Ppk]").count() == 1
    hist = _drawn(page, "capability-chart")
    assert sum(hist["Batches"][1]) == SHIFTED


def test_qa_leaves_a_batch_out_of_the_limits_only_with_a_reason(history: Site, page: Any) -> None:
    path = f"/analytics/chart?product={PRODUCT}&stage=release&attribute=car_percent&site=CP2"
    visit(history, page, path, "qa.cp1")
    form = page.get_by_test_id("exclude-form")
    choice = form.get_by_test_id("exclude-point").locator("option").nth(3)
    result_id, label = choice.get_attribute("value"), choice.inner_text()
    lot = label.split(": ")[1].split(",")[0]

    # An empty reason (the browser's own check switched off) is refused in the form.
    form.get_by_test_id("exclude-reason").evaluate("e => e.required = false")
    form.get_by_test_id("exclude-point").select_option(result_id)
    form.locator("button[type=submit]").click()
    refused = page.locator("#baseline [data-testid=problem]")
    assert refused.get_attribute("data-error") == "invalid-input"
    assert "at least 10 characters" in refused.inner_text()
    assert page.get_by_test_id("excluded").count() == 0

    reason = "flow cytometer misaligned that day (DEV-2026-004)"
    form = page.get_by_test_id("exclude-form")
    form.get_by_test_id("exclude-point").select_option(result_id)
    form.get_by_test_id("exclude-reason").fill(reason)
    form.locator("button[type=submit]").click()

    notice = page.get_by_test_id("notice")
    assert f"Batch {lot} (result {result_id}) is left out of the limits" in notice.inner_text()
    assert lot in page.get_by_test_id("excluded").inner_text()
    assert reason in page.get_by_test_id("excluded").inner_text()
    hollow = _drawn(page, "control-chart")["Left out of the baseline"]
    assert hollow[0] == [3] and reason in hollow[2][0]
    series = analytics.series(
        history.app, network.people_of(history.app).qa.actor, product=PRODUCT,
        stage="release", attribute="car_percent", site="CP2",
    )  # fmt: skip
    assert series.points.set_index("lot").loc[lot, "excluded"] == reason


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return " ".join(done.stdout.split())


def test_the_comparison_concludes_per_attribute_and_gives_its_report_as_a_pdf(
    history: Site, page: Any, tmp_path: Path
) -> None:
    visit(history, page, f"/analytics/compare?product={PRODUCT}&reference=CP1&test=CP2", "qa.cp1")

    rows = page.get_by_test_id("comparison").locator("tbody tr")
    assert rows.count() == 6
    for k in range(rows.count()):
        said = rows.nth(k).get_by_test_id("conclusion").inner_text()
        assert said in {"✓ equivalent", "✗ not shown equivalent"}
    viability = page.locator("tr[data-attribute=viability]")
    assert viability.get_attribute("data-conclusion") == "not shown equivalent"
    assert "quality range failed" in viability.get_by_test_id("reason").inner_text()
    assert "Viability" in page.get_by_test_id("overall").inner_text()
    assert "1.5 × reference SD" in page.get_by_test_id("method").inner_text()
    page.wait_for_selector("#compare-chart .main-svg")
    strips = page.evaluate("document.getElementById('compare-chart').data.length")
    assert strips == 2 * 6  # each attribute's reference and test values

    link = page.get_by_test_id("pdf-link").get_attribute("href")
    response = page.request.get(link)
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    pdf = response.body()
    assert pdf.startswith(b"%PDF")
    if shutil.which("pdftotext") is None:
        return  # poppler-utils missing: the bytes are a PDF, the text cannot be read
    text = _pdf_text(pdf, tmp_path)
    assert "Comparability report — CP2 against CP1" in text
    assert "NOT SHOWN COMPARABLE" in text and "Viability" in text
    assert "Schuirmann" in text and "α = 0.05" in text and "1.5 × reference SD" in text
    assert "mean ± 3 reference standard deviations" in text
    assert "end of the comparability report" in text


def test_the_outcome_page_names_what_predicts_a_missed_dose_and_what_tightening_would_do(
    history: Site, page: Any
) -> None:
    visit(history, page, f"/analytics/outcome?product={PRODUCT}", "qa.cp1")

    study = comparability.outcome_study(
        history.app, network.people_of(history.app).qa.actor, product=PRODUCT
    )
    summary = page.get_by_test_id("summary").inner_text()
    assert f"{study.batches} batches" in summary and f"{study.failures} failed" in summary
    assert page.get_by_test_id("important").inner_text() == "Apheresis CD3+ of leukocytes"
    terms = page.get_by_test_id("terms")
    assert terms.locator("tbody tr").count() == len(study.model.predictors)
    assert "matters" in terms.locator("tr[data-predictor=sm_cd3_percent]").inner_text()
    table = page.get_by_test_id("tightening").locator("tbody tr")
    assert table.count() == len(study.tightening)
    first = study.tightening[0]
    assert table.first.inner_text().split("\t")[1:3] == [
        str(first.turned_away),
        str(first.failures_avoided),
    ]
    assert "would have turned away" in page.get_by_test_id("tightening-sentence").inner_text()
    bars = _drawn(page, "outcome-chart")["Failed, observed (per fifth of the batches)"]
    assert len(bars[0]) == 5
    stacked = _drawn(page, "tightening-chart")
    assert stacked["Failures avoided"][1] == [r.failures_avoided for r in study.tightening]


@pytest.mark.parametrize(
    ("path", "status", "said"),
    [
        (f"/analytics/chart?product={PRODUCT}&stage=release&attribute=identity", 422,
         "has no such numeric attribute"),
        (f"/analytics/chart?product={PRODUCT}&stage=release&attribute=viability&site=XYZ",
         404, "no verified results of viability (release) for CART-CD19 at XYZ"),
        (f"/analytics/capability?product={PRODUCT}&stage=release&attribute=identity", 422,
         "expected one of viability"),
        (f"/analytics/compare?product={PRODUCT}&reference=CP1&test=XYZ", 422,
         "site 'XYZ': no release results; expected one of CP1, CP2"),
        (f"/analytics/chart?product={PRODUCT}&stage=release&attribute=viability&baseline=x",
         422, "baseline 'x': expected a number"),
    ],
    ids=["non-numeric", "unknown-site", "capability", "compare", "baseline"],
)  # fmt: skip
def test_a_choice_that_cannot_be_charted_is_said_on_the_page_not_as_a_traceback(
    history: Site, page: Any, path: str, status: int, said: str
) -> None:
    response = visit(history, page, path, "qa.cp1")

    assert response is not None and response.status == status
    problem = page.get_by_test_id("problem")
    assert said in problem.inner_text()
    assert page.get_by_test_id("select-form").is_visible()  # another choice is one click away
    assert "Traceback" not in page.content()


def test_an_unknown_product_is_an_error_page(history: Site, page: Any) -> None:
    response = visit(history, page, "/analytics?product=NOPE", "qa.cp1")

    assert response is not None and response.status == 422
    assert "product 'NOPE': no effective specification" in page.locator("main").inner_text()


def test_the_analytics_pages_fit_a_tablet(history: Site, browser: Any) -> None:
    tab = browser.new_context(viewport=TABLET).new_page()
    try:
        for path in (
            f"/analytics?product={PRODUCT}",
            CHART,
            CHART + "&chart=ewma",
            CHART + "&chart=cusum",
            CHART.replace("/chart", "/capability"),
            f"/analytics/compare?product={PRODUCT}&reference=CP1&test=CP2",
            f"/analytics/outcome?product={PRODUCT}",
        ):
            sign_in(history, tab, "qc2.cp1")
            response = tab.goto(history.url(path))
            assert response is not None and response.status == 200, path
            if tab.locator("[data-plot]").count():
                tab.wait_for_selector("[data-plot] .main-svg")
            assert _overflow(tab) <= 0, f"{path} is {_overflow(tab)}px wider than a tablet"
    finally:
        tab.context.close()


def test_the_analytics_need_a_session_and_only_qa_may_exclude_a_point(
    history: Site, page: Any
) -> None:
    page.goto(history.url(CHART))
    page.wait_for_url("**/login?next=*")
    assert "next=%2Fanalytics%2Fchart" in page.url

    visit(history, page, CHART, "coordinator.tc")
    page.wait_for_selector("#control-chart .main-svg")  # everyone may read the chart
    assert page.get_by_test_id("exclude-form").count() == 0
    assert "QA reviewers of the plant may" in page.locator("#baseline").inner_text()
    visit(history, page, CHART, "qc.cp1")
    assert page.get_by_test_id("exclude-form").count() == 0

    visit(history, page, CHART, "qa.cp1")
    assert page.get_by_test_id("exclude-form").is_visible()
