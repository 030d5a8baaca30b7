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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from vein2vein.domain.errors import InvalidInput, NotFound, V2VError
from vein2vein.planning.scenario import Scenario
from vein2vein.services import planning

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
]

#: How many runs the server remembers (the oldest finished ones are forgotten first).
KEPT = 30
#: The most simulations one run started from a page may ask for, and the longest window:
#: a shared server is not the place for a week of computing (the CLI has no such limit).
MAX_SIMULATIONS = 400
MAX_YEARS = 5.0

Kind = Literal["simulate", "compare", "sweep", "ceiling"]
#: ``progress(done, total)``; total is None when it is not known in advance (a ceiling).
Progress = Callable[[int, int | None], None]
Job = Callable[[Progress], object]


def check_size(simulations: int, years: float) -> None:
    """Refuse a run from a page that would ask for more than :data:`MAX_SIMULATIONS`
    simulations or a window longer than :data:`MAX_YEARS` years.

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
    if years > MAX_YEARS:
        raise InvalidInput(
            f"years {years:g}: a run from the page measures at most {MAX_YEARS:g} years "
            "(or use `v2v plan` on the CLI)"
        )


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
            self._runs[run.id] = run
            self._forget_old()
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

    def _forget_old(self) -> None:
        finished = [k for k, r in self._runs.items() if r.state in ("finished", "failed")]
        while len(self._runs) > self._kept and finished:
            del self._runs[finished.pop(0)]

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


def _settings(replications: int, seed: int, years: float, **more: str) -> dict[str, str]:
    seeds = f"{seed}" if replications == 1 else f"{seed}–{seed + replications - 1}"
    return {**more, "replications": str(replications), "seeds": seeds, "years": f"{years:g}"}


def start_simulation(
    runs: PlanningRuns, *, owner: str, scenario: Scenario, replications: int, seed: int,
    years: float,
) -> PlanningRun:  # fmt: skip
    """Queue ``replications`` runs of ``scenario`` (:func:`planning.replicate
    <vein2vein.services.planning.replicate>`), after checking what is asked."""
    planning.seeds_of(replications, seed, years)
    check_size(replications, years)
    return runs.submit(
        kind="simulate", title=scenario.name, owner=owner, total=replications,
        settings=_settings(replications, seed, years, scenario=scenario.name),
        job=lambda progress: planning.replicate(
            scenario, replications=replications, seed=seed, years=years, progress=progress
        ),
    )  # fmt: skip


def start_comparison(
    runs: PlanningRuns, *, owner: str, a: Scenario, b: Scenario, replications: int, seed: int,
    years: float,
) -> PlanningRun:  # fmt: skip
    """Queue the comparison of ``a`` and ``b`` on the same seeds (:func:`planning.compare
    <vein2vein.services.planning.compare>`)."""
    planning.seeds_of(replications, seed, years)
    check_size(2 * replications, years)
    return runs.submit(
        kind="compare", title=f"{a.name} against {b.name}", owner=owner,
        total=2 * replications, settings=_settings(replications, seed, years, A=a.name, B=b.name),
        job=lambda progress: planning.compare(
            a, b, replications=replications, seed=seed, years=years, progress=progress
        ),
    )  # fmt: skip


def start_sweep(
    runs: PlanningRuns, *, owner: str, scenario: Scenario, axis_a: str, axis_b: str,
    replications: int, seed: int, years: float,
) -> PlanningRun:  # fmt: skip
    """Queue a sweep whose axes are written ``PARAMETER=V1,V2,…`` (:func:`planning.axis
    <vein2vein.services.planning.axis>`, :func:`planning.sweep
    <vein2vein.services.planning.sweep>`)."""
    name_a, values_a = planning.axis(axis_a, "first parameter")
    name_b, values_b = planning.axis(axis_b, "second parameter")
    planning.seeds_of(replications, seed, years)
    planning.sweep_grid(scenario, name_a, values_a, name_b, values_b)
    total = len(values_a) * len(values_b) * replications
    check_size(total, years)
    return runs.submit(
        kind="sweep", title=f"{scenario.name}: {name_a} × {name_b}", owner=owner, total=total,
        settings=_settings(replications, seed, years, scenario=scenario.name,
                           **{name_a: axis_a.partition("=")[2], name_b: axis_b.partition("=")[2]}),
        job=lambda progress: planning.sweep(
            scenario, parameter_a=name_a, values_a=values_a, parameter_b=name_b,
            values_b=values_b, replications=replications, seed=seed, years=years,
            progress=progress,
        ),
    )  # fmt: skip


def start_ceiling(
    runs: PlanningRuns, *, owner: str, scenario: Scenario, target_p90_days: float,
    replications: int, seed: int, years: float,
) -> PlanningRun:  # fmt: skip
    """Queue the search of ``scenario``'s capacity ceiling (:func:`planning.ceiling
    <vein2vein.services.planning.ceiling>`); how many runs it takes is known at the end."""
    planning.seeds_of(replications, seed, years)
    planning.check_target(target_p90_days)
    check_size(replications, years)
    return runs.submit(
        kind="ceiling", title=f"{scenario.name}: capacity ceiling", owner=owner, total=None,
        settings=_settings(replications, seed, years, scenario=scenario.name,
                           target=f"p90 ≤ {target_p90_days:g} days"),
        job=lambda progress: planning.ceiling(
            scenario, target_p90_days=target_p90_days, replications=replications, seed=seed,
            years=years, progress=lambda done: progress(done, None),
        ),
    )  # fmt: skip
