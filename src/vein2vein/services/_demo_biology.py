"""What the demo's synthetic history hides for the analytics to find (issue 7).

Two signals, both invented and both documented in the README's tour so a reader can check
that the pages find them:

- **Starting material → outcome.** A patient's T cells expand better when the apheresis
  holds a larger share of CD3+ cells and more viable cells, and worse with age. The fold
  expansion of the batch record is drawn around the process's typical value moved by
  :func:`fitness`; at a point-of-care unit (rapid process, few cells) a poor expansion in a
  heavy patient fails to reach the dose.
- **A drifting site.** From half-way through the demo period, post-thaw viability at
  :data:`DRIFT_SITE` slides down (a freezing-profile drift, say) by up to
  :data:`DRIFT_POINTS` percentage points at "now". It stays inside the 70 % specification: a
  control chart's run rules, an out-of-trend review and the comparison with the other unit
  find it before any result fails.
"""

from __future__ import annotations

DRIFT_SITE = "POC2"
DRIFT_FROM = 0.5  # share of the demo period after which the drift starts
DRIFT_POINTS = 8.0  # percentage points of post-thaw viability lost by "now"
RELEASE_VIABILITY = (89.0, 2.4)  # mean and SD of post-thaw viability, in control


def fitness(*, cd3_percent: float, viability: float, age: int) -> float:
    """The log-multiplier of a batch's fold expansion that its patient's cells bring
    (0 for a typical apheresis: 45 % CD3+, 94 % viable, 55 years old)."""
    return 0.30 * (cd3_percent - 45) / 13 + 0.22 * (viability - 94) / 3 - 0.18 * (age - 55) / 17


def viability_drift(site: str, phase: float) -> float:
    """Percentage points of post-thaw viability lost at ``site`` by a batch ordered at
    ``phase`` (0 = start of the demo period, 1 = now)."""
    if site.upper() != DRIFT_SITE or phase <= DRIFT_FROM:
        return 0.0
    return DRIFT_POINTS * min(1.0, (phase - DRIFT_FROM) / (1 - DRIFT_FROM))
