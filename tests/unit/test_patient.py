"""Patients are pseudonymous: a pseudonym, a year of birth and a weight, never a name."""

from __future__ import annotations

import pytest

from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.patient import Patient, Site, SiteKind


def test_a_pseudonymous_patient_is_accepted() -> None:
    assert Patient("PT-4F7K21", 1975, 68.5).weight_kg == 68.5


@pytest.mark.parametrize("name", ["John Smith", "JOHNSMITH", "pt-000123", "P1"])
def test_something_that_looks_like_a_name_is_refused_as_a_pseudonym(name: str) -> None:
    with pytest.raises(InvalidInput, match="never a name"):
        Patient(name, 1975, 70)


@pytest.mark.parametrize(
    ("yob", "weight", "field"),
    [
        (1850, 70, "year_of_birth"),
        (1975, 0, "weight_kg"),
        (1975, 900, "weight_kg"),
        (1975, float("inf"), "weight_kg"),
    ],
)
def test_an_impossible_year_or_weight_is_refused_naming_the_field(
    yob: int, weight: float, field: str
) -> None:
    with pytest.raises(InvalidInput, match=field):
        Patient("PT-000123", yob, weight)


def test_a_site_needs_a_code_a_name_and_a_well_formed_fin() -> None:
    assert Site("TC1", "Centre", SiteKind.TREATMENT_CENTRE, "A9999").fin == "A9999"
    with pytest.raises(InvalidInput, match="site code"):
        Site("tc 1", "Centre", SiteKind.TREATMENT_CENTRE)
    with pytest.raises(InvalidInput, match="FIN"):
        Site("TC1", "Centre", SiteKind.TREATMENT_CENTRE, "O9999")
