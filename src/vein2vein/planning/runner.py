"""Many runs of :func:`~vein2vein.planning.model.simulate` at once: in this process, on
local worker processes, or on a Dask cluster (``distributed``).

A run is a pure function of its scenario and its seed, so where it runs changes nothing:
:func:`run_simulations` gives the same results, in the order of its tasks, whichever
executor it uses. Only the order in which runs *finish* differs, which only the progress
callback sees.

A scenario goes to a worker as bytes pickled here once (its read-only mappings as plain
dicts), so a Dask worker or a worker process needs nothing but vein2vein installed.
Exceptions raised in a run are raised again here.

Local worker processes are started by a fork server, not forked from the caller: the web
server runs simulations from a thread, and a process forked from a threaded one can inherit
a lock some other thread held (and hang on it). The fork server imports the model once, so
its workers start without paying for numpy and SimPy again.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import MappingProxyType
from typing import Any

from vein2vein.domain.errors import InvalidInput, ServiceUnavailable
from vein2vein.planning.model import SimulationResult, simulate
from vein2vein.planning.scenario import Scenario

__all__ = ["CONNECT_TIMEOUT_S", "SchedulerUnreachable", "run_simulations"]

#: Seconds to wait for a Dask scheduler to answer before giving up on it.
CONNECT_TIMEOUT_S = 5.0
_ADDRESS = re.compile(r"(tcp|tls)://[\w.\-\[\]:]+:\d{1,5}")

Progress = Callable[[int, int], None]
Run = Callable[[bytes, int], SimulationResult]


class SchedulerUnreachable(ServiceUnavailable):
    """The Dask scheduler named could not be reached; nothing was run."""


def _mapping(items: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(items)


def _reduce_mapping(proxy: MappingProxyType[str, Any]) -> tuple[Any, ...]:
    return (_mapping, (dict(proxy),))


def _dumps(scenario: Scenario) -> bytes:
    """``scenario`` pickled; pickle refuses a mappingproxy, so it goes as a dict."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: _reduce_mapping}
    pickler.dump(scenario)
    return buffer.getvalue()


def _run(
    blob: bytes, seed: int, *, years: float, warmup_days: float, drain_days: float
) -> SimulationResult:
    """One run, in whichever process the executor chose."""
    scenario: Scenario = pickle.loads(blob)  # our own bytes, made by _dumps
    return simulate(scenario, seed=seed, years=years, warmup_days=warmup_days,
                    drain_days=drain_days)  # fmt: skip


def run_simulations(
    tasks: Sequence[tuple[Scenario, int]],
    *,
    years: float = 1.0,
    warmup_days: float = 90.0,
    drain_days: float = 365.0,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[SimulationResult]:
    """Run ``simulate(scenario, seed=seed, …)`` for each ``(scenario, seed)`` of ``tasks``.

    Parameters
    ----------
    tasks : sequence of (Scenario, int)
        The runs; a scenario shared by several tasks is sent to the workers once per task
        but pickled once.
    years, warmup_days, drain_days : float
        As for :func:`~vein2vein.planning.model.simulate`, the same for every run.
    scheduler : str, optional
        ``tcp://host:port`` of a Dask scheduler whose workers run the tasks. Without one,
        local worker processes (``concurrent.futures``) run them.
    workers : int, optional
        Local worker processes (default: one per core, no more than the tasks); 1 runs
        every task in this process. Ignored with a scheduler.
    progress : callable, optional
        Called as ``progress(done, total)`` after each run finishes.

    Returns
    -------
    list of SimulationResult
        One per task, in the order of ``tasks``.

    Raises
    ------
    InvalidInput
        For a scheduler address that is not ``tcp://host:port``, or fewer than 1 worker.
    SchedulerUnreachable
        When the scheduler does not answer within :data:`CONNECT_TIMEOUT_S` seconds.
    """
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise InvalidInput(f"workers {workers!r}: expected a whole number ≥ 1")
    if not tasks:
        return []
    blobs: dict[int, bytes] = {}
    for scenario, _ in tasks:
        if id(scenario) not in blobs:
            blobs[id(scenario)] = _dumps(scenario)
    jobs = [(blobs[id(scenario)], seed) for scenario, seed in tasks]
    run = partial(_run, years=years, warmup_days=warmup_days, drain_days=drain_days)
    report = progress or (lambda done, total: None)
    if scheduler is not None:
        return _on_dask(scheduler, run, jobs, report)
    count = min(workers or os.cpu_count() or 1, len(jobs))
    if count == 1:
        results = []
        for blob, seed in jobs:
            results.append(run(blob, seed))
            report(len(results), len(jobs))
        return results
    return _on_processes(count, run, jobs, report)


def _on_processes(
    count: int, run: Run, jobs: list[tuple[bytes, int]], report: Progress
) -> list[SimulationResult]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        futures = [pool.submit(run, blob, seed) for blob, seed in jobs]
        for done, _ in enumerate(as_completed(futures), start=1):
            report(done, len(jobs))
        return [future.result() for future in futures]


def _on_dask(
    address: str, run: Run, jobs: list[tuple[bytes, int]], report: Progress
) -> list[SimulationResult]:
    if not _ADDRESS.fullmatch(address):
        raise InvalidInput(f"scheduler {address!r}: expected tcp://host:port")
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)  # type: ignore[no-untyped-call]
    except OSError:  # Dask's own "Timed out trying to connect" is an OSError
        raise SchedulerUnreachable(
            f"Dask scheduler {address}: no answer within {CONNECT_TIMEOUT_S:g} s (is it "
            "running, and is the address right?); nothing was run"
        ) from None
    with client:
        # pure=False: each task is run, never taken from another call's results.
        futures = client.map(run, [b for b, _ in jobs], [s for _, s in jobs], pure=False)
        finished = as_completed(futures, loop=client.loop)  # type: ignore[no-untyped-call]
        for done, _ in enumerate(finished, start=1):
            report(done, len(jobs))
        results: list[SimulationResult] = client.gather(futures)  # type: ignore[no-untyped-call]
    return results
