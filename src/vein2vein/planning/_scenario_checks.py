"""How the parts of a :class:`~vein2vein.planning.scenario.Scenario` must fit together: each
rule gives a problem with its place in the scenario file's shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vein2vein.planning.scenario import ManufacturingSite, Scenario

__all__ = ["consistency_problems"]

QC_ANALYST_ROLE = "qc-analyst"


def consistency_problems(scenario: Scenario) -> list[str]:
    """Every way the scenario's parts fail to fit together, each with its place."""
    plants = scenario.manufacturing_sites
    centres = scenario.treatment_centres
    problems: list[str] = []
    if not plants:
        problems.append("sites: no manufacturing site (central-plant or point-of-care)")
    if not centres:
        problems.append("sites: no treatment centre")
    for key, site in scenario.sites.items():
        if site.id != key:
            problems.append(f"sites.{key}: holds the site {site.id!r}")
    problems += _logistics(scenario)
    problems += _demand(scenario)
    served = {p for p in scenario.logistics.serves.values() if p in plants}
    for key in sorted(served):
        problems += _site(scenario, plants[key])
    problems += _costs(scenario)
    return problems


def _logistics(scenario: Scenario) -> list[str]:
    plants, centres = scenario.manufacturing_sites, scenario.treatment_centres
    problems = []
    for centre, site in scenario.logistics.serves.items():
        if centre not in centres:
            problems.append(f"logistics.serves.{centre}: not a treatment centre of sites")
        if site not in plants:
            problems.append(f"logistics.serves.{centre}: {site!r} is not a manufacturing site")
        elif centre in centres and scenario.logistics.route(centre, site) is None:
            problems.append(f"logistics.routes: no route between {centre!r} and {site!r}")
    for centre in centres:
        if centre not in scenario.logistics.serves:
            problems.append(
                f"logistics.serves.{centre}: treatment centre {centre!r} is served by no "
                "manufacturing site"
            )
    for i, route in enumerate(scenario.logistics.routes):
        if route.centre not in centres:
            problems.append(f"logistics.routes[{i}].centre: {route.centre!r} is not a centre")
        if route.site not in plants:
            problems.append(f"logistics.routes[{i}].site: {route.site!r} is not a plant")
    return problems


def _demand(scenario: Scenario) -> list[str]:
    plants, centres = scenario.manufacturing_sites, scenario.treatment_centres
    problems = []
    for centre, wanted in scenario.demand.centres.items():
        place = f"demand.centres.{centre}"
        if centre not in centres:
            problems.append(f"{place}: not a treatment centre of sites")
            continue
        process = scenario.processes.get(wanted.process)
        if process is None:
            problems.append(f"{place}.process: {wanted.process!r} is not among processes")
            continue
        site = plants.get(scenario.logistics.serves.get(centre, ""))
        if site is not None and wanted.process not in site.devices.processes:
            problems.append(
                f"{place}.process: {site.id} serves {centre} but its devices do not run "
                f"{wanted.process!r}"
            )
    for key, process in scenario.processes.items():
        if process.name != key:
            problems.append(f"processes.{key}: holds the process {process.name!r}")
    for key, site in plants.items():
        for name in site.devices.processes:
            if name not in scenario.processes:
                problems.append(f"sites.{key}.devices.processes: {name!r} is not among processes")
    return problems


def _site(scenario: Scenario, site: ManufacturingSite) -> list[str]:
    place = f"sites.{site.id}"
    problems = []
    role = site.devices.operator_role or ""
    if site.devices.operators_per_batch and role not in site.staff:
        problems.append(f"{place}.staff: no {role!r}, whom the devices need")
    elif role in site.staff and site.staff[role].headcount < site.devices.operators_per_batch:
        problems.append(
            f"{place}.staff.{role}.headcount: fewer than the {site.devices.operators_per_batch} "
            "operators a batch needs"
        )
    reviewer = scenario.release.reviewer_role
    if reviewer is not None and reviewer not in site.staff:
        problems.append(f"{place}.staff: no {reviewer!r}, who reviews for release")
    tests = scenario.release.tests
    if tests and site.qc is None:
        problems.append(f"{place}.qc: the release tests need a QC lab")
    elif site.qc is not None:
        for test in tests:
            if test.method not in site.qc.instruments:
                problems.append(
                    f"{place}.qc.instruments: none for {test.method!r} (test {test.name!r})"
                )
    return problems


def _costs(scenario: Scenario) -> list[str]:
    costs = scenario.costs
    problems = []
    for key, site in scenario.manufacturing_sites.items():
        if site.devices.grade not in costs.facility_per_year:
            problems.append(
                f"costs.facility_per_year: no cost for grade {site.devices.grade!r} "
                f"(sites.{key}.devices)"
            )
        if site.devices.type not in costs.device_capex:
            problems.append(
                f"costs.device_capex: no price for {site.devices.type!r} (sites.{key}.devices)"
            )
        for role in site.staff:
            if role not in costs.labour_per_hour:
                problems.append(f"costs.labour_per_hour: no rate for {role!r} (sites.{key})")
        if site.qc is not None and QC_ANALYST_ROLE not in costs.labour_per_hour:
            problems.append(f"costs.labour_per_hour: no rate for {QC_ANALYST_ROLE!r} ({key}.qc)")
        if site.kind not in costs.overheads_per_year:
            problems.append(f"costs.overheads_per_year: no figure for {site.kind!r} ({key})")
    for test in scenario.release.tests:
        if test.name not in costs.qc_per_test:
            problems.append(f"costs.qc_per_test: no price for {test.name!r}")
    if scenario.release.sterility.days > 0 and "sterility" not in costs.qc_per_test:
        problems.append("costs.qc_per_test: no price for 'sterility'")
    return problems
