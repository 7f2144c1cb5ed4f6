"""Funding rate, premium index, payments and mark price (dpg.core.funding)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpg.core.funding import (
    EIGHT_HOURS_MS,
    INTEREST_8H,
    PREMIUM_CLAMP,
    RATE_SCALE,
    funding_cap,
    funding_rate,
    impact_price,
    interest,
    mark_price,
    payment,
    premium_index,
    weighted_average,
)
from dpg.core.margin import BTC_PERP_TIERS

PCT = RATE_SCALE // 100  # 1 % in rate units
USDT = 1_000_000  # quote units per USDT
BTC = 10**8  # base units per BTC


def test_rate_units() -> None:
    assert INTEREST_8H == PCT // 100  # 0.01 %
    assert PREMIUM_CLAMP == 5 * PCT // 100  # 0.05 %
    assert interest(EIGHT_HOURS_MS) == INTEREST_8H
    assert interest(3600 * 1000) == 1_250
    assert interest(1) == 0
    with pytest.raises(ValueError):
        interest(0)
    assert funding_cap(4_000) == 300_000  # 75 % of 0.4 %
    assert funding_cap(BTC_PERP_TIERS.tiers[0].mmr_ppm) == 300_000
    assert funding_cap(5_000) == 375_000


@pytest.mark.parametrize(("premium", "rate"), [
    (3 * PCT // 100, PCT // 100),  # P = 0.03 % -> F = 0.01 %
    (PCT, 95 * PCT // 100),  # P = 1 % -> 0.95 % before the cap
    (-2 * PCT // 100, PCT // 100),  # P = -0.02 % -> 0.01 %
    (-PCT // 10, -5 * PCT // 100),  # P = -0.1 % -> -0.05 %
    (0, PCT // 100),
])
def test_the_issues_funding_clamp_cases(premium: int, rate: int) -> None:
    no_cap = 10 * PCT
    assert funding_rate(premium, interest(EIGHT_HOURS_MS), no_cap) == rate


def test_the_cap_is_75_percent_of_the_first_tiers_mmr() -> None:
    cap = funding_cap(BTC_PERP_TIERS.tiers[0].mmr_ppm)
    assert funding_rate(PCT, INTEREST_8H, cap) == 30 * PCT // 100  # 0.95 % capped to 0.3 %
    assert funding_rate(-PCT, INTEREST_8H, cap) == -30 * PCT // 100
    with pytest.raises(ValueError):
        funding_rate(0, INTEREST_8H, -1)


BIDS = [(101 * USDT, 1 * BTC), (100 * USDT, 2 * BTC)]
ASKS = [(102 * USDT, 1 * BTC), (103 * USDT, 1 * BTC)]


def test_impact_prices_from_a_small_book() -> None:
    # 200 USDT: 1 BTC at 101, then 99 USDT at 100 (0.99 BTC) -> 200 / 1.99
    assert impact_price(BIDS, 200 * USDT, 8) == Fraction(200 * USDT * 100, 199)
    # 102 for 1 BTC, then 98 USDT at 103 (98/103 BTC) -> 200 / (201/103)
    assert impact_price(ASKS, 200 * USDT, 8) == Fraction(200 * 103 * USDT, 201)
    assert impact_price(BIDS, 101 * USDT, 8) == 101 * USDT  # the first level exactly
    assert impact_price(BIDS, 302 * USDT, 8) is None  # the book holds 301
    assert impact_price([], 1, 8) is None
    with pytest.raises(ValueError):
        impact_price(BIDS, 0, 8)


def test_premium_index_from_a_small_book() -> None:
    bid, ask = impact_price(BIDS, 200 * USDT, 8), impact_price(ASKS, 200 * USDT, 8)
    # index 100: (200/1.99 - 100) / 100 = 1/199 = 0.50251... %
    assert premium_index(bid, ask, 100 * USDT) == 502_512
    # index 103: -(103 - 20600/201) / 103 = -1/201 = -0.49751... %, toward zero
    assert premium_index(bid, ask, 103 * USDT) == -497_512
    # inside the impact spread: 0
    assert premium_index(bid, ask, 101 * USDT) == 0
    assert premium_index(None, None, 100 * USDT) == 0
    assert premium_index(bid, None, 100 * USDT) == 502_512
    assert premium_index(None, ask, 103 * USDT) == -497_512
    with pytest.raises(ValueError):
        premium_index(bid, ask, 0)


def test_weighted_average() -> None:
    assert weighted_average([10, 20, 30]) == (10 + 40 + 90) // 6  # 23.33 -> 23
    assert weighted_average([-10, -20, -30]) == -23  # toward zero
    assert weighted_average([7]) == 7
    assert weighted_average([]) == 0
    samples = [premium_index(impact_price(BIDS, 200 * USDT, 8), None, i * USDT) for i in (100, 100, 101)]
    assert samples == [502_512, 502_512, 0]
    assert weighted_average(samples) == (502_512 * 3) // 6


def test_a_funding_payment_to_the_base_unit() -> None:
    mark, rate = 50_000 * USDT, INTEREST_8H  # 0.01 % at 50,000 USDT
    qty = 123_456_789  # 1.23456789 BTC: exactly 6,172,839.45 USDT base units
    assert payment(qty, mark, rate, 8) == 6_172_840  # a long pays, rounded up
    assert payment(-qty, mark, rate, 8) == -6_172_839  # a short receives, rounded down
    assert payment(qty, mark, rate, 8) + payment(-qty, mark, rate, 8) == 1  # to the insurance fund
    assert payment(qty, mark, -rate, 8) == -6_172_839  # F < 0: the long receives
    assert payment(-qty, mark, -rate, 8) == 6_172_840
    assert payment(BTC, mark, rate, 8) == 5 * USDT  # exact: no remainder
    assert payment(0, mark, rate, 8) == 0


def test_mark_price_is_the_median() -> None:
    index, half = 100 * USDT, EIGHT_HOURS_MS // 2
    # index * (1 + 0.01 % * 4h / 8h) = 100.005; index + 0.02 = 100.02; last 99.99
    assert mark_price(index, INTEREST_8H, half, EIGHT_HOURS_MS, 20_000, 99_990_000) == 100_005_000
    assert mark_price(index, INTEREST_8H, half, EIGHT_HOURS_MS, 20_000, 101 * USDT) == 100_020_000
    assert mark_price(index, INTEREST_8H, half, EIGHT_HOURS_MS, -3_000, 99 * USDT) == 99_997_000
    # no trade yet: the index stands for the last price
    assert mark_price(index, INTEREST_8H, half, EIGHT_HOURS_MS, -3_000, 0) == index
    assert mark_price(3, 1, 1, 2, 0, 4) == 3  # 3.000000015 toward zero
    assert mark_price(3, -1, 1, 2, -5, 0) == 2  # 2.999999985 toward zero
    with pytest.raises(ValueError):
        mark_price(index, 0, 0, 0, 0, 0)


@st.composite
def balanced_positions(draw: st.DrawFn) -> list[int]:
    longs = draw(st.lists(st.integers(1, 10**12), min_size=1, max_size=10))
    total = sum(longs)
    cuts = sorted(draw(st.sets(st.integers(1, total - 1), max_size=min(9, total - 1)))) if total > 1 else []
    shorts = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    return longs + [-s for s in shorts]


@given(balanced_positions(), st.integers(1, 10**12), st.integers(-10**7, 10**7), st.integers(0, 18))
def test_funding_never_creates_a_base_unit(qtys: list[int], mark: int, rate: int, base_decimals: int) -> None:
    assert sum(qtys) == 0
    total = sum(payment(q, mark, rate, base_decimals) for q in qtys)
    assert 0 <= total < len(qtys)
