"""A user's own data as a CSV file: one column of numbers (and optionally a label and a
group column), read for the statistics commands (``v2v spc … --csv``, ``v2v compare tost``).

Errors name the file, the column and the row (counted as a spreadsheet shows it: the header
is row 1), and nothing is guessed: an empty cell or a word where a number belongs is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vein2vein.domain.errors import InvalidInput

__all__ = ["Column", "read_column"]


@dataclass(frozen=True)
class Column:
    """The numbers of one column, in file order, with a label and a group for each."""

    name: str
    values: tuple[float, ...]
    labels: tuple[str, ...]  # the label column's text, or "row N"
    groups: tuple[str, ...]  # the group column's text, or "" for every row


def read_column(
    path: Path, column: str, *, label: str | None = None, group: str | None = None
) -> Column:
    """Read ``column`` of the CSV file at ``path`` as numbers."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: not a readable CSV file ({exc})") from None
    names = [str(c) for c in frame.columns]
    for wanted in (column, label, group):
        if wanted is not None and wanted not in names:
            raise InvalidInput(f"{path}: no column {wanted!r}; the columns are {', '.join(names)}")
    if frame.empty:
        raise InvalidInput(f"{path}: no rows under the header")
    values: list[float] = []
    for row, text in enumerate(frame[column].tolist(), start=2):
        cell = str(text).strip()
        try:
            number = float(cell)
        except ValueError:
            raise InvalidInput(
                f"{path}, row {row}, column {column!r}: {cell!r} is not a number"
                if cell
                else f"{path}, row {row}, column {column!r}: the cell is empty"
            ) from None
        if not math.isfinite(number):
            raise InvalidInput(f"{path}, row {row}, column {column!r}: {cell} is not finite")
        values.append(number)
    rows = range(2, len(values) + 2)
    labels = (
        [str(x).strip() for x in frame[label].tolist()] if label else [f"row {r}" for r in rows]
    )
    groups = [str(x).strip() for x in frame[group].tolist()] if group else [""] * len(values)
    return Column(column, tuple(values), tuple(labels), tuple(groups))
