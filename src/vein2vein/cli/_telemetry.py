"""`v2v telemetry …`: bring the instruments' MQTT readings into the records (issue 10;
telemetry/ingest.py does the work, services/telemetry.py stores)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from vein2vein.cli._context import JsonOpt, _errors, _ready_app, _who
from vein2vein.cli._records import LotArg, StepArg, _signing, step_app
from vein2vein.cli._render import console, print_json, print_table, table

__all__ = ["telemetry_app"]

telemetry_app = typer.Typer(
    help="Instruments' readings over MQTT: ingest them, watch them, their alarms.",
    no_args_is_help=True,
)

HostOpt = Annotated[str, typer.Option(help="The MQTT broker's host.")]
PortOpt = Annotated[int, typer.Option(help="The MQTT broker's port.")]
TopicOpt = Annotated[str, typer.Option(help="The topics to subscribe to.")]
SecondsOpt = Annotated[
    float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
]


def _stopper(seconds: float | None) -> threading.Event:
    """Set on SIGTERM, or after ``seconds``."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if seconds is not None:
        timer = threading.Timer(seconds, stop.set)
        timer.daemon = True
        timer.start()
    return stop


@telemetry_app.command("ingest")
def ingest(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 1883,
    client_id: Annotated[
        str, typer.Option(help="The session's client id: the broker keeps what arrives for it.")
    ] = "v2v-ingest",
    topic: TopicOpt = "v2v/#",
    batch: Annotated[
        int, typer.Option(min=1, help="Readings stored per transaction, at most.")
    ] = 2000,
    seconds: SecondsOpt = None,
    workers: Annotated[
        int,
        typer.Option(min=1, max=32, help="Ingest processes sharing the subscription (a shared "
                     "subscription), for more than ~15,000 readings a second."),
    ] = 1,
    mqtt_version: Annotated[
        str,
        typer.Option("--mqtt-version", help="5, or 3.1.1: a sixth less CPU a message, but "
                     "Mosquitto then needs max_inflight_messages 0 (docs/telemetry.md)."),
    ] = "5",
) -> None:  # fmt: skip
    """Subscribe to the instruments' topics (QoS 1, persistent session) and store what
    arrives in batches, each reading once; messages that are not readings are kept in the
    quarantine with the reason. Runs until Ctrl-C (or --seconds), then stores what is left."""
    from vein2vein.telemetry.ingest import Ingest, Totals

    stop = _stopper(seconds)

    def report(t: Totals) -> None:
        line = (f"received {t.received:,}, stored {t.stored:,}, duplicates {t.duplicates:,}, "
                f"quarantined {t.quarantined:,}")  # fmt: skip
        console.print(line, highlight=False)

    on_flush = report if console.is_terminal else None
    if workers > 1:
        from vein2vein.bootstrap import read_settings
        from vein2vein.telemetry.workers import IngestOptions, run_workers, shared_topic

        options = IngestOptions(host, port, client_id, topic, batch, mqtt_version)
        with _errors():
            _ready_app()  # a database that is not there is named before anything starts
            console.print(f"ingesting {shared_topic(options)} from {host}:{port} with "
                          f"{workers} workers (Ctrl-C stops)")  # fmt: skip
            totals = run_workers(read_settings(), options, workers, stop, on_flush)
    else:
        with _errors():
            ingest_ = Ingest(_ready_app(), host=host, port=port, client_id=client_id,
                             topic=topic, batch_size=batch, mqtt_version=mqtt_version)  # fmt: skip
            ingest_.start()
        console.print(f"ingesting {topic} from {host}:{port} as {client_id} (Ctrl-C stops)")
        try:
            totals = ingest_.run(stop, on_flush=on_flush)
        except KeyboardInterrupt:
            stop.set()
            totals = ingest_.run(stop)
        finally:
            ingest_.stop()
    report(totals)
    if totals.last_error:
        console.print(f"[red]the last batch was not stored[/]: {totals.last_error} (it is "
                      "delivered again on the next start)")  # fmt: skip


@telemetry_app.command("monitor")
def monitor(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 1883,
    client_id: Annotated[
        str, typer.Option(help="The monitor's session (its own, not the ingest's).")
    ] = "v2v-monitor",
    topic: TopicOpt = "v2v/#",
    seconds: SecondsOpt = None,
) -> None:
    """Check every reading against the range of the batch step running on its equipment
    (the MBR's monitoring), raise and clear alarms, and raise "no data" for silent
    sensors. Runs until Ctrl-C (or --seconds)."""
    from vein2vein.telemetry.monitor import Monitor, MonitorTotals

    stop = _stopper(seconds)
    with _errors():
        watcher = Monitor(_ready_app(), host=host, port=port, client_id=client_id, topic=topic)
        watcher.start()
    console.print(f"monitoring {topic} from {host}:{port} as {client_id} (Ctrl-C stops)")

    def report(t: MonitorTotals) -> None:
        console.print(f"checked {t.checked:,} ({t.unwatched:,} not watched, {t.mismatched:,} "
                      f"under another site or unit, {t.before_step:,} before their step), "
                      f"alarms raised {t.raised}, cleared {t.cleared}, no data {t.silent}",
                      highlight=False)  # fmt: skip
        if t.last_error:
            console.print(f"[red]retrying[/] ({t.failures} failed checks): {t.last_error}",
                          highlight=False)  # fmt: skip

    try:
        totals = watcher.run(stop, on_tick=report if console.is_terminal else None)
    except KeyboardInterrupt:
        totals = watcher.totals
    finally:
        watcher.stop()
    report(totals)


@telemetry_app.command("simulate")
def simulate(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 1883,
    site: Annotated[str | None, typer.Option(help="Only the units of this site.")] = None,
    hz: Annotated[
        float, typer.Option(min=0.01, max=50, help="Readings a second, per sensor.")
    ] = 1.0,
    events: Annotated[
        bool, typer.Option(help="An excursion and a drop-out every --cycle seconds.")
    ] = True,
    cycle: Annotated[
        float, typer.Option(min=900, help="Seconds between the excursion/drop-out cycles.")
    ] = 1200.0,
    seconds: SecondsOpt = None,
) -> None:
    """Publish synthetic sensor traces for the registered incubators and automated cell
    processors (demo): set points with noise, pH and oxygen drifting between feeds, and
    every --cycle seconds the first unit running hot for 7 minutes and the second silent
    for 4 (units running a batch step first)."""
    from vein2vein.services.monitoring import equipment_units, running_steps
    from vein2vein.telemetry.simulator import Simulator, Unit

    stop = _stopper(seconds)
    with _errors():
        app = _ready_app()
        running = set(running_steps(app))  # the excursion and the drop-out hit running steps
        units = sorted((Unit(*u) for u in equipment_units(app, site)),
                       key=lambda u: (u.equipment not in running, u.equipment))  # fmt: skip
        simulator = Simulator(units, host=host, port=port, hz=hz, events=events, cycle_s=cycle)
        if not simulator.units:
            from vein2vein.domain.errors import NotFound

            raise NotFound("no incubator or automated cell processor is registered"
                           + (f" at {site}" if site else ""))  # fmt: skip
        simulator.start()
    names = ", ".join(u.equipment for u in simulator.units)
    console.print(f"simulating {len(simulator.units)} units ({names}) to {host}:{port} at "
                  f"{hz:g} Hz (Ctrl-C stops)")  # fmt: skip
    if events and len(simulator.units) > 1:
        console.print(f"every {cycle:g} s: {simulator.units[0].equipment} runs hot (60–480 s), "
                      f"{simulator.units[1].equipment} goes silent (600–840 s)")  # fmt: skip
    try:
        published = simulator.run(stop)
    except KeyboardInterrupt:
        published = simulator.published
    finally:
        simulator.stop()
    console.print(f"published {published:,} readings")


@telemetry_app.command("alarms")
def alarms(
    all_: Annotated[
        bool, typer.Option("--all", help="Acknowledged ones too (default: to acknowledge).")
    ] = False,
    lot: Annotated[str | None, typer.Option(help="Only the alarms of this batch.")] = None,
    json_: JsonOpt = False,
) -> None:
    """The sensor alarms at your sites, newest first: those still to acknowledge (or --all)."""
    from vein2vein.services import monitoring

    with _errors():
        app, who = _ready_app(), _who()
        sites = monitoring.visible_sites(app, who.actor)
        rows = monitoring.alarms(app, unacknowledged=not all_, lot=lot, sites=sites)
    if json_:
        print_json(rows)
        return
    grid = table("id", "raised (UTC)", "equipment", "sensor", "alarm", "allowed", "batch",
                 "cleared", "acknowledged", ids=("id", "batch"))  # fmt: skip
    for a in rows:
        what = "no data" if a.kind == "no-data" else f"{a.kind} {a.value:g}"
        grid.add_row(str(a.id), f"{a.raised_at:%Y-%m-%d %H:%M:%S}", a.equipment, a.sensor,
                     what + (f" → {a.deviation}" if a.deviation else ""), a.limits,
                     f"{a.lot or '—'} {a.step_id or ''}".strip(),
                     f"{a.cleared_at:%H:%M:%S}" if a.cleared_at else "[red]not yet[/]",
                     a.acknowledged_by or "—")  # fmt: skip
    print_table(grid)
    console.print(f"{len(rows)} alarm(s)" + ("" if all_ else " to acknowledge"))


@telemetry_app.command("ack")
def acknowledge(
    alarm_id: Annotated[int, typer.Argument(help="The alarm's id (v2v telemetry alarms).")],
    comment: Annotated[str, typer.Option(help="What you saw and what you did.")],
) -> None:
    """Acknowledge an alarm, with a comment and your electronic signature (reviewed)."""
    from vein2vein.services import monitoring

    with _errors():
        who = _who()
        done = monitoring.acknowledge_alarm(_ready_app().uow(), alarm_id, by=who,
                                            comment=comment,
                                            signing=_signing(who, "alarm.acknowledge"))  # fmt: skip
    console.print(f"alarm {done.id} ({done.sensor} on {done.equipment}) acknowledged by "
                  f"{done.acknowledged_by}, signed")  # fmt: skip


@step_app.command("start")
def step_start(
    lot: LotArg,
    step: StepArg,
    equipment: Annotated[str, typer.Option(help="The equipment the step runs on (its id).")],
    scan: Annotated[str, typer.Option(help="The batch's label as scanned (DIN or COI).")],
) -> None:
    """Start a step on its equipment (operators): until the step is recorded, the
    equipment's sensor readings belong to it and are checked against its MBR ranges."""
    from vein2vein.services import monitoring

    with _errors():
        running = monitoring.start_step(_ready_app().uow(), lot, step, equipment, by=_who(),
                                        scan=scan)  # fmt: skip
    watched = running.monitoring
    sensors = ", ".join(s.sensor for s in watched.sensors) if watched else "no sensors"
    console.print(f"batch {lot}: step {step} started on {running.equipment} (watching "
                  f"{sensors})")  # fmt: skip
