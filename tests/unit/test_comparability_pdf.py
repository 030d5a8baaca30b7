"""The comparability report's HTML (what the PDF is made from), from a comparison made of
known values: the method as stated, each attribute's numbers and conclusion, a plot per
attribute, and the overall conclusion."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from vein2vein.analytics.comparability import compare_attribute
from vein2vein.domain.people import ALL_SITES, Actor, Role
from vein2vein.domain.specification import Attribute, Kind, Range
from vein2vein.services.comparability import Comparison
from vein2vein.services.comparability_pdf import comparison_html

QA = Actor("qa.cp1", "Quinn Assurance", frozenset({Role.QA_REVIEWER}), ALL_SITES)
AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
BEFORE = [88.0, 90.0, 89.0, 91.0, 87.0, 89.0, 90.0, 88.0]
SAME = [89.0, 88.0, 90.0, 89.0, 91.0, 88.0]
SHIFTED = [81.0, 80.0, 82.0, 79.0, 83.0, 81.0]
VIABILITY = Attribute("viability", "Viability", "viability-7aad", Kind.NUMERIC, unit="%",
                      limits=Range(70.0, None))  # fmt: skip
VCN = Attribute("vcn", "Vector copy number <VCN>", "vcn-ddpcr", Kind.NUMERIC,
                unit="copies/cell", precision=1, limits=Range(None, 5.0))  # fmt: skip


def comparison(test_viability: list[float]) -> Comparison:
    vcn_before, vcn_after = [2.0, 2.2, 1.9, 2.1, 2.0, 2.3], [2.1, 2.0, 2.2, 1.9, 2.1]
    return Comparison(
        product="CART-CD19",
        stage="release",
        group="site",
        reference="POC1",
        test="POC2",
        rows=[
            compare_attribute("viability", BEFORE, test_viability),
            compare_attribute("vcn", vcn_before, vcn_after),
        ],
        attributes={"viability": VIABILITY, "vcn": VCN},
        values={"viability": (BEFORE, test_viability), "vcn": (vcn_before, vcn_after)},
        skipped=[("potency", "2 and 5 results: at least 3 each needed")],
    )


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_report_states_the_method_with_its_margin_alpha_and_quality_range() -> None:
    text = text_of(comparison_html(comparison(SAME), by=QA, at=AT))

    assert "Comparability report — POC2 against POC1" in text
    assert "Printed 2026-11-20 09:30 UTC by Quinn Assurance (qa.cp1)" in text
    assert "Schuirmann's two one-sided tests" in text
    assert "α = 0.05" in text and "90 % confidence interval" in text
    assert "Margin: 1.5 × reference SD" in text
    assert "At least 90 % of the test values" in text and "mean ± 3 reference" in text


def test_equivalent_groups_say_so_in_the_banner_and_the_conclusion() -> None:
    c = comparison(SAME)
    text = text_of(comparison_html(c, by=QA, at=AT))

    assert c.equivalent
    assert text.count("COMPARABLE — POC2 is equivalent to POC1 on all 2 attributes") == 2
    assert "NOT SHOWN" not in text


def test_a_shifted_attribute_is_not_shown_equivalent_and_named_with_its_reason() -> None:
    c = comparison(SHIFTED)
    html = comparison_html(c, by=QA, at=AT)
    text = text_of(html)
    row = c.rows[0]

    assert row.conclusion == "not shown equivalent"
    assert "NOT SHOWN COMPARABLE — 1 of 2 attributes not shown equivalent: Viability" in text
    assert row.reason in html.replace("&#x27;", "'")
    # The viability row: n, mean ± SD of each group, the difference and the margin.
    t = row.tost
    assert f"8 · {t.mean_reference:.1f} ± {t.sd_reference:.2f}" in text
    assert f"6 · {t.mean_test:.1f} ± {t.sd_test:.2f}" in text
    assert f"± {t.margin:.2f}" in text


def test_every_attribute_gets_its_plot_and_what_was_not_compared_is_listed() -> None:
    html = comparison_html(comparison(SHIFTED), by=QA, at=AT)

    # One strip plot per attribute and the plot of the differences.
    assert html.count("<svg ") == 3
    # The shifted test values outside the quality range are drawn red.
    assert html.count('fill="#b42318"') >= 6
    assert "Vector copy number &lt;VCN&gt;" in html and "<VCN>" not in html
    assert "Not compared" in text_of(html) and "2 and 5 results" in html
