"""A batch: one patient's dose, vein to vein (DESIGN §3).

All states and transitions live in one table, ``TRANSITIONS``. Each transition is also a
method of :class:`Batch` that checks the table's rule (source state, reason, scan of the
chain of identity) and either raises a typed error or records an :class:`Event`.

A scan that names another identity than the batch's is a hard stop: the method raises
:class:`IdentityMismatch` and changes nothing; the service records the attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from vein2vein.domain.custody import CustodyEvent, Handoff
from vein2vein.domain.errors import IdentityMismatch, InvalidInput, TransitionRefused
from vein2vein.domain.events import Event
from vein2vein.domain.identity import ChainOfIdentityId, Din, ScannedIdentity, parse_scan

__all__ = [
    "ATTENTION_AFTER_HOURS",
    "OPEN_STATES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Action",
    "Batch",
    "BatchState",
    "Transition",
    "default_handoff_parties",
    "needs_attention",
]


class BatchState(StrEnum):
    ORDERED = "ORDERED"
    COLLECTED = "COLLECTED"
    IN_TRANSIT = "IN_TRANSIT"
    RECEIVED = "RECEIVED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    IN_PROCESS = "IN_PROCESS"
    QC_PENDING = "QC_PENDING"
    RELEASED = "RELEASED"
    CONDITIONALLY_RELEASED = "CONDITIONALLY_RELEASED"
    RELEASED_OOS = "RELEASED_OOS"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    INFUSED = "INFUSED"
    ON_HOLD = "ON_HOLD"
    TERMINATED = "TERMINATED"


TERMINAL_STATES = frozenset({BatchState.REJECTED, BatchState.INFUSED, BatchState.TERMINATED})
OPEN_STATES = frozenset(BatchState) - TERMINAL_STATES


class Action(StrEnum):
    COLLECT = "collect"
    DISPATCH = "dispatch"
    RECEIVE = "receive"
    ACCEPT = "accept"
    REJECT_MATERIAL = "reject-material"
    START_PROCESSING = "start-processing"
    COMPLETE_PROCESSING = "complete-processing"
    RELEASE = "release"
    RELEASE_CONDITIONALLY = "release-conditionally"
    RELEASE_OOS = "release-oos"
    CONFIRM_RELEASE = "confirm-release"
    REJECT = "reject"
    SHIP = "ship"
    DELIVER = "deliver"
    INFUSE = "infuse"
    HOLD = "hold"
    RESUME = "resume"
    TERMINATE = "terminate"


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the transition table.

    ``target`` is None for RESUME, which returns to the state the batch was held from.
    ``scan`` means the chain of identity must be scanned and must match; ``handoff`` means
    the transition is a change of custody and records a :class:`CustodyEvent`.
    """

    action: Action
    sources: frozenset[BatchState]
    target: BatchState | None
    event: str
    summary: str
    reason_required: bool = False
    scan: bool = False
    handoff: bool = False


S = BatchState
_RELEASED_FOR_SHIPMENT = frozenset({S.RELEASED, S.CONDITIONALLY_RELEASED, S.RELEASED_OOS})


def _t(
    action: Action,
    sources: frozenset[BatchState] | set[BatchState],
    target: BatchState | None,
    event: str,
    summary: str,
    **flags: bool,
) -> Transition:
    return Transition(action, frozenset(sources), target, event, summary, **flags)


TRANSITIONS: dict[Action, Transition] = {
    t.action: t
    for t in (
        _t(
            Action.COLLECT,
            {S.ORDERED},
            S.COLLECTED,
            "ApheresisCollected",
            "Apheresis collected; a DIN is issued and the bag labelled",
            handoff=True,
        ),
        _t(
            Action.DISPATCH,
            {S.COLLECTED},
            S.IN_TRANSIT,
            "ApheresisDispatched",
            "Handed to the courier for the manufacturing site",
            scan=True,
            handoff=True,
        ),
        _t(
            Action.RECEIVE,
            {S.IN_TRANSIT},
            S.RECEIVED,
            "ApheresisReceived",
            "Received at the manufacturing site (COI scan)",
            scan=True,
            handoff=True,
        ),
        _t(
            Action.ACCEPT,
            {S.RECEIVED},
            S.ACCEPTED,
            "StartingMaterialAccepted",
            "QA accepts the starting material",
            reason_required=True,
        ),
        _t(
            Action.REJECT_MATERIAL,
            {S.RECEIVED},
            S.REJECTED,
            "StartingMaterialRejected",
            "QA rejects the starting material",
            reason_required=True,
        ),
        _t(
            Action.START_PROCESSING,
            {S.ACCEPTED},
            S.IN_PROCESS,
            "ProcessingStarted",
            "Manufacturing starts (COI scan at line clearance)",
            scan=True,
        ),
        _t(
            Action.COMPLETE_PROCESSING,
            {S.IN_PROCESS},
            S.QC_PENDING,
            "ProcessingCompleted",
            "Cryopreserved; awaiting QC and release",
        ),
        _t(
            Action.RELEASE,
            {S.QC_PENDING},
            S.RELEASED,
            "BatchReleased",
            "QP disposition: released",
            reason_required=True,
        ),
        _t(
            Action.RELEASE_CONDITIONALLY,
            {S.QC_PENDING},
            S.CONDITIONALLY_RELEASED,
            "BatchConditionallyReleased",
            "QP disposition: conditionally released (sterility pending)",
            reason_required=True,
        ),
        _t(
            Action.RELEASE_OOS,
            {S.QC_PENDING},
            S.RELEASED_OOS,
            "BatchReleasedOutOfSpecification",
            "QP disposition: released out of specification at the physician's request",
            reason_required=True,
        ),
        _t(
            Action.CONFIRM_RELEASE,
            {S.CONDITIONALLY_RELEASED},
            S.RELEASED,
            "ReleaseConfirmed",
            "QA confirms release once the pending results are in",
            reason_required=True,
        ),
        _t(
            Action.REJECT,
            {S.QC_PENDING, S.CONDITIONALLY_RELEASED},
            S.REJECTED,
            "BatchRejected",
            "QA or QP disposition: rejected",
            reason_required=True,
        ),
        _t(
            Action.SHIP,
            _RELEASED_FOR_SHIPMENT,
            S.SHIPPED,
            "DoseShipped",
            "Dose handed to the courier in a cryo-shipper",
            scan=True,
            handoff=True,
        ),
        _t(
            Action.DELIVER,
            {S.SHIPPED},
            S.DELIVERED,
            "DoseDelivered",
            "Dose received at the treatment centre (COI scan)",
            scan=True,
            handoff=True,
        ),
        _t(
            Action.INFUSE,
            {S.DELIVERED},
            S.INFUSED,
            "DoseInfused",
            "Bedside COI check and infusion",
            scan=True,
            handoff=True,
        ),
        _t(
            Action.HOLD,
            OPEN_STATES - {S.ON_HOLD},
            S.ON_HOLD,
            "BatchPutOnHold",
            "Put on hold",
            reason_required=True,
        ),
        _t(
            Action.RESUME,
            {S.ON_HOLD},
            None,
            "BatchResumed",
            "Released from hold to the state it was held from",
            reason_required=True,
        ),
        _t(
            Action.TERMINATE,
            OPEN_STATES,
            S.TERMINATED,
            "BatchTerminated",
            "Terminated",
            reason_required=True,
        ),
    )
}


@dataclass
class Batch:
    """One patient's batch. Mutable; every change goes through a transition method.

    ``version`` is the optimistic-locking counter: the store refuses to save a batch whose
    version has moved on since it was read.
    """

    lot: str
    coi: ChainOfIdentityId
    order_ref: str
    patient_pseudonym: str
    product: str
    manufacturing_site: str
    treatment_centre: str
    state: BatchState
    state_since: datetime
    created_at: datetime
    din: Din | None = None
    held_from: BatchState | None = None
    version: int = 1
    events: list[Event] = field(default_factory=list, repr=False, compare=False)
    custody_events: list[CustodyEvent] = field(default_factory=list, repr=False, compare=False)

    # -- queries -----------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def allowed_actions(self) -> list[Action]:
        """The actions the transition table allows from the current state, in table order."""
        return [a for a, t in TRANSITIONS.items() if self.state in t.sources]

    def matches(self, scanned: ScannedIdentity) -> bool:
        """True when ``scanned`` is this batch's DIN or its chain-of-identity identifier."""
        if isinstance(scanned, ChainOfIdentityId):
            return scanned == self.coi
        return self.din is not None and scanned == self.din

    def check_scan(self, scan: str) -> ScannedIdentity:
        """Parse ``scan`` and raise :class:`IdentityMismatch` unless it is this batch's."""
        scanned = parse_scan(scan)
        if not self.matches(scanned):
            # The identifiers expected are never echoed back to the person scanning (they
            # could be typed in instead of the bag's label); the audit record keeps them.
            kind = "COI" if isinstance(scanned, ChainOfIdentityId) else "DIN"
            raise IdentityMismatch(
                f"batch {self.lot}: scanned {kind} {scanned} does not belong to this batch; "
                "hard stop: check the bag in your hands against the batch"
            )
        return scanned

    def check_allowed(self, action: Action) -> None:
        """Raise :class:`TransitionRefused` unless the table allows ``action`` from here."""
        if self.state not in TRANSITIONS[action].sources:
            allowed = ", ".join(a.value for a in self.allowed_actions()) or "none"
            raise TransitionRefused(
                f"batch {self.lot}: cannot {action.value} from {self.state.value} "
                f"(allowed now: {allowed})"
            )

    # -- transitions -------------------------------------------------------------------
    def collect(self, din: Din, *, by: str, at: datetime, handoff: Handoff) -> None:
        """Record the apheresis collection; ``din`` is the collection's new DIN."""
        self._apply(Action.COLLECT, by=by, at=at, handoff=handoff, din=din)

    def dispatch(self, *, by: str, at: datetime, scan: str, handoff: Handoff) -> None:
        self._apply(Action.DISPATCH, by=by, at=at, scan=scan, handoff=handoff)

    def receive(self, *, by: str, at: datetime, scan: str, handoff: Handoff) -> None:
        self._apply(Action.RECEIVE, by=by, at=at, scan=scan, handoff=handoff)

    def accept(self, *, by: str, at: datetime, reason: str) -> None:
        self._apply(Action.ACCEPT, by=by, at=at, reason=reason)

    def reject_material(self, *, by: str, at: datetime, reason: str) -> None:
        self._apply(Action.REJECT_MATERIAL, by=by, at=at, reason=reason)

    def start_processing(self, *, by: str, at: datetime, scan: str) -> None:
        self._apply(Action.START_PROCESSING, by=by, at=at, scan=scan)

    def complete_processing(self, *, by: str, at: datetime) -> None:
        self._apply(Action.COMPLETE_PROCESSING, by=by, at=at)

    def release(self, *, by: str, at: datetime, reason: str) -> None:
        self._apply(Action.RELEASE, by=by, at=at, reason=reason)

    def release_conditionally(self, *, by: str, at: datetime, reason: str) -> None:
        self._apply(Action.RELEASE_CONDITIONALLY, by=by, at=at, reason=reason)

    def release_oos(self, *, by: str, at: datetime, reason: str) -> None:
        self._apply(Action.RELEASE_OOS, by=by, at=at, reason=reason)

    def confirm_release(self, *, by: str, at: datetime, reason: str) -> None:
        self._apply(Action.CONFIRM_RELEASE, by=by, at=at, reason=reason)

    def reject(self, *, by: str, at: datetime, reason: str) -> None:
        self._apply(Action.REJECT, by=by, at=at, reason=reason)

    def ship(self, *, by: str, at: datetime, scan: str, handoff: Handoff) -> None:
        self._apply(Action.SHIP, by=by, at=at, scan=scan, handoff=handoff)

    def deliver(self, *, by: str, at: datetime, scan: str, handoff: Handoff) -> None:
        self._apply(Action.DELIVER, by=by, at=at, scan=scan, handoff=handoff)

    def infuse(self, *, by: str, at: datetime, scan: str, handoff: Handoff) -> None:
        self._apply(Action.INFUSE, by=by, at=at, scan=scan, handoff=handoff)

    def hold(self, *, by: str, at: datetime, reason: str) -> None:
        self._apply(Action.HOLD, by=by, at=at, reason=reason)

    def resume(self, *, by: str, at: datetime, reason: str) -> None:
        self._apply(Action.RESUME, by=by, at=at, reason=reason)

    def terminate(self, *, by: str, at: datetime, reason: str) -> None:
        self._apply(Action.TERMINATE, by=by, at=at, reason=reason)

    def perform(
        self,
        action: Action,
        *,
        by: str,
        at: datetime,
        reason: str | None = None,
        scan: str | None = None,
        handoff: Handoff | None = None,
        din: Din | None = None,
    ) -> None:
        """Apply ``action`` by name: what adapters use when the action is data."""
        self._apply(action, by=by, at=at, reason=reason, scan=scan, handoff=handoff, din=din)

    def _apply(
        self,
        action: Action,
        *,
        by: str,
        at: datetime,
        reason: str | None = None,
        scan: str | None = None,
        handoff: Handoff | None = None,
        din: Din | None = None,
    ) -> None:
        rule = TRANSITIONS[action]
        # Every check comes before the first change, so a refusal leaves the batch as it was.
        self.check_allowed(action)
        if not by or not by.strip():
            raise InvalidInput(f"batch {self.lot}: {action.value} needs the actor's identity")
        if at.tzinfo is None:
            raise InvalidInput(f"batch {self.lot}: {action.value} time {at!r} has no time zone")
        reason = reason.strip() if reason else None
        if rule.reason_required and not reason:
            raise InvalidInput(f"batch {self.lot}: {action.value} needs a reason")
        if action is Action.COLLECT and din is None:
            raise InvalidInput(f"batch {self.lot}: collect needs the new DIN")
        if rule.handoff and handoff is None:
            raise InvalidInput(f"batch {self.lot}: {action.value} is a hand-off: say who to whom")
        scanned: ScannedIdentity | None = None
        if action is Action.COLLECT and din is not None:
            pass
        elif rule.scan:
            if not scan or not scan.strip():
                raise InvalidInput(
                    f"batch {self.lot}: {action.value} needs a scan of the DIN or COI"
                )
            scanned = self.check_scan(scan)

        old_state = self.state
        target = rule.target if rule.target is not None else self.held_from
        assert target is not None, "ON_HOLD without held_from"
        new: dict[str, Any] = {"state": target.value, "version": self.version + 1}
        old: dict[str, Any] = {"state": old_state.value, "version": self.version}
        if din is not None:
            self.din = din
            new["din"] = din.value
        if scanned is not None:
            new["scanned"] = str(scanned)
        if action is Action.HOLD:
            self.held_from = old_state
            new["held_from"] = old_state.value
        elif action is Action.RESUME or target is BatchState.TERMINATED:
            old["held_from"] = self.held_from.value if self.held_from else None
            self.held_from = None
        self.state = target
        self.state_since = at
        self.version += 1
        self.events.append(
            Event(rule.event, by, at, "batch", self.lot, new=new, old=old, reason=reason)
        )
        if rule.handoff and handoff is not None:
            custody = handoff.to_event(
                self.lot, action.value, scanned=str(scanned) if scanned else None, at=at, by=by
            )
            self.custody_events.append(custody)
            self.events.append(custody.event())


# How long a batch may sit in a state before a person should look at it. The network page
# lists batches past these ages as needing someone now; states absent here wait on no one.
ATTENTION_AFTER_HOURS: dict[BatchState, float] = {
    BatchState.COLLECTED: 12,
    BatchState.IN_TRANSIT: 48,
    BatchState.RECEIVED: 24,
    BatchState.ACCEPTED: 72,
    BatchState.QC_PENDING: 16 * 24,
    BatchState.CONDITIONALLY_RELEASED: 16 * 24,
    BatchState.RELEASED: 72,
    BatchState.RELEASED_OOS: 72,
    BatchState.SHIPPED: 72,
    BatchState.DELIVERED: 7 * 24,
    BatchState.ON_HOLD: 0,
}


def needs_attention(state: BatchState, age_hours: float) -> bool:
    """True when a batch has waited in ``state`` longer than it should."""
    limit = ATTENTION_AFTER_HOURS.get(state)
    return limit is not None and age_hours >= limit


def default_handoff_parties(action: Action, batch: Batch) -> tuple[str, str, str]:
    """(from, to, where) of the hand-off ``action`` when the person names no one else."""
    courier = "courier"
    patient = f"patient {batch.patient_pseudonym}"
    tc, ms = batch.treatment_centre, batch.manufacturing_site
    table = {
        Action.COLLECT: (patient, tc, tc),
        Action.DISPATCH: (tc, courier, tc),
        Action.RECEIVE: (courier, ms, ms),
        Action.SHIP: (ms, courier, ms),
        Action.DELIVER: (courier, tc, tc),
        Action.INFUSE: (tc, patient, tc),
    }
    return table[action]
