"""The demo's QC, planned (pure): samples, results, verifications, OOS investigations,
retests, record reviews and the physician's requests of every batch.

Each act comes with its offset from the journey's order, so the QC page shows real due
times and turnarounds: the apheresis is sampled on receipt and its results are in before QA
decides; the dose is sampled when processing completes, each release test reads out after
its method's turnaround (the 14-day culture last) and a second analyst verifies it. The
story of a batch's QC follows its disposition: an OOS result confirmed by a full
investigation before a rejection or an OOS release (with the treating physician's signed
request), a laboratory error that invalidates a result and a retest that conforms, an
invalid assay repeated, a conditional release whose culture reads out later (no growth, or
growth: the treating centre is alerted and acknowledges).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import cache
from importlib import resources

from vein2vein.domain.specification import Kind, Specification
from vein2vein.formats.spec import parse_spec
from vein2vein.services._demo_biology import RELEASE_VIABILITY

__all__ = [
    "ACCEPTANCE",
    "RELEASE",
    "QcAct",
    "QcKind",
    "acceptance_values",
    "charted",
    "release_acts",
    "spec",
    "spec_text",
]

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
ACCEPTANCE, RELEASE = "cart-cd19-acceptance.yaml", "cart-cd19-release.yaml"


@cache
def spec_text(name: str) -> str:
    return resources.files("vein2vein.examples").joinpath("spec", name).read_text("utf-8")


@cache
def spec(name: str) -> Specification:
    return parse_spec(spec_text(name), name)


class QcKind(StrEnum):
    SAMPLE = "sample"  # draw a sample (stage in ``text``)
    RESULT = "result"  # enter ``value`` for ``attribute``; ``verifier`` verifies it
    INVALIDATE = "invalidate"  # invalidate the standing result of ``attribute`` (``text``)
    ESCALATE = "escalate"  # phase I of the OOS of ``attribute`` found no lab cause
    CONCLUDE = "conclude"  # QA concludes the OOS of ``attribute`` (``outcome``, ``text``)
    REVIEW = "review"  # QA signs the review of the batch record
    REQUEST = "request"  # the treating physician requests an OOS release (``text``)
    ACKNOWLEDGE = "acknowledge"  # the treating centre acknowledges the culture alert


@dataclass(frozen=True, slots=True)
class QcAct:
    kind: QcKind
    stage: str = ""  # "starting-material" or "release": which sample of the batch
    attribute: str = ""
    value: str = ""
    verifier: str = ""
    retest: bool = False
    outcome: str = ""
    text: str = ""
    final: bool = False  # a conforming culture that makes a conditional release final


Planned = tuple[timedelta, str, QcAct]  # offset from the order, actor, act


def acceptance_values(
    rng: random.Random,
    *,
    viability: int,
    cd3_e9: float,
    cd3_percent: float,
    hours_in_transit: float,
) -> dict[str, str]:
    """The apheresis's results as typed: consistent with what the record will show."""
    tnc = max(cd3_e9 / (cd3_percent / 100) * rng.uniform(0.95, 1.05), 2.2)
    return {
        "tnc": f"{tnc:.2f}",
        "cd3_cells": f"{cd3_e9:.2f}",
        "cd3_percent": f"{cd3_percent:.1f}",
        "viability": str(viability),
        "volume": str(rng.randint(120, 330)),
        "hours_from_collection": f"{hours_in_transit:.1f}",
    }


def plan_acceptance(
    rng: random.Random,
    received: timedelta,
    decided: timedelta,
    values: dict[str, str],
    site: str,
) -> list[Planned]:
    """Sample on receipt, results in before QA decides at ``decided``."""
    analyst, second = f"qc.{site}", f"qc2.{site}"
    out: list[Planned] = [
        (received + 10 * MINUTE, analyst, QcAct(QcKind.SAMPLE, stage="starting-material"))
    ]
    window = decided - received - 20 * MINUTE
    acceptance = spec(ACCEPTANCE)
    for attribute in acceptance.attributes:
        turnaround = acceptance.method_of(attribute).turnaround_hours * HOUR
        at = received + min(turnaround * rng.uniform(0.4, 1.0), window * rng.uniform(0.5, 0.95))
        out.append(
            (
                at,
                analyst,
                QcAct(
                    QcKind.RESULT,
                    "starting-material",
                    attribute.name,
                    values[attribute.name],
                    second,
                ),
            )
        )
    return out


def charted(attribute: str) -> bool:
    """Whether a release attribute has numbers (a control chart)."""
    return any(
        a.name == attribute and a.kind in (Kind.NUMERIC, Kind.MULTI)
        for a in spec(RELEASE).attributes
    )


# Release results that conform, drawn around a realistic mean; ``drift`` percentage points
# of viability lost at a drifting site (_demo_biology).
def _conforming(rng: random.Random, drift: float) -> dict[str, str]:
    mean, sd = RELEASE_VIABILITY
    potency = rng.gauss(1500, 260)
    return {
        "viability": str(round(min(97.0, max(72.0, rng.gauss(mean - drift, sd))))),
        "car_percent": str(round(min(61.0, max(24.0, rng.gauss(42, 6))))),
        "dose": f"{min(2.2, max(0.7, rng.gauss(1.45, 0.25))):.2f}",
        "vcn": f"{min(3.4, max(1.1, rng.gauss(2.2, 0.4))):.1f}",
        "identity": "detected",
        "potency": ", ".join(
            str(round(min(2400.0, max(700.0, potency * rng.gauss(1, 0.06))))) for _ in range(3)
        ),
        "endotoxin": f"{min(0.9, max(0.05, math.exp(rng.gauss(math.log(0.3), 0.35)))):.2f}",
        "mycoplasma": "not detected",
        "sterility_rapid": "no growth",
        "sterility_culture": "no growth",
        "rcl": "not detected",
        "cd4_cd8_ratio": f"{rng.uniform(0.4, 3.2):.2f}",
    }


# What fails, for each kind of QC rejection the plan gives (domain words → attribute, value).
FAILURES = {
    "sterility": ("sterility_culture", "growth"),
    "vector copy number": ("vcn", "5.8"),
    "viability": ("viability", "{v}"),
    "endotoxin": ("endotoxin", "3.40"),
}


def release_acts(
    rng: random.Random,
    *,
    site: str,
    centre: str,
    completed: timedelta,
    story: str,
    failure: tuple[str, str] | None = None,
    drift: float = 0.0,
) -> tuple[list[Planned], timedelta]:
    """The release QC of a batch whose processing completes at ``completed``: what is done,
    and the earliest offset at which its disposition may follow.

    ``story``: ``release`` (all in, the culture last), ``retest`` (an endotoxin OOS found to
    be a laboratory error, retested), ``invalid`` (a potency assay invalidated and repeated),
    ``reject`` (``failure`` confirmed OOS), ``oos`` (``failure`` confirmed, the physician
    requests the release), ``conditional`` (all but the culture; it conforms later),
    ``cond-fail`` (the culture grows after a conditional release).
    """
    analyst, second, qa = f"qc.{site}", f"qc2.{site}", f"qa.{site}"
    release = spec(RELEASE)
    drawn = completed + rng.randint(15, 50) * MINUTE
    out: list[Planned] = [(drawn, analyst, QcAct(QcKind.SAMPLE, stage="release"))]
    values = _conforming(rng, drift)
    if failure is not None:
        values[failure[0]] = failure[1]
    conditional = story in ("conditional", "cond-fail")
    if story == "cond-fail":
        values["sterility_culture"] = "growth"
    times: dict[str, timedelta] = {}
    for attribute in release.attributes:
        turnaround = release.method_of(attribute).turnaround_hours * HOUR
        # Most tests read out within their target; now and then one is late.
        at = drawn + turnaround * (
            rng.uniform(0.55, 0.95) if rng.random() < 0.85 else rng.uniform(1.0, 1.3)
        )
        if attribute.name == "sterility_culture":
            at = drawn + turnaround + rng.randint(2, 20) * HOUR  # read on day 14, not before
        times[attribute.name] = at
        act = QcAct(
            QcKind.RESULT,
            "release",
            attribute.name,
            values[attribute.name],
            second,
            final=conditional and attribute.name == "sterility_culture",
        )
        out.append((at, analyst, act))
    ready = max(t for a, t in times.items() if not (conditional and a == "sterility_culture"))
    if story == "retest":
        # The first endotoxin read is OOS; phase I finds the laboratory error; a retest.
        first = next(i for i, (_, _, a) in enumerate(out) if a.attribute == "endotoxin")
        at = out[first][0]
        out[first] = (at, analyst, QcAct(QcKind.RESULT, "release", "endotoxin", "3.10", second))
        out += [
            (
                at + 20 * HOUR,
                qa,
                QcAct(
                    QcKind.CONCLUDE,
                    "release",
                    "endotoxin",
                    outcome="laboratory-error",
                    text="phase I: the LAL reagent lot failed its positive "
                    "product control (spike recovery 12 %); assignable laboratory error",
                ),
            ),
            (
                at + 30 * HOUR,
                analyst,
                QcAct(
                    QcKind.RESULT, "release", "endotoxin", values["endotoxin"], second, retest=True
                ),
            ),
        ]
        ready = max(ready, at + 31 * HOUR)
    elif story == "invalid":
        at = times["potency"]
        out += [
            (
                at + 2 * HOUR,
                analyst,
                QcAct(
                    QcKind.INVALIDATE,
                    "release",
                    "potency",
                    text="assay invalid: the positive control was outside its acceptance range",
                ),
            ),
            (
                at + 50 * HOUR,
                analyst,
                QcAct(
                    QcKind.RESULT,
                    "release",
                    "potency",
                    ", ".join(str(rng.randint(700, 2400)) for _ in range(3)),
                    second,
                    retest=True,
                ),
            ),
        ]
        ready = max(ready, at + 51 * HOUR)
    elif story in ("reject", "oos") and failure is not None:
        at = times[failure[0]]
        out += [
            (
                at + 22 * HOUR,
                analyst,
                QcAct(
                    QcKind.ESCALATE,
                    "release",
                    failure[0],
                    text="phase I: calculations, instrument, reagents and analyst checked; no "
                    "laboratory error found",
                ),
            ),
            (
                at + 70 * HOUR,
                qa,
                QcAct(
                    QcKind.CONCLUDE,
                    "release",
                    failure[0],
                    outcome="confirmed",
                    text="phase II: the result reflects the product (patient "
                    "cells with low expansion and viability); no other batch affected",
                ),
            ),
        ]
        ready = max(ready, at + 71 * HOUR)
        if story == "oos":
            # The physician is asked once every result is in and the OOS is confirmed.
            asked = max(at + 90 * HOUR, times["sterility_culture"] + 3 * HOUR)
            text = (
                "no alternative therapy; the expected benefit outweighs the risk of a dose "
                "outside its specification"
            )
            physician = f"physician.{centre.lower()}"
            out.append((asked, physician, QcAct(QcKind.REQUEST, "release", failure[0], text=text)))
            ready = max(ready, asked + HOUR)
    if story == "cond-fail":  # the growth is investigated to its end: it was real
        at = times["sterility_culture"]
        out += [
            (
                at + 20 * HOUR,
                analyst,
                QcAct(
                    QcKind.ESCALATE,
                    "release",
                    "sterility_culture",
                    text="phase I: bottles, media and incubator controls in order; no laboratory "
                    "contamination found",
                ),
            ),
            (
                at + 96 * HOUR,
                qa,
                QcAct(
                    QcKind.CONCLUDE,
                    "release",
                    "sterility_culture",
                    outcome="confirmed",
                    text="phase II: organism identified as skin flora "
                    "(Staphylococcus epidermidis); aseptic processing of this batch under CAPA",
                ),
            ),
        ]
    review_at = completed + rng.randint(20, 60) * HOUR
    out.append(
        (
            review_at,
            qa,
            QcAct(
                QcKind.REVIEW,
                text="batch record reviewed by exception: "
                "excursions, corrections and deviations assessed",
            ),
        )
    )
    return out, max(ready, review_at) + rng.randint(1, 8) * HOUR


def culture_time(acts: list[Planned]) -> timedelta:
    """When the 14-day culture of a release plan reads out."""
    return next(at for at, _, a in acts if a.attribute == "sterility_culture")
