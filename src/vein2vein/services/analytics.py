"""Statistics over the records (DESIGN §8): control charts, capability and the signals a
process scientist should look at. One place for the CLI, the API and the pages.

The store's records become DataFrames (store/frames.py); analytics/ computes; nothing here
re-implements a statistic. The only writes are a result's exclusion from (and reinstatement
in) the limits of its charts: QA's decision on a result of its plant, with the reason and
the audit record, in one transaction.

A chart of a stored attribute is of individuals (one result per batch) unless EWMA or CUSUM
is asked for. Phase I: its limits come from the first ``baseline`` points (by default the
first :data:`DEFAULT_BASELINE` when there are more than :data:`MIN_FOR_PHASE_II`, else all of
them), minus the points excluded with a recorded reason (a known special cause: a
confirmed OOS, a laboratory event). Phase II: every later point, excluded or not, is judged
against those limits by the run rules. An exclusion touches nothing else: capability and
comparability count every result, because every result is a dose that was made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd

from vein2vein.analytics.capability import Capability, capability
from vein2vein.analytics.control_charts import (
    RULES,
    ChartResult,
    CusumChart,
    EwmaChart,
    IndividualsChart,
    XbarRChart,
    XbarSChart,
    attribute_chart,
)
from vein2vein.domain.errors import InvalidInput, NotFound, RuleViolation
from vein2vein.domain.events import Event
from vein2vein.domain.people import Actor
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.process import Range
from vein2vein.domain.qc import ResultStatus
from vein2vein.domain.specification import Attribute, Kind, Stage
from vein2vein.formats.table import Column
from vein2vein.services.app import App
from vein2vein.services.authorise import authorise, batch_sites, check_permission, require
from vein2vein.services.specs import effective_spec
from vein2vein.store import frames
from vein2vein.store.qc import SpecRepository

__all__ = [
    "CHARTS",
    "DEFAULT_BASELINE",
    "CapabilityView",
    "ChartView",
    "Series",
    "Signal",
    "capability_of",
    "capability_of_series",
    "chart_of",
    "column_chart",
    "control_chart",
    "exclude_from_baseline",
    "numeric_attributes",
    "phase_ii_counts",
    "reinstate_in_baseline",
    "series",
    "series_from_column",
    "signals",
]

CHARTS = ("individuals", "ewma", "cusum")
DEFAULT_BASELINE = 20
MIN_FOR_PHASE_II = 25
RECENT = 15
ONGOING = 8  # of the latest RECENT points in a violation: a shift going on now
WE_RULES = ("WE1", "WE2", "WE3", "WE4")


@dataclass(frozen=True)
class Series:
    """The verified results of one attribute at one stage of a product (at one site, or
    across the network), oldest test first, with the specification they were judged by."""

    product: str
    stage: str
    attribute: Attribute
    site: str | None
    points: pd.DataFrame  # frames.RESULT_COLUMNS + excluded (reason or "")

    @property
    def values(self) -> np.ndarray:
        values: np.ndarray = self.points["value"].to_numpy(dtype=np.float64)
        return values

    @property
    def label(self) -> str:
        where = self.site or "all sites"
        return f"{self.attribute.title} ({self.stage}), {self.product}, {where}"


def _stage(stage: str) -> Stage:
    try:
        return Stage(stage)
    except ValueError:
        raise InvalidInput(
            f"stage {stage!r}: expected one of {', '.join(s.value for s in Stage)}"
        ) from None


def numeric_attributes(app: App, by: Actor, product: str, stage: str) -> list[Attribute]:
    """The attributes of the effective specification that have numbers to chart."""
    require(by, "qc.read")
    with app.reader() as connection:
        _, spec = effective_spec(SpecRepository(connection), product, _stage(stage))
    return [a for a in spec.attributes if a.kind in (Kind.NUMERIC, Kind.MULTI)]


def series(
    app: App, by: Actor, *, product: str, stage: str, attribute: str, site: str | None = None
) -> Series:
    """The points of ``attribute``; refused, naming the choices, when the effective
    specification has no such numeric attribute, and when there are no results."""
    require(by, "qc.read")
    with app.reader() as connection:
        _, spec = effective_spec(SpecRepository(connection), product, _stage(stage))
        known = [a for a in spec.attributes if a.kind in (Kind.NUMERIC, Kind.MULTI)]
        chosen = next((a for a in known if a.name == attribute), None)
        if chosen is None:
            raise InvalidInput(
                f"attribute {attribute!r}: the {stage} specification of {product} has no such "
                f"numeric attribute; expected one of {', '.join(a.name for a in known)}"
            )
        points = frames.results_frame(
            connection,
            product=product,
            stage=stage,
            attribute=attribute,
            site=site.upper() if site else None,
        )
        # A retest stands in place of the result it repeats: one point per batch.
        points = points.drop_duplicates(subset="lot", keep="last").reset_index(drop=True)
        excluded = frames.exclusions(connection, points["result_id"].tolist())
    if points.empty:
        where = f" at {site.upper()}" if site else ""
        raise NotFound(f"no verified results of {attribute} ({stage}) for {product}{where}")
    points["excluded"] = [
        excluded[r].reason if r in excluded else "" for r in points["result_id"].tolist()
    ]
    return Series(product, stage, chosen, site.upper() if site else None, points)


@dataclass(frozen=True)
class ChartView:
    series: Series
    chart: str
    baseline: int  # points 0..baseline-1 set the limits (phase I); the rest are monitored
    excluded: tuple[int, ...]  # known special causes (with reasons): they set no limit
    result: ChartResult

    @property
    def phase_ii_violations(self) -> dict[str, int]:
        """Per rule, how many violations end among the monitored points."""
        return phase_ii_counts(self.result, self.baseline)

    def flagged(self) -> list[int]:
        """Every point that takes part in a violation, once each."""
        points: set[int] = set()
        for rule in self.result.violations.counts():
            points.update(self.result.violations.points(rule).tolist())
        return sorted(points)


def phase_ii_counts(result: ChartResult, baseline: int) -> dict[str, int]:
    """Per rule, how many violations of ``result`` end after its ``baseline`` points."""
    counts: dict[str, int] = {}
    for violation in result.violations:
        if violation.points[-1] >= baseline:
            counts[violation.rule] = counts.get(violation.rule, 0) + 1
    return counts


Chart = IndividualsChart | EwmaChart | CusumChart


def _fit(kind: str, baseline: np.ndarray, exclude: list[int], rules: Sequence[str]) -> Chart:
    if kind == "individuals":
        return IndividualsChart(rules=tuple(rules)).fit(baseline, exclude=exclude)
    if kind == "ewma":
        return EwmaChart().fit(baseline, exclude=exclude)
    if kind == "cusum":
        return CusumChart().fit(baseline, exclude=exclude)
    raise InvalidInput(f"chart {kind!r}: expected one of {', '.join(CHARTS)}")


def default_baseline(n: int) -> int:
    return DEFAULT_BASELINE if n > MIN_FOR_PHASE_II else n


def chart_of(
    s: Series,
    *,
    chart: str = "individuals",
    baseline: int | None = None,
    rules: Sequence[str] = tuple(RULES),
) -> ChartView:
    """The control chart of a series; an individuals chart applies ``rules``."""
    n = len(s.points)
    if baseline is None:
        baseline = default_baseline(n)
    if not 2 <= baseline <= n:
        raise InvalidInput(f"baseline {baseline}: expected 2 to {n} (the number of points)")
    excluded = [i for i, why in enumerate(s.points["excluded"].tolist()) if why]
    in_baseline = [i for i in excluded if i < baseline]
    if baseline - len(in_baseline) < 2:
        raise InvalidInput(
            f"baseline {baseline}: {len(in_baseline)} of its points are excluded; fewer than 2 "
            "remain to set limits"
        )
    fitted = _fit(chart, s.values[:baseline], in_baseline, rules)
    return ChartView(s, chart, baseline, tuple(excluded), fitted.evaluate(s.values))


def control_chart(
    app: App,
    by: Actor,
    *,
    product: str,
    stage: str,
    attribute: str,
    site: str | None = None,
    chart: str = "individuals",
    baseline: int | None = None,
    rules: Sequence[str] = tuple(RULES),
) -> ChartView:
    if chart not in CHARTS:
        raise InvalidInput(f"chart {chart!r}: expected one of {', '.join(CHARTS)}")
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise InvalidInput(f"rules {', '.join(unknown)}: expected among {', '.join(RULES)}")
    s = series(app, by, product=product, stage=stage, attribute=attribute, site=site)
    return chart_of(s, chart=chart, baseline=baseline, rules=rules)


@dataclass(frozen=True)
class CapabilityView:
    series: Series
    capability: Capability


def capability_of(
    app: App, by: Actor, *, product: str, stage: str, attribute: str, site: str | None = None
) -> CapabilityView:
    """Capability against the effective specification's limits, of every result."""
    s = series(app, by, product=product, stage=stage, attribute=attribute, site=site)
    return capability_of_series(s)


def capability_of_series(s: Series) -> CapabilityView:
    limits = s.attribute.limits
    if limits.low is None and limits.high is None:
        raise InvalidInput(
            f"{s.attribute.name}: no specification limit to compare with (give --lsl or --usl)"
        )
    # Every result counts here, an excluded one too: it was made and it is what the patient
    # got (an exclusion only keeps a known special cause out of the chart's limits).
    found = capability(s.values, lsl=limits.low, usl=limits.high)
    # Capability describes a stable process; a chart that signals says it is not one.
    if len(s.points) > MIN_FOR_PHASE_II:
        broken = chart_of(s, rules=WE_RULES).phase_ii_violations
        if broken:
            rules = ", ".join(f"{rule} ×{n}" for rule, n in broken.items())
            found = replace(
                found,
                warnings=(
                    *found.warnings,
                    f"the process is not in statistical control ({rules} on its control "
                    "chart): the indices describe a mix of states, not a stable process",
                ),
            )
    return CapabilityView(s, found)


def series_from_column(
    column: Column,
    *,
    lsl: float | None = None,
    usl: float | None = None,
    exclude: Mapping[int, str] | None = None,
) -> Series:
    """A user's own data (formats/table.py) as a series: ``exclude`` maps a point's index
    (0-based) to the reason it is left out of the baseline."""
    excluded = dict(exclude or {})
    n = len(column.values)
    for index, why in excluded.items():
        if not 0 <= index < n:
            raise InvalidInput(f"excluded point {index + 2}: the file has rows 2 to {n + 1}")
        if len((why or "").strip()) < 3:
            raise InvalidInput(f"excluded point {index + 2}: give the reason it is left out")
    if lsl is not None and usl is not None and lsl >= usl:
        raise InvalidInput(f"lsl {lsl:g} is not below usl {usl:g}")
    attribute = Attribute(
        column.name, column.name, "user data", Kind.NUMERIC, limits=Range(lsl, usl)
    )
    points = pd.DataFrame(
        {
            "result_id": range(-1, -n - 1, -1),
            "lot": list(column.labels),
            "site": list(column.groups),
            "value": np.asarray(column.values, dtype=np.float64),
            "tested_at": pd.NaT,
            "excluded": [excluded.get(i, "").strip() for i in range(n)],
        }
    )
    return Series("", "", attribute, None, points)


SUBGROUP_CHARTS = ("xbar-r", "xbar-s")
COUNT_CHARTS = ("p", "np", "c", "u")


def column_chart(
    column: Column,
    *,
    chart: str,
    subgroup: int | None = None,
    sizes: Column | None = None,
    baseline: int | None = None,
) -> tuple[ChartResult, int]:
    """A user's own data on a chart of subgroups (X̄-R, X̄-S: consecutive values in
    subgroups of ``subgroup``; an incomplete last subgroup is refused) or of counts (p, np:
    defectives in samples of ``sizes``; c: defects; u: defects per unit in ``sizes``).
    Returns the chart and its baseline (the subgroups or samples that set the limits)."""
    values = np.asarray(column.values, dtype=np.float64)
    if chart in SUBGROUP_CHARTS:
        if subgroup is None or subgroup < 2:
            raise InvalidInput(
                f"{chart} chart: give --subgroup, the size of a subgroup (2 or more)"
            )
        if len(values) % subgroup:
            raise InvalidInput(
                f"{chart} chart: {len(values)} values do not make whole subgroups of {subgroup}"
            )
        data = values.reshape(-1, subgroup)
        base = baseline or default_baseline(len(data))
        _check_baseline(base, len(data))
        cls = XbarRChart if chart == "xbar-r" else XbarSChart
        return cls().fit(data[:base]).evaluate(data), base
    if chart in COUNT_CHARTS:
        n = None
        if chart != "c":
            if sizes is None:
                raise InvalidInput(f"{chart} chart: give --sizes, the column of sample sizes")
            n = np.asarray(sizes.values, dtype=np.float64)
        base = baseline or default_baseline(len(values))
        _check_baseline(base, len(values))
        return attribute_chart(chart, values, n, baseline=slice(0, base)), base
    raise InvalidInput(
        f"chart {chart!r}: expected one of {', '.join(CHARTS + SUBGROUP_CHARTS + COUNT_CHARTS)}"
    )


def _check_baseline(baseline: int, n: int) -> None:
    if not 2 <= baseline <= n:
        raise InvalidInput(f"baseline {baseline}: expected 2 to {n} (the number of points)")


@dataclass(frozen=True)
class Signal:
    """A chart whose monitored points break run rules: where to look first."""

    stage: str
    attribute: str
    title: str
    site: str
    points: int
    rules: dict[str, int]
    first_lot: str
    first_at: datetime
    recent: int  # points among the last RECENT that take part in a violation

    @property
    def violations(self) -> int:
        return sum(self.rules.values())

    @property
    def ongoing(self) -> bool:
        """Most of the latest points take part: the process has shifted and stays shifted."""
        return self.recent >= ONGOING


def signals(app: App, by: Actor, product: str) -> list[Signal]:
    """Every individuals chart (per stage, numeric attribute and manufacturing site) with
    enough points for phase II whose monitored points break a Western Electric rule (the
    Nelson rules add false alarms across dozens of charts; a chart's page applies them
    all). Those whose latest :data:`RECENT` points are most involved first (a shift going
    on now), then the most broken."""
    require(by, "qc.read")
    found: list[Signal] = []
    with app.reader() as connection:
        specs = SpecRepository(connection)
        frame = frames.results_frame(connection, product=product)
        ids = frame["result_id"].tolist()
        excluded = frames.exclusions(connection)
        attributes: dict[tuple[str, str], Attribute] = {}
        for stage in (Stage.STARTING_MATERIAL, Stage.RELEASE):
            try:
                _, spec = effective_spec(specs, product, stage)
            except RuleViolation:  # the product has no such specification: nothing to chart
                continue
            for a in spec.attributes:
                if a.kind in (Kind.NUMERIC, Kind.MULTI):
                    attributes[(stage.value, a.name)] = a
    frame["excluded"] = [excluded[r].reason if r in excluded else "" for r in ids]
    for (stage, site, name), points in frame.groupby(["stage", "site", "attribute"]):
        attribute = attributes.get((str(stage), str(name)))
        points = points.drop_duplicates(subset="lot", keep="last").reset_index(drop=True)
        if attribute is None or len(points) <= MIN_FOR_PHASE_II:
            continue
        view = chart_of(Series(product, str(stage), attribute, str(site), points), rules=WE_RULES)
        rules = view.phase_ii_violations
        if not rules:
            continue
        first = min(v.points[-1] for v in view.result.violations if v.points[-1] >= view.baseline)
        recent = sum(1 for i in view.flagged() if i >= len(points) - RECENT)
        found.append(
            Signal(
                str(stage),
                attribute.name,
                attribute.title,
                str(site),
                len(points),
                rules,
                str(points["lot"].iloc[first]),
                points["tested_at"].iloc[first].to_pydatetime(),
                recent,
            )
        )
    # What is happening now first: a sustained shift flags many of the latest points.
    found.sort(key=lambda s: (-s.recent, -s.violations, s.site, s.attribute))
    return found


def exclude_from_baseline(
    app: App,
    by: Actor,
    result_id: int,
    *,
    reason: str,
    chart: tuple[str, str, str] | None = None,
) -> None:
    """Leave result ``result_id`` out of the limits of its charts (phase I), with the reason:
    an assignable cause, a known laboratory or process event. QA decides, for a verified
    result of its plant; the point stays on the chart and is judged like any other.
    ``chart`` (product, stage, attribute): refused unless the result is a point of it."""
    _decide(app, by, result_id, frames.EXCLUDED, reason, chart)


def reinstate_in_baseline(app: App, by: Actor, result_id: int, *, reason: str) -> None:
    """Put an excluded result back into the limits of its charts, with the reason (the
    exclusion and its reason stay on record)."""
    _decide(app, by, result_id, frames.REINSTATED, reason, None)


def _decide(
    app: App,
    by: Actor,
    result_id: int,
    action: str,
    reason: str,
    chart: tuple[str, str, str] | None,
) -> None:
    verb = "exclusion" if action == frames.EXCLUDED else "reinstatement"
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise InvalidInput(
            f"{verb} of result {result_id}: give the reason (an assignable cause), "
            "at least 10 characters"
        )
    rule = rule_for("spc.exclude")
    uow = app.uow()
    with authorise(uow, by, "spc.exclude", entity=("result", str(result_id))):
        try:
            result = uow.qc.result(result_id)
        except NotFound:
            raise NotFound(f"result {result_id} does not exist") from None
        check_permission(by, rule, batch_sites(rule.where, uow.batches.get(result.lot)))
        if result.status is not ResultStatus.VERIFIED or result.number is None:
            raise InvalidInput(
                f"result {result_id} is {result.status.value}"
                f"{'' if result.number is not None else ', with no number'}: only a verified "
                "number is a point of a chart"
            )
        if chart is not None:
            product, stage, attribute = chart
            sample = uow.qc.sample(result.sample_id)
            batch = uow.batches.get(result.lot)
            if (batch.product, sample.stage.value, result.attribute) != chart:
                raise InvalidInput(
                    f"result {result_id} is not a point of the {attribute} ({stage}) chart "
                    f"of {product}"
                )
        excluded = result_id in frames.exclusions(uow.connection, [result_id])
        if excluded == (action == frames.EXCLUDED):
            raise InvalidInput(
                f"result {result_id} is "
                f"{'already excluded from' if excluded else 'not excluded from'} "
                "the limits of its charts"
            )
        now = uow.clock.now()
        frames.add_exclusion(
            uow.connection, result_id, action=action, reason=reason, by=by.user_id, at=now
        )
        uow.record(
            Event(
                "BaselineExclusionRecorded" if action == frames.EXCLUDED else "BaselineReinstated",
                by.user_id,
                now,
                "result",
                str(result_id),
                new={"lot": result.lot, "attribute": result.attribute},
                reason=reason,
            )
        )
        uow.commit()
