"""Perpetual futures in the engine: positions and margin, liquidations (by the book, by the
insurance fund, by ADL), cross and isolated scopes, reduce-only, funding to the base unit; the
conservation identity and Σ long = Σ short after every command."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpg.core import events as E
from dpg.core.commands import AdjustMargin, Funding, IndexPrice, PlaceOrder, SetLeverage, SetMarginMode
from dpg.core.funding import payment
from dpg.core.futures import VIA_ADL, VIA_BOOK, VIA_INSURANCE
from dpg.core.genesis import FUNDING_INTERVAL_MS, PERPS
from dpg.core.margin import liq_price, liq_price_units
from dpg.core.model import INSURANCE_ACCOUNT, OrderFlag, OrderType, Side
from dpg.core.state import decode, encode, state_hash
from tests.core.helpers import BTC, USDT, Desk, kinds, rejected

B = "BTC-PERP"
ETH = 10**18
BI = 4  # BTC-PERP's market index after the four spot markets


class PerpDesk(Desk):
    """The genesis markets, the perpetuals, and every command checked for conservation."""

    def __init__(self) -> None:
        super().__init__()
        for cmd in PERPS:
            self.apply(cmd)

    def apply(self, cmd: Any) -> list[E.Event]:
        ev = super().apply(cmd)
        errs = self.engine.conservation_errors()
        assert not errs, (cmd, errs)
        return ev

    def index(self, market: str, price: int) -> list[E.Event]:
        return self.apply(IndexPrice(market, price * USDT))

    def perp(self, account: int, side: str, price: int, qty: float, market: str = B,
             otype: OrderType = OrderType.LIMIT, flags: int = 0, stop: int = 0) -> list[E.Event]:
        scale = ETH if market.startswith("ETH") else BTC
        return self.apply(PlaceOrder(account, market, Side.BUY if side == "buy" else Side.SELL, otype,
                                     price * USDT, round(qty * scale), flags=flags, stop_price=stop * USDT))

    def size(self, account: int, market: str = B) -> int:
        mi = self.engine.market_by_symbol[market].index
        p = self.engine.fut.positions.get((account, mi))
        return p.size if p else 0

    def usdt(self, account: int) -> int:
        return self.engine.balances[account][2 * 2]


def open_pair(d: PerpDesk, long: int, short: int, price: int, qty: float, market: str = B) -> None:
    """``long`` rests a bid, ``short`` takes it."""
    d.perp(long, "buy", price, qty, market)
    ev = d.perp(short, "sell", price, qty, market)
    assert kinds(ev, E.TRADE), ev


@pytest.fixture
def d() -> PerpDesk:
    desk = PerpDesk()
    desk.index(B, 50_000)
    return desk


def test_no_order_before_an_index_price() -> None:
    desk = PerpDesk()
    desk.fund(1, "USDT", 10_000 * USDT)
    assert rejected(desk.perp(1, "buy", 50_000, 0.1)) == "NO_INDEX_PRICE"


def test_a_trade_opens_a_long_and_a_short_with_initial_margin_and_fees(d: PerpDesk) -> None:
    d.fund(1, "USDT", 10_000 * USDT)
    d.fund(2, "USDT", 10_000 * USDT)
    ev = d.perp(1, "buy", 50_000, 0.1)
    # initial margin at the default 20x (250) and the taker fee (0.05 %: 2.5) are held
    assert kinds(ev, E.BALANCE) == [(E.BALANCE, 1, 2, -252_500_000, 252_500_000, E.Cause.LOCK)]
    ev = d.perp(2, "sell", 50_000, 0.1)
    pos = {p.account: p for p in kinds(ev, E.POSITION)}
    assert (pos[1].size, pos[1].cost) == (10_000_000, 5_000 * USDT)
    assert (pos[2].size, pos[2].cost) == (-10_000_000, -5_000 * USDT)
    assert d.size(1) == -d.size(2) == 1000  # lots
    # the maker pays 0.02 % (1), the taker 0.05 % (2.5); 10 % of the fees to the insurance fund
    assert d.usdt(1) == 9_999 * USDT and d.usdt(2) == 9_997_500_000
    assert d.engine.balances[INSURANCE_ACCOUNT][4] == 350_000


def test_an_order_that_cannot_be_margined_is_refused_with_the_reason(d: PerpDesk) -> None:
    d.fund(1, "USDT", 100 * USDT)
    ev = d.perp(1, "buy", 50_000, 0.1)  # 5,000 at 20x: 250 of margin
    assert rejected(ev) == "INSUFFICIENT_MARGIN" and "margin" in ev[0].reason
    assert rejected(d.apply(SetLeverage(1, B, 150))) == "INVALID_LEVERAGE"
    assert d.apply(SetLeverage(1, B, 100))[0].leverage == 100
    assert kinds(d.perp(1, "buy", 50_000, 0.1), E.ORDER_NEW)  # 50 + fee at 100x


def test_reducing_realizes_pnl_and_closing_returns_everything(d: PerpDesk) -> None:
    for a in (1, 2, 3):
        d.fund(a, "USDT", 10_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)
    d.index(B, 51_000)
    before = d.usdt(1)
    d.perp(3, "buy", 51_000, 0.05)
    ev = d.perp(1, "sell", 51_000, 0.05)  # half closed at +1,000 a BTC: +50 realized, less the taker fee
    pos = next(p for p in kinds(ev, E.POSITION) if p.account == 1)
    assert pos.realized == 50 * USDT and pos.size == 5_000_000 and pos.cost == 2_500 * USDT
    assert d.usdt(1) - before == 50 * USDT - 1_275_000


def test_reduce_only_never_flips_and_follows_the_position(d: PerpDesk) -> None:
    for a in (1, 2, 3):
        d.fund(a, "USDT", 10_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)
    assert rejected(d.perp(1, "buy", 49_000, 0.1, flags=OrderFlag.REDUCE_ONLY)) == "REDUCE_ONLY"
    d.perp(3, "buy", 49_990, 1)  # a deep bid
    ev = d.perp(1, "sell", 49_990, 0.5, flags=OrderFlag.REDUCE_ONLY)  # asks 0.5, may only close 0.1
    assert kinds(ev, E.ORDER_NEW)[0].qty == 10_000_000
    assert d.size(1) == 0  # closed, not flipped short
    # a resting reduce-only order shrinks when the position does, and goes when it is closed
    open_pair(d, 1, 2, 50_000, 0.1)
    ro = d.perp(1, "sell", 60_000, 0.1, flags=OrderFlag.REDUCE_ONLY)[0].oid
    d.perp(3, "buy", 50_000, 1)
    ev = d.perp(1, "sell", 50_000, 0.1)
    done = [x for x in kinds(ev, E.ORDER_DONE) if x.oid == ro]
    assert done and done[0].status == 3 and d.size(1) == 0
    assert ro not in d.engine.orders


def test_a_liquidation_absorbed_by_the_book(d: PerpDesk) -> None:
    d.fund(1, "USDT", 300 * USDT)
    d.fund(2, "USDT", 100_000 * USDT)
    d.fund(3, "USDT", 100_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)  # 5,000 at 20x on 300
    d.perp(3, "buy", 48_000, 1)  # the book's bid below
    ins0 = d.engine.balances[INSURANCE_ACCOUNT][4]
    assert not kinds(d.index(B, 48_200), E.LIQUIDATION)  # equity 100 - fees > maintenance 19.28
    ev = d.index(B, 47_300)  # equity about 29, maintenance 18.92... then 47,250
    ev += d.index(B, 47_180)
    liq = kinds(ev, E.LIQUIDATION)
    assert len(liq) == 1 and liq[0].via == VIA_BOOK and liq[0].account == 1
    assert d.size(1) == 0 and d.size(3) == 1000  # the bid took the 0.1 BTC
    assert d.engine.balances[INSURANCE_ACCOUNT][4] > ins0  # the liquidation fee
    assert d.usdt(1) >= 0


def test_a_liquidation_taken_by_the_insurance_fund(d: PerpDesk) -> None:
    d.fund(1, "USDT", 300 * USDT)
    d.fund(2, "USDT", 100_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)
    ev = d.index(B, 47_180)  # no bid at all: the fund takes the long at the bankruptcy price
    liq = kinds(ev, E.LIQUIDATION)
    assert [x.via for x in liq] == [VIA_INSURANCE]
    assert d.size(1) == 0 and d.size(INSURANCE_ACCOUNT) == 1000
    assert d.usdt(1) == 0  # bankrupt: nothing left, nothing owed


def test_a_gap_past_bankruptcy_with_an_empty_fund_deleverages_the_winners(d: PerpDesk) -> None:
    d.fund(1, "USDT", 300 * USDT)
    d.fund(2, "USDT", 100_000 * USDT)
    d.fund(4, "USDT", 100_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)
    open_pair(d, 4, 2, 50_000, 0.1)
    d.apply(SetLeverage(4, B, 1))  # account 4 keeps its long safely
    ev = d.index(B, 40_000)  # a gap far past account 1's bankruptcy price; the fund holds only fees
    liq = kinds(ev, E.LIQUIDATION)
    assert [x.via for x in liq] == [VIA_ADL]
    adl = [p for p in kinds(ev, E.POSITION) if p.account == 2 and p.cause == E.PositionCause.ADL]
    assert adl and d.size(2) == -1000  # the short was cut by account 1's 0.1
    assert d.size(1) == 0 and d.usdt(1) >= 0


def test_a_cross_account_whose_loss_on_one_position_liquidates_both() -> None:
    d = PerpDesk()
    d.index(B, 50_000)
    d.index("ETH-PERP", 3_000)
    d.fund(1, "USDT", 450 * USDT)
    d.fund(2, "USDT", 100_000 * USDT)
    d.fund(3, "USDT", 100_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)  # 250 of margin
    open_pair(d, 1, 2, 3_000, 1, "ETH-PERP")  # 150 of margin
    d.perp(3, "buy", 45_000, 1)
    d.perp(3, "buy", 2_900, 10, "ETH-PERP")
    assert not kinds(d.index(B, 46_000), E.LIQUIDATION)  # equity about 48 against maintenance 33.4
    ev = d.index(B, 45_800)  # BTC's loss (420) eats the shared wallet; ETH did not move
    assert {x.market for x in kinds(ev, E.LIQUIDATION)} == {4, 5}
    assert d.size(1) == 0 and d.size(1, "ETH-PERP") == 0


def test_an_isolated_position_is_unaffected_by_a_cross_ones_loss() -> None:
    d = PerpDesk()
    d.index(B, 50_000)
    d.index("ETH-PERP", 3_000)
    d.fund(1, "USDT", 1_000 * USDT)
    d.fund(2, "USDT", 100_000 * USDT)
    d.apply(SetMarginMode(1, B, True))
    open_pair(d, 1, 2, 50_000, 0.1)  # isolated: 250 of its own margin
    open_pair(d, 1, 2, 3_000, 1, "ETH-PERP")  # cross
    iso = d.engine.fut.positions[(1, BI)].margin
    assert iso == 250 * USDT
    ev = d.index("ETH-PERP", 2_200)  # the cross ETH long is wiped out
    assert {x.market for x in kinds(ev, E.LIQUIDATION)} == {5}
    assert d.size(1) == 1000 and d.engine.fut.positions[(1, BI)].margin == iso


def test_isolated_margin_added_and_removed_within_what_keeps_it_open(d: PerpDesk) -> None:
    d.fund(1, "USDT", 1_000 * USDT)
    d.fund(2, "USDT", 100_000 * USDT)
    d.apply(SetMarginMode(1, B, True))
    open_pair(d, 1, 2, 50_000, 0.1)
    assert rejected(d.apply(AdjustMargin(1, B, -10 * USDT))) == "INSUFFICIENT_MARGIN"
    d.apply(AdjustMargin(1, B, 100 * USDT))
    assert d.engine.fut.positions[(1, BI)].margin == 350 * USDT
    d.apply(AdjustMargin(1, B, -100 * USDT))
    assert rejected(d.apply(SetMarginMode(1, B, False))) == "POSITION_OPEN"


def test_funding_to_the_base_unit_is_zero_sum(d: PerpDesk) -> None:
    d.fund(1, "USDT", 100_000 * USDT)
    d.fund(2, "USDT", 100_000 * USDT)
    d.fund(3, "USDT", 100_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.0003)  # odd sizes so the payments round
    open_pair(d, 1, 3, 50_000, 0.0004)
    assert rejected(d.apply(Funding(B))) == "FUNDING_NOT_DUE"
    d.seq = FUNDING_INTERVAL_MS * 1_000_000 // 1000 + 1  # the desk's clock is seq x 1,000 ns
    d.perp(2, "sell", 60_000, 0.1)  # an ask far above: the impact ask is 60,000, the bid side empty
    d.index(B, 50_000)  # a premium sample: max(0, 0) - max(0, 50,000 - 60,000)... = 0 from a missing bid
    mark = d.engine.fut.perps[BI].mark
    ins0 = d.engine.balances[INSURANCE_ACCOUNT][4]
    before = {a: d.usdt(a) for a in (1, 2, 3)}
    ev = d.apply(Funding(B))
    paid = ev[0]
    assert paid.kind == E.FUNDING_PAID and paid.rate == 10_000  # the interest rate: 0.01 %
    want = {1: payment(70_000, mark, 10_000, 8), 2: payment(-30_000, mark, 10_000, 8),
            3: payment(-40_000, mark, 10_000, 8)}
    assert {a: before[a] - d.usdt(a) for a in (1, 2, 3)} == want
    assert want[1] == -(-70_000 * mark * 10_000 // 10**16)  # the long pays, rounded up
    assert paid.to_insurance == sum(want.values()) == d.engine.balances[INSURANCE_ACCOUNT][4] - ins0


def test_a_stop_market_fires_on_the_mark_price(d: PerpDesk) -> None:
    for a in (1, 2, 3):
        d.fund(a, "USDT", 10_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)
    ev = d.perp(1, "sell", 0, 0, otype=OrderType.STOP_MARKET, flags=OrderFlag.CLOSE_POSITION, stop=49_000)
    assert kinds(ev, E.ORDER_NEW)
    assert rejected(d.perp(1, "sell", 0, 0.1, otype=OrderType.STOP_MARKET, stop=51_000)) == "STOP_WOULD_TRIGGER"
    d.perp(3, "buy", 48_900, 1)
    ev = d.index(B, 48_950)
    assert kinds(ev, E.ORDER_TRIGGERED) and d.size(1) == 0


def test_a_snapshot_restores_the_same_state_and_the_same_future() -> None:
    d = PerpDesk()
    d.index(B, 50_000)
    for a in (1, 2, 3):
        d.fund(a, "USDT", 1_000 * USDT if a == 1 else 100_000 * USDT)
    d.apply(SetMarginMode(3, B, True))
    open_pair(d, 1, 2, 50_000, 0.2)
    open_pair(d, 3, 2, 50_000, 0.2)
    copy = decode(encode(d.engine))
    assert state_hash(copy) == state_hash(d.engine)
    for eng in (d.engine, copy):
        eng.apply(IndexPrice(B, 45_000 * USDT), 10_000, 10_000_000)
    assert state_hash(copy) == state_hash(d.engine)
    assert d.engine.fut.positions[(1, BI)].size == 0  # liquidated in both


@given(st.integers(0, 10**12), st.sampled_from([1, -1]), st.integers(1, 10**10), st.integers(1, 10**13),
       st.sampled_from([4_000, 5_000, 25_000, 500_000]), st.integers(0, 10**13))
def test_the_engines_integer_liquidation_price_is_the_formula(wallet: int, side: int, qty: int, cost: int,
                                                              mmr: int, cum: int) -> None:
    num, den = liq_price_units(wallet, side, qty, cost, mmr, cum, 10**8)
    q = Fraction(qty, 10**8)
    assert Fraction(num, den) == liq_price(Fraction(wallet), side, q, Fraction(cost) / q, Fraction(mmr, 10**6),
                                           Fraction(cum, 10**6))


def test_the_golden_short_in_engine_units() -> None:
    # wallet 1,000 USDT, short 3 ETH at 3,000, MMR 5 %, cum 0 -> 3,174.60
    num, den = liq_price_units(1_000 * USDT, -1, 3 * ETH, 9_000 * USDT, 50_000, 0, ETH)
    assert num * 100 // (den * USDT) == 317_460
