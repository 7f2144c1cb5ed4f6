"""The daily per-market report of indirect wash-trading tests on trade sizes (as in the research on
crypto wash trading, e.g. Cong, Li, Tang and Yang, "Crypto Wash Trading", 2021):

- first significant digits against Benford's law: the counts of the digits 1-9 against
  n·log10(1 + 1/d), Pearson's χ² with 8 degrees of freedom, its p-value (exact for an even number
  of degrees of freedom), and pass when p >= the significance alpha (too few trades: not tested);
- clustering at round sizes: the share of trades whose size has one significant digit (0.5, 2, 300
  — the same in base units and in whole units), and the ratio of their count to half the count of
  their neighbours, the two-digit sizes one step of the second digit away (1.9 and 2.1 around 2).
  People trading by hand pick round sizes (a ratio well above 1); a program drawing sizes at random
  does not (about 1). Reported, not judged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

BENFORD = tuple(math.log10(1 + 1 / d) for d in range(1, 10))
DOF = 8


def chi2_sf_8(x: float) -> float:
    """P(χ² with 8 degrees of freedom >= x): e^(-x/2) · Σ_{i<4} (x/2)^i / i!."""
    h = x / 2
    return math.exp(-h) * sum(h**i / math.factorial(i) for i in range(4))


def digits(size: int) -> str:
    """The significant digits of a positive size (trailing zeros dropped)."""
    return str(size).rstrip("0")


@dataclass(frozen=True, slots=True)
class MarketReport:
    market: str
    day: str  # YYYY-MM-DD (UTC)
    trades: int
    counts: tuple[int, ...]  # trades per first digit 1..9
    chi2: float
    p_value: float
    alpha: Decimal
    passed: bool | None  # None: fewer than the minimum of trades
    round_trades: int
    neighbours: int

    @property
    def round_share(self) -> float:
        return self.round_trades / self.trades if self.trades else 0.0

    @property
    def round_ratio(self) -> float | None:
        return self.round_trades / (self.neighbours / 2) if self.neighbours else None

    def as_json(self) -> dict[str, Any]:
        n = self.trades
        return {
            "market": self.market, "day": self.day, "trades": n,
            "benford": {"counts": list(self.counts), "expected": [round(n * p, 2) for p in BENFORD],
                        "chi2": round(self.chi2, 4), "dof": DOF, "p_value": self.p_value,
                        "alpha": str(self.alpha),
                        "result": "not tested" if self.passed is None else "pass" if self.passed else "fail"},
            "round_sizes": {"share": round(self.round_share, 4), "round": self.round_trades,
                            "neighbours": self.neighbours,
                            "ratio": None if self.round_ratio is None else round(self.round_ratio, 3)},
        }


def report(market: str, day: str, sizes: Iterable[int], alpha: Decimal, min_trades: int) -> MarketReport:
    """The report of one market's trade sizes (base units, each > 0) of one day."""
    counts = [0] * 9
    n = round_n = neighbours = 0
    for size in sizes:
        sig = digits(size)
        n += 1
        counts[int(sig[0]) - 1] += 1
        if len(sig) == 1:
            round_n += 1
        elif len(sig) == 2 and sig[1] in "19":
            neighbours += 1
    chi2 = sum((c - n * p) ** 2 / (n * p) for c, p in zip(counts, BENFORD, strict=True)) if n else 0.0
    p_value = chi2_sf_8(chi2) if n else 1.0
    passed = None if n < min_trades else p_value >= float(alpha)
    return MarketReport(market, day, n, tuple(counts), chi2, p_value, alpha, passed, round_n, neighbours)
