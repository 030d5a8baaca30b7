"""The demo network: every state, the notable cases, an audit trail that verifies, repeatable."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import settings_for
from vein2vein.domain.batch import BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.identity import DEMONSTRATION_FINS
from vein2vein.domain.patient import Patient
from vein2vein.services import queries
from vein2vein.services.app import App
from vein2vein.services.demo import build_demo
from vein2vein.store import tables as t

SMALL = 24  # patients: enough for every state and the notable cases, quick on PostgreSQL


def audit_actions(app: App, lot: str) -> list[str]:
    return [e.action for e in reversed(queries.audit_log(app, lot=lot, limit=500))]


def lots_and_states(app: App) -> list[tuple[str, str]]:
    return sorted((row.lot, row.state) for row in queries.list_batches(app))


def test_the_demo_network_has_a_batch_in_every_state_and_the_notable_cases(
    sqlite_app: App,
) -> None:
    summary = build_demo(sqlite_app)

    assert summary.sites == 9
    assert summary.patients == 300
    assert all(summary.by_state[state.value] > 0 for state in BatchState), summary.by_state
    stored = Counter(row.state for row in queries.list_batches(sqlite_app))
    assert summary.by_state == {state.value: stored[state.value] for state in BatchState}
    assert summary.batches == sum(summary.by_state.values())
    assert summary.audit_records == sqlite_app.audit_count()
    assert sqlite_app.verify_audit().ok
    assert summary.identity_mismatches == 1
    assert set(summary.notable) == {
        "identity-mismatch",
        "rejected-apheresis",
        "terminated",
        "on-hold",
        "released-oos",
    }
    state_of = dict(lots_and_states(sqlite_app))
    assert state_of[summary.notable["rejected-apheresis"]] == "REJECTED"
    assert "StartingMaterialRejected" in audit_actions(
        sqlite_app, summary.notable["rejected-apheresis"]
    )
    assert state_of[summary.notable["terminated"]] == "TERMINATED"
    assert state_of[summary.notable["on-hold"]] == "ON_HOLD"
    assert "BatchReleasedOutOfSpecification" in audit_actions(
        sqlite_app, summary.notable["released-oos"]
    )


def test_a_wrong_bag_at_receipt_is_stopped_recorded_and_the_right_bag_then_received(
    app: App,
) -> None:
    summary = build_demo(app, patients=SMALL)

    actions = audit_actions(app, summary.notable["identity-mismatch"])
    mismatch = actions.index("IdentityMismatchDetected")
    assert actions[mismatch + 1 : mismatch + 3] == ["IdentityVerified", "ApheresisReceived"]
    assert actions.count("ApheresisReceived") == 1
    assert app.verify_audit().ok


def test_every_change_is_audited_in_time_order_and_the_chain_verifies(app: App) -> None:
    summary = build_demo(app, patients=SMALL)

    assert all(n > 0 for n in summary.by_state.values()), summary.by_state
    report = app.verify_audit()
    assert report.ok and report.checked == summary.audit_records
    with app.reader() as c:
        times = c.execute(sa.select(t.audit_record.c.at).order_by(t.audit_record.c.seq)).scalars()
        stamps = list(times)
        transitions = c.execute(
            sa.select(sa.func.count())
            .select_from(t.audit_record)
            .where(t.audit_record.c.entity_type == "batch")
        ).scalar_one()
    assert stamps == sorted(stamps)
    assert stamps[-1] <= app.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert transitions > summary.batches * 5


def test_hand_offs_are_cold_chain_fresh_apheresis_at_2_to_8_and_the_dose_below_minus_150(
    app: App,
) -> None:
    build_demo(app, patients=SMALL)

    with app.reader() as c:
        rows = c.execute(sa.select(t.custody_event.c.action, t.custody_event.c.temperature_c))
        by_action: dict[str, list[float | None]] = {}
        for action, temperature in rows:
            by_action.setdefault(action, []).append(temperature)
    for action in ("collect", "dispatch", "receive"):
        assert all(v is not None and 2 <= v <= 8 for v in by_action[action]), action
    for action in ("ship", "deliver"):
        assert all(v is not None and v < -150 for v in by_action[action]), action


def test_patients_are_pseudonyms_and_identifiers_use_the_example_fins_only(app: App) -> None:
    build_demo(app, patients=SMALL)

    rows = queries.list_batches(app)
    for row in rows:
        Patient(row.patient_pseudonym, row.year_of_birth, row.weight_kg)  # validates
        assert row.patient_pseudonym.startswith("PT-")
        assert row.coi[2:7] in DEMONSTRATION_FINS
        assert row.din is None or row.din[:5] in DEMONSTRATION_FINS
    assert {s.fin for s in queries.list_sites(app)} <= DEMONSTRATION_FINS


def test_the_same_seed_builds_the_same_network_on_either_engine(
    app: App, clock: FixedClock, tmp_path: Path
) -> None:
    first = build_demo(app, seed=11, patients=SMALL)
    url = f"sqlite:///{tmp_path / 'again.sqlite3'}"
    again_app = App.connect(url, clock=FixedClock(clock.now()), settings=settings_for(url))
    other_url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    other_app = App.connect(
        other_url, clock=FixedClock(clock.now()), settings=settings_for(other_url)
    )
    try:
        again_app.upgrade()
        other_app.upgrade()
        again = build_demo(again_app, seed=11, patients=SMALL)
        build_demo(other_app, seed=12, patients=SMALL)
        assert again == first
        assert lots_and_states(again_app) == lots_and_states(app)
        # Every record the same but for the credential ids in sign-in records, which are
        # random by design (secrets.token_hex), so the chains' hashes differ.
        def trail(a: App) -> list[tuple[str, str, str, str | None]]:
            return [
                (e.actor, e.action, e.entity_id, e.reason)
                for e in queries.audit_log(a, limit=100_000)
            ]

        assert trail(again_app) == trail(app)
        assert lots_and_states(other_app) != lots_and_states(app)
    finally:
        again_app.dispose()
        other_app.dispose()


def test_a_second_build_is_refused_and_changes_nothing(app: App) -> None:
    build_demo(app, patients=SMALL)
    before = (app.audit_count(), lots_and_states(app))

    with pytest.raises(InvalidInput, match="already holds batches"):
        build_demo(app, patients=SMALL)

    assert (app.audit_count(), lots_and_states(app)) == before


def test_progress_is_reported_up_to_the_total(sqlite_app: App) -> None:
    seen: list[tuple[int, int]] = []
    build_demo(sqlite_app, patients=SMALL, progress=lambda done, total: seen.append((done, total)))

    assert len(seen) > 2
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1][0] == seen[-1][1] == seen[0][1]


@pytest.mark.parametrize(("patients", "months"), [(5, 18), (300, 1)])
def test_too_small_a_network_is_refused_before_anything_is_written(
    sqlite_app: App, patients: int, months: int
) -> None:
    with pytest.raises(InvalidInput, match=r"demo (patients|months)"):
        build_demo(sqlite_app, patients=patients, months=months)
    assert sqlite_app.audit_count() == 0


def test_the_demo_has_people_of_every_role_who_sign_in_with_the_printed_password(
    app: App,
) -> None:
    from vein2vein.domain.people import Role
    from vein2vein.services import auth

    summary = build_demo(app, seed=7, patients=SMALL)
    roles = {role for user in summary.users for role in user.roles}
    assert roles == {r.value for r in Role}
    # The credentials the build signed in with end with it; the people sign in afresh.
    with app.engine.connect() as c:
        live = c.execute(
            sa.select(sa.func.count()).select_from(t.credential).where(
                t.credential.c.revoked_at.is_(None)
            )
        ).scalar_one()
    assert live == 0
    signed = auth.sign_in(app.uow(), user_id="qp.cp1", password=summary.password, kind="api")
    assert signed.actor.full_name == "Qualified person, CP1 (demo)"
