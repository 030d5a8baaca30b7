"""The ``v2v`` command line, run as a person runs it: a real process on a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import network
from tests.conftest import settings_for
from vein2vein.domain.clock import SystemClock
from vein2vein.services import people, qc, specs
from vein2vein.services.app import App
from vein2vein.services.auth import Signing

V2V = str(Path(sys.executable).with_name("v2v"))


PASSWORD = "Cli-test-password-2026"


class Cli:
    def __init__(self, database_url: str, home: Path | None = None) -> None:
        self.url = database_url
        config = home or Path(tempfile.mkdtemp(prefix="v2v-cli-"))
        self.env = {
            **os.environ,
            "V2V_DATABASE_URL": database_url,
            "XDG_CONFIG_HOME": str(config),  # where `v2v login` keeps its token
            "V2V_ARGON2_TIME_COST": "1",
            "V2V_ARGON2_MEMORY_KIB": "1024",
            "COLUMNS": "200",
        }

    def __call__(
        self, *args: str, code: int = 0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [V2V, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            input=input if input is not None else "",
        )
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def json(self, *args: str, code: int = 0) -> object:
        return json.loads(self(*args, "--json", code=code).stdout)


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


def login(cli: Cli, user: str, password: str = PASSWORD) -> None:
    cli("login", "--user", user, input=f"{password}\n")


class Lab:
    """The QC lab of the network ``setup_people`` made, working through the services (this
    file tests the batch commands; tests/e2e/test_cli_qc.py tests ``v2v qc``): two analysts
    and a second QA reviewer; the example specifications effective."""

    def __init__(self, cli: Cli) -> None:
        self.app = App.connect(cli.url, clock=SystemClock(), settings=settings_for(cli.url))
        admin = network.sign_in(self.app, "admin", PASSWORD)
        for user_id, role in (("qc.one", "qc-analyst"), ("qc.two", "qc-analyst"),
                              ("qa.two", "qa-reviewer")):  # fmt: skip
            people.create_user(self.app.uow(), admin.actor, user_id=user_id, full_name=user_id,
                               roles=[role], sites="*", password=PASSWORD,
                               must_change_password=False)  # fmt: skip
        self.who = {
            u: network.sign_in(self.app, u, PASSWORD) for u in ("qc.one", "qc.two", "qa.two")
        }
        for name in network.SPECS:
            done = specs.import_spec(self.app.uow(), admin.actor, network.spec_text(name), name)
            specs.approve_spec(self.app.uow(), self.who["qa.two"], done.code, done.version,
                               reason="reviewed", signing=Signing(PASSWORD, "qa.two"))  # fmt: skip

    def results(
        self, lot: str, stage: str, values: dict[str, str], *, review: bool = False
    ) -> None:
        sample = qc.draw_sample(self.app.uow(), self.who["qc.one"].actor, lot, stage=stage,
                                scan=network.scan_code(self.app, lot))  # fmt: skip
        for attribute, value in values.items():
            entered = qc.enter_result(
                self.app.uow(), self.who["qc.one"].actor, sample, attribute, value
            )
            qc.verify_result(self.app.uow(), self.who["qc.two"], entered.id,
                             signing=Signing(PASSWORD, "qc.two"))  # fmt: skip
        if review:
            qc.review_record(self.app.uow(), self.who["qa.two"], lot, comment="reviewed",
                             signing=Signing(PASSWORD, "qa.two"))  # fmt: skip


def setup_people(cli: Cli) -> None:
    """An administrator, the sites, and "tester", who may do most things at every site."""
    cli("db", "upgrade")
    cli("user", "bootstrap", "admin", "--name", "Ada Admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    login(cli, "admin")
    cli(
        "site",
        "add",
        "TC1",
        "--name",
        "Treatment centre one",
        "--kind",
        "treatment-centre",
        "--fin",
        "A9999",
    )
    cli(
        "site",
        "add",
        "CP1",
        "--name",
        "Central plant",
        "--kind",
        "manufacturing-facility",
        "--fin",
        "G1234",
    )
    roles = ["coordinator", "qa-reviewer", "operator", "logistics"]
    cli(
        "user", "add", "tester", "--name", "Tess Ter", "--sites", "*",
        *[arg for role in roles for arg in ("--role", role)],
        input="Temporary-pass-2026\n",
    )  # fmt: skip
    cli(
        "password", "change", "--user", "tester",
        input=f"Temporary-pass-2026\n{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    login(cli, "tester")


def setup_network(cli: Cli) -> str:
    setup_people(cli)
    placed = cli.json(
        "order",
        "create",
        "--patient",
        "PT-000123",
        "--year-of-birth",
        "1970",
        "--weight-kg",
        "81.5",
        "--product",
        "CART-CD19",
        "--centre",
        "TC1",
        "--plant",
        "CP1",
    )
    assert isinstance(placed, dict)
    return str(placed["lot"])


def test_an_unmigrated_database_gets_a_one_line_error_naming_the_fix(cli: Cli) -> None:
    done = cli("batch", "list", code=9)
    assert done.stderr.strip().startswith("error[database-not-ready]:")
    assert "v2v db upgrade" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_batch_is_ordered_collected_and_dispatched_from_the_command_line(cli: Cli) -> None:
    lot = setup_network(cli)
    collected = cli("batch", "collect", lot)
    assert "COLLECTED" in collected.stdout and "DIN A9999 26 000001" in collected.stdout
    shown = cli.json("batch", "show", lot)
    assert isinstance(shown, dict)
    identity = shown["identity"]
    assert identity["din"] == "A999926000001" and identity["demonstration"] is True
    assert identity["check_character"] == "8" and identity["type3_flags"] == "68"

    typo = cli("batch", "dispatch", lot, "--scan", "A9999 26 000001 X", code=2)
    assert "error[invalid-scan]" in typo.stderr and "check character 'X'" in typo.stderr
    wrong = cli("batch", "dispatch", lot, "--scan", "=A99992600000200", code=5)
    assert "error[identity-mismatch]" in wrong.stderr
    cli(
        "batch",
        "dispatch",
        lot,
        "--scan",
        identity["din_data_content"],
        "--to",
        "Cryo courier",
        "--temperature",
        "4",
    )
    refused = cli("batch", "accept", lot, "--reason", "early", code=4)
    assert "cannot accept from IN_TRANSIT" in refused.stderr
    denied = cli("batch", "release", lot, "--reason", "early", code=11)
    assert "error[permission-denied]: tester may not batch.release: needs the role qp" in (
        denied.stderr
    )

    shown = cli.json("batch", "show", lot)
    assert isinstance(shown, dict)
    assert shown["batch"]["state"] == "IN_TRANSIT" and shown["batch"]["version"] == 3
    assert [c["to_party"] for c in shown["custody"]] == ["TC1", "Cryo courier"]
    assert shown["custody"][1]["temperature_c"] == 4.0
    assert [a["action"] for a in shown["actions"]] == ["receive", "hold", "terminate"]
    listed = cli.json("batch", "list", "--state", "in_transit")
    assert isinstance(listed, list) and [b["lot"] for b in listed] == [lot]
    log = cli.json("audit", "log", "--lot", lot)
    assert isinstance(log, list)
    assert "IdentityMismatchDetected" in [e["action"] for e in log]
    assert "3 audit records" not in cli("batch", "show", lot).stdout  # rendered, not JSON


def test_a_stale_version_from_the_command_line_is_a_conflict(cli: Cli) -> None:
    lot = setup_network(cli)
    cli("batch", "hold", lot, "--reason", "check", "--expected-version", "1")
    done = cli("batch", "resume", lot, "--reason", "ok", "--expected-version", "1", code=6)
    assert "error[conflict]" in done.stderr and "now at version 2" in done.stderr


def test_audit_verify_counts_the_records_and_names_the_first_broken_link(
    cli: Cli, database_url: str
) -> None:
    lot = setup_network(cli)
    cli("batch", "collect", lot)
    ok = cli("audit", "verify")
    # admin: bootstrapped, signed in, two sites, tester added; tester: password, signed in
    # (admin's CLI token ended by it); the order; the collection and its custody.
    assert "audit chain intact: 12 records checked" in ok.stdout
    engine = sa.create_engine(database_url)
    with engine.begin() as c:
        if c.dialect.name == "postgresql":
            c.execute(sa.text("DROP TRIGGER audit_record_no_update_delete ON audit_record"))
        else:
            c.execute(sa.text("DROP TRIGGER audit_record_no_update"))
        c.execute(
            sa.text("UPDATE audit_record SET body = replace(body, 'tester', 'rogue') WHERE seq = 5")
        )
    engine.dispose()
    broken = cli("audit", "verify", code=8)
    assert "checked 4 records before the first broken link" in broken.stdout
    assert (
        "error[audit-chain-broken]: first broken link: record 5: content changed" in broken.stderr
    )
    report = cli.json("audit", "verify", code=8)
    assert isinstance(report, dict)
    assert report["ok"] is False and report["checked"] == 4
    assert report["first_break"]["seq"] == 5
    assert cli.json("audit", "verify", "--jobs", "2", code=8) == report
    refused = cli("audit", "verify", "--jobs", "0", code=2)
    assert "error[invalid-input]: audit verify: --jobs 0 must be at least 1" in refused.stderr


def test_din_check_prints_k_and_the_type3_flags_as_json(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'unused.sqlite3'}")
    assert cli.json("din", "check", "G123417654321") == {
        "din": "G123417654321",
        "valid": True,
        "check_character": "A",
        "type3_flags": "70",
        "eye_readable": "G1234 17 654321 A",
        "data_content": "=G12341765432170",
    }
    bad = cli.json("din", "check", "G12341765432I", code=2)
    assert isinstance(bad, dict)
    assert (
        bad["valid"] is False and bad["din"] == "G12341765432I" and "13 characters" in bad["error"]
    )
    refused = cli("din", "check", "G12341765432I", code=2)
    assert "error[invalid-scan]: DIN scan 'G12341765432I'" in refused.stderr
    plain = cli("din", "check", "G123498654321")
    assert "K=H" in plain.stdout and "type 3 flags 77" in plain.stdout
    assert not (tmp_path / "unused.sqlite3").exists()


def test_bad_input_names_the_field_and_changes_nothing(cli: Cli) -> None:
    setup_network(cli)
    before = cli.json("audit", "log", "--limit", "100")
    done = cli(
        "order",
        "create",
        "--patient",
        "Jane Doe",
        "--year-of-birth",
        "1970",
        "--weight-kg",
        "60",
        "--product",
        "CART-CD19",
        "--centre",
        "TC1",
        "--plant",
        "CP1",
        code=2,
    )
    assert "error[invalid-input]: patient pseudonym 'Jane Doe'" in done.stderr
    done = cli(
        "order",
        "create",
        "--patient",
        "PT-000999",
        "--year-of-birth",
        "1970",
        "--weight-kg",
        "-3",
        "--product",
        "CART-CD19",
        "--centre",
        "TC1",
        "--plant",
        "CP1",
        code=2,
    )
    assert "weight_kg" in done.stderr
    assert cli.json("audit", "log", "--limit", "100") == before


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["batch", "hold", "CP1-2026-00001"], "v2v batch hold: Missing option '--reason'."),
        (["batch", "frob"], "v2v batch: No such command 'frob'."),
        (["batch", "receive", "X", "--temperature", "warm"], "Invalid value for '--temperature'"),
        (["din", "check"], "v2v din check: Missing argument 'din'."),
        (["--bogus"], "v2v: No such option: --bogus"),
        (["serve", "--port", "99999"], "Invalid value for '--port'"),
    ],
)
def test_a_usage_error_is_one_line_with_a_code(tmp_path: Path, args: list[str], says: str) -> None:
    done = Cli(f"sqlite:///{tmp_path / 'unused.sqlite3'}")(*args, code=2)
    assert done.stderr.startswith("error[usage]: ") and says in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "unused.sqlite3").exists()


def test_a_bad_setting_is_named_in_one_line(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'unused.sqlite3'}")
    cli.env["V2V_PORT"] = "abc"
    port = cli("batch", "list", code=2)
    assert port.stderr.startswith("error[invalid-setting]: V2V_PORT='abc': ")
    cli.env["V2V_DATABASE_URL"] = "mysql://x"
    cli.env.pop("V2V_PORT")
    url = cli("batch", "list", code=2)
    assert "V2V_DATABASE_URL='mysql://x'" in url.stderr and "postgresql+psycopg" in url.stderr


def test_a_limit_below_one_or_an_unknown_lot_or_site_is_refused_by_name(cli: Cli) -> None:
    setup_network(cli)
    for args in (["audit", "log", "--limit", "-5"], ["batch", "list", "--limit", "0"]):
        refused = cli(*args, code=2)
        assert "error[invalid-input]: limit" in refused.stderr and "at least 1" in refused.stderr
    lot = cli("audit", "log", "--lot", "NOPE-2026-00001", code=3)
    assert "error[not-found]: batch 'NOPE-2026-00001' does not exist" in lot.stderr
    site = cli("batch", "list", "--site", "ZZZ", code=3)
    assert "error[not-found]: site 'ZZZ' does not exist" in site.stderr


def test_every_command_that_reads_or_writes_records_needs_a_signed_in_person(cli: Cli) -> None:
    setup_people(cli)
    cli("logout")
    for args in (
        ["batch", "list"],
        ["batch", "show", "CP1-2026-00001"],
        ["audit", "log"],
        ["audit", "verify"],
        ["site", "list"],
        ["user", "list"],
        ["whoami"],
    ):
        done = cli(*args, code=10)
        assert done.stderr.startswith("error[authentication-failed]: sign in first"), args
    wrong = cli("login", "--user", "tester", input="not-the-password\n", code=10)
    assert "unknown user id or wrong password" in wrong.stderr


# A one-step process, enough to start and complete processing from the command line.
ONE_STEP_MBR = """\
schema_version: 1
product: CART-CD19
process: CART-CD19-ONE
title: One-step test process
version: 1
steps:
  - id: receipt
    name: Receipt
    instructions: Check the bag.
    expected_hours: 1
    parameters:
      viability_percent: {unit: "%", precision: 1, nor: [90, 100], par: [80, 100]}
"""


def test_a_release_from_the_command_line_asks_for_the_signature(cli: Cli, tmp_path: Path) -> None:
    lot = setup_network(cli)
    (tmp_path / "one.yaml").write_text(ONE_STEP_MBR)
    login(cli, "admin")
    cli("mbr", "import", str(tmp_path / "one.yaml"))
    login(cli, "admin")
    cli(
        "user", "add", "qp.one", "--name", "Dr Q. P. One", "--role", "qp", "--sites", "CP1",
        input="Temporary-pass-2026\n",
    )  # fmt: skip
    cli(
        "password", "change", "--user", "qp.one",
        input=f"Temporary-pass-2026\n{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    lab = Lab(cli)
    login(cli, "tester")
    cli("batch", "collect", lot)
    shown = cli.json("batch", "show", lot)
    assert isinstance(shown, dict)
    bag = shown["identity"]["din_data_content"]
    cli("batch", "dispatch", lot, "--scan", bag)
    cli("batch", "receive", lot, "--scan", bag)
    lab.results(lot, "starting-material", network.ACCEPTABLE)  # the QC lab's part
    # The first signature of a session asks for the user id and the password.
    accepted = cli("batch", "accept", lot, "--reason", "in spec", input=f"tester\n{PASSWORD}\n")
    assert "First signature of this session" in accepted.stdout and "ACCEPTED" in accepted.stdout
    cli("mbr", "approve", "CART-CD19-ONE", "1", "--reason", "reviewed", input=f"{PASSWORD}\n")
    cli("batch", "start-processing", lot, "--scan", bag)  # the only effective process
    cli("step", "record", lot, "receipt", "--value", "viability_percent=95.04", "--scan", bag)
    cli("batch", "complete-processing", lot)
    maker = cli("batch", "hold", lot, "--reason", "wait")  # tester may hold, not release
    assert "ON_HOLD" in maker.stdout
    cli("batch", "resume", lot, "--reason", "go on")
    lab.results(lot, "release", network.RELEASABLE, review=True)
    login(cli, "qp.one")
    wrong = cli("batch", "release", lot, "--reason", "in spec", input="qp.one\nwrong\n", code=10)
    assert "error[signature-refused]: signature refused: wrong password" in wrong.stderr
    done = cli("batch", "release", lot, "--reason", "in spec", input=f"qp.one\n{PASSWORD}\n")
    assert "RELEASED" in done.stdout
    shown_text = cli("batch", "show", lot).stdout
    assert "signed: released by Dr Q. P. One (qp.one)" in " ".join(shown_text.split())
    log = cli.json("audit", "log", "--lot", lot, "--limit", "50")
    assert isinstance(log, list)
    actions = [e["action"] for e in log]
    assert "BatchReleased" in actions and "StartingMaterialAccepted" in actions
    lab.app.dispose()


def test_qa_reviews_the_audit_trail_exports_it_and_signs_the_review(
    cli: Cli, tmp_path: Path
) -> None:
    lot = setup_network(cli)  # tester is a QA reviewer too
    cli("batch", "hold", lot, "--reason", "deviation DV-7")
    out_csv, out_pdf = tmp_path / "trail.csv", tmp_path / "trail.pdf"
    shown = cli("audit", "trail", "--lot", lot, "--csv", str(out_csv), "--pdf", str(out_pdf))
    assert f"records: batch {lot}" in shown.stdout and "deviation DV-7" in shown.stdout
    text = out_csv.read_text(encoding="utf-8")
    assert text.startswith("seq,at,actor,action") and "BatchPutOnHold" in text
    assert out_pdf.read_bytes().startswith(b"%PDF")
    trail = cli.json("audit", "trail", "--lot", lot)
    assert isinstance(trail, dict)
    today = trail["records"][0]["at"][:10]
    nowhere = tmp_path / "no" / "such" / "trail.csv"
    unwritable = cli("audit", "trail", "--lot", lot, "--csv", str(nowhere), code=2)
    assert unwritable.stderr.startswith(f"error[invalid-input]: cannot write {nowhere}")
    bad = cli("audit", "trail", "--since", "yesterday", code=2)
    assert "error[invalid-input]: since 'yesterday': expected a date YYYY-MM-DD" in bad.stderr
    signed = cli(
        "audit", "review", "--since", today, "--until", today, "--comment", "all explained",
        input=f"tester\n{PASSWORD}\n",
    )  # fmt: skip
    assert "review recorded and signed: audit record" in signed.stdout
    listed = cli("audit", "reviews").stdout
    assert "all explained" in listed and "reviewed by Tess Ter (tester)" in " ".join(listed.split())


def test_mbr_files_are_validated_shown_and_compared(tmp_path: Path) -> None:
    from importlib.resources import files

    cli = Cli(f"sqlite:///{tmp_path / 'unused.sqlite3'}")
    examples = Path(str(files("vein2vein.examples") / "mbr"))
    conventional = examples / "cart-cd19-conventional.yaml"
    ok = cli("mbr", "validate", str(conventional), str(examples / "cart-cd19-rapid.yaml"))
    assert "CART-CD19-CONV v1, 6 steps" in ok.stdout and "CART-CD19-RAPID v1" in ok.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        conventional.read_text(encoding="utf-8").replace(
            'moi: {unit: "TU/cell", precision: 1, target: 5, nor: [3, 7]',
            'moi: {unit: "TU/cell", precision: 1, target: 5, nor: [7, 3]',
        ),
        encoding="utf-8",
    )
    refused = cli("mbr", "validate", str(broken), code=2)
    assert "steps[2].parameters.moi.nor: low > high" in refused.stdout
    assert "error[invalid-input]: 1 of 1 file(s) are not valid" in refused.stderr
    newer = tmp_path / "v2.yaml"
    newer.write_text(
        conventional.read_text(encoding="utf-8")
        .replace("\nversion: 1\n", "\nversion: 2\n")
        .replace("minutes_to_freezer: {unit: min, precision: 0, nor: [0, 30]",
                 "minutes_to_freezer: {unit: min, precision: 0, nor: [0, 20]"),
        encoding="utf-8",
    )  # fmt: skip
    changes = cli("mbr", "diff", str(conventional), str(newer)).stdout.splitlines()
    assert changes == [
        "version: 1 → 2",
        "steps.cryopreservation.parameters.minutes_to_freezer.nor: 0–30 → 0–20",
    ]
    shown = cli.json("mbr", "show", str(conventional))
    assert isinstance(shown, dict) and [s["id"] for s in shown["steps"]][:2] == [
        "receipt",
        "selection_activation",
    ]
    assert not (tmp_path / "unused.sqlite3").exists()


def test_an_mbr_is_imported_then_approved_with_a_signature(cli: Cli) -> None:
    from importlib.resources import files

    setup_people(cli)  # tester is a QA reviewer; admin imports
    conventional = Path(str(files("vein2vein.examples") / "mbr")) / "cart-cd19-conventional.yaml"
    login(cli, "admin")
    imported = cli("mbr", "import", str(conventional))
    assert "CART-CD19-CONV v1 imported as a draft" in imported.stdout
    login(cli, "tester")
    approved = cli(
        "mbr", "approve", "CART-CD19-CONV", "1", "--reason", "reviewed",
        input=f"tester\n{PASSWORD}\n",
    )  # fmt: skip
    assert "CART-CD19-CONV v1 is effective (approved, signed)" in approved.stdout
    listed = cli.json("mbr", "list")
    assert isinstance(listed, list)
    assert [(v["process"], v["version"], v["status"]) for v in listed] == [
        ("CART-CD19-CONV", 1, "EFFECTIVE")
    ]
    again = cli("mbr", "import", str(conventional), code=7)
    assert "exists already; a change is a new version" in again.stderr
