"""The planning page (DESIGN §9): pick a shipped scenario or upload one, run it — simulate,
compare two, sweep two parameters into a capacity map, find the capacity ceiling — and see
the answer drawn.

A run goes to the server's :class:`~vein2vein.services.planning_runs.PlanningRuns` (it can
take a minute) and the browser is sent to the run's own page, which shows its progress
until it is done and then its figures. What is asked for is checked first: a scenario file
with problems, an unknown sweep parameter or too big a run comes back to the form with the
reason, and nothing is queued. Runs are not records: nothing is written to the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from html import escape
from typing import Annotated, Any, TypedDict, cast

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vein2vein.domain.errors import InvalidInput, NotFound, V2VError
from vein2vein.planning.ceiling import CapacityCeiling
from vein2vein.planning.replications import Comparison, Replications, Sweep
from vein2vein.planning.scenario import Scenario
from vein2vein.planning.vector_scales import VectorPlanResult, doses_text
from vein2vein.planning.vectors import VectorPlan
from vein2vein.services import planning, planning_runs, vectors
from vein2vein.services.app import App
from vein2vein.services.planning_runs import PlanningRun, PlanningRuns
from vein2vein.web import _planning_figures as fig
from vein2vein.web import _vector_figures as vf
from vein2vein.web._analytics_figures import fmt
from vein2vein.web._common import AppDep, templates
from vein2vein.web.batches import _number
from vein2vein.web.errors import problem_of, render_with_problem
from vein2vein.web.session import CsrfDep, IdentityDep

__all__ = ["router"]

router = APIRouter()

FormText = Annotated[str, Form()]
Upload = Annotated[UploadFile | None, File()]

#: The largest scenario file the page accepts (a real one is a few kilobytes).
MAX_UPLOAD_BYTES = 1_000_000
KINDS = {
    "simulate": "Simulate a network",
    "compare": "Compare two networks",
    "sweep": "Capacity map (sweep two parameters)",
    "ceiling": "Capacity ceiling",
    "vectors": "Vector and plasmid supply",
}
#: The kinds that simulate a network (the others plan vectors).
NETWORK_KINDS = ("simulate", "compare", "sweep", "ceiling")
#: What each form starts with (the central plant's figures: demand up to twice today's,
#: 16 to 24 devices; the target a month and a bit).
DEFAULTS = {
    "example_a": "central-plant",
    "example_b": "hub-and-spoke",
    "example_v": "cart-lv",
    "axis_a": "demand=0.5,1,1.5,2",
    "axis_b": "devices:CP1=16,20,24",
    "target": "40",
    "replications": "3",
    "seed": "1",
    "years": "1",
}


def runs_of(request: Request) -> PlanningRuns:
    """The server's planning runs (``vein2vein.asgi.create_app`` makes them)."""
    return cast(PlanningRuns, request.app.state.planning_runs)


@dataclass(slots=True)
class Asked:
    """What a planning form sent, as typed (kept when the form comes back with a problem)."""

    kind: str = "simulate"
    values: dict[str, str] = field(default_factory=lambda: dict(DEFAULTS))

    def __getitem__(self, key: str) -> str:
        return self.values.get(key, "")


@cache
def _example_parameters() -> dict[str, list[str]]:
    """What a sweep of each shipped example can vary (the examples ship with the code, so
    they are read once, not on every view of the page)."""
    return {name: planning.parameters(planning.open_example(name)) for name in planning.examples()}


# -- the page: what to run, and the runs so far ----------------------------------------------


def _index(
    request: Request, identity: IdentityDep, asked: Asked | None = None, problem: Any = None
) -> HTMLResponse:
    runs = runs_of(request).of(identity.actor.user_id)
    context: dict[str, object] = {
        "examples": planning.examples(),
        "kinds": KINDS,
        "asked": asked or Asked(),
        "defaults": Asked(),
        "network_kinds": NETWORK_KINDS,
        "vector_examples": vectors.examples(),
        "parameters": _example_parameters(),
        "failed": asked.kind if asked is not None and problem is not None else "",
        "runs": runs,
        "limits": (planning_runs.MAX_SIMULATIONS, planning_runs.MAX_YEARS),
        "page": "planning",
    }
    return render_with_problem(request, "planning/index.html", context, problem)


@router.get("/planning", response_class=HTMLResponse, name="planning_page_index")
def index(request: Request, identity: IdentityDep) -> HTMLResponse:
    return _index(request, identity)


def _yaml(text: str, name: str) -> Response:
    return Response(
        text, media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{name}.yaml"'},
    )  # fmt: skip


@router.get("/planning/examples/{name}.yaml", name="planning_page_example")
def example_file(name: str) -> Response:
    """A shipped example scenario as its YAML text, to read, change and upload again."""
    return _yaml(planning.example_text(name), name)


@router.get("/planning/vector-examples/{name}.yaml", name="planning_page_vector_example")
def vector_example_file(name: str) -> Response:
    """A shipped example vector plan as its YAML text."""
    return _yaml(vectors.example_text(name), name)


def _uploaded(upload: UploadFile | None) -> tuple[str, str] | None:
    """The file chosen in a form, as (its name, its text); None when none was chosen."""
    if upload is None or not upload.filename:
        return None
    data = upload.file.read(MAX_UPLOAD_BYTES + 1)
    name = upload.filename
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInput(f"{name}: larger than {MAX_UPLOAD_BYTES // 1000} kB; a planning "
                           "file is a few kilobytes")  # fmt: skip
    try:
        return name, data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{name}: not a UTF-8 text file (a planning file is YAML)") from None


def _scenario(app: App, asked: Asked, side: str, upload: UploadFile | None) -> Scenario:
    """The uploaded file of ``side`` (a or b) if one was chosen, else the example named."""
    with_app = app if asked["mbr"] else None
    given = _uploaded(upload)
    if given is not None:
        return planning.load(given[1], source=given[0], app=with_app)
    example = asked[f"example_{side}"]
    if not example:
        raise InvalidInput(f"scenario {side.upper()}: choose an example or upload a file")
    if example not in planning.examples():
        raise InvalidInput(f"scenario {side.upper()}: no example named {example!r}")
    return planning.open_example(example, app=with_app)


def _vector_plan(asked: Asked, upload: UploadFile | None) -> VectorPlan:
    given = _uploaded(upload)
    if given is not None:
        return vectors.load(given[1], source=given[0])
    example = asked["example_v"]
    if example not in vectors.examples():
        raise InvalidInput(f"vector plan: no example named {example!r}; choose one or upload "
                           "a file")  # fmt: skip
    return vectors.load(vectors.example_text(example), source=f"example {example}")


def _notes(asked: Asked, uploads: dict[str, UploadFile | None], kind: str) -> dict[str, str]:
    """Where the scenarios came from, for the run's page: a file's name, the MBRs."""
    notes = {}
    sides = ("a", "b") if kind == "compare" else ("v",) if kind == "vectors" else ("a",)
    for side in sides:
        upload = uploads[side]
        if upload is not None and upload.filename:
            label = "file" if len(sides) == 1 else f"file {side.upper()}"
            notes[label] = upload.filename
    if asked["mbr"]:
        notes["steps"] = "from the effective MBRs"
    return notes


class _Common(TypedDict):
    owner: str
    replications: int
    seed: int
    years: float
    notes: dict[str, str]


def _whole(asked: Asked, key: str, name: str) -> int:
    value = _number(asked[key], name, int)
    if value is None:
        raise InvalidInput(f"{name}: give a whole number")
    return int(value)


@router.post("/planning/runs", response_class=HTMLResponse, name="planning_page_start")
def start(
    request: Request, app: AppDep, identity: CsrfDep, kind: FormText = "simulate",
    example_a: FormText = "", example_b: FormText = "", axis_a: FormText = "",
    axis_b: FormText = "", target: FormText = "", replications: FormText = "",
    seed: FormText = "", years: FormText = "", mbr: FormText = "", example_v: FormText = "",
    file_a: Upload = None, file_b: Upload = None, file_v: Upload = None,
) -> Response:  # fmt: skip
    """Check what the form asks for and queue the run; then go to the run's page."""
    typed = {
        "example_a": example_a, "example_b": example_b, "axis_a": axis_a, "axis_b": axis_b,
        "target": target, "replications": replications, "seed": seed, "years": years,
        "mbr": mbr, "example_v": example_v,
        "uploaded": "yes" if any(f and f.filename for f in (file_a, file_b, file_v)) else "",
    }  # fmt: skip
    asked = Asked(kind if kind in KINDS else "simulate", {**DEFAULTS, **typed})
    owner, queue = identity.actor.user_id, runs_of(request)
    try:
        if kind not in KINDS:
            raise InvalidInput(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
        if kind == "vectors":
            notes = _notes(asked, {"v": file_v}, kind)
            run = planning_runs.start_vectors(queue, owner=owner, notes=notes,
                                              plan=_vector_plan(asked, file_v))  # fmt: skip
            return RedirectResponse(
                request.url_for("planning_page_run", run_id=run.id), status_code=303
            )
        n = _whole(asked, "replications", "replications")
        first = _whole(asked, "seed", "first seed")
        window = _number(asked["years"], "years", float)
        if window is None:
            raise InvalidInput("years: give the years each run measures")
        scenario = _scenario(app, asked, "a", file_a)
        common = _Common(owner=owner, replications=n, seed=first, years=float(window),
                         notes=_notes(asked, {"a": file_a, "b": file_b}, kind))  # fmt: skip
        if kind == "simulate":
            run = planning_runs.start_simulation(queue, scenario=scenario, **common)
        elif kind == "compare":
            other = _scenario(app, asked, "b", file_b)
            run = planning_runs.start_comparison(queue, a=scenario, b=other, **common)
        elif kind == "sweep":
            run = planning_runs.start_sweep(
                queue, scenario=scenario, axis_a=asked["axis_a"], axis_b=asked["axis_b"], **common
            )
        else:
            days = _number(asked["target"], "target p90", float)
            if days is None:
                raise InvalidInput("target p90: give the days not to be exceeded")
            run = planning_runs.start_ceiling(
                queue, scenario=scenario, target_p90_days=float(days), **common
            )
    except V2VError as refused:
        return _index(request, identity, asked, problem_of(refused))
    return RedirectResponse(request.url_for("planning_page_run", run_id=run.id), status_code=303)


# -- a run ---------------------------------------------------------------------------------------


def _figures(run: PlanningRun, sweep_target: float | None, scale: float | None) -> dict[str, Any]:
    result = run.result
    if isinstance(result, VectorPlanResult):
        outcome = result.outcome(scale) if scale is not None else None
        if outcome is None or outcome.schedule is None:
            return {"scales": vf.scales_figure(result)}
        return {
            "scales": vf.scales_figure(result),
            "timeline": vf.timeline_figure(result, outcome),
            "stock": vf.stock_figure(outcome),
        }
    if isinstance(result, Replications):
        return {
            "histogram": fig.histogram_figure([result]),
            "utilisation": fig.utilisation_figure([result]),
            "cost": fig.cost_figure([result]),
        }
    if isinstance(result, Comparison):
        sides = [result.a, result.b]
        return {
            "histogram": fig.histogram_figure(sides),
            "utilisation": fig.utilisation_figure(sides),
            "cost": fig.cost_figure(sides),
        }
    if isinstance(result, Sweep):
        return {"map": fig.sweep_figure(result, sweep_target)}
    if isinstance(result, CapacityCeiling):
        return {"ceiling": fig.ceiling_figure(result)}
    return {}


def _run_context(request: Request, run: PlanningRun, ahead: int) -> dict[str, object]:
    """What a run's page shows, as of one moment: the run goes on in its thread while the
    page is drawn, so the page reads its ``state`` once (a run's result is in place before
    its state says finished, so the figures of a finished run are always there)."""
    return {
        "state": run.state,
        "run": run,
        "ahead": ahead,
        "kinds": KINDS,
        "fmt": fmt,
        "resource_name": fig.resource_name,
        "doses_text": doses_text,
        "zip": zip,
        "page": "planning",
    }


def _scale(run: PlanningRun, scale: str) -> float | None:
    """The scale a vector plan's page shows: the one asked for, else the recommended one,
    else the first."""
    result = run.result
    if not isinstance(result, VectorPlanResult):
        return None
    if scale.strip():
        return result.plan.vector.check_scale(float(_number(scale, "scale", float) or 0.0))
    if result.recommended is not None:
        return result.recommended
    practical = [o.scale for o in result.scales if o.schedule is not None]
    return practical[0] if practical else None


@router.get("/planning/runs/{run_id}", response_class=HTMLResponse, name="planning_page_run")
def run_page(
    request: Request, identity: IdentityDep, run_id: str, target: str = "", scale: str = ""
) -> HTMLResponse:
    """The run's progress while it runs; its answer and figures when it is done. A sweep's
    map can be coloured around a target p90 (``?target=40``); a vector plan shows the
    batches of one scale (``?scale=200``, by default the recommended one)."""
    queue = runs_of(request)
    run = queue.get(run_id, identity.actor.user_id)
    context = _run_context(request, run, queue.ahead_of(run))  # the state, read once
    sweep_target, problem = None, None
    try:
        if target.strip():
            sweep_target = float(_number(target, "target p90", float) or 0.0)
            planning.check_target(sweep_target)
    except V2VError as refused:
        sweep_target, problem = None, problem_of(refused)
    try:
        shown = _scale(run, scale)
    except V2VError as refused:
        shown, problem = _scale(run, ""), problem_of(refused)
    finished = context["state"] == "finished"
    context["figures"] = _figures(run, sweep_target, shown) if finished else {}
    context["target"] = target
    context["scale"] = shown
    return render_with_problem(request, "planning/run.html", context, problem)


@router.get(
    "/planning/runs/{run_id}/progress", response_class=HTMLResponse,
    name="planning_page_progress",
)  # fmt: skip
def run_progress(request: Request, identity: IdentityDep, run_id: str) -> Response:
    """The progress bar alone, polled by the run's page; once the run has ended, a signal
    to reload the page (htmx's ``HX-Refresh``) so its answer is shown."""
    queue = runs_of(request)
    try:
        run = queue.get(run_id, identity.actor.user_id)
    except NotFound as gone:  # the server restarted: say so where the progress bar was
        return HTMLResponse(
            '<div id="progress" class="alert alert-error" role="alert" data-testid="gone">'
            f"<strong>This run is no longer on the server</strong><p>{escape(gone.message)}. "
            "Start it again from the planning page.</p></div>"
        )
    if run.state in ("finished", "failed"):
        return Response(status_code=200, headers={"HX-Refresh": "true"})
    context = _run_context(request, run, queue.ahead_of(run))
    return templates.TemplateResponse(request, "planning/_progress.html", context)


@router.get("/planning/runs/{run_id}/figures.json", name="planning_page_json")
def run_json(request: Request, identity: IdentityDep, run_id: str) -> Response:
    """The run's figures as the CLI's ``--json`` gives them, to download."""
    run = runs_of(request).get(run_id, identity.actor.user_id)
    result = run.result
    if result is None:
        raise NotFound(f"planning run {run_id}: {run.state}, no figures to download")
    body = cast(Replications | Comparison | Sweep | CapacityCeiling | VectorPlanResult,
                result).as_json()  # fmt: skip
    name = f"plan-{run.kind}-{run_id[:8]}.json"
    return Response(
        json.dumps(body, indent=2, ensure_ascii=False), media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )  # fmt: skip
