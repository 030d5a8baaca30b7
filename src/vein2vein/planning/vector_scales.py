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
    Schedule,
    SupplyRisk,
    safety_stock,
    schedule,
    simulate_supply,
)
from vein2vein.planning.vectors import VectorPlan

__all__ = ["Milestone", "ScaleOutcome", "VectorPlanResult", "plan_vectors"]

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
    up to the search's limit brings the risk under the target; ``risk`` is then the one at
    that limit. Years are calendar years; money is in the plan's currency."""

    scale: float
    doses_per_batch: float
    safety_doses: float
    reachable: bool
    risk: SupplyRisk
    p_stockout_without_safety: float
    schedule: Schedule
    batches_by_year: dict[int, float]
    litres_by_year: dict[int, float]
    plasmid_grams: dict[str, float]
    plasmid_grams_by_year: dict[str, dict[int, float]]
    cost: float
    cost_per_dose: float | None
    waste_fraction: float

    def as_json(self) -> dict[str, object]:
        r = self.risk
        return {
            "scale_litres": self.scale,
            "doses_per_batch": self.doses_per_batch,
            "safety_stock_doses": self.safety_doses,
            "target_reachable": self.reachable,
            "p_stockout": r.p_stockout,
            "p_stockout_ci_half_width": r.p_half_width,
            "p_stockout_without_safety_stock": self.p_stockout_without_safety,
            "batches_by_year": {str(y): n for y, n in self.batches_by_year.items()},
            "litres_by_year": {str(y): n for y, n in self.litres_by_year.items()},
            "batches": r.batches,
            "failed_batches": r.failed_batches,
            "plasmid_grams": dict(self.plasmid_grams),
            "plasmid_grams_by_year": {
                name: {str(y): g for y, g in years.items()}
                for name, years in self.plasmid_grams_by_year.items()
            },
            "cost": self.cost,
            "cost_per_dose": self.cost_per_dose,
            "waste_fraction": self.waste_fraction,
            "patients_short": r.patients_short,
            "planned_batches": [
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
        }


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
        late = plan.as_of is not None and min([booking, *orders.values()]) < plan.as_of
        out.append(Milestone(phase, first, first, start, booking, orders, late))
    return tuple(out)


def _outcome(plan: VectorPlan, scale: float) -> ScaleOutcome:
    risk, reachable = safety_stock(plan, scale)
    without = simulate_supply(plan, scale, 0.0).p_stockout  # the same draws as the search
    dose = plan.dose_units()
    per_batch = plan.vector.per_batch(scale)
    planned = schedule(plan, scale, risk.safety_doses)
    litres = risk.batches * scale
    grams = {p.name: litres * p.mg_per_litre / 1000 for p in plan.plasmids}
    plasmid_cost = sum(grams[p.name] * p.cost_per_gram for p in plan.plasmids)
    cost = risk.batches * plan.vector.cost_per_batch[scale] + plasmid_cost
    dosed = risk.patients - risk.patients_short
    made = (risk.batches - risk.failed_batches) * per_batch / dose
    return ScaleOutcome(
        scale=scale,
        doses_per_batch=per_batch / dose,
        safety_doses=risk.safety_doses,
        reachable=reachable,
        risk=risk,
        p_stockout_without_safety=without,
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
    )


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _reasons(plan: VectorPlan, outcomes: list[ScaleOutcome]) -> tuple[float | None, list[str]]:
    target = plan.supply.stockout_target
    if not any(plan.patients_per_year.values()):
        return None, ["The plan has no patients: there is no vector to make."]
    fits = [o for o in outcomes if o.reachable and o.cost_per_dose is not None]
    if not fits:
        return None, [
            f"No scale keeps the risk of a stock-out under {target:.0%}, even with a safety "
            "stock of three years of the peak year's patients: look at the batch success "
            "rate, the shelf life and the lead time."
        ]
    best = min(fits, key=lambda o: (o.cost_per_dose, o.scale))
    assert best.cost_per_dose is not None
    reasons = [
        f"{best.scale:g} L: the lowest vector cost per dose, {_money(best.cost_per_dose)}, with "
        f"a stock-out risk of {best.risk.p_stockout:.1%} (target {target:.0%}) at a safety "
        f"stock of {best.safety_doses:,.0f} doses; {best.risk.batches:.1f} batches over the "
        f"plan, {best.waste_fraction:.0%} of the vector expiring unused."
    ]
    for o in outcomes:
        if o is best:
            continue
        if not o.reachable or o.cost_per_dose is None:
            reasons.append(
                f"{o.scale:g} L: the risk of a stock-out stays at {o.risk.p_stockout:.1%} "
                f"even with {o.safety_doses:,.0f} doses of safety stock."
            )
            continue
        more = o.cost_per_dose / best.cost_per_dose - 1
        why = []
        if o.waste_fraction > WASTE_WORTH_SAYING:
            why.append(f"{o.waste_fraction:.0%} of its vector expires unused")
        if o.risk.batches > 1.5 * best.risk.batches:
            why.append(f"{o.risk.batches:.1f} batches instead of {best.risk.batches:.1f}")
        if o.safety_doses > best.safety_doses * 1.5 and o.safety_doses - best.safety_doses > 5:
            why.append(f"a safety stock of {o.safety_doses:,.0f} doses")
        reasons.append(
            f"{o.scale:g} L: {_money(o.cost_per_dose)} per dose ({more:+.0%})"
            + (f": {'; '.join(why)}." if why else ".")
        )
    return best.scale, reasons


def plan_vectors(
    plan: VectorPlan, progress: Callable[[int, int], None] | None = None
) -> VectorPlanResult:
    """Work ``plan`` out at each of its scales and recommend one (see the module);
    ``progress(done, total)`` after each scale."""
    dose = plan.dose_units()
    demand = {y: (n, n * dose) for y, n in plan.patients_by_year().items()}
    outcomes = []
    for scale in plan.vector.scales:
        outcomes.append(_outcome(plan, scale))
        if progress is not None:
            progress(len(outcomes), len(plan.vector.scales))
    recommended, reasons = _reasons(plan, outcomes)
    return VectorPlanResult(plan, demand, milestones(plan), tuple(outcomes), recommended,
                            tuple(reasons))  # fmt: skip
