"""A user's USDT liability in the proof of reserves is their equity: balance plus unrealized PnL at
the mark (rounded up), an isolated position's part floored at zero, the whole floored at zero; the
specification's vectors (docs/proof-of-reserves.md) and positions opened through the engine."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from math import ceil
from pathlib import Path

from dpg.core.commands import IndexPrice, IndexStale, SetMarginMode
from dpg.core.futures import equity
from tests.core.helpers import USDT
from tests.core.test_futures import BI, PerpDesk, open_pair

B = "BTC-PERP"
SPEC = Path(__file__).resolve().parents[2] / "docs" / "proof-of-reserves.md"


def reference(d: PerpDesk, account: int) -> int:
    """The liability computed from the specification's words, with exact fractions."""
    vec = d.engine.balances[account]
    total = Fraction(vec[4] + vec[5])  # USDT is asset 2
    for (acct, mi), p in d.engine.fut.positions.items():
        if acct != account or not (p.size or p.margin):
            continue
        pm = d.engine.fut.perps[mi]
        pnl = ceil(Fraction(p.size * pm.market.lot_size * pm.mark, pm.scale)) - p.cost if p.size else 0
        total += max(0, p.margin + pnl) if p.isolated else pnl
    return max(0, int(total))


def spec_vectors() -> list[dict[str, object]]:
    text = SPEC.read_text()
    block = re.search(r"<!-- equity vectors -->\s*```json\n(.*?)```", text, re.S)
    assert block, "the specification's equity vectors are missing"
    vectors: list[dict[str, object]] = json.loads(block.group(1))
    return vectors


def test_the_specifications_vectors() -> None:
    vectors = spec_vectors()
    assert len(vectors) >= 6
    for v in vectors:
        positions = [(int(p["size"]), int(p["mark"]), 10 ** int(p["baseDecimals"]), int(p["cost"]),
                      int(p["margin"]), bool(p["isolated"])) for p in v["positions"]]  # type: ignore[attr-defined]
        assert equity(int(str(v["balance"])), positions) == int(str(v["liability"])), v["case"]


def test_a_cross_long_in_profit_and_its_short_in_loss() -> None:
    d = PerpDesk()
    d.index(B, 50_000)
    for a in (1, 2):
        d.fund(a, "USDT", 10_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)
    d.index(B, 52_000)
    fut = d.engine.fut
    mark = fut.perps[BI].mark
    assert mark > 50_000 * USDT
    for a in (1, 2):
        assert fut.liability(a) == reference(d, a)
    gain = 1000 * 10_000 * mark // 10**8 - 5_000 * USDT  # 0.1 BTC from 50,000 to the mark
    assert fut.liability(1) == d.usdt(1) + gain  # a whole number here: no rounding
    assert fut.liability(2) == d.usdt(2) - gain
    assert fut.liability(1) + fut.liability(2) == d.usdt(1) + d.usdt(2)


def test_an_isolated_position_counts_its_margin_and_pnl() -> None:
    d = PerpDesk()
    d.index(B, 50_000)
    for a in (1, 2):
        d.fund(a, "USDT", 10_000 * USDT)
    d.apply(SetMarginMode(1, B, True))
    open_pair(d, 1, 2, 50_000, 0.1)
    p = d.engine.fut.positions[(1, BI)]
    assert p.margin == 250 * USDT and d.usdt(1) < 10_000 * USDT - 250 * USDT + 1
    d.index(B, 49_000)  # a loss of 100 within the margin
    fut = d.engine.fut
    assert fut.liability(1) == reference(d, 1)
    mark = fut.perps[BI].mark
    assert fut.liability(1) == d.usdt(1) + p.margin + 1000 * 10_000 * mark // 10**8 - p.cost
    assert fut.liability(1) < d.usdt(1) + p.margin  # the loss is counted


def test_a_short_whose_value_is_fractional_rounds_toward_the_larger_liability() -> None:
    d = PerpDesk()
    d.index(B, 50_000)
    for a in (1, 2):
        d.fund(a, "USDT", 10_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)  # 2 is short 0.1 BTC: 10**7 base units
    d.apply(IndexPrice(B, 50_100 * USDT + 7))  # a mark whose 0.1 BTC is not a whole base unit
    fut = d.engine.fut
    mark = fut.perps[BI].mark
    assert (10**7 * mark) % 10**8, "the value must be fractional for this test to mean anything"
    floor_pnl = -(10**7) * mark // 10**8 + 5_000 * USDT
    assert fut.liability(2) == d.usdt(2) + floor_pnl + 1  # rounded up, not down
    assert fut.liability(1) == d.usdt(1) + 10**7 * mark // 10**8 - 5_000 * USDT + 1
    assert fut.liability(2) == reference(d, 2)


def test_a_cross_loss_beyond_the_balance_is_floored_at_zero() -> None:
    d = PerpDesk()
    d.index(B, 50_000)
    d.index("ETH-PERP", 3_000)
    d.fund(1, "USDT", 450 * USDT)
    d.fund(2, "USDT", 100_000 * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)
    open_pair(d, 1, 2, 3_000, 1, "ETH-PERP")
    d.apply(IndexStale("ETH-PERP"))  # a scope with a stale market is not liquidated
    d.index(B, 44_000)  # a loss of about 600 on a 450 wallet
    fut = d.engine.fut
    assert d.size(1) == 1000
    assert fut.equity(1, -1)[0] < 0
    assert fut.liability(1) == 0 == reference(d, 1)
    assert fut.liability(2) == reference(d, 2) > d.usdt(2)  # the other side's gain is counted in full


def test_an_isolated_loss_beyond_its_margin_leaves_the_wallet_counted() -> None:
    d = PerpDesk()
    d.index(B, 50_000)
    d.fund(1, "USDT", 1_000 * USDT)
    d.fund(2, "USDT", 100_000 * USDT)
    d.apply(SetMarginMode(1, B, True))
    open_pair(d, 1, 2, 50_000, 0.1)
    wallet = d.usdt(1) + d.engine.balances[1][5]
    # the mark past the bankruptcy price, as between a tick and the liquidation it triggers
    d.engine.fut.perps[BI].mark = 45_000 * USDT
    assert d.engine.fut.positions[(1, BI)].margin + (4_500 - 5_000) * USDT < 0
    assert d.engine.fut.liability(1) == wallet == reference(d, 1)
    # a gain on it counts with its margin
    d.engine.fut.perps[BI].mark = 60_000 * USDT
    assert d.engine.fut.liability(1) == wallet + 250 * USDT + 1_000 * USDT
