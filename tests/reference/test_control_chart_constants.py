"""Control-chart constants against the published tables.

Source: D. C. Montgomery, *Introduction to Statistical Quality Control*, Appendix VI
("Factors for constructing variables control charts"), the same values as the NIST/SEMATECH
e-Handbook of Statistical Methods, §6.3.2 (Tables of control chart constants). The tables
give d2, d3 and the factors to three decimals and c4 to four; vein2vein computes them from
their definitions (analytics/control_charts.py ``constants``).
"""

from __future__ import annotations

import pytest

from vein2vein.analytics.control_charts import constants

# n: (d2, d3, c4, A2, A3, D3, D4, B3, B4)
PUBLISHED = {
    2: (1.128, 0.853, 0.7979, 1.880, 2.659, 0.000, 3.267, 0.000, 3.267),
    3: (1.693, 0.888, 0.8862, 1.023, 1.954, 0.000, 2.574, 0.000, 2.568),
    4: (2.059, 0.880, 0.9213, 0.729, 1.628, 0.000, 2.282, 0.000, 2.266),
    5: (2.326, 0.864, 0.9400, 0.577, 1.427, 0.000, 2.114, 0.000, 2.089),
    6: (2.534, 0.848, 0.9515, 0.483, 1.287, 0.000, 2.004, 0.030, 1.970),
    7: (2.704, 0.833, 0.9594, 0.419, 1.182, 0.076, 1.924, 0.118, 1.882),
    8: (2.847, 0.820, 0.9650, 0.373, 1.099, 0.136, 1.864, 0.185, 1.815),
    9: (2.970, 0.808, 0.9693, 0.337, 1.032, 0.184, 1.816, 0.239, 1.761),
    10: (3.078, 0.797, 0.9727, 0.308, 0.975, 0.223, 1.777, 0.284, 1.716),
    15: (3.472, 0.756, 0.9823, 0.223, 0.789, 0.347, 1.653, 0.428, 1.572),
    20: (3.735, 0.729, 0.9869, 0.180, 0.680, 0.415, 1.585, 0.510, 1.490),
    25: (3.931, 0.708, 0.9896, 0.153, 0.606, 0.459, 1.541, 0.565, 1.435),
}


@pytest.mark.parametrize("n", sorted(PUBLISHED))
def test_the_constants_match_the_published_table(n: int) -> None:
    d2, d3, c4, a2, a3, d3f, d4f, b3, b4 = PUBLISHED[n]
    k = constants(n)
    # Three-decimal table values are rounded (some truncated): within one unit of the last
    # decimal; c4 is given to four.
    assert k.d2 == pytest.approx(d2, abs=1e-3)
    assert k.d3 == pytest.approx(d3, abs=1e-3)
    assert k.c4 == pytest.approx(c4, abs=1e-4)
    for computed, table in ((k.A2, a2), (k.A3, a3), (k.D3, d3f), (k.D4, d4f), (k.B3, b3),
                            (k.B4, b4)):  # fmt: skip
        assert computed == pytest.approx(table, abs=1.5e-3)
