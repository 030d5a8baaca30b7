"""The live traces break where a sensor was silent (web/_telemetry_figures.py), so a
drop-out shows as a gap, not as a straight line drawn over it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vein2vein.web._telemetry_figures import _silence_s, _with_gaps

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_a_silence_breaks_the_line_and_steady_readings_do_not() -> None:
    times = [T0 + timedelta(seconds=s) for s in range(30)]
    times += [times[-1] + timedelta(minutes=4, seconds=s) for s in range(30)]  # 4 min silent
    xs, ys = _with_gaps(times, [37.0] * len(times), _silence_s(times))
    assert len(xs) == len(times) + 1 and xs.count(None) == 1 and ys.count(None) == 1
    assert xs.index(None) == 30  # between the last reading before and the first after
    steady, _ = _with_gaps(times[:30], [37.0] * 30, _silence_s(times[:30]))
    assert None not in steady


def test_readings_a_minute_apart_break_only_past_five_minutes() -> None:
    times = [T0 + timedelta(minutes=m) for m in (0, 1, 2, 3, 6, 7, 13, 14)]
    xs, _ = _with_gaps(times, [7.2] * len(times), _silence_s(times))
    assert [k for k, x in enumerate(xs) if x is None] == [6]  # 7 → 13 min, not 3 → 6
