"""Control charts and run rules (analytics/control_charts.py), each rule on a sequence built
to break it and on a near miss that must not."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vein2vein.analytics import run_rules as run_rules_module
from vein2vein.analytics.control_charts import (
    RULES,
    CusumChart,
    EwmaChart,
    IndividualsChart,
    XbarRChart,
    XbarSChart,
    attribute_chart,
    run_rules,
)
from vein2vein.domain.errors import InvalidInput


def fired(z: list[float], rule: str) -> list[tuple[int, ...]]:
    return [v.points for v in run_rules(z, [rule])]


@pytest.mark.parametrize(
    ("rule", "breaks", "near_miss"),
    [
        ("WE1", [0, 0.5, 3.2], [0, 0.5, 2.9]),
        ("N1", [0, -3.1], [0, -2.99]),
        ("WE2", [2.5, 0.1, 2.2], [2.5, 0.1, -2.2]),  # 2 of 3 beyond 2σ, same side
        ("N5", [-2.1, -2.3, 0], [-2.1, 2.3, 0]),
        ("WE3", [1.5, 1.2, 0.2, 1.1, 1.9], [1.5, 1.2, 0.2, 0.9, 1.9]),
        ("N6", [-1.5, -1.2, -1.1, 0.5, -1.9], [-1.5, -1.2, 1.1, 0.5, -1.9]),
        ("WE4", [0.1] * 8, [0.1] * 7 + [-0.1]),
        ("N2", [-0.2] * 9, [-0.2] * 8 + [0.2]),
        ("N3", [0, 0.1, 0.2, 0.3, 0.4, 0.5], [0, 0.1, 0.2, 0.3, 0.3, 0.5]),
        ("N4", [0.5, -0.5] * 7, [0.5, -0.5] * 6 + [0.5, 0.6]),
        ("N7", [0.5, -0.5] * 7 + [0.2], [0.5, -0.5] * 7 + [1.2]),
        ("N8", [1.5, -1.5] * 4, [1.5, -1.5] * 3 + [1.5, -0.5]),
    ],
)
def test_each_rule_fires_on_its_pattern_and_not_on_a_near_miss(
    rule: str, breaks: list[float], near_miss: list[float]
) -> None:
    found = fired(breaks, rule)
    assert found, f"{rule} did not fire"
    assert found[-1][-1] == len(breaks) - 1  # it names the points, ending at the last
    assert fired(near_miss, rule) == []


def test_a_run_names_every_window_it_completes() -> None:
    z = [0.3] * 10  # 10 on one side: WE4 completes at points 7, 8 and 9
    assert [v.points[-1] for v in run_rules(z, ["WE4"])] == [7, 8, 9]
    assert next(iter(run_rules(z, ["WE4"]))).points == tuple(range(8))
    assert run_rules(z, ["WE4"]).points("WE4").tolist() == list(range(10))  # each point once
    assert run_rules(z, ["WE4", "N2"]).counts() == {"WE4": 3, "N2": 2}


def test_an_unknown_rule_or_a_bad_sequence_is_refused() -> None:
    with pytest.raises(InvalidInput, match="expected among"):
        run_rules([0.0], ["WE9"])
    with pytest.raises(InvalidInput, match="point 2 is not a finite number"):
        IndividualsChart().fit([1.0, float("nan"), 2.0])
    with pytest.raises(InvalidInput, match="fit it on a baseline first"):
        IndividualsChart().evaluate([1.0])


def test_individuals_limits_are_the_mean_plus_minus_three_mr_bar_over_d2() -> None:
    x = [10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.1, 10.0]  # MR̄ = 1.4 / 7 = 0.2
    chart = IndividualsChart().fit(x)
    result = chart.evaluate(x)
    assert chart.center == pytest.approx(10.0125)
    assert result.ucl[0] == pytest.approx(10.0125 + 3 * 0.2 / 1.128379, abs=1e-5)
    assert result.companion is not None and result.companion.ucl[0] == pytest.approx(
        3.267 * 0.2, abs=1e-3
    )


def test_phase_one_excludes_points_with_their_reason_and_phase_two_monitors() -> None:
    baseline = [10.0, 10.1, 9.9, 14.0, 10.0, 10.1, 9.9, 10.0]  # point 3: a known assignable cause
    kept = IndividualsChart().fit(baseline, exclude=[3])
    whole = IndividualsChart().fit(baseline)
    assert kept.center == pytest.approx(np.mean([10.0, 10.1, 9.9, 10.0, 10.1, 9.9, 10.0]))
    assert kept.sigma < whole.sigma
    monitored = kept.evaluate([10.0, 10.6])
    assert [v.points for v in monitored.violations if v.rule == "WE1"] == [(1,)]
    with pytest.raises(InvalidInput, match="excluded point 9"):
        IndividualsChart().fit(baseline, exclude=[9])


def test_xbar_r_and_xbar_s_limits_use_the_subgroup_constants() -> None:
    subgroups = [[10, 11, 9, 10], [10, 12, 10, 9], [11, 10, 10, 10], [9, 10, 11, 12]]
    r = XbarRChart().fit(subgroups)
    assert r.r_bar == pytest.approx((2 + 3 + 1 + 3) / 4)
    result = r.evaluate(subgroups)
    assert result.ucl[0] == pytest.approx(r.center + 0.729 * r.r_bar, abs=1e-3)
    assert result.companion is not None and result.companion.ucl[0] == pytest.approx(
        2.282 * r.r_bar, abs=1e-3
    )
    s = XbarSChart().fit(subgroups)
    assert s.evaluate(subgroups).ucl[0] == pytest.approx(s.center + 1.628 * s.s_bar, abs=1e-3)
    with pytest.raises(InvalidInput, match="fitted on 4"):
        r.evaluate([[1, 2, 3]])


def test_a_p_chart_has_limits_for_each_sample_size() -> None:
    defectives, sizes = [2, 3, 1, 9], [50, 100, 50, 100]
    result = attribute_chart("p", defectives, sizes, baseline=slice(0, 3))
    p_bar = 6 / 200
    assert result.center[0] == pytest.approx(p_bar)
    assert result.ucl[0] == pytest.approx(p_bar + 3 * np.sqrt(p_bar * (1 - p_bar) / 50))
    assert result.ucl[1] < result.ucl[0]  # a larger sample, narrower limits
    assert result.lcl[0] == 0.0  # never below zero
    assert [v.points for v in result.violations if v.rule == "WE1"] == [(3,)]


def test_c_u_and_np_charts() -> None:
    c = attribute_chart("c", [4, 5, 3, 6, 4, 15])
    assert c.center[0] == pytest.approx(37 / 6)
    assert c.ucl[0] == pytest.approx(37 / 6 + 3 * np.sqrt(37 / 6))
    u = attribute_chart("u", [4, 10], [2, 5])
    assert u.center[0] == pytest.approx(2.0) and u.values.tolist() == [2.0, 2.0]
    with pytest.raises(InvalidInput, match="sample size must be constant"):
        attribute_chart("np", [1, 2], [10, 20])
    with pytest.raises(InvalidInput, match="expected p, np, c or u"):
        attribute_chart("x", [1])


def test_ewma_follows_its_recursion_and_time_varying_limits() -> None:
    chart = EwmaChart(lam=0.2).fit([10.0, 10.2, 9.8, 10.0])
    result = chart.evaluate([11.0, 11.0])
    mu, sigma = chart.mu0, chart.sigma
    first = 0.2 * 11.0 + 0.8 * mu
    assert result.values[0] == pytest.approx(first)
    assert result.values[1] == pytest.approx(0.2 * 11.0 + 0.8 * first)
    assert result.ucl[0] - mu == pytest.approx(3 * sigma * np.sqrt(0.2 / 1.8 * (1 - 0.8**2)))
    assert result.ucl[1] > result.ucl[0]


def test_cusum_accumulates_beyond_the_reference_value_and_signals_past_h() -> None:
    chart = CusumChart(k=0.5, h=4.0)
    chart.mu0, chart.sigma = 10.0, 1.0
    result = chart.evaluate([10.0, 11.5, 11.5, 11.5, 11.5, 11.5])
    assert result.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert [v.points for v in result.violations] == [(5,)]  # 5 > h·σ = 4


# -- run rules against their wording -------------------------------------------------------
# run_rules works on blocks of flags with shifted ANDs and int8 sums; these tests hold it to
# a reference that reads each rule's window as the rule is worded, one window at a time.


def broken(rule: str, w: list[float]) -> bool:
    """Whether the window ``w`` (as long as the rule's) breaks ``rule``, point by point."""
    rises = [b > a for a, b in pairwise(w)]
    falls = [b < a for a, b in pairwise(w)]
    if rule in ("WE1", "N1"):
        return w[0] > 3 or w[0] < -3
    if rule in ("WE2", "N5"):
        return sum(x > 2 for x in w) >= 2 or sum(x < -2 for x in w) >= 2
    if rule in ("WE3", "N6"):
        return sum(x > 1 for x in w) >= 4 or sum(x < -1 for x in w) >= 4
    if rule in ("WE4", "N2"):
        return all(x > 0 for x in w) or all(x < 0 for x in w)
    if rule == "N3":
        return all(rises) or all(falls)
    if rule == "N4":
        turns = zip(rises, falls, rises[1:], falls[1:], strict=False)
        return all((r1 and f2) or (f1 and r2) for r1, f1, r2, f2 in turns)
    if rule == "N7":
        return all(-1 <= x <= 1 for x in w)
    assert rule == "N8"
    return all(x > 1 or x < -1 for x in w)


def reference(z: list[float], rule: str, ending: range | None = None) -> list[int]:
    """The end of every window of ``z`` that breaks ``rule`` (only those in ``ending``)."""
    size = RULES[rule][0]
    ends = range(size - 1, len(z)) if ending is None else ending
    return [end for end in ends if end >= size - 1 and broken(rule, z[end - size + 1 : end + 1])]


# Points on and either side of every threshold, and runs, trends and alternations long enough
# to break the rules and short enough to miss them by one.
_LEVELS = [-3.5, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
_point = st.one_of(
    st.sampled_from(_LEVELS),
    st.floats(-4, 4, allow_nan=False),
    st.sampled_from([1.0, 2.0, 3.0]).map(lambda t: float(np.nextafter(t, 9))),
)


@st.composite
def _segment(draw: st.DrawFn) -> list[float]:
    kind = draw(st.sampled_from(["noise", "side", "trend", "zigzag", "beyond", "within"]))
    length = draw(st.integers(0, 17))
    if kind == "noise":
        return draw(st.lists(_point, min_size=length, max_size=length))
    if kind == "side":  # a run on one side, sometimes broken by a zero
        sign = draw(st.sampled_from([-1.0, 1.0]))
        return [sign * abs(x) for x in draw(st.lists(_point, min_size=length, max_size=length))]
    if kind == "trend":  # rising or falling, sometimes with a tie
        steps = [draw(st.sampled_from([0.0, 0.1, 0.3, 1.0])) for _ in range(length)]
        start, sign = draw(_point), draw(st.sampled_from([-1.0, 1.0]))
        return [start + sign * total for total in np.cumsum([0.0, *steps]).tolist()]
    if kind == "zigzag":  # up and down, sometimes a tie or a second step the same way
        a, b = draw(_point), draw(_point)
        return [a if i % 2 else b for i in range(length)]
    if kind == "beyond":
        return [draw(st.sampled_from([-1.5, 1.5, -1.0, 1.0, 2.5])) for _ in range(length)]
    return [draw(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])) for _ in range(length)]


_series = st.lists(_segment(), max_size=8).map(lambda parts: [x for p in parts for x in p])


@settings(max_examples=300, deadline=None)
@given(z=_series, block=st.sampled_from([1, 2, 3, 5, 16, 64, 1 << 15]))
def test_every_rule_finds_exactly_the_windows_its_wording_describes(
    z: list[float], block: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:  # small blocks: windows across their joins
        patch.setattr(run_rules_module, "_BLOCK", block)
        found = run_rules(z)
    for rule, (size, _) in RULES.items():
        windows = [v.points for v in found if v.rule == rule]
        assert [w[-1] for w in windows] == reference(z, rule), rule
        assert all(w == tuple(range(w[-1] - size + 1, w[-1] + 1)) for w in windows)


def test_a_long_series_gives_the_reference_answer_across_its_block_joins() -> None:
    rng = np.random.default_rng(20261124)
    block = run_rules_module._BLOCK
    z = rng.normal(0, 1.2, 3 * block + 100)
    for join in (block, 2 * block):  # a trend, a run and a zigzag across each join
        z[join - 8 : join + 4] = np.linspace(-1.5, 2.5, 12)
        z[join - 20 : join - 10] = 0.5
        z[join + 5 : join + 25] = np.tile([1.6, -1.2], 10)
    found = list(run_rules(z))
    for rule in RULES:
        for join in (block, 2 * block):
            near = range(join - 40, join + 40)
            ends = [v.points[-1] for v in found if v.rule == rule and v.points[-1] in near]
            assert ends == reference(z.tolist(), rule, near), (rule, join)
