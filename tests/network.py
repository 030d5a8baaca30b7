"""Test helpers: a small network with its people, and batches walked through the services.

``small_network(app)`` registers two treatment centres and a plant and the people who work
there, each signed in once (``people(app).qa`` is an :class:`Identity`); ``advance`` walks
a batch along the happy path, each step by the person whose role it is, signing where the
permission table asks for a signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from importlib import resources

from vein2vein.domain.batch import TRANSITIONS, Action, Batch, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.process import ParameterSpec, ProcessDefinition
from vein2vein.formats.mbr import parse_mbr
from vein2vein.services import auth, execution, materials, mbr, people, qc, specs
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
    "operator2.cp1": ("Vera Fier", ["operator"], "CP1"),
    "logistics.cp1": ("Lola Gistics", ["logistics"], "CP1"),
    "qa.cp1": ("Quinn Assurance", ["qa-reviewer"], "*"),
    "qa2.cp1": ("Quentin Second", ["qa-reviewer"], "*"),
    "qp.cp1": ("Dr Kim Lee", ["qp"], "CP1"),
    "planner.net": ("Pat Lanner", ["planner"], "*"),
    "qc.cp1": ("Quincy Analyst", ["qc-analyst"], "CP1"),
    "qc2.cp1": ("Cass Second", ["qc-analyst"], "CP1"),
    "dr.tc": ("Dr Phil Ician", ["physician"], "TC1,TC2"),
}

SPECS = ("cart-cd19-acceptance.yaml", "cart-cd19-in-process.yaml", "cart-cd19-release.yaml")

# Results that meet every example specification, as an analyst types them.
ACCEPTABLE: dict[str, str] = {
    "tnc": "8.5", "cd3_cells": "3.2", "cd3_percent": "45.0", "viability": "96",
    "volume": "250", "hours_from_collection": "20.0",
}  # fmt: skip
RELEASABLE: dict[str, str] = {
    "viability": "88", "car_percent": "42", "dose": "1.2", "vcn": "2.1", "identity": "detected",
    "potency": "1200, 1250, 1300", "endotoxin": "0.25", "mycoplasma": "not detected",
    "sterility_rapid": "no growth", "sterility_culture": "no growth", "rcl": "not detected",
    "cd4_cd8_ratio": "1.4",
}  # fmt: skip

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


# The example MBRs, and the process a test batch runs on unless told otherwise.
EXAMPLES = ("cart-cd19-conventional.yaml", "cart-cd19-rapid.yaml")
PROCESS = "CART-CD19-CONV"
# Values that keep every computed value of the examples inside its NOR.
_OVERRIDES = {("CART-CD19-RAPID", "final_cells"): 0.8}


def example_text(name: str) -> str:
    return (resources.files("vein2vein.examples") / "mbr" / name).read_text()


def small_network(app: App, *, processes: bool = True) -> People:
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
    prepare_specs(app, crew)
    if processes:
        prepare_processes(app, crew)
    return crew


def prepare_specs(app: App, crew: People) -> None:
    """The three example specifications of CART-CD19, effective."""
    for name in SPECS:
        spec = specs.import_spec(app.uow(), crew.admin.actor, spec_text(name), name)
        specs.approve_spec(
            app.uow(), crew.qa, spec.code, spec.version, reason="reviewed for the tests",
            signing=Signing(PASSWORD, "qa.cp1"),
        )  # fmt: skip


def prepare_processes(app: App, crew: People) -> None:
    """Both example MBRs effective, released lots of every material they use, and one piece
    of equipment of every class at CP1, calibrated for a year."""
    types: set[str] = set()
    classes: set[str] = set()
    for name in EXAMPLES:
        text = example_text(name)
        definition = parse_mbr(text, name)
        mbr.import_mbr(app.uow(), crew.admin.actor, text, name)
        mbr.approve_mbr(
            app.uow(),
            crew.qa,
            definition.process,
            definition.version,
            reason="reviewed for the tests",
            signing=Signing(PASSWORD, "qa.cp1"),
        )
        for step in definition.steps:
            types |= {m.type for m in step.materials}
            if step.equipment_class:
                classes.add(step.equipment_class)
    today = app.clock.now().date()
    for kind in sorted(types):
        lot = material_lot(kind)
        materials.receive_lot(
            app.uow(), crew["logistics.cp1"].actor, lot=lot, type=kind, supplier="Synthetic Co",
            expiry=today + timedelta(days=365),
        )  # fmt: skip
        materials.move_lot(app.uow(), crew.qa, lot, "released", reason="CoA checked",
                           signing=Signing(PASSWORD))  # fmt: skip
    for kind in sorted(classes):
        materials.register_equipment(
            app.uow(), crew.admin.actor, equipment_id=equipment_for(kind), equipment_class=kind,
            site="CP1", description=f"Test {kind}", calibration_due=today + timedelta(days=365),
        )  # fmt: skip


def spec_text(name: str) -> str:
    return resources.files("vein2vein.examples").joinpath("spec", name).read_text("utf-8")


def sample(
    app: App, lot: str, stage: str, *, by: str = "operator.cp1", step: str | None = None
) -> str:
    """Draw a sample of ``stage`` from batch ``lot`` (its label scanned)."""
    crew = people_of(app)
    return qc.draw_sample(app.uow(), crew[by].actor, lot, stage=stage, scan=scan_code(app, lot),
                          step_id=step)  # fmt: skip


def results(
    app: App, sample_id: str, values: dict[str, str], *, verify: bool = True,
    by: str = "qc.cp1", verifier: str = "qc2.cp1",
) -> dict[str, qc.ResultEntered]:  # fmt: skip
    """Enter ``values`` (attribute → as typed) on a sample and, unless told not to, have the
    second analyst verify each."""
    crew = people_of(app)
    entered = {}
    for attribute, value in values.items():
        entered[attribute] = qc.enter_result(app.uow(), crew[by].actor, sample_id, attribute, value)
        if verify:
            qc.verify_result(app.uow(), crew[verifier], entered[attribute].id,
                             signing=Signing(PASSWORD, verifier))  # fmt: skip
    return entered


def pass_acceptance(app: App, lot: str, **overrides: str) -> str:
    """Sample the received apheresis and enter verified results (meeting the criteria unless
    ``overrides`` say otherwise); the sample id."""
    sample_id = sample(app, lot, "starting-material")
    results(app, sample_id, ACCEPTABLE | overrides)
    return sample_id


def pass_release_qc(app: App, lot: str, *, review: bool = True, **overrides: str) -> str:
    """Sample the batch for release, enter verified results (conforming unless ``overrides``
    say otherwise) and have QA review its record; the sample id."""
    sample_id = sample(app, lot, "release")
    results(app, sample_id, RELEASABLE | overrides)
    if review:
        qc.review_record(app.uow(), people_of(app).qa, lot, comment="reviewed by exception",
                         signing=Signing(PASSWORD, "qa.cp1"))  # fmt: skip
    return sample_id


def material_lot(kind: str) -> str:
    """The released test lot of a material type."""
    return "LOT-" + "".join(w[0] for w in kind.upper().replace("-", " ").split() if w[0].isalnum())


def equipment_for(kind: str) -> str:
    """The CP1 equipment of a class."""
    return "EQ-" + "".join(w[0] for w in kind.upper().split("-"))


def nominal(spec: ParameterSpec, process: str = PROCESS) -> float:
    """A value inside the NOR: the target, or the middle of the range."""
    if (process, spec.name) in _OVERRIDES:
        return _OVERRIDES[(process, spec.name)]
    if spec.target is not None:
        return spec.target
    low, high = spec.nor.low, spec.nor.high
    if low is not None and high is not None:
        return (low + high) / 2
    return float(low if low is not None else high or 0.0)


def bound_process(app: App, lot: str) -> ProcessDefinition:
    from vein2vein.services.records import load_record

    with app.uow() as uow:
        return load_record(uow, lot).process


def record(
    app: App,
    lot: str,
    step_id: str,
    *,
    values: dict[str, float] | None = None,
    comments: dict[str, str] | None = None,
    by: str = "operator.cp1",
    verify: bool = True,
) -> execution.StepRecorded:
    """Record one step with nominal values (``values`` override some), its lots and
    equipment, scanned; verified by operator2.cp1 where the MBR asks."""
    process = bound_process(app, lot)
    step = process.step(step_id)
    typed = {p.name: nominal(p, process.process) for p in step.parameters if p.formula is None}
    crew = people_of(app)
    done = execution.record_step(
        app.uow(), lot, step_id, typed | (values or {}), by=crew[by], scan=scan_code(app, lot),
        comments=comments, material_lots=[material_lot(m.type) for m in step.materials],
        equipment=equipment_for(step.equipment_class) if step.equipment_class else None,
    )  # fmt: skip
    if verify and step.verification:
        execution.verify_step(
            app.uow(), lot, step_id, done.entry.occurrence, by=crew["operator2.cp1"],
            signing=Signing(PASSWORD, "operator2.cp1"),
        )  # fmt: skip
    return done


def execute_record(app: App, lot: str, clock: FixedClock | None = None) -> None:
    """Record every step not yet recorded, in order, with nominal values."""
    process = bound_process(app, lot)
    with app.uow() as uow:
        done = {e.step_id for e in uow.records.entries(lot)}
    for step in process.steps:
        if step.id in done:
            continue
        if clock is not None:
            clock.advance(timedelta(hours=step.expected_hours))
        record(app, lot, step.id)


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
    if Action(action) is Action.START_PROCESSING:
        kwargs.setdefault("process", PROCESS)
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
        if batch.state not in rule.sources:
            continue  # walked already
        if action is Action.COMPLETE_PROCESSING:
            execute_record(app, lot, clock)
        elif action is Action.ACCEPT:
            pass_acceptance(app, lot)
        elif action is Action.RELEASE:
            pass_release_qc(app, lot)
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
