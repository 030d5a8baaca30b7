"""The Examples in the pure core's docstrings run, and say what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import vein2vein.analytics
import vein2vein.domain
import vein2vein.planning

MODULES = sorted(
    m.name
    for package in (vein2vein.domain, vein2vein.analytics, vein2vein.planning)
    for m in pkgutil.iter_modules(package.__path__, f"{package.__name__}.")
)


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_in_the_docstrings_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


def test_the_modules_that_teach_by_example_have_examples() -> None:
    with_examples = {
        name
        for name in MODULES
        if doctest.testmod(importlib.import_module(name), report=False).attempted
    }
    assert {
        "vein2vein.domain.audit",
        "vein2vein.domain.identity",
        "vein2vein.domain.people",
        "vein2vein.domain.permissions",
        "vein2vein.domain.signatures",
        "vein2vein.planning.ceiling",
        "vein2vein.planning.model",
        "vein2vein.planning.queueing",
        "vein2vein.planning.scenario",
    } <= with_examples
