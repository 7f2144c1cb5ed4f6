"""The USDⓈ-M user data stream's MARGIN_CALL: sent when a mark price brings a position's
maintenance margin to 80 % of its margin balance, once per crossing, in Binance's fields."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

from dpg.api.binance.fstreams import UserStreams
from dpg.api.futures import FuturesViews
from dpg.api.runtime import Runtime
from dpg.api.views import AccountViews
from dpg.core.commands import Credit, IndexPrice, OpenAccount, PlaceOrder, SetMarginMode
from dpg.core.engine import Engine
from dpg.core.genesis import GENESIS, PERPS
from dpg.core.model import OrderType, Side

USDT = 10**6
BTC = 10**8
T0 = 1_796_000_000_000 * 1_000_000  # ns


def _streams() -> tuple[UserStreams, FuturesViews, int]:
    """Account 3 long 0.05 BTC-PERP at 50,000, isolated at 20x (125 USDT margin, 10 USDT
    maintenance at 0.4 %), against account 2's short."""
    e = Engine()
    for seq, cmd in enumerate((*GENESIS, *PERPS, OpenAccount(2), OpenAccount(3), Credit(2, "USDT", 100_000 * USDT, "a"),
                Credit(3, "USDT", 100_000 * USDT, "b"), IndexPrice("BTC-PERP", 50_000 * USDT),
                SetMarginMode(3, "BTC-PERP", True),
                PlaceOrder(2, "BTC-PERP", Side.SELL, OrderType.LIMIT, 50_000 * USDT, BTC // 20),
                PlaceOrder(3, "BTC-PERP", Side.BUY, OrderType.LIMIT, 50_000 * USDT, BTC // 20)), start=1):
        e.apply(cmd, seq, T0 + seq * 1_000_000_000)
    futures = FuturesViews(e.markets, e.assets)
    futures.load(e)
    views = AccountViews(e.markets, e.assets)
    views.load(e)
    rt = SimpleNamespace(markets=e.markets, futures=futures, views=views)
    mi = next(m.index for m in e.markets if m.symbol == "BTC-PERP")
    return UserStreams(cast(Runtime, rt)), futures, mi


def test_a_margin_call_once_per_crossing_of_eighty_percent() -> None:
    streams, futures, mi = _streams()
    s = futures.settings(3, mi)
    assert (s.size, s.isolated) == (BTC // 20, True)
    pv = futures.perp(streams.rt.markets[mi])
    assert pv is not None
    margin = Decimal(s.margin) / USDT  # the isolated margin the order put up (its fee aside)

    def at(mark: Decimal) -> dict[str, Any] | None:
        pv.mark = int(mark * USDT)
        return streams.margin_call(3, mi)

    # maintenance 0.4 % of 0.05 x P against the balance margin + 0.05 x (P - 50,000): 80 % where
    # 0.0002 P x 5 = 4 (margin + 0.05 P - 2,500), P = 4 (2,500 - margin) / 0.199
    edge = (4 * (2_500 - margin) / Decimal("0.199")).quantize(Decimal("0.01"))
    assert at(edge + Decimal("0.10")) is None  # not yet
    call = at(edge - Decimal("0.10"))
    assert call is not None and call["e"] == "MARGIN_CALL"
    [p] = call["p"]
    assert (p["s"], p["ps"], p["pa"], p["mt"]) == ("BTCUSDT", "BOTH", "0.05000000", "ISOLATED")
    assert Decimal(p["mm"]) == Decimal(pv.tiers.maintenance(abs(s.size) * pv.mark // BTC)) / USDT
    assert Decimal(p["up"]) == (edge - Decimal("0.10") - 50_000) / 20 and Decimal(p["iw"]) == margin
    assert Decimal(p["mp"]) == edge - Decimal("0.10")
    assert at(edge - 1) is None  # still there: no second call
    assert at(Decimal(49_000)) is None  # back above
    assert at(edge - 1) is not None  # and down again: a new call
    assert streams.margin_call(2, mi) is None  # the short gains as the mark falls
