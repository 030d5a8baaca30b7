"""Master batch record files and the rules of a process definition (issue 5, first part)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.process import Outcome, ParameterSpec, Range, compute, round_to
from vein2vein.formats.mbr import InvalidProcessFile, load_mbr, parse_mbr

EXAMPLES = Path(str(files("vein2vein.examples") / "mbr"))

MINIMAL = """
schema_version: 1
product: CART-CD19
process: TEST
title: Test process
version: 1
steps:
  - id: receipt
    name: Receipt
    instructions: Check the bag.
    expected_hours: 1
    parameters:
      viability: {unit: "%", precision: 1, target: 95, nor: [90, 100], par: [80, 100]}
"""


@pytest.mark.parametrize(
    ("value", "precision", "reported"),
    [(0.25, 1, 0.3), (0.35, 1, 0.4), (2.675, 2, 2.68), (84.96, 1, 85.0), (-0.25, 1, -0.3),
     (1.5, 0, 2.0), (2.5, 0, 3.0)],
)  # fmt: skip
def test_a_value_is_rounded_half_away_from_zero_as_reported(
    value: float, precision: int, reported: float
) -> None:
    # Python's round() gives 0.2, 2.67 and 2 for three of these (half to even, binary floats).
    assert round_to(value, precision) == reported


def test_a_value_is_rounded_first_then_compared_with_nor_and_par() -> None:
    spec = ParameterSpec("viability", "%", 1, 95.0, Range(85.0, 100.0), Range(70.0, 100.0))
    assert spec.classify(84.95).outcome is Outcome.OK  # reports as 85.0
    assert spec.classify(84.94).outcome is Outcome.EXCURSION  # reports as 84.9
    assert spec.classify(70.0).outcome is Outcome.EXCURSION  # the PAR is closed
    assert spec.classify(69.95).outcome is Outcome.EXCURSION  # reports as 70.0
    assert spec.classify(69.94).outcome is Outcome.OUT_OF_PAR
    assert spec.classify(100.04).reported == 100.0


def test_ranges_that_cannot_be_are_refused() -> None:
    with pytest.raises(InvalidInput, match="low > high"):
        Range(10.0, 5.0)
    with pytest.raises(InvalidInput, match="lies outside par"):
        ParameterSpec("x", "u", 1, None, Range(0.0, 20.0), Range(5.0, 15.0))
    with pytest.raises(InvalidInput, match="target 30 lies outside nor"):
        ParameterSpec("x", "u", 1, 30.0, Range(0.0, 20.0), Range(0.0, 40.0))


def test_computed_values_follow_their_formula_and_nothing_else() -> None:
    assert compute("moi * seeded_cells * 1000000 / (vector_titre * 100000000)",
                   {"moi": 5, "seeded_cells": 100, "vector_titre": 2.5}) == 2.0  # fmt: skip
    with pytest.raises(InvalidInput, match="final_cells has no value yet"):
        compute("final_cells / seeded_cells", {"seeded_cells": 100})
    with pytest.raises(InvalidInput, match="division by zero"):
        compute("a / b", {"a": 1, "b": 0})
    with pytest.raises(InvalidInput, match="only"):
        compute("__import__('os')", {})


@pytest.mark.parametrize("name", ["cart-cd19-conventional.yaml", "cart-cd19-rapid.yaml"])
def test_the_shipped_example_processes_load(name: str) -> None:
    process = load_mbr(EXAMPLES / name)
    assert process.product == "CART-CD19" and process.version == 1
    harvest = process.step("harvest_formulation")
    assert harvest.parameter("dose_volume_ml").formula is not None
    assert harvest.parameter("fold_expansion").classify(52.04).reported == 52.0


def test_the_conventional_process_takes_9_to_12_days_and_the_rapid_one_2_to_3() -> None:
    conventional = load_mbr(EXAMPLES / "cart-cd19-conventional.yaml").expected_hours / 24
    rapid = load_mbr(EXAMPLES / "cart-cd19-rapid.yaml").expected_hours / 24
    assert 9 <= conventional <= 12 and 2 <= rapid <= 3


def test_a_minimal_file_loads() -> None:
    process = parse_mbr(MINIMAL)
    assert process.step("receipt").parameter("viability").nor == Range(90.0, 100.0)


@pytest.mark.parametrize(
    ("change", "place"),
    [
        (("nor: [90, 100]", "nor: [100, 90]"), "steps[0].parameters.viability.nor: low > high"),
        (("par: [80, 100]", "par: [92, 100]"),
         "steps[0].parameters.viability: nor 90–100 lies outside par 92–100"),
        (("target: 95", "target: 70"), "steps[0].parameters.viability: target 70 lies outside nor"),
        (("schema_version: 1", "schema_version: 2"), "schema_version: expected 1"),
        (("precision: 1", "precision: 12"), "steps[0].parameters.viability.precision"),
        (("expected_hours: 1", "expected_hours: 0"), "steps[0].expected_hours"),
        (("id: receipt", "id: Receipt!"), "steps[0].id"),
        (("    name: Receipt\n", "    name: Receipt\n    colour: red\n"),
         "steps[0].colour: Extra inputs are not permitted"),
        (("steps:", "stepz:"), "steps: Field required"),
    ],
)  # fmt: skip
def test_every_error_names_its_place(change: tuple[str, str], place: str) -> None:
    with pytest.raises(InvalidProcessFile) as refused:
        parse_mbr(MINIMAL.replace(*change), "test.yaml")
    assert any(p.startswith(place) for p in refused.value.problems), refused.value.problems
    assert str(refused.value).startswith("test.yaml: ")


def test_all_problems_are_reported_at_once() -> None:
    text = MINIMAL.replace("precision: 1", "precision: 12").replace(
        "expected_hours: 1", "expected_hours: 0"
    )
    with pytest.raises(InvalidProcessFile) as refused:
        parse_mbr(text)
    places = sorted(p.split(":")[0] for p in refused.value.problems)
    assert places == ["steps[0].expected_hours", "steps[0].parameters.viability.precision"]


def test_steps_formulas_and_yaml_are_checked() -> None:
    twice = MINIMAL + MINIMAL.split("steps:\n", 1)[1]
    with pytest.raises(InvalidProcessFile, match=r"steps\[1\].id: 'receipt' is used by an earlier"):
        parse_mbr(twice)
    unknown = MINIMAL + "      ratio: {unit: x, precision: 1, formula: 'viability / cells'}\n"
    with pytest.raises(InvalidProcessFile, match=r"ratio\.formula: uses cells, not a parameter"):
        parse_mbr(unknown)
    code = MINIMAL + "      bad: {unit: x, precision: 1, formula: 'open(viability)'}\n"
    with pytest.raises(InvalidProcessFile, match=r"bad\.formula: .*only"):
        parse_mbr(code)
    with pytest.raises(InvalidProcessFile, match="line 3, column"):
        parse_mbr("schema_version: 1\nproduct: [\n: :")
    with pytest.raises(InvalidInput, match="cannot read"):
        load_mbr(Path("/nonexistent/mbr.yaml"))


def test_a_material_type_listed_twice_in_a_step_is_refused_with_its_place() -> None:
    twice = (
        "    expected_hours: 1\n"
        "    materials:\n"
        "      - {type: T-cell activation reagent, quantity: 1, unit: vial}\n"
        "      - {type: T-cell activation reagent, quantity: 2, unit: vial}\n"
    )
    text = MINIMAL.replace("    expected_hours: 1\n", twice, 1)
    assert text != MINIMAL
    with pytest.raises(InvalidProcessFile) as refused:
        parse_mbr(text)
    assert "steps[0].materials: 'T-cell activation reagent' is listed twice" in str(refused.value)


WATCHED = (
    MINIMAL
    + """    equipment_class: incubator
    monitoring:
      no_data_s: 90
      sensors:
        temperature: {unit: "°C", range: [36.0, 38.0], persistence_s: 300, hysteresis: 0.2,
                      deviation: major}
        do: {unit: "%", range: [20, null]}
"""
)


def test_a_step_names_the_sensors_it_watches_with_their_rules() -> None:
    step = parse_mbr(WATCHED).step("receipt")
    assert step.monitoring is not None and step.monitoring.no_data_s == 90
    temperature, oxygen = step.monitoring.sensors
    expected = ("temperature", "°C", "major")
    assert (temperature.sensor, temperature.unit, temperature.deviation) == expected
    assert (temperature.rule.low, temperature.rule.high, temperature.rule.persistence_s,
            temperature.rule.hysteresis) == (36.0, 38.0, 300.0, 0.2)  # fmt: skip
    assert (oxygen.rule.low, oxygen.rule.high, oxygen.rule.persistence_s, oxygen.deviation) == (
        20.0, None, 60.0, None)  # fmt: skip
    assert step.monitoring.sensor("ph") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("range: [36.0, 38.0]", "range: [38.0, 36.0]"),
         "steps[0].monitoring.sensors.temperature: low 38 is not below high 36"),
        (("hysteresis: 0.2", "hysteresis: 1.5"),
         "steps[0].monitoring.sensors.temperature: a hysteresis of 1.5 leaves no room"),
        (("range: [20, null]", "range: [null, null]"),
         "steps[0].monitoring.sensors.do: give a low limit, a high limit or both"),
        (("deviation: major", "deviation: critical"),
         "steps[0].monitoring.sensors.temperature.deviation: Input should be 'minor' or 'major'"),
        (("no_data_s: 90", "no_data_s: 0"),
         "steps[0].monitoring.no_data_s: Input should be greater than 0"),
        (("    equipment_class: incubator\n", ""),
         "steps[0].monitoring: a step without equipment_class has no sensors"),
    ],
)  # fmt: skip
def test_a_watched_sensor_that_cannot_be_is_refused_with_its_place(
    change: tuple[str, str], message: str
) -> None:
    with pytest.raises(InvalidProcessFile) as refused:
        parse_mbr(WATCHED.replace(*change))
    assert message in str(refused.value)


def test_a_changed_alarm_limit_is_a_change_of_the_mbr() -> None:
    from dataclasses import replace

    from vein2vein.domain.process import diff_processes

    old = parse_mbr(WATCHED)
    new = parse_mbr(WATCHED.replace("range: [36.0, 38.0]", "range: [36.5, 37.5]"))
    lines = diff_processes(old, replace(new, version=2))
    assert any(line.startswith("steps.receipt.monitoring:") for line in lines)
