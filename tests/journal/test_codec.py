"""The journal encoding round-trips every command, big integers included."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpg.core.commands import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    CompleteWithdrawal,
    Credit,
    EnableGovernance,
    FailWithdrawal,
    HaltMarket,
    IndexStale,
    ListAsset,
    ListMarket,
    OpenAccount,
    PayStakers,
    PlaceOrder,
    RequestWithdrawal,
    SetFees,
    SetStakerShare,
    Transfer,
)
from dpg.core.model import STP, OrderType, Side
from dpg.journal import codec

big = st.integers(0, 2**127)


@given(st.builds(PlaceOrder, st.integers(1, 2**40), st.text(max_size=12), st.sampled_from(list(Side)),
                 st.sampled_from(list(OrderType)), big, big, big, st.text(max_size=36), st.sampled_from(list(STP))))
def test_place_order_round_trip(cmd: PlaceOrder) -> None:
    back = codec.decode(codec.encode(cmd))
    assert back == cmd
    assert isinstance(back, PlaceOrder) and type(back.side) is Side and type(back.stp) is STP


@pytest.mark.parametrize("cmd", [
    ListAsset("BTC", 8),
    ListMarket("BTC/USDT", "BTC", "USDT", 10_000, 10_000, 5_000_000, 800, 1000),
    OpenAccount(7),
    Credit(7, "ETH", 3 * 10**30, "0xabc:1"),
    Transfer(1, 2, "USDT", 5),
    CancelOrder(1, "BTC/USDT", 9, "cid"),
    CancelAll(1, "ETH/USD"),
    AmendOrder(1, "BTC/USDT", 9, 10_000, 0),
    RequestWithdrawal(3, "ETH", 10**20, "w-9", "ethereum:0x00"),
    CompleteWithdrawal("w-9", "ethereum:0xff"),
    FailWithdrawal("w-9", "expired"),
    IndexStale("BTC-PERP"),
    ListMarket("SOL/USDT", "SOL", "USDT", 10_000, 10**7, 5_000_000, 800, 1000, "gov:31337:4"),
    SetFees("BTC/USDT", 500, 900, "gov:31337:1"),
    HaltMarket("BTC/USDT", True, ""),
    SetStakerShare(250_000, "gov:31337:2"),
    EnableGovernance(),
    PayStakers("USDT", "stakers:2026-12-01"),
])
def test_every_command_round_trips(cmd: Any) -> None:
    assert codec.decode(codec.encode(cmd)) == cmd


def test_a_listing_without_a_reference_keeps_the_journal_form_it_had_before_references() -> None:
    old = codec.packb((ListMarket.KIND, "BTC/USDT", "BTC", "USDT", 10_000, 10_000, 5_000_000, 800, 1000))
    cmd = ListMarket("BTC/USDT", "BTC", "USDT", 10_000, 10_000, 5_000_000, 800, 1000, "")
    assert codec.decode(old) == cmd and codec.encode(cmd) == old


def test_every_command_class_has_a_kind() -> None:
    from typing import get_args

    from dpg.core.commands import Command

    assert set(codec.KINDS) == set(get_args(Command)) and len(set(codec.KINDS.values())) == len(codec.KINDS)


def test_negative_big_integers_round_trip() -> None:
    cmd = Transfer(1, 2, "USDT", -(2**100))  # invalid for the engine, still journaled faithfully
    assert codec.decode(codec.encode(cmd)) == cmd


def test_the_codec_and_the_engine_are_built_from_one_registry() -> None:
    from dpg.core.commands import COMMANDS
    from dpg.core.engine import Engine

    # the kinds the journal has always used, fixed for good: a new command takes a new number
    assert {cls.__name__: cls.KIND for cls in COMMANDS} == {
        "ListAsset": 1, "ListMarket": 2, "Credit": 3, "Transfer": 4, "RequestWithdrawal": 5,
        "CompleteWithdrawal": 6, "FailWithdrawal": 7, "MarkEpoch": 8, "OpenAccount": 9, "PlaceOrder": 10,
        "CancelOrder": 11, "CancelAll": 12, "AmendOrder": 13, "RequireAccounts": 14, "ListPerp": 15,
        "SetLeverage": 16, "SetMarginMode": 17, "AdjustMargin": 18, "IndexPrice": 19, "Funding": 20,
        "IndexStale": 21, "SetFees": 22, "HaltMarket": 23, "SetStakerShare": 24, "EnableGovernance": 25,
        "PayStakers": 26, "RequestForcedWithdrawal": 27,
    }
    assert {cls: cls.KIND for cls in COMMANDS} == codec.KINDS
    engine = Engine()
    assert all(callable(getattr(engine, "on_" + cls.NAME)) for cls in COMMANDS)


def test_perpetual_commands_round_trip_with_their_flags_and_tiers() -> None:
    from dpg.core.commands import AdjustMargin, Funding, IndexPrice, SetLeverage, SetMarginMode
    from dpg.core.genesis import PERPS
    from dpg.core.model import OrderFlag

    ro = PlaceOrder(7, "BTC-PERP", Side.SELL, OrderType.STOP_MARKET, 0, 0, stop_price=49_000 * 10**6,
                    flags=OrderFlag.REDUCE_ONLY | OrderFlag.CLOSE_POSITION)
    for cmd in (ro, *PERPS, SetLeverage(7, "BTC-PERP", 50), SetMarginMode(7, "ETH-PERP", True),
                AdjustMargin(7, "BTC-PERP", -5 * 10**6), IndexPrice("BTC-PERP", 50_000 * 10**6), Funding("ETH-PERP")):
        back = codec.decode(codec.encode(cmd))
        assert back == cmd and type(back) is type(cmd)
    assert codec.decode(codec.encode(ro)).flags == 3  # not dropped by the short form of an order
