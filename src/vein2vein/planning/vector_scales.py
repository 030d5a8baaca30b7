"""A vector plan worked out at every batch scale, and the scale recommended (issue 9).

For each scale: the smallest safety stock that keeps the risk of a stock-out under the
plan's target (:func:`~vein2vein.planning.supply.safety_stock`), the batch plan with its
order dates at that safety stock (:func:`~vein2vein.planning.supply.schedule`), and from
the Monte Carlo at that safety stock the batches and litres a year (failed batches and
their replacements included), the plasmid grams, the vector expiring unused, and the
vector cost per dose: the batches' cost plus the plasmids', over the patients dosed.

The recommendation is the scale with the lowest vector cost per dose among those whose risk
can be brought under the target; its reasons say what each other scale costs more, and
why (vector expiring unused, many batches, a risk that stays too high).

The milestones are counted back from the first patient of each phase: the vector must be
released by then, so its batch must start a production and a QC release time before, its
manufacturing slot be booked and each plasmid be ordered their lead times before that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from vein2vein.planning.supply import (
    MAX_SAFETY_YEARS,
    Schedule,
    SupplyRisk,
    expected_batches,
    safety_stock,
    schedule,
)
from vein2vein.planning.vectors import MAX_BATCHES, VectorPlan

__all__ = ["Milestone", "ScaleOutcome", "VectorPlanResult", "doses_text", "plan_vectors"]

#: Above this share of the vector made expiring unused, a scale's reason says so.
WASTE_WORTH_SAYING = 0.15


@dataclass(frozen=True, slots=True)
class Milestone:
    """What the first patient of ``phase`` needs, and by when (see the module)."""

    phase: str
    first_patient: date
    release_by: date
    start_by: date
    slot_booking_by: date
    plasmid_orders: dict[str, date]
    late: bool

    def as_json(self) -> dict[str, object]:
        return {
            "phase": self.phase,
            "first_patient": self.first_patient.isoformat(),
            "release_by": self.release_by.isoformat(),
            "start_by": self.start_by.isoformat(),
            "slot_booking_by": self.slot_booking_by.isoformat(),
            "plasmid_orders": {k: v.isoformat() for k, v in self.plasmid_orders.items()},
            "late": self.late,
        }


@dataclass(frozen=True, slots=True)
class ScaleOutcome:
    """One scale worked out (see the module). ``reachable`` is False when no safety stock
    up to the search's limit brings the risk under the target (``risk`` is then the one at
    that limit); ``practical`` is False when the plan would need more than ``MAX_BATCHES``
    batches at this scale, which is then not simulated (its figures are 0 and its cost
    None). The cost counts every batch, failed or not; of the vector left at the end of the
    plan, what later patients (at the plan's last rate) could use before it expires is
    carried forward at its cost (``carried_fraction`` of what was made), the rest is
    charged to the plan's patients like vector expiring during it.
    Years are calendar years; money is in the plan's currency."""

    scale: float
    doses_per_batch: float
    practical: bool
    expected_batches: float
    safety_doses: float
    reachable: bool
    risk: SupplyRisk | None
    p_stockout_without_safety: float | None
    schedule: Schedule | None
    batches_by_year: dict[int, float]
    litres_by_year: dict[int, float]
    plasmid_grams: dict[str, float]
    plasmid_grams_by_year: dict[str, dict[int, float]]
    cost: float | None
    cost_per_dose: float | None
    waste_fraction: float
    left_fraction: float
    carried_fraction: float

    def as_json(self) -> dict[str, object]:
        r = self.risk
        return {
            "scale_litres": self.scale,
            "doses_per_batch": self.doses_per_batch,
            "practical": self.practical,
            "expected_batches": self.expected_batches,
            "safety_stock_doses": self.safety_doses,
            "target_reachable": self.reachable,
            "p_stockout": None if r is None else r.p_stockout,
            "p_stockout_ci_half_width": None if r is None else r.p_half_width,
            "p_stockout_without_safety_stock": self.p_stockout_without_safety,
            "batches": None if r is None else r.batches,
            "failed_batches": None if r is None else r.failed_batches,
            "patients_short": None if r is None else r.patients_short,
            "batches_by_year": {str(y): n for y, n in self.batches_by_year.items()},
            "litres_by_year": {str(y): n for y, n in self.litres_by_year.items()},
            "plasmid_grams": dict(self.plasmid_grams),
            "plasmid_grams_by_year": {
                name: {str(y): g for y, g in years.items()}
                for name, years in self.plasmid_grams_by_year.items()
            },
            "cost": self.cost,
            "cost_per_dose": self.cost_per_dose,
            "waste_fraction": self.waste_fraction,
            "left_at_end_fraction": self.left_fraction,
            "carried_forward_fraction": self.carried_fraction,
            "planned_batches": [] if self.schedule is None else [
                {
                    "number": b.number,
                    "start": b.start.isoformat(),
                    "release": b.release.isoformat(),
                    "expires": b.expires.isoformat(),
                    "phase": b.phase,
                    "slot_booking_by": b.slot_booking_by.isoformat(),
                    "plasmid_orders": {k: v.isoformat() for k, v in b.plasmid_orders.items()},
                    "late": b.late,
                }
                for b in self.schedule.batches
            ],
            "stock_by_month": [] if self.schedule is None else [
                {"month": m.isoformat()[:7], "demand_doses": d, "stock_doses": st}
                for m, d, st in zip(self.schedule.months, self.schedule.demand_doses,
                                    self.schedule.stock_doses, strict=True)
            ],
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class VectorPlanResult:
    """The plan's demand (``demand_by_year``: year → patients and vector), its
    ``milestones``, every scale's outcome, the ``recommended`` scale (None when no scale
    meets the target) and the ``reasons``."""

    plan: VectorPlan
    demand_by_year: dict[int, tuple[float, float]]
    milestones: tuple[Milestone, ...]
    scales: tuple[ScaleOutcome, ...]
    recommended: float | None
    reasons: tuple[str, ...]

    def outcome(self, scale: float) -> ScaleOutcome:
        return next(o for o in self.scales if o.scale == scale)

    def late(self) -> list[str]:
        """What is already late on the plan's today: each phase whose milestones are, and
        the recommended scale's batches whose slot or plasmids should have been ordered."""
        plan = self.plan
        if plan.as_of is None:
            return []
        found = [
            f"the {m.phase} milestones (book the slot by {m.slot_booking_by.isoformat()}, "
            f"order the plasmids by {min(m.plasmid_orders.values()).isoformat()})"
            for m in self.milestones
            if m.late
        ]
        chosen = self.outcome(self.recommended) if self.recommended is not None else None
        if chosen is not None and chosen.schedule is not None:
            batches = [b.number for b in chosen.schedule.batches if b.late]
            if batches:
                which = f"batch {batches[0]}" if len(batches) == 1 else (
                    f"batches {batches[0]}–{batches[-1]}")  # fmt: skip
                found.append(f"{which} of the {chosen.scale:g} L plan")
        return found

    def as_json(self) -> dict[str, object]:
        plan = self.plan
        return {
            "plan": plan.name,
            "unit": plan.unit,
            "dose_per_patient": plan.dose_units(),
            "stockout_target": plan.supply.stockout_target,
            "runs": plan.supply.runs,
            "demand_by_year": {
                str(y): {"patients": n, "vector": units}
                for y, (n, units) in self.demand_by_year.items()
            },
            "milestones": [m.as_json() for m in self.milestones],
            "scales": [o.as_json() for o in self.scales],
            "recommended_scale_litres": self.recommended,
            "reasons": list(self.reasons),
        }


def milestones(plan: VectorPlan) -> tuple[Milestone, ...]:
    """The latest dates for the first patient of each phase (see the module)."""
    v = plan.vector
    out = []
    for phase, first in plan.phases:
        start = first - timedelta(days=v.lead_days)
        booking = start - timedelta(days=v.slot_booking_days)
        orders = {p.name: start - timedelta(days=p.lead_time_days) for p in plan.plasmids}
        late = plan.is_late(booking, *orders.values())
        out.append(Milestone(phase, first, first, start, booking, orders, late))
    return tuple(out)


def _outcome(plan: VectorPlan, scale: float, random_demand: bool) -> ScaleOutcome:
    dose = plan.dose_units()
    per_batch = plan.vector.per_batch(scale)
    needed = expected_batches(plan, scale)
    if needed > MAX_BATCHES:
        return ScaleOutcome(
            scale=scale, doses_per_batch=per_batch / dose, practical=False,
            expected_batches=needed, safety_doses=0.0, reachable=False, risk=None,
            p_stockout_without_safety=None, schedule=None, batches_by_year={},
            litres_by_year={}, plasmid_grams={}, plasmid_grams_by_year={}, cost=None,
            cost_per_dose=None, waste_fraction=0.0, left_fraction=0.0, carried_fraction=0.0,
        )  # fmt: skip
    search = safety_stock(plan, scale, random_demand=random_demand)
    risk = search.risk
    planned = schedule(plan, scale, risk.safety_doses)
    litres = risk.batches * scale
    grams = {p.name: litres * p.mg_per_litre / 1000 for p in plan.plasmids}
    plasmid_cost = sum(grams[p.name] * p.cost_per_gram for p in plan.plasmids)
    spent = risk.batches * plan.vector.cost_per_batch[scale] + plasmid_cost
    made = risk.made_doses
    left = min(risk.left_doses / made, 1.0) if made > 0 else 0.0
    # What is left at the end and later patients can use before it expires is carried
    # forward at its cost; what would expire unused is these patients' to pay for.
    carried = min(risk.usable_left_doses / made, 1.0) if made > 0 else 0.0
    cost = spent * (1 - carried)
    dosed = risk.patients - risk.patients_short
    return ScaleOutcome(
        scale=scale,
        doses_per_batch=per_batch / dose,
        practical=True,
        expected_batches=needed,
        safety_doses=risk.safety_doses,
        reachable=search.reachable,
        risk=risk,
        p_stockout_without_safety=search.without.p_stockout,
        schedule=planned,
        batches_by_year=risk.batches_by_year,
        litres_by_year={y: n * scale for y, n in risk.batches_by_year.items()},
        plasmid_grams=grams,
        plasmid_grams_by_year={
            p.name: {y: n * scale * p.mg_per_litre / 1000 for y, n in risk.batches_by_year.items()}
            for p in plan.plasmids
        },
        cost=cost,
        cost_per_dose=cost / dosed if dosed > 0 else None,
        waste_fraction=risk.expired_doses / made if made > 0 else 0.0,
        left_fraction=left,
        carried_fraction=carried,
    )


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _reasons(plan: VectorPlan, outcomes: list[ScaleOutcome]) -> tuple[float | None, list[str]]:
    target = plan.supply.stockout_target
    if not any(plan.patients_by_year().values()):
        return None, ["The plan has no patients: there is no vector to make."]
    if not any(o.practical for o in outcomes):
        return None, [
            f"Every scale would need more than {MAX_BATCHES:,} batches over the plan: the "
            "demand is beyond any of them (or the titre or the dose is wrong)."
        ] + [_impractical(o) for o in outcomes]
    fits = [o for o in outcomes if o.reachable and o.cost_per_dose is not None]
    if not fits:
        return None, [
            f"No scale keeps the risk of a stock-out under {target:.0%}, even with a safety "
            f"stock of {MAX_SAFETY_YEARS:g} years of the peak year's patients and two batches: "
            "look at the batch success rate, the shelf life and the lead time."
        ] + [_impractical(o) for o in outcomes if not o.practical]
    best = min(fits, key=lambda o: (o.cost_per_dose or 0.0, o.scale))
    assert best.cost_per_dose is not None and best.risk is not None
    reasons = [
        f"{best.scale:g} L: the lowest vector cost per dose, {_money(best.cost_per_dose)}, with "
        f"a stock-out risk of {best.risk.p_stockout:.1%} over the plan (target {target:.0%}) "
        f"with a safety stock of {best.safety_doses:,.0f} doses; {best.risk.batches:.1f} batches, "
        f"{best.waste_fraction:.0%} of the vector expiring unused." + _pooled(best)
    ]
    for o in outcomes:
        if o is best:
            continue
        if not o.practical:
            reasons.append(_impractical(o))
            continue
        assert o.risk is not None
        if not o.reachable or o.cost_per_dose is None:
            reasons.append(
                f"{o.scale:g} L: the risk of a stock-out stays at {o.risk.p_stockout:.1%} "
                f"even with a safety stock of {o.safety_doses:,.0f} doses (the search's limit)."
            )
            continue
        why = []
        if o.waste_fraction > WASTE_WORTH_SAYING:
            why.append(f"{o.waste_fraction:.0%} of its vector expires unused")
        if o.risk.batches > 1.5 * best.risk.batches:
            why.append(f"{o.risk.batches:,.1f} batches instead of {best.risk.batches:,.1f}")
        if o.safety_doses > 1.5 * best.safety_doses and o.safety_doses - best.safety_doses > 5:
            why.append(f"a safety stock of {o.safety_doses:,.0f} doses")
        if best.cost_per_dose > 0:
            more = f" ({o.cost_per_dose / best.cost_per_dose - 1:+.0%})"
        else:
            more = ""
        reasons.append(
            f"{o.scale:g} L: {_money(o.cost_per_dose)} per dose{more}"
            + (f": {'; '.join(why)}." if why else ".")
            + _pooled(o)
        )
    return best.scale, reasons


def doses_text(value: float) -> str:
    """Doses a batch as a person reads them: 357.1, 0.4, 0.0031."""
    return f"{value:,.1f}" if value >= 0.1 else f"{value:.2g}"


def _pooled(o: ScaleOutcome) -> str:
    if o.doses_per_batch >= 1:
        return ""
    return f" A dose takes {1 / o.doses_per_batch:,.1f} batches pooled."


def _impractical(o: ScaleOutcome) -> str:
    return (
        f"{o.scale:g} L: {o.expected_batches:,.0f} batches over the plan "
        f"({doses_text(o.doses_per_batch)} doses a batch), more than {MAX_BATCHES:,}: not worked "
        "out."
    )


def plan_vectors(
    plan: VectorPlan,
    progress: Callable[[int, int], None] | None = None,
    *,
    random_demand: bool = True,
) -> VectorPlanResult:
    """Work ``plan`` out at each of its scales and recommend one (see the module);
    ``progress(done, total)`` after each scale. ``random_demand`` False: the Monte Carlo
    takes the forecast's patients as they are, and only batches fail."""
    dose = plan.dose_units()
    demand = {y: (n, n * dose) for y, n in plan.patients_by_year().items()}
    outcomes = []
    for scale in plan.vector.scales:
        outcomes.append(_outcome(plan, scale, random_demand))
        if progress is not None:
            progress(len(outcomes), len(plan.vector.scales))
    recommended, reasons = _reasons(plan, outcomes)
    return VectorPlanResult(plan, demand, milestones(plan), tuple(outcomes), recommended,
                            tuple(reasons))  # fmt: skip
