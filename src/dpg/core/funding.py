"""Perpetual futures funding and mark price, in integers.

Rates are integers of ``RATE_SCALE`` (10**8) units: 0.01 % = 10_000. Prices are quote base units
per whole base asset; quantities base units. Every division rounds as its function says, so funding
never creates a base unit: what positions pay is rounded up, what they receive toward zero, and the
remainder goes to the insurance fund.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

from dpg.core.model import PPM

RATE_SCALE = 10**8
INTEREST_8H = 10_000  # 0.01 % per 8 hours
PREMIUM_CLAMP = 50_000  # +-0.05 %
EIGHT_HOURS_MS = 8 * 3600 * 1000


def _trunc(num: int, den: int) -> int:
    """num / den rounded toward zero (den > 0)."""
    q = abs(num) // den
    return q if num >= 0 else -q


def interest(interval_ms: int) -> int:
    """The interest rate for a funding interval: INTEREST_8H scaled to it, toward zero."""
    if interval_ms <= 0:
        raise ValueError(f"the funding interval must be positive, not {interval_ms} ms")
    return _trunc(INTEREST_8H * interval_ms, EIGHT_HOURS_MS)


def funding_cap(first_tier_mmr_ppm: int) -> int:
    """+-cap on the funding rate: 75 % of the first tier's MMR, in rate units (0.4 % -> 300_000)."""
    return _trunc(first_tier_mmr_ppm * RATE_SCALE * 3, PPM * 4)


def impact_price(levels: Iterable[tuple[int, int]], notional: int, base_decimals: int) -> Fraction | None:
    """Average fill price of trading ``notional`` quote units through ``levels`` (price, qty), best first;
    None when they hold less."""
    if notional <= 0:
        raise ValueError(f"the impact notional must be positive, not {notional}")
    unit = 10**base_decimals
    left = Fraction(notional)
    filled = Fraction(0)  # base units
    for price, qty in levels:
        if price <= 0 or qty <= 0:
            raise ValueError(f"a book level needs a positive price and quantity, not ({price}, {qty})")
        value = Fraction(price * qty, unit)
        if value >= left:
            filled += left * unit / price
            avg: Fraction = notional * unit / filled
            return avg
        left -= value
        filled += qty
    return None


def premium_index(impact_bid: Fraction | None, impact_ask: Fraction | None, index: int) -> int:
    """``[max(0, bid - index) - max(0, index - ask)] / index`` in rate units, toward zero; a missing side adds 0."""
    if index <= 0:
        raise ValueError(f"the index price must be positive, not {index}")
    up = max(Fraction(0), impact_bid - index) if impact_bid is not None else Fraction(0)
    down = max(Fraction(0), index - impact_ask) if impact_ask is not None else Fraction(0)
    return int((up - down) * RATE_SCALE / index)


def weighted_average(samples: Sequence[int]) -> int:
    """Average of ``samples`` with weights 1, 2, ..., n (the latest weighs most), toward zero; 0 when empty."""
    n = len(samples)
    if not n:
        return 0
    return _trunc(sum(i * s for i, s in enumerate(samples, 1)), n * (n + 1) // 2)


def funding_rate(avg_premium: int, interest_rate: int, cap: int) -> int:
    """``F = avgP + clamp(I - avgP, +-PREMIUM_CLAMP)``, then clamped to +-cap."""
    if cap < 0:
        raise ValueError(f"the funding cap must be >= 0, not {cap}")
    f = avg_premium + min(PREMIUM_CLAMP, max(-PREMIUM_CLAMP, interest_rate - avg_premium))
    return min(cap, max(-cap, f))


def payment(qty: int, mark: int, rate: int, base_decimals: int) -> int:
    """What one position pays (negative: receives): ``qty * mark * rate / (10**base_decimals * RATE_SCALE)``,
    a payment rounded up, a receipt toward zero (both: the ceiling)."""
    owed: int = -((-qty * mark * rate) // (10**base_decimals * RATE_SCALE))
    return owed


def mark_price(index: int, last_rate: int, to_funding_ms: int, interval_ms: int, basis_avg: int,
               last_price: int) -> int:
    """Median of index * (1 + last_rate * to_funding / interval) (toward zero), index + basis_avg and
    the last price (the index when 0: no trade yet)."""
    if interval_ms <= 0:
        raise ValueError(f"the funding interval must be positive, not {interval_ms} ms")
    funded = _trunc(index * (interval_ms * RATE_SCALE + last_rate * to_funding_ms), interval_ms * RATE_SCALE)
    return sorted((funded, index + basis_avg, last_price or index))[1]
