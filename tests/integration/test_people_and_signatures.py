"""People, permissions and Part 11 signatures on real SQLite and real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.integration.test_batches_on_both_engines import drop_audit_triggers
from tests.network import (
    PASSWORD,
    act,
    advance,
    execute_record,
    order,
    pass_release_qc,
    people_of,
    record,
    sign_in,
    small_network,
)
from vein2vein.domain.batch import Action, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import (
    AccountLocked,
    AuthenticationFailed,
    InvalidInput,
    PasswordExpired,
    PermissionDenied,
    SignatureRefused,
)
from vein2vein.domain.people import Role
from vein2vein.domain.permissions import rule_for
from vein2vein.services import auth, people, queries
from vein2vein.services.app import App
from vein2vein.services.auth import Signing
from vein2vein.store import tables as t


def last_record(app: App) -> queries.AuditEntry:
    return queries.audit_log(app, limit=1)[0]


def test_an_action_by_a_role_not_allowed_is_refused_and_recorded(app: App) -> None:
    crew = small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.QC_PENDING)
    before = queries.batch_view(app, lot).batch.version
    with pytest.raises(PermissionDenied, match="needs the role qp"):
        act(app, lot, Action.RELEASE, by=crew.coordinator, reason="ok")
    assert queries.batch_view(app, lot).batch.version == before
    denied = last_record(app)
    assert (denied.action, denied.actor, denied.entity_id) == (
        "PermissionDenied",
        "coordinator.tc",
        lot,
    )
    assert denied.new["permission"] == "batch.release"


def test_a_person_acts_only_on_the_sites_in_their_scope(app: App) -> None:
    crew = small_network(app)
    admin = crew.admin.actor
    people.create_user(
        app.uow(), admin, user_id="coordinator.tc2", full_name="Tee Two",
        roles=["coordinator"], sites="TC2", password=PASSWORD, must_change_password=False,
    )  # fmt: skip
    outsider = sign_in(app, "coordinator.tc2")
    lot = order(app, centre="TC1")
    with pytest.raises(PermissionDenied, match="outside their site scope"):
        act(app, lot, Action.COLLECT, by=outsider)
    assert last_record(app).action == "PermissionDenied"


def test_the_person_who_made_a_batch_cannot_release_it(app: App) -> None:
    crew = small_network(app)
    people.update_user(
        app.uow(), crew.admin.actor, "qp.cp1", roles=["qp", "operator"], reason="cover"
    )
    maker = sign_in(app, "qp.cp1")
    lot = order(app)
    advance(app, lot, BatchState.ACCEPTED)
    act(app, lot, Action.START_PROCESSING, by=maker, scan=queries.batch_view(app, lot).batch.din)
    execute_record(app, lot)
    act(app, lot, Action.COMPLETE_PROCESSING, by=maker)
    with pytest.raises(PermissionDenied, match="they made it"):
        act(app, lot, Action.RELEASE, by=maker, reason="in spec")
    assert last_record(app).action == "PermissionDenied"


def test_the_person_who_recorded_a_step_of_a_batch_cannot_release_it(app: App) -> None:
    crew = small_network(app)
    people.update_user(
        app.uow(), crew.admin.actor, "qp.cp1", roles=["qp", "operator"], reason="cover"
    )
    maker = sign_in(app, "qp.cp1")
    people_of(app).identities["qp.cp1"] = maker
    lot = order(app)
    advance(app, lot, BatchState.IN_PROCESS)
    record(app, lot, "receipt", by="qp.cp1")  # one step, by the future releaser
    advance(app, lot, BatchState.QC_PENDING)
    with pytest.raises(PermissionDenied, match="they made it"):
        act(app, lot, Action.RELEASE, by=maker, reason="in spec")


def test_a_release_is_signed_with_the_password_in_the_same_transaction(app: App) -> None:
    crew = small_network(app)
    qp = crew["qp.cp1"]
    lot = order(app)
    advance(app, lot, BatchState.QC_PENDING)
    pass_release_qc(app, lot)
    with pytest.raises(InvalidInput, match="needs your electronic signature"):
        act(app, lot, Action.RELEASE, reason="in spec", signing=None)
    with pytest.raises(InvalidInput, match="first signature of this session"):
        act(app, lot, Action.RELEASE, reason="in spec", signing=Signing(PASSWORD))
    with pytest.raises(SignatureRefused, match="not the signed-in person"):
        act(app, lot, Action.RELEASE, reason="in spec", signing=Signing(PASSWORD, "qa.cp1"))
    as_other = last_record(app)
    assert (as_other.action, as_other.entity_id, as_other.new["user"]) == (
        "SignatureRefused",
        lot,  # in the batch's own trail
        "qp.cp1",
    )
    with pytest.raises(SignatureRefused, match="signature refused: wrong password"):
        act(app, lot, Action.RELEASE, reason="in spec", signing=Signing("nope", "qp.cp1"))
    refused = last_record(app)
    assert refused.action == "SignatureRefused" and refused.new["failed_attempts"] == 2
    assert refused.entity_id == lot and "release of batch" in (refused.reason or "")
    assert queries.batch_view(app, lot).batch.state == "QC_PENDING"

    batch = act(app, lot, Action.RELEASE, reason="in spec", signing=Signing(PASSWORD, "qp.cp1"))
    assert batch.state is BatchState.RELEASED
    # A signature that verifies ends the run of failures: "five in a row" means in a row.
    (qp_account,) = [u for u in queries.list_users(app, crew.admin.actor) if u.user_id == "qp.cp1"]
    assert qp_account.failed_attempts == 0
    view = queries.batch_view(app, lot)
    (released,) = [e for e in view.audit if e.action == "BatchReleased"]
    signed = view.signatures[released.seq]
    assert (signed.signer_name, signed.meaning, signed.matches) == ("Dr Kim Lee", "released", True)
    # Later signatures in the same session need the password only.
    other = order(app, "PT-000202")
    advance(app, other, BatchState.QC_PENDING)
    pass_release_qc(app, other)
    act(app, other, Action.RELEASE, by=qp, reason="in spec", signing=Signing(PASSWORD))
    assert queries.batch_view(app, other).batch.state == "RELEASED"
    assert app.verify_audit().ok


def test_a_signed_record_changed_afterwards_no_longer_matches(app: App) -> None:
    small_network(app)
    lot = order(app)
    advance(app, lot, BatchState.RELEASED)
    view = queries.batch_view(app, lot)
    seq = max(view.signatures)  # the release (the acceptance was signed too)
    drop_audit_triggers(app)
    with app.engine.begin() as c:
        c.execute(
            sa.text(
                "UPDATE audit_record SET body = replace(body, 'per SOP', 'waived') WHERE seq = :s"
            ),
            {"s": seq},
        )
    signed = queries.batch_view(app, lot).signatures[seq]
    assert not signed.matches and signed.why == "the record has changed since it was signed"


def test_a_signature_replayed_onto_another_record_is_detected(app: App) -> None:
    small_network(app)
    first, second = order(app, "PT-000101"), order(app, "PT-000202")
    advance(app, first, BatchState.RELEASED)
    advance(app, second, BatchState.QC_PENDING)
    seq = max(queries.batch_view(app, first).signatures)
    (target,) = [
        e.seq for e in queries.batch_view(app, second).audit if e.action == "ProcessingCompleted"
    ]
    with app.engine.begin() as c:
        row = c.execute(sa.select(t.signature).where(t.signature.c.audit_seq == seq)).one()
        copied = dict(row._mapping) | {"audit_seq": target, "entity_id": second}
        c.execute(t.signature.insert().values(**copied))
    forged = queries.batch_view(app, second).signatures[target]
    assert not forged.matches and "carries no signature" in forged.why


def test_five_wrong_passwords_lock_the_account_and_tell_the_administrators(app: App) -> None:
    small_network(app)
    for _ in range(4):
        with pytest.raises(AuthenticationFailed, match="unknown user id or wrong password"):
            sign_in(app, "qa2.cp1", "wrong-password")
    with pytest.raises(AccountLocked, match="locked after 5 failed attempts"):
        sign_in(app, "qa2.cp1", "wrong-password")
    assert last_record(app).action == "AccountLocked"
    with pytest.raises(AccountLocked):
        sign_in(app, "qa2.cp1")  # even the right password
    crew = people_of(app)
    locked = [u.user_id for u in queries.list_users(app, crew.admin.actor) if u.locked]
    assert locked == ["qa2.cp1"]
    with pytest.raises(PermissionDenied):
        queries.list_users(app, crew.qa.actor)
    people.unlock_user(app.uow(), crew.admin.actor, "qa2.cp1", reason="called the helpdesk")
    assert sign_in(app, "qa2.cp1").actor.user_id == "qa2.cp1"


def test_an_unknown_user_is_refused_in_the_same_words_as_a_wrong_password(app: App) -> None:
    small_network(app)
    with pytest.raises(AuthenticationFailed, match="unknown user id or wrong password"):
        sign_in(app, "nobody.here")
    assert last_record(app).action == "SignInFailed"


def test_a_revoked_token_and_an_idle_session_are_refused(app: App, clock: FixedClock) -> None:
    crew = small_network(app)
    signed = auth.sign_in(app.uow(), user_id="qa.cp1", password=PASSWORD, kind="api")
    who = auth.resolve_token(app.uow(), signed.token, kinds=("api",))
    auth.revoke_credential(app.uow(), who.actor, who.token_id, reason="laptop lost")
    with pytest.raises(AuthenticationFailed, match="revoked"):
        auth.resolve_token(app.uow(), signed.token, kinds=("api",))
    with pytest.raises(AuthenticationFailed, match="not known"):
        auth.resolve_token(app.uow(), signed.token[:-2] + "xx", kinds=("api",))
    session = auth.sign_in(app.uow(), user_id="qa.cp1", password=PASSWORD, kind="session")
    with pytest.raises(AuthenticationFailed, match="not known"):  # a session is not an API token
        auth.resolve_token(app.uow(), session.token, kinds=("api",))
    clock.advance(timedelta(minutes=16))
    with pytest.raises(AuthenticationFailed, match="15 minutes without activity"):
        auth.resolve_token(app.uow(), session.token, kinds=("session",))
    assert crew.qa.actor.user_id == "qa.cp1"


def test_an_old_or_administrator_set_password_must_be_changed_first(
    app: App, clock: FixedClock
) -> None:
    crew = small_network(app)
    people.reset_password(
        app.uow(), crew.admin.actor, "qa2.cp1", new_password="Temporary-2026-pw", reason="forgot"
    )
    with pytest.raises(PasswordExpired, match="must change the password"):
        sign_in(app, "qa2.cp1", "Temporary-2026-pw")
    with pytest.raises(InvalidInput, match="at least 12 characters"):
        people.change_password(
            app.uow(), user_id="qa2.cp1", old_password="Temporary-2026-pw", new_password="short"
        )
    people.change_password(
        app.uow(),
        user_id="qa2.cp1",
        old_password="Temporary-2026-pw",
        new_password="Mine-2026-pass",
    )
    assert sign_in(app, "qa2.cp1", "Mine-2026-pass").actor.user_id == "qa2.cp1"
    clock.advance(timedelta(days=91))
    with pytest.raises(PasswordExpired, match="older than 90 days"):
        sign_in(app, "qa2.cp1", "Mine-2026-pass")


def test_a_deactivated_account_cannot_sign_in_and_its_tokens_end(app: App) -> None:
    crew = small_network(app)
    token = auth.sign_in(app.uow(), user_id="qa2.cp1", password=PASSWORD, kind="api").token
    people.deactivate_user(app.uow(), crew.admin.actor, "qa2.cp1", reason="left the company")
    with pytest.raises(AuthenticationFailed):
        auth.resolve_token(app.uow(), token, kinds=("api",))
    with pytest.raises(AuthenticationFailed):
        sign_in(app, "qa2.cp1")
    record = last_record(app)
    assert record.action == "SignInFailed" and record.reason == "unknown or inactive account"


def test_only_an_administrator_adds_people_and_that_is_audited(app: App) -> None:
    crew = small_network(app)
    with pytest.raises(PermissionDenied, match="needs the role administrator"):
        people.create_user(
            app.uow(), crew.qa.actor, user_id="eve.x", full_name="Eve", roles=["qp"],
            sites="*", password=PASSWORD,
        )  # fmt: skip
    assert last_record(app).action == "PermissionDenied"
    people.create_user(
        app.uow(), crew.admin.actor, user_id="new.qp", full_name="New QP", roles=["qp"],
        sites="CP1", password=PASSWORD,
    )  # fmt: skip
    created = last_record(app)
    assert created.action == "UserCreated" and created.actor == "admin"
    assert "password" not in str(created.new).lower()


def test_every_action_is_refused_and_recorded_for_every_role_the_table_does_not_allow(
    app: App,
) -> None:
    """Table-driven over PERMISSIONS: one person per role, at every site, tries every
    transition; each refusal is a PermissionDenied error *and* an audit record."""
    crew = small_network(app)
    lot = order(app)
    for role in Role:
        people.create_user(
            app.uow(), crew.admin.actor, user_id=f"only.{role.value}", full_name=role.value,
            roles=[role], sites="*", password=PASSWORD, must_change_password=False,
        )  # fmt: skip
    tried = 0
    for role in Role:
        who = sign_in(app, f"only.{role.value}")
        for action in Action:
            rule = rule_for(action)
            if rule.allows(who.actor):
                continue
            before = queries.audit_log(app, limit=1)[0].seq
            with pytest.raises(PermissionDenied, match=f"may not {rule.permission}"):
                act(app, lot, action, by=who, reason="try", signing=Signing(PASSWORD))
            denied = queries.audit_log(app, limit=1)[0]
            assert denied.seq == before + 1, (role, action)
            assert (denied.action, denied.actor, denied.new["permission"]) == (
                "PermissionDenied",
                who.actor.user_id,
                rule.permission,
            )
            tried += 1
    # Every role is refused something, and the batch never moved.
    assert tried > 80
    assert queries.batch_view(app, lot).batch.state == "ORDERED"


def test_nobody_changes_their_own_account(app: App) -> None:
    crew = small_network(app)
    with pytest.raises(PermissionDenied, match="may not change their own account"):
        people.update_user(
            app.uow(), crew.admin.actor, "admin", roles=["administrator", "qp"], reason="cover"
        )
    assert last_record(app).action == "PermissionDenied"
    with pytest.raises(PermissionDenied, match="may not change their own account"):
        people.reset_password(
            app.uow(), crew.admin.actor, "admin", new_password="Another-pass-2026", reason="x"
        )


def test_a_locked_only_administrator_is_recovered_by_bootstrapping_another(app: App) -> None:
    small_network(app)
    with pytest.raises(PermissionDenied, match="an administrator can act already"):
        people.bootstrap_administrator(
            app.uow(), user_id="admin.two", full_name="Second", password=PASSWORD
        )
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            sign_in(app, "admin", "wrong-password")
    people.bootstrap_administrator(
        app.uow(), user_id="admin.two", full_name="Second Admin", password=PASSWORD
    )
    recovered = last_record(app)
    assert recovered.action == "AdministratorBootstrapped" and "recovery" in (
        recovered.reason or ""
    )
    second = sign_in(app, "admin.two")
    people.unlock_user(app.uow(), second.actor, "admin", reason="locked out by a typo")
    assert sign_in(app, "admin").actor.user_id == "admin"


def test_a_lockout_a_password_reset_or_an_aged_password_ends_existing_tokens(
    app: App, clock: FixedClock
) -> None:
    crew = small_network(app)
    token = auth.sign_in(app.uow(), user_id="qa2.cp1", password=PASSWORD, kind="api").token
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            sign_in(app, "qa2.cp1", "wrong-password")
    people.unlock_user(app.uow(), crew.admin.actor, "qa2.cp1", reason="helpdesk")
    with pytest.raises(AuthenticationFailed, match="revoked"):
        auth.resolve_token(app.uow(), token, kinds=("api",))

    token = auth.sign_in(app.uow(), user_id="qa2.cp1", password=PASSWORD, kind="api").token
    people.reset_password(
        app.uow(), crew.admin.actor, "qa2.cp1", new_password="Temporary-2026-pw", reason="leak"
    )
    with pytest.raises(AuthenticationFailed, match="revoked"):
        auth.resolve_token(app.uow(), token, kinds=("api",))

    token = auth.sign_in(app.uow(), user_id="qa.cp1", password=PASSWORD, kind="api").token
    clock.advance(timedelta(days=29))  # the token lives 30 days, the password 90
    people.change_password(
        app.uow(), user_id="qa.cp1", old_password=PASSWORD, new_password="Fresh-pass-2026"
    )
    assert auth.resolve_token(app.uow(), token, kinds=("api",)).actor.user_id == "qa.cp1"
    clock.advance(timedelta(days=33))  # day 62: qp.cp1's password (set on day 0) is still good
    aged = auth.sign_in(app.uow(), user_id="qp.cp1", password=PASSWORD, kind="api").token
    clock.advance(timedelta(days=29))  # day 91: the token has a day left, the password none
    with pytest.raises(PasswordExpired, match="must be changed"):
        auth.resolve_token(app.uow(), aged, kinds=("api",))


def test_a_refused_sign_in_records_only_a_well_formed_user_id(app: App) -> None:
    small_network(app)
    for typed in ("My-Secret-Pa55word!", "x" * 10_000):
        with pytest.raises(AuthenticationFailed, match="unknown user id or wrong password"):
            sign_in(app, typed, "whatever")
        record = last_record(app)
        assert (record.actor, record.entity_id) == ("unknown", "unknown")
        assert typed.lower() not in str(record.new) + str(record.reason)
