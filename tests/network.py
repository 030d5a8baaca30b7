"""Test helpers: a small network with its people, and batches walked through the services.

``small_network(app)`` registers two treatment centres and a plant and the people who work
there, each signed in once (``people(app).qa`` is an :class:`Identity`); ``advance`` walks
a batch along the happy path, each step by the person whose role it is, signing where the
permission table asks for a signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from vein2vein.domain.batch import TRANSITIONS, Action, Batch, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.permissions import rule_for
from vein2vein.services import auth, people
from vein2vein.services import batches as svc
from vein2vein.services.app import App
from vein2vein.services.auth import Identity, Signing

PASSWORD = "Test-password-2026"

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

# user id → (full name, roles, sites)
STAFF: dict[str, tuple[str, list[str], str]] = {
    "coordinator.tc": ("Cora Ordinator", ["coordinator"], "TC1,TC2"),
    "operator.cp1": ("Otto Perator", ["operator"], "CP1"),
    "logistics.cp1": ("Lola Gistics", ["logistics"], "CP1"),
    "qa.cp1": ("Quinn Assurance", ["qa-reviewer"], "*"),
    "qa2.cp1": ("Quentin Second", ["qa-reviewer"], "*"),
    "qp.cp1": ("Dr Kim Lee", ["qp"], "CP1"),
    "planner.net": ("Pat Lanner", ["planner"], "*"),
}

_PERFORMER = {
    Action.COLLECT: "coordinator.tc",
    Action.DISPATCH: "coordinator.tc",
    Action.RECEIVE: "operator.cp1",
    Action.ACCEPT: "qa.cp1",
    Action.REJECT_MATERIAL: "qa.cp1",
    Action.START_PROCESSING: "operator.cp1",
    Action.COMPLETE_PROCESSING: "operator.cp1",
    Action.RELEASE: "qp.cp1",
    Action.RELEASE_CONDITIONALLY: "qp.cp1",
    Action.RELEASE_OOS: "qp.cp1",
    Action.CONFIRM_RELEASE: "qp.cp1",
    Action.REJECT: "qa.cp1",
    Action.SHIP: "logistics.cp1",
    Action.DELIVER: "coordinator.tc",
    Action.INFUSE: "coordinator.tc",
    Action.HOLD: "qa.cp1",
    Action.RESUME: "qa.cp1",
    Action.TERMINATE: "qa.cp1",
}


@dataclass
class People:
    """The signed-in people of the small network, by user id."""

    identities: dict[str, Identity]

    def __getitem__(self, user_id: str) -> Identity:
        return self.identities[user_id]

    @property
    def admin(self) -> Identity:
        return self.identities["admin"]

    @property
    def qa(self) -> Identity:
        return self.identities["qa.cp1"]

    @property
    def coordinator(self) -> Identity:
        return self.identities["coordinator.tc"]

    def for_action(self, action: Action | str) -> Identity:
        return self.identities[_PERFORMER[Action(action)]]


_PEOPLE: dict[int, People] = {}  # by id(app): an App is not hashable


def sign_in(app: App, user_id: str, password: str = PASSWORD, kind: str = "api") -> Identity:
    signed = auth.sign_in(app.uow(), user_id=user_id, password=password, kind=kind)
    return auth.resolve_token(app.uow(), signed.token, kinds=(kind,))


def small_network(app: App) -> People:
    people.bootstrap_administrator(
        app.uow(), user_id="admin", full_name="Ada Ministrator", password=PASSWORD
    )
    admin = sign_in(app, "admin")
    for code, name, kind, fin in (
        ("TC1", "Treatment centre one", "treatment-centre", "A9999"),
        ("TC2", "Treatment centre two", "treatment-centre", "A9999"),
        ("CP1", "Central plant", "manufacturing-facility", "G1234"),
    ):
        svc.register_site(app.uow(), code=code, name=name, kind=kind, fin=fin, by=admin.actor)
    identities = {"admin": admin}
    for user_id, (name, roles, sites) in STAFF.items():
        people.create_user(
            app.uow(),
            admin.actor,
            user_id=user_id,
            full_name=name,
            roles=roles,
            sites=sites,
            password=PASSWORD,
            must_change_password=False,
        )
        identities[user_id] = sign_in(app, user_id)
    crew = People(identities)
    _PEOPLE[id(app)] = crew
    return crew


def people_of(app: App) -> People:
    return _PEOPLE[id(app)]


def signing_for(action: Action | str, who: Identity) -> Signing | None:
    """The signature a person types for ``action``, if the table asks for one."""
    if rule_for(Action(action)).signature is None:
        return None
    return Signing(PASSWORD, who.actor.user_id)


def act(
    app: App,
    lot: str,
    action: Action | str,
    *,
    by: Identity | None = None,
    **kwargs: object,
) -> Batch:
    """``perform_transition`` by the person whose role it is (or ``by``), signing if needed."""
    who = by or people_of(app).for_action(action)
    kwargs.setdefault("signing", signing_for(action, who))
    return svc.perform_transition(app.uow(), lot, action, by=who, **kwargs)  # type: ignore[arg-type]


def order(app: App, pseudonym: str = "PT-000101", centre: str = "TC1") -> str:
    placed = svc.place_order(
        app.uow(),
        pseudonym=pseudonym,
        year_of_birth=1968,
        weight_kg=72.0,
        product="CART-CD19",
        treatment_centre=centre,
        manufacturing_site="CP1",
        by=people_of(app).coordinator.actor,
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
        batch = act(
            app,
            lot,
            action,
            reason="per SOP" if rule.reason_required else None,
            scan=scan_code(app, lot) if rule.scan else None,
        )
        assert batch.state is reached
    assert batch.state is to, f"{to} is not on the happy path"
    return batch
