"""Long traces are thinned for drawing without hiding an excursion (services/monitoring_views)."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

import vein2vein.services.monitoring_views as views
from vein2vein.services.monitoring_views import thin


def test_the_examples_hold() -> None:
    assert doctest.testmod(views, optionflags=doctest.ELLIPSIS).failed == 0


def test_a_nine_day_trace_keeps_its_one_second_spike_and_its_dip_in_order() -> None:
    t0 = datetime(2026, 11, 24, tzinfo=UTC)
    n = 9 * 24 * 3600  # one reading a second for nine days
    values = [37.0] * n
    values[123_456], values[600_000] = 38.9, 35.2
    times = [t0 + timedelta(seconds=s) for s in range(n)]
    kept_t, kept_v = thin(times, values, max_points=2000)
    assert len(kept_v) <= 2000
    assert max(kept_v) == 38.9 and min(kept_v) == 35.2
    assert kept_t == sorted(kept_t) and kept_t[0] == t0
    short_t, short_v = thin(times[:100], values[:100])
    assert (short_t, short_v) == (times[:100], values[:100])
