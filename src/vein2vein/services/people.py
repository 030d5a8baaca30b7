"""People: administration of user accounts, and changing one's own password.

Every change is one unit of work with its audit record; no password (nor its hash) ever
reaches the audit trail. Accounts are deactivated, never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from vein2vein.domain.errors import InvalidInput, PermissionDenied
from vein2vein.domain.events import Event
from vein2vein.domain.patient import validate_code
from vein2vein.domain.people import ALL_SITES, Actor, Role, validate_user_id
from vein2vein.services.auth import check_password, recording_failures
from vein2vein.services.authorise import authorise
from vein2vein.store.people import UserAccount
from vein2vein.store.uow import UnitOfWork

__all__ = [
    "UserView",
    "bootstrap_administrator",
    "change_password",
    "create_user",
    "deactivate_user",
    "parse_roles",
    "parse_sites",
    "reactivate_user",
    "reset_password",
    "unlock_user",
    "update_user",
]


@dataclass(frozen=True, slots=True)
class UserView:
    """What anyone may see of an account: never the password hash."""

    user_id: str
    full_name: str
    roles: list[str]
    sites: str
    active: bool
    locked: bool
    must_change_password: bool
    failed_attempts: int

    @classmethod
    def of(cls, user: UserAccount) -> UserView:
        return cls(
            user_id=user.user_id,
            full_name=user.full_name,
            roles=sorted(r.value for r in user.roles),
            sites=user.actor.scope,
            active=user.active,
            locked=user.locked,
            must_change_password=user.must_change_password,
            failed_attempts=user.failed_attempts,
        )


def parse_roles(roles: Iterable[str | Role]) -> frozenset[Role]:
    """Roles by name (``qa-reviewer``, ``qp``, …); at least one; names every unknown one."""
    found, unknown = set(), []
    for name in roles:
        try:
            found.add(Role(str(name).strip().lower()))
        except ValueError:
            unknown.append(str(name))
    if unknown:
        choices = ", ".join(r.value for r in Role)
        raise InvalidInput(f"roles {', '.join(map(repr, unknown))}: expected among {choices}")
    if not found:
        raise InvalidInput("roles: a person needs at least one role")
    return frozenset(found)


def parse_sites(sites: Iterable[str] | str) -> frozenset[str]:
    """A site scope: ``*`` (every site) or site codes."""
    items = [sites] if isinstance(sites, str) else list(sites)
    codes = {c.strip() for item in items for c in item.split(",") if c.strip()}
    if codes == {"*"}:
        return ALL_SITES
    if not codes or "*" in codes:
        raise InvalidInput("sites: expected '*' for every site, or one or more site codes")
    return frozenset(validate_code("site", c) for c in codes)


def _view(user: UserAccount) -> dict[str, object]:
    return {
        "full_name": user.full_name,
        "roles": sorted(r.value for r in user.roles),
        "sites": user.actor.scope,
        "active": user.active,
    }


def _new_account(
    uow: UnitOfWork,
    *,
    user_id: str,
    full_name: str,
    roles: frozenset[Role],
    sites: frozenset[str],
    password: str,
    must_change: bool,
) -> UserAccount:
    validate_user_id(user_id)
    if not full_name or not full_name.strip():
        raise InvalidInput(f"user {user_id}: full name is empty")
    uow.security.policy.check(password, user_id=user_id)
    for code in sites - ALL_SITES:
        uow.sites.get(code)  # an unknown site is named, not stored
    now = uow.clock.now()
    return UserAccount(
        user_id=user_id,
        full_name=" ".join(full_name.split()),
        roles=roles,
        sites=sites,
        password_hash=uow.security.hasher.hash(password),
        password_changed_at=now,
        must_change_password=must_change,
        failed_attempts=0,
        locked_at=None,
        active=True,
        created_at=now,
    )


def bootstrap_administrator(
    uow: UnitOfWork, *, user_id: str, full_name: str, password: str
) -> UserView:
    """The first administrator of an empty system — or, as a recovery, a new administrator
    when no active, unlocked administrator is left (run where the database is, and
    audited). Refused while any administrator can still act."""
    with uow:
        if _usable_administrators(uow):
            raise PermissionDenied(
                "an administrator can act already: they add people (`v2v user add`); a new "
                "administrator is bootstrapped only when no active, unlocked one is left"
            )
        recovery = uow.users.count() > 0
        user = _new_account(
            uow,
            user_id=user_id,
            full_name=full_name,
            roles=frozenset({Role.ADMINISTRATOR}),
            sites=ALL_SITES,
            password=password,
            must_change=False,
        )
        uow.users.add(user)
        uow.record(
            Event(
                "AdministratorBootstrapped",
                user.user_id,
                uow.clock.now(),
                "user",
                user.user_id,
                new=_view(user),
                reason="recovery: no active, unlocked administrator was left" if recovery else None,
            )
        )
        uow.commit()
    return UserView.of(user)


def create_user(
    uow: UnitOfWork,
    by: Actor,
    *,
    user_id: str,
    full_name: str,
    roles: Iterable[str | Role],
    sites: Iterable[str] | str,
    password: str,
    must_change_password: bool = True,
) -> UserView:
    """An administrator adds a person; they must change the password at first sign-in."""
    role_set, site_set = parse_roles(roles), parse_sites(sites)
    with authorise(uow, by, "user.administer", entity=("user", user_id)):
        user = _new_account(
            uow,
            user_id=user_id,
            full_name=full_name,
            roles=role_set,
            sites=site_set,
            password=password,
            must_change=must_change_password,
        )
        uow.users.add(user)
        uow.record(
            Event("UserCreated", by.user_id, uow.clock.now(), "user", user_id, new=_view(user))
        )
        uow.commit()
    return UserView.of(user)


def _usable_administrators(uow: UnitOfWork) -> list[str]:
    return [
        u.user_id
        for u in uow.users.list()
        if Role.ADMINISTRATOR in u.roles and u.active and not u.locked
    ]


def _administer(
    uow: UnitOfWork,
    by: Actor,
    user_id: str,
    event: str,
    reason: str,
    change: dict[str, object],
) -> UserView:
    if not reason or not reason.strip():
        raise InvalidInput(f"user {user_id}: {event} needs a reason")
    with authorise(uow, by, "user.administer", entity=("user", user_id)):
        if by.user_id == user_id:
            # Segregation of duties: nobody grants themselves roles, scope or a password.
            raise PermissionDenied(
                f"{by.user_id} may not change their own account: another administrator must"
            )
        user = uow.users.get(user_id, for_update=True)
        before = _view(user) | {"locked": user.locked}
        changed = replace(user, **change)  # type: ignore[arg-type]
        saved = uow.users.save(changed)
        if not saved.active or event == "PasswordReset":
            uow.credentials.revoke_all_of(user_id, uow.clock.now())
        if not _usable_administrators(uow):
            raise PermissionDenied(
                f"{event} of {user_id} would leave no active administrator; add another "
                "administrator first"
            )
        after = _view(saved) | {"locked": saved.locked}
        uow.record(
            Event(
                event,
                by.user_id,
                uow.clock.now(),
                "user",
                user_id,
                new={k: v for k, v in after.items() if before.get(k) != v},
                old={k: v for k, v in before.items() if after.get(k) != v},
                reason=reason.strip(),
            )
        )
        uow.commit()
    return UserView.of(saved)


def update_user(
    uow: UnitOfWork,
    by: Actor,
    user_id: str,
    *,
    reason: str,
    full_name: str | None = None,
    roles: Iterable[str | Role] | None = None,
    sites: Iterable[str] | str | None = None,
) -> UserView:
    """Change a person's name, roles or site scope."""
    change: dict[str, object] = {}
    if full_name is not None:
        if not full_name.strip():
            raise InvalidInput(f"user {user_id}: full name is empty")
        change["full_name"] = " ".join(full_name.split())
    if roles is not None:
        change["roles"] = parse_roles(roles)
    if sites is not None:
        change["sites"] = parse_sites(sites)
    if not change:
        raise InvalidInput(f"user {user_id}: nothing to change (name, roles or sites)")
    return _administer(uow, by, user_id, "UserChanged", reason, change)


def deactivate_user(uow: UnitOfWork, by: Actor, user_id: str, *, reason: str) -> UserView:
    """Deactivate an account (never deleted): it can no longer sign in; its sessions end."""
    return _administer(uow, by, user_id, "UserDeactivated", reason, {"active": False})


def reactivate_user(uow: UnitOfWork, by: Actor, user_id: str, *, reason: str) -> UserView:
    return _administer(uow, by, user_id, "UserReactivated", reason, {"active": True})


def unlock_user(uow: UnitOfWork, by: Actor, user_id: str, *, reason: str) -> UserView:
    """Unlock an account locked after failed sign-ins."""
    return _administer(
        uow, by, user_id, "UserUnlocked", reason, {"locked_at": None, "failed_attempts": 0}
    )


def reset_password(
    uow: UnitOfWork, by: Actor, user_id: str, *, new_password: str, reason: str
) -> UserView:
    """Give a person a temporary password, which they must change at their next sign-in."""
    uow.security.policy.check(new_password, user_id=user_id)
    change = {
        "password_hash": uow.security.hasher.hash(new_password),
        "password_changed_at": uow.clock.now(),
        "must_change_password": True,
        "failed_attempts": 0,
        "locked_at": None,
    }
    return _administer(uow, by, user_id, "PasswordReset", reason, change)


def change_password(
    uow: UnitOfWork, *, user_id: str, old_password: str, new_password: str
) -> UserView:
    """A person changes their own password, proving the old one first."""
    with recording_failures(uow), uow:
        user = check_password(uow, user_id, old_password, allow_expired=True)
        if new_password == old_password:
            raise InvalidInput(f"password for {user_id}: the new password must differ")
        uow.security.policy.check(new_password, user_id=user_id)
        saved = uow.users.save(
            replace(
                user,
                password_hash=uow.security.hasher.hash(new_password),
                password_changed_at=uow.clock.now(),
                must_change_password=False,
                failed_attempts=0,
            )
        )
        uow.record(Event("PasswordChanged", user_id, uow.clock.now(), "user", user_id))
        uow.commit()
    return UserView.of(saved)
