"""The certificate of analysis of a batch as a PDF (A4 portrait, WeasyPrint).

What it shows: the batch's identity (lot, COI, DIN, product, process version, patient
pseudonym, treating centre), its disposition in a banner (released, conditionally released
with what is pending, released out of specification — marked as such —, rejected, or not
released), the release results against the specification with their method versions and
conformance, the starting-material results, every OOS result whatever became of it (the flag
is never dropped) with its investigation, the exceptions (QA's acceptance of an apheresis out
of criteria, the physician's request to release out of specification), the deviations, and
every signature with its meaning. Every page names the lot and the COI, the printer and the
page number.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from vein2vein.domain.people import Actor
from vein2vein.domain.qc import ConditionalStatus, ResultStatus, current_results
from vein2vein.domain.specification import Conformance, Specification, Stage
from vein2vein.services._record_pdf_css import CSS as _BASE_CSS
from vein2vein.services.app import App
from vein2vein.services.authorise import require
from vein2vein.services.qc_views import BatchQc, ResultView, batch_qc
from vein2vein.store.records import BatchRecordRepository, DeviationRepository, DeviationRow

__all__ = ["certificate_html", "certificate_pdf"]

_CSS = (
    _BASE_CSS
    + """
.c-attr { width: 20%; } .c-meth { width: 23%; } .c-crit { width: 14%; } .c-res { width: 13%; }
.c-conf { width: 9%; } .c-anal { width: 21%; }
.tag.ok { color: #14532d; background: #eaf6ec; } .tag.rep { color: #333; background: #eee; }
.tag.pend { color: #7a4a00; background: #ffe9a8; } .tag.inv { color: #555; background: #eee; }
.banner.warn { color: #7a4a00; background: #fff6db; }
.struck { text-decoration: line-through; color: #666; } th { overflow-wrap: normal; }
"""
)

_BANNERS = {
    "RELEASED": ("good", "RELEASED — the batch meets its release specification"),
    "CONDITIONALLY_RELEASED": ("warn", "CONDITIONALLY RELEASED — results pending: {pending}"),
    "RELEASED_OOS": (
        "bad",
        "RELEASED OUT OF SPECIFICATION at the treating physician's documented request — {oos}",
    ),
    "REJECTED": ("bad", "REJECTED — not for use"),
}


def _e(value: object) -> str:
    return escape(str(value))


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def certificate_pdf(app: App, by: Actor, lot: str) -> bytes:
    """The certificate of analysis of batch ``lot`` as PDF bytes, printed by ``by`` now."""
    from weasyprint import HTML

    return bytes(HTML(string=certificate_html(app, by, lot)).write_pdf())


def certificate_html(app: App, by: Actor, lot: str) -> str:
    """The certificate as HTML (what the PDF is made from)."""
    require(by, "qc.read")
    view = batch_qc(app, by, lot)
    with app.reader() as connection:
        header = BatchRecordRepository(connection).header(lot)
        deviations = DeviationRepository(connection).for_lot(lot)
    b = view.batch
    now = app.clock.now()
    process = f"{header.process} v{header.process_version}" if header else "not started"
    release_spec = view.release[0] if view.release else None
    running = (
        '<div class="running"><table><tr>'
        f"<td>Certificate of analysis <b>{_e(b.lot)}</b> · COI <b>{_e(b.coi)}</b></td>"
        f'<td class="r">{_e(b.product)} · DIN <b>{_e(b.din or "—")}</b></td>'
        "</tr></table></div>"
        f'<div class="printed">Printed {_e(_when(now))} by {_e(by.full_name)} '
        f"({_e(by.user_id)}) · a printout of the electronic record, which is the original</div>"
    )
    identity = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td><th>{_e(k2)}</th><td>{_e(v2)}</td></tr>"
        for k, v, k2, v2 in (
            ("Lot", b.lot, "Chain of identity (COI)", b.coi),
            ("Product", b.product, "DIN", b.din or "—"),
            ("Process (MBR)", process, "Patient (pseudonym)", b.patient_pseudonym),
            ("Manufactured at", b.manufacturing_site, "Treating centre", b.treatment_centre),
            (
                "Specification",
                f"{release_spec.code} v{release_spec.version}" if release_spec else "—",
                "State",
                b.state,
            ),
        )
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
    <title>Certificate of analysis {_e(b.lot)}</title><style>{_CSS}</style></head><body>
    {running}
    <h1>Certificate of analysis — {_e(b.lot)}</h1>
    <p class="subtitle">{_e(release_spec.title if release_spec else b.product)}</p>
    <table class="header">{identity}</table>
    {_banner(view)}
    {_results_section(view, Stage.RELEASE, "Release results")}
    {_results_section(view, Stage.IN_PROCESS, "In-process results")}
    {_results_section(view, Stage.STARTING_MATERIAL, "Starting material (apheresis acceptance)")}
    {_oos_section(view)}
    {_exceptions(view)}
    {_deviations(deviations)}
    {_signatures(view)}
    <p class="end">— end of the certificate of analysis of {_e(b.lot)} —</p>
    </body></html>"""


def _banner(view: BatchQc) -> str:
    state = view.batch.state
    disposition = _disposition(view)
    kind, text = _BANNERS.get(disposition or "", ("bad", f"NOT RELEASED — the batch is {state}"))
    conditional = view.conditional
    pending = ", ".join(conditional.pending) if conditional else ""
    oos = ", ".join(
        sorted(
            {
                r.result.attribute
                for r in view.oos_results
                if r.result.current and r.result.stage is not Stage.STARTING_MATERIAL
            }
        )
    )
    lines = [f'<div class="banner {kind}">{_e(text.format(pending=pending, oos=oos))}</div>']
    if disposition and state != disposition:
        lines.append(f'<div class="banner warn">The batch is {_e(state)} now.</div>')
    if conditional is not None and conditional.status is ConditionalStatus.FINAL:
        lines.append(
            '<div class="banner good">The conditional release was made final '
            f"{_e(_when(conditional.closed_at))}: the pending results conform.</div>"
        )
    if conditional is not None and conditional.status is ConditionalStatus.FAILED:
        lines.append(
            '<div class="banner bad">The conditional release FAILED '
            f"{_e(_when(conditional.closed_at))}: a result after it is out of specification; "
            "the treating centre was alerted.</div>"
        )
    if view.acceptance_exceptions:
        lines.append(
            '<div class="banner warn">Starting material accepted by exception '
            "(outside its acceptance criteria): see Exceptions.</div>"
        )
    return "".join(lines)


# The disposition a signed record gives the batch (whatever state the batch has moved to).
_DISPOSED_BY = {
    "BatchReleased": "RELEASED",
    "ReleaseConfirmed": "RELEASED",
    "BatchConditionallyReleased": "CONDITIONALLY_RELEASED",
    "BatchReleasedOutOfSpecification": "RELEASED_OOS",
    "BatchRejected": "REJECTED",
    "StartingMaterialRejected": "REJECTED",
}


def _disposition(view: BatchQc) -> str | None:
    """The batch's last disposition, read from its signed records (never recomputed from
    today's results); a conditional release made final reads as released."""
    found = None
    for _, action in sorted(view.signed_actions.items()):
        found = _DISPOSED_BY.get(action, found)
    final = view.conditional is not None and view.conditional.status is ConditionalStatus.FINAL
    if found == "CONDITIONALLY_RELEASED" and final:
        return "RELEASED"
    return found


def _specs_of(view: BatchQc, stage: Stage) -> Specification | None:
    for s in view.samples:
        if s.sample.stage is stage:
            return s.spec
    return None


def _results_section(view: BatchQc, stage: Stage, title: str) -> str:
    spec = _specs_of(view, stage)
    if spec is None:
        if stage is Stage.IN_PROCESS:
            return ""
        return f"<h2>{_e(title)}</h2><p class='muted'>No sample drawn.</p>"
    rows = [r for r in view.results if r.result.stage is stage]
    standing = current_results(r.result for r in rows)
    by_id = {r.result.id: r for r in rows}
    body = []
    for attribute in spec.attributes:
        method = spec.method_of(attribute)
        shown = [by_id[r.id] for r in standing.get(attribute.name, [])]
        if not shown:
            body.append(
                f"<tr><td>{_e(attribute.title)}</td><td>{_e(method.title)} "
                f"<span class='sub'>v{_e(method.version)}</span></td>"
                f"<td>{_e(attribute.criterion)}</td><td class='muted'>—</td>"
                "<td><span class='tag pend'>PENDING</span></td><td></td></tr>"
            )
        for r in shown:
            body.append(_result_row(view, r, method.title))
    return (
        f"<h2>{_e(title)}</h2><p class='sub'>Against {_e(spec.code)} v{spec.version}: "
        f"{_e(spec.title)}. Results are rounded to the reportable precision, then compared.</p>"
        "<table class='list'><thead><tr><th class='c-attr'>Attribute</th>"
        "<th class='c-meth'>Method</th><th class='c-crit'>Criterion</th>"
        "<th class='c-res'>Result</th><th class='c-conf'>Status</th>"
        "<th class='c-anal'>Analyst · verified by</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _tag(r: ResultView) -> str:
    c = r.result.conformance
    tag = {
        Conformance.CONFORMS: "<span class='tag ok'>CONFORMS</span>",
        Conformance.OOS: "<span class='tag oop'>OOS</span>",
        Conformance.REPORTED: "<span class='tag rep'>REPORTED</span>",
    }[c]
    if r.result.oot:
        tag += " <span class='tag exc'>OOT</span>"
    if r.result.status is ResultStatus.ENTERED:
        tag += " <span class='tag pend'>UNVERIFIED</span>"
    return tag


def _result_row(view: BatchQc, r: ResultView, method_title: str) -> str:
    res = r.result
    unit = f" {res.unit}" if res.unit else ""
    retest = f"<div class='sub'>retest of result {res.retest_of}</div>" if res.retest_of else ""
    verified = (
        f"{_e(r.verification.signer_name)} · {_e(r.verification.signed_at)}"
        if r.verification
        else "<span class='warn'>not verified</span>"
    )
    css = " class='oop-row'" if res.oos else ""
    return (
        f"<tr{css}><td>{_e(r.attribute.title)}{retest}</td>"
        f"<td>{_e(method_title)} <span class='sub'>v{_e(res.method_version)}</span></td>"
        f"<td>{_e(r.attribute.criterion)}</td><td class='num'>{_e(res.reported)}{_e(unit)}</td>"
        f"<td>{_tag(r)}</td><td>{_e(view.name(res.analyst))} · {_when(res.tested_at)}"
        f"<div class='sub'>{verified}</div></td></tr>"
    )


def _oos_section(view: BatchQc) -> str:
    flagged = view.oos_results
    invalid = [r for r in view.results if r.result.status is ResultStatus.INVALIDATED]
    if not flagged and not invalid:
        return "<h2>Out-of-specification and invalidated results</h2><p>None.</p>"
    investigations = {i.investigation.result_id: i for i in view.investigations}
    rows = []
    for r in sorted({id(x): x for x in flagged + invalid}.values(), key=lambda x: x.result.id):
        res = r.result
        inv = investigations.get(res.id)
        fate = (
            f"<span class='struck'>invalidated</span>: {_e(res.invalid_reason)}"
            if res.status is ResultStatus.INVALIDATED
            else _stands(view, r)
        )
        if r.retested_by:
            fate += f"; retested as result {r.retested_by}"
        if inv is not None:
            i = inv.investigation
            outcome = i.outcome.value if i.outcome else f"open, phase {'I' * i.phase}"
            fate += f"<div class='sub'>{_e(i.reference)}: {_e(outcome)}"
            if i.conclusion:
                fate += f" — {_e(i.conclusion)} ({_e(view.name(inv.closed_by))})"
            fate += "</div>"
        rows.append(
            f"<tr><td>{res.id}</td><td>{_e(r.attribute.title)}</td>"
            f"<td class='num'>{_e(res.reported)} {_e(res.unit)}</td><td>{_tag(r)}</td>"
            f"<td>{fate}</td></tr>"
        )
    return (
        "<h2>Out-of-specification and invalidated results</h2>"
        "<p class='sub'>Every OOS result stays on the certificate, whatever its investigation "
        "found.</p><table class='list'><thead><tr><th>No.</th><th>Attribute</th>"
        "<th>Reported</th><th>Flags</th><th>What became of it</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _stands(view: BatchQc, r: ResultView) -> str:
    excepted = {a for x in view.acceptance_exceptions for a in x.attributes}
    if r.result.stage is Stage.STARTING_MATERIAL and r.result.attribute in excepted:
        return "stands; the apheresis was accepted by QA's exception"
    requested = {a for x in view.oos_requests for a in x.attributes}
    if r.result.attribute in requested:
        return "stands; release out of specification requested by the treating physician"
    return "stands"


def _exceptions(view: BatchQc) -> str:
    if not view.exceptions:
        return "<h2>Exceptions</h2><p>None.</p>"
    kinds = {
        "acceptance-exception": "Starting material accepted outside its criteria (QA)",
        "oos-release-request": "Release out of specification requested by the treating physician",
    }
    rows = "".join(
        f"<tr><td>{_e(kinds.get(x.kind, x.kind))}</td><td>{_e(', '.join(x.attributes))}</td>"
        f"<td>{_e(x.reason)}{_document(x.document)}</td>"
        f"<td>{_e(view.name(x.signed_by))} · {_when(x.signed_at)}</td></tr>"
        for x in view.exceptions
    )
    return (
        "<h2>Exceptions</h2><table class='list'><thead><tr><th>Exception</th>"
        "<th>Attributes</th><th>Reason</th><th>Signed by</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _document(document: str | None) -> str:
    return f"<div class='sub'>document: {_e(document)}</div>" if document else ""


def _deviations(deviations: list[DeviationRow]) -> str:
    if not deviations:
        return "<h2>Deviations</h2><p>None.</p>"
    rows = "".join(
        f"<tr><td>{_e(d.deviation.reference)}</td><td>{_e(d.deviation.severity.value)}</td>"
        f"<td>{_e(d.deviation.state.value)}</td><td>{_e(d.deviation.description)}"
        f"{f'<div class=sub>impact: {_e(d.deviation.impact)}</div>' if d.deviation.impact else ''}"
        "</td></tr>"
        for d in deviations
    )
    return (
        "<h2>Deviations</h2><table class='list'><thead><tr><th>Reference</th><th>Severity</th>"
        f"<th>State</th><th>Description</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _signatures(view: BatchQc) -> str:
    signed = list(view.signatures.get("batch", []))
    for key, sigs in view.signatures.items():
        if key.startswith("oos:"):
            signed += sigs
    verifications = sum(len(v) for k, v in view.signatures.items() if k.startswith("result:"))
    rows = "".join(
        f"<tr><td>{_e(view.what_was_signed(s))}</td>"
        f"<td>{_e(s.signer_name)} ({_e(s.signer_id)})</td><td>{_e(s.meaning)}</td>"
        f"<td>{_e(s.signed_at)}</td><td>{_e('matches the record' if s.matches else s.why)}</td>"
        "</tr>"
        for s in sorted(signed, key=lambda s: s.seq)
    )
    return (
        "<h2>Electronic signatures</h2><p class='sub'>21 CFR 11.50: who signed, when, and what "
        f"the signature means. Result verifications by a second analyst: {verifications} "
        "(shown beside each result).</p><table class='list'><thead><tr><th>What was signed</th>"
        "<th>Signer</th>"
        "<th>Meaning</th><th>Signed at</th><th>Check</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
