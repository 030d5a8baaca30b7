"""The SimPy model of a manufacturing network (issue 8): what it measures, that it repeats,
and the comparisons the example scenarios were written for."""

from __future__ import annotations

import math
from collections.abc import Generator
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import simpy

from vein2vein.domain.errors import InvalidInput
from vein2vein.formats.scenario import load_scenario
from vein2vein.planning._resources import Pool, shift_process
from vein2vein.planning.ceiling import capacity_ceiling
from vein2vein.planning.model import SimulationResult, simulate
from vein2vein.planning.scenario import (
    CentreDemand,
    Costs,
    Demand,
    Devices,
    Failures,
    Fixed,
    Logistics,
    ManufacturingSite,
    Process,
    Release,
    Route,
    Scenario,
    Shift,
    Step,
    Sterility,
    TreatmentCentre,
)

EXAMPLES = Path(str(files("vein2vein.examples") / "scenario"))
NAMES = ["central-plant", "hub-and-spoke", "rapid-sterility", "short-process", "manual-open"]
KEYS = {
    "doses_per_year", "vein_to_vein_days", "utilisation", "bottleneck", "cost_per_dose",
    "patients_lost", "waiting_days", "patients", "failures", "events", "little",
}  # fmt: skip


@cache
def example(name: str) -> Scenario:
    return Scenario.from_dict(load_scenario(EXAMPLES / f"{name}.yaml"))


@cache
def year_of(name: str, seed: int = 1) -> SimulationResult:
    return simulate(example(name), seed=seed, years=1.0)


def one_plant(
    *, devices: int, days: float, per_year: float, failures: Failures | None = None,
    hazard: float = 0.0,
) -> Scenario:  # fmt: skip
    """One plant, one hospital, one fixed-length step and nothing else in the way."""
    plant = ManufacturingSite("P", "central-plant", Devices("automated", devices, ("p",)))
    return Scenario(
        "one plant",
        sites={"P": plant, "H": TreatmentCentre("H")},
        processes={"p": Process("p", (Step("batch", Fixed(days * 24)),))},
        release=Release(sterility=Sterility(days=0)),
        logistics=Logistics({"H": "P"}, (Route("H", "P"),)),
        demand=Demand({"H": CentreDemand(per_year, "p")}),
        failures=failures or Failures(),
        loss_hazard_per_week=hazard,
        costs=Costs(
            facility_per_year={"C": 0}, device_capex={"automated": 0},
            overheads_per_year={"central-plant": 0}, materials_per_batch=1000,
        ),
    )  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_each_example_scenario_runs_a_year_and_says_what_the_issue_asks(name: str) -> None:
    result = year_of(name)
    out = result.as_json()
    assert set(out) == KEYS
    assert set(result.vein_to_vein_days.as_json()) == {"median", "p90", "mean"}
    assert 300 < result.doses_per_year < 500  # 450 patients a year, some lost or failed
    v2v = result.vein_to_vein_days
    assert v2v.median is not None and v2v.p90 is not None and 0 < v2v.median <= v2v.p90
    assert result.bottleneck == max(result.utilisation, key=lambda k: result.utilisation[k])
    assert all(0 <= u <= 1 for u in result.utilisation.values())
    assert set(result.waiting_days) == set(result.utilisation)
    cost = result.cost_per_dose
    assert cost.total is not None and cost.total == pytest.approx(
        sum(v for v in cost.breakdown.values() if v is not None)
    )
    assert result.patients["ordered"] == sum(
        result.patients[k] for k in ("dosed", "lost", "without_dose", "unfinished")
    )
    assert result.patients["unfinished"] == 0 and result.events > 10_000


def test_the_same_seed_gives_the_same_result_and_another_seed_another() -> None:
    scenario = example("central-plant")
    first = simulate(scenario, seed=11, years=0.5).as_json()
    assert simulate(scenario, seed=11, years=0.5).as_json() == first
    assert simulate(scenario, seed=12, years=0.5).as_json() != first


@pytest.mark.parametrize("name", NAMES)
def test_littles_law_holds_on_a_run(name: str) -> None:
    little = year_of(name).little
    # L (time-average in the window) against λW (the window's orders, followed to the end):
    # the two differ only by the patients straddling the window's edges, each edge worth
    # about W/T ≈ 10% of L and the two edges of opposite sign.
    assert little.mean_in_system == pytest.approx(
        little.arrival_rate_per_day * little.mean_days_in_system, rel=0.05
    )


def test_a_hub_and_spoke_network_gives_a_shorter_median_vein_to_vein_than_one_plant() -> None:
    assert example("hub-and-spoke").demand == example("central-plant").demand
    for seed in (1, 2):
        hub = year_of("hub-and-spoke", seed).vein_to_vein_days.median
        plant = year_of("central-plant", seed).vein_to_vein_days.median
        assert hub is not None and plant is not None
        assert hub < plant - 1  # no day-and-a-half of fresh transport, no cryo-shipping


def test_the_other_comparisons_move_the_way_they_should() -> None:
    base = year_of("central-plant").vein_to_vein_days.median
    rapid = year_of("rapid-sterility").vein_to_vein_days.median
    short = year_of("short-process").vein_to_vein_days.median
    assert base is not None and rapid is not None and short is not None
    assert rapid < base - 7  # no longer waits 14 days for the culture
    assert short < base - 5  # 2-3 days in the device instead of 9-12
    manual = year_of("manual-open").cost_per_dose.total
    automated = year_of("central-plant").cost_per_dose.total
    assert manual is not None and automated is not None and manual > automated


def test_a_fixed_process_with_no_queue_takes_exactly_its_length() -> None:
    result = simulate(one_plant(devices=50, days=10, per_year=100), seed=3)
    assert result.vein_to_vein_days.median == pytest.approx(10)
    assert result.vein_to_vein_days.p90 == pytest.approx(10)
    assert result.waiting_days["P.devices"].p90 == 0
    # Batches are costed when they start and doses counted when infused: the window's
    # edges hold a few of one and not the other.
    assert result.cost_per_dose.breakdown["materials"] == pytest.approx(1000, rel=0.05)


def test_patients_are_lost_at_the_weekly_hazard_while_they_wait() -> None:
    hazard, weeks = 0.05, 4
    scenario = one_plant(devices=400, days=7 * weeks, per_year=3000, hazard=hazard)
    result = simulate(scenario, seed=5)
    ordered = result.patients["ordered"]
    expected = 1 - math.exp(-hazard * weeks)  # 18.1% do not live to their infusion
    standard_error = math.sqrt(expected * (1 - expected) / ordered)
    assert result.patients_lost / ordered == pytest.approx(expected, abs=3 * standard_error)


def test_a_failed_batch_sends_the_patient_back_until_the_attempts_run_out() -> None:
    failures = Failures(manufacturing=0.3, remanufacture=1.0, max_attempts=2)
    result = simulate(one_plant(devices=200, days=5, per_year=3000, failures=failures), seed=8)
    ordered = result.patients["ordered"]
    p = 0.09  # both attempts fail: 0.3²
    assert result.patients["without_dose"] / ordered == pytest.approx(
        p, abs=3 * math.sqrt(p * (1 - p) / ordered)
    )
    assert result.failures["remanufactured"] == pytest.approx(0.3 * ordered, rel=0.1)
    nobody = simulate(one_plant(devices=5, days=5, per_year=100,
                                failures=Failures(manufacturing=1.0)), seed=1)  # fmt: skip
    assert nobody.doses_per_year == 0 and nobody.cost_per_dose.total is None
    assert nobody.vein_to_vein_days.median is None


def test_work_not_started_waits_for_the_next_shift_and_work_under_way_finishes() -> None:
    env = simpy.Environment()
    operators = Pool(env, "operators", 1, (0.0, 7.0))
    env.process(shift_process(env, operators, Shift(headcount=1, hours_per_day=8,
                                                    days_per_week=5, start_hour=8)))  # fmt: skip
    log: list[tuple[str, str, float]] = []

    def task(name: str, at_hour: float, hours: float) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(at_hour / 24)
        request = operators.resource.request(priority=1)
        yield request
        operators.got(at_hour / 24)
        log.append((name, "starts", round(env.now * 24, 6)))
        yield env.timeout(hours / 24)
        operators.release(request)
        log.append((name, "ends", round(env.now * 24, 6)))

    for name, at_hour, hours in [("Monday 00:00", 0, 2), ("Monday 15:00", 15, 3),
                                 ("Monday 17:00", 17, 1), ("Friday 15:00", 4 * 24 + 15, 2),
                                 ("Saturday 10:00", 5 * 24 + 10, 1)]:  # fmt: skip
        env.process(task(name, at_hour, hours))
    env.run(until=8)
    assert log == [
        ("Monday 00:00", "starts", 8), ("Monday 00:00", "ends", 10),  # waits for 08:00
        ("Monday 15:00", "starts", 15), ("Monday 15:00", "ends", 18),  # overtime to 18:00
        ("Monday 17:00", "starts", 32), ("Monday 17:00", "ends", 33),  # Tuesday 08:00
        ("Friday 15:00", "starts", 111), ("Friday 15:00", "ends", 113),
        ("Saturday 10:00", "starts", 176), ("Saturday 10:00", "ends", 177),  # next Monday
    ]  # fmt: skip
    # On duty in the first week: 10 h on Monday (2 of overtime), 8 h Tuesday to Thursday,
    # 9 h on Friday; busy 2 + 3 + 1 + 2 hours of it.
    assert operators.utilisation() == pytest.approx(8 / 43)


def test_the_capacity_ceiling_lies_below_what_the_devices_can_make() -> None:
    scenario = one_plant(devices=4, days=10, per_year=73)  # 146 batches a year at most
    ceiling = capacity_ceiling(scenario, target_p90_days=20, seeds=(1, 2))
    assert 100 < ceiling.patients_per_year < 146
    assert ceiling.p90_days is not None and ceiling.p90_days <= 20
    relaxed = capacity_ceiling(scenario, target_p90_days=40, seeds=(1, 2))
    assert relaxed.multiplier >= ceiling.multiplier


def test_simulate_refuses_what_it_cannot_run() -> None:
    scenario = one_plant(devices=1, days=1, per_year=10)
    with pytest.raises(InvalidInput, match="seed"):
        simulate(scenario, seed=-1)
    with pytest.raises(InvalidInput, match="years"):
        simulate(scenario, seed=1, years=0)
    unresolved = Scenario.from_dict(
        {**load_scenario(EXAMPLES / "short-process.yaml"),
         "processes": {"rapid": {"mbr": "CART-CD19-RAPID"}}}
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="names MBR 'CART-CD19-RAPID' but its steps"):
        simulate(unresolved, seed=1)
