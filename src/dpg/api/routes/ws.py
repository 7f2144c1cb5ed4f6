"""DPG's own WebSocket protocol at ``/ws`` (see ``dpg.api.ws`` for its channels and limits):
``ping``, ``subscribe``/``unsubscribe``, ``auth`` (a session token, or an API key's signature of
``"<timestamp>[\\n<recv_window>]\\nGET\\n/ws\\n"``), ``place`` and ``cancel``. A connection whose
first message is Binance's is served Binance's market streams instead."""

from typing import Any

from fastapi import APIRouter, WebSocket

from dpg.api import signing
from dpg.api.binance.streams import is_binance, stream_dialect
from dpg.api.deps import client_ip, runtime, signed_payload
from dpg.api.errors import ApiError, body
from dpg.api.marketdata import INTERVALS
from dpg.api.runtime import Runtime
from dpg.api.trading import OrderRequest
from dpg.api.ws import PRIVATE, Client, Dialect, Grant
from dpg.identity import AuthError

router = APIRouter()


@router.websocket("/ws")
async def websocket(ws: WebSocket) -> None:
    """DPG's own protocol; a connection whose first message is Binance's (``{"method": …}``
    rather than ``{"op": …}``) is served Binance's market streams, as at ``/ws/<anything>``."""
    rt = runtime(ws)
    native = Dialect(lambda client, msg: _message(rt, client, msg), _refuse)
    await rt.hub.session(ws, client_ip(ws), lambda first: stream_dialect(rt) if is_binance(first) else native)


def _refuse(client: Client, msg: dict[str, Any] | None, code: str, reason: str) -> None:
    client.send_json({**({"op": msg.get("op"), "id": msg.get("id")} if msg else {}), "error": body(code, reason)})


async def _message(rt: Runtime, client: Client, msg: dict[str, Any]) -> None:
    op = msg.get("op")
    rid = msg.get("id")
    try:
        if op == "ping":
            client.send_json({"op": "pong", "id": rid})
        elif op in ("subscribe", "unsubscribe"):
            channels = msg.get("channels")
            if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels) or len(channels) > 50:
                raise ApiError(400, "INVALID_CHANNELS", "channels must be a list of at most 50 names")
            if op == "subscribe":
                names = [_channel(rt, client, ch) for ch in channels]
                if not rt.hub.room(client, names):
                    raise ApiError(400, "TOO_MANY_STREAMS", f"at most {rt.hub.max_streams} channels per connection")
                if any(name in PRIVATE for name in names):
                    await rt.hub.recheck(client)
                for name in names:
                    _subscribe(rt, client, name)
            else:
                for ch in channels:
                    rt.hub.unsubscribe(client, ch)
            client.send_json({"op": op, "id": rid, "channels": channels})
        elif op == "auth":
            await _auth(rt, client, msg)
            client.send_json({"op": "auth", "id": rid, "user_id": client.account})
        elif op in ("place", "cancel"):
            if client.account is None or not client.can_trade:
                raise ApiError(401, "AUTH_REQUIRED", "authenticate with trade permission first")
            await rt.hub.recheck(client)
            if op == "place":
                order = msg.get("order")
                if not isinstance(order, dict):
                    raise ApiError(400, "INVALID_ORDER", "place needs an order object")
                result = rt.order_json(await rt.trading.place(client.account, OrderRequest.model_validate(order)))
            else:
                oid, cid, market = msg.get("order_id"), msg.get("client_order_id"), msg.get("market")
                if not isinstance(market, str) or not (isinstance(oid, int) or isinstance(cid, str)):
                    raise ApiError(400, "INVALID_ORDER", "cancel needs market and order_id or client_order_id")
                result = await rt.trading.cancel(client.account, market, oid if isinstance(oid, int) else 0,
                                                 cid if isinstance(cid, str) else "")
            client.send_json({"op": op, "id": rid, "result": result})
        else:
            raise ApiError(400, "UNKNOWN_OP", "op must be ping, subscribe, unsubscribe, auth, place or cancel")
    except ApiError as e:
        client.send_json({"op": op, "id": rid, "error": body(e.code, e.reason)})
    except AuthError as e:
        client.send_json({"op": op, "id": rid, "error": body(e.code, e.reason)})
    except ValueError as e:  # pydantic validation of an order
        client.send_json({"op": op, "id": rid, "error": body("INVALID_REQUEST", str(e)[:500])})


def _channel(rt: Runtime, client: Client, channel: str) -> str:
    """A channel's own name (``depth:btc-usdt`` is ``depth:BTC/USDT``); INVALID_CHANNELS if none."""
    if channel in PRIVATE:
        if client.account is None:
            raise ApiError(401, "AUTH_REQUIRED", f"{channel} needs authentication")
        return channel
    kind, _, rest = channel.partition(":")
    market_name, _, interval = rest.partition(":")
    if kind in ("mark", "funding", "liquidations"):  # a perpetual's mark price, fundings, liquidations
        m = rt.trading.market(market_name)
        if rt.futures.perp(m) is None:
            raise ApiError(400, "INVALID_CHANNELS", f"{kind} channels are a perpetual's, not {market_name!r}'s")
        return f"{kind}:{m.symbol}"
    if kind not in ("depth", "trades", "ticker", "candles"):
        raise ApiError(400, "INVALID_CHANNELS", f"unknown channel {channel!r}")
    m = rt.trading.market(market_name)
    if kind == "candles" and interval not in INTERVALS:
        raise ApiError(400, "INVALID_CHANNELS", f"candle interval must be one of {', '.join(INTERVALS)}")
    return f"{kind}:{m.symbol}" + (f":{interval}" if kind == "candles" else "")


def _subscribe(rt: Runtime, client: Client, name: str) -> None:
    """Subscribe to a channel named by ``_channel``; a depth or ticker channel starts with its state."""
    rt.hub.subscribe(client, name)
    kind, _, rest = name.partition(":")
    if kind == "depth":
        snap = rt.depth_json(rt.trading.market(rest), 1000)
        client.send_json({"channel": name, "type": "snapshot", **snap})
    elif kind == "ticker":
        client.send_json({"channel": name, "type": "ticker", "data": rt.ticker_json(rt.trading.market(rest))})
    elif kind == "mark":
        client.send_json({"channel": name, "type": "mark", "data": rt.mark_json(rt.trading.market(rest))})
    elif name == "positions" and client.account is not None:
        client.send_json({"channel": name, "type": "snapshot", "data": rt.positions_json(client.account)})


async def _auth(rt: Runtime, client: Client, msg: dict[str, Any]) -> None:
    token = msg.get("token")
    if isinstance(token, str):
        user = await rt.accounts.session_user(token)
        grant = Grant(user, "trade", token=token)
    else:
        key, ts, sig = msg.get("key"), msg.get("timestamp"), msg.get("signature")
        window = msg.get("recv_window")
        if not (isinstance(key, str) and type(ts) is int and isinstance(sig, str)
                and (window is None or type(window) is int)):
            raise ApiError(400, "INVALID_AUTH", "auth needs token, or key, timestamp (ms) and signature"
                                                " (and an optional recv_window in ms)")
        payload = signed_payload(str(ts), None if window is None else str(window), "GET", "/ws")
        try:  # permissions are checked before the replay guard, so a read-only key can try again
            user = await signing.verify(rt.accounts, key, sig, payload, ts, window, client.ip, "trade")
            grant = Grant(user, "trade", key=key)
        except AuthError as e:
            if e.code != "PERMISSION_DENIED":
                raise
            user = await signing.verify(rt.accounts, key, sig, payload, ts, window, client.ip, "read")
            grant = Grant(user, "read", key=key)
    if client.account is not None and client.account != user:  # signed in again as someone else
        rt.hub.by_account.get(client.account, set()).discard(client)
    client.account, client.can_trade = user, grant.need == "trade"
    rt.hub.grant(client, "auth", grant)
    for ch in PRIVATE:
        if ch in client.channels:
            rt.hub.subscribe(client, ch)

