"""The ``v2v`` command line: parse input, call a service, render the result (Rich or JSON)."""

from vein2vein.cli.main import app, main

__all__ = ["app", "main"]
