"""The hash chain: canonical bodies, and a verification that names the first broken link."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from vein2vein.domain.audit import (
    GENESIS,
    canonical_json,
    chain_hash,
    format_time,
    record_body,
    verify_chain,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def chain(n: int) -> list[tuple[int, str, str, str]]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        body = record_body(
            seq,
            T0 + timedelta(minutes=seq),
            "op",
            "Thing",
            "batch",
            f"L{seq}",
            {"n": seq},
            {},
            None,
        )
        digest = chain_hash(prev, body)
        rows.append((seq, prev, digest, body))
        prev = digest
    return rows


def test_the_hash_is_sha256_over_the_previous_hash_then_the_body() -> None:
    body = '{"a":1}'
    assert chain_hash(GENESIS, body) == hashlib.sha256((GENESIS + body).encode()).hexdigest()


def test_canonical_json_sorts_keys_has_no_spaces_and_keeps_unicode() -> None:
    assert canonical_json({"b": 1, "a": [1, "µ"]}) == '{"a":[1,"µ"],"b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_times_are_utc_with_microseconds_and_z() -> None:
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=UTC).astimezone()
    assert format_time(moment) == "2026-05-01T12:00:00.000000Z"
    with pytest.raises(ValueError):
        format_time(datetime(2026, 5, 1))


def test_an_intact_chain_verifies_and_reports_its_head() -> None:
    rows = chain(5)
    report = verify_chain(rows)
    assert report.ok and report.checked == 5 and report.last_seq == 5
    assert report.head_hash == rows[-1][2]


def test_a_changed_body_is_named_by_its_sequence() -> None:
    rows = chain(5)
    seq, prev, digest, body = rows[2]
    rows[2] = (seq, prev, digest, body.replace('"op"', '"rogue"'))
    report = verify_chain(rows)
    assert not report.ok and report.checked == 2
    assert report.first_break is not None and report.first_break.seq == 3
    assert "content changed" in report.first_break.what


def test_a_rehashed_record_breaks_the_link_to_the_next_one() -> None:
    rows = chain(5)
    seq, prev, _, body = rows[2]
    forged = body.replace('"op"', '"rogue"')
    rows[2] = (seq, prev, chain_hash(prev, forged), forged)
    report = verify_chain(rows)
    assert report.first_break is not None and report.first_break.seq == 4
    assert "previous hash" in report.first_break.what


def test_a_deleted_record_is_a_gap() -> None:
    rows = chain(5)
    del rows[1]
    report = verify_chain(rows)
    assert report.first_break is not None and report.first_break.seq == 3
    assert "sequence gap: expected record 2" in report.first_break.what


def test_a_body_carries_every_field_of_the_record() -> None:
    body = json.loads(
        record_body(7, T0, "qa", "BatchReleased", "batch", "L1", {"s": "R"}, {"s": "Q"}, "ok")
    )
    assert body == {
        "seq": 7,
        "at": "2026-01-01T00:00:00.000000Z",
        "actor": "qa",
        "action": "BatchReleased",
        "entity_type": "batch",
        "entity_id": "L1",
        "new": {"s": "R"},
        "old": {"s": "Q"},
        "reason": "ok",
    }
