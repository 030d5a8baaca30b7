"""Rendering helpers: JSON for machines, Rich for people, one-line errors with a code."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from typing import Any, NoReturn

import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vein2vein.domain import errors
from vein2vein.domain.identity import ChainOfIdentityId, Din

# soft_wrap: a message is one line however narrow the terminal (tables lay themselves out).
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

# The one table of exit codes (0 is success; 1 is any other vein2vein error).
EXIT_CODES: dict[type[errors.V2VError], int] = {
    errors.InvalidInput: 2,
    errors.NotFound: 3,
    errors.TransitionRefused: 4,
    errors.RuleViolation: 4,
    errors.IdentityMismatch: 5,
    errors.ConcurrencyConflict: 6,
    errors.DuplicateIdentifier: 7,
    errors.AuditChainBroken: 8,
    errors.DatabaseError: 9,
    errors.AuthenticationFailed: 10,
    errors.PermissionDenied: 11,
    errors.ServiceUnavailable: 12,
}


def exit_code(error: errors.V2VError) -> int:
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def fail(error: errors.V2VError) -> NoReturn:
    """Print ``error[code]: message`` on one line to stderr and exit with its code."""
    message = " ".join(str(error).split())
    err_console.print(
        f"[bold red]error\\[{error.code}][/]: {escape(message)}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(exit_code(error))


def table(*columns: str, ids: tuple[str, ...] = (), title: str | None = None) -> Table:
    """A table whose identifier columns (``ids``: lots, DINs, pseudonyms, sequence numbers)
    are never cut or wrapped, so they can be copied into the next command; the other
    columns fold onto more lines when the terminal is narrow. Print it with
    :func:`print_table`."""
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title)
    for name in columns:
        if name in ids:
            grid.add_column(name, no_wrap=True, overflow="ignore")
        else:
            grid.add_column(name, overflow="fold")
    return grid


def print_table(grid: Table) -> None:
    """Print ``grid``: identifier columns keep their full width, the others fold to fit the
    terminal. Only when the identifiers alone are wider than the terminal is the table wider
    (the terminal wraps those lines; nothing is cut off)."""
    needed = 0
    for column in grid.columns:
        if column.no_wrap:
            column.min_width = max(
                (cell_len(str(cell)) for cell in (column.header, *column.cells)), default=1
            )
        # Folded columns get at least 12 characters; 3 more for each column's padding.
        needed += (column.min_width if column.no_wrap else 12) + 3  # type: ignore[operator]
    if needed <= console.width:
        console.print(grid)
    else:  # Rich never prints wider than its console: a wider one for this table
        Console(width=needed, file=console.file).print(grid, crop=False)


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Din | ChainOfIdentityId):
        return value.value
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")


def age(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.1f} d"


@contextmanager
def progress_bar() -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        yield bar
