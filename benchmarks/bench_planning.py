"""The network model (planning/): its events per second against bare SimPy, one network-year
at 40,000 doses, and the speed-up of two Dask workers over one.

* events: ``simulate`` of the central-plant example for one year (best of 5) against bare
  SimPy processing the same number of timeout events (100 processes, each yielding fixed
  timeouts, best of 5) in the same run. Target ratio ≥ 0.3.
* network-year: the central-plant example scaled to 40,000 doses a year (demand, devices,
  staff, QC analysts and instruments all multiplied by the same factor: 40,000 over its
  mean doses per year on seeds 1-5), one year, once.
  The ratio is the factor × the small year's time over the big year's: 1.0 scales
  linearly. Target: under a minute.
* Dask: the same batch of 8 central-plant years on a local cluster of 1 worker and of 2
  (one thread each, processes), each best of 2, the clusters started outside the timing.
  Target ratio ≥ 1.5.

No database.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import simpy
from _common import Result, best_of, say

from vein2vein.planning.model import SimulationResult, simulate
from vein2vein.planning.scenario import ManufacturingSite, QcLab, Scenario, Shift
from vein2vein.services import planning

DOSES = 40_000
EVENTS_TARGET = 0.3
YEAR_TARGET_S = 60.0
DASK_TARGET = 1.5
DASK_BATCH = 8


def central_plant() -> Scenario:
    return planning.open_scenario("central-plant")


def _more(shift: Shift, factor: float) -> Shift:
    return replace(shift, headcount=math.ceil(shift.headcount * factor))


def scaled(scenario: Scenario, factor: float) -> Scenario:
    """``scenario`` with its demand and every manufacturing site's devices, staff, QC
    analysts and instruments multiplied by ``factor`` (counts rounded up)."""
    sites = dict(scenario.sites)
    for key, site in scenario.manufacturing_sites.items():
        qc = site.qc
        if qc is not None:
            qc = QcLab(
                _more(qc.analysts, factor),
                {m: math.ceil(n * factor) for m, n in qc.instruments.items()},
            )
        sites[key] = ManufacturingSite(
            site.id, site.kind,
            replace(site.devices, count=math.ceil(site.devices.count * factor)),
            staff={role: _more(s, factor) for role, s in site.staff.items()},
            qc=qc, name=site.name,
        )  # fmt: skip
    return replace(scenario, sites=sites).with_demand(factor)


def bare_simpy(events: int, processes: int = 100) -> None:
    """``events`` timeout events in ``processes`` processes of a bare SimPy environment."""
    env = simpy.Environment()

    def ticker(n: int, delay: float) -> simpy.events.ProcessGenerator:
        for _ in range(n):
            yield env.timeout(delay)

    for i in range(processes):
        env.process(ticker(events // processes, 1.0 + i / processes))
    env.run()


def run_events() -> Result:
    scenario = central_plant()
    say("planning: one central-plant year")
    results: list[SimulationResult] = []
    took = best_of(5, lambda: results.append(simulate(scenario, seed=1)))
    events = results[0].events
    say(f"  {took:.3f} s, {events:,} events")
    say(f"planning: bare SimPy, {events:,} timeout events")
    base = best_of(5, lambda: bare_simpy(events))
    say(f"  {base:.3f} s")
    ratio = base / took
    return Result(
        name=f"network model, central-plant year ({events:,} events)",
        measured=f"{events / took:,.0f} events/s ({took * 1e3:.0f} ms)",
        baseline=f"{events / base:,.0f} events/s bare SimPy timeouts",
        ratio=ratio,
        target=f"≥ {EVENTS_TARGET}",
        met=ratio >= EVENTS_TARGET,
        note=f"{results[0].doses_per_year:,.0f} doses; best of 5 each; one process",
    )


def run_network_year() -> Result:
    small = central_plant()
    # Doses per year of the small plant over a few seeds (one year's luck is a few %).
    doses = [simulate(small, seed=seed).doses_per_year for seed in range(1, 6)]
    factor = DOSES / (sum(doses) / len(doses))
    small_s = best_of(3, lambda: simulate(small, seed=1))
    big = scaled(small, factor)
    devices = sum(s.devices.count for s in big.manufacturing_sites.values())
    say(f"planning: one network-year at {DOSES:,} doses ({factor:.1f} × central plant, "
        f"{devices:,} devices)")  # fmt: skip
    start = time.perf_counter()
    result = simulate(big, seed=1)
    took = time.perf_counter() - start
    say(f"  {took:.1f} s, {result.doses_per_year:,.0f} doses, {result.events:,} events")
    ratio = factor * small_s / took
    return Result(
        name=f"one network-year at {DOSES:,} doses",
        measured=f"{took:.1f} s ({result.doses_per_year:,.0f} doses, {result.events:,} events)",
        baseline=f"{factor:.1f} × the central-plant year ({factor * small_s:.1f} s)",
        ratio=ratio,
        target=f"< {YEAR_TARGET_S:.0f} s (ratio 1.0: scales linearly)",
        met=took < YEAR_TARGET_S,
        note=f"{devices:,} devices, bottleneck {result.bottleneck}; run once; one process",
    )


def run_dask() -> Result:
    from distributed import LocalCluster

    scenario = central_plant()
    timings: dict[int, float] = {}
    figures: dict[int, dict[str, object]] = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:  # fmt: skip
            say(f"planning: {DASK_BATCH} central-plant years on {workers} Dask worker(s)")

            def batch(address: str = cluster.scheduler_address, n: int = workers) -> None:
                done = planning.replicate(scenario, replications=DASK_BATCH, scheduler=address)
                figures[n] = done.as_json()

            batch()  # once untimed: the workers import numpy and SimPy
            timings[workers] = best_of(2, batch)
            say(f"  {timings[workers]:.2f} s")
    assert figures[1] == figures[2], "the same seeds gave different figures"
    ratio = timings[1] / timings[2]
    return Result(
        name=f"Dask, {DASK_BATCH} central-plant years: 2 workers over 1",
        measured=f"{timings[2]:.2f} s on 2 workers",
        baseline=f"{timings[1]:.2f} s on 1 worker",
        ratio=ratio,
        target=f"≥ {DASK_TARGET}",
        met=ratio >= DASK_TARGET,
        note="LocalCluster, processes, one thread each; best of 2; same figures on both",
    )


def run() -> list[Result]:
    return [run_events(), run_network_year(), run_dask()]


if __name__ == "__main__":
    for row in run():
        print(row)
