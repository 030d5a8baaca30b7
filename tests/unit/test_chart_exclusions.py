"""A point excluded with a reason (a known special cause) on a chart, on a user's own
column of numbers: it sets no limit, and is still judged like any other point."""

from __future__ import annotations

import numpy as np
import pytest

from vein2vein.domain.errors import InvalidInput
from vein2vein.formats.table import Column
from vein2vein.services.analytics import chart_of, series_from_column

VALUES = [10.0, 10.2, 9.9, 14.0, 10.1, 10.0, 9.8, 10.1, 10.0, 10.1, 15.0, 10.0]
IN_BASELINE, MONITORED = 3, 10
WHY = "reagent lot failed its control"


def column() -> Column:
    labels = tuple(f"L{i}" for i in range(len(VALUES)))
    return Column("titre", tuple(VALUES), labels, ("",) * len(VALUES))


def test_an_excluded_baseline_point_sets_no_limit() -> None:
    s = series_from_column(column(), exclude={IN_BASELINE: WHY})
    view = chart_of(s, baseline=8)
    kept = np.delete(np.array(VALUES[:8]), IN_BASELINE)
    assert view.result.center[0] == pytest.approx(kept.mean())
    sigma = np.abs(np.diff(kept)).mean() / (2 / np.sqrt(np.pi))
    assert view.result.ucl[0] == pytest.approx(kept.mean() + 3 * sigma)
    with_it = chart_of(series_from_column(column()), baseline=8)
    assert with_it.result.ucl[0] > view.result.ucl[0]  # the outlier widened the limits


def test_an_excluded_point_is_still_judged_and_drawn_as_it_is() -> None:
    s = series_from_column(column(), exclude={IN_BASELINE: WHY, MONITORED: WHY})
    view = chart_of(s, baseline=8)
    assert view.excluded == (IN_BASELINE, MONITORED)
    assert view.result.values[MONITORED] == 15.0
    we1 = [v.points for v in view.result.violations if v.rule == "WE1"]
    assert (IN_BASELINE,) in we1 and (MONITORED,) in we1
    assert view.phase_ii_violations["WE1"] == 1


def test_excluding_every_baseline_point_but_one_is_refused() -> None:
    s = series_from_column(column(), exclude={i: WHY for i in range(1, 8)})
    with pytest.raises(InvalidInput, match="fewer than 2 remain"):
        chart_of(s, baseline=8)
