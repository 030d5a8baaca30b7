"""Shared fixtures: real SQLite and real PostgreSQL, a clock that moves only when told.

PostgreSQL comes from ``V2V_TEST_POSTGRES_URL`` (default: the local server, database
``test``). Each test gets its own schema, dropped afterwards. Where PostgreSQL is missing, a
developer's run skips those tests with the reason; under ``CI=true`` it is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from vein2vein.config import Settings
from vein2vein.domain.clock import FixedClock
from vein2vein.services.app import App

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def settings_for(url: str) -> Settings:
    """Settings for a test database: argon2 at its lowest cost, so tests sign in quickly."""
    return Settings(database_url=url, argon2_time_cost=1, argon2_memory_kib=1024)


def postgres_url() -> str:
    return os.environ.get("V2V_TEST_POSTGRES_URL") or DEFAULT_PG


def service_missing(what: str, why: str) -> None:
    """Skip on a developer's machine; fail in CI, where every service must be there."""
    message = f"{what} is not available: {why}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def _postgres_available() -> str | None:
    engine = sa.create_engine(postgres_url())
    try:
        with engine.connect():
            return None
    except sa.exc.OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    finally:
        engine.dispose()


@contextmanager
def postgres_schema(unavailable: str | None) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema, dropped afterwards
    (``unavailable``: why PostgreSQL cannot be reached, from ``_postgres_available``)."""
    if unavailable is not None:
        service_missing("PostgreSQL", unavailable)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url())
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(postgres_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def postgres_schema_url(_postgres_available: str | None) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema of this test's own."""
    with postgres_schema(_postgres_available) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'v2v.sqlite3'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def app(database_url: str, clock: FixedClock) -> Iterator[App]:
    """A migrated, empty database on each engine, with the test's clock."""
    application = App.connect(database_url, clock=clock, settings=settings_for(database_url))
    application.upgrade()
    yield application
    application.dispose()


@pytest.fixture
def postgres_app(postgres_schema_url: str, clock: FixedClock) -> Iterator[App]:
    """A migrated, empty PostgreSQL database only (what SQLite cannot show: two writers at
    once, a connection cut), with the test's clock."""
    application = App.connect(postgres_schema_url, clock=clock,
                              settings=settings_for(postgres_schema_url))  # fmt: skip
    application.upgrade()
    yield application
    application.dispose()


@pytest.fixture
def sqlite_app(tmp_path: Path, clock: FixedClock) -> Iterator[App]:
    url = f"sqlite:///{tmp_path / 'v2v.sqlite3'}"
    application = App.connect(url, clock=clock, settings=settings_for(url))
    application.upgrade()
    yield application
    application.dispose()
