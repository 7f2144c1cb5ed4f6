"""``dpg bench …``: the benchmarks, each printing JSON lines (what was measured, how many, how
long, the rate, latency percentiles)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dpg.cli.context import fail

bench_app = typer.Typer(help="Benchmarks: JSON lines, one per measurement", no_args_is_help=True)


@bench_app.command("engine")
def bench_engine(
    commands: Annotated[int, typer.Option("-n", "--commands", help="Commands in the workload")] = 300_000,
    seed: Annotated[int, typer.Option(help="Workload seed")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines (the default output)")] = True,
    peers: Annotated[bool, typer.Option(help="Also run the peers: pyorderbook and lightmatchingengine on the mixed "
                                              "flow, limit-order-book and nautilus_trader (book-only, from "
                                              ".venv-peers) on the book-upkeep flow")] = True,
    book_commands: Annotated[int, typer.Option(help="Commands in the book-upkeep flow (with --peers)")] = 100_000,
    rounds: Annotated[int, typer.Option(help="Rounds of the book-upkeep flow, DPG and the peers alternating; "
                                             "the median round is printed")] = 5,
) -> None:
    """The in-memory engine on a seeded mixed workload, with its peers on the same flow; then DPG and
    the compiled book-only peers on a book-upkeep flow (non-crossing limit orders and cancels)."""
    from dpg.bench import engine_bench

    if commands <= 0 or book_commands <= 0 or rounds <= 0:
        raise fail("--commands, --book-commands and --rounds must be positive")
    for line in engine_bench.run(commands, seed, peers=peers, book_commands=book_commands, rounds=rounds):
        typer.echo(json.dumps(line))


@bench_app.command("durable")
def bench_durable(
    commands: Annotated[int, typer.Option("-n", "--commands", help="Commands in the workload")] = 300_000,
    seed: Annotated[int, typer.Option(help="Workload seed")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines (the default output)")] = True,
    window: Annotated[int, typer.Option(help="Commands in flight (awaiting their reply) at most")] = 1024,
) -> None:
    """The same flow through the sequencer and the PostgreSQL journal, replies after commit; then again
    with the projection follower, its lag printed each second."""
    from dpg.bench import durable_bench

    def echo(line: dict[str, object]) -> None:
        typer.echo(json.dumps(line))

    durable_bench.run(commands, seed, window=window, on_line=echo)


@bench_app.command("api")
def bench_api(
    rates: Annotated[str, typer.Option(help="Comma-separated order rates per second")] = "250,500,1000,2000,3000",
    seconds: Annotated[float, typer.Option(help="Seconds at each rate")] = 3.0,
    subscribers: Annotated[int, typer.Option(help="WebSocket subscribers for the fan-out (0: none)")] = 10_000,
    exchange_src: Annotated[str | None, typer.Option(
        help="Run the exchange from this source tree (another checkout's src/) under the same load generator,"
             " to compare side by side")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines (the default output)")] = True,
) -> None:
    """Orders over HTTP at rising fixed rates, and market-data fan-out to many WebSocket clients."""
    from dpg.bench import api_bench

    try:
        chosen = [int(r) for r in rates.split(",") if r.strip()]
    except ValueError:
        raise fail("--rates must be comma-separated integers") from None
    if not chosen or min(chosen) <= 0 or seconds <= 0 or subscribers < 0:
        raise fail("rates and seconds must be positive, subscribers not negative")
    for line in api_bench.run(chosen, seconds, subscribers, exchange_src):
        typer.echo(json.dumps(line))


@bench_app.command("liquidation")
def bench_liquidation(
    accounts: Annotated[int, typer.Option(help="Accounts, each with a position in ten perpetuals")] = 10_000,
    ticks: Annotated[int, typer.Option(help="Index ticks")] = 2_000,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines (the default output)")] = True,
) -> None:
    """Time per index tick of the risk engine: ticks that liquidate nothing and ticks that liquidate 1 %."""
    from dpg.bench import liquidation_bench

    if accounts <= 0 or ticks <= 0:
        raise fail("--accounts and --ticks must be positive")
    for line in liquidation_bench.run(accounts, ticks):
        typer.echo(json.dumps(line))


@bench_app.command("por")
def bench_por(
    accounts: Annotated[int, typer.Option(help="Accounts with a balance")] = 1_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines (the default output)")] = True,
    workers: Annotated[int | None, typer.Option(help="Hashing processes (default: one per core)")] = None,
    store: Annotated[bool, typer.Option(help="Write every proof to PostgreSQL and read a sample back")] = True,
    sample: Annotated[int, typer.Option(help="Proofs read back from the store and verified")] = 1000,
    reference: Annotated[bool, typer.Option(help="Also run tree.py's in-memory build and proofs")] = False,
    holdings: Annotated[bool, typer.Option(help="Every account with an exit address and counters (version 2's "
                                                "most work); --no-holdings: none")] = True,
) -> None:
    """Seconds and peak memory to build one asset's proof-of-reserves tree and store every proof."""
    from dpg.bench import por_bench

    if accounts <= 0:
        raise fail("--accounts must be positive")
    if workers is not None and workers <= 0:
        raise fail("--workers must be positive")
    for line in por_bench.run(accounts, workers=workers, store=store, sample=sample, reference=reference,
                              holdings=holdings):
        typer.echo(json.dumps(line))


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
    tail: Annotated[int | None, typer.Option("--tail", min=0, help=(
        "Commands after the latest snapshot (default: DPG_SNAPSHOT_EVERY, the worst case)"))] = None,
) -> None:
    """Restart time: snapshot + replay of a journal of N commands on PostgreSQL."""
    from dpg.bench import durable_bench

    for line in durable_bench.restart(commands, tail=tail):
        typer.echo(json.dumps(line))
