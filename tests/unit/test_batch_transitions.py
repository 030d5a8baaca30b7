"""Every allowed and every refused transition of the batch, straight from the table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from vein2vein.domain.batch import (
    OPEN_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Action,
    Batch,
    BatchState,
)
from vein2vein.domain.custody import Handoff
from vein2vein.domain.errors import IdentityMismatch, InvalidInput, TransitionRefused
from vein2vein.domain.identity import ChainOfIdentityId, Din

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DIN = Din("A999926000001")
COI = ChainOfIdentityId("CHG123426000001")
OTHER_DIN = Din("A999926000002")
HANDOFF = Handoff("from", "to", "here", 4.0)

# What DESIGN §3 draws, written out once more by hand so the table is checked, not copied.
EXPECTED = {
    ("ORDERED", "collect"): "COLLECTED",
    ("COLLECTED", "dispatch"): "IN_TRANSIT",
    ("IN_TRANSIT", "receive"): "RECEIVED",
    ("RECEIVED", "accept"): "ACCEPTED",
    ("RECEIVED", "reject-material"): "REJECTED",
    ("ACCEPTED", "start-processing"): "IN_PROCESS",
    ("IN_PROCESS", "complete-processing"): "QC_PENDING",
    ("QC_PENDING", "release"): "RELEASED",
    ("QC_PENDING", "release-conditionally"): "CONDITIONALLY_RELEASED",
    ("QC_PENDING", "release-oos"): "RELEASED_OOS",
    ("QC_PENDING", "reject"): "REJECTED",
    ("CONDITIONALLY_RELEASED", "confirm-release"): "RELEASED",
    ("CONDITIONALLY_RELEASED", "reject"): "REJECTED",
    ("RELEASED", "ship"): "SHIPPED",
    ("CONDITIONALLY_RELEASED", "ship"): "SHIPPED",
    ("RELEASED_OOS", "ship"): "SHIPPED",
    ("SHIPPED", "deliver"): "DELIVERED",
    ("DELIVERED", "infuse"): "INFUSED",
}
for _state in OPEN_STATES:
    EXPECTED[(_state.value, "terminate")] = "TERMINATED"
    if _state is not BatchState.ON_HOLD:
        EXPECTED[(_state.value, "hold")] = "ON_HOLD"
EXPECTED[("ON_HOLD", "resume")] = "<held from>"


def make_batch(state: BatchState, *, held_from: BatchState | None = None) -> Batch:
    din = None if state is BatchState.ORDERED else DIN
    if state is BatchState.ON_HOLD and held_from is None:
        held_from = BatchState.IN_PROCESS
    return Batch(
        lot="CP1-2026-00001",
        coi=COI,
        order_ref="ORD-2026-000001",
        patient_pseudonym="PT-000101",
        product="CART-CD19",
        manufacturing_site="CP1",
        treatment_centre="TC1",
        state=state,
        state_since=T0,
        created_at=T0,
        din=din,
        held_from=held_from,
        version=3,
    )


def arguments(action: Action) -> dict[str, object]:
    rule = TRANSITIONS[action]
    kwargs: dict[str, object] = {"by": "op.jones", "at": T1}
    if rule.reason_required:
        kwargs["reason"] = "because"
    if rule.scan:
        kwargs["scan"] = COI.data_content
    if rule.handoff:
        kwargs["handoff"] = HANDOFF
    if action is Action.COLLECT:
        kwargs["din"] = OTHER_DIN
    return kwargs


ALL_PAIRS = [(s, a) for s in BatchState for a in Action]


def test_the_table_is_the_state_machine_of_the_design() -> None:
    allowed = {
        (s.value, a.value)
        for s in BatchState
        for a, rule in TRANSITIONS.items()
        if s in rule.sources
    }
    assert allowed == set(EXPECTED)
    for (state, action), target in EXPECTED.items():
        rule = TRANSITIONS[Action(action)]
        expected_target = None if target == "<held from>" else BatchState(target)
        assert rule.target == expected_target, (state, action)


@pytest.mark.parametrize(("state", "action"), ALL_PAIRS, ids=lambda v: str(v))
def test_each_state_and_action_is_applied_or_refused_as_the_table_says(
    state: BatchState, action: Action
) -> None:
    batch = make_batch(state)
    before = replace(batch)
    if (state.value, action.value) in EXPECTED:
        batch.perform(action, **arguments(action))  # type: ignore[arg-type]
        target = EXPECTED[(state.value, action.value)]
        expected = before.held_from if target == "<held from>" else BatchState(target)
        assert batch.state is expected
        assert batch.version == before.version + 1
        assert batch.state_since == T1
        assert batch.events[0].name == TRANSITIONS[action].event
        assert batch.events[0].old["state"] == state.value
        assert len(batch.custody_events) == (1 if TRANSITIONS[action].handoff else 0)
    else:
        with pytest.raises(TransitionRefused, match=f"cannot {action.value} from {state.value}"):
            batch.perform(action, **arguments(action))  # type: ignore[arg-type]
        assert batch == before
        assert batch.events == [] and batch.custody_events == []


def test_terminal_states_allow_nothing() -> None:
    for state in TERMINAL_STATES:
        assert make_batch(state).allowed_actions() == []


def test_a_hold_remembers_where_the_batch_was_and_resume_returns_it_there() -> None:
    batch = make_batch(BatchState.QC_PENDING)
    batch.hold(by="qa.lee", at=T1, reason="deviation under investigation")
    assert (batch.state, batch.held_from) == (BatchState.ON_HOLD, BatchState.QC_PENDING)
    batch.resume(by="qa.lee", at=T1, reason="deviation closed, no impact")
    assert (batch.state, batch.held_from) == (BatchState.QC_PENDING, None)
    assert [e.name for e in batch.events] == ["BatchPutOnHold", "BatchResumed"]
    assert batch.events[0].reason == "deviation under investigation"


def test_a_batch_on_hold_can_be_terminated_with_a_reason() -> None:
    batch = make_batch(BatchState.ON_HOLD, held_from=BatchState.ACCEPTED)
    batch.terminate(by="qa.lee", at=T1, reason="patient withdrew consent")
    assert batch.state is BatchState.TERMINATED and batch.held_from is None


@pytest.mark.parametrize("action", [a for a, r in TRANSITIONS.items() if r.reason_required])
def test_a_disposition_without_a_reason_is_refused_and_changes_nothing(action: Action) -> None:
    state = next(s for s in BatchState if s in TRANSITIONS[action].sources)
    batch = make_batch(state)
    before = replace(batch)
    kwargs = arguments(action) | {"reason": "   "}
    with pytest.raises(InvalidInput, match="needs a reason"):
        batch.perform(action, **kwargs)  # type: ignore[arg-type]
    assert batch == before and batch.events == []


@pytest.mark.parametrize("action", [a for a, r in TRANSITIONS.items() if r.scan])
def test_a_scan_of_another_patients_bag_stops_the_transition(action: Action) -> None:
    state = next(s for s in BatchState if s in TRANSITIONS[action].sources)
    batch = make_batch(state)
    before = replace(batch)
    kwargs = arguments(action) | {"scan": OTHER_DIN.data_content(OTHER_DIN.type3_flags)}
    with pytest.raises(IdentityMismatch, match="does not belong to this batch"):
        batch.perform(action, **kwargs)  # type: ignore[arg-type]
    assert batch == before and batch.events == [] and batch.custody_events == []


def test_the_bag_can_be_scanned_by_its_din_or_its_coi() -> None:
    by_din = make_batch(BatchState.IN_TRANSIT)
    by_din.receive(by="op", at=T1, scan="A9999 26 000001 8", handoff=HANDOFF)
    by_coi = make_batch(BatchState.IN_TRANSIT)
    by_coi.receive(by="op", at=T1, scan="&/CHG123426000001", handoff=HANDOFF)
    assert by_din.state is by_coi.state is BatchState.RECEIVED


def test_a_hand_off_records_who_to_whom_where_and_the_temperature() -> None:
    batch = make_batch(BatchState.SHIPPED)
    batch.deliver(
        by="nurse.kim",
        at=T1,
        scan=COI.value,
        handoff=Handoff("World Cryo courier", "TC1 pharmacy", "TC1", -180.0),
    )
    (custody,) = batch.custody_events
    assert (custody.from_party, custody.to_party, custody.location, custody.temperature_c) == (
        "World Cryo courier",
        "TC1 pharmacy",
        "TC1",
        -180.0,
    )
    assert custody.scanned == COI.value and custody.recorded_by == "nurse.kim"
    assert [e.name for e in batch.events] == ["DoseDelivered", "CustodyTransferred"]


@pytest.mark.parametrize("temperature", [-273.0, 60.0, float("nan")])
def test_an_impossible_hand_off_temperature_is_refused(temperature: float) -> None:
    with pytest.raises(InvalidInput, match="temperature_c"):
        Handoff("a", "b", "c", temperature)


def test_collection_issues_the_din_onto_the_batch() -> None:
    batch = make_batch(BatchState.ORDERED)
    batch.collect(OTHER_DIN, by="nurse", at=T1, handoff=HANDOFF)
    assert batch.din == OTHER_DIN
    assert batch.events[0].new["din"] == OTHER_DIN.value


def test_a_naive_time_is_refused() -> None:
    batch = make_batch(BatchState.IN_PROCESS)
    with pytest.raises(InvalidInput, match="no time zone"):
        batch.complete_processing(by="op", at=datetime(2026, 3, 2, 9, 0))
