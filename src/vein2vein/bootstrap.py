"""Wires the real adapters: settings, engine, clock. Only entry points import this module."""

from __future__ import annotations

from pydantic import ValidationError

from vein2vein.config import Settings
from vein2vein.domain.clock import Clock, SystemClock
from vein2vein.domain.errors import InvalidSetting
from vein2vein.services.app import App

__all__ = ["bootstrap", "read_settings"]


def read_settings() -> Settings:
    """The settings from ``V2V_*`` variables; every bad one named with what was wrong."""
    try:
        return Settings()
    except ValidationError as invalid:
        problems = "; ".join(
            f"V2V_{'_'.join(str(part) for part in e['loc']).upper()}={e.get('input')!r}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in invalid.errors()
        )
        raise InvalidSetting(problems) from None


def bootstrap(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    clock: Clock | None = None,
) -> App:
    """Build the application once: settings from the environment unless given.

    A setting that cannot be used raises :class:`InvalidSetting` naming the variable.
    """
    settings = settings or read_settings()
    url = database_url or settings.database_url
    return App.connect(url, clock=clock or SystemClock(), settings=settings)
