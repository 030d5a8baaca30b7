"""The synthetic demo network, built only through the services so every change is audited.

:func:`build_demo` plans a network from a seed (``services._demo_plan``, pure) and then
plays every planned step through ``register_site``, ``place_order``, ``perform_transition``
and ``scan_identity``, in chronological order, each at its own moment on a
:class:`~vein2vein.domain.clock.FixedClock`: the audit trail reads as if the network had
run for months. Patients are pseudonyms with a year of birth and a weight, never names;
identifiers are issued under ICCBBA's example FINs, so every label says DEMONSTRATION.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from vein2vein.domain.batch import TRANSITIONS, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import IdentityMismatch, InvalidInput
from vein2vein.domain.identity import ChainOfIdentityId
from vein2vein.domain.people import Role
from vein2vein.domain.permissions import rule_for
from vein2vein.services import auth, people, queries
from vein2vein.services import batches as svc
from vein2vein.services._demo_plan import (
    MIN_PATIENTS,
    SITES,
    Journey,
    Scan,
    Step,
    StepKind,
    plan_network,
)
from vein2vein.services.app import App
from vein2vein.services.auth import Identity
from vein2vein.services.people import UserView
from vein2vein.services.security import Argon2Hasher
from vein2vein.store.people import UserAccount, UserRepository

__all__ = ["DemoSummary", "build_demo"]

_PROGRESS_EVERY = 25


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What :func:`build_demo` built.

    ``by_state`` counts batches in every state of the transition table (zeros included, in
    pipeline order); ``notable`` maps each notable case (``identity-mismatch``,
    ``rejected-apheresis``, ``terminated``, ``on-hold``, ``released-oos``) to its lot.
    """

    sites: int
    patients: int
    batches: int
    by_state: dict[str, int]
    audit_records: int
    identity_mismatches: int
    notable: dict[str, str]
    users: list[UserView]
    password: str


def build_demo(
    app: App,
    *,
    seed: int = 7,
    patients: int = 300,
    months: int = 18,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Build the demo network: 9 sites, ``patients`` patients over ``months`` months.

    The orders end at ``app.clock.now()``; the same seed builds the same network. Raises
    :class:`InvalidInput` when the database already holds batches or any of the demo's
    sites (nothing is written then), or when ``patients`` or ``months`` is too small to show
    every state. ``progress(done, total)`` is called as the steps are played.
    """
    if not isinstance(patients, int) or patients < MIN_PATIENTS:
        raise InvalidInput(
            f"demo patients {patients!r}: expected at least {MIN_PATIENTS}, enough for one "
            "batch in every state and the notable cases"
        )
    if not isinstance(months, int) or not 3 <= months <= 120:
        raise InvalidInput(f"demo months {months!r}: expected 3 to 120")
    if queries.list_batches(app, limit=1):
        raise InvalidInput(
            f"database {app.safe_url} already holds batches; the demo is built into an empty "
            "database only (`v2v demo build --reset` starts a fresh embedded one)"
        )
    existing = {site.code for site in queries.list_sites(app)} & {s.code for s in SITES}
    if existing:
        raise InvalidInput(
            f"database {app.safe_url} already has the demo's sites {', '.join(sorted(existing))}; "
            "the demo is built into an empty database only"
        )

    now = app.clock.now()
    plan = plan_network(seed, patients, months, now)
    timeline = plan.timeline(now)
    total = len(plan.sites) + len(timeline)
    clock = FixedClock(plan.sites_at)
    # Same engine, the plan's clock: each service call happens at its planned moment. The
    # demo's passwords are hashed at a low argon2 cost so the build stays quick; each is
    # re-hashed at the configured cost the first time its person signs in.
    # Passwords do not age while the months of history are played (people would have
    # changed theirs); at the end everyone sets the password that `v2v demo build` prints.
    cheap = replace(
        app.security,
        hasher=Argon2Hasher(time_cost=1, memory_kib=1024, parallelism=1),
        policy=replace(app.security.policy, max_age_days=3650),
    )
    player = _Player(App(app.engine, clock, app.settings, app.url, cheap))
    admin = player.bootstrap(ADMIN)
    for done, site in enumerate(plan.sites, 1):
        svc.register_site(
            player.app.uow(),
            code=site.code,
            name=site.name,
            kind=site.kind,
            fin=site.fin,
            by=admin.actor,
        )
        clock.advance(timedelta(minutes=1))
        _report(progress, done, total)
    people_ids = sorted({step.actor for _, _, step in timeline} | set(_EXTRA_USERS))
    for user_id in people_ids:
        player.add_user(admin, user_id)
    clock.advance(timedelta(minutes=1))
    for done, (at, journey, step) in enumerate(timeline, len(plan.sites) + 1):
        clock.set(at)
        player.play(journey, step)
        if done % _PROGRESS_EVERY == 0:
            _report(progress, done, total)
    for identity in player.identities.values():  # the build's own credentials end with it
        auth.sign_out(player.app.uow(), identity)
    for user_id in player.identities.keys() | set(people_ids):
        people.change_password(
            player.app.uow(), user_id=user_id, old_password=_HISTORY, new_password=PASSWORD
        )
    _report(progress, total, total)
    return _summary(app, plan.journeys, player)


def _report(progress: Callable[[int, int], None] | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


class _Player:
    """Plays planned steps through the services and remembers what each label says."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.identities: dict[str, Identity] = {}
        self.lots: dict[int, str] = {}
        self.coi_labels: dict[int, str] = {}
        self.din_labels: dict[int, str] = {}
        self.last_collected: list[int] = []
        self.mismatches = 0

    def bootstrap(self, user_id: str) -> Identity:
        people.bootstrap_administrator(
            self.app.uow(), user_id=user_id, full_name=_full_name(user_id), password=_HISTORY
        )
        return self._sign_in(user_id)

    def add_user(self, admin: Identity, user_id: str) -> None:
        roles, sites = _role_and_scope(user_id)
        people.create_user(
            self.app.uow(),
            admin.actor,
            user_id=user_id,
            full_name=_full_name(user_id),
            roles=roles,
            sites=sites,
            password=_HISTORY,
            must_change_password=False,
        )

    def _sign_in(self, user_id: str) -> Identity:
        signed = auth.sign_in(
            self.app.uow(), user_id=user_id, password=_HISTORY, kind="api", label="demo build"
        )
        identity = auth.resolve_token(self.app.uow(), signed.token, kinds=("api",))
        self.identities[user_id] = identity
        return identity

    def identity(self, user_id: str) -> Identity:
        return self.identities.get(user_id) or self._sign_in(user_id)

    def play(self, journey: Journey, step: Step) -> None:
        key = journey.key
        who = self.identity(step.actor)
        if step.kind is StepKind.ORDER:
            placed = svc.place_order(
                self.app.uow(),
                pseudonym=journey.pseudonym,
                year_of_birth=journey.year_of_birth,
                weight_kg=journey.weight_kg,
                product=journey.product,
                treatment_centre=journey.centre,
                manufacturing_site=journey.plant,
                by=who.actor,
            )
            self.lots[key] = placed.lot
            self.coi_labels[key] = ChainOfIdentityId(placed.coi).data_content
            return
        lot = self.lots[key]
        if step.kind is StepKind.SPOT_CHECK:
            svc.scan_identity(
                self.app.uow(), lot, self.din_labels[key], by=who.actor, location=journey.plant
            )
            return
        assert step.action is not None
        rule = TRANSITIONS[step.action]
        handoff = svc.HandoffDetails(temperature_c=step.temperature_c) if rule.handoff else None
        if step.kind is StepKind.WRONG_SCAN:
            try:
                svc.perform_transition(
                    self.app.uow(),
                    lot,
                    step.action,
                    by=who,
                    reason=step.reason,
                    scan=self._another_label(key),
                    handoff=handoff,
                )
            except IdentityMismatch:
                self.mismatches += 1  # recorded as IdentityMismatchDetected by the service
                return
            raise AssertionError(f"demo: {lot} accepted another patient's bag")
        scan = {Scan.DIN: self.din_labels.get(key), Scan.COI: self.coi_labels.get(key)}
        signs = rule_for(step.action).signature is not None
        batch = svc.perform_transition(
            self.app.uow(),
            lot,
            step.action,
            by=who,
            reason=step.reason,
            scan=scan.get(step.scan),
            handoff=handoff,
            signing=auth.Signing(_HISTORY, step.actor) if signs else None,
        )
        if batch.din is not None and key not in self.din_labels:
            self.din_labels[key] = batch.din.data_content(batch.din.type3_flags)
            self.last_collected.append(key)

    def _another_label(self, key: int) -> str:
        """The bag most recently collected for someone else: the one most easily mixed up."""
        for other in reversed(self.last_collected):
            if other != key:
                return self.din_labels[other]
        other = next(k for k in self.coi_labels if k != key)
        return self.coi_labels[other]


def _summary(app: App, journeys: list[Journey], player: _Player) -> DemoSummary:
    rows = queries.list_batches(app)
    counts = Counter(row.state for row in rows)
    notable = {
        journey.notable.value: player.lots[journey.key]
        for journey in journeys
        if journey.notable is not None and journey.key in player.lots
    }
    return DemoSummary(
        sites=len(queries.list_sites(app)),
        patients=len({row.patient_pseudonym for row in rows}),
        batches=len(rows),
        by_state={state.value: counts.get(state.value, 0) for state in BatchState},
        audit_records=app.audit_count(),
        identity_mismatches=player.mismatches,
        notable=dict(sorted(notable.items())),
        users=[UserView.of(u) for u in _users(app)],
        password=PASSWORD,
    )


# Demo people: one password for all, printed by `v2v demo build` (synthetic, demo only).
PASSWORD = "Demo-vein2vein-2026"
_HISTORY = "History-vein2vein-2025"  # the password while the history is played
ADMIN = "admin.network"
_EXTRA_USERS = ("qc.cp1", "planner.network", "qa.network")
_ROLE_OF = {
    "admin": Role.ADMINISTRATOR,
    "coordinator": Role.COORDINATOR,
    "apheresis": Role.COORDINATOR,
    "nurse": Role.COORDINATOR,
    "pharmacy": Role.COORDINATOR,
    "receiving": Role.LOGISTICS,
    "logistics": Role.LOGISTICS,
    "operator": Role.OPERATOR,
    "qa": Role.QA_REVIEWER,
    "qp": Role.QP,
    "qc": Role.QC_ANALYST,
    "planner": Role.PLANNER,
}
_TITLE = {
    "admin": "Administrator",
    "coordinator": "Treatment coordinator",
    "apheresis": "Apheresis nurse",
    "nurse": "Infusion nurse",
    "pharmacy": "Cell therapy pharmacist",
    "receiving": "Goods receipt",
    "logistics": "Logistics",
    "operator": "Manufacturing operator",
    "qa": "QA reviewer",
    "qp": "Qualified person",
    "qc": "QC analyst",
    "planner": "Planner",
}


def _role_and_scope(user_id: str) -> tuple[list[str], str]:
    """``qa.cp1`` is a QA reviewer at CP1; ``….network`` acts on every site."""
    kind, _, site = user_id.partition(".")
    return [_ROLE_OF[kind].value], "*" if site == "network" else site.upper()


def _full_name(user_id: str) -> str:
    kind, _, site = user_id.partition(".")
    where = "network" if site == "network" else site.upper()
    return f"{_TITLE[kind]}, {where} (demo)"


def _users(app: App) -> list[UserAccount]:
    with app.reader() as connection:  # a read: no write transaction
        return UserRepository(connection).list()
