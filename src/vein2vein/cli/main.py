"""``v2v``: the command line of vein2vein."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from vein2vein.cli import (
    _analytics,
    _audit_review,
    _auth,
    _mbr,
    _people,
    _plan,
    _qc,
    _records,
    _running,
    _telemetry,
)
from vein2vein.cli._context import JsonOpt, _app, _errors, _ready_app, _who
from vein2vein.cli._render import (
    age,
    console,
    err_console,
    exit_code,
    fail,
    print_json,
    print_table,
    progress_bar,
)
from vein2vein.cli._render import table as _table
from vein2vein.domain import errors
from vein2vein.domain.batch import TRANSITIONS, Action, Transition
from vein2vein.domain.identity import Din
from vein2vein.domain.permissions import rule_for
from vein2vein.services import batches as svc
from vein2vein.services import queries
from vein2vein.services.authorise import require

app = typer.Typer(
    help="vein2vein: cell and gene therapy manufacturing, vein to vein.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The database: migrations and status.", no_args_is_help=True)
site_app = typer.Typer(help="Sites of the network.", no_args_is_help=True)
order_app = typer.Typer(help="Therapy orders.", no_args_is_help=True)
batch_app = typer.Typer(
    help="Batches: list, show, and one command per transition.", no_args_is_help=True
)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
din_app = typer.Typer(help="ISBT 128 Donation Identification Numbers.", no_args_is_help=True)
for sub, name in [
    (db_app, "db"),
    (site_app, "site"),
    (order_app, "order"),
    (batch_app, "batch"),
    (audit_app, "audit"),
    (din_app, "din"),
]:
    app.add_typer(sub, name=name)

_audit_review.register(audit_app)
app.add_typer(_mbr.mbr_app, name="mbr")
app.add_typer(_analytics.spc_app, name="spc")
app.add_typer(_analytics.compare_app, name="compare")
app.add_typer(_analytics.spec_app, name="spec")
app.add_typer(_plan.plan_app, name="plan")
app.add_typer(_telemetry.telemetry_app, name="telemetry")
app.add_typer(_running.demo_app, name="demo")
app.command("serve")(_running.serve)
app.command("login")(_people.login)
app.command("logout")(_people.logout)
app.command("whoami")(_people.whoami)
app.add_typer(_people.user_app, name="user")
app.add_typer(_people.password_app, name="password")
_records.register(app)
_qc.register(app)


@app.callback()
def _main_options(
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="Sign in as this user for this one command (the password is asked for).",
        ),
    ] = None,
) -> None:
    """vein2vein: cell and gene therapy manufacturing, vein to vein."""
    if user:
        with _errors():
            _auth.sign_in_once(_ready_app(), user)


def main() -> None:
    """Entry point of the ``v2v`` script.

    A usage error (a missing option, a value of the wrong type, an unknown command) is one
    line with the code ``usage`` and exit 2, like every other error. An unexpected
    exception (a bug) is shown as one line; its traceback goes to a file in the user's log
    directory, named in that line, for the bug report.
    """
    # Typer (0.29) carries its own copy of Click; its usage errors are these classes.
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    try:
        try:
            code = app(standalone_mode=False)
        finally:
            _auth.end_one_off(_app)  # `--user`: sign out after the one command
    except NoArgsIsHelpError as asked:
        asked.ctx.get_help()  # Typer prints the help itself
        raise SystemExit(0) from None
    except UsageError as usage:
        where = usage.ctx.command_path if usage.ctx else "v2v"
        message = " ".join(usage.format_message().split())
        err_console.print(
            f"[bold red]error\\[usage][/]: {escape(where)}: {escape(message)} "
            f"(see `{escape(where)} --help`)",
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(2) from None
    except typer.Abort:
        err_console.print("[bold red]error\\[aborted][/]: stopped; nothing more was done")
        raise SystemExit(130) from None
    except Exception as exc:  # the last line of defence: no traceback on a person's screen
        import traceback

        from platformdirs import user_log_dir

        log = Path(user_log_dir("vein2vein")) / "last-error.txt"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(traceback.format_exc())
        err_console.print(
            f"[bold red]error\\[internal][/]: {type(exc).__name__}: {escape(str(exc))} "
            f"(a bug: the traceback is in {log})",
            highlight=False,
            markup=True,
        )
        raise SystemExit(1) from None
    raise SystemExit(code if isinstance(code, int) else 0)


# -- db ------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest version."""
    with _errors():
        application = _app()
        revision = application.upgrade()
    console.print(f"database {application.safe_url} is at migration {revision}")


@db_app.command("status")
def db_status() -> None:
    """Show which database is used and whether it is migrated."""
    from vein2vein.store.engine import SCHEMA_REVISION, current_revision

    with _errors():
        application = _app()
        current = current_revision(application.engine)
    head = SCHEMA_REVISION
    console.print(f"database: {application.safe_url}")
    console.print(f"migration: {current or 'none'} (latest {head})")
    if current != head:
        fail(errors.DatabaseNotReady("not at the latest migration; run `v2v db upgrade`"))


# -- sites ---------------------------------------------------------------------------
@site_app.command("add")
def site_add(
    code: Annotated[str, typer.Argument(help="Short code, e.g. TC1.")],
    name: Annotated[str, typer.Option(help="Full name of the site.")],
    kind: Annotated[
        str,
        typer.Option(
            help="treatment-centre, collection-centre, manufacturing-facility or point-of-care."
        ),
    ],
    fin: Annotated[
        str | None, typer.Option(help="ISBT 128 FIN assigned to the site by ICCBBA.")
    ] = None,
) -> None:
    """Register a site of the network (administrators)."""
    with _errors():
        site = svc.register_site(
            _ready_app().uow(), code=code, name=name, kind=kind, fin=fin, by=_who().actor
        )
    console.print(f"site {site.code} ({site.kind.value}) registered")


@site_app.command("list")
def site_list(json_: JsonOpt = False) -> None:
    """List the sites of the network."""
    with _errors():
        _who()
        sites = queries.list_sites(_ready_app())
    if json_:
        print_json(sites)
        return
    table = _table("code", "name", "kind", "FIN", ids=("code", "FIN"))
    for s in sites:
        table.add_row(s.code, s.name, s.kind.value, s.fin or "")
    print_table(table)


# -- orders --------------------------------------------------------------------------
@order_app.command("create")
def order_create(
    patient: Annotated[str, typer.Option(help="Patient pseudonym, e.g. PT-4F7K21 (never a name).")],
    year_of_birth: Annotated[int, typer.Option(help="Patient's year of birth.")],
    weight_kg: Annotated[float, typer.Option(help="Patient's weight in kg, for dosing.")],
    product: Annotated[str, typer.Option(help="Product code, e.g. CART-CD19.")],
    centre: Annotated[str, typer.Option(help="Ordering treatment centre (site code).")],
    plant: Annotated[str, typer.Option(help="Manufacturing site (site code).")],
    reference: Annotated[
        str | None, typer.Option(help="Order reference (default: issued).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Order a therapy for a patient: issues the COI and opens the batch (coordinators)."""
    with _errors():
        placed = svc.place_order(
            _ready_app().uow(),
            pseudonym=patient,
            year_of_birth=year_of_birth,
            weight_kg=weight_kg,
            product=product,
            treatment_centre=centre,
            manufacturing_site=plant,
            by=_who().actor,
            reference=reference,
        )
    if json_:
        print_json(placed)
    else:
        console.print(f"order {placed.reference}: batch {placed.lot}, COI {placed.coi}")


# -- batches -------------------------------------------------------------------------
@batch_app.command("list")
def batch_list(
    state: Annotated[str | None, typer.Option(help="Only batches in this state.")] = None,
    site: Annotated[str | None, typer.Option(help="Only batches of this site.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many, newest first.")] = None,
    json_: JsonOpt = False,
) -> None:
    """List batches, newest first."""
    with _errors():
        application = _ready_app()
        _who()
        rows = queries.list_batches(application, state=state, site=site, limit=limit)
        now = application.clock.now()
    if json_:
        print_json(rows)
        return
    table = _table(
        "lot", "state", "since", "patient", "product", "centre", "DIN",
        ids=("lot", "state", "patient", "product", "centre", "DIN"),
    )  # fmt: skip
    for r in rows:
        since = age((now - r.state_since).total_seconds() / 3600)
        table.add_row(
            r.lot,
            r.state,
            since,
            r.patient_pseudonym,
            r.product,
            r.treatment_centre,
            r.din or "",
        )
    print_table(table)
    console.print(f"{len(rows)} batches")


@batch_app.command("show")
def batch_show(
    lot: Annotated[str, typer.Argument(help="Batch lot, e.g. CP1-2026-00001.")],
    json_: JsonOpt = False,
) -> None:
    """Show one batch: identity, state, next actions, custody and audit trail."""
    with _errors():
        _who()
        view = queries.batch_view(_ready_app(), lot)
    if json_:
        print_json(view)
        return
    b, ident = view.batch, view.identity
    console.print(
        f"[bold]{b.lot}[/]  {b.product}  patient {b.patient_pseudonym} "
        f"({b.year_of_birth}, {b.weight_kg:g} kg)"
    )
    if ident.demonstration:
        console.print("[yellow]DEMONSTRATION identifiers — not for clinical use[/]")
    console.print(f"COI  {ident.coi_eye_readable}   ({ident.coi_data_content})")
    if ident.din:
        console.print(
            f"DIN  {ident.din_eye_readable}   K={ident.check_character} "
            f"flags={ident.type3_flags}   ({ident.din_data_content})"
        )
    flag = "  [red]needs attention[/]" if view.needs_attention else ""
    console.print(f"state [bold]{b.state}[/] for {age(view.age_hours)} (version {b.version}){flag}")
    console.print(f"order {b.order_ref}: {b.treatment_centre} → {b.manufacturing_site}")
    if view.actions:
        console.print("next: " + ", ".join(a.action for a in view.actions))
    if view.custody:
        table = _table(
            "when", "hand-off", "from", "to", "where", "°C", "scanned",
            ids=("when", "scanned"), title="custody",
        )  # fmt: skip
        for c in view.custody:
            temp = "" if c.temperature_c is None else f"{c.temperature_c:g}"
            table.add_row(
                c.at.strftime("%Y-%m-%d %H:%M"),
                c.action,
                c.from_party,
                c.to_party,
                c.location,
                temp,
                c.scanned or "",
            )
        print_table(table)
    table = _table(
        "seq", "when (UTC)", "actor", "action", "reason",
        ids=("seq", "when (UTC)", "actor", "action"), title="audit trail",
    )  # fmt: skip
    for e in reversed(view.audit):
        table.add_row(str(e.seq), e.at[:19].replace("T", " "), e.actor, e.action, e.reason or "")
    print_table(table)
    for seq, signed in sorted(view.signatures.items()):
        colour = "green" if signed.matches else "red"
        console.print(f"[{colour}]record {seq} signed: {escape(str(signed))}[/]")
    check = view.audit_check
    if check.ok:
        console.print(f"{check.checked} audit records of this batch [green]verify[/]")
    else:
        console.print(f"[red]{len(check.broken)} of {check.checked} audit records of this batch "
                      "do not verify[/]:")  # fmt: skip
        for seq, what in check.broken:
            console.print(f"  [red]record {seq}: {escape(what)}[/]")


def _transition_command(rule: Transition) -> Callable[..., None]:
    """A command for one row of the transition table, with only the options it needs."""

    def command(**kwargs: Any) -> None:
        handoff = None
        if rule.handoff:
            handoff = svc.HandoffDetails(
                from_party=kwargs.get("from_party"),
                to_party=kwargs.get("to_party"),
                location=kwargs.get("location"),
                temperature_c=kwargs.get("temperature"),
            )
        with _errors():
            who = _who()
            # Ask for a signature only where the state and the permission table allow the
            # action for this person: otherwise the service's refusal (and why) comes first.
            meaning = rule_for(rule.action).signature
            if meaning is not None and not queries.action_allowed(
                _ready_app(), kwargs["lot"], rule.action, who.actor
            ):
                meaning = None
            batch = svc.perform_transition(
                _ready_app().uow(),
                kwargs["lot"],
                rule.action,
                by=who,
                signing=None if meaning is None else _auth.signing(who, meaning.value),
                reason=kwargs.get("reason"),
                scan=kwargs.get("scan"),
                handoff=handoff,
                expected_version=kwargs.get("expected_version"),
                process=kwargs.get("process"),
                exception=kwargs.get("exception"),
            )
        extra = (
            f", DIN {batch.din.eye_readable}" if rule.action is Action.COLLECT and batch.din else ""
        )
        console.print(
            f"batch {batch.lot}: {rule.event} → {batch.state.value} "
            f"(version {batch.version}{extra})"
        )

    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter(
            "lot", keyword, annotation=Annotated[str, typer.Argument(help="Batch lot.")]
        )
    ]
    if rule.scan:
        params.append(
            inspect.Parameter(
                "scan",
                keyword,
                annotation=Annotated[
                    str,
                    typer.Option(help="The scanned DIN or COI (any printed or bar-coded form)."),
                ],
            )
        )
    if rule.reason_required:
        params.append(
            inspect.Parameter(
                "reason",
                keyword,
                annotation=Annotated[str, typer.Option(help="Why (recorded in the audit trail).")],
            )
        )
    if rule.handoff:
        for name, flag, help_ in [
            ("from_party", "--from", "Who hands over (default from the batch)."),
            ("to_party", "--to", "Who takes over, e.g. the courier's name."),
            ("location", "--location", "Where the hand-off happens."),
        ]:
            params.append(
                inspect.Parameter(
                    name,
                    keyword,
                    default=None,
                    annotation=Annotated[str | None, typer.Option(flag, help=help_)],
                )
            )
        params.append(
            inspect.Parameter(
                "temperature",
                keyword,
                default=None,
                annotation=Annotated[
                    float | None, typer.Option(help="Temperature at the hand-off, °C.")
                ],
            )
        )
    if rule.action is Action.START_PROCESSING:
        params.append(
            inspect.Parameter(
                "process",
                keyword,
                default=None,
                annotation=Annotated[
                    str | None, typer.Option(help="The process (MBR), if several are effective.")
                ],
            )
        )
    if rule.action is Action.ACCEPT:
        params.append(
            inspect.Parameter(
                "exception",
                keyword,
                default=None,
                annotation=Annotated[
                    str | None,
                    typer.Option(
                        help="Accept an apheresis outside its acceptance criteria: QA's reason "
                        "for the exception (signed, shown on the batch and its certificate)."
                    ),
                ],
            )
        )
    params.append(
        inspect.Parameter(
            "expected_version",
            keyword,
            default=None,
            annotation=Annotated[
                int | None, typer.Option(help="Refuse if the batch is no longer at this version.")
            ],
        )
    )
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    signs = rule_for(rule.action).signature
    command.__doc__ = (
        f"{rule.summary}. From: {', '.join(sorted(s.value for s in rule.sources))}. "
        f"Who: {', '.join(sorted(r.value for r in rule_for(rule.action).roles))}."
        + (f" Signed ({signs.value}): asks for your password." if signs else "")
    )
    return command


for _rule in TRANSITIONS.values():
    batch_app.command(_rule.action.value)(_transition_command(_rule))


@app.command("scan")
def scan(
    lot: Annotated[str, typer.Argument(help="Batch lot.")],
    code: Annotated[str, typer.Argument(help="What the scanner read (DIN or COI, any form).")],
    location: Annotated[str | None, typer.Option(help="Where the scan happens.")] = None,
) -> None:
    """Check a scanned label against a batch; a mismatch is a hard stop and is audited."""
    with _errors():
        result = svc.scan_identity(
            _ready_app().uow(), lot, code, by=_who().actor, location=location
        )
    console.print(f"[green]match[/]: {result.kind} {result.scanned} belongs to batch {result.lot}")


# -- audit ---------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(
    json_: JsonOpt = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            help="Worker processes for a long chain (default: one per core, at most 4).",
        ),
    ] = None,
) -> None:
    """Recompute the whole hash chain; name the first broken link and exit non-zero."""
    with _errors():
        application = _ready_app()
        require(_who().actor, "audit.verify")
        total = application.audit_count()
        if json_ or total < 100_000:
            report = application.verify_audit(jobs=jobs)
        else:
            with progress_bar() as bar:
                task = bar.add_task("verifying", total=total)
                report = application.verify_audit(
                    lambda n: bar.update(task, completed=n), jobs=jobs
                )
    if json_:
        print_json(
            {
                "ok": report.ok,
                "checked": report.checked,
                "head_seq": report.last_seq,
                "head_hash": report.head_hash,
                "first_break": None
                if report.ok
                else {"seq": report.first_break.seq, "what": report.first_break.what},  # type: ignore[union-attr]
            }
        )
    elif report.ok:
        console.print(
            f"[green]audit chain intact[/]: {report.checked} records checked, "
            f"head {report.last_seq} {report.head_hash[:16]}…"
        )
    if not report.ok:
        assert report.first_break is not None
        if not json_:
            console.print(f"checked {report.checked} records before the first broken link")
        fail(errors.AuditChainBroken(f"first broken link: {report.first_break}"))


@audit_app.command("log")
def audit_log(
    lot: Annotated[str | None, typer.Option(help="Only records of this batch.")] = None,
    limit: Annotated[int, typer.Option(help="How many of the newest records.")] = 30,
    json_: JsonOpt = False,
) -> None:
    """Show the newest audit records."""
    with _errors():
        _who()
        entries = queries.audit_log(_ready_app(), lot=lot, limit=limit)
    if json_:
        print_json(entries)
        return
    table = _table(
        "seq", "when (UTC)", "actor", "action", "entity", "reason", "hash",
        ids=("seq", "when (UTC)", "actor", "action", "entity", "hash"),
    )  # fmt: skip
    for e in reversed(entries):
        table.add_row(
            str(e.seq),
            e.at[:19].replace("T", " "),
            e.actor,
            e.action,
            f"{e.entity_type} {e.entity_id}",
            e.reason or "",
            e.hash[:12],
        )
    print_table(table)


# -- identifiers ---------------------------------------------------------------------
@din_app.command("check")
def din_check(
    din: Annotated[str, typer.Argument(help="DIN: 13 characters, eye-readable with K, or =DINff.")],
    json_: JsonOpt = False,
) -> None:
    """Check a DIN: validity, keyboard check character K and type 3 flags. Exit 2 if invalid."""
    try:
        parsed = Din.parse_scan(din)
    except errors.InvalidInput as error:
        if json_:
            print_json(
                {
                    "din": din,
                    "valid": False,
                    "check_character": None,
                    "type3_flags": None,
                    "error": error.message,
                }
            )
            raise typer.Exit(exit_code(error)) from None
        fail(error)
    if json_:
        print_json(
            {
                "din": parsed.value,
                "valid": True,
                "check_character": parsed.check_character,
                "type3_flags": parsed.type3_flags,
                "eye_readable": parsed.eye_readable,
                "data_content": parsed.data_content(parsed.type3_flags),
            }
        )
        return
    console.print(
        f"[green]valid[/] DIN {parsed.eye_readable}: K={parsed.check_character}, "
        f"type 3 flags {parsed.type3_flags}, bar code {parsed.data_content(parsed.type3_flags)}"
    )
