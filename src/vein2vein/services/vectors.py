"""Vector and plasmid planning (issue 9): the one place the CLI and the pages call.

:func:`open_plan` reads a vector plan file, or a shipped example by name (:func:`examples`);
:func:`plan` works it out at every batch scale and recommends one
(:func:`vein2vein.planning.vector_scales.plan_vectors`). Nothing here reads or writes the
records.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vein2vein.domain.errors import InvalidInput
from vein2vein.formats.vector_plan import (
    InvalidVectorPlanFile,
    load_vector_plan,
    parse_vector_plan,
)
from vein2vein.planning.vector_scales import VectorPlanResult, plan_vectors
from vein2vein.planning.vectors import InvalidVectorPlan, VectorPlan
from vein2vein.services import _examples

__all__ = [
    "VectorPlan",
    "VectorPlanResult",
    "batch_draws",
    "example_text",
    "examples",
    "load",
    "months_of_work",
    "open_plan",
    "plan",
]

_EXAMPLES = "vectors"


def examples() -> dict[str, str]:
    """The shipped example plans: name (``cart-lv``, …) → its ``name:`` line."""
    return _examples.listed(_EXAMPLES, parse_vector_plan)


def example_text(name: str) -> str:
    """The YAML text of the shipped example plan ``name``.

    Raises
    ------
    NotFound
        When there is no example of that name.
    """
    return _examples.text_of(_EXAMPLES, name, "vector plan", examples)


def load(path_or_text: Path | str, *, source: str | None = None) -> VectorPlan:
    """The vector plan in a file (a :class:`~pathlib.Path`) or in YAML text (a ``str``),
    checked (:mod:`vein2vein.formats.vector_plan`) and its parts fitted together
    (:meth:`VectorPlan.from_dict <vein2vein.planning.vectors.VectorPlan.from_dict>`).

    Raises
    ------
    InvalidInput
        One error listing every problem, each with its place
        (``cart.yaml: 2 problem(s): vector.batch_success_rate: must be ≤ 1; …``).
    """
    where = source or (str(path_or_text) if isinstance(path_or_text, Path) else "<vector plan>")
    try:
        if isinstance(path_or_text, Path):
            data = load_vector_plan(path_or_text)
        else:
            data = parse_vector_plan(path_or_text, where)
        return VectorPlan.from_dict(data)
    except (InvalidVectorPlanFile, InvalidVectorPlan) as bad:
        problems = bad.problems
        raise InvalidInput(f"{where}: {len(problems)} problem(s): {'; '.join(problems)}") from None


def open_plan(argument: str) -> VectorPlan:
    """The plan in the file at path ``argument``, or else the shipped example of that name.

    Raises
    ------
    NotFound
        When ``argument`` is neither a file nor an example's name.
    """
    return _examples.file_or_example(
        argument, "vector plan", load,
        lambda name: load(example_text(name), source=f"example {name}"), examples,
    )  # fmt: skip


def plan(
    vector_plan: VectorPlan, progress: Callable[[int, int], None] | None = None
) -> VectorPlanResult:
    """Work the plan out at every scale and recommend one: demand, milestones, batches,
    litres, plasmid grams, stock, cost per dose and the risk of a stock-out with the safety
    stock that keeps it under the plan's target; ``progress(done, total)`` after each
    scale."""
    return plan_vectors(vector_plan, progress)


#: Safety levels a search tries, about: the level 0, doubling to the limit (some 15 steps)
#: and bisecting back (as many): 32 covers the examples (21 to 31).
SEARCH_LEVELS = 32


def batch_draws(vector_plan: VectorPlan) -> float:
    """How many random numbers the batches of the plan's runs take at its smallest scale
    (each run draws one per batch; memory grows with it)."""
    from vein2vein.planning.supply import expected_batches

    most = max(expected_batches(vector_plan, s) for s in vector_plan.vector.scales)
    return vector_plan.supply.runs * (2 * most + 20)


def months_of_work(vector_plan: VectorPlan) -> int:
    """How big working the plan out is (for a page to refuse what would take too long):
    runs × months × the months a lot stays usable (each month's patients look through
    them) × the safety levels searched × the scales."""
    months = len(vector_plan.months())
    usable = min(vector_plan.vector.usable_months, months)
    return (vector_plan.supply.runs * months * max(usable, 1) * SEARCH_LEVELS
            * len(vector_plan.vector.scales))  # fmt: skip
