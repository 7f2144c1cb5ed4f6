"""A perpetual whose index is stale: orders that could increase a position and margin taken out are
refused, nothing is liquidated and no stop fires, until the next index price re-checks every position."""

from __future__ import annotations

from dpg.core import events as E
from dpg.core.commands import AdjustMargin, AmendOrder, IndexPrice, IndexStale, RequestWithdrawal, SetMarginMode
from dpg.core.model import OrderFlag, OrderType
from dpg.core.state import decode, encode, state_hash
from tests.core.helpers import USDT, kinds, rejected
from tests.core.test_futures import BI, B, PerpDesk, open_pair

EP = "ETH-PERP"


def stale_desk() -> PerpDesk:
    d = PerpDesk()
    d.index(B, 50_000)
    d.fund(1, "USDT", 300 * USDT)
    d.fund(2, "USDT", 100_000 * USDT)
    d.fund(3, "USDT", 100_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)  # 5,000 at 20x on 300: liquidated below about 47,200
    return d


def test_a_stale_index_refuses_orders_that_could_increase_a_position() -> None:
    d = stale_desk()
    resting = kinds(d.perp(3, "buy", 49_000, 0.1), E.ORDER_NEW)[0].oid
    assert kinds(d.apply(IndexStale(B)), E.INDEX_STATE) == [(E.INDEX_STATE, BI, True)]
    assert d.apply(IndexStale(B)) == []  # already stale: nothing changes
    assert rejected(d.perp(3, "buy", 50_000, 0.1)) == "INDEX_STALE"
    assert rejected(d.perp(1, "buy", 50_000, 0.01)) == "INDEX_STALE"  # adds to the long
    assert rejected(d.perp(2, "buy", 50_000, 0.01)) == "INDEX_STALE"  # not reduce-only: could flip the short
    # a reduce-only order still closes
    assert kinds(d.perp(1, "sell", 50_500, 0.05, flags=OrderFlag.REDUCE_ONLY), E.ORDER_NEW)
    # a resting order is only reduced, not grown or re-priced
    assert rejected(d.apply(AmendOrder(3, B, resting, 0, 2 * 10**7))) == "INDEX_STALE"
    assert rejected(d.apply(AmendOrder(3, B, resting, 49_500 * USDT, 0))) == "INDEX_STALE"
    assert kinds(d.apply(AmendOrder(3, B, resting, 0, 5 * 10**6)), E.ORDER_AMENDED)


def test_a_stale_index_pauses_liquidations_until_a_valid_price_returns() -> None:
    d = stale_desk()
    d.apply(IndexStale(B))
    mark = d.engine.fut.perps[BI].mark
    d.perp(3, "buy", 47_000, 1)  # refused (stale): the book keeps no bid near the long's liquidation
    d.perp(1, "sell", 47_500, 0.01, flags=OrderFlag.REDUCE_ONLY)
    assert d.engine.fut.perps[BI].mark == mark
    # margin does not leave a stale position's wallet, nor an account's cross wallet
    assert rejected(d.apply(RequestWithdrawal(1, "USDT", 1 * USDT, "w-1", "ethereum:0x00"))) == "INSUFFICIENT_FUNDS"
    # the price returns far below the liquidation price: the check deferred while stale runs now
    ev = d.index(B, 47_000)
    assert kinds(ev, E.INDEX_STATE) == [(E.INDEX_STATE, BI, False)]
    assert kinds(ev, E.LIQUIDATION) and d.size(1) == 0
    assert kinds(d.perp(3, "buy", 47_000, 0.1), E.ORDER_NEW)  # orders are taken again


def test_nothing_is_liquidated_while_stale_even_when_another_market_moves() -> None:
    d = PerpDesk()
    d.index(B, 50_000)
    d.index(EP, 3_000)
    d.fund(1, "USDT", 600 * USDT)
    d.fund(2, "USDT", 100_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)  # cross: 0.1 BTC and 1 ETH long on one wallet of 600
    open_pair(d, 1, 2, 3_000, 1, market=EP)
    d.apply(IndexStale(B))
    ev = d.index(EP, 2_420)  # the ETH loss puts the cross account under maintenance
    assert not kinds(ev, E.LIQUIDATION) and d.size(1) == 1000 and d.size(1, EP) == 10_000
    # the BTC index returns: the check deferred while it was stale liquidates the account now
    ev = d.index(B, 50_000)
    assert kinds(ev, E.LIQUIDATION) and d.size(1) == 0 and d.size(1, EP) == 0


def test_isolated_margin_is_not_removed_while_stale() -> None:
    d = PerpDesk()
    d.index(B, 50_000)
    d.fund(1, "USDT", 10_000 * USDT)
    d.fund(2, "USDT", 10_000 * USDT)
    d.apply(SetMarginMode(1, B, True))
    open_pair(d, 1, 2, 50_000, 0.1)
    d.apply(AdjustMargin(1, B, 500 * USDT))
    d.apply(IndexStale(B))
    assert rejected(d.apply(AdjustMargin(1, B, -100 * USDT))) == "INDEX_STALE"
    assert kinds(d.apply(AdjustMargin(1, B, 100 * USDT)), E.POSITION)  # adding is fine
    d.index(B, 50_000)
    assert kinds(d.apply(AdjustMargin(1, B, -100 * USDT)), E.POSITION)


def test_a_stop_does_not_fire_on_a_stale_mark() -> None:
    d = stale_desk()
    d.perp(1, "sell", 0, 0.1, otype=OrderType.STOP_MARKET, stop=49_000, flags=OrderFlag.REDUCE_ONLY)
    d.apply(IndexStale(B))
    d.perp(3, "buy", 48_000, 1)  # a bid far below: a taker could trade there, the mark stays
    assert d.size(1) == 1000
    ev = d.index(B, 48_900)
    assert kinds(ev, E.ORDER_TRIGGERED)


def test_the_stale_state_is_in_the_snapshot_and_a_state_without_it_keeps_its_hash() -> None:
    d = stale_desk()
    before = state_hash(d.engine)
    assert len(d.engine.fut.canonical()) == 3  # no stale perpetual: the form (and so the hash) as before
    d.apply(IndexStale(B))
    copy = decode(encode(d.engine))
    assert state_hash(copy) == state_hash(d.engine) != before
    assert copy.fut.perps[BI].stale and copy.fut.stale == 1
    for eng in (d.engine, copy):
        ev = eng.apply(IndexPrice(B, 47_000 * USDT), 10_000, 10_000_000)
        assert kinds(ev, E.LIQUIDATION)
    assert state_hash(copy) == state_hash(d.engine)
    assert not d.engine.fut.stale and len(d.engine.fut.canonical()) == 3
