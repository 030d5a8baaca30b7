"""What every vein2vein YAML file shares: safe loading, checking by a Pydantic model, and
errors that name their place (``steps[3].parameters.viability.nor: low > high``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from vein2vein.domain.errors import InvalidInput

__all__ = [
    "Count",
    "InvalidFile",
    "NonNegative",
    "NonNegativeInt",
    "Positive",
    "Probability",
    "Strict",
    "above",
    "at_least",
    "at_most",
    "place",
    "read_model",
    "read_text",
]

M = TypeVar("M", bound=BaseModel)


class InvalidFile(InvalidInput):
    """A file that cannot be used; ``problems`` holds every error with its place."""

    code = "invalid-file"

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        more = f"; … {len(problems) - 10} more" if len(problems) > 10 else ""
        shown = "; ".join(problems[:10]) + more
        super().__init__(f"{source}: {len(problems)} problem(s): {shown}")


# -- numbers with their range, checked where they are read (``must be ≥ 1``) ------------


def at_least(low: float) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value < low:
            raise ValueError(f"must be ≥ {low:g}")
        return value

    return check


def at_most(high: float) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value > high:
            raise ValueError(f"must be ≤ {high:g}")
        return value

    return check


def above(low: float) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value <= low:
            raise ValueError(f"must be > {low:g}")
        return value

    return check


Count = Annotated[int, AfterValidator(at_least(1))]
NonNegativeInt = Annotated[int, AfterValidator(at_least(0))]
NonNegative = Annotated[float, Field(allow_inf_nan=False), AfterValidator(at_least(0))]
Positive = Annotated[float, Field(allow_inf_nan=False), AfterValidator(above(0))]
Probability = Annotated[NonNegative, AfterValidator(at_most(1))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Versioned(Strict):
    """A whole file: its ``schema_version`` must be the one this vein2vein reads."""

    SCHEMA_VERSION: ClassVar[int] = 1
    schema_version: int

    @field_validator("schema_version")
    @classmethod
    def _known(cls, version: int) -> int:
        if version != cls.SCHEMA_VERSION:
            raise ValueError(f"expected {cls.SCHEMA_VERSION}, this vein2vein reads no other")
        return version


def place(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(file)"


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML would keep
    the last one silently: a limit written twice must not pass unnoticed)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(
                    problem=f"{key!r} is given twice", problem_mark=key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_text(path: Path) -> str:
    """The UTF-8 text of the file at ``path``.

    Raises
    ------
    InvalidInput
        Naming the file and why it cannot be read.
    """
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_model(text: str, source: str, model: type[M], error: type[InvalidFile]) -> M:
    """``text`` read as YAML (safe loader) and checked by ``model``; ``error`` raised with
    every problem found, each with its place."""
    try:
        raw: Any = yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        why = getattr(exc, "problem", None) or exc
        raise error(
            source,
            [f"{where}: {why}" if isinstance(exc, _DuplicateKey) else f"{where}: not YAML ({why})"],
        ) from None
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise error(source, [f"(file): expected keys and their values (schema_version: …), "
                             f"got {got}"])  # fmt: skip
    try:
        return model.model_validate(raw)
    except ValidationError as invalid:
        found = [
            f"{place(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in invalid.errors()
        ]
        raise error(source, found) from None
