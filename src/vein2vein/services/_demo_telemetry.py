"""The demo's telemetry (issue 10): the monitored steps of its batches run on their
equipment, with sensor histories, so the monitoring pages have traces to show.

* As the history plays, each time a batch's step is recorded and its next step is watched
  by the MBR (the culture, the expansion), that step is **started** on a free unit of its
  class at the plant (:func:`~vein2vein.services.monitoring.start_step`), by the operator
  who recorded, with the label scanned; the step's record, a later step or the end of
  processing ends it, as in production.
* At the end of the build, the **readings** of those steps (every ``HISTORY_EVERY``, for
  the steps of the last ``HISTORY_DAYS`` days and the ones still running) are uploaded
  through :func:`~vein2vein.services.telemetry.ingest` as the units would have published
  them (services/device_signals.py): set points, noise, drift between feeds, one site's
  temperature probe reading 0.15 °C high, and now and then a short excursion. They are
  history: no alarm is raised for them (the live monitor watches from now on).

Synthetic data only.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from vein2vein.domain.batch import BatchState
from vein2vein.domain.errors import V2VError
from vein2vein.domain.process import ProcessDefinition
from vein2vein.formats.telemetry import topic
from vein2vein.services import monitoring, queries, telemetry
from vein2vein.services.app import App
from vein2vein.services.auth import Identity
from vein2vein.services.device_signals import PROFILES, reading_value
from vein2vein.services.records import load_record
from vein2vein.store.monitoring import UseRow

__all__ = ["HISTORY_DAYS", "HISTORY_EVERY", "DemoTelemetry"]

HISTORY_DAYS = 60
HISTORY_EVERY = timedelta(minutes=15)
OFFSETS = {("POC2", "temperature"): 0.15}  # a probe reading high: what comparability shows
EXCURSION_EVERY = 7  # one step in this many runs hot for three readings (45 minutes) at some point
_CHUNK = 5000


@dataclass
class DemoTelemetry:
    """Starts the demo's watched steps on free units; what runs and what ran is read back
    from ``equipment_use``, where the services record it."""

    app: App

    def after_record(
        self,
        lot: str,
        process: ProcessDefinition,
        step_id: str,
        pool: dict[str, list[str]],
        *,
        by: Identity,
        label: str,
    ) -> None:
        """Step ``step_id`` of ``lot`` was just recorded (which ended the steps before it):
        if the next step is watched, start it on a free unit (``pool``: ids by class)."""
        ids = [s.id for s in process.steps]
        following = ids.index(step_id) + 1
        if following >= len(ids):
            return
        step = process.steps[following]
        if step.monitoring is None or step.equipment_class is None:
            return
        busy = monitoring.running_steps(self.app)
        if any(r.lot == lot for r in busy.values()):
            return  # a repeatable step recorded again: it runs on
        free = [e for e in pool.get(step.equipment_class, []) if e not in busy]
        if not free:
            return
        # the unit may be out of calibration that day: no trace for this batch
        with contextlib.suppress(V2VError):
            monitoring.start_step(self.app.uow(), lot, step.id, free[0], by=by, scan=label)

    def start_in_process(self, identity: Callable[[str], Identity]) -> None:
        """Start the step each batch still IN_PROCESS is in when the history did not (no
        free unit then), by the plant's ``operator.<site>``, the batch's label scanned."""
        running = monitoring.running_steps(self.app)
        busy, lots = set(running), {r.lot for r in running.values()}
        for batch in queries.list_batches(self.app, state=BatchState.IN_PROCESS.value, limit=999):
            if batch.lot in lots:
                continue
            with self.app.uow() as uow:
                record = load_record(uow, batch.lot)
                here = [e for e, _ in uow.equipment.list(site=batch.manufacturing_site)]
                din = uow.batches.get(batch.lot).din
            label = din.data_content(din.type3_flags) if din is not None else batch.coi
            pool = sorted(e.id for e in here)
            classes = {e.id: e.equipment_class for e in here}
            last = record.entries[-1] if record.entries else None
            steps = record.process.steps
            if last is not None and record.process.step(last.step_id).repeatable:
                step, used = record.process.step(last.step_id), last.equipment
            else:
                done = {e.step_id for e in record.entries}
                later = [s for s in steps if s.id not in done]
                if not later:
                    continue
                step, used = later[0], None
            if step.equipment_class is None or step.monitoring is None:
                continue
            free = [e for e in pool if classes[e] == step.equipment_class and e not in busy]
            equipment = used if used and used not in busy else (free[0] if free else None)
            if equipment is None:
                continue
            try:
                monitoring.start_step(
                    self.app.uow(), batch.lot, step.id, equipment,
                    by=identity(f"operator.{batch.manufacturing_site.lower()}"),
                    scan=label,
                )  # fmt: skip
            except V2VError:
                continue  # e.g. the equipment's calibration ran out: the demo goes on without it
            busy.add(equipment)

    def upload_history(self, now: datetime) -> int:
        """Upload the readings of the watched steps that ran in the last ``HISTORY_DAYS``
        days or still run (up to ``now``); how many readings."""
        classes = {unit: kind for _, unit, kind in monitoring.equipment_units(self.app)}
        stored = 0
        messages: list[tuple[str, bytes]] = []
        for use in monitoring.uses_since(self.app, now - timedelta(days=HISTORY_DAYS)):
            if classes[use.equipment] not in PROFILES:
                continue
            messages += _trace(use, classes[use.equipment], use.ended_at or now)
            if len(messages) >= _CHUNK:
                stored += telemetry.ingest(self.app, messages).stored
                messages = []
        if messages:
            stored += telemetry.ingest(self.app, messages).stored
        return stored


def _trace(step: UseRow, equipment_class: str, end: datetime) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(zlib.crc32(f"{step.lot}/{step.step_id}".encode()))
    start = step.started_at
    count = int((end - start) / HISTORY_EVERY)
    hot_from = None
    if count > 8 and rng.integers(EXCURSION_EVERY) == 0:
        hot_from = int(rng.integers(2, count - 4))
    out = []
    signals = PROFILES[equipment_class]
    for i in range(count):
        at = start + HISTORY_EVERY * (i + 1)
        stamp = at.timestamp()
        hot = hot_from is not None and hot_from <= i < hot_from + 3
        for sensor, signal in signals.items():
            value = reading_value(signal, sensor, stamp, hot=hot,
                                  noise=float(rng.standard_normal()))  # fmt: skip
            value = round(value + OFFSETS.get((step.site, sensor), 0.0), 3)
            payload = {"time": at.isoformat(), "value": value, "unit": signal.unit,
                       "seq": int(stamp * 1000)}  # fmt: skip
            out.append((topic(step.site, step.equipment, sensor), json.dumps(payload).encode()))
    return out
