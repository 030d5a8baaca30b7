"""QC and release from the command line: a real ``v2v`` process on a real database.

The plant (people, sites, the example MBRs and specifications effective) and whatever a test
is not about are set up through the services, as ``tests.network`` does for every other
test; what a test is about is done with ``v2v qc …``, each person in a terminal of their
own. The first signature of a terminal's session asks for the user id, then the password.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from tests import network
from tests.conftest import settings_for
from tests.e2e.test_cli_records import Plant, as_json, words
from tests.network import PASSWORD, RELEASABLE
from vein2vein.domain.batch import Action, BatchState
from vein2vein.domain.clock import SystemClock
from vein2vein.services import qc
from vein2vein.services.app import App
from vein2vein.services.auth import Signing

FIRST = {user: f"{user}\n{PASSWORD}\n" for user in network.STAFF}  # first signature
AGAIN = f"{PASSWORD}\n"  # every later one


@pytest.fixture
def lab(database_url: str) -> Iterator[Plant]:
    """The small network and one batch ordered (each test walks it where it needs it)."""
    app = App.connect(database_url, clock=SystemClock(), settings=settings_for(database_url))
    app.upgrade()
    network.small_network(app, processes=True)
    yield Plant(app, database_url, network.order(app), {})
    app.dispose()


def _id(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found, (pattern, text)
    return found.group(1)


def _spec_file(tmp_path: Path, name: str, *changes: tuple[str, str]) -> Path:
    text = resources.files("vein2vein.examples").joinpath("spec", name).read_text("utf-8")
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_specification_is_imported_then_approved_with_a_signature_and_a_bad_one_refused(
    lab: Plant, tmp_path: Path
) -> None:
    admin, qa = lab("admin"), lab("qa.cp1")
    bad = _spec_file(
        tmp_path, "cart-cd19-release.yaml",
        ("\nversion: 1\n", "\nversion: 2\n"),
        ("precision: 0, min: 70}", "precision: 0, min: 70, max: 10}"),
        ("method: car-flow,", "method: car-facs,"),
    )  # fmt: skip
    refused = admin("qc", "spec", "import", str(bad), code=2)
    assert "attributes.viability: min 70 > max 10" in refused.stderr
    assert "attributes.car_percent.method: 'car-facs' is not among the methods" in refused.stderr
    assert len(as_json(admin("qc", "spec", "list", "--json"))) == 3  # nothing written

    newer = _spec_file(
        tmp_path, "cart-cd19-release.yaml",
        ("\nversion: 1\n", "\nversion: 2\n"),
        ("unit: EU/mL, precision: 2, max: 2.5}", "unit: EU/mL, precision: 2, max: 1.0}"),
    )  # fmt: skip
    imported = admin("qc", "spec", "import", str(newer))
    assert "CART-CD19-REL v2 (release of CART-CD19) imported as a draft" in imported.stdout
    # Only QA approves: the administrator is refused without being asked for a password.
    denied = admin("qc", "spec", "approve", "CART-CD19-REL", "2", "--reason", "x", code=11)
    assert denied.stderr.startswith("error[permission-denied]:")
    approved = qa("qc", "spec", "approve", "CART-CD19-REL", "2",
                  "--reason", "endotoxin limit tightened", input=FIRST["qa.cp1"])  # fmt: skip
    assert "First signature of this session (approved)" in approved.stdout
    assert "CART-CD19-REL v2 is effective (approved, signed)" in approved.stdout

    listed = as_json(qa("qc", "spec", "list", "--json"))
    release = [(v["version"], v["status"], v["approved_by"]) for v in listed
               if v["code"] == "CART-CD19-REL"]  # fmt: skip
    assert release == [(1, "SUPERSEDED", "qa.cp1"), (2, "EFFECTIVE", "qa.cp1")]
    shown = as_json(qa("qc", "spec", "show", "CART-CD19-REL", "--json"))
    assert (shown["version"], shown["status"], shown["imported_by"]) == (2, "EFFECTIVE", "admin")
    endotoxin = {a["name"]: a for a in shown["attributes"]}["endotoxin"]
    assert (endotoxin["criterion"], endotoxin["method"], endotoxin["method_version"],
            endotoxin["turnaround_hours"]) == (
        "≤ 1 EU/mL", "endotoxin-lal", "1.4", 4.0
    )  # fmt: skip
    old = words(qa("qc", "spec", "show", "CART-CD19-REL", "--version", "1").stdout)
    assert "(CART-CD19-REL v1, release of CART-CD19) — SUPERSEDED" in old
    assert "endotoxin Endotoxin ≤ 2.5 EU/mL endotoxin-lal: Endotoxin, kinetic chromogenic" in old
    log = as_json(qa("audit", "log", "--limit", "3", "--json"))
    assert "SpecificationApproved" in [e["action"] for e in log]


def test_an_apheresis_out_of_criteria_is_accepted_only_as_a_signed_exception(
    lab: Plant,
) -> None:
    network.advance(lab.app, lab.lot, BatchState.RECEIVED)
    operator, analyst, second, qa = (lab(u) for u in ("operator.cp1", "qc.cp1", "qc2.cp1",
                                                      "qa.cp1"))  # fmt: skip
    drawn = operator("qc", "sample", lab.lot, "--stage", "starting-material", "--scan", lab.scan)
    sample = _id(r"sample (SMP-\d{4}-\d{6}) drawn", drawn.stdout)
    others = {k: v for k, v in network.ACCEPTABLE.items() if k not in ("tnc", "viability")}
    network.results(lab.app, sample, others)

    low = analyst("qc", "result", "enter", sample, "tnc", "1.5")
    tnc = _id(r"result (\d+): tnc 1\.50 10\^9 cells — OUT OF CRITERIA", low.stdout)
    assert "OUT OF THE ACCEPTANCE CRITERIA" in low.stdout
    ok = analyst("qc", "result", "enter", sample, "viability", "96",
                 "--instrument", "FLOW-1", "--method-version", "3.0")  # fmt: skip
    viability = _id(r"result (\d+): viability 96 % — conforms", ok.stdout)
    own = analyst("qc", "result", "verify", tnc, input=FIRST["qc.cp1"], code=11)
    assert f"qc.cp1 may not verify result {tnc}: they entered it" in own.stderr
    verified = second("qc", "result", "verify", tnc, input=FIRST["qc2.cp1"])
    assert f"result {tnc} (tnc 1.50 10^9 cells, oos) verified by qc2.cp1, signed" in (
        verified.stdout
    )
    second("qc", "result", "verify", viability, input=AGAIN)

    refused = qa("batch", "accept", lab.lot, "--reason", "per SOP", input=FIRST["qa.cp1"],
                 code=4)  # fmt: skip
    assert "the apheresis is out of the criteria of CART-CD19-APH" in refused.stderr
    assert f"tnc 1.50 (result {tnc})" in refused.stderr
    reason = "no second collection possible; CD3+ count sufficient"
    accepted = qa("batch", "accept", lab.lot, "--reason", "per SOP", "--exception", reason,
                  input=FIRST["qa.cp1"])  # fmt: skip
    assert "ACCEPTED" in accepted.stdout

    text = words(qa("qc", "show", lab.lot).stdout)
    assert f"acceptance exception: tnc — {reason}; signed by Quinn Assurance" in text
    assert (f"{tnc} tnc 1.50 10^9 cells ≥ 2 10^9 cells OOS verified Quincy Analyst "
            "Cass Second OOS") in text  # fmt: skip
    assert f"out of criteria: tnc 1.50 (result {tnc})" in text
    shown = as_json(qa("qc", "show", lab.lot, "--json"))
    assert shown["state"] == "ACCEPTED"
    [exception] = shown["exceptions"]
    assert (exception["kind"], exception["attributes"], exception["reason"],
            exception["signed_by"]) == (
        "acceptance-exception", ["tnc"], reason, "qa.cp1"
    )  # fmt: skip
    assert shown["acceptance"]["out_of_criteria"] == [int(tnc)]
    results = {r["attribute"]: r for r in shown["samples"][0]["results"]}
    tnc_result = results["tnc"]
    assert (tnc_result["conformance"], tnc_result["verified_by"],
            tnc_result["verification"]["meaning"]) == ("oos", "qc2.cp1", "verified")  # fmt: skip
    assert (results["viability"]["instrument"], results["viability"]["method_version"]) == (
        "FLOW-1", "3.0"
    )  # fmt: skip
    assert shown["oos_results"] == [int(tnc)]


def test_an_oos_release_result_is_investigated_confirmed_and_released_at_the_physicians_request(
    lab: Plant,
) -> None:
    network.advance(lab.app, lab.lot, BatchState.QC_PENDING)
    sample = network.sample(lab.app, lab.lot, "release")
    network.results(lab.app, sample, {k: v for k, v in RELEASABLE.items() if k != "potency"})
    analyst, qa, doctor, qp = (lab(u) for u in ("qc.cp1", "qa.cp1", "dr.tc", "qp.cp1"))

    entered = analyst("qc", "result", "enter", sample, "potency", "400, 420, 410")
    potency = _id(r"result (\d+): potency 410 \(mean of 3\) pg/mL — OUT OF SPECIFICATION",
                  entered.stdout)  # fmt: skip
    ref = _id(r"OOS: investigation (OOS-\d{4}-\d{5}) opened", entered.stdout)
    check = words(analyst("qc", "check", lab.lot, code=1).stdout)
    assert f"OOS investigation open potency result {potency} (410 (mean of 3)): {ref} is open" in (
        check
    )
    assert "result awaiting verification potency" in check
    assert "batch record not reviewed" in check and "OOS release: not possible" in check

    crew = network.people_of(lab.app)
    qc.verify_result(lab.app.uow(), crew["qc2.cp1"], int(potency),
                     signing=Signing(PASSWORD, "qc2.cp1"))  # fmt: skip
    reviewed = qa("qc", "review", lab.lot, "--comment", "reviewed by exception",
                  input=FIRST["qa.cp1"])  # fmt: skip
    assert f"batch {lab.lot}: record reviewed by qa.cp1, signed" in reviewed.stdout
    early = qa("qc", "oos", "conclude", ref, "--outcome", "confirmed", "--conclusion", "x",
               input=AGAIN, code=4)  # fmt: skip
    assert "escalate it with the phase I finding first" in early.stderr
    escalated = analyst("qc", "oos", "escalate", ref, "--finding", "no laboratory cause found")
    assert f"{ref} (result {potency}, batch {lab.lot}): phase II" in escalated.stdout
    concluded = qa("qc", "oos", "conclude", ref, "--outcome", "confirmed",
                   "--conclusion", "low potency confirmed", input=AGAIN)  # fmt: skip
    assert f"{ref} (result {potency}, batch {lab.lot}) concluded: confirmed, signed" in (
        concluded.stdout
    )
    after = as_json(analyst("qc", "check", lab.lot, "--json", code=1))["release"]
    assert (after["releasable"], after["releasable_oos"]) == (False, True)
    assert [(b["kind"], b["subject"]) for b in after["blockers"]] == [
        ("out of specification", "potency")
    ]

    # Refused by the release check: no password is asked for first.
    plain = qp("batch", "release", lab.lot, "--reason", "in spec", code=4)
    assert "cannot be released" in plain.stderr and "signature" not in plain.stdout.lower()
    unrequested = qp("batch", "release-oos", lab.lot, "--reason", "physician's request",
                     input=FIRST["qp.cp1"], code=4)  # fmt: skip
    assert "no signed request of the treating physician" in unrequested.stderr
    requested = doctor("qc", "request-oos-release", lab.lot, "--reason", "no alternative",
                       "--document", "LETTER-2026-17", input=FIRST["dr.tc"])  # fmt: skip
    assert "release out of specification (potency) requested by dr.tc, signed" in requested.stdout
    released = qp("batch", "release-oos", lab.lot, "--reason", "physician's request",
                  input=FIRST["qp.cp1"])  # fmt: skip
    assert "RELEASED_OOS" in released.stdout

    shown = as_json(qp("qc", "show", lab.lot, "--json"))
    assert shown["state"] == "RELEASED_OOS" and shown["oos_results"] == [int(potency)]
    [investigation] = shown["investigations"]
    assert (investigation["reference"], investigation["phase"], investigation["outcome"]) == (
        ref, 2, "confirmed"
    )  # fmt: skip
    assert [s["meaning"] for s in shown["signatures"][f"oos:{ref}"]] == ["approved"]
    [request] = shown["exceptions"]
    assert (request["kind"], request["document"], request["signed_by"]) == (
        "oos-release-request", "LETTER-2026-17", "dr.tc"
    )  # fmt: skip
    meanings = [s["meaning"] for s in shown["signatures"]["batch"]]
    assert {"reviewed", "requested", "released"} <= set(meanings)
    text = words(qp("qc", "show", lab.lot).stdout)
    assert "RELEASED_OOS (out of specification)" in text
    assert "OOS release request: potency — no alternative (document LETTER-2026-17)" in text
    assert f"OOS {ref}" in text  # the flag beside the result, after the release too


def test_a_failed_culture_after_a_conditional_release_alerts_the_centre_which_acknowledges(
    lab: Plant,
) -> None:
    network.advance(lab.app, lab.lot, BatchState.QC_PENDING)
    sample = network.sample(lab.app, lab.lot, "release")
    network.results(lab.app, sample,
                    {k: v for k, v in RELEASABLE.items() if k != "sterility_culture"})  # fmt: skip
    crew = network.people_of(lab.app)
    qc.review_record(lab.app.uow(), crew.qa, lab.lot, comment="reviewed",
                     signing=Signing(PASSWORD, "qa.cp1"))  # fmt: skip
    network.act(lab.app, lab.lot, Action.RELEASE_CONDITIONALLY, reason="culture pending")
    analyst, coordinator = lab("qc.cp1"), lab("coordinator.tc")

    grown = analyst("qc", "result", "enter", sample, "sterility_culture", "growth")
    alert = _id(r"ALERT (\d+) raised", grown.stdout)
    assert "OUT OF SPECIFICATION" in grown.stdout and "investigation OOS-" in grown.stdout
    [raised] = as_json(coordinator("qc", "alerts", "--json"))
    assert (raised["id"], raised["lot"], raised["treatment_centre"], raised["acknowledged_by"]) == (
        int(alert), lab.lot, "TC1", None
    )  # fmt: skip
    assert "NOT ACKNOWLEDGED" in coordinator("qc", "alerts").stdout
    coordinator("qc", "alert", "ack", alert, "--note", "dose quarantined, not infused")
    [acknowledged] = as_json(coordinator("qc", "alerts", "--json"))
    assert (acknowledged["acknowledged_by"], acknowledged["acknowledgement"]) == (
        "coordinator.tc", "dose quarantined, not infused"
    )  # fmt: skip
    again = coordinator("qc", "alert", "ack", alert, "--note", "again", code=4)
    assert f"alert {alert} was acknowledged by coordinator.tc" in again.stderr


def test_the_workload_lists_pending_tests_turnaround_and_timelines(lab: Plant) -> None:
    network.advance(lab.app, lab.lot, BatchState.RELEASED)
    waiting = network.order(lab.app, "PT-000102")
    network.advance(lab.app, waiting, BatchState.QC_PENDING)
    sample = network.sample(lab.app, waiting, "release")
    analyst = lab("qc.cp1")

    work = as_json(analyst("qc", "workload", "--json"))
    assert set(work) == {"now", "pending", "turnaround", "timelines", "open_investigations",
                         "alerts", "oot_to_review"}  # fmt: skip
    pending = work["pending"]
    assert {p["sample_id"] for p in pending} == {sample}
    assert len(pending) == len(RELEASABLE)
    assert set(pending[0]) == {"lot", "sample_id", "stage", "attribute", "title", "method",
                               "due", "overdue", "state"}  # fmt: skip
    assert [p["due"] for p in pending] == sorted(p["due"] for p in pending)
    assert pending[-1]["attribute"] == "sterility_culture"  # 336 h: due last
    turnaround = {t["method"]: t for t in work["turnaround"]}
    assert set(turnaround["viability-7aad"]) == {"method", "n", "median_hours", "p90_hours",
                                                 "target_hours"}  # fmt: skip
    assert turnaround["viability-7aad"]["target_hours"] == 4.0
    lines = {t["lot"]: t for t in work["timelines"]}
    released = lines[lab.lot]
    assert released["harvest_to_release_days"] is not None and released["so_far"] is True
    assert lines[waiting]["harvest_to_release_days"] is None
    text = words(analyst("qc", "workload").stdout)
    assert f"pending tests ({len(RELEASABLE)})" in text and "so far" in text
