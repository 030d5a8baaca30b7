"""A unit of work whose connection is cut (PostgreSQL): the service says the database is
unavailable — with "nothing was saved" when the cut came before COMMIT, and "unknown"
when the answer to COMMIT itself was lost — never a driver exception."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from vein2vein.domain.errors import DatabaseUnavailable
from vein2vein.domain.events import Event
from vein2vein.services.app import App


def _cut(app: App, connection: sa.Connection) -> None:
    pid = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    with app.engine.connect() as other:
        other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.mark.parametrize(
    ("with_event", "said"),
    [(True, "nothing was saved"), (False, "whether it saved is unknown")],
)
def test_a_connection_cut_before_commit_is_named_and_nothing_is_saved(
    postgres_app: App, with_event: bool, said: str
) -> None:
    app = postgres_app
    before = app.audit_count()
    uow = app.uow()
    with pytest.raises(DatabaseUnavailable, match=said), uow:
        _cut(app, uow.connection)
        if with_event:  # the audit record is written before COMMIT, and fails
            uow.record(Event("TestCut", "system:test", uow.clock.now(), "site", "CP1", new={}))
        uow.commit()
    assert app.audit_count() == before
