"""A new journal's first commands: accounts must be opened, then the assets and the four spot markets.

They are journaled like every other command, so a replay of the journal alone rebuilds them.
"""

from __future__ import annotations

from dpg.core.commands import ListAsset, ListMarket, ListPerp, RequireAccounts
from dpg.core.margin import BTC_PERP_TIERS, ETH_PERP_TIERS, TierTable

# decimals: on-chain precision for chain assets; USD is kept at 6 like the stablecoins.
ASSETS = (("BTC", 8), ("ETH", 18), ("USDT", 6), ("USD", 6))

MAKER_FEE_PPM = 800  # 0.08 %
TAKER_FEE_PPM = 1_000  # 0.10 %


def _spot(base: str, quote: str, lot: int) -> ListMarket:
    # tick 0.01 quote (10_000 units at 6 decimals); minimum notional 5 quote
    return ListMarket(f"{base}/{quote}", base, quote, 10_000, lot, 5_000_000, MAKER_FEE_PPM, TAKER_FEE_PPM)


PERP_MAKER_FEE_PPM = 200  # 0.02 %
PERP_TAKER_FEE_PPM = 500  # 0.05 %
FUNDING_INTERVAL_MS = 8 * 3600 * 1000
IMPACT_NOTIONAL = 200 * 100 * 10**6  # 200 USDT x the first tier's 100x


def _perp(base: str, lot: int, tiers: TierTable) -> ListPerp:
    # tick 0.01 USDT and the spot market's lot; minimum notional 5 USDT
    return ListPerp(f"{base}-PERP", base, "USDT", 10_000, lot, 5_000_000, PERP_MAKER_FEE_PPM, PERP_TAKER_FEE_PPM,
                    tuple((t.floor, t.mmr_ppm, t.max_leverage) for t in tiers.tiers), FUNDING_INTERVAL_MS,
                    IMPACT_NOTIONAL)


PERPS: tuple[ListPerp, ...] = (_perp("BTC", 10_000, BTC_PERP_TIERS), _perp("ETH", 10**14, ETH_PERP_TIERS))
"""The perpetuals: in a new journal after the spot markets; on an existing one, listed at the next start."""

GENESIS: tuple[RequireAccounts | ListAsset | ListMarket, ...] = (
    RequireAccounts(),  # accounts exist once opened (OpenAccount), from the first command on
    *(ListAsset(sym, dec) for sym, dec in ASSETS),
    _spot("BTC", "USDT", 10_000),  # lot 0.0001 BTC
    _spot("ETH", "USDT", 10**14),  # lot 0.0001 ETH
    _spot("BTC", "USD", 10_000),
    _spot("ETH", "USD", 10**14),
)
