"""Analytics: results excluded from (and reinstated in) the limits of their control charts,
each with its reason (issue 7).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 02:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vein2vein.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "spc_exclusion"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=50), nullable=False),
        sa.Column("decided_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["result_id"], ["test_result.id"], name=op.f("fk_spc_exclusion_result_id_test_result")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spc_exclusion")),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index("ix_spc_exclusion_result", ["result_id"], unique=False)
    # An exclusion and a reinstatement are history: written once, never changed or removed.
    if op.get_bind().dialect.name == "postgresql":  # table_is_append_only() from 0002
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION table_is_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION table_is_append_only()"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_no_{operation.lower()} BEFORE {operation} ON {TABLE} "
                f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: {operation} refused'); END"
            )


def downgrade() -> None:
    op.drop_table(TABLE)
