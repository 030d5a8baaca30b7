"""Specifications (DESIGN §5): what a batch's test results must meet, per product and stage.

Pure and stdlib only. A :class:`Specification` is what a specification file says once it has
been read and checked (formats/spec.py names the place of every error); every object here is
valid by construction. :meth:`Attribute.evaluate` is the one place a result is rounded to its
reportable precision and then compared with its limits — for every kind of attribute.

Kinds of attribute:

* ``numeric`` — one number with a unit, limits and a reportable precision;
* ``categorical`` — one answer from a closed list ("no growth", "growth"), some accepted;
* ``multi`` — several numbers (replicates, e.g. a potency assay in triplicate): the reported
  value is their mean, rounded, compared with the limits; every replicate is kept;
* ``report`` — reported only (a number or a text), never compared: it cannot fail.

Examples
--------
>>> viability = Attribute("viability", "Viability", "viability-flow", Kind.NUMERIC,
...                       unit="%", precision=0, limits=Range(70.0, None))
>>> viability.evaluate(69.5).conformance       # 69.5 reports as 70: it conforms
<Conformance.CONFORMS: 'conforms'>
>>> viability.evaluate(69.4).conformance
<Conformance.OOS: 'oos'>
>>> sterility = Attribute("sterility", "Sterility (14-day culture)", "sterility-culture",
...                       Kind.CATEGORICAL, choices=("no growth", "growth"),
...                       accepted=frozenset({"no growth"}))
>>> sterility.evaluate("growth").conformance
<Conformance.OOS: 'oos'>
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from vein2vein.domain.errors import InvalidInput, NotFound
from vein2vein.domain.process import Range, round_to

__all__ = [
    "Attribute",
    "Conformance",
    "Evaluated",
    "Kind",
    "Method",
    "ResultValue",
    "Specification",
    "Stage",
]


class Stage(StrEnum):
    STARTING_MATERIAL = "starting-material"  # apheresis acceptance on receipt
    IN_PROCESS = "in-process"
    RELEASE = "release"


class Kind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    MULTI = "multi"
    REPORT = "report"


class Conformance(StrEnum):
    CONFORMS = "conforms"
    OOS = "oos"  # out of specification (out of criteria, for starting material)
    REPORTED = "reported"  # report-only: never compared


# What an analyst enters: one number, one answer, or several numbers.
ResultValue = float | str | tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A result as reported (rounded, or the answer as listed) and whether it conforms."""

    reported: str  # what the certificate prints, e.g. "82", "no growth", "1250 (mean of 3)"
    number: float | None  # the rounded number compared with the limits, where there is one
    conformance: Conformance


@dataclass(frozen=True, slots=True)
class Method:
    """A test method at the version the specification names, and how long it takes."""

    code: str
    title: str
    version: str
    turnaround_hours: float


@dataclass(frozen=True, slots=True)
class Attribute:
    """One line of a specification: what is tested, by which method, and what it must meet.

    ``pending_allowed_with`` names another attribute of the same specification (a rapid
    sterility method) whose conforming result lets the batch be released conditionally while
    this one (the 14-day culture) is still pending.
    """

    name: str
    title: str
    method: str
    kind: Kind
    unit: str = ""
    precision: int = 0
    limits: Range = field(default_factory=lambda: Range(None, None))
    choices: tuple[str, ...] = ()
    accepted: frozenset[str] = frozenset()
    replicates: int = 1
    pending_allowed_with: str | None = None

    def __post_init__(self) -> None:
        round_to(0.0, self.precision)  # validates the precision
        # Answers are compared without regard to case or surrounding spaces.
        object.__setattr__(self, "choices", tuple(c.strip().lower() for c in self.choices))
        object.__setattr__(self, "accepted", frozenset(a.strip().lower() for a in self.accepted))
        if self.kind is Kind.CATEGORICAL and not (
            self.accepted and self.accepted <= set(self.choices)
        ):
            raise InvalidInput(f"{self.name}: accepted answers must be among the choices")
        if self.kind is Kind.MULTI and self.replicates < 2:
            raise InvalidInput(f"{self.name}: a multi-valued result has 2 or more replicates")

    @property
    def criterion(self) -> str:
        """The acceptance criterion as the certificate prints it."""
        if self.kind is Kind.REPORT:
            return "report"
        if self.kind is Kind.CATEGORICAL:
            return " or ".join(sorted(self.accepted))
        low, high = self.limits.low, self.limits.high
        unit = f" {self.unit}" if self.unit else ""
        mean = f"mean of {self.replicates}: " if self.kind is Kind.MULTI else ""
        if low is not None and high is not None:
            return f"{mean}{self.limits}{unit}"
        if low is not None:
            return f"{mean}≥ {low:g}{unit}"
        if high is not None:
            return f"{mean}≤ {high:g}{unit}"
        return "report"

    def parse(self, text: str) -> ResultValue:
        """An analyst's typed answer as this attribute's kind of value (comma-separated
        numbers for a multi-valued result); refused with what was expected."""
        text = text.strip()
        if self.kind is Kind.CATEGORICAL:
            return text
        if self.kind is Kind.MULTI:
            parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
            return tuple(_number(self.name, p) for p in parts)
        if self.kind is Kind.REPORT:
            try:
                number = float(text.replace("\u2212", "-"))
            except ValueError:
                return text  # a report-only attribute may be a text
            if not math.isfinite(number):
                raise InvalidInput(f"{self.name} {text!r}: expected a finite number or a text")
            return number
        return _number(self.name, text)

    def evaluate(self, value: ResultValue) -> Evaluated:
        """Round ``value`` to the reportable precision, then compare it with the limits (or
        the accepted answers). A value of the wrong kind is refused, naming the attribute."""
        if self.kind is Kind.CATEGORICAL:
            if not isinstance(value, str) or value.strip().lower() not in self.choices:
                raise InvalidInput(
                    f"{self.name} {value!r}: expected one of {', '.join(self.choices)}"
                )
            answer = value.strip().lower()
            ok = answer in self.accepted
            return Evaluated(answer, None, Conformance.CONFORMS if ok else Conformance.OOS)
        if self.kind is Kind.REPORT:
            if isinstance(value, str):
                if not value.strip():
                    raise InvalidInput(f"{self.name}: the reported value is empty")
                return Evaluated(value.strip(), None, Conformance.REPORTED)
            number = self._finite(value)
            reported = round_to(number, self.precision)
            return Evaluated(self._format(reported), reported, Conformance.REPORTED)
        if self.kind is Kind.MULTI:
            if not isinstance(value, tuple) or len(value) != self.replicates:
                raise InvalidInput(
                    f"{self.name}: expected {self.replicates} replicate values, "
                    f"got {len(value) if isinstance(value, tuple) else 'one'}"
                )
            numbers = [self._finite(v) for v in value]
            # The mean in decimal, as the analyst would compute it: 1.13 and 1.14 average
            # 1.135, which reports as 1.14 (a binary mean is 1.1349999…, reporting 1.13).
            mean = sum(Decimal(repr(v)) for v in numbers) / len(numbers)
            reported = round_to(float(mean), self.precision)
            shown = f"{self._format(reported)} (mean of {len(numbers)})"
            return Evaluated(shown, reported, self._compare(reported))
        number = self._finite(value)
        reported = round_to(number, self.precision)
        return Evaluated(self._format(reported), reported, self._compare(reported))

    def _compare(self, reported: float) -> Conformance:
        return Conformance.CONFORMS if reported in self.limits else Conformance.OOS

    def _finite(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{self.name} {value!r}: expected a number")
        if not math.isfinite(value):
            raise InvalidInput(f"{self.name} {value!r}: expected a finite number")
        return float(value)

    def _format(self, reported: float) -> str:
        return f"{reported:.{self.precision}f}"


def _number(name: str, text: str) -> float:
    try:
        value = float(text.strip().replace("\u2212", "-"))
    except ValueError:
        raise InvalidInput(f"{name} {text.strip()!r}: expected a number") from None
    if not math.isfinite(value):
        raise InvalidInput(f"{name} {text.strip()!r}: expected a finite number")
    return value


@dataclass(frozen=True, slots=True)
class Specification:
    """A version of the specification of one product at one stage."""

    code: str
    product: str
    stage: Stage
    version: int
    title: str
    methods: dict[str, Method]
    attributes: tuple[Attribute, ...]

    def attribute(self, name: str) -> Attribute:
        for a in self.attributes:
            if a.name == name:
                return a
        names = ", ".join(a.name for a in self.attributes)
        raise NotFound(
            f"specification {self.code} v{self.version} has no attribute {name!r} (it has {names})"
        )

    def method_of(self, attribute: Attribute) -> Method:
        return self.methods[attribute.method]

    @property
    def conditional_pairs(self) -> dict[str, str]:
        """Attribute that may be pending at a conditional release → the one that must pass."""
        return {a.name: a.pending_allowed_with for a in self.attributes if a.pending_allowed_with}
