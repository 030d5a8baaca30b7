"""Telemetry in context: which step runs on which equipment, and the alarms the monitored
sensors raise (issue 10).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vein2vein.store.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "equipment_use",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("equipment_id", sa.String(length=32), nullable=False),
        sa.Column("lot", sa.String(length=32), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("started_by", sa.String(length=50), nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("ended_by", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(["equipment_id"], ["equipment.id"],
                                name=op.f("fk_equipment_use_equipment_id_equipment")),
        sa.ForeignKeyConstraint(["lot"], ["batch.lot"], name=op.f("fk_equipment_use_lot_batch")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equipment_use")),
    )  # fmt: skip
    with op.batch_alter_table("equipment_use", schema=None) as batch_op:
        batch_op.create_index("ix_equipment_use_equipment", ["equipment_id", "started_at"])
        batch_op.create_index("ix_equipment_use_lot", ["lot"])
        batch_op.create_index("uq_equipment_use_open", ["equipment_id"], unique=True,
                              sqlite_where=sa.text("ended_at IS NULL"),
                              postgresql_where=sa.text("ended_at IS NULL"))  # fmt: skip
    op.create_table(
        "alarm",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site", sa.String(length=48), nullable=False),
        sa.Column("equipment", sa.String(length=48), nullable=False),
        sa.Column("sensor", sa.String(length=48), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("lot", sa.String(length=32), nullable=True),
        sa.Column("step_id", sa.String(length=64), nullable=True),
        sa.Column("limits", sa.String(length=80), nullable=False),
        sa.Column("since", UTCDateTime, nullable=False),
        sa.Column("raised_at", UTCDateTime, nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("cleared_at", UTCDateTime, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=50), nullable=True),
        sa.Column("acknowledged_at", UTCDateTime, nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("deviation", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["lot"], ["batch.lot"], name=op.f("fk_alarm_lot_batch")),
        sa.ForeignKeyConstraint(["deviation"], ["deviation.reference"],
                                name=op.f("fk_alarm_deviation_deviation")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm")),
    )  # fmt: skip
    with op.batch_alter_table("alarm", schema=None) as batch_op:
        batch_op.create_index("ix_alarm_open", ["acknowledged_at", "raised_at"])
        batch_op.create_index("ix_alarm_equipment", ["equipment", "sensor", "raised_at"])


def downgrade() -> None:
    op.drop_table("alarm")
    op.drop_table("equipment_use")
