"""The demo's batch records, planned (pure): no database here. What they need (MBRs, lots,
equipment) is planned in ``_demo_supply.py`` and re-exported here.

- :func:`plan_record` — what one batch records between start-processing and
  complete-processing: every step of its MBR in order, at times spread over the processing
  period (daily expansion counts included), values drawn from the seeded ``random.Random``
  around the normal operating range (NOR) with patient-to-patient variation; now and then an
  excursion (outside the NOR, inside the PAR) with its reason, a value typed wrong and then
  corrected with a reason, or a value outside the PAR (the service opens the deviation) that
  QA closes later or that stays open. Each step the MBR asks to be verified is verified by a
  second operator.

A central manufacturing facility runs the conventional process, a point-of-care unit the
rapid one (:data:`PROCESS_OF_KIND`).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from vein2vein.domain.process import Outcome, ParameterSpec, ProcessDefinition, compute, round_to
from vein2vein.services._demo_supply import (
    MBR_FILES,
    PROCESS_OF_KIND,
    RAPID,
    ApproveMbr,
    Calibrate,
    ImportMbr,
    ReceiveLot,
    RegisterEquipment,
    ReleaseLot,
    Supply,
    _days,
    _minutes,
    definition,
    equipment_ids,
    mbr_text,
    plan_supply,
)

__all__ = [
    "MBR_FILES",
    "PROCESS_OF_KIND",
    "VECTOR_TITRE",
    "Act",
    "ApproveMbr",
    "Calibrate",
    "ImportMbr",
    "ReceiveLot",
    "RecordAct",
    "RecordFlavour",
    "RegisterEquipment",
    "ReleaseLot",
    "Supply",
    "definition",
    "equipment_ids",
    "mbr_text",
    "plan_record",
    "plan_supply",
]

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

# The plan types a placeholder for this parameter; the player types the titre on the
# certificate of the vector lot in use.
VECTOR_TITRE = "vector_titre"

# How often, per batch, the plan departs from the nominal (the forced cases come on top).
P_EXCURSION = 0.015  # per value that may stray (shared among a daily step's records)
P_CORRECTION = 0.07
P_OUT_OF_PAR = 0.035


# -- one batch's record --------------------------------------------------------------------


class Act(StrEnum):
    RECORD = "record"
    VERIFY = "verify"
    CORRECT = "correct"
    CLOSE = "close-deviation"


@dataclass(frozen=True, slots=True)
class RecordAct:
    """One thing done to a batch record. ``values`` and ``comments`` are what is typed at a
    step (RECORD); ``parameter``/``value``/``text`` the correction (CORRECT: the right value
    and why) or the deviation a value of ``parameter`` opened and its impact (CLOSE)."""

    act: Act
    step_id: str
    occurrence: int = 1
    values: tuple[tuple[str, float], ...] = ()
    comments: tuple[tuple[str, str], ...] = ()
    parameter: str | None = None
    value: float | None = None
    text: str | None = None
    capa: bool = False  # CLOSE: a major or critical deviation is closed with a CAPA


@dataclass(frozen=True, slots=True)
class RecordFlavour:
    """Cases forced on a batch (random ones come on top)."""

    excursion: bool = False
    correction: bool = False
    out_of_par: str | None = None  # "closed": QA closes it; "open": it stays open


@dataclass(frozen=True, slots=True)
class _Excursion:
    """A value outside its NOR but inside its PAR that happens, and what the operator says."""

    step_id: str
    parameter: str
    side: str  # low or high
    comment: str
    early: bool = False  # only in the first days of culture


_DOSE_SHORT = (
    "dose limited by the CAR+ cells available; treating physician informed and agrees to proceed"
)
_EXCURSIONS = (
    _Excursion("receipt", "apheresis_volume_ml", "low",
               "small-volume collection: apheresis stopped early (poor venous access); "
               "enough cells for the target seeding"),
    _Excursion("selection_activation", "cd3_purity_percent", "low",
               "purity below the normal range after selection (residual monocytes); within "
               "the PAR, activation per SOP"),
    _Excursion("selection_activation", "seeded_cells", "low",
               "fewer cells recovered after selection than planned: all available cells seeded"),
    _Excursion("device_setup", "seeded_cells", "low",
               "fewer cells recovered after the device's selection: all available cells seeded"),
    _Excursion("transduction", "moi", "high",
               "vector volume rounded up to a whole vial; MOI within the PAR"),
    _Excursion("device_setup", "moi", "high",
               "vector volume rounded up to a whole vial; MOI within the PAR"),
    _Excursion("expansion", "viability_percent", "low",
               "post-activation dip in viability; culture continued per SOP, next count to "
               "confirm recovery", early=True),
    _Excursion("expansion", "glucose_mmol_l", "low",
               "glucose low before the scheduled feed; medium exchange brought forward to today"),
    _Excursion("expansion", "incubator_temperature_c", "high",
               "read just after the door was opened for feeding; back at 37.0 °C within "
               "15 min (chart reviewed)"),
    _Excursion("culture", "viability_percent", "low",
               "viability dip on the device's in-line sensor, confirmed by a manual count; "
               "trend recovering", early=True),
    _Excursion("culture", "chamber_temperature_c", "low",
               "chamber temperature dipped during the media exchange; back at 37.0 °C "
               "within 10 min (device log)"),
    _Excursion("harvest_formulation", "car_positive_percent", "low",
               "transduction below the normal range; dose achievable, vector copy number "
               "to be confirmed by release testing"),
    _Excursion("harvest_formulation", "dose_per_kg", "low", _DOSE_SHORT),
    _Excursion("cryopreservation", "minutes_to_freezer", "high",
               "freezer still finishing the previous programme; bags held at 2-8 °C meanwhile"),
    _Excursion("cryopreservation", "end_temperature_c", "high",
               "programme ended on the freezer's alarm; bags moved to vapour-phase LN2 at once"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _OutOfPar:
    """A value outside its PAR: the operator's comment, QA's impact assessment at closure."""

    step_id: str
    parameter: str
    low: float
    high: float
    comment: str
    impact: str
    early: bool = False  # in the first days of culture (a daily one: never the last record)


_OUT_OF_PAR = (
    _OutOfPar("cryopreservation", "minutes_to_freezer", 62, 80,
              "controlled-rate freezer alarm at the programme start; programme restarted; "
              "deviation raised",
              "The bags stayed at 2-8 °C until freezing; post-thaw viability and recovery of "
              "the retained vial within specification; no impact on product quality. Root "
              "cause: freezer door sensor fault. CAPA: pre-run check of the freezer added to "
              "the cryopreservation SOP."),
    _OutOfPar("expansion", "viability_percent", 61, 69.4,
              "viability dropped after activation; culture continued, counts to follow",
              "Viability recovered above 90 % on the following counts; release viability and "
              "identity within specification; no impact on product quality. CAPA: activation "
              "guidance for low-viability starting material.", early=True),
    _OutOfPar("expansion", "incubator_temperature_c", 39.2, 39.8,
              "incubator over-temperature alarm; door seal found loose and reseated",
              "Over-temperature under 40 min (alarm log); growth and viability unaffected on "
              "the following counts. Incubator serviced and requalified."),
    _OutOfPar("expansion", "glucose_mmol_l", 1.2, 1.9,
              "glucose depleted before the feed (fast-growing culture); fed at once",
              "Counts and viability unaffected on the following days; feeding schedule for "
              "fast-growing cultures reviewed."),
    _OutOfPar("culture", "viability_percent", 62, 69.4,
              "device sensor reports a viability drop; manual count confirms",
              "Viability recovered on the next reading; release viability within "
              "specification; no impact on product quality. CAPA: device sensor "
              "recalibration interval shortened.", early=True),
    _OutOfPar("culture", "chamber_temperature_c", 34.2, 34.8,
              "chamber heater fault alarm on the device; run continued after the reset",
              "Below 35 °C for under 30 min (device log); final counts within the normal "
              "range. Device serviced by the manufacturer."),
)  # fmt: skip

# Where a wrong value is read from, for the correction's reason.
_SOURCE = {
    "apheresis_volume_ml": "bag weight record",
    "total_nucleated_cells": "cell counter printout",
    "cd3_percent": "flow cytometry report",
    "cd3_purity_percent": "flow cytometry report",
    "viability_percent": "cell counter printout",
    "car_positive_percent": "flow cytometry report",
    "car_concentration": "formulation worksheet",
    "minutes_to_freezer": "freezer start time on the batch timer",
    "end_temperature_c": "freezer profile",
    "bag_temperature_c": "shipper's temperature logger",
    "glucose_mmol_l": "analyser printout",
}


@dataclass
class _Entry:
    """One planned performance of a step: when, and what is typed."""

    step_id: str
    occurrence: int
    at: timedelta  # after start-processing
    day: int | None = None  # culture day of a daily record
    values: dict[str, float] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    wrong: tuple[str, float, str] | None = None  # (parameter, typed value, why) corrected later
    out_of_par: _OutOfPar | None = None
    closes: bool = True


def plan_record(
    rng: random.Random,
    process: ProcessDefinition,
    *,
    duration: timedelta,
    weight_kg: float,
    bag_temperature_c: float,
    accepted_viability: float,
    cd3_cells_e9: float,
    cd3_percent: float,
    fitness: float,
    operator: str,
    second: str,
    qa: str,
    forced: RecordFlavour,
) -> list[tuple[timedelta, str, RecordAct]]:
    """Every act on the batch record of one batch, as (time after start-processing, who,
    what), in time order. ``duration`` is the time from start- to complete-processing;
    the starting material was accepted with ``accepted_viability`` % and ``cd3_cells_e9``
    CD3+ cells (1e9) making ``cd3_percent`` % of its nucleated cells; the bag arrived at
    ``bag_temperature_c``; ``fitness`` moves the fold expansion (_demo_biology)."""
    entries = _schedule(rng, process, duration)
    _typical_values(rng, process, entries, weight_kg, bag_temperature_c, accepted_viability,
                    cd3_cells_e9, cd3_percent, fitness)  # fmt: skip
    taken: set[tuple[str, int, str]] = set()
    _excursions(rng, process, entries, forced.excursion, taken)
    _out_of_par(rng, process, entries, forced.out_of_par, taken)
    _computed(process, entries, weight_kg)
    _correction(rng, process, entries, forced.correction, taken)

    performer, verifier = (second, operator) if rng.random() < 0.35 else (operator, second)
    acts: list[tuple[timedelta, str, RecordAct]] = []
    for entry in entries:
        step = process.step(entry.step_id)
        values = dict(entry.values)
        if entry.wrong is not None:
            values[entry.wrong[0]] = entry.wrong[1]
        acts.append((entry.at, performer, RecordAct(
            Act.RECORD, entry.step_id, entry.occurrence, tuple(values.items()),
            tuple(entry.comments.items()))))  # fmt: skip
        at = entry.at
        if entry.wrong is not None:  # the verifier spots it; the performer corrects it
            at += _minutes(rng, 4, 12)
            name, _, why = entry.wrong
            acts.append((at, performer, RecordAct(
                Act.CORRECT, entry.step_id, entry.occurrence, parameter=name,
                value=entry.values[name], text=why)))  # fmt: skip
        if step.verification:
            at += _minutes(rng, 5, 20)
            acts.append((at, verifier, RecordAct(Act.VERIFY, entry.step_id, entry.occurrence)))
        if entry.out_of_par is not None and entry.closes:
            spec = step.parameter(entry.out_of_par.parameter)
            closed = entry.at + _days(rng, 1, 4)
            acts.append((closed, qa, RecordAct(
                Act.CLOSE, entry.step_id, entry.occurrence, parameter=spec.name,
                text=entry.out_of_par.impact, capa=spec.critical)))  # fmt: skip
    acts.sort(key=lambda a: a[0])
    return [(timedelta(seconds=round(at.total_seconds())), who, act) for at, who, act in acts]


_NOT_BEFORE = {"transduction": DAY}  # "Lentiviral transduction (day 1)"


def _schedule(rng: random.Random, process: ProcessDefinition, duration: timedelta) -> list[_Entry]:
    """When each step is recorded: the first ones one after the other as processing starts
    (each its expected time after the one before), the daily records once a day, harvest and
    freezing just before processing completes."""
    steps = process.steps
    daily = next((i for i, s in enumerate(steps) if s.repeatable), len(steps))
    entries: list[_Entry] = []
    at = _minutes(rng, 20, round(steps[0].expected_hours * 60 * 1.4))
    for i, step in enumerate(steps[:daily]):
        if i:
            at += step.expected_hours * HOUR * rng.uniform(0.8, 1.05)
            if step.id in _NOT_BEFORE:
                at = max(at, _NOT_BEFORE[step.id] + _minutes(rng, -60, 120))
        entries.append(_Entry(step.id, 1, at))
    if daily == len(steps):
        return entries
    tail: list[_Entry] = []
    end = duration - _minutes(rng, 40, 60)
    for step in reversed(steps[daily + 1 :]):
        tail.insert(0, _Entry(step.id, 1, end))
        end -= step.expected_hours * HOUR * rng.uniform(0.8, 1.2)
    entries += _daily(rng, process, steps[daily].id, entries[-1].at, end)
    return entries + tail


def _daily(
    rng: random.Random, process: ProcessDefinition, step_id: str, after: timedelta,
    last: timedelta,
) -> list[_Entry]:  # fmt: skip
    """The daily records of a culture from ``after`` (the step before): one a day, and the
    last one at ``last``, shortly before harvest. The conventional culture counts from
    day 2 (after transduction on day 1); the device reports from its first day."""
    step = process.step(step_id)
    first_day = 1
    if any(p.name == "culture_day" for p in step.parameters):
        first_day = int(step.parameter("culture_day").nor.low or 1)
    rapid = process.process == RAPID
    first = after + (_minutes(rng, 60, 180) if rapid else DAY + _minutes(rng, -60, 60))
    times: list[tuple[int, timedelta]] = []
    while (moment := first + len(times) * DAY + _minutes(rng, -45, 45)) < last - 6 * HOUR:
        times.append((first_day + len(times), moment))
    day = first_day + (last - min([first, *(m for _, m in times)])) // DAY
    if times and times[-1][0] >= day:
        times.pop()
    times.append((day, last))
    return [_Entry(step_id, n, m, day=d) for n, (d, m) in enumerate(times, 1)]


def _gauss(rng: random.Random, mean: float, sd: float, low: float, high: float) -> float:
    return min(high, max(low, rng.gauss(mean, sd)))


def _typical_values(
    rng: random.Random,
    process: ProcessDefinition,
    entries: list[_Entry],
    weight_kg: float,
    bag_temperature_c: float,
    accepted_viability: float,
    cd3_cells_e9: float,
    cd3_percent: float,
    fitness: float,
) -> None:
    """Values of a batch that went to plan; what depends on what (counts on the order's
    acceptance, growth on the patient's cells, dose on growth and weight) hangs together.
    A poor expansion for a heavy patient makes less than the target dose (a dose below the
    normal range, commented), never less than the proven acceptable range allows."""
    rapid = process.process == RAPID
    spec = process.step("harvest_formulation").parameter
    seeded = round(_gauss(rng, 100, 6, 86, 114))
    nor = spec("fold_expansion").nor
    low, high = nor.low or 1.0, nor.high or 100.0
    fold = math.exp(rng.gauss(math.log(math.sqrt(low * high)) + fitness, 0.3))
    final_low = spec("final_cells").nor.low or 0.0
    fold = min(high * 0.85, max(low * 1.05, final_low * 1.03 * 1000 / seeded, fold))
    car_nor = spec("car_positive_percent").nor
    car = _gauss(rng, ((car_nor.low or 0) + (car_nor.high or 100)) / 2 - 3,
                 ((car_nor.high or 100) - (car_nor.low or 0)) / 6,
                 (car_nor.low or 0) + 2, (car_nor.high or 100) - 2)  # fmt: skip
    dose_param = spec("dose_per_kg")
    dose = (dose_param.target or 1.0) * rng.uniform(0.96, 1.04)
    final = fold * seeded / 1000  # 1e9 cells
    needed = 1.3 * dose * weight_kg / (car / 100) / 1000  # enough CAR+ cells for the dose
    short = final < needed  # a heavy patient, a poor expansion: the dose is what there is
    if short:
        dose = max(final * 1000 * car / 100 / 1.3 / weight_kg, (dose_param.par.low or 0) * 1.15)
        final = max(final, 1.3 * dose * weight_kg / (car / 100) / 1000)
    days = [e for e in entries if e.day is not None]
    growth_start = seeded / 1000 * rng.uniform(1.1, 1.6)
    for entry in entries:
        v: dict[str, float] = {}
        match entry.step_id:
            case "receipt":
                tnc_low = (3.0 if rapid else 5.0) * 1.05
                tnc = max(tnc_low, cd3_cells_e9 / (cd3_percent / 100))
                v = {
                    "bag_temperature_c": min(7.9, max(2.1, bag_temperature_c +
                                                      rng.uniform(-0.4, 0.6))),
                    "apheresis_volume_ml": rng.uniform(150, 330) if weight_kg >= 40 else
                    rng.uniform(105, 190),
                    "total_nucleated_cells": tnc,
                    "cd3_percent": cd3_cells_e9 / tnc * 100,
                    "viability_percent": min(99.8, accepted_viability + rng.uniform(-0.4, 0.9)),
                }  # fmt: skip
            case "selection_activation":
                v = {"cd3_purity_percent": rng.uniform(92, 99.2), "seeded_cells": seeded,
                     "activator_ratio": rng.uniform(0.92, 1.08)}  # fmt: skip
            case "device_setup":
                v = {"seeded_cells": seeded}
            case "culture" | "expansion":
                share = (days.index(entry) + 1) / len(days)
                cells = growth_start * (final / growth_start) ** share * rng.uniform(0.93, 1.03)
                first = entry is days[0]
                v = {
                    "culture_day": entry.day or 1,
                    "viable_cells": cells / rng.uniform(0.9, 0.97) if entry is days[-1] else cells,
                    "viability_percent": rng.uniform(86.5, 93) if first else rng.uniform(90, 97.5),
                    "glucose_mmol_l": rng.uniform(8, 21),
                    "incubator_temperature_c": 37.0 + rng.uniform(-0.3, 0.3),
                    "chamber_temperature_c": 37.0 + rng.uniform(-0.2, 0.2),
                }  # fmt: skip
            case "harvest_formulation":
                volume = rng.uniform(15, 40) if rapid else rng.uniform(25, 65)
                conc_nor = spec("car_concentration").nor
                concentration = dose * weight_kg / volume
                concentration = min(
                    (conc_nor.high or 50) * 0.9,
                    max((conc_nor.low or 0) * rng.uniform(1.1, 1.6), concentration),
                )
                bags = 1 if rapid or dose * weight_kg / concentration <= 50 else 2
                v = {"final_cells": final, "car_positive_percent": car, "bags": bags,
                     "car_concentration": concentration, "dose_per_kg": dose}  # fmt: skip
            case "cryopreservation":
                v = {"minutes_to_freezer": rng.randint(8, 26),
                     "cooling_rate_c_min": rng.uniform(-1.08, -0.92),
                     "end_temperature_c": rng.randint(-95, -85)}  # fmt: skip
        if entry.step_id in ("transduction", "device_setup"):
            v |= {VECTOR_TITRE: 4.0, "moi": rng.uniform(4.5, 5.5)}
        step = process.step(entry.step_id)
        typed = {p.name: p for p in step.parameters if p.formula is None}
        entry.values = {k: round_to(x, typed[k].precision) for k, x in v.items() if k in typed}
        if missing := set(typed) - set(entry.values):
            raise AssertionError(f"demo plan: no value for {entry.step_id} {sorted(missing)}")
        dose_spec = typed.get("dose_per_kg")
        if short and dose_spec and dose_spec.classify(dose).outcome is Outcome.EXCURSION:
            entry.comments["dose_per_kg"] = _DOSE_SHORT


def _excursions(
    rng: random.Random,
    process: ProcessDefinition,
    entries: list[_Entry],
    forced: bool,
    taken: set[tuple[str, int, str]],
) -> None:
    """Values outside the NOR, inside the PAR, each with the operator's reason. The receipt
    viability follows the starting material's acceptance: below 90 % it needs its reason."""
    for entry in entries:
        if entry.step_id == "receipt":
            spec = process.step("receipt").parameter("viability_percent")
            value = entry.values["viability_percent"]
            if spec.classify(value).outcome is Outcome.EXCURSION:
                entry.comments["viability_percent"] = (
                    f"viability {value:g} % on receipt into processing, as at the acceptance "
                    "of the starting material; within the PAR, processing per SOP"
                )
                taken.add(("receipt", 1, "viability_percent"))
    candidates = [
        (entry, x)
        for x in _EXCURSIONS
        for entry in entries
        if entry.step_id == x.step_id
        and x.parameter in entry.values
        and (not x.early or _early(entry, entries))
    ]
    daily = Counter(e.step_id for e in entries)
    chosen = [(e, x) for e, x in candidates if rng.random() < P_EXCURSION / daily[e.step_id]]

    def stray(entry: _Entry, x: _Excursion) -> bool:
        key = (entry.step_id, entry.occurrence, x.parameter)
        spec = process.step(entry.step_id).parameter(x.parameter)
        outside = _outside_nor(rng, spec, x.side) if key not in taken else None
        if outside is not None:
            entry.values[x.parameter] = outside
            entry.comments[x.parameter] = x.comment
            taken.add(key)
        return outside is not None

    for entry, x in chosen:
        stray(entry, x)
    if forced and not taken:
        rng.shuffle(candidates)
        for entry, x in candidates:  # the first that fits
            if stray(entry, x):
                break


def _early(entry: _Entry, entries: list[_Entry]) -> bool:
    """One of the first two daily records, with one after it (to show the recovery)."""
    return entry.occurrence <= 2 and _followed(entry, entries)


def _followed(entry: _Entry, entries: list[_Entry]) -> bool:
    return any(e.step_id == entry.step_id and e.occurrence > entry.occurrence for e in entries)


def _outside_nor(rng: random.Random, spec: ParameterSpec, side: str) -> float | None:
    """A value between the NOR and the PAR on ``side``, as typed (at its precision)."""
    nor, par = spec.nor, spec.par
    edge, limit = (nor.low, par.low) if side == "low" else (nor.high, par.high)
    if edge is None:
        return None
    if limit is None:
        limit = edge - abs(edge) * 0.3 if side == "low" else edge + abs(edge) * 0.3
    for _ in range(8):
        value = round_to(edge + (limit - edge) * rng.uniform(0.15, 0.7), spec.precision)
        if spec.classify(value).outcome is Outcome.EXCURSION:
            return value
    return None


def _out_of_par(
    rng: random.Random,
    process: ProcessDefinition,
    entries: list[_Entry],
    forced: str | None,
    taken: set[tuple[str, int, str]],
) -> None:
    """Now and then a value outside its PAR (the service opens the deviation); a forced one
    is on a critical parameter, closed by QA with a CAPA or left open."""
    candidates = [
        (entry, x)
        for x in _OUT_OF_PAR
        for entry in entries
        if entry.step_id == x.step_id
        and x.parameter in entry.values
        and (not x.early or _early(entry, entries))
        and (not process.step(entry.step_id).repeatable or _followed(entry, entries))
        and (entry.step_id, entry.occurrence, x.parameter) not in taken
    ]
    if not candidates:
        return
    chosen: tuple[_Entry, _OutOfPar] | None = None
    if forced is not None:
        critical = [
            (e, x) for e, x in candidates
            if process.step(e.step_id).parameter(x.parameter).critical
        ]  # fmt: skip
        chosen = rng.choice(critical or candidates)
    elif rng.random() < P_OUT_OF_PAR:
        chosen = rng.choice(candidates)
    if chosen is None:
        return
    entry, x = chosen
    spec = process.step(entry.step_id).parameter(x.parameter)
    value = round_to(rng.uniform(x.low, x.high), spec.precision)
    if spec.classify(value).outcome is not Outcome.OUT_OF_PAR:
        raise AssertionError(f"demo plan: {x.parameter} {value} is inside its PAR {spec.par}")
    entry.values[x.parameter] = value
    entry.comments[x.parameter] = x.comment
    entry.out_of_par = x
    entry.closes = forced != "open"
    taken.add((entry.step_id, entry.occurrence, x.parameter))


def _computed(process: ProcessDefinition, entries: list[_Entry], weight_kg: float) -> None:
    """Check what the service will compute: inside the NOR, or an excursion that follows
    from a typed one (its comment says so); never outside the PAR by accident."""
    known: dict[str, float] = {"patient_weight_kg": weight_kg}
    commented: set[str] = set()
    for entry in entries:
        step = process.step(entry.step_id)
        known |= entry.values
        commented |= set(entry.comments)
        for spec in step.parameters:
            typed = entry.values.get(spec.name)
            if spec.formula is None:
                stray = typed is not None and spec.classify(typed).outcome is Outcome.EXCURSION
                if stray and spec.name not in entry.comments:
                    raise AssertionError(f"demo plan: {spec.name} {typed:g} strays, no reason")
                continue
            value = compute(spec.formula, known)
            known[spec.name] = round_to(value, spec.precision)
            outcome = spec.classify(value).outcome
            if outcome is Outcome.OUT_OF_PAR:
                raise AssertionError(f"demo plan: computed {spec.name} {value:g} outside its PAR")
            if outcome is Outcome.EXCURSION:
                sources = sorted(n for n in commented if n in spec.formula)
                entry.comments[spec.name] = (
                    f"follows from {', '.join(sources) or 'the values above'} (see its comment)"
                )


def _correction(
    rng: random.Random,
    process: ProcessDefinition,
    entries: list[_Entry],
    forced: bool,
    taken: set[tuple[str, int, str]],
) -> None:
    """A value typed wrong (two digits swapped, or the last one mistyped), noticed at the
    verification and corrected by the performer with the reason; both values inside the
    NOR, and none that a computed value with a range depends on, so nothing else moves."""
    if not forced and rng.random() >= P_CORRECTION:
        return
    candidates = [
        (entry, name)
        for entry in entries
        if process.step(entry.step_id).verification
        for name in entry.values
        if name in _SOURCE and (entry.step_id, entry.occurrence, name) not in taken
    ]
    rng.shuffle(candidates)
    for swapped in (True, False):  # two digits swapped, else the last digit mistyped
        for entry, name in candidates:
            spec = process.step(entry.step_id).parameter(name)
            right = entry.values[name]
            quantum = 10.0**-spec.precision
            typos = [
                w
                for w in (_transposed(right, spec.precision) if swapped else
                          [round_to(right + k * quantum, spec.precision) for k in (-2, -1, 1, 2)])
                if w != right and spec.classify(w).outcome is Outcome.OK
            ]  # fmt: skip
            if spec.classify(right).outcome is not Outcome.OK or not typos:
                continue
            wrong = rng.choice(typos)
            how = "two digits swapped" if swapped else "last digit mistyped"
            why = (
                f"transcription error: {wrong:g} typed for {right:g} ({how}); corrected "
                f"against the {_SOURCE[name]}, found at the second-person check"
            )
            entry.wrong = (name, wrong, why)
            taken.add((entry.step_id, entry.occurrence, name))
            return


def _transposed(value: float, precision: int) -> list[float]:
    """``value`` as typed with two neighbouring digits swapped, every way it can be."""
    text = f"{value:.{precision}f}"
    return [
        float(text[:i] + text[i + 1] + text[i] + text[i + 2 :])
        for i in range(len(text) - 1)
        if text[i].isdigit() and text[i + 1].isdigit() and text[i] != text[i + 1]
    ]
