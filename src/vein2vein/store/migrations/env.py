"""Alembic environment: always run programmatically with a connection (see store.migrate)."""

from __future__ import annotations

from alembic import context

from vein2vein.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by a misuse of the alembic CLI
    raise RuntimeError("run migrations with `v2v db upgrade`, which passes a connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
