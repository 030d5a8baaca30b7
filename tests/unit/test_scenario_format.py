"""Scenario files and the scenario's own rules (issue 8, the scenario file)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from vein2vein.domain.errors import InvalidInput
from vein2vein.formats.scenario import InvalidScenarioFile, load_scenario, parse_scenario
from vein2vein.planning.scenario import (
    Exponential,
    Fixed,
    Lognormal,
    Scenario,
    Shift,
    Triangular,
)

EXAMPLES = Path(str(files("vein2vein.examples") / "scenario"))
NAMES = ["central-plant", "hub-and-spoke", "rapid-sterility", "short-process", "manual-open"]

MINIMAL = """
schema_version: 1
name: One plant, two hospitals
sites:
  CP1:
    kind: central-plant
    devices: {type: automated, count: 2, processes: [p], operators_per_batch: 1,
              operator_role: operator}
    staff:
      operator: {headcount: 1, hours_per_day: 8, days_per_week: 5}
  TC1: {kind: treatment-centre}
  TC2: {kind: treatment-centre}
processes:
  p:
    steps:
      - {id: culture, hours: {triangular: [48, 60, 72]}, hands_on_hours: 2}
qc_release:
  sterility: {method: rapid, days: 7}
logistics:
  serves: {TC1: CP1, TC2: CP1}
  routes:
    - {centre: TC1, site: CP1, transport_hours: 12, shipping_hours: {exponential: 24}}
    - {centre: TC2, site: CP1}
demand:
  centres:
    TC1: {patients_per_year: 20}
    TC2: {patients_per_year: 10}
costs:
  facility_per_year: {C: 50000}
  device_capex: {automated: 100000}
  labour_per_hour: {operator: 40}
  overheads_per_year: {central-plant: 100000}
  qc_per_test: {sterility: 300}
"""


def load(text: str) -> Scenario:
    """What the services layer does: the file checked, then the scenario built."""
    return Scenario.from_dict(parse_scenario(text, "test.yaml"))


def problems_of(text: str) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        load(text)
    return list(getattr(caught.value, "problems", [caught.value.message]))


@pytest.mark.parametrize("name", NAMES)
def test_the_shipped_example_scenarios_load(name: str) -> None:
    scenario = Scenario.from_dict(load_scenario(EXAMPLES / f"{name}.yaml"))
    assert scenario.demand.patients_per_year == 450  # the same demand in every comparison
    assert set(scenario.treatment_centres) == {"TC1", "TC2", "TC3", "TC4"}


def test_a_minimal_file_gives_a_scenario_with_the_defaults_filled_in() -> None:
    scenario = load(MINIMAL)
    plant = scenario.manufacturing_sites["CP1"]
    assert plant.devices.slots == 2 and plant.devices.grade == "C"
    assert plant.staff["operator"] == Shift(headcount=1, hours_per_day=8, days_per_week=5)
    assert scenario.processes["p"].steps[0].hours == Triangular(48, 60, 72)
    assert scenario.demand.centres["TC2"].process == "p"  # the only process
    route = scenario.logistics.route("TC1", "CP1")
    assert route is not None
    assert route.transport_hours == Fixed(12) and route.shipping_hours == Exponential(24)
    assert scenario.release.sterility.days == 7 and not scenario.release.conditional


def test_a_duration_is_a_number_or_one_of_four_distributions() -> None:
    text = MINIMAL.replace(
        "hours: {triangular: [48, 60, 72]}", "hours: {lognormal: {median: 60, sigma: 0.2}}"
    )
    assert load(text).processes["p"].steps[0].hours == Lognormal(60, 0.2)
    assert Triangular(2, 3, 7).mean == 4 and Exponential(5).mean == 5
    bad = MINIMAL.replace("hours: {triangular: [48, 60, 72]}", "hours: {fixed: 1, exponential: 2}")
    assert problems_of(bad) == [
        "processes.p.steps[0].hours: give one of fixed, triangular, lognormal, exponential, "
        "not fixed and exponential"
    ]


def test_a_device_count_below_one_is_refused_naming_its_place() -> None:
    text = MINIMAL.replace("count: 2", "count: 0")
    assert problems_of(text) == ["sites.CP1.devices.count: must be ≥ 1"]


def test_a_process_step_with_a_negative_duration_is_refused() -> None:
    text = MINIMAL.replace("{triangular: [48, 60, 72]}", "-3")
    assert problems_of(text) == ["processes.p.steps[0].hours.fixed: must be ≥ 0"]
    text = MINIMAL.replace("[48, 60, 72]", "[-48, 60, 72]")
    assert problems_of(text) == ["processes.p.steps[0].hours.triangular[0]: must be ≥ 0"]
    text = MINIMAL.replace("[48, 60, 72]", "[60, 48, 72]")
    assert problems_of(text) == [
        "processes.p.steps[0].hours: triangular: expected min ≤ mode ≤ max, got 60, 48, 72"
    ]


def test_unknown_keys_are_refused() -> None:
    text = MINIMAL.replace("count: 2,", "count: 2, colour: blue,")
    (problem,) = problems_of(text)
    assert problem.startswith("sites.CP1.devices.colour: ")


def test_a_key_given_twice_is_refused() -> None:
    text = MINIMAL.replace("count: 2,", "count: 2, count: 20,")
    (problem,) = problems_of(text)
    assert "'count' is given twice" in problem and problem.startswith("line 7")


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    text = (
        MINIMAL.replace("count: 2", "count: 0")
        .replace("headcount: 1", "headcount: 1.5")
        .replace("patients_per_year: 10", "patients_per_year: -10")
    )
    with pytest.raises(InvalidScenarioFile) as caught:
        parse_scenario(text)
    places = sorted(p.split(":")[0] for p in caught.value.problems)
    assert places == [
        "demand.centres.TC2.patients_per_year",
        "sites.CP1.devices.count",
        "sites.CP1.staff.operator.headcount",
    ]


def test_an_unknown_schema_version_is_refused() -> None:
    assert problems_of(MINIMAL.replace("schema_version: 1", "schema_version: 2")) == [
        "schema_version: expected 1, this vein2vein reads no other"
    ]


def test_a_treatment_centre_served_by_no_manufacturing_site_is_refused() -> None:
    text = MINIMAL.replace("serves: {TC1: CP1, TC2: CP1}", "serves: {TC1: CP1}")
    assert problems_of(text) == [
        "logistics.serves.TC2: treatment centre 'TC2' is served by no manufacturing site"
    ]


def test_the_parts_of_a_scenario_must_fit_together_and_each_misfit_is_named() -> None:
    text = (
        MINIMAL.replace("operator_role: operator", "operator_role: technician")
        .replace("    - {centre: TC2, site: CP1}\n", "")
        .replace("TC1: {patients_per_year: 20}", "TC1: {patients_per_year: 20, process: q}")
        .replace("qc_per_test: {sterility: 300}", "qc_per_test: {}")
    )
    assert problems_of(text) == [
        "logistics.routes: no route between 'TC2' and 'CP1'",
        "demand.centres.TC1.process: 'q' is not among processes",
        "sites.CP1.staff: no 'technician', whom the devices need",
        "costs.qc_per_test: no price for 'sterility'",
    ]


def test_a_process_named_only_by_its_mbr_is_kept_for_the_services_to_resolve() -> None:
    text = MINIMAL.replace(
        "    steps:\n      - {id: culture, hours: {triangular: [48, 60, 72]}, hands_on_hours: 2}",
        "    mbr: CART-CD19-RAPID",
    )
    process = load(text).processes["p"]
    assert process.mbr == "CART-CD19-RAPID" and process.steps == ()
    no_steps = MINIMAL.replace(
        "    steps:\n      - {id: culture, hours: {triangular: [48, 60, 72]}, hands_on_hours: 2}",
        "    steps: []",
    )
    assert problems_of(no_steps) == ["processes.p: give its steps, or the mbr they come from"]


def test_value_objects_refuse_values_that_cannot_be() -> None:
    with pytest.raises(InvalidInput, match="min ≤ mode ≤ max"):
        Triangular(5, 3, 7)
    with pytest.raises(InvalidInput, match="hours_per_day: at most 24"):
        Shift(headcount=2, hours_per_day=25)
    with pytest.raises(InvalidInput, match=r"exponential.mean: must be a number > 0"):
        Exponential(0)
    with pytest.raises(InvalidInput, match="fixed: must be a number ≥ 0"):
        Fixed(-1)
