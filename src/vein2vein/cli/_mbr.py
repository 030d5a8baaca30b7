"""`v2v mbr validate|show|diff`: master batch record files, checked before they are used."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from vein2vein.cli import _auth
from vein2vein.cli._context import JsonOpt, _errors, _ready_app, _who
from vein2vein.cli._render import console, print_json, print_table, table
from vein2vein.domain import errors
from vein2vein.domain.permissions import rule_for
from vein2vein.domain.process import diff_processes
from vein2vein.formats.mbr import InvalidProcessFile, load_mbr
from vein2vein.services import mbr
from vein2vein.services.authorise import permitted

__all__ = ["mbr_app"]

mbr_app = typer.Typer(
    help="Master batch records (YAML): check, compare, import, approve (change control).",
    no_args_is_help=True,
)
FileArg = Annotated[Path, typer.Argument(help="An MBR file (YAML, schema_version 1).")]


@mbr_app.command("validate")
def validate(files: Annotated[list[Path], typer.Argument(help="MBR files.")]) -> None:
    """Check MBR files; every problem is named with its place. Exit 2 if any is invalid."""
    failed = 0
    for path in files:
        try:
            process = load_mbr(path)
        except InvalidProcessFile as invalid:
            failed += 1
            console.print(f"[red]{path}: {len(invalid.problems)} problem(s)[/]")
            for problem in invalid.problems:
                console.print(f"  {problem}", markup=False)
            continue
        except errors.InvalidInput as unreadable:  # a file that cannot be read
            failed += 1
            console.print(f"[red]{unreadable.message}[/]", markup=True)
            continue
        console.print(
            f"[green]{path}: valid[/] — {process.process} v{process.version}, "
            f"{len(process.steps)} steps, {process.expected_hours / 24:.1f} days expected"
        )
    if failed:
        with _errors():
            raise errors.InvalidInput(
                f"{failed} of {len(files)} file(s) are not valid master batch records "
                "(problems above)"
            )


@mbr_app.command("show")
def show(path: FileArg, json_: JsonOpt = False) -> None:
    """The steps of an MBR with their parameters, ranges and what each step needs."""
    with _errors():
        process = load_mbr(path)
    if json_:
        print_json(process)
        return
    head = f"{process.process} v{process.version}, {process.product}"
    console.print(f"[bold]{process.title}[/] ({head})")
    for n, step in enumerate(process.steps, 1):
        flags = [
            s for s, on in (("verified", step.verification), ("repeatable", step.repeatable)) if on
        ]
        console.print(
            f"\n[bold]{n}. {escape(step.name)}[/] \\[{step.id}] — {step.expected_hours:g} h, "
            f"{step.equipment_class or 'no equipment'}{' · ' + ', '.join(flags) if flags else ''}"
        )
        grid = table("parameter", "unit", "target", "NOR", "PAR", "", ids=("parameter",))
        for p in step.parameters:
            kind = f"= {p.formula}" if p.formula else ("critical" if p.critical else "")
            target = "" if p.target is None else f"{p.target:g}"
            grid.add_row(p.name, p.unit, target, str(p.nor), str(p.par), kind)
        if step.parameters:
            print_table(grid)
        for m in step.materials:
            console.print(f"  material: {m.type}, {m.quantity:g} {m.unit}", markup=False)
        for s in step.samples:
            console.print(f"  sample: {s.name} ({s.test}, {s.volume_ml:g} mL)", markup=False)


@mbr_app.command("diff")
def diff(old: FileArg, new: FileArg) -> None:
    """What changed between two versions of an MBR (for change control)."""
    with _errors():
        changes = diff_processes(load_mbr(old), load_mbr(new))
    if not changes:
        console.print("no differences")
    for line in changes:
        console.print(line, markup=False)


@mbr_app.command("import")
def import_(path: FileArg) -> None:
    """Import a new version of an MBR as a draft (QA reviewers, administrators)."""
    with _errors():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise errors.InvalidInput(f"{path}: cannot read ({exc.strerror or exc})") from None
        version = mbr.import_mbr(_ready_app().uow(), _who().actor, text, str(path))
    console.print(
        f"{version.process} v{version.version} imported as a draft "
        f"(sha256 {version.content_hash[:16]}…); a QA reviewer approves it: "
        f"`v2v mbr approve {version.process} {version.version} --reason …`"
    )


@mbr_app.command("approve")
def approve(
    process: Annotated[str, typer.Argument(help="Process code, e.g. CART-CD19-CONV.")],
    version: Annotated[int, typer.Argument(help="The draft's version.")],
    reason: Annotated[str, typer.Option(help="What was reviewed (recorded).")],
) -> None:
    """Approve a draft with your electronic signature: it becomes effective, and the version
    effective until now is superseded."""
    with _errors():
        who = _who()
        allowed = permitted(who.actor, rule_for("mbr.approve"))
        approved = mbr.approve_mbr(
            _ready_app().uow(),
            who,
            process,
            version,
            reason=reason,
            signing=_auth.signing(who, "approved") if allowed else None,
        )
    console.print(f"{approved.process} v{approved.version} is effective (approved, signed)")


@mbr_app.command("list")
def list_(json_: JsonOpt = False) -> None:
    """Every version of every process, with its status in change control."""
    with _errors():
        versions = mbr.list_mbrs(_ready_app(), _who().actor)
    if json_:
        print_json(versions)
        return
    grid = table(
        "process", "version", "status", "product", "imported by", "approved by", "sha256",
        ids=("process", "status", "sha256"),
    )  # fmt: skip
    for v in versions:
        grid.add_row(v.process, str(v.version), v.status, v.product, v.imported_by,
                     v.approved_by or "", v.content_hash[:16])  # fmt: skip
    print_table(grid)
