"""A worker process that verifies segments of the audit chain (run as ``python -m``).

``v2v audit verify`` on a long chain hands segments of it to a few of these processes, one
per core: most of the time of a verification is spent turning database rows into Python
objects, and one process can only do that on one core. A worker opens its own connection
with the bare driver (sqlite3 or psycopg): a fresh interpreter importing SQLAlchemy would
spend longer on the import than on 100,000 records.

Protocol, one JSON document per line: the parent writes the source once
(``{"dialect": "sqlite" | "postgresql", "target": path | libpq URI}``), then a segment
per line (``{"first": 1, "last": 100000}``); the worker answers each segment with its
:func:`proof` (``{"first", "last", "entry", "ok", "head"}``) and
exits when its input closes. An error is answered as ``{"error": "..."}`` and ends the
worker; the parent then verifies in its own process. Reading the source from standard
input keeps a password out of the process list.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from typing import IO, Any, Protocol
from urllib.parse import quote

from vein2vein.domain.audit import verify_chain

_SELECT = (
    "SELECT seq, prev_hash, hash, body FROM audit_record WHERE seq BETWEEN {p} AND {p} ORDER BY seq"
)
_FETCH = 20_000


class _Cursor(Protocol):
    def execute(self, query: Any, params: Sequence[Any]) -> Any: ...
    def fetchmany(self, size: int) -> list[Any]: ...
    def close(self) -> None: ...


def proof(cursor: _Cursor, placeholder: str, first: int, last: int) -> dict[str, Any]:
    """Whether records ``first``..``last`` verify on their own (``verify_chain``), starting
    from the stored previous hash of record ``first`` (``entry``); the parent checks that
    ``entry`` is the hash it verified at the end of the segment before."""
    cursor.execute(_SELECT.format(p=placeholder), (first, last))
    rows = chain.from_iterable(iter(lambda: cursor.fetchmany(_FETCH), []))
    head = next(rows, None)
    entry = "" if head is None else head[1]
    report = verify_chain(
        () if head is None else chain((head,), rows), after_seq=first - 1, prev_hash=entry
    )
    return {
        "first": first,
        "last": last,
        "entry": entry,
        "ok": report.ok and report.last_seq == last,
        "head": report.head_hash,
    }


def _open(source: dict[str, str]) -> tuple[Any, Callable[[], _Cursor], str]:
    """The connection, a factory of cursors that stream, and the driver's placeholder."""
    if source["dialect"] == "sqlite":
        lite = sqlite3.connect(f"file:{quote(source['target'])}?mode=ro", uri=True)
        return lite, lite.cursor, "?"
    import psycopg

    pg = psycopg.connect(source["target"])
    # A named (server-side) cursor streams rows instead of loading the segment at once.
    return pg, lambda: pg.cursor(name="v2v_verify_segment"), "%s"


def serve(lines: Iterator[str], out: IO[str]) -> None:
    """Answer segment requests read from ``lines`` until they end."""

    def answer(document: dict[str, Any]) -> None:
        out.write(json.dumps(document) + "\n")
        out.flush()

    try:
        connection, cursor, placeholder = _open(json.loads(next(lines)))
    except Exception as exc:  # whatever stops it opening, the parent verifies by itself
        answer({"error": f"{type(exc).__name__}: {exc}"})
        return
    try:
        for line in lines:
            segment = json.loads(line)
            current = cursor()
            try:
                answer(proof(current, placeholder, segment["first"], segment["last"]))
            except Exception as exc:  # reported to the parent, which falls back
                answer({"error": f"{type(exc).__name__}: {exc}"})
                return
            finally:
                current.close()
    finally:
        connection.close()


if __name__ == "__main__":
    serve(iter(sys.stdin), sys.stdout)
