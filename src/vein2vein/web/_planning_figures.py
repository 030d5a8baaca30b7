"""The planning page's Plotly figures, as JSON-ready dicts made from the planning results.

Nothing here simulates or estimates: the histograms, utilisations, waits, costs and sweep
cells come from :mod:`vein2vein.planning.replications` and
:mod:`vein2vein.planning.ceiling`. What is decided here is only drawing: which bars, in
which order and colour, with which hover text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vein2vein.planning.ceiling import CapacityCeiling
from vein2vein.planning.replications import Replications, Sweep
from vein2vein.web._analytics_figures import AMBER, BLUE, GREEN, GREY, INK, RED, base_layout, fmt
from vein2vein.web._common import label

__all__ = [
    "ceiling_figure",
    "cost_figure",
    "histogram_figure",
    "resource_name",
    "sweep_figure",
    "utilisation_figure",
]

#: The colours of scenario A and B when two are drawn together.
SIDES = (BLUE, AMBER)
#: At most this many resources in the utilisation chart (the most used ones).
MOST_USED = 16

_PARTS = {"devices": "suites / devices", "staff": "staff", "qc": "QC"}
_COST_ITEMS = {
    "facility": "Facility (cleanroom)",
    "devices": "Devices (amortised)",
    "labour": "Labour",
    "overheads": "Overheads",
    "materials": "Materials",
    "vector": "Vector",
    "qc": "QC tests",
    "shipping": "Shipping",
}


def resource_name(key: str) -> str:
    """``CP1.qc.analysts`` → ``CP1 · QC analysts``; ``POC2.devices`` → ``POC2 · suites /
    devices``; ``CP1.staff.qa`` → ``CP1 · staff: QA``."""
    site, _, rest = key.partition(".")
    part, _, name = rest.partition(".")
    if part == "staff":
        return f"{site} · staff: {label(name)}"
    words = " ".join(w for w in (_PARTS.get(part, part), name) if w)
    return f"{site} · {words}" if rest else key


def _short(key: str) -> str:
    """A resource in a few letters for a heatmap's cell: ``CP1 devices``, ``CP1 QC
    analysts``, ``POC2 staff: QA``."""
    return resource_name(key).replace(" · ", " ").replace("suites / devices", "devices")


def _layout(height: int, **more: Any) -> dict[str, Any]:
    return base_layout(height, room_for_axes=True, bargap=0.15, **more)


def _label(runs: Replications, sides: int, index: int) -> str:
    return f"{'AB'[index]}: {runs.scenario}" if sides > 1 else runs.scenario


def histogram_figure(sides: Sequence[Replications]) -> dict[str, Any]:
    """The vein-to-vein times of every run, pooled, one bar per whole day (as a share of
    the patients dosed when two scenarios are drawn together), with each scenario's
    median and p90 marked."""
    data: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    overlay = len(sides) > 1
    for i, runs in enumerate(sides):
        counts = runs.vein_to_vein_histogram
        total = sum(counts) or 1
        days = [d for d, n in enumerate(counts) if n]
        values = [counts[d] / total * 100 if overlay else counts[d] for d in days]
        colour = SIDES[i] if overlay else BLUE
        data.append({
            "type": "bar", "x": [d + 0.5 for d in days], "y": values, "width": 1,
            "name": _label(runs, len(sides), i), "marker": {"color": colour},
            "opacity": 0.6 if overlay else 0.9,
            "customdata": [[d, d + 1, counts[d]] for d in days],
            "hovertemplate": "%{customdata[0]}–%{customdata[1]} days: %{customdata[2]} patients"
            "<extra>%{fullData.name}</extra>",
        })  # fmt: skip
        estimates = runs.estimates
        for key, dash in (("vein_to_vein_median", "dot"), ("vein_to_vein_p90", "dash")):
            value = estimates[key].mean
            if value is None:
                continue
            shapes.append({
                "type": "line", "xref": "x", "yref": "paper", "x0": value, "x1": value,
                "y0": 0, "y1": 1, "line": {"color": colour if overlay else INK, "dash": dash,
                                           "width": 1.5},
            })  # fmt: skip
            word = "median" if key.endswith("median") else "p90"
            notes.append({
                "x": value, "y": 1 - 0.07 * (2 * i + (word == "p90")), "xref": "x",
                "yref": "paper", "xanchor": "left", "showarrow": False,
                "text": f" {'AB'[i] + ' ' if overlay else ''}{word} {fmt(value)} d",
                "font": {"color": colour if overlay else INK, "size": 11},
            })  # fmt: skip
    return {
        "data": data,
        "layout": _layout(
            320, barmode="overlay", shapes=shapes, annotations=notes, showlegend=overlay,
            xaxis={"title": {"text": "first apheresis to infusion (days)"}, "rangemode": "tozero",
                   "gridcolor": "#eef2f6"},
            yaxis={"title": {"text": "% of the patients dosed" if overlay else "patients"},
                   "gridcolor": "#eef2f6"},
        ),
    }  # fmt: skip


def utilisation_figure(sides: Sequence[Replications]) -> dict[str, Any]:
    """Each resource's utilisation (busy over on-duty time), the most used at the top, the
    bottleneck in red; the mean wait for it in the hover text."""
    used: dict[str, float] = {}
    for runs in sides:
        for key, value in runs.utilisation.items():
            used[key] = max(used.get(key, 0.0), value)
    shown = sorted(used, key=lambda k: -used[k])[:MOST_USED][::-1]  # the most used on top
    data = []
    for i, runs in enumerate(sides):
        values = [runs.utilisation.get(k) for k in shown]
        if len(sides) > 1:
            colours: list[str] | str = SIDES[i]
        else:
            colours = [RED if k == runs.bottleneck else BLUE for k in shown]
        waits = [runs.waiting_days.get(k) for k in shown]
        data.append({
            "type": "bar", "orientation": "h", "y": [resource_name(k) for k in shown],
            "x": [None if v is None else v * 100 for v in values],
            "name": _label(runs, len(sides), i), "marker": {"color": colours},
            "text": ["" if v is None else f"{v:.0%}" for v in values], "textposition": "auto",
            "customdata": [["—" if w is None else f"{fmt(w, 2)} d"] for w in waits],
            "hovertemplate": "%{y}: %{x:.0f} % busy; mean wait %{customdata[0]}"
            "<extra>%{fullData.name}</extra>",
        })  # fmt: skip
    rows = len(shown) * max(1, len(sides))
    return {
        "data": data,
        "layout": _layout(
            max(220, 60 + 22 * rows), barmode="group", showlegend=len(sides) > 1,
            xaxis={"title": {"text": "utilisation (% of on-duty time)"}, "range": [0, 105],
                   "gridcolor": "#eef2f6"},
            yaxis={"automargin": True},
        ),
    }  # fmt: skip


def cost_figure(sides: Sequence[Replications]) -> dict[str, Any]:
    """The cost per dose by item, the largest at the top."""
    items: dict[str, float] = {}
    for runs in sides:
        for key, value in runs.cost_breakdown.items():
            items[key] = max(items.get(key, 0.0), value or 0.0)
    order = sorted(items, key=lambda k: items[k])
    data = []
    for i, runs in enumerate(sides):
        values = [runs.cost_breakdown.get(k) for k in order]
        total = runs.estimates["cost_per_dose"].mean
        data.append({
            "type": "bar", "orientation": "h", "y": [_COST_ITEMS.get(k, k) for k in order],
            "x": values, "name": _label(runs, len(sides), i),
            "marker": {"color": SIDES[i] if len(sides) > 1 else GREEN},
            "text": [fmt(v) if v is not None else "" for v in values], "textposition": "auto",
            "customdata": [
                ["—" if v is None or not total else f"{v / total:.0%}"] for v in values
            ],
            "hovertemplate": "%{y}: %{x:,.0f} per dose (%{customdata[0]})"
            "<extra>%{fullData.name}</extra>",
        })  # fmt: skip
    return {
        "data": data,
        "layout": _layout(
            max(240, 60 + 26 * len(order) * len(sides)), barmode="group",
            showlegend=len(sides) > 1,
            xaxis={"title": {"text": "cost per dose delivered (the scenario's currency)"},
                   "gridcolor": "#eef2f6", "separatethousands": True},
            yaxis={"automargin": True},
        ),
    }  # fmt: skip


def _axis_title(parameter: str) -> str:
    if parameter == "demand":
        return "demand (× the scenario's patients per year)"
    return f"suites / devices at {parameter.removeprefix('devices:')}"


def sweep_figure(sweep: Sweep, target_p90_days: float | None = None) -> dict[str, Any]:
    """The capacity map: a heatmap of the mean p90 vein-to-vein time over the two
    parameters, each cell labelled with its p90 and its bottleneck's utilisation; cells
    over ``target_p90_days`` (when given) are the warm colours."""
    z, text, hover = [], [], []
    for row in sweep.cells:
        z.append([c.vein_to_vein_p90.mean for c in row])
        text.append([
            f"p90 {fmt(c.vein_to_vein_p90.mean)} d"
            + ("" if c.bottleneck is None or c.bottleneck_utilisation is None else
               f"<br>{_short(c.bottleneck)} {c.bottleneck_utilisation:.0%}")
            for c in row
        ])  # fmt: skip
        hover.append([
            f"p90 {fmt(c.vein_to_vein_p90.mean)} days; {fmt(c.doses_per_year.mean)} doses a "
            f"year<br>bottleneck {resource_name(c.bottleneck) if c.bottleneck else '—'}"
            + ("" if c.bottleneck_utilisation is None else f" ({c.bottleneck_utilisation:.0%})")
            for c in row
        ])  # fmt: skip
    values = [v for row in z for v in row if v is not None]
    middle = target_p90_days if target_p90_days is not None else None
    heat: dict[str, Any] = {
        "type": "heatmap", "x": [f"{v:g}" for v in sweep.values_b],
        "y": [f"{v:g}" for v in sweep.values_a], "z": z, "text": text,
        "texttemplate": "%{text}", "customdata": hover,
        "hovertemplate": f"{sweep.parameter_a} %{{y}}, {sweep.parameter_b} %{{x}}<br>"
        "%{customdata}<extra></extra>",
        "colorscale": [[0, "#dbeafe"], [0.5, "#fef3c7"], [1, "#fca5a5"]],
        "colorbar": {"title": {"text": "p90 (days)"}, "thickness": 12},
    }  # fmt: skip
    if middle is not None and values:
        span = max(abs(max(values) - middle), abs(middle - min(values))) or 1.0
        heat.update({"zmin": middle - span, "zmax": middle + span})
    return {
        "data": [heat],
        "layout": _layout(
            max(260, 90 + 60 * len(sweep.values_a)),
            xaxis={"title": {"text": _axis_title(sweep.parameter_b)}, "type": "category"},
            yaxis={"title": {"text": _axis_title(sweep.parameter_a)}, "type": "category"},
        ),
    }  # fmt: skip


def ceiling_figure(ceiling: CapacityCeiling) -> dict[str, Any]:
    """The search for the ceiling: each demand tried (in patients a year) against its mean
    p90, the target as a line, the ceiling found marked (when one was)."""
    patients_per_year = ceiling.base_patients_per_year
    tried = sorted(ceiling.tried, key=lambda t: t.multiplier)
    data: list[dict[str, Any]] = []
    for within, colour, name in ((True, GREEN, "p90 within the target"),
                                 (False, RED, "p90 over the target")):  # fmt: skip
        points = [t for t in tried if t.within is within]
        if not points:
            continue
        data.append({
            "type": "scatter", "mode": "markers", "name": name,
            "x": [t.multiplier * patients_per_year for t in points],
            "y": [t.p90_days for t in points], "marker": {"color": colour, "size": 9},
            "customdata": [[f"{t.multiplier:g}", fmt(t.doses_per_year)] for t in points],
            "hovertemplate": "%{x:,.0f} patients a year (× %{customdata[0]}): p90 %{y:.1f} d, "
            "%{customdata[1]} doses a year<extra></extra>",
        })  # fmt: skip
    line = [t for t in tried if t.p90_days is not None]
    data.insert(0, {
        "type": "scatter", "mode": "lines", "x": [t.multiplier * patients_per_year for t in line],
        "y": [t.p90_days for t in line], "line": {"color": GREY, "width": 1},
        "hoverinfo": "skip", "showlegend": False,
    })  # fmt: skip
    shapes: list[dict[str, Any]] = [{
        "type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y",
        "y0": ceiling.target_p90_days, "y1": ceiling.target_p90_days,
        "line": {"color": INK, "dash": "dash", "width": 1.5},
    }]  # fmt: skip
    notes: list[dict[str, Any]] = [{
        "x": 0, "xref": "paper", "y": ceiling.target_p90_days, "yanchor": "bottom",
        "xanchor": "left", "showarrow": False,
        "text": f"target p90 {ceiling.target_p90_days:g} days", "font": {"color": INK, "size": 11},
    }]  # fmt: skip
    if ceiling.met:
        shapes.append({
            "type": "line", "yref": "paper", "y0": 0, "y1": 1, "xref": "x",
            "x0": ceiling.patients_per_year, "x1": ceiling.patients_per_year,
            "line": {"color": GREEN, "width": 2},
        })  # fmt: skip
        notes.append({
            "x": ceiling.patients_per_year, "y": 1, "yref": "paper", "xanchor": "right",
            "showarrow": False, "text": f"ceiling {ceiling.patients_per_year:,.0f} a year ",
            "font": {"color": GREEN},
        })  # fmt: skip
    return {
        "data": data,
        "layout": _layout(
            340, shapes=shapes, annotations=notes,
            xaxis={"title": {"text": "patients a year (demand tried)"}, "rangemode": "tozero",
                   "gridcolor": "#eef2f6", "separatethousands": True},
            yaxis={"title": {"text": "mean p90 vein-to-vein (days)"}, "gridcolor": "#eef2f6"},
        ),
    }  # fmt: skip
