"""Tier tables, maintenance and initial margin, liquidation prices (dpg.core.margin)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpg.core.margin import (
    BTC_PERP_TIERS,
    DEFAULT_TIERS,
    ETH_PERP_TIERS,
    PositionTerms,
    RealTiers,
    TierTable,
    initial_margin,
    liq_price,
    liquidation_prices,
)
from dpg.core.model import PPM

USDT = 1_000_000
F = Fraction


def test_btc_cum_at_250_000_is_1_300_and_at_1_000_000_is_16_300() -> None:
    assert BTC_PERP_TIERS.tier(250_000 * USDT).cum_ppm == 1_300 * USDT * PPM
    assert BTC_PERP_TIERS.tier(1_000_000 * USDT).cum_ppm == 16_300 * USDT * PPM
    real = RealTiers.from_table(BTC_PERP_TIERS, 6)
    assert real.tier(F(250_000)) == (F(1, 100), F(1_300))
    assert real.tier(F(1_000_000)) == (F(25, 1000), F(16_300))


def test_default_tables_are_the_issues_and_eth_perps_own() -> None:
    assert DEFAULT_TIERS == {"BTC-PERP": BTC_PERP_TIERS, "ETH-PERP": ETH_PERP_TIERS}
    assert BTC_PERP_TIERS.canonical()[3] == [1_000_000 * USDT, 25_000, 20]
    assert BTC_PERP_TIERS.canonical()[-1] == [300_000_000 * USDT, 500_000, 1]
    assert ETH_PERP_TIERS.canonical()[:2] == [[0, 5_000, 100], [50_000 * USDT, 6_500, 75]]
    assert ETH_PERP_TIERS.canonical()[-1] == [200_000_000 * USDT, 500_000, 1]
    assert len(ETH_PERP_TIERS.tiers) == 10
    for table in DEFAULT_TIERS.values():
        assert TierTable.of([(a, b, c) for a, b, c in table.canonical()]) == table


def test_maintenance_by_hand() -> None:
    t = BTC_PERP_TIERS
    assert t.maintenance(0) == 0
    assert t.maintenance(1) == 1  # 0.004 of a base unit, rounded up
    assert t.maintenance(251) == 2  # 1.004 -> 2
    assert t.maintenance(10_000 * USDT) == 40 * USDT  # 0.4 %
    assert t.maintenance(50_000 * USDT) == 200 * USDT  # at the floor both lines give 200
    assert t.maintenance(100_000 * USDT) == 450 * USDT  # 0.5 % - 50
    assert t.maintenance(500_000 * USDT) == 3_700 * USDT  # 1 % - 1,300
    assert t.maintenance(2_000_000 * USDT) == 33_700 * USDT  # 2.5 % - 16,300
    assert t.max_leverage(0) == 100
    assert t.max_leverage(250_000 * USDT - 1) == 100
    assert t.max_leverage(250_000 * USDT) == 50
    assert t.tier(10**30).mmr_ppm == 500_000
    with pytest.raises(ValueError, match="notional"):
        t.tier(-1)
    real = RealTiers.from_table(ETH_PERP_TIERS, 6)
    assert real.maintenance(F(100_000)) == F(100_000) * F(65, 10_000) - F(75)  # 0.65 % - 75


def test_initial_margin_rounds_up() -> None:
    assert initial_margin(1_000, 10) == 100
    assert initial_margin(1_001, 10) == 101
    assert initial_margin(0, 100) == 0
    with pytest.raises(ValueError):
        initial_margin(1, 0)


@pytest.mark.parametrize(("rows", "reason"), [
    ([], "at least one tier"),
    ([(1, 4_000, 100)], "first tier's floor must be 0"),
    ([(0, 4_000, 100), (0, 5_000, 100)], "floors must be strictly ascending"),
    ([(0, 4_000, 100), (10, 5_000, 100), (5, 6_000, 50)], "floors must be strictly ascending"),
    ([(0, 0, 100)], "above 0 and below 100 %"),
    ([(0, PPM, 1)], "above 0 and below 100 %"),
    ([(0, -1, 1)], "above 0 and below 100 %"),
    ([(0, 4_000, 100), (10, 4_000, 100)], "rates must be strictly ascending"),
    ([(0, 4_000, 100), (10, 3_000, 100)], "rates must be strictly ascending"),
    ([(0, 4_000, 0)], "integer from 1 to 100"),
    ([(0, 4_000, 101)], "integer from 1 to 100"),
    ([(0, 4_000, 50), (10, 5_000, 51)], "must not increase"),
    ([(0, 20_000, 100)], "exceeds 100 %"),
    ([(0, 4_000, 100.0)], "three integers"),
    ([(0, 4_000)], "three integers"),
])
def test_tier_table_refusals(rows: list[tuple[int, int, int]], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        TierTable.of(rows)
    if rows and all(len(r) == 3 and isinstance(r[2], int) for r in rows):
        with pytest.raises(ValueError, match=reason):
            RealTiers.of([(F(a), F(b, PPM), c) for a, b, c in rows])


def test_real_tiers_of_decimal_rows_matches_the_integer_table() -> None:
    rows = [(F(a, USDT), F(b, PPM), c) for a, b, c in BTC_PERP_TIERS.canonical()]
    assert RealTiers.of(rows) == RealTiers.from_table(BTC_PERP_TIERS, 6)


def test_short_liquidation_price_is_3174_60() -> None:
    lp = liq_price(F(1_000), -1, F(3), F(3_000), F(5, 100), F(0))
    assert lp == F(10_000) / F(315, 100)
    assert f"{float(lp):.2f}" == "3174.60"
    # at that price the short's equity equals its maintenance
    assert 1_000 - 3 * (lp - 3_000) == 3 * lp * F(5, 100)


def test_long_liquidation_price() -> None:
    lp = liq_price(F(100), 1, F(2), F(100), F(1, 100), F(0))
    assert lp == F(5_000, 99)
    assert 100 + 2 * (lp - 100) == 2 * lp * F(1, 100)
    # enough margin: no positive price liquidates it
    assert liq_price(F(500), 1, F(2), F(100), F(1, 100), F(0)) < 0


def test_liquidation_prices_isolated_uses_the_tier_at_the_mark() -> None:
    tables = {"ETH-PERP": RealTiers.of([(F(0), F(5, 100), 20), (F(10_000), F(10, 100), 10)])}
    at_entry = liquidation_prices(F(1_000), "isolated", [PositionTerms("ETH-PERP", -1, F(3), F(3_000), F(3_000))],
                                  tables)
    assert at_entry == [F(10_000) / F(315, 100)]
    # marked at 3,400 the notional 10,200 is in the second bracket: MMR 10 %, cum 10,000 * 5 % = 500
    at_mark = liquidation_prices(F(1_000), "isolated", [PositionTerms("ETH-PERP", -1, F(3), F(3_000), F(3_400))],
                                 tables)
    assert at_mark == [liq_price(F(1_000), -1, F(3), F(3_000), F(10, 100), F(500))]
    assert at_mark == [F(10_500) / F(33, 10)]


def test_liquidation_prices_cross_two_positions_by_hand() -> None:
    tables = {m: RealTiers.from_table(t, 6) for m, t in DEFAULT_TIERS.items()}
    btc = PositionTerms("BTC-PERP", 1, F(1), F(50_000), F(49_000))  # mm 196, upnl -1,000
    eth = PositionTerms("ETH-PERP", -1, F(10), F(3_000), F(3_100))  # mm 155, upnl -1,000
    lps = liquidation_prices(F(10_000), "cross", [btc, eth], tables)
    # BTC: (10,000 - 155 - 1,000 + 0 - 50,000) / (0.004 - 1)
    assert lps[0] == F(-41_155) / F(-996, 1000)
    # ETH: (10,000 - 196 - 1,000 + 0 + 30,000) / (10 * 0.005 + 10)
    assert lps[1] == F(38_804) / F(1005, 100)
    # at the BTC price, cross equity equals total maintenance (ETH held at its mark)
    p = lps[0]
    assert p is not None
    assert 10_000 + (p - 50_000) - 1_000 == p * F(4, 1000) + 155


def test_liquidation_prices_none_and_refusals() -> None:
    tables = {"BTC-PERP": RealTiers.from_table(BTC_PERP_TIERS, 6)}
    long = PositionTerms("BTC-PERP", 1, F(1), F(50_000), F(50_000))
    assert liquidation_prices(F(60_000), "isolated", [long], tables) == [None]
    with pytest.raises(ValueError, match="exactly one position"):
        liquidation_prices(F(1), "isolated", [long, long], tables)
    with pytest.raises(ValueError, match="exactly one position"):
        liquidation_prices(F(1), "isolated", [], tables)
    with pytest.raises(ValueError, match="mode"):
        liquidation_prices(F(1), "portfolio", [long], tables)
    with pytest.raises(ValueError, match="no tier table"):
        liquidation_prices(F(1), "cross", [PositionTerms("XRP-PERP", 1, F(1), F(1), F(1))], tables)
    with pytest.raises(ValueError, match="positive"):
        liquidation_prices(F(1), "cross", [PositionTerms("BTC-PERP", 1, F(0), F(1), F(1))], tables)
    with pytest.raises(ValueError, match="side"):
        liquidation_prices(F(1), "cross", [PositionTerms("BTC-PERP", 0, F(1), F(1), F(1))], tables)


@st.composite
def tier_tables(draw: st.DrawFn) -> TierTable:
    n = draw(st.integers(1, 8))
    gaps = draw(st.lists(st.integers(1, 10**15), min_size=n - 1, max_size=n - 1))
    mmrs = sorted(draw(st.sets(st.integers(1, PPM - 1), min_size=n, max_size=n)))
    floors = [0]
    for g in gaps:
        floors.append(floors[-1] + g)
    rows, lev = [], 100
    for floor, mmr in zip(floors, mmrs, strict=True):
        lev = draw(st.integers(1, max(1, min(lev, PPM // mmr))))
        rows.append((floor, mmr, lev))
    return TierTable.of(rows)


@given(tier_tables(), st.lists(st.integers(0, 10**16), min_size=2, max_size=20))
def test_maintenance_is_continuous_at_every_floor_and_non_decreasing(table: TierTable, notionals: list[int]) -> None:
    for prev, t in zip(table.tiers, table.tiers[1:], strict=False):
        assert t.floor * prev.mmr_ppm - prev.cum_ppm == t.floor * t.mmr_ppm - t.cum_ppm
        assert table.maintenance(t.floor - 1) <= table.maintenance(t.floor)
    points = sorted(notionals + [t.floor for t in table.tiers])
    values = [table.maintenance(x) for x in points]
    assert values == sorted(values)
    real = RealTiers.from_table(table, 6)
    for x in points:
        assert table.maintenance(x) == math.ceil(real.maintenance(F(x, USDT)) * USDT)
