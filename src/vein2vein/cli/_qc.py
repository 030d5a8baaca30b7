"""`v2v qc …`: specifications, samples, results, OOS and OOT, the batch record review, the
physician's OOS release request, alerts and the certificate of analysis (issue 6).

Thin over the services: specs.py keeps specifications under change control, qc.py writes
samples, results and investigations, qc_views.py reads them back (rendered by
cli/_qc_views.py). Nothing here decides a rule; it parses options, asks for a signature
where the permission table wants one, and prints what the services return.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from vein2vein.cli import _auth, _qc_views
from vein2vein.cli._context import JsonOpt, _errors, _ready_app, _who
from vein2vein.cli._qc_views import LotArg, spec_label
from vein2vein.cli._render import console, print_json, print_table, table
from vein2vein.domain import errors
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.specification import Conformance
from vein2vein.services import coa_pdf, qc, specs
from vein2vein.services.auth import Identity, Signing
from vein2vein.services.authorise import permitted

__all__ = ["qc_app", "register"]

qc_app = typer.Typer(
    help="QC and release: specifications, samples, results, OOS and OOT, release checks, "
    "the workload and the certificate of analysis.",
    no_args_is_help=True,
)
spec_app = typer.Typer(help="Specifications: import, approve (change control), list, show.",
                       no_args_is_help=True)  # fmt: skip
result_app = typer.Typer(help="Test results: enter, verify (second analyst), invalidate.",
                         no_args_is_help=True)  # fmt: skip
oot_app = typer.Typer(help="Out-of-trend results: QA's review.", no_args_is_help=True)
oos_app = typer.Typer(help="OOS investigations: escalate to phase II, conclude (signed).",
                      no_args_is_help=True)  # fmt: skip
alert_app = typer.Typer(help="QC alerts to treating centres: acknowledge.", no_args_is_help=True)

ResultArg = Annotated[int, typer.Argument(help="Result id (printed when it was entered).")]
ReasonOpt = Annotated[str, typer.Option(help="Why (recorded in the audit trail).")]
OosArg = Annotated[str, typer.Argument(help="OOS investigation, e.g. OOS-2026-00001.")]


def _signing(who: Identity, permission: str) -> Signing | None:
    """Ask for the signature only of someone whose role the table allows; the service
    refuses (and records) anyone else before it would look at a signature."""
    rule = rule_for(permission)
    if rule.signature is None or not permitted(who.actor, rule):
        return None
    return _auth.signing(who, rule.signature.value)


# -- specifications --------------------------------------------------------------------
@spec_app.command("import")
def spec_import(
    path: Annotated[Path, typer.Argument(help="A specification file (YAML, schema_version 1).")],
) -> None:
    """Import a new version of a specification as a draft (QA reviewers, administrators).

    An invalid file is refused with every problem named by its place
    (e.g. ``attributes.viability: min 90 > max 10``)."""
    with _errors():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise errors.InvalidInput(f"{path}: cannot read ({exc.strerror or exc})") from None
        version = specs.import_spec(_ready_app().uow(), _who().actor, text, str(path))
    console.print(
        f"{version.code} v{version.version} ({version.stage} of {version.product}) imported "
        f"as a draft (sha256 {version.content_hash[:16]}…); a QA reviewer approves it: "
        f"`v2v qc spec approve {version.code} {version.version} --reason …`"
    )


@spec_app.command("approve")
def spec_approve(
    code: Annotated[str, typer.Argument(help="Specification code, e.g. CART-CD19-REL.")],
    version: Annotated[int, typer.Argument(help="The draft's version.")],
    reason: Annotated[str, typer.Option(help="What was reviewed (recorded).")],
) -> None:
    """Approve a draft with your electronic signature (approved): it becomes effective, and
    the version effective until now for its product and stage is superseded. Samples drawn
    from then on are tested against it."""
    with _errors():
        who = _who()
        approved = specs.approve_spec(_ready_app().uow(), who, code, version, reason=reason,
                                      signing=_signing(who, "spec.approve"))  # fmt: skip
    console.print(f"{approved.code} v{approved.version} is effective (approved, signed)")


@spec_app.command("list")
def spec_list(json_: JsonOpt = False) -> None:
    """Every version of every specification, with its status in change control."""
    with _errors():
        versions = specs.list_specs(_ready_app(), _who().actor)
    if json_:
        print_json(versions)
        return
    grid = table("code", "version", "status", "product", "stage", "title", "imported by",
                 "approved by", "sha256", ids=("code", "status", "stage", "sha256"))  # fmt: skip
    for v in versions:
        grid.add_row(v.code, str(v.version), v.status, v.product, v.stage, escape(v.title),
                     v.imported_by, v.approved_by or "", v.content_hash[:16])  # fmt: skip
    print_table(grid)


@spec_app.command("show")
def spec_show(
    code: Annotated[str, typer.Argument(help="Specification code, e.g. CART-CD19-REL.")],
    version: Annotated[
        int | None, typer.Option(help="This version (default: the effective one, else newest).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """A specification's attributes: criterion, unit, method, method version, turnaround."""
    with _errors():
        record, spec = specs.show_spec(_ready_app(), _who().actor, code, version)
    rows = []
    for a in spec.attributes:
        m = spec.method_of(a)
        rows.append({
            "name": a.name, "title": a.title, "kind": a.kind.value, "unit": a.unit,
            "precision": a.precision, "criterion": a.criterion, "choices": list(a.choices),
            "accepted": sorted(a.accepted), "replicates": a.replicates,
            "pending_allowed_with": a.pending_allowed_with, "method": m.code,
            "method_title": m.title, "method_version": m.version,
            "turnaround_hours": m.turnaround_hours,
        })  # fmt: skip
    if json_:
        print_json({"code": record.code, "version": record.version, "product": record.product,
                    "stage": record.stage, "title": record.title, "status": record.status,
                    "content_hash": record.content_hash, "imported_by": record.imported_by,
                    "approved_by": record.approved_by, "attributes": rows})  # fmt: skip
        return
    console.print(f"[bold]{escape(record.title)}[/] ({spec_label(spec)}, {record.stage} of "
                  f"{record.product}) — {record.status}")  # fmt: skip
    grid = table("attribute", "title", "criterion", "method", "method version", "turnaround h",
                 ids=("attribute", "method version"))  # fmt: skip
    for a in spec.attributes:
        m = spec.method_of(a)
        partner = a.pending_allowed_with
        note = f" (may be pending with {partner})" if partner else ""
        grid.add_row(a.name, escape(a.title), escape(a.criterion) + note,
                     escape(f"{m.code}: {m.title}"), m.version,
                     f"{m.turnaround_hours:g}")  # fmt: skip
    print_table(grid)


# -- samples and results ---------------------------------------------------------------
@qc_app.command("sample")
def sample(
    lot: LotArg,
    stage: Annotated[str, typer.Option(help="starting-material, in-process or release.")],
    scan: Annotated[str, typer.Option(help="The batch's label as scanned (DIN or COI).")],
    step: Annotated[
        str | None, typer.Option(help="The batch step it is drawn at, as the MBR names it.")
    ] = None,
) -> None:
    """Draw a QC sample from a batch, its label scanned (operators, QC analysts): the
    sample carries the COI and is tested against the specification effective now. Prints
    the sample id."""
    with _errors():
        sample_id = qc.draw_sample(_ready_app().uow(), _who().actor, lot, stage=stage, scan=scan,
                                   step_id=step)  # fmt: skip
    console.print(f"sample {sample_id} drawn from batch {lot} ({stage}); enter its results: "
                  f"`v2v qc result enter {sample_id} ATTRIBUTE VALUE`")  # fmt: skip


def _moment(option: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise errors.InvalidInput(
            f"{option} {text!r}: expected a date and time with its zone, e.g. "
            "2026-03-01T14:30+00:00"
        ) from None


@result_app.command("enter")
def result_enter(
    sample_id: Annotated[str, typer.Argument(help="Sample id, e.g. SMP-2026-000001.")],
    attribute: Annotated[str, typer.Argument(help="Attribute, as the specification names it.")],
    value: Annotated[
        str,
        typer.Argument(
            help='As measured: a number, an answer ("no growth"), or replicates separated '
            'by commas ("1200, 1250, 1300").'
        ),
    ],
    method_version: Annotated[
        str | None, typer.Option(help="The method version used (checked against the spec).")
    ] = None,
    instrument: Annotated[str | None, typer.Option(help="The instrument used (its id).")] = None,
    tested_at: Annotated[
        str | None, typer.Option(help="When it was tested, ISO 8601 with zone (default: now).")
    ] = None,
    retest_of: Annotated[
        int | None, typer.Option(help="The invalidated result this one retests.")
    ] = None,
) -> None:
    """Enter a test result (QC analysts): rounded to the reportable precision, then compared.

    An out-of-specification result is flagged and opens an OOS investigation; a result out
    of the product's trend is flagged for QA's review; a failed result after a conditional
    release alerts the treating centre at once."""
    with _errors():
        done = qc.enter_result(
            _ready_app().uow(), _who().actor, sample_id, attribute, value,
            method_version=method_version, instrument=instrument,
            tested_at=_moment("--tested-at", tested_at), retest_of=retest_of,
        )  # fmt: skip
    verdict = {
        Conformance.CONFORMS: "[green]conforms[/]",
        # Only a starting-material result opens no investigation: it is out of criteria.
        Conformance.OOS: "[bold red]OUT OF SPECIFICATION[/]"
        if done.investigation
        else "[bold red]OUT OF CRITERIA[/]",
        Conformance.REPORTED: "reported (no criterion)",
    }[done.conformance]
    unit = f" {escape(done.unit)}" if done.unit else ""
    console.print(f"result {done.id}: {attribute} {escape(done.reported)}{unit} — {verdict}; a "
                  f"second analyst verifies it: `v2v qc result verify {done.id}`")  # fmt: skip
    if done.investigation:
        console.print(f"[bold red]OOS: investigation {done.investigation} opened[/] (phase I, "
                      "laboratory); the batch cannot be released while it is open")  # fmt: skip
    elif done.conformance is Conformance.OOS:
        console.print("[bold red]OUT OF THE ACCEPTANCE CRITERIA[/]: QA rejects the "
                      "apheresis or accepts it as a signed exception "
                      "(`v2v batch accept --exception …`)")  # fmt: skip
    if done.oot:
        console.print(f"[bold yellow]OUT OF TREND[/] against the product's history: QA reviews "
                      f"it (`v2v qc oot review {done.id} --comment …`)")  # fmt: skip
    if done.alert is not None:
        console.print(f"[bold red]ALERT {done.alert} raised[/]: the batch was released "
                      "conditionally; the treating centre is alerted and a critical deviation "
                      "is opened")  # fmt: skip


@result_app.command("verify")
def result_verify(result_id: ResultArg) -> None:
    """Verify a result as the second analyst, with your electronic signature (verified);
    not the analyst who entered it, nor the one who drew its sample."""
    with _errors():
        who = _who()
        r = qc.verify_result(_ready_app().uow(), who, result_id,
                             signing=_signing(who, "result.verify"))  # fmt: skip
    unit = f" {escape(r.unit)}" if r.unit else ""
    console.print(f"result {r.id} ({r.attribute} {escape(r.reported)}{unit}, "
                  f"{r.conformance.value}) verified by {r.verified_by}, signed")  # fmt: skip


@result_app.command("invalidate")
def result_invalidate(result_id: ResultArg, reason: ReasonOpt) -> None:
    """Invalidate a result with a reason (QC analysts, QA); the original is kept and the
    attribute may be retested. An OOS result is invalidated only by its investigation."""
    with _errors():
        r = qc.invalidate_result(_ready_app().uow(), _who().actor, result_id, reason=reason)
    console.print(f"result {r.id} ({r.attribute} {escape(r.reported)}) invalidated: "
                  f"{escape(r.invalid_reason or '')}; retest it: `v2v qc result enter "
                  f"{r.sample_id} {r.attribute} VALUE --retest-of {r.id}`")  # fmt: skip


@oot_app.command("review")
def oot_review(
    result_id: ResultArg,
    comment: Annotated[str, typer.Option(help="What was looked at, and why the result stands.")],
) -> None:
    """Review an out-of-trend result (QA), with a comment."""
    with _errors():
        r = qc.review_oot(_ready_app().uow(), _who().actor, result_id, comment=comment)
    console.print(f"out-of-trend result {r.id} ({r.attribute} {escape(r.reported)}) reviewed "
                  f"by {r.oot_reviewed_by}")  # fmt: skip


# -- OOS investigations ----------------------------------------------------------------
@oos_app.command("escalate")
def oos_escalate(
    reference: OosArg,
    finding: Annotated[str, typer.Option(help="Phase I finding: no laboratory cause, why.")],
) -> None:
    """Close phase I (laboratory) without an assignable cause: the investigation goes to
    phase II (full: manufacturing, process, other batches). QC analysts, QA."""
    with _errors():
        inv = qc.escalate_oos(_ready_app().uow(), _who().actor, reference, finding=finding)
    console.print(f"{inv.reference} (result {inv.result_id}, batch {inv.lot}): phase II, "
                  "full investigation; QA concludes it")  # fmt: skip


@oos_app.command("conclude")
def oos_conclude(
    reference: OosArg,
    outcome: Annotated[str, typer.Option(help="laboratory-error or confirmed.")],
    conclusion: Annotated[str, typer.Option(help="The investigation's conclusion.")],
) -> None:
    """Conclude an OOS investigation with your electronic signature (QA, approved).

    A laboratory error invalidates the result (a retest may follow); a confirmed OOS stands:
    the batch is rejected, or released out of specification at the physician's request."""
    with _errors():
        who = _who()
        inv = qc.conclude_oos(_ready_app().uow(), who, reference, outcome=outcome,
                              conclusion=conclusion,
                              signing=_signing(who, "oos.conclude"))  # fmt: skip
    console.print(f"{inv.reference} (result {inv.result_id}, batch {inv.lot}) concluded: "
                  f"{inv.outcome}, signed")  # fmt: skip
    if inv.outcome == "laboratory-error":
        console.print(f"result {inv.result_id} is invalidated; retest it with "
                      f"`v2v qc result enter … --retest-of {inv.result_id}`")  # fmt: skip
    else:
        console.print("[bold red]the OOS stands[/]: reject the batch, or release it out of "
                      "specification at the treating physician's signed request")  # fmt: skip


# -- the batch: review, OOS release request --------------------------------------------
@qc_app.command("review")
def review(
    lot: LotArg,
    comment: Annotated[str, typer.Option(help="What was reviewed (recorded).")],
) -> None:
    """Sign the review of a completed batch record (QA, reviewed); not one who made it."""
    with _errors():
        who = _who()
        done = qc.review_record(_ready_app().uow(), who, lot, comment=comment,
                                signing=_signing(who, "record.review"))  # fmt: skip
    console.print(f"batch {lot}: record reviewed by {done.reviewed_by}, signed")


@qc_app.command("request-oos-release")
def request_oos_release(
    lot: LotArg,
    reason: Annotated[str, typer.Option(help="The documented clinical reason.")],
    document: Annotated[
        str, typer.Option(help="Reference of the signed request document (patient's file).")
    ],
) -> None:
    """Request, as the treating physician, the release of a dose out of specification,
    with your electronic signature (requested). Only when confirmed OOS results are all
    that stop its release; the QP then decides (`v2v batch release-oos`)."""
    with _errors():
        who = _who()
        row = qc.request_oos_release(_ready_app().uow(), who, lot, reason=reason,
                                     document=document,
                                     signing=_signing(who, "release.request-oos"))  # fmt: skip
    console.print(f"batch {lot}: release out of specification ({', '.join(row.attributes)}) "
                  f"requested by {row.signed_by}, signed; the QP decides: "
                  f"`v2v batch release-oos {lot} --reason …`")  # fmt: skip


@alert_app.command("ack")
def alert_ack(
    alert_id: Annotated[int, typer.Argument(help="Alert id (v2v qc alerts).")],
    note: Annotated[str, typer.Option(help="What was done, e.g. dose quarantined.")],
) -> None:
    """Acknowledge a QC alert about a dose of your centre (coordinators, physicians)."""
    with _errors():
        qc.acknowledge_alert(_ready_app().uow(), _who().actor, alert_id, note=note)
    console.print(f"alert {alert_id} acknowledged")


# -- certificate of analysis -----------------------------------------------------------
@qc_app.command("coa")
def coa(
    lot: LotArg,
    output: Annotated[Path, typer.Option(help="Where to write the PDF, e.g. coa.pdf.")],
) -> None:
    """Write the certificate of analysis of a batch as PDF: its DIN and COI, the
    specification, every result with its OOS flag, exceptions and signatures."""
    with _errors():
        pdf = coa_pdf.certificate_pdf(_ready_app(), _who().actor, lot)
        try:
            output.write_bytes(pdf)
        except OSError as exc:
            raise errors.InvalidInput(f"cannot write {output} ({exc.strerror or exc})") from None
    console.print(f"certificate of analysis of batch {lot} written to {output}")


def register(app: typer.Typer) -> None:
    qc_app.add_typer(spec_app, name="spec")
    qc_app.add_typer(result_app, name="result")
    qc_app.add_typer(oot_app, name="oot")
    qc_app.add_typer(oos_app, name="oos")
    qc_app.add_typer(alert_app, name="alert")
    qc_app.command("show")(_qc_views.show)
    qc_app.command("check")(_qc_views.check)
    qc_app.command("workload")(_qc_views.workload)
    qc_app.command("alerts")(_qc_views.alerts)
    app.add_typer(qc_app, name="qc")
