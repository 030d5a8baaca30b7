"""What the page tests share: Debian's Chromium, the viewports, the running site.

The fixtures (``browser``, ``site``, ``page``) are in ``conftest.py`` beside this file, so
every page test module uses the one Chromium of the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vein2vein.domain.clock import FixedClock
from vein2vein.services import queries
from vein2vein.services.app import App

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
TABLET = {"width": 768, "height": 1024}


@dataclass
class Site:
    """The running web site, its application and clock, for arranging and checking."""

    base: str
    app: App
    clock: FixedClock

    def url(self, path: str) -> str:
        return self.base + path

    def state(self, lot: str) -> str:
        return queries.batch_view(self.app, lot).batch.state
