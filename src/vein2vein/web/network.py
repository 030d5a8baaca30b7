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
    """Batches by state (rows, in pipeline order, only states in use) and manufacturing site
    (columns): a long narrow table that reads down the pipeline and fits a tablet."""

    sites: list[str]
    rows: list[tuple[str, list[int], int]]  # state, count per site, all sites
    closed: frozenset[str]
    site_open: dict[str, int]
    peak: int

    def shade(self, state: str, n: int) -> str:
        """A background for a cell of ``n`` batches: darker for more, red for holds."""
        if n == 0 or self.peak == 0 or state in self.closed:
            return ""
        alpha = 0.08 + 0.5 * n / self.peak
        rgb = "220, 38, 38" if state == "ON_HOLD" else "37, 99, 235"
        return f"background: rgba({rgb}, {alpha:.2f})"


def _heatmap(overview: queries.NetworkOverview) -> Heatmap:
    plants = [s.code for s in overview.sites if s.kind.manufactures]
    sites = [p for p in plants if p in overview.counts] + sorted(set(overview.counts) - set(plants))
    states = [s for s in overview.states if overview.totals.get(s)]
    rows = [
        (
            state,
            [overview.counts.get(site, {}).get(state, 0) for site in sites],
            overview.totals.get(state, 0),
        )
        for state in states
    ]
    peak = max((n for st, cells, _ in rows if st not in _CLOSED for n in cells), default=0)
    site_open = {
        site: sum(n for st, n in overview.counts.get(site, {}).items() if st not in _CLOSED)
        for site in sites
    }
    return Heatmap(sites, rows, frozenset(_CLOSED), site_open, peak)


def _chart(overview: queries.NetworkOverview, heatmap: Heatmap) -> dict[str, Any]:
    """Plotly figure data: open batches per state, stacked by manufacturing site."""
    open_states = [st for st, _, _ in heatmap.rows if st not in _CLOSED]
    traces = [
        {
            "type": "bar",
            "name": site,
            "x": [label(s) for s in open_states],
            "y": [overview.counts.get(site, {}).get(s, 0) for s in open_states],
        }
        for site in heatmap.sites
    ]
    tallest = max((overview.totals.get(s, 0) for s in open_states), default=0)
    return {"data": traces, "has_data": bool(open_states), "dtick": 1 if tallest <= 8 else None}


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
