"""The planning page's figures (web/_planning_figures.py) say what the results say: every
patient in the histogram, the bottleneck in red, the map coloured around its target, the
ceiling's search at the demands it tried."""

from __future__ import annotations

import pytest

from vein2vein.planning.ceiling import CapacityCeiling, Tried
from vein2vein.services import planning
from vein2vein.web import _planning_figures as fig

QUICK = {"replications": 2, "seed": 1, "years": 0.25, "workers": 1}


@pytest.fixture(scope="module")
def hub() -> planning.Replications:
    return planning.replicate(planning.open_scenario("hub-and-spoke"), **QUICK)  # type: ignore[arg-type]


def test_the_histogram_counts_every_patient_dosed_and_marks_the_median_and_p90(
    hub: planning.Replications,
) -> None:
    figure = fig.histogram_figure([hub])
    bars = figure["data"][0]
    assert sum(bars["y"]) == sum(r.vein_to_vein_days.n for r in hub.runs)
    assert all(x % 1 == 0.5 for x in bars["x"])  # a bar per whole day, at its middle
    lines = [s["x0"] for s in figure["layout"]["shapes"]]
    assert lines == [hub.estimates["vein_to_vein_median"].mean,
                     hub.estimates["vein_to_vein_p90"].mean]  # fmt: skip
    # two scenarios are shares of their patients, so both sum to 100
    both = fig.histogram_figure([hub, hub])
    assert [round(sum(d["y"]), 6) for d in both["data"]] == [100.0, 100.0]


def test_utilisation_shows_the_most_used_resources_with_the_bottleneck_in_red(
    hub: planning.Replications,
) -> None:
    figure = fig.utilisation_figure([hub])
    bars = figure["data"][0]
    assert len(bars["y"]) == min(fig.MOST_USED, len(hub.utilisation))
    assert bars["y"][-1] == fig.resource_name(hub.bottleneck or "")  # the top bar
    assert bars["marker"]["color"][-1] == fig.RED
    assert bars["marker"]["color"].count(fig.RED) == 1
    assert bars["x"] == sorted(bars["x"])  # the most used at the top
    assert bars["x"][-1] == pytest.approx(hub.utilisation[hub.bottleneck or ""] * 100)


def test_the_cost_bars_add_up_to_the_cost_per_dose(hub: planning.Replications) -> None:
    bars = fig.cost_figure([hub])["data"][0]
    assert sum(bars["x"]) == pytest.approx(hub.estimates["cost_per_dose"].mean)


def test_the_capacity_map_is_centred_on_its_target() -> None:
    sweep = planning.sweep(planning.open_scenario("central-plant"), parameter_a="demand",
                           values_a=[0.5, 2], parameter_b="devices:CP1", values_b=[16, 24],
                           **QUICK)  # type: ignore[arg-type]  # fmt: skip
    plain = fig.sweep_figure(sweep)["data"][0]
    assert plain["z"] == [[c.vein_to_vein_p90.mean for c in row] for row in sweep.cells]
    assert "zmin" not in plain
    assert plain["text"][0][0].startswith("p90 ") and "CP1 " in plain["text"][0][0]
    centred = fig.sweep_figure(sweep, target_p90_days=40)["data"][0]
    assert (centred["zmin"] + centred["zmax"]) / 2 == pytest.approx(40)
    values = [v for row in plain["z"] for v in row]
    assert centred["zmin"] <= min(values) and centred["zmax"] >= max(values)


def test_the_ceiling_search_is_drawn_at_the_patients_it_tried() -> None:
    tried = (Tried(1, 30.0, 400, True), Tried(2, 90.0, 600, False), Tried(1.5, 38.0, 520, True))
    found = CapacityCeiling(scenario="x", multiplier=1.5, patients_per_year=675,
                            base_patients_per_year=450, target_p90_days=40, p90_days=38.0,
                            doses_per_year=520, simulations=3, tried=tried, met=True,
                            capped=False)  # fmt: skip
    figure = fig.ceiling_figure(found)
    within = next(d for d in figure["data"] if d.get("name") == "p90 within the target")
    assert within["x"] == [450, 675] and within["y"] == [30.0, 38.0]
    assert [s["x0"] for s in figure["layout"]["shapes"] if s["xref"] == "x"] == [675]
    unmet = CapacityCeiling(scenario="x", multiplier=0, patients_per_year=0,
                            base_patients_per_year=450, target_p90_days=3, p90_days=None,
                            doses_per_year=None, simulations=1, met=False, capped=False,
                            tried=(Tried(1, 30.0, 400, False),))  # fmt: skip
    assert all(s["xref"] != "x" for s in fig.ceiling_figure(unmet)["layout"]["shapes"])


def test_resources_read_as_words() -> None:
    assert fig.resource_name("CP1.qc.analysts") == "CP1 · QC analysts"
    assert fig.resource_name("POC2.devices") == "POC2 · suites / devices"
    assert fig.resource_name("CP1.staff.qa") == "CP1 · staff: QA"
