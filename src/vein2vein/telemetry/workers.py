"""Several ingest processes sharing one subscription (shared subscriptions), for networks
that publish faster than one process can store (decisions 19 and 21).

paho spends about 25 µs of one core on each QoS 1 message it receives and acknowledges
(more on MQTT 5), and checking and storing a reading about 10 µs more, so one process keeps
up with about 15,000-25,000 readings a second however fast the database is.
``v2v telemetry ingest --workers N`` runs N processes, each an :class:`~.ingest.Ingest`
with a persistent session of its own (``<client id>-<k>``) subscribed to
``$share/<client id>/<topic>``: the broker hands each message to one of them.

A worker's session is kept by the broker while the worker is away, and the broker goes on
giving it its share: run the same number of workers again (or wait for the sessions to
expire, a week) when lowering ``--workers``, or that share waits.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from vein2vein.config import Settings
from vein2vein.domain.errors import V2VError
from vein2vein.telemetry.ingest import Ingest, Totals, mqtt_protocol

__all__ = ["IngestOptions", "run_workers", "shared_topic"]


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """Where the broker is, what to subscribe to, how many readings per batch, and the
    MQTT version spoken (:data:`~.ingest.MQTT_VERSIONS`)."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "v2v-ingest"
    topic: str = "v2v/#"
    batch_size: int = 2000
    mqtt_version: str = "5"


def shared_topic(options: IngestOptions) -> str:
    """The shared subscription the workers of ``options`` split between them."""
    return f"$share/{options.client_id}/{options.topic}"


def _worker(k: int, settings: Settings, options: IngestOptions, reports: Any, stop: Any) -> None:
    from vein2vein.bootstrap import bootstrap

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent says when to stop
    done = threading.Event()
    try:
        ingest = Ingest(bootstrap(settings), host=options.host, port=options.port,
                        client_id=f"{options.client_id}-{k}", topic=shared_topic(options),
                        batch_size=options.batch_size,
                        mqtt_version=options.mqtt_version)  # fmt: skip
        ingest.start()
    except V2VError as error:
        reports.put((k, None, error))
        return
    reports.put((k, asdict(ingest.totals), None))

    def watch() -> None:
        stop.wait()
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        totals = ingest.run(done, on_flush=lambda t: reports.put((k, asdict(t), None)))
    finally:
        ingest.stop()
    reports.put((k, asdict(totals), None))


def run_workers(
    settings: Settings,
    options: IngestOptions,
    workers: int,
    stop: threading.Event,
    on_report: Callable[[Totals], None] | None = None,
) -> Totals:
    """Run ``workers`` ingest processes until ``stop`` is set (or Ctrl-C); each stores
    what is left before it ends. Returns the totals of all of them.

    Raises
    ------
    InvalidInput
        For an MQTT version not spoken (before any worker starts).
    V2VError
        The first worker's error when a worker cannot start (e.g. the broker is away);
        the others are stopped.
    """
    mqtt_protocol(options.mqtt_version)  # a version not spoken: said before any process starts
    context = multiprocessing.get_context("spawn")  # no threads or sockets carried over
    reports: Any = context.Queue()
    quit_ = context.Event()
    processes = [
        context.Process(
            target=_worker,
            args=(k, settings, options, reports, quit_),
            name=f"v2v-ingest-{k}",
            daemon=True,
        )
        for k in range(workers)
    ]
    for process in processes:
        process.start()
    latest: dict[int, dict[str, Any]] = {}
    failure: V2VError | None = None
    try:
        while any(p.is_alive() for p in processes):
            if stop.is_set() or failure is not None:
                quit_.set()
            try:
                k, totals, error = reports.get(timeout=0.2)
            except queue.Empty:
                continue
            except KeyboardInterrupt:  # Ctrl-C: the workers store what they hold, then end
                stop.set()
                continue
            if error is not None:
                failure = failure or error
                continue
            latest[k] = totals
            if on_report is not None and len(latest) == workers:
                on_report(_sum(latest.values()))
    finally:
        quit_.set()
        for process in processes:
            process.join(30)
        while True:  # the final totals each worker sent before it ended
            try:
                k, totals, error = reports.get_nowait()
            except queue.Empty:
                break
            if totals is not None:
                latest[k] = totals
    if failure is not None:
        raise failure
    return _sum(latest.values())


def _sum(each: Any) -> Totals:
    total = Totals()
    for totals in each:
        for f in fields(Totals):
            if f.name == "last_error":
                total.last_error = totals["last_error"] or total.last_error
            else:
                setattr(total, f.name, getattr(total, f.name) + totals[f.name])
    return total
