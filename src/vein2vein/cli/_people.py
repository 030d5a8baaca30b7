"""`v2v login|logout|whoami`, `v2v user …` (administrators) and `v2v password change`."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Annotated

import typer

from vein2vein.cli import _auth
from vein2vein.cli._context import JsonOpt, _errors, _ready_app, _who
from vein2vein.cli._render import console, print_json, print_table, table
from vein2vein.domain import errors
from vein2vein.services import auth, people, queries

__all__ = ["login", "logout", "password_app", "user_app", "whoami"]

user_app = typer.Typer(
    help="People: accounts, roles, site scope (administrators).", no_args_is_help=True
)
password_app = typer.Typer(help="Your password.", no_args_is_help=True)

UserArg = Annotated[str, typer.Argument(help="User id, e.g. qa.cp1.")]
ReasonOpt = Annotated[str, typer.Option(help="Why (recorded in the audit trail).")]


def login(
    user: Annotated[str | None, typer.Option("--user", help="Your user id (else asked).")] = None,
) -> None:
    """Sign in: keeps a token, valid for a working day, in your config directory."""
    with _errors():
        application = _ready_app()
        user_id = user or _auth.ask("User id")
        previous = _auth.stored(application)
        signed = auth.sign_in(
            application.uow(),
            user_id=user_id,
            password=_auth.ask_secret("Password"),
            kind="cli",
            label="v2v login",
        )
        where = _auth.remember(application, signed)
        if previous is not None:  # the token this one replaces ends now (if not already)
            with suppress(errors.AuthenticationFailed):
                old = auth.resolve_token(application.uow(), previous["token"], kinds=("cli",))
                auth.sign_out(application.uow(), old)
    console.print(
        f"signed in as {signed.actor.full_name} ({signed.actor.user_id}) until "
        f"{signed.expires_at:%Y-%m-%d %H:%M} UTC; token kept in {where}"
    )


def logout() -> None:
    """Sign out: the token is revoked and forgotten."""
    with _errors():
        application = _ready_app()
        if _auth.stored(application) is not None:
            try:
                auth.sign_out(application.uow(), _who())
            finally:
                _auth.forget(application)
    console.print("signed out")


def whoami(json_: JsonOpt = False) -> None:
    """Who you are signed in as: user id, name, roles and site scope."""
    with _errors():
        who = _who().actor
    if json_:
        print_json(
            {
                "user_id": who.user_id,
                "full_name": who.full_name,
                "roles": sorted(r.value for r in who.roles),
                "sites": who.scope,
            }
        )
        return
    roles = ", ".join(sorted(r.value for r in who.roles))
    console.print(f"{who.full_name} ({who.user_id}): {roles}; sites: {who.scope}")


@user_app.command("bootstrap")
def user_bootstrap(
    user_id: UserArg,
    name: Annotated[str, typer.Option(help="Full name.")],
) -> None:
    """Create the first administrator of an empty system (asks for the password twice)."""
    with _errors():
        password = _auth.ask_secret("New password")
        if _auth.ask_secret("Repeat the new password") != password:
            raise errors.InvalidInput("the two passwords differ; nothing was created")
        view = people.bootstrap_administrator(
            _ready_app().uow(), user_id=user_id, full_name=name, password=password
        )
    console.print(f"administrator {view.user_id} created; sign in with `v2v login`")


@user_app.command("add")
def user_add(
    user_id: UserArg,
    name: Annotated[str, typer.Option(help="Full name, as signatures will show it.")],
    role: Annotated[list[str], typer.Option(help="A role; repeat for several.")],
    sites: Annotated[str, typer.Option(help="Site codes, comma-separated, or '*' for all.")],
) -> None:
    """Add a person; the temporary password (asked for) must be changed at first sign-in."""
    with _errors():
        who = _who()
        view = people.create_user(
            _ready_app().uow(),
            who.actor,
            user_id=user_id,
            full_name=name,
            roles=role,
            sites=sites,
            password=_auth.ask_secret(f"Temporary password for {user_id}"),
        )
    console.print(f"user {view.user_id} added: {', '.join(view.roles)}; sites {view.sites}")


@user_app.command("list")
def user_list(json_: JsonOpt = False) -> None:
    """Every account, active or not (accounts are never deleted)."""
    with _errors():
        users = queries.list_users(_ready_app(), _who().actor)
    if json_:
        print_json(users)
        return
    grid = table("user id", "name", "roles", "sites", "status", ids=("user id",))
    for u in users:
        status = "active" if u.active else "deactivated"
        if u.locked:
            status += ", LOCKED"
        if u.must_change_password:
            status += ", must change password"
        grid.add_row(u.user_id, u.full_name, ", ".join(u.roles), u.sites, status)
    print_table(grid)


@user_app.command("change")
def user_change(
    user_id: UserArg,
    reason: ReasonOpt,
    name: Annotated[str | None, typer.Option(help="New full name.")] = None,
    role: Annotated[list[str] | None, typer.Option(help="New roles (repeat).")] = None,
    sites: Annotated[str | None, typer.Option(help="New site scope.")] = None,
) -> None:
    """Change a person's name, roles or site scope."""
    with _errors():
        view = people.update_user(
            _ready_app().uow(),
            _who().actor,
            user_id,
            reason=reason,
            full_name=name,
            roles=role or None,
            sites=sites,
        )
    console.print(f"user {view.user_id}: {', '.join(view.roles)}; sites {view.sites}")


def _admin_command(name: str, service: Callable[..., people.UserView], done: str) -> None:
    def command(user_id: UserArg, reason: ReasonOpt) -> None:
        with _errors():
            service(_ready_app().uow(), _who().actor, user_id, reason=reason)
        console.print(f"user {user_id} {done}")

    command.__doc__ = (service.__doc__ or "").split("\n")[0]
    user_app.command(name)(command)


_admin_command("deactivate", people.deactivate_user, "deactivated; its sessions ended")
_admin_command("reactivate", people.reactivate_user, "reactivated")
_admin_command("unlock", people.unlock_user, "unlocked")


@user_app.command("reset-password")
def user_reset_password(user_id: UserArg, reason: ReasonOpt) -> None:
    """Set a temporary password (asked for) that the person must change at next sign-in."""
    with _errors():
        people.reset_password(
            _ready_app().uow(),
            _who().actor,
            user_id,
            new_password=_auth.ask_secret(f"Temporary password for {user_id}"),
            reason=reason,
        )
    console.print(f"user {user_id}: temporary password set; it must be changed at sign-in")


@password_app.command("change")
def password_change(
    user: Annotated[str | None, typer.Option("--user", help="Your user id (else asked).")] = None,
) -> None:
    """Change your password (the old one first); needed when it expired or was reset."""
    with _errors():
        user_id = user or _auth.ask("User id")
        old = _auth.ask_secret("Current password")
        new = _auth.ask_secret("New password")
        if _auth.ask_secret("Repeat the new password") != new:
            raise errors.InvalidInput("the two new passwords differ; nothing was changed")
        people.change_password(
            _ready_app().uow(), user_id=user_id, old_password=old, new_password=new
        )
    console.print(f"password of {user_id} changed")
