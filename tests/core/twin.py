"""One side of the compiled/pure comparison (tests/core/test_compiled.py): run in a process of
its own (``python -m tests.core.twin``, with or without ``DPG_CORE=pure``), it applies the same
seeded journals to a new engine and prints, as one JSON object, which core ran and, per journal,
a digest of every event emitted and the state hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, cast

import dpg.core
from dpg.bench import engine_bench, liquidation_bench
from dpg.bench.workload import mixed
from dpg.core import events as E
from dpg.core import state
from dpg.core.commands import IndexPrice, PlaceOrder
from dpg.core.engine import Engine
from dpg.core.model import OrderType, Side
from tests.core import golden


def _digest(events_per_command: Iterable[list[Any]], via: list[int]) -> str:
    h = hashlib.sha256()
    for events in events_per_command:
        h.update(repr([[golden._plain(v) for v in ev] for ev in events]).encode())
        for ev in events:
            if ev[0] == E.LIQUIDATION:
                via[cast(E.Liquidation, ev).via] += 1
    return h.hexdigest()


def _run(engine: Engine, seq: int, cmds: Iterable[Any]) -> dict[str, Any]:
    def each() -> Iterable[list[Any]]:
        nonlocal seq
        for cmd in cmds:
            seq += 1
            yield engine.apply(cmd, seq, golden.TS0 + 7 * seq)
    via = [0, 0, 0]  # liquidations by the book, the insurance fund, ADL
    digest = _digest(each(), via)
    return {"events_sha256": digest, "liquidations_via": via, "state_hash": state.state_hash(engine), "seq": engine.seq,
            "trades": engine.next_trade_id - 1, "conservation_errors": engine.conservation_errors()}


def flows() -> dict[str, Any]:
    out: dict[str, Any] = {"compiled": dpg.core.compiled()}
    out["golden journal"] = golden.run_journal(golden.read_journal(golden.JOURNAL))
    for market, seed in (("BTC/USDT", 11), ("BTC-PERP", 12)):
        engine, seq = engine_bench.funded_engine(300, perps=market != "BTC/USDT")
        ops = mixed(20_000, seed=seed, accounts=300)
        out[f"{market} flow"] = _run(engine, seq, engine_bench.dpg_commands(ops, market))
    # 300 leveraged longs a market and the house's bids under them, then the index down in steps
    # until the book, the insurance fund and ADL have all taken some, then back up
    engine, symbols, seq = liquidation_bench.build(300, markets=3)
    usdt, lot, house = liquidation_bench.USDT, liquidation_bench.LOT, liquidation_bench.HOUSE
    bids = [PlaceOrder(house, s, Side.BUY, OrderType.LIMIT, p * usdt, 20 * lot) for s in symbols for p in (96, 92, 88)]
    steps = [IndexPrice(s, p * usdt) for p in (*range(100, 55, -1), *range(56, 101, 2)) for s in symbols]
    out["liquidations"] = _run(engine, seq, [*bids, *steps])
    return out


if __name__ == "__main__":
    print(json.dumps(flows(), sort_keys=True))
