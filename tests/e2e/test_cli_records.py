"""Batch records from the command line: a real ``v2v`` process on a real database.

The plant (people, sites, both example MBRs effective, released lots of every material,
equipment of every class at CP1) is set up through the services, as ``tests.network`` does
for every other test; everything a test is about is done with ``v2v``, each person in a
terminal of their own (``v2v login`` keeps one token per configuration directory).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from tests import network
from tests.conftest import settings_for
from tests.e2e.test_cli import Cli
from tests.network import PASSWORD, equipment_for, material_lot
from vein2vein.domain.batch import BatchState
from vein2vein.domain.clock import SystemClock
from vein2vein.services.app import App

CONV = "CART-CD19-CONV"
VECTOR = "Lentiviral vector (anti-CD19 CAR)"
SELECTION = ("CD4/CD8 selection reagent", "T-cell activation reagent", "T-cell culture medium")


@dataclass
class Plant:
    app: App
    url: str
    lot: str  # a batch ACCEPTED at CP1, on no process yet
    terminals: dict[str, Cli]

    def __call__(self, user: str) -> Cli:
        """``v2v`` as ``user``: signed in once, in a terminal of their own."""
        if user not in self.terminals:
            terminal = Cli(self.url)
            terminal("login", "--user", user, input=f"{PASSWORD}\n")
            self.terminals[user] = terminal
        return self.terminals[user]

    @property
    def scan(self) -> str:
        return network.scan_code(self.app, self.lot)


@pytest.fixture
def plant(database_url: str) -> Iterator[Plant]:
    # The wall clock, as the `v2v` processes have: lots and calibrations are due from today.
    app = App.connect(database_url, clock=SystemClock(), settings=settings_for(database_url))
    app.upgrade()
    network.small_network(app)
    lot = network.order(app)
    network.advance(app, lot, BatchState.ACCEPTED)
    yield Plant(app, database_url, lot, {})
    app.dispose()


def as_json(done: Any) -> Any:
    return json.loads(done.stdout)


def words(text: str) -> str:
    """Output with its table layout folded to single spaces."""
    return " ".join(text.split())


def started(plant: Plant) -> Cli:
    op = plant("operator.cp1")
    op("batch", "start-processing", plant.lot, "--scan", plant.scan, "--process", CONV)
    return op


def record_args(plant: Plant, step: str, *values: str, lots: tuple[str, ...] = ()) -> list[str]:
    process = network.bound_process(plant.app, plant.lot)
    spec = process.step(step)
    given = {v.split("=", 1)[0] for v in values}
    typed = [
        f"{p.name}={network.nominal(p)}"
        for p in spec.parameters
        if p.formula is None and p.name not in given
    ]
    args = ["step", "record", plant.lot, step, "--scan", plant.scan]
    for value in (*typed, *values):
        args += ["--value", value]
    for m in lots or tuple(material_lot(m.type) for m in spec.materials):
        args += ["--lot", m]
    if spec.equipment_class:
        args += ["--equipment", equipment_for(spec.equipment_class)]
    return args


def test_start_processing_chooses_the_process_when_two_are_effective(plant: Plant) -> None:
    op = plant("operator.cp1")
    choose = op("batch", "start-processing", plant.lot, "--scan", plant.scan, code=2)
    assert "choose the process: CART-CD19-CONV, CART-CD19-RAPID" in choose.stderr
    unknown = op("batch", "start-processing", plant.lot, "--scan", plant.scan,
                 "--process", "NOPE", code=4)  # fmt: skip
    assert "error[rule-violation]" in unknown.stderr and "process NOPE does not exist" in (
        unknown.stderr
    )
    done = op("batch", "start-processing", plant.lot, "--scan", plant.scan,
              "--process", "CART-CD19-RAPID")  # fmt: skip
    assert "IN_PROCESS" in done.stdout
    shown = as_json(op("record", "show", plant.lot, "--json"))
    assert (shown["process"], shown["process_version"]) == ("CART-CD19-RAPID", 1)
    assert shown["next_steps"] == ["receipt"] and shown["complete"] is False
    refused = op("batch", "hold", plant.lot, "--reason", "x", "--process", CONV, code=2)
    assert "No such option: --process" in refused.stderr  # only start-processing takes it


def test_a_whole_batch_record_is_executed_verified_and_completed_from_the_command_line(
    plant: Plant,
) -> None:
    op, second = started(plant), plant("operator2.cp1")
    lot = plant.lot

    # An excursion (viability 85 %: outside the NOR 90–100, inside the PAR) needs a comment.
    excursion = record_args(plant, "receipt", "viability_percent=85",
                            "total_nucleated_cells=12")  # fmt: skip
    refused = op(*excursion, code=2)
    assert (
        "error[invalid-input]: step receipt: viability_percent 85 % is outside the normal range"
        in refused.stderr
    )
    assert as_json(op("record", "show", lot, "--json"))["steps"][0]["entries"] == []
    done = op(*excursion, "--comment", "viability_percent=long transit; within PAR")
    assert f"batch {lot}: step receipt #1 recorded by operator.cp1" in done.stdout
    assert "excursion" in done.stdout

    # Verification: not by the performer (11), then by a second person, signed.
    own = op("step", "verify", lot, "receipt", input=f"operator.cp1\n{PASSWORD}\n", code=11)
    assert "error[permission-denied]: operator.cp1 may not verify step receipt" in own.stderr
    verified = second("step", "verify", lot, "receipt", input=f"operator2.cp1\n{PASSWORD}\n")
    assert "First signature of this session" in verified.stdout
    assert "step receipt #1 (performed by operator.cp1) verified by operator2.cp1" in (
        verified.stdout
    )

    op(*record_args(plant, "selection_activation"))
    second("step", "verify", lot, "selection_activation", input=f"{PASSWORD}\n")

    # A correction keeps the original; the verifier saw the old value, so verifies again.
    corrected = op(
        "step", "correct", lot, "receipt", "--occurrence", "1",
        "--value", "total_nucleated_cells=13", "--reason", "transcription error",
    )  # fmt: skip
    assert "receipt #1 total_nucleated_cells 12 → 13 1e9 cells (ok)" in corrected.stdout
    review = op("record", "review", lot)
    assert f"{lot} ({CONV} v1): 3 exceptions, 0 open deviations" in review.stdout
    kinds = [x["kind"] for x in as_json(op("record", "review", lot, "--json"))]
    assert sorted(kinds) == ["correction", "excursion", "unverified"]
    shown = words(op("record", "show", lot).stdout)
    assert "corrected 12.00 → 13.00 by operator.cp1" in shown and "transcription error" in shown
    assert "superseded: verified by Vera Fier (operator2.cp1)" in shown
    second("step", "verify", lot, "receipt", input=f"{PASSWORD}\n")

    op(*record_args(plant, "transduction", "vector_titre=2.5", "moi=5"))
    second("step", "verify", lot, "transduction", input=f"{PASSWORD}\n")
    # A value outside its PAR (glucose 1.5 mmol/L, PAR 2–30) is recorded and opens a deviation.
    day3 = op(*record_args(plant, "expansion", "culture_day=3", "glucose_mmol_l=1.5"))
    assert "OUT OF PAR" in day3.stdout
    assert "deviation DEV-" in day3.stdout and "opened" in day3.stdout
    op(*record_args(plant, "expansion", "culture_day=5"))
    early = op("batch", "complete-processing", lot, code=4)
    assert "steps not recorded: harvest_formulation, cryopreservation" in early.stderr
    for step in ("harvest_formulation", "cryopreservation"):
        op(*record_args(plant, step))
        second("step", "verify", lot, step, input=f"{PASSWORD}\n")
    completed = op("batch", "complete-processing", lot)
    assert "QC_PENDING" in completed.stdout

    record = as_json(op("record", "show", lot, "--json"))
    assert record["complete"] is True and record["state"] == "QC_PENDING"
    assert [(s["id"], s["status"], len(s["entries"])) for s in record["steps"]] == [
        ("receipt", "done", 1), ("selection_activation", "done", 1), ("transduction", "done", 1),
        ("expansion", "done", 2), ("harvest_formulation", "done", 1),
        ("cryopreservation", "done", 1),
    ]  # fmt: skip
    receipt = record["steps"][0]["entries"][0]
    assert (receipt["performed_by"], receipt["verified_by"]) == ("operator.cp1", "operator2.cp1")
    assert receipt["equipment"] == equipment_for("biosafety-cabinet")
    assert [v["name"] for v in receipt["values"]] == [  # in the MBR's order
        "bag_temperature_c", "apheresis_volume_ml", "total_nucleated_cells", "cd3_percent",
        "viability_percent",
    ]  # fmt: skip
    values = {v["name"]: v for v in receipt["values"]}
    assert values["viability_percent"]["outcome"] == "excursion"
    assert values["viability_percent"]["comment"] == "long transit; within PAR"
    [correction] = values["total_nucleated_cells"]["corrections"]
    assert (correction["old"], correction["new"], correction["why"]) == (
        12.0, 13.0, "transcription error"
    )  # fmt: skip
    assert [s["meaning"] for s in receipt["signatures"]] == ["verified", "verified"]
    volume = record["steps"][2]["entries"][0]["values"]
    assert [v["computed"] for v in volume if v["name"] == "vector_volume_ml"] == [True]
    [deviation] = record["deviations"]
    assert (deviation["severity"], deviation["state"], deviation["step"]) == (
        "minor", "OPEN", "expansion #1"
    )  # fmt: skip
    assert {(m["material_lot"], m["step"]) for m in record["materials"]} >= {
        (material_lot(VECTOR), "transduction"),
        (material_lot("Infusion bag"), "harvest_formulation"),
    }
    assert {x["kind"] for x in record["exceptions"]} == {"excursion", "correction", "out-of-par"}
    text = words(op("record", "show", lot).stdout)
    assert f"{lot} {CONV} v1" in text and "record complete" in text
    assert "glucose_mmol_l 1.5 mmol/L OUT OF PAR" in text
    assert "performed by operator.cp1" in text and "verified by operator2.cp1" in text


def test_a_step_is_refused_with_its_exit_code_and_nothing_is_recorded(plant: Plant) -> None:
    op = started(plant)
    lot = plant.lot
    other = network.order(plant.app, "PT-000102")
    network.advance(plant.app, other, BatchState.COLLECTED)
    receipt = record_args(plant, "receipt")
    scan_at = receipt.index("--scan") + 1

    wrong_bag = [*receipt[:scan_at], network.scan_code(plant.app, other), *receipt[scan_at + 1 :]]
    mismatch = op(*wrong_bag, code=5)
    assert mismatch.stderr.startswith("error[identity-mismatch]:")
    log = plant("qa.cp1").json("audit", "log", "--lot", lot, "--limit", "1")
    assert isinstance(log, list) and log[0]["action"] == "IdentityMismatchDetected"

    unknown = op("step", "record", lot, "nope", "--scan", plant.scan, code=2)
    assert f"error[invalid-input]: batch {lot}: {CONV} has no step 'nope'" in unknown.stderr
    skipped = op(*record_args(plant, "transduction"), code=4)
    assert "cannot be recorded now; next: receipt" in skipped.stderr
    op(*receipt)
    again = op(*receipt, code=4)
    assert "recorded already and is not repeatable" in again.stderr

    # A lot of a type the step does not use is refused by the rule (4); a lot that does not
    # exist is not found (3); the wrong equipment class is a rule too.
    wrong_type = (material_lot(VECTOR), *(material_lot(t) for t in SELECTION[1:]))
    typed = op(*record_args(plant, "selection_activation", lots=wrong_type), code=4)
    assert f"material lot {material_lot(VECTOR)} is '{VECTOR}', which this step does not use" in (
        typed.stderr
    )
    missing = op(*record_args(plant, "selection_activation", lots=("LOT-NOPE",)), code=3)
    assert "error[not-found]: material lot 'LOT-NOPE' does not exist" in missing.stderr
    args = record_args(plant, "selection_activation")
    args[args.index("--equipment") + 1] = equipment_for("incubator")
    equipment = op(*args, code=4)
    assert "is of class incubator, the step needs cell-processor" in equipment.stderr

    malformed = op("step", "record", lot, "selection_activation", "--scan", plant.scan,
                   "--value", "seeded_cells", code=2)  # fmt: skip
    assert "error[invalid-input]: --value 'seeded_cells': expected name=value" in malformed.stderr
    nan = op("step", "record", lot, "selection_activation", "--scan", plant.scan,
             "--value", "seeded_cells=nan", code=2)  # fmt: skip
    assert "--value seeded_cells='nan': expected a number" in nan.stderr
    coordinator = plant("coordinator.tc")
    denied = coordinator(*record_args(plant, "selection_activation"), code=11)
    assert "coordinator.tc may not step.record: needs the role operator" in denied.stderr
    not_there = op("step", "verify", lot, "selection_activation", input=f"x\n{PASSWORD}\n",
                   code=2)  # fmt: skip
    assert "step selection_activation #1 is not recorded" in not_there.stderr

    shown = as_json(op("record", "show", lot, "--json"))
    assert [len(s["entries"]) for s in shown["steps"]] == [1, 0, 0, 0, 0, 0]
    assert shown["deviations"] == [] and shown["materials"] == []


def test_a_record_is_shown_only_once_processing_has_started(plant: Plant) -> None:
    qa = plant("qa.cp1")
    none_yet = qa("record", "show", plant.lot, code=3)
    assert f"error[not-found]: batch {plant.lot} has no batch record yet" in none_yet.stderr
    unknown = qa("record", "review", "CP1-2026-99999", code=3)
    assert "batch 'CP1-2026-99999' does not exist" in unknown.stderr
    started(plant)
    clean = qa("record", "review", plant.lot)
    assert f"{plant.lot} ({CONV} v1): 0 exceptions, 0 open deviations" in clean.stdout


def test_material_lots_are_received_released_with_a_signature_rejected_and_expired(
    plant: Plant,
) -> None:
    logistics, qa = plant("logistics.cp1"), plant("qa.cp1")
    expiry = (date.today() + timedelta(days=200)).isoformat()
    for lot in ("LV-26-0001", "LV-26-0002"):
        received = logistics("lot", "receive", lot, "--type", VECTOR, "--supplier", "VectorCo",
                             "--expiry", expiry)  # fmt: skip
        assert f"material lot {lot} ({VECTOR}) received into QUARANTINE" in received.stdout
    duplicate = logistics("lot", "receive", "LV-26-0001", "--type", VECTOR, "--supplier", "V",
                          "--expiry", expiry, code=7)  # fmt: skip
    assert "material lot LV-26-0001 exists already" in duplicate.stderr
    bad_day = logistics("lot", "receive", "LV-26-0003", "--type", VECTOR, "--supplier", "V",
                        "--expiry", "2026-13-01", code=2)  # fmt: skip
    assert "--expiry '2026-13-01': expected a date YYYY-MM-DD" in bad_day.stderr

    # Only QA releases; the others are refused before any password is asked for.
    refused = logistics("lot", "release", "LV-26-0001", "--reason", "CoA ok", code=11)
    assert "logistics.cp1 may not material.release: needs the role qa-reviewer" in refused.stderr
    wrong = qa("lot", "release", "LV-26-0001", "--reason", "CoA ok",
               input="qa.cp1\nnot-the-password\n", code=10)  # fmt: skip
    assert "error[signature-refused]" in wrong.stderr
    released = qa("lot", "release", "LV-26-0001", "--reason", "CoA checked",
                  input=f"qa.cp1\n{PASSWORD}\n")  # fmt: skip
    assert "First signature of this session (approved)" in released.stdout
    assert "material lot LV-26-0001: RELEASED (signed)" in released.stdout
    qa("lot", "reject", "LV-26-0002", "--reason", "titre below spec", input=f"{PASSWORD}\n")
    expired = qa("lot", "expire", "LV-26-0002", "--reason", "x", input=f"{PASSWORD}\n", code=4)
    assert "cannot go from REJECTED to EXPIRED" in expired.stderr
    qa("lot", "expire", "LV-26-0001", "--reason", "past use-by", input=f"{PASSWORD}\n")

    listed = qa.json("lot", "list", "--type", VECTOR)
    assert isinstance(listed, list)
    assert [(x["lot"], x["status"], x["usable"]) for x in listed] == [
        ("LV-26-0001", "EXPIRED", False), ("LV-26-0002", "REJECTED", False),
        (material_lot(VECTOR), "RELEASED", True),
    ]  # fmt: skip
    assert listed[0]["expiry"] == expiry
    table = words(qa("lot", "list", "--type", VECTOR).stdout)
    assert f"LV-26-0001 {VECTOR} VectorCo {expiry} EXPIRED no" in table
    log = qa.json("audit", "log", "--limit", "10")
    assert isinstance(log, list)
    released_record = next(e for e in log if e["action"] == "MaterialLotReleased")
    assert released_record["reason"] == "CoA checked"
    trail = qa.json("audit", "trail", "--action", "MaterialLotReleased")
    assert isinstance(trail, dict)
    [mine] = [e for e in trail["records"] if e["entity_id"] == "LV-26-0001"]
    signature = trail["signatures"][str(mine["seq"])]
    assert (signature["signer_id"], signature["meaning"]) == ("qa.cp1", "approved")


def test_genealogy_both_ways_from_a_batch_to_its_lots_and_from_a_lot_to_its_batches(
    plant: Plant,
) -> None:
    op = started(plant)
    op(*record_args(plant, "receipt"))
    plant("operator2.cp1")("step", "verify", plant.lot, "receipt",
                           input=f"operator2.cp1\n{PASSWORD}\n")  # fmt: skip
    op(*record_args(plant, "selection_activation"))
    other = network.order(plant.app, "PT-000103")
    network.advance(plant.app, other, BatchState.IN_PROCESS)
    for step in ("receipt", "selection_activation"):
        network.record(plant.app, other, step)
    medium = material_lot("T-cell culture medium")

    used = plant("qa.cp1").json("lot", "where-used", medium)
    assert isinstance(used, dict)
    assert used["lot"]["type"] == "T-cell culture medium" and used["lot"]["status"] == "RELEASED"
    assert used["batches"] == [plant.lot, other]
    assert [(u["batch"], u["step"], u["quantity"], u["unit"]) for u in used["uses"]] == [
        (plant.lot, "selection_activation", 1.0, "L"), (other, "selection_activation", 1.0, "L"),
    ]  # fmt: skip
    text = words(plant("qa.cp1")("lot", "where-used", medium).stdout)
    assert f"used by 2 batches: {plant.lot}, {other}" in text
    record = as_json(op("record", "show", plant.lot, "--json"))
    assert sorted(m["material_lot"] for m in record["materials"]) == sorted(
        material_lot(t) for t in SELECTION
    )
    vector = plant("qa.cp1")("lot", "where-used", material_lot(VECTOR))
    assert "used by no batch" in vector.stdout
    unknown = plant("qa.cp1")("lot", "where-used", "LOT-NOPE", code=3)
    assert "material lot 'LOT-NOPE' does not exist" in unknown.stderr


def test_equipment_is_registered_calibrated_and_listed(plant: Plant) -> None:
    admin = plant("admin")
    due = (date.today() + timedelta(days=90)).isoformat()
    later = (date.today() + timedelta(days=400)).isoformat()
    done = admin(
        "equipment", "register", "BSC-07", "--class", "biosafety-cabinet", "--site", "CP1",
        "--description", "Class II cabinet, room 2", "--calibration-due", due,
    )  # fmt: skip
    assert f"equipment BSC-07 (biosafety-cabinet) registered at CP1, calibration due {due}" in (
        done.stdout
    )
    again = admin("equipment", "register", "BSC-07", "--class", "biosafety-cabinet", "--site",
                  "CP1", "--description", "x", "--calibration-due", due, code=7)  # fmt: skip
    assert "equipment BSC-07 exists already" in again.stderr
    nowhere = admin("equipment", "register", "BSC-08", "--class", "biosafety-cabinet", "--site",
                    "ZZZ", "--description", "x", "--calibration-due", due, code=3)  # fmt: skip
    assert "site 'ZZZ' does not exist" in nowhere.stderr
    bad_class = admin("equipment", "register", "BSC-09", "--class", "Big Cabinet", "--site",
                      "CP1", "--description", "x", "--calibration-due", due, code=2)  # fmt: skip
    assert "equipment class 'Big Cabinet'" in bad_class.stderr
    past = admin("equipment", "calibrate", "BSC-07", "--due", "2020-01-01", "--reason", "C-1",
                 code=2)  # fmt: skip
    assert "must lie in the future" in past.stderr
    calibrated = admin("equipment", "calibrate", "BSC-07", "--due", later, "--reason", "CAL-77")
    assert f"equipment BSC-07: calibration due {later}" in calibrated.stdout
    denied = plant("operator.cp1")("equipment", "calibrate", "BSC-07", "--due", later,
                                   "--reason", "x", code=11)  # fmt: skip
    assert "may not equipment.register" in denied.stderr

    listed = admin.json("equipment", "list", "--site", "CP1")
    assert isinstance(listed, list)
    mine = next(e for e in listed if e["id"] == "BSC-07")
    assert mine == {
        "id": "BSC-07", "class": "biosafety-cabinet", "site": "CP1",
        "description": "Class II cabinet, room 2", "calibration_due": later,
        "in_calibration": True,
    }  # fmt: skip
    assert len(listed) == 6  # one of each class from the plant's set-up, and BSC-07
    assert "BSC-07" in admin("equipment", "list").stdout
    assert admin.json("equipment", "list", "--site", "TC1") == []


def test_a_deviation_is_opened_by_hand_and_closed_by_qa_with_a_signature(plant: Plant) -> None:
    op, qa = started(plant), plant("qa.cp1")
    opened = op("deviation", "open", plant.lot, "--severity", "major",
                "--description", "incubator door left open 10 min")  # fmt: skip
    reference = opened.stdout.split()[1]
    assert reference.startswith("DEV-") and f"opened on batch {plant.lot} (major)" in opened.stdout
    bad = op("deviation", "open", plant.lot, "--severity", "huge", "--description", "x", code=2)
    assert "severity 'huge': expected one of minor, major, critical" in bad.stderr

    not_qa = op("deviation", "close", reference, "--impact", "none", code=11)
    assert "operator.cp1 may not deviation.close" in not_qa.stderr
    no_capa = qa("deviation", "close", reference, "--impact", "no impact on the product",
                 input=f"qa.cp1\n{PASSWORD}\n", code=2)  # fmt: skip
    assert f"deviation {reference} is major: closing needs a CAPA reference" in no_capa.stderr
    closed = qa("deviation", "close", reference, "--impact", "no impact on the product",
                "--capa", "CAPA-12", input=f"qa.cp1\n{PASSWORD}\n")  # fmt: skip
    assert f"deviation {reference} (major) on batch {plant.lot}: CLOSED, signed" in closed.stdout
    twice = qa("deviation", "close", reference, "--impact", "x", "--capa", "C",
               input=f"{PASSWORD}\n", code=4)  # fmt: skip
    assert "is closed already" in twice.stderr

    listed = qa.json("deviation", "list", "--state", "closed")
    assert isinstance(listed, list)
    [row] = listed
    assert (row["reference"], row["lot"], row["severity"], row["capa"], row["closed_by"]) == (
        reference, plant.lot, "major", "CAPA-12", "qa.cp1"
    )  # fmt: skip
    assert qa.json("deviation", "list", "--state", "OPEN") == []
    assert "CAPA CAPA-12" in words(qa("deviation", "list").stdout)
    wrong_state = qa("deviation", "list", "--state", "shut", code=2)
    assert "state 'shut': expected one of OPEN, CLOSED" in wrong_state.stderr
