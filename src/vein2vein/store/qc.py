"""Repositories of QC: specifications, samples, results, OOS investigations, exceptions,
conditional releases, culture alerts and batch record reviews. They read and write rows;
the services decide (domain/qc.py holds the rules)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from vein2vein.domain.errors import ConcurrencyConflict, NotFound
from vein2vein.domain.qc import (
    ConditionalStatus,
    OosInvestigation,
    OosOutcome,
    ResultStatus,
    TestResult,
)
from vein2vein.domain.specification import Conformance, Stage
from vein2vein.store import tables as t
from vein2vein.store.mbr import set_version_status

__all__ = [
    "AlertRow",
    "ConditionalRelease",
    "ExceptionRow",
    "InvestigationRow",
    "QcRepository",
    "ReviewRow",
    "SampleRow",
    "SpecRecord",
    "SpecRepository",
]


@dataclass(frozen=True, slots=True)
class SpecRecord:
    code: str
    version: int
    product: str
    stage: str
    title: str
    status: str  # DRAFT, EFFECTIVE, SUPERSEDED
    source: str
    content_hash: str
    imported_at: datetime
    imported_by: str
    approved_at: datetime | None = None
    approved_by: str | None = None


class SpecRepository:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    def add(self, record: SpecRecord) -> None:
        self._c.execute(t.specification.insert().values(**asdict(record)))

    def list(
        self,
        *,
        code: str | None = None,
        product: str | None = None,
        stage: str | None = None,
        status: str | None = None,
    ) -> list[SpecRecord]:
        s = t.specification
        query = sa.select(s).order_by(s.c.product, s.c.stage, s.c.code, s.c.version)
        for column, value in (
            ("code", code),
            ("product", product),
            ("stage", stage),
            ("status", status),
        ):
            if value is not None:
                query = query.where(s.c[column] == value)
        return [SpecRecord(**r._mapping) for r in self._c.execute(query)]

    def get(self, code: str, version: int) -> SpecRecord:
        s = t.specification
        row = self._c.execute(
            sa.select(s).where(s.c.code == code, s.c.version == version)
        ).one_or_none()
        if row is None:
            raise NotFound(f"specification {code} v{version} does not exist")
        return SpecRecord(**row._mapping)

    def set_status(
        self,
        code: str,
        version: int,
        *,
        was: str,
        now: str,
        approved_at: datetime | None = None,
        approved_by: str | None = None,
    ) -> None:
        """Move a version from ``was`` to ``now``; refused if it is no longer ``was``."""
        set_version_status(
            self._c, t.specification.c.code, code, version, was=was, now=now,
            approved_at=approved_at, approved_by=approved_by, noun="specification",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SampleRow:
    id: str
    lot: str
    coi: str
    stage: Stage
    step_id: str | None
    spec_code: str
    spec_version: int
    drawn_at: datetime
    drawn_by: str


@dataclass(frozen=True, slots=True)
class InvestigationRow:
    investigation: OosInvestigation
    opened_at: datetime
    closed_at: datetime | None
    closed_by: str | None


@dataclass(frozen=True, slots=True)
class ExceptionRow:
    id: int
    lot: str
    kind: str  # acceptance-exception | oos-release-request
    attributes: tuple[str, ...]
    reason: str
    document: str | None
    signed_by: str
    signed_at: datetime


@dataclass(frozen=True, slots=True)
class ConditionalRelease:
    lot: str
    pending: tuple[str, ...]
    released_at: datetime
    released_by: str
    status: ConditionalStatus
    closed_at: datetime | None = None
    result_id: int | None = None


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    lot: str
    treatment_centre: str
    result_id: int
    deviation: str
    message: str
    raised_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    acknowledgement: str | None


@dataclass(frozen=True, slots=True)
class ReviewRow:
    lot: str
    reviewed_by: str
    reviewed_at: datetime
    comment: str


def _csv(values: tuple[str, ...] | list[str]) -> str:
    return ",".join(values)


def _split(text: str) -> tuple[str, ...]:
    return tuple(x for x in text.split(",") if x)


def _result(row: Any) -> TestResult:
    m = row._mapping
    return TestResult(
        id=m["id"],
        lot=m["lot"],
        sample_id=m["sample_id"],
        stage=Stage(m["stage"]),
        spec=f"{m['spec_code']} v{m['spec_version']}",
        attribute=m["attribute"],
        method=m["method"],
        method_version=m["method_version"],
        analyst=m["analyst"],
        instrument=m["instrument"],
        tested_at=m["tested_at"],
        entered=m["entered"],
        reported=m["reported"],
        number=m["number"],
        unit=m["unit"],
        conformance=Conformance(m["conformance"]),
        oot=bool(m["oot"]),
        status=ResultStatus(m["status"]),
        retest_of=m["retest_of"],
        verified_by=m["verified_by"],
        verified_at=m["verified_at"],
        invalidated_by=m["invalidated_by"],
        invalidated_at=m["invalidated_at"],
        invalid_reason=m["invalid_reason"],
        oot_reviewed_by=m["oot_reviewed_by"],
        oot_comment=m["oot_comment"],
    )


class QcRepository:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    # -- samples ---------------------------------------------------------------------
    def add_sample(self, sample: SampleRow) -> None:
        values = asdict(sample) | {"stage": sample.stage.value}
        self._c.execute(t.qc_sample.insert().values(**values))

    def sample(self, sample_id: str) -> SampleRow:
        row = self._c.execute(
            sa.select(t.qc_sample).where(t.qc_sample.c.id == sample_id)
        ).one_or_none()
        if row is None:
            raise NotFound(f"sample {sample_id!r} does not exist")
        return _sample(row)

    def samples(self, lot: str | None = None) -> list[SampleRow]:
        s = t.qc_sample
        query = sa.select(s).order_by(s.c.drawn_at, s.c.id)
        if lot is not None:
            query = query.where(s.c.lot == lot)
        return [_sample(r) for r in self._c.execute(query)]

    # -- results ---------------------------------------------------------------------
    def _results(self) -> sa.Select[Any]:
        r, s = t.test_result, t.qc_sample
        return (
            sa.select(r, s.c.stage, s.c.spec_code, s.c.spec_version)
            .join(s, s.c.id == r.c.sample_id)
            .order_by(r.c.id)
        )

    def add_result(self, result: TestResult, *, entered_at: datetime) -> int:
        values = {k: v for k, v in asdict(result).items() if k not in ("id", "stage", "spec")} | {
            "conformance": result.conformance.value,
            "status": result.status.value,
            "entered_at": entered_at,
        }
        return _new_id(self._c.execute(t.test_result.insert().values(**values)))

    def result(self, result_id: int, *, lock: bool = False) -> TestResult:
        query = self._results().where(t.test_result.c.id == result_id)
        if lock and self._c.dialect.name == "postgresql":
            query = query.with_for_update(of=t.test_result)
        row = self._c.execute(query).one_or_none()
        if row is None:
            raise NotFound(f"result {result_id} does not exist")
        return _result(row)

    def results(self, lot: str | None = None, *, sample_id: str | None = None) -> list[TestResult]:
        query = self._results()
        if lot is not None:
            query = query.where(t.test_result.c.lot == lot)
        if sample_id is not None:
            query = query.where(t.test_result.c.sample_id == sample_id)
        return [_result(r) for r in self._c.execute(query)]

    def update_result(self, before: TestResult, after: TestResult) -> None:
        """Write the changed status fields of ``after``; refused if the row is no longer
        what ``before`` says (someone changed it meanwhile)."""
        r = t.test_result
        changed = {
            k: v
            for k, v in asdict(after).items()
            if k
            in (
                "verified_by",
                "verified_at",
                "invalidated_by",
                "invalidated_at",
                "invalid_reason",
                "oot_reviewed_by",
                "oot_comment",
            )
        }
        done = self._c.execute(
            r.update()
            .where(r.c.id == before.id, r.c.status == before.status.value)
            .values(status=after.status.value, **changed)
        )
        if done.rowcount != 1:
            raise ConcurrencyConflict(f"result {before.id} was changed meanwhile; reload")

    def history(
        self, product: str, attribute: str, stage: Stage, *, excluding_lot: str
    ) -> list[float]:
        """The numbers of the verified, standing results of ``attribute`` at ``stage`` on
        the other batches of ``product``, oldest first (its history, for out-of-trend)."""
        r, b, smp = t.test_result, t.batch, t.qc_sample
        rows = self._c.execute(
            sa.select(r.c.number)
            .join(b, b.c.lot == r.c.lot)
            .join(smp, smp.c.id == r.c.sample_id)
            .where(
                b.c.product == product,
                r.c.attribute == attribute,
                smp.c.stage == stage.value,
                r.c.status == ResultStatus.VERIFIED.value,
                r.c.number.is_not(None),
                r.c.lot != excluding_lot,
            )
            .order_by(r.c.id)
        )
        return [float(x) for (x,) in rows]

    def turnaround_rows(self) -> list[tuple[str, datetime, datetime]]:
        """(method, drawn at, verified at) of every verified result."""
        r, s = t.test_result, t.qc_sample
        rows = self._c.execute(
            sa.select(r.c.method, s.c.drawn_at, r.c.verified_at)
            .join(s, s.c.id == r.c.sample_id)
            .where(r.c.verified_at.is_not(None))
        )
        return [(m, d, v) for m, d, v in rows]

    # -- OOS investigations ----------------------------------------------------------
    def add_investigation(self, inv: OosInvestigation, *, at: datetime) -> None:
        self._c.execute(
            t.oos_investigation.insert().values(
                reference=inv.reference,
                lot=inv.lot,
                result_id=inv.result_id,
                phase=inv.phase,
                opened_at=at,
            )
        )

    def investigation(self, reference: str) -> InvestigationRow:
        o = t.oos_investigation
        row = self._c.execute(sa.select(o).where(o.c.reference == reference)).one_or_none()
        if row is None:
            raise NotFound(f"OOS investigation {reference!r} does not exist")
        return _investigation(row)

    def investigations(
        self, lot: str | None = None, *, open_only: bool = False
    ) -> list[InvestigationRow]:
        o = t.oos_investigation
        query = sa.select(o).order_by(o.c.opened_at, o.c.reference)
        if lot is not None:
            query = query.where(o.c.lot == lot)
        if open_only:
            query = query.where(o.c.outcome.is_(None))
        return [_investigation(r) for r in self._c.execute(query)]

    def save_investigation(
        self,
        before: OosInvestigation,
        after: OosInvestigation,
        *,
        at: datetime | None = None,
        by: str | None = None,
    ) -> None:
        o = t.oos_investigation
        done = self._c.execute(
            o.update()
            .where(
                o.c.reference == before.reference, o.c.phase == before.phase, o.c.outcome.is_(None)
            )
            .values(
                phase=after.phase,
                phase_i_finding=after.phase_i_finding,
                outcome=after.outcome.value if after.outcome else None,
                conclusion=after.conclusion,
                closed_at=at,
                closed_by=by,
            )
        )
        if done.rowcount != 1:
            raise ConcurrencyConflict(f"{before.reference} was changed meanwhile; reload")

    # -- exceptions, conditional releases, alerts, reviews --------------------------------
    def add_exception(self, row: ExceptionRow) -> None:
        values = asdict(row) | {"attributes": _csv(row.attributes)}
        values.pop("id")
        self._c.execute(t.qc_exception.insert().values(**values))

    def exceptions(self, lot: str) -> list[ExceptionRow]:
        e = t.qc_exception
        rows = self._c.execute(sa.select(e).where(e.c.lot == lot).order_by(e.c.id))
        return [
            ExceptionRow(**(dict(r._mapping) | {"attributes": _split(r.attributes)})) for r in rows
        ]

    def add_conditional(self, row: ConditionalRelease) -> None:
        self._c.execute(
            t.conditional_release.insert().values(**(asdict(row) | {"pending": _csv(row.pending)}))
        )

    def conditional(self, lot: str) -> ConditionalRelease | None:
        c = t.conditional_release
        row = self._c.execute(sa.select(c).where(c.c.lot == lot)).one_or_none()
        if row is None:
            return None
        return ConditionalRelease(
            **(dict(row._mapping) | {"pending": _split(row.pending),
                                     "status": ConditionalStatus(row.status)})
        )  # fmt: skip

    def close_conditional(
        self, lot: str, *, status: ConditionalStatus, at: datetime, result_id: int
    ) -> None:
        c = t.conditional_release
        done = self._c.execute(
            c.update()
            .where(c.c.lot == lot, c.c.status == ConditionalStatus.PENDING.value)
            .values(status=status.value, closed_at=at, result_id=result_id)
        )
        if done.rowcount != 1:
            raise ConcurrencyConflict(f"the conditional release of {lot} is no longer pending")

    def add_alert(self, **values: Any) -> int:
        return _new_id(self._c.execute(t.qc_alert.insert().values(**values)))

    def alert(self, alert_id: int) -> AlertRow:
        a = t.qc_alert
        row = self._c.execute(sa.select(a).where(a.c.id == alert_id)).one_or_none()
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist")
        return AlertRow(**row._mapping)

    def alerts(self, lot: str | None = None) -> list[AlertRow]:
        a = t.qc_alert
        query = sa.select(a).order_by(a.c.raised_at.desc(), a.c.id.desc())
        if lot is not None:
            query = query.where(a.c.lot == lot)
        return [AlertRow(**r._mapping) for r in self._c.execute(query)]

    def acknowledge(self, alert_id: int, *, by: str, at: datetime, note: str) -> None:
        a = t.qc_alert
        done = self._c.execute(
            a.update()
            .where(a.c.id == alert_id, a.c.acknowledged_by.is_(None))
            .values(acknowledged_by=by, acknowledged_at=at, acknowledgement=note)
        )
        if done.rowcount != 1:
            raise ConcurrencyConflict(f"alert {alert_id} was acknowledged meanwhile")

    def review(self, lot: str) -> ReviewRow | None:
        r = t.record_review
        row = self._c.execute(sa.select(r).where(r.c.lot == lot)).one_or_none()
        return None if row is None else ReviewRow(**row._mapping)

    def add_review(self, row: ReviewRow) -> None:
        self._c.execute(t.record_review.insert().values(**asdict(row)))


def _new_id(done: sa.CursorResult[Any]) -> int:
    key = done.inserted_primary_key
    assert key is not None
    return int(key[0])


def _sample(row: Any) -> SampleRow:
    return SampleRow(**(dict(row._mapping) | {"stage": Stage(row.stage)}))


def _investigation(row: Any) -> InvestigationRow:
    inv = OosInvestigation(
        row.reference,
        row.lot,
        row.result_id,
        row.phase,
        row.phase_i_finding,
        OosOutcome(row.outcome) if row.outcome else None,
        row.conclusion,
    )
    return InvestigationRow(inv, row.opened_at, row.closed_at, row.closed_by)


def milestones(connection: sa.Connection, actions: list[str]) -> dict[str, dict[str, datetime]]:
    """For every batch, when each of ``actions`` (audit record actions) first happened."""
    a = t.audit_record
    rows = connection.execute(
        sa.select(a.c.entity_id, a.c.action, sa.func.min(a.c.at))
        .where(a.c.entity_type == "batch", a.c.action.in_(actions))
        .group_by(a.c.entity_id, a.c.action)
    )
    out: dict[str, dict[str, datetime]] = {}
    for lot, action, at in rows:
        out.setdefault(lot, {})[action] = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return out


def step_times(connection: sa.Connection, step_id: str) -> dict[str, datetime]:
    """For every batch, when step ``step_id`` of its record was first performed."""
    s = t.step_record
    rows = connection.execute(
        sa.select(s.c.lot, sa.func.min(s.c.performed_at, type_=t.UTCDateTime()))
        .where(s.c.step_id == step_id)
        .group_by(s.c.lot)
    )  # fmt: skip
    return {lot: at for lot, at in rows}
