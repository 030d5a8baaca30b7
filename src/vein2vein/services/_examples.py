"""The example files shipped in ``vein2vein.examples``: listed by name, and read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from vein2vein.domain.errors import NotFound

__all__ = ["file_or_example", "listed", "text_of"]

T = TypeVar("T")


def listed(folder: str, parse: Callable[[str, str], Mapping[str, Any]]) -> dict[str, str]:
    """The examples in ``folder``: name (the file's, without ``.yaml``) → its ``name:``
    line, each file read with ``parse(text, filename)`` (so a broken example fails here)."""
    found = {}
    entries = (resources.files("vein2vein.examples") / folder).iterdir()
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            data = parse(entry.read_text("utf-8"), entry.name)
            found[entry.name.removesuffix(".yaml")] = str(data["name"])
    return found


def text_of(folder: str, name: str, what: str, names: Callable[[], dict[str, str]]) -> str:
    """The YAML text of example ``name`` in ``folder``.

    Raises
    ------
    NotFound
        Naming ``what`` it is and the examples there are (``names()``).
    """
    entry = resources.files("vein2vein.examples") / folder / f"{name}.yaml"
    if "/" in name or name.startswith(".") or not entry.is_file():
        raise NotFound(f"example {what} {name!r}: no such example "
                       f"(examples: {', '.join(names())})")  # fmt: skip
    return entry.read_text("utf-8")


def file_or_example(
    argument: str,
    what: str,
    from_file: Callable[[Path], T],
    from_example: Callable[[str], T],
    names: Callable[[], dict[str, str]],
) -> T:
    """``from_file(path)`` when ``argument`` is a file, else ``from_example(name)`` for the
    shipped example of that name (``.yaml`` may be given).

    Raises
    ------
    NotFound
        When it is neither, naming ``what`` it is and the examples there are.
    """
    path = Path(argument)
    if path.is_file():
        return from_file(path)
    try:
        return from_example(argument.removesuffix(".yaml"))
    except NotFound:
        raise NotFound(
            f"{what} {argument!r}: no such file, and no example of that name "
            f"(examples: {', '.join(names())})"
        ) from None
