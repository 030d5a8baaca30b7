"""`v2v plan …`: simulate a manufacturing network, sweep two of its parameters, compare two
networks, find its capacity ceiling (issue 8; services/planning.py does the work).

A SCENARIO is a scenario file (YAML) or the name of a shipped example (`v2v plan
examples`). Planning reads no records and needs no sign-in, unless ``--mbr`` asks for the
steps of the processes to come from their effective MBRs (then sign in as for any other
command). Tables are for people; ``--json`` gives the keys of
:meth:`~vein2vein.planning.replications.Replications.as_json` and its siblings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from vein2vein.cli._context import JsonOpt, _errors, _ready_app, _who
from vein2vein.cli._render import console, print_json, print_table, progress_bar, table

if TYPE_CHECKING:  # simulation and statistics load when a command runs: `v2v` starts fast
    from vein2vein.planning.replications import Estimate, Replications
    from vein2vein.planning.scenario import Scenario

__all__ = ["plan_app"]

plan_app = typer.Typer(
    help="Plan a manufacturing network: simulate a scenario, sweep two of its parameters, "
    "compare two networks, find the capacity ceiling. SCENARIO is a scenario file (YAML) or "
    "the name of a shipped example (see `v2v plan examples`).",
    no_args_is_help=True,
)

ScenarioArg = Annotated[
    str, typer.Argument(help="A scenario file, or a shipped example's name (central-plant, …).")
]
Replications_ = Annotated[
    int, typer.Option("--replications", "-n", help="Runs, one per seed (seed, seed + 1, …).")
]
Years = Annotated[float, typer.Option(help="Years measured in each run (after a 90-day warm-up).")]
Seed = Annotated[int, typer.Option(help="The first seed: the same seeds give the same figures.")]
Scheduler = Annotated[
    str | None,
    typer.Option(help="tcp://host:port of a Dask scheduler to run on (default: local processes)."),
]
Workers = Annotated[
    int | None, typer.Option(help="Local worker processes (default: one per core).")
]
Mbr = Annotated[
    bool,
    typer.Option(
        "--mbr",
        help="Take the step durations of each process that names an MBR from its effective "
        "version in the records (needs sign-in); otherwise the file's steps are used.",
    ),
]


def _scenario(argument: str, mbr: bool) -> Scenario:
    from vein2vein.services import planning

    if mbr:
        _who()
        return planning.open_scenario(argument, app=_ready_app())
    return planning.open_scenario(argument)


@contextmanager
def _progress(show: bool, what: str) -> Iterator[Callable[[int, int | None], None] | None]:
    """A progress bar on a terminal (not with --json), fed by the runs as they finish."""
    if not show or not console.is_terminal:
        yield None
        return
    with progress_bar() as bar:
        task = bar.add_task(what, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ci(e: Estimate, digits: int = 1) -> str:
    if e.ci_low is None or e.ci_high is None:
        return "—"
    return f"{_num(e.ci_low, digits)} – {_num(e.ci_high, digits)}"


#: Rows of the metric tables: the estimate's name, its label, the decimals shown.
_ROWS = (
    ("doses_per_year", "doses per year", 1),
    ("vein_to_vein_median", "vein-to-vein median (days)", 1),
    ("vein_to_vein_p90", "vein-to-vein p90 (days)", 1),
    ("cost_per_dose", "cost per dose", 0),
    ("patients_lost", "patients lost", 1),
)


def _print_replications(r: Replications) -> None:
    seeds = f"seed {r.seeds[0]}" if len(r.seeds) == 1 else f"seeds {r.seeds[0]}–{r.seeds[-1]}"
    console.print(f"[bold]{escape(r.scenario)}[/]: {len(r.seeds)} run(s) of {r.years:g} "
                  f"year(s), {seeds}")  # fmt: skip
    grid = table("metric", "mean", "95 % CI", ids=("metric",))
    for key, label, digits in _ROWS:
        e = r.estimates[key]
        grid.add_row(label, _num(e.mean, digits), _ci(e, digits))
    print_table(grid)
    grid = table("resource", "utilisation", "", ids=("resource",), title="utilisation by resource")
    runs = len(r.seeds)
    for name, used in sorted(r.utilisation.items(), key=lambda kv: -kv[1]):
        mark = ""
        if name == r.bottleneck:
            mark = f"[bold]◀ bottleneck[/] ({r.bottlenecks.get(name, 0)} of {runs} runs)"
        grid.add_row(name, f"{used:.0%}", mark)
    print_table(grid)
    total = r.estimates["cost_per_dose"].mean
    grid = table("item", "per dose", "share", ids=("item",), title="cost per dose")
    for item, cost in sorted(r.cost_breakdown.items(), key=lambda kv: -(kv[1] or 0.0)):
        share = "—" if cost is None or not total else f"{cost / total:.0%}"
        grid.add_row(item, _num(cost, 0), share)
    print_table(grid)


@plan_app.command("examples")
def examples_(json_: JsonOpt = False) -> None:
    """List the example scenarios (for simulate, sweep, compare, ceiling) and vector plans
    (for vectors) shipped with vein2vein: use a name as SCENARIO or PLAN."""
    from vein2vein.services import planning, vectors

    with _errors():
        scenarios, plans = planning.examples(), vectors.examples()
    if json_:
        print_json({"scenarios": scenarios, "vector_plans": plans})
        return
    grid = table("example", "kind", "name", ids=("example",))
    for name, title in scenarios.items():
        grid.add_row(name, "scenario", title)
    for name, title in plans.items():
        grid.add_row(name, "vector plan", title)
    print_table(grid)


@plan_app.command("simulate")
def simulate(
    scenario: ScenarioArg,
    replications: Replications_ = 5,
    years: Years = 1.0,
    seed: Seed = 1,
    scheduler: Scheduler = None,
    workers: Workers = None,
    mbr: Mbr = False,
    json_: JsonOpt = False,
) -> None:
    """Run a scenario once per seed: doses per year, vein-to-vein median and p90, cost per
    dose and patients lost (mean and 95 % confidence interval), utilisation by resource
    with the bottleneck, and the cost breakdown."""
    from vein2vein.services import planning

    with _errors():
        network = _scenario(scenario, mbr)
        with _progress(not json_, f"simulating {replications} run(s)") as progress:
            result = planning.replicate(network, replications=replications, seed=seed,
                                        years=years, scheduler=scheduler, workers=workers,
                                        progress=progress)  # fmt: skip
    if json_:
        print_json(result.as_json())
        return
    _print_replications(result)


@plan_app.command("sweep")
def sweep(
    scenario: ScenarioArg,
    a: Annotated[
        str,
        typer.Option(
            "--a",
            help="The first parameter and its values, PARAMETER=V1,V2,…: demand=0.5,1,1.5,2 "
            "(a multiplier of every centre's patients per year) or devices:SITE=10,20,30 "
            "(suites or devices of manufacturing site SITE).",
        ),
    ],
    b: Annotated[str, typer.Option("--b", help="The second parameter and its values, as --a.")],
    replications: Replications_ = 3,
    years: Years = 1.0,
    seed: Seed = 1,
    scheduler: Scheduler = None,
    workers: Workers = None,
    mbr: Mbr = False,
    json_: JsonOpt = False,
) -> None:
    """A capacity map: every pair of values of two parameters, each cell run on the same
    seeds, all as one batch; for each cell the mean p90 vein-to-vein time, the doses per
    year and the bottleneck with its utilisation.

    Example: v2v plan sweep central-plant --a demand=0.5,1,1.5,2 --b devices:CP1=10,20,30
    """
    from vein2vein.services import planning

    with _errors():
        name_a, values_a = planning.axis(a, "--a")
        name_b, values_b = planning.axis(b, "--b")
        network = _scenario(scenario, mbr)
        runs = len(values_a) * len(values_b) * replications
        with _progress(not json_, f"sweeping: {runs} run(s)") as progress:
            result = planning.sweep(
                network, parameter_a=name_a, values_a=values_a, parameter_b=name_b,
                values_b=values_b, replications=replications, seed=seed, years=years,
                scheduler=scheduler, workers=workers, progress=progress,
            )  # fmt: skip
    if json_:
        print_json(result.as_json())
        return
    console.print(f"[bold]{escape(result.scenario)}[/]: {result.parameter_a} × "
                  f"{result.parameter_b}, {len(result.seeds)} run(s) per cell")  # fmt: skip
    grid = table(f"{result.parameter_a} \\ {result.parameter_b}",
                 *(f"{v:g}" for v in result.values_b),
                 title="p90 vein-to-vein (days)")  # fmt: skip
    for a_value, row in zip(result.values_a, result.cells, strict=True):
        grid.add_row(f"{a_value:g}", *(_num(c.vein_to_vein_p90.mean) for c in row))
    print_table(grid)
    grid = table(result.parameter_a, result.parameter_b, "p90 (days)", "doses per year",
                 "bottleneck", "utilisation", ids=("bottleneck",))  # fmt: skip
    for row in result.cells:
        for c in row:
            used = "—" if c.bottleneck_utilisation is None else f"{c.bottleneck_utilisation:.0%}"
            grid.add_row(f"{c.a:g}", f"{c.b:g}", _num(c.vein_to_vein_p90.mean),
                         _num(c.doses_per_year.mean), c.bottleneck or "—", used)  # fmt: skip
    print_table(grid)


@plan_app.command("compare")
def compare(
    scenario_a: Annotated[str, typer.Argument(metavar="A", help="The first scenario.")],
    scenario_b: Annotated[str, typer.Argument(metavar="B", help="The second scenario.")],
    replications: Replications_ = 5,
    years: Years = 1.0,
    seed: Seed = 1,
    scheduler: Scheduler = None,
    workers: Workers = None,
    mbr: Mbr = False,
    json_: JsonOpt = False,
) -> None:
    """Two scenarios on the same seeds, side by side, with the differences B − A and their
    95 % confidence intervals (paired by seed)."""
    from vein2vein.services import planning

    with _errors():
        first = _scenario(scenario_a, mbr)
        second = _scenario(scenario_b, mbr)
        with _progress(not json_, f"comparing: {2 * replications} run(s)") as progress:
            result = planning.compare(first, second, replications=replications, seed=seed,
                                      years=years, scheduler=scheduler, workers=workers,
                                      progress=progress)  # fmt: skip
    if json_:
        print_json(result.as_json())
        return
    console.print(f"A: [bold]{escape(result.a.scenario)}[/]")
    console.print(f"B: [bold]{escape(result.b.scenario)}[/]")
    console.print(f"{len(result.a.seeds)} run(s) of {result.a.years:g} year(s) each, same seeds")
    grid = table("metric", "A", "B", "B − A", "95 % CI of B − A", ids=("metric",))
    for key, label, digits in _ROWS:
        d = result.difference[key]
        grid.add_row(label, _num(result.a.estimates[key].mean, digits),
                     _num(result.b.estimates[key].mean, digits), _num(d.mean, digits),
                     _ci(d, digits))  # fmt: skip
    grid.add_row("bottleneck", result.a.bottleneck or "—", result.b.bottleneck or "—", "", "")
    print_table(grid)


@plan_app.command("ceiling")
def ceiling(
    scenario: ScenarioArg,
    target_p90_days: Annotated[
        float, typer.Option(help="The p90 vein-to-vein time, in days, not to be exceeded.")
    ],
    replications: Annotated[
        int, typer.Option("--replications", "-n", help="Runs (seeds) at each demand tried.")
    ] = 3,
    years: Years = 1.0,
    seed: Seed = 1,
    mbr: Mbr = False,
    json_: JsonOpt = False,
) -> None:
    """The capacity ceiling: the highest demand (a multiplier of the scenario's) whose mean
    p90 vein-to-vein time stays under the target, found by doubling and bisection."""
    from vein2vein.services import planning

    with _errors():
        network = _scenario(scenario, mbr)
        with _progress(not json_, "searching the ceiling: runs so far") as progress:
            found = planning.ceiling(
                network, target_p90_days=target_p90_days, replications=replications, seed=seed,
                years=years, progress=None if progress is None else (lambda n: progress(n, None)),
            )  # fmt: skip
    if json_:
        print_json(found.as_json())
        return
    if not found.met:
        last = found.tried[-1]
        console.print(f"[bold red]the target is not met[/] at any demand tried: even at "
                      f"{last.multiplier:g} × the demand the p90 vein-to-vein time is "
                      f"{_num(last.p90_days)} days (target {found.target_p90_days:g}); "
                      "the process and release alone take longer "
                      f"({found.simulations} runs)")  # fmt: skip
        return
    console.print(
        f"capacity ceiling: {'at least ' if found.capped else ''}[bold]{found.multiplier:g} ×[/] "
        f"the demand = {found.patients_per_year:,.0f} patients a year, p90 vein-to-vein "
        f"{_num(found.p90_days)} days (target {found.target_p90_days:g}), "
        f"{_num(found.doses_per_year)} doses a year ({found.simulations} runs)"
    )
    if found.multiplier < 1:
        console.print("[bold]today's demand is not served within the target[/]")


def _sci(value: float) -> str:
    """1.2e+15 → 1.2e15: vector quantities are read in powers of ten."""
    return f"{value:.3g}".replace("e+", "e")


def _date(day: date | None) -> str:
    return "—" if day is None else day.isoformat()


@plan_app.command("vectors")
def vectors_(
    plan: Annotated[
        str, typer.Argument(help="A vector plan file, or a shipped example's name (cart-lv, …).")
    ],
    scale: Annotated[
        float | None,
        typer.Option(help="Show this scale's batches (litres); default: the recommended one."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Plan viral vector and GMP plasmid supply for the patients a therapy must serve:
    vector needed per year, the latest order dates for each phase's first patient, and at
    each batch scale the batches and litres a year, plasmid grams, the safety stock that
    keeps the risk of a stock-out under the plan's target, the vector cost per dose, and
    the scale recommended with its reasons."""
    from vein2vein.planning.vector_scales import doses_text
    from vein2vein.services import vectors

    with _errors():
        chosen = vectors.open_plan(plan)
        if scale is not None:
            chosen.vector.check_scale(scale, "--scale")
        if json_:
            result = vectors.plan(chosen)
        else:
            with console.status(f"working out {len(chosen.vector.scales)} scales "
                                f"({chosen.supply.runs:,} runs each) …"):  # fmt: skip
                result = vectors.plan(chosen)
    if json_:
        print_json(result.as_json())
        return
    unit = chosen.unit
    console.print(f"[bold]{escape(chosen.name)}[/]: {_sci(chosen.dose_units())} {unit} per "
                  f"patient; stock-out target {chosen.supply.stockout_target:.0%} over "
                  f"{chosen.supply.runs:,} runs")  # fmt: skip
    grid = table("year", "patients", f"vector ({unit})", ids=("year",), title="demand")
    for year, (patients, units) in result.demand_by_year.items():
        grid.add_row(str(year), f"{patients:,.0f}", _sci(units))
    print_table(grid)
    grid = table("phase", "first patient", "release by", "start batch by", "book slot by",
                 "order plasmids by", "", ids=("phase",), title="milestones")  # fmt: skip
    for m in result.milestones:
        grid.add_row(m.phase, _date(m.first_patient), _date(m.release_by), _date(m.start_by),
                     _date(m.slot_booking_by), _date(min(m.plasmid_orders.values())),
                     "[bold red]late[/]" if m.late else "")  # fmt: skip
    print_table(grid)
    grid = table("scale (L)", "doses/batch", "safety (doses)", "P(stock-out)", "batches",
                 "plasmid (g)", "cost/dose", "expired", "", ids=("scale (L)",),
                 title="scales (P(stock-out) over the whole plan)")  # fmt: skip
    for o in result.scales:
        r = o.risk
        if r is None:
            grid.add_row(f"{o.scale:g}", doses_text(o.doses_per_batch), "—", "—",
                         f"{o.expected_batches:,.0f}", "—", "—", "—",
                         "[red]not worked out[/]")  # fmt: skip
            continue
        mark = "[bold]◀ recommended[/]" if o.scale == result.recommended else (
            "" if o.reachable else "[red]target not met[/]")  # fmt: skip
        grid.add_row(f"{o.scale:g}", doses_text(o.doses_per_batch), f"{o.safety_doses:,.0f}",
                     f"{r.p_stockout:.1%} ± {r.p_half_width:.1%}", f"{r.batches:,.1f}",
                     f"{sum(o.plasmid_grams.values()):,.1f}", _num(o.cost_per_dose, 0),
                     f"{o.waste_fraction:.0%}", mark)  # fmt: skip
    print_table(grid)
    for reason in result.reasons:
        console.print(f"• {escape(reason)}")
    late = result.late()
    if late:
        console.print(f"[bold red]already late[/] on the plan's today ({_date(chosen.as_of)}): "
                      f"{escape('; '.join(late))}")  # fmt: skip
    shown = scale if scale is not None else result.recommended
    if shown is None:
        return
    o = result.outcome(shown)
    if o.schedule is None:
        console.print(f"{shown:g} L was not worked out: {o.expected_batches:,.0f} batches over "
                      "the plan")  # fmt: skip
        return
    names = [p.name for p in chosen.plasmids]
    title = f"{shown:g} L: batches a year (mean of the runs, failures replaced)"
    grid = table("year", "batches", "litres", *(f"{n} (g)" for n in names), ids=("year",),
                 title=title)  # fmt: skip
    for year, n in o.batches_by_year.items():
        grams = [f"{o.plasmid_grams_by_year[name][year]:,.2f}" for name in names]
        grid.add_row(str(year), f"{n:,.1f}", f"{o.litres_by_year[year]:,.0f}", *grams)
    print_table(grid)
    title = f"{shown:g} L: the batch plan (expected demand, every batch good)"
    grid = table("batch", "start", "release", "expires", "phase", "book slot by",
                 "order plasmids by", "", ids=("batch",), title=title)  # fmt: skip
    for b in o.schedule.batches:
        grid.add_row(str(b.number), _date(b.start), _date(b.release), _date(b.expires),
                     b.phase, _date(b.slot_booking_by), _date(min(b.plasmid_orders.values())),
                     "[bold red]late[/]" if b.late else "")  # fmt: skip
    print_table(grid)
