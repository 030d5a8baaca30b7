"""Analytics pages (DESIGN §8): where to look first (the signals), a control chart with its
run rules and baseline, capability against the specification, the comparability of two
sites or processes (and its report as a PDF), and what in the starting material predicts
the outcome.

The statistics come from services/analytics.py and services/comparability.py; these routes
parse the choices, call them and draw the answer. A choice that cannot be charted (an
attribute without numbers, a site without results) comes back as the page with its
selectors and a red box saying why, so another choice is one click away. The one form, the
exclusion of a point from a chart's baseline, is a POST that comes back to the chart
(POST-redirect-GET), or to the chart with the refusal beside the form and what was typed kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from itertools import combinations
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vein2vein.analytics.control_charts import RULES
from vein2vein.domain.errors import InvalidInput, NotFound, PermissionDenied, V2VError
from vein2vein.domain.patient import SiteKind
from vein2vein.domain.people import Actor
from vein2vein.domain.permissions import rule_for
from vein2vein.services import analytics as svc
from vein2vein.services import comparability, mbr, queries, specs
from vein2vein.services.app import App
from vein2vein.services.auth import Identity
from vein2vein.services.authorise import permitted
from vein2vein.web import _analytics_figures as fig
from vein2vein.web._common import AppDep
from vein2vein.web.batches import _number
from vein2vein.web.errors import Problem, problem_of, render_with_problem
from vein2vein.web.session import CsrfDep, IdentityDep

__all__ = ["router"]

router = APIRouter()

FormText = Annotated[str, Form()]

RULE_SETS = {
    "we": ("Western Electric (WE1-4)", svc.WE_RULES),
    "all": ("Western Electric + Nelson (more alarms)", tuple(RULES)),
}
CHART_NAMES = {
    "individuals": "Individuals",
    "ewma": "EWMA (small drifts)",
    "cusum": "CUSUM (sustained shifts)",
}
STAGE_NAMES = {
    "starting-material": "Starting material (apheresis)",
    "in-process": "In-process",
    "release": "Release",
}
ONGOING = svc.ONGOING  # a shift going on now (services/analytics.py)
# What a predictor of the outcome study is, when it is not a starting-material result.
PATIENT = {"age": ("Patient's age", "years"), "weight_kg": ("Patient's weight", "kg")}


# -- what there is to choose from ----------------------------------------------------------


def _stages(app: App, actor: Actor) -> dict[str, list[str]]:
    """Product → the stages with an effective specification (in the order of a batch)."""
    found: dict[str, set[str]] = {}
    for v in specs.list_specs(app, actor):
        if v.status == "EFFECTIVE":
            found.setdefault(v.product, set()).add(v.stage)
    return {p: [s for s in STAGE_NAMES if s in stages] for p, stages in sorted(found.items())}


def _product(app: App, actor: Actor, product: str) -> tuple[str, dict[str, list[str]]]:
    stages = _stages(app, actor)
    if not stages:
        raise NotFound("no product has an effective specification yet: nothing to chart")
    chosen = product.strip().upper() or next(iter(stages))
    if chosen not in stages:
        raise InvalidInput(
            f"product {chosen!r}: no effective specification; expected one of {', '.join(stages)}"
        )
    return chosen, stages


def _sites(app: App) -> list[str]:
    return sorted(s.code for s in queries.list_sites(app) if SiteKind(s.kind).manufactures)


def _processes(app: App, actor: Actor, product: str) -> list[str]:
    try:
        return sorted({m.process for m in mbr.list_mbrs(app, actor) if m.product == product})
    except PermissionDenied:
        return []


def _rules(code: str) -> tuple[str, ...]:
    if code not in RULE_SETS:
        raise InvalidInput(f"rules {code!r}: expected one of {', '.join(RULE_SETS)}")
    return tuple(RULE_SETS[code][1])


def _stage_names(stages: list[str]) -> dict[str, str]:
    return {s: STAGE_NAMES[s] for s in stages}


@dataclass(frozen=True, slots=True)
class Selection:
    """What a chart or capability page shows, as in its address."""

    product: str
    stage: str = "release"
    attribute: str = ""
    site: str = ""
    chart: str = "individuals"
    baseline: str = ""
    rules: str = "we"

    def query(self, **change: str) -> dict[str, str]:
        return {k: v for k, v in asdict(replace(self, **change)).items() if v}


def _url(request: Request, name: str, params: Mapping[str, str]) -> str:
    return str(request.url_for(name).include_query_params(**params))


# -- where to look first -------------------------------------------------------------------


@router.get("/analytics", response_class=HTMLResponse, name="analytics_page_index")
def index(request: Request, app: AppDep, identity: IdentityDep, product: str = "") -> HTMLResponse:
    actor = identity.actor
    chosen, stages = _product(app, actor, product)
    found = svc.signals(app, actor, chosen)
    sites = _sites(app)
    processes = _processes(app, actor, chosen)
    context: dict[str, object] = {
        "product": chosen,
        "products": list(stages),
        "stages": _stage_names(stages[chosen]),
        "signals": found,
        "recent": svc.RECENT,
        "baseline": svc.DEFAULT_BASELINE,
        "ongoing_from": ONGOING,
        "rules": RULES,
        "chart_url": lambda s: _url(
            request,
            "analytics_page_chart",
            Selection(chosen, s.stage, s.attribute, s.site).query(),
        ),
        "site_pairs": list(combinations(sites, 2)),
        "process_pairs": list(combinations(processes, 2)),
        "sites": sites,
        "processes": processes,
        "attributes": {
            stage: svc.numeric_attributes(app, actor, chosen, stage) for stage in stages[chosen]
        },
        "page": "analytics",
    }
    return render_with_problem(request, "analytics/index.html", context, None)


# -- a control chart -------------------------------------------------------------------------


def _chart(
    request: Request,
    app: App,
    identity: Identity,
    selection: Selection,
    *,
    notice: str | None = None,
    problem: Problem | None = None,
    failed: str = "",
    kept: dict[str, str] | None = None,
) -> HTMLResponse:
    actor = identity.actor
    product, stages = _product(app, actor, selection.product)
    if selection.stage not in stages[product]:
        raise InvalidInput(
            f"stage {selection.stage!r}: {product} has effective specifications for "
            f"{', '.join(stages[product])}"
        )
    attributes = svc.numeric_attributes(app, actor, product, selection.stage)
    selection = replace(
        selection,
        product=product,
        attribute=selection.attribute or (attributes[0].name if attributes else ""),
        site=selection.site.strip().upper(),
    )
    view = None
    try:
        baseline = _number(selection.baseline, "baseline", int)
        view = svc.control_chart(
            app, actor, product=product, stage=selection.stage, attribute=selection.attribute,
            site=selection.site or None, chart=selection.chart,
            baseline=int(baseline) if baseline is not None else None,
            rules=_rules(selection.rules),
        )  # fmt: skip
    except V2VError as error:
        problem, failed = problem_of(error), "select"
    context: dict[str, object] = {
        "s": selection,
        "view": view,
        "stages": _stage_names(stages[product]),
        "attributes": attributes,
        "sites": _sites(app),
        "charts": CHART_NAMES,
        "rule_sets": {code: name for code, (name, _) in RULE_SETS.items()},
        "rules": RULES,
        "notice": notice,
        "failed": failed,
        "kept": kept or {},
        "csrf_token": identity.credential.csrf_token,
        "may_exclude": permitted(actor, rule_for("spc.exclude")),
        "capability_url": _url(
            request,
            "analytics_page_capability",
            Selection(product, selection.stage, selection.attribute, selection.site).query(),
        ),
        "page": "analytics",
    }
    if view is not None:
        context |= _chart_context(view)
    return render_with_problem(request, "analytics/chart.html", context, problem)


@dataclass(slots=True)
class RuleRow:
    """One rule broken on a chart: how often, how often among the monitored batches, and
    the batches involved."""

    rule: str
    description: str
    times: int
    monitored: int
    lots: list[str]


def _chart_context(view: svc.ChartView) -> dict[str, object]:
    """The chart's figure, its violations one row per rule, the latest batches' share in
    them, and the points that may still be left out of the baseline."""
    points = view.series.points
    lots = points["lot"].tolist()
    result = view.result
    by_rule: list[RuleRow] = []
    seen: dict[tuple[int, tuple[int, ...]], RuleRow] = {}
    for rule, times in result.violations.counts().items():
        involved = tuple(result.violations.points(rule).tolist())
        twin = seen.get((times, involved))
        if twin is not None:  # the same test under its other name (WE2 is N5)
            twin.rule = f"{twin.rule} · {rule}"
            continue
        monitored = sum(
            1 for v in result.violations if v.rule == rule and v.points[-1] >= view.baseline
        )
        row = RuleRow(rule, RULES[rule][1] if rule in RULES else rule, times, monitored,
                      [lots[i] for i in involved])  # fmt: skip
        seen[(times, involved)] = row
        by_rule.append(row)
    by_rule.sort(key=lambda r: (-r.monitored, r.rule))
    flagged = view.flagged()
    n = len(points)
    signal = fig.monitored_points(view)
    # The run of signalling batches that ends with the latest one involved: where the
    # change going on now started.
    run_end = max(signal, default=-1)
    run_start = run_end
    while run_start - 1 in signal:
        run_start -= 1
    recent = min(svc.RECENT, n)
    choices = [
        {
            "result_id": int(row.result_id),
            "label": f"Batch {i + 1}{' (baseline)' if i < view.baseline else ''}: {row.lot}, "
            f"{row.tested_at:%Y-%m-%d}, {fig.fmt(row.value)} {view.series.attribute.unit}",
        }
        for i, row in enumerate(points.itertuples())
        if not row.excluded
    ]
    excluded = [
        {"index": i + 1, "lot": lots[i], "value": fig.fmt(points["value"].iloc[i]),
         "reason": points["excluded"].iloc[i]}
        for i in view.excluded
    ]  # fmt: skip
    return {
        "figure": fig.chart_figure(view),
        "by_rule": by_rule,
        "in_recent": sum(1 for i in flagged if i >= n - recent),
        "recent": recent,
        "monitored_flags": sum(view.phase_ii_violations.values()),
        "choices": choices,
        "excluded": excluded,
        "center": fig.fmt(float(view.result.center[-1])),
        "lcl": fig.fmt(float(view.result.lcl[-1])),
        "ucl": fig.fmt(float(view.result.ucl[-1])),
        "run": (
            {
                "start": run_start + 1,
                "end": run_end + 1,
                "lot": lots[run_start],
                "date": f"{points['tested_at'].iloc[run_start]:%Y-%m-%d}",
            }
            if signal
            else None
        ),
        "ongoing_from": ONGOING,
    }


@router.get("/analytics/chart", response_class=HTMLResponse, name="analytics_page_chart")
def chart_page(
    request: Request, app: AppDep, identity: IdentityDep, product: str = "",
    stage: str = "release", attribute: str = "", site: str = "", chart: str = "individuals",
    baseline: str = "", rules: str = "we", done: str = "",
) -> HTMLResponse:  # fmt: skip
    selection = Selection(product, stage, attribute, site, chart, baseline, rules)
    return _chart(request, app, identity, selection, notice=done or None)


@router.post("/analytics/chart/exclude", name="analytics_page_exclude")
def exclude_point(
    request: Request, app: AppDep, identity: CsrfDep, product: FormText = "",
    stage: FormText = "release", attribute: FormText = "", site: FormText = "",
    chart: FormText = "individuals", baseline: FormText = "", rules: FormText = "we",
    result_id: FormText = "", reason: FormText = "",
) -> Response:  # fmt: skip
    """Leave one point of the chart out of its baseline, with the reason."""
    selection = Selection(product, stage, attribute, site, chart, baseline, rules)
    try:
        chosen = _number(result_id, "result", int)
        if chosen is None:
            raise InvalidInput("choose the batch to leave out of the baseline")
        series = svc.series(
            app, identity.actor, product=product, stage=stage, attribute=attribute,
            site=site or None,
        )  # fmt: skip
        row = series.points[series.points["result_id"] == int(chosen)]
        svc.exclude_from_baseline(app, identity.actor, int(chosen), reason=reason,
                                  chart=(product, stage, attribute))  # fmt: skip
    except V2VError as error:
        kept = {"result_id": result_id, "reason": reason}
        return _chart(request, app, identity, selection, problem=problem_of(error),
                      failed="exclude", kept=kept)  # fmt: skip
    lot = str(row["lot"].iloc[0]) if not row.empty else f"result {int(chosen)}"
    message = (
        f"Batch {lot} (result {int(chosen)}) is left out of the limits: {reason.strip()}. "
        "The limits are now set without it; the point stays on the chart and is judged."
    )
    url = request.url_for("analytics_page_chart").include_query_params(
        **selection.query(), done=message
    )
    return RedirectResponse(url, status_code=303)


# -- capability --------------------------------------------------------------------------------


@router.get("/analytics/capability", response_class=HTMLResponse,
            name="analytics_page_capability")  # fmt: skip
def capability_page(
    request: Request, app: AppDep, identity: IdentityDep, product: str = "",
    stage: str = "release", attribute: str = "", site: str = "",
) -> HTMLResponse:  # fmt: skip
    actor = identity.actor
    chosen, stages = _product(app, actor, product)
    if stage not in stages[chosen]:
        raise InvalidInput(
            f"stage {stage!r}: {chosen} has effective specifications for "
            f"{', '.join(stages[chosen])}"
        )
    attributes = svc.numeric_attributes(app, actor, chosen, stage)
    selection = Selection(
        chosen, stage, attribute or (attributes[0].name if attributes else ""),
        site.strip().upper(),
    )  # fmt: skip
    view, problem = None, None
    try:
        view = svc.capability_of(
            app, actor, product=chosen, stage=stage, attribute=selection.attribute,
            site=selection.site or None,
        )  # fmt: skip
    except V2VError as error:
        problem = problem_of(error)
    context: dict[str, object] = {
        "s": selection,
        "view": view,
        "figure": fig.capability_figure(view) if view else None,
        "stages": _stage_names(stages[chosen]),
        "attributes": attributes,
        "sites": _sites(app),
        "fmt": fig.fmt,
        "p_value": fig.p_value,
        "outside": _out_of_specification(view) if view else 0,
        "chart_url": _url(request, "analytics_page_chart", selection.query()),
        "failed": "select" if problem else "",
        "page": "analytics",
    }
    return render_with_problem(request, "analytics/capability.html", context, problem)


def _out_of_specification(view: svc.CapabilityView) -> int:
    """How many of the batches the indices were computed on were judged out of
    specification when their result was entered."""
    points = view.series.points
    kept = points[points["excluded"] == ""]
    return int((kept["conformance"] == "oos").sum())


# -- comparability -----------------------------------------------------------------------------


def _compare_choices(app: App, actor: Actor, product: str, group: str) -> list[str]:
    return _processes(app, actor, product) if group == "process" else _sites(app)


@router.get("/analytics/compare", response_class=HTMLResponse, name="analytics_page_compare")
def compare_page(
    request: Request, app: AppDep, identity: IdentityDep, product: str = "",
    group: str = "site", reference: str = "", test: str = "", stage: str = "release",
) -> HTMLResponse:  # fmt: skip
    actor = identity.actor
    chosen, stages = _product(app, actor, product)
    choices = _compare_choices(app, actor, chosen, group)
    reference = reference.strip() or (choices[0] if choices else "")
    test = test.strip() or (choices[1] if len(choices) > 1 else "")
    query = {"product": chosen, "group": group, "reference": reference, "test": test,
             "stage": stage}  # fmt: skip
    result, problem = None, None
    try:
        result = comparability.compare_groups(
            app, actor, product=chosen, reference=reference, test=test, group=group, stage=stage
        )
    except V2VError as error:
        problem = problem_of(error)
    context: dict[str, object] = {
        "q": query,
        "c": result,
        "stages": _stage_names(stages[chosen]),
        "choices": choices,
        "fmt": fig.fmt,
        "p_value": fig.p_value,
        "pdf_url": _url(request, "analytics_page_compare_pdf", query),
        "failed": "select" if problem else "",
        "page": "analytics",
    }
    if result is not None and result.rows:
        titles = {name: a.title for name, a in result.attributes.items()}
        context |= {
            "figure": fig.comparison_figure(result),
            "equivalence": fig.equivalence_figure(result.rows, titles),
            "not_shown": [titles[r.attribute] for r in result.rows if r.conclusion != "equivalent"],
            "confidence": round(100 * (1 - 2 * result.rows[0].tost.alpha)),
        }
    return render_with_problem(request, "analytics/compare.html", context, problem)


@router.get("/analytics/compare.pdf", name="analytics_page_compare_pdf")
def compare_pdf(
    app: AppDep, identity: IdentityDep, product: str = "", group: str = "site",
    reference: str = "", test: str = "", stage: str = "release",
) -> Response:  # fmt: skip
    """The comparability report (PDF) of the comparison on the page."""
    from vein2vein.services import comparability_pdf

    chosen, _ = _product(app, identity.actor, product)
    result = comparability.compare_groups(
        app, identity.actor, product=chosen, reference=reference, test=test, group=group,
        stage=stage,
    )  # fmt: skip
    pdf = comparability_pdf.comparison_pdf(result, by=identity.actor, at=app.clock.now())
    name = f"comparability-{chosen}-{stage}-{test}-vs-{reference}.pdf".lower()
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


# -- starting material → outcome -------------------------------------------------------------


def _predictor_names(app: App, actor: Actor, product: str) -> dict[str, tuple[str, str]]:
    """A predictor's title and unit: the starting-material specification's, or the
    patient's."""
    names = dict(PATIENT)
    for v in specs.list_specs(app, actor):
        if v.product == product and v.stage == "starting-material" and v.status == "EFFECTIVE":
            _, spec = specs.show_spec(app, actor, v.code, v.version)
            for a in spec.attributes:
                names[f"sm_{a.name}"] = (f"Apheresis {fig.in_sentence(a.title)}", a.unit)
    return names


@router.get("/analytics/outcome", response_class=HTMLResponse, name="analytics_page_outcome")
def outcome_page(
    request: Request, app: AppDep, identity: IdentityDep, product: str = "",
    process: str = "", outcome: str = "failed_dose", criterion: str = "",
) -> HTMLResponse:  # fmt: skip
    actor = identity.actor
    chosen, _ = _product(app, actor, product)
    processes = _processes(app, actor, chosen)
    names = _predictor_names(app, actor, chosen)
    study, problem = None, None
    try:
        study = comparability.outcome_study(
            app, actor, product=chosen, process=process or None, outcome=outcome,
            criterion=criterion or None,
        )  # fmt: skip
    except V2VError as error:
        problem = problem_of(error)
    context: dict[str, object] = {
        "q": {"product": chosen, "process": process, "outcome": outcome,
              "criterion": criterion},
        "study": study,
        "processes": processes,
        "outcomes": comparability.OUTCOMES,
        "predictors": [p for p in comparability.PREDICTORS if p.startswith("sm_")],
        "names": names,
        "fmt": fig.fmt,
        "p_value": fig.p_value,
        "in_sentence": fig.in_sentence,
        "failed": "select" if problem else "",
        "page": "analytics",
    }  # fmt: skip
    if study is not None:
        title, unit = names.get(study.criterion, (study.criterion, ""))
        context |= {
            "title": title,
            "unit": unit,
            "figure": fig.outcome_figure(study, title, unit),
            "tightening": fig.tightening_figure(study, title, unit),
            "terms": _terms(study, names),
            "failure_rate": 100 * study.failures / study.batches if study.batches else 0.0,
        }
    return render_with_problem(request, "analytics/outcome.html", context, problem)


def _terms(study: comparability.OutcomeStudy, names: dict[str, tuple[str, str]]) -> list[Term]:
    """The model's predictors as the page shows them: the effect per unit and per typical
    (one-SD) difference, as odds ratios for the logistic model."""
    logistic = study.model.kind == "logistic"
    rows = []
    for t in study.model.terms:
        if t.name not in study.model.predictors:
            continue
        title, unit = names.get(t.name, (t.name, ""))
        if t.name.startswith(comparability.PROCESS_TERM):  # the process, as a 0/1 term
            title = f"Made by {t.name.removeprefix(comparability.PROCESS_TERM)}"
        per_sd = t.standardized or 0.0
        rows.append(
            Term(
                name=t.name,
                title=title,
                unit=unit,
                effect=math.exp(t.coef) if logistic else t.coef,
                low=math.exp(t.ci_low) if logistic else t.ci_low,
                high=math.exp(t.ci_high) if logistic else t.ci_high,
                per_sd=math.exp(per_sd) if logistic else per_sd,
                sd=per_sd / t.coef if t.coef else 0.0,
                p_value=t.p_value,
                matters=t.name in study.model.important,
                # linear model of ln(fold expansion): a typical difference multiplies it by
                # e^per_sd, a rise of e^b - 1 or a fall of 1 - e^b
                change_percent=100 * abs(math.exp(per_sd) - 1),
            )
        )
    order = {name: i for i, name in enumerate(study.model.important)}
    return sorted(rows, key=lambda r: (order.get(r.name, len(order)), r.p_value))


@dataclass(frozen=True, slots=True)
class Term:
    """One predictor's line on the outcome page (``effect``, ``low``, ``high``: odds ratio per
    unit and its 95 % interval for the logistic model, coefficient for the linear one)."""

    name: str
    title: str
    unit: str
    effect: float
    low: float
    high: float
    per_sd: float
    sd: float
    p_value: float
    matters: bool
    change_percent: float
