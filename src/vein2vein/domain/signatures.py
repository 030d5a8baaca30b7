"""Electronic signatures bound to the record they sign (21 CFR 11.50, 11.70, 11.200).

A signature signs one audit record: the record of the change it approves, written in the
same transaction. Its manifest — signer's user id and full name, meaning, UTC time, and
``record_hash``, the SHA-256 of the record's canonical JSON *without* the manifest — is
stored inside that record's body (so it is hash-chained with it) and in the ``signature``
table (so it can be listed). :func:`check_signature` recomputes the hash from the record as
it is now: a record edited since it was signed, or a signature copied onto another record,
no longer matches.

Examples
--------
>>> from datetime import UTC, datetime
>>> from vein2vein.domain.audit import record_body
>>> at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
>>> content = record_body(7, at, "qp.lee", "BatchReleased", "batch", "CP1-2026-00001",
...                       {"state": "RELEASED"}, {"state": "QC_PENDING"}, "meets spec")
>>> manifest = SignatureManifest("qp.lee", "Dr Kim Lee", Meaning.RELEASED, at,
...                              content_hash(content))
>>> body = record_body(7, at, "qp.lee", "BatchReleased", "batch", "CP1-2026-00001",
...                    {"state": "RELEASED"}, {"state": "QC_PENDING"}, "meets spec",
...                    manifest.as_json())
>>> check_signature(manifest, body).matches
True
>>> check_signature(manifest, body.replace("meets spec", "waived")).matches
False
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from hashlib import sha256
from typing import Any

from vein2vein.domain.audit import canonical_json, format_time
from vein2vein.domain.errors import InvalidInput

__all__ = [
    "Meaning",
    "SignatureCheck",
    "SignatureManifest",
    "SigningIntent",
    "check_signature",
    "content_hash",
]


class Meaning(StrEnum):
    """The controlled list of what an electronic signature means (21 CFR 11.50(a)(3))."""

    PERFORMED = "performed"
    VERIFIED = "verified"
    REVIEWED = "reviewed"
    APPROVED = "approved"
    RELEASED = "released"
    REJECTED = "rejected"
    REQUESTED = "requested"  # a treating physician's request (release out of specification)


def content_hash(canonical: str) -> str:
    """SHA-256 (hex) of a record's canonical JSON text."""
    return sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SigningIntent:
    """A person who has just re-entered their password, and what their signature means.

    Attached to the event it signs; the unit of work turns it into a
    :class:`SignatureManifest` once the record's content (and so its hash) is known.
    """

    signer_id: str
    signer_name: str
    meaning: Meaning

    def __post_init__(self) -> None:
        if not isinstance(self.meaning, Meaning):
            choices = ", ".join(m.value for m in Meaning)
            raise InvalidInput(f"signature meaning {self.meaning!r}: expected one of {choices}")


@dataclass(frozen=True, slots=True)
class SignatureManifest:
    """What a signature shows wherever its record is shown (21 CFR 11.50)."""

    signer_id: str
    signer_name: str
    meaning: Meaning
    signed_at: datetime
    record_hash: str

    def as_json(self) -> dict[str, Any]:
        return {
            "by": self.signer_id,
            "name": self.signer_name,
            "meaning": self.meaning.value,
            "at": format_time(self.signed_at),
            "record_hash": self.record_hash,
        }

    def __str__(self) -> str:
        return (
            f"{self.meaning.value} by {self.signer_name} ({self.signer_id}) "
            f"at {self.signed_at:%Y-%m-%d %H:%M:%S} UTC"
        )


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """Whether a signature still matches the record it points to, and if not, why."""

    matches: bool
    why: str = ""


def check_signature(manifest: SignatureManifest, body: str) -> SignatureCheck:
    """Check ``manifest`` against the stored ``body`` of the record it claims to sign."""
    try:
        content = json.loads(body)
        embedded = content.pop("signature")
    except (ValueError, KeyError, AttributeError):
        return SignatureCheck(False, "the record it points to carries no signature")
    if embedded != manifest.as_json():
        return SignatureCheck(
            False, "the signature does not belong to this record (it was copied or changed)"
        )
    if content_hash(canonical_json(content)) != manifest.record_hash:
        return SignatureCheck(False, "the record has changed since it was signed")
    return SignatureCheck(True)
