"""What every command shares: the application, built once, the signed-in person, errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Annotated

import typer

from vein2vein.cli import _auth
from vein2vein.cli._render import fail
from vein2vein.domain import errors
from vein2vein.services.app import App
from vein2vein.services.auth import Identity

__all__ = ["JsonOpt", "_app", "_errors", "_ready_app", "_who"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@cache
def _app() -> App:
    # Built on first use, never at import: `v2v din check` needs no database at all.
    from vein2vein.bootstrap import bootstrap

    return bootstrap()


def _ready_app() -> App:
    application = _app()
    application.check_ready()
    return application


def _who() -> Identity:
    """The signed-in person running this command (`v2v login`, `--user` or V2V_TOKEN)."""
    return _auth.identity(_ready_app())


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except errors.V2VError as error:
        fail(error)
