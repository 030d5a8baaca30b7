"""Analytics over the records, on SQLite and PostgreSQL: the reader, control charts with
baseline exclusions, signals, capability and specifications proposed from history.

One history per engine: 30 apheresis accepted at CP1 whose viability is steady for 22
batches and then falls by about four standard deviations (a shift the run rules must find),
and 4 batches released with known dose results.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from tests.conftest import postgres_schema, settings_for
from tests.network import (
    PASSWORD,
    act,
    advance,
    order,
    pass_acceptance,
    pass_release_qc,
    people_of,
    sign_in,
    small_network,
)
from vein2vein.analytics.capability import capability
from vein2vein.domain.batch import Action, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import InvalidInput, NotFound, PermissionDenied
from vein2vein.domain.people import Actor
from vein2vein.formats.spec import parse_spec
from vein2vein.services import analytics, people, spec_proposals, specs
from vein2vein.services import batches as svc
from vein2vein.services.app import App
from vein2vein.services.auth import Signing
from vein2vein.store import frames
from vein2vein.store import tables as t

PRODUCT = "CART-CD19"
STEADY = [95, 96, 94, 95, 97, 95, 94, 96, 95, 96, 95, 94, 96, 95, 97, 95, 96, 94, 95, 96, 95, 94]
SHIFTED = [91, 90, 91, 92, 90, 91, 90, 91]
DOSES = ["1.10", "1.25", "1.40", "1.05"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[App]:
    def build(url: str) -> App:
        clock = FixedClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
        app = App.connect(url, clock=clock, settings=settings_for(url))
        app.upgrade()
        small_network(app)
        for i, viability in enumerate(STEADY + SHIFTED):
            lot = order(app, f"PT-{i + 200:06d}")
            advance(app, lot, BatchState.RECEIVED, clock)
            pass_acceptance(app, lot, viability=str(viability))
            clock.advance(timedelta(hours=8))
        for i, dose in enumerate(DOSES):
            lot = order(app, f"PT-{i + 300:06d}")
            advance(app, lot, BatchState.QC_PENDING, clock)
            pass_release_qc(app, lot, dose=dose)
            act(app, lot, Action.RELEASE, reason="per SOP")
        return app

    if request.param == "sqlite":
        app = build(f"sqlite:///{tmp_path_factory.mktemp('analytics') / 'v2v.sqlite3'}")
        yield app
        app.dispose()
    else:
        with postgres_schema(request.getfixturevalue("_postgres_available")) as url:
            app = build(url)
            yield app
            app.dispose()


def qa(app: App) -> Actor:
    return people_of(app).qa.actor


def test_the_reader_gives_verified_results_with_batch_site_and_state(history: App) -> None:
    with history.reader() as c:
        frame = frames.results_frame(c, product=PRODUCT, stage="starting-material",
                                     attribute="viability")  # fmt: skip
    assert frame["value"].tolist()[: len(STEADY) + len(SHIFTED)] == STEADY + SHIFTED
    assert set(frame["site"]) == {"CP1"}
    assert frame["tested_at"].is_monotonic_increasing
    released = frame[frame["state"] == "RELEASED"]
    assert len(released) == len(DOSES)


def test_the_chart_finds_the_shift_after_its_baseline(history: App) -> None:
    view = analytics.control_chart(history, qa(history), product=PRODUCT,
                                   stage="starting-material", attribute="viability")  # fmt: skip
    n = len(STEADY) + len(SHIFTED) + len(DOSES)
    assert view.baseline == analytics.DEFAULT_BASELINE and len(view.result.values) == n
    base = np.array(STEADY[: view.baseline], dtype=float)
    assert view.result.center[0] == pytest.approx(base.mean())
    sigma = np.abs(np.diff(base)).mean() / 1.128379
    assert view.result.ucl[0] == pytest.approx(base.mean() + 3 * sigma, rel=1e-5)
    # Eight points four sigma low: beyond 3 sigma (WE1) and runs below the line (WE2-WE4).
    broken = view.phase_ii_violations
    assert {"WE1", "WE2", "WE3", "WE4"} <= set(broken)
    first_shifted = len(STEADY)
    assert min(view.result.violations.points("WE1")) == first_shifted
    # Every violation completes on a shifted point (a window may reach back before it: two
    # steady points just below the centre line start the run of WE4); each shifted point is
    # flagged.
    assert min(v.points[-1] for v in view.result.violations) >= first_shifted
    assert set(range(first_shifted, first_shifted + len(SHIFTED))) <= set(view.flagged())


def test_signals_name_the_shifted_series_first(history: App) -> None:
    found = analytics.signals(history, qa(history), PRODUCT)
    top = found[0]
    assert (top.stage, top.attribute, top.site) == ("starting-material", "viability", "CP1")
    assert set(top.rules) <= set(analytics.WE_RULES) and top.recent > 0
    assert top.first_lot.startswith("CP1-")


def test_capability_uses_the_specification_limits_and_the_analytics_numbers(history: App) -> None:
    view = analytics.capability_of(history, qa(history), product=PRODUCT,
                                   stage="starting-material", attribute="viability")  # fmt: skip
    lsl = view.series.attribute.limits.low
    assert lsl is not None and view.capability.lsl == lsl
    expected = capability(view.series.values, lsl=lsl, usl=view.series.attribute.limits.high)
    assert view.capability.cpk.estimate == pytest.approx(expected.cpk.estimate)
    # The shift makes the indices describe two states: said, with the rules broken.
    assert any("not in statistical control (WE1" in w for w in view.capability.warnings)


def test_bad_requests_name_what_is_wrong(history: App) -> None:
    who = qa(history)
    with pytest.raises(InvalidInput, match=r"identity.*expected one of"):
        analytics.control_chart(history, who, product=PRODUCT, stage="release",
                                attribute="identity")  # fmt: skip
    with pytest.raises(InvalidInput, match="stage 'final'"):
        analytics.control_chart(history, who, product=PRODUCT, stage="final", attribute="x")
    with pytest.raises(NotFound, match=r"no verified results of viability .* at POC9"):
        analytics.control_chart(history, who, product=PRODUCT, stage="starting-material",
                                attribute="viability", site="POC9")  # fmt: skip
    with pytest.raises(InvalidInput, match="chart 'xbar'"):
        analytics.control_chart(history, who, product=PRODUCT, stage="starting-material",
                                attribute="viability", chart="xbar")  # fmt: skip
    with pytest.raises(InvalidInput, match="baseline 99"):
        analytics.control_chart(history, who, product=PRODUCT, stage="starting-material",
                                attribute="viability", baseline=99)  # fmt: skip


def test_a_proposal_counts_the_released_batches_it_would_have_failed(history: App) -> None:
    found = spec_proposals.propose(history, qa(history), product=PRODUCT, stage="release",
                                   attribute="dose", coverage=0.9, confidence=0.9)  # fmt: skip
    values = sorted(float(d) for d in DOSES)
    assert sorted(found.values) == values and found.sides == "both"
    normal = found.proposals[0]
    assert normal.method == "normal tolerance" and normal.k is not None
    mean, sd = np.mean(values), np.std(values, ddof=1)
    assert normal.low == pytest.approx(np.floor((mean - normal.k * sd) * 100) / 100)
    assert normal.high == pytest.approx(np.ceil((mean + normal.k * sd) * 100) / 100)
    assert normal.would_fail == () and found.current_would_fail == ()
    assert found.warnings == ()  # four batches: too few for a chart to judge
    # Four points cannot carry a distribution-free interval at this coverage: said, not faked.
    assert any("nonparametric" in why for why in found.skipped)
    # Only released batches are history: the 30 accepted apheresis were not made into doses.
    accepted = spec_proposals.propose(history, qa(history), product=PRODUCT,
                                      stage="starting-material", attribute="viability")  # fmt: skip
    assert len(accepted.values) == len(DOSES)
    with pytest.raises(InvalidInput, match="sides 'up'"):
        spec_proposals.propose(history, qa(history), product=PRODUCT, stage="release",
                               attribute="dose", sides="up")  # fmt: skip
    with pytest.raises(InvalidInput, match="not a numeric attribute"):
        spec_proposals.propose(history, qa(history), product=PRODUCT, stage="release",
                               attribute="identity")  # fmt: skip


# -- writes last: they change what the reading tests above see ----------------------------


def test_an_exclusion_is_qa_s_decision_with_a_reason_for_its_plant_and_can_be_reversed(
    history: App,
) -> None:
    crew = people_of(history)
    who = crew.qa.actor
    view = analytics.control_chart(history, who, product=PRODUCT,
                                   stage="starting-material", attribute="viability")  # fmt: skip
    result_id = int(view.series.points["result_id"].iloc[3])
    reason = "sample haemolysed in transit (assignable)"
    before = _count(history, t.spc_exclusion)
    with pytest.raises(InvalidInput, match="give the reason"):
        analytics.exclude_from_baseline(history, who, result_id, reason="  ")
    for refused in ("operator.cp1", "qc.cp1"):  # QA decides, not the laboratory
        with pytest.raises(PermissionDenied):
            analytics.exclude_from_baseline(history, crew[refused].actor, result_id,
                                            reason=reason)  # fmt: skip
    # QA of another plant may not decide on CP1's results.
    admin = crew.admin.actor
    svc.register_site(history.uow(), code="CP9", name="Another plant",
                      kind="manufacturing-facility", fin="G1239", by=admin)  # fmt: skip
    people.create_user(history.uow(), admin, user_id="qa.cp9", full_name="Other QA",
                       roles=["qa-reviewer"], sites="CP9", password=PASSWORD,
                       must_change_password=False)  # fmt: skip
    with pytest.raises(PermissionDenied):
        analytics.exclude_from_baseline(history, sign_in(history, "qa.cp9").actor, result_id,
                                        reason=reason)  # fmt: skip
    with pytest.raises(NotFound):
        analytics.exclude_from_baseline(history, who, 999_999, reason=reason)
    with pytest.raises(InvalidInput, match="not a point of the dose"):
        analytics.exclude_from_baseline(history, who, result_id, reason=reason,
                                        chart=(PRODUCT, "release", "dose"))  # fmt: skip
    with pytest.raises(InvalidInput, match="not excluded"):
        analytics.reinstate_in_baseline(history, who, result_id, reason=reason)
    assert _count(history, t.spc_exclusion) == before

    analytics.exclude_from_baseline(history, who, result_id, reason=reason,
                                    chart=(PRODUCT, "starting-material", "viability"))  # fmt: skip
    after = analytics.control_chart(history, who, product=PRODUCT,
                                    stage="starting-material", attribute="viability")  # fmt: skip
    assert after.excluded == (3,)
    assert after.series.points["excluded"].iloc[3] == reason
    kept = np.delete(np.array(STEADY[:20], dtype=float), 3)
    assert after.result.center[0] == pytest.approx(kept.mean())
    # Capability counts every result: the excluded one is a dose that was made.
    cap = analytics.capability_of(history, who, product=PRODUCT, stage="starting-material",
                                  attribute="viability")  # fmt: skip
    assert cap.capability.n == len(after.series.points)
    assert _last_audit(history) == ("BaselineExclusionRecorded", str(result_id))
    with pytest.raises(InvalidInput, match="already excluded"):
        analytics.exclude_from_baseline(history, who, result_id, reason=reason)

    analytics.reinstate_in_baseline(history, who, result_id,
                                    reason="haemolysis ruled out on re-reading")  # fmt: skip
    again = analytics.control_chart(history, who, product=PRODUCT,
                                    stage="starting-material", attribute="viability")  # fmt: skip
    assert again.excluded == ()
    assert again.result.center[0] == pytest.approx(np.mean(STEADY[:20]))
    assert _last_audit(history) == ("BaselineReinstated", str(result_id))
    with history.reader() as c:
        rows = c.execute(sa.select(t.spc_exclusion.c.action, t.spc_exclusion.c.reason)
                         .order_by(t.spc_exclusion.c.id)).all()  # fmt: skip
    assert [r.action for r in rows[-2:]] == ["excluded", "reinstated"]  # both kept
    # The table is history: no update, no delete, on either engine.
    with pytest.raises(sa.exc.DBAPIError), history.engine.begin() as c:
        c.execute(sa.delete(t.spc_exclusion))


def _last_audit(app: App) -> tuple[str, str]:
    with app.reader() as c:
        row = c.execute(
            sa.select(t.audit_record.c.action, t.audit_record.c.entity_id)
            .order_by(t.audit_record.c.seq.desc()).limit(1)).one()  # fmt: skip
    return str(row.action), str(row.entity_id)


def test_a_saved_proposal_is_a_draft_of_the_next_version_with_only_that_limit_changed(
    history: App,
) -> None:
    crew = people_of(history)
    version = spec_proposals.save_proposal(
        history, crew.qa.actor, product=PRODUCT, stage="release", attribute="dose",
        low=0.75, high=1.9, reason="tolerance interval 90/90 of the released batches",
    )  # fmt: skip
    assert (version.code, version.version, version.status) == ("CART-CD19-REL", 2, "DRAFT")
    _, draft = specs.show_spec(history, crew.qa.actor, "CART-CD19-REL", 2)
    _, current = specs.show_spec(history, crew.qa.actor, "CART-CD19-REL", 1)
    assert draft.attribute("dose").limits.low == 0.75
    assert draft.attribute("dose").limits.high == 1.9
    for a, b in zip(draft.attributes, current.attributes, strict=True):
        if a.name != "dose":
            assert a == b
    with history.reader() as c:
        source = c.execute(
            sa.select(t.specification.c.source).where(t.specification.c.version == 2,
                t.specification.c.code == "CART-CD19-REL")).scalar_one()  # fmt: skip
    assert source.startswith("# Version 2: limits of dose proposed from the history")
    assert parse_spec(source).version == 2
    # Change control as for any specification: QA's signed approval makes it effective.
    specs.approve_spec(
        history.uow(), crew["qa2.cp1"], "CART-CD19-REL", 2,
        reason="limits from history", signing=Signing(PASSWORD, "qa2.cp1"),
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="reason"):
        spec_proposals.save_proposal(history, crew.qa.actor, product=PRODUCT, stage="release",
                                     attribute="dose", low=0.7, high=None, reason="")  # fmt: skip


def _count(app: App, table: sa.Table) -> int:
    with app.engine.connect() as c:
        return int(c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
