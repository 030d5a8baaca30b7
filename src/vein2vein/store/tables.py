"""Table definitions used to build queries.

The schema itself comes only from the Alembic migrations; a test checks that these
definitions and the migrated schema agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """An aware UTC datetime on every engine (SQLite keeps no time zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


site = sa.Table(
    "site",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("fin", sa.String(5), nullable=True),
)

patient = sa.Table(
    "patient",
    metadata,
    sa.Column("pseudonym", sa.String(32), primary_key=True),
    sa.Column("year_of_birth", sa.Integer, nullable=False),
    sa.Column("weight_kg", sa.Float, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

therapy_order = sa.Table(
    "therapy_order",
    metadata,
    sa.Column("reference", sa.String(32), primary_key=True),
    sa.Column(
        "patient_pseudonym", sa.String(32), sa.ForeignKey("patient.pseudonym"), nullable=False
    ),
    sa.Column("product", sa.String(32), nullable=False),
    sa.Column("treatment_centre", sa.String(32), sa.ForeignKey("site.code"), nullable=False),
    sa.Column("manufacturing_site", sa.String(32), sa.ForeignKey("site.code"), nullable=False),
    sa.Column("ordered_at", UTCDateTime, nullable=False),
    sa.Column("ordered_by", sa.String(100), nullable=False),
)

batch = sa.Table(
    "batch",
    metadata,
    sa.Column("lot", sa.String(32), primary_key=True),
    sa.Column("coi", sa.String(15), nullable=False, unique=True),
    sa.Column("din", sa.String(13), nullable=True, unique=True),
    sa.Column("order_ref", sa.String(32), sa.ForeignKey("therapy_order.reference"), nullable=False),
    sa.Column(
        "patient_pseudonym", sa.String(32), sa.ForeignKey("patient.pseudonym"), nullable=False
    ),
    sa.Column("product", sa.String(32), nullable=False),
    sa.Column("manufacturing_site", sa.String(32), sa.ForeignKey("site.code"), nullable=False),
    sa.Column("treatment_centre", sa.String(32), sa.ForeignKey("site.code"), nullable=False),
    sa.Column("state", sa.String(32), nullable=False, index=True),
    sa.Column("state_since", UTCDateTime, nullable=False),
    sa.Column("held_from", sa.String(32), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

custody_event = sa.Table(
    "custody_event",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch.lot"), nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("from_party", sa.String(200), nullable=False),
    sa.Column("to_party", sa.String(200), nullable=False),
    sa.Column("location", sa.String(200), nullable=False),
    sa.Column("temperature_c", sa.Float, nullable=True),
    sa.Column("scanned", sa.String(20), nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("recorded_by", sa.String(100), nullable=False),
)

identifier_sequence = sa.Table(
    "identifier_sequence",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("last", sa.Integer, nullable=False),
)

issued_identifier = sa.Table(
    "issued_identifier",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("sequence", sa.Integer, primary_key=True),
    sa.Column("issued_at", UTCDateTime, nullable=False),
)

# The content of an audit record is its canonical JSON ``body``; the other columns are
# generated from it by the database, so the body is the only thing a change could touch.
audit_record = sa.Table(
    "audit_record",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("at", sa.String(32), sa.Computed("-", persisted=True)),
    sa.Column("actor", sa.String(100), sa.Computed("-", persisted=True)),
    sa.Column("action", sa.String(64), sa.Computed("-", persisted=True)),
    sa.Column("entity_type", sa.String(32), sa.Computed("-", persisted=True)),
    sa.Column("entity_id", sa.String(64), sa.Computed("-", persisted=True)),
    sa.Index("ix_audit_record_entity", "entity_type", "entity_id"),
)

# -- people (issue 4) -----------------------------------------------------------------
# ``roles`` and ``sites`` are comma-separated, sorted; ``sites`` is "*" for every site.
user_account = sa.Table(
    "user_account",
    metadata,
    sa.Column("user_id", sa.String(50), primary_key=True),
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
)

# A credential: a web session, an API token or the CLI's token. Only the SHA-256 of its
# secret is kept; ``token_id`` is the public handle used to list and revoke it.
credential = sa.Table(
    "credential",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column(
        "user_id", sa.String(50), sa.ForeignKey("user_account.user_id"), nullable=False, index=True
    ),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("csrf_token", sa.String(64), nullable=True),
    sa.Column("has_signed", sa.Boolean, nullable=False),
)

# Every electronic signature, pointing at the audit record it signs (whose body carries
# the same manifest). Append-only, like the audit trail.
signature = sa.Table(
    "signature",
    metadata,
    sa.Column("audit_seq", sa.BigInteger, sa.ForeignKey("audit_record.seq"), primary_key=True),
    sa.Column("entity_type", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(64), nullable=False),
    sa.Column("signer_id", sa.String(50), sa.ForeignKey("user_account.user_id"), nullable=False),
    sa.Column("signer_name", sa.String(200), nullable=False),
    sa.Column("meaning", sa.String(16), nullable=False),
    sa.Column("signed_at", UTCDateTime, nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
    sa.Index("ix_signature_entity", "entity_type", "entity_id"),
)

# -- master batch records (issue 5) ------------------------------------------------------
# One row per version of a process definition; ``source`` is the YAML exactly as imported and
# ``content_hash`` its SHA-256, which the approval record (and its signature) names.
process_definition = sa.Table(
    "process_definition",
    metadata,
    sa.Column("process", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("product", sa.String(32), nullable=False, index=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("imported_at", UTCDateTime, nullable=False),
    sa.Column("imported_by", sa.String(50), nullable=False),
    sa.Column("approved_at", UTCDateTime, nullable=True),
    sa.Column("approved_by", sa.String(50), nullable=True),
)

# -- electronic batch records, materials, equipment, deviations (issue 5) -------------------
# A batch's record header: the MBR version it is bound to from the start of processing on,
# and the patient's weight the dose was computed for.
batch_record = sa.Table(
    "batch_record",
    metadata,
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch.lot"), primary_key=True),
    sa.Column("process", sa.String(32), nullable=False),
    sa.Column("process_version", sa.Integer, nullable=False),
    sa.Column("patient_weight_kg", sa.Float, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("started_by", sa.String(50), nullable=False),
    sa.ForeignKeyConstraint(
        ["process", "process_version"],
        ["process_definition.process", "process_definition.version"],
        name="fk_batch_record_process_definition",
    ),
)

equipment = sa.Table(
    "equipment",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("equipment_class", sa.String(64), nullable=False),
    sa.Column("site", sa.String(32), sa.ForeignKey("site.code"), nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("calibration_due", sa.Date, nullable=False),
    sa.Column("registered_at", UTCDateTime, nullable=False),
)

# One performance of one step; (lot, step_id, occurrence) is unique, so two people recording
# the same step at the same moment cannot both succeed.
step_record = sa.Table(
    "step_record",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch_record.lot"), nullable=False),
    sa.Column("step_id", sa.String(64), nullable=False),
    sa.Column("occurrence", sa.Integer, nullable=False),
    sa.Column("performed_by", sa.String(50), nullable=False),
    sa.Column("performed_at", UTCDateTime, nullable=False),
    sa.Column("equipment_id", sa.String(32), sa.ForeignKey("equipment.id"), nullable=True),
    sa.Column("verified_by", sa.String(50), nullable=True),
    sa.Column("verified_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("lot", "step_id", "occurrence", name="uq_step_record_occurrence"),
)

# The current value of each parameter of a step record; its corrections keep what it was.
step_value = sa.Table(
    "step_value",
    metadata,
    sa.Column("step_record_id", sa.Integer, sa.ForeignKey("step_record.id"), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Column("entered", sa.Float, nullable=False),
    sa.Column("reported", sa.Float, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("computed", sa.Boolean, nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
)

value_correction = sa.Table(
    "value_correction",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("step_record_id", sa.Integer, sa.ForeignKey("step_record.id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("old", sa.Float, nullable=False),
    sa.Column("new", sa.Float, nullable=False),
    sa.Column("corrected_by", sa.String(50), nullable=False),
    sa.Column("corrected_at", UTCDateTime, nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sa.Index("ix_value_correction_step", "step_record_id"),
)

material_lot = sa.Table(
    "material_lot",
    metadata,
    sa.Column("lot", sa.String(40), primary_key=True),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("supplier", sa.String(200), nullable=False),
    sa.Column("expiry", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

# Genealogy: which lot went into which batch at which step; indexed both ways.
material_use = sa.Table(
    "material_use",
    metadata,
    sa.Column("step_record_id", sa.Integer, sa.ForeignKey("step_record.id"), primary_key=True),
    sa.Column("material_lot", sa.String(40), sa.ForeignKey("material_lot.lot"), primary_key=True),
    sa.Column("batch_lot", sa.String(32), sa.ForeignKey("batch.lot"), nullable=False),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Index("ix_material_use_material_lot", "material_lot"),
    sa.Index("ix_material_use_batch_lot", "batch_lot"),
)

deviation = sa.Table(
    "deviation",
    metadata,
    sa.Column("reference", sa.String(32), primary_key=True),
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch.lot"), nullable=False, index=True),
    sa.Column("step_record_id", sa.Integer, sa.ForeignKey("step_record.id"), nullable=True),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("impact", sa.Text, nullable=True),
    sa.Column("capa", sa.String(64), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("opened_by", sa.String(50), nullable=False),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("closed_by", sa.String(50), nullable=True),
)

# -- QC and release (issue 6) ---------------------------------------------------------------

# A version of a specification under change control, like a process definition: the file as
# imported and its SHA-256; DRAFT → EFFECTIVE (signed approval) → SUPERSEDED.
specification = sa.Table(
    "specification",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("product", sa.String(32), nullable=False),
    sa.Column("stage", sa.String(20), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("imported_at", UTCDateTime, nullable=False),
    sa.Column("imported_by", sa.String(50), nullable=False),
    sa.Column("approved_at", UTCDateTime, nullable=True),
    sa.Column("approved_by", sa.String(50), nullable=True),
    sa.Index("ix_specification_product_stage", "product", "stage"),
)

# A sample carries the batch's chain of identity and is bound to the specification version
# effective when it was drawn; step_id is None for the apheresis sampled on receipt.
qc_sample = sa.Table(
    "qc_sample",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch.lot"), nullable=False, index=True),
    sa.Column("coi", sa.String(40), nullable=False),
    sa.Column("stage", sa.String(20), nullable=False),
    sa.Column("step_id", sa.String(64), nullable=True),
    sa.Column("spec_code", sa.String(32), nullable=False),
    sa.Column("spec_version", sa.Integer, nullable=False),
    sa.Column("drawn_at", UTCDateTime, nullable=False),
    sa.Column("drawn_by", sa.String(50), nullable=False),
    sa.ForeignKeyConstraint(
        ["spec_code", "spec_version"],
        ["specification.code", "specification.version"],
        name="fk_qc_sample_specification",
    ),
)

test_result = sa.Table(
    "test_result",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sample_id", sa.String(32), sa.ForeignKey("qc_sample.id"), nullable=False),
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch.lot"), nullable=False, index=True),
    sa.Column("attribute", sa.String(40), nullable=False),
    sa.Column("method", sa.String(40), nullable=False),
    sa.Column("method_version", sa.String(20), nullable=False),
    sa.Column("analyst", sa.String(50), nullable=False),
    sa.Column("instrument", sa.String(40), nullable=True),
    sa.Column("tested_at", UTCDateTime, nullable=False),
    sa.Column("entered_at", UTCDateTime, nullable=False),
    sa.Column("entered", sa.String(200), nullable=False),
    sa.Column("reported", sa.String(100), nullable=False),
    sa.Column("number", sa.Float, nullable=True),
    sa.Column("unit", sa.String(20), nullable=False),
    sa.Column("conformance", sa.String(16), nullable=False),
    sa.Column("oot", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("retest_of", sa.Integer, sa.ForeignKey("test_result.id"), nullable=True),
    sa.Column("verified_by", sa.String(50), nullable=True),
    sa.Column("verified_at", UTCDateTime, nullable=True),
    sa.Column("invalidated_by", sa.String(50), nullable=True),
    sa.Column("invalidated_at", UTCDateTime, nullable=True),
    sa.Column("invalid_reason", sa.Text, nullable=True),
    sa.Column("oot_reviewed_by", sa.String(50), nullable=True),
    sa.Column("oot_comment", sa.Text, nullable=True),
    sa.Index("ix_test_result_sample", "sample_id"),
    sa.Index("ix_test_result_attribute", "attribute", "status"),
)

oos_investigation = sa.Table(
    "oos_investigation",
    metadata,
    sa.Column("reference", sa.String(32), primary_key=True),
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch.lot"), nullable=False, index=True),
    sa.Column("result_id", sa.Integer, sa.ForeignKey("test_result.id"), nullable=False),
    sa.Column("phase", sa.Integer, nullable=False),
    sa.Column("phase_i_finding", sa.Text, nullable=True),
    sa.Column("outcome", sa.String(20), nullable=True),
    sa.Column("conclusion", sa.Text, nullable=True),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("closed_by", sa.String(50), nullable=True),
)

# Signed exceptions that stay visible on the batch and its certificate: QA's acceptance of an
# apheresis out of criteria, and the treating physician's request to release a dose OOS.
qc_exception = sa.Table(
    "qc_exception",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch.lot"), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("attributes", sa.String(400), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("document", sa.String(100), nullable=True),
    sa.Column("signed_by", sa.String(50), nullable=False),
    sa.Column("signed_at", UTCDateTime, nullable=False),
)

# A result left out of the limits of its control charts (phase I), with the reason; and
# its reinstatement, with the reason. Rows are written once, never changed (append-only):
# the last row of a result says whether it is excluded now.
spc_exclusion = sa.Table(
    "spc_exclusion",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("result_id", sa.Integer, sa.ForeignKey("test_result.id"), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # "excluded" or "reinstated"
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("decided_by", sa.String(50), nullable=False),
    sa.Column("decided_at", UTCDateTime, nullable=False),
    sa.Index("ix_spc_exclusion_result", "result_id"),
)

# A conditional release waits for its pending results: FINAL when they conform, FAILED when
# one does not (the treating centre is alerted).
conditional_release = sa.Table(
    "conditional_release",
    metadata,
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch.lot"), primary_key=True),
    sa.Column("pending", sa.String(400), nullable=False),
    sa.Column("released_at", UTCDateTime, nullable=False),
    sa.Column("released_by", sa.String(50), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("result_id", sa.Integer, sa.ForeignKey("test_result.id"), nullable=True),
)

qc_alert = sa.Table(
    "qc_alert",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch.lot"), nullable=False, index=True),
    sa.Column("treatment_centre", sa.String(32), sa.ForeignKey("site.code"), nullable=False),
    sa.Column("result_id", sa.Integer, sa.ForeignKey("test_result.id"), nullable=False),
    sa.Column("deviation", sa.String(32), sa.ForeignKey("deviation.reference"), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("raised_at", UTCDateTime, nullable=False),
    sa.Column("acknowledged_by", sa.String(50), nullable=True),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("acknowledgement", sa.Text, nullable=True),
)

# QA's signed review of a completed batch record (review by exception), before release.
record_review = sa.Table(
    "record_review",
    metadata,
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch_record.lot"), primary_key=True),
    sa.Column("reviewed_by", sa.String(50), nullable=False),
    sa.Column("reviewed_at", UTCDateTime, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
)

# Instruments' readings (issue 10): one row per reading, identified by equipment, sensor and
# the publisher's sequence number (a reading delivered twice is stored once). Raw data:
# written once, never changed (append-only). ``received_at`` is when the ingest stored it.
sensor_reading = sa.Table(
    "sensor_reading",
    metadata,
    sa.Column("equipment", sa.String(48), primary_key=True),
    sa.Column("sensor", sa.String(48), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("site", sa.String(48), nullable=False),
    sa.Column("measured_at", UTCDateTime, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("unit", sa.String(16), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Index("ix_sensor_reading_time", "equipment", "sensor", "measured_at"),
)

# A message that was not a reading, kept with the reason it was refused (never dropped).
reading_quarantine = sa.Table(
    "reading_quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(300), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
)

# A step running on a piece of equipment (issue 10): from ``started_at`` (the operator
# started the step on it) until ``ended_at`` (the step recorded, or the use ended by hand).
# What links a reading to a batch step: the equipment and the time.
equipment_use = sa.Table(
    "equipment_use",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("equipment_id", sa.String(32), sa.ForeignKey("equipment.id"), nullable=False),
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch.lot"), nullable=False),
    sa.Column("step_id", sa.String(64), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("started_by", sa.String(50), nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("ended_by", sa.String(50), nullable=True),
    sa.Index("ix_equipment_use_equipment", "equipment_id", "started_at"),
    sa.Index("ix_equipment_use_lot", "lot"),
    # one step at a time on a unit, whatever two people do at the same moment
    sa.Index(
        "uq_equipment_use_open",
        "equipment_id",
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    ),
)

# An alarm a monitored sensor raised against the range of the step running on its equipment
# (kind high or low), or a silent one (no-data). Cleared when the value comes back (or the
# sensor is heard again); acknowledged by a person with an e-signature; ``deviation`` is the
# one it opened where the MBR says so.
alarm = sa.Table(
    "alarm",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("site", sa.String(48), nullable=False),
    sa.Column("equipment", sa.String(48), nullable=False),
    sa.Column("sensor", sa.String(48), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("lot", sa.String(32), sa.ForeignKey("batch.lot"), nullable=True),
    sa.Column("step_id", sa.String(64), nullable=True),
    sa.Column("limits", sa.String(80), nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("raised_at", UTCDateTime, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("cleared_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_by", sa.String(50), nullable=True),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("deviation", sa.String(32), sa.ForeignKey("deviation.reference"), nullable=True),
    sa.Index("ix_alarm_open", "acknowledged_at", "raised_at"),
    sa.Index("ix_alarm_equipment", "equipment", "sensor", "raised_at"),
)
