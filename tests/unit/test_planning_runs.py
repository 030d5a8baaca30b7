"""Planning runs started from the pages (services/planning_runs.py): queued, run in the
background with their progress, the same figures as a direct call, refused before anything
is queued when what is asked is wrong, and each person's own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from vein2vein.domain.errors import InvalidInput, NotFound, RuleViolation
from vein2vein.planning.ceiling import CapacityCeiling
from vein2vein.planning.replications import Comparison, Replications, Sweep
from vein2vein.services import planning, planning_runs
from vein2vein.services.planning_runs import PlanningRun, PlanningRuns

SHORT = {"replications": 2, "seed": 3, "years": 0.25}


@pytest.fixture
def queue() -> Iterator[PlanningRuns]:
    runs = PlanningRuns(kept=4)
    yield runs
    runs.close()


def finished(run: PlanningRun, within_s: float = 120.0) -> PlanningRun:
    deadline = time.monotonic() + within_s
    while run.state in ("queued", "running"):
        assert time.monotonic() < deadline, f"run {run.title} still {run.state}"
        time.sleep(0.05)
    return run


def test_a_simulation_runs_in_the_background_to_the_same_figures_as_a_direct_call(
    queue: PlanningRuns,
) -> None:
    scenario = planning.open_scenario("central-plant")
    run = planning_runs.start_simulation(queue, owner="ann", scenario=scenario, **SHORT)
    assert run.kind == "simulate" and run.total == 2
    assert run.settings == {"scenario": scenario.name, "replications": "2", "seeds": "3–4",
                            "years": "0.25"}  # fmt: skip
    finished(run)
    assert run.state == "finished" and run.error is None and run.done == 2
    assert run.seconds is not None and run.seconds > 0
    direct = planning.replicate(scenario, workers=1, **SHORT)
    assert isinstance(run.result, Replications)
    assert run.result.as_json() == direct.as_json()


def test_a_comparison_a_sweep_and_a_ceiling_each_give_their_result(queue: PlanningRuns) -> None:
    a = planning.open_scenario("central-plant")
    b = planning.open_scenario("rapid-sterility")
    compared = planning_runs.start_comparison(queue, owner="ann", a=a, b=b, **SHORT)
    swept = planning_runs.start_sweep(
        queue, owner="ann", scenario=a, axis_a="demand=0.5,1", axis_b="devices:CP1=16,20", **SHORT
    )
    ceiling = planning_runs.start_ceiling(
        queue, owner="ann", scenario=a, target_p90_days=40, replications=1, seed=1, years=0.25
    )
    assert (compared.total, swept.total, ceiling.total) == (4, 8, None)
    assert isinstance(finished(compared).result, Comparison)
    sweep = finished(swept).result
    assert isinstance(sweep, Sweep) and sweep.shape == (2, 2) and swept.done == 8
    found = finished(ceiling).result
    assert isinstance(found, CapacityCeiling)
    # the ceiling's progress counted every simulation; its total is known at the end
    assert ceiling.done == found.simulations == len(found.tried) and ceiling.total is None
    assert found.tried[0].multiplier == 1.0
    assert any(t.within for t in found.tried) and not all(t.within for t in found.tried)


def blocking(release: threading.Event) -> planning_runs.Job:
    def job(progress: planning_runs.Progress) -> object:
        progress(1, 2)
        release.wait(30)
        return "done"

    return job


def test_runs_wait_their_turn_one_at_a_time(queue: PlanningRuns) -> None:
    release = threading.Event()
    first = queue.submit(kind="simulate", title="first", owner="ann", settings={}, total=2,
                         job=blocking(release))  # fmt: skip
    second = queue.submit(kind="simulate", title="second", owner="bob", settings={}, total=1,
                          job=lambda progress: "also done")  # fmt: skip
    while first.state != "running":
        time.sleep(0.01)
    assert second.state == "queued" and queue.ahead_of(second) == 1
    assert queue.ahead_of(first) == 0 and first.done == 1 and first.total == 2
    release.set()
    finished(second)
    assert first.finished is not None and second.started is not None
    assert second.started >= first.finished
    assert queue.ahead_of(second) == 0


def test_a_person_has_at_most_three_runs_waiting(queue: PlanningRuns) -> None:
    release = threading.Event()
    runs = [
        queue.submit(
            kind="simulate",
            title=f"run {i}",
            owner="ann",
            settings={},
            total=2,
            job=blocking(release),
        )
        for i in range(planning_runs.MAX_WAITING)
    ]
    with pytest.raises(InvalidInput, match="you have 3 planning runs waiting or running"):
        queue.submit(kind="simulate", title="one more", owner="ann", settings={}, total=1,
                     job=lambda progress: None)  # fmt: skip
    # someone else is not held up by ann's runs
    other = queue.submit(kind="simulate", title="bob's", owner="bob", settings={}, total=1,
                         job=lambda progress: None)  # fmt: skip
    release.set()
    for run in [*runs, other]:
        finished(run)
    queue.submit(kind="simulate", title="now", owner="ann", settings={}, total=1,
                 job=lambda progress: None)  # fmt: skip


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        ({"replications": 0}, "replications 0: expected a whole number ≥ 1"),
        ({"seed": -1}, "seed -1: expected a whole number ≥ 0"),
        ({"years": 0.0}, "years 0.0: expected a number > 0"),
        ({"years": 6.0}, "years 6: a run from the page measures at most 5 years"),
        ({"replications": 401}, "401 simulations; a run from the page does at most 400"),
    ],
)
def test_wrong_settings_are_refused_before_anything_is_queued(
    queue: PlanningRuns, asked: dict[str, float], message: str
) -> None:
    scenario = planning.open_scenario("central-plant")
    with pytest.raises(InvalidInput, match=message):
        planning_runs.start_simulation(queue, owner="ann", scenario=scenario, **(SHORT | asked))  # type: ignore[arg-type]
    assert queue.of("ann") == []


def test_a_wrong_sweep_or_target_is_refused_before_anything_is_queued(queue: PlanningRuns) -> None:
    scenario = planning.open_scenario("central-plant")
    with pytest.raises(InvalidInput, match=r"'devices:XX': not one a sweep can vary \(these are: "
                                           r"demand, devices:CP1\)"):  # fmt: skip
        planning_runs.start_sweep(queue, owner="ann", scenario=scenario, axis_a="demand=1",
                                  axis_b="devices:XX=1,2", **SHORT)  # fmt: skip
    with pytest.raises(InvalidInput, match="second parameter 'devices:CP1': expected PARAMETER="):
        planning_runs.start_sweep(queue, owner="ann", scenario=scenario, axis_a="demand=1",
                                  axis_b="devices:CP1", **SHORT)  # fmt: skip
    with pytest.raises(InvalidInput, match="10,000 simulations"):
        planning_runs.start_sweep(
            queue, owner="ann", scenario=scenario,
            axis_a="demand=" + ",".join(str(0.1 * i) for i in range(1, 51)),
            axis_b="devices:CP1=" + ",".join(str(i) for i in range(1, 101)),
            replications=2, seed=1, years=0.25,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="target p90 -3"):
        planning_runs.start_ceiling(queue, owner="ann", scenario=scenario, target_p90_days=-3,
                                    **SHORT)  # fmt: skip
    assert queue.of("ann") == []


def test_a_run_is_its_owners_alone(queue: PlanningRuns) -> None:
    scenario = planning.open_scenario("central-plant")
    run = planning_runs.start_simulation(queue, owner="ann", scenario=scenario, **SHORT)
    assert queue.get(run.id, "ann") is run
    with pytest.raises(NotFound, match="not one of yours on this server"):
        queue.get(run.id, "bob")
    assert queue.of("bob") == []
    with pytest.raises(NotFound):
        queue.get("no-such-run", "ann")
    finished(run)


def test_a_job_that_fails_shows_why_and_the_queue_goes_on(queue: PlanningRuns) -> None:
    def refused(progress: planning_runs.Progress) -> object:
        raise RuleViolation("MBR CAR-T-X has no effective version")

    def crashed(progress: planning_runs.Progress) -> object:
        raise ZeroDivisionError("a bug")

    bad = queue.submit(kind="simulate", title="bad", owner="ann", settings={}, total=1,
                       job=refused)  # fmt: skip
    buggy = queue.submit(kind="simulate", title="buggy", owner="ann", settings={}, total=1,
                         job=crashed)  # fmt: skip
    good = queue.submit(kind="simulate", title="good", owner="ann", settings={}, total=1,
                        job=lambda progress: progress(1, 1) or "done")  # fmt: skip
    assert finished(bad).state == "failed" and bad.error == "MBR CAR-T-X has no effective version"
    assert finished(buggy).state == "failed"
    assert buggy.error == "the run stopped on an unexpected error: ZeroDivisionError('a bug')"
    assert finished(good).state == "finished" and good.result == "done" and good.done == 1


def test_only_each_persons_last_runs_are_kept_and_never_one_still_going() -> None:
    queue = PlanningRuns(kept=2)
    try:
        bobs = queue.submit(kind="simulate", title="bob's", owner="bob", settings={}, total=1,
                            job=lambda progress: None)  # fmt: skip
        finished(bobs)
        release = threading.Event()
        going = queue.submit(kind="simulate", title="going", owner="ann", settings={}, total=2,
                             job=blocking(release))  # fmt: skip
        waiting = [
            queue.submit(
                kind="simulate",
                title=f"run {i}",
                owner="ann",
                settings={},
                total=1,
                job=lambda progress: None,
            )
            for i in range(2)
        ]
        # three of ann's, over the two kept: none has ended, so none is forgotten
        assert queue.of("ann") == [*reversed(waiting), going]
        release.set()
        for run in waiting:
            finished(run)
        last = queue.submit(kind="simulate", title="last", owner="ann", settings={}, total=1,
                            job=lambda progress: None)  # fmt: skip
        finished(last)
        assert [r.title for r in queue.of("ann")] == ["last", "run 1"]
        assert queue.of("bob") == [bobs]  # ann's runs never push out bob's
    finally:
        queue.close()


def test_a_run_too_big_for_the_page_is_refused_before_anything_is_built(
    queue: PlanningRuns,
) -> None:
    scenario = planning.open_scenario("central-plant")
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="100,000,000,000,000,000,000 simulations"):
        planning_runs.start_simulation(queue, owner="ann", scenario=scenario,
                                       replications=10**20, seed=1, years=1)  # fmt: skip
    huge_axis = ",".join(str(1 + i / 1000) for i in range(1500))
    with pytest.raises(InvalidInput, match="2,250,000 simulations"):
        planning_runs.start_sweep(queue, owner="ann", scenario=scenario,
                                  axis_a=f"demand={huge_axis}",
                                  axis_b=f"devices:CP1={huge_axis}", replications=1, seed=1,
                                  years=1)  # fmt: skip
    assert time.monotonic() - started < 5  # refused from the counts, not after building
    with pytest.raises(InvalidInput, match=r"simulates about [\d,]+ patients; .* at most 500,000"):
        planning_runs.start_sweep(queue, owner="ann", scenario=scenario, axis_a="demand=50,100",
                                  axis_b="devices:CP1=20,40", replications=20, seed=1,
                                  years=2)  # fmt: skip
    with pytest.raises(InvalidInput, match="this asks for 720 simulations"):  # 40 × 18 levels
        planning_runs.start_ceiling(queue, owner="ann", scenario=scenario, target_p90_days=40,
                                    replications=40, seed=1, years=1)  # fmt: skip
    assert queue.of("ann") == []


def test_a_sweep_with_a_value_given_twice_is_refused(queue: PlanningRuns) -> None:
    scenario = planning.open_scenario("central-plant")
    with pytest.raises(InvalidInput, match="parameter 'demand': 1 given twice"):
        planning_runs.start_sweep(queue, owner="ann", scenario=scenario, axis_a="demand=1,0.5,1",
                                  axis_b="devices:CP1=20", **SHORT)  # fmt: skip
    assert queue.of("ann") == []


def test_where_the_scenario_came_from_is_kept_with_the_run(queue: PlanningRuns) -> None:
    scenario = planning.open_scenario("central-plant")
    run = planning_runs.start_simulation(queue, owner="ann", scenario=scenario,
                                         notes={"file": "mine.yaml"}, **SHORT)  # fmt: skip
    assert run.settings["file"] == "mine.yaml"
    finished(run)
