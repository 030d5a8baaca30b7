"""The demo's supply, planned (pure): MBRs under change control, material lots, equipment.

:func:`plan_supply` — before the first batch reaches processing, QA imports the two example
MBRs and another QA reviewer approves them; the material lots every MBR step consumes are
received and released by QA (a second vector lot later, a last one still in quarantine at
"now"); every manufacturing site registers the equipment its process needs, calibrated every
year. A central manufacturing facility runs the conventional process, a point-of-care unit
the rapid one (:data:`PROCESS_OF_KIND`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources

from vein2vein.domain.process import ProcessDefinition
from vein2vein.formats.mbr import parse_mbr

__all__ = [
    "CONVENTIONAL",
    "MBR_FILES",
    "PROCESS_OF_KIND",
    "RAPID",
    "SPEC_FILES",
    "ApproveMbr",
    "ApproveSpec",
    "Calibrate",
    "ImportMbr",
    "ImportSpec",
    "ReceiveLot",
    "RegisterEquipment",
    "ReleaseLot",
    "Supply",
    "definition",
    "equipment_ids",
    "mbr_text",
    "plan_supply",
]

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)

CONVENTIONAL, RAPID = "CART-CD19-CONV", "CART-CD19-RAPID"
SPEC_FILES = ("cart-cd19-acceptance.yaml", "cart-cd19-in-process.yaml", "cart-cd19-release.yaml")
MBR_FILES = {CONVENTIONAL: "cart-cd19-conventional.yaml", RAPID: "cart-cd19-rapid.yaml"}
PROCESS_OF_KIND = {"manufacturing-facility": CONVENTIONAL, "point-of-care": RAPID}


@cache
def mbr_text(process: str) -> str:
    """The text of an example MBR, as shipped with the package."""
    return (resources.files("vein2vein.examples") / "mbr" / MBR_FILES[process]).read_text()


@cache
def definition(process: str) -> ProcessDefinition:
    return parse_mbr(mbr_text(process), MBR_FILES[process])


# -- supply: MBRs, material lots, equipment ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportMbr:
    process: str


@dataclass(frozen=True, slots=True)
class ApproveMbr:
    process: str
    version: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReceiveLot:
    lot: str
    type: str
    supplier: str
    expiry: date


@dataclass(frozen=True, slots=True)
class ReleaseLot:
    lot: str
    type: str
    reason: str
    titre: float | None = None  # a vector lot's titre (1e8 TU/mL), from its certificate


@dataclass(frozen=True, slots=True)
class RegisterEquipment:
    equipment_id: str
    equipment_class: str
    site: str
    description: str
    calibration_due: date


@dataclass(frozen=True, slots=True)
class Calibrate:
    equipment_id: str
    due: date
    reason: str


@dataclass(frozen=True, slots=True)
class ImportSpec:
    name: str  # an example specification file


@dataclass(frozen=True, slots=True)
class ApproveSpec:
    name: str
    reason: str


SupplyAct = (
    ImportMbr | ApproveMbr | ImportSpec | ApproveSpec | ReceiveLot | ReleaseLot
    | RegisterEquipment | Calibrate
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Supply:
    at: datetime
    actor: str
    act: SupplyAct


# Invented suppliers; lot numbers in each supplier's own style.
_SUPPLIERS: dict[str, tuple[str, str]] = {
    "CD4/CD8 selection reagent": ("Halden Bioseparations", "HB-CS48-{yy}{n:04d}"),
    "T-cell activation reagent": ("Corvane Reagents", "TA{yy}-{n:05d}"),
    "T-cell culture medium": ("Meridale Media", "TCM-{yy}{n:04d}"),
    "Lentiviral vector (anti-CD19 CAR)": ("Brightwater Vector Services", "LV19-{yy}-{n:03d}"),
    "Cryopreservation medium": ("Polarline Biomedical", "CRYO{yy}-{n:04d}"),
    "Infusion bag": ("Kestrel Medical Devices", "KMD-IB-{yy}{n:04d}"),
    "Closed-process tubing set": ("Aurion Cell Systems", "ACS-TS-{yy}{n:04d}"),
}
_EQUIPMENT: dict[str, tuple[str, str, int]] = {  # class → id prefix, description, how many
    "biosafety-cabinet": ("BSC", "Class II biosafety cabinet, grade A zone", 2),
    "cell-processor": ("CPX", "Closed cell processing system (selection, wash, formulation)", 1),
    "incubator": ("INC", "CO2 incubator, 37 °C, 5 % CO2, with alarm monitoring", 3),
    "controlled-rate-freezer": ("CRF", "Controlled-rate freezer with profile recording", 1),
    "automated-cell-processor": ("ACP", "Automated closed cell-processing device", 2),
}


def _material_types(process: ProcessDefinition) -> list[str]:
    return [m.type for step in process.steps for m in step.materials]


def _lot_number(rng: random.Random, kind: str, received: datetime, taken: set[str]) -> str:
    pattern = _SUPPLIERS.get(kind, ("", "LOT-{yy}{n:04d}"))[1]
    while (lot := pattern.format(yy=f"{received.year % 100:02d}", n=rng.randint(11, 989))) in taken:
        pass
    taken.add(lot)
    return lot


def _supplier(kind: str) -> str:
    return _SUPPLIERS.get(kind, ("Synthetic Supplies Ltd", ""))[0]


def equipment_ids(site: str, equipment_class: str) -> list[str]:
    """The ids of a site's equipment of one class (what :func:`plan_supply` registers)."""
    prefix, _, count = _equipment_of(equipment_class)
    return [f"{prefix}-{site}-{n:02d}" for n in range(1, count + 1)]


def _equipment_of(equipment_class: str) -> tuple[str, str, int]:
    initials = "".join(w[0] for w in equipment_class.upper().split("-"))
    return _EQUIPMENT.get(equipment_class, (initials, equipment_class.replace("-", " "), 1))


def plan_supply(
    rng: random.Random,
    sites: Sequence[tuple[str, str]],
    *,
    since: datetime,
    start: datetime,
    now: datetime,
) -> list[Supply]:
    """What the network sets up from ``since`` (before the first order, at ``start``) to
    ``now``, in time order. ``sites`` are (code, kind) of every site."""
    out: list[Supply] = []
    at = since + DAY
    qa_of = {CONVENTIONAL: "qa.cp1", RAPID: "qa.poc1"}
    for process in MBR_FILES:  # each plant's QA brings in its process; network QA approves
        out.append(Supply(at, qa_of[process], ImportMbr(process)))
        at += _minutes(rng, 10, 40)
    at = since + 3 * DAY
    for process in MBR_FILES:
        version = definition(process).version
        reason = (
            f"{process} v{version} reviewed against the process validation report and the "
            "control strategy: steps, NOR/PAR, materials, equipment and second-person checks"
        )
        out.append(Supply(at, "qa.network", ApproveMbr(process, version, reason)))
        at += _minutes(rng, 30, 90)

    # QA brings in the specifications of the product; network QA approves them.
    at = since + DAY + 2 * 60 * MINUTE
    for name in SPEC_FILES:
        out.append(Supply(at, "qa.cp1", ImportSpec(name)))
        at += _minutes(rng, 5, 20)
    at = since + 3 * DAY + 4 * 60 * MINUTE
    for name in SPEC_FILES:
        reason = (f"{name}: limits reviewed against the clinical lots and the process "
                  "validation; methods at their validated versions")  # fmt: skip
        out.append(Supply(at, "qa.network", ApproveSpec(name, reason)))
        at += _minutes(rng, 10, 30)

    at = since + 2 * DAY
    for code, kind in sites:
        runs = PROCESS_OF_KIND.get(kind)
        if runs is None:
            continue
        classes = sorted({s.equipment_class for s in definition(runs).steps
                          if s.equipment_class})  # fmt: skip
        for equipment_class in classes:
            description = _equipment_of(equipment_class)[1]
            for equipment_id in equipment_ids(code, equipment_class):
                due = (at + _days(rng, 150, 360)).date()
                out.append(Supply(at, "admin.network", RegisterEquipment(
                    equipment_id, equipment_class, code, description, due)))  # fmt: skip
                out += _calibrations(rng, equipment_id, due, now)
                at += _minutes(rng, 2, 6)

    # One lot of every material the MBRs use, released before the first batch; the vector
    # lot runs out part-way and a second one follows; the latest is still in quarantine.
    rapid_only = set(_material_types(definition(RAPID))) - set(
        _material_types(definition(CONVENTIONAL))
    )
    kinds = sorted({k for p in MBR_FILES for k in _material_types(definition(p))})
    received, released = since + 4 * DAY, since + 6 * DAY
    vector = next((k for k in kinds if k.startswith("Lentiviral vector")), None)
    lots: set[str] = set()
    for kind in kinds:
        site = "poc1" if kind in rapid_only else "cp1"
        lot = _lot_number(rng, kind, received, lots)
        expiry = (now + _days(rng, 150, 500)).date()
        out.append(Supply(received, f"logistics.{site}",
                          ReceiveLot(lot, kind, _supplier(kind), expiry)))  # fmt: skip
        titre = round(rng.uniform(2.5, 6.0), 2) if kind == vector else None
        out.append(Supply(released, f"qa.{site}", ReleaseLot(lot, kind, _release_reason(kind),
                                                             titre)))  # fmt: skip
        received += _minutes(rng, 5, 20)
        released += _minutes(rng, 5, 20)
    if vector is not None:
        second = start + (now - start) * rng.uniform(0.4, 0.55)
        lot = _lot_number(rng, vector, second, lots)
        expiry = (now + _days(rng, 400, 600)).date()
        out.append(Supply(second, "logistics.cp1", ReceiveLot(lot, vector, _supplier(vector),
                                                              expiry)))  # fmt: skip
        out.append(Supply(second + _days(rng, 8, 12), "qa.cp1",
                          ReleaseLot(lot, vector, _release_reason(vector),
                                     round(rng.uniform(2.5, 6.0), 2))))  # fmt: skip
        latest = now - _days(rng, 2, 5)
        lot = _lot_number(rng, vector, latest, lots)
        expiry = (now + _days(rng, 600, 700)).date()
        out.append(Supply(latest, "logistics.cp1", ReceiveLot(lot, vector, _supplier(vector),
                                                              expiry)))  # fmt: skip
    out.sort(key=lambda s: s.at)
    return [s for s in out if s.at <= now]


def _release_reason(kind: str) -> str:
    if kind.startswith("Lentiviral vector"):
        return (
            "certificate of analysis reviewed (titre, sterility, RCL negative); identity "
            "confirmed on receipt; stored at -80 °C"
        )
    return "certificate of analysis reviewed against the specification; labels and seals intact"


def _calibrations(rng: random.Random, equipment_id: str, due: date, now: datetime) -> list[Supply]:
    """Calibrated every year, a few days to three weeks before it falls due, until now."""
    out: list[Supply] = []
    while True:
        day = datetime.combine(due, datetime.min.time(), tzinfo=now.tzinfo)
        at = day - _days(rng, 3, 20) + timedelta(hours=10)
        if at >= now:
            return out
        due = due + timedelta(days=365)
        reason = f"annual calibration, certificate CAL-{equipment_id}-{at.year}"
        out.append(Supply(at, "admin.network", Calibrate(equipment_id, due, reason)))


def _minutes(rng: random.Random, low: int, high: int) -> timedelta:
    return rng.randint(low, high) * MINUTE


def _days(rng: random.Random, low: int, high: int) -> timedelta:
    """From ``low`` to ``high`` days, to the minute."""
    return _minutes(rng, low * 24 * 60, high * 24 * 60)
