"""The Binance spot dialect under ``/api/v3``, so that existing bots (ccxt, freqtrade) point at
DPG by changing a URL. Symbols like ``BTCUSDT``, decimal strings, Binance's field names and error
codes (``{"code": -1121, "msg": "Invalid symbol."}``), and Binance's signed requests: header
``X-MBX-APIKEY`` and ``signature`` = hex HMAC-SHA256(secret, query string + body) with
``timestamp`` and ``recvWindow``. It reads and changes the same state as DPG's own API."""

import secrets
import time
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import JSONResponse

from dpg.api.app import Runtime, client_ip, whole_number
from dpg.api.errors import ApiError
from dpg.api.marketdata import Update
from dpg.api.trading import OrderRequest
from dpg.api.views import OrderView
from dpg.api.ws import Client, Dialect, Grant
from dpg.core.model import Market, OrderStatus, OrderType, Side
from dpg.identity import AuthError

# DPG's rejection codes in Binance's words (HTTP status, code, message)
_REJECTIONS: dict[str, tuple[int, int, str]] = {
    "PRICE_OFF_TICK": (400, -1013, "Filter failure: PRICE_FILTER"),
    "INVALID_PRICE": (400, -1013, "Filter failure: PRICE_FILTER"),
    "QUANTITY_OFF_LOT": (400, -1013, "Filter failure: LOT_SIZE"),
    "INVALID_QUANTITY": (400, -1013, "Filter failure: LOT_SIZE"),
    "BELOW_MIN_NOTIONAL": (400, -1013, "Filter failure: NOTIONAL"),
    "INVALID_AMOUNT": (400, -1100, "Illegal characters found in a parameter."),
    "INSUFFICIENT_FUNDS": (400, -2010, "Account has insufficient balance for requested action."),
    "POST_ONLY_WOULD_TAKE": (400, -2010, "Order would immediately match and take."),
    "STOP_WOULD_TRIGGER": (400, -2010, "Order would trigger immediately."),
    "FOK_NOT_FILLABLE": (400, -2010, "Order would not be filled completely."),
    "NO_LIQUIDITY": (400, -2010, "Market order cannot be filled: no liquidity."),
    "DUPLICATE_CLIENT_ORDER_ID": (400, -2010, "Duplicate order sent."),
    "UNKNOWN_MARKET": (400, -1121, "Invalid symbol."),
    "UNAVAILABLE": (503, -1001, "Internal error; unable to process your request. Please try again."),
}
_AUTH: dict[str, tuple[int, int, str]] = {
    "KEY_UNKNOWN": (401, -2015, "Invalid API-key, IP, or permissions for action."),
    "KEY_REVOKED": (401, -2015, "Invalid API-key, IP, or permissions for action."),
    "IP_NOT_ALLOWED": (401, -2015, "Invalid API-key, IP, or permissions for action."),
    "PERMISSION_DENIED": (401, -2015, "Invalid API-key, IP, or permissions for action."),
    "STALE_TIMESTAMP": (400, -1021, "Timestamp for this request is outside of the recvWindow."),
    "REPLAYED": (400, -1021, "Timestamp for this request was already used."),
    "BAD_SIGNATURE": (400, -1022, "Signature for this request is not valid."),
    "INVALID_RECV_WINDOW": (400, -1131, "recvWindow must be less than 60000"),
}
_STATUS = {OrderStatus.OPEN.value: "NEW", OrderStatus.PARTIALLY_FILLED.value: "PARTIALLY_FILLED",
           OrderStatus.FILLED.value: "FILLED", OrderStatus.CANCELED.value: "CANCELED",
           OrderStatus.EXPIRED.value: "EXPIRED", OrderStatus.REJECTED.value: "REJECTED"}
_TYPE = {OrderType.LIMIT.value: ("LIMIT", "GTC"), OrderType.IOC.value: ("LIMIT", "IOC"),
         OrderType.FOK.value: ("LIMIT", "FOK"), OrderType.POST_ONLY.value: ("LIMIT_MAKER", "GTC"),
         OrderType.MARKET.value: ("MARKET", "GTC"), OrderType.STOP_LIMIT.value: ("STOP_LOSS_LIMIT", "GTC"),
         OrderType.TAKE_PROFIT_LIMIT.value: ("TAKE_PROFIT_LIMIT", "GTC")}
_MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
_STP = {"EXPIRE_TAKER": "expire_taker", "EXPIRE_MAKER": "expire_maker", "EXPIRE_BOTH": "expire_both",
        "NONE": "expire_taker"}

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

    # ------------------------------------------------------------------ signed

    async def signed(request: Request, need: str) -> tuple[int, dict[str, str]]:
        """The user and the parameters of a signed request (query string and form body)."""
        key = request.headers.get("x-mbx-apikey", "")
        if not key:
            raise BinanceError(401, -2014, "API-key format invalid.")
        query = request.url.query
        body = (await request.body()).decode("utf-8", "replace")
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
        payload = signed_parts[0] + signed_parts[1]  # Binance's totalParams: query string, then body
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        params.pop("signature", None)
        if not sig:
            raise BinanceError(400, -1102, _MANDATORY.format("signature"))
        ts = params.get("timestamp", "")
        window = params.get("recvWindow", "5000")
        if whole_number(ts, 16) is None:
            raise BinanceError(400, -1102, _MANDATORY.format("timestamp"))
        if whole_number(window, 6) is None:
            raise BinanceError(400, -1131, "recvWindow must be less than 60000")
        try:
            user = await rt.accounts.verify_signature(key, sig, payload.encode(), int(ts), int(window),
                                                      client_ip(request), need)
        except AuthError as e:
            status, code, msg = _AUTH.get(e.code, (400, -1022, e.reason))
            raise BinanceError(status, code, msg) from None
        if rt.key_limits.take(key):
            raise BinanceError(429, -1003, "Too many requests; please use the websocket for live updates.")
        return user, params

    def number(params: dict[str, str], name: str, default: int) -> int:
        """An integer parameter (ids, times in ms, limits): at most 19 ASCII digits; absent or empty
        is ``default``."""
        raw = params.get(name, "")
        if not raw:
            return default
        value = whole_number(raw, 19)
        if value is None:
            raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is"
                                           " '^[0-9]{1,19}$'.")
        return value

    def need_param(params: dict[str, str], name: str) -> str:
        v = params.get(name, "")
        if not v:
            raise BinanceError(400, -1102, _MANDATORY.format(name))
        return v

    def order_json(v: OrderView) -> dict[str, Any]:
        m = rt.markets[v.market]
        typ, tif = _TYPE[v.otype]
        status = _STATUS.get(v.status, "NEW")
        if v.status == OrderStatus.EXPIRED.value and v.reason == "self-trade prevention":
            status = "EXPIRED_IN_MATCH"
        return {
            "symbol": m.compact, "orderId": v.order_id, "orderListId": -1, "clientOrderId": v.client_id,
            "price": m.format_price(v.price) if v.price else "0.00",
            "origQty": m.format_qty(v.qty) if v.qty else m.format_qty(v.filled),
            "executedQty": m.format_qty(v.filled), "cummulativeQuoteQty": m.quote.format(v.filled_quote),
            "status": status, "timeInForce": tif, "type": typ, "side": "BUY" if v.side == Side.BUY else "SELL",
            "stopPrice": m.format_price(v.stop_price) if v.stop_price else "0.00", "icebergQty": "0.00",
            "time": _ms(v.created_ts), "updateTime": _ms(v.updated_ts), "isWorking": v.triggered,
            "workingTime": _ms(v.created_ts), "origQuoteOrderQty": m.quote.format(v.quote_qty),
            "selfTradePreventionMode": ("EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")[v.stp],
            "transactTime": _ms(v.updated_ts),
        }

    async def find(user: int, params: dict[str, str], missing: int) -> OrderView:
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
        if v is None or (params.get("symbol") and rt.markets[v.market].compact != market(params["symbol"]).compact):
            raise BinanceError(400, missing, "Unknown order sent." if missing == -2011 else "Order does not exist.")
        return v

    async def rejections(coro: Any) -> Any:
        try:
            return await coro
        except ApiError as e:
            status, code, msg = _REJECTIONS.get(e.code, (400, -1013 if "FILTER" in e.code else -2010, e.reason))
            if e.code == "ORDER_NOT_FOUND":
                status, code, msg = 400, -2011, "Unknown order sent."
            raise BinanceError(status, code, msg) from None

    @r.get("/account")
    async def account(request: Request) -> dict[str, Any]:
        user, _ = await signed(request, "read")
        mine = rt.views.balance(user)
        return {
            "makerCommission": 8, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00080000", "taker": "0.00100000", "buyer": "0.00000000",
                                "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": False, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": int(time.time() * 1000),
            "accountType": "SPOT", "permissions": ["SPOT"], "uid": user,
            "balances": [{"asset": a.symbol, "free": a.format(mine.get(a.index, [0, 0])[0]),
                          "locked": a.format(mine.get(a.index, [0, 0])[1])} for a in rt.assets],
        }

    @r.post("/order")
    async def new_order(request: Request) -> dict[str, Any]:
        user, p = await signed(request, "trade")
        m = market(need_param(p, "symbol"))
        side = need_param(p, "side").upper()
        typ = need_param(p, "type").upper()
        if side not in ("BUY", "SELL"):
            raise BinanceError(400, -1117, "Invalid side.")
        tif = p.get("timeInForce", "GTC").upper()
        kinds = {("LIMIT", "GTC"): "limit", ("LIMIT", "IOC"): "ioc", ("LIMIT", "FOK"): "fok",
                 ("LIMIT_MAKER", "GTC"): "post_only", ("MARKET", "GTC"): "market", ("MARKET", "IOC"): "market",
                 ("STOP_LOSS_LIMIT", "GTC"): "stop_limit", ("TAKE_PROFIT_LIMIT", "GTC"): "take_profit_limit"}
        kind = kinds.get((typ, "GTC" if typ in ("LIMIT_MAKER",) else tif))
        if typ not in {t for t, _ in kinds}:
            raise BinanceError(400, -1116, "Invalid orderType.")
        if kind is None:
            raise BinanceError(400, -1115, "Invalid timeInForce.")
        cid = p.get("newClientOrderId") or "dpg" + secrets.token_hex(10)
        if len(cid) > 36:
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is"
                               " '^[a-zA-Z0-9-_.]{1,36}$'.")
        stp = _STP.get(p.get("selfTradePreventionMode", "EXPIRE_TAKER").upper())
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
        done = await rejections(rt.trading.place(user, req))
        v = rt.views.order(user, done["order_id"])
        assert v is not None
        full = order_json(v)
        resp = p.get("newOrderRespType", "FULL" if typ in ("LIMIT", "MARKET") else "ACK").upper()
        if resp == "ACK":
            return {k: full[k] for k in ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime")}
        if resp == "FULL":
            fee_asset = m.base.symbol if v.side == Side.BUY else m.quote.symbol
            fee_fmt = m.base if v.side == Side.BUY else m.quote
            full["fills"] = [{"price": m.format_price(f["price"]), "qty": m.format_qty(f["qty"]),
                              "commission": fee_fmt.format(f["fee"]), "commissionAsset": fee_asset,
                              "tradeId": f["trade_id"]} for f in v.fills]
        return full

    @r.get("/order")
    async def get_order(request: Request) -> dict[str, Any]:
        user, p = await signed(request, "read")
        return order_json(await find(user, p, -2013))

    @r.delete("/order")
    async def cancel_order(request: Request) -> dict[str, Any]:
        user, p = await signed(request, "trade")
        m = market(need_param(p, "symbol"))
        v = await find(user, p, -2011)
        if v.order_id not in rt.views.open:
            raise BinanceError(400, -2011, "Unknown order sent.")
        await rejections(rt.trading.cancel(user, m.symbol, order_id=v.order_id))
        out = order_json(v)
        out["origClientOrderId"] = v.client_id
        return out

    @r.get("/openOrders", response_model=None)
    async def open_orders(request: Request) -> Any:
        user, p = await signed(request, "read")
        mi = market(p["symbol"]).index if p.get("symbol") else None
        return [order_json(v) for v in rt.views.open_orders(user, mi)]

    @r.delete("/openOrders", response_model=None)
    async def cancel_open_orders(request: Request) -> Any:
        user, p = await signed(request, "trade")
        m = market(need_param(p, "symbol"))
        mine = rt.views.open_orders(user, m.index)
        await rejections(rt.trading.cancel_all(user, m.symbol))
        out = []
        for v in mine:
            o = order_json(v)
            o["origClientOrderId"] = v.client_id
            out.append(o)
        return out

    def my_orders(user: int, m: Market) -> list[OrderView]:
        mine = [v for v in (*rt.views.open.values(), *rt.views.finished.values())
                if v.account == user and v.market == m.index]
        return sorted(mine, key=lambda v: v.order_id)

    @r.get("/allOrders", response_model=None)
    async def all_orders(request: Request) -> Any:
        user, p = await signed(request, "read")
        m = market(need_param(p, "symbol"))
        start, end = number(p, "startTime", 0), number(p, "endTime", 2**62)
        from_id = number(p, "orderId", 0)
        limit = min(1000, number(p, "limit", 500))
        rows = [v for v in my_orders(user, m)
                if v.order_id >= from_id and start <= _ms(v.created_ts) <= end]
        return [order_json(v) for v in rows[:limit]]

    @r.get("/myTrades", response_model=None)
    async def my_trades(request: Request) -> Any:
        user, p = await signed(request, "read")
        m = market(need_param(p, "symbol"))
        start, end = number(p, "startTime", 0), number(p, "endTime", 2**62)
        from_id = number(p, "fromId", 0)
        limit = min(1000, number(p, "limit", 500))
        order_id = number(p, "orderId", 0)  # the trades of this order only
        out = []
        for v in my_orders(user, m):
            if order_id and v.order_id != order_id:
                continue
            fee_asset = m.base if v.side == Side.BUY else m.quote
            for f in v.fills:
                t = _ms(v.updated_ts)
                if f["trade_id"] < from_id or not start <= t <= end:
                    continue
                out.append({"symbol": m.compact, "id": f["trade_id"], "orderId": v.order_id, "orderListId": -1,
                            "price": m.format_price(f["price"]), "qty": m.format_qty(f["qty"]),
                            "quoteQty": m.quote.format(f["price"] * f["qty"] // 10**m.base.decimals),
                            "commission": fee_asset.format(f["fee"]), "commissionAsset": fee_asset.symbol,
                            "time": t, "isBuyer": v.side == Side.BUY, "isMaker": f["role"] == "maker",
                            "isBestMatch": True})
        out.sort(key=lambda x: x["id"])
        return out[:limit]

    # ------------------------------------------------------------------ /sapi/v1: what spot bots ask of it

    # kept out of the OpenAPI document: two answers for bots, not part of DPG's documented API
    sapi = APIRouter(prefix="/sapi/v1", tags=["binance"], include_in_schema=False)

    @sapi.get("/asset/tradeFee", response_model=None)
    async def trade_fee(request: Request) -> Any:
        """Each market's maker and taker fee rates (ccxt's ``fetch_trading_fees``)."""
        _, p = await signed(request, "read")
        chosen = [market(p["symbol"])] if p.get("symbol") else rt.markets
        return [{"symbol": m.compact, "makerCommission": _ppm(m.maker_fee_ppm),
                 "takerCommission": _ppm(m.taker_fee_ppm)} for m in chosen]

    @sapi.get("/spot/delist-schedule", response_model=None)
    async def delist_schedule(request: Request) -> Any:
        """Markets about to be delisted (freqtrade asks): none, DPG delists no market."""
        await signed(request, "read")
        return []

    both = APIRouter()
    both.include_router(r)
    both.include_router(sapi)
    return both


def _ppm(ppm: int) -> str:
    """A fee rate in parts per million as Binance writes rates (``0.001``)."""
    from decimal import Decimal

    return format((Decimal(ppm) / Decimal(1_000_000)).normalize(), "f")


def _channel(rt: Runtime, stream: str) -> str | None:
    """The hub channel of a Binance stream name (``btcusdt@depth@100ms``), None if there is none."""
    sym, _, kind = stream.partition("@")
    try:
        m = rt.trading.market(sym.upper())
    except ApiError:
        return None
    if kind in ("depth", "depth@100ms", "depth@1000ms"):
        return f"bn:depth:{m.compact}"
    if kind in ("trade", "aggTrade", "bookTicker"):
        return f"bn:{kind}:{m.compact}"
    if kind.startswith("kline_") and kind[6:] in INTERVALS:
        return f"bn:{kind}:{m.compact}"
    return None


def is_binance(msg: dict[str, Any] | None) -> bool:
    """Whether a first message on ``/ws`` is Binance's (``{"method": "SUBSCRIBE", …}``), not DPG's
    own (``{"op": …}``)."""
    return msg is not None and "method" in msg and "op" not in msg


def stream_dialect(rt: Runtime) -> Dialect:
    """Binance's market streams protocol: ``SUBSCRIBE``/``UNSUBSCRIBE`` (``params``: stream names),
    ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY``/``GET_PROPERTY`` ``combined``; answers
    ``{"result": …, "id": …}`` or ``{"error": {"code", "msg"}, "id": …}``."""

    def error(client: Client, rid: Any, code: int, msg: str) -> None:
        client.send_json({"error": {"code": code, "msg": msg}, "id": rid})

    async def handle(client: Client, msg: dict[str, Any]) -> None:
        method, params, rid = msg.get("method"), msg.get("params", []), msg.get("id")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or len(params) > 200 or not all(isinstance(p, str) for p in params):
                return error(client, rid, 2, "Invalid request: params must be a list of at most 200 stream names")
            if method == "SUBSCRIBE":
                wrong = open_streams(rt, client, params)
            else:
                channels = [_channel(rt, p) for p in params]
                wrong = "Invalid request: unknown stream" if None in channels else ""
                for ch in channels:
                    if ch is not None and not wrong:
                        rt.hub.unsubscribe(client, ch)
            if wrong:
                return error(client, rid, 2, wrong)
            client.send_json({"result": None, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            client.send_json({"result": sorted(client.names.values()), "id": rid})
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not isinstance(params, list) or not params or params[0] != "combined":
                return error(client, rid, 0, "Unknown property")
            if method == "GET_PROPERTY":
                client.send_json({"result": client.combined, "id": rid})
            elif len(params) != 2 or not isinstance(params[1], bool):
                error(client, rid, 1, "Invalid value type: expected Boolean")
            else:
                client.combined = params[1]
                client.send_json({"result": None, "id": rid})
        else:
            error(client, rid, 2, "Invalid request: unknown method")
        return None

    def refuse(client: Client, msg: dict[str, Any] | None, code: str, reason: str) -> None:
        # Binance's code 3 for invalid JSON, 2 for any other invalid request (too large, too many)
        rid = msg.get("id") if msg else None
        if code == "INVALID_JSON":
            error(client, rid, 3, f"Invalid JSON: {reason}")
        else:
            error(client, rid, 2, f"Invalid request: {reason}")

    return Dialect(handle, refuse)


def open_streams(rt: Runtime, client: Client, names: list[str]) -> str:
    """Subscribe ``client`` to Binance streams, all or none: "" when done, else why not (an
    unknown stream, more than the hub's cap)."""
    found = [(n, _channel(rt, n)) for n in names]
    unknown = [n for n, ch in found if ch is None]
    if unknown:
        return f"Invalid request: unknown stream {unknown[0][:64]!r}"
    channels = [ch for _, ch in found if ch is not None]
    if not rt.hub.room(client, channels):
        return f"Invalid request: at most {rt.hub.max_streams} streams per connection"
    for (name, _), ch in zip(found, channels, strict=True):
        rt.hub.subscribe(client, ch)
        client.names[ch] = name
    return ""


def streams(rt: Runtime) -> APIRouter:
    """Market streams in Binance's words wherever a Binance stream URL with its host swapped for
    DPG's lands: ``/ws/<anything>`` (ccxt's ``/ws/<n>``; a path part naming a stream, as in
    ``/ws/btcusdt@trade``, subscribes it), ``/stream/ws[/…]``, ``/stream?streams=a/b`` (combined
    streams: each message as ``{"stream": name, "data": …}``), and ``/ws`` itself when the first
    message is Binance's. ``SUBSCRIBE`` to ``<symbol>@depth@100ms`` (diffs whose ``U``/``u``
    continue exactly from REST ``lastUpdateId``; a removed level has quantity 0),
    ``<symbol>@trade``, ``<symbol>@aggTrade``, ``<symbol>@kline_<interval>``, ``<symbol>@bookTicker``.
    Each diff is one command's change: ``U`` = the previous change of that book + 1, ``u`` = this
    command's seq."""
    r = APIRouter(tags=["binance"])
    dialect = stream_dialect(rt)

    def publish(upd: Update, prevs: dict[int, int]) -> None:
        hub = rt.hub
        now = int(time.time() * 1000)
        for symbol, change in upd.depth.items():
            m = rt.trading.market(symbol)
            ch = f"bn:depth:{m.compact}"
            if hub.has(ch):
                hub.publish_raw(ch, {
                    "e": "depthUpdate", "E": now, "s": m.compact, "U": prevs.get(m.index, 0) + 1, "u": upd.seq,
                    "b": [[m.format_price(p), m.format_qty(q)] for p, q in change.get("bids", [])],
                    "a": [[m.format_price(p), m.format_qty(q)] for p, q in change.get("asks", [])]})
            ch = f"bn:bookTicker:{m.compact}"
            if hub.has(ch):
                d = rt.md.depth(m.symbol, 1)
                bid = d["bids"][0] if d["bids"] else (0, 0)
                ask = d["asks"][0] if d["asks"] else (0, 0)
                hub.publish_raw(ch, {"u": upd.seq, "s": m.compact, "b": m.format_price(bid[0]) if bid[0] else "0",
                                     "B": m.format_qty(bid[1]), "a": m.format_price(ask[0]) if ask[0] else "0",
                                     "A": m.format_qty(ask[1])})
        for t in upd.trades:
            m = rt.trading.market(t["market"])
            for kind in ("trade", "aggTrade"):
                ch = f"bn:{kind}:{m.compact}"
                if hub.has(ch):
                    key = "t" if kind == "trade" else "a"
                    hub.publish_raw(ch, {"e": kind, "E": now, "s": m.compact, key: t["id"],
                                         "p": m.format_price(t["price"]), "q": m.format_qty(t["qty"]),
                                         "T": _ms(t["ts"]), "m": t["side"] == "sell", "M": True})
        for symbol in upd.candles:
            m = rt.trading.market(symbol)
            for interval, seconds in INTERVALS.items():
                ch = f"bn:kline_{interval}:{m.compact}"
                if hub.has(ch):
                    for c in rt.md.candles(m.symbol, interval, limit=1):
                        hub.publish_raw(ch, {"e": "kline", "E": now, "s": m.compact, "k": {
                            "t": _ms(c["t"]), "T": _ms(c["t"]) + seconds * 1000 - 1, "s": m.compact, "i": interval,
                            "f": -1, "L": -1, "o": m.format_price(c["open"]), "c": m.format_price(c["close"]),
                            "h": m.format_price(c["high"]), "l": m.format_price(c["low"]),
                            "v": m.format_qty(c["volume"]), "n": c["trades"], "x": False,
                            "q": m.quote.format(c["quote_volume"]), "V": "0", "Q": "0", "B": "0"}})

    rt.publishers.append(publish)

    async def session(ws: WebSocket) -> None:
        client = await rt.hub.accept(ws, client_ip(ws))
        combined = ws.url.path.rstrip("/") == "/stream"
        if combined:
            client.combined = True
            names = [n for n in ws.query_params.get("streams", "").split("/") if n]
        else:  # in a raw stream's path, the parts naming a stream (ccxt's numbers name none)
            names = [n for n in ws.path_params.get("suffix", "").split("/") if "@" in n]
        wrong = open_streams(rt, client, names)
        if wrong:
            client.send_json({"error": {"code": 2, "msg": wrong}, "id": None})
        await rt.hub.serve(client, lambda _: dialect)

    for path in ("/stream", "/stream/ws", "/stream/ws/{suffix:path}", "/ws/{suffix:path}"):
        r.add_api_websocket_route(path, session)
    r.include_router(ws_api(rt))
    return r


# ---------------------------------------------------------------------- WebSocket API

_DONE_EXEC = {"canceled": ("CANCELED", "CANCELED"), "expired": ("EXPIRED", "EXPIRED"),
              "rejected": ("REJECTED", "REJECTED")}
_WS_METHODS = ("ping", "time", "session.logon", "session.status", "session.logout", "userDataStream.subscribe",
               "userDataStream.subscribe.signature", "userDataStream.unsubscribe")


def _exec_report(rt: Runtime, v: OrderView, now: int, ts: int, x: str, status: str, **fill: Any) -> dict[str, Any]:
    """An ``executionReport`` of order ``v`` (its state after the command stamped ``ts``);
    ``fill`` carries a trade's last quantity/price/fee and the cumulative figures up to it."""
    m = rt.markets[v.market]
    typ, tif = _TYPE[v.otype]
    fee_asset = m.base if v.side == Side.BUY else m.quote
    fee = fill.get("fee", 0)
    return {
        "e": "executionReport", "E": now, "s": m.compact, "c": v.client_id,
        "S": "BUY" if v.side == Side.BUY else "SELL", "o": typ, "f": tif, "q": m.format_qty(v.qty),
        "p": m.format_price(v.price) if v.price else "0.00",
        "P": m.format_price(v.stop_price) if v.stop_price else "0.00", "F": "0.00", "g": -1,
        "C": v.client_id if x == "CANCELED" else "", "x": x, "X": status, "r": "NONE", "i": v.order_id,
        "l": m.format_qty(fill.get("qty", 0)), "z": m.format_qty(fill.get("filled", v.filled)),
        "L": m.format_price(fill["price"]) if fill.get("price") else "0.00",
        "n": fee_asset.format(fee) if "fee" in fill else "0", "N": fee_asset.symbol if "fee" in fill else None,
        "T": _ms(ts), "t": fill.get("trade_id", -1), "I": v.updated_seq,
        "w": v.order_id in rt.views.open and v.triggered and v.otype in _RESTING,
        "m": fill.get("role") == "maker", "M": "trade_id" in fill, "O": _ms(v.created_ts),
        "Z": m.quote.format(fill.get("filled_quote", v.filled_quote)),
        "Y": m.quote.format(fill.get("quote_qty", 0)), "Q": m.quote.format(v.quote_qty), "W": _ms(v.created_ts),
        "V": ("EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")[v.stp],
    }


_RESTING = (OrderType.LIMIT.value, OrderType.POST_ONLY.value, OrderType.STOP_LIMIT.value,
            OrderType.TAKE_PROFIT_LIMIT.value)


def user_events(rt: Runtime, account: int, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Binance's user data events for one account's private updates of one command (the items
    ``/ws`` sends as orders, fills and balances): an ``executionReport`` per new order, trade,
    amendment, cancellation and expiry, then ``balanceUpdate`` for a credit, transfer or
    withdrawal and one ``outboundAccountPosition`` with every asset whose balance moved."""
    now = int(time.time() * 1000)
    out: list[dict[str, Any]] = []
    # cumulative figures before this command: the view's, less this command's fills
    later: dict[int, list[int]] = {}
    last_fill: dict[int, int] = {}
    done_filled: set[int] = set()
    for n, it in enumerate(items):
        if it["type"] == "fill":
            acc = later.setdefault(it["order_id"], [0, 0])
            acc[0] += it["qty"]
            acc[1] += it["quote_qty"]
            last_fill[it["order_id"]] = n
        elif it["type"] == "order" and it["event"] == "filled":
            done_filled.add(it["order_id"])
    moved: dict[str, None] = {}  # assets, in order
    for n, it in enumerate(items):
        kind = it["type"]
        if kind == "balance":
            moved[it["asset"]] = None
            if it["cause"] in ("credit", "transfer", "withdrawal") and it["d_available"]:
                a = rt.trading.asset(it["asset"])
                out.append({"e": "balanceUpdate", "E": now, "a": a.symbol, "d": a.format(it["d_available"]), "T": now})
            continue
        v = rt.views.order(account, it["order_id"])
        if v is None:
            continue
        ts = it.get("ts", v.updated_ts)
        if kind == "fill":
            acc = later[v.order_id]
            acc[0] -= it["qty"]
            acc[1] -= it["quote_qty"]
            filled, filled_quote = v.filled - acc[0], v.filled_quote - acc[1]
            status = "FILLED" if n == last_fill[v.order_id] and v.order_id in done_filled else "PARTIALLY_FILLED"
            out.append(_exec_report(rt, v, now, ts, "TRADE", status, qty=it["qty"], price=it["price"],
                                    fee=it["fee"], trade_id=it["trade_id"], role=it["role"],
                                    quote_qty=it["quote_qty"], filled=filled, filled_quote=filled_quote))
        elif it["event"] == "new":
            out.append(_exec_report(rt, v, now, ts, "NEW", "NEW", filled=0, filled_quote=0))
        elif it["event"] == "amended":
            out.append(_exec_report(rt, v, now, ts, "REPLACED", "PARTIALLY_FILLED" if v.filled else "NEW"))
        elif it["event"] in _DONE_EXEC:
            x, status = _DONE_EXEC[it["event"]]
            if it["event"] == "expired" and v.reason == "self-trade prevention":
                x, status = "TRADE_PREVENTION", "EXPIRED_IN_MATCH"
            out.append(_exec_report(rt, v, now, ts, x, status))
    if moved:
        mine = rt.views.balance(account)
        assets = [rt.trading.asset(a) for a in moved]
        out.append({"e": "outboundAccountPosition", "E": now, "u": now,
                    "B": [{"a": a.symbol, "f": a.format(mine.get(a.index, [0, 0])[0]),
                           "l": a.format(mine.get(a.index, [0, 0])[1])} for a in assets]})
    return out


_WS_API_REFUSALS = {"INVALID_JSON": (400, -1000, "Invalid JSON: the request is not a JSON object."),
                    "MESSAGE_TOO_LARGE": (400, -1104, "Too many parameters sent for this endpoint."),
                    "RATE_LIMITED": (429, -1003, "Too many requests; current limit is exceeded.")}


def ws_api(rt: Runtime) -> APIRouter:
    """Binance's WebSocket API at ``/ws-api/v3``: requests ``{"id", "method", "params"}``, answers
    ``{"id", "status": 200, "result"}`` or ``{"id", "status": 4xx, "error": {"code", "msg"}}``.
    Methods: ``ping``, ``time``, ``session.logon``/``status``/``logout``, and the user data stream:
    ``userDataStream.subscribe.signature`` (``apiKey``, ``timestamp``, optional ``recvWindow``,
    ``signature`` = hex HMAC-SHA256 of the other parameters sorted by name as ``k=v&…``) or
    ``userDataStream.subscribe`` after ``session.logon``; then ``executionReport``,
    ``balanceUpdate`` and ``outboundAccountPosition`` events arrive as
    ``{"subscriptionId": 0, "event": {…}}``, built from the same private updates as ``/ws``.
    Revoking the key of a logon or of a subscription closes the connection (``ws.REVOKED``)."""
    r = APIRouter(tags=["binance"])
    listeners: dict[int, dict[Client, int]] = {}  # account -> connection -> its subscription id

    def publish(upd: Update, _: dict[int, int]) -> None:
        for account, items in upd.accounts.items():
            conns = listeners.get(account)
            if not conns:
                continue
            for ev in user_events(rt, account, items):
                for c, sub in list(conns.items()):
                    if c.ending or not c.send_json({"subscriptionId": sub, "event": ev}):
                        drop(c)

    rt.publishers.append(publish)

    def drop(c: Client) -> None:
        for account, conns in list(listeners.items()):
            conns.pop(c, None)
            if not conns:
                del listeners[account]
        rt.hub.disconnect(c)

    class Failed(Exception):
        def __init__(self, status: int, code: int, msg: str) -> None:
            super().__init__(msg)
            self.status, self.code, self.msg = status, code, msg

    async def verify(client: Client, p: dict[str, Any], need: str) -> Grant:
        for name in ("apiKey", "timestamp", "signature"):
            if name not in p or p[name] in ("", None):
                raise Failed(400, -1102, _MANDATORY.format(name))
        ts, window = str(p["timestamp"]), str(p.get("recvWindow", 5000))
        if whole_number(ts, 16) is None:
            raise Failed(400, -1100, "Illegal characters found in parameter 'timestamp'.")
        if whole_number(window, 6) is None:
            raise Failed(400, -1131, "recvWindow must be less than 60000")
        payload = "&".join(f"{k}={_plain(v)}" for k, v in sorted(p.items()) if k != "signature")
        try:
            user = await rt.accounts.verify_signature(str(p["apiKey"]), str(p["signature"]), payload.encode(),
                                                      int(ts), int(window), client.ip, need)
        except AuthError as e:
            status, code, msg = _AUTH.get(e.code, (400, -1022, e.reason))
            raise Failed(status, code, msg) from None
        return Grant(user, need, key=str(p["apiKey"]))

    def subscribe(client: Client, grant: Grant) -> int:
        rt.hub.grant(client, f"sub:{grant.user_id}", grant)
        conns = listeners.setdefault(grant.user_id, {})
        return conns.setdefault(client, 0)

    async def call(client: Client, session: dict[str, Any], method: str, p: dict[str, Any]) -> Any:
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": int(time.time() * 1000)}
        if method == "session.logon":
            grant = await verify(client, p, "read")
            rt.hub.grant(client, "logon", grant)
            session["key"] = grant.key
            session["since"] = int(time.time() * 1000)
        elif method == "session.logout":
            session.clear()
            rt.hub.ungrant(client, "logon")
        elif method == "userDataStream.subscribe.signature":
            return {"subscriptionId": subscribe(client, await verify(client, p, "read"))}
        elif method == "userDataStream.subscribe":
            if "logon" not in client.grants:
                raise Failed(401, -2015, "Invalid API-key, IP, or permissions for action.")
            try:
                await rt.hub.recheck(client)
            except AuthError:
                raise Failed(401, -2015, "Invalid API-key, IP, or permissions for action.") from None
            return {"subscriptionId": subscribe(client, client.grants["logon"])}
        elif method == "userDataStream.unsubscribe":
            for conns in listeners.values():
                conns.pop(client, None)
            for role in [role for role in client.grants if role.startswith("sub:")]:
                rt.hub.ungrant(client, role)
            return {}
        elif method not in _WS_METHODS:
            raise Failed(400, -1020, "This operation is not supported.")
        now = int(time.time() * 1000)
        return {"apiKey": session.get("key"), "authorizedSince": session.get("since"), "connectedSince": now,
                "returnRateLimits": False, "serverTime": now, "userDataStream": any(
                    client in conns for conns in listeners.values())}

    def refuse(client: Client, msg: dict[str, Any] | None, code: str, reason: str) -> None:
        status, number, text = _WS_API_REFUSALS.get(code, (400, -1000, reason))
        client.send_json({"id": msg.get("id") if msg else None, "status": status,
                          "error": {"code": number, "msg": text}})

    async def connection(ws: WebSocket) -> None:
        client = await rt.hub.accept(ws, client_ip(ws))
        session: dict[str, Any] = {}

        async def handle(c: Client, msg: dict[str, Any]) -> None:
            rid, method, params = msg.get("id"), msg.get("method"), msg.get("params", {})
            try:
                if not isinstance(method, str):
                    raise Failed(400, -1102, _MANDATORY.format("method"))
                if not isinstance(params, dict):
                    raise Failed(400, -1104, "Invalid request: 'params' must be an object.")
                c.send_json({"id": rid, "status": 200, "result": await call(c, session, method, params)})
            except Failed as e:
                c.send_json({"id": rid, "status": e.status, "error": {"code": e.code, "msg": e.msg}})

        dialect = Dialect(handle, refuse)
        try:
            await rt.hub.serve(client, lambda _: dialect)
        finally:
            drop(client)

    r.add_api_websocket_route("/ws-api/v3", connection)
    return r


def _plain(v: Any) -> str:
    """A parameter's value as Binance signs it: JSON's true/false, numbers and strings as written."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
