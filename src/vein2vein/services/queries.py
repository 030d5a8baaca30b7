"""Read side shared by the CLI, the API and the pages: what a person needs to see."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from vein2vein.domain.batch import (
    ATTENTION_AFTER_HOURS,
    OPEN_STATES,
    TRANSITIONS,
    Action,
    BatchState,
    needs_attention,
)
from vein2vein.domain.custody import CustodyEvent
from vein2vein.domain.errors import InvalidInput, NotFound, V2VError
from vein2vein.domain.identity import DEMONSTRATION_FINS, ChainOfIdentityId, Din
from vein2vein.domain.patient import Site
from vein2vein.domain.people import Actor
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.signatures import SignatureCheck, check_signature
from vein2vein.services.app import App
from vein2vein.services.authorise import batch_sites, permitted, require
from vein2vein.services.people import UserView
from vein2vein.services.release import qc_allows
from vein2vein.store import audit as audit_store
from vein2vein.store import queries as q
from vein2vein.store.audit import AuditEntry
from vein2vein.store.people import SignatureRow, UserRepository, signatures_for
from vein2vein.store.qc import QcRepository, SpecRepository
from vein2vein.store.queries import BatchRow, LinkCheck
from vein2vein.store.records import DeviationRepository
from vein2vein.store.repositories import SiteRepository

__all__ = [
    "ActionOption",
    "AttentionItem",
    "BatchRow",
    "BatchView",
    "IdentityView",
    "NetworkOverview",
    "SignatureView",
    "audit_log",
    "batch_view",
    "check_limit",
    "list_batches",
    "list_sites",
    "list_users",
    "network_overview",
    "offered_actions",
]


def list_batches(
    app: App, *, state: str | None = None, site: str | None = None, limit: int | None = None
) -> list[BatchRow]:
    check_limit(limit)
    states = None
    if state is not None:
        try:
            states = [BatchState(state.upper()).value]
        except ValueError:
            choices = ", ".join(s.value for s in BatchState)
            raise InvalidInput(f"state {state!r}: expected one of {choices}") from None
    with app.reader() as connection:
        if site is not None:
            SiteRepository(connection).get(site)  # an unknown site is named, not an empty list
        return q.batch_rows(connection, states=states, site=site, limit=limit)


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise InvalidInput(f"limit {limit}: expected a number of records of at least 1")


def list_users(app: App, by: Actor) -> list[UserView]:
    """Every account (administrators only): never a password hash."""
    require(by, "user.administer")
    with app.reader() as connection:
        return [UserView.of(u) for u in UserRepository(connection).list()]


def list_sites(app: App) -> list[Site]:
    with app.reader() as connection:
        return SiteRepository(connection).list()


@dataclass(frozen=True, slots=True)
class IdentityView:
    """Everything a label or an identity block shows."""

    coi: str
    coi_eye_readable: str
    coi_data_content: str
    din: str | None
    din_eye_readable: str | None
    check_character: str | None
    type3_flags: str | None
    din_data_content: str | None
    demonstration: bool

    @classmethod
    def of(cls, coi: str, din: str | None) -> IdentityView:
        c = ChainOfIdentityId(coi)
        d = Din(din) if din else None
        return cls(
            coi=c.value,
            coi_eye_readable=c.eye_readable,
            coi_data_content=c.data_content,
            din=d.value if d else None,
            din_eye_readable=d.eye_readable if d else None,
            check_character=d.check_character if d else None,
            type3_flags=d.type3_flags if d else None,
            din_data_content=d.data_content(d.type3_flags) if d else None,
            demonstration=c.fin in DEMONSTRATION_FINS
            or (d is not None and d.fin in DEMONSTRATION_FINS),
        )


@dataclass(frozen=True, slots=True)
class ActionOption:
    action: str
    summary: str
    reason_required: bool
    scan: bool
    handoff: bool


@dataclass(frozen=True, slots=True)
class SignatureView:
    """An electronic signature as shown beside its record (21 CFR 11.50): who, when, what it
    means, and whether the record still matches what was signed."""

    seq: int
    signer_id: str
    signer_name: str
    meaning: str
    signed_at: str
    matches: bool
    why: str

    @classmethod
    def of(cls, row: SignatureRow) -> SignatureView:
        check = (
            check_signature(row.manifest, row.body)
            if row.body is not None
            else SignatureCheck(False, "the record it points to is missing")
        )
        m = row.manifest
        return cls(
            seq=row.audit_seq,
            signer_id=m.signer_id,
            signer_name=m.signer_name,
            meaning=m.meaning.value,
            signed_at=m.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            matches=check.matches,
            why=check.why,
        )

    def __str__(self) -> str:
        state = "" if self.matches else f" — NO LONGER MATCHES: {self.why}"
        return f"{self.meaning} by {self.signer_name} ({self.signer_id}), {self.signed_at}{state}"


@dataclass(frozen=True, slots=True)
class BatchView:
    batch: BatchRow
    identity: IdentityView
    actions: list[ActionOption]
    custody: list[CustodyEvent]
    audit: list[AuditEntry]
    audit_check: LinkCheck
    age_hours: float
    needs_attention: bool
    signatures: dict[int, SignatureView] = field(default_factory=dict)  # by audit seq


def batch_view(app: App, lot: str) -> BatchView:
    with app.reader() as connection:
        rows = q.batch_rows(connection, lot=lot)
        if not rows:
            raise NotFound(f"batch {lot!r} does not exist")
        row = rows[0]
        entries = audit_store.read_log(connection, entity_ids=[lot], limit=500)
        check = q.check_links(connection, [e.seq for e in entries])
        custody = q.custody_for(connection, lot)
        signed = signatures_for(connection, entity_type="batch", entity_ids=[lot])
    state = BatchState(row.state)
    actions = [
        ActionOption(a.value, t.summary, t.reason_required, t.scan, t.handoff)
        for a, t in TRANSITIONS.items()
        if state in t.sources
    ]
    age = _age_hours(app, row.state_since)
    return BatchView(
        batch=row,
        identity=IdentityView.of(row.coi, row.din),
        actions=actions,
        custody=custody,
        audit=entries,
        audit_check=check,
        age_hours=age,
        needs_attention=needs_attention(state, age),
        signatures={row.audit_seq: SignatureView.of(row) for row in signed},
    )


def _age_hours(app: App, since: datetime) -> float:
    return max(0.0, (app.clock.now() - since).total_seconds() / 3600)


@dataclass(frozen=True, slots=True)
class AttentionItem:
    batch: BatchRow
    age_hours: float
    limit_hours: float
    why: str


@dataclass
class NetworkOverview:
    sites: list[Site]
    states: list[str]
    counts: dict[str, dict[str, int]]  # manufacturing site -> state -> n
    totals: Counter[str] = field(default_factory=Counter)
    attention: list[AttentionItem] = field(default_factory=list)
    open_batches: int = 0
    # (manufacturing site, state) -> hours the longest-waiting open batch has been there;
    # the site "" holds the longest over all sites.
    oldest_hours: dict[tuple[str, str], float] = field(default_factory=dict)
    # site code -> (open, all) batches made there or ordered from there
    site_counts: dict[str, tuple[int, int]] = field(default_factory=dict)


_WHY = {
    BatchState.COLLECTED: "collected, not yet handed to the courier",
    BatchState.IN_TRANSIT: "apheresis in transit longer than expected",
    BatchState.RECEIVED: "starting material awaits QA acceptance",
    BatchState.ACCEPTED: "accepted, manufacturing not started",
    BatchState.QC_PENDING: "awaits QC results and the disposition",
    BatchState.CONDITIONALLY_RELEASED: "conditional release: pending results to close",
    BatchState.RELEASED: "released, not yet shipped",
    BatchState.RELEASED_OOS: "released OOS, not yet shipped",
    BatchState.SHIPPED: "dose in transit longer than expected",
    BatchState.DELIVERED: "delivered, infusion not recorded",
    BatchState.ON_HOLD: "on hold — needs a QA decision",
}


def network_overview(app: App) -> NetworkOverview:
    with app.reader() as connection:
        sites = SiteRepository(connection).list()
        counts_rows = q.state_counts(connection)
        waiting = q.batch_rows(connection, states=[s.value for s in ATTENTION_AFTER_HOURS])
        per_site = q.site_counts(connection, [s.value for s in OPEN_STATES])
    counts: dict[str, dict[str, int]] = {}
    totals: Counter[str] = Counter()
    oldest: dict[tuple[str, str], float] = {}
    open_names = {s.value for s in OPEN_STATES}
    for site_code, state, n, earliest in counts_rows:
        counts.setdefault(site_code, {})[state] = n
        totals[state] += n
        if state in open_names:
            hours = _age_hours(app, earliest)
            for key in ((site_code, state), ("", state)):
                oldest[key] = max(hours, oldest.get(key, 0.0))
    attention = []
    for row in waiting:
        state = BatchState(row.state)
        age = _age_hours(app, row.state_since)
        if needs_attention(state, age):
            attention.append(AttentionItem(row, age, ATTENTION_AFTER_HOURS[state], _WHY[state]))
    attention.sort(key=lambda a: a.age_hours / max(a.limit_hours, 1.0), reverse=True)
    open_states = {s.value for s in OPEN_STATES}
    return NetworkOverview(
        sites=sites,
        states=[s.value for s in BatchState],
        counts=counts,
        totals=totals,
        attention=attention,
        open_batches=sum(n for s, n in totals.items() if s in open_states),
        oldest_hours=oldest,
        site_counts=per_site,
    )


def audit_log(app: App, *, lot: str | None = None, limit: int = 50) -> list[AuditEntry]:
    """The newest ``limit`` audit records, newest first; of batch ``lot`` only if given."""
    check_limit(limit)
    with app.reader() as connection:
        if lot is not None and not q.batch_rows(connection, lot=lot):
            raise NotFound(f"batch {lot!r} does not exist")
        return audit_store.read_log(connection, entity_ids=[lot] if lot else None, limit=limit)


def offered_actions(view: BatchView, actor: Actor) -> list[ActionOption]:
    """The actions of ``view`` that ``actor`` may take on this batch: the state allows them,
    and the permission table gives the person a role for them at the batch's sites. What a
    page or prompt offers; the service checks again when it is asked."""
    b = view.batch
    return [
        option
        for option in view.actions
        if permitted(
            actor,
            rule := rule_for(Action(option.action)),
            batch_sites(rule.where, b),
        )
    ]


def action_allowed(app: App, lot: str, action: Action, actor: Actor) -> bool:
    """Whether batch ``lot`` exists, its state allows ``action`` now, ``actor`` may take it
    there and QC would let it through (for a prompt to decide whether to ask for a
    signature; the service checks again, and says why not)."""
    with app.reader() as connection:
        rows = q.batch_rows(connection, lot=lot)
        if not rows or BatchState(rows[0].state) not in TRANSITIONS[action].sources:
            return False
        rule = rule_for(action)
        if not permitted(actor, rule, batch_sites(rule.where, rows[0])):
            return False
        try:
            return qc_allows(
                QcRepository(connection),
                SpecRepository(connection),
                DeviationRepository(connection),
                rows[0],
                action,
            )
        except V2VError:
            return False  # no specification: the service will say so


def action_names() -> list[str]:
    return [a.value for a in Action]
