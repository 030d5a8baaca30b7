"""`v2v spc …`, `v2v compare …`, `v2v spec propose`: the statistics of issue 7 from a shell.

Every command reads either the records (``--product``, ``--stage``, ``--attribute``,
``--site``) or a user's own CSV file (``--csv FILE --column NAME``). The statistics are
analytics/'s and the reading is the services' (services/analytics.py, comparability.py,
spec_proposals.py); this module renders tables for people and JSON for scripts, whose keys
are the methods' own names (``center``, ``lcl``, ``ucl``, ``violations``, ``cp``, ``cpk``,
``pp``, ``ppk``, ``k``, ``p_value``, …).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from vein2vein.cli._context import JsonOpt, _errors, _ready_app, _who
from vein2vein.cli._render import console, print_json, print_table, table, to_jsonable
from vein2vein.domain.errors import InvalidInput

if TYPE_CHECKING:  # the statistics load on first use: every `v2v` command starts fast
    from vein2vein.analytics.control_charts import ChartResult
    from vein2vein.services.analytics import ChartView, Series

__all__ = ["compare_app", "spc_app", "spec_app"]

spc_app = typer.Typer(
    help="Statistical process control: control charts, capability, tolerance intervals, "
    "the signals to look at, and what predicts a batch's outcome.",
    no_args_is_help=True,
)
compare_app = typer.Typer(
    help="Comparability: are two sites or two processes making the same dose?",
    no_args_is_help=True,
)
spec_app = typer.Typer(help="Specifications from history.", no_args_is_help=True)

Product = Annotated[str | None, typer.Option(help="Product, e.g. CART-CD19 (the records).")]
StageOpt = Annotated[str, typer.Option(help="starting-material, in-process or release.")]
Attr = Annotated[str | None, typer.Option(help="Attribute of the specification, e.g. viability.")]
SiteOpt = Annotated[str | None, typer.Option(help="Manufacturing site (all sites if omitted).")]
Csv = Annotated[
    Path | None, typer.Option("--csv", help="Your own data: a CSV file with a header row.")
]
ColumnOpt = Annotated[str | None, typer.Option(help="The CSV column of numbers.")]
LabelOpt = Annotated[str | None, typer.Option(help="A CSV column naming each point (e.g. lot).")]


def _series(
    product: str | None,
    stage: str,
    attribute: str | None,
    site: str | None,
    csv: Path | None,
    column: str | None,
    label: str | None,
    *,
    exclude: list[str] | None = None,
    lsl: float | None = None,
    usl: float | None = None,
) -> Series:
    """The series asked for: a CSV column, or an attribute of the records."""
    from vein2vein.formats.table import read_column
    from vein2vein.services import analytics

    if csv is not None:
        if column is None:
            raise InvalidInput("--csv needs --column: the column of numbers to use")
        if product is not None or attribute is not None:
            raise InvalidInput("give either --csv or --product/--attribute, not both")
        excluded: dict[int, str] = {}
        for item in exclude or []:
            row, _, why = item.partition("=")
            if not row.strip().isdigit() or not why.strip():
                raise InvalidInput(
                    f"--exclude {item!r}: expected ROW=REASON, e.g. --exclude '7=pipette fault'"
                )
            excluded[int(row) - 2] = why.strip()
        data = read_column(csv, column, label=label)
        return analytics.series_from_column(data, lsl=lsl, usl=usl, exclude=excluded)
    if exclude:
        raise InvalidInput(
            "--exclude applies to a CSV file; a stored result is excluded with its reason "
            "by `v2v spc exclude RESULT_ID --reason …` (recorded in the audit trail)"
        )
    if product is None or attribute is None:
        raise InvalidInput("name the data: --product and --attribute, or --csv and --column")
    return analytics.series(
        _ready_app(), _who().actor, product=product, stage=stage, attribute=attribute, site=site
    )


def _title(s: Series) -> str:
    return s.label if s.product else s.attribute.name


def _chart_json(view: ChartView) -> dict[str, Any]:
    points = view.series.points
    return view.result.as_json() | {
        "baseline": view.baseline,
        "phase_ii_violations": view.phase_ii_violations,
        "labels": [str(x) for x in points["lot"].tolist()],
        "excluded": [
            {"point": i, "label": str(points["lot"].iloc[i]), "reason": points["excluded"].iloc[i]}
            for i in view.excluded
        ],
    }


@spc_app.command("chart")
def chart(
    product: Product = None,
    stage: StageOpt = "release",
    attribute: Attr = None,
    site: SiteOpt = None,
    csv: Csv = None,
    column: ColumnOpt = None,
    label: LabelOpt = None,
    kind: Annotated[
        str,
        typer.Option(
            "--chart",
            help="individuals, ewma or cusum; with --csv also xbar-r, xbar-s (--subgroup) and "
            "p, np, c, u (counts in --column, sample sizes in --sizes).",
        ),
    ] = "individuals",
    subgroup: Annotated[
        int | None, typer.Option(help="CSV, xbar-r/xbar-s: consecutive values per subgroup.")
    ] = None,
    sizes: Annotated[
        str | None, typer.Option(help="CSV, p/np/u: the column of sample sizes.")
    ] = None,
    baseline: Annotated[
        int | None,
        typer.Option(help="Points that set the limits (phase I); default 20 when > 25 points."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="CSV only: ROW=REASON, a row left out of the limits (repeatable)."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """A control chart with the Western Electric and Nelson run rules: the limits from the
    baseline (phase I) and every point judged against them (phase II)."""
    from vein2vein.services import analytics

    if kind in analytics.SUBGROUP_CHARTS + analytics.COUNT_CHARTS:
        _column_chart(csv, column, kind, subgroup, sizes, baseline, json_)
        return
    with _errors():
        s = _series(product, stage, attribute, site, csv, column, label, exclude=exclude)
        view = analytics.chart_of(s, chart=kind, baseline=baseline)
    if json_:
        print_json(to_jsonable(_chart_json(view)))
        return
    console.print(f"[bold]{escape(_title(s))}[/]: {view.result.chart} chart")
    labels = [str(x) for x in s.points["lot"].tolist()]
    _print_chart(view.result, view.baseline, labels)
    for i in view.excluded:
        console.print(f"  excluded {escape(labels[i])}: {escape(s.points['excluded'][i])}")


def _column_chart(
    csv: Path | None,
    column: str | None,
    kind: str,
    subgroup: int | None,
    sizes: str | None,
    baseline: int | None,
    json_: bool,
) -> None:
    from vein2vein.formats.table import read_column
    from vein2vein.services import analytics

    with _errors():
        if csv is None or column is None:
            raise InvalidInput(f"a {kind} chart is drawn from your CSV file: give --csv, --column")
        data = read_column(csv, column)
        size_column = read_column(csv, sizes) if sizes else None
        result, base = analytics.column_chart(
            data, chart=kind, subgroup=subgroup, sizes=size_column, baseline=baseline
        )
    if json_:
        print_json(to_jsonable(result.as_json() | {"baseline": base}))
        return
    console.print(f"[bold]{escape(column)}[/]: {result.chart} chart")
    unit = "subgroups" if kind in analytics.SUBGROUP_CHARTS else "samples"
    _print_chart(result, base, [f"{unit[:-1]} {i + 1}" for i in range(len(result.values))])


def _print_chart(r: ChartResult, baseline: int, labels: list[str]) -> None:
    import numpy as np

    from vein2vein.services import analytics

    same = bool(np.all(r.lcl == r.lcl[0]) and np.all(r.ucl == r.ucl[0]))
    limits = (
        f"center {r.center[0]:.4g}, LCL {r.lcl[0]:.4g}, UCL {r.ucl[0]:.4g}"
        if same
        else f"center {r.center[0]:.4g}; limits vary per point (last: {r.lcl[-1]:.4g} to "
        f"{r.ucl[-1]:.4g})"
    )
    console.print(f"{len(r.values)} points, limits from points 1-{baseline} (phase I); {limits}")
    grid = table("rule", "meaning", "times", "phase II", "last points", ids=("rule",),
                 title="run rules broken")  # fmt: skip
    phase_ii = analytics.phase_ii_counts(r, baseline)
    for rule, count in r.violations.counts().items():
        last = r.violations.points(rule)[-5:].tolist()
        description = next(v.description for v in r.violations if v.rule == rule)
        grid.add_row(rule, description, str(count), str(phase_ii.get(rule, 0)),
                     ", ".join(labels[i] for i in last))  # fmt: skip
    if r.violations:
        print_table(grid)
    else:
        console.print("no run rule broken: the process is in statistical control")


@spc_app.command("capability")
def capability_cmd(
    product: Product = None,
    stage: StageOpt = "release",
    attribute: Attr = None,
    site: SiteOpt = None,
    csv: Csv = None,
    column: ColumnOpt = None,
    lsl: Annotated[float | None, typer.Option(help="CSV: lower specification limit.")] = None,
    usl: Annotated[float | None, typer.Option(help="CSV: upper specification limit.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Cp, Cpk (within: MR̄/d2) and Pp, Ppk (overall SD) with 95 % confidence intervals
    against the specification's limits, and a warning when the data are not normal."""
    from vein2vein.services import analytics

    with _errors():
        if csv is None and (lsl is not None or usl is not None):
            raise InvalidInput("--lsl/--usl apply to a CSV file; the records use their spec")
        s = _series(product, stage, attribute, site, csv, column, None, lsl=lsl, usl=usl)
        c = analytics.capability_of_series(s).capability
    if json_:
        print_json(c.as_json())
        return
    console.print(
        f"[bold]{escape(_title(s))}[/]: n {c.n}, mean {c.mean:.4g}, "
        f"σ within {c.sigma_within:.4g}, σ overall {c.sigma_overall:.4g}, "
        f"LSL {c.lsl if c.lsl is not None else '—'}, USL {c.usl if c.usl is not None else '—'}"
    )
    grid = table("index", "estimate", "95 % CI", ids=("index",))
    for name, value in (("Cp", c.cp), ("Cpk", c.cpk), ("Pp", c.pp), ("Ppk", c.ppk)):
        if value is not None:
            grid.add_row(name, f"{value.estimate:.3f}", f"{value.low:.3f} – {value.high:.3f}")
    print_table(grid)
    for warning in c.warnings:
        console.print(f"[bold yellow]warning[/]: {escape(warning)}")


@spc_app.command("tolerance")
def tolerance(
    product: Product = None,
    stage: StageOpt = "release",
    attribute: Attr = None,
    site: SiteOpt = None,
    csv: Csv = None,
    column: ColumnOpt = None,
    coverage: Annotated[float, typer.Option(help="Share of the population covered.")] = 0.99,
    confidence: Annotated[float, typer.Option(help="Confidence of the statement.")] = 0.95,
    sides: Annotated[str, typer.Option(help="both, low or high.")] = "both",
    json_: JsonOpt = False,
) -> None:
    """Tolerance intervals: normal (exact two-sided or one-sided factor k) and
    distribution-free (order statistics), holding ``coverage`` with ``confidence``."""
    from vein2vein.analytics.capability import nonparametric_tolerance, tolerance_interval

    with _errors():
        if sides not in ("both", "low", "high"):
            raise InvalidInput(f"--sides {sides!r}: expected both, low or high")
        s = _series(product, stage, attribute, site, csv, column, None)
        values = s.values[(s.points["excluded"] == "").to_numpy()]
        lower, upper, k = tolerance_interval(
            values, coverage=coverage, confidence=confidence, sides=2 if sides == "both" else 1
        )
        lower = lower if sides in ("both", "low") else None
        upper = upper if sides in ("both", "high") else None
        try:
            wanted = ("low", "high") if sides == "both" else (sides,)
            free = nonparametric_tolerance(
                values, coverage=coverage, confidence=confidence, sides=wanted
            )
            nonparametric: dict[str, Any] = {
                "lower": free.lower, "upper": free.upper, "confidence": free.confidence,
                "ranks": list(free.ranks),
            }  # fmt: skip
        except InvalidInput as exc:
            nonparametric = {"error": str(exc)}
    out = {
        "n": len(values), "mean": float(values.mean()), "sd": float(values.std(ddof=1)),
        "coverage": coverage, "confidence": confidence, "sides": sides, "k": k,
        "lower": lower, "upper": upper, "nonparametric": nonparametric,
    }  # fmt: skip
    if json_:
        print_json(out)
        return
    console.print(
        f"[bold]{escape(_title(s))}[/]: n {out['n']}, mean {out['mean']:.4g}, "
        f"SD {out['sd']:.4g}; {coverage:.0%} of the population with {confidence:.0%} confidence"
    )
    grid = table("method", "lower", "upper", "factor / confidence", ids=("method",))
    grid.add_row("normal", _num(lower), _num(upper), f"k = {k:.4f}")
    if "error" in nonparametric:
        grid.add_row("distribution-free", "—", "—", escape(nonparametric["error"]))
    else:
        grid.add_row("distribution-free", _num(nonparametric["lower"]),
                     _num(nonparametric["upper"]),
                     f"achieved {nonparametric['confidence']:.3f}")  # fmt: skip
    print_table(grid)


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


@spc_app.command("signals")
def signals(
    product: Annotated[str, typer.Option(help="Product, e.g. CART-CD19.")],
    json_: JsonOpt = False,
) -> None:
    """Charts (per stage, attribute and manufacturing site) whose monitored points break a
    Western Electric rule: a shift going on now first."""
    from vein2vein.services import analytics

    with _errors():
        found = analytics.signals(_ready_app(), _who().actor, product)
    if json_:
        print_json(to_jsonable(found))
        return
    grid = table("stage", "attribute", "site", "points", "rules broken (phase II)", "first",
                 "recent", ids=("attribute", "site"), title=f"signals of {product}")  # fmt: skip
    for f in found:
        rules = ", ".join(f"{rule} ×{n}" for rule, n in f.rules.items())
        grid.add_row(f.stage, f.attribute, f.site, str(f.points), rules,
                     f"{f.first_lot} {f.first_at:%Y-%m-%d}", str(f.recent))  # fmt: skip
    if found:
        print_table(grid)
        console.print("recent: points among the last 15 that take part in a violation")
    else:
        console.print("no chart breaks a run rule")


@spc_app.command("exclude")
def exclude_cmd(
    result_id: Annotated[int, typer.Argument(help="The result's number (v2v qc show LOT).")],
    reason: Annotated[str, typer.Option(help="The assignable cause, recorded with it.")],
) -> None:
    """Leave a stored result out of its charts' limits (phase I), with the reason: a known
    special cause. QA of the result's plant; audited. The point stays on the chart and is
    judged like any other; capability and comparability count it (`v2v spc reinstate`
    puts it back, with a reason)."""
    from vein2vein.services import analytics

    with _errors():
        analytics.exclude_from_baseline(_ready_app(), _who().actor, result_id, reason=reason)
    console.print(f"result {result_id} left out of its charts' limits: {escape(reason)}")


@spc_app.command("reinstate")
def reinstate_cmd(
    result_id: Annotated[int, typer.Argument(help="The excluded result's number.")],
    reason: Annotated[str, typer.Option(help="Why it belongs in the limits after all.")],
) -> None:
    """Put an excluded result back into its charts' limits, with the reason (the exclusion
    and its reason stay on record). QA of the result's plant; audited."""
    from vein2vein.services import analytics

    with _errors():
        analytics.reinstate_in_baseline(_ready_app(), _who().actor, result_id, reason=reason)
    console.print(f"result {result_id} is back in its charts' limits: {escape(reason)}")


@spc_app.command("outcome")
def outcome(
    product: Annotated[str, typer.Option(help="Product, e.g. CART-CD19.")],
    process: Annotated[str | None, typer.Option(help="Only batches of this process.")] = None,
    kind: Annotated[
        str, typer.Option("--outcome", help="failed_dose or log_fold_expansion.")
    ] = "failed_dose",
    criterion: Annotated[
        str | None, typer.Option(help="Starting-material column whose tightening is shown.")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """What in the starting material predicts a batch's outcome (statsmodels), and what a
    stricter acceptance criterion would have done to the history."""
    from vein2vein.services import comparability

    with _errors():
        study = comparability.outcome_study(
            _ready_app(), _who().actor, product=product, process=process, outcome=kind,
            criterion=criterion,
        )  # fmt: skip
    m = study.model
    if json_:
        print_json({
            "model": m.as_json(), "criterion": study.criterion, "direction": study.direction,
            "tightening": [r.as_json() for r in study.tightening],
            "batches": study.batches, "failures": study.failures,
        })  # fmt: skip
        return
    fit = f"pseudo R² {m.pseudo_r2:.3f}" if m.pseudo_r2 is not None else f"R² {m.r2:.3f}"
    console.print(
        f"[bold]{escape(kind)}[/] of {study.batches} batches"
        f"{' (' + process + ')' if process else ''}: {m.kind} model, n {m.n} "
        f"({m.n_dropped} dropped for a missing value), {fit}; failed to reach dose: "
        f"{study.failures}"
    )
    ratio = "odds ratio" if m.kind == "logistic" else "—"
    grid = table("term", "coef", "95 % CI", "p", ratio, "effect of 1 SD", ids=("term",))
    for t in m.terms:
        grid.add_row(
            t.name, f"{t.coef:.4g}", f"{t.ci_low:.4g} – {t.ci_high:.4g}", f"{t.p_value:.3g}",
            "" if t.odds_ratio is None else f"{t.odds_ratio:.3g}",
            "" if t.standardized is None else f"{t.standardized:+.3f}",
        )  # fmt: skip
    print_table(grid)
    console.print(f"what matters (p < 0.05, largest effect first): {', '.join(m.important)}")
    for warning in m.warnings:
        console.print(f"[bold yellow]warning[/]: {escape(warning)}")
    word = "minimum" if study.direction == "min" else "maximum"
    grid = table(f"new {word} of {study.criterion}", "turned away", "failures avoided",
                 "good doses lost", "failures left", "failure rate accepted",
                 ids=(f"new {word} of {study.criterion}",))  # fmt: skip
    for r in study.tightening:
        rate = "—" if r.failure_rate_accepted is None else f"{r.failure_rate_accepted:.1%}"
        grid.add_row(f"{r.threshold:g}", str(r.turned_away), str(r.failures_avoided),
                     str(r.successes_turned_away), str(r.failures_remaining), rate)  # fmt: skip
    print_table(grid)


# -- comparability ---------------------------------------------------------------------


@compare_app.command("tost")
def tost_cmd(
    reference: Annotated[str, typer.Option(help="The reference group (a site, a process).")],
    test: Annotated[str, typer.Option(help="The group compared with it.")],
    product: Product = None,
    stage: StageOpt = "release",
    attribute: Attr = None,
    group: Annotated[
        str | None, typer.Option(help="Records: site or process. CSV: the group column.")
    ] = None,
    csv: Csv = None,
    column: ColumnOpt = None,
    margin: Annotated[
        float | None, typer.Option(help="Equivalence margin, in the attribute's unit.")
    ] = None,
    margin_sd: Annotated[
        float, typer.Option(help="Records: margin as a multiple of the reference SD.")
    ] = 1.5,
    alpha: Annotated[float, typer.Option(help="Level of each one-sided test.")] = 0.05,
    json_: JsonOpt = False,
) -> None:
    """TOST: two one-sided Welch t-tests that the difference of means lies within ±margin."""
    import numpy as np

    from vein2vein.analytics.comparability import tost
    from vein2vein.formats.table import read_column
    from vein2vein.services import comparability

    with _errors():
        if csv is not None:
            if column is None or group is None:
                raise InvalidInput("--csv needs --column (the numbers) and --group (the groups)")
            if margin is None:
                raise InvalidInput("--csv needs --margin: state the equivalence margin")
            data = read_column(csv, column, group=group)
            values = np.asarray(data.values)
            groups = np.asarray(data.groups)
            for name in (reference, test):
                if name not in set(data.groups):
                    raise InvalidInput(
                        f"{csv}: no row with {group} = {name!r}; the groups are "
                        f"{', '.join(sorted(set(data.groups)))}"
                    )
            result = tost(
                values[groups == reference], values[groups == test], margin=margin, alpha=alpha
            )
            basis = "given"
        else:
            if product is None or attribute is None:
                raise InvalidInput("name the data: --product and --attribute, or --csv")
            found = comparability.compare_groups(
                _ready_app(), _who().actor, product=product, reference=reference, test=test,
                group=group or "site", stage=stage, attributes=[attribute], margin=margin,
                margin_sd=margin_sd, alpha=alpha,
            )  # fmt: skip
            if not found.rows:
                raise InvalidInput(f"{attribute}: {found.skipped[0][1]}")
            result, basis = found.rows[0].tost, found.rows[0].margin_basis
    if json_:
        print_json(result.as_json() | {"margin_basis": basis})
        return
    verdict = (
        "[bold green]equivalent[/]" if result.equivalent else "[bold red]not shown equivalent[/]"
    )
    console.print(
        f"{escape(test)} − {escape(reference)}: difference {result.difference:.4g} "
        f"(n {result.n_test} and {result.n_reference}), {1 - 2 * alpha:.0%} CI "
        f"{result.ci_low:.4g} to {result.ci_high:.4g}; margin ±{result.margin:.4g} ({basis}); "
        f"p = {result.p_value:.3g}: {verdict}"
    )


@compare_app.command("groups")
def compare_groups_cmd(
    product: Annotated[str, typer.Option(help="Product, e.g. CART-CD19.")],
    reference: Annotated[str, typer.Option(help="The reference site or process.")],
    test: Annotated[str, typer.Option(help="The site or process compared with it.")],
    group: Annotated[str, typer.Option(help="site or process.")] = "site",
    stage: StageOpt = "release",
    margin_sd: Annotated[
        float, typer.Option(help="Margin as a multiple of the reference SD.")
    ] = 1.5,
    since: Annotated[
        datetime | None,
        typer.Option(
            help="Only results tested since then (UTC), e.g. 2026-06-01.", formats=["%Y-%m-%d"]
        ),
    ] = None,
    pdf: Annotated[Path | None, typer.Option(help="Also write the report as a PDF file.")] = None,
    json_: JsonOpt = False,
) -> None:
    """The comparability report: per attribute, TOST with its margin and the quality range
    (reference mean ± 3 SD), and the conclusion."""
    from vein2vein.services import comparability

    with _errors():
        app, who = _ready_app(), _who().actor
        found = comparability.compare_groups(
            app, who, product=product, reference=reference, test=test,
            group=group, stage=stage, margin_sd=margin_sd,
            since=since.replace(tzinfo=UTC) if since is not None else None,
        )  # fmt: skip
        if pdf is not None:
            from vein2vein.services.comparability_pdf import comparison_pdf

            pdf.write_bytes(comparison_pdf(found, by=who, at=app.clock.now()))
    if json_:
        print_json({
            "product": found.product, "stage": found.stage, "group": found.group,
            "reference": found.reference, "test": found.test,
            "equivalent": found.equivalent,
            "attributes": [r.as_json() for r in found.rows],
            "skipped": [{"attribute": a, "reason": why} for a, why in found.skipped],
            "out_of_specification": {
                a: {"reference": ref, "test": tst} for a, (ref, tst) in found.out_of_spec.items()
            },
        })  # fmt: skip
        return
    if pdf is not None:
        console.print(f"report written to {pdf}")
    grid = table("attribute", f"n {reference}", f"n {test}", "difference (90 % CI)", "margin",
                 "p", "quality range", "conclusion", ids=("attribute",),
                 title=f"{test} against {reference} ({found.stage}, {product})")  # fmt: skip
    for r in found.rows:
        t, q = r.tost, r.quality_range
        style = "green" if r.conclusion == "equivalent" else "bold red"
        grid.add_row(
            r.attribute, str(t.n_reference), str(t.n_test),
            f"{t.difference:+.3g} ({t.ci_low:+.3g}, {t.ci_high:+.3g})",
            f"±{t.margin:.3g} ({r.margin_basis})", f"{t.p_value:.3g}",
            f"{q.inside}/{q.n_test} in [{q.low:.3g}, {q.high:.3g}]",
            f"[{style}]{r.conclusion}[/]",
        )  # fmt: skip
    print_table(grid)
    if found.out_of_spec:
        console.print(escape(found.out_of_spec_note()))
    for attribute, why in found.skipped:
        console.print(f"skipped {attribute}: {escape(why)}")
    for r in found.rows:
        if r.conclusion != "equivalent":
            console.print(f"[bold]{r.attribute}[/]: {escape(r.reason)}")


# -- specifications from history -------------------------------------------------------


@spec_app.command("propose")
def propose(
    product: Annotated[str, typer.Option(help="Product, e.g. CART-CD19.")],
    attribute: Annotated[str, typer.Option(help="Attribute, e.g. viability.")],
    stage: StageOpt = "release",
    coverage: Annotated[float, typer.Option(help="Share of doses the limits hold.")] = 0.99,
    confidence: Annotated[float, typer.Option(help="Confidence of that statement.")] = 0.95,
    sides: Annotated[
        str | None, typer.Option(help="both, low or high (default: as the specification).")
    ] = None,
    save: Annotated[
        str | None,
        typer.Option(help="Save a proposal as a draft spec: 'normal' or 'nonparametric'."),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="With --save: why the new limits.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Limits for an attribute from the released batches (normal and distribution-free
    tolerance intervals), how many past batches each would have failed, and — with
    ``--save`` — the chosen one saved as a draft of the next specification version, to be
    approved by QA through change control."""
    from vein2vein.services import spec_proposals

    with _errors():
        app, who = _ready_app(), _who().actor
        found = spec_proposals.propose(
            app, who, product=product, stage=stage, attribute=attribute, coverage=coverage,
            confidence=confidence, sides=sides,
        )  # fmt: skip
        saved = None
        if save is not None:
            methods = {"normal": "normal tolerance", "nonparametric": "nonparametric"}
            if save not in methods:
                raise InvalidInput(f"--save {save!r}: expected normal or nonparametric")
            chosen = next((p for p in found.proposals if p.method == methods[save]), None)
            if chosen is None:
                raise InvalidInput(f"--save {save}: no such proposal ({'; '.join(found.skipped)})")
            saved = spec_proposals.save_proposal(
                app, who, product=product, stage=stage, attribute=attribute, low=chosen.low,
                high=chosen.high, reason=reason or "",
            )  # fmt: skip
    if json_:
        out = found.as_json()
        if saved is not None:
            out["saved"] = {"code": saved.code, "version": saved.version, "status": saved.status}
        print_json(out)
        return
    a = found.attribute
    console.print(
        f"[bold]{escape(a.title)}[/] ({found.stage}, {product}, {found.spec_code} "
        f"v{found.spec_version}): {len(found.values)} released batches, mean "
        f"{found.mean:.4g}, SD {found.sd:.4g}; limits holding {coverage:.0%} of doses with "
        f"{confidence:.0%} confidence"
    )
    grid = table("limits", "low", "high", "k / confidence", "past batches failed",
                 ids=("limits",))  # fmt: skip
    grid.add_row("current", _num(a.limits.low), _num(a.limits.high), "",
                 str(len(found.current_would_fail)))  # fmt: skip
    for p in found.proposals:
        extra = f"k = {p.k:.4f}" if p.k is not None else f"achieved {p.confidence:.3f}"
        failed = str(len(p.would_fail))
        if p.would_fail:
            failed += f" ({', '.join(p.would_fail[:4])}{', …' if len(p.would_fail) > 4 else ''})"
        grid.add_row(p.method, _num(p.low), _num(p.high), extra, failed)
    print_table(grid)
    for why in found.skipped:
        console.print(f"not proposed: {escape(why)}")
    for warning in found.warnings:
        console.print(f"[bold yellow]warning[/]: {escape(warning)}")
    if saved is not None:
        console.print(
            f"saved as {saved.code} v{saved.version} ({saved.status}); QA approves it: "
            f"v2v qc spec approve {saved.code} {saved.version}"
        )
