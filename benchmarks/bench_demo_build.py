"""Time to build the demo network (300 patients, SQLite) against placing its orders only.

Both sides run through the services on a fresh SQLite database with the same nine sites.
The baseline places as many orders as the demo has batches (``place_order`` only, one
transaction each); the demo plays every step of every journey, each one a transaction
with its audit records. ``ratio`` = baseline time / demo time; the target is absolute.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import Result, bench_people, say, sqlite_app

from vein2vein.services import batches as svc
from vein2vein.services._demo_plan import SITES
from vein2vein.services.app import App
from vein2vein.services.demo import build_demo

TARGET_SECONDS = 60.0


def _orders_only(app: App, orders: int) -> None:
    crew = bench_people(app)
    for site in SITES:
        svc.register_site(
            app.uow(),
            code=site.code,
            name=site.name,
            kind=site.kind,
            fin=site.fin,
            by=crew.admin.actor,
        )
    for n in range(orders):
        svc.place_order(
            app.uow(),
            pseudonym=f"PT-B{n:06d}",
            year_of_birth=1970,
            weight_kg=70.0,
            product="CART-CD19",
            treatment_centre=f"TC{n % 6 + 1}",
            manufacturing_site="CP1",
            by=crew.coordinator.actor,
        )


def run(patients: int = 300) -> Result:
    with tempfile.TemporaryDirectory(prefix="v2v-bench-") as tmp:
        with sqlite_app(Path(tmp), "demo.sqlite3") as app:
            say(f"demo build: build_demo with {patients} patients on SQLite")
            start = time.perf_counter()
            summary = build_demo(app, patients=patients)
            measured = time.perf_counter() - start
            say(f"  {measured:.2f} s, {summary.batches} batches, {summary.audit_records:,} records")
        with sqlite_app(Path(tmp), "orders.sqlite3") as app:
            say(f"demo build: baseline, {summary.batches} orders only")
            start = time.perf_counter()
            _orders_only(app, summary.batches)
            base = time.perf_counter() - start
            say(f"  {base:.2f} s")
    per_record = measured / summary.audit_records * 1e3
    return Result(
        name=f"demo build, {patients} patients (SQLite)",
        measured=(
            f"{measured:.1f} s ({summary.batches} batches, {summary.audit_records:,} audit "
            f"records, {per_record:.2f} ms each)"
        ),
        baseline=f"{base:.1f} s to place the {summary.batches} orders only",
        ratio=base / measured,
        target=f"< {TARGET_SECONDS:.0f} s",
        met=measured < TARGET_SECONDS,
        note="the ratio shows the share of the build spent placing orders; target is absolute",
    )


if __name__ == "__main__":
    print(run())
