"""Vector and plasmid planning (planning/vectors.py, supply.py, vector_scales.py): a plan
small enough to check on paper, the edge cases, and the Monte Carlo against the binomial
probability it must reproduce."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest

from vein2vein.formats.vector_plan import InvalidVectorPlanFile, parse_vector_plan
from vein2vein.planning.supply import safety_stock, schedule, simulate_supply
from vein2vein.planning.vector_scales import milestones, plan_vectors
from vein2vein.planning.vectors import InvalidVectorPlan, VectorPlan


def paper(**change: Any) -> dict[str, Any]:
    """1e8 cells at MOI 5 plus 1e8 TU for QC: 6e8 TU a patient. A 10 L batch at 1e10 TU/L
    with 30 % recovered: 3e10 TU, 50 doses. 120 patients in 2030, 10 a month."""
    data: dict[str, Any] = {
        "name": "paper",
        "indication": {"patients_per_year": {2030: 120}},
        "modality": {"type": "ex-vivo-lv", "cells_transduced": 1e8, "moi": 5,
                     "qc_and_retains_per_patient": 1e8},
        "vector": {"titre_per_litre": 1e10, "downstream_yield": 0.3, "scales_litres": [10, 40],
                   "cost_per_batch": {10: 100_000, 40: 250_000}, "batch_success_rate": 1.0,
                   "production_days": 30, "qc_release_days": 30, "slot_booking_days": 30,
                   "shelf_life_days": 3650},
        "plasmids": {"transfer": {"mg_per_litre": 2.0, "lead_time_days": 90,
                                  "cost_per_gram": 50_000}},
        "phases": {"phase-1": {"first_patient": date(2030, 1, 1)}},
        "supply": {"runs": 2000, "stockout_target": 0.05, "forecast_cv": 0.0, "seed": 3},
    }  # fmt: skip
    for key, value in change.items():
        section, _, name = key.partition("__")
        if name:
            data[section] = {**data[section], name: value}
        else:
            data[section] = value
    return data


def plan(**change: Any) -> VectorPlan:
    return VectorPlan.from_dict(parse_vector_plan_dict(paper(**change)))


def parse_vector_plan_dict(data: dict[str, Any]) -> dict[str, Any]:
    """The data as the file format would give it (defaults filled in, checked)."""
    import yaml

    return parse_vector_plan(yaml.safe_dump({"schema_version": 1, **data}))


def test_a_plan_small_enough_to_check_on_paper() -> None:
    p = plan()
    assert p.dose_units() == 6e8 and p.unit == "TU"
    assert p.vector.per_batch(10) == 3e10 and p.vector.per_batch(10) / p.dose_units() == 50
    assert p.vector.lead_months == 2 and p.start == date(2029, 10, 1)
    assert list(p.patients_by_month()[3:]) == [10.0] * 12  # Jan–Dec 2030
    s = schedule(p, 10)
    # 120 patients, 50 doses a batch: 3 batches; each starts 2 months before it is needed
    assert [b.start for b in s.batches] == [date(2029, 11, 1), date(2030, 4, 1),
                                            date(2030, 9, 1)]  # fmt: skip
    first = s.batches[0]
    assert first.fill == date(2029, 12, 1) and first.release == date(2029, 12, 31)
    assert first.slot_booking_by == date(2029, 10, 2)
    assert first.plasmid_orders == {"transfer": date(2029, 8, 3)}  # 90 days before the start
    assert s.doses_made == 150 and s.patients == 120 and s.expired_doses == 0
    assert s.stock_doses[-1] == 30  # 150 made, 120 used
    assert min(s.stock_doses) >= 0 and s.batches_by_year() == {2029: 1, 2030: 2}
    # the first patient's milestones, counted back on paper
    (m,) = milestones(p)
    assert (m.start_by, m.slot_booking_by) == (date(2029, 11, 2), date(2029, 10, 3))
    assert m.plasmid_orders == {"transfer": date(2029, 8, 4)} and not m.late


def test_the_scales_are_costed_from_their_batches_and_plasmids() -> None:
    result = plan_vectors(plan())
    small, big = result.outcome(10), result.outcome(40)
    assert big.doses_per_batch == 200
    # every batch succeeds: at least 3 batches of 10 L (120 patients), 1 of 40 L
    assert small.risk.failed_batches == 0 and small.risk.batches >= 3
    for o, price in ((small, 100_000), (big, 250_000)):
        litres = o.risk.batches * o.scale
        assert o.plasmid_grams == {"transfer": pytest.approx(litres * 2 / 1000)}
        cost = o.risk.batches * price + litres * 2 / 1000 * 50_000
        dosed = o.risk.patients - o.risk.patients_short
        assert o.cost_per_dose == pytest.approx(cost / dosed)
    assert result.recommended == min(result.scales, key=lambda o: o.cost_per_dose or 0).scale
    assert result.reasons[0].startswith(f"{result.recommended:g} L: the lowest vector cost")
    assert result.demand_by_year == {2030: (120.0, 120 * 6e8)}
    assert set(result.as_json()) >= {"demand_by_year", "milestones", "scales",
                                     "recommended_scale_litres", "reasons"}  # fmt: skip


def test_a_dose_per_kg_takes_the_mean_of_the_weights_as_they_are_cut() -> None:
    weights = {"mean": 20, "sd": 5, "min": 10, "max": 30}
    p = plan(modality={"type": "in-vivo-aav", "dose_per_kg": 1e14, "overage": 0.1},
             indication={"patients_per_year": {2030: 120}, "body_weight_kg": weights})  # fmt: skip
    assert p.unit == "vg"
    assert p.dose_units() == pytest.approx(1e14 * 20 * 1.1)  # cut evenly: the mean stays 20
    assert 0 < p.dose_sd() < 1e14 * 5 * 1.1  # cutting narrows the spread
    lopsided = plan(modality={"type": "in-vivo-aav", "dose_per_kg": 1e14},
                    indication={"patients_per_year": {2030: 120},
                                "body_weight_kg": {"mean": 20, "sd": 10, "min": 15}})  # fmt: skip
    assert lopsided.dose_units() > 1e14 * 20  # the light ones are cut off


def test_no_patients_no_batches_and_no_recommendation() -> None:
    p = plan(indication={"patients_per_year": {2030: 0}})
    assert schedule(p, 10).batches == ()
    risk = simulate_supply(p, 10, runs=200)
    assert risk.p_stockout == 0 and risk.batches == 0
    result = plan_vectors(p)
    assert result.recommended is None
    assert result.reasons == ("The plan has no patients: there is no vector to make.",)


def test_a_shelf_life_shorter_than_the_time_to_release_is_a_clear_error() -> None:
    with pytest.raises(InvalidVectorPlan, match=r"vector\.shelf_life_days: 40 days from the fill "
                                                r"leaves less than a month of use after QC "
                                                r"release \(30 days\)"):  # fmt: skip
        plan(vector__shelf_life_days=40)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"modality": {"type": "ex-vivo-lv", "moi": 5}},
         "modality.cells_transduced: needed for an ex vivo transduction"),
        ({"modality": {"type": "in-vivo-aav", "dose_per_kg": 1e14}},
         "indication.body_weight_kg: needed for a dose per kg"),
        ({"modality": {"type": "in-vivo-aav"}},
         "modality: give one of dose_per_kg, dose_per_patient"),
        ({"vector__cost_per_batch": {10: 1}}, "vector.cost_per_batch: no cost for the 40 L scale"),
        ({"phases": {"late": {"first_patient": date(2031, 1, 1)}}},
         "phases.late.first_patient: 2031-01-01 is outside the years with patients (2030–2030)"),
        ({"indication": {"patients_per_year": {2030: 1, 2032: 5}}},
         "indication.patients_per_year: no figure for 2031"),
    ],
)  # fmt: skip
def test_parts_that_do_not_fit_are_named_by_place(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidVectorPlan) as refused:
        plan(**change)
    assert any(found.startswith(problem) for found in refused.value.problems), (
        refused.value.problems
    )


def test_the_file_names_every_problem_by_its_place() -> None:
    text = """schema_version: 1
name: broken
indication: {patients_per_year: {2030: -1}}
modality: {type: ex-vivo-aav}
vector: {titre_per_litre: 1e10, downstream_yield: 1.5, scales_litres: [10],
         cost_per_batch: {10: 1}, batch_success_rate: 0.9, production_days: 30,
         qc_release_days: 30, shelf_life_days: 365, colour: blue}
plasmids: {}
phases: {p1: {first_patient: 2030-01-01}}
"""
    with pytest.raises(InvalidVectorPlanFile) as refused:
        parse_vector_plan(text, "broken.yaml")
    found = "; ".join(refused.value.problems)
    for place in ("indication.patients_per_year[2030]: must be ≥ 0", "modality.type",
                  "vector.downstream_yield", "vector.colour", "plasmids"):  # fmt: skip
        assert place in found, f"{place} is not named in: {found}"


def test_orders_due_before_the_plans_today_are_late() -> None:
    p = plan(as_of=date(2029, 9, 1))
    (m,) = milestones(p)
    assert m.late  # the plasmid was due 2029-08-04
    batches = schedule(p, 10).batches
    assert [b.late for b in batches] == [True, False, False]


@pytest.mark.parametrize(
    ("safety_batches", "expected"),
    [(0, lambda q: q), (1, lambda q: q**2), (2, lambda q: q**3)],
)
def test_one_batch_of_demand_stocks_out_with_the_binomial_probability(
    safety_batches: int, expected: Any
) -> None:
    """The patients of one month need one batch; the batches are started together a lead
    time before and a failure is known only at release, too late to replace: the plan
    stocks out exactly when fewer than one of the 1 + safety batches succeed, (1 − p)^n."""
    p = plan(indication={"patients_per_year": {2030: 50}},
             phases={"only": {"first_patient": date(2030, 12, 1)}},
             vector__batch_success_rate=0.8)  # fmt: skip
    risk = simulate_supply(p, 10, 50.0 * safety_batches, runs=40_000, seed=11,
                           random_demand=False)  # fmt: skip
    # every failed batch is replaced when it is found, to restore the safety stock
    assert risk.batches == pytest.approx((1 + safety_batches) * 1.2, abs=0.02)
    closed = expected(0.2)
    assert abs(risk.p_stockout - closed) < 3 * math.sqrt(closed * (1 - closed) / 40_000)


def test_two_batches_needed_of_three_is_the_binomial_tail() -> None:
    p = plan(indication={"patients_per_year": {2030: 100}},
             phases={"only": {"first_patient": date(2030, 12, 1)}},
             vector__batch_success_rate=0.7)  # fmt: skip
    risk = simulate_supply(p, 10, 50.0, runs=40_000, seed=5, random_demand=False)
    q = 0.3
    closed = q**3 + 3 * 0.7 * q**2  # fewer than 2 of 3 succeed
    assert abs(risk.p_stockout - closed) < 3 * math.sqrt(closed * (1 - closed) / 40_000)


def test_the_safety_stock_found_is_the_smallest_that_meets_the_target() -> None:
    p = plan(vector__batch_success_rate=0.85, supply={"runs": 1000, "stockout_target": 0.1,
                                                      "forecast_cv": 0.2, "seed": 2})  # fmt: skip
    risk, reachable = safety_stock(p, 10)
    assert reachable and risk.p_stockout <= 0.1 and risk.safety_doses >= 1
    below = simulate_supply(p, 10, risk.safety_doses - 1)  # the same draws: the plan's seed
    assert below.p_stockout > 0.1
    assert simulate_supply(p, 10, risk.safety_doses).p_stockout == risk.p_stockout
