"""Wires the real adapters: settings, engine, clock. Only entry points import this module."""

from __future__ import annotations

from vein2vein.config import Settings
from vein2vein.domain.clock import Clock, SystemClock
from vein2vein.services.app import App

__all__ = ["bootstrap"]


def bootstrap(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    clock: Clock | None = None,
) -> App:
    """Build the application once: settings from the environment unless given."""
    settings = settings or Settings()
    url = database_url or settings.database_url
    return App.connect(url, clock=clock or SystemClock(), settings=settings)
