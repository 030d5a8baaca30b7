"""What the API accepts (``…Create``) and returns (``…Public``): parsed here, trusted inside."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vein2vein.services.auth import Signing

__all__ = [
    "ActionPublic",
    "AuditCheckPublic",
    "AuditEntryPublic",
    "AuditVerifyPublic",
    "BatchDetailPublic",
    "BatchPublic",
    "ChainBreakPublic",
    "CustodyEventPublic",
    "IdentityPublic",
    "MePublic",
    "OrderCreate",
    "OrderPublic",
    "ScanCreate",
    "ScanPublic",
    "SignatureCreate",
    "SignaturePublic",
    "TokenCreate",
    "TokenPublic",
    "TransitionCreate",
]


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _Create(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class BatchPublic(_Public):
    lot: str
    coi: str
    din: str | None
    order_ref: str
    patient_pseudonym: str
    product: str
    manufacturing_site: str
    treatment_centre: str
    state: str
    state_since: datetime
    held_from: str | None
    created_at: datetime
    version: int


class IdentityPublic(_Public):
    coi: str
    coi_eye_readable: str
    coi_data_content: str
    din: str | None
    din_eye_readable: str | None
    check_character: str | None
    type3_flags: str | None
    din_data_content: str | None
    demonstration: bool


class ActionPublic(_Public):
    action: str
    summary: str
    reason_required: bool
    scan: bool
    handoff: bool
    signature: str | None = Field(
        default=None,
        description="The meaning of the electronic signature it needs (send `signature`), if any.",
    )


class CustodyEventPublic(_Public):
    action: str
    from_party: str
    to_party: str
    location: str
    temperature_c: float | None
    scanned: str | None
    at: datetime
    recorded_by: str


class SignaturePublic(_Public):
    """An electronic signature beside the audit record it signs (21 CFR 11.50)."""

    seq: int = Field(description="The audit record signed.")
    signer_id: str
    signer_name: str
    meaning: str = Field(description="e.g. release, approval, review.")
    signed_at: str
    matches: bool = Field(description="Whether the record still matches what was signed.")
    why: str


class AuditEntryPublic(_Public):
    seq: int
    at: str
    actor: str
    action: str
    entity_type: str
    entity_id: str
    new: dict[str, Any]
    old: dict[str, Any]
    reason: str | None
    hash: str
    prev_hash: str
    signature: SignaturePublic | None = Field(
        default=None, description="The electronic signature this record carries, if any."
    )


class ChainBreakPublic(BaseModel):
    seq: int
    what: str


class AuditCheckPublic(BaseModel):
    ok: bool
    checked: int
    broken: list[ChainBreakPublic]


class BatchDetailPublic(BaseModel):
    batch: BatchPublic
    identity: IdentityPublic
    age_hours: float
    needs_attention: bool
    actions: list[ActionPublic]
    custody: list[CustodyEventPublic]
    audit: list[AuditEntryPublic]
    audit_check: AuditCheckPublic
    signatures: list[SignaturePublic] = Field(
        description="Every signature on the batch's records, oldest first (also on its record)."
    )


class SignatureCreate(_Create):
    """An electronic signature: your password again, and your user id at the first
    signature made with a token (21 CFR 11.200(a)(1))."""

    password: str = Field(min_length=1, max_length=200)
    user_id: str | None = Field(default=None, max_length=100)


def signing_of(signature: SignatureCreate | None) -> Signing | None:
    """What the person typed to sign, as the services take it."""
    if signature is None:
        return None
    return Signing(signature.password, signature.user_id or None)


class TransitionCreate(_Create):
    reason: str | None = Field(default=None, max_length=2000)
    scan: str | None = Field(default=None, max_length=200, description="DIN or COI as scanned.")
    from_party: str | None = Field(default=None, max_length=200)
    to_party: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    temperature_c: float | None = Field(default=None, description="°C at the hand-off.")
    expected_version: int | None = Field(
        default=None, ge=1, description="The version you saw; refused with 409 if it moved on."
    )
    signature: SignatureCreate | None = Field(
        default=None, description="Required where the action is signed (e.g. release)."
    )
    process: str | None = Field(
        default=None,
        max_length=64,
        description="start-processing only: the process (MBR) to run, if several are effective.",
    )
    exception: str | None = Field(
        default=None,
        max_length=2000,
        description="accept only: QA's reason to accept an apheresis out of its criteria "
        "(signed with the acceptance, shown on the batch and its certificate).",
    )


class ScanCreate(_Create):
    scan: str = Field(min_length=1, max_length=200)
    location: str | None = Field(default=None, max_length=200)


class ScanPublic(_Public):
    lot: str
    scanned: str
    kind: str
    matches: bool


class OrderCreate(_Create):
    pseudonym: str = Field(min_length=1, max_length=64)
    year_of_birth: int
    weight_kg: float
    product: str = Field(min_length=1, max_length=64)
    treatment_centre: str = Field(min_length=1, max_length=32)
    manufacturing_site: str = Field(min_length=1, max_length=32)
    reference: str | None = Field(default=None, max_length=64)


class OrderPublic(_Public):
    reference: str
    lot: str
    coi: str


class AuditVerifyPublic(BaseModel):
    ok: bool
    checked: int
    last_seq: int
    head_hash: str
    first_break: ChainBreakPublic | None


class TokenCreate(_Create):
    user_id: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)
    label: str | None = Field(default=None, max_length=200, description="e.g. the script's name")


class TokenPublic(BaseModel):
    """A new API token; ``token`` is shown once and never stored."""

    token: str
    token_id: str
    expires_at: datetime
    user_id: str
    full_name: str
    roles: list[str]


class MePublic(BaseModel):
    user_id: str
    full_name: str
    roles: list[str]
    sites: list[str] = Field(description='"*" for every site')
    token_id: str
    expires_at: datetime
