"""Planning runs started from the pages: simulations that take longer than a web request
should, run in the background while the page shows their progress (DESIGN §9).

A :class:`PlanningRuns` belongs to one server process (``vein2vein.asgi.create_app`` makes
it). It runs one planning job at a time on a thread of its own (the job spreads its
simulations over local worker processes, see :mod:`vein2vein.planning.runner`); the
others wait their turn. The runs live in memory only, the last :data:`KEPT` of them: a plan
is not a GMP record, it is not audited and it is gone when the server restarts (DESIGN §9:
planning reads no records and writes none). The figures of a run can be downloaded as JSON
and run again from the CLI with the same seeds.

What is asked for is checked before anything is queued (:func:`check_size`, and the
services' own checks of the scenario, the seeds and the sweep's parameters), so bad input
comes back to the form and no run is left behind.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from vein2vein.domain.errors import InvalidInput, NotFound, V2VError
from vein2vein.planning.scenario import Scenario
from vein2vein.planning.vectors import VectorPlan
from vein2vein.services import planning, vectors

__all__ = [
    "KEPT",
    "MAX_SIMULATIONS",
    "MAX_YEARS",
    "PlanningRun",
    "PlanningRuns",
    "check_size",
    "start_ceiling",
    "start_comparison",
    "start_simulation",
    "start_sweep",
    "start_vectors",
]

#: How many runs the server remembers of each person (their oldest finished ones are
#: forgotten first; a run not yet finished never is).
KEPT = 30
#: A shared server is not the place for a day of computing: a run started from a page does
#: at most :data:`MAX_SIMULATIONS` simulations of up to :data:`MAX_YEARS` years, and
#: :data:`MAX_PATIENTS` simulated patients in all; a person has at most
#: :data:`MAX_WAITING` runs queued or running. The CLI has no such limits.
MAX_SIMULATIONS = 400
MAX_YEARS = 5.0
MAX_PATIENTS = 500_000
MAX_WAITING = 3
#: A vector plan's Monte Carlo from a page: at most this much work (runs × months × usable
#: months × safety levels × scales; the CAR-T example is 2,000 × 78 × 22 × 16 × 4 = 220 M,
#: some 10 s here).
MAX_VECTOR_RUN_MONTHS = 4_000_000_000
#: … and at most this many random numbers for its batches (8 bytes each, copied as they
#: grow: some 200 MB at the limit).
MAX_VECTOR_BATCH_DRAWS = 8_000_000
#: The most demand levels a ceiling's search tries (doubling to 64×, halving to 1/64, and
#: bisection to 5 %), and the demand it is assumed to try on average, for its size.
CEILING_LEVELS = 18
CEILING_MEAN_MULTIPLIER = 2.0

Kind = Literal["simulate", "compare", "sweep", "ceiling", "vectors"]
#: ``progress(done, total)``; total is None when it is not known in advance (a ceiling).
Progress = Callable[[int, int | None], None]
Job = Callable[[Progress], object]


def check_size(simulations: int, years: float, patients: float) -> None:
    """Refuse a run from a page that would ask for more than :data:`MAX_SIMULATIONS`
    simulations, a window longer than :data:`MAX_YEARS` years, or more than
    :data:`MAX_PATIENTS` simulated ``patients`` in all. Called before anything is built.

    Raises
    ------
    InvalidInput
        Naming the limit and how to go beyond it (the CLI).
    """
    if simulations > MAX_SIMULATIONS:
        raise InvalidInput(
            f"this asks for {simulations:,} simulations; a run from the page does at most "
            f"{MAX_SIMULATIONS} (fewer replications or values, or `v2v plan` on the CLI)"
        )
    if not years <= MAX_YEARS:
        raise InvalidInput(
            f"years {years:g}: a run from the page measures at most {MAX_YEARS:g} years "
            "(or use `v2v plan` on the CLI)"
        )
    if patients > MAX_PATIENTS:
        raise InvalidInput(
            f"this simulates about {patients:,.0f} patients; a run from the page does at most "
            f"{MAX_PATIENTS:,} (fewer replications, years or demand, or `v2v plan` on the CLI)"
        )


def _patients(scenario: Scenario, years: float, multiplier: float = 1.0) -> float:
    """Patients one simulation of ``scenario`` orders, warm-up included."""
    return scenario.demand.patients_per_year * multiplier * (years + 0.25)


@dataclass(slots=True)
class PlanningRun:
    """One run: what it is (``kind``, a ``title``, the ``settings`` it was asked with),
    who asked (``owner``), how far it is (``done`` of ``total`` simulations, ``total``
    None while unknown) and how it ended: its ``result`` (a
    :class:`~vein2vein.planning.replications.Replications`, ``Comparison``, ``Sweep`` or
    :class:`~vein2vein.planning.ceiling.CapacityCeiling`) or its ``error``."""

    id: str
    kind: Kind
    title: str
    owner: str
    settings: dict[str, str]
    submitted: datetime
    total: int | None
    done: int = 0
    started: datetime | None = None
    finished: datetime | None = None
    result: object | None = None
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> Literal["queued", "running", "finished", "failed"]:
        if self.error is not None:
            return "failed"
        if self.finished is not None:
            return "finished"
        return "running" if self.started is not None else "queued"

    @property
    def seconds(self) -> float | None:
        """Seconds it has run (so far, or in all)."""
        if self.started is None:
            return None
        return ((self.finished or datetime.now(UTC)) - self.started).total_seconds()

    def _progress(self, done: int, total: int | None) -> None:
        with self._lock:
            self.done = done
            if total is not None:
                self.total = total


class PlanningRuns:
    """The planning runs of one server: :meth:`submit` queues one, :meth:`get` and
    :meth:`of` find them, :meth:`close` stops the queue (the run under way finishes in
    its thread; the queued ones are cancelled)."""

    def __init__(self, *, kept: int = KEPT) -> None:
        self._kept = kept
        self._runs: OrderedDict[str, PlanningRun] = OrderedDict()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="v2v-planning")

    def submit(
        self,
        *,
        kind: Kind,
        title: str,
        owner: str,
        settings: dict[str, str],
        total: int | None,
        job: Job,
    ) -> PlanningRun:
        """Queue ``job`` (called with the run's progress callback; what it returns is the
        run's result) and return its :class:`PlanningRun` at once."""
        run = PlanningRun(
            id=uuid.uuid4().hex, kind=kind, title=title, owner=owner, settings=settings,
            submitted=datetime.now(UTC), total=total,
        )  # fmt: skip
        with self._lock:
            waiting = [r for r in self._runs.values()
                       if r.owner == owner and r.state in ("queued", "running")]  # fmt: skip
            if len(waiting) >= MAX_WAITING:
                raise InvalidInput(
                    f"you have {len(waiting)} planning runs waiting or running (at most "
                    f"{MAX_WAITING}); start this one when one of them has ended"
                )
            self._runs[run.id] = run
            self._forget_old(owner)
        self._executor.submit(self._work, run, job)
        return run

    def _work(self, run: PlanningRun, job: Job) -> None:
        run.started = datetime.now(UTC)
        try:
            result = job(run._progress)
        except V2VError as refused:
            run.error = refused.message
        except Exception as crashed:  # a bug: shown on the run's page, not lost in a thread
            run.error = f"the run stopped on an unexpected error: {crashed!r}"
        else:
            run.result = result
        run.finished = datetime.now(UTC)

    def _forget_old(self, owner: str) -> None:
        theirs = [k for k, r in self._runs.items() if r.owner == owner]
        ended = [k for k in theirs if self._runs[k].state in ("finished", "failed")]
        while len(theirs) > self._kept and ended:
            forgotten = ended.pop(0)
            theirs.remove(forgotten)
            del self._runs[forgotten]

    def get(self, run_id: str, owner: str) -> PlanningRun:
        """The run ``run_id`` of ``owner``.

        Raises
        ------
        NotFound
            When there is no such run of theirs (never started, someone else's, or
            forgotten: the server keeps the last :data:`KEPT` runs, and none after a
            restart).
        """
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or run.owner != owner:
            raise NotFound(
                f"planning run {run_id!r}: not one of yours on this server (runs are kept "
                f"in memory, the last {self._kept}, until the server restarts)"
            )
        return run

    def of(self, owner: str) -> list[PlanningRun]:
        """``owner``'s runs, the latest first."""
        with self._lock:
            return [r for r in reversed(self._runs.values()) if r.owner == owner]

    def ahead_of(self, run: PlanningRun) -> int:
        """How many runs will start before ``run`` does (0 once it has started)."""
        if run.state != "queued":
            return 0
        with self._lock:
            earlier = list(self._runs.values())
        ahead = 0
        for other in earlier:
            if other is run:
                break
            ahead += other.state in ("queued", "running")
        return ahead

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# -- what a page starts ----------------------------------------------------------------------


def _settings(
    replications: int, seed: int, years: float, notes: Mapping[str, str] | None, **more: str
) -> dict[str, str]:
    """What a run was asked for, as its page shows it; ``notes`` add what the caller knows
    (where a scenario came from, whether its steps came from the MBRs)."""
    seeds = f"{seed}" if replications == 1 else f"{seed}–{seed + replications - 1}"
    return {**more, "replications": str(replications), "seeds": seeds, "years": f"{years:g}",
            **(notes or {})}  # fmt: skip


def start_simulation(
    runs: PlanningRuns, *, owner: str, scenario: Scenario, replications: int, seed: int,
    years: float, notes: Mapping[str, str] | None = None,
) -> PlanningRun:  # fmt: skip
    """Queue ``replications`` runs of ``scenario`` (:func:`planning.replicate
    <vein2vein.services.planning.replicate>`), after checking what is asked."""
    check_size(replications, years, replications * _patients(scenario, years))
    planning.seeds_of(replications, seed, years)
    return runs.submit(
        kind="simulate", title=scenario.name, owner=owner, total=replications,
        settings=_settings(replications, seed, years, notes, scenario=scenario.name),
        job=lambda progress: planning.replicate(
            scenario, replications=replications, seed=seed, years=years, progress=progress
        ),
    )  # fmt: skip


def start_comparison(
    runs: PlanningRuns, *, owner: str, a: Scenario, b: Scenario, replications: int, seed: int,
    years: float, notes: Mapping[str, str] | None = None,
) -> PlanningRun:  # fmt: skip
    """Queue the comparison of ``a`` and ``b`` on the same seeds (:func:`planning.compare
    <vein2vein.services.planning.compare>`)."""
    check_size(2 * replications, years,
               replications * (_patients(a, years) + _patients(b, years)))  # fmt: skip
    planning.seeds_of(replications, seed, years)
    return runs.submit(
        kind="compare", title=f"{a.name} against {b.name}", owner=owner,
        total=2 * replications,
        settings=_settings(replications, seed, years, notes, A=a.name, B=b.name),
        job=lambda progress: planning.compare(
            a, b, replications=replications, seed=seed, years=years, progress=progress
        ),
    )  # fmt: skip


def start_sweep(
    runs: PlanningRuns, *, owner: str, scenario: Scenario, axis_a: str, axis_b: str,
    replications: int, seed: int, years: float, notes: Mapping[str, str] | None = None,
) -> PlanningRun:  # fmt: skip
    """Queue a sweep whose axes are written ``PARAMETER=V1,V2,…`` (:func:`planning.axis
    <vein2vein.services.planning.axis>`, :func:`planning.sweep
    <vein2vein.services.planning.sweep>`)."""
    name_a, values_a = planning.axis(axis_a, "first parameter")
    name_b, values_b = planning.axis(axis_b, "second parameter")
    total = len(values_a) * len(values_b) * replications
    check_size(total, years, 0.0)  # the grid is small enough to be looked at

    def multiplier(a: float, b: float) -> float:
        return a if name_a == "demand" else b if name_b == "demand" else 1.0

    check_size(total, years, replications * sum(
        _patients(scenario, years, multiplier(a, b)) for a in values_a for b in values_b
    ))  # fmt: skip
    planning.seeds_of(replications, seed, years)
    planning.sweep_grid(scenario, name_a, values_a, name_b, values_b)
    return runs.submit(
        kind="sweep", title=f"{scenario.name}: {name_a} × {name_b}", owner=owner, total=total,
        settings=_settings(replications, seed, years, notes, scenario=scenario.name,
                           **{name_a: axis_a.partition("=")[2], name_b: axis_b.partition("=")[2]}),
        job=lambda progress: planning.sweep(
            scenario, parameter_a=name_a, values_a=values_a, parameter_b=name_b,
            values_b=values_b, replications=replications, seed=seed, years=years,
            progress=progress,
        ),
    )  # fmt: skip


def start_ceiling(
    runs: PlanningRuns, *, owner: str, scenario: Scenario, target_p90_days: float,
    replications: int, seed: int, years: float, notes: Mapping[str, str] | None = None,
) -> PlanningRun:  # fmt: skip
    """Queue the search of ``scenario``'s capacity ceiling (:func:`planning.ceiling
    <vein2vein.services.planning.ceiling>`); how many runs it takes is known at the end."""
    planning.check_target(target_p90_days)
    simulations = replications * CEILING_LEVELS
    check_size(simulations, years,
               simulations * _patients(scenario, years, CEILING_MEAN_MULTIPLIER))  # fmt: skip
    planning.seeds_of(replications, seed, years)
    return runs.submit(
        kind="ceiling", title=f"{scenario.name}: capacity ceiling", owner=owner, total=None,
        settings=_settings(replications, seed, years, notes, scenario=scenario.name,
                           target=f"p90 ≤ {target_p90_days:g} days"),
        job=lambda progress: planning.ceiling(
            scenario, target_p90_days=target_p90_days, replications=replications, seed=seed,
            years=years, progress=lambda done: progress(done, None),
        ),
    )  # fmt: skip


def start_vectors(
    runs: PlanningRuns, *, owner: str, plan: VectorPlan, notes: Mapping[str, str] | None = None
) -> PlanningRun:
    """Queue the working out of a vector plan at every scale (:func:`vectors.plan
    <vein2vein.services.vectors.plan>`)."""
    work = vectors.months_of_work(plan)
    if work > MAX_VECTOR_RUN_MONTHS:
        raise InvalidInput(
            f"this plan's Monte Carlo is {work:,} steps (runs × months × usable months × "
            f"safety levels × scales); a run from the page does at most "
            f"{MAX_VECTOR_RUN_MONTHS:,} (fewer supply.runs, scales or years, or "
            "`v2v plan vectors` on the CLI)"
        )
    draws = vectors.batch_draws(plan)
    if draws > MAX_VECTOR_BATCH_DRAWS:
        raise InvalidInput(
            f"this plan's runs would draw {draws:,.0f} batches' outcomes (supply.runs × the "
            f"batches of its smallest scale); a run from the page does at most "
            f"{MAX_VECTOR_BATCH_DRAWS:,} (fewer supply.runs, a larger scale, or check the "
            "titre; or `v2v plan vectors` on the CLI)"
        )
    settings = {
        "plan": plan.name,
        "scales": ", ".join(f"{s:g} L" for s in plan.vector.scales),
        "runs": f"{plan.supply.runs:,}",
        "stock-out target": f"{plan.supply.stockout_target:.0%}",
        **(notes or {}),
    }
    return runs.submit(
        kind="vectors", title=plan.name, owner=owner, total=len(plan.vector.scales),
        settings=settings, job=lambda progress: vectors.plan(plan, progress),
    )  # fmt: skip
