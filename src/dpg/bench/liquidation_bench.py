"""``dpg bench liquidation``: the risk engine's cost per index tick.

Ten perpetuals, ``accounts`` accounts each holding an isolated long in every one of them at a
leverage from 5x to 100x (so their liquidation prices spread from about 80 % to 99.5 % of the
entry), against one house account short at 1x per market. Then a stream of index ticks: ticks that
move within what liquidates nobody, and ticks that each cross the next 1 % of one market's
liquidation prices (those positions go to the insurance fund: the book is empty). Each tick's
``Engine.apply`` is timed on its own; p50 and p99 per kind are printed, with the total positions.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from dpg.core import events as E
from dpg.core.commands import (
    Credit,
    IndexPrice,
    ListAsset,
    ListPerp,
    OpenAccount,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
)
from dpg.core.engine import Engine
from dpg.core.genesis import FUNDING_INTERVAL_MS, GENESIS, IMPACT_NOTIONAL, PERPS
from dpg.core.model import OrderType, Side

USDT = 10**6
ENTRY = 100  # every market's entry price, USDT
LOT = 10**6  # 0.01 of the 8-decimal base
HOUSE = 1


def _pct(xs: list[int], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] / 1000  # µs


def build(accounts: int, markets: int = 10) -> tuple[Engine, list[str], int]:
    e = Engine()
    seq = 0

    def do(cmd: Any) -> list[E.Event]:
        nonlocal seq
        seq += 1
        return e.apply(cmd, seq, seq)

    for cmd in GENESIS:
        do(cmd)
    tiers = PERPS[0].tiers
    symbols = []
    for i in range(markets):
        base = f"P{i}"
        do(ListAsset(base, 8))
        symbols.append(f"{base}-PERP")
        do(ListPerp(f"{base}-PERP", base, "USDT", 10_000, LOT, 0, 200, 500, tiers, FUNDING_INTERVAL_MS,
                    IMPACT_NOTIONAL))
        do(IndexPrice(f"{base}-PERP", ENTRY * USDT))
    for a in range(HOUSE, accounts + 2):
        do(OpenAccount(a))
        do(Credit(a, "USDT", 10**15 if a == HOUSE else 10**10, f"bench-{a}"))
    for s in symbols:
        do(SetMarginMode(HOUSE, s, True))
        do(SetLeverage(HOUSE, s, 1))
    for a in range(HOUSE + 1, accounts + 2):
        lev = 5 + (a * 7919) % 96  # 5x .. 100x, spread
        for s in symbols:
            do(SetMarginMode(a, s, True))
            do(SetLeverage(a, s, lev))
            do(PlaceOrder(a, s, Side.BUY, OrderType.LIMIT, ENTRY * USDT, LOT))
            do(PlaceOrder(HOUSE, s, Side.SELL, OrderType.LIMIT, ENTRY * USDT, LOT))
    return e, symbols, seq


def run(accounts: int = 10_000, ticks: int = 2_000) -> list[dict[str, Any]]:
    t0 = time.perf_counter()
    e, symbols, seq = build(accounts)
    setup_s = time.perf_counter() - t0
    positions = sum(1 for p in e.fut.positions.values() if p.size)
    gc.collect()
    gc.disable()  # as in dpg bench engine: the ticks' own cost, not the collector's
    quiet: list[int] = []
    busy: list[int] = []
    liquidated = 0
    via = [0, 0, 0]  # by the book, the insurance fund, ADL
    ts = seq
    perf = time.perf_counter_ns
    for i in range(ticks):
        s = symbols[i % len(symbols)]
        mi = e.market_by_symbol[s].index
        seq += 1
        ts += 1
        if i % 2 == 0:  # a quiet tick: within 0.3 % above the entry, under everybody's liquidation
            price = ENTRY * USDT + (i % 7) * 100_000
            t = perf()
            ev = e.apply(IndexPrice(s, price), seq, ts)
            quiet.append(perf() - t)
        else:  # the next 1 % of this market's longs by liquidation price
            keys = sorted(p.key for p in e.fut.positions.values() if p.market == mi and p.size > 0 and p.key)
            if len(keys) < 2:
                continue
            # one unit below the highest 1 % of the live keys: a key is the ceiling of its liquidation
            # price, so a mark at the key itself may leave the position just at its maintenance
            cut = keys[-max(1, positions // len(symbols) // 100)] - 1
            t = perf()
            ev = e.apply(IndexPrice(s, cut), seq, ts)
            busy.append(perf() - t)
            # back to the entry for the next quiet tick
            seq += 1
            ts += 1
            e.apply(IndexPrice(s, ENTRY * USDT), seq, ts)
        for x in ev:
            if x[0] == E.LIQUIDATION:
                liquidated += 1
                via[x[5]] += 1
    gc.enable()
    return [
        {"bench": "liquidation", "positions": positions, "accounts": accounts, "setup_s": round(setup_s, 1)},
        {"bench": "liquidation", "tick": "nothing liquidated", "ticks": len(quiet),
         "p50_us": _pct(quiet, 0.5), "p99_us": _pct(quiet, 0.99)},
        {"bench": "liquidation", "tick": "1 % of a market liquidated", "ticks": len(busy),
         "liquidated": liquidated, "per_tick": round(liquidated / max(1, len(busy)), 1),
         "via_book": via[0], "via_insurance": via[1], "via_adl": via[2],
         "p50_us": _pct(busy, 0.5), "p99_us": _pct(busy, 0.99)},
    ]
