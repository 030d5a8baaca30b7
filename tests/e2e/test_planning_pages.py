"""The planning page in real headless Chromium: a run started from the form, its progress,
its figures drawn, the same figures as the service gives, and a scenario file with problems
sent back to the form naming each place."""

from __future__ import annotations

import json
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import network
from tests.e2e.browser import TABLET, Site
from tests.e2e.test_pages import sign_in, visit
from vein2vein.asgi import create_app
from vein2vein.services import auth, planning
from vein2vein.services.app import App
from vein2vein.services.planning_runs import PlanningRuns

pytestmark = pytest.mark.browser

PLANNER = "operator.cp1"  # planning needs no role: anyone signed in may plan
QUICK = {"replications": "2", "seed": "4", "years": "0.25"}


def run_from_the_form(page: Any, kind: str, **fields: str) -> None:
    form = page.locator(f"[data-testid=form-{kind}]")
    for name, value in {**QUICK, **fields}.items():
        target = form.locator(f"[name={name}]")
        if target.evaluate("e => e.tagName") == "SELECT":
            target.select_option(value)
        else:
            target.fill(value)
    form.locator(f"[data-testid=run-{kind}]").click()
    page.wait_for_selector("[data-testid=json-link], [data-testid=problem]", timeout=120_000)


def drawn(page: Any, holder: str) -> bool:
    return bool(page.locator(f"[data-testid={holder}] .main-svg").count())


def test_a_simulation_from_the_page_draws_its_figures_with_the_services_figures(
    site: Site, page: Any
) -> None:
    visit(site, page, "/planning", PLANNER)
    assert page.locator("nav a[aria-current=page]").inner_text() == "Planning"
    run_from_the_form(page, "simulate", example_a="short-process")
    direct = planning.replicate(planning.open_scenario("short-process"), replications=2,
                                seed=4, years=0.25, workers=1)  # fmt: skip
    assert page.locator("[data-testid=run-title]").inner_text() == direct.scenario
    assert page.locator("[data-testid=state]").inner_text() == "finished"
    for holder in ("histogram", "utilisation", "cost"):
        assert drawn(page, holder), f"the {holder} figure is not drawn"
    rows = page.locator("[data-testid=metrics] tr[data-metric=vein_to_vein_median] td")
    assert rows.nth(1).inner_text() == f"{direct.estimates['vein_to_vein_median'].mean:.1f}"
    assert page.locator("[data-testid=each-run] tbody tr").count() == 2
    # the downloaded figures are the service's, key for key
    href = page.locator("[data-testid=json-link]").get_attribute("href")
    downloaded = page.request.get(href if href.startswith("http") else site.url(href))
    assert downloaded.headers["content-disposition"].startswith("attachment;")
    assert json.loads(downloaded.body()) == json.loads(json.dumps(direct.as_json()))
    # the run is listed on the planning page
    page.goto(site.url("/planning"))
    assert page.locator("[data-testid=runs] tbody tr").count() == 1
    assert "finished" in page.locator("[data-testid=runs]").inner_text()


def test_a_comparison_a_capacity_map_and_a_ceiling_run_from_the_page(site: Site, page: Any) -> None:
    visit(site, page, "/planning", PLANNER)
    run_from_the_form(page, "compare", example_a="central-plant", example_b="rapid-sterility")
    table = page.locator("[data-testid=comparison]").inner_text()
    assert "Vein-to-vein p90 (days)" in table and "Bottleneck" in table
    assert all(drawn(page, h) for h in ("histogram", "utilisation", "cost"))

    page.goto(site.url("/planning"))
    run_from_the_form(page, "sweep", axis_a="demand=0.5,2", axis_b="devices:CP1=10,20")
    assert drawn(page, "capacity-map")
    assert page.locator("[data-testid=cells] tbody tr").count() == 4
    # coloured around a target, the same map is drawn again
    page.locator("[data-testid=map-target]").fill("40")
    page.locator("[data-testid=map-target]").press("Enter")
    page.wait_for_selector("[data-testid=capacity-map] .main-svg")
    assert "target=40" in page.url
    zmin, zmax = page.evaluate(
        "(() => { const d = document.querySelector('[data-testid=capacity-map]').data[0];"
        " return [d.zmin, d.zmax]; })()"
    )
    assert (zmin + zmax) / 2 == pytest.approx(40)
    # a target that is not a number of days is named beside its field; the map stays
    page.locator("[data-testid=map-target]").fill("-5")
    page.locator("[data-testid=map-target]").press("Enter")
    assert (
        "target p90 -5.0: expected a number of days > 0"
        in page.locator("[data-testid=problem]").inner_text()
    )
    assert drawn(page, "capacity-map")

    page.goto(site.url("/planning"))
    run_from_the_form(page, "ceiling", target="40", replications="1")
    assert page.locator("[data-testid=ceiling]").inner_text().startswith("Capacity ceiling: ")
    assert drawn(page, "ceiling-search")
    assert page.locator("[data-testid=tried] tbody tr").count() >= 2
    href = page.locator("[data-testid=json-link]").get_attribute("href")
    found = json.loads(page.request.get(href).body())
    assert found["scenario"] == planning.open_scenario("central-plant").name
    assert found["capacity_ceiling"]["met"] is True
    assert found["capacity_ceiling"]["base_patients_per_year"] == 450

    # a target no demand meets is said plainly, in red, not as a ceiling of 0
    page.goto(site.url("/planning"))
    run_from_the_form(page, "ceiling", target="3", replications="1")
    verdict = page.locator("[data-testid=ceiling]")
    assert verdict.inner_text().startswith("The target is not met at any demand tried")
    assert "verdict-bad" in (verdict.get_attribute("class") or "")


def test_a_scenario_file_with_problems_comes_back_to_the_form_naming_each_place(
    site: Site, page: Any, tmp_path: Path
) -> None:
    visit(site, page, "/planning", PLANNER)
    example = resources.files("vein2vein.examples") / "scenario" / "central-plant.yaml"
    broken = (
        example.read_text("utf-8")
        .replace("count: 20", "count: 0")
        .replace("schema_version: 1\nname:", "schema_version: 1\nnmae: typo\nname:")
    )
    path = tmp_path / "my-network.yaml"
    path.write_text(broken, "utf-8")
    form = page.locator("[data-testid=form-simulate]")
    form.locator("[data-testid=file-a]").set_input_files(str(path))
    with page.expect_response(lambda r: r.url.endswith("/planning/runs")) as answer:
        form.locator("[data-testid=run-simulate]").click()
    assert answer.value.status == 422
    problem = page.locator("[data-testid=form-simulate] [data-testid=problem]").inner_text()
    assert "my-network.yaml: 2 problem(s)" in problem
    assert "sites.CP1.devices.count" in problem and "nmae" in problem
    assert "chosen before must be chosen again" in page.locator("#simulate").inner_text()
    assert page.locator("[data-testid=runs]").count() == 0  # nothing was queued

    # the file put right runs, under the name it gives itself
    path.write_text(
        example.read_text("utf-8").replace(
            "name: Central plant, automated closed devices", "name: My network"
        ),
        "utf-8",
    )
    page.goto(site.url("/planning"))
    form = page.locator("[data-testid=form-simulate]")
    form.locator("[data-testid=file-a]").set_input_files(str(path))
    form.locator("[data-testid=replications]").fill("1")
    form.locator("[data-testid=years]").fill("0.25")
    form.locator("[data-testid=run-simulate]").click()
    page.wait_for_selector("[data-testid=json-link]", timeout=120_000)
    assert page.locator("[data-testid=run-title]").inner_text() == "My network"


def test_bad_settings_come_back_to_the_form_with_what_was_typed(site: Site, page: Any) -> None:
    visit(site, page, "/planning", PLANNER)
    form = page.locator("[data-testid=form-sweep]")
    form.locator("[data-testid=axis-b]").fill("devices:XX=1,2")
    form.locator("[data-testid=replications]").fill("2")
    form.locator("[data-testid=run-sweep]").click()
    problem = page.locator("[data-testid=form-sweep] [data-testid=problem]").inner_text()
    assert "'devices:XX': not one a sweep can vary (these are: demand, devices:CP1)" in problem
    assert page.locator("[data-testid=form-sweep] [data-testid=axis-b]").input_value() == (
        "devices:XX=1,2"
    )
    assert page.locator("[data-testid=form-sweep] [data-testid=replications]").input_value() == "2"
    form = page.locator("[data-testid=form-simulate]")
    form.locator("[data-testid=replications]").fill("500")
    form.locator("[data-testid=run-simulate]").click()
    problem = page.locator("[data-testid=form-simulate] [data-testid=problem]").inner_text()
    assert "500 simulations; a run from the page does at most 400" in problem
    assert page.locator("[data-testid=runs]").count() == 0


def test_an_example_can_be_read_and_a_run_is_its_owners_alone(site: Site, page: Any) -> None:
    visit(site, page, "/planning", PLANNER)
    page.locator("[data-testid=examples] a", has_text="hub-and-spoke.yaml").click()
    assert "schema_version: 1" in page.locator("body").inner_text()
    page.goto(site.url("/planning"))
    run_from_the_form(page, "simulate", replications="1")
    mine = page.url.split("#")[0]
    sign_in(site, page, "qc.cp1")
    answer = page.goto(mine)
    assert answer.status == 404
    assert "not one of yours on this server" in page.locator("body").inner_text()


def _signed_in_client(app: App, user_id: str) -> TestClient:
    client = TestClient(create_app(app))
    signed = auth.sign_in(app.uow(), user_id=user_id, password=network.PASSWORD, kind="session")
    client.cookies.set("v2v_session", signed.token)
    return client


def test_the_run_page_shows_progress_until_the_run_ends_then_reloads(sqlite_app: App) -> None:
    network.small_network(sqlite_app)
    release = threading.Event()
    with _signed_in_client(sqlite_app, PLANNER) as client:
        runs: PlanningRuns = client.app.state.planning_runs  # type: ignore[attr-defined]

        def slow(progress: Any) -> object:
            progress(3, 10)
            release.wait(30)
            return None

        blocking = runs.submit(kind="simulate", title="slow", owner=PLANNER, settings={},
                               total=10, job=slow)  # fmt: skip
        waiting = runs.submit(kind="simulate", title="next", owner=PLANNER, settings={},
                              total=1, job=lambda progress: None)  # fmt: skip
        while blocking.done < 3:
            threading.Event().wait(0.01)
        page = client.get(f"/planning/runs/{blocking.id}")
        assert page.status_code == 200 and "3 of 10 simulations done" in page.text
        # the run's thread sets its result a moment before its state says finished: a run
        # in between is drawn as still running (the page reads the state once, first)
        blocking.result = planning.replicate(
            planning.open_scenario("central-plant"), replications=1, years=0.1, workers=1
        )
        still = client.get(f"/planning/runs/{blocking.id}")
        assert still.status_code == 200 and 'data-testid="progress"' in still.text
        assert 'hx-trigger="every 1s"' in page.text
        queued = client.get(f"/planning/runs/{waiting.id}/progress")
        assert "Queued" in queued.text and "1 run ahead of it" in queued.text
        release.set()
        while waiting.state != "finished":
            threading.Event().wait(0.01)
        ended = client.get(f"/planning/runs/{blocking.id}/progress")
        assert ended.status_code == 200 and ended.headers["HX-Refresh"] == "true"
        # after a restart the run is gone: the poll says so in place, and stops
        gone = client.get("/planning/runs/0123456789abcdef/progress")
        assert gone.status_code == 200 and 'data-testid="gone"' in gone.text
        assert "no longer on the server" in gone.text and "hx-trigger" not in gone.text


def test_at_tablet_width_the_planning_pages_do_not_scroll_sideways(
    site: Site, browser: Any
) -> None:
    context = browser.new_context(viewport=TABLET)
    tab = context.new_page()
    try:
        visit(site, tab, "/planning", PLANNER)
        pages = ["/planning"]
        for kind, fields in (
            ("simulate", {"replications": "1"}),
            ("compare", {"replications": "1"}),
            ("sweep", {"replications": "1", "axis_a": "demand=1,2", "axis_b": "devices:CP1=16,20"}),
            ("ceiling", {"replications": "1"}),
        ):
            tab.goto(site.url("/planning"))
            run_from_the_form(tab, kind, **fields)
            pages.append(tab.url.split("#")[0])
        tab.goto(site.url("/planning"))
        tab.locator("[data-testid=run-vectors]").click()
        tab.wait_for_selector("[data-testid=json-link]", timeout=120_000)
        pages.append(tab.url.split("#")[0])
        pages.append("/planning")  # now with the runs listed
        for path in pages:
            tab.goto(path if path.startswith("http") else site.url(path))
            tab.wait_for_timeout(300)  # Plotly draws after the page has loaded
            overflow = tab.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} is {overflow}px wider than a 768px tablet"
    finally:
        context.close()


def test_a_vector_plan_from_the_page_recommends_a_scale_and_draws_its_timeline(
    site: Site, page: Any, tmp_path: Path
) -> None:
    visit(site, page, "/planning", PLANNER)
    form = page.locator("[data-testid=form-vectors]")
    form.locator("[data-testid=example-v]").select_option("aav-systemic")
    form.locator("[data-testid=run-vectors]").click()
    page.wait_for_selector("[data-testid=json-link], [data-testid=problem]", timeout=120_000)
    assert page.locator("[data-testid=run-title]").inner_text() == "Systemic AAV, 1e14 vg/kg"
    verdict = page.locator("[data-testid=recommendation]")
    assert verdict.inner_text().startswith("Recommended: 2000 L batches")
    # the plan's first milestones were due before its today: amber, and said why
    assert "verdict-warn" in (verdict.get_attribute("class") or "")
    late = page.locator("[data-testid=late]").inner_text()
    assert "the registrational milestones (book the slot by 2026-06-05" in late
    assert page.locator("[data-testid=scales] tbody tr").count() == 4
    assert page.locator("[data-testid=milestones] tbody tr").count() == 2
    assert "late" in page.locator("[data-testid=milestones]").inner_text()
    for holder in ("scales", "timeline", "stock"):
        assert drawn(page, holder), f"the {holder} figure is not drawn"
    # another scale's timeline, from the table
    page.locator("[data-testid=scales] a", has_text="500 L").click()
    page.wait_for_selector("[data-testid=timeline] .main-svg")
    assert page.locator("#h-timeline").inner_text() == "Timeline at 500 L"
    assert page.locator("tr.pl-shown").get_attribute("data-scale") == "500"
    href = page.locator("[data-testid=json-link]").get_attribute("href")
    figures = json.loads(page.request.get(href).body())
    assert figures["recommended_scale_litres"] == 2000 and figures["unit"] == "vg"

    # a plan file with a problem comes back to its form, naming the place
    text = (resources.files("vein2vein.examples") / "vectors" / "cart-lv.yaml").read_text("utf-8")
    path = tmp_path / "ours.yaml"
    path.write_text(text.replace("moi: 5", "moi: -5"), "utf-8")
    page.goto(site.url("/planning"))
    form = page.locator("[data-testid=form-vectors]")
    form.locator("[data-testid=file-v]").set_input_files(str(path))
    form.locator("[data-testid=run-vectors]").click()
    problem = page.locator("[data-testid=form-vectors] [data-testid=problem]").inner_text()
    assert "ours.yaml: 1 problem(s): modality.moi: must be > 0" in problem
