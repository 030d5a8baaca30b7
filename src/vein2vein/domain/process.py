"""Master batch records (DESIGN §5): a process definition, its steps and their parameters.

Pure and stdlib only. A :class:`ProcessDefinition` is what an MBR file says once it has been
read and checked (formats/mbr.py reads the YAML and names the place of every error); every
object here is valid by construction. :func:`classify` is the one place where a recorded
value is rounded to its reportable precision and then compared with its ranges.

Examples
--------
>>> viability = ParameterSpec("viability", "%", precision=1, target=95.0,
...                           nor=Range(85.0, 100.0), par=Range(70.0, 100.0), critical=True)
>>> viability.classify(84.96).outcome          # 84.96 reports as 85.0: inside the NOR
<Outcome.OK: 'ok'>
>>> viability.classify(80.0).outcome           # outside the NOR, inside the PAR
<Outcome.EXCURSION: 'excursion'>
>>> viability.classify(69.94).outcome          # 69.9: outside the PAR
<Outcome.OUT_OF_PAR: 'out-of-par'>
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from vein2vein.domain.errors import InvalidInput, NotFound
from vein2vein.domain.telemetry import Monitoring

__all__ = [
    "Classified",
    "MaterialSpec",
    "Outcome",
    "ParameterSpec",
    "ProcessDefinition",
    "Range",
    "SampleSpec",
    "StepDefinition",
    "compute",
    "diff_processes",
    "round_to",
]


def round_to(value: float, precision: int) -> float:
    """``value`` rounded half away from zero to ``precision`` decimals, as it is reported
    (not Python's round-half-to-even: 0.25 reports as 0.3 at one decimal)."""
    if not 0 <= precision <= 9:
        raise InvalidInput(f"precision {precision!r}: expected 0..9 decimals")
    quantum = Decimal(1).scaleb(-precision)
    # + 0.0: a value that rounds to zero reports as 0.00, never as -0.00.
    return float(Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)) + 0.0


@dataclass(frozen=True, slots=True)
class Range:
    """A closed interval ``low ≤ x ≤ high``; either end may be open (None)."""

    low: float | None
    high: float | None

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise InvalidInput("low > high")

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int | float):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def within(self, other: Range) -> bool:
        """Whether this range lies inside ``other`` (a NOR inside its PAR)."""
        low_ok = other.low is None or (self.low is not None and self.low >= other.low)
        high_ok = other.high is None or (self.high is not None and self.high <= other.high)
        return low_ok and high_ok

    def __str__(self) -> str:
        low = "−∞" if self.low is None else f"{self.low:g}"
        high = "+∞" if self.high is None else f"{self.high:g}"
        negative = any(v is not None and v < 0 for v in (self.low, self.high))
        return f"{low} to {high}" if negative else f"{low}–{high}"  # never "-1.2–-0.8"


class Outcome(StrEnum):
    OK = "ok"  # inside the normal operating range
    EXCURSION = "excursion"  # outside the NOR, inside the PAR: needs a comment
    OUT_OF_PAR = "out-of-par"  # outside the proven acceptable range: opens a deviation


@dataclass(frozen=True, slots=True)
class Classified:
    """A recorded value as reported (rounded) and where it falls."""

    reported: float
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """A process parameter: unit, reportable precision, target, NOR inside PAR.

    A computed parameter (``formula``, e.g. ``final_cells / seeded_cells``) is worked out
    from other parameters of the batch, never typed.
    """

    name: str
    unit: str
    precision: int
    target: float | None = None
    nor: Range = field(default_factory=lambda: Range(None, None))
    par: Range = field(default_factory=lambda: Range(None, None))
    critical: bool = False
    formula: str | None = None

    def __post_init__(self) -> None:
        if not self.nor.within(self.par):
            raise InvalidInput(f"nor {self.nor} lies outside par {self.par}")
        if self.target is not None and self.target not in self.nor:
            raise InvalidInput(f"target {self.target:g} lies outside nor {self.nor}")
        round_to(0.0, self.precision)  # validates the precision

    def classify(self, value: float) -> Classified:
        """Round ``value`` to the reportable precision, then compare it with NOR and PAR;
        a value that is not a finite number is refused."""
        if not math.isfinite(value):
            raise InvalidInput(f"{self.name} {value!r}: expected a finite number")
        reported = round_to(value, self.precision)
        if reported in self.nor:
            return Classified(reported, Outcome.OK)
        if reported in self.par:
            return Classified(reported, Outcome.EXCURSION)
        return Classified(reported, Outcome.OUT_OF_PAR)


@dataclass(frozen=True, slots=True)
class MaterialSpec:
    """A material a step consumes: its type, how much, in which unit."""

    type: str
    quantity: float
    unit: str


@dataclass(frozen=True, slots=True)
class SampleSpec:
    """A sample a step takes, for a test (QC, issue 6)."""

    name: str
    test: str
    volume_ml: float


@dataclass(frozen=True, slots=True)
class StepDefinition:
    """One step of the process, in the order the MBR gives."""

    id: str
    name: str
    instructions: str
    expected_hours: float
    parameters: tuple[ParameterSpec, ...] = ()
    materials: tuple[MaterialSpec, ...] = ()
    samples: tuple[SampleSpec, ...] = ()
    equipment_class: str | None = None
    verification: bool = False  # a second person verifies, with an e-signature
    repeatable: bool = False  # may be recorded more than once (e.g. daily expansion counts)
    monitoring: Monitoring | None = None  # sensors watched on the equipment while it runs

    def parameter(self, name: str) -> ParameterSpec:
        for spec in self.parameters:
            if spec.name == name:
                return spec
        raise NotFound(f"step {self.id}: no parameter {name!r}")


@dataclass(frozen=True, slots=True)
class ProcessDefinition:
    """A master batch record: which product, which process, which steps in which order."""

    schema_version: int
    product: str
    process: str
    title: str
    version: int
    steps: tuple[StepDefinition, ...]

    def step(self, step_id: str) -> StepDefinition:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise NotFound(f"process {self.process}: no step {step_id!r}")

    @property
    def expected_hours(self) -> float:
        return sum(s.expected_hours for s in self.steps)


_OPERATORS: dict[type[ast.AST], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def compute(formula: str, values: Mapping[str, float]) -> float:
    """The value of an arithmetic ``formula`` (+ - * / and parentheses) over ``values``.

    A computed parameter is worked out, never typed; the formula is data, never run as code.

    >>> compute("final_cells * 1000 / seeded_cells", {"final_cells": 5.2, "seeded_cells": 100})
    52.0
    >>> compute("dose_per_kg * patient_weight_kg / car_concentration",
    ...         {"dose_per_kg": 2.0, "patient_weight_kg": 70.0, "car_concentration": 7.0})
    20.0
    """

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise InvalidInput(f"formula {formula!r}: {node.id} has no value yet")
            return float(values[node.id])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = value(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise InvalidInput(f"formula {formula!r}: division by zero")
            return _OPERATORS[type(node.op)](left, right)
        raise InvalidInput(f"formula {formula!r}: only + - * / ( ), numbers and names")

    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError:
        raise InvalidInput(f"formula {formula!r} is not arithmetic") from None
    return value(tree)


def diff_processes(old: ProcessDefinition, new: ProcessDefinition) -> list[str]:
    """What changed from ``old`` to ``new``, one line each, for change control.

    >>> from dataclasses import replace
    >>> step = StepDefinition("receipt", "Receipt", "Check the bag.", 1.0)
    >>> a = ProcessDefinition(1, "P", "PROC", "Title", 1, (step,))
    >>> diff_processes(a, replace(a, version=2, steps=(replace(step, expected_hours=2.0),)))
    ['version: 1 → 2', 'steps.receipt.expected_hours: 1.0 → 2.0']
    """
    lines = [
        f"{name}: {getattr(old, name)} → {getattr(new, name)}"
        for name in ("product", "process", "title", "version")
        if getattr(old, name) != getattr(new, name)
    ]
    old_ids, new_ids = [s.id for s in old.steps], [s.id for s in new.steps]
    lines += [f"steps.{i}: removed" for i in old_ids if i not in new_ids]
    lines += [f"steps.{i}: added" for i in new_ids if i not in old_ids]
    common = [i for i in old_ids if i in new_ids]
    if common != [i for i in new_ids if i in old_ids]:
        lines.append(f"steps: order {' → '.join(common)} changed")
    for step_id in common:
        before, after = old.step(step_id), new.step(step_id)
        for name in ("name", "instructions", "expected_hours", "equipment_class",
                     "verification", "repeatable", "materials", "samples",
                     "monitoring"):  # fmt: skip
            if getattr(before, name) != getattr(after, name):
                lines.append(
                    f"steps.{step_id}.{name}: {getattr(before, name)} → {getattr(after, name)}"
                )
        old_params = {p.name: p for p in before.parameters}
        new_params = {p.name: p for p in after.parameters}
        for name in old_params.keys() - new_params.keys():
            lines.append(f"steps.{step_id}.parameters.{name}: removed")
        for name in new_params.keys() - old_params.keys():
            lines.append(f"steps.{step_id}.parameters.{name}: added")
        for name in sorted(old_params.keys() & new_params.keys()):
            a, b = old_params[name], new_params[name]
            for attr in ("unit", "precision", "target", "nor", "par", "critical", "formula"):
                if getattr(a, attr) != getattr(b, attr):
                    lines.append(
                        f"steps.{step_id}.parameters.{name}.{attr}: "
                        f"{getattr(a, attr)} → {getattr(b, attr)}"
                    )
    return lines
