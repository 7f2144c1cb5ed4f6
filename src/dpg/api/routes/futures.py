"""Futures REST: the perpetuals (tiers, index and mark prices, funding), the caller's positions,
leverage, margin mode and isolated margin, funding history and the insurance fund. Orders on
perpetuals go through /api/v1/orders (reduce_only, close_position, stop_market,
take_profit_market). Amounts are decimal strings; times are ms since the epoch.

(No ``from __future__ import annotations``: FastAPI reads the annotations as objects.)"""

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dpg.api.deps import Auth, Rt
from dpg.api.errors import ApiError
from dpg.api.futures import PerpView
from dpg.api.marketdata import INTERVALS
from dpg.api.runtime import Runtime
from dpg.core.model import Market, MarketKind

router = APIRouter(tags=["futures"])
END_MAX_MS = 4_102_444_800_000  # 2100-01-01: a later end would take the ledger's ns times out of bigint
PerpQ = Annotated[str, Query(max_length=20, description="e.g. BTC-PERP (also BTCUSDT_PERP)")]


class LeverageRequest(BaseModel):
    market: str = Field(max_length=20, description="e.g. BTC-PERP")
    leverage: int = Field(ge=1, le=1000, description="1 to the tier's maximum (at most 100)")


class MarginModeRequest(BaseModel):
    market: str = Field(max_length=20)
    mode: Literal["cross", "isolated"]


class MarginRequest(BaseModel):
    market: str = Field(max_length=20)
    amount: str = Field(max_length=60, description='quote to add ("+12.5" or "12.5") or remove ("-3")')


def perp_of(rt: Runtime, name: str) -> tuple[Market, PerpView]:
    m = rt.trading.market(name)
    pv = rt.futures.perp(m) if m.kind == MarketKind.PERP else None
    if pv is None:
        raise ApiError(404, "UNKNOWN_MARKET", f"unknown perpetual {name!r}")
    return m, pv


def settings_json(rt: Runtime, account: int, m: Market, seq: int) -> dict[str, Any]:
    s = rt.futures.settings(account, m.index)
    return {"seq": seq, "market": m.symbol, "leverage": s.leverage, "margin_mode": "isolated" if s.isolated else
            "cross"}


@router.get("/api/v1/futures/markets")
async def markets(rt: Rt) -> list[dict[str, Any]]:
    """The perpetuals: contract terms, tiers (notional floor, maintenance margin rate, maximum
    leverage, cum), index and mark prices, the last funding rate and the next funding time."""
    return [rt.futures.market_json(pv) for pv in rt.futures.perp_markets()]


@router.get("/api/v1/futures/positions")
async def positions(rt: Rt, p: Auth) -> list[dict[str, Any]]:
    """The caller's open positions: size, entry, mark and liquidation prices, unrealized PnL,
    margin (isolated) or initial margin at the mark (cross), leverage, mode and ROE (%)."""
    return rt.positions_json(p.user_id)


@router.get("/api/v1/futures/settings")
async def settings(rt: Rt, p: Auth) -> list[dict[str, Any]]:
    """The caller's leverage and margin mode on every perpetual."""
    return [settings_json(rt, p.user_id, pv.market, rt.futures.seq) for pv in rt.futures.perp_markets()]


@router.post("/api/v1/futures/leverage")
async def leverage(rt: Rt, req: LeverageRequest, p: Auth) -> dict[str, Any]:
    m, _ = perp_of(rt, req.market)
    seq = await rt.trading.set_leverage(p.user_id, m, req.leverage)
    return settings_json(rt, p.user_id, m, seq)


@router.post("/api/v1/futures/margin-mode")
async def margin_mode(rt: Rt, req: MarginModeRequest, p: Auth) -> dict[str, Any]:
    m, _ = perp_of(rt, req.market)
    seq = await rt.trading.set_margin_mode(p.user_id, m, req.mode == "isolated")
    return settings_json(rt, p.user_id, m, seq)


@router.post("/api/v1/futures/margin")
async def margin(rt: Rt, req: MarginRequest, p: Auth) -> dict[str, Any]:
    """Add to (a positive amount) or remove from (a negative one) an isolated position's margin."""
    m, _ = perp_of(rt, req.market)
    amount = rt.trading.units(m.quote, req.amount, "amount")
    if not amount:
        raise ApiError(400, "INVALID_AMOUNT", "the amount must not be zero")
    seq = await rt.trading.adjust_margin(p.user_id, m, amount)
    v = rt.futures.settings(p.user_id, m.index)
    return {"seq": seq, "market": m.symbol, "amount": m.quote.format(amount), "margin": m.quote.format(v.margin)}


@router.get("/api/v1/futures/funding")
async def funding(rt: Rt, market: PerpQ, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """A perpetual's last funding rate, next funding time and its fundings, newest first (from the
    projections: complete up to the follower's lag)."""
    m, pv = perp_of(rt, market)
    return rt.futures.funding_json(pv, await rt.history.fundings([m], None, None, limit))


@router.get("/api/v1/futures/insurance")
async def insurance(rt: Rt) -> list[dict[str, str]]:
    """The insurance fund's balance per asset."""
    return rt.futures.insurance_json()


@router.get("/api/v1/futures/insurance/history")
async def insurance_history(rt: Rt, asset: Annotated[str, Query(max_length=20)] = "USDT",
                            interval: Annotated[str, Query(max_length=4, description="1m 5m 15m 1h 4h 1d")] = "1h",
                            limit: Annotated[int, Query(ge=1, le=1000)] = 24,
                            end: Annotated[int | None, Query(ge=0, le=END_MAX_MS, description="ms, or now")] = None,
                            ) -> dict[str, Any]:
    """The insurance fund's history in ``asset`` from the ledger: the ``limit`` buckets of
    ``interval`` up to the one holding ``end``, oldest first, each with the balance at its end, the
    net change and the net change by cause (fee, liquidation, insurance, realized, funding)."""
    width = INTERVALS.get(interval)
    if width is None:
        raise ApiError(400, "INVALID_REQUEST", f"unknown interval {interval!r}; one of {', '.join(INTERVALS)}")
    a = next((x for x in rt.history.assets if x.symbol == asset.upper()), None)
    if a is None:
        raise ApiError(404, "UNKNOWN_ASSET", f"unknown asset {asset!r}")
    end_ns = time.time_ns() if end is None else end * 1_000_000
    return {"interval": interval, **await rt.history.insurance(a, width, end_ns, limit)}


@router.get("/api/v1/futures/liquidations")
async def liquidations(rt: Rt, market: Annotated[str | None, Query(max_length=20)] = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """The latest liquidations (since this API process started), newest first."""
    sym = perp_of(rt, market)[0].symbol if market else None
    rows = [r for r in rt.futures.liquidations if sym is None or r["market"] == sym]
    return [{k: v for k, v in r.items() if k != "account"} for r in reversed(rows[-limit:])]
