"""Sign-in, credentials (web sessions, API and CLI tokens) and electronic signing.

A credential's token is ``v2v_<token id>_<secret>``; only the SHA-256 of the secret is
stored, so a copy of the database yields no usable token. Every sign-in, failed attempt,
lockout, sign-out and revocation is an audited security event. A wrong password counts
toward the lockout wherever it is typed: at sign-in, when signing, when changing it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from hashlib import sha256

from vein2vein.domain.errors import (
    AccountLocked,
    AuthenticationFailed,
    InvalidInput,
    PasswordExpired,
    SignatureRefused,
)
from vein2vein.domain.events import Event
from vein2vein.domain.people import Actor, validate_user_id
from vein2vein.domain.signatures import Meaning, SigningIntent
from vein2vein.services.authorise import authorise
from vein2vein.store.people import Credential, UserAccount
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "KINDS",
    "Identity",
    "SignedIn",
    "Signing",
    "check_password",
    "recording_failures",
    "resolve_token",
    "revoke_credential",
    "sign_in",
    "sign_out",
    "signing_intent",
]

# Kinds of credential and how long each lives (from Security).
KINDS = ("session", "api", "cli")
_TOUCH_EVERY = timedelta(seconds=30)
_REFUSED = "sign-in refused: unknown user id or wrong password"


class _WrongPassword(Exception):
    """A password that does not verify, for ``recording_failures`` to record and count.

    ``entity`` is what the attempt was for (the batch being signed, say), so the refusal
    shows in that record's trail; ``why`` says what was wrong when it was not the password.
    """

    def __init__(
        self,
        user_id: str,
        during: str,
        known: bool,
        entity: tuple[str, str] | None = None,
        why: str = "",
    ) -> None:
        super().__init__(user_id)
        self.user_id, self.during, self.known = user_id, during, known
        self.entity, self.why = entity, why


def _claimed(user_id: str) -> str:
    """What a refused sign-in may record of the user id typed: only a well-formed one (never
    a password typed into the wrong field, nor a flood of text)."""
    try:
        return validate_user_id(user_id)
    except InvalidInput:
        return "unknown"


def _locked_message(user_id: str, attempts: int) -> str:
    return (
        f"account {user_id} is locked after {attempts} failed attempts; an administrator "
        "must unlock it"
    )


def check_password(
    uow: UnitOfWork,
    user_id: str,
    password: str,
    *,
    during: str = "sign-in",
    allow_expired: bool = False,
) -> UserAccount:
    """The account of ``user_id`` if ``password`` is theirs; call inside ``with uow`` and
    within :func:`recording_failures`, which records and counts a wrong password."""
    claimed = _claimed(user_id)
    user = uow.users.find(claimed, for_update=True) if claimed != "unknown" else None
    if user is None or not user.active:
        # As slow as checking a real password, so timing does not tell which user ids exist.
        uow.security.hasher.hash(password)
        raise _WrongPassword(claimed, during, known=False)
    if user.locked:
        raise AccountLocked(_locked_message(user_id, user.failed_attempts))
    if not uow.security.hasher.verify(user.password_hash, password):
        raise _WrongPassword(user_id, during, known=True)
    if not allow_expired:
        if user.must_change_password:
            raise PasswordExpired(
                f"{user_id} must change the password an administrator set before going on "
                "(`v2v password change`, or the sign-in page)"
            )
        if uow.security.policy.expired(user.password_changed_at, uow.clock.now()):
            raise PasswordExpired(
                f"the password of {user_id} is older than "
                f"{uow.security.policy.max_age_days} days: change it before going on"
            )
    return user


@contextmanager
def recording_failures(uow: UnitOfWork) -> Iterator[None]:
    """Turn a wrong password into an audited failure (and a lockout at the limit)."""
    try:
        yield
    except _WrongPassword as wrong:
        locked, attempts = _record_failure(uow, wrong)
        if locked:
            raise AccountLocked(_locked_message(wrong.user_id, attempts)) from None
        if wrong.during == "sign-in":
            raise AuthenticationFailed(_REFUSED) from None
        if wrong.during == "signature":
            raise SignatureRefused(f"signature refused: {wrong.why or 'wrong password'}") from None
        raise AuthenticationFailed(f"{wrong.during} refused: wrong password") from None


def _record_failure(uow: UnitOfWork, wrong: _WrongPassword) -> tuple[bool, int]:
    # Its own transaction: the request it belonged to is rolled back, the attempt is kept.
    names = {"sign-in": "SignInFailed", "signature": "SignatureRefused"}
    with uow:
        now = uow.clock.now()
        user = uow.users.find(wrong.user_id, for_update=True) if wrong.known else None
        attempts, locked = 0, False
        if user is not None:
            attempts = user.failed_attempts + 1
            locked = attempts >= uow.security.policy.lockout_after
            uow.users.save(
                replace(user, failed_attempts=attempts, locked_at=now if locked else None)
            )
            if locked:  # a locked account's sessions and tokens end with it
                uow.credentials.revoke_all_of(user.user_id, now)
        who = wrong.user_id or "unknown"
        entity = wrong.entity or ("user", who)
        uow.record(
            Event(
                names.get(wrong.during, "PasswordRefused"),
                who,
                now,
                entity[0],
                entity[1],
                new={"during": wrong.during, "user": who, "failed_attempts": attempts},
                reason=wrong.why
                or ("wrong password" if user is not None else "unknown or inactive account"),
            )
        )
        if locked:
            uow.record(
                Event(
                    "AccountLocked",
                    "system",
                    now,
                    "user",
                    wrong.user_id,
                    new={"failed_attempts": attempts},
                    reason=f"{attempts} failed attempts in a row; its credentials were revoked",
                )
            )
        uow.commit()
    return locked, attempts


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new credential: ``token`` is shown once and never stored."""

    token: str
    token_id: str
    kind: str
    expires_at: datetime
    csrf_token: str | None
    actor: Actor


def _secret_hash(secret: str) -> str:
    return sha256(secret.encode()).hexdigest()


def _lifetime(uow: UnitOfWork, kind: str) -> timedelta:
    s = uow.security
    return {
        "session": timedelta(hours=s.session_hours),
        "api": timedelta(days=s.token_days),
        "cli": timedelta(hours=s.cli_hours),
    }[kind]


def sign_in(
    uow: UnitOfWork, *, user_id: str, password: str, kind: str, label: str = ""
) -> SignedIn:
    """Check the password and issue a credential of ``kind`` (session, api or cli)."""
    if kind not in KINDS:
        raise InvalidInput(f"credential kind {kind!r}: expected one of {', '.join(KINDS)}")
    user_id = (user_id or "").strip().lower()
    with recording_failures(uow), uow:
        user = check_password(uow, user_id, password)
        now = uow.clock.now()
        if uow.security.hasher.needs_rehash(user.password_hash) or user.failed_attempts:
            # A hash made at an older cost is re-made at today's; a success resets the count.
            user = uow.users.save(
                replace(
                    user,
                    password_hash=uow.security.hasher.hash(password),
                    failed_attempts=0,
                )
            )
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        credential = Credential(
            token_id=token_id,
            secret_hash=_secret_hash(secret),
            user_id=user.user_id,
            kind=kind,
            label=label[:200] or kind,
            created_at=now,
            expires_at=now + _lifetime(uow, kind),
            last_used_at=now,
            csrf_token=secrets.token_urlsafe(32) if kind == "session" else None,
        )
        uow.credentials.add(credential)
        uow.record(
            Event(
                "SignedIn",
                user.user_id,
                now,
                "user",
                user.user_id,
                new={"kind": kind, "credential": token_id, "label": credential.label},
            )
        )
        uow.commit()
    return SignedIn(
        f"v2v_{token_id}_{secret}",
        token_id,
        kind,
        credential.expires_at,
        credential.csrf_token,
        user.actor,
    )


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request comes from, and with which credential."""

    actor: Actor
    credential: Credential

    @property
    def token_id(self) -> str:
        return self.credential.token_id


def resolve_token(uow: UnitOfWork, token: str | None, *, kinds: tuple[str, ...]) -> Identity:
    """The person behind ``token``, or :class:`AuthenticationFailed` saying why not.

    A web session ends after ``session_idle_minutes`` without a request, and every
    credential at its expiry, on revocation, or when its account is deactivated or locked.
    """
    parts = (token or "").strip().split("_", 2)  # the secret may itself hold "_"
    if len(parts) != 3 or parts[0] != "v2v" or not parts[1] or not parts[2]:
        raise AuthenticationFailed("sign in first: no valid credential was presented")
    token_id, secret = parts[1], parts[2]
    with uow:
        credential = uow.credentials.by_secret_hash(_secret_hash(secret))
        if (
            credential is None
            or not hmac.compare_digest(credential.token_id, token_id)
            or credential.kind not in kinds
        ):
            raise AuthenticationFailed("sign in first: this credential is not known")
        now = uow.clock.now()
        if credential.revoked_at is not None:
            raise AuthenticationFailed(
                "this credential was revoked or signed out; sign in again", ended="revoked"
            )
        if now >= credential.expires_at:
            raise AuthenticationFailed(
                "this credential has expired; sign in again", ended="expired"
            )
        idle = timedelta(minutes=uow.security.session_idle_minutes)
        if credential.kind == "session" and now - credential.last_used_at > idle:
            uow.credentials.revoke(credential.token_id, now)
            uow.commit()
            raise AuthenticationFailed(
                f"the session ended after {uow.security.session_idle_minutes} minutes without "
                "activity; sign in again",
                ended="idle",
            )
        user = uow.users.find(credential.user_id)
        if user is None or not user.active or user.locked:
            raise AuthenticationFailed(
                f"account {credential.user_id} is deactivated or locked; sign in refused"
            )
        if user.must_change_password or uow.security.policy.expired(user.password_changed_at, now):
            raise PasswordExpired(
                f"the password of {user.user_id} must be changed before going on "
                "(`v2v password change`, or the sign-in page)"
            )
        if now - credential.last_used_at >= _TOUCH_EVERY:
            # Bookkeeping for the idle timeout, not a GMP record: not audited.
            uow.credentials.touch(credential.token_id, now)
            uow.commit()
            credential = replace(credential, last_used_at=now)
    return Identity(user.actor, credential)


def sign_out(uow: UnitOfWork, identity: Identity) -> None:
    """End the credential the request came with."""
    with uow:
        uow.credentials.revoke(identity.token_id, uow.clock.now())
        uow.record(
            Event(
                "SignedOut",
                identity.actor.user_id,
                uow.clock.now(),
                "user",
                identity.actor.user_id,
                new={"credential": identity.token_id, "kind": identity.credential.kind},
            )
        )
        uow.commit()


def revoke_credential(uow: UnitOfWork, by: Actor, token_id: str, *, reason: str) -> None:
    """Revoke a token or session: one's own, or anyone's by an administrator."""
    with uow:
        owner = uow.credentials.get(token_id).user_id
    if owner != by.user_id:
        with authorise(uow, by, "user.administer", entity=("user", owner)):
            _revoke(uow, by, token_id, owner, reason)
        return
    with uow:
        _revoke(uow, by, token_id, owner, reason)


def _revoke(uow: UnitOfWork, by: Actor, token_id: str, owner: str, reason: str) -> None:
    uow.credentials.revoke(token_id, uow.clock.now())
    uow.record(
        Event(
            "CredentialRevoked",
            by.user_id,
            uow.clock.now(),
            "user",
            owner,
            new={"credential": token_id},
            reason=reason or None,
        )
    )
    uow.commit()


@dataclass(frozen=True, slots=True)
class Signing:
    """What a person types to sign: their password again, and their user id too at the
    first signature of a session (21 CFR 11.200(a)(1))."""

    password: str
    user_id: str | None = None

    def __repr__(self) -> str:  # never print a password
        return f"Signing(user_id={self.user_id!r}, password=***)"


def signing_intent(
    uow: UnitOfWork,
    identity: Identity,
    signing: Signing | None,
    meaning: Meaning,
    what: str,
    entity: tuple[str, str] | None = None,
) -> SigningIntent:
    """Check a signature's password inside the transaction of the change it signs; call
    within :func:`recording_failures`, which records a refusal against ``entity`` (the
    record being signed) and counts it toward the lockout. A signature that verifies resets
    that count and marks the credential as having signed."""
    if signing is None or not signing.password:
        raise InvalidInput(f"{what} needs your electronic signature: re-enter your password")
    # As stored now: the person may have signed since this identity was resolved.
    first = not uow.credentials.get(identity.token_id).has_signed
    if first and not signing.user_id:
        raise InvalidInput(
            f"{what}: first signature of this session: enter your user id and your password"
        )
    if signing.user_id and signing.user_id.strip().lower() != identity.actor.user_id:
        raise _WrongPassword(
            identity.actor.user_id,
            "signature",
            known=True,
            entity=entity,
            why=(
                f"the user id typed is not the signed-in person's ({identity.actor.user_id}); "
                f"a person signs only for themselves ({what})"
            ),
        )
    try:
        user = check_password(uow, identity.actor.user_id, signing.password, during="signature")
    except _WrongPassword as wrong:
        raise _WrongPassword(
            wrong.user_id, "signature", wrong.known, entity, f"wrong password ({what})"
        ) from None
    if user.failed_attempts:
        uow.users.save(replace(user, failed_attempts=0))
    if first:
        uow.credentials.mark_signed(identity.token_id)
    return SigningIntent(identity.actor.user_id, identity.actor.full_name, meaning)
