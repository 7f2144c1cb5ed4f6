"""The governed parameters in the engine: fees and halts by journaled commands, the operator's hand
refused once governance is enabled, a decision applied once, the stakers' share moved to their
reserve with funds conserved, and all of it in the snapshot and the state hash."""

from __future__ import annotations

from dpg.core import events as E
from dpg.core import state
from dpg.core.commands import (
    CancelOrder,
    CompleteWithdrawal,
    EnableGovernance,
    HaltMarket,
    ListMarket,
    PayStakers,
    RequestWithdrawal,
    SetFees,
    SetStakerShare,
)
from dpg.core.model import FEE_ACCOUNT, INSURANCE_ACCOUNT, PPM, STAKERS_ACCOUNT
from tests.core.helpers import BTC, USDT, Desk, M, kinds, oid, rejected


def traded(d: Desk) -> list[E.Event]:
    """Account 1 sells 1 lot at 50,000 to account 2 (the taker)."""
    d.fund(1, "BTC", BTC)
    d.fund(2, "USDT", 100_000 * USDT)
    oid(d.order(1, "sell", 5_000_000, 1))
    return d.order(2, "buy", 5_000_000, 1)


def test_new_fees_apply_from_the_next_fill() -> None:
    d = Desk()
    before = d.engine.market_by_symbol[M]
    ev = d.apply(SetFees(M, 0, 2_000, ""))
    assert ev == [(E.MARKET_CHANGED, before.index, 0, 2_000, False, "")]
    m = d.engine.market_by_symbol[M]
    assert d.engine.markets[m.index] is m and (m.maker_fee_ppm, m.taker_fee_ppm) == (0, 2_000)
    [t] = kinds(traded(d), E.TRADE)
    trade = E.Trade(*t)
    assert trade.maker_fee == 0
    assert trade.taker_fee == trade.qty * 2_000 // PPM  # the buyer pays in base, rounded as before
    assert d.engine.conservation_errors() == []


def test_fees_out_of_range_or_of_an_unknown_market_are_refused() -> None:
    d = Desk()
    assert rejected(d.apply(SetFees(M, PPM, 0, ""))) == "INVALID_MARKET"
    assert rejected(d.apply(SetFees(M, -1, 0, ""))) == "INVALID_MARKET"
    assert rejected(d.apply(SetFees("NOPE/USDT", 0, 0, ""))) == "UNKNOWN_MARKET"
    assert rejected(d.apply(SetFees(M, 0, 0, "not-a-decision"))) == "INVALID_ORDER"


def test_a_halted_market_takes_no_order_but_cancels_then_resumes() -> None:
    d = Desk()
    d.fund(1, "BTC", BTC)
    resting = oid(d.order(1, "sell", 5_000_000, 1))
    assert d.apply(HaltMarket(M, True, ""))[0][0] == E.MARKET_CHANGED
    assert rejected(d.order(1, "sell", 5_000_000, 1)) == "MARKET_HALTED"
    assert kinds(d.apply(CancelOrder(1, M, resting)), E.ORDER_DONE)
    assert rejected(d.apply(HaltMarket(M, 1, ""))) == "INVALID_MARKET"  # type: ignore[arg-type]
    d.apply(HaltMarket(M, False, ""))
    oid(d.order(1, "sell", 5_000_000, 1))


def test_governance_enabled_refuses_the_operators_hand_and_applies_each_decision_once() -> None:
    d = Desk()
    assert d.apply(EnableGovernance()) == [(E.PARAMS_CHANGED, True, 0, "")]
    assert d.apply(EnableGovernance()) == []
    assert rejected(d.apply(SetFees(M, 0, 500, ""))) == "GOVERNED"
    assert rejected(d.apply(HaltMarket(M, True, ""))) == "GOVERNED"
    assert rejected(d.apply(SetStakerShare(100_000, ""))) == "GOVERNED"
    listing = ListMarket("ETH/BTC", "ETH", "BTC", 100, 10**16, 10_000, 1_000, 1_000)
    assert rejected(d.apply(listing)) == "GOVERNED"
    assert d.apply(SetFees(M, 0, 500, "gov:31337:7"))[0][0] == E.MARKET_CHANGED
    assert rejected(d.apply(SetFees(M, 0, 600, "gov:31337:7"))) == "DUPLICATE_REFERENCE"
    assert d.engine.market_by_symbol[M].taker_fee_ppm == 500
    decided = ListMarket("ETH/BTC", "ETH", "BTC", 100, 10**16, 10_000, 1_000, 1_000, "gov:31337:8")
    assert d.apply(decided)[0][0] == E.MARKET_LISTED
    assert rejected(d.apply(SetStakerShare(PPM + 1, "gov:31337:9"))) == "INVALID_AMOUNT"
    assert d.apply(SetStakerShare(250_000, "gov:31337:9")) == [(E.PARAMS_CHANGED, True, 250_000, "gov:31337:9")]


def test_the_stakers_share_of_the_fees_moves_to_their_reserve_once_per_period() -> None:
    d = Desk()
    traded(d)
    fee_vec = d.engine.balances[FEE_ACCOUNT]
    usdt = d.engine.asset_by_symbol["USDT"].index
    d.apply(SetStakerShare(0, ""))
    assert d.apply(PayStakers("USDT", "period-0")) == []  # a share of nothing is nothing
    d.apply(SetStakerShare(300_000, ""))
    held = fee_vec[2 * usdt]
    assert held > 0
    ev = d.apply(PayStakers("USDT", "period-1"))
    share = held * 300_000 // PPM
    assert ev == [(E.BALANCE, FEE_ACCOUNT, usdt, -share, 0, E.Cause.STAKERS),
                  (E.BALANCE, STAKERS_ACCOUNT, usdt, share, 0, E.Cause.STAKERS)]
    assert d.engine.balance(STAKERS_ACCOUNT, "USDT") == (share, 0)
    assert rejected(d.apply(PayStakers("USDT", "period-1"))) == "DUPLICATE_REFERENCE"
    assert rejected(d.apply(PayStakers("XYZ", "period-2"))) == "UNKNOWN_ASSET"
    assert d.engine.conservation_errors() == []


def test_the_stakers_reserve_and_no_other_system_account_is_withdrawn_like_a_users_balance() -> None:
    d = Desk()
    traded(d)
    d.apply(SetStakerShare(500_000, ""))
    d.apply(PayStakers("USDT", "period-1"))
    share, _ = d.engine.balance(STAKERS_ACCOUNT, "USDT")
    assert share > 0
    for account in (FEE_ACCOUNT, INSURANCE_ACCOUNT, 0):
        assert rejected(d.apply(RequestWithdrawal(account, "USDT", 1, f"w{account}", "ethereum:0xs"))) \
            == "INVALID_ACCOUNT"
    assert rejected(d.apply(RequestWithdrawal(STAKERS_ACCOUNT, "USDT", share + 1, "w1", "ethereum:0xs"))) \
        == "INSUFFICIENT_FUNDS"
    assert [e[0] for e in d.apply(RequestWithdrawal(STAKERS_ACCOUNT, "USDT", share, "w1", "ethereum:0xs"))] \
        == [E.WITHDRAWAL_REQUESTED, E.BALANCE]
    assert d.engine.balance(STAKERS_ACCOUNT, "USDT") == (0, share)
    d.apply(CompleteWithdrawal("w1", "0xtx"))
    assert d.engine.balance(STAKERS_ACCOUNT, "USDT") == (0, 0)
    assert d.engine.conservation_errors() == []


def test_the_governed_state_is_in_the_snapshot_and_the_hash() -> None:
    d = Desk()
    plain = state.state_hash(d.engine)
    assert state.canonical(d.engine)[0] == state.FORMAT  # nothing governed yet: the format as before
    d.apply(EnableGovernance())
    d.apply(HaltMarket(M, True, "gov:1:1"))
    d.apply(SetStakerShare(100_000, "gov:1:2"))
    d.apply(SetFees(M, 100, 200, "gov:1:3"))
    assert state.canonical(d.engine)[0] == state.FORMAT_GOV
    assert state.state_hash(d.engine) != plain
    back = state.decode(state.encode(d.engine))
    assert state.state_hash(back) == state.state_hash(d.engine)
    m = back.market_by_symbol[M]
    assert m.halted and (m.maker_fee_ppm, m.taker_fee_ppm) == (100, 200)
    assert back.gov.governed and back.gov.staker_share_ppm == 100_000
    assert rejected(back.apply(SetFees(M, 0, 0, "gov:1:3"), d.seq + 1, 0)) == "DUPLICATE_REFERENCE"
