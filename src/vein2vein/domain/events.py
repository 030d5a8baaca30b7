"""Domain events: what happened, said in the past tense, ready to become audit records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vein2vein.domain.signatures import SigningIntent

__all__ = ["Event"]


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to one entity, by one actor, at one UTC time.

    ``new`` and ``old`` hold the values after and before the change (``old`` is empty for a
    creation); they must be JSON-serialisable. The unit of work turns every event raised in
    a transaction into one audit record, in the same transaction. ``signature``, when set,
    is an electronic signature of that record by the person who re-entered their password.
    """

    name: str
    actor: str
    at: datetime
    entity_type: str
    entity_id: str
    new: dict[str, Any] = field(default_factory=dict)
    old: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    signature: SigningIntent | None = None
