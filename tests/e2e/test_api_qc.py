"""The QC and release API over HTTP (TestClient), on real SQLite and real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests import network
from tests.network import ACCEPTABLE, PASSWORD, RELEASABLE
from vein2vein.asgi import create_app
from vein2vein.domain.batch import BatchState
from vein2vein.domain.clock import FixedClock
from vein2vein.services.app import App

Headers = dict[str, str]


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


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _draw(client: TestClient, app: App, lot: str, stage: str, who: Headers) -> dict[str, Any]:
    body = {"stage": stage, "scan": network.scan_code(app, lot)}
    sample: dict[str, Any] = _ok(client.post(f"/api/batches/{lot}/samples", json=body,
                                             headers=who), 201)  # fmt: skip
    return sample


def _enter(
    client: TestClient, sample_id: str, values: dict[str, str], analyst: Headers
) -> dict[str, dict[str, Any]]:
    url = f"/api/samples/{sample_id}/results"
    entered = {}
    for attribute, value in values.items():
        body = {"attribute": attribute, "value": value}
        entered[attribute] = _ok(client.post(url, json=body, headers=analyst), 201)
    return entered


def _verify(client: TestClient, result_ids: list[int], verifier: Headers) -> None:
    for result_id in result_ids:
        _ok(client.post(f"/api/results/{result_id}/verify", json=_sig("qc2.cp1"),
                        headers=verifier))  # fmt: skip


def _qc(client: TestClient, lot: str, who: Headers) -> dict[str, Any]:
    view: dict[str, Any] = _ok(client.get(f"/api/batches/{lot}/qc", headers=who))
    return view


def _results(view: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for s in view["samples"] for r in s["results"]}


def _move(client: TestClient, lot: str, action: str, who: str, **body: Any) -> Any:
    return client.post(f"/api/batches/{lot}/transitions/{action}",
                       json={"reason": "per SOP", **body, **_sig(who)},
                       headers=_as(client, who))  # fmt: skip


def test_results_are_rounded_flagged_and_verified_by_a_second_analyst_and_qa_accepts_by_exception(
    client: TestClient, app: App
) -> None:
    operator, analyst, second = (_as(client, u) for u in ("operator.cp1", "qc.cp1", "qc2.cp1"))
    lot = network.order(app)
    network.advance(app, lot, BatchState.RECEIVED)
    sample = _draw(client, app, lot, "starting-material", operator)
    coi = client.get(f"/api/batches/{lot}", headers=operator).json()["batch"]["coi"]
    assert (sample["coi"], sample["spec"], sample["drawn_by"]) == (coi, "CART-CD19-APH v1",
                                                                  "operator.cp1")  # fmt: skip
    assert sample["outstanding"] == list(ACCEPTABLE)

    # 79.4 % reports as 79 (below 80); 48.04 h as 48.0 (not above 48): rounded, then compared.
    entered = _enter(client, sample["id"], ACCEPTABLE | {"viability": "79.4",
                     "hours_from_collection": "48.04"}, analyst)  # fmt: skip
    viability, hours = entered["viability"], entered["hours_from_collection"]
    assert (viability["reported"], viability["conformance"]) == ("79", "oos")
    assert viability["investigation"] is None  # starting material: out of criteria, no OOS
    assert (hours["reported"], hours["conformance"]) == ("48.0", "conforms")
    assert entered["cd3_percent"]["conformance"] == "reported"
    pending = client.get("/api/qc/workload", headers=operator).json()["pending"]
    assert sorted(p["attribute"] for p in pending if p["lot"] == lot) == sorted(ACCEPTABLE)
    assert {p["state"] for p in pending if p["lot"] == lot} == {"awaiting verification"}

    verify = f"/api/results/{viability['id']}/verify"
    own = client.post(verify, json=_sig("qc.cp1"), headers=analyst)
    assert "qc.cp1 may not verify" in _error(own, 403, "permission-denied")
    assert "they entered it" in own.json()["detail"]
    unsigned = client.post(verify, json={}, headers=second)
    assert "needs your electronic signature" in _error(unsigned, 422, "invalid-input")
    unchanged = _results(_qc(client, lot, operator))[viability["id"]]
    assert (unchanged["status"], unchanged["verified_by"], unchanged["verification"]) == (
        "entered", None, None
    )  # fmt: skip

    _verify(client, [r["id"] for r in entered.values()], second)
    view = _qc(client, lot, operator)
    shown = _results(view)[viability["id"]]
    assert (shown["status"], shown["verified_by"], shown["oos"]) == ("verified", "qc2.cp1", True)
    assert (shown["verification"]["signer_id"], shown["verification"]["meaning"]) == (
        "qc2.cp1", "verified"
    )  # fmt: skip
    assert shown["criterion"] == "≥ 80 %"
    assert view["acceptance"]["complete"] is True
    assert view["acceptance"]["out_of_criteria"] == [viability["id"]]
    pending = client.get("/api/qc/workload", headers=operator).json()["pending"]
    assert [p for p in pending if p["lot"] == lot] == []

    refused = _move(client, lot, "accept", "qa.cp1")
    assert "viability 79" in _error(refused, 409, "rule-violation")
    accepted = _move(client, lot, "accept", "qa.cp1",
                     exception="only apheresis possible; CD3+ count ample")  # fmt: skip
    assert _ok(accepted)["batch"]["state"] == "ACCEPTED"
    [exception] = _qc(client, lot, operator)["acceptance_exceptions"]
    assert (exception["attributes"], exception["signed_by"], exception["reason"]) == (
        ["viability"], "qa.cp1", "only apheresis possible; CD3+ count ample"
    )  # fmt: skip


def test_an_oos_result_is_invalidated_only_by_its_investigation_and_the_retest_releases(
    client: TestClient, app: App
) -> None:
    operator, analyst, second, qa = (
        _as(client, u) for u in ("operator.cp1", "qc.cp1", "qc2.cp1", "qa.cp1")
    )
    lot = network.order(app)
    network.advance(app, lot, BatchState.QC_PENDING)
    sample = _draw(client, app, lot, "release", operator)
    entered = _enter(client, sample["id"], RELEASABLE | {"endotoxin": "2.6"}, analyst)
    oos = entered["endotoxin"]
    assert (oos["conformance"], oos["reported"]) == ("oos", "2.60")
    reference = oos["investigation"]
    assert reference is not None and entered["viability"]["investigation"] is None
    _verify(client, [r["id"] for r in entered.values()], second)

    direct = client.post(f"/api/results/{oos['id']}/invalidate",
                         json={"reason": "pipetting error"}, headers=analyst)  # fmt: skip
    assert f"investigation ({reference})" in _error(direct, 409, "rule-violation")
    assert _results(_qc(client, lot, qa))[oos["id"]]["status"] == "verified"
    conclude = f"/api/oos/{reference}/conclude"
    lab_error = {"outcome": "laboratory-error", "conclusion": "diluent contaminated (lot DL-9)"}
    confirmed = client.post(conclude, json=lab_error | {"outcome": "confirmed"} | _sig("qa.cp1"),
                            headers=qa)  # fmt: skip
    assert "escalate it" in _error(confirmed, 409, "rule-violation")
    unsigned = client.post(conclude, json=lab_error, headers=qa)
    assert "needs your electronic signature" in _error(unsigned, 422, "invalid-input")
    concluded = _ok(client.post(conclude, json=lab_error | _sig("qa.cp1"), headers=qa))
    assert (concluded["outcome"], concluded["open"], concluded["closed_by"]) == (
        "laboratory-error", False, "qa.cp1"
    )  # fmt: skip
    assert [s["meaning"] for s in concluded["signatures"]] == ["approved"]

    url = f"/api/samples/{sample['id']}/results"
    plain = client.post(url, json={"attribute": "endotoxin", "value": "0.3"}, headers=analyst)
    assert "enter the new result as its retest" in _error(plain, 422, "invalid-input")
    retest = _ok(client.post(url, json={"attribute": "endotoxin", "value": "0.30",
                                        "retest_of": oos["id"]}, headers=analyst), 201)  # fmt: skip
    assert (retest["conformance"], retest["investigation"]) == ("conforms", None)
    _verify(client, [retest["id"]], second)

    blocked = _move(client, lot, "release", "qp.cp1")
    assert "batch record not reviewed" in _error(blocked, 409, "rule-violation")
    review = client.post(f"/api/batches/{lot}/record-review",
                         json={"comment": "reviewed by exception"} | _sig("qa.cp1"),
                         headers=qa)  # fmt: skip
    assert _ok(review, 201)["reviewed_by"] == "qa.cp1"

    view = _qc(client, lot, qa)
    original = _results(view)[oos["id"]]
    assert (original["status"], original["oos"], original["retested_by"]) == (
        "invalidated", True, retest["id"]
    )  # fmt: skip
    assert reference in original["invalid_reason"]
    assert view["oos_results"] == [oos["id"]]  # the flag stays
    assert view["release"]["releasable"] is True and view["release"]["blockers"] == []
    released = _ok(_move(client, lot, "release", "qp.cp1"))
    assert released["batch"]["state"] == "RELEASED"
    certificate = client.get(f"/api/batches/{lot}/coa.pdf", headers=_as(client, "dr.tc"))
    assert certificate.status_code == 200, certificate.text
    assert certificate.headers["content-type"] == "application/pdf"
    assert certificate.content.startswith(b"%PDF-")


def test_a_conditional_release_whose_culture_grows_alerts_the_treating_centre(
    client: TestClient, app: App, clock: FixedClock
) -> None:
    operator, analyst, second, qa = (
        _as(client, u) for u in ("operator.cp1", "qc.cp1", "qc2.cp1", "qa.cp1")
    )
    lot = network.order(app)
    network.advance(app, lot, BatchState.QC_PENDING)
    sample = _draw(client, app, lot, "release", operator)
    without_culture = {k: v for k, v in RELEASABLE.items() if k != "sterility_culture"}
    entered = _enter(client, sample["id"], without_culture, analyst)
    _verify(client, [r["id"] for r in entered.values()], second)
    review = {"comment": "reviewed by exception"} | _sig("qa.cp1")
    _ok(client.post(f"/api/batches/{lot}/record-review", json=review, headers=qa), 201)

    release = _qc(client, lot, qa)["release"]
    assert (release["releasable"], release["conditionally_releasable"]) == (False, True)
    assert release["pending_conditional"] == ["sterility_culture"]
    assert [(b["kind"], b["subject"]) for b in release["blockers"]] == [
        ("result missing", "sterility_culture")
    ]
    refused = _error(_move(client, lot, "release", "qp.cp1"), 409, "rule-violation")
    assert "a conditional release is possible" in refused and "sterility_culture" in refused
    conditional = _ok(_move(client, lot, "release-conditionally", "qp.cp1"))
    assert conditional["batch"]["state"] == "CONDITIONALLY_RELEASED"

    clock.advance(timedelta(days=14))
    growth = _enter(client, sample["id"], {"sterility_culture": "growth"}, analyst)
    failed = growth["sterility_culture"]
    assert failed["conformance"] == "oos"
    assert failed["alert"] is not None and failed["investigation"] is not None
    view = _qc(client, lot, qa)
    assert (view["conditional"]["status"], view["conditional"]["result_id"]) == (
        "FAILED", failed["id"]
    )  # fmt: skip
    [alert] = view["alerts"]
    assert (alert["id"], alert["treatment_centre"], alert["acknowledged_by"]) == (
        failed["alert"], "TC1", None
    )  # fmt: skip
    assert "Do not infuse" in alert["message"]
    deviations = client.get("/api/deviations", params={"state": "OPEN"}, headers=qa).json()
    assert [(d["reference"], d["severity"], d["lot"]) for d in deviations] == [
        (alert["deviation"], "critical", lot)
    ]
    coordinator = _as(client, "coordinator.tc")
    workload = _ok(client.get("/api/qc/workload", headers=coordinator))
    assert [a["id"] for a in workload["alerts"]] == [alert["id"]]

    acknowledge = f"/api/qc/alerts/{alert['id']}/acknowledge"
    note = {"note": "dose quarantined in the ward; not infused"}
    _error(client.post(acknowledge, json=note, headers=operator), 403, "permission-denied")
    empty = client.post(acknowledge, json={"note": " "}, headers=coordinator)
    assert "say what was done" in _error(empty, 422, "invalid-input")
    done = _ok(client.post(acknowledge, json=note, headers=coordinator))
    assert (done["acknowledged_by"], done["acknowledgement"]) == ("coordinator.tc", note["note"])
    again = client.post(acknowledge, json=note, headers=coordinator)
    assert "acknowledged by coordinator.tc" in _error(again, 409, "rule-violation")
    listed = _ok(client.get("/api/qc/alerts", headers=qa))
    assert [(a["id"], a["acknowledged_by"]) for a in listed] == [(alert["id"], "coordinator.tc")]
    assert _ok(client.get("/api/qc/workload", headers=coordinator))["alerts"] == []


def test_a_specification_is_imported_and_approved_by_a_second_person_with_a_signature(
    client: TestClient,
) -> None:
    admin, qa = _as(client, "admin"), _as(client, "qa.cp1")
    text = network.spec_text("cart-cd19-release.yaml").replace("\nversion: 1\n", "\nversion: 2\n")
    assert "\nversion: 2\n" in text
    broken = client.post("/api/specifications", json={"text": text.replace("stage: release",
                         "stage: final"), "source": "rel-v2.yaml"}, headers=admin)  # fmt: skip
    assert "rel-v2.yaml: 1 problem(s): stage:" in _error(broken, 422, "invalid-input")
    imported = _ok(client.post("/api/specifications", json={"text": text,
                               "source": "rel-v2.yaml"}, headers=admin), 201)  # fmt: skip
    assert (imported["code"], imported["version"], imported["status"]) == (
        "CART-CD19-REL", 2, "DRAFT"
    )  # fmt: skip
    culture = next(a for a in imported["attributes"] if a["name"] == "sterility_culture")
    assert (culture["pending_allowed_with"], culture["criterion"]) == (
        "sterility_rapid", "no growth"
    )  # fmt: skip

    approve = "/api/specifications/CART-CD19-REL/2/approve"
    reason = {"reason": "change control CC-12 reviewed"}
    _error(client.post(approve, json=reason | _sig("qa.cp1", "wrong-one"), headers=qa), 403,
           "signature-refused")  # fmt: skip
    approved = _ok(client.post(approve, json=reason | _sig("qa.cp1"), headers=qa))
    assert (approved["status"], approved["approved_by"]) == ("EFFECTIVE", "qa.cp1")
    listed = client.get("/api/specifications", headers=qa).json()
    assert [(s["version"], s["status"]) for s in listed if s["code"] == "CART-CD19-REL"] == [
        (1, "SUPERSEDED"), (2, "EFFECTIVE")
    ]  # fmt: skip
    old = _ok(client.get("/api/specifications/CART-CD19-REL", params={"version": 1}, headers=qa))
    assert old["status"] == "SUPERSEDED"
    again = client.post(approve, json=reason | _sig("qa.cp1"), headers=qa)
    assert "only a draft is approved" in _error(again, 409, "rule-violation")


def test_a_confirmed_oos_batch_is_released_only_at_the_physicians_signed_request(
    client: TestClient, app: App
) -> None:
    operator, analyst, second, qa = (
        _as(client, u) for u in ("operator.cp1", "qc.cp1", "qc2.cp1", "qa.cp1")
    )
    lot = network.order(app)
    network.advance(app, lot, BatchState.QC_PENDING)
    sample = _draw(client, app, lot, "release", operator)
    entered = _enter(client, sample["id"], RELEASABLE | {"potency": "400, 420, 410"}, analyst)
    potency = entered["potency"]
    assert (potency["reported"], potency["conformance"]) == ("410 (mean of 3)", "oos")
    _verify(client, [r["id"] for r in entered.values()], second)

    # A conforming result is invalidated with a reason, and retested.
    viability = entered["viability"]["id"]
    invalidate = f"/api/results/{viability}/invalidate"
    no_reason = client.post(invalidate, json={"reason": " "}, headers=analyst)
    assert "needs a reason" in _error(no_reason, 422, "invalid-input")
    invalid = _ok(client.post(invalidate, json={"reason": "wrong gate"}, headers=analyst))
    assert (invalid["status"], invalid["invalid_reason"]) == ("invalidated", "wrong gate")
    retest = _ok(client.post(f"/api/samples/{sample['id']}/results",
                             json={"attribute": "viability", "value": "87", "retest_of": viability},
                             headers=analyst), 201)  # fmt: skip
    _verify(client, [retest["id"]], second)
    not_oot = client.post(f"/api/results/{retest['id']}/oot-review", json={"comment": "ok"},
                          headers=qa)  # fmt: skip
    assert "is not out of trend" in _error(not_oot, 409, "rule-violation")

    reference = potency["investigation"]
    escalate = f"/api/oos/{reference}/escalate"
    empty = client.post(escalate, json={"finding": ""}, headers=analyst)
    assert "phase I finding" in _error(empty, 422, "invalid-input")
    escalated = _ok(client.post(escalate, json={"finding": "no laboratory cause found"},
                                headers=analyst))  # fmt: skip
    assert (escalated["phase"], escalated["open"]) == (2, True)
    confirmed = _ok(client.post(f"/api/oos/{reference}/conclude",
                                json={"outcome": "confirmed", "conclusion": "low potency"}
                                | _sig("qa.cp1"), headers=qa))  # fmt: skip
    assert (confirmed["outcome"], confirmed["phase"]) == ("confirmed", 2)
    review = {"comment": "reviewed by exception"} | _sig("qa.cp1")
    _ok(client.post(f"/api/batches/{lot}/record-review", json=review, headers=qa), 201)

    release = _qc(client, lot, qa)["release"]
    assert (release["releasable"], release["releasable_oos"]) == (False, True)
    assert [(b["kind"], b["subject"]) for b in release["blockers"]] == [
        ("out of specification", "potency")
    ]
    unrequested = _move(client, lot, "release-oos", "qp.cp1")
    assert "no signed request" in _error(unrequested, 409, "rule-violation")
    ask = f"/api/batches/{lot}/oos-release-request"
    request = {"reason": "no alternative therapy; progressing disease", "document": "TC1-L-77"}
    _error(client.post(ask, json=request | _sig("qa.cp1"), headers=qa), 403, "permission-denied")
    physician = _as(client, "dr.tc")
    requested = _ok(client.post(ask, json=request | _sig("dr.tc"), headers=physician), 201)
    assert (requested["kind"], requested["attributes"], requested["signed_by"]) == (
        "oos-release-request", ["potency"], "dr.tc"
    )  # fmt: skip
    released = _ok(_move(client, lot, "release-oos", "qp.cp1"))
    assert released["batch"]["state"] == "RELEASED_OOS"
    view = _qc(client, lot, qa)
    assert [r["document"] for r in view["oos_requests"]] == ["TC1-L-77"]
    assert view["oos_results"] == [potency["id"]]
    assert {s["meaning"] for s in view["signatures"]} >= {"requested", "released", "reviewed"}


QC_PATHS = (
    "/api/specifications", "/api/specifications/{code}",
    "/api/specifications/{code}/{version}/approve", "/api/batches/{lot}/samples",
    "/api/samples/{sample_id}/results", "/api/results/{result_id}/verify",
    "/api/results/{result_id}/invalidate", "/api/results/{result_id}/oot-review",
    "/api/oos/{reference}/escalate", "/api/oos/{reference}/conclude",
    "/api/batches/{lot}/record-review", "/api/batches/{lot}/oos-release-request",
    "/api/batches/{lot}/qc", "/api/qc/workload", "/api/qc/alerts",
    "/api/qc/alerts/{alert_id}/acknowledge", "/api/batches/{lot}/coa.pdf",
)  # fmt: skip


def test_the_qc_routes_are_documented_named_and_guarded(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in QC_PATHS:
        assert path in paths, path
        for operation in paths[path].values():
            assert operation["security"] == [{"HTTPBearer": []}], path
            assert operation["operationId"].startswith("api_qc_"), path
    pdf = paths["/api/batches/{lot}/coa.pdf"]["get"]["responses"]["200"]
    assert "application/pdf" in pdf["content"]
    asgi = client.app
    assert isinstance(asgi, FastAPI)
    walk = getattr(fastapi.routing, "iter_route_contexts", lambda routes: routes)
    names = [getattr(route, "name", None) for route in walk(asgi.routes)]
    qc_names = [n for n in names if n and n.startswith("api_qc_")]
    assert len(qc_names) == 18
    duplicated = {n for n in names if n and names.count(n) > 1}
    assert duplicated == set(), "route names are unique across the API and the pages"
    assert asgi.url_path_for("api_qc_batch", lot="CP1-2026-00001") == (
        "/api/batches/CP1-2026-00001/qc"
    )
    for method, path in (
        ("GET", "/api/batches/CP1-2026-00001/qc"), ("GET", "/api/qc/workload"),
        ("POST", "/api/results/1/verify"), ("GET", "/api/specifications"),
    ):  # fmt: skip
        response = client.request(method, path, json=_sig())
        _error(response, 401, "authentication-failed")
