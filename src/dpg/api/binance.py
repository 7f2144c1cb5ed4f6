"""The Binance spot dialect under ``/api/v3``, so that existing bots (ccxt, freqtrade) point at
DPG by changing a URL. Symbols like ``BTCUSDT``, decimal strings, Binance's field names and error
codes (``{"code": -1121, "msg": "Invalid symbol."}``). This module holds the public market data;
it reads the same state as DPG's own API."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from dpg.api.app import Runtime
from dpg.api.errors import ApiError
from dpg.core.model import Market

INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3_600, "4h": 14_400, "1d": 86_400}
ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]


class BinanceError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


async def binance_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BinanceError)
    return JSONResponse({"code": exc.code, "msg": exc.msg}, status_code=exc.status)


def _ms(ns: int) -> int:
    return ns // 1_000_000


def router(rt: Runtime) -> APIRouter:
    r = APIRouter(prefix="/api/v3", tags=["binance"])

    def market(symbol: str) -> Market:
        try:
            return rt.trading.market(symbol)
        except ApiError:
            raise BinanceError(400, -1121, "Invalid symbol.") from None

    def price(m: Market, units: int | None) -> str:
        return m.format_price(units) if units else "0." + "0" * m.quote.places_of(m.tick_size)

    @r.get("/ping")
    async def ping() -> dict[str, Any]:
        return {}

    @r.get("/time")
    async def server_time() -> dict[str, int]:
        import time

        return {"serverTime": int(time.time() * 1000)}

    @r.get("/exchangeInfo")
    async def exchange_info(symbol: Annotated[str | None, Query(max_length=20)] = None) -> dict[str, Any]:
        import time

        chosen = [market(symbol)] if symbol else rt.markets
        symbols = []
        for m in chosen:
            tick = m.quote.format(m.tick_size, m.quote.places_of(m.tick_size))
            step = m.base.format(m.lot_size, m.base.places_of(m.lot_size))
            symbols.append({
                "symbol": m.compact, "status": "TRADING", "baseAsset": m.base.symbol,
                "baseAssetPrecision": m.base.decimals, "quoteAsset": m.quote.symbol,
                "quotePrecision": m.quote.decimals, "quoteAssetPrecision": m.quote.decimals,
                "baseCommissionPrecision": m.base.decimals, "quoteCommissionPrecision": m.quote.decimals,
                "orderTypes": ORDER_TYPES, "icebergAllowed": False, "ocoAllowed": False, "otoAllowed": False,
                "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False, "cancelReplaceAllowed": False,
                "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000000.00", "tickSize": tick},
                    {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000000", "stepSize": step},
                    {"filterType": "NOTIONAL", "minNotional": m.quote.format(m.min_notional),
                     "applyMinToMarket": True, "maxNotional": "9000000000000", "applyMaxToMarket": False,
                     "avgPriceMins": 5},
                ],
                "permissions": ["SPOT"], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode":
                    "EXPIRE_TAKER", "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            })
        return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [], "exchangeFilters": [],
                "symbols": symbols}

    @r.get("/depth")
    async def depth(symbol: Annotated[str, Query(max_length=20)],
                    limit: Annotated[int, Query(ge=1, le=5000)] = 100) -> dict[str, Any]:
        m = market(symbol)
        d = rt.depth_json(m, limit)
        return {"lastUpdateId": d["seq"], "bids": d["bids"], "asks": d["asks"]}

    def trade(m: Market, t: dict[str, Any]) -> dict[str, Any]:
        return {"id": t["id"], "price": m.format_price(t["price"]), "qty": m.format_qty(t["qty"]),
                "quoteQty": m.quote.format(t["quote_qty"]), "time": _ms(t["ts"]),
                "isBuyerMaker": t["side"] == "sell", "isBestMatch": True}

    @r.get("/trades")
    async def trades(symbol: Annotated[str, Query(max_length=20)],
                     limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> list[dict[str, Any]]:
        m = market(symbol)
        return [trade(m, t) for t in reversed(rt.md.trades(m.symbol, limit))]

    @r.get("/aggTrades")
    async def agg_trades(symbol: Annotated[str, Query(max_length=20)],
                         limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> list[dict[str, Any]]:
        """Every DPG trade is its own aggregate (one taker order against one maker order)."""
        m = market(symbol)
        return [{"a": t["id"], "p": m.format_price(t["price"]), "q": m.format_qty(t["qty"]), "f": t["id"],
                 "l": t["id"], "T": _ms(t["ts"]), "m": t["side"] == "sell", "M": True}
                for t in reversed(rt.md.trades(m.symbol, limit))]

    @r.get("/klines")
    async def klines(symbol: Annotated[str, Query(max_length=20)], interval: Annotated[str, Query(max_length=4)],
                     limit: Annotated[int, Query(ge=1, le=1000)] = 500,
                     startTime: Annotated[int | None, Query(ge=0, le=2**52)] = None,
                     endTime: Annotated[int | None, Query(ge=0, le=2**52)] = None) -> list[list[Any]]:
        m = market(symbol)
        if interval not in INTERVALS:
            raise BinanceError(400, -1120, "Invalid interval.")
        rows = rt.md.candles(m.symbol, interval, limit,
                             startTime * 1_000_000 if startTime is not None else None,
                             endTime * 1_000_000 if endTime is not None else None)
        span = INTERVALS[interval] * 1000
        return [[_ms(c["t"]), m.format_price(c["open"]), m.format_price(c["high"]), m.format_price(c["low"]),
                 m.format_price(c["close"]), m.format_qty(c["volume"]), _ms(c["t"]) + span - 1,
                 m.quote.format(c["quote_volume"]), c["trades"], "0", "0", "0"] for c in rows]

    def ticker24(m: Market) -> dict[str, Any]:
        t = rt.md.ticker(m.symbol)
        last, open_ = t.get("last") or 0, t.get("open") or 0
        change = last - open_ if open_ else 0
        pct = f"{change * 100 / open_:.3f}" if open_ else "0.000"
        volume, quote_volume = t.get("volume") or 0, t.get("quote_volume") or 0
        ts = t.get("ts") or 0
        return {
            "symbol": m.compact, "priceChange": m.quote.format(change), "priceChangePercent": pct,
            "weightedAvgPrice": price(m, quote_volume * 10**m.base.decimals // volume if volume else 0),
            "prevClosePrice": price(m, open_), "lastPrice": price(m, last), "lastQty": "0",
            "bidPrice": price(m, t.get("bid")), "bidQty": m.format_qty(t.get("bid_qty") or 0),
            "askPrice": price(m, t.get("ask")), "askQty": m.format_qty(t.get("ask_qty") or 0),
            "openPrice": price(m, open_), "highPrice": price(m, t.get("high")), "lowPrice": price(m, t.get("low")),
            "volume": m.format_qty(volume) if volume % m.lot_size == 0 else m.base.format(volume),
            "quoteVolume": m.quote.format(quote_volume), "openTime": _ms(ts) - 86_400_000, "closeTime": _ms(ts),
            "firstId": -1, "lastId": -1, "count": t.get("trades") or 0,
        }

    @r.get("/ticker/24hr", response_model=None)
    async def ticker_24hr(symbol: Annotated[str | None, Query(max_length=20)] = None) -> Any:
        if symbol:
            return ticker24(market(symbol))
        return [ticker24(m) for m in rt.markets]

    @r.get("/ticker/price", response_model=None)
    async def ticker_price(symbol: Annotated[str | None, Query(max_length=20)] = None) -> Any:
        def one(m: Market) -> dict[str, str]:
            return {"symbol": m.compact, "price": price(m, rt.md.ticker(m.symbol).get("last"))}

        return one(market(symbol)) if symbol else [one(m) for m in rt.markets]

    @r.get("/ticker/bookTicker", response_model=None)
    async def book_ticker(symbol: Annotated[str | None, Query(max_length=20)] = None) -> Any:
        def one(m: Market) -> dict[str, str]:
            d = rt.md.depth(m.symbol, 1)
            bid = d["bids"][0] if d["bids"] else (0, 0)
            ask = d["asks"][0] if d["asks"] else (0, 0)
            return {"symbol": m.compact, "bidPrice": price(m, bid[0]), "bidQty": m.format_qty(bid[1]),
                    "askPrice": price(m, ask[0]), "askQty": m.format_qty(ask[1])}

        return one(market(symbol)) if symbol else [one(m) for m in rt.markets]

    return r
