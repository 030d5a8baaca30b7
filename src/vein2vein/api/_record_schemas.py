"""What the batch-record API accepts (``…Create``) and returns (``…Public``), issue 5."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from vein2vein.api.schemas import SignatureCreate, SignaturePublic

__all__ = [
    "BatchRecordPublic",
    "CalibrationCreate",
    "CorrectionCreate",
    "CorrectionPublic",
    "DeviationClosureCreate",
    "DeviationCreate",
    "DeviationPublic",
    "EquipmentCreate",
    "EquipmentPublic",
    "ExceptionPublic",
    "LotStatusCreate",
    "MaterialLotCreate",
    "MaterialLotPublic",
    "MaterialLotUsesPublic",
    "MaterialUsePublic",
    "StepEntryPublic",
    "StepPublic",
    "StepRecordCreate",
    "StepRecordedPublic",
    "ValuePublic",
    "VerificationCreate",
]


class _Create(BaseModel):
    # A value that is not a finite number is refused here (JSON parsers accept NaN); an
    # empty text is left to the services, which say what is missing in their own words.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


# -- the record ------------------------------------------------------------------------
class CorrectionPublic(BaseModel):
    """A value changed after first entry (Annex 11 §8): both values, who, when, why."""

    old: float
    new: float
    by: str
    at: datetime
    why: str


class ValuePublic(BaseModel):
    name: str
    unit: str
    entered: float = Field(description="As typed, or as computed.")
    reported: float = Field(description="Rounded to the parameter's reportable precision.")
    outcome: str = Field(description="ok, excursion (outside the NOR) or out-of-par.")
    computed: bool
    comment: str | None
    corrections: list[CorrectionPublic]


class StepEntryPublic(BaseModel):
    """One performance of a step."""

    step: str
    occurrence: int
    performed_by: str
    performed_at: datetime
    verified_by: str | None
    verified_at: datetime | None
    equipment: str | None
    materials: dict[str, str] = Field(description="Material type → the lot consumed.")
    values: list[ValuePublic]
    signatures: list[SignaturePublic] = Field(
        default_factory=list,
        description="Verification signatures, including any a later correction undid.",
    )


class StepPublic(BaseModel):
    id: str
    name: str
    status: str = Field(description="to do, next, awaits verification or done.")
    verification: bool
    repeatable: bool
    equipment_class: str | None
    entries: list[StepEntryPublic]


class ExceptionPublic(BaseModel):
    """What QA reviews by exception."""

    step: str
    occurrence: int
    kind: str = Field(description="excursion, out-of-par, correction, late or unverified.")
    detail: str


class DeviationPublic(BaseModel):
    reference: str
    lot: str
    severity: str
    state: str
    description: str
    step: str | None = Field(description='"step #occurrence" where a value opened it.')
    impact: str | None
    capa: str | None
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None
    closed_by: str | None


class MaterialUsePublic(BaseModel):
    """One line of genealogy: a material lot consumed by a batch at a step."""

    batch_lot: str
    step: str
    occurrence: int
    material_lot: str
    material_type: str
    quantity: float
    unit: str
    at: datetime


class BatchRecordPublic(BaseModel):
    lot: str
    state: str
    product: str
    process: str
    process_version: int
    title: str
    started_at: datetime
    started_by: str
    patient_weight_kg: float
    complete: bool
    next_steps: list[str]
    steps: list[StepPublic]
    exceptions: list[ExceptionPublic]
    deviations: list[DeviationPublic]
    materials: list[MaterialUsePublic]


class StepRecordCreate(_Create):
    step: str = Field(max_length=64)
    scan: str = Field(max_length=200, description="The batch's label as scanned.")
    values: dict[str, float] = Field(default_factory=dict, description="Typed values by name.")
    comments: dict[str, str] = Field(
        default_factory=dict, description="Why a value lies outside its normal range, by name."
    )
    material_lots: list[str] = Field(default_factory=list, max_length=50)
    equipment: str | None = Field(default=None, max_length=64)
    occurrence: int | None = Field(
        default=None, ge=1,
        description="The performance the client means to record (1, 2, … for a repeatable "
        "step); refused with 409 if someone recorded it meanwhile.",
    )  # fmt: skip


class StepRecordedPublic(BaseModel):
    lot: str
    entry: StepEntryPublic
    deviations: list[str] = Field(description="Deviations its values outside the PAR opened.")


class CorrectionCreate(_Create):
    parameter: str = Field(max_length=64)
    value: float
    reason: str = Field(max_length=2000)
    comment: str | None = Field(
        default=None, max_length=2000, description="Needed when the new value is an excursion."
    )


class VerificationCreate(_Create):
    signature: SignatureCreate | None = Field(default=None, description="Required (verified).")


# -- material lots ---------------------------------------------------------------------
class MaterialLotCreate(_Create):
    lot: str = Field(max_length=64)
    type: str = Field(max_length=200, description="As the MBR names it.")
    supplier: str = Field(max_length=200)
    expiry: date


class MaterialLotPublic(BaseModel):
    lot: str
    type: str
    supplier: str
    expiry: date
    status: str = Field(description="QUARANTINE, RELEASED, EXPIRED or REJECTED.")
    received_at: str
    usable: bool = Field(description="Released and not past its expiry today.")
    used_by: int = Field(description="How many batches consumed it.")


class LotStatusCreate(_Create):
    status: str = Field(max_length=20, description="RELEASED, REJECTED, EXPIRED.")
    reason: str = Field(max_length=2000)
    signature: SignatureCreate | None = Field(default=None, description="Required.")


class MaterialLotUsesPublic(BaseModel):
    lot: MaterialLotPublic
    batches: list[str] = Field(description="Every batch that consumed the lot (for a recall).")
    uses: list[MaterialUsePublic]


# -- equipment -------------------------------------------------------------------------
class EquipmentCreate(_Create):
    id: str = Field(max_length=64)
    equipment_class: str = Field(max_length=64)
    site: str = Field(max_length=32)
    description: str = Field(max_length=500)
    calibration_due: date


class EquipmentPublic(BaseModel):
    id: str
    equipment_class: str
    site: str
    description: str
    calibration_due: date
    in_calibration: bool = Field(description="Whether it is in calibration today.")


class CalibrationCreate(_Create):
    due: date = Field(description="The next calibration's due date.")
    reason: str = Field(max_length=500, description="The calibration's reference.")


# -- deviations ------------------------------------------------------------------------
class DeviationCreate(_Create):
    lot: str = Field(max_length=64)
    severity: str = Field(max_length=20, description="minor, major or critical.")
    description: str = Field(max_length=2000)


class DeviationClosureCreate(_Create):
    impact: str = Field(max_length=2000, description="The impact assessment.")
    capa: str | None = Field(default=None, max_length=64, description="CAPA reference.")
    severity: str | None = Field(default=None, max_length=20, description="Final class.")
    signature: SignatureCreate | None = Field(default=None, description="Required (approved).")
