"""Specifications from history (DESIGN §8): limits proposed from the released batches.

For one numeric attribute, three proposals: the normal tolerance interval (two-sided with
the exact factor, or one-sided, as the effective specification's limits are), and the
distribution-free interval from order statistics. Each says how many of the past released
batches it would have failed — a limit tighter than the process is capable of rejects good
doses. A proposal is saved as a DRAFT of the next version of the specification (the rest of
the file unchanged, a comment on top saying where the limits came from); it becomes
effective only through change control (a QA reviewer's signed approval, services/specs.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vein2vein.analytics.capability import nonparametric_tolerance, tolerance_interval
from vein2vein.domain.batch import BatchState
from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.people import Actor
from vein2vein.domain.process import Range
from vein2vein.domain.specification import Attribute, Conformance, Kind, Stage
from vein2vein.formats.spec import with_limits
from vein2vein.formats.table import Column
from vein2vein.services.analytics import (
    MIN_FOR_PHASE_II,
    WE_RULES,
    chart_of,
    series_from_column,
)
from vein2vein.services.app import App
from vein2vein.services.authorise import require
from vein2vein.services.specs import SpecVersion, effective_spec, import_spec
from vein2vein.store import frames
from vein2vein.store.qc import SpecRepository

__all__ = ["RELEASED_STATES", "Proposal", "ProposalSet", "propose", "save_proposal"]

# A batch that was released and went on (an OOS release is not history to learn limits from).
RELEASED_STATES = frozenset(
    {
        BatchState.RELEASED,
        BatchState.CONDITIONALLY_RELEASED,
        BatchState.SHIPPED,
        BatchState.DELIVERED,
        BatchState.INFUSED,
    }
)
SIDES = ("both", "low", "high")


@dataclass(frozen=True)
class Proposal:
    method: str  # "normal tolerance" or "nonparametric"
    low: float | None
    high: float | None
    k: float | None  # the normal tolerance factor
    confidence: float  # asked for (normal) or achieved (nonparametric)
    would_fail: tuple[str, ...]  # the lots of past released batches outside the limits

    def as_json(self) -> dict[str, object]:
        return {
            "method": self.method,
            "low": self.low,
            "high": self.high,
            "k": self.k,
            "confidence": self.confidence,
            "would_fail": len(self.would_fail),
            "would_fail_lots": list(self.would_fail),
        }


@dataclass(frozen=True)
class ProposalSet:
    product: str
    stage: str
    spec_code: str
    spec_version: int
    attribute: Attribute
    sides: str
    coverage: float
    confidence: float
    lots: tuple[str, ...]
    values: tuple[float, ...]
    current_would_fail: tuple[str, ...]
    proposals: tuple[Proposal, ...]
    skipped: tuple[str, ...]  # a proposal that could not be made, and why
    warnings: tuple[str, ...] = ()

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def sd(self) -> float:
        return float(np.std(self.values, ddof=1))

    def as_json(self) -> dict[str, object]:
        limits = self.attribute.limits
        return {
            "product": self.product,
            "stage": self.stage,
            "specification": f"{self.spec_code} v{self.spec_version}",
            "attribute": self.attribute.name,
            "n": len(self.values),
            "mean": self.mean,
            "sd": self.sd,
            "coverage": self.coverage,
            "confidence": self.confidence,
            "sides": self.sides,
            "current": {
                "low": limits.low,
                "high": limits.high,
                "would_fail": len(self.current_would_fail),
            },
            "proposals": [p.as_json() for p in self.proposals],
            "skipped": list(self.skipped),
            "warnings": list(self.warnings),
        }


def _outside(lots: list[str], values: np.ndarray, limits: Range) -> tuple[str, ...]:
    return tuple(lot for lot, v in zip(lots, values.tolist(), strict=True) if v not in limits)


def _outward(value: float | None, precision: int, side: str) -> float | None:
    """A limit rounded to the attribute's precision, away from the data (a limit is never
    tightened by rounding)."""
    if value is None:
        return None
    scale = 10**precision
    rounded = (math.floor if side == "low" else math.ceil)(value * scale - 1e-9) / scale
    return float(rounded)


def propose(
    app: App,
    by: Actor,
    *,
    product: str,
    stage: str,
    attribute: str,
    coverage: float = 0.99,
    confidence: float = 0.95,
    sides: str | None = None,
) -> ProposalSet:
    """Limits for ``attribute`` that would contain ``coverage`` of the doses with
    ``confidence``, from the released batches; ``sides`` (both, low, high) follows the
    effective specification when not given."""
    require(by, "qc.read")
    if not 0.5 < coverage < 1 or not 0.5 < confidence < 1:
        raise InvalidInput("coverage and confidence: expected between 0.5 and 1, e.g. 0.99 0.95")
    try:
        stage_ = Stage(stage)
    except ValueError:
        raise InvalidInput(f"stage {stage!r}: expected one of {', '.join(Stage)}") from None
    with app.reader() as connection:
        record, spec = effective_spec(SpecRepository(connection), product, stage_)
        frame = frames.results_frame(connection, product=product, stage=stage, attribute=attribute)
    chosen = next((a for a in spec.attributes if a.name == attribute), None)
    if chosen is None or chosen.kind not in (Kind.NUMERIC, Kind.MULTI):
        numeric = [a.name for a in spec.attributes if a.kind in (Kind.NUMERIC, Kind.MULTI)]
        raise InvalidInput(
            f"attribute {attribute!r}: not a numeric attribute of {record.code}; "
            f"expected one of {', '.join(numeric)}"
        )
    limits = chosen.limits
    if sides is None:
        sides = (
            "low"
            if limits.high is None and limits.low is not None
            else "high"
            if limits.low is None and limits.high is not None
            else "both"
        )
    if sides not in SIDES:
        raise InvalidInput(f"sides {sides!r}: expected one of {', '.join(SIDES)}")
    frame = frame.drop_duplicates(subset="lot", keep="last")
    released = frame[
        frame["state"].isin([s.value for s in RELEASED_STATES])
        & (frame["conformance"] != Conformance.OOS.value)
    ]
    lots = [str(x) for x in released["lot"].tolist()]
    values = released["value"].to_numpy(dtype=np.float64)
    if len(values) < 3:
        raise InvalidInput(
            f"{attribute} ({stage}) of {product}: {len(values)} released batches; at least 3 "
            "are needed to propose limits"
        )
    low_wanted, high_wanted = sides in ("both", "low"), sides in ("both", "high")
    proposals: list[Proposal] = []
    skipped: list[str] = []
    lower, upper, k = tolerance_interval(
        values, coverage=coverage, confidence=confidence, sides=2 if sides == "both" else 1
    )
    normal = Range(
        _outward(lower, chosen.precision, "low") if low_wanted else None,
        _outward(upper, chosen.precision, "high") if high_wanted else None,
    )
    proposals.append(
        Proposal(
            "normal tolerance",
            normal.low,
            normal.high,
            k,
            confidence,
            _outside(lots, values, normal),
        )
    )
    try:
        wanted = tuple(s for s, on in (("low", low_wanted), ("high", high_wanted)) if on)
        np_tol = nonparametric_tolerance(
            values, coverage=coverage, confidence=confidence, sides=wanted
        )
        free = Range(
            _outward(np_tol.lower, chosen.precision, "low"),
            _outward(np_tol.upper, chosen.precision, "high"),
        )
        proposals.append(
            Proposal(
                "nonparametric",
                free.low,
                free.high,
                None,
                np_tol.confidence,
                _outside(lots, values, free),
            )
        )
    except InvalidInput as exc:
        skipped.append(f"nonparametric: {exc}")
    # Limits from history describe that history: from a process that drifted, they carry
    # the drift into the specification.
    cautions: list[str] = []
    if len(values) > MIN_FOR_PHASE_II:
        history = Column(attribute, tuple(values.tolist()), tuple(lots), ("",) * len(lots))
        broken = chart_of(series_from_column(history), rules=WE_RULES).phase_ii_violations
        if broken:
            rules = ", ".join(f"{rule} ×{n}" for rule, n in broken.items())
            cautions.append(
                f"the released batches are not in statistical control ({rules} on their "
                "control chart): limits from them carry that shift; look at the chart first"
            )
    return ProposalSet(
        product,
        stage,
        record.code,
        record.version,
        chosen,
        sides,
        coverage,
        confidence,
        tuple(lots),
        tuple(values.tolist()),
        _outside(lots, values, limits),
        tuple(proposals),
        tuple(skipped),
        tuple(cautions),
    )


def save_proposal(
    app: App,
    by: Actor,
    *,
    product: str,
    stage: str,
    attribute: str,
    low: float | None,
    high: float | None,
    reason: str,
) -> SpecVersion:
    """Save new limits for ``attribute`` as a DRAFT of the next version of the effective
    specification (QA approves it through change control before it applies)."""
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise InvalidInput("proposal: give the reason for the new limits (at least 10 characters)")
    if low is None and high is None:
        raise InvalidInput("proposal: give a low limit, a high limit or both")
    try:
        stage_ = Stage(stage)
    except ValueError:
        raise InvalidInput(f"stage {stage!r}: expected one of {', '.join(Stage)}") from None
    with app.reader() as connection:
        specs = SpecRepository(connection)
        record, _ = effective_spec(specs, product, stage_)
        newest = max(r.version for r in specs.list(code=record.code))
    note = (
        f"Version {newest + 1}: limits of {attribute} proposed from the history of released "
        f"batches by {by.user_id}: {reason}"
    )
    text = with_limits(record.source, attribute, low=low, high=high, version=newest + 1, note=note)
    source = f"proposal from history ({record.code} v{record.version}, {attribute})"
    return import_spec(app.uow(), by, text, source)
