"""QC and release: specifications, samples, results, OOS investigations, exceptions,
conditional releases, culture alerts and the batch record review (issue 6).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 23:18:35.385363
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vein2vein.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "specification",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("imported_at", UTCDateTime, nullable=False),
        sa.Column("imported_by", sa.String(length=50), nullable=False),
        sa.Column("approved_at", UTCDateTime, nullable=True),
        sa.Column("approved_by", sa.String(length=50), nullable=True),
        sa.PrimaryKeyConstraint("code", "version", name=op.f("pk_specification")),
    )
    with op.batch_alter_table("specification", schema=None) as batch_op:
        batch_op.create_index("ix_specification_product_stage", ["product", "stage"], unique=False)

    op.create_table(
        "qc_exception",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("lot", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("attributes", sa.String(length=400), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("document", sa.String(length=100), nullable=True),
        sa.Column("signed_by", sa.String(length=50), nullable=False),
        sa.Column("signed_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(["lot"], ["batch.lot"], name=op.f("fk_qc_exception_lot_batch")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_exception")),
    )
    with op.batch_alter_table("qc_exception", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qc_exception_lot"), ["lot"], unique=False)

    op.create_table(
        "qc_sample",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("lot", sa.String(length=32), nullable=False),
        sa.Column("coi", sa.String(length=40), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=True),
        sa.Column("spec_code", sa.String(length=32), nullable=False),
        sa.Column("spec_version", sa.Integer(), nullable=False),
        sa.Column("drawn_at", UTCDateTime, nullable=False),
        sa.Column("drawn_by", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(["lot"], ["batch.lot"], name=op.f("fk_qc_sample_lot_batch")),
        sa.ForeignKeyConstraint(
            ["spec_code", "spec_version"],
            ["specification.code", "specification.version"],
            name="fk_qc_sample_specification",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_sample")),
    )
    with op.batch_alter_table("qc_sample", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qc_sample_lot"), ["lot"], unique=False)

    op.create_table(
        "record_review",
        sa.Column("lot", sa.String(length=32), nullable=False),
        sa.Column("reviewed_by", sa.String(length=50), nullable=False),
        sa.Column("reviewed_at", UTCDateTime, nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lot"], ["batch_record.lot"], name=op.f("fk_record_review_lot_batch_record")
        ),
        sa.PrimaryKeyConstraint("lot", name=op.f("pk_record_review")),
    )
    op.create_table(
        "test_result",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sample_id", sa.String(length=32), nullable=False),
        sa.Column("lot", sa.String(length=32), nullable=False),
        sa.Column("attribute", sa.String(length=40), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("method_version", sa.String(length=20), nullable=False),
        sa.Column("analyst", sa.String(length=50), nullable=False),
        sa.Column("instrument", sa.String(length=40), nullable=True),
        sa.Column("tested_at", UTCDateTime, nullable=False),
        sa.Column("entered_at", UTCDateTime, nullable=False),
        sa.Column("entered", sa.String(length=200), nullable=False),
        sa.Column("reported", sa.String(length=100), nullable=False),
        sa.Column("number", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("conformance", sa.String(length=16), nullable=False),
        sa.Column("oot", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("retest_of", sa.Integer(), nullable=True),
        sa.Column("verified_by", sa.String(length=50), nullable=True),
        sa.Column("verified_at", UTCDateTime, nullable=True),
        sa.Column("invalidated_by", sa.String(length=50), nullable=True),
        sa.Column("invalidated_at", UTCDateTime, nullable=True),
        sa.Column("invalid_reason", sa.Text(), nullable=True),
        sa.Column("oot_reviewed_by", sa.String(length=50), nullable=True),
        sa.Column("oot_comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["lot"], ["batch.lot"], name=op.f("fk_test_result_lot_batch")),
        sa.ForeignKeyConstraint(
            ["retest_of"], ["test_result.id"], name=op.f("fk_test_result_retest_of_test_result")
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["qc_sample.id"], name=op.f("fk_test_result_sample_id_qc_sample")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_result")),
    )
    with op.batch_alter_table("test_result", schema=None) as batch_op:
        batch_op.create_index("ix_test_result_attribute", ["attribute", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_test_result_lot"), ["lot"], unique=False)
        batch_op.create_index("ix_test_result_sample", ["sample_id"], unique=False)

    op.create_table(
        "conditional_release",
        sa.Column("lot", sa.String(length=32), nullable=False),
        sa.Column("pending", sa.String(length=400), nullable=False),
        sa.Column("released_at", UTCDateTime, nullable=False),
        sa.Column("released_by", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("result_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["lot"], ["batch.lot"], name=op.f("fk_conditional_release_lot_batch")
        ),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["test_result.id"],
            name=op.f("fk_conditional_release_result_id_test_result"),
        ),
        sa.PrimaryKeyConstraint("lot", name=op.f("pk_conditional_release")),
    )
    op.create_table(
        "oos_investigation",
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("lot", sa.String(length=32), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("phase_i_finding", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("conclusion", sa.Text(), nullable=True),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("closed_by", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(
            ["lot"], ["batch.lot"], name=op.f("fk_oos_investigation_lot_batch")
        ),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["test_result.id"],
            name=op.f("fk_oos_investigation_result_id_test_result"),
        ),
        sa.PrimaryKeyConstraint("reference", name=op.f("pk_oos_investigation")),
    )
    with op.batch_alter_table("oos_investigation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oos_investigation_lot"), ["lot"], unique=False)

    op.create_table(
        "qc_alert",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("lot", sa.String(length=32), nullable=False),
        sa.Column("treatment_centre", sa.String(length=32), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("deviation", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("raised_at", UTCDateTime, nullable=False),
        sa.Column("acknowledged_by", sa.String(length=50), nullable=True),
        sa.Column("acknowledged_at", UTCDateTime, nullable=True),
        sa.Column("acknowledgement", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["deviation"], ["deviation.reference"], name=op.f("fk_qc_alert_deviation_deviation")
        ),
        sa.ForeignKeyConstraint(["lot"], ["batch.lot"], name=op.f("fk_qc_alert_lot_batch")),
        sa.ForeignKeyConstraint(
            ["result_id"], ["test_result.id"], name=op.f("fk_qc_alert_result_id_test_result")
        ),
        sa.ForeignKeyConstraint(
            ["treatment_centre"], ["site.code"], name=op.f("fk_qc_alert_treatment_centre_site")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_alert")),
    )
    with op.batch_alter_table("qc_alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qc_alert_lot"), ["lot"], unique=False)

    # Signed exceptions (QA's acceptance out of criteria, the physician's OOS release
    # request) are history: written once, never changed or removed.
    dialect = op.get_bind().dialect.name
    table = "qc_exception"
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
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
            )


def downgrade() -> None:

    with op.batch_alter_table("qc_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qc_alert_lot"))

    op.drop_table("qc_alert")
    with op.batch_alter_table("oos_investigation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oos_investigation_lot"))

    op.drop_table("oos_investigation")
    op.drop_table("conditional_release")
    with op.batch_alter_table("test_result", schema=None) as batch_op:
        batch_op.drop_index("ix_test_result_sample")
        batch_op.drop_index(batch_op.f("ix_test_result_lot"))
        batch_op.drop_index("ix_test_result_attribute")

    op.drop_table("test_result")
    op.drop_table("record_review")
    with op.batch_alter_table("qc_sample", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qc_sample_lot"))

    op.drop_table("qc_sample")
    with op.batch_alter_table("qc_exception", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qc_exception_lot"))

    op.drop_table("qc_exception")
    with op.batch_alter_table("specification", schema=None) as batch_op:
        batch_op.drop_index("ix_specification_product_stage")

    op.drop_table("specification")
