"""Seeded order flows in the public replay format: (op, id, account, side, type, price, qty).

Prices are ticks and quantities lots. ``mixed``: about 60 % limit orders around a drifting mid
price, 30 % cancels of earlier orders, 10 % market or IOC orders, spread over many accounts.
``book_upkeep``: limit orders that never cross and cancels, for the peers that keep a book but do
not match.
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


def book_upkeep(n: int, seed: int = 7, accounts: int = 1000, mid: int = 5_000_000, depth: int = 100) -> list[Op]:
    """Book upkeep without matching: 75 % new limit orders, 25 % cancels of a random resting one, on
    one book. Bids rest 1..depth-1 ticks under ``mid`` and asks as far over it, so no order crosses:
    the flow a book that does not match (a market-data L3 book) can run alike."""
    rng = random.Random(seed)
    ops: list[Op] = []
    live: list[int] = []
    next_id = 1
    for _ in range(n):
        if live and rng.random() < 0.25:
            i = rng.randrange(len(live))
            live[i], live[-1] = live[-1], live[i]
            ops.append(Op("cancel", live.pop(), 0, "", "", 0, 0))
            continue
        side = "buy" if rng.random() < 0.5 else "sell"
        off = rng.randrange(1, depth)
        price = mid - off if side == "buy" else mid + off
        # 2..49 lots: every order is over the market's minimum notional, so DPG rests each of them
        ops.append(Op("new", next_id, rng.randrange(1, accounts + 1), side, "limit", price, rng.randrange(2, 50)))
        live.append(next_id)
        next_id += 1
    return ops
