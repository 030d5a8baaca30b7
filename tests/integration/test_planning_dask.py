"""Replications on a real Dask cluster (issue 8): a local cluster of two worker processes,
started here, gives exactly the figures of local processes for the same seeds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from vein2vein.planning.runner import CONNECT_TIMEOUT_S, SchedulerUnreachable
from vein2vein.services import planning

SHORT = {"years": 0.1, "warmup_days": 30.0}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as running:
        yield running


def test_replications_on_a_dask_cluster_are_exactly_those_of_local_processes(
    cluster: Any,
) -> None:
    scenario = planning.open_scenario("central-plant")
    seen: list[tuple[int, int]] = []
    on_dask = planning.replicate(
        scenario, replications=3, seed=5, scheduler=cluster.scheduler_address,
        progress=lambda done, total: seen.append((done, total)), **SHORT,
    )  # fmt: skip
    local = planning.replicate(scenario, replications=3, seed=5, workers=2, **SHORT)
    assert on_dask.as_json() == local.as_json()
    assert on_dask.seeds == (5, 6, 7)
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_a_sweep_runs_as_one_batch_on_the_cluster_with_the_local_figures(cluster: Any) -> None:
    scenario = planning.open_scenario("central-plant")
    grid = {"parameter_a": "demand", "values_a": [0.5, 2], "parameter_b": "devices:CP1",
            "values_b": [10], "replications": 1, "seed": 1}  # fmt: skip
    on_dask = planning.sweep(scenario, scheduler=cluster.scheduler_address, **grid, **SHORT)
    local = planning.sweep(scenario, workers=1, **grid, **SHORT)
    assert on_dask.as_json() == local.as_json()


def test_a_scheduler_that_does_not_answer_is_named_and_nothing_runs() -> None:
    address = "tcp://127.0.0.1:9"  # discard: nothing listens there
    with pytest.raises(SchedulerUnreachable) as caught:
        planning.replicate(planning.open_scenario("central-plant"), replications=1,
                           scheduler=address, **SHORT)  # fmt: skip
    assert caught.value.message == (
        f"Dask scheduler {address}: no answer within {CONNECT_TIMEOUT_S:g} s (is it running, "
        "and is the address right?); nothing was run"
    )
