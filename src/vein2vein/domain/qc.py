"""QC results, OOS investigations, out-of-trend checks, acceptance and the release check.

Pure and stdlib only; the services load the records, call these rules and write what they
decide. The rules, each in one place:

* a result's conformance is decided at entry by :meth:`Attribute.evaluate` and never changes:
  an OOS flag survives invalidation, retest and release, and is printed on the certificate;
* a result counts once a second analyst — neither the one who entered it nor the one who drew
  the sample — has verified it (:func:`check_result_verifier`);
* a result is invalidated only with a reason; an OOS result only by an investigation that
  found a laboratory error (FDA, *Investigating OOS Test Results*, 2006);
* a new result for an attribute that already has a current one is refused: only an
  invalidated result is retested, and the retest names it (no testing into compliance);
* :func:`release_check` lists everything that stops a release, and says whether a conditional
  release (only the 14-day culture pending, its rapid method passed) or a release out of
  specification (only confirmed OOS results) is possible.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from vein2vein.domain.batch import BatchState
from vein2vein.domain.errors import InvalidInput, PermissionDenied, RuleViolation
from vein2vein.domain.people import Actor, Role
from vein2vein.domain.specification import Conformance, Specification, Stage

__all__ = [
    "DISPOSED",
    "OOT_MIN_HISTORY",
    "OOT_SIGMAS",
    "AcceptanceCheck",
    "Blocker",
    "BlockerKind",
    "ConditionalStatus",
    "OosInvestigation",
    "OosOutcome",
    "ReleaseCheck",
    "ResultStatus",
    "TestResult",
    "acceptance_check",
    "check_invalidation",
    "check_new_result",
    "check_not_the_analyst",
    "check_result_verifier",
    "current_results",
    "out_of_trend",
    "release_check",
]


# States in which a batch has had its disposition: its results are what it was released
# (or rejected) on, and no longer change by a plain invalidation.
DISPOSED = frozenset({
    BatchState.RELEASED, BatchState.CONDITIONALLY_RELEASED, BatchState.RELEASED_OOS,
    BatchState.SHIPPED, BatchState.DELIVERED, BatchState.INFUSED, BatchState.REJECTED,
    BatchState.TERMINATED,
})  # fmt: skip


class ConditionalStatus(StrEnum):
    PENDING = "PENDING"  # released conditionally, awaiting the pending results
    FINAL = "FINAL"  # the pending results conform: the release is final
    FAILED = "FAILED"  # a result after the conditional release is out of specification


class ResultStatus(StrEnum):
    ENTERED = "entered"  # awaiting the second analyst
    VERIFIED = "verified"
    INVALIDATED = "invalidated"


@dataclass(frozen=True, slots=True)
class TestResult:
    """One result of one attribute on one sample, as entered and as it stands now."""

    id: int
    lot: str
    sample_id: str
    stage: Stage
    spec: str  # "code vN"
    attribute: str
    method: str
    method_version: str
    analyst: str
    instrument: str | None
    tested_at: datetime
    entered: str  # what the analyst typed, as typed
    reported: str
    number: float | None
    unit: str
    conformance: Conformance
    oot: bool = False
    status: ResultStatus = ResultStatus.ENTERED
    retest_of: int | None = None
    verified_by: str | None = None
    verified_at: datetime | None = None
    invalidated_by: str | None = None
    invalidated_at: datetime | None = None
    invalid_reason: str | None = None
    oot_reviewed_by: str | None = None
    oot_comment: str | None = None

    __test__ = False  # not a pytest test class

    @property
    def current(self) -> bool:
        """Not invalidated: the result that stands for its attribute on its sample."""
        return self.status is not ResultStatus.INVALIDATED

    @property
    def oos(self) -> bool:
        return self.conformance is Conformance.OOS

    def invalidated(self, *, by: str, at: datetime, reason: str) -> TestResult:
        """This result invalidated, with a reason; the original values are kept."""
        if not reason or not reason.strip():
            raise InvalidInput(f"result {self.id}: invalidation needs a reason")
        if self.status is ResultStatus.INVALIDATED:
            raise RuleViolation(f"result {self.id} is invalidated already")
        return replace(
            self,
            status=ResultStatus.INVALIDATED,
            invalidated_by=by,
            invalidated_at=at,
            invalid_reason=reason.strip(),
        )


def check_result_verifier(verifier: str, result: TestResult, drawn_by: str) -> None:
    """Refuse a verification of ``result`` by its analyst or by the person who drew its
    sample: the second analyst is independent of the sample."""
    if verifier == result.analyst:
        raise PermissionDenied(
            f"{verifier} may not verify result {result.id}: they entered it (a second analyst "
            "verifies)"
        )
    if verifier == drawn_by:
        raise PermissionDenied(
            f"{verifier} may not verify result {result.id}: they drew sample "
            f"{result.sample_id} (the verifier is independent of the sample)"
        )
    if result.status is not ResultStatus.ENTERED:
        raise RuleViolation(f"result {result.id} is {result.status.value}: nothing to verify")


def check_not_the_analyst(actor: str, result: TestResult, what: str) -> None:
    """Refuse ``what`` (concluding an investigation, reviewing a trend) on a result by the
    analyst who entered it, whatever other roles they hold."""
    if actor == result.analyst:
        raise PermissionDenied(
            f"{actor} may not {what} result {result.id}: they entered it (a second person decides)"
        )


def check_invalidation(
    result: TestResult, actor: Actor, batch_state: BatchState, investigation: str | None = None
) -> None:
    """The rules of a plain invalidation (with a reason), beyond the permission table:

    * an OOS result beyond the starting material: only by its investigation (conclude_oos);
    * an apheresis result out of its criteria: only by QA, not by its analyst — otherwise
      an analyst could retest a patient's material into its criteria;
    * an out-of-trend result: only once QA has reviewed it;
    * nothing once the batch has had its disposition: it was released or rejected on these
      results (a deviation is the way then).
    """
    if batch_state in DISPOSED:
        raise RuleViolation(
            f"result {result.id}: batch {result.lot} is {batch_state.value}; its results are "
            "not invalidated after its disposition (open a deviation)"
        )
    if result.oos and result.stage is not Stage.STARTING_MATERIAL:
        raise RuleViolation(
            f"result {result.id} is out of specification: it is invalidated only when its OOS "
            f"investigation ({investigation or 'none'}) concludes a laboratory error"
        )
    if result.oos and (Role.QA_REVIEWER not in actor.roles or actor.user_id == result.analyst):
        raise PermissionDenied(
            f"{actor.user_id} may not invalidate result {result.id}: an apheresis result out of "
            "its criteria is invalidated only by QA, not by its analyst"
        )
    if result.oot and result.oot_reviewed_by is None:
        raise RuleViolation(
            f"result {result.id} is out of trend: QA reviews it before it can be invalidated"
        )


def check_new_result(
    sample_id: str, attribute: str, existing: Iterable[TestResult], retest_of: int | None
) -> None:
    """Refuse a second current result for ``attribute`` on a sample, and a retest of
    anything but an invalidated result of the same attribute and sample."""
    existing = list(existing)
    same = [r for r in existing if r.sample_id == sample_id and r.attribute == attribute]
    standing = [r for r in same if r.current]
    if retest_of is None:
        if standing:
            raise RuleViolation(
                f"sample {sample_id} has result {standing[0].id} for {attribute} already; a "
                "result is replaced only by invalidating it (with a reason) and retesting"
            )
        if same:
            raise InvalidInput(
                f"sample {sample_id}: {attribute} was invalidated (result {same[-1].id}); "
                "enter the new result as its retest"
            )
        return
    original = next((r for r in existing if r.id == retest_of), None)
    if original is None or original.sample_id != sample_id or original.attribute != attribute:
        raise InvalidInput(
            f"retest of result {retest_of}: no result {retest_of} of {attribute} on sample "
            f"{sample_id}"
        )
    if original.current:
        raise RuleViolation(
            f"result {retest_of} is {original.status.value}, not invalidated: only an "
            "invalidated result is retested (no testing into compliance)"
        )
    if standing:
        raise RuleViolation(
            f"sample {sample_id} has result {standing[0].id} for {attribute} already"
        )


def current_results(results: Iterable[TestResult]) -> dict[str, list[TestResult]]:
    """Per attribute, the results that stand (not invalidated), oldest first."""
    out: dict[str, list[TestResult]] = {}
    for r in sorted(results, key=lambda r: r.id):
        if r.current:
            out.setdefault(r.attribute, []).append(r)
    return out


# -- out of trend ------------------------------------------------------------------------

OOT_SIGMAS = 3.0  # beyond mean ± 3 SD of the product's history
OOT_MIN_HISTORY = 10  # fewer past results say nothing about a trend


def out_of_trend(
    value: float,
    history: Sequence[float],
    *,
    sigmas: float = OOT_SIGMAS,
    min_history: int = OOT_MIN_HISTORY,
) -> bool:
    """Whether ``value`` lies beyond mean ± ``sigmas`` standard deviations of the product's
    past results of the same attribute; never with fewer than ``min_history`` of them.

    >>> history = [80.0, 82, 81, 79, 83, 80, 81, 82, 80, 81]
    >>> out_of_trend(81.5, history), out_of_trend(72.0, history)
    (False, True)
    >>> out_of_trend(10.0, history[:5])   # too little history to call a trend
    False
    """
    if len(history) < min_history:
        return False
    mean = statistics.fmean(history)
    sd = statistics.stdev(history)
    return sd > 0 and abs(value - mean) > sigmas * sd  # no spread: no trend to leave


# -- OOS investigations ------------------------------------------------------------------


class OosOutcome(StrEnum):
    LABORATORY_ERROR = "laboratory-error"  # assignable cause: the result is invalidated
    CONFIRMED = "confirmed"  # no laboratory cause: the OOS stands for the batch


@dataclass(frozen=True, slots=True)
class OosInvestigation:
    """The investigation an OOS result opens: phase I (laboratory), then, when no
    laboratory cause is found, phase II (full: manufacturing, process, other batches); it
    ends with QA's signed conclusion."""

    reference: str
    lot: str
    result_id: int
    phase: int = 1
    phase_i_finding: str | None = None
    outcome: OosOutcome | None = None
    conclusion: str | None = None

    @property
    def open(self) -> bool:
        return self.outcome is None

    def escalated(self, finding: str) -> OosInvestigation:
        """Phase I found no laboratory cause: the investigation goes to phase II."""
        if not self.open:
            raise RuleViolation(f"{self.reference} is closed")
        if self.phase != 1:
            raise RuleViolation(f"{self.reference} is in phase II already")
        if not finding or not finding.strip():
            raise InvalidInput(f"{self.reference}: escalation needs the phase I finding")
        return replace(self, phase=2, phase_i_finding=finding.strip())

    def concluded(self, outcome: OosOutcome, conclusion: str) -> OosInvestigation:
        if not self.open:
            raise RuleViolation(f"{self.reference} is closed already ({self.outcome})")
        if not conclusion or not conclusion.strip():
            raise InvalidInput(f"{self.reference}: the conclusion is empty")
        if outcome is OosOutcome.CONFIRMED and self.phase == 1:
            raise RuleViolation(
                f"{self.reference}: an OOS is confirmed only after a full (phase II) "
                "investigation; escalate it with the phase I finding first"
            )
        return replace(self, outcome=outcome, conclusion=conclusion.strip())


# -- starting-material acceptance -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AcceptanceCheck:
    """The apheresis's results against the acceptance specification."""

    missing: tuple[str, ...]
    unverified: tuple[str, ...]
    out_of_criteria: tuple[TestResult, ...]

    @property
    def complete(self) -> bool:
        return not self.missing and not self.unverified

    @property
    def meets_criteria(self) -> bool:
        return self.complete and not self.out_of_criteria

    def problems(self) -> list[str]:
        out = []
        if self.missing:
            out.append(f"results missing: {', '.join(self.missing)}")
        if self.unverified:
            out.append(f"results awaiting verification: {', '.join(self.unverified)}")
        if self.out_of_criteria:
            out.append(
                "out of criteria: "
                + ", ".join(
                    f"{r.attribute} {r.reported} (result {r.id})" for r in self.out_of_criteria
                )
            )
        return out


def acceptance_check(spec: Specification, results: Iterable[TestResult]) -> AcceptanceCheck:
    if spec.stage is not Stage.STARTING_MATERIAL:
        raise InvalidInput(f"{spec.code} is a {spec.stage.value} specification, not acceptance")
    current = current_results(r for r in results if r.stage is Stage.STARTING_MATERIAL)
    missing = tuple(a.name for a in spec.attributes if a.name not in current)
    standing = [r for rs in current.values() for r in rs]
    unverified = tuple(r.attribute for r in standing if r.status is ResultStatus.ENTERED)
    oos = tuple(r for r in standing if r.oos)
    return AcceptanceCheck(missing, unverified, oos)


# -- the release check -------------------------------------------------------------------


class BlockerKind(StrEnum):
    MISSING = "result missing"
    UNVERIFIED = "result awaiting verification"
    OOS = "out of specification"
    INVESTIGATION = "OOS investigation open"
    OOT = "out-of-trend result not reviewed"
    DEVIATION = "deviation open"
    RECORD = "batch record not reviewed"


@dataclass(frozen=True, slots=True)
class Blocker:
    kind: BlockerKind
    subject: str  # the attribute, deviation or record it is about
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.subject} — {self.detail}"


@dataclass(frozen=True, slots=True)
class ReleaseCheck:
    """What stands between a batch and each form of release."""

    blockers: tuple[Blocker, ...]
    pending_conditional: tuple[str, ...]  # missing, but covered by a passing rapid method

    @property
    def releasable(self) -> bool:
        return not self.blockers

    @property
    def conditionally_releasable(self) -> bool:
        """Only results allowed to be pending are missing, and at least one is."""
        others = [
            b
            for b in self.blockers
            if not (b.kind is BlockerKind.MISSING and b.subject in self.pending_conditional)
        ]
        return bool(self.pending_conditional) and not others

    @property
    def releasable_oos(self) -> bool:
        """Only OOS results (confirmed by a closed investigation) stand in the way."""
        return bool(self.blockers) and all(b.kind is BlockerKind.OOS for b in self.blockers)

    @property
    def oos_attributes(self) -> list[str]:
        return [b.subject for b in self.blockers if b.kind is BlockerKind.OOS]


def release_check(
    spec: Specification,
    results: Iterable[TestResult],
    *,
    open_investigations: Iterable[OosInvestigation] = (),
    open_deviations: Iterable[str] = (),
    record_reviewed: bool,
) -> ReleaseCheck:
    """Everything that stops the release of a batch against its release ``spec``: results
    missing, unverified or OOS (in-process and release), open OOS investigations, unreviewed
    out-of-trend results, open major/critical deviations (references given), and a batch
    record QA has not reviewed."""
    if spec.stage is not Stage.RELEASE:
        raise InvalidInput(f"{spec.code} is a {spec.stage.value} specification, not release")
    results = [r for r in results if r.stage is not Stage.STARTING_MATERIAL]
    current = current_results(results)
    blockers: list[Blocker] = []
    pending: list[str] = []
    for attribute in spec.attributes:
        if attribute.name not in current or not any(
            r.stage is Stage.RELEASE for r in current[attribute.name]
        ):
            partner = attribute.pending_allowed_with
            detail = f"no result yet ({spec.method_of(attribute).title})"
            if partner is not None and _passes(current.get(partner, [])):
                pending.append(attribute.name)
                detail += (
                    f"; {spec.attribute(partner).title} conforms, so it may be pending "
                    "at a conditional release"
                )
            blockers.append(Blocker(BlockerKind.MISSING, attribute.name, detail))
    investigating = {i.result_id: i for i in open_investigations if i.open}
    for name, standing in current.items():
        for r in standing:
            if r.status is ResultStatus.ENTERED:
                blockers.append(
                    Blocker(
                        BlockerKind.UNVERIFIED,
                        name,
                        f"result {r.id} ({r.reported}) awaits a second analyst",
                    )
                )
            if r.oos and r.id in investigating:
                ref = investigating[r.id].reference
                blockers.append(
                    Blocker(
                        BlockerKind.INVESTIGATION,
                        name,
                        f"result {r.id} ({r.reported}): {ref} is open",
                    )
                )
            elif r.oos:
                blockers.append(
                    Blocker(
                        BlockerKind.OOS,
                        name,
                        f"result {r.id} is {r.reported}, outside the specification",
                    )
                )
            if r.oot and r.oot_reviewed_by is None:
                blockers.append(
                    Blocker(BlockerKind.OOT, name, f"result {r.id} ({r.reported}) is out of trend")
                )
    for reference in open_deviations:
        blockers.append(Blocker(BlockerKind.DEVIATION, reference, "must be closed by QA"))
    if not record_reviewed:
        blockers.append(
            Blocker(
                BlockerKind.RECORD,
                "batch record",
                "QA has not signed the review of the batch record",
            )
        )
    return ReleaseCheck(tuple(blockers), tuple(pending))


def _passes(results: Sequence[TestResult]) -> bool:
    return bool(results) and all(
        r.status is ResultStatus.VERIFIED and r.conformance is Conformance.CONFORMS for r in results
    )
