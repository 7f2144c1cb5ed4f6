"""Binance's JSON of DPG's orders, fills, trades and balances: the REST answers and the user data
stream's ``executionReport``, ``balanceUpdate`` and ``outboundAccountPosition``."""

from __future__ import annotations

import time
from typing import Any

from dpg.api.binance.codes import STATUS, STP_NAMES, TYPE
from dpg.api.presentation import balance_of, fee_asset
from dpg.api.runtime import Runtime
from dpg.api.views import OrderView
from dpg.core.model import Asset, Market, MarketKind, OrderStatus, OrderType, Side

_DONE_EXEC = {"canceled": ("CANCELED", "CANCELED"), "expired": ("EXPIRED", "EXPIRED"),
              "rejected": ("REJECTED", "REJECTED")}


def ms(ns: int) -> int:
    return ns // 1_000_000


def side_name(side: int) -> str:
    return "BUY" if side == Side.BUY else "SELL"


def price(m: Market, units: int | None) -> str:
    """A price as Binance writes it; none is zero at the market's tick's places."""
    return m.format_price(units) if units else "0." + "0" * m.quote.places_of(m.tick_size)


def order_json(m: Market, v: OrderView) -> dict[str, Any]:
    """An order (``m`` is its market) as ``/api/v3/order`` answers it."""
    typ, tif = TYPE[v.otype]
    status = STATUS.get(v.status, "NEW")
    if v.status == OrderStatus.EXPIRED.value and v.reason == "self-trade prevention":
        status = "EXPIRED_IN_MATCH"
    return {
        "symbol": m.compact, "orderId": v.order_id, "orderListId": -1, "clientOrderId": v.client_id,
        "price": m.format_price(v.price) if v.price else "0.00",
        "origQty": m.format_qty(v.qty) if v.qty else m.format_qty(v.filled),
        "executedQty": m.format_qty(v.filled), "cummulativeQuoteQty": m.quote.format(v.filled_quote),
        "status": status, "timeInForce": tif, "type": typ, "side": side_name(v.side),
        "stopPrice": m.format_price(v.stop_price) if v.stop_price else "0.00", "icebergQty": "0.00",
        "time": ms(v.created_ts), "updateTime": ms(v.updated_ts), "isWorking": v.triggered,
        "workingTime": ms(v.created_ts), "origQuoteOrderQty": m.quote.format(v.quote_qty),
        "selfTradePreventionMode": STP_NAMES[v.stp],
        "transactTime": ms(v.updated_ts),
    }


def fills_json(m: Market, v: OrderView) -> list[dict[str, Any]]:
    """The fills of a new order's FULL answer."""
    fees = fee_asset(m, v.side)
    return [{"price": m.format_price(f["price"]), "qty": m.format_qty(f["qty"]),
             "commission": fees.format(f["fee"]), "commissionAsset": fees.symbol,
             "tradeId": f["trade_id"]} for f in v.fills]


def my_trade_json(m: Market, v: OrderView, f: dict[str, Any]) -> dict[str, Any]:
    """One fill of the caller's order ``v`` as ``/api/v3/myTrades`` lists it."""
    fees = fee_asset(m, v.side)
    return {"symbol": m.compact, "id": f["trade_id"], "orderId": v.order_id, "orderListId": -1,
            "price": m.format_price(f["price"]), "qty": m.format_qty(f["qty"]),
            "quoteQty": m.quote.format(f["price"] * f["qty"] // 10**m.base.decimals),
            "commission": fees.format(f["fee"]), "commissionAsset": fees.symbol,
            "time": ms(v.updated_ts), "isBuyer": v.side == Side.BUY, "isMaker": f["role"] == "maker",
            "isBestMatch": True}


def trade_json(m: Market, t: dict[str, Any]) -> dict[str, Any]:
    """A public trade as ``/api/v3/trades`` lists it."""
    return {"id": t["id"], "price": m.format_price(t["price"]), "qty": m.format_qty(t["qty"]),
            "quoteQty": m.quote.format(t["quote_qty"]), "time": ms(t["ts"]),
            "isBuyerMaker": t["side"] == "sell", "isBestMatch": True}


def balances_json(assets: list[Asset], mine: dict[int, list[int]]) -> list[dict[str, str]]:
    out = []
    for a in assets:
        free, locked = balance_of(mine, a)
        out.append({"asset": a.symbol, "free": a.format(free), "locked": a.format(locked)})
    return out


def exec_report(rt: Runtime, v: OrderView, now: int, ts: int, x: str, status: str, **fill: Any) -> dict[str, Any]:
    """An ``executionReport`` of order ``v`` (its state after the command stamped ``ts``);
    ``fill`` carries a trade's last quantity/price/fee and the cumulative figures up to it."""
    m = rt.markets[v.market]
    typ, tif = TYPE[v.otype]
    fees = fee_asset(m, v.side)
    fee = fill.get("fee", 0)
    return {
        "e": "executionReport", "E": now, "s": m.compact, "c": v.client_id,
        "S": side_name(v.side), "o": typ, "f": tif, "q": m.format_qty(v.qty),
        "p": m.format_price(v.price) if v.price else "0.00",
        "P": m.format_price(v.stop_price) if v.stop_price else "0.00", "F": "0.00", "g": -1,
        "C": v.client_id if x == "CANCELED" else "", "x": x, "X": status, "r": "NONE", "i": v.order_id,
        "l": m.format_qty(fill.get("qty", 0)), "z": m.format_qty(fill.get("filled", v.filled)),
        "L": m.format_price(fill["price"]) if fill.get("price") else "0.00",
        "n": fees.format(fee) if "fee" in fill else "0", "N": fees.symbol if "fee" in fill else None,
        "T": ms(ts), "t": fill.get("trade_id", -1), "I": v.updated_seq,
        "w": v.order_id in rt.views.open and v.triggered and v.otype in _RESTING,
        "m": fill.get("role") == "maker", "M": "trade_id" in fill, "O": ms(v.created_ts),
        "Z": m.quote.format(fill.get("filled_quote", v.filled_quote)),
        "Y": m.quote.format(fill.get("quote_qty", 0)), "Q": m.quote.format(v.quote_qty), "W": ms(v.created_ts),
        "V": STP_NAMES[v.stp],
    }


_RESTING = (OrderType.LIMIT.value, OrderType.POST_ONLY.value, OrderType.STOP_LIMIT.value,
            OrderType.TAKE_PROFIT_LIMIT.value)


def command_fills(items: list[dict[str, Any]]) -> tuple[dict[int, list[int]], dict[int, int], set[int]]:
    """Of one command's private items, per order: the base and quote its fills moved, the position
    of its last fill, and the orders it filled completely."""
    later: dict[int, list[int]] = {}
    last_fill: dict[int, int] = {}
    filled: set[int] = set()
    for n, it in enumerate(items):
        if it["type"] == "fill":
            acc = later.setdefault(it["order_id"], [0, 0])
            acc[0] += it["qty"]
            acc[1] += it["quote_qty"]
            last_fill[it["order_id"]] = n
        elif it["type"] == "order" and it["event"] == "filled":
            filled.add(it["order_id"])
    return later, last_fill, filled


def user_events(rt: Runtime, account: int, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Binance's user data events for one account's private updates of one command (the items
    ``/ws`` sends as orders, fills and balances): an ``executionReport`` per new order, trade,
    amendment, cancellation and expiry, then ``balanceUpdate`` for a credit, transfer or
    withdrawal and one ``outboundAccountPosition`` with every asset whose balance moved."""
    now = int(time.time() * 1000)
    out: list[dict[str, Any]] = []
    # cumulative figures before this command: the view's, less this command's fills
    later, last_fill, done_filled = command_fills(items)
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
        if v is None or rt.markets[v.market].kind != MarketKind.SPOT:  # the spot dialect: no perpetual's order
            continue
        ts = it.get("ts", v.updated_ts)
        if kind == "fill":
            acc = later[v.order_id]
            acc[0] -= it["qty"]
            acc[1] -= it["quote_qty"]
            filled, filled_quote = v.filled - acc[0], v.filled_quote - acc[1]
            status = "FILLED" if n == last_fill[v.order_id] and v.order_id in done_filled else "PARTIALLY_FILLED"
            out.append(exec_report(rt, v, now, ts, "TRADE", status, qty=it["qty"], price=it["price"],
                                    fee=it["fee"], trade_id=it["trade_id"], role=it["role"],
                                    quote_qty=it["quote_qty"], filled=filled, filled_quote=filled_quote))
        elif it["event"] == "new":
            out.append(exec_report(rt, v, now, ts, "NEW", "NEW", filled=0, filled_quote=0))
        elif it["event"] == "amended":
            out.append(exec_report(rt, v, now, ts, "REPLACED", "PARTIALLY_FILLED" if v.filled else "NEW"))
        elif it["event"] in _DONE_EXEC:
            x, status = _DONE_EXEC[it["event"]]
            if it["event"] == "expired" and v.reason == "self-trade prevention":
                x, status = "TRADE_PREVENTION", "EXPIRED_IN_MATCH"
            out.append(exec_report(rt, v, now, ts, x, status))
    if moved:
        assets = [rt.trading.asset(a) for a in moved]
        out.append({"e": "outboundAccountPosition", "E": now, "u": now,
                    "B": [{"a": a["asset"], "f": a["free"], "l": a["locked"]}
                          for a in balances_json(assets, rt.views.balance(account))]})
    return out
