"""The demo's live part (issue 10): at the end of the build, each batch still IN_PROCESS
has the step it is in started on its equipment, so the sensor simulator's readings
(`v2v telemetry simulate`) belong to a batch step and are checked against its MBR ranges.

The step a batch is in: its last recorded step when that one repeats (a culture counted
every day), else the next step of its MBR; on the equipment the last record used when
that is the same step, else the first free one of the step's class at the plant.
"""

from __future__ import annotations

from collections.abc import Callable

from vein2vein.domain.batch import BatchState
from vein2vein.domain.errors import RuleViolation
from vein2vein.services import monitoring, queries
from vein2vein.services.app import App
from vein2vein.services.auth import Identity
from vein2vein.services.records import load_record

__all__ = ["start_running_steps"]


def start_running_steps(
    app: App, identity: Callable[[str], Identity]
) -> list[monitoring.RunningStep]:
    """Start the step each IN_PROCESS batch is in (by the plant's ``operator.<site>``, the
    batch's label scanned); returns what was started."""
    started = []
    busy = set(monitoring.running_steps(app))
    for batch in queries.list_batches(app, state=BatchState.IN_PROCESS.value, limit=1000):
        with app.uow() as uow:
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
            running = monitoring.start_step(
                app.uow(), batch.lot, step.id, equipment,
                by=identity(f"operator.{batch.manufacturing_site.lower()}"),
                scan=label,
            )  # fmt: skip
        except RuleViolation:
            continue  # e.g. the equipment's calibration ran out: the demo goes on without it
        busy.add(equipment)
        started.append(running)
    return started
