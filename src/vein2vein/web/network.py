"""The network page: what needs someone now, then where every batch is, then the sites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from vein2vein.services import queries
from vein2vein.web._common import AppDep, label, templates

__all__ = ["router"]

router = APIRouter()

# States after which a batch is closed: shown, but greyed, in the counts.
_CLOSED = {"INFUSED", "REJECTED", "TERMINATED"}


@dataclass(frozen=True, slots=True)
class Heatmap:
    """Batches by manufacturing site (rows) and state (columns, only states in use)."""

    states: list[str]
    closed: set[str]
    rows: list[tuple[str, list[int], int]]  # site, count per state, open total
    totals: list[int]
    peak: int

    def shade(self, n: int) -> str:
        """A background for a cell of ``n`` batches: darker blue for more."""
        if n == 0 or self.peak == 0:
            return ""
        return f"background: rgba(37, 99, 235, {0.08 + 0.5 * n / self.peak:.2f})"


def _heatmap(overview: queries.NetworkOverview) -> Heatmap:
    states = [s for s in overview.states if overview.totals.get(s)]
    plants = [s.code for s in overview.sites if s.kind.manufactures]
    sites = plants + sorted(set(overview.counts) - set(plants))
    rows = []
    for site in sites:
        per_state = overview.counts.get(site, {})
        cells = [per_state.get(s, 0) for s in states]
        open_total = sum(n for s, n in per_state.items() if s not in _CLOSED)
        rows.append((site, cells, open_total))
    peak = max(
        (n for _, cells, _ in rows for s, n in zip(states, cells, strict=True) if s not in _CLOSED),
        default=0,
    )
    totals = [overview.totals.get(s, 0) for s in states]
    return Heatmap(states, _CLOSED, rows, totals, peak)


def _chart(overview: queries.NetworkOverview, heatmap: Heatmap) -> dict[str, Any]:
    """Plotly figure data: open batches per state, stacked by manufacturing site."""
    open_states = [s for s in heatmap.states if s not in _CLOSED]
    traces = [
        {
            "type": "bar",
            "name": site,
            "x": [label(s) for s in open_states],
            "y": [overview.counts.get(site, {}).get(s, 0) for s in open_states],
        }
        for site, _, _ in heatmap.rows
    ]
    return {"data": traces, "has_data": bool(open_states)}


@router.get("/", response_class=HTMLResponse, name="network")
def network_page(request: Request, app: AppDep) -> HTMLResponse:
    overview = queries.network_overview(app)
    heatmap = _heatmap(overview)
    response: HTMLResponse = templates.TemplateResponse(
        request,
        "network/index.html",
        {
            "overview": overview,
            "heatmap": heatmap,
            "chart": _chart(overview, heatmap),
            "page": "network",
        },
    )
    return response
