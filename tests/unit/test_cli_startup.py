"""Every `v2v` command starts without loading the statistics or PDF libraries: they cost
two seconds of imports, paid only by the commands that use them (cli/_analytics.py)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("numpy", "pandas", "scipy", "statsmodels", "simpy", "weasyprint")


def test_the_cli_loads_no_statistics_library_until_a_command_needs_one() -> None:
    code = (
        f"import sys, vein2vein.cli.main; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "", f"loaded at start-up: {done.stdout.strip()}"
