"""Golden fixtures of the engine's behaviour: seeded replay workloads and a seeded journal.

``python -m tests.core.golden`` writes tests/core/fixtures/ from the code as it is; test_golden.py
regenerates and compares, so a refactoring of the core that changes a trade, a resting order, an
event or the state hash fails there.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dpg.core import state
from dpg.core.commands import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    CompleteWithdrawal,
    Credit,
    FailWithdrawal,
    ListAsset,
    ListMarket,
    MarkEpoch,
    OpenAccount,
    PlaceOrder,
    RequestWithdrawal,
    Transfer,
)
from dpg.core.engine import Engine
from dpg.core.genesis import GENESIS
from dpg.core.model import STP, OrderType, Side
from dpg.core.public_replay import replay
from dpg.journal import codec

FIXTURES = Path(__file__).parent / "fixtures"
REPLAY_SEEDS = (11, 23, 37)
REPLAY_ORDERS = 100_000
JOURNAL_SEED = 5
JOURNAL_COMMANDS = 30_000
TS0 = 1_780_000_000_000


# ---------------------------------------------------------------- the public matching replay


def replay_rows(seed: int, n: int = REPLAY_ORDERS) -> Iterator[dict[str, str]]:
    """``n`` rows of one market's order log: limit, IOC, FOK, post-only and market orders around a
    drifting mid, and cancels of earlier ids (some already finished or unknown)."""
    rng = random.Random(seed)
    mid = 10_000
    live: list[int] = []
    for i in range(1, n + 1):
        r = rng.random()
        if r < 0.28 and live:
            victim = live.pop(rng.randrange(len(live))) if rng.random() < 0.9 else rng.randrange(1, i + 5)
            yield {"op": "cancel", "id": str(victim), "account": "", "side": "", "type": "", "price": "", "qty": ""}
            continue
        mid = max(100, mid + rng.choice((-1, 0, 0, 1)))
        side = "buy" if rng.random() < 0.5 else "sell"
        sign = 1 if side == "buy" else -1
        t = rng.random()
        typ = ("limit" if t < 0.70 else "post_only" if t < 0.78 else "ioc" if t < 0.86 else "fok" if t < 0.93
               else "market")
        off = rng.randrange(-4, 30)  # negative: crossing the spread
        price = "" if typ == "market" else str(mid - sign * off)
        qty = str(rng.choice((1, 1, 2, 3, 5, 8, 13, 40, 100)))
        yield {"op": "new", "id": str(i), "account": str(rng.randrange(1, 60)), "side": side, "type": typ,
               "price": price, "qty": qty}
        if typ in ("limit", "post_only"):
            live.append(i)
        if len(live) > 5000:
            del live[:2500]


def replay_tape(seed: int) -> tuple[bytes, bytes]:
    """The trade tape and the final book of one seeded workload, as the CLI writes them (CSV)."""
    result = replay(replay_rows(seed))
    trades = ["taker_id,maker_id,price,qty"]
    trades.extend(f"{t.taker_id},{t.maker_id},{t.price},{t.qty}" for t in result.trades)
    book = ["id,side,price,remaining"]
    book.extend(f"{r.id},{r.side},{r.price},{r.remaining}" for r in result.book())
    return ("\n".join(trades) + "\n").encode(), ("\n".join(book) + "\n").encode()


def replay_paths(seed: int) -> tuple[Path, Path]:
    return FIXTURES / f"replay-{seed}-trades.csv.gz", FIXTURES / f"replay-{seed}-book.csv.gz"


# ---------------------------------------------------------------- the journal


MARKETS = ("BTC/USDT", "ETH/USDT", "BTC/USD", "XRP/USDT")
LOTS = {"BTC/USDT": 10_000, "ETH/USDT": 10**14, "BTC/USD": 10_000, "XRP/USDT": 10**5}
ASSETS = ("BTC", "ETH", "USDT", "USD", "XRP")
TICK = 10_000
MID = 2_000_000  # ticks: 20,000.00 quote


def journal_commands(seed: int = JOURNAL_SEED, n: int = JOURNAL_COMMANDS) -> list[Any]:
    """A command stream covering every kind: listings, accounts, credits, transfers, every order
    type and STP mode, amends, cancels, cancel-all, withdrawals, epochs, and rejected variants."""
    rng = random.Random(seed)
    cmds: list[Any] = list(GENESIS)
    cmds += [ListAsset("XRP", 6), ListAsset("XRP", 6), ListAsset("bad", 6), ListAsset("ZZZ", 40),
             ListMarket("XRP/USDT", "XRP", "USDT", 100, 10**5, 1_000_000, 500, 700),
             ListMarket("XRP/USDT", "XRP", "USDT", 100, 10**5, 1_000_000, 500, 700),
             ListMarket("XRP/BTC", "XRP", "NOPE", 1, 1, 0, 0, 0), ListMarket("XRP-USD", "XRP", "USD", 1, 1, 0, 0, 0),
             ListMarket("XRP/USD", "XRP", "USD", 0, 1, 0, 0, 0)]
    accounts = list(range(1, 31))
    for a in accounts:
        cmds.append(OpenAccount(a))
    cmds += [OpenAccount(1), OpenAccount(0), OpenAccount(1 << 63), Credit(99, "BTC", 5, "to-unopened")]
    big = {"BTC": 10**10, "ETH": 10**21, "USDT": 10**13, "USD": 10**13, "XRP": 10**13}
    for a in accounts:
        for asset in ASSETS:
            cmds.append(Credit(a, asset, big[asset] + rng.randrange(1000), f"genesis-{a}-{asset}"))
    cmds.append(Credit(1, "BTC", 1, "genesis-1-BTC"))  # duplicate reference
    next_account = 31
    oid_guess = 1
    withdrawals: list[str] = []
    epoch = 0
    mid = MID
    for i in range(n):
        mid += rng.choice((-1, 0, 1))
        r = rng.random()
        acct = rng.choice(accounts) if rng.random() < 0.99 else rng.choice((0, -5, 10**6))
        market = rng.choice(MARKETS)
        lot = LOTS[market]
        tick = 100 if market == "XRP/USDT" else TICK
        side = rng.choice((Side.BUY, Side.SELL))
        sign = 1 if side == Side.BUY else -1
        stp = rng.choice(list(STP))
        cid = f"c{i}" if rng.random() < 0.3 else (f"c{rng.randrange(max(1, i))}" if rng.random() < 0.02 else "")
        centre = mid if tick == TICK else 5000
        price = (centre - sign * rng.randrange(-3, 25)) * tick
        qty = rng.choice((1, 2, 3, 5, 10, 40, 200)) * lot
        if rng.random() < 0.01:
            price += 1  # off tick
        if rng.random() < 0.01:
            qty += 1  # off lot
        if r < 0.40:
            otype = rng.choice((OrderType.LIMIT, OrderType.LIMIT, OrderType.LIMIT, OrderType.POST_ONLY,
                                OrderType.IOC, OrderType.FOK))
            cmds.append(PlaceOrder(acct, market, side, otype, price, qty, client_id=cid, stp=stp))
        elif r < 0.45:
            if rng.random() < 0.3 and side == Side.BUY:
                cmds.append(PlaceOrder(acct, market, side, OrderType.MARKET, 0, 0,
                                       quote_qty=rng.randrange(1, 10**10), client_id=cid, stp=stp))
            else:
                cmds.append(PlaceOrder(acct, market, side, OrderType.MARKET, 0, qty, client_id=cid, stp=stp))
        elif r < 0.50:
            otype = rng.choice((OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT))
            stop = price + rng.randrange(-20, 21) * tick
            cmds.append(PlaceOrder(acct, market, side, otype, price, qty, client_id=cid, stp=stp, stop_price=stop))
        elif r < 0.64:
            if rng.random() < 0.2 and cid:
                cmds.append(CancelOrder(acct, market, client_id=f"c{rng.randrange(max(1, i))}"))
            else:
                cmds.append(CancelOrder(acct, market, rng.randrange(1, oid_guess + 10)))
        elif r < 0.66:
            cmds.append(CancelAll(acct, market))
        elif r < 0.74:
            cmds.append(AmendOrder(acct, market, rng.randrange(1, oid_guess + 10),
                                   price=rng.choice((0, price)), qty=rng.choice((0, qty, lot))))
        elif r < 0.78:
            cmds.append(Transfer(acct, rng.choice([*accounts, next_account + 3]), rng.choice((*ASSETS, "NOPE")),
                                 rng.choice((1, 10**6, 10**9, 10**30))))
        elif r < 0.81:
            cmds.append(Credit(rng.choice([*accounts, next_account + 3]), rng.choice(ASSETS), rng.randrange(1, 10**12),
                               f"ref-{rng.randrange(10**6)}"))
        elif r < 0.85:
            wid = f"w{i}" if rng.random() < 0.9 else rng.choice(withdrawals or ["w-none"])
            withdrawals.append(wid)
            cmds.append(RequestWithdrawal(acct, rng.choice(ASSETS), rng.choice((1, 10**6, 10**8, 10**40)), wid,
                                          "eth:0xabc"))
        elif r < 0.90:
            wid = rng.choice(withdrawals or ["w-none"])
            if rng.random() < 0.5:
                cmds.append(CompleteWithdrawal(wid, f"eth:0x{i:x}"))
            else:
                cmds.append(FailWithdrawal(wid, "chain reverted"))
        elif r < 0.91:
            epoch += rng.choice((1, 1, 0, -1))
            cmds.append(MarkEpoch(epoch))
        elif r < 0.92:
            cmds.append(OpenAccount(next_account))
            accounts.append(next_account)
            next_account += 1
        else:
            # a resting order far from the mid keeps the books deep
            far = (centre - sign * rng.randrange(30, 200)) * tick
            cmds.append(PlaceOrder(acct, market, side, OrderType.LIMIT, far, qty, client_id=cid, stp=stp))
        oid_guess += 1 if r < 0.50 or r >= 0.92 else 0
    return cmds


def write_journal(path: Path, cmds: list[Any]) -> None:
    """Each command as the journal stores its payload (codec.encode), length-prefixed, gzip'd."""
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        for cmd in cmds:
            payload = codec.encode(cmd)
            f.write(struct.pack(">I", len(payload)))
            f.write(payload)


def read_journal(path: Path) -> list[Any]:
    data = gzip.decompress(path.read_bytes())
    cmds = []
    at = 0
    while at < len(data):
        (size,) = struct.unpack_from(">I", data, at)
        at += 4
        cmds.append(codec.decode(data[at : at + size]))
        at += size
    return cmds


def _plain(v: Any) -> Any:
    if hasattr(v, "KIND"):  # a listing's command (MarketListed carries it): in the journal's encoding
        return codec.encode(v).hex()
    return v if isinstance(v, bool | str) or v is None else int(v)


def run_journal(cmds: list[Any]) -> dict[str, Any]:
    """Apply the commands to a new engine: the state hash and a digest of every event emitted."""
    engine = Engine()
    digest = hashlib.sha256()
    kinds: dict[str, int] = {}
    for seq, cmd in enumerate(cmds, start=1):
        events = engine.apply(cmd, seq, TS0 + 7 * seq)
        digest.update(repr([[_plain(v) for v in ev] for ev in events]).encode())
        kinds[type(cmd).__name__] = kinds.get(type(cmd).__name__, 0) + 1
    return {"commands": len(cmds), "state_hash": state.state_hash(engine), "events_sha256": digest.hexdigest(),
            "trades": engine.next_trade_id - 1, "conservation_errors": len(engine.conservation_errors()),
            "kinds": dict(sorted(kinds.items()))}


JOURNAL = FIXTURES / "journal.bin.gz"
JOURNAL_HASH = FIXTURES / "journal-hash.json"


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    for seed in REPLAY_SEEDS:
        trades, book = replay_tape(seed)
        for path, body in zip(replay_paths(seed), (trades, book), strict=True):
            with gzip.GzipFile(path, "wb", mtime=0) as f:
                f.write(body)
        print(seed, trades.count(b"\n") - 1, "trades", book.count(b"\n") - 1, "resting")
    cmds = journal_commands()
    write_journal(JOURNAL, cmds)
    assert read_journal(JOURNAL) == cmds
    result = run_journal(cmds)
    JOURNAL_HASH.write_text(json.dumps(result, indent=1) + "\n")
    print(result)


if __name__ == "__main__":
    main()
