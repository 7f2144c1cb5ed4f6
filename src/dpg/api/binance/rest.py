"""Binance's REST under ``/api/v3`` (and the two ``/sapi/v1`` answers spot bots ask for): market
data, the account, orders and trades, with Binance's signed requests: header ``X-MBX-APIKEY`` and
``signature`` = hex HMAC-SHA256(secret, query string + body) with ``timestamp`` and ``recvWindow``.

(No ``from __future__ import annotations``: FastAPI reads the annotations as objects.)"""

import secrets
import time
from collections.abc import Awaitable
from decimal import Decimal
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request

from dpg.api import signing
from dpg.api.binance.codes import (
    INVALID_SYMBOL,
    KINDS,
    MANDATORY,
    ORDER_TYPES,
    STP_OF,
    UNKNOWN_ORDER,
    BinanceError,
    refused,
    rejected,
)
from dpg.api.binance.reports import (
    balances_json,
    fills_json,
    ms,
    my_trade_json,
    order_json,
    price,
    trade_json,
)
from dpg.api.deps import Rt, client_ip
from dpg.api.errors import ApiError
from dpg.api.marketdata import INTERVALS
from dpg.api.presentation import rate
from dpg.api.runtime import Runtime
from dpg.api.trading import OrderRequest
from dpg.api.views import OrderView
from dpg.core.model import Market, MarketKind
from dpg.identity import AuthError

router = APIRouter(prefix="/api/v3", tags=["binance"])
# kept out of the OpenAPI document: two answers for bots, not part of DPG's documented API
sapi = APIRouter(prefix="/sapi/v1", tags=["binance"], include_in_schema=False)
Symbol = Annotated[str, Query(max_length=20)]
SymbolFilter = Annotated[str | None, Query(max_length=20)]
T = TypeVar("T")


def market(rt: Runtime, symbol: str) -> Market:
    """A spot market: Binance's spot dialect knows no perpetual."""
    try:
        return rt.trading.spot_market(symbol)
    except ApiError:
        raise BinanceError(400, -1121, INVALID_SYMBOL) from None


# ---------------------------------------------------------------------- market data


@router.get("/ping")
async def ping() -> dict[str, Any]:
    return {}


@router.get("/time")
async def server_time() -> dict[str, int]:
    return {"serverTime": int(time.time() * 1000)}


def symbol_info(m: Market) -> dict[str, Any]:
    tick = m.quote.format(m.tick_size, m.quote.places_of(m.tick_size))
    step = m.base.format(m.lot_size, m.base.places_of(m.lot_size))
    return {
        "symbol": m.compact, "status": "HALT" if m.halted else "TRADING", "baseAsset": m.base.symbol,
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
    }


@router.get("/exchangeInfo")
async def exchange_info(rt: Rt, symbol: SymbolFilter = None) -> dict[str, Any]:
    chosen = [market(rt, symbol)] if symbol else rt.trading.spot_markets()
    return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [], "exchangeFilters": [],
            "symbols": [symbol_info(m) for m in chosen]}


@router.get("/depth")
async def depth(rt: Rt, symbol: Symbol, limit: Annotated[int, Query(ge=1, le=5000)] = 100) -> dict[str, Any]:
    d = rt.depth_json(market(rt, symbol), limit)
    return {"lastUpdateId": d["seq"], "bids": d["bids"], "asks": d["asks"]}


@router.get("/trades")
async def trades(rt: Rt, symbol: Symbol, limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> list[dict[str, Any]]:
    m = market(rt, symbol)
    return [trade_json(m, t) for t in reversed(rt.md.trades(m.symbol, limit))]


@router.get("/aggTrades")
async def agg_trades(rt: Rt, symbol: Symbol,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> list[dict[str, Any]]:
    """Every DPG trade is its own aggregate (one taker order against one maker order)."""
    m = market(rt, symbol)
    return [{"a": t["id"], "p": m.format_price(t["price"]), "q": m.format_qty(t["qty"]), "f": t["id"],
             "l": t["id"], "T": ms(t["ts"]), "m": t["side"] == "sell", "M": True}
            for t in reversed(rt.md.trades(m.symbol, limit))]


@router.get("/klines")
async def klines(rt: Rt, symbol: Symbol, interval: Annotated[str, Query(max_length=4)],
                 limit: Annotated[int, Query(ge=1, le=1000)] = 500,
                 startTime: Annotated[int | None, Query(ge=0, le=2**52)] = None,
                 endTime: Annotated[int | None, Query(ge=0, le=2**52)] = None) -> list[list[Any]]:
    return kline_rows(rt, market(rt, symbol), interval, limit, startTime, endTime)


def kline_rows(rt: Runtime, m: Market, interval: str, limit: int, start_ms: int | None,
               end_ms: int | None) -> list[list[Any]]:
    """A market's candles as Binance's kline arrays (the spot and the futures dialect alike)."""
    if interval not in INTERVALS:
        raise BinanceError(400, -1120, "Invalid interval.")
    rows = rt.md.candles(m.symbol, interval, limit,
                         start_ms * 1_000_000 if start_ms is not None else None,
                         end_ms * 1_000_000 if end_ms is not None else None)
    span = ms(INTERVALS[interval])
    return [[ms(c["t"]), m.format_price(c["open"]), m.format_price(c["high"]), m.format_price(c["low"]),
             m.format_price(c["close"]), m.format_qty(c["volume"]), ms(c["t"]) + span - 1,
             m.quote.format(c["quote_volume"]), c["trades"], "0", "0", "0"] for c in rows]


def ticker24(rt: Runtime, m: Market) -> dict[str, Any]:
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
        "quoteVolume": m.quote.format(quote_volume), "openTime": ms(ts) - 86_400_000, "closeTime": ms(ts),
        "firstId": -1, "lastId": -1, "count": t.get("trades") or 0,
    }


@router.get("/ticker/24hr", response_model=None)
async def ticker_24hr(rt: Rt, symbol: SymbolFilter = None) -> Any:
    if symbol:
        return ticker24(rt, market(rt, symbol))
    return [ticker24(rt, m) for m in rt.trading.spot_markets()]


@router.get("/ticker/price", response_model=None)
async def ticker_price(rt: Rt, symbol: SymbolFilter = None) -> Any:
    def one(m: Market) -> dict[str, str]:
        return {"symbol": m.compact, "price": price(m, rt.md.ticker(m.symbol).get("last"))}

    return one(market(rt, symbol)) if symbol else [one(m) for m in rt.trading.spot_markets()]


@router.get("/ticker/bookTicker", response_model=None)
async def book_ticker(rt: Rt, symbol: SymbolFilter = None) -> Any:
    def one(m: Market) -> dict[str, str]:
        d = rt.md.depth(m.symbol, 1)
        bid = d["bids"][0] if d["bids"] else (0, 0)
        ask = d["asks"][0] if d["asks"] else (0, 0)
        return {"symbol": m.compact, "bidPrice": price(m, bid[0]), "bidQty": m.format_qty(bid[1]),
                "askPrice": price(m, ask[0]), "askQty": m.format_qty(ask[1])}

    return one(market(rt, symbol)) if symbol else [one(m) for m in rt.trading.spot_markets()]


# ---------------------------------------------------------------------- signed requests


def total_params(query: str, body: str) -> tuple[str, str]:
    """(what Binance's signature covers: the query string then the body, each without its
    ``signature=``; the signature sent, "" if none)."""
    sig = ""
    signed_parts = []
    for raw in (query, body):
        kept = []
        for part in raw.split("&") if raw else []:
            if part.startswith("signature="):
                sig = part[len("signature="):]
            else:
                kept.append(part)
        signed_parts.append("&".join(kept))
    return signed_parts[0] + signed_parts[1], sig


async def signed(rt: Runtime, request: Request, need: str) -> tuple[int, dict[str, str]]:
    """The user and the parameters of a signed request (query string and form body)."""
    key = request.headers.get("x-mbx-apikey", "")
    if not key:
        raise BinanceError(401, -2014, "API-key format invalid.")
    query = request.url.query
    body = (await request.body()).decode("utf-8", "replace")
    payload, sig = total_params(query, body)
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(parse_qsl(body, keep_blank_values=True))
    params.pop("signature", None)
    if not sig:
        raise BinanceError(400, -1102, MANDATORY.format("signature"))
    try:
        user = await signing.verify(rt.accounts, key, sig, payload.encode(), params.get("timestamp", ""),
                                    params.get("recvWindow", str(signing.DEFAULT_RECV_WINDOW)),
                                    client_ip(request), need)
    except signing.MalformedSignature as e:
        if e.field == "timestamp":
            raise BinanceError(400, -1102, MANDATORY.format("timestamp")) from None
        raise BinanceError(400, -1131, "recvWindow must be less than 60000") from None
    except AuthError as e:
        raise refused(e) from None
    if rt.key_limits.take(key):
        raise BinanceError(429, -1003, "Too many requests; please use the websocket for live updates.")
    return user, params


def number(params: dict[str, str], name: str, default: int) -> int:
    """An integer parameter (ids, times in ms, limits): at most 19 ASCII digits; absent or empty
    is ``default``."""
    raw = params.get(name, "")
    if not raw:
        return default
    value = signing.whole_number(raw, 19)
    if value is None:
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is"
                                       " '^[0-9]{1,19}$'.")
    return value


def need_param(params: dict[str, str], name: str) -> str:
    v = params.get(name, "")
    if not v:
        raise BinanceError(400, -1102, MANDATORY.format(name))
    return v


async def find(rt: Runtime, user: int, params: dict[str, str], missing: int) -> OrderView:
    """The order named by orderId or origClientOrderId: from the views, or (finished before a
    restart, or long ago) from the projections."""
    oid, cid = params.get("orderId"), params.get("origClientOrderId")
    v = None
    if oid:
        v = await rt.find_order(user, number(params, "orderId", 0))
    elif cid:
        v = await rt.find_order(user, client_id=cid)
    else:
        raise BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were"
                                       " empty/null!")
    if v is None or rt.markets[v.market].kind != MarketKind.SPOT or (
            params.get("symbol") and rt.markets[v.market].compact != market(rt, params["symbol"]).compact):
        raise BinanceError(400, missing, UNKNOWN_ORDER if missing == -2011 else "Order does not exist.")
    return v


async def rejections(coro: Awaitable[T]) -> T:
    """``coro``'s result, or its ApiError in Binance's words."""
    try:
        return await coro
    except ApiError as e:
        raise rejected(e) from None


@router.get("/account")
async def account(rt: Rt, request: Request) -> dict[str, Any]:
    user, _ = await signed(rt, request, "read")
    # Binance answers one account-wide rate, in basis points and as a fraction; DPG's rates are per
    # market (/sapi/v1/asset/tradeFee lists each): this names the first market's, the default tier
    spot = rt.trading.spot_markets()
    first = spot[0] if spot else None
    maker, taker = (first.maker_fee_ppm, first.taker_fee_ppm) if first else (0, 0)
    return {
        "makerCommission": maker // 100, "takerCommission": taker // 100, "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {"maker": _fraction(maker), "taker": _fraction(taker), "buyer": "0.00000000",
                            "seller": "0.00000000"},
        "canTrade": True, "canWithdraw": False, "canDeposit": True, "brokered": False,
        "requireSelfTradePrevention": False, "preventSor": False, "updateTime": int(time.time() * 1000),
        "accountType": "SPOT", "permissions": ["SPOT"], "uid": user,
        "balances": balances_json(rt.assets, rt.views.balance(user)),
    }


def _fraction(ppm: int) -> str:
    """A rate in parts per million with Binance's eight places (``1000`` -> ``"0.00100000"``)."""
    return format(Decimal(ppm) / 1_000_000, ".8f")


def order_request(m: Market, p: dict[str, str]) -> tuple[OrderRequest, str]:
    """A new order's parameters as DPG's order request, and the answer asked (ACK, RESULT, FULL)."""
    side = need_param(p, "side").upper()
    typ = need_param(p, "type").upper()
    if side not in ("BUY", "SELL"):
        raise BinanceError(400, -1117, "Invalid side.")
    tif = p.get("timeInForce", "GTC").upper()
    kind = KINDS.get((typ, "GTC" if typ in ("LIMIT_MAKER",) else tif))
    if typ not in {t for t, _ in KINDS}:
        raise BinanceError(400, -1116, "Invalid orderType.")
    if kind is None:
        raise BinanceError(400, -1115, "Invalid timeInForce.")
    cid = p.get("newClientOrderId") or "dpg" + secrets.token_hex(10)
    if len(cid) > 36:
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is"
                           " '^[a-zA-Z0-9-_.]{1,36}$'.")
    stp = STP_OF.get(p.get("selfTradePreventionMode", "EXPIRE_TAKER").upper())
    if stp is None:
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'selfTradePreventionMode'.")
    try:
        req = OrderRequest.model_validate({
            "market": m.symbol, "side": side.lower(), "type": kind, "price": p.get("price") or None,
            "quantity": p.get("quantity") or None, "quote_quantity": p.get("quoteOrderQty") or None,
            "client_order_id": cid, "stp": stp, "stop_price": p.get("stopPrice") or None})
    except ValueError:
        raise BinanceError(400, -1100, "Illegal characters found in a parameter.") from None
    if kind == "market" and req.price is not None:
        req.price = None  # Binance ignores a price on a market order
    return req, p.get("newOrderRespType", "FULL" if typ in ("LIMIT", "MARKET") else "ACK").upper()


@router.post("/order")
async def new_order(rt: Rt, request: Request) -> dict[str, Any]:
    user, p = await signed(rt, request, "trade")
    m = market(rt, need_param(p, "symbol"))
    req, resp = order_request(m, p)
    v = await rejections(rt.trading.place(user, req))  # the order as its command left it
    full = order_json(m, v)
    if resp == "ACK":
        return {k: full[k] for k in ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime")}
    if resp == "FULL":
        full["fills"] = fills_json(m, v)
    return full


@router.get("/order")
async def get_order(rt: Rt, request: Request) -> dict[str, Any]:
    user, p = await signed(rt, request, "read")
    v = await find(rt, user, p, -2013)
    return order_json(rt.markets[v.market], v)


@router.delete("/order")
async def cancel_order(rt: Rt, request: Request) -> dict[str, Any]:
    user, p = await signed(rt, request, "trade")
    m = market(rt, need_param(p, "symbol"))
    v = await find(rt, user, p, -2011)
    if v.order_id not in rt.views.open:
        raise BinanceError(400, -2011, UNKNOWN_ORDER)
    await rejections(rt.trading.cancel(user, m.symbol, order_id=v.order_id))
    return {**order_json(rt.markets[v.market], v), "origClientOrderId": v.client_id}


@router.get("/openOrders", response_model=None)
async def open_orders(rt: Rt, request: Request) -> Any:
    user, p = await signed(rt, request, "read")
    mi = market(rt, p["symbol"]).index if p.get("symbol") else None
    return [order_json(rt.markets[v.market], v) for v in rt.views.open_orders(user, mi)
            if rt.markets[v.market].kind == MarketKind.SPOT]


@router.delete("/openOrders", response_model=None)
async def cancel_open_orders(rt: Rt, request: Request) -> Any:
    user, p = await signed(rt, request, "trade")
    m = market(rt, need_param(p, "symbol"))
    mine = rt.views.open_orders(user, m.index)
    await rejections(rt.trading.cancel_all(user, m.symbol))
    return [{**order_json(rt.markets[v.market], v), "origClientOrderId": v.client_id} for v in mine]


def my_orders(rt: Runtime, user: int, m: Market) -> list[OrderView]:
    mine = [v for v in (*rt.views.open.values(), *rt.views.finished.values())
            if v.account == user and v.market == m.index]
    return sorted(mine, key=lambda v: v.order_id)


@router.get("/allOrders", response_model=None)
async def all_orders(rt: Rt, request: Request) -> Any:
    user, p = await signed(rt, request, "read")
    m = market(rt, need_param(p, "symbol"))
    start, end = number(p, "startTime", 0), number(p, "endTime", 2**62)
    from_id = number(p, "orderId", 0)
    limit = min(1000, number(p, "limit", 500))
    rows = [v for v in my_orders(rt, user, m) if v.order_id >= from_id and start <= ms(v.created_ts) <= end]
    return [order_json(m, v) for v in rows[:limit]]


@router.get("/myTrades", response_model=None)
async def my_trades(rt: Rt, request: Request) -> Any:
    user, p = await signed(rt, request, "read")
    m = market(rt, need_param(p, "symbol"))
    start, end = number(p, "startTime", 0), number(p, "endTime", 2**62)
    from_id = number(p, "fromId", 0)
    limit = min(1000, number(p, "limit", 500))
    order_id = number(p, "orderId", 0)  # the trades of this order only
    out = [my_trade_json(m, v, f) for v in my_orders(rt, user, m) if not order_id or v.order_id == order_id
           for f in v.fills if f["trade_id"] >= from_id and start <= ms(v.updated_ts) <= end]
    out.sort(key=lambda x: x["id"])
    return out[:limit]


# ---------------------------------------------------------------------- /sapi/v1: what spot bots ask of it


@sapi.get("/asset/tradeFee", response_model=None)
async def trade_fee(rt: Rt, request: Request) -> Any:
    """Each market's maker and taker fee rates (ccxt's ``fetch_trading_fees``)."""
    _, p = await signed(rt, request, "read")
    chosen = [market(rt, p["symbol"])] if p.get("symbol") else rt.trading.spot_markets()
    return [{"symbol": m.compact, "makerCommission": rate(m.maker_fee_ppm),
             "takerCommission": rate(m.taker_fee_ppm)} for m in chosen]


@sapi.get("/spot/delist-schedule", response_model=None)
async def delist_schedule(rt: Rt, request: Request) -> Any:
    """Markets about to be delisted (freqtrade asks): none, DPG delists no market."""
    await signed(rt, request, "read")
    return []
