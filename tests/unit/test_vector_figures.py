"""The vector plan's figures (web/_vector_figures.py) draw what the plan says: a row per
phase with its patients and per month of batch starts, every segment of a batch at its
dates, the scales worked out with their cost and risk."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from vein2vein.planning.vector_scales import VectorPlanResult, plan_vectors
from vein2vein.services import vectors
from vein2vein.web import _vector_figures as vf


@pytest.fixture(scope="module")
def cart() -> VectorPlanResult:
    plan = vectors.open_plan("cart-lv")
    return plan_vectors(replace(plan, supply=replace(plan.supply, runs=200)))


def test_the_timeline_has_the_phases_then_a_row_per_month_of_starts(cart: VectorPlanResult) -> None:
    outcome = cart.outcome(50)
    assert outcome.schedule is not None
    figure = vf.timeline_figure(cart, outcome)
    phases = figure["data"][0]
    assert phases["y"] == ["patients: phase-1", "patients: pivotal", "patients: commercial"]
    assert phases["text"] == ["12–30 patients a year", "60 patients a year",
                              "300–1,500 patients a year"]  # fmt: skip
    starts = {b.start for b in outcome.schedule.batches}
    production = next(d for d in figure["data"] if d["name"] == "production")
    assert len(production["y"]) == len(starts)  # batches started together share a row
    first = outcome.schedule.batches[0]
    assert production["base"][0] == f"{first.start.isoformat()}T00:00:00"
    assert production["x"][0] == (first.fill - first.start).days * 86_400_000
    lines = [s["x0"][:10] for s in figure["layout"]["shapes"]]
    assert lines == [d.isoformat() for _, d in cart.plan.phases] + ["2026-01-15"]


def test_the_scales_figure_shows_each_scale_worked_out(cart: VectorPlanResult) -> None:
    figure = vf.scales_figure(cart)
    bars, without, with_it = figure["data"]
    assert bars["x"] == ["50 L", "200 L", "500 L", "2000 L"]
    assert bars["y"] == [o.cost_per_dose for o in cart.scales]
    assert bars["marker"]["color"][0] == vf.GREEN  # the recommended one
    assert with_it["y"] == [o.risk.p_stockout * 100 for o in cart.scales if o.risk]
    assert all(w >= r for w, r in zip(without["y"], with_it["y"], strict=True))


def test_the_stock_figure_is_the_plans_month_by_month(cart: VectorPlanResult) -> None:
    outcome = cart.outcome(200)
    assert outcome.schedule is not None
    demand, stock, safety = vf.stock_figure(outcome)["data"]
    assert demand["y"] == list(outcome.schedule.demand_doses)
    assert stock["y"] == list(outcome.schedule.stock_doses)
    assert safety["y"] == [outcome.safety_doses] * 2
    assert demand["x"][0] == cart.plan.start.isoformat() + "T00:00:00"
    assert date.fromisoformat(demand["x"][-1][:10]) - date(2032, 12, 1) == timedelta(0)
