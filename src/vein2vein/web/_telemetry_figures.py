"""The monitoring pages' Plotly figures (issue 10), as JSON-ready dicts made from the
services' views: one row per sensor with the range the running step allows, a step's
trace with the values recorded by hand, one parameter's profile site by site.

Drawing only: which reading is out of range and what the comparability tests conclude come
from the services.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

from vein2vein.services.monitoring_views import Overlay, StepTrace, Trace
from vein2vein.web._analytics_figures import AMBER, BLUE, GREEN, GREY, INK, PURPLE, RED, base_layout

__all__ = ["overlay_figure", "points_json", "step_figure", "traces_figure"]

SITE_COLOURS = (BLUE, AMBER, GREEN, PURPLE, INK)
ROW_PX = 150


def points_json(traces: list[Trace]) -> dict[str, Any]:
    """New points for the live page: per sensor, in the figure's order."""
    return {
        "sensors": [t.sensor for t in traces],
        "x": [[at.isoformat() for at in t.times] for t in traces],
        "y": [t.values for t in traces],
        "last": max((t.times[-1] for t in traces if t.times), default=None),
    }


def _silence_s(times: list[datetime]) -> float | None:
    """How long without a reading counts as silence on a trace: five of the sensor's usual
    (median) intervals, and at least 10 s; None with fewer than two readings."""
    steps = sorted((b - a).total_seconds() for a, b in pairwise(times))
    return max(10.0, 5 * steps[len(steps) // 2]) if steps else None


def _with_gaps(
    times: list[datetime], values: list[float], silent_s: float | None
) -> tuple[list[str | None], list[float | None]]:
    """x and y for a line that breaks where the sensor was silent for over ``silent_s``
    seconds (:func:`_silence_s`), instead of a straight line over the silence."""
    xs: list[str | None] = []
    ys: list[float | None] = []
    for k, (at, v) in enumerate(zip(times, values, strict=True)):
        if k and silent_s is not None and (at - times[k - 1]).total_seconds() > silent_s:
            xs.append(None)
            ys.append(None)
        xs.append(at.isoformat())
        ys.append(v)
    return xs, ys


def _rows(traces: list[Trace], *, gap: float = 0.06) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One line per sensor, each on a row of its own with its limits; the layout's axes."""
    n = max(1, len(traces))
    height = (1 - gap * (n - 1)) / n
    data: list[dict[str, Any]] = []
    flagged: list[dict[str, Any]] = []
    axes: dict[str, Any] = {"shapes": [], "annotations": []}
    for i, trace in enumerate(traces):
        y = "y" if i == 0 else f"y{i + 1}"
        top = 1 - i * (height + gap)
        axes["yaxis" if i == 0 else f"yaxis{i + 1}"] = {
            "domain": [max(0.0, top - height), top], "automargin": True,
            "title": {"text": f"{trace.sensor} ({trace.unit})" if trace.unit else trace.sensor,
                      "font": {"size": 11}},
        }  # fmt: skip
        inside = [trace.low is None or v >= trace.low for v in trace.values]
        inside = [ok and (trace.high is None or v <= trace.high)
                  for ok, v in zip(inside, trace.values, strict=True)]  # fmt: skip
        silent_s = _silence_s(trace.times)
        xs, ys = _with_gaps(trace.times, trace.values, silent_s)
        data.append({
            "type": "scattergl", "mode": "lines", "name": trace.sensor, "yaxis": y,
            "x": xs, "y": ys, "meta": {"silent_s": silent_s},  # for the live page
            "line": {"color": BLUE, "width": 1.5},
            "hovertemplate": f"%{{x}}<br>{trace.sensor} %{{y}} {trace.unit}<extra></extra>",
        })  # fmt: skip
        out = [(at, v) for at, v, ok in zip(trace.times, trace.values, inside, strict=True)
               if not ok]  # fmt: skip
        if out:  # drawn after every line (the live page extends the lines by index)
            flagged.append({
                "type": "scattergl", "mode": "markers", "yaxis": y, "name": "out of range",
                "x": [at.isoformat() for at, _ in out], "y": [v for _, v in out],
                "marker": {"color": RED, "size": 5},
                "hovertemplate": f"%{{x}}<br>{trace.sensor} %{{y}} {trace.unit}: out of range"
                                 "<extra></extra>",
            })  # fmt: skip
        for limit in (trace.low, trace.high):
            if limit is not None:
                axes["shapes"].append({
                    "type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": y, "y0": limit,
                    "y1": limit, "line": {"color": RED, "width": 1, "dash": "dot"},
                })  # fmt: skip
        if trace.low is None and trace.high is None:
            axes["annotations"].append({
                "xref": "paper", "x": 1, "yref": f"{y} domain", "y": 1, "showarrow": False,
                "xanchor": "right", "text": "not watched by the running step",
                "font": {"size": 10, "color": GREY},
            })  # fmt: skip
    axes["xaxis"] = {"type": "date", "automargin": True, "anchor": f"y{n}" if n > 1 else "y"}
    return data + flagged, axes


def traces_figure(traces: list[Trace]) -> dict[str, Any]:
    """A unit's sensors, one row each, with the running step's limits dotted in red."""
    data, axes = _rows(traces)
    layout = base_layout(ROW_PX * max(1, len(traces)) + 40, showlegend=False, **axes)
    return {"data": data, "layout": layout}


def step_figure(step: StepTrace) -> dict[str, Any]:
    """A step's trace from its start to its end, with each value recorded by hand whose
    name names the sensor (``chamber_temperature_c`` on the temperature row) as a diamond,
    and the alarms it raised shaded."""
    data, axes = _rows(step.traces)
    for i, trace in enumerate(step.traces):
        y = "y" if i == 0 else f"y{i + 1}"
        typed = [(at, name, value, unit) for at, name, value, unit in step.recorded
                 if trace.sensor in name]  # fmt: skip
        if typed:
            data.append({
                "type": "scatter", "mode": "markers", "yaxis": y, "name": "recorded",
                "x": [at.isoformat() for at, *_ in typed], "y": [v for _, _, v, _ in typed],
                "marker": {"symbol": "diamond", "size": 10, "color": AMBER,
                           "line": {"color": INK, "width": 1}},
                "text": [f"{name} {v:g} {u} (recorded)" for _, name, v, u in typed],
                "hovertemplate": "%{x}<br>%{text}<extra></extra>",
            })  # fmt: skip
    for alarm in step.alarms:
        end = alarm.cleared_at or step.use.ended_at
        axes["shapes"].append({
            "type": "rect", "xref": "x", "yref": "paper", "x0": alarm.since.isoformat(),
            "x1": (end or alarm.raised_at).isoformat(), "y0": 0, "y1": 1,
            "fillcolor": "rgba(185, 28, 28, 0.10)", "line": {"width": 0},
        })  # fmt: skip
    layout = base_layout(ROW_PX * max(1, len(step.traces)) + 40, showlegend=False, **axes)
    return {"data": data, "layout": layout}


def overlay_figure(overlay: Overlay) -> dict[str, Any]:
    """Each run's profile against hours since the step started, coloured by site."""
    data: list[dict[str, Any]] = []
    for k, (site, runs) in enumerate(sorted(overlay.profiles.items())):
        colour = SITE_COLOURS[k % len(SITE_COLOURS)]
        for j, (lot, hours, values) in enumerate(runs):
            data.append({
                "type": "scattergl", "mode": "lines", "x": hours, "y": values,
                "name": site, "legendgroup": site, "showlegend": j == 0,
                "line": {"color": colour, "width": 1}, "opacity": 0.55,
                "hovertemplate": f"{site} {lot}<br>%{{x:.1f}} h: %{{y}} {overlay.unit}"
                                 "<extra></extra>",
            })  # fmt: skip
    title = f"{overlay.sensor} ({overlay.unit})"
    layout = base_layout(360, room_for_axes=True,
                         xaxis={"title": {"text": f"hours since {overlay.step_id} started"}},
                         yaxis={"title": {"text": title}})  # fmt: skip
    return {"data": data, "layout": layout}


def means_figure(overlay: Overlay) -> dict[str, Any]:
    """Each run's mean, by site (the values the comparability tests compare)."""
    data = []
    for k, (site, means) in enumerate(sorted(overlay.means.items())):
        data.append({
            "type": "box", "name": site, "y": means, "boxpoints": "all", "jitter": 0.4,
            "pointpos": 0, "marker": {"color": SITE_COLOURS[k % len(SITE_COLOURS)], "size": 7},
            "line": {"width": 1}, "fillcolor": "rgba(0,0,0,0)",
            "hovertemplate": f"{site}: %{{y:.3f}} {overlay.unit}<extra></extra>",
        })  # fmt: skip
    layout = base_layout(360, room_for_axes=True, showlegend=False,
                         yaxis={"title": {"text": f"mean {overlay.sensor} per run "
                                                  f"({overlay.unit})"}})  # fmt: skip
    return {"data": data, "layout": layout}
