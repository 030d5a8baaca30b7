"""Read side of QC: a batch's samples, results, investigations, exceptions and release check;
the QC workload (pending tests by due time, turnaround per method, batch timelines); alerts.
What the pages, the certificate of analysis, the API and the CLI show — nothing here writes.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from vein2vein.domain.batch import TRANSITIONS, Action, BatchState
from vein2vein.domain.errors import NotFound
from vein2vein.domain.people import Actor
from vein2vein.domain.qc import AcceptanceCheck, ReleaseCheck, TestResult, current_results
from vein2vein.domain.specification import Attribute, Specification, Stage
from vein2vein.services.app import App
from vein2vein.services.authorise import require
from vein2vein.services.queries import SignatureView
from vein2vein.services.release import (
    ACCEPTANCE_EXCEPTION,
    OOS_RELEASE_REQUEST,
    acceptance_for,
    check_release,
    spec_of,
)
from vein2vein.store import queries as q
from vein2vein.store.people import UserRepository, signatures_for
from vein2vein.store.qc import (
    AlertRow,
    ConditionalRelease,
    ExceptionRow,
    InvestigationRow,
    QcRepository,
    ReviewRow,
    SampleRow,
    SpecRepository,
    milestones,
    step_times,
)
from vein2vein.store.queries import BatchRow
from vein2vein.store.records import DeviationRepository

__all__ = [
    "SIGNED_WHAT",
    "BatchQc",
    "PendingTest",
    "QcFlags",
    "ResultView",
    "SampleView",
    "Timeline",
    "Turnaround",
    "Workload",
    "alerts",
    "batch_qc",
    "qc_flags",
    "workload",
]

HARVEST_STEP = "harvest_formulation"  # both example processes name their harvest so
_RELEASE_EVENTS = [
    TRANSITIONS[a].event for a in (Action.RELEASE, Action.RELEASE_CONDITIONALLY, Action.RELEASE_OOS)
]
_COLLECTED = TRANSITIONS[Action.COLLECT].event
_INFUSED = TRANSITIONS[Action.INFUSE].event


# What a signed record of a batch's QC and release is, in words.
SIGNED_WHAT = {
    "StartingMaterialAccepted": "acceptance of the starting material",
    "StartingMaterialRejected": "rejection of the starting material",
    "BatchRecordReviewed": "review of the batch record",
    "TestResultVerified": "second-analyst verification of a result",
    "OosInvestigationConcluded": "conclusion of an OOS investigation",
    "OosReleaseRequested": "physician's request to release out of specification",
    "BatchReleased": "release",
    "BatchConditionallyReleased": "conditional release",
    "BatchReleasedOutOfSpecification": "release out of specification",
    "ReleaseConfirmed": "confirmation of a conditional release",
    "BatchRejected": "rejection of the batch",
}


@dataclass(frozen=True, slots=True)
class ResultView:
    result: TestResult
    attribute: Attribute
    method_title: str
    verification: SignatureView | None
    investigation: str | None  # the OOS investigation this result opened
    retested_by: int | None  # the result that retests this one


@dataclass(frozen=True, slots=True)
class SampleView:
    sample: SampleRow
    spec: Specification
    results: list[ResultView]
    outstanding: list[Attribute]  # attributes with no standing result on this sample
    due: datetime  # when the slowest outstanding test should be done

    @property
    def label(self) -> str:
        if self.sample.step_id:
            where = f"step {self.sample.step_id}"
        else:
            where = "on receipt" if self.sample.stage is Stage.STARTING_MATERIAL else "for release"
        return f"{self.sample.id} · {self.sample.stage.value} · {where}"


@dataclass(frozen=True, slots=True)
class BatchQc:
    batch: BatchRow
    samples: list[SampleView]
    acceptance: tuple[Specification, AcceptanceCheck] | None
    release: tuple[Specification, ReleaseCheck] | None
    investigations: list[InvestigationRow]
    exceptions: list[ExceptionRow]
    conditional: ConditionalRelease | None
    alerts: list[AlertRow]
    review: ReviewRow | None
    signatures: dict[str, list[SignatureView]]  # by entity key: "batch", "oos:<ref>"
    names: dict[str, str]
    signed_actions: dict[int, str]  # audit seq of a signed record → its action

    def what_was_signed(self, signature: SignatureView) -> str:
        action = self.signed_actions.get(signature.seq, "")
        return SIGNED_WHAT.get(action, action)

    def name(self, user_id: str | None) -> str:
        return self.names.get(user_id or "", user_id or "")

    @property
    def acceptance_exceptions(self) -> list[ExceptionRow]:
        return [e for e in self.exceptions if e.kind == ACCEPTANCE_EXCEPTION]

    @property
    def oos_requests(self) -> list[ExceptionRow]:
        return [e for e in self.exceptions if e.kind == OOS_RELEASE_REQUEST]

    @property
    def results(self) -> list[ResultView]:
        return [r for s in self.samples for r in s.results]

    @property
    def oos_results(self) -> list[ResultView]:
        """Every OOS result, whatever became of it: the flag is never hidden."""
        return [r for r in self.results if r.result.oos]


_CLOSED = {BatchState.REJECTED.value, BatchState.TERMINATED.value}
_FINISHED = _CLOSED | {BatchState.INFUSED.value}
_BEFORE_ACCEPTANCE = {"ORDERED", "COLLECTED", "IN_TRANSIT"}
_BEFORE_RELEASE_CHECK = _BEFORE_ACCEPTANCE | {"RECEIVED", "ACCEPTED", "REJECTED"}


def batch_qc(app: App, by: Actor, lot: str) -> BatchQc:
    """Everything QC knows about batch ``lot``, with every signature beside its record."""
    require(by, "qc.read")
    with app.reader() as connection:
        rows = q.batch_rows(connection, lot=lot)
        if not rows:
            raise NotFound(f"batch {lot!r} does not exist")
        row = rows[0]
        qc, specs = QcRepository(connection), SpecRepository(connection)
        deviations = DeviationRepository(connection)
        samples = qc.samples(lot)
        results = qc.results(lot)
        investigations = qc.investigations(lot)
        acceptance = release = None
        if row.state not in _BEFORE_ACCEPTANCE and _has_spec(
            specs, row.product, Stage.STARTING_MATERIAL
        ):
            acceptance = acceptance_for(qc, specs, row)
        sampled_for_release = any(x.stage is Stage.RELEASE for x in samples)
        if (row.state not in _BEFORE_RELEASE_CHECK or sampled_for_release) and _has_spec(
            specs, row.product, Stage.RELEASE
        ):
            release = check_release(qc, specs, deviations, row)
        spec_by_sample = {s.id: spec_of(specs, s) for s in samples}
        refs = [i.investigation.reference for i in investigations]
        signed = (
            signatures_for(connection, entity_type="batch", entity_ids=[lot])
            + signatures_for(
                connection, entity_type="result", entity_ids=[str(r.id) for r in results]
            )
            + signatures_for(connection, entity_type="oos", entity_ids=refs)
        )
        names = {u.user_id: u.full_name for u in UserRepository(connection).list()}
        exceptions = qc.exceptions(lot)
        conditional = qc.conditional(lot)
        alerts_ = qc.alerts(lot)
        review = qc.review(lot)
    signatures: dict[str, list[SignatureView]] = {}
    signed_actions: dict[int, str] = {}
    for s in signed:
        action = json.loads(s.body).get("action", "") if s.body else ""
        if action == "StepVerified":
            continue  # a step of the batch record: shown with the record, not with QC
        key = "batch" if s.entity_type == "batch" else f"{s.entity_type}:{s.entity_id}"
        signatures.setdefault(key, []).append(SignatureView.of(s))
        signed_actions[s.audit_seq] = action
    opened = {i.investigation.result_id: i.investigation.reference for i in investigations}
    retests = {r.retest_of: r.id for r in results if r.retest_of is not None}
    views = []
    for sample in samples:
        spec = spec_by_sample[sample.id]
        mine = [r for r in results if r.sample_id == sample.id]
        standing = current_results(mine)
        result_views = []
        for r in mine:
            attribute = spec.attribute(r.attribute)
            verification = signatures.get(f"result:{r.id}", [None])[-1]
            result_views.append(
                ResultView(
                    r,
                    attribute,
                    spec.method_of(attribute).title,
                    verification,
                    opened.get(r.id),
                    retests.get(r.id),
                )
            )
        outstanding = [a for a in spec.attributes if a.name not in standing]
        slowest = max((spec.method_of(a).turnaround_hours for a in outstanding), default=0.0)
        views.append(
            SampleView(
                sample, spec, result_views, outstanding, sample.drawn_at + timedelta(hours=slowest)
            )
        )
    return BatchQc(
        row,
        views,
        acceptance,
        release,
        investigations,
        exceptions,
        conditional,
        alerts_,
        review,
        signatures,
        names,
        signed_actions,
    )


@dataclass(frozen=True, slots=True)
class QcFlags:
    """What QC says about a batch wherever the batch is shown, whatever its state."""

    oos: tuple[str, ...]  # attributes with an OOS result, ever (invalidated ones too)
    accepted_by_exception: bool
    oos_release_requested: bool
    conditional: str | None  # PENDING, FINAL or FAILED
    alerts_open: int

    @property
    def any(self) -> bool:
        return bool(self.oos or self.accepted_by_exception or self.oos_release_requested
                    or self.conditional or self.alerts_open)  # fmt: skip


def qc_flags(app: App, by: Actor, lot: str) -> QcFlags:
    require(by, "qc.read")
    with app.reader() as connection:
        qc = QcRepository(connection)
        oos = tuple(sorted({r.attribute for r in qc.results(lot) if r.oos}))
        kinds = {e.kind for e in qc.exceptions(lot)}
        conditional = qc.conditional(lot)
        alerts_open = sum(1 for a in qc.alerts(lot) if a.acknowledged_by is None)
    return QcFlags(oos, ACCEPTANCE_EXCEPTION in kinds, OOS_RELEASE_REQUEST in kinds,
                   conditional.status.value if conditional else None, alerts_open)  # fmt: skip


def _has_spec(specs: SpecRepository, product: str, stage: Stage) -> bool:
    return bool(specs.list(product=product, stage=stage.value))


@dataclass(frozen=True, slots=True)
class PendingTest:
    lot: str
    sample_id: str
    stage: str
    attribute: str
    title: str
    method: str
    due: datetime
    overdue: bool
    state: str  # "not entered" or "awaiting verification"


@dataclass(frozen=True, slots=True)
class Turnaround:
    method: str
    n: int
    median_hours: float
    p90_hours: float
    target_hours: float | None


@dataclass(frozen=True, slots=True)
class Timeline:
    lot: str
    state: str
    treatment_centre: str
    collected: datetime | None
    harvested: datetime | None
    released: datetime | None
    infused: datetime | None
    harvest_to_release_days: float | None
    vein_to_vein_days: float | None  # to infusion, or so far
    so_far: bool


@dataclass(frozen=True, slots=True)
class Workload:
    now: datetime
    pending: list[PendingTest]
    turnaround: list[Turnaround]
    timelines: list[Timeline]
    open_investigations: list[InvestigationRow]
    alerts: list[AlertRow]
    oot_to_review: list[TestResult]

    @property
    def open_timelines(self) -> list[Timeline]:
        """Batches still on their way to a patient, the longest waiting first."""
        going = [t for t in self.timelines if t.state not in _FINISHED]
        return sorted(going, key=lambda t: -(t.vein_to_vein_days or 0.0))

    def infused_timelines(self, limit: int = 20) -> list[Timeline]:
        """The most recently infused batches."""
        done = [t for t in self.timelines if t.infused is not None]
        return sorted(done, key=lambda t: t.infused or self.now, reverse=True)[:limit]

    @property
    def timeline_summary(self) -> dict[str, tuple[int, float, float] | None]:
        """Over infused batches: (n, median, 90th percentile) of harvest → release days and
        of vein-to-vein days."""
        done = [t for t in self.timelines if t.infused is not None]
        out: dict[str, tuple[int, float, float] | None] = {}
        for key, values in (
            ("harvest_to_release", [t.harvest_to_release_days for t in done]),
            ("vein_to_vein", [t.vein_to_vein_days for t in done]),
        ):
            known = [v for v in values if v is not None]
            out[key] = (len(known), statistics.median(known), _p90(known)) if known else None
        return out


def workload(app: App, by: Actor) -> Workload:
    """The QC page: pending tests by due time, turnaround per method, each batch's time from
    harvest to release and its vein-to-vein time so far, open OOS investigations, alerts."""
    require(by, "qc.read")
    now = app.clock.now()
    with app.reader() as connection:
        qc, specs = QcRepository(connection), SpecRepository(connection)
        samples = qc.samples()
        results = qc.results()
        targets: dict[str, float] = {}
        pending: list[PendingTest] = []
        by_sample: dict[str, list[TestResult]] = {}
        for r in results:
            by_sample.setdefault(r.sample_id, []).append(r)
        batches = q.batch_rows(connection)
        closed = {b.lot for b in batches if b.state in _CLOSED}
        for sample in samples:
            spec = spec_of(specs, sample)
            if sample.lot in closed:
                continue  # a rejected or terminated batch waits for no test
            for m in spec.methods.values():
                targets[m.code] = m.turnaround_hours
            standing = current_results(by_sample.get(sample.id, []))
            for a in spec.attributes:
                due = sample.drawn_at + timedelta(hours=spec.method_of(a).turnaround_hours)
                state = None
                if a.name not in standing:
                    state = "not entered"
                elif any(r.verified_by is None for r in standing[a.name]):
                    state = "awaiting verification"
                if state is not None:
                    pending.append(
                        PendingTest(
                            sample.lot,
                            sample.id,
                            sample.stage.value,
                            a.name,
                            a.title,
                            a.method,
                            due,
                            due < now,
                            state,
                        )
                    )
        turnaround_rows = qc.turnaround_rows()
        marks = milestones(connection, [_COLLECTED, _INFUSED, *_RELEASE_EVENTS])
        harvests = step_times(connection, HARVEST_STEP)
        investigations = qc.investigations(open_only=True)
        alert_rows = [a for a in qc.alerts() if a.acknowledged_by is None]
    pending.sort(key=lambda p: (p.due, p.lot, p.attribute))
    hours: dict[str, list[float]] = {}
    for method, drawn, verified in turnaround_rows:
        hours.setdefault(method, []).append((verified - drawn).total_seconds() / 3600)
    turnaround = [
        Turnaround(m, len(h), statistics.median(h), _p90(h), targets.get(m))
        for m, h in sorted(hours.items())
    ]
    timelines = []
    for b in batches:
        mark = marks.get(b.lot, {})
        collected, infused = mark.get(_COLLECTED), mark.get(_INFUSED)
        released = min((mark[e] for e in _RELEASE_EVENTS if e in mark), default=None)
        harvested = harvests.get(b.lot)
        h2r = (released - harvested).total_seconds() / 86400 if released and harvested else None
        end = infused or (None if b.state in ("REJECTED", "TERMINATED") else now)
        v2v = (end - collected).total_seconds() / 86400 if collected and end else None
        timelines.append(
            Timeline(
                b.lot,
                b.state,
                b.treatment_centre,
                collected,
                harvested,
                released,
                infused,
                h2r,
                v2v,
                infused is None,
            )
        )
    oot = [r for r in results if r.oot and r.oot_reviewed_by is None and r.current]
    return Workload(now, pending, turnaround, timelines, investigations, alert_rows, oot)


def _p90(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def alerts(app: App, by: Actor) -> list[AlertRow]:
    """Every QC alert, newest first."""
    require(by, "qc.read")
    with app.reader() as connection:
        return QcRepository(connection).alerts()
