"""Batch records inside a batch's life: binding to the MBR, and the rules transitions check.

- **start-processing** binds the batch to the *effective* version of a process for its product
  (:func:`bind_process`); the batch stays on that version whatever is approved later.
- **complete-processing** is refused until every step is recorded and verified where the MBR
  asks (:func:`check_record_complete`).
- **release** (in any form) passes the QC gate (services/qc.py), which counts open major
  and critical deviations among what stops it.

Loading a record (:func:`load_record`) parses the bound MBR version once per content hash.
"""

from __future__ import annotations

from vein2vein.domain.batch import Batch
from vein2vein.domain.batch_record import BatchRecord
from vein2vein.domain.errors import InvalidInput, RuleViolation
from vein2vein.domain.events import Event
from vein2vein.domain.process import ProcessDefinition
from vein2vein.formats.mbr import parse_mbr
from vein2vein.services.mbr import EFFECTIVE
from vein2vein.store.mbr import MbrRecord, MbrRepository
from vein2vein.store.records import BatchRecordRepository, RecordHeader
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "bind_process",
    "check_record_complete",
    "definition_of",
    "load_record",
]


# Parsed MBR versions by the SHA-256 of their text: a version's text never changes, so
# its parse never goes stale (a bounded cache; a new text is parsed once).
_DEFINITIONS: dict[str, ProcessDefinition] = {}


def definition_of(record: MbrRecord) -> ProcessDefinition:
    """The process definition of one stored MBR version (parsed once per content hash)."""
    found = _DEFINITIONS.get(record.content_hash)
    if found is None:
        if len(_DEFINITIONS) >= 64:
            _DEFINITIONS.clear()
        found = _DEFINITIONS[record.content_hash] = parse_mbr(
            record.source, f"{record.process} v{record.version}"
        )
    return found


def bind_process(uow: UnitOfWork, batch: Batch, process: str | None, by: str) -> RecordHeader:
    """Open the batch record of ``batch`` on the effective version of ``process`` (or of the
    only process effective for its product); refused if there is none, or a choice to make.
    Called once the batch has started processing: its event follows the batch's own."""
    effective = uow.mbrs.list(status=EFFECTIVE, product=batch.product)
    if process is not None:
        chosen = [r for r in effective if r.process == process]
        if not chosen:
            known = uow.mbrs.versions(process)
            why = (
                "does not exist"
                if not known
                else f"is for product {known[0].product}"
                if known[0].product != batch.product
                else "has no effective version (approve one first)"
            )
            raise RuleViolation(
                f"batch {batch.lot}: process {process} {why}; effective for {batch.product}: "
                f"{', '.join(r.process for r in effective) or 'none'}"
            )
    elif not effective:
        raise RuleViolation(
            f"batch {batch.lot}: no master batch record is effective for product "
            f"{batch.product}; import one and have QA approve it"
        )
    elif len(effective) > 1:
        raise InvalidInput(
            f"batch {batch.lot}: choose the process: "
            f"{', '.join(r.process for r in effective)} are effective for {batch.product}"
        )
    else:
        chosen = effective
    mbr = chosen[0]
    patient = uow.patients.find(batch.patient_pseudonym)
    assert patient is not None, "a batch's patient exists (foreign key)"
    now = uow.clock.now()
    header = RecordHeader(batch.lot, mbr.process, mbr.version, patient.weight_kg, now, by)
    uow.records.start(header)
    batch.events.append(
        Event(
            "BatchRecordOpened",
            by,
            now,
            "batch",
            batch.lot,
            new={
                "process": mbr.process,
                "process_version": mbr.version,
                "content_hash": mbr.content_hash,
                "patient_weight_kg": patient.weight_kg,
            },
        )
    )
    return header


def load_record(uow: UnitOfWork, lot: str) -> BatchRecord:
    """The batch record of ``lot`` against the MBR version it is bound to."""
    return _load(uow.records, uow.mbrs, lot)


def _load(records: BatchRecordRepository, mbrs: MbrRepository, lot: str) -> BatchRecord:
    found = records.header_and_hash(lot)
    if found is None:
        raise RuleViolation(
            f"batch {lot} has no batch record: processing has not started on a master batch "
            "record (a batch that started before batch records existed needs a QA decision: "
            "hold or terminate it)"
        )
    header, content_hash = found
    definition = _DEFINITIONS.get(content_hash) or definition_of(
        mbrs.get(header.process, header.process_version)
    )
    entries = records.entries(lot)
    for entry in entries:  # values in the MBR's order, whatever order the rows came in
        order = [p.name for p in definition.step(entry.step_id).parameters]
        entry.values = {n: entry.values[n] for n in order if n in entry.values}
    return BatchRecord(lot, definition, header.patient_weight_kg, entries, header.started_at,
                       steps_on_equipment=header.steps_on_equipment)  # fmt: skip


def check_record_complete(uow: UnitOfWork, lot: str) -> None:
    """Refuse to complete processing while a step is missing or awaits its verification."""
    record = load_record(uow, lot)
    if record.complete:
        return
    done = {e.step_id for e in record.entries}
    missing = [s.id for s in record.process.steps if s.id not in done]
    unverified = [
        f"{e.step_id} #{e.occurrence}"
        for e in record.entries
        if e.verified_by is None and record.process.step(e.step_id).verification
    ]
    parts = []
    if missing:
        parts.append(f"steps not recorded: {', '.join(missing)}")
    if unverified:
        parts.append(f"steps awaiting verification: {', '.join(unverified)}")
    raise RuleViolation(f"batch {lot}: the batch record is not complete ({'; '.join(parts)})")
