"""The schema comes only from the migrations; the query tables must agree with it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.conftest import settings_for
from tests.network import act, order, small_network
from vein2vein.domain.batch import Action
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import ConcurrencyConflict
from vein2vein.services.app import App
from vein2vein.store.engine import SCHEMA_REVISION, head_revision
from vein2vein.store.tables import metadata


def test_the_migrated_schema_matches_the_tables_the_queries_use(app: App) -> None:
    with app.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = [
            d
            for d in compare_metadata(context, metadata)
            if d[0] != "remove_table" or d[1].name != "alembic_version"
        ]
    assert diff == []


def test_the_schema_revision_the_app_expects_is_alembics_head() -> None:
    assert head_revision() == SCHEMA_REVISION


def test_the_migration_makes_the_audit_columns_from_the_body(app: App) -> None:
    small_network(app)
    with app.engine.connect() as c:
        row = c.execute(
            sa.text("SELECT actor, action, entity_type, entity_id FROM audit_record WHERE seq = 1")
        ).one()
    assert tuple(row) == ("admin", "AdministratorBootstrapped", "user", "admin")


def test_a_batch_changed_under_an_open_transaction_is_refused_at_commit(
    postgres_schema_url: str, clock: FixedClock
) -> None:
    """The store's own guard: UPDATE ... WHERE version = the version that was read."""
    app = App.connect(postgres_schema_url, clock=clock, settings=settings_for(postgres_schema_url))
    try:
        app.upgrade()
        small_network(app)
        lot = order(app)
        with app.uow() as slow:
            batch = slow.batches.get(lot)  # read without a lock, as a long form would
            done = threading.Event()

            def fast_writer() -> None:
                act(app, lot, Action.HOLD, reason="first")
                done.set()

            threading.Thread(target=fast_writer).start()
            assert done.wait(30)
            batch.terminate(by="qa.a", at=clock.now(), reason="second")
            with pytest.raises(
                ConcurrencyConflict, match="you read version 1, it is now at version 2"
            ):
                slow.commit()
        assert app.verify_audit().ok
    finally:
        app.dispose()


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    from vein2vein.store.engine import make_engine

    database = tmp_path / "new" / "v2v.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as c:
        c.execute(sa.text("SELECT 1"))
    engine.dispose()
    assert database.stat().st_mode & 0o077 == 0
