"""A scenario's process takes its steps from the effective MBR in the records (issue 8)."""

from __future__ import annotations

from importlib.resources import files

import pytest

from tests.network import PASSWORD, small_network
from vein2vein.domain.errors import RuleViolation
from vein2vein.planning.scenario import Fixed, Step
from vein2vein.services import mbr, planning
from vein2vein.services.app import App
from vein2vein.services.auth import Signing

MBR_TEXT = (files("vein2vein.examples") / "mbr" / "cart-cd19-conventional.yaml").read_text("utf-8")


def test_the_steps_come_from_the_effective_mbr_once_there_is_one(app: App) -> None:
    crew = small_network(app, processes=False)
    with pytest.raises(RuleViolation, match=r"example central-plant: processes\.conventional\.mbr: "
                       r"CART-CD19-CONV has no effective master batch record"):  # fmt: skip
        planning.open_scenario("central-plant", app=app)

    mbr.import_mbr(app.uow(), crew.admin.actor, MBR_TEXT, "conventional.yaml")
    mbr.approve_mbr(app.uow(), crew.qa, "CART-CD19-CONV", 1, reason="for planning",
                    signing=Signing(PASSWORD, "qa.cp1"))  # fmt: skip
    from_file = planning.open_scenario("central-plant")
    from_mbr = planning.open_scenario("central-plant", app=app)

    effective = mbr.effective_mbr(app, "CART-CD19-CONV")
    file_steps = {s.id: s for s in from_file.processes["conventional"].steps}
    assert from_mbr.processes["conventional"].steps == tuple(
        Step(s.id, Fixed(s.expected_hours), min(file_steps[s.id].hands_on_hours, s.expected_hours))
        for s in effective.steps
    )
    assert from_mbr.processes["conventional"].mean_hours == effective.expected_hours
    assert from_mbr.sites == from_file.sites and from_mbr.demand == from_file.demand
