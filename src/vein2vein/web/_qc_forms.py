"""What the QC pages offer a person (the forms their roles allow), and the small helpers
their templates read: retest targets, placeholders, units, the turnaround chart.

Only what the permission table gives the person at the batch's sites is offered (the way the
record pages decide); the services check again and decide. Nothing here re-implements a rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from vein2vein.domain.batch import Action, BatchState
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.qc import DISPOSED
from vein2vein.domain.specification import Attribute, Kind, Specification
from vein2vein.services import qc_views, queries, record_views
from vein2vein.services.app import App
from vein2vein.services.auth import Identity
from vein2vein.services.authorise import batch_sites, permitted
from vein2vein.services.qc_views import BatchQc, ResultView

__all__ = [
    "DISPOSITIONS",
    "Offer",
    "disposition_forms",
    "entry_placeholder",
    "meaning_of",
    "offer",
    "retest_targets",
    "sample_steps",
    "shows_typed",
    "subject_title",
    "sup",
    "turnaround_chart",
]

# The dispositions the QC page offers (they go through perform_transition and its QC gate).
DISPOSITIONS = ("release", "release-conditionally", "release-oos", "confirm-release", "reject")

# Where a sample may be drawn: the batch states in which the draw form is shown (the service
# says which stage fits which state, and refuses the rest).
_SAMPLING = {"RECEIVED", "IN_PROCESS", "QC_PENDING"}
_STAGE_FOR_STATE = {"RECEIVED": "starting-material", "IN_PROCESS": "in-process"}


@dataclass(frozen=True, slots=True)
class Offer:
    """The QC forms a person is offered on one batch (the services check again)."""

    draw: bool = False
    enter: bool = False
    verify: bool = False
    invalidate: bool = False
    review_oot: bool = False
    escalate: bool = False
    conclude: bool = False
    review_record: bool = False
    request_oos: bool = False
    acknowledge: bool = False
    dispositions: list[queries.ActionOption] = field(default_factory=list)
    releaser: bool = False  # the person may release this batch (when the check allows)
    default_stage: str = "release"


def _may(identity: Identity, permission: str, b: queries.BatchRow) -> bool:
    rule = rule_for(permission)
    return permitted(identity.actor, rule, batch_sites(rule.where, b))


def offer(identity: Identity, view: BatchQc, batch: queries.BatchView) -> Offer:
    """The forms ``identity`` gets on the QC page of ``view``'s batch."""
    b = view.batch
    check = view.release[1] if view.release else None
    return Offer(
        draw=_may(identity, "sample.draw", b) and b.state in _SAMPLING,
        enter=_may(identity, "result.enter", b),
        verify=_may(identity, "result.verify", b),
        # After the disposition a result is no longer invalidated (domain/qc.py DISPOSED).
        invalidate=_may(identity, "result.invalidate", b) and BatchState(b.state) not in DISPOSED,
        review_oot=_may(identity, "oot.review", b),
        escalate=_may(identity, "oos.escalate", b),
        conclude=_may(identity, "oos.conclude", b),
        review_record=(
            _may(identity, "record.review", b) and b.state == "QC_PENDING" and view.review is None
        ),
        request_oos=(
            _may(identity, "release.request-oos", b)
            and b.state == "QC_PENDING"
            and check is not None
            and check.releasable_oos
        ),
        acknowledge=_may(identity, "alert.acknowledge", b),
        dispositions=disposition_forms(identity, view, batch),
        releaser=_may(identity, "batch.release", b),
        default_stage=_STAGE_FOR_STATE.get(b.state, "release"),
    )


def disposition_forms(
    identity: Identity, view: BatchQc, batch: queries.BatchView
) -> list[queries.ActionOption]:
    """The release forms to show: those the person may take now that the release check
    allows (a rejection is always offered to whom it is allowed)."""
    check = view.release[1] if view.release else None
    allowed = {
        "release": bool(check and check.releasable),
        "confirm-release": bool(check and check.releasable),
        "release-conditionally": bool(check and check.conditionally_releasable),
        "release-oos": bool(check and check.releasable_oos),
        "reject": True,
    }
    return [
        a
        for a in queries.offered_actions(batch, identity.actor)
        if a.action in DISPOSITIONS and allowed[a.action]
    ]


def meaning_of(action: str) -> str:
    """The meaning of the signature a disposition needs (``released``, ``rejected``)."""
    meaning = rule_for(Action(action)).signature
    return meaning.value if meaning else ""


def retest_targets(view: BatchQc) -> dict[tuple[str, str], int]:
    """(sample, attribute) → the invalidated result a new entry of it retests: the newest
    invalidated result of an outstanding attribute that has no retest yet."""
    targets: dict[tuple[str, str], int] = {}
    for s in view.samples:
        outstanding = {a.name for a in s.outstanding}
        for r in s.results:
            if r.result.attribute in outstanding and not r.result.current and r.retested_by is None:
                key = (s.sample.id, r.result.attribute)
                targets[key] = max(targets.get(key, 0), r.result.id)
    return targets


def entry_placeholder(attribute: Attribute) -> str:
    """What the value field of an attribute asks for, as its placeholder."""
    if attribute.kind is Kind.MULTI:
        examples = ", ".join(str(1200 + 50 * i) for i in range(attribute.replicates))
        return f"e.g. {examples}"
    if attribute.kind is Kind.REPORT:
        return "number or text"
    return "value"


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def sup(text: str) -> str:
    """Powers of ten as a person writes them: ``10^9 cells`` -> ``10⁹ cells``."""
    return re.sub(r"\^(-?\d+)", lambda m: m.group(1).translate(_SUPERSCRIPT), text)


def shows_typed(view: ResultView) -> bool:
    """Whether what the analyst typed says more than the reported value: the replicates of a
    multi-valued result, or a number that rounding changed (``69.5`` reported as ``70``)."""
    r = view.result
    if view.attribute.kind is Kind.MULTI:
        return True
    if r.number is None:
        return False
    try:
        return float(r.entered.replace(",", ".")) != r.number
    except ValueError:
        return True


def subject_title(spec: Specification, subject: str) -> str:
    """What a blocker is about, as a person reads it: the attribute's title, or the
    deviation's reference (or "batch record") as it is."""
    return next(
        (a.title for a in spec.attributes if a.name == subject), subject[:1].upper() + subject[1:]
    )


def sample_steps(app: App, identity: Identity, lot: str) -> list[tuple[str, str]]:
    """(step id, name) of the batch's record, for the draw form (none before processing)."""
    if record_views.record_of(app, lot) is None:
        return []
    view = record_views.record_view(app, identity.actor, lot)
    return [(s.definition.id, s.definition.name) for s in view.steps]


def turnaround_chart(work: qc_views.Workload) -> dict[str, Any]:
    """Plotly data: median and 90th percentile turnaround per method as a percentage of the
    method's target (100 % = on target), so a 1-hour count and a 14-day culture read alike."""
    rows = [t for t in work.turnaround if t.target_hours]
    methods = [t.method for t in rows]

    def percent(hours: float, target: float | None) -> float:
        return round(100 * hours / target, 1) if target else 0.0

    def bars(name: str, values: list[float], color: str, hours: list[float]) -> dict[str, Any]:
        return {
            "type": "bar",
            "orientation": "h",
            "name": name,
            "y": methods,
            "x": values,
            "customdata": hours,
            "hovertemplate": "%{y}: %{x:.0f} % of target (%{customdata:.1f} h)<extra></extra>",
            "marker": {"color": color},
        }

    median = [percent(t.median_hours, t.target_hours) for t in rows]
    p90 = [percent(t.p90_hours, t.target_hours) for t in rows]
    return {
        "has_data": bool(methods),
        "data": [
            bars("median", median, "#1d4ed8", [t.median_hours for t in rows]),
            bars("90th percentile", p90, "#93c5fd", [t.p90_hours for t in rows]),
        ],
        "height": 110 + 30 * len(methods),
        "max": max([100.0, *median, *p90]) * 1.05,
    }
