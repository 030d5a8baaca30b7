"""What the QC and release API accepts (``…Create``) and returns (``…Public``), issue 6."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from vein2vein.api.schemas import SignatureCreate, SignaturePublic

__all__ = [
    "AcceptancePublic",
    "AcknowledgementCreate",
    "AlertPublic",
    "AttributePublic",
    "BatchQcPublic",
    "BlockerPublic",
    "ConclusionCreate",
    "ConditionalReleasePublic",
    "EscalationCreate",
    "ExceptionPublic",
    "InvalidationCreate",
    "InvestigationPublic",
    "MethodPublic",
    "OosReleaseRequestCreate",
    "OotReviewCreate",
    "PendingTestPublic",
    "RecordReviewCreate",
    "ReleasePublic",
    "ResultCreate",
    "ResultEnteredPublic",
    "ResultPublic",
    "ReviewPublic",
    "SampleCreate",
    "SamplePublic",
    "SpecApprovalCreate",
    "SpecCreate",
    "SpecVersionPublic",
    "SpecificationPublic",
    "TestResultPublic",
    "TimelinePublic",
    "TurnaroundPublic",
    "VerifyCreate",
    "WorkloadPublic",
]


class _Create(BaseModel):
    # An empty text is left to the services, which say what is missing in their own words.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


_SIGNED = "Required: your password again, and your user id at the first signature of a token."


# -- specifications ----------------------------------------------------------------------
class SpecVersionPublic(_Public):
    code: str
    version: int
    product: str
    stage: str = Field(description="starting-material, in-process or release.")
    title: str
    status: str = Field(description="DRAFT, EFFECTIVE or SUPERSEDED.")
    content_hash: str = Field(description="SHA-256 of the file as imported.")
    imported_by: str
    approved_by: str | None


class MethodPublic(_Public):
    code: str
    title: str
    version: str
    turnaround_hours: float


class AttributePublic(BaseModel):
    name: str
    title: str
    method: str
    kind: str = Field(description="numeric, categorical, multi or report.")
    unit: str
    precision: int = Field(description="Decimals a result is rounded to before it is compared.")
    criterion: str = Field(description="The criterion as the certificate prints it.")
    low: float | None
    high: float | None
    choices: list[str]
    accepted: list[str]
    replicates: int
    pending_allowed_with: str | None = Field(
        description="The rapid method whose pass lets it be pending at a conditional release."
    )


class SpecificationPublic(SpecVersionPublic):
    methods: list[MethodPublic]
    attributes: list[AttributePublic]


class SpecCreate(_Create):
    text: str = Field(max_length=200_000, description="The specification file (YAML).")
    source: str | None = Field(
        default=None, max_length=200, description="The file's name, named in errors."
    )


class SpecApprovalCreate(_Create):
    reason: str = Field(max_length=2000, description="What was reviewed.")
    signature: SignatureCreate | None = Field(default=None, description=_SIGNED + " (approved)")


# -- samples and results -----------------------------------------------------------------
class SampleCreate(_Create):
    stage: str = Field(max_length=32, description="starting-material, in-process or release.")
    scan: str = Field(max_length=200, description="The batch's label (DIN or COI) as scanned.")
    step: str | None = Field(default=None, max_length=64, description="The step sampled.")


class TestResultPublic(_Public):
    """A result as entered and as it stands; its OOS flag never goes away."""

    id: int
    lot: str
    sample_id: str
    stage: str
    spec: str = Field(description='"code vN" of the specification it is judged against.')
    attribute: str
    method: str
    method_version: str
    analyst: str
    instrument: str | None
    tested_at: datetime
    entered: str = Field(description="As typed.")
    reported: str = Field(description="Rounded to the reportable precision.")
    number: float | None = Field(description="The rounded number compared, where there is one.")
    unit: str
    conformance: str = Field(description="conforms, oos or reported.")
    oos: bool
    oot: bool = Field(description="Out of the product's trend.")
    status: str = Field(description="entered, verified or invalidated.")
    current: bool = Field(description="Not invalidated.")
    retest_of: int | None
    verified_by: str | None
    verified_at: datetime | None
    invalidated_by: str | None
    invalidated_at: datetime | None
    invalid_reason: str | None
    oot_reviewed_by: str | None
    oot_comment: str | None


class ResultPublic(TestResultPublic):
    title: str
    criterion: str
    method_title: str
    verification: SignaturePublic | None = Field(description="The second analyst's signature.")
    investigation: str | None = Field(description="The OOS investigation it opened.")
    retested_by: int | None = Field(description="The result that retests this one.")


class SamplePublic(BaseModel):
    id: str
    lot: str
    coi: str = Field(description="The batch's chain of identity, carried by the sample.")
    stage: str
    step: str | None
    spec: str = Field(description='"code vN" effective when it was drawn.')
    drawn_at: datetime
    drawn_by: str
    results: list[ResultPublic]
    outstanding: list[str] = Field(description="Attributes with no standing result.")
    due: datetime = Field(description="When the slowest outstanding test should be done.")


class ResultCreate(_Create):
    attribute: str = Field(max_length=64)
    value: str = Field(
        max_length=500,
        description='As typed: "82", "no growth", or replicates "1200, 1250, 1300".',
    )
    method_version: str | None = Field(
        default=None, max_length=32, description="Checked against the specification's."
    )
    instrument: str | None = Field(default=None, max_length=64)
    tested_at: datetime | None = Field(default=None, description="With a time zone; now if none.")
    retest_of: int | None = Field(default=None, ge=1, description="The invalidated result.")


class ResultEnteredPublic(BaseModel):
    id: int
    reported: str
    conformance: str = Field(description="conforms, oos or reported.")
    oot: bool
    investigation: str | None = Field(description="The OOS investigation it opened.")
    alert: int | None = Field(description="The alert it raised (a failed conditional release).")


class VerifyCreate(_Create):
    signature: SignatureCreate | None = Field(default=None, description=_SIGNED + " (verified)")


class InvalidationCreate(_Create):
    reason: str = Field(max_length=2000)


class OotReviewCreate(_Create):
    comment: str = Field(max_length=2000, description="What was looked at, why it stands.")


# -- OOS investigations ------------------------------------------------------------------
class InvestigationPublic(BaseModel):
    reference: str
    lot: str
    result_id: int
    phase: int = Field(description="1 (laboratory) or 2 (full).")
    phase_i_finding: str | None
    outcome: str | None = Field(description="laboratory-error or confirmed, once concluded.")
    conclusion: str | None
    open: bool
    opened_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    signatures: list[SignaturePublic] = Field(default_factory=list)


class EscalationCreate(_Create):
    finding: str = Field(max_length=2000, description="What phase I found (no laboratory cause).")


class ConclusionCreate(_Create):
    outcome: str = Field(max_length=32, description="laboratory-error or confirmed.")
    conclusion: str = Field(max_length=4000)
    signature: SignatureCreate | None = Field(default=None, description=_SIGNED + " (approved)")


# -- the record review and the exceptions ------------------------------------------------
class RecordReviewCreate(_Create):
    comment: str = Field(max_length=2000, description="What was reviewed.")
    signature: SignatureCreate | None = Field(default=None, description=_SIGNED + " (reviewed)")


class ReviewPublic(_Public):
    lot: str
    reviewed_by: str
    reviewed_at: datetime
    comment: str


class OosReleaseRequestCreate(_Create):
    reason: str = Field(max_length=4000, description="The documented clinical reason.")
    document: str = Field(max_length=200, description="The signed request's reference.")
    signature: SignatureCreate | None = Field(default=None, description=_SIGNED + " (requested)")


class ExceptionPublic(_Public):
    id: int
    lot: str
    kind: str = Field(description="acceptance-exception or oos-release-request.")
    attributes: list[str]
    reason: str
    document: str | None
    signed_by: str
    signed_at: datetime


# -- a batch's QC ------------------------------------------------------------------------
class AcceptancePublic(BaseModel):
    spec: str
    complete: bool
    meets_criteria: bool
    missing: list[str]
    unverified: list[str]
    out_of_criteria: list[int] = Field(description="Results outside the criteria.")
    problems: list[str]


class BlockerPublic(BaseModel):
    kind: str = Field(description='e.g. "result missing", "deviation open".')
    subject: str
    detail: str


class ReleasePublic(BaseModel):
    spec: str
    blockers: list[BlockerPublic]
    pending_conditional: list[str] = Field(
        description="Missing, but covered by a passing rapid method."
    )
    releasable: bool
    conditionally_releasable: bool
    releasable_oos: bool = Field(description="Only confirmed OOS results stand in the way.")


class ConditionalReleasePublic(_Public):
    lot: str
    pending: list[str]
    released_at: datetime
    released_by: str
    status: str = Field(description="PENDING, FINAL or FAILED.")
    closed_at: datetime | None
    result_id: int | None


class AlertPublic(_Public):
    id: int
    lot: str
    treatment_centre: str
    result_id: int
    deviation: str
    message: str
    raised_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    acknowledgement: str | None


class BatchQcPublic(BaseModel):
    lot: str
    state: str
    product: str
    coi: str
    din: str | None
    treatment_centre: str
    samples: list[SamplePublic]
    acceptance: AcceptancePublic | None
    release: ReleasePublic | None
    oos_results: list[int] = Field(description="Every OOS result ever entered, whatever its fate.")
    investigations: list[InvestigationPublic]
    acceptance_exceptions: list[ExceptionPublic]
    oos_requests: list[ExceptionPublic]
    conditional: ConditionalReleasePublic | None
    alerts: list[AlertPublic]
    review: ReviewPublic | None
    signatures: list[SignaturePublic] = Field(description="The batch's own signatures.")


# -- the workload ------------------------------------------------------------------------
class PendingTestPublic(_Public):
    lot: str
    sample_id: str
    stage: str
    attribute: str
    title: str
    method: str
    due: datetime
    overdue: bool
    state: str = Field(description="not entered, or awaiting verification.")


class TurnaroundPublic(_Public):
    method: str
    n: int
    median_hours: float
    p90_hours: float
    target_hours: float | None


class TimelinePublic(_Public):
    lot: str
    state: str
    treatment_centre: str
    collected: datetime | None
    harvested: datetime | None
    released: datetime | None
    infused: datetime | None
    harvest_to_release_days: float | None
    vein_to_vein_days: float | None = Field(description="To infusion, or so far.")
    so_far: bool


class WorkloadPublic(BaseModel):
    now: datetime
    pending: list[PendingTestPublic]
    turnaround: list[TurnaroundPublic]
    timelines: list[TimelinePublic]
    open_investigations: list[InvestigationPublic]
    alerts: list[AlertPublic] = Field(description="Not acknowledged yet.")
    oot_to_review: list[TestResultPublic]


class AcknowledgementCreate(_Create):
    note: str = Field(max_length=2000, description="What was done (e.g. dose quarantined).")
