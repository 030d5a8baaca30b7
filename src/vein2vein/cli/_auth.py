"""Who is running a command: `v2v login`, the stored token, `--user`, and signing prompts.

`v2v login` asks for the user id and password and keeps the token it gets, with its expiry,
in the user's config directory (``credentials.json``, readable by the user only), one per
database. `V2V_TOKEN` (an API token) takes its place for scripts. A password is read with
no echo from the terminal, or as one line from standard input when that is not a terminal.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from platformdirs import user_config_dir

from vein2vein.domain import errors
from vein2vein.services import auth
from vein2vein.services.app import App

__all__ = ["ask", "ask_secret", "forget", "identity", "remember", "stored"]


def _store() -> Path:
    return Path(user_config_dir("vein2vein")) / "credentials.json"


def _read() -> dict[str, Any]:
    try:
        data = json.loads(_store().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(data: dict[str, Any]) -> None:
    path = _store()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created readable by the user only, before the token is written into it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)


def remember(app: App, signed: auth.SignedIn) -> Path:
    data = _read()
    data[app.safe_url] = {
        "token": signed.token,
        "user_id": signed.actor.user_id,
        "expires_at": signed.expires_at.isoformat(),
    }
    _write(data)
    return _store()


def stored(app: App) -> dict[str, Any] | None:
    entry = _read().get(app.safe_url)
    if not isinstance(entry, dict) or "token" not in entry:
        return None
    try:
        if datetime.fromisoformat(entry["expires_at"]) <= datetime.now(UTC):
            return None
    except (KeyError, TypeError, ValueError):
        return None
    return entry


def forget(app: App) -> None:
    data = _read()
    if data.pop(app.safe_url, None) is not None:
        _write(data)


# Set by `v2v --user ID` for the one command it runs.
_one_off: dict[str, auth.Identity] = {}


def identity(app: App) -> auth.Identity:
    """The person running this command, or :class:`AuthenticationFailed` saying how to sign in."""
    if "identity" in _one_off:
        return _one_off["identity"]
    token = app.settings.token
    if token:
        return auth.resolve_token(app.uow(), token, kinds=("api", "cli"))
    entry = stored(app)
    if entry is None:
        raise errors.AuthenticationFailed(
            f"sign in first: `v2v login` (database {app.safe_url}), or `v2v --user ID …`"
        )
    return auth.resolve_token(app.uow(), entry["token"], kinds=("cli",))


def sign_in_once(app: App, user_id: str) -> None:
    """`v2v --user ID`: sign in for this one command (password prompted), then sign out."""
    password = ask_secret(f"Password for {user_id}")
    signed = auth.sign_in(app.uow(), user_id=user_id, password=password, kind="cli", label="--user")
    _one_off["identity"] = auth.resolve_token(app.uow(), signed.token, kinds=("cli",))


def end_one_off(app: Callable[[], App]) -> None:
    """Sign out the `--user` identity of this command, if there was one."""
    found = _one_off.pop("identity", None)
    if found is not None:
        auth.sign_out(app().uow(), found)


def ask(label: str) -> str:
    if sys.stdin.isatty():
        return str(typer.prompt(label))
    return sys.stdin.readline().rstrip("\n")


def ask_secret(label: str) -> str:
    """A password: prompted without echo on a terminal, else one line of standard input."""
    if sys.stdin.isatty():
        return str(typer.prompt(label, hide_input=True))
    line = sys.stdin.readline()
    if not line:
        raise errors.InvalidInput(f"{label}: nothing on standard input")
    return line.rstrip("\n")


def signing(who: auth.Identity, meaning: str) -> auth.Signing:
    """Prompt for an electronic signature: user id and password at the first of a session."""
    user_id = None
    if not who.credential.has_signed:
        typer.echo(f"First signature of this session ({meaning}): your user id and password.")
        user_id = ask("User id")
    password = ask_secret(f"Password ({meaning}, signed as {who.actor.full_name})")
    return auth.Signing(password, user_id)
