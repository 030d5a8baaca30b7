"""The JSON API over HTTP (TestClient), on real SQLite and real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import network
from vein2vein.asgi import create_app
from vein2vein.domain.batch import BatchState
from vein2vein.services.app import App


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    network.small_network(app)
    with TestClient(create_app(app)) as test_client:
        yield test_client


ORDER = {
    "actor": "coordinator",
    "pseudonym": "PT-000777",
    "year_of_birth": 1971,
    "weight_kg": 68.5,
    "product": "CART-CD19",
    "treatment_centre": "TC1",
    "manufacturing_site": "CP1",
}


def _order(client: TestClient) -> dict[str, Any]:
    response = client.post("/api/orders", json=ORDER)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _detail(client: TestClient, lot: str) -> dict[str, Any]:
    response = client.get(f"/api/batches/{lot}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_order_opens_a_batch_that_walks_to_the_manufacturing_site(client: TestClient) -> None:
    placed = _order(client)
    lot = placed["lot"]
    assert placed["coi"].startswith("CHG1234")

    detail = _detail(client, lot)
    assert detail["batch"]["state"] == "ORDERED"
    assert [a["action"] for a in detail["actions"]] == ["collect", "hold", "terminate"]
    assert detail["identity"]["coi"] == placed["coi"]
    assert detail["identity"]["demonstration"] is True

    collected = client.post(
        f"/api/batches/{lot}/transitions/collect",
        json={"actor": "nurse.a", "temperature_c": 4.0, "expected_version": 1},
    )
    assert collected.status_code == 200, collected.text
    identity = collected.json()["identity"]
    assert identity["din"] is not None and identity["check_character"] is not None

    dispatched = client.post(
        f"/api/batches/{lot}/transitions/dispatch",
        json={
            "actor": "nurse.a",
            "scan": identity["din_data_content"],
            "to_party": "MedCourier",
            "expected_version": 2,
        },
    )
    assert dispatched.status_code == 200, dispatched.text
    body = dispatched.json()
    assert body["batch"]["state"] == "IN_TRANSIT"
    assert body["batch"]["version"] == 3
    assert [c["action"] for c in body["custody"]] == ["collect", "dispatch"]
    assert body["custody"][1]["to_party"] == "MedCourier"
    assert body["audit_check"] == {"ok": True, "checked": len(body["audit"]), "broken": []}

    listed = client.get("/api/batches", params={"state": "in_transit", "site": "CP1"})
    assert [b["lot"] for b in listed.json()] == [lot]
    verify = client.get("/api/audit/verify").json()
    assert verify["ok"] is True and verify["first_break"] is None


def test_a_scan_of_another_patients_bag_is_a_409_identity_mismatch_and_is_recorded(
    client: TestClient, app: App
) -> None:
    mine = _order(client)["lot"]
    other = network.order(app, "PT-000888")
    network.advance(app, mine, BatchState.COLLECTED)
    network.advance(app, other, BatchState.COLLECTED)

    response = client.post(
        f"/api/batches/{mine}/transitions/dispatch",
        json={"actor": "nurse.a", "scan": network.scan_code(app, other)},
    )

    assert response.status_code == 409
    assert response.json()["error"] == "identity-mismatch"
    assert "hard stop" in response.json()["detail"]
    detail = _detail(client, mine)
    assert detail["batch"]["state"] == "COLLECTED"
    assert detail["audit"][0]["action"] == "IdentityMismatchDetected"


def test_a_spot_check_scan_answers_whether_the_label_matches(client: TestClient) -> None:
    lot = _order(client)["lot"]
    coi = _detail(client, lot)["identity"]["coi_data_content"]

    good = client.post(f"/api/batches/{lot}/scan", json={"actor": "qa.b", "scan": coi})
    assert good.status_code == 200
    assert good.json()["matches"] is True

    unreadable = client.post(f"/api/batches/{lot}/scan", json={"actor": "qa.b", "scan": "hello"})
    assert unreadable.status_code == 422
    assert unreadable.json()["error"] == "invalid-scan"


def test_a_stale_expected_version_is_a_409_conflict_and_changes_nothing(
    client: TestClient,
) -> None:
    lot = _order(client)["lot"]
    hold = client.post(
        f"/api/batches/{lot}/transitions/hold",
        json={"actor": "qa.b", "reason": "awaiting consent copy", "expected_version": 1},
    )
    assert hold.status_code == 200

    stale = client.post(
        f"/api/batches/{lot}/transitions/terminate",
        json={"actor": "qa.c", "reason": "duplicate order", "expected_version": 1},
    )

    assert stale.status_code == 409
    assert stale.json()["error"] == "conflict"
    assert "version 1" in stale.json()["detail"]
    assert _detail(client, lot)["batch"]["state"] == "ON_HOLD"


def test_an_action_the_state_does_not_allow_is_a_409_naming_what_is_allowed(
    client: TestClient,
) -> None:
    lot = _order(client)["lot"]
    response = client.post(
        f"/api/batches/{lot}/transitions/infuse", json={"actor": "nurse.a", "scan": "x"}
    )
    assert response.status_code == 409
    assert response.json()["error"] == "transition-refused"
    assert "allowed now: collect, hold, terminate" in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"actor": None}, "actor"),
        ({"weight_kg": "heavy"}, "weight_kg"),
        ({"year_of_birth": None}, "year_of_birth"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_malformed_order_is_a_422_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**ORDER, **change}.items() if v is not None}
    response = client.post("/api/orders", json=body)
    assert response.status_code == 422
    error = response.json()
    assert error["error"] == "invalid-input"
    assert [f["field"] for f in error["fields"]] == [field]
    assert error["detail"].startswith(f"{field}: ")


def test_a_rule_of_the_domain_is_a_422_with_its_own_code_and_message(client: TestClient) -> None:
    response = client.post("/api/orders", json={**ORDER, "treatment_centre": "CP1"})
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid-input",
        "detail": "treatment_centre CP1: is a manufacturing-facility, not a treatment centre",
    }


def test_an_unknown_lot_is_a_404_in_json(client: TestClient) -> None:
    response = client.get("/api/batches/CP1-2026-99999")
    assert response.status_code == 404
    assert response.json() == {
        "error": "not-found",
        "detail": "batch 'CP1-2026-99999' does not exist",
    }
    missing = client.post(
        "/api/batches/CP1-2026-99999/transitions/collect", json={"actor": "nurse.a"}
    )
    assert missing.status_code == 404


def test_an_unknown_state_filter_is_a_422(client: TestClient) -> None:
    response = client.get("/api/batches", params={"state": "BOILING"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid-input"
    assert response.json()["detail"].startswith("state 'BOILING'")


def test_an_unknown_address_is_a_404_in_the_same_json_shape(client: TestClient) -> None:
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "not-found", "detail": "Not Found"}
    wrong_method = client.delete("/api/orders")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "http-405"


def test_the_docs_page_loads_swagger_ui_from_this_server_and_documents_only_the_api(
    client: TestClient,
) -> None:
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    for asset in ("vendor/swagger-ui-bundle.js", "vendor/swagger-ui.css", "favicon.svg"):
        assert f'"http://testserver/static/{asset}"' in docs.text
    assert "cdn.jsdelivr.net" not in docs.text and "fastapi.tiangolo.com" not in docs.text
    assert '"validatorUrl": null' in docs.text
    assert "url: '/api/openapi.json'" in docs.text
    assert client.get("/api/redoc").status_code == 404
    assert client.get("/docs").status_code == 404

    paths = client.get("/api/openapi.json").json()["paths"]
    assert "/api/batches/{lot}" in paths
    assert [p for p in paths if not p.startswith("/api/")] == []
