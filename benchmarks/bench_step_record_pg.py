"""Recording batch-record steps on PostgreSQL against the plain audited transition.

Setup (untimed): a fresh schema migrated by ``App.upgrade``; the conventional example MBR
imported and approved; released lots of its materials and its equipment at the plant;
``batches`` orders walked through the services to IN_PROCESS on that MBR.

Timed, one transaction per request, one client:

* measured: ``execution.record_step`` of the first three steps of every batch (receipt:
  five values and a biosafety cabinet; selection and activation: three values, three
  material lots and a cell processor; transduction: two typed values, one computed, the
  vector lot) — the real service: permission, row lock, label scan, the batch record loaded
  and its MBR version (parsed once per content hash), sequence, rounding and NOR/PAR
  classification, lot and equipment checks, the rows, the audit record on the hash chain;
* baseline: ``perform_transition`` hold then resume of the same batches — the audited
  transition of the skeleton issue, measured in the same run, one round before each round
  of steps (interleaved, so both see the same database and machine state).

Ratio = step recordings per second / transitions per second.
"""

from __future__ import annotations

import time
from datetime import timedelta
from importlib import resources

from _common import NOW, PASSWORD, BenchLab, Result, bench_people, postgres_app, say
from bench_transitions_pg import _audited  # the baseline: the same audited transitions

from vein2vein.domain.clock import FixedClock
from vein2vein.formats.mbr import parse_mbr
from vein2vein.services import auth, execution, materials, mbr, people
from vein2vein.services import batches as svc
from vein2vein.services.app import App
from vein2vein.services.auth import Identity, Signing

TARGET = 0.5  # a step with its checks costs at most twice an audited transition
PROCESS = "CART-CD19-CONV"
STEPS = ("receipt", "selection_activation", "transduction")


def _signed(app: App, user_id: str) -> Identity:
    token = auth.sign_in(app.uow(), user_id=user_id, password=PASSWORD, kind="api").token
    return auth.resolve_token(app.uow(), token, kinds=("api",))


def _label(app: App, lot: str) -> str:
    with app.uow() as uow:
        batch = uow.batches.get(lot)
    assert batch.din is not None
    return batch.din.data_content(batch.din.type3_flags)


def _equipment(equipment_class: str | None) -> str | None:
    return None if equipment_class is None else f"EQ-{equipment_class.upper()}"[:32]


def _setup(app: App, batches: int) -> tuple[list[str], Identity, Identity, dict[str, dict]]:
    crew = bench_people(app)
    uow = app.uow
    for code, kind, fin in (("CP1", "manufacturing-facility", "G1234"),
                            ("TC1", "treatment-centre", "A9999")):  # fmt: skip
        svc.register_site(uow(), code=code, name=code, kind=kind, fin=fin, by=crew.admin.actor)
    people.create_user(
        uow(), crew.admin.actor, user_id="operator.bench", full_name="Operator", roles=["operator"],
        sites="CP1", password=PASSWORD, must_change_password=False,
    )  # fmt: skip
    operator = _signed(app, "operator.bench")
    text = (
        resources.files("vein2vein.examples") / "mbr" / "cart-cd19-conventional.yaml"
    ).read_text()
    definition = parse_mbr(text)
    mbr.import_mbr(uow(), crew.admin.actor, text, "conventional.yaml")
    mbr.approve_mbr(uow(), crew.qa, PROCESS, definition.version, reason="bench",
                    signing=Signing(PASSWORD, "qa.bench"))  # fmt: skip
    expiry = NOW.date() + timedelta(days=365)
    lots: dict[str, str] = {}
    registered: set[str] = set()
    for step in definition.steps:
        for m in step.materials:
            if m.type not in lots:
                lots[m.type] = f"LOT-{len(lots) + 1:03d}"
                materials.receive_lot(uow(), crew.qa.actor,
                                      lot=lots[m.type], type=m.type, supplier="Bench",
                                      expiry=expiry)  # fmt: skip
                materials.move_lot(uow(), crew.qa, lots[m.type], "released", reason="bench",
                                   signing=Signing(PASSWORD))  # fmt: skip
        ident = _equipment(step.equipment_class)
        if ident is not None and ident not in registered:
            registered.add(ident)
            materials.register_equipment(
                uow(), crew.admin.actor, equipment_id=ident, equipment_class=step.equipment_class,
                site="CP1", description=step.equipment_class, calibration_due=expiry,
            )  # fmt: skip
    plan: dict[str, dict] = {}
    for step_id in STEPS:
        step = definition.step(step_id)
        values = {}
        for p in step.parameters:
            if p.formula is None:
                values[p.name] = (
                    p.target
                    if p.target is not None
                    else (((p.nor.low or 0.0) + (p.nor.high or 0.0)) / 2)
                )
        plan[step_id] = {
            "values": values,
            "lots": [lots[m.type] for m in step.materials],
            "equipment": _equipment(step.equipment_class),
        }
    lab = BenchLab(app, crew)
    made = []
    for n in range(batches):
        placed = svc.place_order(
            uow(), pseudonym=f"PT-B{n:06d}", year_of_birth=1970, weight_kg=70.0,
            product="CART-CD19", treatment_centre="TC1", manufacturing_site="CP1",
            by=crew.coordinator.actor,
        )  # fmt: skip
        lot = placed.lot
        svc.perform_transition(uow(), lot, "collect", by=crew.coordinator)
        label = _label(app, lot)
        svc.perform_transition(uow(), lot, "dispatch", by=crew.coordinator, scan=label)
        svc.perform_transition(uow(), lot, "receive", by=operator, scan=label)
        lab.accept_results(lot, label)
        svc.perform_transition(uow(), lot, "accept", by=crew.qa, reason="meets acceptance",
                               signing=Signing(PASSWORD))  # fmt: skip
        svc.perform_transition(uow(), lot, "start-processing", by=operator, scan=label,
                               process=PROCESS)  # fmt: skip
        made.append(lot)
    return made, operator, crew.qa, plan


def _step(
    app: App, lots: list[str], labels: dict[str, str], operator: Identity, step_id: str,
    plan: dict[str, dict],
) -> None:  # fmt: skip
    p = plan[step_id]
    for lot in lots:
        execution.record_step(
            app.uow(), lot, step_id, p["values"], by=operator, scan=labels[lot],
            material_lots=p["lots"], equipment=p["equipment"],
        )  # fmt: skip


def run(batches: int = 400) -> Result:
    clock = FixedClock(NOW - timedelta(days=1))
    with postgres_app(clock) as app:
        say(f"steps on PostgreSQL: {batches:,} batches to IN_PROCESS on {PROCESS} (setup)")
        lots, operator, qa, plan = _setup(app, batches)
        labels = {lot: _label(app, lot) for lot in lots}
        clock.set(NOW)
        warm, rest = lots[:40], lots[40:]
        _audited(app, warm, qa)
        for step_id in STEPS:
            _step(app, warm, labels, operator, step_id, plan)
        # Interleaved, one round per step, so both see the same database and machine state.
        base = measured = 0.0
        for step_id in STEPS:
            say(f"steps on PostgreSQL: {2 * len(rest):,} audited transitions (baseline)")
            start = time.perf_counter()
            _audited(app, rest, qa)
            base += time.perf_counter() - start
            say(f"steps on PostgreSQL: {len(rest):,} recordings of {step_id}")
            start = time.perf_counter()
            _step(app, rest, labels, operator, step_id, plan)
            measured += time.perf_counter() - start
        changes = 2 * len(rest) * len(STEPS)
        steps = len(STEPS) * len(rest)
        say(f"  baseline {base:.2f} s ({changes / base:,.0f}/s); "
            f"steps {measured:.2f} s ({steps / measured:,.0f}/s)")  # fmt: skip
        report = app.verify_audit()
        assert report.ok, report
    step_rate, base_rate = steps / measured, changes / base
    ratio = step_rate / base_rate
    return Result(
        name=f"step recordings, {steps:,} (PostgreSQL)",
        measured=f"{step_rate:,.0f}/s ({measured * 1e3 / steps:.2f} ms each)",
        baseline=f"{base_rate:,.0f}/s audited transitions (hold/resume), same run",
        ratio=ratio,
        target=f"≥ {TARGET}",
        met=ratio >= TARGET,
        note="one transaction per step, one client; receipt, selection (3 lots), "
        "transduction (vector lot, a computed value); fsync on",
    )


if __name__ == "__main__":
    print(run())
