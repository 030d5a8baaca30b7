"""Test helpers: a small network and batches walked to a given state through the services."""

from __future__ import annotations

from datetime import timedelta

from vein2vein.domain.batch import TRANSITIONS, Action, Batch, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.services import batches as svc
from vein2vein.services.app import App

# The happy path from ORDERED to INFUSED, as (action, state reached).
PATH: list[tuple[Action, BatchState]] = [
    (Action.COLLECT, BatchState.COLLECTED),
    (Action.DISPATCH, BatchState.IN_TRANSIT),
    (Action.RECEIVE, BatchState.RECEIVED),
    (Action.ACCEPT, BatchState.ACCEPTED),
    (Action.START_PROCESSING, BatchState.IN_PROCESS),
    (Action.COMPLETE_PROCESSING, BatchState.QC_PENDING),
    (Action.RELEASE, BatchState.RELEASED),
    (Action.SHIP, BatchState.SHIPPED),
    (Action.DELIVER, BatchState.DELIVERED),
    (Action.INFUSE, BatchState.INFUSED),
]


def small_network(app: App) -> None:
    uow = app.uow
    svc.register_site(
        uow(),
        code="TC1",
        name="Treatment centre one",
        kind="treatment-centre",
        fin="A9999",
        actor="admin",
    )
    svc.register_site(
        uow(),
        code="TC2",
        name="Treatment centre two",
        kind="treatment-centre",
        fin="A9999",
        actor="admin",
    )
    svc.register_site(
        uow(),
        code="CP1",
        name="Central plant",
        kind="manufacturing-facility",
        fin="G1234",
        actor="admin",
    )


def order(app: App, pseudonym: str = "PT-000101", centre: str = "TC1") -> str:
    placed = svc.place_order(
        app.uow(),
        pseudonym=pseudonym,
        year_of_birth=1968,
        weight_kg=72.0,
        product="CART-CD19",
        treatment_centre=centre,
        manufacturing_site="CP1",
        actor="coordinator",
    )
    return placed.lot


def scan_code(app: App, lot: str) -> str:
    """What the label says: the DIN's bar-code data content once collected, else the COI."""
    batch = _load(app, lot)
    if batch.din is not None:
        return batch.din.data_content(batch.din.type3_flags)
    return batch.coi.data_content


def _load(app: App, lot: str) -> Batch:
    with app.uow() as uow:
        return uow.batches.get(lot)


def advance(app: App, lot: str, to: BatchState, clock: FixedClock | None = None) -> Batch:
    """Walk batch ``lot`` along PATH until it reaches ``to``."""
    batch = _load(app, lot)
    for action, reached in PATH:
        if batch.state is to:
            break
        if clock is not None:
            clock.advance(timedelta(hours=6))
        rule = TRANSITIONS[action]
        batch = svc.perform_transition(
            app.uow(),
            lot,
            action,
            actor="operator",
            reason="per SOP" if rule.reason_required else None,
            scan=scan_code(app, lot) if rule.scan else None,
        )
        assert batch.state is reached
    assert batch.state is to, f"{to} is not on the happy path"
    return batch
