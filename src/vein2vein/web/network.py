"""The network page: what needs someone now, then where every batch is, then the sites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from vein2vein.domain.batch import BatchState, needs_attention
from vein2vein.services import queries
from vein2vein.web._common import AppDep, age, label, templates

__all__ = ["router"]

router = APIRouter()

# States after which a batch is closed: shown, but greyed, in the counts.
_CLOSED = {"INFUSED", "REJECTED", "TERMINATED"}


@dataclass(frozen=True, slots=True)
class Cell:
    """The batches of one state at one site (or all sites): how many, and how long the one
    that has been in the state longest has waited (hours; None for closed states)."""

    n: int
    oldest_hours: float | None = None
    overdue: bool = False

    def title(self, state: str, where: str) -> str:
        """What the cell says, as a sentence for its tooltip."""
        what = f"{label(state)} {where}: {self.n} batch{'' if self.n == 1 else 'es'}"
        if self.oldest_hours is None:
            return what
        late = " (longer than it should)" if self.overdue else ""
        return f"{what}; the oldest has been in this state {age(self.oldest_hours)}{late}"


@dataclass(frozen=True, slots=True)
class HeatRow:
    state: str
    cells: list[Cell]  # one per site of Heatmap.sites
    total: Cell  # all sites


@dataclass(frozen=True, slots=True)
class Heatmap:
    """Batches by state (rows, in pipeline order, only states in use) and manufacturing site
    (columns), each with the age of its oldest batch: a long narrow table that reads down the
    pipeline and fits a tablet."""

    sites: list[str]
    rows: list[HeatRow]
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


@dataclass(frozen=True, slots=True)
class SiteCount:
    """Batches a site makes or ordered from it (what /batches?site=CODE lists)."""

    open: int = 0
    all: int = 0


def _cell(state: str, n: int, hours: float | None) -> Cell:
    if hours is None or n == 0:
        return Cell(n)
    return Cell(n, hours, needs_attention(BatchState(state), hours))


def _heatmap(overview: queries.NetworkOverview, oldest: dict[tuple[str, str], float]) -> Heatmap:
    plants = [s.code for s in overview.sites if s.kind.manufactures]
    sites = [p for p in plants if p in overview.counts] + sorted(set(overview.counts) - set(plants))
    states = [s for s in overview.states if overview.totals.get(s)]
    rows = [
        HeatRow(
            state,
            [
                _cell(state, overview.counts.get(site, {}).get(state, 0), oldest.get((site, state)))
                for site in sites
            ],
            _cell(state, overview.totals.get(state, 0), oldest.get(("", state))),
        )
        for state in states
    ]
    peak = max((c.n for r in rows if r.state not in _CLOSED for c in r.cells), default=0)
    site_open = {
        site: sum(n for st, n in overview.counts.get(site, {}).items() if st not in _CLOSED)
        for site in sites
    }
    return Heatmap(sites, rows, frozenset(_CLOSED), site_open, peak)


def _chart(overview: queries.NetworkOverview, heatmap: Heatmap) -> dict[str, Any]:
    """Plotly figure data: open batches per state, stacked by manufacturing site."""
    open_states = [r.state for r in heatmap.rows if r.state not in _CLOSED]
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


@dataclass(frozen=True, slots=True)
class Attention:
    """The batches that need someone now, in two kinds: holds (a QA decision, at once) and
    batches that have waited in their state longer than they should."""

    holds: list[queries.AttentionItem]
    overdue: list[queries.AttentionItem]


def _attention(overview: queries.NetworkOverview) -> Attention:
    holds = [i for i in overview.attention if i.batch.state == BatchState.ON_HOLD.value]
    overdue = [i for i in overview.attention if i.batch.state != BatchState.ON_HOLD.value]
    return Attention(holds, overdue)


@router.get("/", response_class=HTMLResponse, name="network")
def network_page(request: Request, app: AppDep) -> HTMLResponse:
    overview = queries.network_overview(app)
    heatmap = _heatmap(overview, overview.oldest_hours)
    response: HTMLResponse = templates.TemplateResponse(
        request,
        "network/index.html",
        {
            "overview": overview,
            "attention": _attention(overview),
            "heatmap": heatmap,
            "site_counts": {
                code: SiteCount(*counts) for code, counts in overview.site_counts.items()
            },
            "chart": _chart(overview, heatmap),
            "page": "network",
        },
    )
    return response
