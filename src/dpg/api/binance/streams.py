"""Binance's market streams, wherever a Binance stream URL with its host swapped for DPG's lands:
their names (``btcusdt@depth@100ms``), their protocol (``SUBSCRIBE`` …) and their messages,
published from the same updates as DPG's own channels."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, WebSocket

from dpg.api.binance.reports import ms
from dpg.api.deps import client_ip
from dpg.api.errors import ApiError
from dpg.api.marketdata import INTERVALS, Update
from dpg.api.runtime import Runtime
from dpg.api.ws import Client, Dialect


def _channel(rt: Runtime, stream: str) -> str | None:
    """The hub channel of a Binance stream name (``btcusdt@depth@100ms``), None if there is none."""
    sym, _, kind = stream.partition("@")
    try:
        m = rt.trading.spot_market(sym.upper())  # the spot dialect: no perpetual
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


Resolve = Callable[[Runtime, str], "str | None"]  # a stream name's hub channel, None if there is none


def stream_dialect(rt: Runtime, channel: Resolve = _channel) -> Dialect:
    """Binance's market streams protocol (``channel`` resolves a stream name: the spot dialect's by
    default, the USDⓈ-M dialect's in dpg.api.binance.fstreams): ``SUBSCRIBE``/``UNSUBSCRIBE``
    (``params``: stream names), ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY``/``GET_PROPERTY`` ``combined``; answers
    ``{"result": …, "id": …}`` or ``{"error": {"code", "msg"}, "id": …}``."""

    def error(client: Client, rid: Any, code: int, msg: str) -> None:
        client.send_json({"error": {"code": code, "msg": msg}, "id": rid})

    async def handle(client: Client, msg: dict[str, Any]) -> None:
        method, params, rid = msg.get("method"), msg.get("params", []), msg.get("id")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or len(params) > 200 or not all(isinstance(p, str) for p in params):
                return error(client, rid, 2, "Invalid request: params must be a list of at most 200 stream names")
            if method == "SUBSCRIBE":
                wrong = open_streams(rt, client, params, channel)
            else:
                channels = [channel(rt, p) for p in params]
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


def open_streams(rt: Runtime, client: Client, names: list[str], channel: Resolve = _channel) -> str:
    """Subscribe ``client`` to Binance streams, all or none: "" when done, else why not (an
    unknown stream, more than the hub's cap)."""
    found = [(n, channel(rt, n)) for n in names]
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
                                         "T": ms(t["ts"]), "m": t["side"] == "sell", "M": True})
        for symbol in upd.candles:
            m = rt.trading.market(symbol)
            for interval, span in INTERVALS.items():
                ch = f"bn:kline_{interval}:{m.compact}"
                if hub.has(ch):
                    for c in rt.md.candles(m.symbol, interval, limit=1):
                        hub.publish_raw(ch, {"e": "kline", "E": now, "s": m.compact, "k": {
                            "t": ms(c["t"]), "T": ms(c["t"]) + ms(span) - 1, "s": m.compact, "i": interval,
                            "f": -1, "L": -1, "o": m.format_price(c["open"]), "c": m.format_price(c["close"]),
                            "h": m.format_price(c["high"]), "l": m.format_price(c["low"]),
                            "v": m.format_qty(c["volume"]), "n": c["trades"], "x": False,
                            "q": m.quote.format(c["quote_volume"]), "V": "0", "Q": "0", "B": "0"}})

    rt.publishers.append(publish)

    async def session(ws: WebSocket) -> None:
        combined = ws.url.path.rstrip("/") == "/stream"
        if combined:
            names = [n for n in ws.query_params.get("streams", "").split("/") if n]
        else:  # in a raw stream's path, the parts naming a stream (ccxt's numbers name none)
            names = [n for n in ws.path_params.get("suffix", "").split("/") if "@" in n]

        def opened(client: Client) -> None:
            client.combined = combined
            wrong = open_streams(rt, client, names)
            if wrong:
                client.send_json({"error": {"code": 2, "msg": wrong}, "id": None})

        await rt.hub.session(ws, client_ip(ws), lambda _: dialect, opened)

    for path in ("/stream", "/stream/ws", "/stream/ws/{suffix:path}", "/ws/{suffix:path}"):
        r.add_api_websocket_route(path, session)
    return r
