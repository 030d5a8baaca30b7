"""The JSON API over HTTP (TestClient), on real SQLite and real PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests import network
from tests.network import PASSWORD
from vein2vein.asgi import create_app
from vein2vein.domain.batch import BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.services import auth, queries
from vein2vein.services.app import App

Headers = dict[str, str]


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    network.small_network(app)
    with TestClient(create_app(app)) as test_client:
        yield test_client


def _sign_in(client: TestClient, user_id: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/api/tokens", json={"user_id": user_id, "password": password})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _as(client: TestClient, user_id: str) -> Headers:
    """The Authorization header of a fresh API token of ``user_id``."""
    return {"Authorization": f"Bearer {_sign_in(client, user_id)['token']}"}


@pytest.fixture
def coordinator(client: TestClient) -> Headers:
    return _as(client, "coordinator.tc")


@pytest.fixture
def qa(client: TestClient) -> Headers:
    return _as(client, "qa.cp1")


def _audit_names(app: App, lot: str | None = None) -> list[str]:
    return [e.action for e in queries.audit_log(app, lot=lot, limit=200)]


ORDER = {
    "pseudonym": "PT-000777",
    "year_of_birth": 1971,
    "weight_kg": 68.5,
    "product": "CART-CD19",
    "treatment_centre": "TC1",
    "manufacturing_site": "CP1",
}


def _order(client: TestClient, headers: Headers) -> dict[str, Any]:
    response = client.post("/api/orders", json=ORDER, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _detail(client: TestClient, lot: str, headers: Headers) -> dict[str, Any]:
    response = client.get(f"/api/batches/{lot}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_order_opens_a_batch_that_walks_to_the_manufacturing_site(
    client: TestClient, coordinator: Headers, qa: Headers
) -> None:
    placed = _order(client, coordinator)
    lot = placed["lot"]
    assert placed["coi"].startswith("CHG1234")

    detail = _detail(client, lot, coordinator)
    assert detail["batch"]["state"] == "ORDERED"
    assert [a["action"] for a in detail["actions"]] == ["collect", "hold", "terminate"]
    assert detail["identity"]["coi"] == placed["coi"]
    assert detail["identity"]["demonstration"] is True
    assert detail["audit"][0]["actor"] == "coordinator.tc"

    collected = client.post(
        f"/api/batches/{lot}/transitions/collect",
        json={"temperature_c": 4.0, "expected_version": 1},
        headers=coordinator,
    )
    assert collected.status_code == 200, collected.text
    identity = collected.json()["identity"]
    assert identity["din"] is not None and identity["check_character"] is not None

    dispatched = client.post(
        f"/api/batches/{lot}/transitions/dispatch",
        json={
            "scan": identity["din_data_content"],
            "to_party": "MedCourier",
            "expected_version": 2,
        },
        headers=coordinator,
    )
    assert dispatched.status_code == 200, dispatched.text
    body = dispatched.json()
    assert body["batch"]["state"] == "IN_TRANSIT"
    assert body["batch"]["version"] == 3
    assert [c["action"] for c in body["custody"]] == ["collect", "dispatch"]
    assert body["custody"][1]["to_party"] == "MedCourier"
    assert body["custody"][1]["recorded_by"] == "coordinator.tc"
    assert body["audit_check"] == {"ok": True, "checked": len(body["audit"]), "broken": []}
    assert body["signatures"] == []

    listed = client.get(
        "/api/batches", params={"state": "in_transit", "site": "CP1"}, headers=coordinator
    )
    assert [b["lot"] for b in listed.json()] == [lot]
    verify = client.get("/api/audit/verify", headers=qa).json()
    assert verify["ok"] is True and verify["first_break"] is None


def test_a_scan_of_another_patients_bag_is_a_409_identity_mismatch_and_is_recorded(
    client: TestClient, app: App, coordinator: Headers
) -> None:
    mine = _order(client, coordinator)["lot"]
    other = network.order(app, "PT-000888")
    network.advance(app, mine, BatchState.COLLECTED)
    network.advance(app, other, BatchState.COLLECTED)

    response = client.post(
        f"/api/batches/{mine}/transitions/dispatch",
        json={"scan": network.scan_code(app, other)},
        headers=coordinator,
    )

    assert response.status_code == 409
    assert response.json()["error"] == "identity-mismatch"
    assert "hard stop" in response.json()["detail"]
    detail = _detail(client, mine, coordinator)
    assert detail["batch"]["state"] == "COLLECTED"
    assert detail["audit"][0]["action"] == "IdentityMismatchDetected"
    assert detail["audit"][0]["actor"] == "coordinator.tc"


def test_a_spot_check_scan_answers_whether_the_label_matches(
    client: TestClient, coordinator: Headers, qa: Headers
) -> None:
    lot = _order(client, coordinator)["lot"]
    coi = _detail(client, lot, qa)["identity"]["coi_data_content"]

    good = client.post(f"/api/batches/{lot}/scan", json={"scan": coi}, headers=qa)
    assert good.status_code == 200
    assert good.json()["matches"] is True

    unreadable = client.post(f"/api/batches/{lot}/scan", json={"scan": "hello"}, headers=qa)
    assert unreadable.status_code == 422
    assert unreadable.json()["error"] == "invalid-scan"


def test_a_stale_expected_version_is_a_409_conflict_and_changes_nothing(
    client: TestClient, coordinator: Headers, qa: Headers
) -> None:
    lot = _order(client, coordinator)["lot"]
    hold = client.post(
        f"/api/batches/{lot}/transitions/hold",
        json={"reason": "awaiting consent copy", "expected_version": 1},
        headers=qa,
    )
    assert hold.status_code == 200

    stale = client.post(
        f"/api/batches/{lot}/transitions/terminate",
        json={"reason": "duplicate order", "expected_version": 1},
        headers=_as(client, "qa2.cp1"),
    )

    assert stale.status_code == 409
    assert stale.json()["error"] == "conflict"
    assert "version 1" in stale.json()["detail"]
    assert _detail(client, lot, qa)["batch"]["state"] == "ON_HOLD"


def test_an_action_the_state_does_not_allow_is_a_409_naming_what_is_allowed(
    client: TestClient, coordinator: Headers
) -> None:
    lot = _order(client, coordinator)["lot"]
    response = client.post(
        f"/api/batches/{lot}/transitions/infuse", json={"scan": "x"}, headers=coordinator
    )
    assert response.status_code == 409
    assert response.json()["error"] == "transition-refused"
    assert "allowed now: collect, hold, terminate" in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pseudonym": None}, "pseudonym"),
        ({"weight_kg": "heavy"}, "weight_kg"),
        ({"year_of_birth": None}, "year_of_birth"),
        ({"colour": "blue"}, "colour"),
        ({"actor": "someone.else"}, "actor"),  # who acts comes from the token, not the body
    ],
)
def test_a_malformed_order_is_a_422_naming_the_field(
    client: TestClient, coordinator: Headers, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**ORDER, **change}.items() if v is not None}
    response = client.post("/api/orders", json=body, headers=coordinator)
    assert response.status_code == 422
    error = response.json()
    assert error["error"] == "invalid-input"
    assert [f["field"] for f in error["fields"]] == [field]
    assert error["detail"].startswith(f"{field}: ")


def test_a_rule_of_the_domain_is_a_422_with_its_own_code_and_message(
    client: TestClient, coordinator: Headers
) -> None:
    response = client.post(
        "/api/orders", json={**ORDER, "manufacturing_site": "TC2"}, headers=coordinator
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid-input",
        "detail": "manufacturing_site TC2: is a treatment-centre, which does not manufacture",
    }
    # A treatment centre outside the coordinator's scope is refused before any rule.
    outside = client.post(
        "/api/orders", json={**ORDER, "treatment_centre": "CP1"}, headers=coordinator
    )
    assert outside.status_code == 403
    assert outside.json()["error"] == "permission-denied"


def test_an_unknown_lot_is_a_404_in_json(client: TestClient, coordinator: Headers) -> None:
    response = client.get("/api/batches/CP1-2026-99999", headers=coordinator)
    assert response.status_code == 404
    assert response.json() == {
        "error": "not-found",
        "detail": "batch 'CP1-2026-99999' does not exist",
    }
    missing = client.post(
        "/api/batches/CP1-2026-99999/transitions/collect", json={}, headers=coordinator
    )
    assert missing.status_code == 404


def test_an_unknown_state_filter_is_a_422(client: TestClient, coordinator: Headers) -> None:
    response = client.get("/api/batches", params={"state": "BOILING"}, headers=coordinator)
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

    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    assert "/api/batches/{lot}" in paths
    assert [p for p in paths if not p.startswith("/api/")] == []
    # The docs offer the bearer token; every operation but sign-in asks for it.
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    open_ops = [
        (method, path)
        for path, ops in paths.items()
        for method, op in ops.items()
        if not op.get("security")
    ]
    assert open_ops == [("post", "/api/tokens")]


# -- sign-in, tokens and permissions ----------------------------------------------------------

# The only API routes that answer without a token: sign-in itself, and the docs page.
OPEN_ROUTES = {("POST", "/api/tokens"), ("GET", "/api/docs")}


def _api_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) of the API, its path parameters filled in, from the app's routes.

    FastAPI 0.165 keeps an included router as one route; ``iter_route_contexts`` walks them.
    """
    asgi = client.app
    assert isinstance(asgi, FastAPI)
    walk = getattr(fastapi.routing, "iter_route_contexts", lambda routes: routes)
    found: list[tuple[str, str]] = []
    for route in walk(asgi.routes):
        path = route.path
        if not path or not path.startswith("/api/") or path == "/api/openapi.json":
            continue
        path = re.sub(r"\{[^}]+\}", "x1", path)
        found.extend((method, path) for method in sorted(route.methods or ()))
    assert found, "no API route found: has FastAPI changed how it keeps routes?"
    return found


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer nonsense", "Bearer v2v_0000_notasecret", "Basic dXNlcjpwYXNz", "Bearer "],
)
def test_every_api_route_but_sign_in_answers_401_without_a_valid_token(
    client: TestClient, authorization: str | None
) -> None:
    routes = _api_routes(client)
    guarded = [r for r in routes if (r[0], r[1].replace("x1", "{}")) not in OPEN_ROUTES]
    assert ("POST", "/api/orders") in guarded and ("GET", "/api/me") in guarded
    assert len(guarded) == len(routes) - len(OPEN_ROUTES)
    headers = {"Authorization": authorization} if authorization is not None else {}
    for method, path in guarded:
        response = client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)
        assert response.json()["error"] == "authentication-failed", (method, path)


def test_a_token_says_who_it_is_and_stops_working_once_revoked(
    client: TestClient, app: App
) -> None:
    signed = _sign_in(client, "QP.cp1")  # user ids are not case-sensitive
    assert signed["user_id"] == "qp.cp1"
    assert signed["full_name"] == "Dr Kim Lee"
    assert signed["roles"] == ["qp"]
    assert signed["token"].startswith(f"v2v_{signed['token_id']}_")
    headers = {"Authorization": f"Bearer {signed['token']}"}

    me = client.get("/api/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["user_id"] == "qp.cp1" and me.json()["sites"] == ["CP1"]
    assert me.json()["token_id"] == signed["token_id"]

    revoked = client.delete(f"/api/tokens/{signed['token_id']}", headers=headers)
    assert revoked.status_code == 204 and revoked.content == b""

    after = client.get("/api/me", headers=headers)
    assert after.status_code == 401
    assert after.headers["WWW-Authenticate"].startswith("Bearer")
    assert "revoked" in after.json()["detail"]
    assert "CredentialRevoked" in _audit_names(app)


def test_an_expired_token_or_a_web_session_is_not_accepted_by_the_api(
    client: TestClient, app: App, clock: FixedClock
) -> None:
    session = auth.sign_in(app.uow(), user_id="qa.cp1", password=PASSWORD, kind="session")
    as_session = client.get("/api/me", headers={"Authorization": f"Bearer {session.token}"})
    assert as_session.status_code == 401  # a web session's cookie is not an API token

    headers = _as(client, "qa.cp1")
    assert client.get("/api/me", headers=headers).status_code == 200
    clock.advance(timedelta(days=app.settings.token_days, seconds=1))
    expired = client.get("/api/me", headers=headers)
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]
    assert expired.headers["WWW-Authenticate"].startswith("Bearer")


def test_only_an_administrator_revokes_someone_elses_token(client: TestClient, app: App) -> None:
    victim = _sign_in(client, "operator.cp1")
    victim_headers = {"Authorization": f"Bearer {victim['token']}"}

    refused = client.delete(f"/api/tokens/{victim['token_id']}", headers=_as(client, "qa.cp1"))
    assert refused.status_code == 403
    assert refused.json()["error"] == "permission-denied"
    assert client.get("/api/me", headers=victim_headers).status_code == 200

    done = client.delete(
        f"/api/tokens/{victim['token_id']}",
        params={"reason": "laptop lost"},
        headers=_as(client, "admin"),
    )
    assert done.status_code == 204
    assert client.get("/api/me", headers=victim_headers).status_code == 401
    assert client.delete("/api/tokens/nope", headers=_as(client, "admin")).status_code == 404


def test_a_role_the_table_does_not_allow_is_a_403_and_the_attempt_is_recorded(
    client: TestClient, app: App, coordinator: Headers
) -> None:
    lot = network.order(app)
    network.advance(app, lot, BatchState.QC_PENDING)

    response = client.post(
        f"/api/batches/{lot}/transitions/release",
        json={"signature": {"user_id": "coordinator.tc", "password": PASSWORD}},
        headers=coordinator,
    )

    assert response.status_code == 403
    assert response.json()["error"] == "permission-denied"
    assert "coordinator.tc may not batch.release" in response.json()["detail"]
    detail = _detail(client, lot, coordinator)
    assert detail["batch"]["state"] == "QC_PENDING"
    denied = detail["audit"][0]
    assert denied["action"] == "PermissionDenied" and denied["actor"] == "coordinator.tc"
    assert denied["new"]["permission"] == "batch.release"

    # Reading the chain's verification is for QA, QPs and administrators only.
    verify = client.get("/api/audit/verify", headers=coordinator)
    assert verify.status_code == 403
    assert verify.json()["error"] == "permission-denied"


def test_a_release_is_signed_with_the_password_and_the_signature_shows_beside_its_record(
    client: TestClient, app: App
) -> None:
    lot = network.order(app)
    network.advance(app, lot, BatchState.QC_PENDING)
    network.pass_release_qc(app, lot)
    qp = _as(client, "qp.cp1")
    release = f"/api/batches/{lot}/transitions/release"

    actions = {a["action"]: a["signature"] for a in _detail(client, lot, qp)["actions"]}
    assert actions["release"] == "released" and actions["hold"] is None

    unsigned = client.post(release, json={}, headers=qp)
    assert unsigned.status_code == 422
    assert unsigned.json()["error"] == "invalid-input"
    assert "electronic signature" in unsigned.json()["detail"]

    no_user_id = client.post(release, json={"signature": {"password": PASSWORD}}, headers=qp)
    assert no_user_id.status_code == 422
    assert "first signature" in no_user_id.json()["detail"]

    wrong = client.post(
        release,
        json={"signature": {"user_id": "qp.cp1", "password": "not-my-password"}},
        headers=qp,
    )
    # Still signed in: a refused signature is 403, not a dead token's 401.
    assert wrong.status_code == 403
    assert wrong.json()["error"] == "signature-refused"
    assert "WWW-Authenticate" not in wrong.headers
    refused = queries.audit_log(app, limit=20)
    refusal = next(e for e in refused if e.action == "SignatureRefused")
    assert (refusal.entity_id, refusal.new["user"]) == (lot, "qp.cp1")  # in the batch's trail
    assert _detail(client, lot, qp)["batch"]["state"] == "QC_PENDING"

    signed = client.post(
        release,
        json={"reason": "meets spec", "signature": {"user_id": "qp.cp1", "password": PASSWORD}},
        headers=qp,
    )

    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["batch"]["state"] == "RELEASED"
    [signature] = [s for s in body["signatures"] if s["meaning"] == "released"]
    assert signature["signer_id"] == "qp.cp1"
    assert signature["signer_name"] == "Dr Kim Lee"
    assert signature["meaning"] == "released"
    assert signature["matches"] is True
    assert signature["signed_at"].endswith("UTC")
    on_record = {e["seq"]: e for e in body["audit"] if e["signature"] is not None}
    assert sorted(on_record) == sorted(s["seq"] for s in body["signatures"])  # accept, release
    released = on_record[signature["seq"]]
    assert released["signature"] == signature
    assert released["action"] == "BatchReleased" and released["actor"] == "qp.cp1"


def test_five_wrong_passwords_lock_the_account_and_the_lock_is_recorded(
    client: TestClient, app: App
) -> None:
    token = _as(client, "planner.net")
    wrong = {"user_id": "planner.net", "password": "guess-again-2026"}
    answers = [client.post("/api/tokens", json=wrong) for _ in range(5)]

    assert [a.status_code for a in answers] == [401] * 5
    assert [a.json()["error"] for a in answers[:4]] == ["authentication-failed"] * 4
    assert answers[4].json()["error"] == "account-locked"
    assert answers[4].headers["WWW-Authenticate"].startswith("Bearer")

    right = client.post("/api/tokens", json={"user_id": "planner.net", "password": PASSWORD})
    assert right.status_code == 401 and right.json()["error"] == "account-locked"
    assert client.get("/api/me", headers=token).status_code == 401  # its tokens stop too

    names = _audit_names(app)
    assert names.count("SignInFailed") == 5
    assert "AccountLocked" in names
    locked = [e for e in queries.audit_log(app, limit=50) if e.action == "AccountLocked"]
    assert locked[0].entity_id == "planner.net"


def test_an_unknown_user_is_refused_like_a_wrong_password(client: TestClient) -> None:
    unknown = client.post("/api/tokens", json={"user_id": "nobody", "password": PASSWORD})
    wrong = client.post("/api/tokens", json={"user_id": "qa.cp1", "password": "nope-nope-1"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_records_are_never_cached_nor_framed(client: TestClient, qa: Headers) -> None:
    for path, headers in (("/api/me", qa), ("/api/batches", qa), ("/login", {})):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path
    static = client.get("/static/app.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("Cache-Control", "")
