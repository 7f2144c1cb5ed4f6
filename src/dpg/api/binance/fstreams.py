"""Binance USDⓈ-M futures' streams over DPG's perpetuals: the listen key (``/fapi/v1/listenKey``) and
its user data stream (``ORDER_TRADE_UPDATE``, ``ACCOUNT_UPDATE``, ``MARGIN_CALL``), and the market
streams (``depthUpdate`` chained by ``pu``, ``markPriceUpdate``, ``aggTrade``, ``trade``, ``kline``)
under ``/fstream``: where a Binance futures stream URL (``wss://fstream.binance.com/ws``) lands with
its host swapped for DPG's and ``/fstream`` put before its path."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, WebSocket

from dpg.api.binance.codes import BinanceError, refused
from dpg.api.binance.fapi import TYPE, fsymbol, perp, position_json
from dpg.api.binance.reports import command_fills, ms, price, side_name
from dpg.api.binance.streams import open_streams, stream_dialect
from dpg.api.deps import client_ip
from dpg.api.futures import rate_text
from dpg.api.marketdata import INTERVALS, Update
from dpg.api.runtime import Runtime
from dpg.api.views import OrderView
from dpg.api.ws import REVOKED, Client, Grant
from dpg.core import events as E
from dpg.core.events import Cause, Event
from dpg.core.model import Market, MarketKind
from dpg.identity import AuthError

LISTEN_KEY_TTL_MS = 60 * 60 * 1000  # a listen key lives an hour after its last keep-alive, as Binance's
MARGIN_CALL_RATIO = (4, 5)  # maintenance margin at 80 % of the margin balance: a MARGIN_CALL
MAX_KEY = 128  # characters of an API key or listen key worth looking up
NO_LISTEN_KEY = (400, -1125, "This listenKey does not exist.")
# why a balance moved, in ACCOUNT_UPDATE's words ("m")
REASONS = {Cause.CREDIT.value: "DEPOSIT", Cause.WITHDRAWAL.value: "WITHDRAW", Cause.TRANSFER.value: "ASSET_TRANSFER",
           Cause.FUNDING.value: "FUNDING_FEE", Cause.MARGIN.value: "MARGIN_TRANSFER",
           Cause.LIQUIDATION.value: "INSURANCE_CLEAR", Cause.INSURANCE.value: "INSURANCE_CLEAR"}
_DONE = {"filled": ("TRADE", "FILLED"), "canceled": ("CANCELED", "CANCELED"), "expired": ("EXPIRED", "EXPIRED"),
         "rejected": ("REJECTED", "REJECTED")}


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------- market streams


def channel(rt: Runtime, stream: str) -> str | None:
    """The hub channel of a futures stream name (``btcusdt@depth@100ms``), None if there is none."""
    sym, _, kind = stream.partition("@")
    try:
        m, _ = perp(rt, sym[:20])
    except BinanceError:
        return None
    if kind in ("depth", "depth@100ms", "depth@250ms", "depth@500ms"):
        return f"bnf:depth:{m.index}"
    if kind in ("markPrice", "markPrice@1s"):
        return f"bnf:markPrice:{m.index}"
    if kind in ("trade", "aggTrade", "bookTicker"):
        return f"bnf:{kind}:{m.index}"
    if kind.startswith("kline_") and kind[6:] in INTERVALS:
        return f"bnf:{kind}:{m.index}"
    return None


def mark_update(rt: Runtime, m: Market) -> dict[str, Any]:
    pv = rt.futures.perp(m)
    assert pv is not None
    return {"e": "markPriceUpdate", "E": now_ms(), "s": fsymbol(m), "p": price(m, pv.mark),
            "ap": price(m, pv.mark), "P": price(m, pv.index), "i": price(m, pv.index),
            "r": rate_text(pv.last_rate), "T": pv.next_funding}


def publish_market(rt: Runtime, upd: Update, prevs: dict[int, int]) -> None:
    """Each update's futures market streams: a depth diff per changed book (``pu`` the previous
    change's seq, ``U`` = ``pu`` + 1, ``u`` this command's seq), its trades and candles."""
    hub = rt.hub
    now = now_ms()
    for symbol, change in upd.depth.items():
        m = rt.trading.market(symbol)
        if m.kind != MarketKind.PERP:
            continue
        ch = f"bnf:depth:{m.index}"
        if hub.has(ch):
            pu = prevs.get(m.index, 0)
            hub.publish_raw(ch, {
                "e": "depthUpdate", "E": now, "T": now, "s": fsymbol(m), "U": pu + 1, "u": upd.seq, "pu": pu,
                "b": [[m.format_price(p), m.format_qty(q)] for p, q in change.get("bids", [])],
                "a": [[m.format_price(p), m.format_qty(q)] for p, q in change.get("asks", [])]})
        ch = f"bnf:bookTicker:{m.index}"
        if hub.has(ch):
            d = rt.md.depth(m.symbol, 1)
            bid = d["bids"][0] if d["bids"] else (0, 0)
            ask = d["asks"][0] if d["asks"] else (0, 0)
            hub.publish_raw(ch, {"e": "bookTicker", "u": upd.seq, "E": now, "T": now, "s": fsymbol(m),
                                 "b": price(m, bid[0]), "B": m.format_qty(bid[1]),
                                 "a": price(m, ask[0]), "A": m.format_qty(ask[1])})
    for t in upd.trades:
        m = rt.trading.market(t["market"])
        if m.kind != MarketKind.PERP:
            continue
        common = {"E": now, "s": fsymbol(m), "p": m.format_price(t["price"]), "q": m.format_qty(t["qty"]),
                  "T": ms(t["ts"]), "m": t["side"] == "sell"}
        if hub.has(ch := f"bnf:aggTrade:{m.index}"):
            hub.publish_raw(ch, {"e": "aggTrade", "a": t["id"], "f": t["id"], "l": t["id"], **common})
        if hub.has(ch := f"bnf:trade:{m.index}"):
            hub.publish_raw(ch, {"e": "trade", "t": t["id"], "X": "MARKET", **common})
    for symbol in upd.candles:
        m = rt.trading.market(symbol)
        if m.kind != MarketKind.PERP:
            continue
        for interval, span in INTERVALS.items():
            ch = f"bnf:kline_{interval}:{m.index}"
            if hub.has(ch):
                for c in rt.md.candles(m.symbol, interval, limit=1):
                    hub.publish_raw(ch, {"e": "kline", "E": now, "s": fsymbol(m), "k": {
                        "t": ms(c["t"]), "T": ms(c["t"]) + ms(span) - 1, "s": fsymbol(m), "i": interval,
                        "f": -1, "L": -1, "o": m.format_price(c["open"]), "c": m.format_price(c["close"]),
                        "h": m.format_price(c["high"]), "l": m.format_price(c["low"]),
                        "v": m.format_qty(c["volume"]), "n": c["trades"], "x": False,
                        "q": m.quote.format(c["quote_volume"]), "V": "0", "Q": "0", "B": "0"}})


# ---------------------------------------------------------------------- the user data stream


@dataclass(slots=True)
class Listen:
    """A listen key: whose account it streams, the API key that asked for it, until when (ms)."""

    user: int
    api_key: str
    expires: int


class UserStreams:
    """Listen keys (one per API key, as Binance keeps them) and the connections streaming them."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.keys: dict[str, Listen] = {}  # listen key -> its grant
        self.of_api_key: dict[str, str] = {}  # API key -> its listen key
        self.listeners: dict[int, dict[Client, str]] = {}  # account -> connection -> its listen key
        self.called: set[tuple[int, int]] = set()  # (account, market) in a margin call now

    # -- the REST side

    async def owner(self, request: Request) -> tuple[int, str]:
        """The account and API key of a listen key request: the key alone (``X-MBX-APIKEY``), no
        signature, as Binance's USER_STREAM endpoints take it."""
        key = request.headers.get("x-mbx-apikey", "")
        if not key or len(key) > MAX_KEY:
            raise BinanceError(401, -2014, "API-key format invalid.")
        try:
            user = await self.rt.accounts.key_user(key, client_ip(request), "read")
        except AuthError as e:
            raise refused(e) from None
        if self.rt.key_limits.take(key):
            raise BinanceError(429, -1003, "Too many requests; please use the websocket for live updates.")
        return user, key

    async def mine(self, request: Request) -> tuple[str, Listen]:
        """The caller's listen key; -1125 when it has none, or names one that is not its own."""
        user, key = await self.owner(request)
        given = request.query_params.get("listenKey") or ""
        if not given:
            form = (await request.body()).decode("utf-8", "replace")
            given = dict(parse_qsl(form)).get("listenKey", "")
        lk = self.of_api_key.get(key, "")
        listen = self.keys.get(lk)
        if listen is None or listen.user != user or (given and given != lk) or listen.expires < now_ms():
            raise BinanceError(*NO_LISTEN_KEY)
        return lk, listen

    async def create(self, request: Request) -> dict[str, str]:
        user, key = await self.owner(request)
        lk = self.of_api_key.get(key, "")
        listen = self.keys.get(lk)
        if listen is None or listen.user != user or listen.expires < now_ms():
            self.forget(lk)
            lk = secrets.token_hex(32)
            listen = self.keys[lk] = Listen(user, key, 0)
            self.of_api_key[key] = lk
        listen.expires = now_ms() + LISTEN_KEY_TTL_MS
        return {"listenKey": lk}

    async def keep_alive(self, request: Request) -> dict[str, str]:
        lk, listen = await self.mine(request)
        listen.expires = now_ms() + LISTEN_KEY_TTL_MS
        return {"listenKey": lk}

    async def close(self, request: Request) -> dict[str, str]:
        lk, _ = await self.mine(request)
        self.expire(lk)
        return {}

    def forget(self, lk: str) -> None:
        listen = self.keys.pop(lk, None)
        if listen is not None and self.of_api_key.get(listen.api_key) == lk:
            del self.of_api_key[listen.api_key]

    def expire(self, lk: str) -> None:
        """End a listen key: its connections get ``listenKeyExpired`` and are closed."""
        listen = self.keys.get(lk)
        self.forget(lk)
        if listen is None:
            return
        for c, key in list(self.listeners.get(listen.user, {}).items()):
            if key == lk:
                c.send_json({"e": "listenKeyExpired", "E": now_ms(), "listenKey": lk})
                self.drop(c)
                self.rt.hub.end(c, REVOKED, "listenKeyExpired")

    # -- the socket side

    async def connect(self, ws: WebSocket, lk: str) -> None:
        listen = self.keys.get(lk) if 0 < len(lk) <= MAX_KEY else None
        if listen is None or listen.expires < now_ms():
            await ws.close(code=1008, reason="This listenKey does not exist.")
            return
        dialect = stream_dialect(self.rt, channel)

        def opened(c: Client) -> None:
            self.rt.hub.grant(c, f"sub:{listen.user}", Grant(listen.user, "read", key=listen.api_key))
            self.listeners.setdefault(listen.user, {})[c] = lk

        await self.rt.hub.session(ws, client_ip(ws), lambda _: dialect, opened, self.drop)

    def drop(self, c: Client) -> None:
        for account, conns in list(self.listeners.items()):
            conns.pop(c, None)
            if not conns:
                del self.listeners[account]

    def send(self, account: int, events: list[dict[str, Any]]) -> None:
        conns = self.listeners.get(account)
        if not conns:
            return
        now = now_ms()
        for c, lk in list(conns.items()):
            listen = self.keys.get(lk)
            if listen is None or listen.expires < now:
                self.expire(lk)
                continue
            for ev in events:
                if c.ending or not c.send_json(ev):
                    self.drop(c)
                    self.rt.hub.disconnect(c)
                    break

    def publish_orders(self, upd: Update, _: dict[int, int]) -> None:
        """ORDER_TRADE_UPDATE for each perpetual order's new state and fill in an update."""
        for account, items in upd.accounts.items():
            if account in self.listeners:
                out = order_updates(self.rt, account, items)
                if out:
                    self.send(account, out)

    def publish_accounts(self, seq: int, events: list[Event]) -> None:
        """ACCOUNT_UPDATE for each listening account whose margin asset or positions a command
        moved; MARGIN_CALL when a mark price brings one of its positions near liquidation."""
        if not self.listeners:
            return
        perps = self.rt.futures.perp_markets()
        if not perps:
            return
        margin_asset = perps[0].market.quote.index
        moved: dict[int, tuple[dict[int, None], list[int]]] = {}  # account -> (markets, causes)
        marks: list[int] = []
        for ev in events:
            kind = ev[0]
            if kind == E.POSITION:
                p = cast(E.Position, ev)
                if p.account in self.listeners:
                    moved.setdefault(p.account, ({}, []))[0][p.market] = None
            elif kind == E.BALANCE:
                b = cast(E.Balance, ev)
                if b.account in self.listeners and b.asset == margin_asset:
                    moved.setdefault(b.account, ({}, []))[1].append(b.cause)
            elif kind == E.MARK_PRICE:
                marks.append(cast(E.MarkPrice, ev).market)
        for account, (markets, causes) in moved.items():
            self.send(account, [self.account_update(account, list(markets), causes)])
        for mi in marks:
            for account in list(self.listeners):
                call = self.margin_call(account, mi)
                if call is not None:
                    self.send(account, [call])

    def account_update(self, account: int, markets: list[int], causes: list[int]) -> dict[str, Any]:
        rt = self.rt
        q = rt.futures.perp_markets()[0].market.quote
        available, locked = rt.views.balance(account).get(q.index, [0, 0])
        reason = next((REASONS[c] for c in causes if c in REASONS), "ORDER")
        rows = []
        for mi in markets:
            m = rt.markets[mi]
            pv = rt.futures.perp(m)
            if pv is None:
                continue
            s = rt.futures.settings(account, mi)
            r = position_json(m, pv, s, None)
            rows.append({"s": r["symbol"], "pa": r["positionAmt"], "ep": r["entryPrice"], "bep": r["breakEvenPrice"],
                         "cr": q.format(s.realized), "up": r["unRealizedProfit"], "mt": r["marginType"],
                         "iw": r["isolatedWallet"], "ps": "BOTH"})
        now = now_ms()
        return {"e": "ACCOUNT_UPDATE", "E": now, "T": now, "a": {"m": reason, "B": [
            {"a": q.symbol, "wb": q.format(available + locked), "cw": q.format(available + locked), "bc": "0"}],
            "P": rows}}

    def margin_call(self, account: int, mi: int) -> dict[str, Any] | None:
        """A MARGIN_CALL when ``account``'s position in market ``mi`` has just come to need
        maintenance margin of at least MARGIN_CALL_RATIO of its margin balance (the isolated
        margin, or the cross wallet, plus its unrealized PnL); None otherwise, or while it stays
        there (one call per crossing)."""
        rt = self.rt
        m = rt.markets[mi]
        pv = rt.futures.perp(m)
        s = rt.futures.settings(account, mi)
        if pv is None or not s.size or not (pv.mark or pv.index):
            self.called.discard((account, mi))
            return None
        mark = pv.mark or pv.index
        scale = 10**m.base.decimals
        notional = abs(s.size) * mark // scale
        upnl = s.size * mark // scale - s.cost
        maint = pv.tiers.maintenance(notional)
        if s.isolated:
            balance = s.margin + upnl
        else:
            available, locked = rt.views.balance(account).get(m.quote.index, [0, 0])
            balance = available + locked + upnl
        near = maint * MARGIN_CALL_RATIO[1] >= balance * MARGIN_CALL_RATIO[0]
        if not near or (account, mi) in self.called:
            if not near:
                self.called.discard((account, mi))
            return None
        self.called.add((account, mi))
        r = position_json(m, pv, s, None)
        available, locked = rt.views.balance(account).get(m.quote.index, [0, 0])
        return {"e": "MARGIN_CALL", "E": now_ms(), "cw": m.quote.format(available + locked), "p": [{
            "s": r["symbol"], "ps": "BOTH", "pa": r["positionAmt"], "mt": "ISOLATED" if s.isolated else "CROSSED",
            "iw": r["isolatedWallet"], "mp": r["markPrice"], "up": r["unRealizedProfit"],
            "mm": m.quote.format(maint)}]}


def order_updates(rt: Runtime, account: int, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ORDER_TRADE_UPDATE events of one account's private updates of one command, for its orders on
    perpetuals: a new order, each fill (with its running totals), a trigger and its end."""
    out: list[dict[str, Any]] = []
    later, last_fill, filled_done = command_fills(items)  # later: what this command filled after the item at hand
    for n, it in enumerate(items):
        if it["type"] not in ("order", "fill"):
            continue
        v = rt.views.order(account, it["order_id"])
        if v is None or rt.markets[v.market].kind != MarketKind.PERP:
            continue
        m = rt.markets[v.market]
        if it["type"] == "fill":
            acc = later[v.order_id]
            acc[0] -= it["qty"]
            acc[1] -= it["quote_qty"]
            done = n == last_fill[v.order_id] and v.order_id in filled_done
            out.append(order_update(m, v, it["ts"], "TRADE", "FILLED" if done else "PARTIALLY_FILLED",
                                    filled=v.filled - acc[0], filled_quote=v.filled_quote - acc[1], fill=it))
        elif it["event"] == "new":
            out.append(order_update(m, v, it["ts"], "NEW", "NEW", filled=0, filled_quote=0))
        elif it["event"] == "amended":
            out.append(order_update(m, v, it["ts"], "AMENDMENT", "PARTIALLY_FILLED" if v.filled else "NEW"))
        elif it["event"] in _DONE and it["event"] != "filled":
            x, status = _DONE[it["event"]]
            out.append(order_update(m, v, it["ts"], x, status))
    return out


def order_update(m: Market, v: OrderView, ts: int, x: str, status: str, filled: int | None = None,
                 filled_quote: int | None = None, fill: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ORDER_TRADE_UPDATE of order ``v`` on perpetual ``m``; ``filled`` and
    ``filled_quote`` its totals up to this event (the view's by default), ``fill`` the trade."""
    typ, tif = TYPE.get(v.otype, ("LIMIT", "GTC"))
    z = v.filled if filled is None else filled
    zq = v.filled_quote if filled_quote is None else filled_quote
    avg = zq * 10**m.base.decimals // z if z else 0
    f = fill or {}
    now = now_ms()
    return {"e": "ORDER_TRADE_UPDATE", "E": now, "T": ms(ts), "o": {
        "s": fsymbol(m), "c": v.client_id, "S": side_name(v.side), "o": typ, "f": tif,
        "q": m.format_qty(v.qty) if v.qty else m.format_qty(v.filled), "p": price(m, v.price),
        "ap": price(m, avg), "sp": price(m, v.stop_price), "x": x, "X": status, "i": v.order_id,
        "l": m.format_qty(f.get("qty", 0)), "z": m.format_qty(z),
        "L": price(m, f.get("price", 0)), "N": m.quote.symbol,
        "n": m.quote.format(f.get("fee", 0)), "T": ms(ts), "t": f.get("trade_id", 0), "b": "0", "a": "0",
        "m": f.get("role") == "maker", "R": False, "wt": "MARK_PRICE", "ot": typ, "ps": "BOTH", "cp": False,
        "rp": "0", "pP": False, "si": 0, "ss": 0, "V": "EXPIRE_TAKER", "pm": "NONE", "gtd": 0}}


# ---------------------------------------------------------------------- routes


def fstreams(rt: Runtime) -> APIRouter:
    """The listen key endpoints (``POST``/``PUT``/``DELETE /fapi/v1/listenKey``, by API key) and the
    futures sockets: ``/fstream/private/ws?listenKey=…`` and ``/fstream/ws/<listenKey>`` (the user
    data stream), ``/fstream/ws[/…]``, ``/fstream/public/ws[/…]``, ``/fstream/market/ws[/…]`` (a
    path part naming a stream subscribes it) and ``/fstream/stream?streams=a/b`` (combined) for the
    market streams: ``<symbol>@depth[@100ms]``, ``<symbol>@markPrice[@1s]``, ``<symbol>@aggTrade``,
    ``<symbol>@trade``, ``<symbol>@bookTicker``, ``<symbol>@kline_<interval>``."""
    users = UserStreams(rt)
    rt.publishers.append(users.publish_orders)
    rt.publishers.append(lambda upd, prevs: publish_market(rt, upd, prevs))
    rt.event_publishers.append(users.publish_accounts)

    def publish_marks(seq: int, events: list[Event]) -> None:
        for ev in events:
            if ev[0] == E.MARK_PRICE or ev[0] == E.INDEX_STATE:
                m = rt.markets[cast(E.MarkPrice | E.IndexState, ev).market]
                if rt.hub.has(ch := f"bnf:markPrice:{m.index}"):
                    rt.hub.publish_raw(ch, mark_update(rt, m))

    rt.event_publishers.append(publish_marks)
    r = APIRouter(tags=["binance-futures"])
    r.add_api_route("/fapi/v1/listenKey", users.create, methods=["POST"])
    r.add_api_route("/fapi/v1/listenKey", users.keep_alive, methods=["PUT"])
    r.add_api_route("/fapi/v1/listenKey", users.close, methods=["DELETE"])
    dialect = stream_dialect(rt, channel)

    async def private(ws: WebSocket) -> None:
        await users.connect(ws, ws.query_params.get("listenKey", ""))

    async def market(ws: WebSocket) -> None:
        combined = ws.url.path.rstrip("/").endswith("/stream")
        if combined:
            names = [n for n in ws.query_params.get("streams", "").split("/") if n]
        else:
            suffix = ws.path_params.get("suffix", "")
            if suffix and "@" not in suffix and "/" not in suffix and suffix in users.keys:
                return await users.connect(ws, suffix)
            names = [n for n in suffix.split("/") if "@" in n]

        def opened(client: Client) -> None:
            client.combined = combined
            wrong = open_streams(rt, client, names, channel)
            if wrong:
                client.send_json({"error": {"code": 2, "msg": wrong}, "id": None})

        await rt.hub.session(ws, client_ip(ws), lambda _: dialect, opened)
        return None

    r.add_api_websocket_route("/fstream/private/ws", private)
    for path in ("/fstream/stream", "/fstream/ws", "/fstream/ws/{suffix:path}", "/fstream/public/ws",
                 "/fstream/public/ws/{suffix:path}", "/fstream/market/ws", "/fstream/market/ws/{suffix:path}"):
        r.add_api_websocket_route(path, market)
    return r
