"""`v2v record|step|lot|equipment|deviation`: electronic batch records (issue 5).

Thin over the services: execution.py records, corrects and verifies steps; materials.py
keeps material lots, equipment and deviations; record_views.py reads them back. Nothing
here decides a rule; it parses options, asks for a signature where the table wants one,
and renders what the services return.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any

import typer
from rich.markup import escape

from vein2vein.cli import _auth
from vein2vein.cli._context import JsonOpt, _errors, _ready_app, _who
from vein2vein.cli._render import console, print_json, print_table, table
from vein2vein.domain import errors
from vein2vein.domain.batch_record import Exception_, RecordedValue, StepEntry
from vein2vein.domain.materials import DeviationState, MaterialLot
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.process import StepDefinition
from vein2vein.services import execution, materials
from vein2vein.services import record_views as views
from vein2vein.services.auth import Identity, Signing
from vein2vein.services.authorise import permitted
from vein2vein.services.queries import SignatureView
from vein2vein.store.records import DeviationRow, MaterialUse

__all__ = ["deviation_app", "equipment_app", "lot_app", "record_app", "register", "step_app"]

record_app = typer.Typer(help="Batch records: show one, review it by exception.",
                         no_args_is_help=True)  # fmt: skip
step_app = typer.Typer(help="Steps of a batch record: record, correct, verify.",
                       no_args_is_help=True)  # fmt: skip
lot_app = typer.Typer(
    help="Material lots: receive, release, reject, expire, list, where used.", no_args_is_help=True
)
equipment_app = typer.Typer(help="Equipment: register, calibrate, list.", no_args_is_help=True)
deviation_app = typer.Typer(help="Deviations: open, close (QA, signed), list.",
                            no_args_is_help=True)  # fmt: skip

LotArg = Annotated[str, typer.Argument(help="Batch lot, e.g. CP1-2026-00001.")]
StepArg = Annotated[str, typer.Argument(help="Step id as the MBR names it, e.g. receipt.")]
MaterialArg = Annotated[str, typer.Argument(help="Material lot number.")]
ReasonOpt = Annotated[str, typer.Option(help="Why (recorded in the audit trail).")]
SeverityHelp = "minor, major or critical."
_OUTCOME = {"ok": "ok", "excursion": "[yellow]excursion[/]",
            "out-of-par": "[bold red]OUT OF PAR[/]"}  # fmt: skip


# -- parsing ---------------------------------------------------------------------------
def _pairs(option: str, items: Sequence[str]) -> dict[str, str]:
    """``name=text`` options as a mapping; a malformed or repeated one is named."""
    found: dict[str, str] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise errors.InvalidInput(f"{option} {item!r}: expected name=value")
        if name in found:
            raise errors.InvalidInput(f"{option} {name} is given twice")
        found[name] = text
    return found


def _number(option: str, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise errors.InvalidInput(f"{option} {name}={text!r}: expected a number")
    return value


def _numbers(option: str, items: Sequence[str]) -> dict[str, float]:
    return {k: _number(option, k, v) for k, v in _pairs(option, items).items()}


def _day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise errors.InvalidInput(f"{option} {text!r}: expected a date YYYY-MM-DD") from None


def _signing(who: Identity, permission: str) -> Signing | None:
    """Ask for the signature only of someone whose role the table allows; the service
    refuses (and records) anyone else before it would look at a signature."""
    rule = rule_for(permission)
    if rule.signature is None or not permitted(who.actor, rule):
        return None
    return _auth.signing(who, rule.signature.value)


# -- rendering -------------------------------------------------------------------------
def _num(value: float, precision: int | None = None) -> str:
    return f"{value:.{precision}f}" if precision is not None else f"{value:.10g}"


def _when(moment: Any) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def _value_json(v: RecordedValue) -> dict[str, Any]:
    return {
        "name": v.name, "entered": v.entered, "reported": v.reported, "unit": v.unit,
        "outcome": v.outcome.value, "computed": v.computed, "comment": v.comment,
        "corrections": [
            {"old": c.old, "new": c.new, "by": c.by, "at": c.at, "why": c.why}
            for c in v.corrections
        ],
    }  # fmt: skip


def _entry_json(
    e: StepEntry, step: StepDefinition | None, signatures: Sequence[SignatureView] = ()
) -> dict[str, Any]:
    return {
        "step": e.step_id, "occurrence": e.occurrence, "performed_by": e.performed_by,
        "performed_at": e.performed_at, "verified_by": e.verified_by,
        "verified_at": e.verified_at, "equipment": e.equipment, "materials": e.materials,
        "values": [_value_json(v) for v in _in_order(e, step)],
        "signatures": list(signatures),
    }  # fmt: skip


def _exception_json(x: Exception_) -> dict[str, Any]:
    return {"step": x.step_id, "occurrence": x.occurrence, "kind": x.kind, "detail": x.detail}


def _deviation_json(row: DeviationRow) -> dict[str, Any]:
    d = row.deviation
    return {
        "reference": d.reference, "lot": d.lot, "severity": d.severity.value,
        "state": d.state.value, "description": d.description, "step": row.step,
        "impact": d.impact, "capa": d.capa, "opened_at": row.opened_at,
        "opened_by": row.opened_by, "closed_at": row.closed_at, "closed_by": row.closed_by,
    }  # fmt: skip


def _use_json(u: MaterialUse) -> dict[str, Any]:
    return {
        "batch": u.batch_lot, "step": u.step_id, "occurrence": u.occurrence,
        "material_lot": u.material_lot, "material_type": u.material_type,
        "quantity": u.quantity, "unit": u.unit, "at": u.at,
    }  # fmt: skip


def _lot_json(lot: MaterialLot) -> dict[str, Any]:
    return {"lot": lot.lot, "type": lot.type, "supplier": lot.supplier,
            "expiry": lot.expiry.isoformat(), "status": lot.status.value}  # fmt: skip


def _note(v: RecordedValue, precision: int | None) -> str:
    parts = ["computed"] if v.computed else []
    if v.comment:
        parts.append(f"comment: {v.comment}")
    parts += [
        f"corrected {_num(c.old, precision)} → {_num(c.new, precision)} by {c.by} "
        f"{_when(c.at)} UTC: {c.why}"
        for c in v.corrections
    ]
    return "; ".join(parts)


def _in_order(entry: StepEntry, step: StepDefinition | None) -> list[RecordedValue]:
    """The entry's values in the MBR's order (the store keeps no order)."""
    order = [p.name for p in step.parameters] if step is not None else []
    rank = {name: i for i, name in enumerate(order)}
    return sorted(entry.values.values(), key=lambda v: rank.get(v.name, len(rank)))


def _values_table(entry: StepEntry, step: StepDefinition | None) -> None:
    precisions = {p.name: p.precision for p in step.parameters} if step is not None else {}
    grid = table("parameter", "value", "unit", "outcome", "note", ids=("parameter", "value"))
    for v in _in_order(entry, step):
        p = precisions.get(v.name)
        grid.add_row(v.name, _num(v.reported, p), escape(v.unit), _OUTCOME[v.outcome.value],
                     escape(_note(v, p)))  # fmt: skip
    print_table(grid)


def _exceptions_table(found: Sequence[Exception_]) -> None:
    grid = table("step", "#", "kind", "detail", ids=("step", "#", "kind"), title="exceptions")
    for x in found:
        grid.add_row(x.step_id, str(x.occurrence), x.kind, escape(x.detail))
    print_table(grid)


def _deviations_table(rows: Sequence[DeviationRow], *, lots: bool = False) -> None:
    columns = ("reference", *(("batch",) if lots else ()), "severity", "state", "step",
               "opened", "description", "impact / CAPA")  # fmt: skip
    grid = table(*columns, ids=("reference", "batch", "severity", "state", "step"),
                 title="deviations")  # fmt: skip
    for row in rows:
        d = row.deviation
        closure = "; ".join(x for x in (d.impact, d.capa and f"CAPA {d.capa}") if x)
        grid.add_row(d.reference, *((d.lot,) if lots else ()), d.severity.value, d.state.value,
                     row.step or "", f"{_when(row.opened_at)} {row.opened_by}",
                     escape(d.description), escape(closure))  # fmt: skip
    print_table(grid)


# -- record ----------------------------------------------------------------------------
@record_app.command("show")
def record_show(lot: LotArg, json_: JsonOpt = False) -> None:
    """The batch record, step by step, then its exceptions and deviations.

    Each step of the MBR version the batch is bound to, with its values (ok, excursion,
    OUT OF PAR), computed values, comments, corrections, performer, verifier, equipment and
    the material lots consumed."""
    with _errors():
        view = views.record_view(_ready_app(), _who().actor, lot)
    h = view.header
    if json_:
        print_json({
            "lot": lot, "state": view.batch.state, "product": view.batch.product,
            "process": h.process, "process_version": h.process_version, "title": view.title,
            "started_at": h.started_at, "started_by": h.started_by,
            "patient_weight_kg": h.patient_weight_kg, "complete": view.complete,
            "next_steps": [s.id for s in view.next_steps],
            "steps": [
                {"id": s.definition.id, "name": s.definition.name, "status": s.status,
                 "verification": s.definition.verification,
                 "entries": [_entry_json(e, s.definition, s.verifications.get(e.occurrence, []))
                             for e in s.entries]}
                for s in view.steps
            ],
            "exceptions": [_exception_json(x) for x in view.exceptions],
            "deviations": [_deviation_json(d) for d in view.deviations],
            "materials": [_use_json(u) for u in view.materials],
        })  # fmt: skip
        return
    console.print(f"[bold]{lot}[/]  {view.process_label} — {escape(view.title)}  "
                  f"(batch {view.batch.state})")  # fmt: skip
    nexts = ", ".join(s.id for s in view.next_steps) or "none"
    where = "[green]record complete[/]" if view.complete else f"next: {nexts}"
    console.print(f"started {_when(h.started_at)} UTC by {h.started_by}; patient weight "
                  f"{h.patient_weight_kg:g} kg; {where}")  # fmt: skip
    for n, step in enumerate(view.steps, 1):
        d = step.definition
        console.print(f"\n[bold]{n}. {escape(d.name)}[/] \\[{d.id}] — {step.status}")
        for e in step.entries:
            used = ", ".join(f"{t} {lot_}" for t, lot_ in e.materials.items())
            console.print(
                f"  #{e.occurrence} performed by {e.performed_by} {_when(e.performed_at)} UTC"
                + (f" · equipment {e.equipment}" if e.equipment else "")
                + (f" · lots: {escape(used)}" if used else "")
            )
            if e.verified_by:
                console.print(f"  verified by {e.verified_by} {_when(e.verified_at)} UTC")
            elif d.verification:
                console.print("  [yellow]awaits verification[/]")
            for sig in step.verifications.get(e.occurrence, []):
                label = "superseded" if sig.seq in step.superseded else "signed"
                console.print(f"  {label}: {escape(str(sig))}")
            _values_table(e, d)
    console.print()
    if view.exceptions:
        _exceptions_table(view.exceptions)
    else:
        console.print("no exceptions")
    if view.deviations:
        _deviations_table(view.deviations)
    if view.materials:
        grid = table("material lot", "type", "step", "quantity", ids=("material lot", "step"),
                     title="materials consumed")  # fmt: skip
        for u in view.materials:
            grid.add_row(u.material_lot, escape(u.material_type),
                         f"{u.step_id} #{u.occurrence}", f"{u.quantity:g} {u.unit}")  # fmt: skip
        print_table(grid)


@record_app.command("review")
def record_review(lot: LotArg, json_: JsonOpt = False) -> None:
    """Review by exception: only what QA must look at in a batch record.

    Excursions, values out of PAR, corrections, late steps, steps awaiting verification."""
    with _errors():
        view = views.record_view(_ready_app(), _who().actor, lot)
    if json_:
        print_json([_exception_json(x) for x in view.exceptions])
        return
    if view.exceptions:
        _exceptions_table(view.exceptions)
    open_ = sum(1 for d in view.deviations if d.deviation.state is DeviationState.OPEN)
    console.print(f"{lot} ({view.process_label}): {len(view.exceptions)} exceptions, "
                  f"{open_} open deviations")  # fmt: skip


# -- steps -----------------------------------------------------------------------------
@step_app.command("record")
def step_record(
    lot: LotArg,
    step: StepArg,
    scan: Annotated[str, typer.Option(help="The batch's label as scanned (DIN or COI).")],
    value: Annotated[
        list[str] | None, typer.Option(help="A typed value: name=number (repeat).")
    ] = None,
    comment: Annotated[
        list[str] | None, typer.Option(help="Why a value is outside its normal range: name=text.")
    ] = None,
    material: Annotated[
        list[str] | None, typer.Option("--lot", help="A material lot consumed (one per material).")
    ] = None,
    equipment: Annotated[str | None, typer.Option(help="The equipment used (its id).")] = None,
) -> None:
    """Record one performance of a step (operators), with the batch's label scanned.

    Typed values, the material lots consumed and the equipment used. An excursion needs a
    comment; a value outside its PAR is recorded and opens a deviation."""
    with _errors():
        done = execution.record_step(
            _ready_app().uow(), lot, step, _numbers("--value", value or []), by=_who(),
            scan=scan, comments=_pairs("--comment", comment or []), material_lots=material or [],
            equipment=equipment,
        )  # fmt: skip
    e = done.entry
    console.print(f"batch {lot}: step {e.step_id} #{e.occurrence} recorded by {e.performed_by}")
    _values_table(e, None)
    for reference in done.deviations:
        console.print(f"[bold red]deviation {reference} opened[/]: a value is outside its "
                      "proven acceptable range")  # fmt: skip


@step_app.command("correct")
def step_correct(
    lot: LotArg,
    step: StepArg,
    occurrence: Annotated[int, typer.Option(help="Which performance of the step (1, 2, …).")],
    value: Annotated[str, typer.Option(help="The corrected value: name=number.")],
    reason: ReasonOpt,
    comment: Annotated[
        str | None, typer.Option(help="Why the new value is outside its normal range, if it is.")
    ] = None,
) -> None:
    """Correct a recorded value, with a reason.

    The original stays, with who, when and why; a verified step needs verifying again."""
    with _errors():
        ((name, number),) = _numbers("--value", [value]).items()
        corrected = execution.correct_value(_ready_app().uow(), lot, step, occurrence, name,
                                            number, by=_who(), why=reason,
                                            comment=comment)  # fmt: skip
    c = corrected.corrections[-1]
    console.print(
        f"batch {lot}: step {step} #{occurrence} {name} {_num(c.old)} → {_num(c.new)} "
        f"{escape(corrected.unit)} ({_OUTCOME[corrected.outcome.value]}), reason recorded"
    )


@step_app.command("verify")
def step_verify(
    lot: LotArg,
    step: StepArg,
    occurrence: Annotated[int, typer.Option(help="Which performance of the step.")] = 1,
) -> None:
    """Verify a step another person performed, with your electronic signature (verified)."""
    with _errors():
        who = _who()
        entry = execution.verify_step(_ready_app().uow(), lot, step, occurrence, by=who,
                                      signing=_signing(who, "step.verify"))  # fmt: skip
    console.print(f"batch {lot}: step {entry.step_id} #{entry.occurrence} (performed by "
                  f"{entry.performed_by}) verified by {entry.verified_by}, signed")  # fmt: skip


# -- material lots ---------------------------------------------------------------------
@lot_app.command("receive")
def lot_receive(
    lot: MaterialArg,
    type_: Annotated[str, typer.Option("--type", help="Material type, as the MBR names it.")],
    supplier: Annotated[str, typer.Option(help="Who supplied it.")],
    expiry: Annotated[str, typer.Option(help="Expiry date, YYYY-MM-DD.")],
) -> None:
    """Receive a material lot into QUARANTINE (logistics, QA reviewers)."""
    with _errors():
        received = materials.receive_lot(
            _ready_app().uow(), _who().actor, lot=lot, type=type_, supplier=supplier,
            expiry=_day("--expiry", expiry),
        )  # fmt: skip
    console.print(f"material lot {received.lot} ({escape(received.type)}) received into "
                  f"{received.status.value}; QA releases it: `v2v lot release {received.lot} "
                  "--reason …`")  # fmt: skip


def _move(lot: str, status: str, permission: str, reason: str) -> None:
    with _errors():
        who = _who()
        moved = materials.move_lot(_ready_app().uow(), who, lot, status, reason=reason,
                                   signing=_signing(who, permission))  # fmt: skip
    console.print(f"material lot {moved.lot}: {moved.status.value} (signed)")


@lot_app.command("release")
def lot_release(lot: MaterialArg, reason: ReasonOpt) -> None:
    """Release a lot from quarantine for use (QA, signed: approved)."""
    _move(lot, "RELEASED", "material.release", reason)


@lot_app.command("reject")
def lot_reject(lot: MaterialArg, reason: ReasonOpt) -> None:
    """Reject a lot, in quarantine or released (QA, signed: rejected)."""
    _move(lot, "REJECTED", "material.reject", reason)


@lot_app.command("expire")
def lot_expire(lot: MaterialArg, reason: ReasonOpt) -> None:
    """Expire a released lot (QA, signed: rejected)."""
    _move(lot, "EXPIRED", "material.reject", reason)


@lot_app.command("list")
def lot_list(
    type_: Annotated[str | None, typer.Option("--type", help="Only lots of this type.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Material lots by type and expiry: status, whether usable today, how many batches."""
    with _errors():
        lots = views.list_lots(_ready_app(), _who().actor, type=type_)
    if json_:
        print_json([_lot_json(v.lot) | {"received_at": v.received_at, "usable": v.usable,
                                        "used_by": v.used_by} for v in lots])  # fmt: skip
        return
    grid = table("lot", "type", "supplier", "expiry", "status", "usable", "received", "batches",
                 ids=("lot", "expiry", "status"))  # fmt: skip
    for v in lots:
        m = v.lot
        usable = "yes" if v.usable else "no"
        grid.add_row(m.lot, escape(m.type), escape(m.supplier), m.expiry.isoformat(),
                     m.status.value, usable, v.received_at, str(v.used_by))  # fmt: skip
    print_table(grid)


@lot_app.command("where-used")
def lot_where_used(lot: MaterialArg, json_: JsonOpt = False) -> None:
    """Every batch that consumed a material lot, at which step (genealogy, for a recall)."""
    with _errors():
        material, uses = views.genealogy_of_lot(_ready_app(), _who().actor, lot)
    batches = list(dict.fromkeys(u.batch_lot for u in uses))
    if json_:
        print_json({"lot": _lot_json(material), "batches": batches,
                    "uses": [_use_json(u) for u in uses]})  # fmt: skip
        return
    console.print(f"material lot {material.lot}: {escape(material.type)} from "
                  f"{escape(material.supplier)}, {material.status.value}, expires "
                  f"{material.expiry.isoformat()}")  # fmt: skip
    if not uses:
        console.print("used by no batch")
        return
    grid = table("batch", "step", "quantity", "when (UTC)", ids=("batch", "step"))
    for u in uses:
        grid.add_row(u.batch_lot, f"{u.step_id} #{u.occurrence}", f"{u.quantity:g} {u.unit}",
                     _when(u.at))  # fmt: skip
    print_table(grid)
    console.print(f"used by {len(batches)} batches: {', '.join(batches)}")


# -- equipment -------------------------------------------------------------------------
@equipment_app.command("register")
def equipment_register(
    equipment_id: Annotated[str, typer.Argument(help="Equipment id, e.g. BSC-07.")],
    class_: Annotated[str, typer.Option("--class", help="Class, as the MBR names it.")],
    site: Annotated[str, typer.Option(help="Site code where it stands.")],
    description: Annotated[str, typer.Option(help="What it is (make, model, room).")],
    calibration_due: Annotated[str, typer.Option(help="Next calibration due, YYYY-MM-DD.")],
) -> None:
    """Register equipment (administrators, QA reviewers)."""
    with _errors():
        eq = materials.register_equipment(
            _ready_app().uow(), _who().actor, equipment_id=equipment_id, equipment_class=class_,
            site=site, description=description,
            calibration_due=_day("--calibration-due", calibration_due),
        )  # fmt: skip
    console.print(f"equipment {eq.id} ({eq.equipment_class}) registered at {eq.site}, "
                  f"calibration due {eq.calibration_due.isoformat()}")  # fmt: skip


@equipment_app.command("calibrate")
def equipment_calibrate(
    equipment_id: Annotated[str, typer.Argument(help="Equipment id.")],
    due: Annotated[str, typer.Option(help="Next calibration due, YYYY-MM-DD.")],
    reason: Annotated[str, typer.Option(help="The calibration's reference (certificate).")],
) -> None:
    """Record a calibration: the next due date moves."""
    with _errors():
        eq = materials.record_calibration(_ready_app().uow(), _who().actor, equipment_id,
                                          due=_day("--due", due), reason=reason)  # fmt: skip
    console.print(f"equipment {eq.id}: calibration due {eq.calibration_due.isoformat()}")


@equipment_app.command("list")
def equipment_list(
    site: Annotated[str | None, typer.Option(help="Only equipment at this site.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Equipment by site and class, with its calibration due date."""
    with _errors():
        found = views.list_equipment(_ready_app(), _who().actor, site=site)
    if json_:
        print_json([
            {"id": v.equipment.id, "class": v.equipment.equipment_class,
             "site": v.equipment.site, "description": v.description,
             "calibration_due": v.due.isoformat(), "in_calibration": v.calibrated}
            for v in found
        ])  # fmt: skip
        return
    grid = table("id", "class", "site", "description", "calibration due",
                 ids=("id", "class", "site", "calibration due"))  # fmt: skip
    for v in found:
        due = v.due.isoformat() if v.calibrated else f"[red]{v.due.isoformat()} OVERDUE[/]"
        grid.add_row(v.equipment.id, v.equipment.equipment_class, v.equipment.site,
                     escape(v.description), due)  # fmt: skip
    print_table(grid)


# -- deviations ------------------------------------------------------------------------
@deviation_app.command("open")
def deviation_open(
    lot: LotArg,
    severity: Annotated[str, typer.Option(help=SeverityHelp)],
    description: Annotated[str, typer.Option(help="What happened.")],
) -> None:
    """Open a deviation on a batch (operators, QA reviewers, QPs)."""
    with _errors():
        reference = materials.open_deviation(
            _ready_app().uow(), _who().actor, lot, severity=severity, description=description
        )
    console.print(f"deviation {reference} opened on batch {lot} ({severity.lower()})")


@deviation_app.command("close")
def deviation_close(
    reference: Annotated[str, typer.Argument(help="Deviation reference, e.g. DEV-2026-00001.")],
    impact: Annotated[str, typer.Option(help="The impact assessment.")],
    capa: Annotated[str | None, typer.Option(help="CAPA reference (major, critical).")] = None,
    severity: Annotated[str | None, typer.Option(help=f"Final class: {SeverityHelp}")] = None,
) -> None:
    """Close a deviation with its impact assessment (QA, signed: approved)."""
    with _errors():
        who = _who()
        row = materials.close_deviation(_ready_app().uow(), who, reference, impact=impact,
                                        capa=capa, severity=severity,
                                        signing=_signing(who, "deviation.close"))  # fmt: skip
    d = row.deviation
    console.print(f"deviation {d.reference} ({d.severity.value}) on batch {d.lot}: "
                  f"{d.state.value}, signed")  # fmt: skip


@deviation_app.command("list")
def deviation_list(
    state: Annotated[str | None, typer.Option(help="OPEN or CLOSED.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Deviations, oldest first: batch, severity, state, impact and CAPA."""
    with _errors():
        rows = views.list_deviations(_ready_app(), _who().actor, state=state)
    if json_:
        print_json([_deviation_json(r) for r in rows])
        return
    _deviations_table(rows, lots=True)
    console.print(f"{len(rows)} deviations")


def register(app: typer.Typer) -> None:
    app.add_typer(record_app, name="record")
    app.add_typer(step_app, name="step")
    app.add_typer(lot_app, name="lot")
    app.add_typer(equipment_app, name="equipment")
    app.add_typer(deviation_app, name="deviation")
