"""A point excluded with a reason (a known special cause) on a chart: it sets no limit,
breaks no rule, and an EWMA runs on without it — on a user's own column of numbers."""

from __future__ import annotations

import numpy as np
import pytest

from vein2vein.formats.table import Column
from vein2vein.services.analytics import chart_of, series_from_column

VALUES = [10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.1, 10.0, 14.0, 10.1, 9.9, 10.0]
OUTLIER = 8


def column() -> Column:
    labels = tuple(f"L{i}" for i in range(len(VALUES)))
    return Column("titre", tuple(VALUES), labels, ("",) * len(VALUES))


def test_without_the_exclusion_the_outlier_breaks_we1() -> None:
    view = chart_of(series_from_column(column()), baseline=8)
    assert [v.points for v in view.result.violations if v.rule == "WE1"] == [(OUTLIER,)]


def test_an_excluded_point_is_drawn_as_it_is_but_judged_by_no_rule() -> None:
    s = series_from_column(column(), exclude={OUTLIER: "reagent lot failed its control"})
    view = chart_of(s, baseline=8)
    assert view.excluded == (OUTLIER,)
    assert not view.result.violations  # the others are in control
    assert view.result.values[OUTLIER] == 14.0  # still on the chart, where it was
    assert len(view.result.values) == len(VALUES)
    # Renumbered: a rule over the judged points names the series' points.
    late = [*VALUES[:OUTLIER], 14.0, 11.5, 11.6, 11.4, 11.5]
    s = series_from_column(
        Column("titre", tuple(late), tuple(map(str, range(len(late)))), ("",) * len(late)),
        exclude={OUTLIER: "reagent lot failed its control"},
    )
    view = chart_of(s, baseline=8)
    flagged = view.flagged()
    assert OUTLIER not in flagged and {9, 10, 11, 12} <= set(flagged)


def test_an_ewma_runs_on_without_an_excluded_point() -> None:
    s = series_from_column(column(), exclude={OUTLIER: "reagent lot failed its control"})
    view = chart_of(s, chart="ewma", baseline=8)
    ewma = view.result.values
    assert ewma[OUTLIER] == ewma[OUTLIER - 1]  # carried over, not pulled up by 14.0
    kept = [v for i, v in enumerate(VALUES) if i != OUTLIER]
    z = float(np.mean(kept[:8]))
    for x in kept:
        z = 0.2 * x + 0.8 * z
    assert ewma[-1] == pytest.approx(z)
