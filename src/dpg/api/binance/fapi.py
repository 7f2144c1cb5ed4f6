"""Binance's USDⓈ-M futures REST under ``/fapi`` over DPG's perpetuals (``BTC-PERP`` is ``BTCUSDT``,
contract type PERPETUAL, margined in USDT): market data, premium index and funding, and the signed
account, position, leverage, margin and order endpoints, checked as the spot dialect checks them.

(No ``from __future__ import annotations``: FastAPI reads the annotations as objects.)"""

import secrets
import time
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from dpg.api.binance.codes import STATUS, UNKNOWN_ORDER, BinanceError
from dpg.api.binance.codes import rejected as spot_rejected
from dpg.api.binance.reports import ms, price, side_name
from dpg.api.binance.rest import kline_rows, my_orders, need_param, number, signed
from dpg.api.deps import Rt
from dpg.api.errors import ApiError
from dpg.api.futures import PerpView, PositionView, rate_text
from dpg.api.marketdata import INTERVALS
from dpg.api.runtime import Runtime
from dpg.api.trading import OrderRequest
from dpg.api.views import OrderView
from dpg.core.errors import DomainError
from dpg.core.margin import initial_margin
from dpg.core.model import PPM, Market, MarketKind, OrderStatus, OrderType

router = APIRouter(prefix="/fapi", tags=["binance-futures"])
Symbol = Annotated[str, Query(max_length=20)]
SymbolFilter = Annotated[str | None, Query(max_length=20)]
INVALID_SYMBOL = "Invalid symbol."

# DPG's refusals on perpetuals in Binance futures' words (the spot dialect's codes cover the rest)
FUTURES_REJECTIONS: dict[str, tuple[int, int, str]] = {
    "INSUFFICIENT_MARGIN": (400, -2019, "Margin is insufficient."),
    "INSUFFICIENT_FUNDS": (400, -2019, "Margin is insufficient."),
    "REDUCE_ONLY": (400, -2022, "ReduceOnly Order is rejected."),
    "INVALID_LEVERAGE": (400, -4028, "Leverage is not valid."),
    "POSITION_OPEN": (400, -4048, "Margin type cannot be changed if there exists position or open orders."),
    "NO_POSITION": (400, -4051, "Isolated balance insufficient: no isolated position."),
    "BELOW_MIN_NOTIONAL": (400, -4164, "Order's notional must be no smaller than the minimum notional."),
    "STOP_WOULD_TRIGGER": (400, -2021, "Order would immediately trigger."),
    "INDEX_STALE": (400, -1008, "Index price is stale; only reduce-only orders are accepted."),
    "NO_INDEX_PRICE": (400, -1008, "No index price yet; orders are not accepted."),
    "ORDER_NOT_FOUND": (400, -2011, UNKNOWN_ORDER),
}
# Binance's (type, timeInForce) -> DPG's order type; GTX is Binance futures' post-only
KINDS = {("LIMIT", "GTC"): "limit", ("LIMIT", "IOC"): "ioc", ("LIMIT", "FOK"): "fok", ("LIMIT", "GTX"): "post_only",
         ("MARKET", "GTC"): "market", ("STOP_MARKET", "GTC"): "stop_market",
         ("TAKE_PROFIT_MARKET", "GTC"): "take_profit_market"}
TYPE = {OrderType.LIMIT.value: ("LIMIT", "GTC"), OrderType.IOC.value: ("LIMIT", "IOC"),
        OrderType.FOK.value: ("LIMIT", "FOK"), OrderType.POST_ONLY.value: ("LIMIT", "GTX"),
        OrderType.MARKET.value: ("MARKET", "GTC"), OrderType.STOP_MARKET.value: ("STOP_MARKET", "GTC"),
        OrderType.TAKE_PROFIT_MARKET.value: ("TAKE_PROFIT_MARKET", "GTC")}
ORDER_TYPES = ["LIMIT", "MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET"]
TIME_IN_FORCE = ["GTC", "IOC", "FOK", "GTX"]


def now_ms() -> int:
    return int(time.time() * 1000)


def fsymbol(m: Market) -> str:
    """A perpetual's Binance futures symbol: ``BTC-PERP`` (BTC margined in USDT) -> ``BTCUSDT``."""
    return m.base.symbol + m.quote.symbol


def perp(rt: Runtime, symbol: str) -> tuple[Market, PerpView]:
    """The perpetual named by a Binance futures symbol (``BTCUSDT``); -1121 for any other name."""
    upper = symbol.upper()
    for pv in rt.futures.perp_markets():
        if fsymbol(pv.market) == upper:
            return pv.market, pv
    raise BinanceError(400, -1121, INVALID_SYMBOL)


def chosen(rt: Runtime, symbol: str | None) -> list[tuple[Market, PerpView]]:
    return [perp(rt, symbol)] if symbol else [(pv.market, pv) for pv in rt.futures.perp_markets()]


def rejected(e: ApiError) -> BinanceError:
    """A DPG refusal on a perpetual in Binance futures' words."""
    if e.code in FUTURES_REJECTIONS:
        status, code, msg = FUTURES_REJECTIONS[e.code]
        return BinanceError(status, code, msg)
    return spot_rejected(e)


async def refusals(coro: Any) -> Any:
    try:
        return await coro
    except ApiError as e:
        raise rejected(e) from None


def quote_text(m: Market, units: int) -> str:
    return m.quote.format(units)


def fraction_text(x: Fraction, places: int) -> str:
    """A fraction as a decimal string (rounded toward zero) with ``places`` decimals."""
    sign = "-" if x < 0 else ""
    q, r = divmod(int(abs(x) * 10**places), 10**places)
    return f"{sign}{q}.{r:0{places}d}" if places else f"{sign}{q}"


# ---------------------------------------------------------------------- market data


@router.get("/v1/ping")
async def ping() -> dict[str, Any]:
    return {}


@router.get("/v1/time")
async def server_time() -> dict[str, int]:
    return {"serverTime": now_ms()}


def symbol_info(m: Market, pv: PerpView) -> dict[str, Any]:
    """A perpetual as exchangeInfo lists it: its filters are the rules DPG enforces (tick, lot,
    minimum notional); the margin percentages are its first tier's."""
    tick = m.quote.format(m.tick_size, m.quote.places_of(m.tick_size))
    step = m.base.format(m.lot_size, m.base.places_of(m.lot_size))
    first = pv.tiers.tiers[0]
    return {
        "symbol": fsymbol(m), "pair": fsymbol(m), "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
        "onboardDate": 0, "status": "HALT" if m.halted else "TRADING",
        "maintMarginPercent": format(Decimal(first.mmr_ppm * 100) / PPM, ".4f"),
        "requiredMarginPercent": format(Decimal(100) / first.max_leverage, ".4f"),
        "baseAsset": m.base.symbol, "quoteAsset": m.quote.symbol, "marginAsset": m.quote.symbol,
        "pricePrecision": m.quote.places_of(m.tick_size), "quantityPrecision": m.base.places_of(m.lot_size),
        "baseAssetPrecision": m.base.decimals, "quotePrecision": m.quote.decimals, "underlyingType": "COIN",
        "underlyingSubType": [],
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000000", "stepSize": step},
            {"filterType": "MARKET_LOT_SIZE", "minQty": step, "maxQty": "9000000000", "stepSize": step},
            {"filterType": "MIN_NOTIONAL", "notional": m.quote.format(m.min_notional)},
        ],
        "orderTypes": ORDER_TYPES, "timeInForce": TIME_IN_FORCE,
    }


@router.get("/v1/exchangeInfo")
async def exchange_info(rt: Rt) -> dict[str, Any]:
    perps = rt.futures.perp_markets()
    margin_assets = sorted({pv.market.quote.symbol for pv in perps})
    return {"timezone": "UTC", "serverTime": now_ms(), "futuresType": "U_MARGINED", "rateLimits": [],
            "exchangeFilters": [],
            "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "0"} for a in margin_assets],
            "symbols": [symbol_info(pv.market, pv) for pv in perps]}


@router.get("/v1/depth")
async def depth(rt: Rt, symbol: Symbol, limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> dict[str, Any]:
    m, _ = perp(rt, symbol)
    d = rt.depth_json(m, limit)
    t = now_ms()
    return {"lastUpdateId": d["seq"], "E": t, "T": t, "bids": d["bids"], "asks": d["asks"]}


@router.get("/v1/trades")
async def trades(rt: Rt, symbol: Symbol, limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> list[dict[str, Any]]:
    m, _ = perp(rt, symbol)
    return [{"id": t["id"], "price": m.format_price(t["price"]), "qty": m.format_qty(t["qty"]),
             "quoteQty": m.quote.format(t["quote_qty"]), "time": ms(t["ts"]), "isBuyerMaker": t["side"] == "sell"}
            for t in reversed(rt.md.trades(m.symbol, limit))]


@router.get("/v1/aggTrades")
async def agg_trades(rt: Rt, symbol: Symbol,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> list[dict[str, Any]]:
    """Every DPG trade is its own aggregate (one taker order against one maker order)."""
    m, _ = perp(rt, symbol)
    return [{"a": t["id"], "p": m.format_price(t["price"]), "q": m.format_qty(t["qty"]), "f": t["id"],
             "l": t["id"], "T": ms(t["ts"]), "m": t["side"] == "sell"}
            for t in reversed(rt.md.trades(m.symbol, limit))]


@router.get("/v1/klines")
async def klines(rt: Rt, symbol: Symbol, interval: Annotated[str, Query(max_length=4)],
                 limit: Annotated[int, Query(ge=1, le=1500)] = 500,
                 startTime: Annotated[int | None, Query(ge=0, le=2**52)] = None,
                 endTime: Annotated[int | None, Query(ge=0, le=2**52)] = None) -> list[list[Any]]:
    return kline_rows(rt, perp(rt, symbol)[0], interval, min(limit, 1000), startTime, endTime)


def premium(m: Market, pv: PerpView) -> dict[str, Any]:
    return {"symbol": fsymbol(m), "markPrice": price(m, pv.mark), "indexPrice": price(m, pv.index),
            "estimatedSettlePrice": price(m, pv.index), "lastFundingRate": rate_text(pv.last_rate),
            "interestRate": "0.00000000", "nextFundingTime": pv.next_funding, "time": now_ms()}


@router.get("/v1/premiumIndex", response_model=None)
async def premium_index(rt: Rt, symbol: SymbolFilter = None) -> Any:
    rows = [premium(m, pv) for m, pv in chosen(rt, symbol)]
    return rows[0] if symbol else rows


@router.get("/v1/fundingRate")
async def funding_rate(rt: Rt, symbol: SymbolFilter = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                       startTime: Annotated[int | None, Query(ge=0, le=2**52)] = None,
                       endTime: Annotated[int | None, Query(ge=0, le=2**52)] = None) -> list[dict[str, Any]]:
    """The fundings (from the projections), the latest ``limit`` oldest first as Binance lists them."""
    by_symbol = {m.symbol: m for m, _ in chosen(rt, symbol)}
    rows = await rt.history.fundings(list(by_symbol.values()), startTime,
                                     None if endTime is None else endTime + 1, limit)
    return [{"symbol": fsymbol(m), "fundingRate": rate_text(f["rate"]), "fundingTime": f["time"],
             "markPrice": price(m, f["mark"])} for f in reversed(rows) for m in (by_symbol[f["market"]],)]


def price_klines(m: Market, prices: list[tuple[int, int]], interval: str, limit: int, start: int | None,
                 end: int | None) -> list[list[Any]]:
    """Klines of a price DPG knows only at instants (``(ms, price)``, oldest first): each interval
    that holds one opens, closes, tops and bottoms at the prices seen in it; volumes are 0 as Binance's."""
    if interval not in INTERVALS:
        raise BinanceError(400, -1120, "Invalid interval.")
    span = ms(INTERVALS[interval])
    buckets: dict[int, list[int]] = {}
    for t, p in prices:
        if p and (start is None or t >= start) and (end is None or t <= end):
            buckets.setdefault(t - t % span, []).append(p)
    rows = [[t, price(m, ps[0]), price(m, max(ps)), price(m, min(ps)), price(m, ps[-1]), "0", t + span - 1,
             "0", 0, "0", "0", "0"] for t, ps in sorted(buckets.items())]
    return rows[-limit:]


@router.get("/v1/markPriceKlines")
async def mark_price_klines(rt: Rt, symbol: Symbol, interval: Annotated[str, Query(max_length=4)],
                            limit: Annotated[int, Query(ge=1, le=1500)] = 500,
                            startTime: Annotated[int | None, Query(ge=0, le=2**52)] = None,
                            endTime: Annotated[int | None, Query(ge=0, le=2**52)] = None) -> list[list[Any]]:
    """The mark price at each funding (the projections' last 1,000) and now."""
    m, pv = perp(rt, symbol)
    seen = [(f["time"], f["mark"]) for f in reversed(await rt.history.fundings([m], None, None, 1000))]
    return price_klines(m, [*seen, (now_ms(), pv.mark)], interval, limit, startTime, endTime)


@router.get("/v1/indexPriceKlines")
async def index_price_klines(rt: Rt, pair: Symbol, interval: Annotated[str, Query(max_length=4)],
                             limit: Annotated[int, Query(ge=1, le=1500)] = 500,
                             startTime: Annotated[int | None, Query(ge=0, le=2**52)] = None,
                             endTime: Annotated[int | None, Query(ge=0, le=2**52)] = None) -> list[list[Any]]:
    """The index price now (DPG keeps no index history in the API)."""
    m, pv = perp(rt, pair)
    return price_klines(m, [(now_ms(), pv.index)], interval, limit, startTime, endTime)


def ticker24(rt: Runtime, m: Market) -> dict[str, Any]:
    t = rt.md.ticker(m.symbol)
    last, open_ = t.get("last") or 0, t.get("open") or 0
    change = last - open_ if open_ else 0
    pct = f"{change * 100 / open_:.3f}" if open_ else "0.000"
    volume, quote_volume = t.get("volume") or 0, t.get("quote_volume") or 0
    ts = ms(t.get("ts") or 0)
    return {"symbol": fsymbol(m), "priceChange": m.quote.format(change), "priceChangePercent": pct,
            "weightedAvgPrice": price(m, quote_volume * 10**m.base.decimals // volume if volume else 0),
            "lastPrice": price(m, last), "lastQty": "0", "openPrice": price(m, open_),
            "highPrice": price(m, t.get("high")), "lowPrice": price(m, t.get("low")),
            "volume": m.base.format(volume), "quoteVolume": m.quote.format(quote_volume),
            "openTime": ts - 86_400_000, "closeTime": ts, "firstId": -1, "lastId": -1, "count": t.get("trades") or 0}


@router.get("/v1/ticker/24hr", response_model=None)
async def ticker_24hr(rt: Rt, symbol: SymbolFilter = None) -> Any:
    rows = [ticker24(rt, m) for m, _ in chosen(rt, symbol)]
    return rows[0] if symbol else rows


@router.get("/v1/ticker/price", response_model=None)
async def ticker_price(rt: Rt, symbol: SymbolFilter = None) -> Any:
    rows = [{"symbol": fsymbol(m), "price": price(m, rt.md.ticker(m.symbol).get("last")), "time": now_ms()}
            for m, _ in chosen(rt, symbol)]
    return rows[0] if symbol else rows


@router.get("/v1/ticker/bookTicker", response_model=None)
async def book_ticker(rt: Rt, symbol: SymbolFilter = None) -> Any:
    def one(m: Market) -> dict[str, Any]:
        d = rt.md.depth(m.symbol, 1)
        bid = d["bids"][0] if d["bids"] else (0, 0)
        ask = d["asks"][0] if d["asks"] else (0, 0)
        return {"symbol": fsymbol(m), "bidPrice": price(m, bid[0]), "bidQty": m.format_qty(bid[1]),
                "askPrice": price(m, ask[0]), "askQty": m.format_qty(ask[1]), "time": now_ms()}

    rows = [one(m) for m, _ in chosen(rt, symbol)]
    return rows[0] if symbol else rows


# ---------------------------------------------------------------------- account and positions


@router.get("/v1/leverageBracket", response_model=None)
async def leverage_bracket(rt: Rt, request: Request) -> Any:
    """Each perpetual's tiers: notional floor and cap, maintenance margin rate, maximum leverage, cum."""
    _, p = await signed(rt, request, "read")
    rows = []
    for m, pv in chosen(rt, p.get("symbol")):
        tiers = pv.tiers.tiers
        brackets = []
        for i, t in enumerate(tiers):
            cap = tiers[i + 1].floor if i + 1 < len(tiers) else 10**15 * 10**m.quote.decimals
            brackets.append({"bracket": i + 1, "initialLeverage": t.max_leverage,
                             "notionalCap": int(Fraction(cap, 10**m.quote.decimals)),
                             "notionalFloor": int(Fraction(t.floor, 10**m.quote.decimals)),
                             "maintMarginRatio": float(Decimal(t.mmr_ppm) / PPM),
                             "cum": float(Fraction(t.cum_ppm, PPM * 10**m.quote.decimals))})
        rows.append({"symbol": fsymbol(m), "brackets": brackets})
    return rows[0] if p.get("symbol") else rows


@router.get("/v1/positionSide/dual")
async def position_side_dual(rt: Rt, request: Request) -> dict[str, bool]:
    """DPG has one-way positions only (``positionSide`` BOTH)."""
    await signed(rt, request, "read")
    return {"dualSidePosition": False}


@router.get("/v1/multiAssetsMargin")
async def multi_assets_margin(rt: Rt, request: Request) -> dict[str, bool]:
    """DPG margins each perpetual in its own quote asset only (single-asset mode)."""
    await signed(rt, request, "read")
    return {"multiAssetsMargin": False}


def position_json(m: Market, pv: PerpView, s: PositionView,
                  shown: dict[str, Any] | None) -> dict[str, Any]:
    """One account's position (or flat settings) in one perpetual as positionRisk lists it; ``shown``
    is the native API's row of this position (liquidation price, margin), None when flat."""
    mark = pv.mark or pv.index
    scale = 10**m.base.decimals
    notional = s.size * mark // scale if mark else 0
    upnl = notional - s.cost if s.size and mark else 0
    entry = fraction_text(Fraction(s.cost * scale, s.size) / 10**m.quote.decimals, m.quote.decimals) \
        if s.size else "0.0"
    im = initial_margin(abs(notional), s.leverage) if s.size else 0
    iso_margin = s.margin if s.isolated else 0
    liq = (shown or {}).get("liquidation_price") or "0"
    return {
        "symbol": fsymbol(m), "positionSide": "BOTH", "positionAmt": m.base.format(s.size),
        "entryPrice": entry, "breakEvenPrice": entry, "markPrice": price(m, mark),
        "unRealizedProfit": m.quote.format(upnl), "liquidationPrice": liq,
        "isolatedMargin": m.quote.format(iso_margin + upnl if s.isolated and s.size else 0),
        "isolatedWallet": m.quote.format(iso_margin), "notional": m.quote.format(notional),
        "marginAsset": m.quote.symbol, "initialMargin": m.quote.format(iso_margin if s.isolated else im),
        "positionInitialMargin": m.quote.format(iso_margin if s.isolated else im),
        "maintMargin": m.quote.format(pv.tiers.maintenance(abs(notional))), "openOrderInitialMargin": "0",
        "leverage": str(s.leverage), "marginType": "isolated" if s.isolated else "cross",
        "maxNotionalValue": "1000000000", "isAutoAddMargin": "false", "adl": 0, "bidNotional": "0", "askNotional": "0",
        "updateTime": now_ms(),
    }


def positions(rt: Runtime, user: int, symbol: str | None, flat_too: bool) -> list[dict[str, Any]]:
    shown = {r["market"]: r for r in rt.positions_json(user)}
    out = []
    for m, pv in chosen(rt, symbol):
        s = rt.futures.settings(user, m.index)
        if s.size or flat_too:
            out.append(position_json(m, pv, s, shown.get(m.symbol)))
    return out


@router.get("/v2/positionRisk", response_model=None)
@router.get("/v3/positionRisk", response_model=None)
async def position_risk(rt: Rt, request: Request) -> Any:
    user, p = await signed(rt, request, "read")
    return positions(rt, user, p.get("symbol"), "v2" in request.url.path)


def assets_json(rt: Runtime, user: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The margin asset rows (``/fapi/v2/balance`` and the account's ``assets``) and the totals."""
    perps = rt.futures.perp_markets()
    rows: list[dict[str, Any]] = []
    totals = {"wallet": 0, "upnl": 0, "im": 0, "available": 0}
    if not perps:
        return rows, totals
    q = perps[0].market.quote
    available, locked = rt.views.balance(user).get(q.index, [0, 0])
    upnl = 0
    for pos in rt.positions_json(user):
        upnl += q.to_units(pos["unrealized_pnl"], "pnl")
    wallet = available + locked
    totals.update(wallet=wallet, upnl=upnl, im=locked, available=available)
    rows.append({"accountAlias": "DPG", "asset": q.symbol, "walletBalance": q.format(wallet),
                 "balance": q.format(wallet), "unrealizedProfit": q.format(upnl),
                 "crossUnPnl": q.format(upnl), "marginBalance": q.format(wallet + upnl),
                 "maintMargin": "0", "initialMargin": q.format(locked), "positionInitialMargin": q.format(locked),
                 "openOrderInitialMargin": "0", "crossWalletBalance": q.format(wallet),
                 "availableBalance": q.format(available), "maxWithdrawAmount": q.format(available),
                 "marginAvailable": True, "updateTime": now_ms()})
    return rows, totals


@router.get("/v2/balance", response_model=None)
@router.get("/v3/balance", response_model=None)
async def balance(rt: Rt, request: Request) -> Any:
    user, _ = await signed(rt, request, "read")
    return assets_json(rt, user)[0]


@router.get("/v2/account", response_model=None)
@router.get("/v3/account", response_model=None)
async def account(rt: Rt, request: Request) -> Any:
    user, _ = await signed(rt, request, "read")
    rows, tot = assets_json(rt, user)
    q = rt.futures.perp_markets()[0].market.quote if rt.futures.perp_markets() else None
    fmt = q.format if q is not None else str
    return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": False, "updateTime": now_ms(),
            "multiAssetsMargin": False, "tradeGroupId": -1,
            "totalInitialMargin": fmt(tot["im"]), "totalMaintMargin": "0", "totalWalletBalance": fmt(tot["wallet"]),
            "totalUnrealizedProfit": fmt(tot["upnl"]), "totalMarginBalance": fmt(tot["wallet"] + tot["upnl"]),
            "totalPositionInitialMargin": fmt(tot["im"]), "totalOpenOrderInitialMargin": "0",
            "totalCrossWalletBalance": fmt(tot["wallet"]), "totalCrossUnPnl": fmt(tot["upnl"]),
            "availableBalance": fmt(tot["available"]), "maxWithdrawAmount": fmt(tot["available"]),
            "assets": rows, "positions": positions(rt, user, None, True)}


@router.post("/v1/leverage")
async def leverage(rt: Rt, request: Request) -> dict[str, Any]:
    user, p = await signed(rt, request, "trade")
    m, _ = perp(rt, need_param(p, "symbol"))
    lev = number(p, "leverage", 0)
    if not 1 <= lev <= 125:
        raise BinanceError(400, -4028, f"Leverage {p.get('leverage')} is not valid")
    await refusals(rt.trading.set_leverage(user, m, lev))
    return {"symbol": fsymbol(m), "leverage": lev, "maxNotionalValue": "1000000000"}


@router.post("/v1/marginType")
async def margin_type(rt: Rt, request: Request) -> dict[str, Any]:
    user, p = await signed(rt, request, "trade")
    m, _ = perp(rt, need_param(p, "symbol"))
    kind = need_param(p, "marginType").upper()
    if kind not in ("ISOLATED", "CROSSED", "CROSS"):
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'marginType'.")
    isolated = kind == "ISOLATED"
    if rt.futures.settings(user, m.index).isolated == isolated:
        raise BinanceError(400, -4046, "No need to change margin type.")
    await refusals(rt.trading.set_margin_mode(user, m, isolated))
    return {"code": 200, "msg": "success"}


@router.post("/v1/positionMargin")
async def position_margin(rt: Rt, request: Request) -> dict[str, Any]:
    """Add (type 1) or remove (type 2) an isolated position's margin."""
    user, p = await signed(rt, request, "trade")
    m, _ = perp(rt, need_param(p, "symbol"))
    kind = need_param(p, "type")
    if kind not in ("1", "2"):
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'type'.")
    if p.get("positionSide", "BOTH").upper() != "BOTH":
        raise BinanceError(400, -4061, "Order's position side does not match user's setting.")
    raw = need_param(p, "amount")
    try:
        amount = m.quote.to_units(raw, "amount")
    except DomainError:
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'amount'.") from None
    if amount <= 0:
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'amount'.")
    await refusals(rt.trading.adjust_margin(user, m, amount if kind == "1" else -amount))
    return {"amount": float(Decimal(raw)), "code": 200, "msg": "Successfully modify position margin.",
            "type": int(kind)}


# ---------------------------------------------------------------------- orders


def order_json(m: Market, v: OrderView, reduce_only: bool = False, close_position: bool = False) -> dict[str, Any]:
    """An order on a perpetual as ``/fapi/v1/order`` answers it. DPG's views keep no order flags:
    ``reduce_only`` and ``close_position`` are the request's, known when the order is placed."""
    typ, tif = TYPE.get(v.otype, ("LIMIT", "GTC"))
    status = STATUS.get(v.status, "NEW")
    avg = Fraction(v.filled_quote * 10**m.base.decimals, v.filled) if v.filled else Fraction(0)
    return {
        "orderId": v.order_id, "symbol": fsymbol(m), "status": status, "clientOrderId": v.client_id,
        "price": price(m, v.price), "avgPrice": fraction_text(avg / 10**m.quote.decimals, m.quote.decimals),
        "origQty": m.format_qty(v.qty) if v.qty else m.format_qty(v.filled),
        "executedQty": m.format_qty(v.filled), "cumQty": m.format_qty(v.filled),
        "cumQuote": m.quote.format(v.filled_quote), "timeInForce": tif, "type": typ, "origType": typ,
        "reduceOnly": reduce_only or close_position, "closePosition": close_position, "side": side_name(v.side),
        "positionSide": "BOTH", "stopPrice": price(m, v.stop_price),
        "workingType": "MARK_PRICE", "priceProtect": False, "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_TAKER", "goodTillDate": 0,
        "time": ms(v.created_ts), "updateTime": ms(v.updated_ts),
    }


def flag(p: dict[str, str], name: str) -> bool:
    raw = p.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return raw == "true"


def order_request(m: Market, p: dict[str, str]) -> OrderRequest:
    side = need_param(p, "side").upper()
    typ = need_param(p, "type").upper()
    if side not in ("BUY", "SELL"):
        raise BinanceError(400, -1117, "Invalid side.")
    if typ not in {t for t, _ in KINDS}:
        raise BinanceError(400, -1116, "Invalid orderType.")
    tif = p.get("timeInForce", "GTC").upper() if typ == "LIMIT" else "GTC"
    kind = KINDS.get((typ, tif))
    if kind is None:
        raise BinanceError(400, -1115, "Invalid timeInForce.")
    if p.get("positionSide", "BOTH").upper() != "BOTH":
        raise BinanceError(400, -4061, "Order's position side does not match user's setting.")
    if p.get("workingType", "MARK_PRICE").upper() != "MARK_PRICE":
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'workingType'; DPG's stops"
                                       " trigger on the mark price (MARK_PRICE).")
    reduce_only, close_position = flag(p, "reduceOnly"), flag(p, "closePosition")
    if close_position and reduce_only:
        raise BinanceError(400, -1106, "Parameter 'reduceOnly' sent when not required.")
    cid = p.get("newClientOrderId") or "dpg" + secrets.token_hex(10)
    if len(cid) > 36:
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is"
                           " '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
    try:
        return OrderRequest.model_validate({
            "market": m.symbol, "side": side.lower(), "type": kind,
            "price": (p.get("price") or None) if typ == "LIMIT" else None,
            "quantity": None if close_position else (p.get("quantity") or None),
            "client_order_id": cid, "stop_price": p.get("stopPrice") or None,
            "reduce_only": reduce_only, "close_position": close_position})
    except ValueError:
        raise BinanceError(400, -1100, "Illegal characters found in a parameter.") from None


async def find(rt: Runtime, user: int, p: dict[str, str], m: Market) -> OrderView:
    oid, cid = p.get("orderId"), p.get("origClientOrderId")
    if oid:
        v = await rt.find_order(user, number(p, "orderId", 0))
    elif cid:
        v = await rt.find_order(user, client_id=cid)
    else:
        raise BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were"
                                       " empty/null!")
    if v is None or v.market != m.index:
        raise BinanceError(400, -2013, "Order does not exist.")
    return v


@router.post("/v1/order")
async def new_order(rt: Rt, request: Request) -> dict[str, Any]:
    user, p = await signed(rt, request, "trade")
    m, _ = perp(rt, need_param(p, "symbol"))
    req = order_request(m, p)
    v = await refusals(rt.trading.place(user, req))
    return order_json(m, v, req.reduce_only, req.close_position)


@router.get("/v1/order")
async def get_order(rt: Rt, request: Request) -> dict[str, Any]:
    user, p = await signed(rt, request, "read")
    m, _ = perp(rt, need_param(p, "symbol"))
    return order_json(m, await find(rt, user, p, m))


@router.delete("/v1/order")
async def cancel_order(rt: Rt, request: Request) -> dict[str, Any]:
    user, p = await signed(rt, request, "trade")
    m, _ = perp(rt, need_param(p, "symbol"))
    v = await find(rt, user, p, m)
    if v.order_id not in rt.views.open:
        raise BinanceError(400, -2011, UNKNOWN_ORDER)
    await refusals(rt.trading.cancel(user, m.symbol, order_id=v.order_id))
    done = rt.views.order(user, v.order_id) or v
    return order_json(m, done)


@router.get("/v1/openOrders", response_model=None)
async def open_orders(rt: Rt, request: Request) -> Any:
    user, p = await signed(rt, request, "read")
    mi = perp(rt, p["symbol"])[0].index if p.get("symbol") else None
    return [order_json(rt.markets[v.market], v) for v in rt.views.open_orders(user, mi)
            if rt.markets[v.market].kind == MarketKind.PERP]


@router.delete("/v1/allOpenOrders")
async def cancel_open_orders(rt: Rt, request: Request) -> dict[str, Any]:
    user, p = await signed(rt, request, "trade")
    m, _ = perp(rt, need_param(p, "symbol"))
    await refusals(rt.trading.cancel_all(user, m.symbol))
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


@router.get("/v1/allOrders", response_model=None)
async def all_orders(rt: Rt, request: Request) -> Any:
    user, p = await signed(rt, request, "read")
    m, _ = perp(rt, need_param(p, "symbol"))
    start, end = number(p, "startTime", 0), number(p, "endTime", 2**62)
    from_id, limit = number(p, "orderId", 0), min(1000, number(p, "limit", 500))
    rows = [v for v in my_orders(rt, user, m) if v.order_id >= from_id and start <= ms(v.created_ts) <= end]
    return [order_json(m, v) for v in rows[:limit]]


@router.get("/v1/userTrades", response_model=None)
async def user_trades(rt: Rt, request: Request) -> Any:
    user, p = await signed(rt, request, "read")
    m, _ = perp(rt, need_param(p, "symbol"))
    start, end = number(p, "startTime", 0), number(p, "endTime", 2**62)
    from_id, limit, order_id = number(p, "fromId", 0), min(1000, number(p, "limit", 500)), number(p, "orderId", 0)
    out = []
    for v in my_orders(rt, user, m):
        if order_id and v.order_id != order_id:
            continue
        for f in v.fills:
            if f["trade_id"] >= from_id and start <= ms(v.updated_ts) <= end:
                out.append({"symbol": fsymbol(m), "id": f["trade_id"], "orderId": v.order_id,
                            "side": side_name(v.side), "price": m.format_price(f["price"]),
                            "qty": m.format_qty(f["qty"]),
                            "quoteQty": m.quote.format(f["price"] * f["qty"] // 10**m.base.decimals),
                            "realizedPnl": "0", "marginAsset": m.quote.symbol,
                            "commission": m.quote.format(f["fee"]), "commissionAsset": m.quote.symbol,
                            "time": ms(v.updated_ts), "positionSide": "BOTH", "buyer": side_name(v.side) == "BUY",
                            "maker": f["role"] == "maker"})
    out.sort(key=lambda x: x["id"])
    return out[:limit]



INCOME_TYPES = {"REALIZED_PNL", "FUNDING_FEE", "COMMISSION"}


@router.get("/v1/income", response_model=None)
async def income(rt: Rt, request: Request) -> Any:
    """The caller's realized PnL, funding and trading fees on perpetuals (since this API process
    started), oldest first."""
    user, p = await signed(rt, request, "read")
    mi = perp(rt, p["symbol"])[0].index if p.get("symbol") else None
    kind = p.get("incomeType", "").upper()
    if kind and kind not in INCOME_TYPES:
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'incomeType'.")
    start, end = number(p, "startTime", 0), number(p, "endTime", 2**62)
    limit = min(1000, number(p, "limit", 100))
    out = []
    for r in rt.futures.income.get(user, ()):
        if (mi is None or r.market == mi) and (not kind or r.kind == kind) and start <= r.time <= end:
            m = rt.markets[r.market]
            out.append({"symbol": fsymbol(m), "incomeType": r.kind, "income": m.quote.format(r.amount),
                        "asset": m.quote.symbol, "info": "", "time": r.time, "tranId": r.id, "tradeId": ""})
    return out[:limit]


# ---------------------------------------------------------------------- conditional (algo) orders
# Binance takes STOP_MARKET and TAKE_PROFIT_MARKET on ``/fapi/v1/algoOrder`` (algoType CONDITIONAL,
# triggerPrice, clientAlgoId); in DPG they are ordinary orders whose ``algoId`` is their order id, so
# ``/fapi/v1/order`` reads and cancels them as well.

ALGO_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET")
ALGO_STATUS = {OrderStatus.OPEN.value: "NEW", OrderStatus.PARTIALLY_FILLED.value: "TRIGGERED",
               OrderStatus.FILLED.value: "FINISHED", OrderStatus.CANCELED.value: "CANCELED",
               OrderStatus.EXPIRED.value: "EXPIRED", OrderStatus.REJECTED.value: "REJECTED"}


def algo_json(m: Market, v: OrderView, reduce_only: bool = False, close_position: bool = False) -> dict[str, Any]:
    typ, tif = TYPE.get(v.otype, ("STOP_MARKET", "GTC"))
    status = ALGO_STATUS.get(v.status, "NEW")
    if status == "NEW" and v.triggered:
        status = "TRIGGERING"
    return {
        "algoId": v.order_id, "clientAlgoId": v.client_id, "algoType": "CONDITIONAL", "orderType": typ,
        "symbol": fsymbol(m), "side": side_name(v.side), "positionSide": "BOTH", "timeInForce": tif,
        "quantity": m.format_qty(v.qty), "algoStatus": status, "triggerPrice": price(m, v.stop_price),
        "price": "0", "icebergQuantity": None, "selfTradePreventionMode": "EXPIRE_TAKER",
        "workingType": "MARK_PRICE", "priceMatch": "NONE", "closePosition": close_position, "priceProtect": False,
        "reduceOnly": reduce_only or close_position, "actualOrderId": str(v.order_id) if v.triggered else "",
        "executedQty": m.format_qty(v.filled), "cumQuote": m.quote.format(v.filled_quote),
        "createTime": ms(v.created_ts), "updateTime": ms(v.updated_ts),
        "triggerTime": ms(v.updated_ts) if v.triggered else 0, "goodTillDate": 0,
    }


def algo_params(p: dict[str, str]) -> dict[str, str]:
    """An algo order's parameters in ``/fapi/v1/order``'s names."""
    if p.get("algoType", "CONDITIONAL").upper() != "CONDITIONAL":
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'algoType'.")
    if need_param(p, "type").upper() not in ALGO_TYPES:
        raise BinanceError(400, -1116, "Invalid orderType.")
    q = {k: v for k, v in p.items() if k not in ("triggerPrice", "clientAlgoId", "algoType")}
    q["stopPrice"] = need_param(p, "triggerPrice")
    if p.get("clientAlgoId"):
        q["newClientOrderId"] = p["clientAlgoId"]
    return q


async def find_algo(rt: Runtime, user: int, p: dict[str, str]) -> tuple[Market, OrderView]:
    if p.get("algoId"):
        v = await rt.find_order(user, number(p, "algoId", 0))
    elif p.get("clientAlgoId"):
        v = await rt.find_order(user, client_id=p["clientAlgoId"])
    else:
        raise BinanceError(400, -1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
    if v is None or rt.markets[v.market].kind != MarketKind.PERP or TYPE.get(v.otype, ("",))[0] not in ALGO_TYPES:
        raise BinanceError(400, -2013, "Order does not exist.")
    return rt.markets[v.market], v


@router.post("/v1/algoOrder")
async def new_algo_order(rt: Rt, request: Request) -> dict[str, Any]:
    user, p = await signed(rt, request, "trade")
    m, _ = perp(rt, need_param(p, "symbol"))
    req = order_request(m, algo_params(p))
    v = await refusals(rt.trading.place(user, req))
    return algo_json(m, v, req.reduce_only, req.close_position)


@router.get("/v1/algoOrder")
async def get_algo_order(rt: Rt, request: Request) -> dict[str, Any]:
    user, p = await signed(rt, request, "read")
    m, v = await find_algo(rt, user, p)
    return algo_json(m, v)


@router.delete("/v1/algoOrder")
async def cancel_algo_order(rt: Rt, request: Request) -> dict[str, Any]:
    user, p = await signed(rt, request, "trade")
    m, v = await find_algo(rt, user, p)
    if v.order_id not in rt.views.open:
        raise BinanceError(400, -2011, UNKNOWN_ORDER)
    await refusals(rt.trading.cancel(user, m.symbol, order_id=v.order_id))
    return {"algoId": v.order_id, "clientAlgoId": v.client_id, "code": "200", "msg": "success"}


@router.get("/v1/openAlgoOrders", response_model=None)
async def open_algo_orders(rt: Rt, request: Request) -> Any:
    user, p = await signed(rt, request, "read")
    mi = perp(rt, p["symbol"])[0].index if p.get("symbol") else None
    return [algo_json(rt.markets[v.market], v) for v in rt.views.open_orders(user, mi)
            if rt.markets[v.market].kind == MarketKind.PERP and TYPE.get(v.otype, ("",))[0] in ALGO_TYPES]


@router.get("/v1/allAlgoOrders", response_model=None)
async def all_algo_orders(rt: Rt, request: Request) -> Any:
    user, p = await signed(rt, request, "read")
    m, _ = perp(rt, need_param(p, "symbol"))
    limit = min(1000, number(p, "limit", 500))
    return [algo_json(m, v) for v in my_orders(rt, user, m) if TYPE.get(v.otype, ("",))[0] in ALGO_TYPES][:limit]
