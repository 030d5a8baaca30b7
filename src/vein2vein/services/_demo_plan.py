"""The demo network's plan, pure: sites, patients and every step of every journey, in time.

Nothing here touches a database. :func:`plan_network` draws everything from one seeded
``random.Random``, so the same seed always plans the same network; ``services.demo`` then
executes the plan through the services, in chronological order.

Durations follow a typical autologous CAR-T timeline: collection 1-10 days after the
order, apheresis transit 1-2 days (hours within a hospital), acceptance within a day, a
9-12 day conventional process at the central plant or a 2-3 day rapid process at a
point-of-care unit, QC 7-14 days, shipping 1-3 days, infusion 1-7 days after delivery.
Between start- and complete-processing, each batch records its MBR's steps
(``services._demo_records``): the conventional process at the central plant, the rapid one
at a point-of-care unit. Every batch is of CART-CD19, the product the example MBRs make.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from vein2vein.domain.batch import TRANSITIONS, Action, BatchState
from vein2vein.services._demo_biology import fitness, viability_drift
from vein2vein.services._demo_qc import (
    FAILURES,
    QcAct,
    QcKind,
    acceptance_values,
    culture_time,
    plan_acceptance,
    release_acts,
)
from vein2vein.services._demo_records import (
    PROCESS_OF_KIND,
    RecordAct,
    RecordFlavour,
    Supply,
    definition,
    plan_record,
    plan_supply,
)

__all__ = [
    "CENTRAL_PLANT",
    "MIN_PATIENTS",
    "PINNED_STATES",
    "PRODUCT",
    "SITES",
    "Journey",
    "Notable",
    "PlannedSite",
    "Scan",
    "Step",
    "StepKind",
    "plan_network",
    "process_of",
]

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class PlannedSite:
    code: str
    name: str
    kind: str
    fin: str


CENTRAL_PLANT = "CP1"
# Invented names; FINs are ICCBBA's examples only (shared/reference/isbt128.md).
SITES: tuple[PlannedSite, ...] = (
    PlannedSite(CENTRAL_PLANT, "Northfold Cell Therapy Plant", "manufacturing-facility", "G1234"),
    PlannedSite("POC1", "Alderwick General Hospital, rapid CAR-T unit", "point-of-care", "G1234"),
    PlannedSite("POC2", "Fenmoor Teaching Hospital, rapid CAR-T unit", "point-of-care", "G1234"),
    PlannedSite("TC1", "Alderwick General Hospital", "treatment-centre", "A9999"),
    PlannedSite("TC2", "Fenmoor Teaching Hospital", "treatment-centre", "A9999"),
    PlannedSite("TC3", "Calderbank Cancer Centre", "treatment-centre", "A9999"),
    PlannedSite("TC4", "Saint Orrin's Infirmary", "treatment-centre", "A9999"),
    PlannedSite("TC5", "Westmarch Regional Hospital", "treatment-centre", "A9999"),
    PlannedSite("TC6", "Hollins Vale Children's and Adults' Hospital", "treatment-centre", "A9999"),
)
# A hospital with a point-of-care unit sends most of its patients to its own unit.
_OWN_UNIT = {"TC1": "POC1", "TC2": "POC2"}
_CENTRES = tuple(s.code for s in SITES if s.kind == "treatment-centre")
_KIND = {s.code: s.kind for s in SITES}
PRODUCT = "CART-CD19"  # the product both example MBRs make


def process_of(plant: str) -> str:
    """The process a manufacturing site runs: conventional at a central plant, rapid at a
    point-of-care unit."""
    return PROCESS_OF_KIND[_KIND[plant]]


S = BatchState
# States that only the most recent orders are in at "now": one recent journey is placed in
# each, so the network shows every open state whatever the seed.
PINNED_STATES: tuple[BatchState, ...] = (
    S.ORDERED,
    S.COLLECTED,
    S.IN_TRANSIT,
    S.RECEIVED,
    S.ACCEPTED,
    S.IN_PROCESS,
    S.QC_PENDING,
    S.RELEASED,
    S.CONDITIONALLY_RELEASED,
    S.RELEASED_OOS,
    S.SHIPPED,
    S.DELIVERED,
    S.ON_HOLD,
)
# + a first order, then a mismatch, a rejected apheresis and a termination
MIN_PATIENTS = len(PINNED_STATES) + 4


class StepKind(StrEnum):
    ORDER = "order"
    TRANSITION = "transition"
    WRONG_SCAN = "wrong-scan"  # a transition attempted with another patient's bag
    SPOT_CHECK = "spot-check"  # scan_identity outside a transition
    RECORD = "record"  # an act on the batch record (a step, its verification, a correction)
    QC = "qc"  # a QC act: a sample, a result, an investigation, a review (services._demo_qc)


class Scan(StrEnum):
    NONE = "none"
    DIN = "din"  # the apheresis bag's DIN bar code
    COI = "coi"  # the chain-of-identity bar code on the dose


class Notable(StrEnum):
    IDENTITY_MISMATCH = "identity-mismatch"
    REJECTED_APHERESIS = "rejected-apheresis"
    TERMINATED = "terminated"
    ON_HOLD = "on-hold"
    RELEASED_OOS = "released-oos"
    IN_PROCESS = "in-process"  # a partly executed batch record
    OPEN_DEVIATION = "open-deviation"  # a major deviation still open: not released
    CLOSED_DEVIATION = "closed-deviation"  # a major deviation closed by QA, with its CAPA
    CORRECTED_VALUE = "corrected-value"  # a typed value corrected, with the reason


@dataclass(frozen=True, slots=True)
class Step:
    """One thing to do, ``offset`` after the journey's order."""

    kind: StepKind
    offset: timedelta
    actor: str
    action: Action | None = None
    reason: str | None = None
    scan: Scan = Scan.NONE
    temperature_c: float | None = None
    record: RecordAct | None = None  # what a RECORD step does
    qc: QcAct | None = None  # what a QC step does
    exception: str | None = None  # QA's reason to accept an apheresis out of its criteria


@dataclass
class Journey:
    """One order of one patient and the steps its batch will take."""

    key: int
    pseudonym: str
    year_of_birth: int
    weight_kg: float
    product: str
    centre: str
    plant: str
    ordered_at: datetime
    steps: list[Step] = field(default_factory=list)
    notable: Notable | None = None

    @property
    def age(self) -> int:
        """Age at the order, in years."""
        return self.ordered_at.year - self.year_of_birth

    def timed_steps(self) -> Iterator[tuple[datetime, int, Step]]:
        for index, step in enumerate(self.steps):
            yield self.ordered_at + step.offset, index, step

    def outcome(self) -> tuple[BatchState, timedelta]:
        """The state the whole plan ends in and the offset it is reached at."""
        states = _states(self.steps)
        return states[-1], self.steps[-1].offset


@dataclass(frozen=True, slots=True)
class _Flavour:
    """What will happen to one journey (drawn at random, or forced for notable cases)."""

    reject_material: bool = False
    # release, conditional, confirm, cond-reject, oos, reject, reject-deviation
    disposition: str = "release"
    hold: bool = False
    terminate: bool = False
    mismatch: bool = False
    record: RecordFlavour = field(default_factory=RecordFlavour)


def _draw_flavour(rng: random.Random) -> _Flavour:
    if rng.random() < 0.03:
        return _Flavour(reject_material=True)
    u = rng.random()
    disposition = (
        "reject"
        if u < 0.04
        else "oos"
        if u < 0.06
        else "cond-reject"
        if u < 0.07
        else "conditional"
        if u < 0.15
        else "confirm"
        if u < 0.21
        else "release"
    )
    return _Flavour(
        disposition=disposition, hold=rng.random() < 0.05, terminate=rng.random() < 0.04
    )


def _pseudonym(rng: random.Random, taken: set[str]) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: they read as 1 and 0
    while True:
        tail = "".join(rng.choice(alphabet) for _ in range(6))
        if sum(c.isdigit() for c in tail) >= 2 and tail not in taken:
            taken.add(tail)
            return f"PT-{tail}"


def _between(rng: random.Random, low: timedelta, high: timedelta) -> timedelta:
    """A duration drawn uniformly from [low, high], to the minute."""
    minutes = rng.randint(int(low / MINUTE), int(high / MINUTE))
    return minutes * MINUTE


def _fresh(rng: random.Random) -> float:
    return round(rng.uniform(2.5, 7.5), 1)  # fresh apheresis travels at 2-8 °C


def _cryo(rng: random.Random) -> float:
    return round(rng.uniform(-192.0, -160.0), 1)  # vapour-phase liquid nitrogen shipper


_MATERIAL_REJECTIONS = (
    "viability {v} % below the 80 % acceptance limit for starting material",
    "bag integrity: leak found at the spike port on receipt",
    "temperature logger shows an excursion to 14.2 °C in transit",
    "CD3+ cell count below the minimum for manufacture",
)
_QC_REJECTIONS = (
    "release testing: sterility positive (gram-positive cocci)",
    "release testing: vector copy number above 5 copies per transduced cell",
    "release testing: post-thaw viability {v} % below the 70 % specification",
    "release testing: endotoxin above 5 EU/kg",
)
_HOLDS = (
    (
        "deviation under investigation: incubator temperature alarm during expansion",
        "investigation closed: excursion within validated limits, no product impact",
    ),
    (
        "treating physician asks to pause: patient clinically unstable (infection)",
        "physician confirms the patient is fit to proceed",
    ),
    (
        "batch record discrepancy under QA review",
        "QA review closed: transcription error corrected under change control",
    ),
    ("no courier slot: shipment postponed", "courier slot confirmed"),
)
_TERMINATIONS = (
    "patient died before infusion (disease progression)",
    "patient withdrew consent",
    "patient no longer eligible: rapid disease progression, treating physician stops therapy",
)


class _Path:
    """A journey's steps as they are drawn: each one some time after the one before."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.steps: list[Step] = [Step(StepKind.ORDER, self.offset, "")]

    def add(
        self,
        delta: timedelta,
        action: Action,
        actor: str,
        *,
        reason: str | None = None,
        scan: Scan = Scan.NONE,
        temperature_c: float | None = None,
    ) -> None:
        self.offset += delta
        self.steps.append(
            Step(StepKind.TRANSITION, self.offset, actor, action, reason, scan, temperature_c)
        )

    def qc(self, planned: list[tuple[timedelta, str, QcAct]]) -> None:
        """QC acts at their own offsets (the path's own offset does not move)."""
        self.steps += [Step(StepKind.QC, at, actor, qc=act) for at, actor, act in planned]

    def at_least(self, delta: timedelta, ready: timedelta) -> timedelta:
        """``delta`` from now, or as long as it takes to reach ``ready`` if that is later."""
        return max(delta, ready - self.offset + timedelta(minutes=1))


def _journey_steps(
    rng: random.Random,
    centre: str,
    plant: str,
    flavour: _Flavour,
    weight_kg: float,
    *,
    age: int,
    phase: float,
) -> list[Step]:
    """The steps of one patient's journey; ``age`` at the order, ``phase`` its place in the
    demo period (0 = the start, 1 = now), for the signals of :mod:`._demo_biology`."""
    rapid = plant != CENTRAL_PLANT
    tc, ms = centre.lower(), plant.lower()
    nurse, qa, operator = f"apheresis.{tc}", f"qa.{ms}", f"operator.{ms}"
    path = _Path()
    path.steps[0] = replace(path.steps[0], actor=f"coordinator.{tc}")
    path.add(_between(rng, DAY, 10 * DAY), Action.COLLECT, nurse, temperature_c=_fresh(rng))
    path.add(
        _between(rng, 2 * HOUR, 10 * HOUR),
        Action.DISPATCH,
        nurse,
        scan=Scan.DIN,
        temperature_c=_fresh(rng),
    )
    # A point-of-care unit is on site; the central plant is a day away, within the 48 h a fresh
    # apheresis may take from the end of collection to acceptance.
    transit = (HOUR, 6 * HOUR) if rapid else (18 * HOUR, 36 * HOUR)
    # Now and then the courier is late: past the 48 h criterion, accepted by QA's exception.
    late = not rapid and not flavour.reject_material and rng.random() < 0.03
    travel = _between(rng, *transit)
    if late:
        dispatched = path.steps[-1].offset - path.steps[-2].offset
        travel = 48 * HOUR - dispatched + _between(rng, 30 * MINUTE, 4 * HOUR)
    path.add(
        travel,
        Action.RECEIVE,
        f"receiving.{ms}",
        scan=Scan.DIN,
        temperature_c=_fresh(rng),
    )
    review = _between(rng, 3 * HOUR, 20 * HOUR)
    received_at = path.offset
    collected = next(s for s in path.steps if s.action is Action.COLLECT)
    in_transit = (received_at - collected.offset) / HOUR
    if flavour.reject_material:
        reason = rng.choice(_MATERIAL_REJECTIONS).format(v=rng.randint(55, 78))
        values = acceptance_values(
            rng, viability=rng.randint(90, 99), cd3_e9=round(rng.uniform(1.2, 6.0), 1),
            cd3_percent=rng.uniform(22, 68), hours_in_transit=in_transit,
        )  # fmt: skip
        if "viability" in reason:
            values["viability"] = reason.split()[1]
        elif "CD3+" in reason:
            values["cd3_cells"] = f"{rng.uniform(0.3, 0.9):.2f}"
        path.qc(plan_acceptance(rng, received_at + 30 * MINUTE, received_at + review, values, ms))
        path.add(review, Action.REJECT_MATERIAL, qa, reason=reason)
    else:
        # Most apheresis arrives above 90 % viable (the MBR's normal range); a few lower.
        viability = rng.randint(90, 99) if rng.random() > 0.06 else rng.randint(84, 89)
        exception = None
        if late:
            exception = (f"{in_transit:.1f} h from the end of collection, over the 48 h "
                         "criterion (courier delayed by a road closure); the bag stayed at 2-8 °C "
                         f"and viability ({viability} %) and CD3+ cells are well within their "
                         "limits; a second collection is not possible; agreed with the "
                         "treating physician")  # fmt: skip
        cd3 = round(rng.uniform(1.2, 6.0), 1)
        cd3_percent = rng.uniform(22, 68)
        values = acceptance_values(rng, viability=viability, cd3_e9=cd3, cd3_percent=cd3_percent,
                                   hours_in_transit=in_transit)  # fmt: skip
        path.qc(plan_acceptance(rng, received_at + 30 * MINUTE, received_at + review, values, ms))
        path.add(
            review,
            Action.ACCEPT,
            qa,
            reason=(
                "starting material "
                + ("accepted by exception" if exception else "within specification")
                + f": viability {viability} %, CD3+ {cd3:.1f}e9 cells"
            ),
        )
        if exception is not None:
            path.steps[-1] = replace(path.steps[-1], exception=exception)
        path.add(
            _between(rng, 2 * HOUR, 48 * HOUR), Action.START_PROCESSING, operator, scan=Scan.DIN
        )
        started = path.offset
        process = (2 * DAY, 3 * DAY) if rapid else (9 * DAY, 12 * DAY)
        path.add(_between(rng, *process), Action.COMPLETE_PROCESSING, operator)
        received = next(s for s in path.steps if s.action is Action.RECEIVE)
        acts = plan_record(
            rng,
            definition(process_of(plant)),
            duration=path.offset - started,
            weight_kg=weight_kg,
            bag_temperature_c=received.temperature_c or 5.0,
            accepted_viability=viability,
            cd3_cells_e9=cd3,
            cd3_percent=float(values["cd3_percent"]),
            fitness=fitness(cd3_percent=cd3_percent, viability=viability, age=age),
            operator=operator,
            second=f"operator2.{ms}",
            qa=qa,
            forced=flavour.record,
        )
        _disposition(rng, path, flavour.disposition, centre, plant, phase)
        path.steps += [
            Step(StepKind.RECORD, started + at, actor, record=act) for at, actor, act in acts
        ]
        path.steps.sort(key=lambda s: s.offset)  # stable: the record between its transitions

    steps = path.steps
    if flavour.mismatch:
        steps = _with_mismatch(steps)
    if flavour.hold:
        steps = _with_hold(rng, steps, qa)
    if flavour.terminate:
        steps = _with_termination(rng, steps, f"coordinator.{tc}")
    return steps


def _disposition(
    rng: random.Random, path: _Path, disposition: str, centre: str, plant: str, phase: float
) -> None:
    rapid = plant != CENTRAL_PLANT
    tc, ms = centre.lower(), plant.lower()
    qa, qp = f"qa.{ms}", f"qp.{ms}"  # QA rejects; the qualified person releases
    completed = path.offset

    def qc(story: str, failure: tuple[str, str] | None = None) -> timedelta:
        acts, ready = release_acts(rng, site=ms, centre=centre, completed=completed,
                                   story=story, failure=failure,
                                   drift=viability_drift(plant, phase))  # fmt: skip
        path.qc(acts)
        return ready

    if disposition == "reject":
        reason = rng.choice(_QC_REJECTIONS).format(v=rng.randint(48, 68))
        attribute, value = next(f for k, f in FAILURES.items() if k in reason)
        ready = qc("reject", (attribute, value.format(v=reason.split(" % ")[0].split()[-1])))
        path.add(path.at_least(_between(rng, 7 * DAY, 14 * DAY), ready), Action.REJECT, qa,
                 reason=reason)  # fmt: skip
        return
    if disposition == "reject-deviation":  # a major deviation QA could not close
        qc("release")
        reason = (
            "critical process parameter outside its proven acceptable range; the deviation's "
            "investigation found a product impact that cannot be excluded: not certifiable"
        )
        path.add(_between(rng, 10 * DAY, 14 * DAY), Action.REJECT, qa, reason=reason)
        return
    if disposition == "oos":
        viability = rng.randint(62, 69)
        ready = qc("oos", ("viability", str(viability)))
        path.add(
            path.at_least(_between(rng, 7 * DAY, 14 * DAY), ready),
            Action.RELEASE_OOS,
            qp,
            reason=(
                f"post-thaw viability {viability} % below the 70 % specification; "
                "released at the treating physician's written request (no alternative therapy)"
            ),
        )
    elif disposition in ("conditional", "confirm", "cond-reject"):
        ready = qc("cond-fail" if disposition == "cond-reject" else "conditional")
        path.add(
            path.at_least(_between(rng, 3 * DAY, 4 * DAY), ready),
            Action.RELEASE_CONDITIONALLY,
            qp,
            reason=(
                "all release results within specification except 14-day sterility (pending, "
                "no growth so far); conditional release per SOP"
            ),
        )
        culture = culture_time([(st.offset, st.actor, st.qc) for st in path.steps
                                if st.qc is not None])  # fmt: skip
        if disposition == "cond-reject":
            path.qc([(culture + _between(rng, 20 * MINUTE, 3 * HOUR), f"coordinator.{tc}",
                      QcAct(QcKind.ACKNOWLEDGE, text="dose not infused: quarantined in the "
                            "pharmacy's LN2 store; physician informed"))])  # fmt: skip
            path.add(
                path.at_least(_between(rng, 2 * DAY, 5 * DAY), culture + 4 * HOUR),
                Action.REJECT,
                qa,
                reason="14-day sterility positive after conditional release; dose withdrawn",
            )
            return
        if disposition == "confirm":
            # The culture's conforming result makes the release final (RELEASED); then ship.
            path.offset = max(path.offset, culture + MINUTE)
    else:
        ready = qc("retest" if rng.random() < 0.05 else "invalid" if rng.random() < 0.04
                   else "release")  # fmt: skip
        path.add(
            path.at_least(_between(rng, 14 * DAY + 6 * HOUR, 16 * DAY), ready),
            Action.RELEASE,
            qp,
            reason="all release tests within specification; batch certified",
        )
    path.add(
        _between(rng, 4 * HOUR, 36 * HOUR),
        Action.SHIP,
        f"logistics.{ms}",
        scan=Scan.COI,
        temperature_c=_cryo(rng),
    )
    shipping = (HOUR, 4 * HOUR) if rapid else (DAY, 3 * DAY)
    path.add(
        _between(rng, *shipping),
        Action.DELIVER,
        f"pharmacy.{tc}",
        scan=Scan.COI,
        temperature_c=_cryo(rng),
    )
    # The dose is thawed at the bedside: no storage temperature applies to this hand-off.
    path.add(_between(rng, DAY, 7 * DAY), Action.INFUSE, f"nurse.{tc}", scan=Scan.COI)


def _with_mismatch(steps: list[Step]) -> list[Step]:
    """At receipt another patient's bag is scanned first; a spot check finds the right one."""
    out: list[Step] = []
    for step in steps:
        if step.action is Action.RECEIVE:
            out.append(replace(step, kind=StepKind.WRONG_SCAN))
            out.append(replace(step, kind=StepKind.SPOT_CHECK, offset=step.offset + 8 * MINUTE))
            out.append(replace(step, offset=step.offset + 15 * MINUTE))
        else:
            out.append(step)
    return out


def _with_hold(rng: random.Random, steps: list[Step], qa: str) -> list[Step]:
    """Put the batch on hold between two steps and resume it 1-5 days later: before a
    transition (after the record acts before it), never while the batch record is being
    written (a batch on hold records nothing)."""
    at = rng.choice(
        [
            i
            for i in range(1, len(steps))
            if steps[i].kind is StepKind.TRANSITION
            and steps[i].action is not Action.COMPLETE_PROCESSING
        ]
    )
    before, after = steps[at - 1].offset, steps[at].offset
    hold_at = before + (after - before) * rng.uniform(0.2, 0.8)
    hold_at -= timedelta(microseconds=hold_at.microseconds)
    held_for = _between(rng, DAY, 5 * DAY)
    hold_reason, resume_reason = rng.choice(_HOLDS)
    hold = Step(StepKind.TRANSITION, hold_at, qa, Action.HOLD, reason=hold_reason)
    resume = Step(StepKind.TRANSITION, hold_at + held_for, qa, Action.RESUME, reason=resume_reason)
    later = [replace(s, offset=s.offset + held_for) for s in steps[at:]]
    return [*steps[:at], hold, resume, *later]


def _with_termination(rng: random.Random, steps: list[Step], coordinator: str) -> list[Step]:
    """End the journey between two steps before infusion, for a reason of the patient's."""
    states = _states(steps)
    # Terminate only from an open state, after the order and before the last transition;
    # between two transitions (during processing, the record stops there).
    moves = [i for i, s in enumerate(steps) if s.kind not in (StepKind.RECORD, StepKind.QC)]
    candidates = [k for k in range(1, len(moves)) if states[moves[k] - 1] not in _ENDED]
    if not candidates:
        return steps
    k = rng.choice(candidates)
    before, after = steps[moves[k - 1]].offset, steps[moves[k]].offset
    when = before + (after - before) * rng.uniform(0.2, 0.8)
    when -= timedelta(microseconds=when.microseconds)
    reason = rng.choice(_TERMINATIONS)
    return [
        *(s for s in steps[: moves[k]] if s.offset < when),
        Step(StepKind.TRANSITION, when, coordinator, Action.TERMINATE, reason=reason),
    ]


_ENDED = frozenset({S.REJECTED, S.INFUSED, S.TERMINATED})


def _states(steps: list[Step]) -> list[BatchState]:
    """The batch's state after each step (the order step leaves it ORDERED)."""
    state, held_from = S.ORDERED, None
    states: list[BatchState] = []
    for step in steps:
        if step.kind is StepKind.QC and step.qc is not None and step.qc.final:
            if state is S.CONDITIONALLY_RELEASED:
                state = S.RELEASED  # services/release.py: the pending result conforms
        elif step.kind is StepKind.TRANSITION and step.action is not None:
            if step.action is Action.HOLD:
                held_from = state
            target = TRANSITIONS[step.action].target
            state = target if target is not None else (held_from or state)
        states.append(state)
    return states


@dataclass(frozen=True, slots=True)
class NetworkPlan:
    """Everything the demo will do: sites (registered at ``sites_at``), what the plants set
    up and receive (``supply``: MBRs, material lots, equipment) and journeys."""

    sites: tuple[PlannedSite, ...]
    sites_at: datetime
    journeys: list[Journey]
    supply: list[Supply] = field(default_factory=list)

    def timeline(self, until: datetime) -> list[tuple[datetime, Journey, Step]]:
        """Every step due by ``until``, in time order (ties keep journey and step order)."""
        due = [
            (at, journey.key, index, journey, step)
            for journey in self.journeys
            for at, index, step in journey.timed_steps()
            if at <= until
        ]
        due.sort(key=lambda item: (item[0], item[1], item[2]))
        return [(at, journey, step) for at, _, _, journey, step in due]


_MONTH = timedelta(days=30.4375)
_CENTRE_WEIGHTS = (3, 3, 2, 2, 2, 1)


def plan_network(seed: int, patients: int, months: int, now: datetime) -> NetworkPlan:
    """Plan ``patients`` patients ordered over ``months`` months ending at ``now``.

    The last orders are placed so that one batch is in each of :data:`PINNED_STATES` at
    ``now``; three earlier ones carry the notable cases (a mismatch at receipt, a rejected
    apheresis, a termination). Some rejected batches are re-ordered for the same patient.
    """
    rng = random.Random(seed)
    start = now - months * _MONTH
    taken: set[str] = set()
    journeys: list[Journey] = []
    window = (now - start).total_seconds()

    def phase(at: datetime) -> float:
        return min(1.0, max(0.0, (at - start).total_seconds() / window))

    for key in range(patients):
        ordered_at = start + timedelta(seconds=rng.randrange(int(window)))
        journeys.append(
            _new_journey(rng, key, ordered_at, taken, _draw_flavour(rng), phase(ordered_at))
        )
    journeys.sort(key=lambda j: j.ordered_at)

    pinned = journeys[-len(PINNED_STATES) :]
    unpinned = journeys[: -len(PINNED_STATES)]
    # Long finished by now, and never the very first order: a mix-up needs another bag.
    early = unpinned[1 : max(4, len(unpinned) // 2)]
    for journey, flavour, notable in zip(
        rng.sample(early, 3),
        (_Flavour(mismatch=True), _Flavour(reject_material=True), _Flavour(terminate=True)),
        (Notable.IDENTITY_MISMATCH, Notable.REJECTED_APHERESIS, Notable.TERMINATED),
        strict=True,
    ):
        journey.steps = _journey_steps(
            rng, journey.centre, journey.plant, flavour, journey.weight_kg,
            age=journey.age, phase=phase(journey.ordered_at),
        )  # fmt: skip
        journey.notable = notable
    for journey, state in zip(pinned, PINNED_STATES, strict=True):
        _pin(rng, journey, state, now)

    for journey in list(journeys):
        final, offset = journey.outcome()
        if final is S.REJECTED and rng.random() < 0.6:
            again = journey.ordered_at + offset + _between(rng, 3 * DAY, 14 * DAY)
            if again < now:
                journeys.append(_reorder(rng, len(journeys), journey, again, phase(again)))
    for key, journey in enumerate(sorted(journeys, key=lambda j: j.ordered_at)):
        journey.key = key
    journeys.sort(key=lambda j: j.key)
    sites_at = start - 14 * DAY
    supply = plan_supply(
        random.Random(f"{seed}/supply"),
        [(s.code, s.kind) for s in SITES],
        since=sites_at,
        start=start,
        now=now,
    )
    return NetworkPlan(SITES, sites_at, journeys, supply)


def _new_journey(
    rng: random.Random,
    key: int,
    ordered_at: datetime,
    taken: set[str],
    flavour: _Flavour,
    phase: float,
) -> Journey:
    young = rng.random() < 0.12  # children and young adults with B-cell ALL
    age = rng.randint(4, 25) if young else rng.randint(30, 80)  # when ordered
    if age < 12:
        weight = rng.uniform(15, 40)
    elif age < 18:
        weight = rng.uniform(40, 70)
    else:
        weight = rng.uniform(48, 112)
    centre = rng.choices(_CENTRES, weights=_CENTRE_WEIGHTS)[0]
    own = _OWN_UNIT.get(centre)
    plant = own if own is not None and rng.random() < 0.7 else CENTRAL_PLANT
    return Journey(
        key=key,
        pseudonym=_pseudonym(rng, taken),
        year_of_birth=ordered_at.year - age,
        weight_kg=round(weight, 1),
        product=PRODUCT,
        centre=centre,
        plant=plant,
        ordered_at=ordered_at,
        steps=_journey_steps(rng, centre, plant, flavour, round(weight, 1), age=age, phase=phase),
    )


# What the batch records of some pinned journeys show whatever the seed: each case at least
# once (the QC_PENDING batch keeps its major deviation open; it will be rejected, not released).
_PINNED_RECORDS: dict[BatchState, tuple[RecordFlavour, Notable | None]] = {
    S.IN_PROCESS: (RecordFlavour(), Notable.IN_PROCESS),
    S.QC_PENDING: (RecordFlavour(out_of_par="open"), Notable.OPEN_DEVIATION),
    S.RELEASED: (RecordFlavour(excursion=True), None),
    S.SHIPPED: (RecordFlavour(out_of_par="closed"), Notable.CLOSED_DEVIATION),
    S.DELIVERED: (RecordFlavour(correction=True), Notable.CORRECTED_VALUE),
}


def _pin(rng: random.Random, journey: Journey, state: BatchState, now: datetime) -> None:
    """Re-plan ``journey`` and move its order so that it is in ``state`` at ``now``."""
    disposition = {
        S.CONDITIONALLY_RELEASED: "conditional",
        S.RELEASED_OOS: "oos",
        S.QC_PENDING: "reject-deviation",
    }.get(state, "release")
    record, notable = _PINNED_RECORDS.get(state, (RecordFlavour(), None))
    flavour = _Flavour(disposition=disposition, hold=state is S.ON_HOLD, record=record)
    journey.steps = _journey_steps(
        rng, journey.centre, journey.plant, flavour, journey.weight_kg, age=journey.age, phase=1.0
    )
    states = _states(journey.steps)
    entered = states.index(state)
    since = journey.steps[entered].offset
    # Until the next change of state (record acts between leave the state as it is).
    left = next((i for i in range(entered + 1, len(states)) if states[i] is not state), None)
    until = journey.steps[left].offset if left is not None else since + DAY
    moment = since + (until - since) * rng.uniform(0.25, 0.75)
    journey.ordered_at = now - moment + timedelta(microseconds=moment.microseconds)
    if state is S.ON_HOLD:
        journey.notable = Notable.ON_HOLD
    elif state is S.RELEASED_OOS:
        journey.notable = Notable.RELEASED_OOS
    else:
        journey.notable = notable


def _reorder(
    rng: random.Random, key: int, first: Journey, ordered_at: datetime, phase: float
) -> Journey:
    """The same patient ordered again after a rejection: a new collection, a new batch."""
    flavour = _draw_flavour(rng)
    flavour = replace(flavour, reject_material=False)
    weight = round(first.weight_kg + rng.uniform(-2.5, 0.5), 1)
    return Journey(
        key=key,
        pseudonym=first.pseudonym,
        year_of_birth=first.year_of_birth,
        weight_kg=weight,
        product=first.product,
        centre=first.centre,
        plant=first.plant,
        ordered_at=ordered_at,
        steps=_journey_steps(
            rng,
            first.centre,
            first.plant,
            flavour,
            weight,
            age=ordered_at.year - first.year_of_birth,
            phase=phase,
        ),
    )
