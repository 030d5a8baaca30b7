"""The synthetic demo network, built only through the services so every change is audited.

:func:`build_demo` plans a network from a seed (``services._demo_plan`` and
``services._demo_records``, pure) and then plays every planned step through the services, in
chronological order, each at its own moment on a :class:`~vein2vein.domain.clock.FixedClock`:
the audit trail reads as if the network had run for months. Before the first batch is
processed, QA imports the example MBRs and another QA reviewer approves them, material lots
are received and released, each plant's equipment is registered (and calibrated every year);
then ``register_site``, ``place_order``, ``perform_transition`` and ``scan_identity`` move
the batches, and between start- and complete-processing each batch's record is written
with ``record_step``, ``verify_step`` and ``correct_value``; QA closes deviations with
``close_deviation``. Patients are pseudonyms with a year of birth and a weight, never names;
identifiers are issued under ICCBBA's example FINs, so every label says DEMONSTRATION.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from vein2vein.domain.batch import TRANSITIONS, Action, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import IdentityMismatch, InvalidInput
from vein2vein.domain.identity import ChainOfIdentityId
from vein2vein.domain.people import Role
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.process import Outcome
from vein2vein.services import (
    analytics,
    auth,
    execution,
    materials,
    mbr,
    monitoring,
    people,
    qc,
    queries,
    specs,
)
from vein2vein.services import batches as svc
from vein2vein.services._demo_plan import (
    MIN_PATIENTS,
    SITES,
    Journey,
    Scan,
    Step,
    StepKind,
    plan_network,
    process_of,
)
from vein2vein.services._demo_qc import QcAct, QcKind, charted, spec, spec_text
from vein2vein.services._demo_records import (
    MBR_FILES,
    VECTOR_TITRE,
    Act,
    ApproveMbr,
    ImportMbr,
    ReceiveLot,
    RecordAct,
    RegisterEquipment,
    ReleaseLot,
    Supply,
    definition,
    mbr_text,
)
from vein2vein.services._demo_supply import ApproveSpec, ImportSpec
from vein2vein.services._demo_telemetry import DemoTelemetry
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
    ``rejected-apheresis``, ``terminated``, ``on-hold``, ``released-oos``, ``in-process``,
    ``open-deviation``, ``closed-deviation``, ``corrected-value``) to its lot; ``records``
    counts what the batch records hold (steps recorded and verified, excursions, corrections,
    deviations opened and closed) and what was set up for them (MBRs, material lots,
    equipment).
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
    records: dict[str, int]


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
    total = len(plan.sites) + len(plan.supply) + len(timeline)
    clock = FixedClock(plan.sites_at)
    # Same engine, the plan's clock: each service call happens at its planned moment. The
    # demo's passwords are hashed at a low argon2 cost so the build stays quick; each is
    # re-hashed at the configured cost the first time its person signs in.
    # Passwords do not age while the months (up to ten years) of history are played (people
    # would have changed theirs); at the end everyone sets the password `v2v demo build` prints.
    cheap = replace(
        app.security,
        hasher=Argon2Hasher(time_cost=1, memory_kib=1024, parallelism=1),
        policy=replace(app.security.policy, max_age_days=(now - plan.sites_at).days + 3650),
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
    actors = {step.actor for _, _, step in timeline} | {s.actor for s in plan.supply}
    actors |= {step.qc.verifier for _, _, step in timeline if step.qc and step.qc.verifier}
    people_ids = (actors | set(_EXTRA_USERS)) - {ADMIN}  # the administrator exists already
    for user_id in sorted(people_ids):
        player.add_user(admin, user_id)
    clock.advance(timedelta(minutes=1))
    for done, (at, item) in enumerate(_in_time_order(plan.supply, timeline), len(plan.sites) + 1):
        clock.set(at)
        if isinstance(item, Supply):
            player.supply(item)
        else:
            player.play(*item)
        if done % _PROGRESS_EVERY == 0:
            _report(progress, done, total)
    # the monitored steps' sensor histories, up to now (the live simulator goes on from here)
    player.telemetry.start_in_process(player.identity)
    player.counts["sensor readings"] = player.telemetry.upload_history(now)
    player.counts["steps running on equipment"] = len(monitoring.running_steps(player.app))
    for identity in player.identities.values():  # the build's own credentials end with it
        auth.sign_out(player.app.uow(), identity)
    for user_id in player.identities.keys() | people_ids:
        people.change_password(
            player.app.uow(), user_id=user_id, old_password=_HISTORY, new_password=PASSWORD
        )
    _report(progress, total, total)
    return _summary(app, plan.journeys, player)


def _report(progress: Callable[[int, int], None] | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _in_time_order(
    supply: list[Supply], timeline: list[tuple[datetime, Journey, Step]]
) -> Iterator[tuple[datetime, Supply | tuple[Journey, Step]]]:
    """The plants' set-up and supplies and the journeys' steps, in time order (at the same
    moment, the supply first)."""
    later = iter(supply)
    pending = next(later, None)
    for at, journey, step in timeline:
        while pending is not None and pending.at <= at:
            yield pending.at, pending
            pending = next(later, None)
        yield at, (journey, step)
    while pending is not None:
        yield pending.at, pending
        pending = next(later, None)


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
        self.in_use: dict[str, str] = {}  # material type → the released lot taken from
        self.titres: dict[str, float] = {}  # vector lot → titre (1e8 TU/mL)
        self.equipment: dict[tuple[str, str], list[str]] = {}  # (site, class) → ids
        self.deviations: dict[tuple[int, str, int, str], str] = {}
        self.capas: Counter[int] = Counter()  # CAPAs raised, by year
        self.counts: Counter[str] = Counter()
        self.samples: dict[tuple[int, str], str] = {}  # (journey, stage) → sample id
        self.results: dict[tuple[int, str, str], int] = {}  # (journey, stage, attribute) → id
        self.investigations: dict[tuple[int, str, str], str] = {}
        self.alerts: dict[int, int] = {}
        self.telemetry = DemoTelemetry(app)  # monitored steps on equipment, their readings

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
        if step.kind is StepKind.RECORD:
            assert step.record is not None
            self._record(journey, lot, who, step.record)
            return
        if step.kind is StepKind.QC:
            assert step.qc is not None
            self._qc(journey, lot, who, step.qc)
            return
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
        starts = step.action is Action.START_PROCESSING
        batch = svc.perform_transition(
            self.app.uow(),
            lot,
            step.action,
            by=who,
            reason=step.reason,
            scan=scan.get(step.scan),
            handoff=handoff,
            signing=auth.Signing(_HISTORY, step.actor) if signs else None,
            process=process_of(journey.plant) if starts else None,
            exception=step.exception,
        )
        if batch.din is not None and key not in self.din_labels:
            self.din_labels[key] = batch.din.data_content(batch.din.type3_flags)
            self.last_collected.append(key)

    def _record(self, journey: Journey, lot: str, who: Identity, act: RecordAct) -> None:
        """One act on the batch record: a step (with the lots in use and the plant's
        equipment), its verification (signed), a correction, or QA closing a deviation."""
        uow, signing = self.app.uow(), auth.Signing(_HISTORY, who.actor.user_id)
        if act.act is Act.RECORD:
            step = definition(process_of(journey.plant)).step(act.step_id)
            values = dict(act.values)
            used = [self.in_use[m.type] for m in step.materials]
            if VECTOR_TITRE in values:  # as on the certificate of the vector lot thawed
                values[VECTOR_TITRE] = next(self.titres[u] for u in used if u in self.titres)
            equipment = None
            if step.equipment_class is not None:
                pool = self.equipment[(journey.plant, step.equipment_class)]
                equipment = pool[journey.key % len(pool)]
            done = execution.record_step(
                uow, lot, act.step_id, values, by=who, scan=self.din_labels[journey.key],
                comments=dict(act.comments), material_lots=used, equipment=equipment,
            )  # fmt: skip
            for name, reference in zip(done.entry.deviations, done.deviations, strict=True):
                self.deviations[(journey.key, act.step_id, act.occurrence, name)] = reference
            outcomes = Counter(v.outcome for v in done.entry.values.values())
            self.counts["steps recorded"] += 1
            self.counts["excursions"] += outcomes[Outcome.EXCURSION]
            self.counts["deviations opened"] += len(done.deviations)
            here = {c: ids for (site, c), ids in self.equipment.items() if site == journey.plant}
            label, process = self.din_labels[journey.key], definition(process_of(journey.plant))
            self.telemetry.after_record(lot, process, act.step_id, here, by=who, label=label)
        elif act.act is Act.VERIFY:
            execution.verify_step(uow, lot, act.step_id, act.occurrence, by=who, signing=signing)
            self.counts["steps verified"] += 1
        elif act.act is Act.CORRECT:
            assert act.parameter is not None and act.value is not None and act.text
            execution.correct_value(uow, lot, act.step_id, act.occurrence, act.parameter,
                                    act.value, by=who, why=act.text)  # fmt: skip
            self.counts["corrections"] += 1
        else:
            assert act.parameter is not None and act.text
            reference = self.deviations[(journey.key, act.step_id, act.occurrence, act.parameter)]
            capa = None
            if act.capa:  # a major deviation: its corrective and preventive action
                year = self.app.clock.now().year
                self.capas[year] += 1
                capa = f"CAPA-{year}-{self.capas[year]:03d}"
            materials.close_deviation(uow, who, reference, impact=act.text, capa=capa,
                                      signing=signing)  # fmt: skip
            self.counts["deviations closed"] += 1

    def _qc(self, journey: Journey, lot: str, who: Identity, act: QcAct) -> None:
        """One QC act: a sample, a result and its second-analyst verification (and QA's
        review when it is out of trend), an invalidation, an investigation's steps, the
        record review, the physician's request, the centre's acknowledgement of an alert."""
        key, uow = journey.key, self.app.uow()
        signing = auth.Signing(_HISTORY, who.actor.user_id)
        site = journey.plant.lower()
        if act.kind is QcKind.SAMPLE:
            label = (
                self.din_labels[key] if act.stage == "starting-material" else self.coi_labels[key]
            )
            self.samples[(key, act.stage)] = qc.draw_sample(uow, who.actor, lot, stage=act.stage,
                                                            scan=label)  # fmt: skip
            self.counts["QC samples"] += 1
        elif act.kind is QcKind.RESULT:
            slot = (key, act.stage, act.attribute)
            entered = qc.enter_result(
                uow, who.actor, self.samples[(key, act.stage)], act.attribute, act.value,
                instrument=_INSTRUMENTS.get(act.attribute),
                retest_of=self.results[slot] if act.retest else None,
            )  # fmt: skip
            self.results[slot] = entered.id
            if entered.investigation:
                self.investigations[slot] = entered.investigation
                self.counts["OOS investigations"] += 1
            if entered.alert is not None:
                self.alerts[key] = entered.alert
                self.counts["culture alerts"] += 1
            verifier = self.identity(act.verifier)
            qc.verify_result(self.app.uow(), verifier, entered.id,
                             signing=auth.Signing(_HISTORY, act.verifier))  # fmt: skip
            self.counts["QC results"] += 1
            self.counts["retests"] += act.retest
            if entered.oot:
                qc.review_oot(self.app.uow(), self.identity(f"qa.{site}").actor, entered.id,
                              comment="reviewed: within the process's known variability for "
                              "this patient population; no action")  # fmt: skip
                self.counts["out-of-trend reviewed"] += 1
        elif act.kind is QcKind.INVALIDATE:
            qc.invalidate_result(uow, who.actor, self.results[(key, act.stage, act.attribute)],
                                 reason=act.text)  # fmt: skip
            self.counts["results invalidated"] += 1
        elif act.kind is QcKind.ESCALATE:
            reference = self.investigations[(key, act.stage, act.attribute)]
            qc.escalate_oos(uow, who.actor, reference, finding=act.text)
        elif act.kind is QcKind.CONCLUDE:
            reference = self.investigations[(key, act.stage, act.attribute)]
            qc.conclude_oos(uow, who, reference, outcome=act.outcome, conclusion=act.text,
                            signing=signing)  # fmt: skip
            # A confirmed OOS is a known special cause: out of its chart's baseline.
            if act.outcome == "confirmed" and charted(act.attribute):
                analytics.exclude_from_baseline(
                    self.app, who.actor, self.results[(key, act.stage, act.attribute)],
                    reason=f"confirmed OOS ({reference}): an assignable cause, not the "
                    "process's common variation",
                )  # fmt: skip
                self.counts["baseline exclusions"] += 1
        elif act.kind is QcKind.REVIEW:
            qc.review_record(uow, who, lot, comment=act.text, signing=signing)
        elif act.kind is QcKind.REQUEST:
            qc.request_oos_release(uow, who, lot, reason=act.text, signing=signing,
                                   document=f"{journey.centre}-REQ-{key:04d}")  # fmt: skip
        else:
            qc.acknowledge_alert(uow, who.actor, self.alerts[key], note=act.text)

    def supply(self, item: Supply) -> None:
        """Set-up and supplies: MBRs, material lots, equipment and its calibration."""
        who, act = self.identity(item.actor), item.act
        uow, signing = self.app.uow(), auth.Signing(_HISTORY, item.actor)
        if isinstance(act, ImportMbr):
            mbr.import_mbr(uow, who.actor, mbr_text(act.process), MBR_FILES[act.process])
        elif isinstance(act, ApproveMbr):
            mbr.approve_mbr(uow, who, act.process, act.version, reason=act.reason,
                            signing=signing)  # fmt: skip
            self.counts["master batch records"] += 1
        elif isinstance(act, ReceiveLot):
            materials.receive_lot(uow, who.actor, lot=act.lot, type=act.type,
                                  supplier=act.supplier, expiry=act.expiry)  # fmt: skip
            self.counts["material lots"] += 1
        elif isinstance(act, ReleaseLot):
            materials.move_lot(uow, who, act.lot, "released", reason=act.reason, signing=signing)
            self.in_use[act.type] = act.lot  # the newest lot is taken from now on
            if act.titre is not None:
                self.titres[act.lot] = act.titre
        elif isinstance(act, RegisterEquipment):
            materials.register_equipment(
                uow, who.actor, equipment_id=act.equipment_id,
                equipment_class=act.equipment_class, site=act.site,
                description=act.description, calibration_due=act.calibration_due,
            )  # fmt: skip
            self.equipment.setdefault((act.site, act.equipment_class), []).append(act.equipment_id)
            self.counts["equipment"] += 1
        elif isinstance(act, ImportSpec):
            specs.import_spec(uow, who.actor, spec_text(act.name), act.name)
        elif isinstance(act, ApproveSpec):
            parsed = spec(act.name)
            specs.approve_spec(uow, who, parsed.code, parsed.version, reason=act.reason,
                               signing=signing)  # fmt: skip
            self.counts["specifications"] += 1
        else:
            materials.record_calibration(uow, who.actor, act.equipment_id, due=act.due,
                                         reason=act.reason)  # fmt: skip
            self.counts["calibrations"] += 1

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
        records=dict(sorted(player.counts.items())),
    )


# Demo people: one password for all, printed by `v2v demo build` (synthetic, demo only).
PASSWORD = "Demo-vein2vein-2026"
_HISTORY = "History-vein2vein-2025"  # the password while the history is played
ADMIN = "admin.network"
_EXTRA_USERS = ("planner.network", "qa.network")
# The instrument each test runs on (the demo's QC labs have one of each).
_INSTRUMENTS = {
    "tnc": "NC-202", "cd3_cells": "FCM-LYRIC-2", "cd3_percent": "FCM-LYRIC-2",
    "viability": "FCM-LYRIC-1", "car_percent": "FCM-LYRIC-1", "cd4_cd8_ratio": "FCM-LYRIC-2",
    "vcn": "DDPCR-QX-1", "identity": "QPCR-7500", "rcl": "QPCR-7500",
    "mycoplasma": "QPCR-7500", "potency": "PLATE-RDR-3", "endotoxin": "LAL-KTA-2",
    "sterility_rapid": "ATP-LUM-1", "sterility_culture": "BACT-ALERT-3D",
}  # fmt: skip
_ROLE_OF = {
    "admin": Role.ADMINISTRATOR,
    "coordinator": Role.COORDINATOR,
    "apheresis": Role.COORDINATOR,
    "nurse": Role.COORDINATOR,
    "pharmacy": Role.COORDINATOR,
    "receiving": Role.LOGISTICS,
    "logistics": Role.LOGISTICS,
    "operator": Role.OPERATOR,
    "operator2": Role.OPERATOR,  # the second person who verifies steps
    "qa": Role.QA_REVIEWER,
    "qp": Role.QP,
    "qc2": Role.QC_ANALYST,  # the second analyst who verifies results
    "physician": Role.PHYSICIAN,
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
    "operator2": "Second manufacturing operator",
    "qa": "QA reviewer",
    "qp": "Qualified person",
    "qc": "QC analyst",
    "qc2": "Second QC analyst",
    "physician": "Treating physician",
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
