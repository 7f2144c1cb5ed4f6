"""The compiled book-only peers of ``dpg bench engine``: the C++ ``limit-order-book`` and
nautilus_trader's Rust L3 ``OrderBook``, run on a book-upkeep flow in their own environment.

Run by ``.venv-peers/bin/python`` (Python >= 3.13, which these packages need) as a script: it
imports only the standard library and the peer packages, never the rest of DPG. Its first line of
standard input is the request, ``{"ops": [...], "peers": [...], "rounds": 1, "book": false}``, one op
a list: ``[id, buy, price, qty]`` places a limit order (``buy`` 1 or 0, price in ticks, qty in lots),
``[id]`` cancels one. It imports the peers, prints ``{"ready": ...}``, then runs one round per line
it reads (so the caller can run DPG between rounds, alternating on a noisy machine): each peer on a
fresh book, one JSON line per peer, then ``{"round_done": r}``. Each peer's calls are built before
the clock starts and only the loop of calls is timed (as DPG's loop of prebuilt commands is). With
``"book": true`` the last round's lines also hold the final book: ``bids`` and ``asks``, best price
first, as ``[price, lots, orders]`` levels, and for nautilus the resting order ids of each level in
queue order.
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

Calls = list[tuple[Callable[..., Any], tuple[Any, ...]]]


def _loop(calls: Calls) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for call, args in calls:
            call(*args)
        return (time.perf_counter_ns() - t0) / 1e9
    finally:
        gc.enable()


def limit_order_book(ops: list[list[int]], book: bool) -> dict[str, Any]:
    from limit_order_book import LimitOrderBook

    lob = LimitOrderBook()
    limit, cancel = lob.limit, lob.cancel
    calls: Calls = [(limit, (op[1] == 1, op[0], op[3], op[2])) if len(op) == 4 else (cancel, (op[0],)) for op in ops]
    line: dict[str, Any] = {"seconds": _loop(calls)}
    if book:
        prices = sorted({op[2] for op in ops if len(op) == 4})
        line["bids"] = [[p, lob.volume_buy(p), lob.count_at(p)] for p in reversed(prices) if lob.volume_buy(p)]
        line["asks"] = [[p, lob.volume_sell(p), lob.count_at(p)] for p in prices if lob.volume_sell(p)]
        line["orders"] = lob.count()
    return line


def nautilus_trader(ops: list[list[int]], book: bool) -> dict[str, Any]:
    from nautilus_trader.model.book import OrderBook
    from nautilus_trader.model.data import BookOrder
    from nautilus_trader.model.enums import BookType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.objects import Price, Quantity

    nb = OrderBook(InstrumentId.from_str("BTCUSDT.DPG"), BookType.L3_MBO)
    add, delete = nb.add, nb.delete
    placed: dict[int, Any] = {}
    calls: Calls = []
    for op in ops:
        if len(op) == 4:
            order = placed[op[0]] = BookOrder(OrderSide.BUY if op[1] == 1 else OrderSide.SELL, Price(op[2], 0),
                                              Quantity(op[3], 0), op[0])
            calls.append((add, (order, 0)))
        else:
            calls.append((delete, (placed[op[0]], 0)))  # it deletes by the order it was given
    line: dict[str, Any] = {"seconds": _loop(calls)}
    if book:
        for name, levels in (("bids", nb.bids()), ("asks", nb.asks())):
            line[name] = [[int(lv.price.as_double()), int(lv.size()), len(lv.orders())] for lv in levels]
            line[name + "_ids"] = [[o.order_id for o in lv.orders()] for lv in levels]
        line["orders"] = sum(lv[2] for lv in line["bids"] + line["asks"])
    return line


PEERS: dict[str, Callable[[list[list[int]], bool], dict[str, Any]]] = {
    "limit-order-book": limit_order_book,
    "nautilus-trader": nautilus_trader,
}


MODULES = {"limit-order-book": "limit_order_book", "nautilus-trader": "nautilus_trader.model.book"}


def main() -> None:
    request = json.loads(sys.stdin.readline())
    ops: list[list[int]] = request["ops"]
    rounds = int(request.get("rounds", 1))
    missing: dict[str, str] = {}
    names = request.get("peers") or list(PEERS)
    for name in names:  # imported before the rounds, so no round pays for it
        try:
            importlib.import_module(MODULES[name])
        except ImportError as e:
            missing[name] = f"not installed: {e}"
    print(json.dumps({"ready": names, "python": sys.version.split()[0]}), flush=True)
    for r in range(rounds):
        if not sys.stdin.readline():
            return  # the caller went away
        for name in names:
            line: dict[str, Any]
            if name in missing:
                line = {"error": missing[name]}
            else:
                line = PEERS[name](ops, bool(request.get("book")) and r == rounds - 1)
                line["commands_per_s"] = round(len(ops) / line["seconds"])
                line["seconds"] = round(line["seconds"], 4)
            print(json.dumps({"peer": name, "round": r, "commands": len(ops), **line}), flush=True)
        print(json.dumps({"round_done": r}), flush=True)


if __name__ == "__main__":
    main()
