"""The thin reader of the analytics (DESIGN §8): the store's records as pandas DataFrames.

Nothing here computes a statistic; analytics/ computes, from these frames or from a user's
own CSV file alike. Only verified, standing results are read (an invalidated result is not
history), each with the batch, site, process and specification it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from vein2vein.domain.qc import ResultStatus
from vein2vein.store import tables as t

__all__ = [
    "EXCLUDED",
    "OUTCOME_PARAMETERS",
    "REINSTATED",
    "RESULT_COLUMNS",
    "Exclusion",
    "add_exclusion",
    "batch_outcomes",
    "exclusions",
    "results_frame",
]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A result left out of a control chart's baseline: who decided, when and why."""

    result_id: int
    reason: str
    excluded_by: str
    excluded_at: datetime


RESULT_COLUMNS = (
    "result_id",
    "lot",
    "product",
    "site",
    "state",
    "process",
    "process_version",
    "stage",
    "spec_code",
    "spec_version",
    "attribute",
    "value",
    "reported",
    "unit",
    "conformance",
    "oot",
    "tested_at",
    "verified_at",
)


def results_frame(
    connection: sa.Connection,
    *,
    product: str | None = None,
    stage: str | None = None,
    attribute: str | None = None,
    site: str | None = None,
) -> pd.DataFrame:
    """Verified, standing QC results with a number, one row each, oldest test first.

    Columns: :data:`RESULT_COLUMNS` (``value`` is the reported number, ``state`` the batch's
    state now; ``process`` and
    ``process_version`` are the batch record's, empty before processing started)."""
    r, b, s, rec = t.test_result, t.batch, t.qc_sample, t.batch_record
    query = (
        sa.select(
            r.c.id.label("result_id"),
            r.c.lot,
            b.c.product,
            b.c.manufacturing_site.label("site"),
            b.c.state,
            rec.c.process,
            rec.c.process_version,
            s.c.stage,
            s.c.spec_code,
            s.c.spec_version,
            r.c.attribute,
            r.c.number.label("value"),
            r.c.reported,
            r.c.unit,
            r.c.conformance,
            r.c.oot,
            r.c.tested_at,
            r.c.verified_at,
        )
        .join(b, b.c.lot == r.c.lot)
        .join(s, s.c.id == r.c.sample_id)
        .outerjoin(rec, rec.c.lot == r.c.lot)
        .where(r.c.status == ResultStatus.VERIFIED.value, r.c.number.is_not(None))
        .order_by(r.c.tested_at, r.c.id)
    )
    for column, value in (
        (b.c.product, product),
        (s.c.stage, stage),
        (r.c.attribute, attribute),
        (b.c.manufacturing_site, site),
    ):
        if value is not None:
            query = query.where(column == value)
    rows = connection.execute(query).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=list(RESULT_COLUMNS))
    frame["value"] = frame["value"].astype("float64")
    frame["oot"] = frame["oot"].astype(bool)
    return frame


# The batch record's values that say how a batch came out, by parameter name.
OUTCOME_PARAMETERS = ("fold_expansion", "dose_per_kg", "final_cells", "seeded_cells")


def batch_outcomes(connection: sa.Connection, *, product: str | None = None) -> pd.DataFrame:
    """One row per batch with a batch record: who the patient was (age at the order,
    weight), where and how it was made, its starting-material results (one column per
    attribute, ``sm_<attribute>``) and its record's outcome values (one column per
    :data:`OUTCOME_PARAMETERS`, the last recorded occurrence)."""
    b, o, p, rec = t.batch, t.therapy_order, t.patient, t.batch_record
    query = (
        sa.select(
            b.c.lot,
            b.c.product,
            b.c.manufacturing_site.label("site"),
            b.c.state,
            rec.c.process,
            rec.c.process_version,
            rec.c.patient_weight_kg.label("weight_kg"),
            o.c.ordered_at,
            p.c.year_of_birth,
        )
        .join(rec, rec.c.lot == b.c.lot)
        .join(o, o.c.reference == b.c.order_ref)
        .join(p, p.c.pseudonym == b.c.patient_pseudonym)
        .order_by(o.c.ordered_at, b.c.lot)
    )
    if product is not None:
        query = query.where(b.c.product == product)
    columns = [
        "lot",
        "product",
        "site",
        "state",
        "process",
        "process_version",
        "weight_kg",
        "ordered_at",
        "year_of_birth",
    ]
    batches = pd.DataFrame([tuple(row) for row in connection.execute(query)], columns=columns)
    ordered = pd.to_datetime(batches["ordered_at"], utc=True)
    batches["age"] = ordered.dt.year - batches["year_of_birth"]
    batches = batches.drop(columns=["year_of_birth"])

    sm = results_frame(connection, product=product, stage="starting-material")
    if len(sm):
        wide = sm.pivot_table(index="lot", columns="attribute", values="value", aggfunc="last")
        wide.columns = [f"sm_{name}" for name in wide.columns]
        batches = batches.merge(wide, left_on="lot", right_index=True, how="left")

    sr, sv = t.step_record, t.step_value
    values = connection.execute(
        sa.select(sr.c.lot, sv.c.name, sv.c.reported)
        .join(sv, sv.c.step_record_id == sr.c.id)
        .where(sv.c.name.in_(OUTCOME_PARAMETERS))
        .order_by(sr.c.lot, sr.c.occurrence)
    ).all()
    recorded = pd.DataFrame([tuple(v) for v in values], columns=["lot", "name", "value"])
    if len(recorded):
        wide = recorded.pivot_table(index="lot", columns="name", values="value", aggfunc="last")
        batches = batches.merge(wide, left_on="lot", right_index=True, how="left")
    for name in OUTCOME_PARAMETERS:
        if name not in batches:
            batches[name] = float("nan")
    return batches.reset_index(drop=True)


# -- control-chart baseline exclusions ----------------------------------------------------

EXCLUDED, REINSTATED = "excluded", "reinstated"


def add_exclusion(
    connection: sa.Connection,
    result_id: int,
    *,
    action: str,
    reason: str,
    by: str,
    at: datetime,
) -> None:
    """Record that result ``result_id`` is left out of (``excluded``) or put back into
    (``reinstated``) the limits of its charts, and why."""
    connection.execute(
        t.spc_exclusion.insert().values(
            result_id=result_id, action=action, reason=reason, decided_by=by, decided_at=at
        )
    )


def exclusions(
    connection: sa.Connection, result_ids: Iterable[int] | None = None
) -> dict[int, Exclusion]:
    """The results excluded now (their last decision is an exclusion), by result, among
    ``result_ids`` (all of them when None)."""
    x = t.spc_exclusion
    query = sa.select(x.c.result_id, x.c.action, x.c.reason, x.c.decided_by, x.c.decided_at)
    query = query.order_by(x.c.id)
    if result_ids is None:
        batches = [query]
    else:
        ids = list(result_ids)
        batches = [  # bounded IN lists
            query.where(x.c.result_id.in_(ids[i : i + 500])) for i in range(0, len(ids), 500)
        ]
    found: dict[int, Exclusion] = {}
    for batch in batches:
        for result_id, action, reason, by, at in connection.execute(batch):
            if action == EXCLUDED:
                found[result_id] = Exclusion(result_id, reason, by, at)
            else:
                found.pop(result_id, None)
    return found
