"""Vector plan files (YAML, ``schema_version: 1``): the patients a therapy must serve, its
dose, how its viral vector is made and from which plasmids, and when each clinical phase
starts (issue 9).

Read with the safe loader and checked by Pydantic like every vein2vein file: unknown keys,
wrong types and values out of range are reported all at once with their place
(``vector.batch_success_rate: must be ≤ 1``). What comes out is the plain shape with the
defaults filled in; :meth:`vein2vein.planning.vectors.VectorPlan.from_dict` builds the plan
from it and checks how the parts fit (a cost for every scale, the weights a per-kg dose
needs, a shelf life longer than a batch takes to make and release, phases inside the years
with patients), naming places the same way.

Units are in the names. Vector quantities are in the modality's unit: transducing units
(TU) for a lentiviral vector, vector genomes (vg) for AAV. Money is in one currency.

The shape (see ``examples/vectors/*.yaml``)::

    schema_version: 1
    name: CAR-T CD19, ex vivo LV
    as_of: 2026-12-01                 # the plan's today: orders due before it are late
    indication:
      patients_per_year: {2027: 12, 2028: 40, 2029: 150}
      body_weight_kg: {mean: 70, sd: 15, min: 40, max: 150}   # for a per-kg dose
    modality:
      type: ex-vivo-lv                # or in-vivo-aav, in-vivo-lv
      cells_transduced: 1.0e8         # ex vivo: cells × MOI = TU per patient
      moi: 5
      # in vivo: dose_per_kg (or dose_per_patient) in vg or TU
      qc_and_retains_per_patient: 1.0e8
      overage: 0.2                    # extra for losses in handling
    vector:
      titre_per_litre: 1.0e10         # TU or vg harvested per litre of culture
      downstream_yield: 0.3
      scales_litres: [50, 200, 500, 2000]
      cost_per_batch: {50: 350000, 200: 700000, 500: 1200000, 2000: 3000000}
      batch_success_rate: 0.9
      production_days: 35
      qc_release_days: 56
      slot_booking_days: 180          # a manufacturing slot is booked this long ahead
      shelf_life_days: 730            # from the end of production (fill)
      storage: "≤ −65 °C"
    plasmids:
      transfer: {mg_per_litre: 1.0, lead_time_days: 180, cost_per_gram: 150000}
      packaging: {mg_per_litre: 0.5, lead_time_days: 180, cost_per_gram: 150000}
    phases:
      phase-1: {first_patient: 2027-03-01}
      pivotal: {first_patient: 2028-09-01}
    supply:                           # the Monte Carlo of stock-outs
      runs: 2000
      stockout_target: 0.05
      forecast_cv: 0.15               # year-to-year error of the patient forecast
      seed: 1
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from vein2vein.formats._yaml import (
    Count,
    InvalidFile,
    NonNegative,
    Positive,
    Probability,
    Strict,
    Versioned,
    above,
    at_most,
    read_model,
    read_text,
)

__all__ = ["InvalidVectorPlanFile", "load_vector_plan", "parse_vector_plan"]

_NAME = r"^[a-z][a-z0-9_-]{0,39}$"
Name = Annotated[str, Field(pattern=_NAME)]
Year = Annotated[int, Field(ge=1900, le=2200)]
Fraction = Annotated[Probability, AfterValidator(above(0))]
#: Days of a process step or a lead time (ten years at most), and of a shelf life (100).
Days = Annotated[NonNegative, AfterValidator(at_most(3650))]
ShelfDays = Annotated[Positive, AfterValidator(at_most(36_500))]


class InvalidVectorPlanFile(InvalidFile):
    """A vector plan file that cannot be used; ``problems`` holds every error with its
    place."""

    code = "invalid-vector-plan-file"


class _Weight(Strict):
    mean: Positive
    sd: NonNegative = 0.0
    min: Positive | None = None
    max: Positive | None = None


class _Indication(Strict):
    patients_per_year: Annotated[dict[Year, NonNegative], Field(min_length=1)]
    body_weight_kg: _Weight | None = None


class _Modality(Strict):
    type: Literal["ex-vivo-lv", "in-vivo-aav", "in-vivo-lv"]
    cells_transduced: Positive | None = None
    moi: Positive | None = None
    dose_per_kg: Positive | None = None
    dose_per_patient: Positive | None = None
    qc_and_retains_per_patient: NonNegative = 0.0
    overage: Annotated[NonNegative, AfterValidator(at_most(10))] = 0.0


class _Vector(Strict):
    titre_per_litre: Positive
    downstream_yield: Fraction
    scales_litres: Annotated[list[Positive], Field(min_length=1)]
    cost_per_batch: dict[Positive, NonNegative]
    batch_success_rate: Fraction
    production_days: Annotated[Positive, AfterValidator(at_most(3650))]
    qc_release_days: Days
    slot_booking_days: Days = 0.0
    shelf_life_days: ShelfDays
    storage: str = ""


class _Plasmid(Strict):
    mg_per_litre: Positive
    lead_time_days: Days
    cost_per_gram: NonNegative = 0.0


class _Phase(Strict):
    first_patient: date


class _Supply(Strict):
    runs: Annotated[Count, AfterValidator(at_most(100_000))] = 2000
    stockout_target: Fraction = 0.05
    forecast_cv: Annotated[NonNegative, AfterValidator(at_most(2))] = 0.0
    seed: Annotated[int, Field(ge=0)] = 1


class _File(Versioned):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    as_of: date | None = None
    indication: _Indication
    modality: _Modality
    vector: _Vector
    plasmids: Annotated[dict[Name, _Plasmid], Field(min_length=1)]
    phases: Annotated[dict[Name, _Phase], Field(min_length=1)]
    supply: _Supply = _Supply()


def parse_vector_plan(text: str, source: str = "<vector plan>") -> dict[str, Any]:
    """The vector plan in YAML ``text``, checked, as plain data with the defaults filled in
    (the shape :meth:`~vein2vein.planning.vectors.VectorPlan.from_dict` takes).

    Raises
    ------
    InvalidVectorPlanFile
        With every problem found, each with its place.
    """
    model = read_model(text, source, _File, InvalidVectorPlanFile)
    return model.model_dump(exclude_none=True)


def load_vector_plan(path: Path) -> dict[str, Any]:
    """Read and check the vector plan file at ``path`` (see :func:`parse_vector_plan`)."""
    text = read_text(path)
    return parse_vector_plan(text, str(path))
