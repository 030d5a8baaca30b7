"""`v2v telemetry …`: bring the instruments' MQTT readings into the records (issue 10;
telemetry/ingest.py does the work, services/telemetry.py stores)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from vein2vein.cli._context import _errors, _ready_app
from vein2vein.cli._render import console

__all__ = ["telemetry_app"]

telemetry_app = typer.Typer(
    help="Instruments' readings over MQTT: ingest them into the records.", no_args_is_help=True
)


@telemetry_app.command("ingest")
def ingest(
    host: Annotated[str, typer.Option(help="The MQTT broker's host.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The MQTT broker's port.")] = 1883,
    client_id: Annotated[
        str, typer.Option(help="The session's client id: the broker keeps what arrives for it.")
    ] = "v2v-ingest",
    topic: Annotated[str, typer.Option(help="The topics to subscribe to.")] = "v2v/#",
    batch: Annotated[int, typer.Option(help="Readings stored per transaction, at most.")] = 2000,
    seconds: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(min=1, max=32, help="Ingest processes sharing the subscription (MQTT 5 "
                     "shared subscription), for more than ~15,000 readings a second."),
    ] = 1,
) -> None:  # fmt: skip
    """Subscribe to the instruments' topics (QoS 1, persistent session) and store what
    arrives in batches, each reading once; messages that are not readings are kept in the
    quarantine with the reason. Runs until Ctrl-C (or --seconds), then stores what is left."""
    from vein2vein.telemetry.ingest import Ingest, Totals

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if seconds is not None:
        timer = threading.Timer(seconds, stop.set)
        timer.daemon = True
        timer.start()

    def report(t: Totals) -> None:
        line = (f"received {t.received:,}, stored {t.stored:,}, duplicates {t.duplicates:,}, "
                f"quarantined {t.quarantined:,}")  # fmt: skip
        console.print(line, highlight=False)

    on_flush = report if console.is_terminal else None
    if workers > 1:
        from vein2vein.bootstrap import read_settings
        from vein2vein.telemetry.workers import IngestOptions, run_workers, shared_topic

        options = IngestOptions(host, port, client_id, topic, batch)
        with _errors():
            _ready_app()  # a database that is not there is named before anything starts
            console.print(f"ingesting {shared_topic(options)} from {host}:{port} with "
                          f"{workers} workers (Ctrl-C stops)")  # fmt: skip
            totals = run_workers(read_settings(), options, workers, stop, on_flush)
    else:
        with _errors():
            ingest_ = Ingest(_ready_app(), host=host, port=port, client_id=client_id,
                             topic=topic, batch_size=batch)  # fmt: skip
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
