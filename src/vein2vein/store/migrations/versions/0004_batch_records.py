"""Electronic batch records, material lots, equipment and deviations (issue 5).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vein2vein.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_record",
        sa.Column("lot", sa.String(32), nullable=False),
        sa.Column("process", sa.String(32), nullable=False),
        sa.Column("process_version", sa.Integer, nullable=False),
        sa.Column("patient_weight_kg", sa.Float, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("started_by", sa.String(50), nullable=False),
        sa.PrimaryKeyConstraint("lot", name="pk_batch_record"),
        sa.ForeignKeyConstraint(["lot"], ["batch.lot"], name="fk_batch_record_lot_batch"),
        sa.ForeignKeyConstraint(
            ["process", "process_version"],
            ["process_definition.process", "process_definition.version"],
            name="fk_batch_record_process_definition",
        ),
    )
    op.create_table(
        "equipment",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("equipment_class", sa.String(64), nullable=False),
        sa.Column("site", sa.String(32), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("calibration_due", sa.Date, nullable=False),
        sa.Column("registered_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_equipment"),
        sa.ForeignKeyConstraint(["site"], ["site.code"], name="fk_equipment_site_site"),
    )
    op.create_table(
        "step_record",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("lot", sa.String(32), nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("occurrence", sa.Integer, nullable=False),
        sa.Column("performed_by", sa.String(50), nullable=False),
        sa.Column("performed_at", UTCDateTime, nullable=False),
        sa.Column("equipment_id", sa.String(32), nullable=True),
        sa.Column("verified_by", sa.String(50), nullable=True),
        sa.Column("verified_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_step_record"),
        sa.ForeignKeyConstraint(
            ["lot"], ["batch_record.lot"], name="fk_step_record_lot_batch_record"
        ),
        sa.ForeignKeyConstraint(
            ["equipment_id"], ["equipment.id"], name="fk_step_record_equipment_id_equipment"
        ),
        sa.UniqueConstraint("lot", "step_id", "occurrence", name="uq_step_record_occurrence"),
    )
    op.create_table(
        "step_value",
        sa.Column("step_record_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("entered", sa.Float, nullable=False),
        sa.Column("reported", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("computed", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("step_record_id", "name", name="pk_step_value"),
        sa.ForeignKeyConstraint(
            ["step_record_id"], ["step_record.id"], name="fk_step_value_step_record_id_step_record"
        ),
    )
    op.create_table(
        "value_correction",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("step_record_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("old", sa.Float, nullable=False),
        sa.Column("new", sa.Float, nullable=False),
        sa.Column("corrected_by", sa.String(50), nullable=False),
        sa.Column("corrected_at", UTCDateTime, nullable=False),
        sa.Column("why", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_value_correction"),
        sa.ForeignKeyConstraint(
            ["step_record_id"],
            ["step_record.id"],
            name="fk_value_correction_step_record_id_step_record",
        ),
    )
    op.create_index("ix_value_correction_step", "value_correction", ["step_record_id"])
    op.create_table(
        "material_lot",
        sa.Column("lot", sa.String(40), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("supplier", sa.String(200), nullable=False),
        sa.Column("expiry", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("lot", name="pk_material_lot"),
    )
    op.create_table(
        "material_use",
        sa.Column("step_record_id", sa.Integer, nullable=False),
        sa.Column("material_lot", sa.String(40), nullable=False),
        sa.Column("batch_lot", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("step_record_id", "material_lot", name="pk_material_use"),
        sa.ForeignKeyConstraint(
            ["step_record_id"],
            ["step_record.id"],
            name="fk_material_use_step_record_id_step_record",
        ),
        sa.ForeignKeyConstraint(
            ["material_lot"], ["material_lot.lot"], name="fk_material_use_material_lot_material_lot"
        ),
        sa.ForeignKeyConstraint(
            ["batch_lot"], ["batch.lot"], name="fk_material_use_batch_lot_batch"
        ),
    )
    op.create_index("ix_material_use_material_lot", "material_use", ["material_lot"])
    op.create_index("ix_material_use_batch_lot", "material_use", ["batch_lot"])
    op.create_table(
        "deviation",
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("lot", sa.String(32), nullable=False),
        sa.Column("step_record_id", sa.Integer, nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("impact", sa.Text, nullable=True),
        sa.Column("capa", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("opened_by", sa.String(50), nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("closed_by", sa.String(50), nullable=True),
        sa.PrimaryKeyConstraint("reference", name="pk_deviation"),
        sa.ForeignKeyConstraint(["lot"], ["batch.lot"], name="fk_deviation_lot_batch"),
        sa.ForeignKeyConstraint(
            ["step_record_id"], ["step_record.id"], name="fk_deviation_step_record_id_step_record"
        ),
    )
    op.create_index("ix_deviation_lot", "deviation", ["lot"])

    # Corrections and material use are history: written once, never changed or removed
    # (a correction of a correction is a new row). The audit trail keeps the same facts.
    dialect = op.get_bind().dialect.name
    for table in ("value_correction", "material_use"):
        if dialect == "postgresql":  # table_is_append_only() comes from revision 0002
            op.execute(
                f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION table_is_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION table_is_append_only()"
            )
        else:
            for operation in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} "
                    f"ON {table} BEGIN "
                    f"SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
                )


def downgrade() -> None:
    op.drop_index("ix_deviation_lot", "deviation")
    op.drop_table("deviation")
    op.drop_index("ix_material_use_batch_lot", "material_use")
    op.drop_index("ix_material_use_material_lot", "material_use")
    op.drop_table("material_use")
    op.drop_table("material_lot")
    op.drop_index("ix_value_correction_step", "value_correction")
    op.drop_table("value_correction")
    op.drop_table("step_value")
    op.drop_table("step_record")
    op.drop_table("equipment")
    op.drop_table("batch_record")
