"""Unit tests of the engine: order types, fees, locks, amend, cancel, STP, accounts, transfers, bad input."""

from __future__ import annotations

import pytest

from dpg.core import events as E
from dpg.core import state
from dpg.core.commands import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    Credit,
    IndexPrice,
    OpenAccount,
    PlaceOrder,
    Transfer,
)
from dpg.core.engine import ADOPTED, Engine
from dpg.core.genesis import GENESIS, PERPS
from dpg.core.model import FEE_ACCOUNT, INSURANCE_ACCOUNT, PPM, STP, OrderStatus, OrderType, Side
from dpg.core.state import canonical
from tests.core.helpers import BTC, LOT, TICK, USDT, Desk, M, kinds, oid, rejected, trades

PRICE = 5_000_000  # ticks: 50,000.00 USDT


@pytest.fixture
def desk() -> Desk:
    d = Desk()
    for acct in (1, 2, 3, 4):
        d.fund(acct, "USDT", 1_000_000 * USDT)
        d.fund(acct, "BTC", 10 * BTC)
    return d


def test_limit_rests_and_locks_exact_notional(desk: Desk) -> None:
    ev = desk.order(1, "buy", PRICE, 10)  # 0.001 BTC at 50,000 = 50 USDT
    assert not trades(ev)
    assert desk.balance(1, "USDT") == (1_000_000 * USDT - 50 * USDT, 50 * USDT)
    ev = desk.order(2, "sell", PRICE + 1, 3)
    assert desk.balance(2, "BTC") == (10 * BTC - 3 * LOT, 3 * LOT)
    assert not desk.engine.conservation_errors()


def test_trade_at_maker_price_with_fees_and_insurance_share(desk: Desk) -> None:
    maker = oid(desk.order(1, "sell", PRICE, 10))
    ev = desk.order(2, "buy", PRICE + 100, 10)  # taker pays less than its limit
    taker = oid(ev)
    assert trades(ev) == [(taker, maker, PRICE * TICK, 10 * LOT)]
    notional = PRICE * 10 * 1  # unit = 1 quote unit per lot-tick
    qty = 10 * LOT
    m = desk.engine.market_by_symbol[M]
    taker_fee = -(-qty * m.taker_fee_ppm // PPM)  # buyer pays in BTC, rounded up
    maker_fee = -(-notional * m.maker_fee_ppm // PPM)  # seller pays in USDT, rounded up
    assert desk.balance(2, "BTC") == (10 * BTC + qty - taker_fee, 0)
    # the price improvement (limit - trade price) is released, not kept locked
    assert desk.balance(2, "USDT") == (1_000_000 * USDT - notional, 0)
    assert desk.balance(1, "USDT") == (1_000_000 * USDT + notional - maker_fee, 0)
    assert desk.balance(1, "BTC") == (10 * BTC - qty, 0)
    # 10 % of every fee to the insurance fund, the rest to the fee account
    assert desk.balance(INSURANCE_ACCOUNT, "BTC")[0] == taker_fee // 10
    assert desk.balance(FEE_ACCOUNT, "BTC")[0] == taker_fee - taker_fee // 10
    assert desk.balance(INSURANCE_ACCOUNT, "USDT")[0] == maker_fee // 10
    assert desk.balance(FEE_ACCOUNT, "USDT")[0] == maker_fee - maker_fee // 10
    assert kinds(ev, E.ORDER_DONE)[-1][1:3] == (taker, OrderStatus.FILLED)
    assert not desk.engine.orders
    assert not desk.engine.conservation_errors()


def test_price_time_priority(desk: Desk) -> None:
    a = oid(desk.order(1, "sell", PRICE + 1, 5))
    b = oid(desk.order(2, "sell", PRICE, 5))  # better price, later
    c = oid(desk.order(3, "sell", PRICE, 5))  # same price as b, later than b
    ev = desk.order(4, "buy", PRICE + 1, 12)
    t = oid(ev)
    assert trades(ev) == [
        (t, b, PRICE * TICK, 5 * LOT), (t, c, PRICE * TICK, 5 * LOT), (t, a, (PRICE + 1) * TICK, 2 * LOT),
    ]


def test_ioc_fills_what_it_can_and_expires_the_rest(desk: Desk) -> None:
    maker = oid(desk.order(1, "sell", PRICE, 4))
    ev = desk.order(2, "buy", PRICE, 10, OrderType.IOC)
    taker = oid(ev)
    assert trades(ev) == [(taker, maker, PRICE * TICK, 4 * LOT)]
    done = kinds(ev, E.ORDER_DONE)[-1]
    assert done[1:4] == (taker, OrderStatus.EXPIRED, 6 * LOT)
    assert desk.balance(2, "USDT")[1] == 0  # nothing left locked
    assert taker not in desk.engine.orders
    assert not desk.engine.conservation_errors()


def test_fok_is_all_or_nothing(desk: Desk) -> None:
    desk.order(1, "sell", PRICE, 4)
    desk.order(3, "sell", PRICE + 2, 4)
    before = canonical(desk.engine)[3:]
    assert rejected(desk.order(2, "buy", PRICE + 1, 5, OrderType.FOK)) == "FOK_NOT_FILLABLE"
    assert canonical(desk.engine)[3:] == before
    ev = desk.order(2, "buy", PRICE + 2, 8, OrderType.FOK)
    assert sum(t[3] for t in trades(ev)) == 8 * LOT


def test_fok_counts_own_orders_as_the_end_of_the_fill(desk: Desk) -> None:
    desk.order(2, "sell", PRICE, 4)  # its own order comes first
    desk.order(1, "sell", PRICE, 10)
    assert rejected(desk.order(2, "buy", PRICE, 5, OrderType.FOK)) == "FOK_NOT_FILLABLE"
    # under expire-maker its own order would be cancelled, and the rest can fill it
    ev = desk.order(2, "buy", PRICE, 5, OrderType.FOK, stp=STP.EXPIRE_MAKER)
    assert sum(t[3] for t in trades(ev)) == 5 * LOT


def test_post_only_never_takes(desk: Desk) -> None:
    desk.order(1, "sell", PRICE, 4)
    before = canonical(desk.engine)[3:]
    assert rejected(desk.order(2, "buy", PRICE, 1, OrderType.POST_ONLY)) == "POST_ONLY_WOULD_TAKE"
    assert canonical(desk.engine)[3:] == before
    ev = desk.order(2, "buy", PRICE - 1, 2, OrderType.POST_ONLY)
    assert not trades(ev) and oid(ev) in desk.engine.orders


def test_market_sell_by_base_quantity(desk: Desk) -> None:
    desk.order(1, "buy", PRICE, 3)
    desk.order(3, "buy", PRICE - 10, 3)
    ev = desk.order(2, "sell", 0, 5, OrderType.MARKET)
    assert [(t[2] // TICK, t[3] // LOT) for t in trades(ev)] == [(PRICE, 3), (PRICE - 10, 2)]
    assert desk.balance(2, "BTC") == (10 * BTC - 5 * LOT, 0)


def test_market_buy_by_quote_amount_spends_at_most_the_amount(desk: Desk) -> None:
    desk.order(1, "sell", PRICE, 3)  # 15 USDT for 3 lots
    desk.order(3, "sell", PRICE + 100, 10)
    spend = 30 * USDT
    ev = desk.apply(PlaceOrder(2, M, Side.BUY, OrderType.MARKET, quote_qty=spend))
    spent = sum(t[5] for t in kinds(ev, E.TRADE))
    # 3 lots at 50,000.00 (5 USDT each), then only 2 whole lots at 50,001.00 (5.0001 USDT each)
    assert spent == 3 * PRICE + 2 * (PRICE + 100)
    assert desk.balance(2, "USDT") == (1_000_000 * USDT - spent, 0)
    assert kinds(ev, E.ORDER_DONE)[-1][2] == OrderStatus.FILLED
    assert not desk.engine.conservation_errors()


def test_market_buy_by_base_quantity_unlocks_the_unspent_budget(desk: Desk) -> None:
    desk.order(1, "sell", PRICE, 3)
    ev = desk.order(2, "buy", 0, 5, OrderType.MARKET)
    assert sum(t[3] for t in trades(ev)) == 3 * LOT
    assert kinds(ev, E.ORDER_DONE)[-1][1:4] == (oid(ev), OrderStatus.EXPIRED, 2 * LOT)
    assert desk.balance(2, "USDT") == (1_000_000 * USDT - 3 * PRICE, 0)
    assert not desk.engine.conservation_errors()


def test_market_order_on_an_empty_side_is_rejected(desk: Desk) -> None:
    assert rejected(desk.order(2, "buy", 0, 5, OrderType.MARKET)) == "NO_LIQUIDITY"


def test_cancel_releases_exactly_what_was_locked(desk: Desk) -> None:
    o = oid(desk.order(1, "buy", PRICE, 7))
    desk.order(2, "sell", PRICE, 2)  # partial fill
    ev = desk.apply(CancelOrder(1, M, o))
    assert kinds(ev, E.ORDER_DONE)[0][1:4] == (o, OrderStatus.CANCELED, 5 * LOT)
    assert desk.balance(1, "USDT")[1] == 0
    assert not desk.engine.conservation_errors()
    assert rejected(desk.apply(CancelOrder(1, M, o))) == "ORDER_NOT_FOUND"


def test_cancel_by_client_id_and_cancel_all(desk: Desk) -> None:
    desk.order(1, "buy", PRICE - 1, 2, client_id="a")
    desk.order(1, "buy", PRICE - 2, 2, client_id="b")
    desk.order(1, "sell", PRICE + 2, 1, client_id="c")
    other = oid(desk.order(2, "buy", PRICE - 3, 2))
    ev = desk.apply(CancelOrder(1, M, client_id="a"))
    assert kinds(ev, E.ORDER_DONE)[0][2] == OrderStatus.CANCELED
    ev = desk.apply(CancelAll(1, M))
    assert len(kinds(ev, E.ORDER_DONE)) == 2
    assert list(desk.engine.orders) == [other]
    assert desk.balance(1, "USDT")[1] == 0 and desk.balance(1, "BTC")[1] == 0


def test_another_users_order_cannot_be_cancelled_or_amended(desk: Desk) -> None:
    o = oid(desk.order(1, "buy", PRICE, 1))
    before = canonical(desk.engine)[3:]
    assert rejected(desk.apply(CancelOrder(2, M, o))) == "ORDER_NOT_FOUND"
    assert rejected(desk.apply(AmendOrder(2, M, o, qty=1 * LOT))) == "ORDER_NOT_FOUND"
    assert canonical(desk.engine)[3:] == before


def test_duplicate_client_order_id_is_rejected_never_executed_twice(desk: Desk) -> None:
    desk.order(1, "sell", PRICE, 10)
    ev1 = desk.order(2, "buy", PRICE, 1, client_id="retry-1")
    assert trades(ev1)
    before = canonical(desk.engine)[3:]
    assert rejected(desk.order(2, "buy", PRICE, 1, client_id="retry-1")) == "DUPLICATE_CLIENT_ORDER_ID"
    assert canonical(desk.engine)[3:] == before
    # another account may use the same client id
    assert oid(desk.order(3, "buy", PRICE - 5, 2, client_id="retry-1"))


def test_amend_reducing_quantity_keeps_priority(desk: Desk) -> None:
    first = oid(desk.order(1, "sell", PRICE, 10))
    second = oid(desk.order(2, "sell", PRICE, 10))
    ev = desk.apply(AmendOrder(1, M, first, qty=4 * LOT))
    assert kinds(ev, E.ORDER_AMENDED)[0][5] is False
    assert desk.balance(1, "BTC") == (10 * BTC - 4 * LOT, 4 * LOT)
    t = desk.order(3, "buy", PRICE, 5)
    assert trades(t) == [(oid(t), first, PRICE * TICK, 4 * LOT), (oid(t), second, PRICE * TICK, 1 * LOT)]
    assert not desk.engine.conservation_errors()


def test_amend_larger_quantity_or_new_price_loses_priority(desk: Desk) -> None:
    first = oid(desk.order(1, "sell", PRICE, 2))
    second = oid(desk.order(2, "sell", PRICE, 2))
    ev = desk.apply(AmendOrder(1, M, first, qty=3 * LOT))
    assert kinds(ev, E.ORDER_AMENDED)[0][5] is True
    t = desk.order(3, "buy", PRICE, 2)
    assert trades(t) == [(oid(t), second, PRICE * TICK, 2 * LOT)]
    # a price change re-queues too, and funds follow the new price
    third = oid(desk.order(2, "buy", PRICE - 10, 2))
    desk.order(3, "buy", PRICE - 5, 2)
    desk.apply(AmendOrder(2, M, third, price=(PRICE - 5) * TICK))
    assert desk.balance(2, "USDT")[1] == 2 * (PRICE - 5)
    t = desk.order(1, "sell", PRICE - 5, 2)
    assert trades(t)[0][1] != third
    assert not desk.engine.conservation_errors()


def test_amend_to_a_crossing_price_trades(desk: Desk) -> None:
    maker = oid(desk.order(1, "sell", PRICE, 2))
    bid = oid(desk.order(2, "buy", PRICE - 5, 2))
    ev = desk.apply(AmendOrder(2, M, bid, price=PRICE * TICK))
    assert trades(ev) == [(bid, maker, PRICE * TICK, 2 * LOT)]
    assert not desk.engine.orders and not desk.engine.conservation_errors()


def test_amend_below_filled_quantity_is_rejected(desk: Desk) -> None:
    o = oid(desk.order(1, "sell", PRICE, 10))
    desk.order(2, "buy", PRICE, 6)
    assert rejected(desk.apply(AmendOrder(1, M, o, qty=6 * LOT))) == "INVALID_QUANTITY"
    desk.apply(AmendOrder(1, M, o, qty=7 * LOT))
    assert desk.engine.orders[o].remaining == 1


@pytest.mark.parametrize("mode", [STP.EXPIRE_TAKER, STP.EXPIRE_MAKER, STP.EXPIRE_BOTH])
def test_self_trade_prevention(desk: Desk, mode: STP) -> None:
    own = oid(desk.order(1, "sell", PRICE, 5))
    other = oid(desk.order(2, "sell", PRICE, 5))
    ev = desk.order(1, "buy", PRICE, 8, stp=mode)
    taker = oid(ev)
    done = {e[1]: e for e in kinds(ev, E.ORDER_DONE)}
    if mode == STP.EXPIRE_TAKER:
        assert not trades(ev)
        assert done[taker][2] == OrderStatus.EXPIRED and own in desk.engine.orders
    elif mode == STP.EXPIRE_MAKER:
        assert trades(ev) == [(taker, other, PRICE * TICK, 5 * LOT)]
        assert done[own][2] == OrderStatus.EXPIRED and own not in desk.engine.orders
        assert desk.engine.orders[taker].remaining == 3  # the rest rests
    else:
        assert not trades(ev)
        assert done[own][2] == OrderStatus.EXPIRED and done[taker][2] == OrderStatus.EXPIRED
        assert other in desk.engine.orders
    assert not any(t[0] == t[1] for t in trades(ev))
    assert not desk.engine.conservation_errors()


def test_internal_transfer_is_instant_and_free(desk: Desk) -> None:
    ev = desk.apply(Transfer(1, 2, "USDT", 123 * USDT))
    assert len(ev) == 2
    assert desk.balance(1, "USDT")[0] == 1_000_000 * USDT - 123 * USDT
    assert desk.balance(2, "USDT")[0] == 1_000_000 * USDT + 123 * USDT
    assert rejected(desk.apply(Transfer(1, 2, "USDT", 10**15))) == "INSUFFICIENT_FUNDS"
    assert rejected(desk.apply(Transfer(1, 1, "USDT", 1))) == "SELF_TRANSFER"


def test_credit_of_fiat_is_counted_once_per_reference(desk: Desk) -> None:
    desk.open(9)
    ev = desk.apply(Credit(9, "USD", 2_500 * 10**6, "wire-77"))
    assert ev[0][0] == E.BALANCE
    assert desk.balance(9, "USD") == (2_500 * 10**6, 0)
    assert rejected(desk.apply(Credit(9, "USD", 2_500 * 10**6, "wire-77"))) == "DUPLICATE_REFERENCE"
    assert desk.balance(9, "USD") == (2_500 * 10**6, 0)


BAD_ORDERS = [
    ("UNKNOWN_MARKET", PlaceOrder(1, "DOGE/USDT", Side.BUY, OrderType.LIMIT, PRICE * TICK, LOT)),
    ("INVALID_QUANTITY", PlaceOrder(1, M, Side.BUY, OrderType.LIMIT, PRICE * TICK, 0)),
    ("INVALID_QUANTITY", PlaceOrder(1, M, Side.BUY, OrderType.LIMIT, PRICE * TICK, -LOT)),
    ("INVALID_PRICE", PlaceOrder(1, M, Side.BUY, OrderType.LIMIT, 0, LOT)),
    ("INVALID_PRICE", PlaceOrder(1, M, Side.BUY, OrderType.LIMIT, -TICK, LOT)),
    ("INVALID_AMOUNT", PlaceOrder(1, M, Side.BUY, OrderType.LIMIT, 50_000.5, LOT)),  # type: ignore[arg-type]
    ("INVALID_AMOUNT", PlaceOrder(1, M, Side.BUY, OrderType.LIMIT, PRICE * TICK, "1")),  # type: ignore[arg-type]
    ("PRICE_OFF_TICK", PlaceOrder(1, M, Side.BUY, OrderType.LIMIT, PRICE * TICK + 1, LOT)),
    ("QUANTITY_OFF_LOT", PlaceOrder(1, M, Side.BUY, OrderType.LIMIT, PRICE * TICK, LOT + 1)),
    ("BELOW_MIN_NOTIONAL", PlaceOrder(1, M, Side.BUY, OrderType.LIMIT, 100 * TICK, LOT)),
    ("INSUFFICIENT_FUNDS", PlaceOrder(1, M, Side.BUY, OrderType.LIMIT, PRICE * TICK, 10**6 * LOT)),
    ("INSUFFICIENT_FUNDS", PlaceOrder(1, M, Side.SELL, OrderType.LIMIT, PRICE * TICK, 10**6 * LOT)),
    ("INVALID_ACCOUNT", PlaceOrder(0, M, Side.BUY, OrderType.LIMIT, PRICE * TICK, LOT)),
    ("INVALID_ORDER", PlaceOrder(1, M, 7, OrderType.LIMIT, PRICE * TICK, LOT)),  # type: ignore[arg-type]
    ("INVALID_PRICE", PlaceOrder(1, M, Side.SELL, OrderType.MARKET, PRICE * TICK, LOT)),
    ("INVALID_ORDER", PlaceOrder(1, M, Side.SELL, OrderType.MARKET, 0, 0, quote_qty=10**8)),
    ("ORDER_NOT_FOUND", CancelOrder(1, M, 424242)),
    ("UNKNOWN_MARKET", CancelOrder(1, "NOPE", 1)),
    ("UNKNOWN_ASSET", Credit(1, "XRP", 5, "r")),
    ("INVALID_AMOUNT", Credit(1, "USD", 0, "r0")),
    ("INVALID_AMOUNT", Credit(1, "USD", -5, "r1")),
    ("INVALID_AMOUNT", Credit(1, "USD", 1.5, "r2")),  # type: ignore[arg-type]
    ("INVALID_AMOUNT", Transfer(1, 2, "USDT", 0)),
    ("UNKNOWN_ASSET", Transfer(1, 2, "NOPE", 1)),
    ("UNKNOWN_ACCOUNT", Transfer(1, 987654321, "USDT", USDT)),
    ("UNKNOWN_ACCOUNT", Transfer(987654321, 1, "USDT", USDT)),
    ("UNKNOWN_ACCOUNT", Credit(987654321, "USD", 5, "r3")),
    ("UNKNOWN_ACCOUNT", PlaceOrder(987654321, M, Side.BUY, OrderType.LIMIT, PRICE * TICK, LOT)),
    ("INVALID_ACCOUNT", OpenAccount(0)),
    ("INVALID_ACCOUNT", OpenAccount(-1)),
    ("INVALID_ACCOUNT", OpenAccount(1 << 63)),
    ("INVALID_ACCOUNT", OpenAccount("7")),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("code", "cmd"), BAD_ORDERS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(BAD_ORDERS)])
def test_bad_input_is_rejected_with_a_reason_and_changes_nothing(desk: Desk, code: str, cmd: object) -> None:
    desk.order(2, "sell", PRICE + 50, 3)
    before = canonical(desk.engine)[3:]
    ev = desk.apply(cmd)
    assert rejected(ev) == code
    assert isinstance(ev[0][2], str) and len(ev[0][2]) > 5
    assert canonical(desk.engine)[3:] == before


def test_accounts_exist_once_opened_and_opening_again_changes_nothing(desk: Desk) -> None:
    from dpg.core.commands import RequestWithdrawal
    # the money of a transfer or credit to an account nobody opened is refused, not stranded
    assert rejected(desk.apply(Transfer(1, 5, "USDT", 10 * USDT))) == "UNKNOWN_ACCOUNT"
    assert rejected(desk.apply(Credit(5, "USDT", 10 * USDT, "deposit-5"))) == "UNKNOWN_ACCOUNT"
    assert rejected(desk.apply(RequestWithdrawal(5, "USDT", 1, "w-5", "x"))) == "UNKNOWN_ACCOUNT"
    assert desk.balance(1, "USDT") == (1_000_000 * USDT, 0) and not desk.engine.has_account(5)
    before = canonical(desk.engine)[3:]  # the state but its seq and time
    assert desk.apply(OpenAccount(5)) == [(E.ACCOUNT_OPENED, 5)]
    opened = canonical(desk.engine)[3:]
    assert opened != before  # the set of open accounts is part of the state (and its hash)
    assert desk.apply(OpenAccount(5)) == []  # a retried sign-up: nothing changes
    assert canonical(desk.engine)[3:] == opened
    assert desk.apply(Transfer(1, 5, "USDT", 10 * USDT))[1] == (E.BALANCE, 5, 2, 10 * USDT, 0, E.Cause.TRANSFER)
    assert desk.apply(Credit(5, "USDT", 10 * USDT, "deposit-5"))[0][0] == E.BALANCE
    assert desk.balance(5, "USDT") == (20 * USDT, 0)
    # the system accounts always exist
    assert desk.engine.has_account(FEE_ACCOUNT) and desk.engine.has_account(INSURANCE_ACCOUNT)
    assert desk.apply(OpenAccount(FEE_ACCOUNT))[0][1] == "INVALID_ACCOUNT"
    assert not desk.engine.conservation_errors()


def test_withdrawal_locks_then_leaves_or_returns(desk: Desk) -> None:
    from dpg.core.commands import CompleteWithdrawal, FailWithdrawal, RequestWithdrawal

    ev = desk.apply(RequestWithdrawal(1, "USDT", 3_000 * USDT, "w-1", "ethereum:0xabc"))
    assert ev[0][0] == E.WITHDRAWAL_REQUESTED
    assert desk.balance(1, "USDT") == (997_000 * USDT, 3_000 * USDT)
    assert not desk.engine.conservation_errors()
    assert rejected(desk.apply(RequestWithdrawal(1, "USDT", 1, "w-1", "ethereum:0xabc"))) == "DUPLICATE_WITHDRAWAL"
    assert rejected(desk.apply(RequestWithdrawal(1, "USDT", 10**13, "w-2", "x"))) == "INSUFFICIENT_FUNDS"
    desk.apply(CompleteWithdrawal("w-1", "ethereum:0xtx"))
    assert desk.balance(1, "USDT") == (997_000 * USDT, 0)
    usdt = desk.engine.asset_by_symbol["USDT"].index
    assert desk.engine.debits[usdt] == 3_000 * USDT
    assert rejected(desk.apply(CompleteWithdrawal("w-1", "again"))) == "WITHDRAWAL_NOT_FOUND"
    desk.apply(RequestWithdrawal(1, "BTC", BTC, "w-3", "polygon:0xdef"))
    desk.apply(FailWithdrawal("w-3", "expired"))
    assert desk.balance(1, "BTC") == (10 * BTC, 0)
    # an id is never reused, even after it failed
    assert rejected(desk.apply(RequestWithdrawal(1, "BTC", 1, "w-3", "x"))) == "DUPLICATE_WITHDRAWAL"
    assert not desk.engine.conservation_errors()


def test_epochs_only_move_forward(desk: Desk) -> None:
    from dpg.core.commands import MarkEpoch

    assert desk.apply(MarkEpoch(1_795_564_800))[0] == (E.EPOCH_MARKED, 1_795_564_800)
    assert rejected(desk.apply(MarkEpoch(1_795_564_800))) == "STALE_EPOCH"
    assert rejected(desk.apply(MarkEpoch(0))) == "INVALID_ORDER"
    assert desk.apply(MarkEpoch(1_795_651_200))[0][0] == E.EPOCH_MARKED


def test_stop_loss_sell_triggers_on_the_last_trade_price(desk: Desk) -> None:
    # a trade at PRICE sets the last price
    desk.order(1, "sell", PRICE, 1)
    desk.order(2, "buy", PRICE, 1)
    bid = oid(desk.order(3, "buy", PRICE - 100, 5))
    ev = desk.apply(PlaceOrder(1, M, Side.SELL, OrderType.STOP_LIMIT, (PRICE - 150) * TICK, 5 * LOT,
                               stop_price=(PRICE - 50) * TICK))
    stop = oid(ev)
    assert not trades(ev) and desk.balance(1, "BTC")[1] == 5 * LOT  # funds locked while it waits
    assert stop not in [o.oid for o in desk.engine.books[0].asks.orders_in_priority()]
    # a trade above the stop: nothing happens
    oid(desk.order(4, "sell", PRICE - 10, 2))
    ev = desk.order(2, "buy", PRICE - 10, 2)
    assert trades(ev) and kinds(ev, E.ORDER_TRIGGERED) == []
    # a trade at or below the stop triggers it, and it sells into the bid at PRICE - 100
    oid(desk.order(4, "sell", PRICE - 60, 2))
    ev = desk.order(2, "buy", PRICE - 60, 2)
    assert kinds(ev, E.ORDER_TRIGGERED)[0][1] == stop
    assert (stop, bid, (PRICE - 100) * TICK, 5 * LOT) in trades(ev)
    assert not desk.engine.conservation_errors()


def test_take_profit_and_cancel_of_a_pending_stop(desk: Desk) -> None:
    desk.order(1, "sell", PRICE, 1)
    desk.order(2, "buy", PRICE, 1)
    # a buy take-profit waits for the price to fall to its stop
    tp = oid(desk.apply(PlaceOrder(3, M, Side.BUY, OrderType.TAKE_PROFIT_LIMIT, (PRICE - 10) * TICK, 2 * LOT,
                                   stop_price=(PRICE - 20) * TICK)))
    assert desk.balance(3, "USDT")[1] == 2 * (PRICE - 10)
    ev = desk.apply(CancelOrder(3, M, tp))
    assert kinds(ev, E.ORDER_DONE)[0][2] == OrderStatus.CANCELED
    assert desk.balance(3, "USDT")[1] == 0
    # a stop that would trigger at once is refused
    r = desk.apply(PlaceOrder(3, M, Side.BUY, OrderType.STOP_LIMIT, (PRICE + 10) * TICK, 2 * LOT,
                              stop_price=(PRICE - 5) * TICK))
    assert rejected(r) == "STOP_WOULD_TRIGGER"
    assert rejected(desk.apply(PlaceOrder(3, M, Side.BUY, OrderType.LIMIT, PRICE * TICK, LOT,
                                          stop_price=PRICE * TICK))) == "INVALID_ORDER"
    # triggered by a later fall, then it rests as a limit order
    tp2 = oid(desk.apply(PlaceOrder(3, M, Side.BUY, OrderType.TAKE_PROFIT_LIMIT, (PRICE - 30) * TICK, 2 * LOT,
                                    stop_price=(PRICE - 20) * TICK)))
    oid(desk.order(1, "buy", PRICE - 25, 2))
    ev = desk.order(2, "sell", PRICE - 25, 2)
    assert kinds(ev, E.ORDER_TRIGGERED)[0][1] == tp2
    assert desk.engine.orders[tp2].stop == 0 and tp2 in [o.oid for o in desk.engine.books[0].bids.orders_in_priority()]
    assert not desk.engine.conservation_errors()


def test_an_engine_that_adopts_anothers_state_goes_on_as_that_one_would() -> None:
    """The sequencer's resume after a database outage: the live engine takes a rebuilt one's state in
    place. Every attribute is taken (compiled or not), the lists keep their identity, and the
    perpetuals' state answers to the adopting engine: an order there takes the adopter's next id."""

    def fill(e: Engine) -> None:
        for seq, cmd in enumerate((*GENESIS, *PERPS, OpenAccount(1), Credit(1, "USDT", 10**12, "a"),
                                   IndexPrice("BTC-PERP", 50_000 * 10**6)), start=1):
            e.apply(cmd, seq, seq)

    live, rebuilt, twin = Engine(), Engine(), Engine()
    attrs = getattr(Engine, "__mypyc_attrs__", None) or tuple(vars(live))
    assert set(attrs) - {"_handlers", "_book_side"} == set(ADOPTED)
    fill(rebuilt)
    fill(twin)
    markets = live.markets
    live.adopt(rebuilt)
    assert live.markets is markets and [m.symbol for m in markets] == [m.symbol for m in twin.markets]
    assert state.state_hash(live) == state.state_hash(twin)
    order = PlaceOrder(1, "BTC-PERP", Side.BUY, OrderType.LIMIT, 49_000 * 10**6, 10**6)
    seq = twin.seq + 1
    assert live.apply(order, seq, seq) == twin.apply(order, seq, seq)
    assert live.next_order_id == twin.next_order_id == 2 and state.state_hash(live) == state.state_hash(twin)


def test_a_forced_withdrawal_locks_the_whole_available_balance_or_is_refused_at_zero(desk: Desk) -> None:
    from dpg.core.commands import CompleteWithdrawal, RequestForcedWithdrawal, RequestWithdrawal

    desk.order(1, "buy", PRICE, 2)  # locks part of account 1's USDT: only the available part is withdrawn
    available, locked = desk.balance(1, "USDT")
    assert locked > 0
    ev = desk.apply(RequestForcedWithdrawal(1, "USDT", "f-1", "ethereum:0xabc:0x01"))
    assert ev[0][0] == E.WITHDRAWAL_REQUESTED and ev[0][4] == available
    assert desk.balance(1, "USDT") == (0, locked + available)
    assert rejected(desk.apply(RequestForcedWithdrawal(1, "USDT", "f-1", "x"))) == "DUPLICATE_WITHDRAWAL"
    assert rejected(desk.apply(RequestForcedWithdrawal(1, "USDT", "f-2", "x"))) == "INSUFFICIENT_FUNDS"
    assert rejected(desk.apply(RequestWithdrawal(1, "USDT", 1, "f-1", "x"))) == "DUPLICATE_WITHDRAWAL"
    assert rejected(desk.apply(RequestForcedWithdrawal(99, "USDT", "f-3", "x"))) == "UNKNOWN_ACCOUNT"
    assert rejected(desk.apply(RequestForcedWithdrawal(1, "DOGE", "f-4", "x"))) == "UNKNOWN_ASSET"
    desk.apply(CompleteWithdrawal("f-1", "ethereum:0xtx"))
    assert desk.balance(1, "USDT") == (0, locked)
    assert not desk.engine.conservation_errors()
