"""The batch-record API over HTTP (TestClient), on real SQLite and real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import network
from tests.network import PASSWORD, equipment_for, material_lot
from vein2vein.asgi import create_app
from vein2vein.domain.batch import BatchState
from vein2vein.services import queries
from vein2vein.services.app import App

Headers = dict[str, str]
CONV = "CART-CD19-CONV"
VECTOR = "Lentiviral vector (anti-CD19 CAR)"


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    network.small_network(app)
    with TestClient(create_app(app)) as test_client:
        yield test_client


def _as(client: TestClient, user_id: str) -> Headers:
    response = client.post("/api/tokens", json={"user_id": user_id, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _sig(user_id: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
    return {"signature": {"password": password, **({"user_id": user_id} if user_id else {})}}


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    detail: str = body["detail"]
    return detail


def _step_body(app: App, lot: str, step_id: str, **values: float) -> dict[str, Any]:
    """A step with nominal values (``values`` override some), its lots, equipment, scan."""
    step = network.bound_process(app, lot).step(step_id)
    typed = {p.name: network.nominal(p) for p in step.parameters if p.formula is None}
    body: dict[str, Any] = {
        "step": step_id,
        "scan": network.scan_code(app, lot),
        "values": typed | values,
        "material_lots": [material_lot(m.type) for m in step.materials],
    }
    if step.equipment_class:
        body["equipment"] = equipment_for(step.equipment_class)
    return body


def _started(client: TestClient, app: App, operator: Headers) -> str:
    lot = network.order(app)
    network.advance(app, lot, BatchState.ACCEPTED)
    start = f"/api/batches/{lot}/transitions/start-processing"
    scan = network.scan_code(app, lot)
    choose = client.post(start, json={"scan": scan}, headers=operator)
    assert "choose the process: CART-CD19-CONV, CART-CD19-RAPID" in _error(
        choose, 422, "invalid-input"
    )
    started = client.post(start, json={"scan": scan, "process": CONV}, headers=operator)
    assert started.status_code == 200, started.text
    assert started.json()["batch"]["state"] == "IN_PROCESS"
    return lot


def test_a_step_is_recorded_verified_and_corrected_and_the_record_shows_it(
    client: TestClient, app: App
) -> None:
    operator, second = _as(client, "operator.cp1"), _as(client, "operator2.cp1")
    lot = _started(client, app, operator)
    record = client.get(f"/api/batches/{lot}/record", headers=operator).json()
    assert (record["process"], record["process_version"], record["next_steps"]) == (
        CONV, 1, ["receipt"]
    )  # fmt: skip
    steps = f"/api/batches/{lot}/steps"

    body = _step_body(app, lot, "receipt", viability_percent=85.0, total_nucleated_cells=12.0)
    excursion = client.post(steps, json=body, headers=operator)
    assert _error(excursion, 422, "invalid-input") == (
        "step receipt: viability_percent 85 % is outside the normal range 90–100: say why in "
        "a comment"
    )
    body["comments"] = {"viability_percent": "long transit; within PAR"}
    recorded = client.post(steps, json=body, headers=operator)
    assert recorded.status_code == 201, recorded.text
    entry = recorded.json()["entry"]
    assert (entry["step"], entry["occurrence"], entry["performed_by"]) == (
        "receipt", 1, "operator.cp1"
    )  # fmt: skip
    values = {v["name"]: v for v in entry["values"]}
    assert values["viability_percent"]["outcome"] == "excursion"
    assert recorded.json()["deviations"] == []

    verify = f"/api/batches/{lot}/steps/receipt/1/verification"
    own = client.post(verify, json=_sig("operator.cp1"), headers=operator)
    assert "operator.cp1 may not verify step receipt" in _error(own, 403, "permission-denied")
    unsigned = client.post(verify, json={}, headers=second)
    assert "needs your electronic signature" in _error(unsigned, 422, "invalid-input")
    wrong = client.post(verify, json=_sig("operator2.cp1", "not-it"), headers=second)
    _error(wrong, 403, "signature-refused")
    verified = client.post(verify, json=_sig("operator2.cp1"), headers=second)
    assert verified.status_code == 200, verified.text
    assert verified.json()["verified_by"] == "operator2.cp1"
    again = client.post(verify, json=_sig(), headers=second)
    assert "verified already by operator2.cp1" in _error(again, 409, "rule-violation")

    correct = f"/api/batches/{lot}/steps/receipt/1/corrections"
    no_reason = client.post(correct, json={"parameter": "total_nucleated_cells", "value": 13,
                                           "reason": " "}, headers=operator)  # fmt: skip
    assert "needs a reason" in _error(no_reason, 422, "invalid-input")
    unknown = client.post(correct, json={"parameter": "colour", "value": 1, "reason": "x"},
                          headers=operator)  # fmt: skip
    assert "no parameter 'colour'" in _error(unknown, 422, "invalid-input")
    fixed = {"parameter": "total_nucleated_cells", "value": 13, "reason": "transcription error"}
    corrected = client.post(correct, json=fixed, headers=operator)
    assert corrected.status_code == 201, corrected.text
    value = corrected.json()
    assert (value["reported"], value["outcome"]) == (13.0, "ok")
    [correction] = value["corrections"]
    assert (correction["old"], correction["new"], correction["by"], correction["why"]) == (
        12.0, 13.0, "operator.cp1", "transcription error"
    )  # fmt: skip

    record = client.get(f"/api/batches/{lot}/record", headers=_as(client, "qa.cp1")).json()
    receipt = record["steps"][0]
    assert receipt["status"] == "awaits verification"
    [shown] = receipt["entries"]
    assert shown["verified_by"] is None  # the verifier saw 12
    assert [v["name"] for v in shown["values"]] == [  # in the MBR's order
        "bag_temperature_c", "apheresis_volume_ml", "total_nucleated_cells", "cd3_percent",
        "viability_percent",
    ]  # fmt: skip
    assert [s["signer_id"] for s in shown["signatures"]] == ["operator2.cp1"]  # kept, undone
    assert sorted(x["kind"] for x in record["exceptions"]) == [
        "correction", "excursion", "unverified"
    ]  # fmt: skip
    assert record["complete"] is False and record["next_steps"] == ["selection_activation"]


def test_a_step_is_refused_with_the_status_of_its_error_and_nothing_is_recorded(
    client: TestClient, app: App
) -> None:
    operator = _as(client, "operator.cp1")
    lot = _started(client, app, operator)
    other = network.order(app, "PT-000102")
    network.advance(app, other, BatchState.COLLECTED)
    steps = f"/api/batches/{lot}/steps"

    wrong_bag = _step_body(app, lot, "receipt") | {"scan": network.scan_code(app, other)}
    assert "hard stop" in _error(client.post(steps, json=wrong_bag, headers=operator), 409,
                                 "identity-mismatch")  # fmt: skip
    assert queries.audit_log(app, lot=lot, limit=1)[0].action == "IdentityMismatchDetected"
    unknown = _step_body(app, lot, "receipt") | {"step": "nope"}
    assert f"{CONV} has no step 'nope'" in _error(
        client.post(steps, json=unknown, headers=operator), 422, "invalid-input"
    )
    skipped = client.post(steps, json=_step_body(app, lot, "transduction"), headers=operator)
    assert "next: receipt" in _error(skipped, 409, "rule-violation")
    nan = _step_body(app, lot, "receipt")
    nan["values"]["viability_percent"] = float("nan")
    raw = json.dumps(nan)  # NaN as the literal many JSON parsers accept
    assert "NaN" in raw
    refused = client.post(steps, content=raw,
                          headers=operator | {"Content-Type": "application/json"})  # fmt: skip
    assert refused.status_code == 422
    assert [f["field"] for f in refused.json()["fields"]] == ["values.viability_percent"]
    coordinator = client.post(steps, json=_step_body(app, lot, "receipt"),
                              headers=_as(client, "coordinator.tc"))  # fmt: skip
    _error(coordinator, 403, "permission-denied")
    missing = client.post("/api/batches/CP1-2026-99999/steps", json=unknown, headers=operator)
    _error(missing, 404, "not-found")

    network.record(app, lot, "receipt")
    wrong_type = _step_body(app, lot, "selection_activation")
    wrong_type["material_lots"][0] = material_lot(VECTOR)
    assert "which this step does not use" in _error(
        client.post(steps, json=wrong_type, headers=operator), 409, "rule-violation"
    )
    no_lot = _step_body(app, lot, "selection_activation") | {"material_lots": ["LOT-NOPE"]}
    assert "material lot 'LOT-NOPE' does not exist" in _error(
        client.post(steps, json=no_lot, headers=operator), 404, "not-found"
    )
    record = client.get(f"/api/batches/{lot}/record", headers=operator).json()
    assert [len(s["entries"]) for s in record["steps"]] == [1, 0, 0, 0, 0, 0]
    assert record["materials"] == []
    no_record = network.order(app, "PT-000103")
    none_yet = client.get(f"/api/batches/{no_record}/record", headers=operator)
    assert "has no batch record yet" in _error(none_yet, 404, "not-found")


def test_a_value_outside_its_par_opens_a_deviation_that_qa_closes_with_a_signature(
    client: TestClient, app: App
) -> None:
    operator, qa = _as(client, "operator.cp1"), _as(client, "qa.cp1")
    lot = _started(client, app, operator)
    body = _step_body(app, lot, "receipt", bag_temperature_c=12.0)  # PAR 1–10, critical
    recorded = client.post(f"/api/batches/{lot}/steps", json=body, headers=operator)
    assert recorded.status_code == 201, recorded.text
    [reference] = recorded.json()["deviations"]
    values = {v["name"]: v["outcome"] for v in recorded.json()["entry"]["values"]}
    assert values["bag_temperature_c"] == "out-of-par"

    listed = client.get("/api/deviations", params={"state": "open"}, headers=qa).json()
    assert [(d["reference"], d["severity"], d["step"], d["lot"]) for d in listed] == [
        (reference, "major", "receipt #1", lot)
    ]
    by_hand = client.post("/api/deviations", json={"lot": lot, "severity": "minor",
                          "description": "label smudged"}, headers=operator)  # fmt: skip
    assert by_hand.status_code == 201, by_hand.text
    assert (by_hand.json()["severity"], by_hand.json()["state"], by_hand.json()["step"]) == (
        "minor", "OPEN", None
    )  # fmt: skip
    bad = client.post("/api/deviations", json={"lot": lot, "severity": "huge",
                      "description": "x"}, headers=operator)  # fmt: skip
    assert "severity 'huge'" in _error(bad, 422, "invalid-input")

    closure = f"/api/deviations/{reference}/closure"
    impact = {"impact": "bag within limits on arrival per logger"}
    not_qa = client.post(closure, json=impact | _sig("operator.cp1"), headers=operator)
    _error(not_qa, 403, "permission-denied")
    no_capa = client.post(closure, json=impact | _sig("qa.cp1"), headers=qa)
    assert "closing needs a CAPA reference" in _error(no_capa, 422, "invalid-input")
    unsigned = client.post(closure, json=impact | {"capa": "CAPA-3"}, headers=qa)
    assert "needs your electronic signature" in _error(unsigned, 422, "invalid-input")
    closed = client.post(closure, json=impact | {"capa": "CAPA-3"} | _sig("qa.cp1"), headers=qa)
    assert closed.status_code == 200, closed.text
    assert (closed.json()["state"], closed.json()["capa"], closed.json()["closed_by"]) == (
        "CLOSED", "CAPA-3", "qa.cp1"
    )  # fmt: skip
    twice = client.post(closure, json=impact | {"capa": "C"} | _sig(), headers=qa)
    assert "closed already" in _error(twice, 409, "rule-violation")
    closed_list = client.get("/api/deviations", params={"state": "CLOSED"}, headers=qa).json()
    assert [d["reference"] for d in closed_list] == [reference]
    assert "state 'shut'" in _error(
        client.get("/api/deviations", params={"state": "shut"}, headers=qa), 422, "invalid-input"
    )
    _error(client.post("/api/deviations/DEV-NOPE/closure", json=impact | _sig(), headers=qa),
           404, "not-found")  # fmt: skip


def test_material_lots_are_received_released_with_a_signature_and_traced_to_their_batches(
    client: TestClient, app: App
) -> None:
    logistics, qa = _as(client, "logistics.cp1"), _as(client, "qa.cp1")
    new = {"lot": "LV-26-0001", "type": VECTOR, "supplier": "VectorCo", "expiry": "2026-12-31"}
    received = client.post("/api/material-lots", json=new, headers=logistics)
    assert received.status_code == 201, received.text
    assert received.json() == new | {
        "status": "QUARANTINE", "received_at": "2026-03-02", "usable": False, "used_by": 0
    }  # fmt: skip
    _error(client.post("/api/material-lots", json=new, headers=logistics), 409,
           "duplicate-identifier")  # fmt: skip
    bad_day = client.post("/api/material-lots", json=new | {"lot": "X-1", "expiry": "2026-13-01"},
                          headers=logistics)  # fmt: skip
    assert bad_day.status_code == 422
    assert [f["field"] for f in bad_day.json()["fields"]] == ["expiry"]
    expired = client.post("/api/material-lots", json=new | {"lot": "X-2", "expiry": "2026-01-01"},
                          headers=logistics)  # fmt: skip
    assert "expired on 2026-01-01 already" in _error(expired, 422, "invalid-input")

    status = "/api/material-lots/LV-26-0001/status"
    release = {"status": "released", "reason": "CoA checked"}
    _error(client.post(status, json=release | _sig("logistics.cp1"), headers=logistics), 403,
           "permission-denied")  # fmt: skip
    assert "electronic signature" in _error(client.post(status, json=release, headers=qa), 422,
                                            "invalid-input")  # fmt: skip
    _error(client.post(status, json=release | _sig("qa.cp1", "nope-nope"), headers=qa), 403,
           "signature-refused")  # fmt: skip
    released = client.post(status, json=release | _sig("qa.cp1"), headers=qa)
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["usable"]) == ("RELEASED", True)
    signed = next(e for e in queries.audit_log(app, limit=5) if e.action == "MaterialLotReleased")
    assert (signed.entity_id, signed.actor) == ("LV-26-0001", "qa.cp1")
    assert signed.reason == "CoA checked"
    quarantine = client.post(status, json={"status": "quarantine", "reason": "x"} | _sig(),
                             headers=qa)  # fmt: skip
    assert "cannot go from RELEASED to QUARANTINE" in _error(quarantine, 409, "rule-violation")
    unknown = client.post(status, json={"status": "lost", "reason": "x"} | _sig(), headers=qa)
    assert "status 'lost'" in _error(unknown, 422, "invalid-input")

    listed = client.get("/api/material-lots", params={"type": VECTOR}, headers=qa).json()
    assert [(x["lot"], x["status"]) for x in listed] == [
        ("LV-26-0001", "RELEASED"), (material_lot(VECTOR), "RELEASED")
    ]  # fmt: skip

    # Genealogy: two batches consume the vector lot; the lot names both, each batch the lot.
    lots = [network.order(app, p) for p in ("PT-000201", "PT-000202")]
    for lot in lots:
        network.advance(app, lot, BatchState.IN_PROCESS)
        for step in ("receipt", "selection_activation", "transduction"):
            network.record(app, lot, step)
    uses = client.get(f"/api/material-lots/{material_lot(VECTOR)}/uses", headers=qa)
    assert uses.status_code == 200, uses.text
    assert uses.json()["batches"] == lots
    assert uses.json()["lot"]["used_by"] == 2
    assert [(u["batch_lot"], u["step"], u["quantity"], u["unit"]) for u in uses.json()["uses"]] == [
        (lot, "transduction", 1.0, "vial") for lot in lots
    ]
    unused = client.get("/api/material-lots/LV-26-0001/uses", headers=qa).json()
    assert (unused["batches"], unused["uses"]) == ([], [])
    record = client.get(f"/api/batches/{lots[0]}/record", headers=qa).json()
    assert (material_lot(VECTOR), "transduction") in {
        (m["material_lot"], m["step"]) for m in record["materials"]
    }
    assert record["steps"][2]["entries"][0]["materials"] == {VECTOR: material_lot(VECTOR)}
    _error(client.get("/api/material-lots/LOT-NOPE/uses", headers=qa), 404, "not-found")


def test_equipment_is_registered_calibrated_and_listed(client: TestClient) -> None:
    admin = _as(client, "admin")
    new = {"id": "BSC-07", "equipment_class": "biosafety-cabinet", "site": "CP1",
           "description": "Class II cabinet, room 2", "calibration_due": "2026-06-30"}  # fmt: skip
    registered = client.post("/api/equipment", json=new, headers=admin)
    assert registered.status_code == 201, registered.text
    assert registered.json() == new | {"in_calibration": True}
    _error(client.post("/api/equipment", json=new, headers=admin), 409, "duplicate-identifier")
    _error(client.post("/api/equipment", json=new | {"id": "BSC-08", "site": "ZZZ"},
                       headers=admin), 404, "not-found")  # fmt: skip
    operator = _as(client, "operator.cp1")
    _error(client.post("/api/equipment", json=new | {"id": "BSC-09"}, headers=operator), 403,
           "permission-denied")  # fmt: skip

    calibrate = "/api/equipment/BSC-07/calibrations"
    past = client.post(calibrate, json={"due": "2026-01-01", "reason": "CAL-1"}, headers=admin)
    assert "must lie in the future" in _error(past, 422, "invalid-input")
    done = client.post(calibrate, json={"due": "2027-06-30", "reason": "CAL-77"}, headers=admin)
    assert done.status_code == 201, done.text
    assert done.json()["calibration_due"] == "2027-06-30"
    _error(client.post("/api/equipment/NOPE/calibrations",
                       json={"due": "2027-06-30", "reason": "x"}, headers=admin), 404,
           "not-found")  # fmt: skip

    listed = client.get("/api/equipment", params={"site": "CP1"}, headers=operator).json()
    assert len(listed) == 6  # one of each class from the set-up, and BSC-07
    assert next(e for e in listed if e["id"] == "BSC-07")["calibration_due"] == "2027-06-30"
    assert client.get("/api/equipment", params={"site": "TC1"}, headers=operator).json() == []


def test_the_batch_record_routes_are_documented_and_guarded(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in (
        "/api/batches/{lot}/record", "/api/batches/{lot}/steps",
        "/api/batches/{lot}/steps/{step}/{occurrence}/corrections",
        "/api/batches/{lot}/steps/{step}/{occurrence}/verification",
        "/api/material-lots", "/api/material-lots/{lot}/status",
        "/api/material-lots/{lot}/uses", "/api/equipment", "/api/deviations",
        "/api/deviations/{reference}/closure",
    ):  # fmt: skip
        assert path in paths, path
        for operation in paths[path].values():
            assert operation["security"] == [{"HTTPBearer": []}], path
    anonymous = client.get("/api/batches/CP1-2026-00001/record")
    _error(anonymous, 401, "authentication-failed")
