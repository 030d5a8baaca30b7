"""Sites, patients, orders, batches, custody, identifiers and the append-only audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vein2vein.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_AUDIT_FIELDS = ("at", "actor", "action", "entity_type", "entity_id")
_AUDIT_LENGTHS = {"at": 32, "actor": 100, "action": 64, "entity_type": 32, "entity_id": 64}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "site",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("fin", sa.String(5), nullable=True),
        sa.PrimaryKeyConstraint("code", name="pk_site"),
    )
    op.create_table(
        "patient",
        sa.Column("pseudonym", sa.String(32), nullable=False),
        sa.Column("year_of_birth", sa.Integer, nullable=False),
        sa.Column("weight_kg", sa.Float, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("pseudonym", name="pk_patient"),
    )
    op.create_table(
        "therapy_order",
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("patient_pseudonym", sa.String(32), nullable=False),
        sa.Column("product", sa.String(32), nullable=False),
        sa.Column("treatment_centre", sa.String(32), nullable=False),
        sa.Column("manufacturing_site", sa.String(32), nullable=False),
        sa.Column("ordered_at", UTCDateTime, nullable=False),
        sa.Column("ordered_by", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("reference", name="pk_therapy_order"),
        sa.ForeignKeyConstraint(
            ["patient_pseudonym"],
            ["patient.pseudonym"],
            name="fk_therapy_order_patient_pseudonym_patient",
        ),
        sa.ForeignKeyConstraint(
            ["treatment_centre"], ["site.code"], name="fk_therapy_order_treatment_centre_site"
        ),
        sa.ForeignKeyConstraint(
            ["manufacturing_site"], ["site.code"], name="fk_therapy_order_manufacturing_site_site"
        ),
    )
    op.create_table(
        "batch",
        sa.Column("lot", sa.String(32), nullable=False),
        sa.Column("coi", sa.String(15), nullable=False),
        sa.Column("din", sa.String(13), nullable=True),
        sa.Column("order_ref", sa.String(32), nullable=False),
        sa.Column("patient_pseudonym", sa.String(32), nullable=False),
        sa.Column("product", sa.String(32), nullable=False),
        sa.Column("manufacturing_site", sa.String(32), nullable=False),
        sa.Column("treatment_centre", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("state_since", UTCDateTime, nullable=False),
        sa.Column("held_from", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("lot", name="pk_batch"),
        sa.UniqueConstraint("coi", name="uq_batch_coi"),
        sa.UniqueConstraint("din", name="uq_batch_din"),
        sa.ForeignKeyConstraint(
            ["order_ref"], ["therapy_order.reference"], name="fk_batch_order_ref_therapy_order"
        ),
        sa.ForeignKeyConstraint(
            ["patient_pseudonym"], ["patient.pseudonym"], name="fk_batch_patient_pseudonym_patient"
        ),
        sa.ForeignKeyConstraint(
            ["manufacturing_site"], ["site.code"], name="fk_batch_manufacturing_site_site"
        ),
        sa.ForeignKeyConstraint(
            ["treatment_centre"], ["site.code"], name="fk_batch_treatment_centre_site"
        ),
    )
    op.create_index("ix_batch_state", "batch", ["state"])
    op.create_table(
        "custody_event",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("lot", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_party", sa.String(200), nullable=False),
        sa.Column("to_party", sa.String(200), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("temperature_c", sa.Float, nullable=True),
        sa.Column("scanned", sa.String(20), nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_custody_event"),
        sa.ForeignKeyConstraint(["lot"], ["batch.lot"], name="fk_custody_event_lot_batch"),
    )
    op.create_index("ix_custody_event_lot", "custody_event", ["lot"])
    op.create_table(
        "identifier_sequence",
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("last", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("kind", "scope", "year", name="pk_identifier_sequence"),
    )
    # One row per identifier ever issued: the primary key is the database's own guarantee
    # that no (kind, FIN, year, sequence) is issued twice, whatever the counter says.
    op.create_table(
        "issued_identifier",
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("kind", "scope", "year", "sequence", name="pk_issued_identifier"),
    )

    def generated(field: str) -> sa.Column[str]:
        if dialect == "postgresql":
            expression = f"(body::jsonb ->> '{field}')"
        else:
            expression = f"json_extract(body, '$.{field}')"
        return sa.Column(
            field, sa.String(_AUDIT_LENGTHS[field]), sa.Computed(expression, persisted=True)
        )

    op.create_table(
        "audit_record",
        sa.Column("seq", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        *(generated(f) for f in _AUDIT_FIELDS),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_record"),
        sa.UniqueConstraint("hash", name="uq_audit_record_hash"),
    )
    op.create_index("ix_audit_record_entity", "audit_record", ["entity_type", "entity_id"])

    if dialect == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_record_is_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'audit_record is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_record_no_update_delete BEFORE UPDATE OR DELETE ON audit_record "
            "FOR EACH ROW EXECUTE FUNCTION audit_record_is_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON audit_record "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_record_is_append_only()"
        )
        op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_record FROM PUBLIC")
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_record_no_{operation.lower()} BEFORE {operation} "
                "ON audit_record BEGIN "
                f"SELECT RAISE(ABORT, 'audit_record is append-only: {operation} refused'); END"
            )


def downgrade() -> None:
    raise RuntimeError("the audit trail is never dropped; restore from a backup instead")
