"""Public REST: the time, health, the demo's logins, markets, assets, and each market's depth,
trades, ticker and candles.

(No ``from __future__ import annotations``: FastAPI reads the annotations as objects.)"""

import time
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Query
from fastapi.responses import Response

from dpg.api import presentation as P
from dpg.api.deps import EndQ, Limit, MarketQ, Rt, StartQ
from dpg.api.marketdata import INTERVALS

router = APIRouter(tags=["public"])


@router.get("/api/v1/time")
async def server_time() -> dict[str, int]:
    return {"server_time": int(time.time() * 1000)}


@router.get("/api/v1/health", responses={503: {"description": "halted, with the reason"}})
async def health(rt: Rt) -> Response:
    """200 while the exchange takes commands; 503 with the reason while it does not (its
    database or, for an API process, the engine process is unreachable)."""
    ok, reason = rt.status()
    return P.json_response({"ok": True, "seq": rt.views.seq} if ok else
                           {"ok": False, "seq": rt.views.seq, "code": "UNAVAILABLE", "reason": reason},
                           200 if ok else 503)


@router.get("/api/v1/demo")
async def demo(rt: Rt) -> dict[str, Any]:
    """Whether this exchange is the demo (``dpg up --demo``) and, only then, the demo logins
    (the log-in page names them)."""
    from dpg.api.demo import public_info

    return public_info(rt.demo)


@router.get("/api/v1/markets")
async def markets(rt: Rt) -> list[dict[str, Any]]:
    """The spot markets (the perpetuals: GET /api/v1/futures/markets)."""
    return [P.market_json(m) for m in rt.trading.spot_markets()]


@router.get("/api/v1/assets")
async def assets(rt: Rt) -> list[dict[str, Any]]:
    return [{"asset": a.symbol, "decimals": a.decimals} for a in rt.assets]


@router.get("/api/v1/depth")
async def depth(rt: Rt, market: MarketQ, limit: Limit = 100) -> dict[str, Any]:
    return rt.depth_json(rt.trading.market(market), limit)


@router.get("/api/v1/trades")
async def trades(rt: Rt, market: MarketQ, limit: Limit = 100) -> list[dict[str, Any]]:
    m = rt.trading.market(market)
    return [P.trade_json(m, t) for t in rt.md.trades(m.symbol, limit)]


@router.get("/api/v1/ticker")
async def ticker(rt: Rt, market: Annotated[str | None, Query(max_length=20)] = None) -> list[dict[str, Any]]:
    chosen = [rt.trading.market(market)] if market else rt.trading.spot_markets()
    return [rt.ticker_json(m) for m in chosen]


# dpg.api.marketdata.INTERVALS' names, written out because a Literal (what the OpenAPI document and
# the validation answers show) cannot be built from a dict; the assertion keeps the two the same
Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
assert get_args(Interval) == tuple(INTERVALS)


@router.get("/api/v1/candles")
async def candles(rt: Rt, market: MarketQ, interval: Interval = "1m", limit: Limit = 500,
                  start: StartQ = None, end: EndQ = None) -> list[dict[str, Any]]:
    m = rt.trading.market(market)
    rows = rt.md.candles(m.symbol, interval, limit,
                         start * 1_000_000 if start is not None else None,
                         end * 1_000_000 if end is not None else None)
    return [P.candle_json(m, c) for c in rows]
