"""Rendering helpers: JSON for machines, Rich for people, one-line errors with a code."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from enum import Enum
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from vein2vein.domain import errors
from vein2vein.domain.identity import ChainOfIdentityId, Din

console = Console()
err_console = Console(stderr=True)

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
