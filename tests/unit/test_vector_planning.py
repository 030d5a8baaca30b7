"""Vector and plasmid planning (planning/vectors.py, supply.py, vector_scales.py): a plan
small enough to check on paper, the edge cases, and the Monte Carlo against the binomial
probability it must reproduce."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
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


def test_the_scales_are_costed_from_their_batches_plasmids_and_the_stock_left() -> None:
    """A 10 L batch costs 100,000 and uses 20 mg of plasmid at 50,000 a gram (1,000): with
    every batch good and exact demand, 120 patients take 3 batches, 30 doses are left:
    (3 × 101,000) × 120/150 over 120 patients = 2,020 a dose. At 40 L, one batch of 200
    doses (250,000 + 4,000 of plasmid), 80 left: 254,000 × 120/200 / 120 = 1,270."""
    p = plan(supply={"runs": 50, "stockout_target": 1.0, "forecast_cv": 0.0, "seed": 1})
    result = plan_vectors(p, random_demand=False)  # exact demand: costs checkable on paper
    small, big = result.outcome(10), result.outcome(40)
    assert small.risk is not None and big.risk is not None
    assert small.risk.batches == 3 and big.risk.batches == 1
    assert small.left_fraction == pytest.approx(30 / 150) and big.left_fraction == 80 / 200
    assert small.plasmid_grams == {"transfer": pytest.approx(0.06)}
    assert small.cost_per_dose == pytest.approx(2020)
    assert big.cost_per_dose == pytest.approx((250_000 + 0.08 * 50_000) * 120 / 200 / 120)
    assert result.recommended == 40
    assert result.reasons[0].startswith("40 L: the lowest vector cost per dose, 1,270")
    assert result.reasons[1] == "10 L: 2,020 per dose (+59%): 3.0 batches instead of 1.0."
    assert result.demand_by_year == {2030: (120.0, 120 * 6e8)}


def test_failed_batches_are_paid_for() -> None:
    exact = {"runs": 2000, "stockout_target": 1.0, "forecast_cv": 0.0, "seed": 4}
    p = plan(vector__batch_success_rate=0.5, supply=exact)
    o = plan_vectors(p, random_demand=False).outcome(10)
    assert o.risk is not None
    assert o.risk.failed_batches == pytest.approx(o.risk.batches / 2, rel=0.1)
    good = o.risk.batches - o.risk.failed_batches
    assert o.risk.made_doses == pytest.approx(good * 50)
    assert o.cost is not None and o.cost_per_dose is not None
    paid = o.risk.batches * (100_000 + 0.02 * 50_000)  # every batch, good or not
    # at most what was paid; at least what was not left over at the end
    assert paid * (1 - o.left_fraction) - 1e-6 <= o.cost <= paid + 1e-6
    assert 0 <= o.carried_fraction <= o.left_fraction


def test_vector_left_at_the_end_that_would_expire_unused_is_not_credited() -> None:
    """One year of a 12-patient trial: a 40 L batch is 200 doses, of which 188 are left,
    and at a patient a month they cannot all be used in the 23 months they keep."""
    exact = {"runs": 200, "stockout_target": 1.0, "forecast_cv": 0.0, "seed": 1}
    p = plan(indication={"patients_per_year": {2030: 12}}, vector__shelf_life_days=730,
             supply=exact)  # fmt: skip
    result = plan_vectors(p, random_demand=False)
    small, big = result.outcome(10), result.outcome(40)
    assert big.left_fraction == pytest.approx(188 / 200)
    assert big.carried_fraction < 0.15  # some 23 doses of 188 could still be used
    assert result.recommended == 10
    assert big.cost_per_dose is not None and small.cost_per_dose is not None
    assert big.cost_per_dose > 2 * small.cost_per_dose


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
    assert risk.p_stockout == 0 and risk.batches == 0 and risk.made_doses == 0
    result = plan_vectors(p)
    assert result.recommended is None
    assert result.reasons == ("The plan has no patients: there is no vector to make.",)


def test_a_shelf_life_shorter_than_the_time_to_release_is_a_clear_error() -> None:
    # 30 days of production and 30 of QC release: a lead time of 60 days
    expected = (
        r"vector\.shelf_life_days: 59 days is shorter than the lead time of a batch "
        r"\(30 days of production and 30 of QC release = 60\)"
    )
    with pytest.raises(InvalidVectorPlan, match=expected):
        plan(vector__shelf_life_days=59)
    with pytest.raises(InvalidVectorPlan, match="leave less than a month of use after 30 days"):
        plan(vector__shelf_life_days=60)  # 30 days of use after release: under a month
    plan(vector__shelf_life_days=61)  # a month of use: batches can be started in overlap


@pytest.mark.parametrize("shelf_life_days", [61, 95, 150, 200, 400, 730])
@pytest.mark.parametrize("scale", [10, 40])
def test_an_accepted_plan_with_every_batch_good_never_runs_short(
    shelf_life_days: int, scale: float
) -> None:
    p = plan(vector__shelf_life_days=shelf_life_days,
             indication={"patients_per_year": {2030: 120, 2031: 600, 2032: 60}})  # fmt: skip
    s = schedule(p, scale)
    assert min(s.stock_doses) >= 0
    exact = simulate_supply(replace(p, vector=replace(p.vector, success_rate=1.0)), scale,
                            runs=3, random_demand=False)  # fmt: skip
    assert exact.p_stockout == 0 and exact.patients_short == 0


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
    # each failure, found at release, is replaced to restore the safety stock (the month's
    # patients are past helping): min(k, safety) more batches when k of the n fail
    from scipy.stats import binom

    n = 1 + safety_batches
    replaced = sum(min(k, safety_batches) * binom.pmf(k, n, 0.2) for k in range(n + 1))
    assert risk.batches == pytest.approx(n + replaced, abs=0.02)
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
    found = safety_stock(p, 10)
    risk = found.risk
    assert found.reachable and risk.p_stockout <= 0.1 and risk.safety_doses >= 1
    assert found.without.p_stockout > 0.1 and found.without.safety_doses == 0
    below = simulate_supply(p, 10, risk.safety_doses - 1)  # the same draws: the plan's seed
    assert below.p_stockout > 0.1
    assert simulate_supply(p, 10, risk.safety_doses).p_stockout == risk.p_stockout


def test_a_per_kg_plan_on_the_expected_demand_has_no_noise() -> None:
    weights = {"mean": 20, "sd": 8, "min": 5, "max": 40}
    p = plan(modality={"type": "in-vivo-aav", "dose_per_kg": 1e14},
             indication={"patients_per_year": {2030: 120}, "body_weight_kg": weights},
             vector__titre_per_litre=1e15)  # fmt: skip
    s = schedule(p, 10)
    assert s.demand_doses[3:] == (10.0,) * 12  # exactly the forecast, month by month


def test_batches_past_the_first_draws_are_drawn_afresh_the_same_for_every_level() -> None:
    from vein2vein.planning.supply import _draws

    p = plan()
    one, two = _draws(p, 500, 9, True, 2), _draws(p, 500, 9, True, 2)
    rows = np.arange(500)
    far = np.full(500, 40)  # far past the 2 columns drawn
    assert np.array_equal(one.batch(rows, far), two.batch(rows, far))
    assert one.batches.shape[1] > 40
    columns = one.batches[:, 2:]
    assert 0.45 < columns.mean() < 0.55 and len(np.unique(columns)) == columns.size


def test_a_scale_needing_absurdly_many_batches_is_not_worked_out() -> None:
    p = plan(vector__titre_per_litre=1e4)  # a titre a million times too low
    result = plan_vectors(p)
    small = result.outcome(10)
    assert not small.practical and small.risk is None and small.cost_per_dose is None
    assert small.expected_batches == pytest.approx(120 / (10 * 1e4 * 0.3 / 6e8))
    assert result.recommended is None
    assert result.reasons[0].startswith("Every scale would need more than 20,000 batches")
    assert "(or the titre or the dose is wrong)" in result.reasons[0]
    assert result.as_json()["scales"][0]["practical"] is False  # type: ignore[index]


def test_free_vector_is_planned_without_dividing_by_zero() -> None:
    p = plan(vector__cost_per_batch={10: 0, 40: 0}, plasmids={"transfer": {
        "mg_per_litre": 2.0, "lead_time_days": 90}})  # fmt: skip
    result = plan_vectors(p, random_demand=False)
    assert {o.cost_per_dose for o in result.scales} == {0.0}
    assert result.recommended == 10  # a tie goes to the smaller scale
    assert result.reasons[1].startswith("40 L: 0 per dose") and "%" not in result.reasons[1]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"modality": {"type": "in-vivo-aav", "dose_per_kg": 1e14},
          "indication": {"patients_per_year": {2030: 1},
                         "body_weight_kg": {"mean": 25, "sd": 0, "min": 60}}},
         "indication.body_weight_kg: the mean 25 kg must lie between min 60 and max none"),
        ({"indication": {"patients_per_year": {2029: 500, 2030: 120}}},
         "indication.patients_per_year[2029]: 500 patients before the first phase starts"),
        ({"modality": {"type": "in-vivo-lv", "dose_per_patient": 1e308, "overage": 10}},
         "modality: the vector per patient is not a finite number"),
    ],
)  # fmt: skip
def test_plans_that_cannot_be_made_sense_of_are_refused(
    change: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidVectorPlan) as refused:
        plan(**change)
    assert any(found.startswith(problem) for found in refused.value.problems), (
        refused.value.problems
    )
