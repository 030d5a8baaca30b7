"""Replications, sweeps and comparisons of scenarios (issue 8): the same seeds give the same
figures wherever the runs go, the intervals are Student's t, a sweep is a grid, and every
mistake is named. The Dask cluster is tested in tests/integration/test_planning_dask.py."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate

import pytest

from vein2vein.domain.errors import InvalidInput, NotFound
from vein2vein.planning.ceiling import capacity_ceiling
from vein2vein.planning.model import SimulationResult, simulate
from vein2vein.planning.replications import Estimate
from vein2vein.planning.scenario import (
    CentreDemand,
    Costs,
    Demand,
    Devices,
    Fixed,
    Logistics,
    ManufacturingSite,
    Process,
    Release,
    Route,
    Scenario,
    Step,
    Sterility,
    TreatmentCentre,
)
from vein2vein.services import planning

SHORT = {"years": 0.25, "warmup_days": 0.0}  # some 25 patients a run: milliseconds


def plant(*, devices: int = 2, days: float = 5.0, per_year: float = 100.0) -> Scenario:
    """One plant, one hospital, one fixed-length step: only the orders are random, so more
    devices never lengthen anyone's wait on the same seed."""
    site = ManufacturingSite("P", "central-plant", Devices("automated", devices, ("p",)))
    return Scenario(
        "one plant",
        sites={"P": site, "H": TreatmentCentre("H")},
        processes={"p": Process("p", (Step("batch", Fixed(days * 24)),))},
        release=Release(sterility=Sterility(days=0)),
        logistics=Logistics({"H": "P"}, (Route("H", "P"),)),
        demand=Demand({"H": CentreDemand(per_year, "p")}),
        costs=Costs(
            facility_per_year={"C": 10_000}, device_capex={"automated": 0},
            overheads_per_year={"central-plant": 0}, materials_per_batch=1000,
        ),
    )  # fmt: skip


def test_runs_on_local_processes_give_the_same_numbers_as_runs_in_this_process() -> None:
    scenario = plant()
    here = planning.replicate(scenario, replications=3, seed=11, workers=1, **SHORT)
    seen: list[tuple[int, int]] = []
    there = planning.replicate(
        scenario, replications=3, seed=11, workers=2,
        progress=lambda done, total: seen.append((done, total)), **SHORT,
    )  # fmt: skip
    assert there.as_json() == here.as_json()
    assert here.seeds == (11, 12, 13)
    assert here.runs[1] == simulate(scenario, seed=12, **SHORT)  # in seed order
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_the_interval_is_students_t_over_the_replications() -> None:
    # Five values 1…5: s = 1.5811, t(0.975, 4) = 2.776 (any t table).
    e = Estimate.of([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (e.mean, e.n) == (3.0, 5)
    assert e.ci_low == pytest.approx(3 - 2.776 * 1.5811 / math.sqrt(5), abs=1e-3)
    assert e.ci_high == pytest.approx(3 + 2.776 * 1.5811 / math.sqrt(5), abs=1e-3)

    result = planning.replicate(plant(), replications=4, seed=1, workers=1, **SHORT)
    doses = [r.doses_per_year for r in result.runs]
    mean = sum(doses) / 4
    sd = math.sqrt(sum((d - mean) ** 2 for d in doses) / 3)
    half = 3.182 * sd / 2  # t(0.975, 3) = 3.182, √4 = 2
    got = result.estimates["doses_per_year"]
    assert got.mean == pytest.approx(mean)
    assert (got.ci_low, got.ci_high) == (
        pytest.approx(mean - half, rel=1e-3), pytest.approx(mean + half, rel=1e-3)
    )  # fmt: skip


def test_one_value_has_no_interval_and_runs_without_a_value_are_left_out() -> None:
    assert Estimate.of([4.0]) == Estimate(4.0, None, None, 1)
    assert Estimate.of([None, None]) == Estimate(None, None, None, 0)
    assert Estimate.of([2.0, None, 2.0]) == Estimate(2.0, 2.0, 2.0, 2)


def test_the_summary_keeps_the_issues_keys_and_each_run() -> None:
    result = planning.replicate(plant(), replications=2, seed=3, workers=1, **SHORT)
    out = result.as_json()
    assert {"doses_per_year", "vein_to_vein_days", "utilisation", "bottleneck",
            "cost_per_dose", "patients_lost", "runs"} <= set(out)  # fmt: skip
    assert set(out["doses_per_year"]) == {"mean", "ci_low", "ci_high", "n"}
    assert set(out["vein_to_vein_days"]) == {"median", "p90"}
    assert out["bottleneck"] == "P.devices"
    assert out["utilisation"] == {"P.devices": pytest.approx(
        sum(r.utilisation["P.devices"] for r in result.runs) / 2)}  # fmt: skip
    runs = out["runs"]
    assert [r["seed"] for r in runs] == [3, 4]
    assert runs[0]["doses_per_year"] == result.runs[0].doses_per_year


def test_a_sweep_is_a_grid_and_more_demand_or_fewer_devices_never_shorten_the_p90() -> None:
    result = planning.sweep(
        plant(), parameter_a="demand", values_a=[0.5, 1.5, 3], parameter_b="devices:P",
        values_b=[2, 4], replications=2, seed=1, workers=1, **SHORT,
    )  # fmt: skip
    assert result.shape == (3, 2) and len(result.as_json()["cells"]) == 6
    p90 = [[c.vein_to_vein_p90.mean for c in row] for row in result.cells]
    for j in range(2):
        column = [p90[i][j] for i in range(3)]
        assert column == sorted(column), column
    for row in p90:
        assert row[1] <= row[0]
    assert result.cells[2][0].bottleneck == "P.devices"
    assert result.cells[2][0].bottleneck_utilisation > 0.95  # overloaded


def test_a_scenario_compared_with_itself_differs_by_nothing_and_with_more_demand_waits_longer() -> (
    None
):
    scenario = plant()
    same = planning.compare(scenario, scenario, replications=2, seed=1, workers=1, **SHORT)
    assert same.difference["vein_to_vein_p90"] == Estimate(0.0, 0.0, 0.0, 2)
    busier = planning.compare(scenario, scenario.with_demand(3), replications=2, seed=1,
                              workers=1, **SHORT)  # fmt: skip
    assert busier.difference["vein_to_vein_p90"].mean > 0
    assert set(busier.as_json()["difference"]) == {
        "doses_per_year", "vein_to_vein_days", "cost_per_dose", "patients_lost",
    }  # fmt: skip


def test_with_devices_changes_the_count_of_that_site_only() -> None:
    scenario = plant(devices=2)
    more = scenario.with_devices("P", 7)
    assert more.manufacturing_sites["P"].devices.count == 7
    assert scenario.manufacturing_sites["P"].devices.count == 2
    assert more.demand == scenario.demand and more.processes == scenario.processes
    with pytest.raises(InvalidInput, match=r"sites\.H: not a manufacturing site \(these are: P\)"):
        scenario.with_devices("H", 3)
    with pytest.raises(InvalidInput, match=r"devices\.count: must be a whole number ≥ 1, got 0"):
        scenario.with_devices("P", 0)


def test_mistakes_are_named() -> None:
    scenario = plant()
    with pytest.raises(InvalidInput, match="replications 0: expected a whole number ≥ 1"):
        planning.replicate(scenario, replications=0)
    with pytest.raises(InvalidInput, match=r"'staff': not one a sweep can vary \(these are: "
                                           r"demand, devices:P\)"):  # fmt: skip
        planning.sweep(scenario, parameter_a="staff", values_a=[1], parameter_b="demand",
                       values_b=[1], replications=1)  # fmt: skip
    with pytest.raises(InvalidInput, match="'demand' is given twice"):
        planning.sweep(scenario, parameter_a="demand", values_a=[1], parameter_b="demand",
                       values_b=[2], replications=1)  # fmt: skip
    with pytest.raises(InvalidInput, match=r"devices:P 2\.5: a whole number of devices ≥ 1"):
        planning.sweep(scenario, parameter_a="demand", values_a=[1], parameter_b="devices:P",
                       values_b=[2.5], replications=1)  # fmt: skip
    with pytest.raises(InvalidInput, match="scheduler 'localhost:8786': expected tcp://host:port"):
        planning.replicate(scenario, replications=1, scheduler="localhost:8786")
    with pytest.raises(InvalidInput, match="target p90 0: expected a number of days > 0"):
        planning.ceiling(scenario, target_p90_days=0)
    with pytest.raises(InvalidInput, match="years 0: expected a number > 0"):
        planning.replicate(scenario, replications=1, years=0)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("demand=0.5,1,2", ("demand", [0.5, 1.0, 2.0])),
        (" devices:CP1 = 10, 20 ,", ("devices:CP1", [10.0, 20.0])),
    ],
)
def test_a_sweep_axis_is_read_from_its_text(given: str, expected: tuple[str, list[float]]) -> None:
    assert planning.axis(given) == expected


@pytest.mark.parametrize("given", ["demand", "demand=", "=1,2", "demand=one,two"])
def test_a_sweep_axis_that_is_not_parameter_equals_values_is_named(given: str) -> None:
    with pytest.raises(InvalidInput, match=r"--a .*expected PARAMETER=V1,V2,…"):
        planning.axis(given, "--a")


def test_the_runs_histogram_adds_up_to_the_patients_dosed() -> None:
    result = planning.replicate(plant(), replications=2, seed=1, workers=1, **SHORT)
    pooled = result.vein_to_vein_histogram
    assert sum(pooled) == sum(sum(r.vein_to_vein_histogram) for r in result.runs)
    assert sum(pooled) == sum(r.vein_to_vein_days.n for r in result.runs) > 0
    # the median of the pooled histogram lies in the day of the runs' medians
    half = sum(pooled) / 2
    day = next(d for d, n in enumerate(accumulate(pooled)) if n >= half)
    medians = [r.vein_to_vein_days.median for r in result.runs]
    assert min(medians) - 1 <= day <= max(medians) + 1  # type: ignore[operator]
    assert set(result.waiting_days) == set(result.utilisation)


def test_a_file_with_many_problems_is_one_error_listing_every_place() -> None:
    centres = [f"TC{i}" for i in range(1, 13)]
    text = "\n".join([
        "schema_version: 1", "name: twelve orphans", "sites:",
        "  CP1: {kind: central-plant, devices: {type: automated, count: 1, processes: [p]}}",
        *(f"  {c}: {{kind: treatment-centre}}" for c in centres),
        "processes: {p: {steps: [{id: a, hours: 1}]}}",
        "qc_release: {sterility: {days: 0}}",
        "logistics: {serves: {}}", "demand: {centres: {}}",
        "costs: {facility_per_year: {C: 1}, device_capex: {automated: 1},",
        "        overheads_per_year: {central-plant: 1}}",
    ])  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        planning.load(text, source="orphans.yaml")
    message = caught.value.message
    assert message.startswith("orphans.yaml: 12 problem(s): ")
    for centre in centres:  # InvalidScenario's own message stops at ten
        assert f"logistics.serves.{centre}: treatment centre {centre!r} is served by no" in message


def test_a_process_named_only_by_its_mbr_needs_the_records() -> None:
    scenario = planning.open_scenario("central-plant")
    assert scenario.processes["conventional"].mbr == "CART-CD19-CONV"
    assert scenario.processes["conventional"].steps  # the file's steps, without the records
    only_mbr = """
schema_version: 1
name: from the MBR
sites:
  CP1: {kind: central-plant, devices: {type: automated, count: 1, processes: [conventional]}}
  TC1: {kind: treatment-centre}
processes: {conventional: {mbr: CART-CD19-CONV}}
qc_release: {sterility: {days: 0}}
logistics: {serves: {TC1: CP1}, routes: [{centre: TC1, site: CP1}]}
demand: {centres: {TC1: {patients_per_year: 10}}}
costs: {facility_per_year: {C: 1}, device_capex: {automated: 1},
        overheads_per_year: {central-plant: 1}}
"""
    with pytest.raises(InvalidInput, match=r"mbr.yaml: processes.conventional: its steps come "
                                           r"from MBR 'CART-CD19-CONV'"):  # fmt: skip
        planning.load(only_mbr, source="mbr.yaml")


def test_a_scenario_is_a_path_or_an_example_name() -> None:
    assert set(planning.examples()) >= {"central-plant", "hub-and-spoke"}
    assert planning.open_scenario("hub-and-spoke.yaml").name.startswith("Hub and spoke")
    with pytest.raises(NotFound, match=r"'nowhere': no such file, and no example of that name "
                                       r"\(examples: central-plant, hub-and-spoke"):  # fmt: skip
        planning.open_scenario("nowhere")


def test_a_ceiling_whose_target_cannot_be_met_says_so_after_a_bounded_search() -> None:
    # every batch takes 5 days: no demand, however small, gives a p90 under 3 days
    found = capacity_ceiling(plant(), target_p90_days=3, seeds=(1,), years=0.25)
    assert not found.met and not found.capped
    assert found.multiplier == 0 and found.patients_per_year == 0
    assert found.p90_days is None and found.doses_per_year is None
    assert found.tried[0].multiplier == 1 and found.tried[-1].multiplier == 1 / 64
    assert found.simulations == len(found.tried) == 7  # 1, 1/2, …, 1/64
    assert found.as_json()["capacity_ceiling"]["met"] is False  # type: ignore[index]


def test_a_ceiling_past_the_highest_multiplier_is_a_lower_bound() -> None:
    found = capacity_ceiling(plant(devices=50, per_year=100), target_p90_days=30, seeds=(1,),
                             years=0.5, max_multiplier=4)  # fmt: skip
    assert found.met and found.capped and found.multiplier == 4
    assert found.patients_per_year == 400 and found.base_patients_per_year == 100
    assert [t.multiplier for t in found.tried] == [1, 2, 4]


def test_a_ceiling_found_below_todays_demand_is_bracketed_by_bisection() -> None:
    # 2 devices, 5-day batches: about 146 batches a year at most; 400 patients a year is over
    found = capacity_ceiling(plant(per_year=400), target_p90_days=8, seeds=(1, 2), years=0.5)
    assert found.met and 0 < found.multiplier < 1
    within = [t.multiplier for t in found.tried if t.within]
    over = [t.multiplier for t in found.tried if not t.within]
    assert found.multiplier == max(within) and min(over) > found.multiplier
    assert min(over) - found.multiplier <= 0.05 * min(over) + 1e-12
    assert found.p90_days is not None and found.p90_days <= 8


def test_the_ceiling_runs_its_seeds_through_the_given_runner_with_a_drain_of_twice_the_target() -> (
    None
):
    asked: list[tuple[float, tuple[int, ...]]] = []

    def run(scenario: Scenario, seeds: Sequence[int]) -> list[SimulationResult]:
        asked.append((scenario.demand.patients_per_year, tuple(seeds)))
        return [simulate(scenario, seed=s, years=0.25, drain_days=20) for s in seeds]

    here = capacity_ceiling(plant(), target_p90_days=10, seeds=(1, 2), years=0.25)
    there = capacity_ceiling(plant(), target_p90_days=10, seeds=(1, 2), years=0.25, run=run)
    assert there == here  # the default runner uses the same drain
    assert asked[0] == (100.0, (1, 2)) and len(asked) == len(here.tried)
    on_processes = planning.ceiling(plant(), target_p90_days=10, replications=2, seed=1,
                                    years=0.25, workers=2)  # fmt: skip
    assert (
        on_processes.as_json()
        == capacity_ceiling(
            plant(), target_p90_days=10, seeds=(1, 2), years=0.25, warmup_days=90
        ).as_json()
    )
