"""Engines for SQLite (the embedded default) and PostgreSQL, and the migrations."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vein2vein.domain.errors import DatabaseUnavailable

__all__ = [
    "SCHEMA_REVISION",
    "Engine",
    "connect",
    "current_revision",
    "head_revision",
    "make_engine",
    "upgrade",
]

Engine = sa.Engine

# The latest migration: checked against Alembic's head by a test, so that asking "is this
# database ready?" on every command needs no Alembic import (a fifth of a second).
SCHEMA_REVISION = "0008"

_MIGRATIONS = Path(__file__).with_name("migrations")

# Execution option read by the SQLite "begin" hook: a write transaction starts with
# BEGIN IMMEDIATE, taking SQLite's single write lock up front, so two writers queue on the
# busy timeout instead of one failing when it upgrades a read snapshot that went stale.
WRITE = "v2v_write"


def make_engine(url: str, *, echo: bool = False) -> sa.Engine:
    """An engine for ``url`` with vein2vein's connection settings applied."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            path = Path(database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # It will hold password hashes and the records: readable by its owner only.
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        engine = sa.create_engine(url, echo=echo, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(url, echo=echo, pool_pre_ping=True)


def connect(engine: sa.Engine) -> sa.Connection:
    """A connection, or :class:`DatabaseUnavailable` naming the database and the cause."""
    try:
        return engine.connect()
    except sa.exc.OperationalError as exc:
        url = engine.url.render_as_string(hide_password=True)
        raise DatabaseUnavailable(f"cannot connect to {url}: {str(exc.orig).strip()}") from exc


def _configure_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred only).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> str | None:
    """Migrate the database to ``revision``; returns the revision it is at afterwards."""
    from alembic import command

    with connect(engine) as connection:
        command.upgrade(_alembic_config(connection), revision)
        connection.commit()
    return current_revision(engine)


def current_revision(engine: sa.Engine) -> str | None:
    """The migration the database is at, or None when it has never been migrated."""
    with connect(engine) as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str | None:
    """The latest migration according to Alembic's script directory."""
    from alembic.script import ScriptDirectory

    with sa.create_engine("sqlite://").connect() as connection:
        head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
        return str(head) if head else None
