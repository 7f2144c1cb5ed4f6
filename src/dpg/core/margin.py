"""Perpetual futures margin: tier tables, maintenance and initial margin, liquidation prices.

A tier table lists position notional brackets, each with a maintenance margin rate (MMR) and a
maximum leverage. Maintenance is ``notional * MMR_n - cum_n`` with
``cum_n = cum_(n-1) + floor_n * (MMR_n - MMR_(n-1))``, so it is continuous at every floor.
In integer tables notional is in quote base units and rates in ppm; ``cum_ppm`` is kept exact in
quote base units * ppm. ``RealTiers`` holds a table in real units (Fractions) for the liquidation
price formula.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from dpg.core.model import PPM

MAX_LEVERAGE = 100


def _check_rows(rows: Sequence[tuple[Fraction, Fraction, int]], one: Fraction) -> None:
    """ValueError unless the rows (floor, mmr, max_leverage) make a valid tier table; ``one`` is a rate of 100 %."""
    if not rows:
        raise ValueError("a tier table needs at least one tier")
    if rows[0][0] != 0:
        raise ValueError(f"the first tier's floor must be 0, not {rows[0][0]}")
    for i, (floor, mmr, lev) in enumerate(rows):
        if not 0 < mmr < one:
            raise ValueError(f"tier {i}: the maintenance margin rate must be above 0 and below 100 % ({mmr})")
        if isinstance(lev, bool) or not isinstance(lev, int) or not 1 <= lev <= MAX_LEVERAGE:
            raise ValueError(f"tier {i}: the maximum leverage must be an integer from 1 to {MAX_LEVERAGE} ({lev})")
        if mmr * lev > one:
            raise ValueError(f"tier {i}: maintenance rate * maximum leverage exceeds 100 % "
                             "(maintenance would be above the initial margin)")
        if i:
            prev_floor, prev_mmr, prev_lev = rows[i - 1]
            if floor <= prev_floor:
                raise ValueError(f"tier {i}: floors must be strictly ascending ({floor} after {prev_floor})")
            if mmr <= prev_mmr:
                raise ValueError(f"tier {i}: maintenance rates must be strictly ascending ({mmr} after {prev_mmr})")
            if lev > prev_lev:
                raise ValueError(f"tier {i}: maximum leverage must not increase ({lev} after {prev_lev})")


def _ints(row: Sequence[object]) -> tuple[int, int, int]:
    """A row of three integers, or ValueError."""
    if len(row) != 3 or any(isinstance(v, bool) or not isinstance(v, int) for v in row):
        raise ValueError(f"a tier row is three integers (floor, mmr_ppm, max_leverage), not {row!r}")
    floor, mmr, lev = row
    assert isinstance(floor, int) and isinstance(mmr, int) and isinstance(lev, int)
    return floor, mmr, lev


@dataclass(frozen=True, slots=True)
class Tier:
    """One bracket: notional floor (quote base units), MMR (ppm), maximum leverage, cum (quote units * ppm)."""

    floor: int
    mmr_ppm: int
    max_leverage: int
    cum_ppm: int


@dataclass(frozen=True, slots=True)
class TierTable:
    """A market's tier table in integer units, brackets ascending by floor."""

    tiers: tuple[Tier, ...]

    @staticmethod
    def of(rows: Sequence[Sequence[object]]) -> TierTable:
        """The table of rows (floor, mmr_ppm, max_leverage), cum derived; ValueError on an invalid table."""
        checked = [_ints(r) for r in rows]
        _check_rows([(Fraction(f), Fraction(m), lev) for f, m, lev in checked], Fraction(PPM))
        tiers: list[Tier] = []
        cum, prev_mmr = 0, 0
        for floor, mmr, lev in checked:
            cum += floor * (mmr - prev_mmr)
            tiers.append(Tier(floor, mmr, lev, cum))
            prev_mmr = mmr
        return TierTable(tuple(tiers))

    def tier(self, notional: int) -> Tier:
        """The bracket whose floor is the highest at or below ``notional`` (>= 0)."""
        if notional < 0:
            raise ValueError(f"notional must be >= 0, not {notional}")
        return self.tiers[bisect_right(self.tiers, notional, key=lambda t: t.floor) - 1]

    def maintenance(self, notional: int) -> int:
        """Maintenance margin of a position of ``notional`` quote base units, rounded up."""
        t = self.tier(notional)
        return max(0, -((t.cum_ppm - notional * t.mmr_ppm) // PPM))

    def max_leverage(self, notional: int) -> int:
        """The maximum leverage allowed at ``notional``."""
        return self.tier(notional).max_leverage

    def canonical(self) -> list[list[int]]:
        """The rows as ``[[floor, mmr_ppm, max_leverage], ...]``."""
        return [[t.floor, t.mmr_ppm, t.max_leverage] for t in self.tiers]


def initial_margin(notional: int, leverage: int) -> int:
    """Initial margin of ``notional`` at ``leverage``, rounded up."""
    if leverage < 1:
        raise ValueError(f"leverage must be >= 1, not {leverage}")
    return -(-notional // leverage)


_USDT = 1_000_000  # USDT base units per USDT

BTC_PERP_TIERS = TierTable.of([
    (0, 4_000, 100),
    (50_000 * _USDT, 5_000, 100),
    (250_000 * _USDT, 10_000, 50),
    (1_000_000 * _USDT, 25_000, 20),
    (10_000_000 * _USDT, 50_000, 10),
    (20_000_000 * _USDT, 100_000, 5),
    (50_000_000 * _USDT, 125_000, 4),
    (100_000_000 * _USDT, 150_000, 3),
    (200_000_000 * _USDT, 250_000, 2),
    (300_000_000 * _USDT, 500_000, 1),
])

ETH_PERP_TIERS = TierTable.of([
    (0, 5_000, 100),
    (50_000 * _USDT, 6_500, 75),
    (250_000 * _USDT, 10_000, 50),
    (1_000_000 * _USDT, 20_000, 25),
    (5_000_000 * _USDT, 50_000, 10),
    (10_000_000 * _USDT, 100_000, 5),
    (20_000_000 * _USDT, 125_000, 4),
    (50_000_000 * _USDT, 150_000, 3),
    (100_000_000 * _USDT, 250_000, 2),
    (200_000_000 * _USDT, 500_000, 1),
])

DEFAULT_TIERS: dict[str, TierTable] = {"BTC-PERP": BTC_PERP_TIERS, "ETH-PERP": ETH_PERP_TIERS}


def liq_price(wallet: Fraction, side: int, qty: Fraction, entry: Fraction, mmr: Fraction, cum: Fraction,
              other_mm: Fraction = Fraction(0), other_upnl: Fraction = Fraction(0)) -> Fraction:
    """One-way liquidation price, exact:
    ``(WB - TMM_other + UPNL_other + cum - side*Q*EP) / (Q*MMR - side*Q)``; may be <= 0."""
    if side not in (1, -1):
        raise ValueError(f"side must be +1 (long) or -1 (short), not {side}")
    denominator = qty * mmr - side * qty
    if denominator == 0:
        raise ValueError("no liquidation price: quantity is 0 or the rate is 100 %")
    return (wallet - other_mm + other_upnl + cum - side * qty * entry) / denominator


def liq_price_units(wallet: int, side: int, qty: int, cost: int, mmr_ppm: int, cum_ppm: int,
                    scale: int) -> tuple[int, int]:
    """``liq_price`` in the engine's integer units, as an exact fraction (numerator, denominator >
    0): wallet in quote base units, qty base units (``scale`` of them make one whole), cost = Q x EP
    in quote base units, MMR and cum in ppm. The price is quote base units per whole base. The same
    formula multiplied through by PPM x scale / qty: no Fraction on the engine's risk path."""
    if side not in (1, -1):
        raise ValueError(f"side must be +1 (long) or -1 (short), not {side}")
    num = (wallet * PPM + cum_ppm - side * cost * PPM) * scale
    den = qty * (mmr_ppm - side * PPM)
    return (num, den) if den > 0 else (-num, -den)


@dataclass(frozen=True, slots=True)
class PositionTerms:
    """A one-way position: market, side (+1 long, -1 short), qty (whole base), entry and mark (quote per base)."""

    market: str
    side: int
    qty: Fraction
    entry: Fraction
    mark: Fraction


@dataclass(frozen=True, slots=True)
class RealTiers:
    """A tier table in real units: rows (floor, mmr, max_leverage, cum), floor and cum in whole quote."""

    rows: tuple[tuple[Fraction, Fraction, int, Fraction], ...]

    @staticmethod
    def of(rows: Sequence[tuple[Fraction, Fraction, int]]) -> RealTiers:
        """The table of rows (floor, mmr as a fraction, max_leverage), cum derived; ValueError when invalid."""
        for r in rows:
            if len(r) != 3:
                raise ValueError(f"a tier row is (floor, mmr, max_leverage), not {r!r}")
        real = [(Fraction(f), Fraction(m), lev) for f, m, lev in rows]
        _check_rows(real, Fraction(1))
        out: list[tuple[Fraction, Fraction, int, Fraction]] = []
        cum, prev_mmr = Fraction(0), Fraction(0)
        for floor, mmr, lev in real:
            cum += floor * (mmr - prev_mmr)
            out.append((floor, mmr, lev, cum))
            prev_mmr = mmr
        return RealTiers(tuple(out))

    @staticmethod
    def from_table(t: TierTable, quote_decimals: int) -> RealTiers:
        """The integer table ``t`` in whole quote units (quote asset of ``quote_decimals``)."""
        unit = 10**quote_decimals
        return RealTiers(tuple((Fraction(x.floor, unit), Fraction(x.mmr_ppm, PPM), x.max_leverage,
                                Fraction(x.cum_ppm, unit * PPM)) for x in t.tiers))

    def tier(self, notional: Fraction) -> tuple[Fraction, Fraction]:
        """(mmr, cum) of the bracket of ``notional`` (>= 0)."""
        if notional < 0:
            raise ValueError(f"notional must be >= 0, not {notional}")
        _, mmr, _, cum = self.rows[bisect_right(self.rows, notional, key=lambda r: r[0]) - 1]
        return mmr, cum

    def maintenance(self, notional: Fraction) -> Fraction:
        """Maintenance margin of ``notional``, exact."""
        mmr, cum = self.tier(notional)
        return notional * mmr - cum


def _check_position(p: PositionTerms, tables: Mapping[str, RealTiers]) -> None:
    if p.market not in tables:
        raise ValueError(f"no tier table for {p.market}")
    if p.side not in (1, -1):
        raise ValueError(f"{p.market}: side must be +1 (long) or -1 (short), not {p.side}")
    if p.qty <= 0 or p.entry <= 0 or p.mark <= 0:
        raise ValueError(f"{p.market}: quantity, entry and mark must be positive")


def liquidation_prices(wallet: Fraction, mode: str, positions: Sequence[PositionTerms],
                       tables: Mapping[str, RealTiers]) -> list[Fraction | None]:
    """One liquidation price per position (None when no positive price liquidates it).

    A position's tier is the one of its notional at its mark. "isolated": one position, ``wallet``
    its margin. "cross": the others' maintenance and unrealized PnL at their marks count too.
    """
    if mode not in ("isolated", "cross"):
        raise ValueError(f"mode must be 'isolated' or 'cross', not {mode!r}")
    if mode == "isolated" and len(positions) != 1:
        raise ValueError(f"isolated margin takes exactly one position, not {len(positions)}")
    for p in positions:
        _check_position(p, tables)
    mms = [tables[p.market].maintenance(p.qty * p.mark) for p in positions]
    upnls = [p.side * p.qty * (p.mark - p.entry) for p in positions]
    total_mm, total_upnl = sum(mms, Fraction(0)), sum(upnls, Fraction(0))
    out: list[Fraction | None] = []
    for p, mm, upnl in zip(positions, mms, upnls, strict=True):
        mmr, cum = tables[p.market].tier(p.qty * p.mark)
        lp = liq_price(wallet, p.side, p.qty, p.entry, mmr, cum, total_mm - mm, total_upnl - upnl)
        out.append(lp if lp > 0 else None)
    return out
