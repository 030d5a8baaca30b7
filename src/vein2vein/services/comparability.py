"""Comparability and starting material → outcome, over the records (DESIGN §8).

- :func:`compare_groups`: are doses made at two sites (or by two processes) the same? Per
  attribute of the release (or any) specification: n, mean and SD of each group, TOST with
  its stated margin and the quality range, and the conclusion (analytics/comparability.py).
- :func:`outcome_study`: how the apheresis (CD3+ share, viability, counts) and the patient
  (age, weight) predict the batch's outcome, and what a stricter acceptance criterion would
  have done to the history (analytics/outcome.py).

Prior lines of therapy are not recorded by vein2vein, so they are not among the
predictors; a user's own CSV file with that column can be studied from the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from vein2vein.analytics.comparability import AttributeComparison, compare_attribute
from vein2vein.analytics.outcome import OutcomeModel, TighteningRow, fit_outcome, tightening
from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.people import Actor
from vein2vein.domain.specification import Attribute, Conformance, Kind, Stage
from vein2vein.services.app import App
from vein2vein.services.authorise import require
from vein2vein.services.mbr import effective_mbr
from vein2vein.services.specs import effective_spec
from vein2vein.store import frames
from vein2vein.store.qc import SpecRepository

__all__ = [
    "GROUPS",
    "OUTCOMES",
    "PREDICTORS",
    "Comparison",
    "OutcomeStudy",
    "compare_groups",
    "outcome_study",
]

GROUPS = ("site", "process")
MIN_PER_GROUP = 3


@dataclass(frozen=True)
class Comparison:
    product: str
    stage: str
    group: str  # the column compared: "site" or "process"
    reference: str
    test: str
    rows: list[AttributeComparison]
    attributes: dict[str, Attribute]  # by name, for titles and units
    values: dict[str, tuple[list[float], list[float]]]  # attribute → (reference, test)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (attribute, why)
    since: datetime | None = None
    # Per attribute, the out-of-specification results left out: (reference lots, test lots).
    out_of_spec: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)

    def out_of_spec_note(self) -> str:
        """What was left out, in a sentence (empty when nothing was)."""
        parts = [
            f"{self.attributes[a].title if a in self.attributes else a}: "
            + ", ".join(f"{len(lots)} of {who}" for who, lots in zip(
                (self.reference, self.test), pair, strict=True) if lots)
            for a, pair in self.out_of_spec.items()
        ]  # fmt: skip
        if not parts:
            return ""
        return (
            "Results out of specification are failed doses, counted apart and left out of "
            "the comparison of the process's normal output — " + "; ".join(parts) + "."
        )

    @property
    def equivalent(self) -> bool:
        return bool(self.rows) and all(r.conclusion == "equivalent" for r in self.rows)


def compare_groups(
    app: App,
    by: Actor,
    *,
    product: str,
    reference: str,
    test: str,
    group: str = "site",
    stage: str = "release",
    attributes: Sequence[str] | None = None,
    margin: float | None = None,
    margin_sd: float = 1.5,
    alpha: float = 0.05,
    k: float = 3.0,
    since: datetime | None = None,
) -> Comparison:
    """Compare the ``test`` group with the ``reference`` group (two manufacturing sites, or
    two processes) on every numeric attribute of the effective ``stage`` specification (or
    the ``attributes`` named). The equivalence margin is ``margin`` when given (in the
    attribute's unit, for one attribute), else ``margin_sd`` × the reference SD, stated in
    each row. Results out of specification are left out and listed (failed doses, not the
    process's normal output); a result excluded from its chart's limits is not (that is a
    person's decision, not a judged fact). An attribute with fewer than 3 results in a
    group is skipped with the reason. ``since``: only results tested from then on (e.g.
    since a process change)."""
    require(by, "qc.read")
    if group not in GROUPS:
        raise InvalidInput(f"group {group!r}: expected one of {', '.join(GROUPS)}")
    if reference == test:
        raise InvalidInput(f"compare {reference} with itself: name two different {group}s")
    try:
        stage_ = Stage(stage)
    except ValueError:
        raise InvalidInput(f"stage {stage!r}: expected one of {', '.join(Stage)}") from None
    with app.reader() as connection:
        _, spec = effective_spec(SpecRepository(connection), product, stage_)
        frame = frames.results_frame(connection, product=product, stage=stage)
    numeric = {a.name: a for a in spec.attributes if a.kind in (Kind.NUMERIC, Kind.MULTI)}
    chosen = list(attributes) if attributes else list(numeric)
    if margin_sd <= 0 or (margin is not None and margin <= 0):
        raise InvalidInput("the equivalence margin must be above 0")
    if margin is not None and len(chosen) != 1:
        raise InvalidInput("a margin in the attribute's unit applies to one attribute: name it")
    unknown = [a for a in chosen if a not in numeric]
    if unknown:
        raise InvalidInput(
            f"attributes {', '.join(unknown)}: not numeric attributes of {spec.code}; "
            f"expected among {', '.join(numeric)}"
        )
    frame = frame.drop_duplicates(subset=["lot", "attribute"], keep="last")
    if since is not None:
        frame = frame[frame["tested_at"] >= pd.Timestamp(since)]
    known = sorted(str(g) for g in frame[group].dropna().unique())
    when = f" since {since:%Y-%m-%d}" if since is not None else ""
    for name in (reference, test):
        if name not in known:
            raise InvalidInput(
                f"{group} {name!r}: no {stage} results{when}; "
                + (f"expected one of {', '.join(known)}" if known else "there are none")
            )
    rows: list[AttributeComparison] = []
    values: dict[str, tuple[list[float], list[float]]] = {}
    skipped: list[tuple[str, str]] = []
    out_of_spec: dict[str, tuple[list[str], list[str]]] = {}
    for name in chosen:
        of = frame[frame["attribute"] == name]
        # A result out of specification is a failed dose (investigated, counted apart), not
        # the process's normal output: left out, and said so. The rule is the result's
        # conformance, judged at entry, not anyone's choice.
        oos = of["conformance"] == Conformance.OOS.value
        failed = tuple(
            [str(x) for x in of.loc[oos & (of[group] == g), "lot"]] for g in (reference, test)
        )
        if failed[0] or failed[1]:
            out_of_spec[name] = (failed[0], failed[1])
        of = of[~oos]
        ref = of.loc[of[group] == reference, "value"].to_numpy(dtype=np.float64)
        tst = of.loc[of[group] == test, "value"].to_numpy(dtype=np.float64)
        values[name] = (ref.tolist(), tst.tolist())
        if min(len(ref), len(tst)) < MIN_PER_GROUP:
            skipped.append((name, f"{len(ref)} and {len(tst)} results: at least 3 each needed"))
            continue
        try:
            rows.append(
                compare_attribute(
                    name, ref, tst, margin=margin, margin_sd=margin_sd, alpha=alpha, k=k
                )
            )
        except InvalidInput as exc:
            skipped.append((name, str(exc)))
    return Comparison(
        product, stage, group, reference, test, rows, numeric, values, skipped, since,
        out_of_spec,
    )  # fmt: skip


# -- starting material → outcome ---------------------------------------------------------

OUTCOMES = {
    "failed_dose": "the harvest's dose below the normal range of the MBR (failure to reach dose)",
    "log_fold_expansion": "natural log of the fold expansion in the batch record",
}
PREDICTORS = ("sm_cd3_percent", "sm_viability", "sm_cd3_cells", "age", "weight_kg")
PROCESS_TERM = "process="  # the 0/1 column of a process, against the first in name order


@dataclass(frozen=True)
class OutcomeStudy:
    product: str
    process: str | None
    outcome: str
    model: OutcomeModel
    criterion: str  # the attribute whose tightening is shown
    direction: str  # "min" or "max"
    tightening: tuple[TighteningRow, ...]
    batches: int
    failures: int
    frame: pd.DataFrame  # the batches studied, with the outcome columns


def outcome_frame(app: App, by: Actor, product: str, process: str | None) -> pd.DataFrame:
    """One row per batch with a record: starting material (``sm_*``), patient, and the
    outcome columns :data:`OUTCOMES`."""
    require(by, "qc.read")
    with app.reader() as connection:
        frame = frames.batch_outcomes(connection, product=product)
    if process is not None:
        known = sorted(frame["process"].unique())
        if process not in known:
            raise InvalidInput(f"process {process!r}: expected one of {', '.join(known)}")
        frame = frame[frame["process"] == process]
    frame = frame.dropna(subset=["dose_per_kg", "fold_expansion"]).copy()
    floors = {}
    for name in frame["process"].unique():
        nor = effective_mbr(app, str(name)).step("harvest_formulation").parameter("dose_per_kg").nor
        floors[name] = nor.low if nor.low is not None else -np.inf
    frame["failed_dose"] = (frame["dose_per_kg"] < frame["process"].map(floors)).astype(int)
    frame["log_fold_expansion"] = np.log(frame["fold_expansion"].astype(float))
    return frame.reset_index(drop=True)


def outcome_study(
    app: App,
    by: Actor,
    *,
    product: str,
    process: str | None = None,
    outcome: str = "failed_dose",
    predictors: Sequence[str] = PREDICTORS,
    criterion: str | None = None,
) -> OutcomeStudy:
    """Fit the model of ``outcome`` on ``predictors`` (logistic for failure to reach dose,
    linear for the log fold expansion), then count what a stricter minimum (or maximum) on
    ``criterion`` — by default the starting-material attribute that matters most — would
    have done: at the 10th to 50th percentiles of the attribute. Without ``process`` the
    batches of every process are studied together, with the process as a term."""
    if outcome not in OUTCOMES:
        raise InvalidInput(f"outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}")
    frame = outcome_frame(app, by, product, process)
    kind: Literal["logistic", "linear"] = "logistic" if outcome == "failed_dose" else "linear"
    terms = list(predictors)
    # Batches of several processes are compared within their process: one 0/1 column per
    # process beyond the first (processes differ in expansion and dose by design).
    processes = sorted(str(p) for p in frame["process"].unique())
    for other in processes[1:]:
        column = f"{PROCESS_TERM}{other}"
        frame[column] = (frame["process"] == other).astype(int)
        terms.append(column)
    model = fit_outcome(frame, outcome=outcome, predictors=terms, kind=kind)
    starting = [p for p in model.important if p.startswith("sm_")]
    chosen = criterion or (starting[0] if starting else "sm_cd3_percent")
    if chosen not in frame.columns:
        raise InvalidInput(f"criterion {chosen!r}: not a column of the study")
    # Which way is "stricter": the side that predicts failure (or poor expansion).
    coef = model.term(chosen).coef if chosen in model.predictors else 0.0
    worse_when_low = coef < 0 if kind == "logistic" else coef > 0
    direction = "min" if worse_when_low else "max"
    column = frame[chosen].dropna()
    qs = (0.1, 0.2, 0.3, 0.4, 0.5) if direction == "min" else (0.9, 0.8, 0.7, 0.6, 0.5)
    thresholds = sorted({round(float(column.quantile(q)), 2) for q in qs})
    failed_col = "failed_dose"
    rows = tightening(
        frame.dropna(subset=[chosen]),
        attribute=chosen,
        failed=failed_col,
        thresholds=thresholds,
        direction="min" if direction == "min" else "max",
    )
    return OutcomeStudy(
        product,
        process,
        outcome,
        model,
        chosen,
        direction,
        rows,
        len(frame),
        int(frame[failed_col].sum()),
        frame,
    )
