"""The API's futures views: built from the events alone they say what the engine says (an API
process in the multi-process mode only follows the event feed), and the positions they write."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dpg.api.futures import FuturesViews
from dpg.core import events as E
from dpg.core.commands import (
    AdjustMargin,
    Credit,
    Funding,
    IndexPrice,
    OpenAccount,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
)
from dpg.core.engine import Engine
from dpg.core.genesis import GENESIS, PERPS
from dpg.core.model import INSURANCE_ACCOUNT, OrderType, Side

USDT = 10**6
BTC = 10**8
T0 = 1_796_000_000_000 * 1_000_000  # ns


def _run() -> tuple[Engine, FuturesViews, FuturesViews]:
    e = Engine()
    fed = FuturesViews(e.markets, e.assets)
    fed.load(e)  # an empty engine: everything comes from the events
    seq = 0

    def apply(cmd: Any) -> list[Any]:
        nonlocal seq
        seq += 1
        ev = e.apply(cmd, seq, T0 + seq * 1_000_000_000)
        fed.apply(seq, T0 + seq * 1_000_000_000, ev)
        return ev

    for cmd in (*GENESIS, *PERPS):
        apply(cmd)
    for a in (1, 2, 3):
        apply(OpenAccount(a))
        apply(Credit(a, "USDT", 100_000 * USDT, f"u{a}"))
    apply(IndexPrice("BTC-PERP", 50_000 * USDT))
    apply(SetLeverage(1, "BTC-PERP", 10))
    apply(SetMarginMode(3, "BTC-PERP", True))
    apply(PlaceOrder(2, "BTC-PERP", Side.SELL, OrderType.LIMIT, 50_000 * USDT, BTC // 10))
    apply(PlaceOrder(1, "BTC-PERP", Side.BUY, OrderType.LIMIT, 50_000 * USDT, BTC // 20))
    apply(PlaceOrder(3, "BTC-PERP", Side.BUY, OrderType.LIMIT, 50_000 * USDT, BTC // 20))
    apply(AdjustMargin(3, "BTC-PERP", 25 * USDT))
    apply(IndexPrice("BTC-PERP", 49_000 * USDT))
    loaded = FuturesViews(e.markets, e.assets)
    loaded.load(e)
    return e, fed, loaded


def test_the_views_fed_by_events_match_the_views_loaded_from_the_engine() -> None:
    e, fed, loaded = _run()
    assert fed.seq == loaded.seq == e.seq
    assert sorted(fed.perps) == sorted(loaded.perps) == [4, 5]
    for mi in (4, 5):
        a, b = fed.perps[mi], loaded.perps[mi]
        assert (a.index, a.mark, a.last_rate, a.tiers) == (b.index, b.mark, b.last_rate, b.tiers)
    def pos(v: FuturesViews) -> dict[tuple[int, int], tuple[int, int, int, int, bool]]:
        return {k: (p.size, p.cost, p.margin, p.leverage, p.isolated) for k, p in v.positions.items()}
    assert pos(fed) == pos(loaded)
    assert fed.insurance == loaded.insurance
    assert loaded.insurance.get(2, 0) == sum(e.balances[INSURANCE_ACCOUNT][4:6]) > 0  # USDT: 10 % of the fees
    assert fed.positions[(1, 4)].size == BTC // 20 and fed.positions[(2, 4)].size == -BTC // 10
    assert fed.positions[(3, 4)].isolated and fed.positions[(3, 4)].margin == e.fut.positions[(3, 4)].margin


def test_positions_are_written_with_the_servers_liquidation_price() -> None:
    e, fed, _ = _run()
    [iso] = fed.positions_json(3, 0)
    p = e.fut.positions[(3, 4)]
    assert iso["margin_mode"] == "isolated" and iso["margin"] == f"{Decimal(p.margin) / USDT:.6f}"
    # isolated long: (margin + cum - Q x EP) / (Q x MMR - Q), Q = 0.05, EP = 50,000, MMR 0.4 %
    q = Decimal("0.05")
    want = (Decimal(p.margin) / USDT - q * 50_000) / (q * Decimal("0.004") - q)
    assert iso["liquidation_price"] == f"{want:.2f}"
    mark = Decimal(fed.perps[4].mark) / USDT
    assert Decimal(iso["unrealized_pnl"]) == (mark - 50_000) * Decimal("0.05")
    assert iso["entry_price"] == "50000.000000" and iso["leverage"] == 20
    [short] = fed.positions_json(2, 100_000 * USDT)
    assert short["side"] == "short" and short["size"] == "-0.10000000" and short["margin_mode"] == "cross"
    assert Decimal(short["roe"]) > 0  # the mark fell: a short gains


def test_income_rows_are_each_accounts_fees_and_funding() -> None:
    """The income of /fapi/v1/income: a trade's fee as each side paid it, and a funding payment as
    each account's balance (cross) or isolated margin (isolated) moved, read from the events alone."""
    e, fed, _ = _run()
    fees = {acct: sum(-r.amount for r in fed.income.get(acct, ()) if r.kind == "COMMISSION")
            for acct, _ in fed.positions}
    # 0.05 % taker, 0.02 % maker on 2,500 USDT each: 1 and 3 took from 2, who made both
    assert fees == {1: 1_250_000, 2: 1_000_000, 3: 1_250_000}
    pv = fed.perps[4]
    margin_before = fed.positions[(3, 4)].margin
    ts = (pv.next_funding + 1) * 1_000_000
    events = e.apply(Funding("BTC-PERP"), e.seq + 1, ts)
    fed.apply(e.seq, ts, events)
    [paid] = [ev for ev in events if ev[0] == E.FUNDING_PAID]
    funding = {acct: sum(r.amount for r in rows if r.kind == "FUNDING_FEE")
               for acct, rows in fed.income.items()}
    assert paid.rate and all(funding.values())  # a funding that moved money
    cross = {ev.account: ev.d_available for ev in events if ev[0] == E.BALANCE and ev.account in (1, 2)}
    assert (funding[1], funding[2]) == (cross[1], cross[2])
    assert funding[3] == fed.positions[(3, 4)].margin - margin_before
    assert sum(funding.values()) == paid.received - paid.paid
