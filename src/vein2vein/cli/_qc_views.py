"""`v2v qc show|check|workload|alerts`: what QC knows, read back (services/qc_views.py).

Nothing here decides a rule: the acceptance and release checks, the due times, the
turnaround and the timelines are the services'; this module renders them as tables for
people and as JSON (keys named like the fields) for scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from vein2vein.cli._context import JsonOpt, _errors, _ready_app, _who
from vein2vein.cli._render import console, print_json, print_table, table, to_jsonable
from vein2vein.domain.qc import ReleaseCheck
from vein2vein.domain.specification import Conformance, Specification
from vein2vein.services import qc_views as views
from vein2vein.services.queries import SignatureView
from vein2vein.services.release import ACCEPTANCE_EXCEPTION
from vein2vein.store.qc import AlertRow, ExceptionRow, InvestigationRow

__all__ = ["alerts", "check", "show", "workload"]

LotArg = Annotated[str, typer.Argument(help="Batch lot, e.g. CP1-2026-00001.")]
_CONFORMANCE = {
    Conformance.CONFORMS: "conforms",
    Conformance.OOS: "[bold red]OOS[/]",
    Conformance.REPORTED: "reported",
}


def when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def spec_label(spec: Specification) -> str:
    return f"{spec.code} v{spec.version}"


# -- JSON ------------------------------------------------------------------------------
def _result_json(qc: views.BatchQc, v: views.ResultView) -> dict[str, Any]:
    r = v.result
    return {
        "id": r.id, "sample": r.sample_id, "stage": r.stage.value, "spec": r.spec,
        "attribute": r.attribute, "title": v.attribute.title, "method": r.method,
        "method_title": v.method_title, "method_version": r.method_version,
        "analyst": r.analyst, "analyst_name": qc.name(r.analyst), "instrument": r.instrument,
        "tested_at": r.tested_at, "entered": r.entered, "reported": r.reported,
        "unit": r.unit, "criterion": v.attribute.criterion,
        "conformance": r.conformance.value, "oos": r.oos, "oot": r.oot,
        "status": r.status.value, "verified_by": r.verified_by,
        "verified_by_name": qc.name(r.verified_by) if r.verified_by else None,
        "verified_at": r.verified_at, "verification": v.verification,
        "invalidated_by": r.invalidated_by, "invalidated_at": r.invalidated_at,
        "invalid_reason": r.invalid_reason, "oot_reviewed_by": r.oot_reviewed_by,
        "oot_comment": r.oot_comment, "retest_of": r.retest_of, "retested_by": v.retested_by,
        "investigation": v.investigation,
    }  # fmt: skip


def investigation_json(row: InvestigationRow) -> dict[str, Any]:
    i = row.investigation
    return {
        "reference": i.reference, "lot": i.lot, "result_id": i.result_id, "phase": i.phase,
        "phase_i_finding": i.phase_i_finding, "open": i.open,
        "outcome": i.outcome.value if i.outcome else None, "conclusion": i.conclusion,
        "opened_at": row.opened_at, "closed_at": row.closed_at, "closed_by": row.closed_by,
    }  # fmt: skip


def release_json(spec: Specification, check: ReleaseCheck) -> dict[str, Any]:
    return {
        "spec": spec_label(spec), "releasable": check.releasable,
        "conditionally_releasable": check.conditionally_releasable,
        "releasable_oos": check.releasable_oos,
        "blockers": [{"kind": b.kind.value, "subject": b.subject, "detail": b.detail}
                     for b in check.blockers],
        "pending_conditional": list(check.pending_conditional),
        "oos_attributes": check.oos_attributes,
    }  # fmt: skip


def _qc_json(qc: views.BatchQc) -> dict[str, Any]:
    b = qc.batch
    acceptance = None
    if qc.acceptance is not None:
        spec, a = qc.acceptance
        acceptance = {
            "spec": spec_label(spec), "complete": a.complete, "meets_criteria": a.meets_criteria,
            "missing": list(a.missing), "unverified": list(a.unverified),
            "out_of_criteria": [r.id for r in a.out_of_criteria], "problems": a.problems(),
        }  # fmt: skip
    return {
        "lot": b.lot, "state": b.state, "product": b.product, "coi": b.coi, "din": b.din,
        "treatment_centre": b.treatment_centre,
        "samples": [
            {"id": s.sample.id, "stage": s.sample.stage.value, "step": s.sample.step_id,
             "spec": spec_label(s.spec), "coi": s.sample.coi, "drawn_at": s.sample.drawn_at,
             "drawn_by": s.sample.drawn_by, "outstanding": [a.name for a in s.outstanding],
             "due": s.due if s.outstanding else None,
             "results": [_result_json(qc, r) for r in s.results]}
            for s in qc.samples
        ],
        "acceptance": acceptance,
        "release": release_json(*qc.release) if qc.release is not None else None,
        "investigations": [investigation_json(i) for i in qc.investigations],
        "exceptions": qc.exceptions, "conditional": qc.conditional, "alerts": qc.alerts,
        "review": qc.review, "signatures": qc.signatures,
        "oos_results": [r.result.id for r in qc.oos_results],
    }  # fmt: skip


# -- tables ----------------------------------------------------------------------------
def _flags(qc: views.BatchQc, v: views.ResultView) -> str:
    r = v.result
    parts = []
    if r.oos:
        parts.append(f"[bold red]OOS[/]{f' {v.investigation}' if v.investigation else ''}")
    if r.oot:
        seen = (
            f" reviewed by {escape(qc.name(r.oot_reviewed_by))}: {escape(r.oot_comment or '')}"
            if r.oot_reviewed_by
            else " not reviewed"
        )
        parts.append(f"[yellow]OOT[/]{seen}")
    if r.invalid_reason:
        parts.append(f"invalidated by {escape(qc.name(r.invalidated_by))}: "
                     f"{escape(r.invalid_reason)}")  # fmt: skip
    if r.retest_of is not None:
        parts.append(f"retest of {r.retest_of}")
    if v.retested_by is not None:
        parts.append(f"retested by {v.retested_by}")
    return "; ".join(parts)


def _verifier(qc: views.BatchQc, v: views.ResultView) -> str:
    if v.result.verified_by is None:
        return ""
    shown = escape(qc.name(v.result.verified_by))
    if v.verification is not None and not v.verification.matches:
        shown += " [red](signature no longer matches)[/]"
    return shown


def _results_table(qc: views.BatchQc, sample: views.SampleView) -> None:
    grid = table("id", "attribute", "reported", "unit", "criterion", "conformance",
                 "status", "analyst", "verified by", "flags",
                 ids=("id", "attribute", "reported"))  # fmt: skip
    for v in sample.results:
        r = v.result
        grid.add_row(str(r.id), r.attribute, escape(r.reported), escape(r.unit),
                     escape(v.attribute.criterion), _CONFORMANCE[r.conformance], r.status.value,
                     escape(qc.name(r.analyst)), _verifier(qc, v), _flags(qc, v))  # fmt: skip
    print_table(grid)


def print_release_check(spec: Specification, check: ReleaseCheck) -> None:
    if check.blockers:
        grid = table("what stops release", "subject", "detail", ids=("subject",),
                     title=f"release check ({spec_label(spec)})")  # fmt: skip
        for b in check.blockers:
            grid.add_row(b.kind.value, b.subject, escape(b.detail))
        print_table(grid)
    else:
        console.print(f"release check ({spec_label(spec)}): nothing stops release")

    def can(yes: bool) -> str:
        return "[green]possible[/]" if yes else "not possible"

    console.print(f"release: {can(check.releasable)} · conditional release: "
                  f"{can(check.conditionally_releasable)} · OOS release: "
                  f"{can(check.releasable_oos)}")  # fmt: skip


def _signed(signatures: Sequence[SignatureView], label: str = "") -> None:
    """Each signature beside its record: ``label`` names the record, else its audit seq."""
    for s in signatures:
        colour = "green" if s.matches else "red"
        console.print(f"[{colour}]{label or f'audit record {s.seq}'} signed: {escape(str(s))}[/]")


def _exceptions(qc: views.BatchQc, rows: Sequence[ExceptionRow]) -> None:
    for e in rows:
        what = "acceptance exception" if e.kind == ACCEPTANCE_EXCEPTION else "OOS release request"
        document = f" (document {escape(e.document)})" if e.document else ""
        console.print(f"[bold yellow]{what}[/]: {', '.join(e.attributes)} — "
                      f"{escape(e.reason)}{document}; signed by {escape(qc.name(e.signed_by))} "
                      f"{when(e.signed_at)} UTC")  # fmt: skip


def _alerts_table(rows: Sequence[AlertRow], names: views.BatchQc | None = None) -> None:
    grid = table("id", "batch", "centre", "raised (UTC)", "message", "acknowledged",
                 ids=("id", "batch", "centre"), title="alerts")  # fmt: skip
    for a in rows:
        who = names.name(a.acknowledged_by) if names else a.acknowledged_by
        ack = (f"by {escape(who or '')} {when(a.acknowledged_at)}: "
               f"{escape(a.acknowledgement or '')}" if a.acknowledged_by
               else "[bold red]NOT ACKNOWLEDGED[/]")  # fmt: skip
        grid.add_row(str(a.id), a.lot, a.treatment_centre, when(a.raised_at),
                     escape(a.message), ack)  # fmt: skip
    print_table(grid)


# -- commands --------------------------------------------------------------------------
def show(lot: LotArg, json_: JsonOpt = False) -> None:
    """A batch's QC: samples and their results, acceptance, the release check, exceptions.

    Each result with its reported value, unit, criterion, conformance, status, analyst,
    verifier, OOS and OOT flags (never hidden), invalidation reason and retest links; then
    the acceptance check, the release check (every blocker, and whether a release, a
    conditional release or an OOS release is possible), OOS investigations, exceptions,
    the conditional release, alerts and the batch record review, with their signatures."""
    with _errors():
        qc = views.batch_qc(_ready_app(), _who().actor, lot)
    if json_:
        print_json(_qc_json(qc))
        return
    b = qc.batch
    state = b.state
    if state == "RELEASED_OOS":
        state = "[bold red]RELEASED_OOS (out of specification)[/]"
    console.print(f"[bold]{b.lot}[/]  {b.product}  batch {state}  COI {b.coi}"
                  + (f"  DIN {b.din}" if b.din else ""))  # fmt: skip
    if not qc.samples:
        console.print("no QC samples drawn")
    for s in qc.samples:
        drawer = escape(qc.name(s.sample.drawn_by))
        console.print(f"\n[bold]sample {escape(s.label)}[/] — {spec_label(s.spec)}, drawn "
                      f"{when(s.sample.drawn_at)} UTC by {drawer}")  # fmt: skip
        if s.outstanding:
            console.print(f"  outstanding: {', '.join(a.name for a in s.outstanding)} "
                          f"(due {when(s.due)} UTC)")  # fmt: skip
        if s.results:
            _results_table(qc, s)
        for v in s.results:
            _signed([v.verification] if v.verification else [], f"  result {v.result.id}")
    console.print()
    if qc.acceptance is not None:
        spec, a = qc.acceptance
        verdict = ("[green]meets the criteria[/]" if a.meets_criteria
                   else "; ".join(escape(p) for p in a.problems()))  # fmt: skip
        console.print(f"acceptance ({spec_label(spec)}): {verdict}")
    if qc.release is not None:
        print_release_check(*qc.release)
    for i in qc.investigations:
        inv = i.investigation
        status = (f"[bold red]open[/], phase {'II' if inv.phase == 2 else 'I'}" if inv.open
                  else f"concluded: {inv.outcome}: {escape(inv.conclusion or '')}")  # fmt: skip
        finding = f"; phase I finding: {escape(inv.phase_i_finding)}" if inv.phase_i_finding else ""
        console.print(f"investigation {inv.reference} of result {inv.result_id}: "
                      f"{status}{finding}")  # fmt: skip
        _signed(qc.signatures.get(f"oos:{inv.reference}", []), f"  {inv.reference}")
    _exceptions(qc, qc.exceptions)
    c = qc.conditional
    if c is not None:
        colour = {"PENDING": "yellow", "FINAL": "green", "FAILED": "bold red"}.get(c.status, "")
        console.print(f"conditional release {when(c.released_at)} UTC by "
                      f"{escape(qc.name(c.released_by))}, pending {', '.join(c.pending)}: "
                      f"[{colour}]{c.status}[/]"
                      + (f" {when(c.closed_at)} UTC (result {c.result_id})" if c.closed_at
                         else ""))  # fmt: skip
    if qc.alerts:
        _alerts_table(qc.alerts, qc)
    if qc.review is not None:
        r = qc.review
        console.print(f"batch record reviewed by {escape(qc.name(r.reviewed_by))} "
                      f"{when(r.reviewed_at)} UTC: {escape(r.comment)}")  # fmt: skip
    elif qc.release is not None:
        console.print("batch record not reviewed")
    # The batch's own signatures (acceptance, review, request, disposition); the steps'
    # verifications belong to the batch record (`v2v record show`).
    _signed([s for s in qc.signatures.get("batch", []) if s.meaning != "verified"])


def check(lot: LotArg, json_: JsonOpt = False) -> None:
    """Only the release check of a batch: everything that stops its release, and whether a
    conditional or an OOS release is possible.

    Exit code 0 when the batch is releasable, 1 otherwise (also when there is no release
    check yet), so a script can wait on it."""
    with _errors():
        qc = views.batch_qc(_ready_app(), _who().actor, lot)
    if json_:
        print_json({"lot": lot, "state": qc.batch.state,
                    "release": release_json(*qc.release) if qc.release else None})  # fmt: skip
    elif qc.release is None:
        console.print(f"batch {lot} is {qc.batch.state}: no release check before processing")
    else:
        print_release_check(*qc.release)
    if qc.release is None or not qc.release[1].releasable:
        raise typer.Exit(1)


def workload(json_: JsonOpt = False) -> None:
    """The QC workload: pending tests by due time (overdue marked), turnaround per method
    (n, median, 90th percentile against the target), each batch's harvest→release and
    vein-to-vein days ("so far" while not infused), open OOS investigations, alerts not
    acknowledged and out-of-trend results awaiting QA's review."""
    with _errors():
        w = views.workload(_ready_app(), _who().actor)
    if json_:
        print_json(to_jsonable(w) | {
            "open_investigations": [investigation_json(i) for i in w.open_investigations]
        })  # fmt: skip
        return
    grid = table("due (UTC)", "batch", "sample", "stage", "attribute", "method", "state",
                 ids=("due (UTC)", "batch", "sample", "attribute"),
                 title=f"pending tests ({len(w.pending)})")  # fmt: skip
    for p in w.pending:
        due = f"[bold red]{when(p.due)} OVERDUE[/]" if p.overdue else when(p.due)
        grid.add_row(due, p.lot, p.sample_id, p.stage, p.attribute, p.method, p.state)
    if w.pending:
        print_table(grid)
    else:
        console.print("no pending tests")
    grid = table("method", "n", "median h", "p90 h", "target h", ids=("method",),
                 title="turnaround (drawn → verified)")  # fmt: skip
    for t in w.turnaround:
        target = "" if t.target_hours is None else f"{t.target_hours:g}"
        p90 = f"{t.p90_hours:.1f}"
        if t.target_hours is not None and t.p90_hours > t.target_hours:
            p90 = f"[red]{p90}[/]"
        grid.add_row(t.method, str(t.n), f"{t.median_hours:.1f}", p90, target)
    print_table(grid)
    grid = table("batch", "state", "centre", "harvest → release d", "vein-to-vein d",
                 ids=("batch", "state", "centre"), title="timelines")  # fmt: skip
    for line in w.timelines:
        h2r = line.harvest_to_release_days
        v2v = line.vein_to_vein_days
        so_far = " so far" if v2v is not None and line.so_far else ""
        grid.add_row(line.lot, line.state, line.treatment_centre,
                     "" if h2r is None else f"{h2r:.1f}",
                     "" if v2v is None else f"{v2v:.1f}{so_far}")  # fmt: skip
    print_table(grid)
    for i in w.open_investigations:
        inv = i.investigation
        console.print(f"[bold red]open investigation[/] {inv.reference}: batch {inv.lot}, "
                      f"result {inv.result_id}, phase {inv.phase}, opened "
                      f"{when(i.opened_at)} UTC")  # fmt: skip
    for r in w.oot_to_review:
        console.print(f"[yellow]out of trend[/], to review: result {r.id} {r.attribute} "
                      f"{escape(r.reported)} {escape(r.unit)} (batch {r.lot}): "
                      f"`v2v qc oot review {r.id} --comment …`")  # fmt: skip
    if w.alerts:
        _alerts_table(w.alerts)


def alerts(json_: JsonOpt = False) -> None:
    """QC alerts to treating centres (a failed culture after a conditional release), newest
    first, with their acknowledgement."""
    with _errors():
        rows = views.alerts(_ready_app(), _who().actor)
    if json_:
        print_json(rows)
        return
    if not rows:
        console.print("no alerts")
        return
    _alerts_table(rows)
