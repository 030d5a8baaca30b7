"""The analytics pages' Plotly figures, as JSON-ready dicts made from the services' results.

Nothing here computes a statistic: the limits, violations, indices, tests and models come
from services/analytics.py and services/comparability.py. What is computed here is only
drawing: where a point goes, its colour, its hover text, a histogram's bars, the jitter that
keeps equal values apart.
"""

from __future__ import annotations

import math
from html import escape
from itertools import pairwise
from textwrap import wrap
from typing import Any

import numpy as np
import pandas as pd

from vein2vein.analytics.comparability import AttributeComparison
from vein2vein.services.analytics import CapabilityView, ChartView
from vein2vein.services.comparability import Comparison, OutcomeStudy

__all__ = [
    "base_layout",
    "capability_figure",
    "chart_figure",
    "comparison_figure",
    "equivalence_figure",
    "fmt",
    "in_sentence",
    "monitored_points",
    "outcome_figure",
    "p_value",
    "rules_at",
    "tightening_figure",
]

BLUE, RED, GREY, INK = "#1d4ed8", "#b91c1c", "#94a3b8", "#334155"
AMBER, GREEN, PURPLE = "#d97706", "#15803d", "#7c3aed"
FONT = {"family": "system-ui, sans-serif", "size": 12}


def fmt(value: float | None, digits: int = 3) -> str:
    """A number as a person reads it: ``3`` significant digits, no ``1e+02``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}".replace(",", " ")


def p_value(value: float) -> str:
    """A p-value as a person reads it: 2 significant digits, or ``< 0.001``."""
    return "< 0.001" if value < 0.001 else f"{value:.2g}"


def in_sentence(title: str) -> str:
    """``Apheresis CD3+ of leukocytes`` → ``apheresis CD3+ of leukocytes`` (an acronym such
    as ``CD3+ T cells`` stays as it is)."""
    return title[:1].lower() + title[1:] if title[1:2].islower() else title


def base_layout(height: int, *, room_for_axes: bool = False, **more: Any) -> dict[str, Any]:
    """The layout every figure of the pages shares: its ``height``, small margins, the
    pages' font, no background, a horizontal legend on top; ``room_for_axes`` lets the
    axes take the room their labels and titles need (``automargin``); ``more`` adds to it
    or overrides it."""
    if room_for_axes:
        for axis in ("xaxis", "yaxis"):
            more[axis] = {"automargin": True, **more.get(axis, {})}
    return {
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "font": FONT,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "hoverlabel": {"align": "left"},
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        **more,
    }


def _with_unit(title: str, unit: str) -> str:
    return f"{title} ({unit})" if unit else title


# -- control chart -------------------------------------------------------------------------


def rules_at(view: ChartView) -> dict[int, list[str]]:
    """The rules each point takes part in (0-based point → rule names)."""
    found: dict[int, list[str]] = {}
    violations = view.result.violations
    for rule in violations.counts():
        for index in violations.points(rule).tolist():
            found.setdefault(int(index), []).append(rule)
    return found


def monitored_points(view: ChartView) -> set[int]:
    """The points of the violations that end among the monitored batches (a signal);
    the others take part only in rules broken within the baseline."""
    found: set[int] = set()
    for violation in view.result.violations:
        if violation.points[-1] >= view.baseline:
            found.update(violation.points)
    return found


def chart_figure(view: ChartView) -> dict[str, Any]:
    """The control chart: points over batch order, centre line and limits, the baseline
    shaded, red points that break a run rule, hollow points left out of the baseline."""
    s, result = view.series, view.result
    points = s.points
    n = len(points)
    x = list(range(1, n + 1))
    unit = s.attribute.unit
    broken = rules_at(view)
    excluded = set(view.excluded)
    lots = points["lot"].tolist()
    dates = [d.strftime("%Y-%m-%d") for d in points["tested_at"]]
    raw = points["value"].tolist()
    reasons = points["excluded"].tolist()
    plotted = result.values.tolist()
    lower = result.companion.values.tolist() if view.chart == "cusum" and result.companion else []
    upper = list(plotted)
    if lower:  # a CUSUM point sits on the side that has moved most (C+ up, C− drawn down)
        plotted = [u if u >= v else -v for u, v in zip(upper, lower, strict=True)]

    def hover(i: int) -> str:
        lines = [f"<b>{escape(lots[i])}</b> · batch {i + 1}", dates[i], f"{fmt(raw[i])} {unit}"]
        if view.chart == "ewma":
            lines.append(f"EWMA {fmt(plotted[i])}")
        if view.chart == "cusum":
            lines.append(f"C+ {fmt(upper[i])} · C− {fmt(lower[i])}")
        if i in broken:
            lines.append(f"<b>Breaks {', '.join(broken[i])}</b>")
        if i in excluded:
            lines.append(f"Excluded from the baseline: {escape(reasons[i])}")
        return "<br>".join(lines)

    texts = [hover(i) for i in range(n)]

    def markers(name: str, chosen: list[int], **marker: Any) -> dict[str, Any]:
        return {
            "type": "scatter",
            "mode": "markers",
            "name": name,
            "x": [x[i] for i in chosen],
            "y": [plotted[i] for i in chosen],
            "text": [texts[i] for i in chosen],
            "hovertemplate": "%{text}<extra></extra>",
            "marker": {"size": 8, **marker},
        }

    signal = monitored_points(view)
    plain = [i for i in range(n) if i not in broken and i not in excluded]
    red = [i for i in range(n) if i in signal and i not in excluded]
    amber = [i for i in range(n) if i in broken and i not in signal and i not in excluded]
    hollow = sorted(excluded)
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "C+ (upward shifts)" if lower else "",
            "x": x,
            "y": upper if lower else plotted,
            "line": {"color": GREY, "width": 1},
            "hoverinfo": "skip",
            "showlegend": bool(lower),
        },
        markers("Batch", plain, color=BLUE),
        markers("Breaks a run rule", red, color=RED, size=10),
    ]
    if amber:
        data.append(markers("Part of a rule broken within the baseline", amber, color=AMBER))
    if hollow:
        colours = [RED if i in signal else INK for i in hollow]
        data.append(
            markers(
                "Left out of the baseline",
                hollow,
                color=colours,
                symbol="circle-open",
                size=12,
                line={"width": 2},
            )
        )
    if lower:
        data.insert(
            1,
            {
                "type": "scatter",
                "mode": "lines",
                "name": "C− (downward shifts)",
                "x": x,
                "y": [-v for v in lower],
                "line": {"color": GREY, "width": 1, "dash": "dot"},
                "hoverinfo": "skip",
            },
        )
    data += _limit_lines(view, x)
    band = view.baseline + 0.5
    layout = base_layout(
        430,
        xaxis={"title": {"text": "Batch, in the order tested"}, "range": [0.5, n + 0.5],
               "automargin": True, "zeroline": False},
        yaxis={"title": {"text": _y_title(view)}, "automargin": True, "zeroline": False},
        shapes=[{"type": "rect", "xref": "x", "yref": "paper", "x0": 0.5, "x1": band,
                 "y0": 0, "y1": 1, "fillcolor": "rgba(29,78,216,0.08)", "line": {"width": 0},
                 "layer": "below"}],
        annotations=[
            {"x": (0.5 + band) / 2, "y": 1.02, "xref": "x", "yref": "paper", "showarrow": False,
             "text": f"Baseline: batches 1-{view.baseline} set the limits", "font": {"size": 11},
             "yanchor": "bottom"},
        ]
        + (
            [{"x": (band + n + 0.5) / 2, "y": 1.02, "xref": "x", "yref": "paper",
              "showarrow": False, "text": "Monitored against those limits",
              "font": {"size": 11}, "yanchor": "bottom"}]
            if n > view.baseline
            else []
        ),
    )  # fmt: skip
    layout["margin"]["t"] = 40
    layout["legend"] = {"orientation": "h", "x": 0, "y": -0.2, "yanchor": "top"}
    return {"data": data, "layout": layout}


def _y_title(view: ChartView) -> str:
    attribute = view.series.attribute
    if view.chart == "ewma":
        return f"EWMA of {_with_unit(attribute.title.lower(), attribute.unit)}"
    if view.chart == "cusum":
        return f"Cumulative sum ({attribute.unit or 'units'})"
    return _with_unit(attribute.title, attribute.unit)


def _limit_lines(view: ChartView, x: list[int]) -> list[dict[str, Any]]:
    result = view.result

    def line(name: str, y: list[float], colour: str, dash: str) -> dict[str, Any]:
        return {
            "type": "scatter",
            "mode": "lines",
            "name": name,
            "x": x,
            "y": y,
            "line": {"color": colour, "width": 1.5, "dash": dash},
            "hovertemplate": f"{name}: %{{y:.4g}}<extra></extra>",
        }

    if view.chart == "cusum":
        limit = result.ucl.tolist()
        return [
            line("Decision limit (h·σ)", limit, RED, "dash"),
            line("−h·σ", [-v for v in limit], RED, "dash") | {"showlegend": False},
            line("Zero", [0.0] * len(x), INK, "solid"),
        ]
    lines = [
        line("Centre line", result.center.tolist(), INK, "solid"),
        line("Upper control limit", result.ucl.tolist(), RED, "dash"),
        line("Lower control limit", result.lcl.tolist(), RED, "dash"),
    ]
    if view.chart == "individuals":
        limits = view.series.attribute.limits
        for bound, sign in ((limits.low, "≥"), (limits.high, "≤")):
            if bound is not None:
                shown = f"{bound:.{view.series.attribute.precision}f}"
                name = f"Specification {sign} {shown} {view.series.attribute.unit}".strip()
                lines.append(line(name, [bound] * len(x), PURPLE, "dot"))
    return lines


# -- capability ------------------------------------------------------------------------------


def capability_figure(view: CapabilityView) -> dict[str, Any]:
    """Histogram of the values (those left out of the baseline left out here too), the
    specification limits and the mean, and the normal curve of the same mean and overall
    SD, scaled to the counts."""
    c = view.capability
    points = view.series.points
    values = points.loc[points["excluded"] == "", "value"].to_numpy(dtype=np.float64)
    unit = view.series.attribute.unit
    edges = np.histogram_bin_edges(values, bins="auto")
    # Results are rounded to the reportable precision: bins are whole steps of it, centred
    # on the reportable values, so that no bin catches one value more than its neighbours.
    step = 10.0**-view.series.attribute.precision
    width = max(
        step, math.ceil(float(edges[1] - edges[0]) / step) * step if len(edges) > 1 else step
    )
    start = math.floor(float(values.min()) / step) * step - step / 2
    count = max(1, math.ceil((float(values.max()) + step / 2 - start) / width))
    if count > 40:
        width, count = (float(values.max()) - start) / 40 + step, 40
    counts, edges = np.histogram(values, bins=start + width * np.arange(count + 1))
    mids = ((edges[:-1] + edges[1:]) / 2).tolist()
    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": "Batches",
            "x": mids,
            "y": counts.tolist(),
            "width": [width * 0.95] * len(mids),
            "marker": {"color": "#93c5fd", "line": {"color": BLUE, "width": 1}},
            "customdata": [[float(lo), float(hi)] for lo, hi in pairwise(edges)],
            "hovertemplate": "%{customdata[0]:.4g} to %{customdata[1]:.4g}: %{y} batches"
            "<extra></extra>",
        }
    ]
    lows = [v for v in (c.lsl, float(values.min())) if v is not None]
    highs = [v for v in (c.usl, float(values.max())) if v is not None]
    span_low = min([*lows, c.mean - 4 * c.sigma_overall])
    span_high = max([*highs, c.mean + 4 * c.sigma_overall])
    pad = (span_high - span_low) * 0.03
    span_low, span_high = span_low - pad, span_high + pad
    if c.sigma_overall > 0:
        grid = np.linspace(span_low, span_high, 200)
        density = np.exp(-0.5 * ((grid - c.mean) / c.sigma_overall) ** 2) / (
            c.sigma_overall * math.sqrt(2 * math.pi)
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Normal curve (same mean and overall SD)",
                "x": grid.tolist(),
                "y": (density * len(values) * width).tolist(),
                "line": {"color": INK, "width": 2},
                "hoverinfo": "skip",
            }
        )
    precision = view.series.attribute.precision

    def label(value: float, name: str) -> str:
        # A limit as the specification writes it; the mean one decimal finer.
        return f"{value:.{precision + (name == 'mean')}f}"

    shapes, notes = [], []
    for value, name, colour, dash in (
        (c.lsl, "LSL", RED, "dash"),
        (c.usl, "USL", RED, "dash"),
        (c.mean, "mean", GREEN, "solid"),
    ):
        if value is None:
            continue
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": value,
                "x1": value,
                "y0": 0,
                "y1": 1,
                "line": {"color": colour, "width": 2, "dash": dash},
            }
        )
        notes.append({"x": value, "y": 1.0, "xref": "x", "yref": "paper", "showarrow": False,
                      "yanchor": "bottom", "text": f"{name} {label(value, name)}",
                      "font": {"color": colour, "size": 11}})  # fmt: skip
    layout = base_layout(
        380,
        xaxis={"title": {"text": _with_unit(view.series.attribute.title, unit)},
               "range": [span_low, span_high], "automargin": True},
        yaxis={"title": {"text": "Batches"}, "automargin": True, "rangemode": "tozero"},
        shapes=shapes, annotations=notes, bargap=0,
    )  # fmt: skip
    layout["margin"]["t"] = 40
    return {"data": data, "layout": layout}


# -- comparability ---------------------------------------------------------------------------


def _jitter(k: int) -> float:
    """A fixed spread of the k-th point across its strip (golden-ratio sequence)."""
    return ((k * 0.6180339887) % 1 - 0.5) * 0.5


def comparison_figure(comparison: Comparison, columns: int = 3) -> dict[str, Any]:
    """One small panel per attribute compared: the reference and the test values side by
    side, the reference's quality range shaded, each group's mean as a bar."""
    rows = comparison.rows
    if not rows:
        return {"data": [], "layout": base_layout(100)}
    columns = min(columns, len(rows))
    lines = math.ceil(len(rows) / columns)
    gap_x, gap_y = 0.07, 0.22 / lines
    data: list[dict[str, Any]] = []
    layout = base_layout(300 * lines + 40, showlegend=False, shapes=[], annotations=[])
    layout["margin"] = {"l": 10, "r": 10, "t": 50, "b": 10}
    labels = [comparison.reference, comparison.test]
    for i, row in enumerate(rows):
        attribute = comparison.attributes[row.attribute]
        axis = "" if i == 0 else str(i + 1)
        line, column = divmod(i, columns)
        x0 = column / columns + (gap_x / 2 if column else 0)
        x1 = (column + 1) / columns - (gap_x / 2 if column < columns - 1 else 0)
        y1 = 1 - line / lines - (gap_y if line else 0.0)
        y0 = 1 - (line + 1) / lines + gap_y
        layout[f"xaxis{axis}"] = {
            "domain": [x0, x1],
            "anchor": f"y{axis}",
            "range": [-0.7, 1.7],
            "tickvals": [0, 1],
            "ticktext": labels,
            "fixedrange": True,
            "zeroline": False,
            "showgrid": False,
        }
        layout[f"yaxis{axis}"] = {
            "domain": [y0, y1],
            "anchor": f"x{axis}",
            "automargin": True,
            "fixedrange": True,
            "title": {"text": attribute.unit},
        }
        reference, test = comparison.values[row.attribute]
        outside = set(row.quality_range.outside)
        for g, (values, colour) in enumerate(((reference, GREY), (test, BLUE))):
            colours = [RED if g == 1 and k in outside else colour for k in range(len(values))]
            data.append({
                "type": "scatter", "mode": "markers", "xaxis": f"x{axis}", "yaxis": f"y{axis}",
                "x": [g + _jitter(k) for k in range(len(values))], "y": values,
                "marker": {"color": colours, "size": 6, "opacity": 0.8},
                "name": labels[g], "showlegend": False,
                "hovertemplate": f"{escape(labels[g])}: %{{y:.4g}} {escape(attribute.unit)}"
                                 "<extra></extra>",
            })  # fmt: skip
        q, t = row.quality_range, row.tost
        layout["shapes"].append({
            "type": "rect", "xref": f"x{axis}", "yref": f"y{axis}", "x0": -0.6, "x1": 1.6,
            "y0": q.low, "y1": q.high, "fillcolor": "rgba(21,128,61,0.10)",
            "line": {"width": 0}, "layer": "below",
        })  # fmt: skip
        for g, mean in enumerate((t.mean_reference, t.mean_test)):
            layout["shapes"].append({
                "type": "line", "xref": f"x{axis}", "yref": f"y{axis}", "x0": g - 0.35,
                "x1": g + 0.35, "y0": mean, "y1": mean, "line": {"color": INK, "width": 3},
            })  # fmt: skip
        ok = row.conclusion == "equivalent"
        layout["annotations"].append({
            "xref": "paper", "yref": "paper", "x": (x0 + x1) / 2, "y": y1, "yanchor": "bottom",
            "showarrow": False, "font": {"size": 12, "color": GREEN if ok else RED},
            "text": "<br>".join(f"<b>{escape(part)}</b>" for part in wrap(attribute.title, 22))
                    + f"<br>{'✓ equivalent' if ok else '✗ not shown equivalent'}",
        })  # fmt: skip
    return {"data": data, "layout": layout}


def equivalence_figure(rows: list[AttributeComparison], titles: dict[str, str]) -> dict[str, Any]:
    """Each attribute's difference (test − reference) with its confidence interval, as a
    share of its margin: inside the band from −1 to +1 is what TOST calls equivalent."""
    names = [titles.get(r.attribute, r.attribute) for r in rows]
    scaled = [
        (r.tost.difference / r.tost.margin, r.tost.ci_low / r.tost.margin,
         r.tost.ci_high / r.tost.margin)
        for r in rows
    ]  # fmt: skip
    colours = [GREEN if r.tost.equivalent else RED for r in rows]
    texts = [
        f"<b>{escape(n)}</b><br>difference {fmt(r.tost.difference)} "
        f"(CI {fmt(r.tost.ci_low)} to {fmt(r.tost.ci_high)})<br>margin ±{fmt(r.tost.margin)}"
        for n, r in zip(names, rows, strict=True)
    ]
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": [d for d, _, _ in scaled],
            "y": names,
            "error_x": {
                "type": "data",
                "symmetric": False,
                "array": [hi - d for d, _, hi in scaled],
                "arrayminus": [d - lo for d, lo, _ in scaled],
                "color": INK,
                "thickness": 2,
            },
            "marker": {"color": colours, "size": 10},
            "text": texts,
            "hovertemplate": "%{text}<extra></extra>",
            "showlegend": False,
        }
    ]
    reach = max([1.5] + [max(abs(lo), abs(hi)) * 1.1 for _, lo, hi in scaled])
    layout = base_layout(
        60 + 40 * len(rows),
        xaxis={"title": {"text": "Difference of means as a share of the margin "
                                 "(−1 and +1: the margin)"},
               "range": [-reach, reach], "zeroline": True, "automargin": True},
        yaxis={"automargin": True, "autorange": "reversed"},
        shapes=[{"type": "rect", "xref": "x", "yref": "paper", "x0": -1, "x1": 1, "y0": 0,
                 "y1": 1, "fillcolor": "rgba(21,128,61,0.10)", "line": {"width": 0},
                 "layer": "below"}],
    )  # fmt: skip
    return {"data": data, "layout": layout}


# -- outcome ---------------------------------------------------------------------------------


def outcome_figure(study: OutcomeStudy, title: str, unit: str) -> dict[str, Any]:
    """The outcome against the criterion attribute: the failure rate per fifth of the
    batches (by the attribute) with the model's predicted rate, or a scatter of the log fold
    expansion with the model's line; the other predictors held at their average."""
    frame = study.frame.dropna(subset=[study.criterion])
    column = frame[study.criterion].astype(float)
    grid = np.linspace(float(column.min()), float(column.max()), 60)
    typical = {p: float(frame[p].mean()) for p in study.model.predictors}
    curve = pd.DataFrame({p: [typical[p]] * len(grid) for p in study.model.predictors})
    if study.criterion in curve:
        curve[study.criterion] = grid
    predicted = study.model.predict(curve) if study.criterion in curve else None
    axis_title = _with_unit(title, unit)
    data: list[dict[str, Any]] = []
    if study.model.kind == "logistic":
        fifths = pd.qcut(column, 5, duplicates="drop")
        grouped = frame.groupby(fifths, observed=True)[study.outcome].agg(["count", "sum"])
        mids = [float(b.mid) for b in grouped.index]
        widths = [float(b.length) * 0.92 for b in grouped.index]
        rates = (100 * grouped["sum"] / grouped["count"]).tolist()
        bins = zip(grouped.index, grouped["sum"], grouped["count"], strict=True)
        spans = [[f"{b.left:.3g}", f"{b.right:.3g}", int(k), int(n)] for b, k, n in bins]
        data.append({
            "type": "bar", "name": "Failed, observed (per fifth of the batches)", "x": mids,
            "y": rates, "width": widths, "marker": {"color": "#fca5a5"},
            "customdata": spans,
            "hovertemplate": "%{customdata[0]} to %{customdata[1]}: %{customdata[2]} of "
                             "%{customdata[3]} failed (%{y:.0f} %)<extra></extra>",
        })  # fmt: skip
        if predicted is not None:
            data.append({
                "type": "scatter", "mode": "lines", "name": "Model: chance of failing",
                "x": grid.tolist(), "y": (100 * predicted).tolist(),
                "line": {"color": RED, "width": 2},
                "hovertemplate": "%{x:.3g}: %{y:.0f} %<extra></extra>",
            })  # fmt: skip
        y_title = "Batches that failed to reach the dose (%)"
    else:
        failed = frame["failed_dose"].astype(int).tolist()
        data.append({
            "type": "scatter", "mode": "markers", "name": "Batch",
            "x": column.tolist(), "y": frame[study.outcome].astype(float).tolist(),
            "text": frame["lot"].tolist(),
            "marker": {"color": [RED if f else BLUE for f in failed], "size": 7, "opacity": 0.75},
            "hovertemplate": "%{text}: %{x:.3g}, log fold expansion %{y:.2f}<extra></extra>",
        })  # fmt: skip
        if predicted is not None:
            data.append({
                "type": "scatter", "mode": "lines", "name": "Model (others at their average)",
                "x": grid.tolist(), "y": predicted.tolist(), "line": {"color": INK, "width": 2},
                "hoverinfo": "skip",
            })  # fmt: skip
        y_title = "Log fold expansion (ln)"
    layout = base_layout(
        360,
        xaxis={"title": {"text": axis_title}, "automargin": True},
        yaxis={"title": {"text": y_title}, "automargin": True}
        | ({"rangemode": "tozero"} if study.model.kind == "logistic" else {}),
    )
    return {"data": data, "layout": layout}


def tightening_figure(study: OutcomeStudy, title: str, unit: str) -> dict[str, Any]:
    """Per candidate threshold, the patients a stricter criterion turns away: the failures
    it avoids and the good batches it costs, stacked."""
    sign = "≥" if study.direction == "min" else "≤"
    labels = [f"{sign} {fmt(r.threshold)} {unit}".strip() for r in study.tightening]
    data = [
        {
            "type": "bar",
            "name": "Failures avoided",
            "x": labels,
            "y": [r.failures_avoided for r in study.tightening],
            "marker": {"color": GREEN},
            "hovertemplate": "%{x}: %{y} failures avoided<extra></extra>",
        },
        {
            "type": "bar",
            "name": "Good batches turned away",
            "x": labels,
            "y": [r.successes_turned_away for r in study.tightening],
            "marker": {"color": GREY},
            "hovertemplate": "%{x}: %{y} patients whose batch worked turned away<extra></extra>",
        },
    ]
    layout = base_layout(
        340,
        barmode="stack",
        xaxis={"title": {"text": f"New acceptance criterion on {in_sentence(title)}"},
               "automargin": True, "type": "category"},
        yaxis={"title": {"text": "Patients turned away"}, "automargin": True},
    )  # fmt: skip
    return {"data": data, "layout": layout}
