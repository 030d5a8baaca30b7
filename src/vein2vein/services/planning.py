"""Planning a manufacturing network (DESIGN §9): the one place the CLI and the pages call.

* :func:`load` and :func:`open_scenario` read a scenario file (or a shipped example), the
  steps of a process that names an MBR taken from its effective version in the records
  when an :class:`~vein2vein.services.app.App` is given;
* :func:`replicate` runs a scenario once per seed and estimates each metric with its 95 %
  confidence interval; :func:`sweep` runs a grid over two parameters; :func:`compare`
  runs two scenarios on the same seeds; :func:`ceiling` finds the capacity ceiling.

Runs go to local worker processes by default, or to a Dask cluster when ``scheduler``
names one (``tcp://host:port``); the result is the same either way, since a run is a pure
function of its scenario and seed (:mod:`vein2vein.planning.runner`). Nothing here reads
or writes the records except :func:`load` with an app, which reads MBRs.

Sweep parameters: ``demand`` (a multiplier of every treatment centre's patients per year)
and ``devices:<SITE>`` (the number of suites or devices of manufacturing site SITE).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from vein2vein.domain.errors import InvalidInput, RuleViolation
from vein2vein.formats.scenario import InvalidScenarioFile, load_scenario, parse_scenario
from vein2vein.planning.ceiling import CapacityCeiling, capacity_ceiling, check_target
from vein2vein.planning.model import SimulationResult
from vein2vein.planning.replications import (
    Comparison,
    Estimate,
    Replications,
    Sweep,
    SweepCell,
)
from vein2vein.planning.runner import SchedulerUnreachable, run_simulations
from vein2vein.planning.scenario import Fixed, InvalidScenario, Scenario, Step
from vein2vein.services import _examples

if TYPE_CHECKING:
    from vein2vein.services.app import App

__all__ = [
    "CapacityCeiling",
    "Comparison",
    "Estimate",
    "Replications",
    "SchedulerUnreachable",
    "Sweep",
    "SweepCell",
    "axis",
    "ceiling",
    "check_target",
    "compare",
    "example_text",
    "examples",
    "load",
    "open_example",
    "open_scenario",
    "parameters",
    "replicate",
    "seeds_of",
    "sweep",
    "sweep_grid",
]

#: The most replications of one scenario: far beyond what any interval needs.
MAX_REPLICATIONS = 10_000
Progress = Callable[[int, int], None]
RunsSoFar = Callable[[int], None]
_EXAMPLES = "scenario"


# -- scenarios -----------------------------------------------------------------------------


def examples() -> dict[str, str]:
    """The shipped example scenarios: name (``central-plant``, …) → its ``name:`` line."""
    return _examples.listed(_EXAMPLES, parse_scenario)


def open_scenario(argument: str, *, app: App | None = None) -> Scenario:
    """The scenario in the file at path ``argument``, or else the shipped example of that
    name (see :func:`examples`); read as :func:`load` reads it.

    Raises
    ------
    NotFound
        When ``argument`` is neither a file nor an example's name.
    """
    return _examples.file_or_example(
        argument, "scenario", lambda path: load(path, app=app),
        lambda name: open_example(name, app=app), examples,
    )  # fmt: skip


def load(
    path_or_text: Path | str, *, source: str | None = None, app: App | None = None
) -> Scenario:
    """The scenario in a file (a :class:`~pathlib.Path`) or in YAML text (a ``str``).

    The file is checked (:mod:`vein2vein.formats.scenario`) and its parts fitted together
    (:meth:`Scenario.from_dict <vein2vein.planning.scenario.Scenario.from_dict>`). A
    process that names an ``mbr:`` takes its steps from the effective version of that MBR
    when ``app`` is given: each MBR step lasts its ``expected_hours`` (a fixed duration),
    with the hands-on hours of the file's step of the same id (none for a step the file
    does not have). Without ``app`` the file's steps are used.

    Parameters
    ----------
    source : str, optional
        How to name the file in messages (default: the path, or ``<scenario>``).

    Raises
    ------
    InvalidInput
        One error listing every problem of the file, each with its place
        (``central.yaml: 2 problem(s): sites.CP1.devices.count: must be ≥ 1; …``), or a
        process that names only an MBR when no ``app`` is given.
    RuleViolation
        When a process's MBR has no effective version.
    """
    where = source or (str(path_or_text) if isinstance(path_or_text, Path) else "<scenario>")
    try:
        if isinstance(path_or_text, Path):
            data = load_scenario(path_or_text)
        else:
            data = parse_scenario(path_or_text, where)
        scenario = Scenario.from_dict(data)
    except (InvalidScenarioFile, InvalidScenario) as bad:
        problems = bad.problems
        raise InvalidInput(f"{where}: {len(problems)} problem(s): {'; '.join(problems)}") from None
    except InvalidInput as bad:
        if bad.message.startswith(where):
            raise
        raise InvalidInput(f"{where}: {bad.message}") from None
    return _steps_from_mbrs(scenario, app, where)


def _steps_from_mbrs(scenario: Scenario, app: App | None, where: str) -> Scenario:
    processes = dict(scenario.processes)
    for name, process in scenario.processes.items():
        if process.mbr is None:
            continue
        if app is None:
            if not process.steps:
                raise InvalidInput(
                    f"{where}: processes.{name}: its steps come from MBR {process.mbr!r}, "
                    "which is read from the records: none were opened (give the steps in "
                    "the file, or plan with the records)"
                )
            continue
        from vein2vein.services.mbr import effective_mbr

        try:
            mbr = effective_mbr(app, process.mbr)
        except RuleViolation:
            raise RuleViolation(
                f"{where}: processes.{name}.mbr: {process.mbr} has no effective master batch "
                "record to take the steps from"
            ) from None
        hands_on = {s.id: s.hands_on_hours for s in process.steps}
        steps = tuple(
            Step(s.id, Fixed(s.expected_hours), min(hands_on.get(s.id, 0.0), s.expected_hours))
            for s in mbr.steps
        )
        processes[name] = replace(process, steps=steps)
    return replace(scenario, processes=processes)


# -- running -------------------------------------------------------------------------------


def seeds_of(replications: int, seed: int, years: float = 1.0) -> list[int]:
    """The seeds of ``replications`` runs from ``seed``, once they and the window of
    ``years`` are checked (as every function here checks them before it runs anything).

    Raises
    ------
    InvalidInput
        For fewer than 1 replication, a negative seed, or a window that is not > 0.
    """
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise InvalidInput(f"replications {replications!r}: expected a whole number ≥ 1")
    if replications > MAX_REPLICATIONS:
        raise InvalidInput(
            f"replications {replications}: at most {MAX_REPLICATIONS:,} (each is a whole run)"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInput(f"seed {seed!r}: expected a whole number ≥ 0")
    if not (math.isfinite(years) and years > 0):
        raise InvalidInput(f"years {years!r}: expected a number > 0")
    return list(range(seed, seed + replications))


def replicate(
    scenario: Scenario,
    *,
    replications: int,
    seed: int = 1,
    years: float = 1.0,
    warmup_days: float = 90.0,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Replications:
    """Run ``scenario`` with seeds ``seed`` … ``seed + replications − 1``, in parallel, and
    summarise the runs (each metric's mean and 95 % confidence interval).

    Parameters
    ----------
    years : float
        The measured window of each run, after ``warmup_days`` (see
        :func:`~vein2vein.planning.model.simulate`).
    scheduler : str, optional
        ``tcp://host:port`` of a Dask scheduler; without one, local worker processes.
    workers : int, optional
        Local worker processes (default one per core); 1 runs in this process.
    progress : callable, optional
        ``progress(done, total)`` after each run.

    Raises
    ------
    InvalidInput
        For fewer than 1 replication, a negative seed, a bad window or scheduler address.
    SchedulerUnreachable
        When the scheduler does not answer.
    """
    seeds = seeds_of(replications, seed, years)
    runs = run_simulations(
        [(scenario, s) for s in seeds], years=years, warmup_days=warmup_days,
        scheduler=scheduler, workers=workers, progress=progress,
    )  # fmt: skip
    return Replications.of(scenario.name, seeds, years, runs)


def parameters(scenario: Scenario) -> list[str]:
    """The parameters a sweep of ``scenario`` can vary: ``demand`` and ``devices:<SITE>``
    for each manufacturing site."""
    return ["demand", *(f"devices:{site}" for site in scenario.manufacturing_sites)]


def _varied(scenario: Scenario, parameter: str, value: float) -> Scenario:
    if parameter == "demand":
        if not (math.isfinite(value) and value > 0):
            raise InvalidInput(f"demand {value!r}: a multiplier > 0")
        return scenario.with_demand(value)
    if not (math.isfinite(value) and value >= 1 and float(value).is_integer()):
        raise InvalidInput(f"{parameter} {value!r}: a whole number of devices ≥ 1")
    return scenario.with_devices(parameter.removeprefix("devices:"), int(value))


def axis(given: str, where: str = "axis") -> tuple[str, list[float]]:
    """A sweep's axis written ``PARAMETER=V1,V2,…`` (``demand=0.5,1,2``,
    ``devices:CP1=10,20``) → the parameter and its values; ``where`` names it in the error
    (``--a``, a form field). Whether the parameter exists is :func:`sweep`'s to check.

    >>> axis("devices:CP1=10, 20")
    ('devices:CP1', [10.0, 20.0])

    Raises
    ------
    InvalidInput
        When ``given`` is not of that form.
    """
    name, equals, listed = given.partition("=")
    try:
        values = [float(v) for v in listed.split(",") if v.strip()]
    except ValueError:
        values = []
    if not equals or not name.strip() or not values:
        raise InvalidInput(
            f"{where} {given!r}: expected PARAMETER=V1,V2,…, e.g. demand=0.5,1,2 or "
            "devices:CP1=10,20,30"
        )
    return name.strip(), values


def _values(parameter: str, values: Sequence[float]) -> list[float]:
    """Device counts as whole numbers (so they read as counts); demand as given."""
    if parameter == "demand":
        return [float(v) for v in values]
    return [int(v) if float(v).is_integer() else v for v in values]


def sweep_grid(
    scenario: Scenario,
    parameter_a: str,
    values_a: Sequence[float],
    parameter_b: str,
    values_b: Sequence[float],
) -> list[list[Scenario]]:
    """The scenarios of a sweep, ``grid[i][j]`` at ``values_a[i]`` and ``values_b[j]``,
    once the parameters and values are checked.

    Raises
    ------
    InvalidInput
        For an unknown parameter (naming the valid ones), the same parameter twice, no
        values, a demand multiplier ≤ 0 or a device count that is not a whole number ≥ 1.
    """
    valid = parameters(scenario)
    for parameter, values in ((parameter_a, values_a), (parameter_b, values_b)):
        if parameter not in valid:
            raise InvalidInput(
                f"parameter {parameter!r}: not one a sweep can vary (these are: {', '.join(valid)})"
            )
        if not values:
            raise InvalidInput(f"parameter {parameter!r}: give at least one value")
    if parameter_a == parameter_b:
        raise InvalidInput(f"parameter {parameter_a!r} is given twice: sweep two different ones")
    for parameter, values in ((parameter_a, values_a), (parameter_b, values_b)):
        repeated = sorted({v for v in values if list(values).count(v) > 1})
        if repeated:
            raise InvalidInput(
                f"parameter {parameter!r}: {', '.join(f'{v:g}' for v in repeated)} given twice"
            )
    values_a, values_b = _values(parameter_a, values_a), _values(parameter_b, values_b)
    return [
        [_varied(_varied(scenario, parameter_a, a), parameter_b, b) for b in values_b]
        for a in values_a
    ]


def sweep(
    scenario: Scenario,
    *,
    parameter_a: str,
    values_a: Sequence[float],
    parameter_b: str,
    values_b: Sequence[float],
    replications: int,
    seed: int = 1,
    years: float = 1.0,
    warmup_days: float = 90.0,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Sweep:
    """Run ``scenario`` at every pair of ``values_a`` × ``values_b`` of two parameters
    (see :func:`parameters`), ``replications`` runs per cell on the same seeds, all cells
    as one batch on the executor (see :func:`replicate` for the other parameters).

    Raises
    ------
    InvalidInput
        As :func:`sweep_grid` and :func:`replicate`.
    """
    seeds = seeds_of(replications, seed, years)
    grid = sweep_grid(scenario, parameter_a, values_a, parameter_b, values_b)
    values_a, values_b = _values(parameter_a, values_a), _values(parameter_b, values_b)  # as grid
    tasks = [(cell, s) for row in grid for cell in row for s in seeds]
    runs = run_simulations(tasks, years=years, warmup_days=warmup_days, scheduler=scheduler,
                           workers=workers, progress=progress)  # fmt: skip
    n = len(seeds)
    cells = []
    for i, a in enumerate(values_a):
        row = []
        for j, b in enumerate(values_b):
            start = (i * len(values_b) + j) * n
            row.append(SweepCell.of(a, b, runs[start : start + n]))
        cells.append(tuple(row))
    return Sweep(
        scenario=scenario.name, parameter_a=parameter_a, values_a=tuple(values_a),
        parameter_b=parameter_b, values_b=tuple(values_b), seeds=tuple(seeds), years=years,
        cells=tuple(cells),
    )  # fmt: skip


def compare(
    a: Scenario,
    b: Scenario,
    *,
    replications: int,
    seed: int = 1,
    years: float = 1.0,
    warmup_days: float = 90.0,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Comparison:
    """Run ``a`` and ``b`` on the same seeds, as one batch, and set their metrics side by
    side with the differences b − a (paired by seed). Raises as :func:`replicate`."""
    seeds = seeds_of(replications, seed, years)
    tasks = [(a, s) for s in seeds] + [(b, s) for s in seeds]
    runs = run_simulations(tasks, years=years, warmup_days=warmup_days, scheduler=scheduler,
                           workers=workers, progress=progress)  # fmt: skip
    n = len(seeds)
    return Comparison.of(
        Replications.of(a.name, seeds, years, runs[:n]),
        Replications.of(b.name, seeds, years, runs[n:]),
    )


def ceiling(
    scenario: Scenario,
    *,
    target_p90_days: float,
    replications: int = 3,
    seed: int = 1,
    years: float = 1.0,
    warmup_days: float = 90.0,
    tolerance: float = 0.05,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: RunsSoFar | None = None,
) -> CapacityCeiling:
    """The capacity ceiling of ``scenario``: the highest demand whose p90 vein-to-vein
    time, averaged over ``replications`` seeds from ``seed``, is at most
    ``target_p90_days`` (:func:`~vein2vein.planning.ceiling.capacity_ceiling`). Its search
    is a bisection, one multiplier after another; the seeds of each multiplier run in
    parallel as :func:`replicate`'s do, and ``progress(runs)`` is told of each multiplier.

    Raises
    ------
    InvalidInput
        For a target that is not a number > 0, and as :func:`replicate`.
    """
    seeds = seeds_of(replications, seed, years)
    check_target(target_p90_days)

    def run(varied: Scenario, chosen: Sequence[int]) -> list[SimulationResult]:
        return run_simulations([(varied, s) for s in chosen], years=years,
                               warmup_days=warmup_days, drain_days=2 * target_p90_days,
                               scheduler=scheduler, workers=workers)  # fmt: skip

    return capacity_ceiling(scenario, target_p90_days=target_p90_days, seeds=seeds,
                            years=years, warmup_days=warmup_days, tolerance=tolerance,
                            run=run, progress=progress)  # fmt: skip


def example_text(name: str) -> str:
    """The YAML text of the shipped example ``name`` (see :func:`examples`).

    Raises
    ------
    NotFound
        When there is no example of that name.
    """
    return _examples.text_of(_EXAMPLES, name, "scenario", examples)


def open_example(name: str, *, app: App | None = None) -> Scenario:
    """The shipped example ``name``, read as :func:`load` reads a file."""
    return load(example_text(name), source=f"example {name}", app=app)
