"""Run rules (DESIGN §8): Western Electric 1-4 and Nelson 1-8 over standardized points.

Each violation names its rule and the points of its window. The rules are evaluated in
cache-sized blocks with each comparison made once and the rules that are the same test
under two names (WE1/N1, WE2/N5, WE3/N6) computed once: all twelve over 1,000,000 points take
about ten numpy mean-and-SD passes (benchmarks/bench_run_rules.py).

Examples
--------
>>> found = run_rules([0.1, 3.4, -0.2, 0.3])
>>> [(v.rule, v.points) for v in found]
[('WE1', (1,)), ('N1', (1,))]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vein2vein.domain.errors import InvalidInput

__all__ = ["RULES", "Violation", "Violations", "run_rules"]

Floats = NDArray[np.float64]


# -- run rules ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Violation:
    """A run rule broken: which rule, which points (0-based indices), what it means."""

    rule: str
    points: tuple[int, ...]
    description: str


# rule → (window, description)
RULES: dict[str, tuple[int, str]] = {
    "WE1": (1, "one point beyond 3 sigma"),
    "WE2": (3, "2 of 3 consecutive points beyond 2 sigma on the same side"),
    "WE3": (5, "4 of 5 consecutive points beyond 1 sigma on the same side"),
    "WE4": (8, "8 consecutive points on the same side of the center line"),
    "N1": (1, "one point beyond 3 sigma"),
    "N2": (9, "9 points in a row on the same side of the center line"),
    "N3": (6, "6 points in a row steadily increasing or decreasing"),
    "N4": (14, "14 points in a row alternating up and down"),
    "N5": (3, "2 of 3 points in a row beyond 2 sigma on the same side"),
    "N6": (5, "4 of 5 points in a row beyond 1 sigma on the same side"),
    "N7": (15, "15 points in a row within 1 sigma of the center line"),
    "N8": (8, "8 points in a row beyond 1 sigma on either side"),
}


class Violations:
    """The violations found, kept as the end index of each window per rule (a million
    points can break a rule tens of thousands of times); iterating gives
    :class:`Violation` objects, made as they are asked for."""

    def __init__(self) -> None:
        self._hits: dict[str, tuple[int, NDArray[np.int64], str]] = {}

    def add(self, rule: str, size: int, ends: NDArray[np.int64], description: str) -> None:
        if len(ends):
            self._hits[rule] = (size, ends.astype(np.int64), description)

    def __iter__(self) -> Iterator[Violation]:
        for rule, (size, ends, description) in self._hits.items():
            for end in ends.tolist():
                yield Violation(rule, tuple(range(end - size + 1, end + 1)), description)

    def __len__(self) -> int:
        return sum(len(ends) for _, ends, _ in self._hits.values())

    def __bool__(self) -> bool:
        return bool(self._hits)

    def counts(self) -> dict[str, int]:
        """How many times each rule broken was broken."""
        return {rule: len(ends) for rule, (_, ends, _) in self._hits.items()}

    def points(self, rule: str) -> NDArray[np.int64]:
        """Every point involved in a violation of ``rule``, once each, in order."""
        if rule not in self._hits:
            return np.zeros(0, dtype=np.int64)
        size, ends, _ = self._hits[rule]
        return np.unique((ends[:, None] - np.arange(size)[None, :]).ravel())


# The aliases are one test: WE1/N1, WE2/N5 and WE3/N6 share their hits.
_TEST = {"N1": "WE1", "N5": "WE2", "N6": "WE3"}
# Points are tested in blocks that stay in the cache, each with the points that complete the
# windows starting in it, every flag written into buffers made once per call: fresh arrays
# of a million points, or freed and trimmed ones, cost page faults that were half the time.
_BLOCK = 1 << 15
_OVERLAP = max(size for size, _ in RULES.values()) - 1


def run_rules(z: ArrayLike, rules: Sequence[str] = tuple(RULES)) -> Violations:
    """The violations of ``rules`` among standardized points ``z`` ((x - center) / sigma).

    A rule over a window reports the window's points at each index where it completes,
    so a long run shows as overlapping windows (the points of every violation are named)."""
    zz = np.asarray(z, dtype=np.float64)
    if zz.ndim != 1:
        raise InvalidInput("run rules: expected a sequence of points")
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise InvalidInput(f"run rules {unknown}: expected among {', '.join(RULES)}")
    tests = dict.fromkeys(_TEST.get(rule, rule) for rule in rules)
    parts: dict[str, list[NDArray[np.int64]]] = {test: [] for test in tests}
    block = _Block(min(len(zz), _BLOCK + _OVERLAP))
    for start in range(0, len(zz), _BLOCK):
        block.load(zz[start : start + _BLOCK + _OVERLAP], _BLOCK)
        for test in tests:
            parts[test].append(block.ends(test) + start)
    found = Violations()
    for rule in rules:
        size, description = RULES[rule]
        ends = parts[_TEST.get(rule, rule)]
        found.add(rule, size, np.concatenate(ends) if ends else np.zeros(0, np.int64), description)
    return found


Flags = NDArray[np.bool_]
_COMPARE = {
    "above": (np.greater, 0),
    "below": (np.less, 0),
    "above1": (np.greater, 1),
    "below1": (np.less, -1),
    "above2": (np.greater, 2),
    "below2": (np.less, -2),
    "above3": (np.greater, 3),
    "below3": (np.less, -3),
}


class _Block:
    """The run-rule tests over one block of points at a time: each comparison, run and
    count made once per block (WE4 and N2 share their runs of 8), into buffers kept from
    block to block."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._buffers: dict[str, NDArray[np.bool_ | np.int8]] = {}
        self._made: dict[str, Flags] = {}
        self.z: Floats = np.zeros(0)
        self.starts = 0

    def load(self, z: Floats, starts: int) -> None:
        """Test ``z`` next, reporting the windows that start before ``starts``."""
        self.z, self.starts = z, starts
        self._made.clear()

    def _out(self, key: str, length: int, dtype: type[np.generic] = np.bool_) -> NDArray[Any]:
        if key not in self._buffers:
            self._buffers[key] = np.empty(self.capacity, dtype)
        return self._buffers[key][: max(length, 0)]

    def flag(self, name: str) -> Flags:
        if name in self._made:
            return self._made[name]
        z, n = self.z, len(self.z)
        out = self._out(name, n - (name in ("up", "down")) - 2 * (name == "alternate"))
        if name in _COMPARE:
            compare, threshold = _COMPARE[name]
            compare(z, threshold, out=out)
        elif name == "up":  # diff > 0, exactly, without the differences
            np.greater(z[1:], z[:-1], out=out)
        elif name == "down":
            np.less(z[1:], z[:-1], out=out)
        elif name in ("beyond1", "beyond3"):  # |z| > 1 or 3, without a float temporary
            k = name[-1]
            np.bitwise_or(self.flag(f"above{k}"), self.flag(f"below{k}"), out=out)
        elif name == "within":
            np.logical_not(self.flag("beyond1"), out=out)
        else:  # alternate: a rise then a fall, or a fall then a rise
            up, down = self.flag("up"), self.flag("down")
            np.bitwise_and(up[1:], down[:-1], out=out)
            out |= np.bitwise_and(down[1:], up[:-1], out=self._out("scratch", len(out)))
        self._made[name] = out
        return out

    def run(self, name: str, size: int) -> Flags:
        """Per window start, whether ``size`` flags in a row are all on: runs of 2, 4, 8
        by doubling, then one AND of two overlapping runs (no sums, no run lengths)."""
        if size == 1:
            return self.flag(name)
        key = f"{name}*{size}"
        if key not in self._made:
            half = 1 << (size - 1).bit_length() - 1  # the largest power of 2 below size
            shorter, shift = self.run(name, half), size - half
            out = self._out(key, len(shorter) - shift)
            self._made[key] = np.bitwise_and(shorter[: len(out)], shorter[shift:], out=out)
        return self._made[key]

    def some(self, name: str, size: int, at_least: int) -> Flags:
        """Per window start, whether at least ``at_least`` of ``size`` flags are on."""
        flags = self.flag(name).view(np.int8)
        total = self._out("count", len(flags) - size + 1, np.int8)
        np.copyto(total, flags[: len(total)])
        for shift in range(1, size):
            total += flags[shift : shift + len(total)]
        out: Flags = self._out(f"{name}>={at_least}", len(total))
        np.greater_equal(total, at_least, out=out)
        return out

    def ends(self, test: str) -> NDArray[np.int64]:
        """The last point of each window, starting in this block, that fails ``test``."""
        size = RULES[test][0]
        if test == "WE1":
            hits = self.flag("beyond3")
        elif test == "WE2":  # 2 of 3 beyond 2 sigma, on one side
            hits = self.some("above2", 3, 2) | self.some("below2", 3, 2)
        elif test == "WE3":  # 4 of 5 beyond 1 sigma, on one side
            hits = self.some("above1", 5, 4) | self.some("below1", 5, 4)
        elif test in ("WE4", "N2"):  # 8 or 9 in a row on one side
            hits = self.run("above", size) | self.run("below", size)
        elif test == "N3":  # 5 rises or 5 falls in a row
            hits = self.run("up", size - 1) | self.run("down", size - 1)
        elif test == "N4":  # 12 turns in a row
            hits = self.run("alternate", size - 2)
        elif test == "N7":
            hits = self.run("within", size)
        else:  # N8
            hits = self.run("beyond1", size)
        return np.flatnonzero(hits[: self.starts]) + (size - 1)
