"""`v2v demo build` and `v2v serve`: the synthetic demo network, and the web UI with the API."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Annotated

import typer

from vein2vein.cli._context import _app, _errors, _ready_app
from vein2vein.cli._render import console, print_table, progress_bar
from vein2vein.cli._render import table as _table
from vein2vein.domain import errors
from vein2vein.domain.identity import DEMONSTRATION_FINS
from vein2vein.services import queries
from vein2vein.services.app import App

__all__ = ["demo_app", "serve"]

# What `v2v demo serve` runs beside the web UI when an MQTT broker answers (issue 10).
_LIVE = (
    ("ingest", ["telemetry", "ingest"]),
    ("monitor", ["telemetry", "monitor"]),
    ("simulator", ["telemetry", "simulate"]),
)

demo_app = typer.Typer(help="The synthetic demo network.", no_args_is_help=True)


@demo_app.command("build")
def demo_build(
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed builds the same network.")
    ] = 7,
    patients: Annotated[int, typer.Option(help="How many synthetic patients.")] = 300,
    reset: Annotated[bool, typer.Option(help="Delete the embedded SQLite database first.")] = False,
) -> None:
    """Build the synthetic demo network (no real patient data, ever)."""
    from vein2vein.services.demo import build_demo

    with _errors():
        application = _app()
        if reset:
            _reset_sqlite(application)
        application.upgrade()
        with progress_bar() as bar:
            task = bar.add_task("building the demo network", total=None)
            summary = build_demo(
                application,
                seed=seed,
                patients=patients,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    console.print(
        f"demo network built in {application.safe_url}: {summary.sites} sites, "
        f"{summary.patients} patients, {summary.batches} batches, "
        f"{summary.audit_records} audit records"
    )
    states = _table("state", "batches", ids=("state",))
    for state_name, n in summary.by_state.items():
        states.add_row(state_name, str(n))
    print_table(states)
    cases = _table("notable case", "lot", ids=("notable case", "lot"))
    for case, case_lot in summary.notable.items():
        cases.add_row(case, case_lot)
    print_table(cases)
    users = _table("user id", "roles", "sites", ids=("user id", "roles", "sites"))
    for u in summary.users:
        users.add_row(u.user_id, ", ".join(u.roles), u.sites)
    print_table(users)
    console.print(
        f"demo users above, all with the password [bold]{summary.password}[/] (synthetic; "
        "demonstration only). Sign in: `v2v login --user qa.cp1`"
    )


def _reset_sqlite(application: App) -> None:
    """Delete the embedded SQLite file, but only if it holds nothing but a demo network."""
    url = application.url
    if not url.startswith("sqlite:///"):
        raise errors.InvalidInput(
            "--reset deletes the embedded SQLite file only; use an empty PostgreSQL database "
            "for the demo instead"
        )
    path = Path(url.removeprefix("sqlite:///"))
    if path.exists():
        try:
            application.check_ready()
            sites = queries.list_sites(application)
        except errors.DatabaseNotReady:
            sites = []  # never migrated: nothing in it to lose
        real = [s.code for s in sites if s.fin is None or s.fin not in DEMONSTRATION_FINS]
        if real:
            raise errors.RuleViolation(
                f"{path} holds sites that are not demonstration sites ({', '.join(real[:5])}); "
                "refusing to delete it. Point V2V_DATABASE_URL at another file for the demo"
            )
    application.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default 8000).")] = None,
) -> None:
    """Serve the web UI and the API."""

    import uvicorn

    with _errors():
        application = _ready_app()
        bind_host = host or application.settings.host
        bind_port = port or application.settings.port
        try:  # say what is wrong in one line rather than let the server print a traceback
            with socket.create_server((bind_host, bind_port)):
                pass
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            hint = (
                "; is another server running there? Choose another with --port"
                if exc.errno == errno.EADDRINUSE
                else ""
            )
            raise errors.InvalidInput(
                f"cannot listen on {bind_host}:{bind_port}: {why}{hint}"
            ) from None
    console.print(f"vein2vein on http://{bind_host}:{bind_port}  (database {application.safe_url})")
    uvicorn.run("vein2vein.asgi:create_app", factory=True, host=bind_host, port=bind_port)


@demo_app.command("serve")
def demo_serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default 8000).")] = None,
    broker: Annotated[str, typer.Option(help="The MQTT broker, host:port.")] = "127.0.0.1:1883",
) -> None:
    """Serve the web UI with the demo's live telemetry beside it: the device simulator,
    the ingest and the alarm monitor (when the MQTT broker answers; otherwise the UI
    alone, and why)."""
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile

    mqtt_host, _, mqtt_port = broker.rpartition(":")
    children: list[subprocess.Popen[bytes]] = []
    try:
        socket.create_connection((mqtt_host, int(mqtt_port)), timeout=2).close()
    except (OSError, ValueError) as exc:
        console.print(f"[yellow]no MQTT broker at {broker} ({exc}): live telemetry is off[/] "
                      "(start Mosquitto, then `v2v demo serve` again)")  # fmt: skip
    else:
        beside = Path(sys.executable).with_name("v2v")  # this environment's own command
        v2v = str(beside) if beside.exists() else shutil.which("v2v") or "v2v"
        for name, args in _LIVE:
            log = Path(tempfile.gettempdir()) / f"v2v-demo-{name}.log"
            command = [v2v, *args, "--host", mqtt_host, "--port", mqtt_port]
            children.append(subprocess.Popen(command, stdout=log.open("wb"),
                                             stderr=subprocess.STDOUT))  # fmt: skip
            console.print(f"live telemetry: {name} running (log {log})")

    def stop_children() -> None:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()

    def on_signal(signum: int, frame: object) -> None:
        # uvicorn shuts down on SIGTERM/SIGINT, then raises the signal again: the children
        # stop with it rather than run on without their parent
        stop_children()
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        serve(host, port)
    finally:
        stop_children()
