"""Control charts and capability against published worked examples.

Each test embeds its example's data and asserts only the values the source prints, to the
digits it prints. Sources:

* NIST/SEMATECH e-Handbook of Statistical Methods, §6.3.2.2 "Individuals Control Charts"
  (https://www.itl.nist.gov/div898/handbook/pmc/section3/pmc322.htm), flow-rate example.
* NIST/SEMATECH e-Handbook of Statistical Methods, §6.3.2.4 "EWMA Control Charts"
  (https://www.itl.nist.gov/div898/handbook/pmc/section3/pmc324.htm), example with
  EWMA0 = 50, s = 2.0539, λ = 0.3.
* SAS Institute, SAS/QC User's Guide, "RCHART Statement: SHEWHART Procedure" — "Creating
  Range Charts from Raw Data" (data set Disks), "Creating Range Charts from Summary Data"
  (Disksum) and "Saving Control Limits" (Disklim).
* SAS/QC User's Guide, "EWMACHART Statement: MACONTROL Procedure" — "Creating EWMA Charts
  from Raw Data" (Clips1), "... from Subgroup Summary Data" (Clipsum), "Saving Summary
  Statistics" (Cliphist) and Example 9.1 "Specifying Standard Values for the Process Mean
  and Process Standard Deviation".
* SAS/QC User's Guide, "CCHART Statement" — "Creating c Charts from Defect Count Data"
  (Trucks) and "Saving Control Limits" (Deflim); "UCHART Statement" — "Creating u Charts
  from Defect Count Data" (Fabric) and "Saving Control Limits" (Fablim).
* SAS/QC User's Guide, "PROC CAPABILITY and General Statements" — "Computing Descriptive
  Statistics" (Cans) and "Computing Capability Indices" (Figure 5.2).
* An Introduction to Business Statistics, Example 16.6 (p. 489), the p chart of ten
  samples of 200 (https://fliphtml5.com/eraqv/ufcc/AN_INTRODUCTION_TO_BUSINESS_STATISTICS/489/).
* D. C. Montgomery, Introduction to Statistical Quality Control (Wiley), §9.1, Example 9.1
  and Table 9.2: the tabular CUSUM of 30 observations with μ0 = 10, σ = 1, k = 1/2, h = 5.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vein2vein.analytics.capability import capability
from vein2vein.analytics.control_charts import (
    CusumChart,
    EwmaChart,
    IndividualsChart,
    XbarRChart,
    XbarSChart,
    attribute_chart,
)

# -- individuals and moving range ----------------------------------------------------------

# NIST §6.3.2.2: "A new process was studied in order to monitor flow rate. The first 10
# batches resulted in" these, with Xbar = 50.81, MRbar = 1.8778, UCL = 55.8041 and
# LCL = 45.8159.
FLOW_RATE = [49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6, 52.1]


def test_individuals_limits_match_the_nist_flow_rate_example() -> None:
    chart = IndividualsChart().fit(FLOW_RATE)
    result = chart.evaluate(FLOW_RATE)
    assert chart.center == pytest.approx(50.81, abs=5e-3)
    assert chart.mr_bar == pytest.approx(1.8778, abs=5e-5)
    assert result.companion is not None
    assert result.companion.values.tolist() == pytest.approx(
        [2.0, 2.3, 1.4, 3.5, 3.4, 1.4, 0.2, 1.2, 1.5], abs=1e-9
    )
    # The handbook divides by d2 rounded to 1.128; the chart uses d2 = 1.128379: the limits
    # differ from the printed ones by 0.0017 (3 · 1.8778 · (1/1.128 - 1/1.128379)).
    assert result.ucl[0] == pytest.approx(55.8041, abs=2e-3)
    assert result.lcl[0] == pytest.approx(45.8159, abs=2e-3)
    # "On both charts the process is in control, since none of the plotted points fall
    # outside either the UCL or LCL" (the same example in the handbook's earlier edition,
    # https://www.itl.nist.gov/div898/handbook/pmc/section3/pmc312.htm).
    assert not [v for v in result.violations if v.rule == "WE1"]


# -- X̄-R and X̄-S -------------------------------------------------------------------------

# SAS/QC, RCHART: test times (ms) of six drives in each of 25 lots (data set Disks).
DISKS = [
    [8.05, 7.90, 8.04, 8.06, 8.01, 7.99], [8.03, 8.06, 8.02, 8.02, 7.97, 8.03],
    [8.00, 7.94, 7.97, 7.95, 8.00, 8.01], [8.00, 8.06, 8.06, 7.99, 7.97, 7.96],
    [7.93, 8.01, 8.00, 8.09, 8.06, 8.02], [7.98, 7.99, 8.01, 8.09, 8.00, 7.97],
    [8.00, 7.94, 7.93, 8.03, 7.93, 8.08], [8.01, 7.98, 7.98, 8.07, 8.05, 8.09],
    [7.97, 7.96, 8.01, 8.11, 8.06, 8.07], [7.93, 8.03, 8.03, 8.00, 7.93, 8.03],
    [8.00, 8.00, 8.02, 7.92, 7.98, 8.01], [7.98, 7.93, 8.01, 7.97, 8.02, 8.00],
    [8.06, 7.93, 7.98, 7.98, 8.02, 7.96], [8.05, 7.98, 8.05, 7.99, 7.95, 7.99],
    [7.94, 8.01, 7.97, 8.04, 7.91, 8.03], [8.03, 8.03, 8.02, 8.06, 8.00, 7.97],
    [8.03, 7.94, 8.05, 8.05, 8.04, 7.94], [7.99, 7.99, 7.86, 7.99, 8.06, 8.03],
    [7.95, 7.96, 7.99, 7.96, 7.94, 8.12], [8.03, 8.07, 7.98, 7.97, 8.00, 8.04],
    [8.04, 7.90, 8.03, 8.02, 7.98, 7.97], [7.95, 8.05, 7.98, 8.01, 7.97, 8.15],
    [8.06, 8.00, 8.03, 8.02, 7.99, 7.95], [7.97, 8.02, 8.00, 7.96, 7.96, 8.00],
    [8.12, 7.97, 7.99, 8.09, 8.05, 8.00],
]  # fmt: skip
# Disksum: each lot's mean (5 decimals) and range.
DISKS_MEANS = [
    8.00833, 8.02167, 7.97833, 8.00667, 8.01833, 8.00667, 7.98500, 8.03000, 8.03000, 7.99167,
    7.98833, 7.98500, 7.98833, 8.00167, 7.98333, 8.01833, 8.00833, 7.98667, 7.98667, 8.01500,
    7.99000, 8.01833, 8.00833, 7.98500, 8.03667,
]  # fmt: skip
DISKS_RANGES = [
    0.16, 0.09, 0.07, 0.10, 0.16, 0.12, 0.15, 0.11, 0.15, 0.10, 0.10, 0.09, 0.13, 0.10, 0.13,
    0.09, 0.11, 0.20, 0.18, 0.10, 0.14, 0.20, 0.11, 0.06, 0.15,
]  # fmt: skip


def test_xbar_r_limits_match_the_sas_disk_drive_example() -> None:
    chart = XbarRChart().fit(DISKS)
    result = chart.evaluate(DISKS)
    assert result.values.tolist() == pytest.approx(DISKS_MEANS, abs=5e-6)
    assert result.companion is not None
    assert result.companion.values.tolist() == pytest.approx(DISKS_RANGES, abs=1e-9)
    # Disklim: _LCLX_ 7.94314, _MEAN_ 8.00307, _UCLX_ 8.06299, _LCLR_ 0, _R_ 0.124,
    # _UCLR_ 0.24847, _STDDEV_ 0.048927 (σ = R̄/d2).
    assert result.lcl[0] == pytest.approx(7.94314, abs=5e-6)
    assert chart.center == pytest.approx(8.00307, abs=5e-6)
    assert result.ucl[0] == pytest.approx(8.06299, abs=5e-6)
    assert result.companion.lcl[0] == 0.0
    assert chart.r_bar == pytest.approx(0.124, abs=5e-7)
    assert result.companion.ucl[0] == pytest.approx(0.24847, abs=5e-6)
    assert (result.ucl[0] - chart.center) / 3 * math.sqrt(6) == pytest.approx(0.048927, abs=5e-7)


# SAS/QC, EWMACHART: the gap (mm) of five metal clips a day for 20 days (data set Clips1).
CLIPS = [
    [14.76, 14.82, 14.88, 14.83, 15.23], [14.95, 14.91, 15.09, 14.99, 15.13],
    [14.50, 15.05, 15.09, 14.72, 14.97], [14.91, 14.87, 15.46, 15.01, 14.99],
    [14.73, 15.36, 14.87, 14.91, 15.25], [15.09, 15.19, 15.07, 15.30, 14.98],
    [15.34, 15.39, 14.82, 15.32, 15.23], [14.80, 14.94, 15.15, 14.69, 14.93],
    [14.67, 15.08, 14.88, 15.14, 14.78], [15.27, 14.61, 15.00, 14.84, 14.94],
    [15.34, 14.84, 15.32, 14.81, 15.17], [14.84, 15.00, 15.13, 14.68, 14.91],
    [15.40, 15.03, 15.05, 15.03, 15.18], [14.50, 14.77, 15.22, 14.70, 14.80],
    [14.81, 15.01, 14.65, 15.13, 15.12], [14.82, 15.01, 14.82, 14.83, 15.00],
    [14.89, 14.90, 14.60, 14.40, 14.88], [14.90, 15.29, 15.14, 15.20, 14.70],
    [14.77, 14.60, 14.45, 14.78, 14.91], [14.80, 14.58, 14.69, 15.02, 14.85],
]  # fmt: skip
# Clipsum: each day's mean (GapX, 3 decimals) and standard deviation (GapS, 5 decimals).
CLIPS_MEANS = [
    14.904, 15.014, 14.866, 15.048, 15.024, 15.126, 15.220, 14.902, 14.910, 14.932,
    15.096, 14.912, 15.138, 14.798, 14.944, 14.896, 14.734, 15.046, 14.702, 14.788,
]  # fmt: skip
CLIPS_SDS = [
    0.18716, 0.09317, 0.25006, 0.23732, 0.26792, 0.12260, 0.23098, 0.17254, 0.19824,
    0.24035, 0.25618, 0.16903, 0.15928, 0.26329, 0.20876, 0.09965, 0.22512, 0.24141,
    0.17880, 0.16634,
]  # fmt: skip


def test_xbar_s_plots_the_subgroup_means_and_standard_deviations_sas_lists() -> None:
    # The SAS example lists the statistics the X̄-S chart plots; it prints no X̄-S limits
    # for these data, so the limits themselves are checked through the constants (A3, B3,
    # B4 against the published table in test_control_chart_constants.py).
    chart = XbarSChart().fit(CLIPS)
    result = chart.evaluate(CLIPS)
    assert result.values.tolist() == pytest.approx(CLIPS_MEANS, abs=5e-4)
    assert result.companion is not None
    assert result.companion.values.tolist() == pytest.approx(CLIPS_SDS, abs=5e-6)
    assert chart.s_bar == pytest.approx(np.mean(CLIPS_SDS), abs=5e-6)


# -- attribute charts ----------------------------------------------------------------------


def test_a_p_chart_matches_the_ten_samples_of_200_example() -> None:
    # Example 16.6: defectives in 10 samples of 200; p̄ = 320/2000 = 0.16,
    # UCL = 0.16 + 0.07776 = 0.2378, LCL = 0.0822; "all the units fall within" the limits.
    defectives = [40, 44, 22, 34, 24, 32, 28, 32, 34, 30]
    result = attribute_chart("p", defectives, [200] * 10)
    assert result.values.tolist() == pytest.approx(
        [0.20, 0.22, 0.11, 0.17, 0.12, 0.16, 0.14, 0.16, 0.17, 0.15], abs=1e-12
    )
    assert result.center[0] == pytest.approx(0.16, abs=1e-12)
    assert result.ucl[0] == pytest.approx(0.2378, abs=5e-5)
    assert result.lcl[0] == pytest.approx(0.0822, abs=5e-5)
    assert not result.violations
    # The np chart of the same counts (constant n) is the p chart scaled by n = 200: its
    # center and limits are 200 times the published ones.
    counts = attribute_chart("np", defectives, [200] * 10)
    assert counts.center[0] == pytest.approx(32.0, abs=1e-9)
    assert counts.ucl[0] == pytest.approx(200 * 0.2378, abs=200 * 5e-5)
    assert counts.lcl[0] == pytest.approx(200 * 0.0822, abs=200 * 5e-5)


def test_a_c_chart_matches_the_sas_paint_defects_example() -> None:
    # Trucks: paint defects on 20 new trucks; Deflim: _C_ 7.8, _LCLC_ 0, _UCLC_ 16.1785.
    defects = [5, 4, 4, 8, 7, 12, 3, 11, 8, 4, 9, 13, 5, 4, 9, 15, 8, 9, 10, 8]
    result = attribute_chart("c", defects)
    assert result.center[0] == pytest.approx(7.8, abs=1e-12)
    assert result.lcl[0] == 0.0
    assert result.ucl[0] == pytest.approx(16.1785, abs=5e-5)


def test_a_u_chart_matches_the_sas_fabric_example() -> None:
    # Fabric: defects on 20 rolls of 30 square meters (30 inspection units each); Fablim:
    # _LCLU_ .001671271, _U_ 0.30333, _UCLU_ 0.60500.
    defects = [12, 11, 9, 15, 7, 6, 5, 10, 8, 8, 14, 5, 9, 13, 7, 5, 8, 11, 7, 12]
    result = attribute_chart("u", defects, [30] * 20)
    assert result.lcl[0] == pytest.approx(0.001671271, abs=5e-10)
    assert result.center[0] == pytest.approx(0.30333, abs=5e-6)
    assert result.ucl[0] == pytest.approx(0.60500, abs=5e-6)


# -- EWMA ----------------------------------------------------------------------------------

# NIST §6.3.2.4: 20 points charted with EWMA0 = 50, s = 2.0539, λ = 0.3 and k = 3; the page
# prints the EWMA statistics to 2 decimals (starting with EWMA0 = 50.00), the limits
# UCL = 50 + 3(0.4201)(2.0539) = 52.5884 and LCL = 47.4115, and finds every EWMA between them.
NIST_EWMA_DATA = [
    52.0, 47.0, 53.0, 49.3, 50.1, 47.0, 51.0, 50.1, 51.2, 50.5,
    49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6, 52.1,
]  # fmt: skip
NIST_EWMA = [
    50.60, 49.52, 50.56, 50.18, 50.16, 49.21, 49.75, 49.85, 50.26, 50.33,
    50.11, 49.36, 49.52, 50.05, 49.38, 49.92, 50.73, 51.23, 51.94, 51.99,
]  # fmt: skip


def test_ewma_statistics_and_limits_match_the_nist_example() -> None:
    result = EwmaChart(lam=0.3, L=3.0, mu0=50.0, sigma=2.0539).evaluate(NIST_EWMA_DATA)
    assert result.values.tolist() == pytest.approx(NIST_EWMA, abs=5e-3)
    # The handbook's limits are the steady-state ones; the chart's exact limits reach them
    # (to 1e-6) well before the 20th point. 0.4201 is √(0.3/1.7) truncated, hence 1e-4.
    assert result.ucl[-1] == pytest.approx(52.5884, abs=1e-4)
    assert result.lcl[-1] == pytest.approx(47.4115, abs=1e-4)
    assert not result.violations


def test_ewma_values_and_out_of_control_days_match_the_sas_metal_clip_example() -> None:
    means = np.asarray(CLIPS, dtype=np.float64).mean(axis=1)
    # Cliphist (weight 0.3, started at the estimated mean of the subgroup means): GapE of
    # days 1-5 = 14.9362, 14.9595, 14.9315, 14.9664, 14.9837.
    estimated = EwmaChart(lam=0.3, mu0=float(means.mean()), sigma=1.0).evaluate(means)
    assert estimated.values[:5].tolist() == pytest.approx(
        [14.9362, 14.9595, 14.9315, 14.9664, 14.9837], abs=5e-5
    )
    # Example 9.1: with the standard values μ0 = 15 and σ0 = 0.2 (subgroups of 5, so the
    # means have σ0/√5) and weight 0.3, "the process is out-of-control, since the moving
    # averages for Day=17, Day=19, and Day=20 lie below the lower control limit".
    given = EwmaChart(lam=0.3, L=3.0, mu0=15.0, sigma=0.2 / math.sqrt(5)).evaluate(means)
    assert [v.points[0] + 1 for v in given.violations] == [17, 19, 20]
    assert all(given.values[[16, 18, 19]] < given.lcl[[16, 18, 19]])


# -- CUSUM ---------------------------------------------------------------------------------

# Montgomery, Example 9.1 (Table 9.1): 20 observations from N(10, 1), then 10 after the mean
# moved to 11.
MONTGOMERY = [
    9.45, 7.99, 9.29, 11.66, 12.16, 10.18, 8.04, 11.46, 9.20, 10.34,
    9.03, 11.47, 10.51, 9.40, 10.08, 9.37, 10.62, 10.31, 8.52, 10.84,
    10.90, 9.33, 12.29, 11.50, 10.60, 11.08, 10.38, 11.62, 11.31, 10.52,
]  # fmt: skip
# Table 9.2: the upper cumulative sum C+ of periods 1 to 30 (2 decimals).
MONTGOMERY_UPPER = [
    0.0, 0.0, 0.0, 1.16, 2.82, 2.50, 0.04, 1.00, 0.0, 0.0,
    0.0, 0.97, 0.98, 0.0, 0.0, 0.0, 0.12, 0.0, 0.0, 0.34,
    0.74, 0.0, 1.79, 2.79, 2.89, 3.47, 3.35, 4.47, 5.28, 5.30,
]  # fmt: skip


def test_the_tabular_cusum_matches_montgomerys_example() -> None:
    result = CusumChart(k=0.5, h=5.0, mu0=10.0, sigma=1.0).evaluate(MONTGOMERY)
    assert result.values.tolist() == pytest.approx(MONTGOMERY_UPPER, abs=5e-3)
    # C+_29 = 5.28 > H = 5: the process is out of control at period 29, and the upper sum
    # is still above H at period 30 — the only signals.
    assert [v.points[0] + 1 for v in result.violations] == [29, 30]


# -- capability ----------------------------------------------------------------------------

# SAS/QC, PROC CAPABILITY: the fluid weights (ounces) of 100 drink cans (data set Cans).
CANS = [
    12.07, 12.02, 12.00, 12.01, 11.98, 11.96, 12.04, 12.05, 12.01, 11.97,
    12.03, 12.03, 12.00, 12.04, 11.96, 12.02, 12.06, 12.00, 12.02, 11.91,
    12.05, 11.98, 11.91, 12.01, 12.06, 12.02, 12.05, 11.90, 12.07, 11.98,
    12.02, 12.11, 12.00, 11.99, 11.95, 11.98, 12.05, 12.00, 12.10, 12.04,
    12.06, 12.04, 11.99, 12.06, 11.99, 12.07, 11.96, 11.97, 12.00, 11.97,
    12.09, 11.99, 11.95, 11.99, 11.99, 11.96, 11.94, 12.03, 12.09, 12.03,
    11.99, 12.00, 12.05, 12.04, 12.05, 12.01, 11.97, 11.93, 12.00, 11.97,
    12.13, 12.07, 12.00, 11.96, 11.99, 11.97, 12.05, 11.94, 11.99, 12.02,
    11.95, 11.99, 11.91, 12.06, 12.03, 12.06, 12.05, 12.04, 12.03, 11.98,
    12.05, 12.05, 12.11, 11.96, 12.00, 11.96, 11.96, 12.00, 12.01, 11.98,
]  # fmt: skip


def test_overall_capability_matches_the_sas_drink_can_example() -> None:
    # Figure 5.2 (LSL 11.95, USL 12.05), from the sample standard deviation — our Pp/Ppk:
    # Cp 0.354967 (95% 0.305565, 0.404288); Cpk 0.288943 (0.212210, 0.365677).
    found = capability(CANS, lsl=11.95, usl=12.05)
    assert found.pp is not None
    assert (found.pp.estimate, found.pp.low, found.pp.high) == pytest.approx(
        (0.354967, 0.305565, 0.404288), abs=5e-7
    )
    assert (found.ppk.estimate, found.ppk.low, found.ppk.high) == pytest.approx(
        (0.288943, 0.212210, 0.365677), abs=5e-7
    )
    # CPL 0.420991 and CPU 0.288943: the one-sided indices (their intervals use another
    # formula in SAS, so only the estimates are compared).
    assert capability(CANS, lsl=11.95).ppk.estimate == pytest.approx(0.420991, abs=5e-7)
    assert capability(CANS, usl=12.05).ppk.estimate == pytest.approx(0.288943, abs=5e-7)


def test_within_sigma_is_the_nist_moving_range_estimate() -> None:
    # NIST §6.3.2.2: σ within = MRbar/1.128 for individuals; the UCL 55.8041 is
    # Xbar + 3σ, with the handbook's d2 rounded to 1.128 (see the individuals test).
    found = capability(FLOW_RATE, lsl=40.0, usl=60.0)
    assert found.mean == pytest.approx(50.81, abs=5e-3)
    assert found.mean + 3 * found.sigma_within == pytest.approx(55.8041, abs=2e-3)
