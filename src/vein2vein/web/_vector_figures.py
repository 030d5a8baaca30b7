"""The vector plan's Plotly figures: the timeline (a Gantt of each batch: slot booking,
plasmid lead time, production, QC release, shelf life), the stock against the patients'
demand month by month, and the comparison of the scales.

Nothing here plans: the batches, dates, stock and risks come from
:mod:`vein2vein.planning.supply` and :mod:`vein2vein.planning.vector_scales`.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from vein2vein.planning.supply import Batch
from vein2vein.planning.vector_scales import ScaleOutcome, VectorPlanResult
from vein2vein.web._analytics_figures import AMBER, BLUE, GREEN, GREY, INK, PURPLE, RED, base_layout

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
        more[axis] = {"gridcolor": _GRID, **more.get(axis, {})}
    return base_layout(height, room_for_axes=True, **more)


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


def _rows(outcome: ScaleOutcome) -> list[tuple[str, list[Batch]]]:
    """The schedule's batches, those started in the same month on one row."""
    rows: dict[date, list[Batch]] = {}
    for b in outcome.schedule.batches if outcome.schedule is not None else ():
        rows.setdefault(b.start, []).append(b)
    out = []
    for group in rows.values():
        first, last = group[0].number, group[-1].number
        name = f"batch {first}" if first == last else f"batches {first}–{last}"
        late = " (late)" if any(b.late for b in group) else ""
        out.append((name + late, group))
    return out


def _phase_rows(result: VectorPlanResult) -> list[tuple[str, date, date, str]]:
    """A row per phase, from its first patient to the next phase's (or the plan's end),
    with the patients it expects each year."""
    plan = result.plan
    end = date(max(plan.patients_per_year) + 1, 1, 1)
    out = []
    for i, (name, first) in enumerate(plan.phases):
        until = plan.phases[i + 1][1] if i + 1 < len(plan.phases) else end
        years = [
            y for y in plan.patients_per_year if first.year <= y < until.year or y == first.year
        ]
        counts = [plan.patients_by_year()[y] for y in sorted(set(years))]
        span = f"{min(counts):,.0f}" if min(counts) == max(counts) else (
            f"{min(counts):,.0f}–{max(counts):,.0f}")  # fmt: skip
        out.append((f"patients: {name}", first, until, f"{span} patients a year"))
    return out


def timeline_figure(result: VectorPlanResult, outcome: ScaleOutcome) -> dict[str, Any]:
    """The patients expected in each phase (a row each, at the top), and a row per month
    in which batches of ``outcome``'s scale start: when their slot must be booked and their
    plasmids ordered, when they are made, released and usable; a row whose orders are
    late (before the plan's today) says so."""
    rows = _rows(outcome)
    spans: dict[str, list[tuple[str, date, date, str]]] = {name: [] for name, _ in SEGMENTS}
    phases = _phase_rows(result)
    for row, group in rows:
        b = group[0]  # the batches of a row share their dates
        count = f"{len(group)} batches: " if len(group) > 1 else ""
        first_order = min(b.plasmid_orders.values())
        orders = "<br>".join(f"{k}: order by {v.isoformat()}" for k, v in b.plasmid_orders.items())
        booking = f"{count}book the slot by {b.slot_booking_by.isoformat()}"
        spans["slot booked"].append((row, b.slot_booking_by, b.start, booking))
        spans["plasmids on order"].append((row, first_order, b.start, count + orders))
        spans["production"].append((row, b.start, b.fill, f"{count}start {b.start.isoformat()}"))
        released = f"{count}released {b.release.isoformat()}"
        spans["QC release"].append((row, b.fill, b.release, released))
        usable = f"{count}expires {b.expires.isoformat()}; {b.phase}"
        spans["usable (shelf life)"].append((row, b.release, b.expires, usable))
    data: list[dict[str, Any]] = [{
        "type": "bar", "orientation": "h", "name": "patients (by phase)",
        "y": [row for row, *_ in phases], "base": [_iso(a) for _, a, _, _ in phases],
        "x": [max((b - a).days, 0) * _MS_PER_DAY for _, a, b, _ in phases],
        "marker": {"color": "#fca5a5"}, "text": [t for *_, t in phases],
        "textposition": "inside", "insidetextanchor": "start",
        "hovertemplate": "%{y}: %{text}<extra></extra>",
    }]  # fmt: skip
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
            max(260, 110 + 18 * (len(rows) + len(phases))), barmode="overlay", shapes=shapes,
            annotations=notes, bargap=0.25,
            xaxis={"type": "date", "side": "top" if len(rows) > 25 else "bottom"},
            yaxis={"autorange": "reversed", "type": "category"},
            legend={"orientation": "h", "x": 0, "y": -0.02 if len(rows) > 25 else 1.06,
                    "yanchor": "top" if len(rows) > 25 else "bottom"},
        ),
    }  # fmt: skip


def stock_figure(outcome: ScaleOutcome) -> dict[str, Any]:
    """Month by month on the plan (expected demand, every batch good): the patients' doses
    as bars, the stock on hand at the month's end as a line, the safety stock aimed at
    dashed."""
    s = outcome.schedule
    if s is None:
        return {"data": [], "layout": _layout(120)}
    months = [_iso(m) for m in s.months]
    data = [
        {"type": "bar", "x": months, "y": list(s.demand_doses), "name": "patients' doses",
         "marker": {"color": GREY}, "hovertemplate": "%{x|%b %Y}: %{y:.1f} doses<extra></extra>"},
        {"type": "scatter", "mode": "lines", "x": months, "y": list(s.stock_doses),
         "name": "stock on hand", "line": {"color": GREEN, "width": 2, "shape": "hv"},
         "hovertemplate": "%{x|%b %Y}: %{y:,.0f} doses on hand<extra></extra>"},
        {"type": "scatter", "mode": "lines", "x": [months[0], months[-1]],
         "y": [s.safety_doses, s.safety_doses], "name": f"safety stock ({s.safety_doses:,.0f})",
         "line": {"color": RED, "width": 1, "dash": "dash"}, "hoverinfo": "skip"},
    ]  # fmt: skip
    return {
        "data": data,
        "layout": _layout(
            320, xaxis={"type": "date"},
            yaxis={"title": {"text": "patient doses"}, "rangemode": "tozero"},
        ),
    }  # fmt: skip


def scales_figure(result: VectorPlanResult) -> dict[str, Any]:
    """Per scale worked out: the vector cost per dose (bars, the recommended one green) and
    the probability of a stock-out over the plan without and with its safety stock
    (markers, right axis) against the target."""
    shown = [o for o in result.scales if o.risk is not None]
    names = [f"{o.scale:g} L" for o in shown]
    colours = [GREEN if o.scale == result.recommended else BLUE for o in shown]
    target = result.plan.supply.stockout_target
    data = [
        {"type": "bar", "x": names, "y": [o.cost_per_dose for o in shown],
         "name": "vector cost per dose", "marker": {"color": colours},
         "text": [(f"{o.cost_per_dose:,.0f}" if o.cost_per_dose is not None else "—")
                  + f"<br>{max(o.batches_by_year.values(), default=0):.1f} batches/yr at peak"
                  for o in shown],
         "textposition": "auto", "hovertemplate": "%{x}: %{y:,.0f} per dose<extra></extra>"},
        {"type": "scatter", "mode": "markers", "x": names, "yaxis": "y2",
         "y": [(o.p_stockout_without_safety or 0.0) * 100 for o in shown],
         "name": "P(stock-out), no safety stock", "marker": {"color": RED, "symbol": "x",
                                                            "size": 10},
         "hovertemplate": "%{x}: %{y:.1f} % without safety stock<extra></extra>"},
        {"type": "scatter", "mode": "markers", "x": names, "yaxis": "y2",
         "y": [o.risk.p_stockout * 100 for o in shown if o.risk is not None],
         "customdata": [f"{o.safety_doses:,.0f}" for o in shown],
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
            yaxis2={"overlaying": "y", "side": "right", "range": [0, 108], "showgrid": False,
                    "title": {"text": f"P(stock-out) over the plan %, target {target:.0%}"},
                    "automargin": True},
            shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y2",
                     "y0": target * 100, "y1": target * 100,
                     "line": {"color": RED, "dash": "dot", "width": 1}}],
        ),
    }  # fmt: skip
