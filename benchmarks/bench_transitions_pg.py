"""Audited transitions per second on PostgreSQL against the same row updates unaudited.

Setup (untimed): a fresh schema migrated by ``App.upgrade``, one plant, one centre and
``batches`` orders placed through the services. Timed, one transaction per change:

* audited: ``perform_transition`` hold then resume on every batch — the real service
  (lock the row, domain rule, optimistic-locking UPDATE, audit record on the hash chain
  under the advisory lock, commit);
* baseline: the same UPDATE of the batch row (state, held_from, state_since, version + 1)
  in its own transaction on the same engine: no audit record, no row lock taken first, no
  service around it.
"""

from __future__ import annotations

import time
from datetime import timedelta

from _common import NOW, Result, bench_people, postgres_app, say

from vein2vein.domain.clock import FixedClock
from vein2vein.services import batches as svc
from vein2vein.services.app import App
from vein2vein.services.auth import Identity
from vein2vein.store import tables as t

TARGET = 0.3


def _network(app: App, batches: int) -> tuple[list[str], Identity]:
    uow = app.uow
    crew = bench_people(app)
    svc.register_site(
        uow(),
        code="CP1",
        name="Bench plant",
        kind="manufacturing-facility",
        fin="G1234",
        by=crew.admin.actor,
    )
    svc.register_site(
        uow(),
        code="TC1",
        name="Bench centre",
        kind="treatment-centre",
        fin="A9999",
        by=crew.admin.actor,
    )
    lots = []
    for n in range(batches):
        placed = svc.place_order(
            uow(),
            pseudonym=f"PT-B{n:06d}",
            year_of_birth=1970,
            weight_kg=70.0,
            product="CART-CD19",
            treatment_centre="TC1",
            manufacturing_site="CP1",
            by=crew.coordinator.actor,
        )
        lots.append(placed.lot)
    return lots, crew.qa


def _unaudited(app: App, lots: list[str]) -> None:
    """Hold then resume each batch as bare UPDATEs, one transaction each."""
    b = t.batch
    now = app.clock.now()
    for lot in lots:
        for state, held_from in (("ON_HOLD", "ORDERED"), ("ORDERED", None)):
            with app.engine.begin() as connection:
                connection.execute(
                    b.update()
                    .where(b.c.lot == lot)
                    .values(
                        state=state, held_from=held_from, state_since=now, version=b.c.version + 1
                    )
                )


def _audited(app: App, lots: list[str], qa: Identity) -> None:
    for lot in lots:
        svc.perform_transition(app.uow(), lot, "hold", by=qa, reason="bench hold")
        svc.perform_transition(app.uow(), lot, "resume", by=qa, reason="bench resume")


def run(batches: int = 1_000) -> Result:
    clock = FixedClock(NOW - timedelta(days=1))
    with postgres_app(clock) as app:
        say(f"transitions on PostgreSQL: placing {batches:,} orders (setup)")
        lots, qa = _network(app, batches)
        clock.set(NOW)
        warm = lots[:50]
        _unaudited(app, warm)
        _audited(app, warm, qa)
        rest = lots[50:]
        changes = 2 * len(rest)
        say(f"transitions on PostgreSQL: baseline, {changes:,} bare UPDATE transactions")
        start = time.perf_counter()
        _unaudited(app, rest)
        base = time.perf_counter() - start
        say(f"  {base:.2f} s ({changes / base:,.0f}/s)")
        say(f"transitions on PostgreSQL: {changes:,} audited transitions (hold/resume)")
        start = time.perf_counter()
        _audited(app, rest, qa)
        measured = time.perf_counter() - start
        say(f"  {measured:.2f} s ({changes / measured:,.0f}/s)")
        report = app.verify_audit()
        assert report.ok, report
    ratio = base / measured
    return Result(
        name=f"audited transitions, {changes:,} (PostgreSQL)",
        measured=f"{changes / measured:,.0f}/s ({measured * 1e3 / changes:.2f} ms each)",
        baseline=f"{changes / base:,.0f}/s bare UPDATE transactions",
        ratio=ratio,
        target=f"≥ {TARGET}",
        met=ratio >= TARGET,
        note="one transaction per change, one client; hold/resume pairs; fsync on",
    )


if __name__ == "__main__":
    print(run())
