"""An electronic batch record: one batch executed step by step against its MBR (issue 5).

Pure and stdlib only; the store and the services (next) keep it and call it. The rules:

- the steps follow the MBR's order: no step is skipped, none is done twice, except that a
  *repeatable* step (daily counts) may be recorded again until the next step starts;
- every typed value is rounded to its precision and classified (``ParameterSpec.classify``):
  an excursion (outside the NOR, inside the PAR) needs a comment; a value outside the PAR is
  recorded and asks for a deviation (:attr:`StepEntry.deviations`);
- computed values are worked out from their formula, never typed;
- a correction keeps the original value, the new one, who, when and why; a corrected step
  that needed verification needs it again (the verifier saw the old value); the values
  computed from it, in its step and in later ones, are worked out again, each change kept
  as a correction, and their steps need verifying again too;
- a step that needs verification is verified by another person than its performer or
  anyone who changed its values;
- a step consumes only released, unexpired lots of the types the MBR names, one lot per
  material, and uses equipment of the MBR's class, at the batch's site, in calibration
  (:func:`check_step_inputs`).

Examples
--------
>>> from datetime import UTC, datetime
>>> from vein2vein.domain.process import ParameterSpec, ProcessDefinition, Range, StepDefinition
>>> viability = ParameterSpec("viability", "%", 1, None, Range(90.0, 100.0), Range(80.0, 100.0))
>>> process = ProcessDefinition(1, "P", "PROC", "Test", 1, (
...     StepDefinition("receipt", "Receipt", "Check the bag.", 1.0, (viability,)),))
>>> record = BatchRecord("CP1-2026-00001", process, patient_weight_kg=70.0)
>>> entry = record.record_step("receipt", {"viability": 85.04}, by="op.one",
...                            at=datetime(2026, 3, 2, tzinfo=UTC), comments={"viability": "low"})
>>> entry.values["viability"].reported, entry.values["viability"].outcome.value
(85.0, 'excursion')
>>> record.complete
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from hashlib import sha256

from vein2vein.domain.errors import (
    ConcurrencyConflict,
    InvalidInput,
    PermissionDenied,
    RuleViolation,
)
from vein2vein.domain.materials import Equipment, MaterialLot
from vein2vein.domain.people import Actor
from vein2vein.domain.permissions import check_verifier
from vein2vein.domain.process import Outcome, ProcessDefinition, StepDefinition, compute

__all__ = [
    "BatchRecord",
    "Correction",
    "Exception_",
    "RecordedValue",
    "StepEntry",
    "check_step_inputs",
]


@dataclass(frozen=True, slots=True)
class Correction:
    """A recorded value changed after first entry (Annex 11 §8): both values, who, when, why."""

    old: float
    new: float
    by: str
    at: datetime
    why: str


@dataclass(frozen=True, slots=True)
class RecordedValue:
    name: str
    unit: str
    entered: float  # as typed, or as computed
    reported: float  # rounded to the parameter's precision
    outcome: Outcome
    computed: bool = False
    comment: str | None = None
    corrections: tuple[Correction, ...] = ()


@dataclass
class StepEntry:
    """One performance of one step."""

    step_id: str
    occurrence: int  # 1, 2, … for a repeatable step
    performed_by: str
    performed_at: datetime  # when the step was completed and recorded
    values: dict[str, RecordedValue]
    verified_by: str | None = None
    verified_at: datetime | None = None
    equipment: str | None = None  # the equipment id used
    materials: dict[str, str] = field(default_factory=dict)  # material type → lot consumed

    @property
    def digest(self) -> str:
        """A short fingerprint of the values as they read now: a verification form carries
        the one its person saw, so a value changed since is never verified unseen."""
        text = ";".join(f"{n}={v.reported!r}" for n, v in sorted(self.values.items()))
        return sha256(text.encode()).hexdigest()[:16]

    @property
    def makers(self) -> set[str]:
        """Who performed the step or changed its values: none of them may verify it."""
        return {self.performed_by} | {c.by for v in self.values.values() for c in v.corrections}

    @property
    def deviations(self) -> list[str]:
        """The parameters whose value lies outside the PAR: each opens a deviation."""
        return [v.name for v in self.values.values() if v.outcome is Outcome.OUT_OF_PAR]


@dataclass(frozen=True, slots=True)
class Exception_:
    """What QA reviews by exception: an excursion, a value out of PAR, a correction, a late
    step, a step still waiting for its verification."""

    step_id: str
    occurrence: int
    kind: str  # excursion, out-of-par, correction, late, unverified
    detail: str


@dataclass
class BatchRecord:
    """The record of one batch against the MBR version it started with."""

    lot: str
    process: ProcessDefinition
    patient_weight_kg: float
    entries: list[StepEntry] = field(default_factory=list)
    started_at: datetime | None = None  # when processing started (the first step's clock)
    # The computed values the last correction changed, as (entry, parameter name).
    recomputed: list[tuple[StepEntry, str]] = field(default_factory=list)
    # How many of its steps run on equipment now (issue 10): a step recorded ends them.
    steps_on_equipment: int = 0

    # -- where the batch is ------------------------------------------------------------
    def _index(self, step_id: str) -> int:
        for i, step in enumerate(self.process.steps):
            if step.id == step_id:
                return i
        raise InvalidInput(f"batch {self.lot}: {self.process.process} has no step {step_id!r}")

    @property
    def _last_index(self) -> int:
        return self._index(self.entries[-1].step_id) if self.entries else -1

    def next_steps(self) -> list[StepDefinition]:
        """What may be recorded now: the next step, and the last one again if repeatable."""
        steps = self.process.steps
        allowed = []
        if self.entries and steps[self._last_index].repeatable:
            allowed.append(steps[self._last_index])
        if self._last_index + 1 < len(steps):
            allowed.append(steps[self._last_index + 1])
        return allowed

    @property
    def complete(self) -> bool:
        """Every step recorded, and verified where the MBR asks for it."""
        done = {e.step_id for e in self.entries}
        return all(s.id in done for s in self.process.steps) and not any(
            e.verified_by is None and self.process.step(e.step_id).verification
            for e in self.entries
        )

    # -- recording -----------------------------------------------------------------------
    def record_step(
        self,
        step_id: str,
        values: dict[str, float],
        *,
        by: str,
        at: datetime,
        comments: dict[str, str] | None = None,
    ) -> StepEntry:
        """Record one performance of ``step_id`` with the typed ``values``."""
        comments = {k: v.strip() for k, v in (comments or {}).items() if v and v.strip()}
        step = self.process.steps[self._index(step_id)]  # an unknown step is named
        allowed = [s.id for s in self.next_steps()]
        if step_id not in allowed:
            if any(e.step_id == step_id for e in self.entries):
                why = (
                    "is repeatable only until the next step starts"
                    if step.repeatable
                    else "is recorded already and is not repeatable"
                )
                raise RuleViolation(f"batch {self.lot}: step {step_id} {why}")
            raise RuleViolation(
                f"batch {self.lot}: step {step_id} cannot be recorded now; next: "
                f"{', '.join(allowed) or 'none (the record is complete)'}"
            )
        typed = {p.name for p in step.parameters if p.formula is None}
        computed = [p for p in step.parameters if p.formula is not None]
        if unknown := set(values) - typed:
            computed_names = {p.name for p in computed}
            what = ", ".join(sorted(unknown))
            if unknown & computed_names:
                raise InvalidInput(f"step {step_id}: {what} is computed, never typed")
            raise InvalidInput(f"step {step_id}: {what} is not a parameter of this step")
        if missing := typed - set(values):
            raise InvalidInput(f"step {step_id}: missing {', '.join(sorted(missing))}")
        recorded: dict[str, RecordedValue] = {}
        for spec in step.parameters:
            if spec.formula is not None:
                continue
            classified = spec.classify(float(values[spec.name]))
            comment = comments.get(spec.name)
            if classified.outcome is Outcome.EXCURSION and not comment:
                raise InvalidInput(
                    f"step {step_id}: {spec.name} {classified.reported:g} {spec.unit} is outside "
                    f"the normal range {spec.nor}: say why in a comment"
                )
            recorded[spec.name] = RecordedValue(
                spec.name, spec.unit, float(values[spec.name]), classified.reported,
                classified.outcome, comment=comment,
            )  # fmt: skip
        for spec in computed:
            known = self._known_values() | {k: v.reported for k, v in recorded.items()}
            value = compute(spec.formula or "", known)
            classified = spec.classify(value)
            recorded[spec.name] = RecordedValue(
                spec.name, spec.unit, value, classified.reported, classified.outcome,
                computed=True, comment=comments.get(spec.name),
            )  # fmt: skip
        occurrence = 1 + sum(1 for e in self.entries if e.step_id == step_id)
        entry = StepEntry(step_id, occurrence, by, at, recorded)
        self.entries.append(entry)
        return entry

    def preview(self, step_id: str, values: dict[str, float]) -> dict[str, float | None]:
        """The computed values of ``step_id`` as recording ``values`` would work them out
        (None where a value they need is not typed yet); nothing is recorded."""
        step = self.process.step(step_id)
        known = self._known_values() | {
            p.name: step.parameter(p.name).classify(values[p.name]).reported
            for p in step.parameters
            if p.formula is None and p.name in values
        }
        out: dict[str, float | None] = {}
        for spec in (p for p in step.parameters if p.formula):
            try:
                out[spec.name] = known[spec.name] = compute(spec.formula or "", known)
            except InvalidInput:
                out[spec.name] = None
        return out

    def _known_values(self, until: int | None = None) -> dict[str, float]:
        """The latest reported value of every parameter so far (or in the entries before
        index ``until``), and the order's context."""
        known: dict[str, float] = {"patient_weight_kg": self.patient_weight_kg}
        for entry in self.entries[:until]:
            known |= {k: v.reported for k, v in entry.values.items()}
        return known

    def entry(self, step_id: str, occurrence: int) -> StepEntry:
        for entry in self.entries:
            if entry.step_id == step_id and entry.occurrence == occurrence:
                return entry
        raise InvalidInput(f"batch {self.lot}: step {step_id} #{occurrence} is not recorded")

    def correct(
        self,
        step_id: str,
        occurrence: int,
        name: str,
        value: float,
        *,
        by: str,
        at: datetime,
        why: str,
        comment: str | None = None,
    ) -> RecordedValue:
        """Correct a typed value; the original stays, with who, when and why it changed.

        The value's comment is ``comment`` from now on (the one it had stays in the audit
        trail); a corrected value outside its NOR needs one, as a typed one does.
        """
        if not why or not why.strip():
            raise InvalidInput(f"step {step_id}: correcting {name} needs a reason")
        comment = comment.strip() if comment and comment.strip() else None
        entry = self.entry(step_id, occurrence)
        spec = self.process.step(step_id).parameter(name)
        if spec.formula is not None:
            raise InvalidInput(f"step {step_id}: {name} is computed; correct what it comes from")
        old = entry.values[name]
        classified = spec.classify(float(value))
        if classified.outcome is Outcome.EXCURSION and not comment:
            raise InvalidInput(
                f"step {step_id}: {name} {classified.reported:g} {spec.unit} is outside the "
                f"normal range {spec.nor}: say why in a comment"
            )
        if classified.reported == old.reported and comment == old.comment:
            raise InvalidInput(
                f"step {step_id}: {name} is {old.reported:g} {spec.unit} already; nothing to "
                "correct"
            )
        correction = Correction(old.reported, classified.reported, by, at, why.strip())
        corrected = replace(
            old,
            entered=float(value),
            reported=classified.reported,
            outcome=classified.outcome,
            comment=comment,
            corrections=(*old.corrections, correction),
        )
        entry.values[name] = corrected
        self._unverify(entry)
        self.recomputed = self._recompute(entry, name, by=by, at=at)
        return corrected

    def _unverify(self, entry: StepEntry) -> None:
        if self.process.step(entry.step_id).verification:
            entry.verified_by = entry.verified_at = None  # the verifier saw the old value

    def _recompute(self, source: StepEntry, name: str, *, by: str, at: datetime) -> list[
        tuple[StepEntry, str]
    ]:  # fmt: skip
        """Work out again every computed value from ``source`` on (in its step and in later
        steps) after ``name`` changed there; each value that changes keeps a correction
        naming why, and its step needs verifying again. The (entry, name) pairs changed."""
        changed: list[tuple[StepEntry, str]] = []
        start = self.entries.index(source)
        for index in range(start, len(self.entries)):
            entry = self.entries[index]
            for spec in (p for p in self.process.step(entry.step_id).parameters if p.formula):
                known = self._known_values(index) | {k: v.reported for k, v in entry.values.items()}
                exact = compute(spec.formula or "", known)
                result = spec.classify(exact)
                before = entry.values[spec.name]
                if result.reported == before.reported:
                    entry.values[spec.name] = replace(before, entered=exact)
                    continue
                where = f"{source.step_id} #{source.occurrence}"
                entry.values[spec.name] = replace(
                    before,
                    entered=exact,
                    reported=result.reported,
                    outcome=result.outcome,
                    corrections=(
                        *before.corrections,
                        Correction(before.reported, result.reported, by, at,
                                   f"recomputed after {name} was corrected at {where}"),
                    ),
                )  # fmt: skip
                if entry is not source:
                    self._unverify(entry)
                changed.append((entry, spec.name))
        return changed

    def verify(
        self, step_id: str, occurrence: int, *, by: Actor, at: datetime, seen: str | None = None
    ) -> StepEntry:
        """A second person verifies a step the MBR asks to be verified; ``seen``, when given,
        is the :attr:`StepEntry.digest` of the values the person looked at."""
        entry = self.entry(step_id, occurrence)
        if seen is not None and seen != entry.digest:
            raise ConcurrencyConflict(
                f"step {step_id} #{occurrence} of batch {self.lot} changed since you looked at "
                "it; reload and check its values before verifying"
            )
        if not self.process.step(step_id).verification:
            raise RuleViolation(f"step {step_id} needs no verification")
        if entry.verified_by is not None:
            raise RuleViolation(
                f"step {step_id} #{occurrence} was verified already by {entry.verified_by}"
            )
        check_verifier(by, entry.performed_by, f"step {step_id} of batch {self.lot}")
        if by.user_id in entry.makers:
            raise PermissionDenied(
                f"{by.user_id} may not verify step {step_id} of batch {self.lot}: they changed "
                "its values (a second person verifies)"
            )
        entry.verified_by, entry.verified_at = by.user_id, at
        return entry

    # -- review by exception -------------------------------------------------------------
    def exceptions(self) -> list[Exception_]:
        """Only what QA must look at: excursions, values out of PAR, corrections, steps that
        took half as long again as expected, and steps waiting for verification."""
        found: list[Exception_] = []
        previous: datetime | None = self.started_at
        for entry in self.entries:
            step = self.process.step(entry.step_id)

            def note(kind: str, detail: str, entry: StepEntry = entry) -> None:
                found.append(Exception_(entry.step_id, entry.occurrence, kind, detail))

            for v in entry.values.values():
                if v.outcome is Outcome.EXCURSION:
                    why = v.comment or ("computed" if v.computed else "no comment")
                    note("excursion", f"{v.name} {v.reported:g} {v.unit}: {why}")
                elif v.outcome is Outcome.OUT_OF_PAR:
                    note("out-of-par", f"{v.name} {v.reported:g} {v.unit}")
                for c in v.corrections:
                    note("correction", f"{v.name} {c.old:g} → {c.new:g} by {c.by}: {c.why}")
            if (
                previous is not None
                and not step.repeatable
                and entry.performed_at - previous > timedelta(hours=1.5 * step.expected_hours)
            ):
                hours = (entry.performed_at - previous).total_seconds() / 3600
                note("late", f"{hours:.0f} h, expected {step.expected_hours:g} h")
            if step.verification and entry.verified_by is None:
                note("unverified", "awaits verification")
            previous = entry.performed_at
        return found


def check_step_inputs(
    step: StepDefinition,
    lots: Sequence[MaterialLot],
    equipment: Equipment | None,
    *,
    site: str,
    on: date,
) -> dict[str, MaterialLot]:
    """Check what a step is about to consume and use; return the lot used for each material
    type the MBR names.

    Every material of the step needs one lot of its type (scanned), no lot may be given
    twice or be of a type the step does not use, and each lot must be released and
    unexpired; equipment is required where the step names a class, and must be of that
    class, at the batch's ``site`` and in calibration on ``on``.
    """
    wanted = [m.type for m in step.materials]
    by_type: dict[str, MaterialLot] = {}
    seen: set[str] = set()
    for lot in lots:
        if lot.lot in seen:
            raise InvalidInput(f"step {step.id}: material lot {lot.lot} is given twice")
        seen.add(lot.lot)
        if lot.type not in wanted:
            raise RuleViolation(
                f"step {step.id}: material lot {lot.lot} is {lot.type!r}, which this step does "
                f"not use (it uses: {', '.join(wanted) or 'no materials'})"
            )
        if lot.type in by_type:
            raise InvalidInput(
                f"step {step.id}: two lots of {lot.type!r} ({by_type[lot.type].lot}, {lot.lot}); "
                "scan one"
            )
        lot.check_consumable(lot.type, on=on)
        by_type[lot.type] = lot
    if missing := [t for t in wanted if t not in by_type]:
        raise InvalidInput(f"step {step.id}: scan the lot of {', '.join(missing)}")
    if step.equipment_class is not None:
        if equipment is None:
            raise InvalidInput(
                f"step {step.id}: scan the equipment used (class {step.equipment_class})"
            )
        equipment.check_usable(step.equipment_class, site=site, on=on)
    elif equipment is not None:
        raise InvalidInput(f"step {step.id}: uses no equipment, but {equipment.id} was given")
    return by_type
