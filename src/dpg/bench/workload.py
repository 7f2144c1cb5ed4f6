"""A seeded order flow in the public replay format: (op, id, account, side, type, price, qty).

Prices are ticks and quantities lots. About 60 % limit orders around a drifting mid price, 30 %
cancels of earlier orders, 10 % market or IOC orders, spread over many accounts.
"""

from __future__ import annotations

import random
from typing import NamedTuple


class Op(NamedTuple):
    op: str  # "new" | "cancel"
    id: int
    account: int
    side: str  # "buy" | "sell" ("" for cancel)
    type: str  # "limit" | "ioc" | "fok" | "post_only" | "market" ("" for cancel)
    price: int  # ticks; 0 for market and cancel
    qty: int  # lots; 0 for cancel


def mixed(n: int, seed: int = 7, accounts: int = 1000, mid: int = 5_000_000) -> list[Op]:
    rng = random.Random(seed)
    ops: list[Op] = []
    live: list[int] = []
    next_id = 1
    for _ in range(n):
        r = rng.random()
        if r < 0.30 and live:
            victim = live.pop(rng.randrange(len(live)))
            ops.append(Op("cancel", victim, 0, "", "", 0, 0))
            continue
        mid += rng.choice((-1, 0, 1))
        side = "buy" if rng.random() < 0.5 else "sell"
        account = rng.randrange(1, accounts + 1)
        qty = rng.randrange(1, 50)
        if r < 0.90:
            off = rng.randrange(1, 40)
            # mostly passive, sometimes crossing the spread by a little
            price = mid - off if side == "buy" else mid + off
            if rng.random() < 0.08:
                price = mid + 3 if side == "buy" else mid - 3
            ops.append(Op("new", next_id, account, side, "limit", price, qty))
            live.append(next_id)
        elif rng.random() < 0.5:
            ops.append(Op("new", next_id, account, side, "market", 0, qty))
        else:
            price = mid + 5 if side == "buy" else mid - 5
            ops.append(Op("new", next_id, account, side, "ioc", price, qty))
        next_id += 1
        if len(live) > 20_000:
            live = live[-10_000:]
    return ops
