"""`v2v plan …` as a person runs it: a real `v2v` process. Planning reads no records, so
these commands run with no database and nobody signed in (only `--mbr` reads the records;
tests/integration/test_planning_mbr.py covers that)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli import Cli

SHORT = ("--years", "0.1", "--workers", "1")
ESTIMATE = {"mean", "ci_low", "ci_high", "n"}


@pytest.fixture
def offline(tmp_path: Path) -> Cli:
    return Cli(f"sqlite:///{tmp_path / 'never-created.sqlite3'}")


def test_simulate_gives_the_issues_keys_with_an_interval_for_each_estimate(offline: Cli) -> None:
    out: Any = offline.json("plan", "simulate", "central-plant", "-n", "2", "--seed", "3", *SHORT)
    assert {"doses_per_year", "vein_to_vein_days", "utilisation", "bottleneck", "cost_per_dose",
            "patients_lost"} <= set(out)  # fmt: skip
    assert set(out["doses_per_year"]) == ESTIMATE
    assert set(out["vein_to_vein_days"]) == {"median", "p90"}
    assert set(out["vein_to_vein_days"]["p90"]) == ESTIMATE
    assert set(out["cost_per_dose"]) == ESTIMATE | {"breakdown"}
    assert out["bottleneck"] in out["utilisation"]
    assert [run["seed"] for run in out["runs"]] == [3, 4]
    assert out["replications"] == 2


def test_simulate_shows_a_table_of_estimates_utilisation_and_costs(offline: Cli) -> None:
    shown = offline("plan", "simulate", "hub-and-spoke", "-n", "2", *SHORT).stdout
    assert "Hub and spoke, point-of-care units: 2 run(s) of 0.1 year(s), seeds 1–2" in shown
    for words in ("95 % CI", "doses per year", "vein-to-vein p90 (days)", "cost per dose",
                  "utilisation by resource", "◀ bottleneck", "vector"):  # fmt: skip
        assert words in shown


def test_a_sweep_compare_and_ceiling_give_their_keys(offline: Cli) -> None:
    grid: Any = offline.json("plan", "sweep", "central-plant", "--a", "demand=0.5,1",
                             "--b", "devices:CP1=10,20", "-n", "1", *SHORT)  # fmt: skip
    assert (grid["parameter_a"], grid["values_a"]) == ("demand", [0.5, 1.0])
    assert (grid["parameter_b"], grid["values_b"]) == ("devices:CP1", [10.0, 20.0])
    assert [(c["a"], c["b"]) for c in grid["cells"]] == [(0.5, 10), (0.5, 20), (1, 10), (1, 20)]
    assert set(grid["cells"][0]) == {"a", "b", "vein_to_vein_days", "doses_per_year",
                                     "bottleneck", "bottleneck_utilisation"}  # fmt: skip
    both: Any = offline.json("plan", "compare", "central-plant", "rapid-sterility", "-n", "2",
                             *SHORT)  # fmt: skip
    assert set(both) == {"a", "b", "difference"}
    assert both["difference"]["vein_to_vein_days"]["median"]["mean"] < 0  # 14 days of culture
    found: Any = offline.json("plan", "ceiling", "short-process", "--target-p90-days", "30",
                              "-n", "1", "--years", "0.1")  # fmt: skip
    assert set(found["capacity_ceiling"]) >= {"multiplier", "patients_per_year", "p90_days"}


def test_a_bad_scenario_file_is_refused_naming_each_place(offline: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "schema_version: 1\nname: bad\n"
        "sites:\n  CP1: {kind: central-plant, devices: {type: automated, count: 0, "
        "processes: [p]}}\n  TC1: {kind: treatment-centre}\n"
        "processes: {p: {steps: [{id: a, hours: -1}]}}\n"
        "logistics: {serves: {TC1: CP1}}\ndemand: {centres: {TC1: {patients_per_year: 10}}}\n",
        encoding="utf-8",
    )
    error = offline("plan", "simulate", str(bad), code=2).stderr
    assert "error[invalid-input]" in error and f"{bad}: 2 problem(s)" in error
    assert "sites.CP1.devices.count: must be ≥ 1" in error
    assert "processes.p.steps[0].hours.fixed: must be ≥ 0" in error


def test_an_unknown_example_or_parameter_is_named(offline: Cli) -> None:
    error = offline("plan", "simulate", "central-plan", code=3).stderr
    assert "error[not-found]: scenario 'central-plan': no such file, and no example" in error
    assert "central-plant, hub-and-spoke" in error
    error = offline("plan", "sweep", "central-plant", "--a", "staff=1,2", "--b", "demand=1",
                    code=2).stderr  # fmt: skip
    assert "parameter 'staff': not one a sweep can vary (these are: demand, devices:CP1)" in error
    error = offline("plan", "sweep", "central-plant", "--a", "demand", "--b", "demand=1",
                    code=2).stderr  # fmt: skip
    assert "--a 'demand': expected PARAMETER=V1,V2,…" in error


def test_a_scheduler_that_does_not_answer_is_a_service_error_not_a_bug(offline: Cli) -> None:
    done = offline("plan", "simulate", "central-plant", "-n", "1", "--years", "0.1",
                   "--scheduler", "tcp://127.0.0.1:9", code=12)  # fmt: skip
    assert "error[service-unavailable]: Dask scheduler tcp://127.0.0.1:9: no answer" in (
        " ".join(done.stderr.split())
    )


def test_vectors_plans_an_example_with_its_milestones_scales_and_recommendation(
    offline: Cli,
) -> None:
    out: Any = offline.json("plan", "vectors", "cart-lv")
    assert out["plan"] == "CAR-T CD19, ex vivo LV, phase 1 to commercial" and out["unit"] == "TU"
    assert [m["phase"] for m in out["milestones"]] == ["phase-1", "pivotal", "commercial"]
    assert [s["scale_litres"] for s in out["scales"]] == [50, 200, 500, 2000]
    best = next(s for s in out["scales"] if s["scale_litres"] == out["recommended_scale_litres"])
    assert best["target_reachable"] and best["p_stockout"] <= out["stockout_target"]
    assert best["cost_per_dose"] == min(s["cost_per_dose"] for s in out["scales"]
                                        if s["target_reachable"])  # fmt: skip
    assert {"start", "release", "expires", "slot_booking_by", "plasmid_orders"} <= set(
        best["planned_batches"][0]
    )
    shown = offline("plan", "vectors", "aav-systemic", "--scale", "500").stdout
    for words in ("3.51e15 vg per patient", "milestones", "late", "◀ recommended",
                  "500 L: batches a year", "500 L: the batch plan"):  # fmt: skip
        assert words in shown, words


def test_vectors_names_each_problem_of_a_plan_file(offline: Cli, tmp_path: Path) -> None:
    from importlib import resources

    text = (resources.files("vein2vein.examples") / "vectors" / "cart-lv.yaml").read_text("utf-8")
    bad = tmp_path / "plan.yaml"
    bad.write_text(text.replace("shelf_life_days: 730", "shelf_life_days: 60").replace(
        "batch_success_rate: 0.85", "batch_success_rate: 1.5"), "utf-8")  # fmt: skip
    error = offline("plan", "vectors", str(bad), code=2).stderr
    assert "plan.yaml: 1 problem(s): vector.batch_success_rate: must be ≤ 1" in error
    bad.write_text(text.replace("shelf_life_days: 730", "shelf_life_days: 60"), "utf-8")
    error = offline("plan", "vectors", str(bad), code=2).stderr
    assert (
        "vector.shelf_life_days: 60 days is shorter than the lead time of a batch (35 days "
        "of production and 56 of QC release = 91)"
    ) in error
    error = offline("plan", "vectors", "cart-lv", "--scale", "75", code=2).stderr
    assert "--scale 75: not one of the plan's scales (50, 200, 500, 2000)" in error
    error = offline("plan", "vectors", "no-such-plan", code=3).stderr
    assert "no such file, and no example of that name (examples: aav-systemic, cart-lv)" in error
    listed: Any = offline.json("plan", "examples")
    assert set(listed["vector_plans"]) == {"aav-systemic", "cart-lv"}
    assert "central-plant" in listed["scenarios"]
