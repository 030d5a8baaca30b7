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
from importlib import resources
from pathlib import Path

import sqlalchemy as sa

from vein2vein.config import Settings
from vein2vein.domain.clock import Clock, FixedClock
from vein2vein.services import auth, people, qc, specs
from vein2vein.services.app import App
from vein2vein.services.auth import Identity, Signing

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


_ACCEPTABLE = {
    "tnc": "8.5", "cd3_cells": "3.2", "cd3_percent": "45.0", "viability": "96",
    "volume": "250", "hours_from_collection": "20.0",
}  # fmt: skip


class BenchLab:
    """Two QC analysts and the example specifications, effective: what acceptance needs."""

    def __init__(self, app: App, crew: BenchPeople) -> None:
        self.app = app
        for user_id in ("qc.one", "qc.two"):
            people.create_user(
                app.uow(), crew.admin.actor, user_id=user_id, full_name=user_id,
                roles=["qc-analyst"], sites="*", password=PASSWORD, must_change_password=False,
            )  # fmt: skip
        token = {u: auth.sign_in(app.uow(), user_id=u, password=PASSWORD, kind="api").token
                 for u in ("qc.one", "qc.two")}  # fmt: skip
        self.analyst = auth.resolve_token(app.uow(), token["qc.one"], kinds=("api",))
        self.second = auth.resolve_token(app.uow(), token["qc.two"], kinds=("api",))
        folder = resources.files("vein2vein.examples") / "spec"
        for name in ("cart-cd19-acceptance.yaml", "cart-cd19-release.yaml"):
            text = (folder / name).read_text("utf-8")
            done = specs.import_spec(app.uow(), crew.admin.actor, text, name)
            specs.approve_spec(app.uow(), crew.qa, done.code, done.version, reason="bench",
                               signing=Signing(PASSWORD, crew.qa.actor.user_id))  # fmt: skip

    def accept_results(self, lot: str, label: str) -> None:
        """The apheresis sampled on receipt and its results entered and verified."""
        sample = qc.draw_sample(self.app.uow(), self.analyst.actor, lot,
                                stage="starting-material", scan=label)  # fmt: skip
        for attribute, value in _ACCEPTABLE.items():
            done = qc.enter_result(self.app.uow(), self.analyst.actor, sample, attribute, value)
            qc.verify_result(self.app.uow(), self.second, done.id,
                             signing=Signing(PASSWORD, "qc.two"))  # fmt: skip


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
