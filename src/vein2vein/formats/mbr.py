"""Master batch record files (YAML, ``schema_version: 1``): read, check, name every error's place.

A file is read with PyYAML's safe loader and checked by Pydantic; every problem is reported at
once with its place, e.g. ``steps[3].parameters.viability.nor: low > high``. What comes out
is a :class:`~vein2vein.domain.process.ProcessDefinition`, valid by construction.

The shape (see ``examples/mbr/*.yaml``)::

    schema_version: 1
    product: CART-CD19
    process: CART-CD19-CONV
    title: Conventional autologous CAR-T, 9-12 days
    version: 1
    steps:
      - id: receipt
        name: Apheresis receipt and inspection
        instructions: ...
        expected_hours: 2
        equipment_class: biosafety-cabinet
        verification: true
        parameters:
          viability: {unit: "%", precision: 1, target: 95, nor: [85, 100], par: [70, 100],
                      critical: true}
          fold_expansion: {unit: fold, precision: 1, formula: final_cells / seeded_cells}
        materials: [{type: CD3/CD28 activator, quantity: 1, unit: vial}]
        samples: [{name: In-process count, test: cell-count, volume_ml: 0.5}]
        monitoring:              # sensors watched on the step's equipment while it runs
          no_data_s: 120         # silence longer than this raises a "no data" alarm
          sensors:               # topic v2v/<site>/<equipment>/<sensor>
            temperature: {unit: "°C", range: [36.0, 38.0], persistence_s: 300,
                          hysteresis: 0.2, deviation: minor}
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.process import (
    MaterialSpec,
    ParameterSpec,
    ProcessDefinition,
    Range,
    SampleSpec,
    StepDefinition,
)
from vein2vein.domain.telemetry import AlarmRule, MonitoredSensor, Monitoring
from vein2vein.formats._yaml import InvalidFile, Strict, Versioned, read_model, read_text

__all__ = ["InvalidProcessFile", "load_mbr", "parse_mbr"]

SCHEMA_VERSION = 1
# Values a formula may use besides the batch's parameters: they come from the order.
CONTEXT = frozenset({"patient_weight_kg"})
_CODE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
_NAME = r"^[a-z][a-z0-9_]{0,39}$"


class InvalidProcessFile(InvalidFile):
    """An MBR file that cannot be used; ``problems`` holds every error with its place."""

    code = "invalid-mbr"


_Strict = Strict


Bounds = Annotated[list[float | None], Field(min_length=2, max_length=2)]


class _Parameter(_Strict):
    unit: str = Field(min_length=1, max_length=20)
    precision: int = Field(ge=0, le=9)
    target: float | None = None
    nor: Bounds | None = None
    par: Bounds | None = None
    critical: bool = False
    formula: str | None = None

    @field_validator("formula")
    @classmethod
    def _arithmetic(cls, formula: str | None) -> str | None:
        if formula is not None:
            _formula_names(formula)
        return formula


class _Material(_Strict):
    type: str = Field(min_length=1, max_length=80)
    quantity: float = Field(gt=0)
    unit: str = Field(min_length=1, max_length=20)


class _Sample(_Strict):
    name: str = Field(min_length=1, max_length=80)
    test: str = Field(min_length=1, max_length=40)
    volume_ml: float = Field(gt=0, le=100)


class _Sensor(_Strict):
    unit: str = Field(min_length=1, max_length=16)
    range: Bounds
    persistence_s: float = Field(default=60.0, ge=0, le=24 * 3600)
    hysteresis: float = Field(default=0.0, ge=0)
    deviation: Literal["minor", "major"] | None = None


class _Monitoring(_Strict):
    no_data_s: float = Field(default=120.0, gt=0, le=24 * 3600)
    sensors: dict[Annotated[str, Field(pattern=_CODE)], _Sensor] = Field(min_length=1)


class _Step(_Strict):
    id: str = Field(pattern=_NAME)
    name: str = Field(min_length=1, max_length=120)
    instructions: str = Field(min_length=1)
    expected_hours: float = Field(gt=0, le=24 * 30)
    equipment_class: str | None = Field(default=None, pattern=_CODE)
    verification: bool = False
    repeatable: bool = False
    parameters: dict[Annotated[str, Field(pattern=_NAME)], _Parameter] = Field(default_factory=dict)
    materials: list[_Material] = Field(default_factory=list)
    samples: list[_Sample] = Field(default_factory=list)
    monitoring: _Monitoring | None = None

    @field_validator("materials")
    @classmethod
    def _one_line_per_type(cls, materials: list[_Material]) -> list[_Material]:
        # One lot is scanned per material type: a type listed twice is one line with the sum.
        seen: set[str] = set()
        for m in materials:
            if m.type in seen:
                raise ValueError(f"{m.type!r} is listed twice; give it once with its quantity")
            seen.add(m.type)
        return materials


class _File(Versioned):
    SCHEMA_VERSION: ClassVar[int] = SCHEMA_VERSION
    product: str = Field(pattern=_CODE)
    process: str = Field(pattern=_CODE)
    title: str = Field(min_length=1, max_length=200)
    version: int = Field(ge=1)
    steps: list[_Step] = Field(min_length=1)


def _formula_names(formula: str) -> set[str]:
    """The parameter names an arithmetic formula uses; anything but + - * / ( ) numbers and
    names is refused (a formula is data, never code)."""
    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError:
        raise ValueError(f"formula {formula!r} is not arithmetic") from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif not isinstance(
            node,
            ast.Expression
            | ast.BinOp
            | ast.UnaryOp
            | ast.Constant
            | ast.Load
            | ast.operator
            | ast.unaryop,
        ) or (isinstance(node, ast.Constant) and not isinstance(node.value, int | float)):
            raise ValueError(f"formula {formula!r}: only + - * / ( ), numbers and parameter names")
    return names


def _range(raw: list[float | None] | None) -> Range:
    return Range(None, None) if raw is None else Range(raw[0], raw[1])


def parse_mbr(text: str, source: str = "<mbr>") -> ProcessDefinition:
    """Read an MBR from YAML ``text``; raise :class:`InvalidProcessFile` naming every error."""
    model = read_model(text, source, _File, InvalidProcessFile)
    problems: list[str] = []
    steps: list[StepDefinition] = []
    seen: set[str] = set()
    for i, step in enumerate(model.steps):
        if step.id in seen:
            problems.append(f"steps[{i}].id: {step.id!r} is used by an earlier step")
        seen.add(step.id)
        specs = []
        for name, p in step.parameters.items():
            place = f"steps[{i}].parameters.{name}"
            if p.formula is not None:
                unknown = (
                    _formula_names(p.formula) - set(step.parameters) - _earlier(steps) - CONTEXT
                )
                if unknown:
                    problems.append(
                        f"{place}.formula: uses {', '.join(sorted(unknown))}, not a parameter "
                        "of this step or an earlier one"
                    )
            for key in ("nor", "par"):
                try:
                    _range(getattr(p, key))
                except InvalidInput as bad:
                    problems.append(f"{place}.{key}: {bad.message}")
            try:
                # No NOR given: the normal range is the whole acceptable range.
                nor = _range(p.nor if p.nor is not None else p.par)
                spec = ParameterSpec(
                    name, p.unit, p.precision, p.target, nor, _range(p.par), p.critical,
                    p.formula,
                )  # fmt: skip
                specs.append(spec)
            except InvalidInput as bad:
                if not any(x.startswith(f"{place}.nor") or x.startswith(f"{place}.par")
                           for x in problems):  # fmt: skip
                    problems.append(f"{place}: {bad.message}")
        monitoring = _monitoring(step, f"steps[{i}]", problems)
        steps.append(
            StepDefinition(
                id=step.id,
                name=step.name,
                instructions=step.instructions.strip(),
                expected_hours=step.expected_hours,
                parameters=tuple(specs),
                materials=tuple(MaterialSpec(m.type, m.quantity, m.unit) for m in step.materials),
                samples=tuple(SampleSpec(s.name, s.test, s.volume_ml) for s in step.samples),
                equipment_class=step.equipment_class,
                verification=step.verification,
                repeatable=step.repeatable,
                monitoring=monitoring,
            )
        )
    if problems:
        raise InvalidProcessFile(source, problems)
    return ProcessDefinition(
        model.schema_version, model.product, model.process, model.title, model.version,
        tuple(steps),
    )  # fmt: skip


def _monitoring(step: _Step, place: str, problems: list[str]) -> Monitoring | None:
    if step.monitoring is None:
        return None
    if step.equipment_class is None:
        problems.append(f"{place}.monitoring: a step without equipment_class has no sensors")
    sensors = []
    for name, sensor in step.monitoring.sensors.items():
        low, high = sensor.range
        try:
            rule = AlarmRule(low, high, sensor.persistence_s, sensor.hysteresis)
        except InvalidInput as bad:
            problems.append(
                f"{place}.monitoring.sensors.{name}: {bad.message.removeprefix('alarm rule: ')}"
            )
            continue
        sensors.append(MonitoredSensor(name, sensor.unit, rule, sensor.deviation))
    return Monitoring(tuple(sensors), step.monitoring.no_data_s)


def _earlier(steps: list[StepDefinition]) -> set[str]:
    return {p.name for s in steps for p in s.parameters}


def load_mbr(path: Path) -> ProcessDefinition:
    """Read and check the MBR file at ``path``."""
    text = read_text(path)
    return parse_mbr(text, str(path))
