"""The daily report of trade sizes: Benford's first-digit law on trades of the real engine, sized
log-uniformly (passes) and uniformly in [1, 10) (fails); the chi-square tail and the tolerance
rule on their boundaries."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from decimal import Decimal

from dpg.core.commands import PlaceOrder
from dpg.core.model import OrderType, Side
from dpg.surveillance import store
from dpg.surveillance.benford import chi2_sf_8, report
from dpg.surveillance.model import within
from tests.surveillance.conftest import USDT, Market


def test_benford_passes_log_uniform_sizes_and_fails_uniform_ones(market: Market) -> None:
    maker = market.user("198.51.100.1")
    taker = market.user("198.51.100.2")
    rng = random.Random(7)
    sizes = {
        # ETH/USDT: 1 to 10,000 ETH, log-uniform (lot 10**14)
        "ETH/USDT": [int(10 ** rng.uniform(4, 8)) * 10**14 for _ in range(400)],
        # BTC/USDT: 1 to 10 BTC, uniform (lot 10**4)
        "BTC/USDT": [rng.randrange(10**4, 10**5) * 10**4 for _ in range(400)],
    }
    submit = market.node.sequencer.submit
    for symbol, qtys in sizes.items():
        for q in qtys:
            submit(PlaceOrder(maker, symbol, Side.SELL, OrderType.LIMIT, price=100 * USDT, qty=q))
            submit(PlaceOrder(taker, symbol, Side.BUY, OrderType.LIMIT, price=100 * USDT, qty=q))
    market.node.sequencer.submit_wait(PlaceOrder(taker, "ETH/USD", Side.BUY, OrderType.LIMIT, price=USDT,
                                                 qty=10**18))  # every order before it is applied
    market.project()
    today = datetime.fromtimestamp(time.time(), UTC).date()
    reports = {r.market: r for r in store.daily_reports(market.url, market.settings, today)}
    assert {m: r.trades for m, r in reports.items()} == {"ETH/USDT": 400, "BTC/USDT": 400}
    assert reports["ETH/USDT"].passed is True, reports["ETH/USDT"].as_json()
    assert reports["BTC/USDT"].passed is False, reports["BTC/USDT"].as_json()
    assert reports["BTC/USDT"].p_value < 1e-6
    assert store.store_reports(market.url, market.settings, today) == 2
    assert store.store_reports(market.url, market.settings, today) == 0  # kept once


def test_chi_square_tail_at_the_tabled_critical_values() -> None:
    # chi-square with 8 degrees of freedom: 15.507 at 5 %, 20.090 at 1 %, 26.124 at 0.1 %
    assert abs(chi2_sf_8(15.507) - 0.05) < 1e-4
    assert abs(chi2_sf_8(20.090) - 0.01) < 1e-4
    assert abs(chi2_sf_8(26.124) - 0.001) < 1e-5


def test_too_few_trades_are_not_tested_and_round_sizes_are_counted() -> None:
    r = report("X", "2026-01-01", [2 * 10**8, 5 * 10**6, 21 * 10**6, 19 * 10**6, 1234], Decimal("0.05"), 100)
    assert r.passed is None
    assert (r.round_trades, r.neighbours, r.round_ratio) == (2, 2, 2.0)


def test_within_three_percent_is_of_the_smaller_value() -> None:
    pct = Decimal(3)
    assert within(103, 100, pct) and within(100, 103, pct)
    assert within(98, 100, pct)
    assert not within(96, 100, pct) and not within(100, 96, pct)
    assert not within(10301, 10000, pct)
