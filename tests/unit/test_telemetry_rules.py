"""Readings checked at the edge (formats/telemetry.py) and the alarm rules
(domain/telemetry.py): a single noisy reading pages nobody, an excursion raises exactly
one alarm, a value wavering on the limit does not chatter, a silent sensor is noticed once."""

from __future__ import annotations

import doctest
import json
from datetime import UTC, datetime, timedelta

import pytest

import vein2vein.formats.telemetry
from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.telemetry import AlarmRule, AlarmTracker, SilenceWatch
from vein2vein.formats.telemetry import MalformedReading, parse_reading, topic

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
TOPIC = topic("POC1", "BR-01", "temperature")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def payload(**fields: object) -> bytes:
    base: dict[str, object] = {"time": "2026-11-24T08:00:00Z", "value": 37.0, "unit": "°C",
                               "seq": 1}  # fmt: skip
    return json.dumps({**base, **fields}).encode()


def test_the_modules_examples_hold() -> None:
    assert doctest.testmod(vein2vein.formats.telemetry).failed == 0


def test_a_reading_is_read_with_its_time_in_utc() -> None:
    r = parse_reading(TOPIC, payload(time="2026-11-24T09:00:00.5+01:00", value=36, seq=42))
    assert r.time == datetime(2026, 11, 24, 8, 0, 0, 500_000, tzinfo=UTC)
    assert (r.value, r.unit, r.sequence, r.key) == (36.0, "°C", 42, ("BR-01", "temperature", 42))


@pytest.mark.parametrize(
    ("topic_name", "body", "reason"),
    [
        ("v2v/POC1/BR-01", payload(), "topic 'v2v/POC1/BR-01': expected v2v/<site>/<equipment>/"),
        ("other/POC1/BR-01/t", payload(), "topic 'other/POC1/BR-01/t': expected"),
        (TOPIC, b"\xff\xfe", "payload: not UTF-8 text"),
        (TOPIC, b"{'value': 1}", "payload: not JSON (Expecting property name enclosed in "),
        (TOPIC, b"[1, 2]", "payload: expected a JSON object, got list"),
        (TOPIC, b" " * 5000, "payload: 5,000 bytes, more than 4,096"),
        (TOPIC, payload(time="2026-11-24T08:00:00"), "payload.time: Value error, no time zone"),
        (TOPIC, payload(value="NaN"), "payload.value: Value error, not a finite number"),
        (TOPIC, payload(value=True), "payload.value: a number, not true/false"),
        (TOPIC, payload(value="warm"), "payload.value: Input should be a valid number"),
        (TOPIC, payload(seq=-1), "payload.seq: Input should be greater than or equal to 0"),
        (TOPIC, payload(seq=1.5), "payload.seq: Input should be a valid integer"),
        (TOPIC, payload(unit=""), "payload.unit: String should have at least 1 character"),
        (TOPIC, payload(colour="blue"), "payload.colour: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_a_malformed_message_is_named_by_what_is_wrong_and_where(
    topic_name: str, body: bytes, reason: str
) -> None:
    with pytest.raises(MalformedReading) as refused:
        parse_reading(topic_name, body)
    assert reason.replace("Value error, ", "") in refused.value.reason
    assert refused.value.code == "malformed-reading"


def test_every_problem_of_a_payload_is_named_at_once() -> None:
    with pytest.raises(MalformedReading) as refused:
        parse_reading(TOPIC, json.dumps({"value": "x", "unit": "C"}).encode())
    reason = refused.value.reason
    assert "payload.time: Field required" in reason and "payload.seq: Field required" in reason
    assert "payload.value: Input should be a valid number" in reason


RULE = AlarmRule(low=36.0, high=38.0, persistence_s=60, hysteresis=0.3)


def replay(tracker: AlarmTracker, values: list[tuple[float, float]]) -> list[tuple[str, float]]:
    return [(e.kind, (e.time - T0).total_seconds())
            for s, v in values for e in tracker.feed(at(s), v)]  # fmt: skip


def test_a_single_noisy_reading_pages_nobody() -> None:
    values = [(i * 10.0, 37.0) for i in range(30)]
    values[12] = (120.0, 45.0)  # one spike
    assert replay(AlarmTracker(RULE), values) == []


def test_an_excursion_raises_exactly_one_alarm_when_it_has_lasted_long_enough() -> None:
    values = [(0.0, 37.0), (10.0, 38.5), *((10.0 + 10 * i, 38.5 + 0.1 * i) for i in range(1, 20)),
              (210.0, 37.0)]  # fmt: skip
    events = replay(AlarmTracker(RULE), values)
    assert events == [("raised", 70.0), ("cleared", 210.0)]


def test_a_value_wavering_on_the_limit_does_not_chatter() -> None:
    wobble = [(10.0 * i, 38.2 if i % 2 else 37.9) for i in range(1, 40)]  # around 38 ± 0.2
    events = replay(
        AlarmTracker(RULE), [(0.0, 38.5), (60.0, 38.5), *((70 + s, v) for s, v in wobble)]
    )
    assert events == [("raised", 60.0)]  # 37.9 is inside, but not by the 0.3 hysteresis


def test_an_excursion_that_changes_sides_starts_again() -> None:
    events = replay(AlarmTracker(RULE), [(0.0, 38.5), (40.0, 35.5), (90.0, 35.5), (100.0, 35.4)])
    assert events == [("raised", 100.0)]  # low since 40 s: 60 s later


def test_without_persistence_the_first_reading_out_alarms() -> None:
    tracker = AlarmTracker(AlarmRule(low=None, high=8.0))
    assert [e.kind for e in tracker.feed(at(0), 8.01)] == ["raised"]
    assert tracker.feed(at(1), 9.0) == []
    event = tracker.feed(at(2), 8.0)[0]
    assert (event.kind, event.since) == ("cleared", at(0))


def test_readings_out_of_order_or_not_numbers_are_refused() -> None:
    tracker = AlarmTracker(RULE)
    tracker.feed(at(10), 37.0)
    with pytest.raises(InvalidInput, match="older than the last one"):
        tracker.feed(at(5), 37.0)
    with pytest.raises(InvalidInput, match="is not a number"):
        tracker.feed(at(20), float("nan"))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"low": None, "high": None}, "give a low limit, a high limit or both"),
        ({"low": 38.0, "high": 36.0}, "low 38 is not below high 36"),
        ({"low": 36.0, "high": 38.0, "hysteresis": 1.0}, "leaves no room to clear"),
        ({"low": 36.0, "high": 38.0, "persistence_s": -1}, "persistence -1 s is not ≥ 0"),
    ],
)
def test_a_rule_that_cannot_work_is_refused(rule: dict[str, float | None], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        AlarmRule(**rule)  # type: ignore[arg-type]


def test_a_silent_sensor_is_noticed_once_and_heard_again() -> None:
    watch = SilenceWatch(timeout_s=30)
    assert watch.check(at(0)) == []  # never heard: nothing to miss yet
    assert watch.heard(at(0)) == []
    assert watch.check(at(29)) == []
    silent = watch.check(at(30))
    assert [(e.kind, e.since) for e in silent] == [("silent", at(0))]
    assert watch.check(at(90)) == []  # once
    heard = watch.heard(at(95))
    assert [(e.kind, e.time) for e in heard] == [("heard", at(95))]
    assert watch.check(at(100)) == []
    with pytest.raises(InvalidInput, match="no-data timeout 0 s"):
        SilenceWatch(timeout_s=0)


def test_a_value_swinging_beyond_the_other_limit_clears_the_alarm_and_starts_another() -> None:
    tracker = AlarmTracker(AlarmRule(low=36.0, high=38.0, persistence_s=60, hysteresis=0.2))
    t0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    at = lambda s: t0 + timedelta(seconds=s)  # noqa: E731
    assert [e.kind for e in tracker.feed(at(0), 38.5) + tracker.feed(at(60), 38.5)] == ["raised"]
    swung = tracker.feed(at(90), 35.0)
    assert [(e.kind, e.since) for e in swung] == [("cleared", at(0))]
    assert tracker.feed(at(120), 35.1) == []
    [low] = tracker.feed(at(150), 35.2)
    assert (low.kind, low.side, low.since) == ("raised", "low", at(90))
