"""Repositories of people: user accounts, credentials (sessions, tokens) and signatures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa

from vein2vein.domain.errors import ConcurrencyConflict, DuplicateIdentifier, NotFound
from vein2vein.domain.people import ALL_SITES, Actor, Role
from vein2vein.domain.signatures import Meaning, SignatureManifest
from vein2vein.store import tables as t

__all__ = [
    "Credential",
    "CredentialRepository",
    "SignatureRow",
    "UserAccount",
    "UserRepository",
    "signatures_for",
]


@dataclass(frozen=True, slots=True)
class UserAccount:
    """A user account as stored (the password only as its argon2 hash)."""

    user_id: str
    full_name: str
    roles: frozenset[Role]
    sites: frozenset[str]
    password_hash: str
    password_changed_at: datetime
    must_change_password: bool
    failed_attempts: int
    locked_at: datetime | None
    active: bool
    created_at: datetime
    version: int = 1

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, self.full_name, self.roles, self.sites)

    @property
    def locked(self) -> bool:
        return self.locked_at is not None


def _roles(text: str) -> frozenset[Role]:
    return frozenset(Role(r) for r in text.split(",") if r)


def _sites(text: str) -> frozenset[str]:
    return ALL_SITES if text == "*" else frozenset(s for s in text.split(",") if s)


def _join(values: frozenset[str]) -> str:
    return "*" if values == ALL_SITES else ",".join(sorted(values))


def _user(row: sa.Row[tuple[object, ...]]) -> UserAccount:
    m = row._mapping
    return UserAccount(
        user_id=m["user_id"],
        full_name=m["full_name"],
        roles=_roles(m["roles"]),
        sites=_sites(m["sites"]),
        password_hash=m["password_hash"],
        password_changed_at=m["password_changed_at"],
        must_change_password=bool(m["must_change_password"]),
        failed_attempts=m["failed_attempts"],
        locked_at=m["locked_at"],
        active=bool(m["active"]),
        created_at=m["created_at"],
        version=m["version"],
    )


def _user_values(user: UserAccount) -> dict[str, object]:
    return {
        "user_id": user.user_id,
        "full_name": user.full_name,
        "roles": _join(frozenset(r.value for r in user.roles)),
        "sites": _join(user.sites),
        "password_hash": user.password_hash,
        "password_changed_at": user.password_changed_at,
        "must_change_password": user.must_change_password,
        "failed_attempts": user.failed_attempts,
        "locked_at": user.locked_at,
        "active": user.active,
        "created_at": user.created_at,
        "version": user.version,
    }


class UserRepository:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    def count(self) -> int:
        return int(
            self._c.execute(sa.select(sa.func.count()).select_from(t.user_account)).scalar_one()
        )

    def find(self, user_id: str, *, for_update: bool = False) -> UserAccount | None:
        query = sa.select(t.user_account).where(t.user_account.c.user_id == user_id)
        if for_update and self._c.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self._c.execute(query).one_or_none()
        return None if row is None else _user(row)

    def get(self, user_id: str, *, for_update: bool = False) -> UserAccount:
        user = self.find(user_id, for_update=for_update)
        if user is None:
            raise NotFound(f"user {user_id!r} does not exist")
        return user

    def list(self) -> list[UserAccount]:
        rows = self._c.execute(sa.select(t.user_account).order_by(t.user_account.c.user_id))
        return [_user(r) for r in rows]

    def add(self, user: UserAccount) -> None:
        if self.find(user.user_id) is not None:
            raise DuplicateIdentifier(
                f"user id {user.user_id!r} is taken (accounts are never deleted, so a user id "
                "is never reused)"
            )
        self._c.execute(t.user_account.insert().values(**_user_values(user)))

    def save(self, user: UserAccount) -> UserAccount:
        """Write ``user`` back; refused if someone else changed the account since it was read."""
        saved = replace(user, version=user.version + 1)
        done = self._c.execute(
            t.user_account.update()
            .where(t.user_account.c.user_id == user.user_id)
            .where(t.user_account.c.version == user.version)
            .values(**_user_values(saved))
        )
        if done.rowcount != 1:
            raise ConcurrencyConflict(
                f"user {user.user_id} was changed by someone else at the same moment; try again"
            )
        return saved


@dataclass(frozen=True, slots=True)
class Credential:
    """A web session, an API token or the CLI's token (the secret itself is never stored)."""

    token_id: str
    secret_hash: str
    user_id: str
    kind: str
    label: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime
    revoked_at: datetime | None = None
    csrf_token: str | None = None
    has_signed: bool = False


class CredentialRepository:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection

    def add(self, credential: Credential) -> None:
        self._c.execute(
            t.credential.insert().values(
                token_id=credential.token_id,
                secret_hash=credential.secret_hash,
                user_id=credential.user_id,
                kind=credential.kind,
                label=credential.label,
                created_at=credential.created_at,
                expires_at=credential.expires_at,
                last_used_at=credential.last_used_at,
                revoked_at=credential.revoked_at,
                csrf_token=credential.csrf_token,
                has_signed=credential.has_signed,
            )
        )

    def _one(self, where: sa.ColumnElement[bool]) -> Credential | None:
        row = self._c.execute(sa.select(t.credential).where(where)).one_or_none()
        return None if row is None else Credential(**row._mapping)

    def by_secret_hash(self, secret_hash: str) -> Credential | None:
        return self._one(t.credential.c.secret_hash == secret_hash)

    def get(self, token_id: str) -> Credential:
        found = self._one(t.credential.c.token_id == token_id)
        if found is None:
            raise NotFound(f"credential {token_id!r} does not exist")
        return found

    def of_user(self, user_id: str) -> list[Credential]:
        rows = self._c.execute(
            sa.select(t.credential)
            .where(t.credential.c.user_id == user_id)
            .order_by(t.credential.c.created_at.desc())
        )
        return [Credential(**r._mapping) for r in rows]

    def touch(self, token_id: str, at: datetime) -> None:
        self._c.execute(
            t.credential.update().where(t.credential.c.token_id == token_id).values(last_used_at=at)
        )

    def mark_signed(self, token_id: str) -> None:
        self._c.execute(
            t.credential.update().where(t.credential.c.token_id == token_id).values(has_signed=True)
        )

    def revoke(self, token_id: str, at: datetime) -> None:
        self._c.execute(
            t.credential.update()
            .where(t.credential.c.token_id == token_id)
            .where(t.credential.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    def revoke_all_of(self, user_id: str, at: datetime) -> int:
        done = self._c.execute(
            t.credential.update()
            .where(t.credential.c.user_id == user_id)
            .where(t.credential.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return int(done.rowcount)


@dataclass(frozen=True, slots=True)
class SignatureRow:
    """A signature as listed, with the current body of the audit record it points to."""

    audit_seq: int
    entity_type: str
    entity_id: str
    manifest: SignatureManifest
    body: str | None


def signatures_for(
    connection: sa.Connection,
    *,
    entity_type: str | None = None,
    entity_ids: Sequence[str] | None = None,
    seqs: Sequence[int] | None = None,
) -> list[SignatureRow]:
    """Signatures (oldest first), each with the body of the record it claims to sign."""
    s, a = t.signature, t.audit_record
    query = (
        sa.select(s, a.c.body)
        .select_from(s.outerjoin(a, a.c.seq == s.c.audit_seq))
        .order_by(s.c.audit_seq)
    )
    if entity_type is not None:
        query = query.where(s.c.entity_type == entity_type)
    if entity_ids is not None:
        query = query.where(s.c.entity_id.in_(list(entity_ids)))
    if seqs is not None:
        query = query.where(s.c.audit_seq.in_(list(seqs)))
    return [
        SignatureRow(
            audit_seq=r.audit_seq,
            entity_type=r.entity_type,
            entity_id=r.entity_id,
            manifest=SignatureManifest(
                r.signer_id, r.signer_name, Meaning(r.meaning), r.signed_at, r.record_hash
            ),
            body=r.body,
        )
        for r in connection.execute(query)
    ]
