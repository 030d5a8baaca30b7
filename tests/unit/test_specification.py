"""Specifications (issue 6): a result rounded to its reportable precision, then compared; the
specification file format and the place of each of its errors."""

from __future__ import annotations

import math
from importlib.resources import files
from pathlib import Path

import pytest

from vein2vein.domain.errors import InvalidInput, NotFound
from vein2vein.domain.process import Range, round_to
from vein2vein.domain.specification import Attribute, Conformance, Kind, Stage
from vein2vein.formats.spec import InvalidSpecificationFile, load_spec, parse_spec

EXAMPLES = Path(str(files("vein2vein.examples") / "spec"))

VIABILITY = Attribute("viability", "Viability", "flow", Kind.NUMERIC, unit="%", precision=0,
                      limits=Range(70.0, None))  # fmt: skip
ENDOTOXIN = Attribute("endotoxin", "Endotoxin", "lal", Kind.NUMERIC, unit="EU/mL", precision=2,
                      limits=Range(None, 2.5))  # fmt: skip
DOSE = Attribute("dose", "Dose", "calc", Kind.NUMERIC, unit="10^6/kg", precision=2,
                 limits=Range(0.5, 2.5))  # fmt: skip
TEMPERATURE = Attribute("shift", "Temperature shift", "probe", Kind.NUMERIC, unit="°C",
                        precision=1, limits=Range(-1.0, 1.0))  # fmt: skip
GROWTH = ("no growth", "growth")
STERILITY = Attribute("sterility", "Sterility", "culture", Kind.CATEGORICAL, choices=GROWTH,
                      accepted=frozenset({"no growth"}))  # fmt: skip
POTENCY = Attribute("potency", "Potency", "elisa", Kind.MULTI, unit="pg/mL", precision=0,
                    limits=Range(500.0, None), replicates=3)  # fmt: skip
RATIO = Attribute("ratio", "CD4:CD8 ratio", "flow", Kind.REPORT, precision=2)


# -- rounding, then comparing ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "precision", "reported"),
    [(2.505, 2, 2.51), (-2.505, 2, -2.51), (0.125, 2, 0.13), (69.5, 0, 70.0), (-69.5, 0, -70.0),
     (1.05, 1, 1.1), (-1.05, 1, -1.1), (2.504, 2, 2.5)],
)  # fmt: skip
def test_a_result_is_rounded_half_away_from_zero(
    value: float, precision: int, reported: float
) -> None:
    # Python's round() gives 2.5 and 0.12 for the first and third (binary floats, half to even).
    assert round_to(value, precision) == reported


@pytest.mark.parametrize(
    ("attribute", "value", "reported", "conformance"),
    [
        (VIABILITY, 69.5, "70", Conformance.CONFORMS),  # reports as 70: it meets ≥ 70
        (VIABILITY, 69.49, "69", Conformance.OOS),
        (VIABILITY, 70, "70", Conformance.CONFORMS),  # the limit is closed
        (VIABILITY, 1e6, "1000000", Conformance.CONFORMS),  # no upper limit
        (ENDOTOXIN, 2.504, "2.50", Conformance.CONFORMS),  # reports as 2.50: it meets ≤ 2.5
        (ENDOTOXIN, 2.505, "2.51", Conformance.OOS),  # half away from zero: 2.51
        (ENDOTOXIN, 2.5, "2.50", Conformance.CONFORMS),
        (ENDOTOXIN, -3.0, "-3.00", Conformance.CONFORMS),  # no lower limit
        (DOSE, 0.495, "0.50", Conformance.CONFORMS),
        (DOSE, 0.494, "0.49", Conformance.OOS),
        (DOSE, 2.5049, "2.50", Conformance.CONFORMS),
        (DOSE, 2.505, "2.51", Conformance.OOS),
        (TEMPERATURE, -1.04, "-1.0", Conformance.CONFORMS),
        (TEMPERATURE, -1.05, "-1.1", Conformance.OOS),  # away from zero, below the limit
        (TEMPERATURE, 1.04, "1.0", Conformance.CONFORMS),
        (TEMPERATURE, 1.05, "1.1", Conformance.OOS),
    ],
)
def test_a_numeric_result_is_rounded_to_its_precision_then_compared_with_its_limits(
    attribute: Attribute, value: float, reported: str, conformance: Conformance
) -> None:
    evaluated = attribute.evaluate(value)
    assert (evaluated.reported, evaluated.conformance) == (reported, conformance)
    assert evaluated.number == float(reported)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, False, "82", (82.0,)])
def test_a_numeric_result_must_be_one_finite_number(value: object) -> None:
    with pytest.raises(InvalidInput, match=r"^viability .*expected a"):
        VIABILITY.evaluate(value)  # type: ignore[arg-type]


def test_a_negative_value_that_rounds_to_zero_reports_as_zero() -> None:
    assert ENDOTOXIN.evaluate(-0.004).reported == "0.00"


@pytest.mark.parametrize("answer", ["no growth", "No Growth", "  NO GROWTH\t"])
def test_a_categorical_answer_is_read_whatever_its_case_and_surrounding_space(
    answer: str,
) -> None:
    evaluated = STERILITY.evaluate(answer)
    assert evaluated == STERILITY.evaluate("no growth")
    assert (evaluated.reported, evaluated.number) == ("no growth", None)
    assert evaluated.conformance is Conformance.CONFORMS


def test_a_categorical_answer_not_accepted_is_out_of_specification() -> None:
    assert STERILITY.evaluate(" Growth ").conformance is Conformance.OOS
    assert STERILITY.evaluate("growth").reported == "growth"


@pytest.mark.parametrize("answer", ["sterile", "", 0.0, ("no growth",)])
def test_an_answer_not_among_the_choices_is_refused_naming_the_attribute_and_the_choices(
    answer: object,
) -> None:
    with pytest.raises(InvalidInput, match=r"^sterility .*expected one of no growth, growth$"):
        STERILITY.evaluate(answer)  # type: ignore[arg-type]


def test_a_categorical_attribute_built_with_capitalised_choices_takes_its_own_answers() -> None:
    culture = Attribute("culture", "Culture", "culture", Kind.CATEGORICAL,
                        choices=("No growth", "Growth"),
                        accepted=frozenset({"No growth"}))  # fmt: skip
    assert culture.evaluate("No growth").conformance is Conformance.CONFORMS


def test_a_multi_valued_result_is_the_mean_of_its_replicates_rounded_then_compared() -> None:
    conforms = POTENCY.evaluate((499.0, 499.0, 500.5))  # mean 499.5 reports as 500
    assert (conforms.reported, conforms.number) == ("500 (mean of 3)", 500.0)
    assert conforms.conformance is Conformance.CONFORMS
    oos = POTENCY.evaluate((499.0, 499.0, 500.4))  # mean 499.47 reports as 499
    assert (oos.reported, oos.conformance) == ("499 (mean of 3)", Conformance.OOS)
    # Not the smallest, nor the first replicate: the mean.
    assert POTENCY.evaluate((100.0, 700.0, 800.0)).conformance is Conformance.CONFORMS
    assert POTENCY.evaluate((900.0, 300.0, 200.0)).conformance is Conformance.OOS


def test_the_mean_of_replicates_rounds_half_away_from_zero() -> None:
    duplicate = Attribute("endotoxin", "Endotoxin", "lal", Kind.MULTI, unit="EU/mL", precision=2,
                          limits=Range(None, 2.5), replicates=2)  # fmt: skip
    assert duplicate.evaluate((2.5, 2.51)).reported == "2.51 (mean of 2)"  # mean 2.505
    assert duplicate.evaluate((2.5, 2.51)).conformance is Conformance.OOS
    assert duplicate.evaluate((2.5, 2.508)).conformance is Conformance.CONFORMS  # 2.504


def test_the_mean_of_replicates_is_rounded_as_the_decimal_it_is() -> None:
    duplicate = Attribute("titre", "Titre", "qpcr", Kind.MULTI, precision=2,
                          limits=Range(1.14, None), replicates=2)  # fmt: skip
    evaluated = duplicate.evaluate((1.13, 1.14))  # mean 1.135 reports as 1.14
    assert (evaluated.reported, evaluated.conformance) == ("1.14 (mean of 2)", Conformance.CONFORMS)


@pytest.mark.parametrize(
    ("value", "got"),
    [((500.0, 600.0), "got 2"), ((1.0, 2.0, 3.0, 4.0), "got 4"), (550.0, "got one")],
)
def test_a_multi_valued_result_needs_its_number_of_replicates(value: object, got: str) -> None:
    with pytest.raises(InvalidInput, match=f"^potency: expected 3 replicate values, {got}$"):
        POTENCY.evaluate(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [math.nan, math.inf, True, "600"])
def test_each_replicate_must_be_a_finite_number(bad: object) -> None:
    with pytest.raises(InvalidInput, match=r"^potency .*expected a"):
        POTENCY.evaluate((600.0, bad, 600.0))  # type: ignore[arg-type]


def test_a_report_only_result_never_fails_a_number_is_rounded_a_text_kept() -> None:
    number = RATIO.evaluate(1.235)
    assert (number.reported, number.number, number.conformance) == (
        "1.24",
        1.24,
        Conformance.REPORTED,
    )
    assert RATIO.evaluate(-1e9).conformance is Conformance.REPORTED
    text = RATIO.evaluate("  not calculable (CD8 below LOQ) ")
    assert (text.reported, text.number) == ("not calculable (CD8 below LOQ)", None)
    assert text.conformance is Conformance.REPORTED


@pytest.mark.parametrize("value", ["", "   ", math.nan, math.inf, True])
def test_a_report_only_result_refuses_an_empty_text_a_non_finite_number_and_a_boolean(
    value: object,
) -> None:
    with pytest.raises(InvalidInput, match=r"^ratio"):
        RATIO.evaluate(value)  # type: ignore[arg-type]


# -- what the analyst types --------------------------------------------------------------


def test_typed_text_is_read_as_the_attribute_s_kind_of_value() -> None:
    assert VIABILITY.parse(" 69.5 ") == 69.5
    assert TEMPERATURE.parse("\u22121.05") == -1.05  # the Unicode minus sign
    assert TEMPERATURE.parse("-1.05") == -1.05
    assert POTENCY.parse("1200, 1250,1300") == (1200.0, 1250.0, 1300.0)
    assert POTENCY.parse("1200; 1250; \u221213") == (1200.0, 1250.0, -13.0)
    assert POTENCY.parse("1200, 1250, ") == (1200.0, 1250.0)  # refused by evaluate: 2 of 3
    assert STERILITY.parse("  No Growth ") == "No Growth"
    assert RATIO.parse(" 1.5 ") == 1.5
    assert RATIO.parse(" pale yellow ") == "pale yellow"


@pytest.mark.parametrize(
    ("attribute", "text"),
    [(VIABILITY, "82 %"), (VIABILITY, ""), (VIABILITY, "nan"), (VIABILITY, "inf"),
     (VIABILITY, "1,5"), (POTENCY, "1200, x, 1300"), (POTENCY, "1200, inf, 1300")],
)  # fmt: skip
def test_typed_text_that_is_not_a_finite_number_is_refused_naming_the_attribute(
    attribute: Attribute, text: str
) -> None:
    with pytest.raises(InvalidInput, match=f"^{attribute.name} .*expected a"):
        attribute.parse(text)


@pytest.mark.parametrize("text", ["nan", "inf"])
def test_a_non_finite_number_typed_for_a_report_only_attribute_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        RATIO.evaluate(RATIO.parse(text))


@pytest.mark.parametrize(
    ("attribute", "criterion"),
    [(VIABILITY, "≥ 70 %"), (ENDOTOXIN, "≤ 2.5 EU/mL"), (DOSE, "0.5–2.5 10^6/kg"),
     (TEMPERATURE, "-1 to 1 °C"), (POTENCY, "mean of 3: ≥ 500 pg/mL"), (STERILITY, "no growth"),
     (RATIO, "report"),
     (Attribute("x", "X", "m", Kind.NUMERIC, limits=Range(None, 5.0)), "≤ 5"),
     (Attribute("x", "X", "m", Kind.CATEGORICAL, choices=("a", "b", "c"),
                accepted=frozenset({"c", "a"})), "a or c")],
)  # fmt: skip
def test_the_criterion_is_printed_as_the_certificate_shows_it(
    attribute: Attribute, criterion: str
) -> None:
    assert attribute.criterion == criterion


def test_an_attribute_that_cannot_be_is_refused() -> None:
    with pytest.raises(InvalidInput, match="precision 10"):
        Attribute("x", "X", "m", Kind.NUMERIC, precision=10, limits=Range(0.0, None))
    with pytest.raises(InvalidInput, match=r"^x: accepted answers must be among the choices"):
        Attribute("x", "X", "m", Kind.CATEGORICAL, choices=("a", "b"), accepted=frozenset({"c"}))
    with pytest.raises(InvalidInput, match=r"^x: accepted answers"):
        Attribute("x", "X", "m", Kind.CATEGORICAL, choices=("a", "b"))
    with pytest.raises(InvalidInput, match=r"^x: a multi-valued result has 2 or more"):
        Attribute("x", "X", "m", Kind.MULTI, limits=Range(0.0, None), replicates=1)


# -- specification files -----------------------------------------------------------------

MINIMAL = """
schema_version: 1
code: TEST-REL
product: TEST
stage: release
version: 1
title: Test release specification
methods:
  flow: {title: Flow cytometry, version: "1.0", turnaround_hours: 4}
  rapid: {title: Rapid sterility, version: "1.0", turnaround_hours: 72}
  culture: {title: 14-day culture, version: "5.0", turnaround_hours: 336}
  elisa: {title: ELISA, version: "2.0", turnaround_hours: 48}
attributes:
  viability: {title: Viability, method: flow, kind: numeric, unit: "%", precision: 0, min: 70}
  sterility_rapid: {title: Sterility (rapid), method: rapid, kind: categorical,
                    choices: [No Growth, growth], accepted: [no growth]}
  sterility_culture: {title: Sterility (culture), method: culture, kind: categorical,
                      choices: [no growth, growth], accepted: [no growth],
                      pending_allowed_with: sterility_rapid}
  potency: {title: Potency, method: elisa, kind: multi, replicates: 3, unit: pg/mL,
            precision: 0, min: 500}
  ratio: {title: CD4:CD8 ratio, method: flow, kind: report, precision: 2}
"""


@pytest.mark.parametrize(
    ("name", "code", "stage", "count"),
    [("cart-cd19-acceptance.yaml", "CART-CD19-APH", Stage.STARTING_MATERIAL, 6),
     ("cart-cd19-in-process.yaml", "CART-CD19-IPC", Stage.IN_PROCESS, 2),
     ("cart-cd19-release.yaml", "CART-CD19-REL", Stage.RELEASE, 12)],
)  # fmt: skip
def test_the_shipped_example_specifications_load(
    name: str, code: str, stage: Stage, count: int
) -> None:
    spec = load_spec(EXAMPLES / name)
    assert (spec.code, spec.product, spec.stage, spec.version) == (code, "CART-CD19", stage, 1)
    assert len(spec.attributes) == count
    assert all(spec.method_of(a).code == a.method for a in spec.attributes)


def test_the_example_release_specification_says_what_the_certificate_prints() -> None:
    spec = load_spec(EXAMPLES / "cart-cd19-release.yaml")
    assert spec.conditional_pairs == {"sterility_culture": "sterility_rapid"}
    assert spec.attribute("dose").criterion == "0.5–2.5 10^6/kg"
    assert spec.attribute("potency").evaluate((499.0, 500.0, 500.0)).reported == "500 (mean of 3)"
    assert spec.method_of(spec.attribute("sterility_culture")).turnaround_hours == 336
    with pytest.raises(NotFound, match="has no attribute 'purity' \\(it has viability, car_"):
        spec.attribute("purity")


def test_a_minimal_file_loads_and_its_answers_are_read_in_lower_case() -> None:
    spec = parse_spec(MINIMAL)
    rapid = spec.attribute("sterility_rapid")
    assert rapid.choices == ("no growth", "growth")
    assert rapid.evaluate("No Growth").conformance is Conformance.CONFORMS
    assert spec.attribute("potency").replicates == 3
    assert spec.attribute("viability").limits == Range(70.0, None)
    assert spec.methods["culture"].version == "5.0"


@pytest.mark.parametrize(
    ("change", "place"),
    [
        (("method: flow, kind: numeric", "method: flw, kind: numeric"),
         "attributes.viability.method: 'flw' is not among the methods of this file"),
        (("precision: 0, min: 70}", "precision: 0, min: 70, max: 60}"),
         "attributes.viability: min 70 > max 60"),
        (("precision: 0, min: 70}", "precision: 0}"),
         "attributes.viability: a numeric attribute needs min, max or both"),
        (("precision: 0, min: 500}", "precision: 0}"),
         "attributes.potency: a multi attribute needs min, max or both"),
        (("kind: report, precision: 2}", "kind: report, precision: 2, max: 3}"),
         "attributes.ratio: a report attribute has no min or max"),
        (("accepted: [no growth],\n                      pending", "pending"),
         "attributes.sterility_culture.accepted: name the answers that conform"),
        (("accepted: [no growth],\n                      pending", "accepted: [sterile], pending"),
         "attributes.sterility_culture.accepted: 'sterile' is not among the choices"),
        (("choices: [no growth, growth], accepted", "choices: [no growth], accepted"),
         "attributes.sterility_culture.choices: a categorical result has 2 or more choices"),
        (("kind: report, precision: 2}", "kind: report, precision: 2, choices: [a, b]}"),
         "attributes.ratio: only a categorical attribute has choices"),
        (("kind: report, precision: 2}", "kind: report, precision: 2, replicates: 3}"),
         "attributes.ratio.replicates: only a multi-valued attribute has replicates"),
        (("replicates: 3", "replicates: 1"),
         "attributes.potency.replicates: a multi-valued result has 2 or more"),
        (("stage: release", "stage: in-process"),
         "attributes.sterility_culture.pending_allowed_with: only at release"),
        (("pending_allowed_with: sterility_rapid", "pending_allowed_with: sterility"),
         "attributes.sterility_culture.pending_allowed_with: 'sterility' is not an attribute"),
        (("accepted: [no growth]}", "accepted: [no growth], pending_allowed_with: viability}"),
         "attributes.sterility_culture.pending_allowed_with: 'sterility_rapid' may be pending"),
        (("pending_allowed_with: sterility_rapid", "pending_allowed_with: sterility_culture"),
         "attributes.sterility_culture.pending_allowed_with: 'sterility_culture' may be pending"),
        (("methods:\n", "methods:\n  vcn: {title: VCN, version: '1', turnaround_hours: 24}\n"),
         "methods.vcn: no attribute uses it"),
        (("schema_version: 1", "schema_version: 2"),
         "schema_version: expected 1, this vein2vein reads no other"),
        (("unit: pg/mL", "units: pg/mL"),
         "attributes.potency.units: Extra inputs are not permitted"),
        (("title: Test", "colour: red\ntitle: Test"), "colour: Extra inputs are not permitted"),
        (("kind: numeric", "kind: number"), "attributes.viability.kind: Input should be 'numeric'"),
        (("precision: 2}", "precision: 10}"), "attributes.ratio.precision"),
        (("turnaround_hours: 4}", "turnaround_hours: 0}"), "methods.flow.turnaround_hours"),
        (("\n  ratio:", "\n  Ratio!:"), "attributes.Ratio!"),
        (("stage: release", "stage: final"), "stage: Input should be"),
        (("code: TEST-REL", "code: TEST REL"), "code: String should match pattern"),
        (("attributes:", "attribute:"), "attributes: Field required"),
    ],
)  # fmt: skip
def test_every_error_names_its_place(change: tuple[str, str], place: str) -> None:
    assert change[0] in MINIMAL
    with pytest.raises(InvalidSpecificationFile) as refused:
        parse_spec(MINIMAL.replace(*change, 1), "test.yaml")
    assert any(p.startswith(place) for p in refused.value.problems), refused.value.problems
    assert str(refused.value).startswith("test.yaml: ")
    assert refused.value.code == "invalid-specification"


def test_all_problems_of_a_file_are_reported_at_once() -> None:
    text = (
        MINIMAL.replace("method: flow, kind: numeric", "method: flw, kind: numeric")
        .replace("precision: 0, min: 500}", "precision: 0, min: 600, max: 500}")
        .replace("pending_allowed_with: sterility_rapid", "pending_allowed_with: sterility")
        .replace("replicates: 3", "replicates: 1")
        .replace(
            "methods:\n", "methods:\n  vcn: {title: VCN, version: '1', turnaround_hours: 24}\n"
        )
    )
    with pytest.raises(InvalidSpecificationFile) as refused:
        parse_spec(text)
    places = sorted(p.split(":")[0] for p in refused.value.problems)
    assert places == [
        "attributes.potency",
        "attributes.potency.replicates",
        "attributes.sterility_culture.pending_allowed_with",
        "attributes.viability.method",
        "methods.vcn",
    ]


def test_every_error_of_the_file_s_shape_is_reported_at_once() -> None:
    text = MINIMAL.replace("unit: pg/mL", "units: pg/mL").replace(
        "\nversion: 1\n", "\nversion: 0\n"
    )
    with pytest.raises(InvalidSpecificationFile) as refused:
        parse_spec(text)
    places = sorted(p.split(":")[0] for p in refused.value.problems)
    assert places == ["attributes.potency.units", "version"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [("schema_version: 1\ncode: [\n: :", "line 3, column 1: not YAML"),
     ("code: TEST\n  title: x", "line 2, column 8: not YAML (mapping values are not allowed"),
     ("", "(file): expected keys and their values (schema_version: …), got an empty file"),
     ("- a list", "(file): expected keys and their values (schema_version: …), got a list")],
)  # fmt: skip
def test_a_file_that_is_not_a_yaml_mapping_is_refused_with_the_place(
    text: str, problem: str
) -> None:
    with pytest.raises(InvalidSpecificationFile) as refused:
        parse_spec(text)
    assert [p[: len(problem)] for p in refused.value.problems] == [problem]


def test_a_file_that_cannot_be_read_is_refused() -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        load_spec(Path("/nonexistent/spec.yaml"))


def test_an_attribute_listed_twice_is_refused() -> None:
    twice = MINIMAL + "  viability: {title: Viability, method: flow, kind: numeric, min: 50}\n"
    with pytest.raises(InvalidSpecificationFile, match="viability"):
        parse_spec(twice)
