"""Telemetry: instruments' readings, stored once each, and the messages that were not
readings, kept with their reason (issue 10).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vein2vein.store.append_only import append_only_statements
from vein2vein.store.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sensor_reading",
        sa.Column("equipment", sa.String(length=48), nullable=False),
        sa.Column("sensor", sa.String(length=48), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("site", sa.String(length=48), nullable=False),
        sa.Column("measured_at", UTCDateTime, nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("equipment", "sensor", "seq", name=op.f("pk_sensor_reading")),
    )
    with op.batch_alter_table("sensor_reading", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sensor_reading_time", ["equipment", "sensor", "measured_at"], unique=False
        )
    op.create_table(
        "reading_quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_quarantine")),
    )
    # Raw data and refused messages are history: written once, never changed or removed.
    dialect = op.get_bind().dialect.name
    for table in ("sensor_reading", "reading_quarantine"):
        for statement in append_only_statements(table, dialect):
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("reading_quarantine")
    op.drop_table("sensor_reading")
