"""The demo network: every state, the notable cases, an audit trail that verifies, repeatable;
its batches run through the example MBRs, with records as a real network would have them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import postgres_schema, settings_for
from vein2vein.domain.batch import TRANSITIONS, Action, BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.identity import DEMONSTRATION_FINS
from vein2vein.domain.materials import DeviationState, LotStatus, Severity
from vein2vein.domain.patient import Patient
from vein2vein.domain.people import ALL_SITES, Actor, Role
from vein2vein.domain.process import Outcome
from vein2vein.services import mbr, queries, record_views
from vein2vein.services.app import App
from vein2vein.services.demo import DemoSummary, build_demo
from vein2vein.services.record_views import RecordView
from vein2vein.store import tables as t

SMALL = 24  # patients: enough for every state and the notable cases, quick on PostgreSQL
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # the `clock` fixture's moment
READER = Actor("qa.reader", "QA reader", frozenset({Role.QA_REVIEWER}), ALL_SITES)
PROCESS_OF = {"CP1": "CART-CD19-CONV", "POC1": "CART-CD19-RAPID", "POC2": "CART-CD19-RAPID"}
RELEASES = {TRANSITIONS[a].event for a in (Action.RELEASE, Action.RELEASE_CONDITIONALLY,
                                           Action.RELEASE_OOS, Action.CONFIRM_RELEASE)}  # fmt: skip


def audit_actions(app: App, lot: str) -> list[str]:
    return [e.action for e in reversed(queries.audit_log(app, lot=lot, limit=500))]


def lots_and_states(app: App) -> list[tuple[str, str]]:
    return sorted((row.lot, row.state) for row in queries.list_batches(app))


@contextmanager
def _built(url: str, patients: int) -> Iterator[tuple[App, DemoSummary]]:
    application = App.connect(url, clock=FixedClock(NOW), settings=settings_for(url))
    try:
        application.upgrade()
        yield application, build_demo(application, patients=patients)
    finally:
        application.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def network(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[App, DemoSummary]]:
    """One small demo network per engine, built once for the tests that only read it."""
    if request.param == "sqlite":
        with _built(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'v2v.sqlite3'}", SMALL) as built:
            yield built
    else:
        unavailable = request.getfixturevalue("_postgres_available")
        with postgres_schema(unavailable) as url, _built(url, SMALL) as built:
            yield built


@pytest.fixture(scope="module")
def default_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, DemoSummary]]:
    """The network `v2v demo build` builds (300 patients), on SQLite, built once."""
    with _built(f"sqlite:///{tmp_path_factory.mktemp('full') / 'v2v.sqlite3'}", 300) as built:
        yield built


def test_the_demo_network_has_a_batch_in_every_state_and_the_notable_cases(
    default_network: tuple[App, DemoSummary],
) -> None:
    sqlite_app, summary = default_network

    assert summary.sites == 9
    assert summary.patients == 300
    assert all(summary.by_state[state.value] > 0 for state in BatchState), summary.by_state
    stored = Counter(row.state for row in queries.list_batches(sqlite_app))
    assert summary.by_state == {state.value: stored[state.value] for state in BatchState}
    assert summary.batches == sum(summary.by_state.values())
    assert summary.audit_records == sqlite_app.audit_count()
    assert sqlite_app.verify_audit().ok
    assert summary.identity_mismatches == 1
    assert set(summary.notable) == {
        "identity-mismatch",
        "rejected-apheresis",
        "terminated",
        "on-hold",
        "released-oos",
        "in-process",
        "open-deviation",
        "closed-deviation",
        "corrected-value",
    }
    state_of = dict(lots_and_states(sqlite_app))
    assert state_of[summary.notable["rejected-apheresis"]] == "REJECTED"
    assert "StartingMaterialRejected" in audit_actions(
        sqlite_app, summary.notable["rejected-apheresis"]
    )
    assert state_of[summary.notable["terminated"]] == "TERMINATED"
    assert state_of[summary.notable["on-hold"]] == "ON_HOLD"
    assert "BatchReleasedOutOfSpecification" in audit_actions(
        sqlite_app, summary.notable["released-oos"]
    )


def test_a_wrong_bag_at_receipt_is_stopped_recorded_and_the_right_bag_then_received(
    network: tuple[App, DemoSummary],
) -> None:
    app, summary = network

    actions = audit_actions(app, summary.notable["identity-mismatch"])
    mismatch = actions.index("IdentityMismatchDetected")
    assert actions[mismatch + 1 : mismatch + 3] == ["IdentityVerified", "ApheresisReceived"]
    assert actions.count("ApheresisReceived") == 1
    assert app.verify_audit().ok


def test_every_change_is_audited_in_time_order_and_the_chain_verifies(
    network: tuple[App, DemoSummary],
) -> None:
    app, summary = network

    assert all(n > 0 for n in summary.by_state.values()), summary.by_state
    report = app.verify_audit()
    assert report.ok and report.checked == summary.audit_records
    with app.reader() as c:
        times = c.execute(sa.select(t.audit_record.c.at).order_by(t.audit_record.c.seq)).scalars()
        stamps = list(times)
        transitions = c.execute(
            sa.select(sa.func.count())
            .select_from(t.audit_record)
            .where(t.audit_record.c.entity_type == "batch")
        ).scalar_one()
    assert stamps == sorted(stamps)
    assert stamps[-1] <= NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert transitions > summary.batches * 5


def test_hand_offs_are_cold_chain_fresh_apheresis_at_2_to_8_and_the_dose_below_minus_150(
    network: tuple[App, DemoSummary],
) -> None:
    app, _ = network

    with app.reader() as c:
        rows = c.execute(sa.select(t.custody_event.c.action, t.custody_event.c.temperature_c))
        by_action: dict[str, list[float | None]] = {}
        for action, temperature in rows:
            by_action.setdefault(action, []).append(temperature)
    for action in ("collect", "dispatch", "receive"):
        assert all(v is not None and 2 <= v <= 8 for v in by_action[action]), action
    for action in ("ship", "deliver"):
        assert all(v is not None and v < -150 for v in by_action[action]), action


def test_patients_are_pseudonyms_and_identifiers_use_the_example_fins_only(
    network: tuple[App, DemoSummary],
) -> None:
    app, _ = network

    rows = queries.list_batches(app)
    for row in rows:
        Patient(row.patient_pseudonym, row.year_of_birth, row.weight_kg)  # validates
        assert row.patient_pseudonym.startswith("PT-")
        assert row.coi[2:7] in DEMONSTRATION_FINS
        assert row.din is None or row.din[:5] in DEMONSTRATION_FINS
    assert {s.fin for s in queries.list_sites(app)} <= DEMONSTRATION_FINS


def test_the_same_seed_builds_the_same_network_on_either_engine(
    app: App, clock: FixedClock, tmp_path: Path
) -> None:
    first = build_demo(app, seed=11, patients=SMALL)
    url = f"sqlite:///{tmp_path / 'again.sqlite3'}"
    again_app = App.connect(url, clock=FixedClock(clock.now()), settings=settings_for(url))
    other_url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    other_app = App.connect(
        other_url, clock=FixedClock(clock.now()), settings=settings_for(other_url)
    )
    try:
        again_app.upgrade()
        other_app.upgrade()
        again = build_demo(again_app, seed=11, patients=SMALL)
        build_demo(other_app, seed=12, patients=SMALL)
        assert again == first
        assert lots_and_states(again_app) == lots_and_states(app)

        # Every record the same but for the credential ids in sign-in records, which are
        # random by design (secrets.token_hex), so the chains' hashes differ.
        def trail(a: App) -> list[tuple[str, str, str, str | None]]:
            return [
                (e.actor, e.action, e.entity_id, e.reason)
                for e in queries.audit_log(a, limit=100_000)
            ]

        assert trail(again_app) == trail(app)
        assert lots_and_states(other_app) != lots_and_states(app)
    finally:
        again_app.dispose()
        other_app.dispose()


def test_a_second_build_is_refused_and_changes_nothing(app: App) -> None:
    build_demo(app, patients=SMALL)
    before = (app.audit_count(), lots_and_states(app))

    with pytest.raises(InvalidInput, match="already holds batches"):
        build_demo(app, patients=SMALL)

    assert (app.audit_count(), lots_and_states(app)) == before


def test_progress_is_reported_up_to_the_total(sqlite_app: App) -> None:
    seen: list[tuple[int, int]] = []
    build_demo(sqlite_app, patients=SMALL, progress=lambda done, total: seen.append((done, total)))

    assert len(seen) > 2
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1][0] == seen[-1][1] == seen[0][1]


@pytest.mark.parametrize(("patients", "months"), [(5, 18), (300, 1)])
def test_too_small_a_network_is_refused_before_anything_is_written(
    sqlite_app: App, patients: int, months: int
) -> None:
    with pytest.raises(InvalidInput, match=r"demo (patients|months)"):
        build_demo(sqlite_app, patients=patients, months=months)
    assert sqlite_app.audit_count() == 0


def test_the_demo_has_people_of_every_role_who_sign_in_with_the_printed_password(
    app: App,
) -> None:
    from vein2vein.domain.people import Role
    from vein2vein.services import auth

    summary = build_demo(app, seed=7, patients=SMALL)
    roles = {role for user in summary.users for role in user.roles}
    assert roles == {r.value for r in Role}
    # The credentials the build signed in with end with it; the people sign in afresh.
    with app.engine.connect() as c:
        live = c.execute(
            sa.select(sa.func.count())
            .select_from(t.credential)
            .where(t.credential.c.revoked_at.is_(None))
        ).scalar_one()
    assert live == 0
    signed = auth.sign_in(app.uow(), user_id="qp.cp1", password=summary.password, kind="api")
    assert signed.actor.full_name == "Qualified person, CP1 (demo)"


# -- the batch records -------------------------------------------------------------------


def records_of(app: App) -> dict[str, RecordView]:
    """The batch record of every batch that started processing, by lot."""
    views = {}
    for row in queries.list_batches(app):
        if "BatchRecordOpened" in audit_actions(app, row.lot):
            views[row.lot] = record_views.record_view(app, READER, row.lot)
    return views


def test_both_example_mbrs_are_approved_by_another_qa_reviewer_before_any_batch_starts(
    network: tuple[App, DemoSummary],
) -> None:
    app, _ = network

    versions = {v.process: v for v in mbr.list_mbrs(app, READER)}
    assert set(versions) == {"CART-CD19-CONV", "CART-CD19-RAPID"}
    for v in versions.values():
        assert v.status == mbr.EFFECTIVE and v.product == "CART-CD19"
        assert v.approved_by is not None and v.approved_by != v.imported_by
    trail = [e for e in reversed(queries.audit_log(app, limit=100_000))]
    approved = max(e.seq for e in trail if e.action == "MasterBatchRecordApproved")
    first_start = min(e.seq for e in trail if e.action == "BatchRecordOpened")
    assert approved < first_start
    with app.reader() as c:  # each approval carries its signature (meaning: approved)
        signed = c.execute(
            sa.select(t.signature.c.signer_id, t.signature.c.meaning).where(
                t.signature.c.entity_type == "mbr"
            )
        ).all()
    assert sorted(signed) == [(v.approved_by, "approved") for v in versions.values()]


def test_batches_past_processing_have_complete_records_on_the_process_of_their_site(
    network: tuple[App, DemoSummary],
) -> None:
    app, summary = network
    views = records_of(app)
    completed = {
        row.lot
        for row in queries.list_batches(app)
        if "ProcessingCompleted" in audit_actions(app, row.lot)
    }

    assert len(completed) >= 8 and completed <= set(views)
    assert {v.header.process for v in views.values()} == set(PROCESS_OF.values())
    for lot, view in views.items():
        assert view.header.process == PROCESS_OF[view.batch.manufacturing_site], lot
        if lot in completed:
            assert view.complete, lot
            assert all(s.entries for s in view.steps), lot
        for step in view.steps:
            for entry in step.entries:
                if step.definition.equipment_class:  # the site's own equipment
                    assert entry.equipment is not None
                    assert f"-{view.batch.manufacturing_site}-" in entry.equipment
                assert set(entry.materials) == {m.type for m in step.definition.materials}
                if step.definition.verification and entry.verified_by is not None:
                    assert entry.verified_by != entry.performed_by  # a second person
                    assert step.verifications[entry.occurrence]  # signed
    # The conventional process counts its expansion every day; the records are spread over
    # the 9-12 days (conventional) or 2-3 days (rapid) processing takes.
    for view in (v for lot, v in views.items() if lot in completed):
        entries = [e for s in view.steps for e in s.entries]
        span = max(e.performed_at for e in entries) - view.header.started_at
        if view.header.process == "CART-CD19-CONV":
            counts = next(s for s in view.steps if s.definition.id == "expansion").entries
            assert len(counts) >= 6 and 8 <= span.days < 12
        else:
            assert 1 <= span.days < 3
    assert summary.records["steps recorded"] == sum(
        len(s.entries) for v in views.values() for s in v.steps
    )


def test_records_have_excursions_with_reasons_a_correction_and_deviations_open_and_closed(
    network: tuple[App, DemoSummary],
) -> None:
    app, summary = network
    views = records_of(app)
    values = [
        value
        for view in views.values()
        for step in view.steps
        for entry in step.entries
        for value in entry.values.values()
    ]

    excursions = [v for v in values if v.outcome is Outcome.EXCURSION]
    assert excursions and all(v.comment for v in excursions)
    corrected = [v for v in values if v.corrections]
    assert corrected and all(c.why and c.old != c.new for v in corrected for c in v.corrections)
    lot = summary.notable["corrected-value"]
    assert views[lot].changed_after_entry
    assert "StepValueCorrected" in audit_actions(app, lot)

    deviations = record_views.list_deviations(app, READER)
    assert all(d.step is not None for d in deviations)  # opened by a value outside its PAR
    closed = [d for d in deviations if d.deviation.state is DeviationState.CLOSED]
    still_open = [d for d in deviations if d.deviation.state is DeviationState.OPEN]
    assert closed and still_open
    for d in closed:
        assert d.deviation.impact and d.closed_by and d.closed_by.startswith("qa.")
        assert d.deviation.severity is Severity.MINOR or d.deviation.capa
    major_closed = {d.deviation.lot for d in closed if d.deviation.severity is Severity.MAJOR}
    assert summary.notable["closed-deviation"] in major_closed
    open_lot = summary.notable["open-deviation"]
    assert open_lot in {d.deviation.lot for d in still_open}
    assert dict(lots_and_states(app))[open_lot] == BatchState.QC_PENDING.value
    assert summary.records["deviations opened"] == len(deviations)
    assert summary.records["deviations closed"] == len(closed)


def test_no_batch_is_released_while_a_major_or_critical_deviation_is_open(
    network: tuple[App, DemoSummary],
) -> None:
    app, _ = network
    blocking = {
        d.deviation.lot
        for d in record_views.list_deviations(app, READER, state="open")
        if d.deviation.severity is not Severity.MINOR
    }

    assert blocking
    for row in queries.list_batches(app):
        released = RELEASES & set(audit_actions(app, row.lot))
        assert not (released and row.lot in blocking), row.lot


def test_a_batch_in_process_has_a_partly_executed_record(
    network: tuple[App, DemoSummary],
) -> None:
    app, summary = network
    lot = summary.notable["in-process"]

    view = record_views.record_view(app, READER, lot)
    assert view.batch.state == BatchState.IN_PROCESS.value
    done = [s for s in view.steps if s.entries]
    assert done and len(done) < len(view.steps) and not view.complete
    assert view.next_steps  # what the operator does next
    assert view.steps[-1].status == "to do"


def test_material_lots_and_equipment_are_released_and_calibrated_where_they_are_used(
    network: tuple[App, DemoSummary],
) -> None:
    app, _ = network
    views = records_of(app)
    used = {u.material_lot for v in views.values() for u in v.materials}

    lots = {view.lot.lot: view for view in record_views.list_lots(app, READER)}
    types = {m.type for v in views.values() for s in v.steps for m in s.definition.materials}
    assert {lots[lot].lot.type for lot in used} == types
    assert all(lots[lot].lot.status is LotStatus.RELEASED for lot in used)
    assert all(lot.lot.expiry > NOW.date() for lot in lots.values())
    vectors = [v for v in lots.values() if v.lot.type.startswith("Lentiviral vector")]
    assert sum(v.used_by > 0 for v in vectors) == 2  # a second lot once the first ran out
    assert [v.lot.status for v in vectors if v.used_by == 0] == [LotStatus.QUARANTINE]
    equipment = record_views.list_equipment(app, READER)
    assert all(e.calibrated and e.due > NOW.date() for e in equipment)
    for site, process in PROCESS_OF.items():
        classes = {
            s.definition.equipment_class
            for v in views.values()
            if v.header.process == process
            for s in v.steps
            if s.definition.equipment_class
        }
        assert classes <= {e.equipment.equipment_class for e in equipment
                           if e.equipment.site == site}  # fmt: skip


def test_every_batch_has_its_qc_history_with_the_cases_a_qc_lab_sees(
    default_network: tuple[App, DemoSummary],
) -> None:
    app, _ = default_network
    from vein2vein.services.qc_views import batch_qc, workload

    states = dict(lots_and_states(app))
    with app.engine.connect() as c:
        sampled = {(lot, stage) for lot, stage in c.execute(
            sa.select(t.qc_sample.c.lot, t.qc_sample.c.stage))}  # fmt: skip
        statuses = Counter(c.execute(sa.select(t.conditional_release.c.status)).scalars())
        invalidated = (
            c.execute(sa.select(t.test_result.c.id).where(t.test_result.c.status == "invalidated"))
            .scalars()
            .all()
        )
        retests = (
            c.execute(
                sa.select(t.test_result.c.retest_of).where(
                    t.test_result.c.retest_of.in_(invalidated)
                )
            )
            .scalars()
            .all()
        )
        oos = c.execute(
            sa.select(sa.func.count()).select_from(t.test_result)
            .where(t.test_result.c.conformance == "oos")
        ).scalar_one()  # fmt: skip
        alerts = c.execute(sa.select(t.qc_alert)).all()
    # Every apheresis QA decided on was tested; every batch past processing was sampled.
    with app.engine.connect() as c:
        decided = set(c.execute(
            sa.select(t.audit_record.c.entity_id).where(
                t.audit_record.c.action.in_(["StartingMaterialAccepted",
                                             "StartingMaterialRejected"]))).scalars())  # fmt: skip
    assert decided and all((lot, "starting-material") in sampled for lot in decided)
    past = {"QC_PENDING", "RELEASED", "CONDITIONALLY_RELEASED", "RELEASED_OOS", "SHIPPED",
            "DELIVERED", "INFUSED"}  # fmt: skip
    assert all((lot, "release") in sampled for lot, s in states.items() if s in past)
    assert oos >= 3 and invalidated and set(invalidated) <= set(retests) | set(invalidated)
    assert retests, "an invalidated result and its retest"
    assert statuses["FINAL"] >= 1 and statuses["FAILED"] >= 1
    assert alerts and all(
        a.acknowledged_by for a in alerts if a.raised_at < NOW - timedelta(days=1)
    )
    # A batch released out of specification carries the physician's signed request.
    oos_lot = next(lot for lot, s in states.items() if s == "RELEASED_OOS")
    view = batch_qc(app, READER, oos_lot)
    assert view.oos_requests and view.oos_results
    # The QC page has work waiting on it.
    assert workload(app, READER).pending


def test_the_demo_hides_a_drifting_site_and_the_analytics_find_it(
    default_network: tuple[App, DemoSummary],
) -> None:
    """Issue 7's done-when: post-thaw viability at POC2 drifts down in the second half of
    the period (services/_demo_biology.py); the signals put it first, its chart flags the
    latest points, and the comparison with the other point-of-care unit fails."""
    from vein2vein.services import analytics
    from vein2vein.services.comparability import compare_groups

    app, summary = default_network
    found = analytics.signals(app, READER, "CART-CD19")
    assert (found[0].stage, found[0].attribute, found[0].site) == ("release", "viability", "POC2")
    view = analytics.control_chart(app, READER, product="CART-CD19", stage="release",
                                   attribute="viability", site="POC2")  # fmt: skip
    n = len(view.series.points)
    assert {"WE2", "WE3", "WE4"} & set(view.phase_ii_violations)
    assert max(view.flagged()) >= n - 3  # the drift is going on now
    sigma = (view.result.ucl[0] - view.result.center[0]) / 3
    assert view.series.values[-8:].mean() < view.result.center[0] - 2 * sigma
    viability = next(
        r for r in compare_groups(app, READER, product="CART-CD19", reference="POC1",
                                  test="POC2").rows if r.attribute == "viability"
    )  # fmt: skip
    assert viability.conclusion == "not shown equivalent"
    # Failed doses are counted apart, by the results' own conformance, and named.
    both = compare_groups(app, READER, product="CART-CD19", reference="POC1", test="POC2")
    failed = [lot for lots in both.out_of_spec.get("viability", ([], [])) for lot in lots]
    assert failed and "left out of the comparison" in both.out_of_spec_note()
    # Limits proposed from a history with a drift in it say so.
    from vein2vein.services.spec_proposals import propose

    proposed = propose(app, READER, product="CART-CD19", stage="release", attribute="viability")
    assert any("not in statistical control" in w for w in proposed.warnings)
    # A margin stated in the attribute's unit is the one tested (and said to be given).
    stated = compare_groups(app, READER, product="CART-CD19", reference="POC1", test="POC2",
                            attributes=["viability"], margin=0.5).rows[0]  # fmt: skip
    assert (stated.tost.margin, stated.margin_basis) == (0.5, "given")
    assert not stated.tost.equivalent and viability.tost.margin != 0.5
    # Every confirmed OOS of a charted attribute is out of its chart's baseline, with why.
    assert summary.records["baseline exclusions"] > 0
    with app.engine.connect() as c:
        reasons = c.execute(sa.select(t.spc_exclusion.c.reason)).scalars().all()
        assert set(c.execute(sa.select(t.spc_exclusion.c.action)).scalars()) == {"excluded"}
    assert len(reasons) == summary.records["baseline exclusions"]
    assert all(r.startswith("confirmed OOS (OOS-") for r in reasons)


def test_in_the_demo_the_starting_material_predicts_expansion_and_failure_to_reach_dose(
    default_network: tuple[App, DemoSummary],
) -> None:
    from vein2vein.services.comparability import outcome_study

    app, _ = default_network
    fold = outcome_study(app, READER, product="CART-CD19", process="CART-CD19-CONV",
                         outcome="log_fold_expansion")  # fmt: skip
    assert {"sm_cd3_percent", "sm_viability", "age"} <= set(fold.model.important)
    assert fold.model.term("sm_cd3_percent").coef > 0 and fold.model.term("age").coef < 0
    failure = outcome_study(app, READER, product="CART-CD19", process="CART-CD19-RAPID")
    assert failure.failures > 0 and failure.model.term("sm_cd3_percent").coef < 0
    assert failure.criterion.startswith("sm_") and failure.direction == "min"
    turned = [r.turned_away for r in failure.tightening]
    assert turned == sorted(turned) and turned[-1] > turned[0]
    assert failure.tightening[-1].failures_avoided > 0
