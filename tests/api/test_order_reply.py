"""The answer to a placed order, built from its command's own events, is the order as the views
hold it once they have applied that command (seeded workloads with every order type, STP modes
and stop orders that trigger each other)."""

from __future__ import annotations

import random
from dataclasses import asdict

import pytest

from dpg.api.trading import Stamps, order_reply
from dpg.api.views import AccountViews
from dpg.core import events as E
from dpg.core.commands import PlaceOrder
from dpg.core.model import STP, OrderType, Side
from tests.core.helpers import BTC, LOT, TICK, USDT, Desk

ACCOUNTS = (1, 2, 3)
DOLLAR = 100 * TICK


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_reply_is_the_order_the_views_hold(seed: int) -> None:
    rng = random.Random(seed)
    desk = Desk()
    for acct in ACCOUNTS:
        desk.fund(acct, "BTC", 100 * BTC)
        desk.fund(acct, "USDT", 10_000_000 * USDT)
    views = AccountViews(desk.engine.markets, desk.engine.assets)
    views.load(desk.engine)
    compared = filled = 0
    for _ in range(3000):
        otype = rng.choice(list(OrderType))
        side = rng.choice((Side.BUY, Side.SELL))
        price = rng.randint(49_900, 50_100) * DOLLAR
        stop = rng.randint(49_900, 50_100) * DOLLAR if otype in (OrderType.STOP_LIMIT,
                                                             OrderType.TAKE_PROFIT_LIMIT) else 0
        cmd = PlaceOrder(rng.choice(ACCOUNTS), "BTC/USDT", side, otype, 0 if otype == OrderType.MARKET else price,
                         rng.randint(1, 50) * LOT, stp=rng.choice(list(STP)), stop_price=stop)
        events = desk.apply(cmd)
        ts = desk.seq * 1000
        views.apply(desk.seq, ts, events)
        if events[0][0] != E.ORDER_NEW:
            continue
        v = views.order(cmd.account, events[0][1])
        assert v is not None
        assert asdict(order_reply(desk.seq, ts, events)) == asdict(v)
        compared += 1
        filled += bool(v.fills)
    assert compared > 1000 and filled > 300


def test_stamps_give_the_time_of_a_recent_seq() -> None:
    stamps = Stamps(kept=3)
    for seq in range(1, 6):
        stamps.add(seq, seq * 10)
    assert [stamps.get(s) for s in range(1, 7)] == [None, None, 30, 40, 50, None]
    stamps.add(9, 90)  # a gap: what came before is forgotten
    assert (stamps.get(5), stamps.get(9)) == (None, 90)
