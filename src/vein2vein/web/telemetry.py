"""Monitoring pages (issue 10): the units and their sensors now, a unit's live traces
(updating without reload), the alarm list with signed acknowledgement, a batch's step
traces beside its recorded values, and one parameter's profile site by site with the
comparability statistics.

Each page shows only the sites in the signed-in person's scope. The live page draws the
last minutes once, then asks ``readings.json`` every two seconds for what came after.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from vein2vein.domain.errors import InvalidInput, NotFound, V2VError
from vein2vein.domain.permissions import rule_for
from vein2vein.services import monitoring, monitoring_views
from vein2vein.services.auth import Identity
from vein2vein.services.authorise import permitted
from vein2vein.web._common import AppDep, templates
from vein2vein.web._telemetry_figures import (
    means_figure,
    overlay_figure,
    points_json,
    step_figure,
    traces_figure,
)
from vein2vein.web.batches import _has_signed, _signing
from vein2vein.web.errors import problem_of, render_with_problem
from vein2vein.web.session import CsrfDep, IdentityDep

__all__ = ["router"]

router = APIRouter(prefix="/monitoring")

FormText = Annotated[str, Form()]
LIVE_MINUTES = 15.0


def _sites(identity: Identity, app: AppDep) -> list[str] | None:
    """The sites this person sees (None: all)."""
    return monitoring.visible_sites(app, identity.actor)


def _base(identity: Identity, **extra: object) -> dict[str, object]:
    return {"me": identity.actor, "csrf_token": identity.credential.csrf_token,
            "page": "monitoring", **extra}  # fmt: skip


@router.get("", response_class=HTMLResponse, name="monitoring_page")
def overview(request: Request, app: AppDep, identity: IdentityDep) -> HTMLResponse:
    sites = _sites(identity, app)
    units = monitoring_views.units_overview(app, sites)
    to_ack = monitoring.alarms(app, unacknowledged=True, sites=sites)
    context = _base(identity, units=units, to_ack=to_ack)
    return templates.TemplateResponse(request, "telemetry/index.html", context)


def _unit_or_404(app: AppDep, identity: Identity, equipment: str) -> str:
    found = [u for u in monitoring.equipment_units(app) if u[1] == equipment]
    if not found or not identity.actor.may_act_on(found[0][0]):
        raise NotFound(f"no equipment {equipment!r} at your sites")
    return found[0][0]


@router.get("/units/{equipment}", response_class=HTMLResponse, name="monitoring_unit")
def unit(request: Request, app: AppDep, equipment: str, identity: IdentityDep) -> HTMLResponse:
    site = _unit_or_404(app, identity, equipment)
    step, traces = monitoring_views.unit_traces(app, equipment, LIVE_MINUTES)
    context = _base(identity, site=site, equipment=equipment, step=step, traces=traces,
                    figure=traces_figure(traces), last=points_json(traces)["last"],
                    minutes=LIVE_MINUTES,
                    alarms=monitoring.alarms(app, unacknowledged=True, sites=[site]))  # fmt: skip
    return templates.TemplateResponse(request, "telemetry/unit.html", context)


@router.get("/units/{equipment}/readings.json", name="monitoring_unit_readings")
def unit_readings(
    app: AppDep, equipment: str, identity: IdentityDep, after: str = ""
) -> JSONResponse:
    _unit_or_404(app, identity, equipment)
    try:
        since = datetime.fromisoformat(after) if after else None
    except ValueError:
        raise InvalidInput(f"after {after!r}: expected an ISO time") from None
    if since is not None and since.tzinfo is None:
        raise InvalidInput(f"after {after!r}: give a time zone")
    _, traces = monitoring_views.unit_traces(app, equipment, LIVE_MINUTES, after=since)
    points = points_json(traces)
    last = points["last"]
    return JSONResponse({**points, "last": last.isoformat() if last else after or None})


@router.get("/alarms", response_class=HTMLResponse, name="monitoring_alarms")
def alarms(
    request: Request, app: AppDep, identity: IdentityDep, show: str = "open", done: str = ""
) -> HTMLResponse:
    return _alarms_page(request, app, identity, show=show, done=done)


def _alarms_page(request: Request, app: AppDep, identity: Identity, *, show: str = "open",
                 done: str = "", problem: object = None, failed: int | None = None,
                 comment: str = "") -> HTMLResponse:  # fmt: skip
    rows = monitoring.alarms(app, unacknowledged=show != "all", sites=_sites(identity, app))
    rule = rule_for("alarm.acknowledge")
    context = _base(
        identity, rows=rows, show=show, done=done, failed=failed, comment=comment,
        first_signature=not _has_signed(app, identity),
        may_ack={a.id for a in rows if permitted(identity.actor, rule, [a.site])},
    )  # fmt: skip
    if problem is None:
        return templates.TemplateResponse(request, "telemetry/alarms.html", context)
    return render_with_problem(request, "telemetry/alarms.html", context, problem)  # type: ignore[arg-type]


@router.post("/alarms/{alarm_id}/ack", name="monitoring_ack")
def acknowledge(
    request: Request,
    app: AppDep,
    alarm_id: int,
    identity: CsrfDep,
    comment: FormText = "",
    signature_user_id: FormText = "",
    signature_password: FormText = "",
) -> Response:
    try:
        done = monitoring.acknowledge_alarm(
            app.uow(), alarm_id, by=identity, comment=comment,
            signing=_signing(signature_user_id, signature_password),
        )  # fmt: skip
    except V2VError as error:
        return _alarms_page(request, app, identity, problem=problem_of(error), failed=alarm_id,
                            comment=comment)  # fmt: skip
    message = f"Alarm {done.id} ({done.sensor} on {done.equipment}) acknowledged and signed."
    url = request.url_for("monitoring_alarms").include_query_params(done=message)
    return RedirectResponse(url, status_code=303)


@router.get("/batches/{lot}", response_class=HTMLResponse, name="monitoring_batch")
def batch(request: Request, app: AppDep, lot: str, identity: IdentityDep) -> HTMLResponse:
    steps = monitoring_views.step_traces(app, lot)
    visible = [s for s in steps if identity.actor.may_act_on(s.use.site)]
    if steps and not visible:
        raise NotFound(f"batch {lot} ran on no equipment at your sites")
    figures = [step_figure(s) for s in visible]
    context = _base(identity, lot=lot, steps=list(zip(visible, figures, strict=True)))
    return templates.TemplateResponse(request, "telemetry/batch.html", context)


@router.get("/compare", response_class=HTMLResponse, name="monitoring_compare")
def compare(
    request: Request, app: AppDep, identity: IdentityDep, step: str = "culture",
    sensor: str = "temperature",
) -> HTMLResponse:  # fmt: skip
    context = _base(identity, step=step, sensor=sensor,
                    choices=monitoring_views.watched_pairs(app))  # fmt: skip
    try:
        overlay = monitoring_views.site_overlay(app, step, sensor)
    except V2VError as error:
        return render_with_problem(request, "telemetry/compare.html", context,
                                   problem_of(error))  # fmt: skip
    context.update(overlay=overlay, figure=overlay_figure(overlay), means=means_figure(overlay))
    return templates.TemplateResponse(request, "telemetry/compare.html", context)
