"""The JSON of DPG's own API: orders, balances, trades, depth, tickers, candles and private
updates, from base units to decimal strings. Every native REST answer and WebSocket message is
written here; the Binance dialect writes its own words in ``dpg.api.binance.reports``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from fastapi.responses import Response

from dpg.api.errors import ApiError
from dpg.api.views import SIDE_NAMES, STATUS_NAMES, STP_NAMES, TYPE_NAMES, OrderView
from dpg.core.model import Asset, Market, MarketKind, Side

JS_SAFE = 2**53  # an integer at least this large is written as a string (JavaScript's numbers)


def json_bytes(obj: Any) -> bytes:
    """Compact JSON (orjson; the standard encoder for what it refuses, such as an integer past 64 bits)."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200) -> Response:
    """A JSON answer that skips FastAPI's re-validation of what DPG built itself."""
    return Response(json_bytes(obj), status_code=status, media_type="application/json")


def rate(ppm: int) -> str:
    """A fee rate in parts per million as a plain decimal (``1000`` -> ``"0.001"``); the native
    markets list and Binance's fee answers both write rates this way."""
    return format((Decimal(ppm) / Decimal(1_000_000)).normalize(), "f")


def ppm_of(text: str, what: str) -> int:
    """A rate written as ``rate`` writes it (``"0.001"``) in parts per million, within [0, 1]; a
    refusal is a 400 INVALID_RATE (more than 6 decimals, negative, above 1, not a number)."""
    try:
        value = Decimal(text.strip()) * 1_000_000
    except (InvalidOperation, AttributeError):
        raise ApiError(400, "INVALID_RATE", f"{what} must be a decimal rate such as 0.001") from None
    if not value.is_finite() or value != value.to_integral_value() or not 0 <= value <= 1_000_000:
        raise ApiError(400, "INVALID_RATE", f"{what} must be a rate within [0, 1] with at most 6 decimals")
    return int(value)


def fee_asset(m: Market, side: int) -> Asset:
    """The asset an order of ``side`` pays its fees in: what it receives (a buyer base, a seller
    quote); on a perpetual, its quote (margin) asset."""
    return m.base if side == Side.BUY and m.kind == MarketKind.SPOT else m.quote


def balance_of(mine: dict[int, list[int]], a: Asset) -> tuple[int, int]:
    """(available, locked) of asset ``a`` in an account's balances (``AccountViews.balance``)."""
    avail, locked = mine.get(a.index, (0, 0))
    return avail, locked


def market_json(m: Market) -> dict[str, Any]:
    places = m.quote.places_of(m.tick_size)
    return {"market": m.symbol, "base": m.base.symbol, "quote": m.quote.symbol,
            "tick_size": m.quote.format(m.tick_size, places),
            "lot_size": m.base.format(m.lot_size, m.base.places_of(m.lot_size)),
            "min_notional": m.quote.format(m.min_notional, places),
            "maker_fee": rate(m.maker_fee_ppm), "taker_fee": rate(m.taker_fee_ppm),
            "price_decimals": places, "quantity_decimals": m.base.places_of(m.lot_size),
            "status": "halted" if m.halted else "trading"}


def order_json(m: Market, v: OrderView) -> dict[str, Any]:
    """An order as REST and the WebSocket answer it (``m`` is its market)."""
    fees = fee_asset(m, v.side)
    return {
        "order_id": v.order_id,
        "client_order_id": v.client_id or None,
        "market": m.symbol,
        "side": SIDE_NAMES[v.side],
        "type": TYPE_NAMES[v.otype],
        "price": m.format_price(v.price) if v.price else None,
        "quantity": m.format_qty(v.qty) if v.qty else None,
        "quote_quantity": m.quote.format(v.quote_qty) if v.quote_qty else None,
        "filled": m.format_qty(v.filled),
        "filled_quote": m.quote.format(v.filled_quote),
        "remaining": m.format_qty(max(0, v.qty - v.filled)) if v.qty else None,
        "fee": fees.format(v.fee),
        "fee_asset": fees.symbol,
        "status": STATUS_NAMES[v.status],
        "reason": v.reason or None,
        "stp": STP_NAMES[v.stp],
        "stop_price": m.format_price(v.stop_price) if v.stop_price else None,
        "triggered": v.triggered,
        "created_seq": v.created_seq,
        "created_at": v.created_ts // 1_000_000,
        "updated_seq": v.updated_seq,
        "updated_at": v.updated_ts // 1_000_000,
        "fills": [{"trade_id": f["trade_id"], "price": m.format_price(f["price"]),
                   "quantity": m.format_qty(f["qty"]), "fee": fees.format(f["fee"]), "role": f["role"]}
                  for f in v.fills],
    }


def balances_json(assets: list[Asset], mine: dict[int, list[int]]) -> list[dict[str, str]]:
    out = []
    for a in assets:
        avail, locked = balance_of(mine, a)
        out.append({"asset": a.symbol, "available": a.format(avail), "locked": a.format(locked),
                    "total": a.format(avail + locked)})
    return out


def levels_json(m: Market, levels: Iterable[Sequence[int]]) -> list[list[str]]:
    """Book levels ``[(price, quantity)]`` as ``[["price", "quantity"]]``."""
    return [[m.format_price(p), m.format_qty(q)] for p, q in levels]


def depth_json(m: Market, depth: dict[str, Any], seq: int) -> dict[str, Any]:
    return {"market": m.symbol, "seq": seq, "bids": levels_json(m, depth["bids"]),
            "asks": levels_json(m, depth["asks"])}


def trade_json(m: Market, t: dict[str, Any]) -> dict[str, Any]:
    return {"id": t["id"], "market": m.symbol, "price": m.format_price(t["price"]),
            "quantity": m.format_qty(t["qty"]), "quote_quantity": m.quote.format(t["quote_qty"]),
            "taker_side": t["side"], "time": t["ts"] // 1_000_000}


def ticker_json(m: Market, t: dict[str, Any]) -> dict[str, Any]:
    def px(key: str) -> str | None:
        v = t.get(key)
        return m.format_price(v) if v else None

    def qty(key: str) -> str | None:
        v = t.get(key)
        return m.format_qty(v) if v else None

    return {"market": m.symbol, "open": px("open"), "high": px("high"), "low": px("low"), "last": px("last"),
            "change": m.quote.format(t.get("change") or 0), "volume": m.format_qty(t.get("volume") or 0),
            "quote_volume": m.quote.format(t.get("quote_volume") or 0), "trades": t.get("trades", 0),
            "bid": px("bid"), "bid_quantity": qty("bid_qty"), "ask": px("ask"), "ask_quantity": qty("ask_qty")}


def candle_json(m: Market, c: dict[str, Any]) -> dict[str, Any]:
    return {"time": c["t"] // 1_000_000, "open": m.format_price(c["open"]), "high": m.format_price(c["high"]),
            "low": m.format_price(c["low"]), "close": m.format_price(c["close"]),
            "volume": m.format_qty(c["volume"]), "quote_volume": m.quote.format(c["quote_volume"]),
            "trades": c["trades"]}


def asset_named(assets: list[Asset], symbol: str) -> Asset | None:
    return next((a for a in assets if a.symbol == symbol), None)


def private_json(item: dict[str, Any], market: Market | None, assets: list[Asset]) -> dict[str, Any]:
    """A private update (an order, fill or balance item of ``MarketData.apply``) for the ``orders``,
    ``fills`` and ``balances`` channels: its market's and assets' amounts as decimal strings."""
    out = dict(item)
    out.pop("type", None)
    if market is not None:
        m = market
        out["market"] = m.symbol
        if isinstance(out.get("price"), int):
            out["price"] = m.format_price(out["price"]) if out["price"] else None
        for key in ("qty", "quantity", "remaining", "filled"):
            if isinstance(out.get(key), int):
                out[key] = m.format_qty(out[key])
        if isinstance(out.get("quote_qty"), int):
            out["quote_qty"] = m.quote.format(out["quote_qty"])
        if isinstance(out.get("fee"), int):
            fee_symbol = out.get("fee_asset")
            a = asset_named(assets, fee_symbol) if isinstance(fee_symbol, str) else None
            out["fee"] = a.format(out["fee"]) if a else str(out["fee"])
    asset_name = out.get("asset")
    a = asset_named(assets, asset_name) if isinstance(asset_name, str) else None
    if a is not None:
        for key in ("d_available", "d_locked", "available", "locked"):
            if isinstance(out.get(key), int):
                out[key] = a.format(out[key])
    for k, v in list(out.items()):
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= JS_SAFE:
            out[k] = str(v)
    return out
