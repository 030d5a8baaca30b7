"""`v2v spc …`, `v2v compare tost`, `v2v spec propose` as a user runs them: a real `v2v`
process, on a CSV file of one's own and on the records.

The CSV commands need no database; the expected numbers are computed here from the file
with numpy (the definitions), not by calling vein2vein's statistics.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests import network
from tests.conftest import settings_for
from tests.e2e.test_cli import Cli
from tests.e2e.test_cli_records import Plant, as_json, words
from vein2vein.domain.batch import BatchState
from vein2vein.domain.clock import SystemClock
from vein2vein.services.app import App

D2 = 2 / np.sqrt(np.pi)  # d2 for ranges of 2 = 1.128 (Montgomery, Appendix VI)
VALUES = [
    10.1, 9.9, 10.0, 10.2, 9.8, 10.1, 10.0, 9.9, 10.1, 10.0,
    10.2, 9.9, 10.0, 10.1, 9.8, 10.0, 10.1, 9.9, 10.0, 10.1,
    10.0, 12.5, 10.1, 9.9, 10.0, 10.2, 9.9, 10.0, 10.1, 10.0,
]  # fmt: skip
OUTLIER = 21  # 0-based: file row 23


@pytest.fixture
def own_csv(tmp_path: Path) -> Path:
    path = tmp_path / "my data.csv"
    rows = [f"L{i:03d},{'A' if i < 15 else 'B'},{v}" for i, v in enumerate(VALUES)]
    path.write_text("lot,site,titre\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def offline(tmp_path: Path) -> Cli:
    return Cli(f"sqlite:///{tmp_path / 'never-created.sqlite3'}")


def test_a_chart_of_my_csv_names_the_rule_and_point_and_keeps_an_excluded_row_out(
    offline: Cli, own_csv: Path
) -> None:
    out = offline.json("spc", "chart", "--csv", str(own_csv), "--column", "titre",
                       "--label", "lot", "--exclude", "4=pipette fault")  # fmt: skip
    base = np.array(VALUES[:20])
    kept = np.delete(base, 2)  # file row 4 is point 2
    assert out["center"] == pytest.approx(kept.mean())
    sigma = np.abs(np.diff(kept)).mean() / D2
    assert out["ucl"] == pytest.approx(kept.mean() + 3 * sigma)
    assert out["lcl"] == pytest.approx(kept.mean() - 3 * sigma)
    assert out["baseline"] == 20
    assert out["excluded"] == [{"point": 2, "label": "L002", "reason": "pipette fault"}]
    we1 = [v for v in out["violations"] if v["rule"] == "WE1"]
    assert we1 == [{"rule": "WE1", "points": [OUTLIER], "description": "one point beyond 3 sigma"}]
    assert out["labels"][OUTLIER] == "L021"
    table = words(offline("spc", "chart", "--csv", str(own_csv), "--column", "titre",
                          "--label", "lot").stdout)  # fmt: skip
    assert "WE1 one point beyond 3 sigma 1 1 L021" in table


def test_capability_and_tolerance_of_my_csv_use_the_methods_keys(
    offline: Cli, own_csv: Path
) -> None:
    x = np.array(VALUES)
    cap = offline.json("spc", "capability", "--csv", str(own_csv), "--column", "titre",
                       "--lsl", "9", "--usl", "11.5")  # fmt: skip
    within = np.abs(np.diff(x)).mean() / D2
    assert cap["cp"]["estimate"] == pytest.approx(2.5 / (6 * within))
    assert cap["pp"]["estimate"] == pytest.approx(2.5 / (6 * x.std(ddof=1)))
    assert cap["ppk"]["estimate"] == pytest.approx(
        min(x.mean() - 9, 11.5 - x.mean()) / (3 * x.std(ddof=1))
    )
    assert cap["cp"]["low"] < cap["cp"]["estimate"] < cap["cp"]["high"]
    assert any("not normal" in w for w in cap["warnings"])  # the outlier
    tol = offline.json("spc", "tolerance", "--csv", str(own_csv), "--column", "titre",
                       "--sides", "high")  # fmt: skip
    # One-sided factor for n = 30, 99 % / 95 %: 3.064 (NIST e-Handbook §7.2.6.3 table;
    # Natrella, Experimental Statistics, Table A-7).
    assert tol["k"] == pytest.approx(3.064, abs=1e-3)
    assert tol["lower"] is None
    assert tol["upper"] == pytest.approx(x.mean() + tol["k"] * x.std(ddof=1))
    assert "needed" in tol["nonparametric"]["error"]  # 30 points cannot carry 99 %/95 %


def test_tost_on_my_csv_states_the_margin_and_the_conclusion_follows_it(
    offline: Cli, own_csv: Path
) -> None:
    args = ("compare", "tost", "--csv", str(own_csv), "--column", "titre", "--group", "site",
            "--reference", "A", "--test", "B")  # fmt: skip
    wide = offline.json(*args, "--margin", "1.0")
    narrow = offline.json(*args, "--margin", "0.05")
    a, b = np.array(VALUES[:15]), np.array(VALUES[15:])
    assert wide["difference"] == pytest.approx(b.mean() - a.mean())
    assert wide["margin"] == 1.0 and wide["margin_basis"] == "given"
    assert wide["equivalent"] is True and wide["p_value"] < 0.05
    assert narrow["equivalent"] is False and narrow["p_value"] >= 0.05
    assert wide["ci_low"] == narrow["ci_low"]  # the interval does not depend on the margin
    said = words(offline(*args, "--margin", "0.05").stdout)
    assert "not shown equivalent" in said and "margin ±0.05 (given)" in said


def test_bad_csv_input_is_refused_naming_the_file_row_and_column(
    offline: Cli, tmp_path: Path, own_csv: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("lot,titre\nL1,10.0\nL2,ten\n", encoding="utf-8")
    done = offline("spc", "chart", "--csv", str(bad), "--column", "titre", code=2)
    assert "bad.csv, row 3, column 'titre': 'ten' is not a number" in done.stderr
    done = offline("spc", "chart", "--csv", str(own_csv), "--column", "dose", code=2)
    assert "no column 'dose'; the columns are lot, site, titre" in done.stderr
    done = offline("spc", "chart", "--csv", str(tmp_path / "nope.csv"), "--column", "x", code=2)
    assert "nope.csv: no such file" in done.stderr
    done = offline("spc", "chart", "--csv", str(own_csv), code=2)
    assert "--csv needs --column" in done.stderr
    done = offline("spc", "chart", "--csv", str(own_csv), "--column", "titre",
                   "--exclude", "four=bad", code=2)  # fmt: skip
    assert "expected ROW=REASON" in done.stderr
    done = offline("compare", "tost", "--csv", str(own_csv), "--column", "titre", "--group",
                   "site", "--reference", "A", "--test", "C", "--margin", "1", code=2)  # fmt: skip
    assert "no row with site = 'C'; the groups are A, B" in done.stderr


@pytest.fixture
def history(database_url: str) -> Iterator[Plant]:
    """Eight accepted apheresis at CP1 with known viabilities."""
    app = App.connect(database_url, clock=SystemClock(), settings=settings_for(database_url))
    app.upgrade()
    network.small_network(app)
    for i, viability in enumerate((95, 96, 94, 95, 97, 95, 94, 88)):
        lot = network.order(app, f"PT-{i + 400:06d}")
        network.advance(app, lot, BatchState.RECEIVED)
        network.pass_acceptance(app, lot, viability=str(viability))
    yield Plant(app, database_url, "", {})
    app.dispose()


def test_the_records_are_charted_and_a_point_excluded_with_its_reason(history: Plant) -> None:
    qa = history("qa.cp1")
    args = ("spc", "chart", "--product", "CART-CD19", "--stage", "starting-material",
            "--attribute", "viability")  # fmt: skip
    chart = as_json(qa(*args, "--json"))
    assert chart["values"] == [95, 96, 94, 95, 97, 95, 94, 88]
    assert chart["baseline"] == 8 and chart["center"] == pytest.approx(94.25)
    shown = as_json(qa("qc", "show", chart["labels"][7], "--json"))
    result_id = next(r["id"] for s in shown["samples"] for r in s["results"]
                     if r["attribute"] == "viability")  # fmt: skip
    refused = history("operator.cp1")("spc", "exclude", str(result_id), "--reason",
                                      "sample haemolysed", code=11)  # fmt: skip
    assert "spc.exclude" in refused.stderr
    done = qa("spc", "exclude", str(result_id), "--reason", "sample haemolysed in transit")
    assert "left out of its charts' limits" in done.stdout
    after = as_json(qa(*args, "--json"))
    assert after["excluded"][0]["reason"] == "sample haemolysed in transit"
    assert after["center"] == pytest.approx(np.mean([95, 96, 94, 95, 97, 95, 94]))
    done = qa("spc", "reinstate", str(result_id), "--reason", "haemolysis ruled out later")
    assert "back in its charts' limits" in done.stdout
    assert as_json(qa(*args, "--json"))["center"] == pytest.approx(94.25)
    refused = qa("spc", "chart", "--product", "CART-CD19", "--attribute", "identity", code=2)
    assert "identity" in refused.stderr and "expected one of" in refused.stderr


def test_subgroup_and_count_charts_of_my_csv(offline: Cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(10, 1, 40).round(2)
    inspected = rng.integers(80, 121, 40)
    defects = rng.binomial(inspected, 0.05)
    defects[33] += 9
    path = tmp_path / "lots.csv"
    rows = [f"{v},{d},{n}" for v, d, n in zip(values, defects, inspected, strict=True)]
    path.write_text("value,defects,inspected\n" + "\n".join(rows) + "\n", encoding="utf-8")

    xbar = offline.json("spc", "chart", "--csv", str(path), "--column", "value",
                        "--chart", "xbar-r", "--subgroup", "4")  # fmt: skip
    groups = values.reshape(-1, 4)
    r_bar = float(np.ptp(groups, axis=1).mean())
    assert xbar["baseline"] == 10 and xbar["center"] == pytest.approx(groups.mean())
    # A2 for subgroups of 4 is 0.729 (Montgomery, Appendix VI).
    assert xbar["ucl"] == pytest.approx(groups.mean() + 0.729 * r_bar, rel=1e-3)
    assert xbar["companion"]["center"] == pytest.approx(r_bar)

    p = offline.json("spc", "chart", "--csv", str(path), "--column", "defects",
                     "--chart", "p", "--sizes", "inspected")  # fmt: skip
    p_bar = defects[:20].sum() / inspected[:20].sum()
    assert p["center"] == pytest.approx(p_bar)
    assert p["ucl"][33] == pytest.approx(p_bar + 3 * np.sqrt(p_bar * (1 - p_bar) / inspected[33]))
    assert {"rule": "WE1", "points": [33], "description": "one point beyond 3 sigma"} in (
        p["violations"]
    )
    done = offline("spc", "chart", "--csv", str(path), "--column", "value", "--chart",
                   "xbar-s", "--subgroup", "3", code=2)  # fmt: skip
    assert "40 values do not make whole subgroups of 3" in done.stderr
    done = offline("spc", "chart", "--csv", str(path), "--column", "defects", "--chart", "u",
                   code=2)  # fmt: skip
    assert "give --sizes" in done.stderr
