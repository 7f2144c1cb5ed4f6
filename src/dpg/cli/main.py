"""The ``dpg`` command: run the exchange (single-process, engine or API), replay and verify the
journal, the public matching replay, projections, users, API keys, the outbox and credits; the
benchmarks, proof of reserves, perpetual futures, custody, backup and surveillance commands are added from their
own modules."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from dpg.cli.audit import audit_app
from dpg.cli.backup import backup_app, restore
from dpg.cli.bench import bench_app
from dpg.cli.context import fail, say, setup_logging, target, unreachable
from dpg.cli.custody import signer_app, wallet_app
from dpg.cli.escape import exit_app
from dpg.cli.gov import gov_app, stake_app
from dpg.cli.perps import perps_app
from dpg.cli.por import por_app
from dpg.cli.surveillance import surveillance_app
from dpg.config import Settings

app = typer.Typer(help="DPG exchange", no_args_is_help=True, add_completion=False)
projections_app = typer.Typer(help="Projection tables (orders, trades, ledger entries)", no_args_is_help=True)
user_app = typer.Typer(help="Users (on the exchange's database)", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys (on the exchange's database)", no_args_is_help=True)
mail_app = typer.Typer(help="Mail the exchange sent (the outbox): the newest messages; dpg mail show ID prints one",
                       invoke_without_command=True)
app.add_typer(bench_app, name="bench")
app.add_typer(projections_app, name="projections")
app.add_typer(por_app, name="por")
app.add_typer(perps_app, name="perps")
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
app.add_typer(mail_app, name="mail")
app.add_typer(signer_app, name="signer")
app.add_typer(wallet_app, name="wallet")
app.add_typer(audit_app, name="audit")
app.add_typer(backup_app, name="backup")
app.command("restore")(restore)
app.add_typer(surveillance_app, name="surveillance")
app.add_typer(gov_app, name="gov")
app.add_typer(stake_app, name="stake")
app.add_typer(exit_app, name="exit")


@app.command()
def up(
    port: Annotated[int | None, typer.Option(help="HTTP port (default DPG_PORT or 8000)")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default DPG_HOST or 127.0.0.1)")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Seed demo users and run a market maker")] = False,
) -> None:
    """Start the exchange (engine, journal, projections, API) on the embedded defaults."""
    from dpg.system.modes import run_single
    from dpg.system.target import database_url

    settings = Settings.from_env().with_chains()
    setup_logging(settings)
    run_single(settings, database_url(settings), host or settings.host, port or settings.port, say, demo=demo)


@app.command()
def engine() -> None:
    """The engine process of the multi-process mode (needs DPG_REDIS_URL)."""
    from dpg.system.modes import run_engine
    from dpg.system.target import database_url

    settings = Settings.from_env().with_chains()
    if not settings.redis_url:
        raise fail("dpg engine needs DPG_REDIS_URL")
    setup_logging(settings)
    run_engine(settings, database_url(settings), say)


@app.command()
def api(
    port: Annotated[int | None, typer.Option(help="HTTP port (default DPG_PORT or 8000)")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default DPG_HOST or 127.0.0.1)")] = None,
) -> None:
    """An API process of the multi-process mode (needs DPG_REDIS_URL and the engine's database)."""
    from dpg.store import db
    from dpg.system.modes import run_api
    from dpg.system.target import database_url

    settings = Settings.from_env()
    if not settings.redis_url:
        raise fail("dpg api needs DPG_REDIS_URL (the same as the engine's)")
    if not settings.database_url and not (settings.data_dir / "pg").is_dir():
        raise fail("dpg api needs the engine's database: set DPG_DATABASE_URL to the engine's (or run it beside "
                    f"the engine with the same DPG_DATA_DIR; {settings.data_dir} holds none)")
    url = database_url(settings)
    if not db.has_schema(url):
        raise fail("the database holds no DPG exchange yet: start `dpg engine` on it first")
    setup_logging(settings)
    run_api(settings, url, host or settings.host, port or settings.port, say)


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    from dpg.store import db

    applied = db.migrate(target(schema=False).url)
    typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none'}")


@app.command()
def replay(
    verify: Annotated[bool, typer.Option("--verify", help="Also check every snapshot against the replay")] = False,
) -> None:
    """Rebuild the state from the journal alone and print its state hash."""
    from dpg.core import state
    from dpg.journal.journal import Journal
    from dpg.journal.recovery import recover
    from dpg.store import db

    url = target().url
    db.migrate(url)
    journal = Journal(url)
    snapshots = {
        int(seq): str(h)
        for seq, h in journal.conn.execute("SELECT seq, state_hash FROM snapshots ORDER BY seq").fetchall()
    }
    journal.conn.commit()
    checked: list[int] = []
    mismatched: list[int] = []

    if verify and snapshots:
        from dpg.core.engine import Engine
        from dpg.journal import codec

        engine = Engine()
        for seq, ts, payload in journal.read(0):
            engine.apply(codec.decode(payload), seq, ts)
            if seq in snapshots:
                checked.append(seq)
                if state.state_hash(engine) != snapshots[seq]:
                    mismatched.append(seq)
    else:
        engine = recover(journal, from_snapshot=False)
    digest = state.state_hash(engine)
    out = {"seq": engine.seq, "state_hash": digest}
    if verify:
        restarted = recover(journal)  # what a restart would build: latest snapshot + journal
        out["snapshots_checked"] = len(checked)
        out["restart_state_hash"] = state.state_hash(restarted)
        out["conservation_errors"] = len(engine.conservation_errors())
        ok = not mismatched and out["restart_state_hash"] == digest and not out["conservation_errors"]
        out["verified"] = ok
        typer.echo(json.dumps(out))
        journal.close()
        if not ok:
            raise fail(f"verification failed: snapshots {mismatched} differ from the replay", 1)
        return
    journal.close()
    typer.echo(json.dumps(out))


@app.command("replay-orders")
def replay_orders(
    workload: Annotated[Path, typer.Argument(help="CSV with header op,id,account,side,type,price,qty")],
    trades: Annotated[Path, typer.Option("--trades", help="Output CSV: taker_id,maker_id,price,qty")],
    book: Annotated[Path, typer.Option("--book", help="Output CSV: id,side,price,remaining")],
) -> None:
    """The public matching replay: one market's order log through DPG's engine."""
    from dpg.core.errors import DomainError
    from dpg.core.public_replay import replay as run

    if not workload.is_file():
        raise fail(f"{workload}: no such file")
    with workload.open(newline="") as f:
        reader = csv.DictReader(f)
        need = {"op", "id", "account", "side", "type", "price", "qty"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise fail(f"{workload}: header must be op,id,account,side,type,price,qty")
        try:
            result = run(reader)
        except DomainError as e:
            raise fail(f"{workload}: {e.reason}") from None
    with trades.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["taker_id", "maker_id", "price", "qty"])
        w.writerows((t.taker_id, t.maker_id, t.price, t.qty) for t in result.trades)
    with book.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "side", "price", "remaining"])
        w.writerows((r.id, r.side, r.price, r.remaining) for r in result.book())
    typer.echo(json.dumps({"trades": len(result.trades), "resting": len(result.engine.orders)}))


@projections_app.command("rebuild")
def projections_rebuild() -> None:
    """Drop the projection tables' rows and rebuild them from the journal."""
    from dpg.journal.journal import Journal
    from dpg.store import db
    from dpg.store.follower import catch_up
    from dpg.store.projection import Projector

    url = target().url
    db.migrate(url)
    projector = Projector(url)
    projector.truncate()
    journal = Journal(url)
    engine = catch_up(journal, projector)
    typer.echo(json.dumps({"seq": engine.seq, "projected_seq": projector.written_seq}))
    journal.close()


def _operator_call(work: Any) -> Any:
    from dpg.identity import AuthError

    try:
        return work()
    except AuthError as e:
        raise fail(f"{e.code}: {e.reason}", 1) from None


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="A name (stands for NAME@users.dpg.local) or an email address")],
    as_operator: Annotated[bool, typer.Option("--operator", help="An operator: may use the console (/console) "
                                                                 "once their 2FA is on")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create a user with a random password (printed once); audited."""
    from dpg.api import operator
    from dpg.store import db

    exchange = target()
    db.migrate(exchange.url)
    out = _operator_call(lambda: operator.create_user(exchange.url, exchange.settings, name, exchange.api,
                                                      operator=as_operator))
    typer.echo(json.dumps(out) if as_json else f"user {out['id']} ({out['email']}), password {out['password']}"
               + (", operator: turn 2FA on to use the console" if as_operator else ""))
    if not out["account_open"]:
        typer.echo(f"no exchange at {exchange.api} opened the account: it opens when the exchange starts (or at the"
                   " user's first login)", err=True)


@user_app.command("grant-operator")
def user_grant_operator(
    name: Annotated[str, typer.Argument(help="The user's name or email")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Make a user an operator (the console at /console; it also needs their 2FA on); audited."""
    from dpg.api import operator
    from dpg.store import db

    exchange = target()
    db.migrate(exchange.url)
    out = _operator_call(lambda: operator.grant_operator(exchange.url, exchange.settings, name))
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(f"user {out['user_id']} ({out['email']}) " + ("is now an operator" if out["granted"]
                                                             else "was an operator already")
               + ("" if out["two_factor"] else "; the console needs their 2FA on"))


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="The user's name or email")],
    permissions: Annotated[str, typer.Option(help="Comma-separated: read, trade, withdraw")] = "read",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create an API key for a user; the secret is printed once; audited."""
    from dpg.api import operator

    exchange = target()
    perms = [p.strip() for p in permissions.split(",") if p.strip()]
    out = _operator_call(lambda: operator.create_api_key(exchange.url, exchange.settings, name, perms))
    typer.echo(json.dumps(out) if as_json else f"key {out['key']}\nsecret {out['secret']}")


def _outbox(work: Any) -> Any:
    import psycopg

    from dpg.system.target import database_url

    try:
        return work(database_url(Settings.from_env()))
    except psycopg.errors.UndefinedTable:
        raise fail("this database has no outbox: is it the exchange's (DPG_DATABASE_URL, DPG_DATA_DIR)?", 1) from None
    except psycopg.OperationalError as e:
        raise fail(f"cannot reach the exchange's database: {e}", 1) from None


@mail_app.callback()
def mail_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many of the newest messages")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines")] = False,
) -> None:
    """The newest messages in the outbox, newest first (without DPG_SMTP_URL the outbox is the
    delivery: read verification and password-reset links here)."""
    if ctx.invoked_subcommand is not None:
        return
    from dpg import mail

    rows = _outbox(lambda url: mail.newest(url, limit))
    for r in rows:
        typer.echo(json.dumps(r) if as_json else f"{r['id']:>6}  {r['created_at']}  {r['status']:<6}  {r['to']}  "
                                                 f"{r['subject']}")
    if not rows and not as_json:
        typer.echo("no mail yet")


@mail_app.command("show")
def mail_show(
    mail_id: Annotated[int, typer.Argument(metavar="ID", help="The message's id (the first column of dpg mail)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """One message: its headers, status and text."""
    from dpg import mail

    m = _outbox(lambda url: mail.message(url, mail_id))
    if m is None:
        raise fail(f"no message {mail_id} in the outbox", 1)
    if as_json:
        typer.echo(json.dumps(m))
        return
    typer.echo(f"To: {m['to']}\nSubject: {m['subject']}\nDate: {m['created_at']}\nStatus: {m['status']}"
               + (f" ({m['error']})" if m["error"] else "") + f"\n\n{m['body']}")


@app.command()
def credit(
    name: Annotated[str, typer.Argument(help="The user's name or email")],
    asset: Annotated[str, typer.Argument(help="e.g. USDT")],
    amount: Annotated[str, typer.Argument(help="Decimal amount, e.g. 1000.50")],
    reference: Annotated[str | None, typer.Option(help="External reference (default: a new one)")] = None,
    url: Annotated[str | None, typer.Option(help="The running exchange (default: the one registered on this machine, "
                                                 "else http://DPG_HOST:DPG_PORT)")] = None,
) -> None:
    """Credit a user's balance on the running exchange (a journaled command)."""
    import secrets
    import urllib.error

    from dpg.api import operator
    from dpg.api.server import admin_token

    exchange = target()
    uid = _operator_call(lambda: operator.user_id(exchange.url, exchange.settings, name))
    base = url or exchange.api
    try:
        out = operator.credit(base, admin_token(exchange.settings), uid, asset, amount,
                              reference or f"cli-{secrets.token_hex(8)}")
    except urllib.error.HTTPError as e:
        raise fail(f"the exchange refused: {e.read().decode()}", 1) from None
    except OSError as e:
        raise fail(unreachable(base, e), 1) from None
    typer.echo(json.dumps(out))


def main() -> None:
    """The ``dpg`` console script."""
    app()

