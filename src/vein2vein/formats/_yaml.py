"""What every vein2vein YAML file shares: safe loading, checking by a Pydantic model, and
errors that name their place (``steps[3].parameters.viability.nor: low > high``)."""

from __future__ import annotations

from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from vein2vein.domain.errors import InvalidInput

__all__ = ["InvalidFile", "Strict", "place", "read_model"]

M = TypeVar("M", bound=BaseModel)


class InvalidFile(InvalidInput):
    """A file that cannot be used; ``problems`` holds every error with its place."""

    code = "invalid-file"

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        more = f"; … {len(problems) - 10} more" if len(problems) > 10 else ""
        shown = "; ".join(problems[:10]) + more
        super().__init__(f"{source}: {len(problems)} problem(s): {shown}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def place(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(file)"


def read_model(text: str, source: str, model: type[M], error: type[InvalidFile]) -> M:
    """``text`` read as YAML (safe loader) and checked by ``model``; ``error`` raised with
    every problem found, each with its place."""
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        why = getattr(exc, "problem", None) or exc
        raise error(source, [f"{where}: not YAML ({why})"]) from None
    try:
        return model.model_validate(raw)
    except ValidationError as invalid:
        found = [
            f"{place(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in invalid.errors()
        ]
        raise error(source, found) from None
