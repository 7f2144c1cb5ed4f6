"""``dpg audit …``: verify the audit log's hash chain and list its entries (``dpg.store.audit``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dpg.cli.context import fail, target

audit_app = typer.Typer(help="The audit log of operator actions: verify its hash chain, list entries",
                        no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[str | None, typer.Option(help="SEQ:HASH, a head recorded elsewhere before: also finds rows "
                                                    "cut from the end or a chain rewritten with fresh hashes")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Recompute the hash chain; exit 0 only when it is intact, else name the first bad row (exit 1)."""
    from dpg.store import audit

    try:
        head = audit.Anchor.parse(anchor) if anchor else None
    except ValueError as e:
        raise fail(str(e), 2) from None
    v = audit.verify(target().url, head)
    if as_json:
        typer.echo(json.dumps(v.as_json()))
    elif v.ok:
        typer.echo(f"audit log intact: {v.rows} row(s); head {v.head_seq}:{v.head_hash}")
    if not v.ok:
        raise fail(f"audit log broken at row {v.bad_seq}: {v.problem} ({v.rows} row(s) before it are intact)", 1)


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many of the newest entries")] = 50,
    before: Annotated[int | None, typer.Option(min=1, help="Entries before this row")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. credit")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines")] = False,
) -> None:
    """The newest entries, newest first."""
    from dpg.store import audit

    rows = audit.entries(target().url, limit, before, action)
    for e in rows:
        if as_json:
            typer.echo(json.dumps(e.as_json()))
        else:
            typer.echo(f"{e.seq:>6}  {e.ts.isoformat(timespec='seconds')}  {e.actor:<24}  {e.action:<22}  "
                       f"{json.dumps(e.details, sort_keys=True)}")
    if not rows and not as_json:
        typer.echo("no entries")
