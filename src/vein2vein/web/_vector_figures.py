"""The vector plan's Plotly figures: the timeline (a Gantt of each batch: slot booking,
plasmid lead time, production, QC release, shelf life), the stock against the patients'
demand month by month, and the comparison of the scales.

Nothing here plans: the batches, dates, stock and risks come from
:mod:`vein2vein.planning.supply` and :mod:`vein2vein.planning.vector_scales`.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from vein2vein.planning.vector_scales import ScaleOutcome, VectorPlanResult
from vein2vein.web._analytics_figures import AMBER, BLUE, FONT, GREEN, GREY, INK, PURPLE, RED

__all__ = ["scales_figure", "stock_figure", "timeline_figure"]

_MS_PER_DAY = 86_400_000
_GRID = "#eef2f6"
#: The segments of a batch's row, in time order: name, colour.
SEGMENTS = (
    ("slot booked", GREY),
    ("plasmids on order", AMBER),
    ("production", BLUE),
    ("QC release", PURPLE),
    ("usable (shelf life)", "#86efac"),
)


def _layout(height: int, **more: Any) -> dict[str, Any]:
    for axis in ("xaxis", "yaxis"):
        more[axis] = {"automargin": True, "gridcolor": _GRID, **more.get(axis, {})}
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


def _iso(day: date) -> str:
    return datetime.combine(day, time()).isoformat()


def _day_lines(result: VectorPlanResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A dashed line at each phase's first patient, and a red one at the plan's today."""
    shapes, notes = [], []
    for phase, first in result.plan.phases:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": _iso(first),
                       "x1": _iso(first), "y0": 0, "y1": 1,
                       "line": {"color": INK, "dash": "dash", "width": 1}})  # fmt: skip
        notes.append({"x": _iso(first), "y": 1, "yref": "paper", "xanchor": "left",
                      "yanchor": "bottom", "showarrow": False, "text": f" {phase}",
                      "font": {"size": 11, "color": INK}})  # fmt: skip
    today = result.plan.as_of
    if today is not None:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": _iso(today),
                       "x1": _iso(today), "y0": 0, "y1": 1,
                       "line": {"color": RED, "width": 1.5}})  # fmt: skip
        notes.append({"x": _iso(today), "y": 0, "yref": "paper", "xanchor": "right",
                      "yanchor": "bottom", "showarrow": False, "text": "as of ",
                      "font": {"size": 11, "color": RED}})  # fmt: skip
    return shapes, notes


def timeline_figure(result: VectorPlanResult, outcome: ScaleOutcome) -> dict[str, Any]:
    """A row per planned batch of ``outcome``'s scale (the first at the top): when its
    slot must be booked, its plasmids ordered, when it is made, released and usable; a
    batch whose orders are late (before the plan's today) is labelled so."""
    batches = outcome.schedule.batches
    rows = [f"batch {b.number}{' (late)' if b.late else ''}" for b in batches]
    spans: dict[str, list[tuple[str, date, date, str]]] = {name: [] for name, _ in SEGMENTS}
    for row, b in zip(rows, batches, strict=True):
        first_order = min(b.plasmid_orders.values())
        orders = "<br>".join(f"{k}: order by {v.isoformat()}" for k, v in b.plasmid_orders.items())
        booking = f"book the slot by {b.slot_booking_by.isoformat()}"
        spans["slot booked"].append((row, b.slot_booking_by, b.start, booking))
        spans["plasmids on order"].append((row, first_order, b.start, orders))
        spans["production"].append((row, b.start, b.fill, f"start {b.start.isoformat()}"))
        spans["QC release"].append((row, b.fill, b.release, f"released {b.release.isoformat()}"))
        usable = f"expires {b.expires.isoformat()}; {b.phase}"
        spans["usable (shelf life)"].append((row, b.release, b.expires, usable))
    data = []
    for name, colour in SEGMENTS:
        found = spans[name]
        data.append({
            "type": "bar", "orientation": "h", "name": name, "y": [r for r, *_ in found],
            "base": [_iso(a) for _, a, _, _ in found],
            "x": [max((b - a).days, 0) * _MS_PER_DAY for _, a, b, _ in found],
            "marker": {"color": colour}, "customdata": [t for *_, t in found],
            "hovertemplate": "%{y}: " + name + "<br>%{customdata}<extra></extra>",
        })  # fmt: skip
    shapes, notes = _day_lines(result)
    return {
        "data": data,
        "layout": _layout(
            max(260, 90 + 18 * len(batches)), barmode="overlay", shapes=shapes,
            annotations=notes, bargap=0.25,
            xaxis={"type": "date", "title": {"text": "date"}},
            yaxis={"autorange": "reversed", "type": "category"},
        ),
    }  # fmt: skip


def stock_figure(outcome: ScaleOutcome) -> dict[str, Any]:
    """Month by month on the plan (expected demand, every batch good): the patients' doses
    as bars, the stock on hand at the month's end as a line, the safety stock dashed."""
    s = outcome.schedule
    months = [_iso(m) for m in s.months]
    data = [
        {"type": "bar", "x": months, "y": list(s.demand_doses), "name": "patients' doses",
         "marker": {"color": GREY}, "hovertemplate": "%{x|%b %Y}: %{y:.1f} doses<extra></extra>"},
        {"type": "scatter", "mode": "lines", "x": months, "y": list(s.stock_doses),
         "name": "stock on hand (doses)", "line": {"color": GREEN, "width": 2, "shape": "hv"},
         "hovertemplate": "%{x|%b %Y}: %{y:,.0f} doses on hand<extra></extra>"},
    ]  # fmt: skip
    shapes = []
    if s.safety_doses:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y",
                       "y0": s.safety_doses, "y1": s.safety_doses,
                       "line": {"color": RED, "dash": "dash", "width": 1}})  # fmt: skip
    return {
        "data": data,
        "layout": _layout(
            300, shapes=shapes,
            xaxis={"type": "date"},
            yaxis={"title": {"text": "patient doses"}, "rangemode": "tozero"},
        ),
    }  # fmt: skip


def scales_figure(result: VectorPlanResult) -> dict[str, Any]:
    """Per scale: the vector cost per dose (bars, the recommended one green) and the
    probability of a stock-out without and with its safety stock (markers, right axis)
    against the target."""
    names = [f"{o.scale:g} L" for o in result.scales]
    colours = [GREEN if o.scale == result.recommended else BLUE for o in result.scales]
    target = result.plan.supply.stockout_target
    data = [
        {"type": "bar", "x": names, "y": [o.cost_per_dose for o in result.scales],
         "name": "vector cost per dose", "marker": {"color": colours},
         "text": [f"{o.cost_per_dose:,.0f}" if o.cost_per_dose else "—" for o in result.scales],
         "textposition": "auto", "hovertemplate": "%{x}: %{y:,.0f} per dose<extra></extra>"},
        {"type": "scatter", "mode": "markers", "x": names, "yaxis": "y2",
         "y": [o.p_stockout_without_safety * 100 for o in result.scales],
         "name": "P(stock-out), no safety stock", "marker": {"color": RED, "symbol": "x",
                                                            "size": 10},
         "hovertemplate": "%{x}: %{y:.1f} % without safety stock<extra></extra>"},
        {"type": "scatter", "mode": "markers", "x": names, "yaxis": "y2",
         "y": [o.risk.p_stockout * 100 for o in result.scales],
         "customdata": [f"{o.safety_doses:,.0f}" for o in result.scales],
         "name": "P(stock-out) with its safety stock",
         "marker": {"color": INK, "size": 10},
         "hovertemplate": "%{x}: %{y:.1f} % with %{customdata} doses of safety stock"
                          "<extra></extra>"},
    ]  # fmt: skip
    return {
        "data": data,
        "layout": _layout(
            320,
            xaxis={"type": "category", "title": {"text": "batch scale"}},
            yaxis={"title": {"text": "vector cost per dose"}, "separatethousands": True},
            yaxis2={"overlaying": "y", "side": "right", "range": [0, 100], "showgrid": False,
                    "title": {"text": f"P(stock-out) %, target {target:.0%}"},
                    "automargin": True},
            shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y2",
                     "y0": target * 100, "y1": target * 100,
                     "line": {"color": RED, "dash": "dot", "width": 1}}],
        ),
    }  # fmt: skip
