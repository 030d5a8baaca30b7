"""The executed batch record as a printable PDF (A4 portrait, WeasyPrint), for GMP review.

Header (lot, chain of identity, product, MBR version, patient pseudonym and dose weight, site,
state, completeness); every MBR step in order with its records, ranges, outcomes, comments,
computed and corrected values and verification signatures; then the signatures (21 CFR 11.50),
the data changed after first entry (EU GMP Annex 11 §8), the exceptions, the deviations and the
genealogy. Every page names the lot, COI and process version, the printer and "page X of Y".
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from html import escape

from vein2vein.domain.batch_record import RecordedValue, StepEntry
from vein2vein.domain.people import Actor
from vein2vein.domain.process import Outcome, ParameterSpec, Range, StepDefinition
from vein2vein.services._record_pdf_css import CSS as _CSS
from vein2vein.services.queries import SignatureView
from vein2vein.services.record_views import RecordView, StepView

__all__ = ["to_pdf"]


def _e(value: object) -> str:
    return escape(str(value))


def _when(moment: datetime | None) -> str:
    """An aware time (as the store returns it) in UTC, to the minute."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: float, spec: ParameterSpec | None) -> str:
    """A value as reported: to the parameter's precision (95.0, not 95)."""
    return f"{value:.{spec.precision}f}" if spec is not None else f"{value:g}"


def _range(r: Range) -> str:
    if r.low is None and r.high is None:
        return "—"
    if r.low is None:
        return f"≤ {r.high:g}"
    if r.high is None:
        return f"≥ {r.low:g}"
    return f"{r.low:g} – {r.high:g}"


class _Names:
    """Full names of the people the record names (from their accounts; signers as they
    signed; the printer)."""

    def __init__(self, view: RecordView, printed_by: Actor) -> None:
        self._names = {printed_by.user_id: printed_by.full_name} | view.names
        for sig in _all_signatures(view):
            self._names.setdefault(sig.signer_id, sig.signer_name)

    def __call__(self, user_id: str | None) -> str:
        if not user_id:
            return ""
        name = self._names.get(user_id)
        return f"{_e(name)} ({_e(user_id)})" if name else _e(user_id)


def _all_signatures(view: RecordView) -> list[SignatureView]:
    verified = (s for step in view.steps for sigs in step.verifications.values() for s in sigs)
    return [*view.batch_signatures, *verified]


def _tag(text: str, kind: str) -> str:
    return f'<span class="tag {kind}">{_e(text)}</span>'


def _list(columns: list[tuple[str, str]], rows: list[str] | str, empty: str) -> str:
    """A table of ``rows`` under ``columns`` (CSS class, heading), or ``empty`` if none."""
    if not rows:
        return f'<p class="muted">{empty}</p>'
    head = "".join(f'<th class="{c}">{label}</th>' for c, label in columns)
    return (
        f'<table class="list"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _outcome(outcome: Outcome) -> str:
    if outcome is Outcome.OK:
        return '<span class="ok">ok</span>'
    return _tag("OUT OF PAR", "oop") if outcome is Outcome.OUT_OF_PAR else _tag("EXCURSION", "exc")


def _signature_status(sig: SignatureView, *, short: bool = False) -> str:
    if sig.matches:
        what = "matches" if short else "the record matches what was signed"
        return f'<span class="ok">{what}</span>'
    return f'<span class="bad">NO LONGER MATCHES THE SIGNED RECORD: {_e(sig.why)}</span>'


# -- the steps -----------------------------------------------------------------------------


def _value_cell(value: RecordedValue, spec: ParameterSpec | None) -> str:
    """The reported value, marked where it was computed, corrected or out of its ranges."""
    marks = []
    if value.computed:
        marks.append(_tag("COMPUTED", "computed"))
    if value.corrections:
        marks.append(_tag("CORRECTED", "corr"))
    return f"<b>{_e(_number(value.reported, spec))}</b>{''.join(marks)}"


def _notes(value: RecordedValue, spec: ParameterSpec | None, who: _Names) -> list[str]:
    notes = []
    if value.computed and spec is not None and spec.formula:
        notes.append(f"computed: {_e(spec.formula)}")
    if value.comment:
        notes.append(f"<b>Comment:</b> {_e(value.comment)}")
    for c in value.corrections:
        notes.append(
            f'<span class="corr-note"><b>Corrected</b> {_e(_number(c.old, spec))} → '
            f"{_e(_number(c.new, spec))} by {who(c.by)}, {_e(_when(c.at))}. "
            f"<b>Reason:</b> {_e(c.why)}</span>"
        )
    return notes


def _param(name: str, spec: ParameterSpec | None = None) -> str:
    """A parameter's name, which may break after its underscores in a narrow column."""
    critical = ' <span class="cpp">critical</span>' if spec is not None and spec.critical else ""
    return _e(name).replace("_", "_<wbr>") + critical


_ROW_CLASS = {Outcome.OUT_OF_PAR: "oop-row", Outcome.EXCURSION: "exc-row"}


def _value_row(value: RecordedValue, spec: ParameterSpec | None, who: _Names) -> str:
    nor = par = ""
    if spec is not None:  # the NOR with the target below it, and the PAR
        nor, par = (f'<span class="rng">{_e(_range(r))}</span>' for r in (spec.nor, spec.par))
        if spec.target is not None:
            nor += f'<div class="sub">target {_e(_number(spec.target, spec))}</div>'
    notes = "".join(f'<div class="note">{n}</div>' for n in _notes(value, spec, who))
    return (
        f'<tr class="{_ROW_CLASS.get(value.outcome, "")}"><td>{_param(value.name, spec)}</td>'
        f'<td class="num">{_value_cell(value, spec)}</td><td>{_e(value.unit)}</td>'
        f"<td>{nor}</td><td>{par}</td><td>{_outcome(value.outcome)}</td><td>{notes}</td></tr>"
    )


def _verification(step: StepView, entry: StepEntry, who: _Names, prefix: str = "") -> str:
    """The verification signatures of one record, or what is missing."""
    lines = []
    sigs = step.verifications.get(entry.occurrence, [])
    for sig in sigs:
        superseded = sig.seq in step.superseded
        note = (
            ' · <span class="warn"><b>SUPERSEDED</b>: a value changed after this '
            "verification</span>"
            if superseded
            else ""
        )
        lines.append(
            f'<div class="sig{" superseded" if superseded else ""}">{prefix}'
            f"<b>Signed: {_e(sig.meaning)}</b> by {_e(sig.signer_name)} ({_e(sig.signer_id)}), "
            f"{_e(sig.signed_at)} · {_signature_status(sig)}{note}</div>"
        )
    if not step.definition.verification:
        return ""
    if entry.verified_by is None:
        again = " again after the correction" if sigs else ""
        lines.append(f'<div class="sig bad">{prefix}AWAITS VERIFICATION{again}</div>')
    elif not sigs:
        lines.append(
            f'<div class="sig bad">{prefix}Verified by {who(entry.verified_by)}, '
            f"{_e(_when(entry.verified_at))}, but no electronic signature was found</div>"
        )
    return "".join(lines)


def _materials(step: StepView, entry: StepEntry) -> str:
    quantity = {m.type: f"{m.quantity:g} {m.unit}" for m in step.definition.materials}
    return "; ".join(
        f'{_e(kind)} <b class="id">{_e(lot)}</b>'
        + (f" ({_e(quantity[kind])})" if kind in quantity else "")
        for kind, lot in entry.materials.items()
    )


def _entry(step: StepView, entry: StepEntry, who: _Names) -> str:
    """One record of a step: who, when, with what, and a row per parameter."""
    specs = {p.name: p for p in step.definition.parameters}
    facts = [f"<b>Performed by</b> {who(entry.performed_by)}, {_e(_when(entry.performed_at))}"]
    if entry.equipment:
        facts.append(f'<b>Equipment</b> <span class="id">{_e(entry.equipment)}</span>')
    if entry.materials:
        facts.append(f"<b>Material lots</b> {_materials(step, entry)}")
    order = [n for n in specs if n in entry.values] + [n for n in entry.values if n not in specs]
    rows = "".join(_value_row(entry.values[n], specs.get(n), who) for n in order)
    table = (
        '<table class="values"><thead><tr><th class="c-name">Parameter</th>'
        '<th class="c-val">Value</th><th class="c-unit">Unit</th><th class="c-rng">NOR</th>'
        '<th class="c-rng">PAR</th><th class="c-out">Outcome</th><th>Notes</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        if rows
        else '<p class="muted">No parameters recorded at this step.</p>'
    )
    head = f"<b>Record {entry.occurrence}</b> · " if step.definition.repeatable else ""
    return (
        f'<div class="entry"><p class="entry-head">{head}{" · ".join(facts)}</p>{table}'
        f"{_verification(step, entry, who)}</div>"
    )


_SERIES_MAX = 6  # a repeatable step with more parameters prints one table per record


def _series(step: StepView, who: _Names) -> str:
    """The records of a repeatable step (daily counts) as one table, a row per record, so
    the trend reads down each column; comments, corrections and signatures below it."""
    specs = list(step.definition.parameters)
    head = "".join(
        f'<th>{_param(p.name, p)}<div class="sub">{_e(p.unit)}<br>'
        f'<span class="nw">NOR {_e(_range(p.nor))}</span><br>'
        f'<span class="nw">PAR {_e(_range(p.par))}</span>'
        + (f"<br>target {_e(_number(p.target, p))}" if p.target is not None else "")
        + "</div></th>"
        for p in specs
    )
    rows, notes, signed = [], [], []
    for entry in step.entries:
        cells = []
        for p in specs:
            value = entry.values.get(p.name)
            if value is None:
                cells.append("<td>—</td>")
                continue
            outcome = _outcome(value.outcome) if value.outcome is not Outcome.OK else ""
            cells.append(
                f'<td class="num {_ROW_CLASS.get(value.outcome, "")}">'
                f"{_value_cell(value, p)}{outcome}</td>"
            )
            notes += [
                f'<div class="note"><b>Record {entry.occurrence}</b>, {_e(p.name)}: {n}</div>'
                for n in _notes(value, p, who)
                if not n.startswith("computed: ")
            ]
        used = [f'<span class="id">{_e(entry.equipment)}</span>'] if entry.equipment else []
        used += [f'<span class="id">{_e(lot)}</span>' for lot in entry.materials.values()]
        rows.append(
            f'<tr><td class="num"><b>{entry.occurrence}</b></td>'
            f'<td>{who(entry.performed_by)}<div class="sub nw">{_e(_when(entry.performed_at))}'
            f"</div></td><td>{' · '.join(used)}</td>{''.join(cells)}</tr>"
        )
        signed.append(_verification(step, entry, who, f"Record {entry.occurrence}: "))
    formulas = [
        f'<div class="note">{_e(p.name)} is computed: {_e(p.formula)}</div>'
        for p in specs
        if p.formula
    ]
    materials = ", ".join(_e(m.type) for m in step.definition.materials)
    return (
        '<table class="values series"><thead><tr><th class="c-rec">Record</th>'
        '<th class="c-by">Performed by, at</th>'
        f'<th class="c-eq">Equipment{", lots (" + materials + ")" if materials else ""}</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{''.join(formulas)}{''.join(notes)}{''.join(signed)}"
    )


def _step(number: int, step: StepView, who: _Names) -> str:
    d: StepDefinition = step.definition
    status = step.status
    status_class = {"done": "st-done", "awaits verification": "st-wait"}.get(status, "st-todo")
    meta = [f"expected {d.expected_hours:g} h"]
    if d.equipment_class:
        meta.append(f"equipment class {_e(d.equipment_class)}")
    if d.materials:
        kinds = (f"{_e(m.type)} ({m.quantity:g} {_e(m.unit)})" for m in d.materials)
        meta.append("materials " + ", ".join(kinds))
    meta.append(
        "second-person verification required" if d.verification else "no second-person verification"
    )
    if d.repeatable:
        count = len(step.entries)
        meta.append(f"repeatable: {count} record{'' if count == 1 else 's'}")
    head = (
        f'<div class="step-head"><h3><span class="no">{number}.</span> {_e(d.name)} '
        f'<span class="sid">{_e(d.id)}</span>'
        f'<span class="status {status_class}">{_e(status)}</span></h3>'
        f'<p class="meta">{" · ".join(meta)}</p></div>'
    )
    if not step.entries:
        nxt = " — the next step to record" if step.is_next else ""
        return (
            f'<section class="step">{head}'
            f'<p class="not-performed">NOT PERFORMED{_e(nxt)}</p></section>'
        )
    if d.repeatable and len(d.parameters) <= _SERIES_MAX:
        body = _series(step, who)
    else:
        body = "".join(_entry(step, e, who) for e in step.entries)
    return f'<section class="step">{head}{body}</section>'


# -- the sections after the steps --------------------------------------------------------


class _Steps:
    """How the sections after the steps name a step: its name, and the record's number
    where the step is repeatable."""

    def __init__(self, view: RecordView) -> None:
        self._names = {s.definition.id: s.definition.name for s in view.steps}
        self._repeatable = {s.definition.id for s in view.steps if s.definition.repeatable}

    def __call__(self, step_id: str, occurrence: int | None = None) -> str:
        name = _e(self._names.get(step_id, step_id))
        if occurrence is not None and step_id in self._repeatable:
            name += f" #{occurrence}"
        return name

    def of_label(self, label: str | None) -> str:
        """A deviation's ``"step_id #occurrence"``."""
        if not label:
            return "—"
        step_id, _, occurrence = label.partition(" #")
        return self(step_id, int(occurrence) if occurrence.isdigit() else None)


def _signature_table(rows: list[tuple[str | None, SignatureView]], empty: str) -> str:
    with_step = any(where is not None for where, _ in rows)
    body = [
        "<tr>"
        + (f"<td>{where}</td>" if where is not None else "")
        + f'<td><b>{_e(s.meaning)}</b></td><td>{_e(s.signer_name)}<div class="sub id">'
        f'{_e(s.signer_id)}</div></td><td class="nw">{_e(s.signed_at)}</td>'
        f'<td class="num">{s.seq}</td><td>{_signature_status(s, short=True)}</td></tr>'
        for where, s in rows
    ]
    columns = [("c-sstep", "Step")] if with_step else []
    columns += [("c-mean", "Meaning"), ("c-signer", "Printed name, user ID"),
                ("c-at", "Date and time"), ("c-seq", "Audit record"),
                ("", "Record still matches")]  # fmt: skip
    return _list(columns, body, empty)


def _signatures(view: RecordView, steps: _Steps) -> str:
    batch = _signature_table([(None, s) for s in view.batch_signatures],
                             "No batch-level signatures yet.")  # fmt: skip
    verified = _signature_table(
        [
            (steps(step.definition.id, occ), s)
            for step in view.steps
            for occ, sigs in sorted(step.verifications.items())
            for s in sigs
        ],
        "No step verification signed yet.",
    )
    return (
        '<h2>Signatures</h2><p class="muted">Each electronic signature with the signer\'s '
        "printed name, the date and time of signing and its meaning (21 CFR 11.50), the audit "
        "record it signs, and whether that record still matches what was signed.</p>"
        f"<h4>Batch decisions (acceptance, release …)</h4>{batch}"
        f"<h4>Second-person verification of steps</h4>{verified}"
    )


def _changed(view: RecordView, steps: _Steps, who: _Names) -> str:
    specs = {(s.definition.id, p.name): p for s in view.steps for p in s.definition.parameters}
    rows = []
    for entry, name in view.changed_after_entry:
        value = entry.values[name]
        spec = specs.get((entry.step_id, name))
        for c in value.corrections:
            rows.append(
                f"<tr><td>{steps(entry.step_id, entry.occurrence)}"
                f'<div class="param">{_param(name)}</div></td>'
                f'<td class="nw">{_e(_number(c.old, spec))} → <b>{_e(_number(c.new, spec))}'
                f"</b> {_e(value.unit)}</td><td>{who(c.by)}</td>"
                f'<td class="nw">{_e(_when(c.at))}</td><td>{_e(c.why)}</td></tr>'
            )
    columns = [("c-cstep", "Step, parameter"), ("c-old", "Old → new"), ("c-who", "Changed by"),
               ("c-at", "When"), ("", "Reason")]  # fmt: skip
    table = _list(columns, rows, "No recorded value was changed after its first entry.")
    return (
        '<h2>Data changed after first entry</h2><p class="muted">EU GMP Annex 11 §8: every '
        "change of a recorded value, with the original value, who changed it, when and why; "
        "these values are marked CORRECTED in the steps.</p>" + table
    )


def _exceptions(view: RecordView, steps: _Steps) -> str:
    kinds = {"out-of-par": "oop", "excursion": "exc", "correction": "corr",
             "unverified": "oop", "late": "exc"}  # fmt: skip
    rows = [
        f"<tr><td>{steps(x.step_id, x.occurrence)}</td>"
        f"<td>{_tag(x.kind, kinds.get(x.kind, 'exc'))}</td><td>{_e(x.detail)}</td></tr>"
        for x in view.exceptions
    ]
    table = _list([("c-step", "Step"), ("c-kind", "Kind"), ("", "Detail")], rows,
                  "None: every value inside its normal range, no correction, no late step, "
                  "every verification given.")  # fmt: skip
    return (
        '<h2>Exceptions (review by exception)</h2><p class="muted">Excursions, values outside '
        "the PAR, corrections, steps that took half as long again as expected and steps "
        "awaiting verification.</p>" + table
    )


def _deviations(view: RecordView, steps: _Steps, who: _Names) -> str:
    rows = []
    for row in view.deviations:
        d = row.deviation
        state = d.state.value
        state_tag = _tag(state, "oop" if state == "OPEN" else "closed")
        signed = "".join(
            f'<div class="sub"><b>Signed: {_e(sig.meaning)}</b> by {_e(sig.signer_name)} '
            f"({_e(sig.signer_id)}), {_e(sig.signed_at)} · {_signature_status(sig, short=True)}"
            "</div>"
            for sig in view.deviation_signatures.get(d.reference, [])
        )
        closed = (
            f'{who(row.closed_by)}<div class="sub nw">{_e(_when(row.closed_at))}</div>{signed}'
            if row.closed_at
            else "—"
        )
        rows.append(
            f'<tr><td><b class="nw">{_e(d.reference)}</b><br>{_e(d.severity.value)} {state_tag}'
            f"</td><td>{steps.of_label(row.step)}</td><td>{_e(d.description)}</td>"
            f"<td><b>Impact:</b> {_e(d.impact or '—')}<br><b>CAPA:</b> {_e(d.capa or '—')}</td>"
            f'<td>{who(row.opened_by)}<div class="sub nw">{_e(_when(row.opened_at))}</div></td>'
            f"<td>{closed}</td></tr>"
        )
    columns = [("c-ref", "Reference, severity, state"), ("c-dstep", "Step"), ("", "Description"),
               ("c-impact", "Impact assessment, CAPA"), ("c-open", "Opened"),
               ("c-open", "Closed")]  # fmt: skip
    table = _list(columns, rows, "No deviation was opened on this batch.")
    return "<h2>Deviations</h2>" + table


def _genealogy(view: RecordView, steps: _Steps) -> str:
    rows = [
        f'<tr><td>{_e(u.material_type)}</td><td><b class="id">{_e(u.material_lot)}</b></td>'
        f'<td class="nw">{u.quantity:g} {_e(u.unit)}</td><td>{steps(u.step_id, u.occurrence)}'
        f'</td><td class="nw">{_e(_when(u.at))}</td></tr>'
        for u in view.materials
    ]
    columns = [("", "Material"), ("", "Lot"), ("", "Quantity"), ("", "Step"), ("", "Consumed")]
    table = _list(columns, rows, "No material lot consumed yet.")
    return "<h2>Genealogy: material lots consumed</h2>" + table


# -- the document ------------------------------------------------------------------------


def _summary(view: RecordView) -> str:
    performed = sum(1 for s in view.steps if s.entries)
    awaiting = sum(1 for s in view.steps for e in s.entries
                   if s.definition.verification and e.verified_by is None)  # fmt: skip
    open_ = sum(1 for r in view.deviations if r.deviation.state.value == "OPEN")
    broken = sum(1 for s in _all_signatures(view) if not s.matches)
    banner = (
        '<div class="banner good">Record COMPLETE: every step recorded and verified where the '
        "MBR asks.</div>"
        if view.complete
        else f'<div class="banner bad">Record INCOMPLETE: {len(view.steps) - performed} '
        f"step(s) not performed, {awaiting} awaiting verification.</div>"
    )
    kinds = Counter(x.kind for x in view.exceptions)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    items = [
        f"Steps performed: <b>{performed} of {len(view.steps)}</b> "
        f"({sum(len(s.entries) for s in view.steps)} records)",
        f"Exceptions: <b>{len(view.exceptions)}</b> ({_e(counts)})",
        f"Deviations: <b>{len(view.deviations)}</b> ({open_} open)",
        f"Values changed after first entry: <b>{len(view.changed_after_entry)}</b>",
        f"Electronic signatures: <b>{len(_all_signatures(view))}</b>"
        + (f' — <span class="bad">{broken} no longer match</span>' if broken else ""),
    ]
    return banner + '<ul class="summary">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _header(view: RecordView, printed_by: Actor, printed_at: datetime, who: _Names) -> str:
    b, h = view.batch, view.header
    weight = f"{h.patient_weight_kg:g} kg"
    if abs(b.weight_kg - h.patient_weight_kg) > 1e-9:
        weight += f' <span class="warn">(patient record now says {b.weight_kg:g} kg)</span>'
    printed = f"{_when(printed_at)} by {printed_by.full_name} ({printed_by.user_id})"
    pairs = [  # two a row
        ("Lot", f"<b>{_e(b.lot)}</b>"), ("Chain of identity (COI)", f"<b>{_e(b.coi)}</b>"),
        ("DIN", _e(b.din) if b.din else "— (not yet collected)"), ("Product", _e(b.product)),
        ("Process (MBR) and version", f"<b>{_e(view.process_label)}</b>"),
        ("MBR title", _e(view.title)),
        ("Patient (pseudonym)", _e(b.patient_pseudonym)),
        ("Weight the dose is computed for", weight),
        ("Order", _e(b.order_ref)), ("Treatment centre", _e(b.treatment_centre)),
        ("Manufacturing site", _e(b.manufacturing_site)),
        ("Batch state", f"<b>{_e(b.state)}</b> since {_e(_when(b.state_since))}"),
        ("Processing started", _e(_when(h.started_at))), ("Started by", who(h.started_by)),
        ("Record complete", "<b>yes</b>" if view.complete else '<b class="bad">NO</b>'),
        ("Printed", _e(printed)),
    ]  # fmt: skip
    cells = [f"<th>{_e(k)}</th><td>{v}</td>" for k, v in pairs]
    rows = "".join(f"<tr>{cells[i]}{cells[i + 1]}</tr>" for i in range(0, len(cells), 2))
    return f'<table class="header">{rows}</table>'


def to_pdf(view: RecordView, *, printed_by: Actor, printed_at: datetime) -> bytes:
    """The executed batch record ``view`` as a printable PDF (A4 portrait): header, every
    MBR step with its records and verifications, signatures, data changed after first
    entry, exceptions, deviations and genealogy; printed by ``printed_by`` at
    ``printed_at``."""
    from weasyprint import HTML

    who = _Names(view, printed_by)
    b = view.batch
    names = _Steps(view)
    steps = "".join(_step(i, s, who) for i, s in enumerate(view.steps, start=1))
    running = (
        '<div class="running"><table><tr>'
        f"<td>Batch record <b>{_e(b.lot)}</b> · COI <b>{_e(b.coi)}</b></td>"
        f'<td class="r">{_e(b.product)} · process <b>{_e(view.process_label)}</b></td>'
        "</tr></table></div>"
        f'<div class="printed">Printed {_e(_when(printed_at))} by {_e(printed_by.full_name)} '
        f"({_e(printed_by.user_id)}) · a printout of the electronic record, which is the "
        "original</div>"
    )
    html = f"""<!doctype html><html><head><meta charset="utf-8">
    <title>Batch record {_e(b.lot)}</title><style>{_CSS}</style></head><body>
    {running}
    <h1>Executed batch record — {_e(b.lot)}</h1>
    <p class="subtitle">{_e(view.title)} ({_e(view.process_label)})</p>
    {_header(view, printed_by, printed_at, who)}
    {_summary(view)}
    <h2>Steps</h2>{steps}
    {_signatures(view, names)}
    {_changed(view, names, who)}
    {_exceptions(view, names)}
    {_deviations(view, names, who)}
    {_genealogy(view, names)}
    <p class="end">— end of the batch record of {_e(b.lot)} —</p>
    </body></html>"""
    return bytes(HTML(string=html).write_pdf())
