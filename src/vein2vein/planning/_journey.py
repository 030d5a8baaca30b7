"""The network in SimPy's vocabulary: a :class:`simpy.PriorityResource` for each site's device
slots, each staff role that work needs, the QC analysts and each kind of instrument; a
process for each treatment centre's orders and one for each patient's journey:

order → apheresis → fresh transport → acceptance → a device slot (re-manufacture first) →
steps (with the operators for their hands-on hours) → changeover (the slot stays busy while
the patient moves on) → QC tests in parallel (an analyst, then an instrument) → sterility wait
(shortened by conditional release) → QA review → cryo-shipping → infusion.

A failure (apheresis refused, batch failed, test out of specification) sends the patient
back for a new collection with the re-manufacture probability; a lost patient (by the weekly
hazard) leaves the system at once and the journey stops at its next point of decision."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from vein2vein.planning._resources import Draws, Level, Pool, sampler, shift_process
from vein2vein.planning.scenario import DAYS_PER_YEAR, QcTest, Scenario, Shift

__all__ = ["Network", "Patient"]

HOURS = 1 / 24
#: The device queue serves patients on a second attempt first.
REMANUFACTURE, FIRST_ATTEMPT = 0, 1
Sampler = Callable[[], float]
Process = Generator[simpy.Event, Any, None]


@dataclass(slots=True)
class Patient:
    ordered: float
    centre: str
    apheresis: float | None = None
    left: float | None = None
    outcome: str = ""  # dose, lost, without-dose (empty while in the system)
    attempts: int = 0


@dataclass(slots=True)
class Counters:
    """What happened inside the measurement window (costs and throughput)."""

    doses: int = 0
    batches: int = 0
    fresh_trips: int = 0
    cryo_trips: int = 0
    tests: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Plant:
    devices: Pool
    operators: Pool | None
    operators_per_batch: int
    reviewer: Pool | None
    analysts: Pool | None
    instruments: dict[str, Pool]
    changeover: Sampler


@dataclass(slots=True)
class _Lane:
    """What a centre's patients go through: their plant, route and process."""

    plant: _Plant
    apheresis: Sampler
    infusion: Sampler
    transport: Sampler
    shipping: Sampler
    steps: tuple[tuple[Sampler, float], ...]  # duration, hands-on days


class Network:
    """The scenario built in a :class:`simpy.Environment`, ready to run; ``window`` is the
    measurement window [start, end] in days."""

    def __init__(self, scenario: Scenario, draws: Draws, window: tuple[float, float]) -> None:
        self.env = simpy.Environment()
        self.scenario = scenario
        self.draws = draws
        self.window = window
        self.pools: list[Pool] = []
        self.patients: list[Patient] = []
        self.counters = Counters()
        self.in_system = Level(*window)
        self.active = 0
        self.open_arrivals = 0
        #: Succeeds when the orders have stopped and the last patient has left.
        self.emptied = self.env.event()
        self._hazard_per_day = scenario.loss_hazard_per_week / 7
        release = scenario.release
        self._review = sampler(release.review_hours, draws, HOURS)
        self._tests = [(t, sampler(t.hours, draws, HOURS)) for t in release.tests]
        self._sterility_days = release.sterility_wait_days
        self._recollection = sampler(scenario.failures.recollection_days, draws, 1.0)
        plants = {k: self._plant(k) for k in sorted(scenario.manufacturing_sites)}
        self.lanes: dict[str, _Lane] = {}
        for centre_id, wanted in scenario.demand.centres.items():
            site = scenario.logistics.serves[centre_id]
            centre = scenario.treatment_centres[centre_id]
            route = scenario.logistics.route(centre_id, site)
            assert route is not None  # the scenario checked it
            steps = tuple(
                (sampler(s.hours, draws, HOURS), s.hands_on_hours * HOURS)
                for s in scenario.processes[wanted.process].steps
            )
            self.lanes[centre_id] = _Lane(
                plants[site],
                sampler(centre.apheresis_after_order_days, draws, 1.0),
                sampler(centre.infusion_after_receipt_days, draws, 1.0),
                sampler(route.transport_hours, draws, HOURS),
                sampler(route.shipping_hours, draws, HOURS),
                steps,
            )
            self.open_arrivals += 1
            self.env.process(self._orders(centre_id, wanted.patients_per_year))

    # -- building --------------------------------------------------------------------------

    def _pool(self, name: str, capacity: int) -> Pool:
        pool = Pool(self.env, name, capacity, self.window)
        self.pools.append(pool)
        return pool

    def _staff(self, name: str, shift: Shift) -> Pool:
        pool = self._pool(name, shift.headcount)
        if not shift.round_the_clock:
            self.env.process(shift_process(self.env, pool, shift))
        return pool

    def _plant(self, key: str) -> _Plant:
        site = self.scenario.manufacturing_sites[key]
        d = site.devices
        operators = reviewer = analysts = None
        if d.operators_per_batch and d.operator_role:
            operators = self._staff(f"{key}.staff.{d.operator_role}", site.staff[d.operator_role])
        role = self.scenario.release.reviewer_role
        if role is not None and role in site.staff:
            reviewer = (
                operators
                if role == d.operator_role and operators is not None
                else self._staff(f"{key}.staff.{role}", site.staff[role])
            )
        instruments = {}
        if site.qc is not None and self.scenario.release.tests:
            analysts = self._staff(f"{key}.qc.analysts", site.qc.analysts)
            for method in sorted({t.method for t in self.scenario.release.tests}):
                instruments[method] = self._pool(f"{key}.qc.{method}", site.qc.instruments[method])
        return _Plant(
            self._pool(f"{key}.devices", d.slots), operators, d.operators_per_batch, reviewer,
            analysts, instruments, sampler(d.changeover_hours, self.draws, HOURS),
        )  # fmt: skip

    # -- demand ----------------------------------------------------------------------------

    def _orders(self, centre: str, per_year: float) -> Process:
        """Poisson orders at the demand's rate, by thinning (Lewis & Shedler) when growth or
        seasonality make the rate change in time."""
        demand, env, u = self.scenario.demand, self.env, self.draws.uniform
        end = self.window[1]
        peak = per_year / DAYS_PER_YEAR * (1 + demand.seasonality)
        peak *= max(1.0, (1 + demand.growth_per_year) ** (end / DAYS_PER_YEAR))
        varies = demand.seasonality > 0 or demand.growth_per_year != 0
        while peak > 0:
            gap = -math.log(1.0 - u()) / peak
            if env.now + gap > end:
                break
            yield env.timeout(gap)
            if varies:
                years = env.now / DAYS_PER_YEAR
                rate = per_year / DAYS_PER_YEAR * (1 + demand.growth_per_year) ** years
                rate *= 1 + demand.seasonality * math.cos(2 * math.pi * years)
                if u() * peak > rate:
                    continue
            # The patient is in the system from the order, before its process first runs.
            patient = Patient(env.now, centre)
            self.patients.append(patient)
            self.active += 1
            self.in_system.add(env.now, 1)
            env.process(self._journey(patient))
        self.open_arrivals -= 1
        self._check_empty()

    # -- the journey -----------------------------------------------------------------------

    def _in_window(self) -> bool:
        return self.window[0] <= self.env.now < self.window[1]

    def _leave(self, patient: Patient, outcome: str) -> None:
        if patient.outcome:
            return
        now = self.env.now
        patient.outcome, patient.left = outcome, now
        self.in_system.add(now, -1)
        self.active -= 1
        self._check_empty()

    def _check_empty(self) -> None:
        if self.open_arrivals == 0 and self.active == 0 and not self.emptied.triggered:
            self.emptied.succeed()

    def _fail(self, reason: str) -> None:
        if self._in_window():
            self.counters.failures[reason] = self.counters.failures.get(reason, 0) + 1

    def _journey(self, patient: Patient) -> Process:
        env, lane, failures = self.env, self.lanes[patient.centre], self.scenario.failures
        if self._hazard_per_day > 0:
            loss = -math.log(1.0 - self.draws.uniform()) / self._hazard_per_day
            if loss < 10 * DAYS_PER_YEAR:
                env.timeout(loss).callbacks.append(lambda _: self._leave(patient, "lost"))
        wait = lane.apheresis()
        if wait > 0:
            yield env.timeout(wait)
        while not patient.outcome:
            patient.attempts += 1
            if patient.apheresis is None:
                patient.apheresis = env.now
            outcome = yield from self._attempt(patient, lane)
            if outcome not in ("dose", "lost"):
                self._fail(outcome)
            if outcome in ("dose", "lost") or patient.outcome:
                self._leave(patient, outcome)  # a patient already lost stays lost
                break
            again = self.draws.uniform() < failures.remanufacture
            if not again or patient.attempts >= failures.max_attempts:
                self._leave(patient, "without-dose")
                break
            self._fail("remanufactured")
            wait = self._recollection()
            if wait > 0:
                yield env.timeout(wait)

    def _attempt(self, patient: Patient, lane: _Lane) -> Generator[simpy.Event, Any, str]:
        env, plant, u, failures = self.env, lane.plant, self.draws.uniform, self.scenario.failures
        counters = self.counters
        if self._in_window():
            counters.fresh_trips += 1
        wait = lane.transport()
        if wait > 0:
            yield env.timeout(wait)
        if u() < failures.apheresis_rejected:
            return "apheresis_rejected"
        asked = env.now
        slot = plant.devices.resource.request(
            priority=REMANUFACTURE if patient.attempts > 1 else FIRST_ATTEMPT
        )
        yield slot
        plant.devices.got(asked)
        if patient.outcome:  # lost while waiting for a slot: the batch is never started
            plant.devices.release(slot)
            return "lost"
        if self._in_window():
            counters.batches += 1
        for duration, hands_on in lane.steps:
            days = duration()
            if plant.operators is not None and hands_on > 0 and days > 0:
                yield from self._hands_on(plant.operators, plant.operators_per_batch,
                                          min(hands_on, days))  # fmt: skip
                days -= min(hands_on, days)
            if days > 0:
                yield env.timeout(days)
        changeover = plant.changeover()
        if changeover > 0:
            env.timeout(changeover).callbacks.append(lambda _: plant.devices.release(slot))
        else:
            plant.devices.release(slot)
        if u() < failures.manufacturing:
            return "manufacturing"
        started = env.now
        if self._tests:
            yield env.all_of([env.process(self._test(plant, t, d)) for t, d in self._tests])
        if self._sterility_days > 0:
            if self._in_window():
                counters.tests["sterility"] = counters.tests.get("sterility", 0) + 1
            left = started + self._sterility_days - env.now
            if left > 0:
                yield env.timeout(left)
        if u() < failures.out_of_specification:
            return "out_of_specification"
        review = self._review()
        if plant.reviewer is not None and review > 0:
            yield from self._hands_on(plant.reviewer, 1, review)
        elif review > 0:
            yield env.timeout(review)
        if patient.outcome:
            return "lost"
        if self._in_window():
            counters.cryo_trips += 1
        wait = lane.shipping() + lane.infusion()
        if wait > 0:
            yield env.timeout(wait)
        if patient.outcome:
            return "lost"
        if self._in_window():
            counters.doses += 1
        return "dose"

    def _hands_on(self, pool: Pool, people: int, days: float) -> Process:
        """Hold ``people`` of ``pool`` for ``days``; the requests are made together, so
        first come is first served for the whole crew."""
        env, asked = self.env, self.env.now
        requests = [pool.resource.request(priority=FIRST_ATTEMPT) for _ in range(people)]
        yield requests[0] if people == 1 else env.all_of(requests)
        pool.got(asked, people)
        yield env.timeout(days)
        for request in requests:
            pool.release(request)

    def _test(self, plant: _Plant, test: QcTest, duration: Sampler) -> Process:
        """One release test: an analyst sets it up on an instrument of its method (the
        analyst first: an instrument is not held through a night waiting for the lab to
        open), leaves it after the analyst hours, and the run goes on unattended."""
        env = self.env
        if self._in_window():
            self.counters.tests[test.name] = self.counters.tests.get(test.name, 0) + 1
        hours = duration()
        hands_on = min(test.analyst_hours * HOURS, hours)
        instrument = plant.instruments[test.method]
        analysts = plant.analysts if hands_on > 0 else None
        if analysts is not None:
            asked = env.now
            analyst = analysts.resource.request(priority=FIRST_ATTEMPT)
            yield analyst
            analysts.got(asked)
        asked = env.now
        request = instrument.resource.request(priority=FIRST_ATTEMPT)
        yield request
        instrument.got(asked)
        if hands_on > 0:
            yield env.timeout(hands_on)
        if analysts is not None:
            analysts.release(analyst)
        if hours - hands_on > 0:
            yield env.timeout(hours - hands_on)
        instrument.release(request)
