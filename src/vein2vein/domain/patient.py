"""Patients (pseudonymous, never a name), therapy orders and sites."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.identity import validate_fin

__all__ = ["Patient", "Site", "SiteKind", "TherapyOrder", "validate_code"]

# Upper-case letters, digits and dashes with at least two digits: a pseudonym such as
# PT-4F7K21. The digits rule keeps a typed name ("JOHNSMITH") from passing as a pseudonym.
_PSEUDONYM = re.compile(r"[A-Z0-9][A-Z0-9-]{3,31}")
_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{1,31}")


def validate_code(kind: str, value: str) -> str:
    """Return ``value`` if it is a code of 2-32 upper-case letters, digits and dashes."""
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        raise InvalidInput(f"{kind} {value!r}: expected 2-32 upper-case letters, digits and dashes")
    return value


@dataclass(frozen=True, slots=True)
class Patient:
    """A pseudonymous patient: the pseudonym, year of birth and weight (kg) for dosing."""

    pseudonym: str
    year_of_birth: int
    weight_kg: float

    def __post_init__(self) -> None:
        if (
            not isinstance(self.pseudonym, str)
            or not _PSEUDONYM.fullmatch(self.pseudonym)
            or (sum(c.isdigit() for c in self.pseudonym) < 2)
        ):
            raise InvalidInput(
                f"patient pseudonym {self.pseudonym!r}: expected 4-32 upper-case letters, "
                "digits and dashes with at least two digits (a pseudonym, never a name)"
            )
        if not isinstance(self.year_of_birth, int) or not 1900 <= self.year_of_birth <= 2100:
            raise InvalidInput(
                f"patient year_of_birth {self.year_of_birth!r}: expected a year 1900-2100"
            )
        w = self.weight_kg
        if not isinstance(w, int | float) or not math.isfinite(w) or not 0.5 <= w <= 350:
            raise InvalidInput(f"patient weight_kg {w!r}: expected 0.5 to 350 kg")

    def check_born_by(self, at: datetime) -> None:
        if self.year_of_birth > at.year:
            raise InvalidInput(
                f"patient year_of_birth {self.year_of_birth}: in the future (now {at.year})"
            )


class SiteKind(StrEnum):
    TREATMENT_CENTRE = "treatment-centre"
    COLLECTION_CENTRE = "collection-centre"
    MANUFACTURING_FACILITY = "manufacturing-facility"
    POINT_OF_CARE = "point-of-care"

    @property
    def manufactures(self) -> bool:
        return self in (SiteKind.MANUFACTURING_FACILITY, SiteKind.POINT_OF_CARE)

    @property
    def collects(self) -> bool:
        return self in (SiteKind.TREATMENT_CENTRE, SiteKind.COLLECTION_CENTRE)


@dataclass(frozen=True, slots=True)
class Site:
    """A place in the network. ``fin`` is the ISBT 128 FIN ICCBBA assigned to it, if any."""

    code: str
    name: str
    kind: SiteKind
    fin: str | None = None

    def __post_init__(self) -> None:
        validate_code("site code", self.code)
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInput(f"site {self.code} name: expected a non-empty name")
        if self.fin is not None:
            validate_fin(self.fin)


@dataclass(frozen=True, slots=True)
class TherapyOrder:
    """A treatment centre's order of one product for one patient."""

    reference: str
    patient_pseudonym: str
    product: str
    treatment_centre: str
    manufacturing_site: str
    ordered_at: datetime
    ordered_by: str

    def __post_init__(self) -> None:
        validate_code("order reference", self.reference)
        validate_code("product", self.product)
