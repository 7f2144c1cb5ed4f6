"""(working copy: replaced by the perpsmath branch's module at merge)"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

RATE_SCALE = 10**8
INTEREST_8H = 10_000
PREMIUM_CLAMP = 50_000
EIGHT_HOURS_MS = 8 * 3600 * 1000


def _tz(x: Fraction) -> int:
    return int(x)


def interest(interval_ms: int) -> int:
    return INTEREST_8H * interval_ms // EIGHT_HOURS_MS


def funding_cap(first_tier_mmr_ppm: int) -> int:
    return first_tier_mmr_ppm * 100 * 3 // 4


def impact_price(levels: Iterable[tuple[int, int]], notional: int, base_decimals: int) -> Fraction | None:
    left = Fraction(notional)
    qty = Fraction(0)
    scale = 10**base_decimals
    for price, q in levels:
        value = Fraction(price * q, scale)
        if value >= left:
            qty += left / price * scale
            out: Fraction = Fraction(notional) * scale / qty
            return out
        left -= value
        qty += q
    return None


def premium_index(impact_bid: Fraction | None, impact_ask: Fraction | None, index: int) -> int:
    up = max(Fraction(0), impact_bid - index) if impact_bid is not None else Fraction(0)
    down = max(Fraction(0), index - impact_ask) if impact_ask is not None else Fraction(0)
    return _tz((up - down) * RATE_SCALE / index)


def weighted_average(samples: Sequence[int]) -> int:
    if not samples:
        return 0
    n = len(samples)
    return _tz(Fraction(sum((i + 1) * s for i, s in enumerate(samples)), n * (n + 1) // 2))


def funding_rate(avg_premium: int, interest_rate: int, cap: int) -> int:
    f = avg_premium + max(-PREMIUM_CLAMP, min(PREMIUM_CLAMP, interest_rate - avg_premium))
    return max(-cap, min(cap, f))


def payment(qty: int, mark: int, rate: int, base_decimals: int) -> int:
    num = qty * mark * rate
    den: int = 10**base_decimals * RATE_SCALE
    if num > 0:
        return -(-num // den)
    return -(-num // den)


def mark_price(index: int, last_rate: int, to_funding_ms: int, interval_ms: int, basis_avg: int,
               last_price: int) -> int:
    a = index + _tz(Fraction(index * last_rate * to_funding_ms, interval_ms * RATE_SCALE))
    b = index + basis_avg
    c = last_price or index
    return sorted((a, b, c))[1]
