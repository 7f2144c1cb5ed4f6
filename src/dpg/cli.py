"""The ``dpg`` command: run the exchange, replay and verify the journal, the public matching
replay, and the benchmarks."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from dpg.config import Settings

app = typer.Typer(help="DPG exchange", no_args_is_help=True, add_completion=False)
bench_app = typer.Typer(help="Benchmarks: JSON lines, one per measurement", no_args_is_help=True)
projections_app = typer.Typer(help="Projection tables (orders, trades, ledger entries)", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(projections_app, name="projections")
por_app = typer.Typer(help="Proof of reserves: Merkle sum trees and proofs (docs/proof-of-reserves.md)",
                      no_args_is_help=True)
app.add_typer(por_app, name="por")
user_app = typer.Typer(help="Users (on the exchange's database)", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys (on the exchange's database)", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
mail_app = typer.Typer(help="Mail the exchange sent (the outbox): the newest messages; dpg mail show ID prints one",
                       invoke_without_command=True)
app.add_typer(mail_app, name="mail")
from dpg.custody_cli import signer_app, wallet_app  # noqa: E402 (the custody commands, in their own module)

app.add_typer(signer_app, name="signer")
app.add_typer(wallet_app, name="wallet")


def _setup_logging(settings: Settings) -> None:
    from dpg.logs import setup

    setup(settings.log_level)


def _say(message: str) -> None:
    typer.echo(message)
    sys.stdout.flush()


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _target(schema: bool = True) -> Any:
    """The existing exchange an operator command acts on (``dpg.system.target.operator_target``)."""
    from dpg.running import NotFound
    from dpg.system.target import operator_target

    try:
        return operator_target(schema=schema)
    except NotFound as e:
        raise _fail(str(e), 1) from None


@app.command()
def up(
    port: Annotated[int | None, typer.Option(help="HTTP port (default DPG_PORT or 8000)")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default DPG_HOST or 127.0.0.1)")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Seed demo users and run a market maker")] = False,
) -> None:
    """Start the exchange (engine, journal, projections, API) on the embedded defaults."""
    from dpg.system.modes import run_single
    from dpg.system.target import database_url

    settings = Settings.from_env()
    _setup_logging(settings)
    run_single(settings, database_url(settings), host or settings.host, port or settings.port, _say, demo=demo)


@app.command()
def engine() -> None:
    """The engine process of the multi-process mode (needs DPG_REDIS_URL)."""
    from dpg.system.modes import run_engine
    from dpg.system.target import database_url

    settings = Settings.from_env()
    if not settings.redis_url:
        raise _fail("dpg engine needs DPG_REDIS_URL")
    _setup_logging(settings)
    run_engine(settings, database_url(settings), _say)


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
        raise _fail("dpg api needs DPG_REDIS_URL (the same as the engine's)")
    if not settings.database_url and not (settings.data_dir / "pg").is_dir():
        raise _fail("dpg api needs the engine's database: set DPG_DATABASE_URL to the engine's (or run it beside "
                    f"the engine with the same DPG_DATA_DIR; {settings.data_dir} holds none)")
    url = database_url(settings)
    if not db.has_schema(url):
        raise _fail("the database holds no DPG exchange yet: start `dpg engine` on it first")
    _setup_logging(settings)
    run_api(settings, url, host or settings.host, port or settings.port, _say)


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    from dpg.store import db

    applied = db.migrate(_target(schema=False).url)
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

    url = _target().url
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
            raise _fail(f"verification failed: snapshots {mismatched} differ from the replay", 1)
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
        raise _fail(f"{workload}: no such file")
    with workload.open(newline="") as f:
        reader = csv.DictReader(f)
        need = {"op", "id", "account", "side", "type", "price", "qty"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise _fail(f"{workload}: header must be op,id,account,side,type,price,qty")
        try:
            result = run(reader)
        except DomainError as e:
            raise _fail(f"{workload}: {e.reason}") from None
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

    url = _target().url
    db.migrate(url)
    projector = Projector(url)
    projector.truncate()
    journal = Journal(url)
    engine = catch_up(journal, projector)
    typer.echo(json.dumps({"seq": engine.seq, "projected_seq": projector.written_seq}))
    journal.close()


@bench_app.command("engine")
def bench_engine(
    commands: Annotated[int, typer.Option("-n", "--commands", help="Commands in the workload")] = 300_000,
    seed: Annotated[int, typer.Option(help="Workload seed")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines (the default output)")] = True,
    peers: Annotated[bool, typer.Option(help="Also run pyorderbook and lightmatchingengine")] = True,
) -> None:
    """The in-memory engine on a seeded mixed workload, with its peers on the same flow."""
    from dpg.bench import engine_bench

    for line in engine_bench.run(commands, seed, peers=peers):
        typer.echo(json.dumps(line))


@bench_app.command("durable")
def bench_durable(
    commands: Annotated[int, typer.Option("-n", "--commands", help="Commands in the workload")] = 300_000,
    seed: Annotated[int, typer.Option(help="Workload seed")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines (the default output)")] = True,
    window: Annotated[int, typer.Option(help="Commands in flight (awaiting their reply) at most")] = 1024,
) -> None:
    """The same flow through the sequencer and the PostgreSQL journal, replies after commit."""
    from dpg.bench import durable_bench

    for line in durable_bench.run(commands, seed, window=window):
        typer.echo(json.dumps(line))


@bench_app.command("api")
def bench_api(
    rates: Annotated[str, typer.Option(help="Comma-separated order rates per second")] = "250,500,1000,2000,3000",
    seconds: Annotated[float, typer.Option(help="Seconds at each rate")] = 3.0,
    subscribers: Annotated[int, typer.Option(help="WebSocket subscribers for the fan-out")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines (the default output)")] = True,
) -> None:
    """Orders over HTTP at rising fixed rates, and market-data fan-out to many WebSocket clients."""
    from dpg.bench import api_bench

    try:
        chosen = [int(r) for r in rates.split(",") if r.strip()]
    except ValueError:
        raise _fail("--rates must be comma-separated integers") from None
    if not chosen or min(chosen) <= 0 or seconds <= 0 or subscribers <= 0:
        raise _fail("rates, seconds and subscribers must be positive")
    for line in api_bench.run(chosen, seconds, subscribers):
        typer.echo(json.dumps(line))


@bench_app.command("por")
def bench_por(
    accounts: Annotated[int, typer.Option(help="Accounts with a balance")] = 1_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines (the default output)")] = True,
) -> None:
    """Seconds and peak memory to build one asset's proof-of-reserves tree and every proof."""
    from dpg.bench import por_bench

    if accounts <= 0:
        raise _fail("--accounts must be positive")
    typer.echo(json.dumps(por_bench.run(accounts)))


@bench_app.command("memory")
def bench_memory(
    orders: Annotated[int, typer.Option("-n", "--orders", help="Resting orders")] = 1_000_000,
) -> None:
    """Memory of N resting orders in the engine."""
    from dpg.bench import engine_bench

    typer.echo(json.dumps(engine_bench.memory(orders)))


@bench_app.command("restart")
def bench_restart(
    commands: Annotated[int, typer.Option("-n", "--commands", help="Journal length")] = 1_000_000,
) -> None:
    """Restart time: snapshot + replay of a journal of N commands on PostgreSQL."""
    from dpg.bench import durable_bench

    for line in durable_bench.restart(commands):
        typer.echo(json.dumps(line))


def _operator_call(work: Any) -> Any:
    from dpg.api.auth import AuthError

    try:
        return work()
    except AuthError as e:
        raise _fail(f"{e.code}: {e.reason}", 1) from None


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="A name (stands for NAME@users.dpg.local) or an email address")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create a user with a random password (printed once)."""
    from dpg.api import operator
    from dpg.store import db

    target = _target()
    db.migrate(target.url)
    out = _operator_call(lambda: operator.create_user(target.url, target.settings, name, target.api))
    typer.echo(json.dumps(out) if as_json else f"user {out['id']} ({out['email']}), password {out['password']}")
    if not out["account_open"]:
        typer.echo(f"no exchange at {target.api} opened the account: it opens when the exchange starts (or at the"
                   " user's first login)", err=True)


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="The user's name or email")],
    permissions: Annotated[str, typer.Option(help="Comma-separated: read, trade, withdraw")] = "read",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create an API key for a user; the secret is printed once."""
    from dpg.api import operator

    target = _target()
    perms = [p.strip() for p in permissions.split(",") if p.strip()]
    out = _operator_call(lambda: operator.create_api_key(target.url, target.settings, name, perms))
    typer.echo(json.dumps(out) if as_json else f"key {out['key']}\nsecret {out['secret']}")


def _outbox(work: Any) -> Any:
    import psycopg

    from dpg.system.target import database_url

    try:
        return work(database_url(Settings.from_env()))
    except psycopg.errors.UndefinedTable:
        raise _fail("this database has no outbox: is it the exchange's (DPG_DATABASE_URL, DPG_DATA_DIR)?", 1) from None
    except psycopg.OperationalError as e:
        raise _fail(f"cannot reach the exchange's database: {e}", 1) from None


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
        raise _fail(f"no message {mail_id} in the outbox", 1)
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

    target = _target()
    uid = _operator_call(lambda: operator.user_id(target.url, target.settings, name))
    base = url or target.api
    try:
        out = operator.credit(base, admin_token(target.settings), uid, asset, amount,
                              reference or f"cli-{secrets.token_hex(8)}")
    except urllib.error.HTTPError as e:
        raise _fail(f"the exchange refused: {e.read().decode()}", 1) from None
    except OSError as e:
        raise _fail(_unreachable(base, e), 1) from None
    typer.echo(json.dumps(out))


@por_app.command("snapshot")
def por_snapshot(
    url: Annotated[str | None, typer.Option(help="The running exchange (default: the one registered on this machine, "
                                                 "else http://DPG_HOST:DPG_PORT)")] = None,
) -> None:
    """Mark a proof-of-reserves epoch on the running exchange now; trading goes on."""
    import urllib.error
    import urllib.request

    from dpg.api.server import admin_token

    target = _target()
    settings = target.settings
    base = url or target.api
    if not base.startswith(("http://", "https://")):
        raise _fail("--url must be an http(s) URL")
    req = urllib.request.Request(f"{base}/api/v1/admin/por/epochs", method="POST", data=b"",  # noqa: S310
                                 headers={"X-DPG-Admin-Token": admin_token(settings)})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (an operator-given http URL)
            typer.echo(resp.read().decode())
    except urllib.error.HTTPError as e:
        raise _fail(f"the exchange refused: {e.read().decode()}", 1) from None
    except OSError as e:
        raise _fail(_unreachable(base, e), 1) from None


def _unreachable(base: str, e: OSError) -> str:
    reason = getattr(e, "reason", e)
    return (f"no exchange answers at {base} ({reason}): is `dpg up` running? Name its address with --url, "
            "or set DPG_HOST/DPG_PORT as the exchange has them")


@por_app.command("build-tree")
def por_build_tree(
    balances: Annotated[Path, typer.Argument(help="CSV with header account,balance (integers of base units)")],
    epoch: Annotated[int, typer.Option(help="Epoch number (uint64)")],
    asset: Annotated[str, typer.Option(help="Asset symbol, e.g. USDT")],
    chain_id: Annotated[int, typer.Option("--chain-id", help="Chain id of the registry")],
    registry: Annotated[str, typer.Option(help="Registry contract address, 0x…")],
    secret: Annotated[str, typer.Option(help="The exchange's proof-of-reserves secret, hex")],
    out: Annotated[Path, typer.Option(help="Where to write the tree (JSON)")],
) -> None:
    """Build one asset's Merkle sum tree; prints root, total, depth and the number of leaves."""
    from dpg.por import tree as por

    if not balances.is_file():
        raise _fail(f"{balances}: no such file")
    try:
        key = bytes.fromhex(secret.removeprefix("0x"))
    except ValueError:
        raise _fail("--secret must be hex") from None
    if len(key) < 16:
        raise _fail("--secret must be at least 16 bytes")
    rows: list[tuple[str, int]] = []
    with balances.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"account", "balance"} <= set(reader.fieldnames):
            raise _fail(f"{balances}: header must be account,balance")
        for n, row in enumerate(reader, start=2):
            raw = (row.get("balance") or "").strip()
            if not raw.lstrip("-").isdigit():
                raise _fail(f"{balances} line {n}: balance must be an integer of base units, got {raw!r}")
            rows.append(((row.get("account") or "").strip(), int(raw)))
    try:
        t = por.build(por.Params(chain_id, registry, epoch, asset), rows, key)
    except por.ProofError as e:
        raise _fail(str(e)) from None
    out.write_text(json.dumps(por.tree_json(t)))
    typer.echo(json.dumps({"root": "0x" + t.root.hex(), "total": str(t.total), "depth": t.depth,
                           "leaves": len(t.accounts)}))


@por_app.command("prove")
def por_prove(
    tree_file: Annotated[Path, typer.Argument(help="A tree written by build-tree")],
    account: Annotated[str, typer.Option(help="Account id")],
    out: Annotated[Path, typer.Option(help="Where to write the proof (JSON)")],
) -> None:
    """Write one account's proof."""
    from dpg.por import tree as por

    try:
        t = por.load_tree(json.loads(tree_file.read_text()))
        out.write_text(json.dumps(por.proof(t, account), indent=2) + "\n")
    except FileNotFoundError:
        raise _fail(f"{tree_file}: no such file") from None
    except (por.ProofError, KeyError, ValueError) as e:
        raise _fail(str(e)) from None
    typer.echo(json.dumps({"account": account, "out": str(out)}))


def _por_chains(chains_file: Path | None) -> list[Any]:
    """The chains of ``--chains`` (a DPG_CHAINS-format file), else of DPG_CHAINS; the first holds the registry."""
    import os

    from dpg.chain.config import ChainConfigError, load_chains
    from dpg.por import publish as pub

    env = dict(os.environ)
    if chains_file is not None:
        env["DPG_CHAINS"] = str(chains_file)
    try:
        configs = load_chains(env)
        return [pub.Chain.from_config(c) for c in configs]
    except (ChainConfigError, pub.PublishError) as e:
        raise _fail(f"{e} (publishing needs chains with an rpc_url and a vault: --chains FILE or DPG_CHAINS)") from None


def _por_secret(secret: str | None) -> bytes:
    """--secret, else the exchange's (DPG_POR_SECRET, else DPG_DATA_DIR/por.secret, as dpg up uses)."""
    raw = secret
    if not raw:
        return Settings.from_env().por_key()
    try:
        key = bytes.fromhex(raw.removeprefix("0x"))
    except ValueError:
        raise _fail("the proof-of-reserves secret must be hex") from None
    if len(key) < 16:
        raise _fail("the proof-of-reserves secret must be at least 16 bytes")
    return key


def _por_rpc(rpc_url: str | None, settings: Settings) -> str | None:
    import os

    from dpg.por import publish as pub

    record = pub.read_record(settings.data_dir) or {}
    return rpc_url or os.environ.get("DPG_POR_RPC") or record.get("rpcUrl")


@por_app.command("deploy-registry")
def por_deploy_registry(
    chains_file: Annotated[Path | None, typer.Option("--chains", help="Chains file (default DPG_CHAINS)")] = None,
    sender: Annotated[str | None, typer.Option("--from", help="Operator account the node holds (default its first)")]
    = None,
) -> None:
    """Deploy a ReserveRegistry on the first configured chain, owned by the operator; records it in the data dir."""
    from dpg.por import publish as pub

    settings = Settings.from_env()
    home = _por_chains(chains_file)[0]
    owner = sender or home.rpc.accounts()[0]
    address = pub.deploy_registry(home.rpc, owner, home.vault, home.tokens)
    pub.write_record(settings.data_dir, home.chain_id, address, home.rpc.url)
    typer.echo(json.dumps({"registry": address, "chainId": home.chain_id, "owner": owner}))


@por_app.command("publish")
def por_publish(
    epoch: Annotated[int | None, typer.Option(help="The epoch (default: the latest recorded)")] = None,
    chains_file: Annotated[Path | None, typer.Option("--chains", help="Chains file (default DPG_CHAINS)")] = None,
    registry: Annotated[str | None, typer.Option(help="ReserveRegistry address (default: DPG_POR_REGISTRY, "
                                                      "else the one dpg por deploy-registry recorded)")] = None,
    secret: Annotated[str | None, typer.Option(help="The proof-of-reserves secret, hex (default DPG_POR_SECRET, "
                                                    "else DPG_DATA_DIR/por.secret)")]
    = None,
    sender: Annotated[str | None, typer.Option("--from", help="Operator account the node holds (default its first)")]
    = None,
) -> None:
    """Build every asset's tree of an epoch, add it to IPFS, publish its root in the registry, and
    write the reserves report (printed); exit code 1 when anything is short or refused."""
    import psycopg

    from dpg.por import ipfs
    from dpg.por import publish as pub
    from dpg.system.target import database_url

    settings = Settings.from_env()
    key = _por_secret(secret)
    chains = _por_chains(chains_file)
    address = registry or settings.por_registry or (pub.read_record(settings.data_dir) or {}).get("registry")
    if not address:
        raise _fail("no registry: --registry, DPG_POR_REGISTRY or dpg por deploy-registry")
    with psycopg.connect(database_url(settings)) as conn:
        e = epoch if epoch is not None else pub.latest_epoch(conn)
        if e is None:
            raise _fail("no epoch has been recorded yet (dpg por snapshot)")
        try:
            report = pub.publish_epoch(conn, e, key, chains[0], address, chains[1:],
                                       ipfs.Store.from_env(settings.data_dir), sender)
        except (pub.PublishError, ipfs.IpfsError) as err:
            raise _fail(str(err), 1) from None
    typer.echo(json.dumps(report))
    if not report["ok"]:
        raise typer.Exit(1)


@por_app.command("verify")
def por_verify(
    proof_file: Annotated[Path, typer.Argument(help="A proof file")],
    root: Annotated[str | None, typer.Option(help="Check against this root, 0x…, instead of the registry's")] = None,
    total: Annotated[str | None, typer.Option(help="Check against this total (base units), with --root")] = None,
    rpc_url: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL of the registry's chain (default "
                                                              "DPG_POR_RPC, else the recorded one)")] = None,
) -> None:
    """Check a proof against the root and total the registry on the chain holds (or --root/--total);
    exit code 0 only when it holds."""
    from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable
    from dpg.por import publish as pub
    from dpg.por import tree as por

    if (root is None) != (total is None):
        raise _fail("--root and --total go together")
    try:
        doc = json.loads(proof_file.read_text())
    except FileNotFoundError:
        raise _fail(f"{proof_file}: no such file") from None
    except ValueError:
        raise _fail(f"{proof_file}: not JSON") from None
    source = "options"
    try:
        if root is not None and total is not None:
            want_root, want_total = bytes.fromhex(root.removeprefix("0x")), int(total)
        else:
            url = _por_rpc(rpc_url, Settings.from_env())
            if not url:
                raise _fail("reading the registry needs --rpc URL (or DPG_POR_RPC), or pass --root and --total")
            rpc = Rpc(url)
            if not isinstance(doc, dict) or str(rpc.chain_id()) != str(doc.get("chainId")):
                raise por.ProofError(f"the proof is for chain {doc.get('chainId') if isinstance(doc, dict) else '?'},"
                                     f" the node at {url} is chain {rpc.chain_id()}")
            want_root, want_total, depth = pub.published(rpc, str(doc["registry"]), int(doc["epoch"]),
                                                         str(doc["asset"]))
            if depth == 0:
                raise por.ProofError(f"the registry {doc['registry']} has nothing published for epoch {doc['epoch']}"
                                     f" and {doc['asset']}")
            source = f"registry {doc['registry']} on chain {doc['chainId']}"
        got_root, got_total = por.verify(doc, want_root, want_total)
    except (RpcError, RpcUnavailable) as e:
        raise _fail(f"reading the registry: {e}", 1) from None
    except (por.ProofError, ValueError, KeyError, TypeError) as e:
        typer.echo(json.dumps({"valid": False, "reason": str(e)}))
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"valid": True, "account": doc["accountId"], "asset": doc["asset"], "epoch": doc["epoch"],
                           "balance": doc["balance"], "root": "0x" + got_root.hex(), "total": str(got_total),
                           "checkedAgainst": source}))


@por_app.command("audit")
def por_audit(
    cid: Annotated[str, typer.Argument(help="The CID of a published tree (from the registry or the report)")],
    rpc_url: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL of the registry's chain (default "
                                                              "DPG_POR_RPC, else the recorded one)")] = None,
) -> None:
    """Check a whole published tree: fetch it (local store, else the Kubo node of DPG_IPFS_API),
    recompute every node, check every value, and compare root, total and depth with the registry."""
    from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable
    from dpg.por import ipfs
    from dpg.por import publish as pub
    from dpg.por import tree as por

    settings = Settings.from_env()
    try:
        doc = json.loads(ipfs.Store.from_env(settings.data_dir).get(cid))
    except (ipfs.IpfsError, ValueError) as e:
        raise _fail(str(e), 1) from None
    problems = list(por.audit(doc)) if isinstance(doc, dict) else ["the tree file is not a JSON object"]
    out: dict[str, Any] = {"cid": cid}
    if not problems:
        out.update({"epoch": doc["epoch"], "asset": doc["asset"], "root": doc["root"], "total": doc["total"],
                    "depth": doc["depth"], "leaves": len(doc["leaves"]), "realLeaves": doc.get("leafCount")})
        url = _por_rpc(rpc_url, settings)
        if not url:
            problems.append("no registry to compare with: --rpc URL or DPG_POR_RPC")
        else:
            try:
                rpc = Rpc(url)
                if str(rpc.chain_id()) != str(doc["chainId"]):
                    problems.append(f"the tree is for chain {doc['chainId']}, the node is chain {rpc.chain_id()}")
                else:
                    root, total, depth = pub.published(rpc, doc["registry"], int(doc["epoch"]), doc["asset"])
                    if depth == 0:
                        problems.append("the registry has nothing published for this epoch and asset")
                    elif ("0x" + root.hex(), str(total), depth) != (doc["root"], str(doc["total"]), int(doc["depth"])):
                        problems.append(f"the registry holds root 0x{root.hex()}, total {total}, depth {depth}")
            except (RpcError, RpcUnavailable) as e:
                problems.append(f"reading the registry: {e}")
    out["ok"] = not problems
    out["problems"] = problems
    typer.echo(json.dumps(out))
    if problems:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
