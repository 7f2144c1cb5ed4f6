"""(working copy: replaced by the perpsmath branch's module at merge)"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from dpg.core.model import PPM


@dataclass(frozen=True, slots=True)
class Tier:
    floor: int
    mmr_ppm: int
    max_leverage: int
    cum_ppm: int


@dataclass(frozen=True, slots=True)
class TierTable:
    tiers: tuple[Tier, ...]

    @staticmethod
    def of(rows: Sequence[tuple[int, int, int]]) -> TierTable:
        out: list[Tier] = []
        cum = 0
        prev = 0
        for floor, mmr, lev in rows:
            cum += floor * (mmr - prev)
            prev = mmr
            out.append(Tier(floor, mmr, lev, cum))
        if not out or out[0].floor != 0:
            raise ValueError("the first tier's floor must be 0")
        return TierTable(tuple(out))

    def tier(self, notional: int) -> Tier:
        i = bisect_right([t.floor for t in self.tiers], notional) - 1
        return self.tiers[max(i, 0)]

    def maintenance(self, notional: int) -> int:
        t = self.tier(notional)
        return max(0, -((t.cum_ppm - notional * t.mmr_ppm) // PPM))

    def max_leverage(self, notional: int) -> int:
        return self.tier(notional).max_leverage

    def canonical(self) -> list[list[int]]:
        return [[t.floor, t.mmr_ppm, t.max_leverage] for t in self.tiers]


def initial_margin(notional: int, leverage: int) -> int:
    return -(-notional // leverage)


U = 1_000_000
BTC_PERP_TIERS = TierTable.of([
    (0, 4_000, 100), (50_000 * U, 5_000, 100), (250_000 * U, 10_000, 50), (1_000_000 * U, 25_000, 20),
    (10_000_000 * U, 50_000, 10), (20_000_000 * U, 100_000, 5), (50_000_000 * U, 125_000, 4),
    (100_000_000 * U, 150_000, 3), (200_000_000 * U, 250_000, 2), (300_000_000 * U, 500_000, 1),
])
ETH_PERP_TIERS = TierTable.of([
    (0, 5_000, 100), (50_000 * U, 6_500, 75), (250_000 * U, 10_000, 50), (1_000_000 * U, 20_000, 25),
    (5_000_000 * U, 50_000, 10), (10_000_000 * U, 100_000, 5), (20_000_000 * U, 125_000, 4),
    (50_000_000 * U, 150_000, 3), (100_000_000 * U, 250_000, 2), (200_000_000 * U, 500_000, 1),
])
DEFAULT_TIERS = {"BTC-PERP": BTC_PERP_TIERS, "ETH-PERP": ETH_PERP_TIERS}


def liq_price(wallet: Fraction, side: int, qty: Fraction, entry: Fraction, mmr: Fraction, cum: Fraction,
              other_mm: Fraction = Fraction(0), other_upnl: Fraction = Fraction(0)) -> Fraction:
    return (wallet - other_mm + other_upnl + cum - side * qty * entry) / (qty * mmr - side * qty)
