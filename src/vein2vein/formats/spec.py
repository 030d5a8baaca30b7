"""Specification files (YAML, ``schema_version: 1``): read, check, name every error's place.

The shape (see ``examples/spec/*.yaml``)::

    schema_version: 1
    code: CART-CD19-REL
    product: CART-CD19
    stage: release              # starting-material | in-process | release
    version: 1
    title: Release specification, CD19 CAR-T
    methods:                    # the validated version of each test method, its turnaround
      viability-flow: {title: Viability by flow cytometry, version: "3.1", turnaround_hours: 4}
    attributes:
      viability: {title: Viability, method: viability-flow, kind: numeric, unit: "%",
                  precision: 0, min: 70}
      sterility_culture: {title: Sterility, method: sterility-culture, kind: categorical,
                          choices: [no growth, growth], accepted: [no growth],
                          pending_allowed_with: sterility_rapid}
      potency: {title: IFN-γ release, method: ifng-elisa, kind: multi, replicates: 3,
                unit: pg/mL, precision: 0, min: 500}
      cd4_cd8_ratio: {title: CD4:CD8 ratio, method: phenotype-flow, kind: report,
                      precision: 2}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import yaml
from pydantic import Field, field_validator

from vein2vein.domain.errors import InvalidInput
from vein2vein.domain.process import Range
from vein2vein.domain.specification import Attribute, Kind, Method, Specification, Stage
from vein2vein.formats._yaml import InvalidFile, Strict, Versioned, read_model, read_text

__all__ = ["InvalidSpecificationFile", "load_spec", "parse_spec"]

SCHEMA_VERSION = 1
_CODE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
_NAME = r"^[a-z][a-z0-9_]{0,39}$"
_METHOD = r"^[a-z0-9][a-z0-9_.-]{0,39}$"


class InvalidSpecificationFile(InvalidFile):
    code = "invalid-specification"


class _Method(Strict):
    title: str = Field(min_length=1, max_length=120)
    version: str = Field(min_length=1, max_length=20)
    turnaround_hours: float = Field(gt=0, le=24 * 60)


class _Attribute(Strict):
    title: str = Field(min_length=1, max_length=120)
    method: str = Field(pattern=_METHOD)
    kind: Literal["numeric", "categorical", "multi", "report"]
    unit: str = Field(default="", max_length=20)
    precision: int = Field(default=0, ge=0, le=9)
    min: float | None = None
    max: float | None = None
    choices: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default_factory=list)
    accepted: list[str] = Field(default_factory=list)
    replicates: int = Field(default=1, ge=1, le=12)
    pending_allowed_with: str | None = None

    @field_validator("choices", "accepted")
    @classmethod
    def _lower(cls, answers: list[str]) -> list[str]:
        return [a.strip().lower() for a in answers]


class _File(Versioned):
    SCHEMA_VERSION: ClassVar[int] = SCHEMA_VERSION
    code: str = Field(pattern=_CODE)
    product: str = Field(pattern=_CODE)
    stage: Literal["starting-material", "in-process", "release"]
    version: int = Field(ge=1)
    title: str = Field(min_length=1, max_length=200)
    methods: dict[Annotated[str, Field(pattern=_METHOD)], _Method] = Field(min_length=1)
    attributes: dict[Annotated[str, Field(pattern=_NAME)], _Attribute] = Field(min_length=1)


def parse_spec(text: str, source: str = "<specification>") -> Specification:
    """Read a specification from YAML ``text``; raise :class:`InvalidSpecificationFile`
    naming every error with its place."""
    model = read_model(text, source, _File, InvalidSpecificationFile)
    problems: list[str] = []
    attributes: list[Attribute] = []
    for name, a in model.attributes.items():
        place = f"attributes.{name}"
        problems += _check_attribute(place, a, model)
        try:
            attributes.append(
                Attribute(
                    name,
                    a.title,
                    a.method,
                    Kind(a.kind),
                    a.unit,
                    a.precision,
                    Range(a.min, a.max),
                    tuple(a.choices),
                    frozenset(a.accepted),
                    a.replicates,
                    a.pending_allowed_with,
                )
            )
        except InvalidInput as bad:
            if not any(p.startswith(place) for p in problems):
                problems.append(f"{place}: {bad.message}")
    unused = set(model.methods) - {a.method for a in model.attributes.values()}
    problems += [f"methods.{m}: no attribute uses it" for m in sorted(unused)]
    if problems:
        raise InvalidSpecificationFile(source, problems)
    methods = {
        code: Method(code, m.title, m.version, m.turnaround_hours)
        for code, m in model.methods.items()
    }
    return Specification(
        model.code,
        model.product,
        Stage(model.stage),
        model.version,
        model.title,
        methods,
        tuple(attributes),
    )


def _check_attribute(place: str, a: _Attribute, model: _File) -> list[str]:
    problems = []
    if a.method not in model.methods:
        problems.append(f"{place}.method: {a.method!r} is not among the methods of this file")
    numeric = a.kind in ("numeric", "multi")
    if a.min is not None and a.max is not None and a.min > a.max:
        problems.append(f"{place}: min {a.min:g} > max {a.max:g}")
    if numeric and a.min is None and a.max is None:
        problems.append(
            f"{place}: a {a.kind} attribute needs min, max or both "
            "(use kind: report for a value that is only reported)"
        )
    if not numeric and (a.min is not None or a.max is not None):
        problems.append(f"{place}: a {a.kind} attribute has no min or max")
    if a.kind == "categorical":
        if len(a.choices) < 2:
            problems.append(f"{place}.choices: a categorical result has 2 or more choices")
        if not a.accepted:
            problems.append(f"{place}.accepted: name the answers that conform")
        problems += [
            f"{place}.accepted: {x!r} is not among the choices"
            for x in a.accepted
            if x not in a.choices
        ]
    elif a.choices or a.accepted:
        problems.append(f"{place}: only a categorical attribute has choices")
    if a.kind == "multi" and a.replicates < 2:
        problems.append(f"{place}.replicates: a multi-valued result has 2 or more")
    if a.kind != "multi" and a.replicates != 1:
        problems.append(f"{place}.replicates: only a multi-valued attribute has replicates")
    partner = a.pending_allowed_with
    if partner is not None:
        if model.stage != "release":
            problems.append(f"{place}.pending_allowed_with: only at release")
        elif partner not in model.attributes:
            problems.append(f"{place}.pending_allowed_with: {partner!r} is not an attribute")
        elif model.attributes[partner].pending_allowed_with is not None:
            problems.append(f"{place}.pending_allowed_with: {partner!r} may be pending itself")
    return problems


def load_spec(path: Path) -> Specification:
    """Read and check the specification file at ``path``."""
    text = read_text(path)
    return parse_spec(text, str(path))


def with_limits(
    text: str,
    attribute: str,
    *,
    low: float | None,
    high: float | None,
    version: int,
    note: str,
) -> str:
    """The specification ``text`` as a new ``version`` in which ``attribute`` has the limits
    ``low``/``high`` (None: no limit on that side), with ``note`` as a comment on top. Every
    other line, comments included, is kept; the result is checked by :func:`parse_spec`."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or attribute not in (data.get("attributes") or {}):
        raise InvalidInput(f"specification: no attribute {attribute!r}")
    entry = dict(data["attributes"][attribute])
    entry.pop("min", None)
    entry.pop("max", None)
    if low is not None:
        entry["min"] = low
    if high is not None:
        entry["max"] = high
    flow = yaml.safe_dump(
        {attribute: entry}, default_flow_style=True, sort_keys=False, width=10_000,
        allow_unicode=True,
    ).strip()  # fmt: skip
    lines = text.splitlines()
    line = re.compile(rf"^(\s+){re.escape(attribute)}\s*:")
    at = next((i for i, x in enumerate(lines) if line.match(x)), None)
    version_at = next((i for i, x in enumerate(lines) if re.match(r"^version\s*:", x)), None)
    if at is None or version_at is None or not lines[at].rstrip().endswith("}"):
        raise InvalidInput(
            f"specification: {attribute} is not written on one line; edit the file by hand"
        )
    indent = line.match(lines[at]).group(1)  # type: ignore[union-attr]
    lines[at] = indent + flow[1:-1]  # "{name: {...}}" → "name: {...}"
    lines[version_at] = f"version: {version}"
    notes = [f"# {part}" for part in note.splitlines() if part.strip()]
    result = "\n".join(notes + lines) + "\n"
    parse_spec(result, f"{attribute} with new limits")  # refused here if anything is wrong
    return result
