"""Master batch records: versions of process definitions under change control (issue 5).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vein2vein.store.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_definition",
        sa.Column("process", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("product", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("imported_at", UTCDateTime, nullable=False),
        sa.Column("imported_by", sa.String(50), nullable=False),
        sa.Column("approved_at", UTCDateTime, nullable=True),
        sa.Column("approved_by", sa.String(50), nullable=True),
        sa.PrimaryKeyConstraint("process", "version", name="pk_process_definition"),
    )
    op.create_index("ix_process_definition_product", "process_definition", ["product"])


def downgrade() -> None:
    op.drop_index("ix_process_definition_product", "process_definition")
    op.drop_table("process_definition")
