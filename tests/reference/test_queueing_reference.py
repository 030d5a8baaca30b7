"""The M/M/c queue against a published worked example, and the SimPy model against the
M/M/c queue.

Source: Anderson, Sweeney, Williams, Camm & Martin, *An Introduction to Management
Science: Quantitative Approaches to Decision Making*, chapter "Waiting Line Models", the
Burger Dome example. Its single-server line has Pw = 0.75, Lq = 2.25 customers and
Wq = 3 minutes, which fixes λ = 0.75 and μ = 1 customer per minute (Pw = λ/μ and
Wq = λ/(μ(μ − λ)) for one server); opening a second server with a shared line gives
Pw = 0.2045, Lq = 0.1227 customer and Wq = 0.1636 minute. Both sets of figures as
reproduced in the course notes at
https://www.coursehero.com/file/p76g4626/Property-of-and-for-the-exclusive-use-of-SLU-Reproduction-storing-in-a-retrieval/
(rounded to four places, as published).
"""

from __future__ import annotations

import statistics

import pytest

from vein2vein.domain.errors import InvalidInput
from vein2vein.planning.model import simulate
from vein2vein.planning.queueing import erlang_c, mmc
from vein2vein.planning.scenario import (
    CentreDemand,
    Costs,
    Demand,
    Devices,
    Exponential,
    Logistics,
    ManufacturingSite,
    Process,
    Release,
    Route,
    Scenario,
    Step,
    Sterility,
    TreatmentCentre,
)


@pytest.mark.parametrize(
    ("servers", "waits", "queue", "wait_minutes"),
    [(1, 0.75, 2.25, 3.0), (2, 0.2045, 0.1227, 0.1636)],
)
def test_burger_domes_published_figures_follow_from_erlang_c(
    servers: int, waits: float, queue: float, wait_minutes: float
) -> None:
    q = mmc(arrival_rate=0.75, service_rate=1.0, servers=servers)
    assert q.probability_of_waiting == pytest.approx(waits, abs=5e-5)
    assert q.mean_queue == pytest.approx(queue, abs=5e-5)
    assert q.mean_wait == pytest.approx(wait_minutes, abs=5e-5)


def test_erlang_c_stays_finite_where_the_textbook_sum_would_overflow() -> None:
    # 170! is the largest factorial a double holds; the recursion needs none.
    assert 0 < erlang_c(400, 390.0) < 1
    with pytest.raises(InvalidInput, match="not stable"):
        erlang_c(2, 2.0)


def mm_c(servers: int, orders_per_day: float, mean_hours: float) -> Scenario:
    """One plant with ``servers`` identical devices, Poisson orders, one exponential step:
    no apheresis wait, transport, QC, sterility, release, staff or failures."""
    plant = ManufacturingSite("P", "central-plant", Devices("automated", servers, ("p",)))
    return Scenario(
        "M/M/c",
        sites={"P": plant, "H": TreatmentCentre("H")},
        processes={"p": Process("p", (Step("batch", Exponential(mean_hours)),))},
        release=Release(sterility=Sterility(days=0)),
        logistics=Logistics({"H": "P"}, (Route("H", "P"),)),
        demand=Demand({"H": CentreDemand(orders_per_day * 365, "p")}),
        costs=Costs(facility_per_year={"C": 0}, device_capex={"automated": 0},
                    overheads_per_year={"central-plant": 0}),
    )  # fmt: skip


def test_the_model_reduced_to_c_suites_reproduces_the_mm_c_mean_wait() -> None:
    servers, rho = 4, 0.6
    theory = mmc(arrival_rate=servers * rho, service_rate=1.0, servers=servers)  # per day
    scenario = mm_c(servers, servers * rho, mean_hours=24)
    runs = [simulate(scenario, seed=seed, years=10, warmup_days=30) for seed in range(12)]
    waits = [w for r in runs if (w := r.waiting_days["P.devices"].mean) is not None]
    mean_wait = statistics.fmean(waits)
    # Some 105,000 batches: the runs' spread puts the mean within about 2% of the truth.
    standard_error = statistics.stdev(waits) / len(runs) ** 0.5
    assert standard_error < 0.025 * theory.mean_wait
    assert mean_wait == pytest.approx(theory.mean_wait, rel=0.05)
    utilisation = statistics.fmean(r.utilisation["P.devices"] for r in runs)
    assert utilisation == pytest.approx(theory.utilisation, rel=0.01)
    # Little's law on a long run, where the window's edges weigh almost nothing.
    for r in runs:
        assert r.little.mean_in_system == pytest.approx(
            r.little.arrival_rate_per_day * r.little.mean_days_in_system, rel=0.01
        )
    in_system = statistics.fmean(r.little.mean_in_system for r in runs)
    assert in_system == pytest.approx(theory.mean_in_system, rel=0.03)
