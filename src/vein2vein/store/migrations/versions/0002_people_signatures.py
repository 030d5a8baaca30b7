"""People, credentials (sessions and tokens) and electronic signatures (issue 4).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vein2vein.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "user_account",
        sa.Column("user_id", sa.String(50), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("roles", sa.String(400), nullable=False),
        sa.Column("sites", sa.String(1000), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("password_changed_at", UTCDateTime, nullable=False),
        sa.Column("must_change_password", sa.Boolean, nullable=False),
        sa.Column("failed_attempts", sa.Integer, nullable=False),
        sa.Column("locked_at", UTCDateTime, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_user_account"),
    )
    op.create_table(
        "credential",
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(50), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("last_used_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("csrf_token", sa.String(64), nullable=True),
        sa.Column("has_signed", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("token_id", name="pk_credential"),
        sa.UniqueConstraint("secret_hash", name="uq_credential_secret_hash"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.user_id"], name="fk_credential_user_id_user_account"
        ),
    )
    op.create_index("ix_credential_user_id", "credential", ["user_id"])
    op.create_table(
        "signature",
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("signer_id", sa.String(50), nullable=False),
        sa.Column("signer_name", sa.String(200), nullable=False),
        sa.Column("meaning", sa.String(16), nullable=False),
        sa.Column("signed_at", UTCDateTime, nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("audit_seq", name="pk_signature"),
        sa.ForeignKeyConstraint(
            ["audit_seq"], ["audit_record.seq"], name="fk_signature_audit_seq_audit_record"
        ),
        sa.ForeignKeyConstraint(
            ["signer_id"], ["user_account.user_id"], name="fk_signature_signer_id_user_account"
        ),
    )
    op.create_index("ix_signature_entity", "signature", ["entity_type", "entity_id"])

    if dialect == "postgresql":
        op.execute(
            """
            CREATE FUNCTION table_is_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER signature_no_update_delete BEFORE UPDATE OR DELETE ON signature "
            "FOR EACH ROW EXECUTE FUNCTION table_is_append_only()"
        )
        op.execute(
            "CREATE TRIGGER signature_no_truncate BEFORE TRUNCATE ON signature "
            "FOR EACH STATEMENT EXECUTE FUNCTION table_is_append_only()"
        )
        op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON signature FROM PUBLIC")
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER signature_no_{operation.lower()} BEFORE {operation} "
                "ON signature BEGIN "
                f"SELECT RAISE(ABORT, 'signature is append-only: {operation} refused'); END"
            )


def downgrade() -> None:
    raise RuntimeError("signatures are never dropped; restore from a backup instead")
