"""``dpg bench engine``: the in-memory engine against its peers on the same seeded order flow.

DPG runs the full engine: funds checked and locked, fees and the insurance share booked, every
balance movement emitted as an event. On the mixed flow the peers (pyorderbook,
lightmatchingengine) only match; each command is timed on its own for latency percentiles (the
same ~100 ns of timer overhead for every engine), and the whole loop for throughput.

On the book-upkeep flow (limit orders that never cross, and cancels) the compiled peers keep a book
and do not match (``book_only``): the C++ ``limit-order-book`` and nautilus_trader's Rust L3 book.
They need Python >= 3.13, so they run in ``.venv-peers`` (``make .venv-peers/.installed``) through
``peers.py``, fed the same ops. There only the loop over prebuilt commands is timed, for DPG and
the peers alike (no per-command clock), and each peer's final book is compared with DPG's.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dpg.bench.workload import Op, book_upkeep, mixed
from dpg.core import events as E
from dpg.core.commands import CancelOrder, Credit, IndexPrice, OpenAccount, PlaceOrder
from dpg.core.engine import Engine
from dpg.core.genesis import GENESIS, PERPS
from dpg.core.model import OrderType, Side

MARKET = "BTC/USDT"
TICK = 10_000  # BTC/USDT tick (0.01 USDT in units)
LOT = 10_000  # BTC/USDT lot (0.0001 BTC in units)
_TYPES = {"limit": OrderType.LIMIT, "ioc": OrderType.IOC, "market": OrderType.MARKET,
          "fok": OrderType.FOK, "post_only": OrderType.POST_ONLY}
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}


PERP = "BTC-PERP"
INDEX_EVERY = 100  # the futures mix: an index tick (a new mark price, the risk check) every 100 commands


def funded_engine(accounts: int, perps: bool = False) -> tuple[Engine, int]:
    e = Engine()
    seq = 0
    for cmd in (*GENESIS, *PERPS, IndexPrice(PERP, 50_000 * 10**6)) if perps else GENESIS:
        seq += 1
        e.apply(cmd, seq, seq)
    for a in range(1, accounts + 1):
        seq += 1
        e.apply(OpenAccount(a), seq, seq)
        for asset in ("BTC", "USDT"):
            seq += 1
            e.apply(Credit(a, asset, 10**24, f"bench-{asset}-{a}"), seq, seq)
    return e, seq


def dpg_commands(ops: list[Op], market: str = MARKET) -> Iterator[Any]:
    """The workload as DPG commands (cancels by client order id, so none waits for a reply). On a
    perpetual, an index tick at the flow's last limit price comes after every INDEX_EVERY - 1 of them."""
    account_of: dict[int, int] = {}
    last = 5_000_000
    for i, op in enumerate(ops):
        if market != MARKET and i % INDEX_EVERY == INDEX_EVERY - 1:
            yield IndexPrice(market, last * TICK)
        if op.op == "cancel":
            yield CancelOrder(account_of[op.id], market, client_id=str(op.id))
        else:
            account_of[op.id] = op.account
            last = op.price or last
            yield PlaceOrder(op.account, market, _SIDES[op.side], _TYPES[op.type], op.price * TICK,
                             op.qty * LOT, client_id=str(op.id))


def _percentiles(lat_ns: list[int]) -> dict[str, float]:
    lat_ns.sort()
    n = len(lat_ns)

    def q(p: float) -> float:
        return round(lat_ns[min(n - 1, int(p * n))] / 1000, 2)

    return {"p50_us": q(0.50), "p99_us": q(0.99), "p999_us": q(0.999)}


def _timed(name: str, ops: list[Any], step: Callable[[Any], None],
           extra: dict[str, Any] | None = None) -> dict[str, Any]:
    lat: list[int] = []
    rec = lat.append
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        t0 = clock()
        for op in ops:
            s = clock()
            step(op)
            rec(clock() - s)
        seconds = (clock() - t0) / 1e9
    finally:
        gc.enable()
    line: dict[str, Any] = {"bench": "engine", "workload": "mixed", "peer": name, "commands": len(ops),
                            "seconds": round(seconds, 4), "commands_per_s": round(len(ops) / seconds)}
    line.update(_percentiles(lat))
    line.update(extra or {})
    return line


def run_dpg(ops: list[Op], accounts: int, market: str = MARKET) -> dict[str, Any]:
    engine, seq0 = funded_engine(accounts, perps=market != MARKET)
    cmds = list(dpg_commands(ops, market))
    apply = engine.apply
    counter = iter(range(seq0 + 1, seq0 + 1 + len(cmds)))
    it = iter(cmds)
    trades = 0
    rejected = 0

    def step(_: Any) -> None:
        nonlocal trades, rejected
        seq = next(counter)
        events = apply(next(it), seq, seq)
        if events and events[0][0] == E.REJECTED:
            rejected += 1

    line = _timed("dpg" if market == MARKET else "dpg-futures", cmds, step)
    trades = engine.next_trade_id - 1
    errors = engine.conservation_errors()
    line.update({"trades": trades, "rejected": rejected, "resting": len(engine.orders),
                 "conservation_ok": not errors})
    return line


def run_pyorderbook(ops: list[Op]) -> dict[str, Any]:
    import logging

    from pyorderbook import Book, Order
    from pyorderbook import Side as PSide

    logging.getLogger("pyorderbook.book").setLevel(logging.WARNING)
    book = Book()
    live: dict[int, Any] = {}
    trades = 0
    far = {"buy": 10**12, "sell": 1}

    def step(op: Op) -> None:
        nonlocal trades
        if op.op == "cancel":
            o = live.pop(op.id, None)
            if o is not None and book.get_order(o.id) is not None:
                book.cancel(o)
            return
        side = PSide.BID if op.side == "buy" else PSide.ASK
        price = far[op.side] if op.type == "market" else op.price
        o = Order(side, "BTCUSDT", price, op.qty)
        blotter = book.match(o)
        trades += len(blotter.trades)
        if op.type == "limit":
            if book.get_order(o.id) is not None:
                live[op.id] = o
        elif book.get_order(o.id) is not None:
            book.cancel(o)  # IOC / market: the rest does not rest

    line = _timed("pyorderbook", ops, step)
    line["trades"] = trades
    return line


def run_lightmatchingengine(ops: list[Op]) -> dict[str, Any]:
    from lightmatchingengine.lightmatchingengine import LightMatchingEngine
    from lightmatchingengine.lightmatchingengine import Side as LSide

    lme = LightMatchingEngine()
    live: dict[int, Any] = {}
    trades = 0

    def step(op: Op) -> None:
        nonlocal trades
        if op.op == "cancel":
            o = live.pop(op.id, None)
            if o is not None and o.leaves_qty > 0:  # it keeps filled orders in its id map
                lme.cancel_order(o.order_id, "BTCUSDT")
            return
        side = LSide.BUY if op.side == "buy" else LSide.SELL
        price = 0 if op.type == "market" else op.price
        order, fills = lme.add_order("BTCUSDT", price, op.qty, side)
        trades += sum(1 for t in fills if t.order_id != order.order_id)
        if order.leaves_qty > 0:
            if op.type == "limit":
                live[op.id] = order
            else:
                lme.cancel_order(order.order_id, "BTCUSDT")

    line = _timed("lightmatchingengine", ops, step)
    line["trades"] = trades
    return line


PEERS_SCRIPT = Path(__file__).with_name("peers.py")
PEERS_VENV = Path(__file__).resolve().parents[3] / ".venv-peers"  # beside .venv in a source checkout
BOOK_COMMANDS = 100_000


def run_dpg_book(ops: list[Op], accounts: int) -> tuple[dict[str, Any], Engine]:
    """The book-upkeep flow through the full engine, only the loop of ``apply`` timed."""
    engine, seq0 = funded_engine(accounts)
    cmds = list(dpg_commands(ops))
    apply = engine.apply
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        t0 = clock()
        for seq, cmd in enumerate(cmds, seq0 + 1):
            apply(cmd, seq, seq)
        seconds = (clock() - t0) / 1e9
    finally:
        gc.enable()
    line = {"bench": "engine", "workload": "book-upkeep", "peer": "dpg-book-upkeep", "book_only": False,
            "commands": len(cmds), "seconds": round(seconds, 4), "commands_per_s": round(len(cmds) / seconds),
            "trades": engine.next_trade_id - 1, "resting": len(engine.orders),
            "conservation_ok": not engine.conservation_errors()}
    return line, engine


def dpg_book(engine: Engine, market: str = MARKET) -> dict[str, Any]:
    """DPG's book in the peers' terms: ``[price ticks, lots, orders]`` levels best first, and the
    order ids (the flow's, DPG's client ids) of each level in queue order."""
    book = engine.books[engine.market_by_symbol[market].index]
    out: dict[str, Any] = {}
    for name, side in (("bids", book.bids), ("asks", book.asks)):
        levels = side.sorted_levels()
        out[name] = [[lv.price, lv.qty, len(lv.live())] for lv in levels]  # ticks and lots already
        out[name + "_ids"] = [[int(o.client_id) for o in lv.live()] for lv in levels]
    return out


def peer_ops(ops: list[Op]) -> list[list[int]]:
    """The flow in peers.py's input: ``[id, buy, price, qty]`` for a limit order, ``[id]`` for a cancel."""
    return [[o.id, int(o.side == "buy"), o.price, o.qty] if o.op == "new" else [o.id] for o in ops]


class PeerProcess:
    """``peers.py`` in ``.venv-peers``, fed one flow, running the peers one round per call of
    ``round`` (the caller runs DPG between rounds: both see the same spell of a noisy machine)."""

    def __init__(self, ops: list[Op], *, rounds: int, book: bool, python: Path | None = None,
                 peers: tuple[str, ...] = ()) -> None:
        exe = python or PEERS_VENV / "bin" / "python"
        if not exe.exists():
            raise PeersUnavailable(f"{exe} not found: `make .venv-peers/.installed` builds it (needs a Python 3.13)")
        self.proc = subprocess.Popen([str(exe), "-I", str(PEERS_SCRIPT)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._send(json.dumps({"ops": peer_ops(ops), "book": book, "peers": list(peers), "rounds": rounds}))
        self._read()  # {"ready": ...}: the peers are imported

    def _send(self, text: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(text + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._failed()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self._failed()
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    def _failed(self) -> None:
        assert self.proc.stderr is not None
        code = self.proc.wait(timeout=60)
        raise PeersUnavailable(f"peers.py exited {code}: {self.proc.stderr.read().strip()[-500:]}")

    def round(self) -> list[dict[str, Any]]:
        self._send("go")
        lines = []
        while "round_done" not in (line := self._read()):
            lines.append(line)
        return lines

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class PeersUnavailable(Exception):
    """No ``.venv-peers``, or ``peers.py`` failed: the benchmark says so and goes on."""


_BOOK_ONLY = {"bench": "engine", "workload": "book-upkeep", "book_only": True}


def _skipped(why: str) -> dict[str, Any]:
    return {**_BOOK_ONLY, "peer": "limit-order-book,nautilus-trader", "skipped": why}


def run_peers(ops: list[Op], *, book: bool = False, python: Path | None = None,
              peers: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One round of the compiled book-only peers on ``ops``: a line each, or one saying why they
    were skipped."""
    try:
        proc = PeerProcess(ops, rounds=1, book=book, python=python, peers=peers)
    except PeersUnavailable as e:
        return [_skipped(str(e))]
    try:
        return [{**_BOOK_ONLY, **x} for x in proc.round()]
    finally:
        proc.close()


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def run_book_upkeep(commands: int, seed: int, accounts: int = 1000, rounds: int = 5) -> list[dict[str, Any]]:
    """DPG's full engine and the book-only peers on one book-upkeep flow, alternating for ``rounds``
    rounds (DPG, then each peer, on fresh books). Rates are the median round's; each peer's
    ``dpg_ratio`` is the median of the rounds' DPG commands/s over the peer's (above 1: DPG is
    ahead), and ``book_matches_dpg`` says its final book (levels, and order ids where the peer shows
    them) equals DPG's."""
    ops = book_upkeep(commands, seed=seed, accounts=accounts)
    try:
        proc: PeerProcess | None = PeerProcess(ops, rounds=rounds, book=True)
    except PeersUnavailable as e:
        proc, skipped = None, _skipped(str(e))
    dpg_runs: list[dict[str, Any]] = []
    peer_runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for _ in range(rounds):
            line, engine = run_dpg_book(ops, accounts)
            dpg_runs.append(line)
            if proc is not None:
                try:
                    for x in proc.round():
                        peer_runs.setdefault(x["peer"], []).append(x)
                except PeersUnavailable as e:
                    proc.close()
                    proc, skipped, peer_runs = None, _skipped(str(e)), {}
    finally:
        if proc is not None:
            proc.close()
    rates = [x["commands_per_s"] for x in dpg_runs]
    line = {**dpg_runs[-1], "seed": seed, "rounds": rounds, "commands_per_s": round(_median(rates)),
            "commands_per_s_runs": rates}
    del line["seconds"]
    lines = [line]
    if not peer_runs and proc is None:
        return [line, skipped]
    mine = dpg_book(engine)
    for name, runs in peer_runs.items():
        last = runs[-1]
        peer: dict[str, Any] = {**_BOOK_ONLY, "peer": name, "commands": last["commands"], "rounds": len(runs)}
        if "error" in last:
            lines.append({**peer, "error": last["error"]})
            continue
        theirs = [x["commands_per_s"] for x in runs]
        shown = {k: last[k] for k in ("bids", "asks", "bids_ids", "asks_ids") if k in last}
        peer.update({"commands_per_s": round(_median(theirs)), "commands_per_s_runs": theirs,
                     "dpg_ratio": round(_median([d / p for d, p in zip(rates, theirs, strict=True)]), 3),
                     "book_matches_dpg": bool(shown) and all(v == mine[k] for k, v in shown.items())})
        if name == "limit-order-book":
            line["ahead_of_cpp_book"] = peer["dpg_ratio"] > 1  # the aim: printed, not asserted
        lines.append(peer)
    return lines


def run(commands: int, seed: int, *, peers: bool = True, accounts: int = 1000,
        book_commands: int = BOOK_COMMANDS, rounds: int = 5) -> list[dict[str, Any]]:
    ops = mixed(commands, seed=seed, accounts=accounts)
    lines = [run_dpg(ops, accounts)]
    lines[0]["seed"] = seed
    lines[0]["cpus"] = os.cpu_count()
    futures = run_dpg(ops, accounts, PERP)  # the same flow on BTC-PERP: margin, positions, mark, risk
    futures["vs_spot"] = round(futures["commands_per_s"] / lines[0]["commands_per_s"], 2)
    lines.append(futures)
    if peers:
        for runner in (run_pyorderbook, run_lightmatchingengine):
            try:
                line = runner(ops)
            except ImportError as e:
                line = {"bench": "engine", "peer": runner.__name__[4:], "error": f"not installed: {e}"}
            else:
                line["dpg_speedup"] = round(lines[0]["commands_per_s"] / line["commands_per_s"], 2)
            lines.append(line)
        lines.extend(run_book_upkeep(book_commands, seed, accounts, rounds))
    return lines


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory(orders: int) -> dict[str, Any]:
    """Place ``orders`` non-crossing limit orders over 2,000 accounts and measure the RSS growth."""
    engine, seq = funded_engine(2000)
    gc.collect()
    before = _rss()
    apply = engine.apply
    t0 = time.perf_counter()
    for i in range(orders):
        seq += 1
        buy = i & 1 == 0
        ticks = 5_000_000 - 1 - (i % 5000) if buy else 5_000_000 + 1 + (i % 5000)
        apply(PlaceOrder(1 + i % 2000, MARKET, Side.BUY if buy else Side.SELL, OrderType.LIMIT, ticks * TICK, 2 * LOT),
              seq, seq)
    seconds = time.perf_counter() - t0
    gc.collect()
    grown = _rss() - before
    return {"bench": "memory", "resting_orders": len(engine.orders), "rss_bytes": grown,
            "rss_mb": round(grown / 2**20, 1), "bytes_per_order": round(grown / max(1, len(engine.orders))),
            "seconds": round(seconds, 2), "commands_per_s": round(orders / seconds)}
