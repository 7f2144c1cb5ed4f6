"""Property tests over long random command sequences mixing spot and perpetuals, index ticks that
swing far enough to liquidate, funding and margin changes: after every command the conservation
identity holds (balances + isolated margins - open cost = credits - debits, per asset), Σ long =
Σ short per market, no balance is negative except a cross account's that its equity covers; a
replay of the journal and a snapshot taken half-way reach the same state hash."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpg.core.commands import (
    AdjustMargin,
    AmendOrder,
    CancelOrder,
    Credit,
    Funding,
    IndexPrice,
    OpenAccount,
    PlaceOrder,
    RequestWithdrawal,
    SetLeverage,
    SetMarginMode,
)
from dpg.core.engine import Engine
from dpg.core.genesis import GENESIS, PERPS
from dpg.core.model import STP, OrderFlag, OrderType, Side
from dpg.core.state import decode, encode, state_hash

USDT = 10**6
TICK = 10_000
BTC_LOT = 10_000
ETH_LOT = 10**14
HOUR = 3_600_000
PERP_MARKETS = {"BTC-PERP": (20_000, 5 * BTC_LOT), "ETH-PERP": (1_000, 100 * ETH_LOT)}  # (price, a step of size)

accounts = st.integers(1, 4)


@st.composite
def perp_command(draw: Any) -> Any:
    market = draw(st.sampled_from(list(PERP_MARKETS)))
    base, lot = PERP_MARKETS[market]
    acct = draw(accounts)
    side = draw(st.sampled_from([Side.BUY, Side.SELL]))
    kind = draw(st.sampled_from(["limit"] * 8 + ["ioc", "post", "market"] * 2 + [
        "reduce", "close", "stop", "cancel", "amend", "leverage", "mode", "margin", "index", "index", "index",
        "funding", "spot", "withdraw"]))
    price = (base * 100 + draw(st.integers(-300, 300))) * TICK  # within 3 % of the base price
    qty = draw(st.integers(1, 60)) * lot
    if kind in ("limit", "ioc", "post", "reduce"):
        otype = {"limit": OrderType.LIMIT, "ioc": OrderType.IOC, "post": OrderType.POST_ONLY,
                 "reduce": OrderType.LIMIT}[kind]
        flags = OrderFlag.REDUCE_ONLY.value if kind == "reduce" else 0
        return PlaceOrder(acct, market, side, otype, price, qty, stp=draw(st.sampled_from(list(STP))), flags=flags)
    if kind == "market":
        return PlaceOrder(acct, market, side, OrderType.MARKET, 0, qty)
    if kind == "close":
        return PlaceOrder(acct, market, side, OrderType.MARKET, 0, 0, flags=OrderFlag.CLOSE_POSITION.value)
    if kind == "stop":
        otype = draw(st.sampled_from([OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET]))
        return PlaceOrder(acct, market, side, otype, 0, qty, stop_price=price,
                          flags=draw(st.sampled_from([0, OrderFlag.REDUCE_ONLY.value])))
    if kind == "cancel":
        return CancelOrder(acct, market, draw(st.integers(1, 80)))
    if kind == "amend":
        return AmendOrder(acct, market, draw(st.integers(1, 80)), price * draw(st.integers(0, 1)),
                          qty * draw(st.integers(0, 1)))
    if kind == "leverage":
        return SetLeverage(acct, market, draw(st.sampled_from([1, 2, 5, 10, 20, 50, 100, 125])))
    if kind == "mode":
        return SetMarginMode(acct, market, draw(st.booleans()))
    if kind == "margin":
        return AdjustMargin(acct, market, draw(st.integers(-200, 200)) * USDT)
    if kind == "index":
        # mostly small moves, sometimes a swing of up to 30 % that liquidates the leveraged
        swing = draw(st.sampled_from([1, 1, 1, 10, 30]))
        return IndexPrice(market, base * USDT * (1000 + draw(st.integers(-swing, swing)) * 10) // 1000)
    if kind == "funding":
        return Funding(market)
    if kind == "spot":
        return PlaceOrder(acct, "BTC/USDT", side, OrderType.LIMIT, price if market == "BTC-PERP" else price * 20,
                          draw(st.integers(1, 40)) * BTC_LOT)
    return RequestWithdrawal(acct, "USDT", draw(st.integers(1, 3_000)) * USDT, f"w{draw(st.integers(0, 10**9))}",
                             "dev:0x00")


def setup() -> list[Any]:
    out: list[Any] = [*GENESIS, *PERPS]
    for a in (1, 2, 3, 4):
        out += [OpenAccount(a), Credit(a, "USDT", (2_000 + 3_000 * a) * USDT, f"c{a}"),
                Credit(a, "BTC", 10**8, f"b{a}")]
    out += [IndexPrice("BTC-PERP", 20_000 * USDT), IndexPrice("ETH-PERP", 1_000 * USDT)]
    return out


def run(engine: Engine, cmds: list[Any], start: int, steps: list[int], check: bool) -> None:
    ts = 0
    for i, cmd in enumerate(cmds):
        ts += steps[i % len(steps)]
        engine.apply(cmd, start + i, (ts + start * 3 * HOUR) * 1_000_000)  # ns, as the sequencer stamps; forward
        if check:
            errs = engine.conservation_errors()
            assert not errs, (i, cmd, errs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(perp_command(), min_size=50, max_size=300), st.lists(st.integers(1, 3 * HOUR), min_size=1,
                                                                   max_size=8))
def test_conservation_balance_and_replay_over_random_perpetual_flows(cmds: list[Any], steps: list[int]) -> None:
    base = setup()
    engine = Engine()
    run(engine, base, 1, [1], check=False)
    half = len(cmds) // 2
    run(engine, cmds[:half], len(base) + 1, steps, check=True)
    copy = decode(encode(engine))
    assert state_hash(copy) == state_hash(engine)
    rest = cmds[half:]
    run(engine, rest, len(base) + 1 + half, steps, check=True)
    run(copy, rest, len(base) + 1 + half, steps, check=False)
    assert state_hash(copy) == state_hash(engine)  # a snapshot half-way has the same future
    again = Engine()
    run(again, base, 1, [1], check=False)
    run(again, cmds[:half], len(base) + 1, steps, check=False)
    run(again, rest, len(base) + 1 + half, steps, check=False)
    assert state_hash(again) == state_hash(engine)  # the journal replays to the same state
    for mi, pm in engine.fut.perps.items():
        assert sum(p.size for p in engine.fut.positions.values() if p.market == mi) == 0, pm.market.symbol
