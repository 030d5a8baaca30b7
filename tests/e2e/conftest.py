"""Fixtures of the page tests: one headless Chromium for the session, a live site, a tab."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import network
from tests.conftest import service_missing
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, Site
from tests.e2e.live_server import serving
from vein2vein.domain.clock import FixedClock
from vein2vein.services.app import App


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        service_missing("Chromium", f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def site(sqlite_app: App, clock: FixedClock) -> Iterator[Site]:
    network.small_network(sqlite_app)
    with serving(sqlite_app) as base:
        yield Site(base, sqlite_app, clock)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
