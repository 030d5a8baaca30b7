"""The audit trail's hash chain (DESIGN §7), pure.

Each audit record's content is one canonical JSON document, ``body``; its hash is
``SHA-256(previous hash + body)`` over UTF-8, as lower-case hex. The first record's previous
hash is 64 zeros. Canonical JSON here means: keys sorted, no insignificant whitespace,
non-ASCII kept as UTF-8, no NaN or infinity, times as ISO 8601 UTC with microseconds and
``Z``. The store keeps ``body`` byte for byte, so verification hashes exactly what was written.

Examples
--------
>>> from datetime import UTC, datetime
>>> body = record_body(1, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "qa.jones",
...                    "BatchReleased", "batch", "CP1-2026-00001", {"state": "RELEASED"}, {}, "ok")
>>> body[:60]
'{"action":"BatchReleased","actor":"qa.jones","at":"2026-01-0'
>>> report = verify_chain([(1, GENESIS, chain_hash(GENESIS, body), body)])
>>> report.ok, report.checked
(True, 1)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from hashlib import sha256
from typing import Any

__all__ = [
    "GENESIS",
    "ChainBreak",
    "ChainReport",
    "canonical_json",
    "chain_hash",
    "format_time",
    "record_body",
    "verify_chain",
]

GENESIS = "0" * 64


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and ``Z``; refuses naive datetimes."""
    if moment.tzinfo is None:
        raise ValueError(f"time {moment!r}: expected an aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"audit value {value!r} of type {type(value).__name__} is not JSON")


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value`` (see the module docstring)."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_default,
    )


def record_body(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    new: dict[str, Any],
    old: dict[str, Any],
    reason: str | None,
    signature: dict[str, Any] | None = None,
) -> str:
    """The canonical JSON body of audit record ``seq``.

    A signed record carries its electronic signature's manifest under ``signature``
    (domain/signatures.py); an unsigned one has no such key.
    """
    content: dict[str, Any] = {
        "seq": seq,
        "at": format_time(at),
        "actor": actor,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "new": new,
        "old": old,
        "reason": reason,
    }
    if signature is not None:
        content["signature"] = signature
    return canonical_json(content)


def chain_hash(prev_hash: str, body: str) -> str:
    """SHA-256 (hex) over the previous record's hash followed by this record's body."""
    return sha256((prev_hash + body).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first link that does not verify: its sequence number and what differs."""

    seq: int
    what: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.what}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    checked: int
    last_seq: int
    head_hash: str
    first_break: ChainBreak | None = None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def verify_chain(
    rows: Iterable[tuple[int, str, str, str]],
    *,
    after_seq: int = 0,
    prev_hash: str = GENESIS,
) -> ChainReport:
    """Recompute the chain over ``rows`` of ``(seq, prev_hash, hash, body)`` in seq order.

    Stops at the first broken link. ``after_seq`` and ``prev_hash`` let a verification start
    after a record already known to be good (or check one segment of a longer chain).
    """
    # The loop is the hot path of `v2v audit verify` (a million records): the checks of an
    # intact link are one comparison each, and the names of what broke are worked out only
    # once something has.
    expected_seq = after_seq + 1
    running = prev_hash
    digest = sha256
    for seq, stored_prev, stored_hash, body in rows:
        if seq != expected_seq or stored_prev != running:
            return _broken_link(seq, stored_prev, expected_seq, after_seq, running)
        if digest((running + body).encode()).hexdigest() != stored_hash:
            actual = digest((running + body).encode()).hexdigest()
            shown = body if len(body) <= 2000 else body[:2000] + "…"
            what = (
                f"content changed after it was written: stored hash {stored_hash[:12]}…, "
                f"recomputed {actual[:12]}…; the record now reads {shown}"
            )
            return ChainReport(seq - 1 - after_seq, seq - 1, running, ChainBreak(seq, what))
        running = stored_hash
        expected_seq += 1
    return ChainReport(expected_seq - 1 - after_seq, expected_seq - 1, running)


def _broken_link(
    seq: int, stored_prev: str, expected_seq: int, after_seq: int, running: str
) -> ChainReport:
    checked = expected_seq - 1 - after_seq
    if seq != expected_seq:
        what = (
            f"sequence gap: expected record {expected_seq}, found {seq} "
            "(records were deleted or renumbered)"
        )
        return ChainReport(checked, expected_seq - 1, running, ChainBreak(seq, what))
    what = (
        f"previous hash {stored_prev[:12]}… differs from record {seq - 1}'s hash "
        f"{running[:12]}… (a record before it was removed, replaced or re-hashed)"
    )
    return ChainReport(checked, seq - 1, running, ChainBreak(seq, what))
