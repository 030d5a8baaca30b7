"""What every benchmark shares: a result row, a timer and throwaway databases."""

from __future__ import annotations

import os
import platform
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from vein2vein.config import Settings
from vein2vein.domain.clock import Clock, FixedClock
from vein2vein.services import auth, people
from vein2vein.services.app import App
from vein2vein.services.auth import Identity

POSTGRES_URL = os.environ.get(
    "V2V_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Result:
    """One benchmark: ``ratio`` is baseline time / measured time (1.0 = as fast as baseline)."""

    name: str
    measured: str
    baseline: str
    ratio: float
    target: str
    met: bool
    note: str


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The fastest of ``runs`` timings of ``work()``, in seconds."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


PASSWORD = "Bench-password-2026"


def _settings(url: str) -> Settings:
    # The demo build hashes its own passwords cheaply; elsewhere signing in is not timed.
    return Settings(database_url=url, argon2_time_cost=1, argon2_memory_kib=1024)


@dataclass(frozen=True)
class BenchPeople:
    admin: Identity
    coordinator: Identity
    qa: Identity


def bench_people(app: App) -> BenchPeople:
    """An administrator, a coordinator and a QA reviewer of every site, signed in."""
    people.bootstrap_administrator(app.uow(), user_id="admin", full_name="Admin", password=PASSWORD)

    def signed(user_id: str) -> Identity:
        token = auth.sign_in(app.uow(), user_id=user_id, password=PASSWORD, kind="api").token
        return auth.resolve_token(app.uow(), token, kinds=("api",))

    admin = signed("admin")
    for user_id, role in (("coordinator", "coordinator"), ("qa.bench", "qa-reviewer")):
        people.create_user(
            app.uow(), admin.actor, user_id=user_id, full_name=user_id.title(), roles=[role],
            sites="*", password=PASSWORD, must_change_password=False,
        )  # fmt: skip
    return BenchPeople(admin, signed("coordinator"), signed("qa.bench"))


@contextmanager
def sqlite_app(directory: Path, name: str, clock: Clock | None = None) -> Iterator[App]:
    """A migrated SQLite database in ``directory``."""
    url = f"sqlite:///{directory / name}"
    app = App.connect(url, clock=clock or FixedClock(NOW), settings=_settings(url))
    app.upgrade()
    try:
        yield app
    finally:
        app.dispose()


@contextmanager
def postgres_app(clock: Clock | None = None) -> Iterator[App]:
    """A migrated PostgreSQL schema of its own, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = (
        sa.make_url(POSTGRES_URL)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    app = App.connect(url, clock=clock or FixedClock(NOW), settings=_settings(url))
    try:
        app.upgrade()
        yield app
    finally:
        app.dispose()
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def machine() -> str:
    """CPU, cores, Python, SQLite and PostgreSQL versions of this run."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect() as c:
            pg = str(c.execute(sa.text("SHOW server_version")).scalar()).split()[0]
        engine.dispose()
    except sa.exc.OperationalError:
        pg = "unavailable"
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, PostgreSQL {pg}"
    )
