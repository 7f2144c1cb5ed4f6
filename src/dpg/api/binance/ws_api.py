"""Binance's WebSocket API at ``/ws-api/v3``: its session log-on and its user data stream, built
from the same private updates as DPG's own ``/ws``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, WebSocket

from dpg.api import signing
from dpg.api.binance.codes import KEY_REFUSED, MANDATORY, WS_REFUSALS, BinanceError, refused
from dpg.api.binance.reports import user_events
from dpg.api.deps import client_ip
from dpg.api.marketdata import Update
from dpg.api.runtime import Runtime
from dpg.api.ws import Client, Dialect, Grant
from dpg.identity import AuthError

_WS_METHODS = ("ping", "time", "session.logon", "session.status", "session.logout", "userDataStream.subscribe",
               "userDataStream.subscribe.signature", "userDataStream.unsubscribe")


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
    api = UserDataApi(rt)
    rt.publishers.append(api.publish)
    r = APIRouter(tags=["binance"])
    r.add_api_websocket_route("/ws-api/v3", api.connection)
    return r


class UserDataApi:
    """The WebSocket API's connections and the user data streams they subscribed."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.listeners: dict[int, dict[Client, int]] = {}  # account -> connection -> its subscription id

    async def connection(self, ws: WebSocket) -> None:
        session: dict[str, Any] = {}

        async def handle(c: Client, msg: dict[str, Any]) -> None:
            rid, method, params = msg.get("id"), msg.get("method"), msg.get("params", {})
            try:
                if not isinstance(method, str):
                    raise BinanceError(400, -1102, MANDATORY.format("method"))
                if not isinstance(params, dict):
                    raise BinanceError(400, -1104, "Invalid request: 'params' must be an object.")
                c.send_json({"id": rid, "status": 200, "result": await self.call(c, session, method, params)})
            except BinanceError as e:
                c.send_json({"id": rid, "status": e.status, "error": {"code": e.code, "msg": e.msg}})

        dialect = Dialect(handle, _refuse)
        await self.rt.hub.session(ws, client_ip(ws), lambda _: dialect, closed=self.drop)

    def publish(self, upd: Update, _: dict[int, int]) -> None:
        for account, items in upd.accounts.items():
            conns = self.listeners.get(account)
            if not conns:
                continue
            for ev in user_events(self.rt, account, items):
                for c, sub in list(conns.items()):
                    if c.ending or not c.send_json({"subscriptionId": sub, "event": ev}):
                        self.drop(c)

    def drop(self, c: Client) -> None:
        for account, conns in list(self.listeners.items()):
            conns.pop(c, None)
            if not conns:
                del self.listeners[account]
        self.rt.hub.disconnect(c)

    async def call(self, client: Client, session: dict[str, Any], method: str, p: dict[str, Any]) -> Any:
        hub = self.rt.hub
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": int(time.time() * 1000)}
        if method == "session.logon":
            grant = await self.verify(client, p, "read")
            hub.grant(client, "logon", grant)
            session["key"] = grant.key
            session["since"] = int(time.time() * 1000)
        elif method == "session.logout":
            session.clear()
            hub.ungrant(client, "logon")
        elif method == "userDataStream.subscribe.signature":
            return {"subscriptionId": self.subscribe(client, await self.verify(client, p, "read"))}
        elif method == "userDataStream.subscribe":
            if "logon" not in client.grants:
                raise BinanceError(*KEY_REFUSED)
            try:
                await hub.recheck(client)
            except AuthError:
                raise BinanceError(*KEY_REFUSED) from None
            return {"subscriptionId": self.subscribe(client, client.grants["logon"])}
        elif method == "userDataStream.unsubscribe":
            for conns in self.listeners.values():
                conns.pop(client, None)
            for role in [role for role in client.grants if role.startswith("sub:")]:
                hub.ungrant(client, role)
            return {}
        elif method not in _WS_METHODS:
            raise BinanceError(400, -1020, "This operation is not supported.")
        now = int(time.time() * 1000)
        return {"apiKey": session.get("key"), "authorizedSince": session.get("since"), "connectedSince": now,
                "returnRateLimits": False, "serverTime": now, "userDataStream": any(
                    client in conns for conns in self.listeners.values())}

    async def verify(self, client: Client, p: dict[str, Any], need: str) -> Grant:
        for name in ("apiKey", "timestamp", "signature"):
            if name not in p or p[name] in ("", None):
                raise BinanceError(400, -1102, MANDATORY.format(name))
        payload = "&".join(f"{k}={_plain(v)}" for k, v in sorted(p.items()) if k != "signature")
        try:
            user = await signing.verify(self.rt.accounts, str(p["apiKey"]), str(p["signature"]), payload.encode(),
                                        str(p["timestamp"]), str(p.get("recvWindow", signing.DEFAULT_RECV_WINDOW)),
                                        client.ip, need)
        except signing.MalformedSignature as e:
            if e.field == "timestamp":
                raise BinanceError(400, -1100, "Illegal characters found in parameter 'timestamp'.") from None
            raise BinanceError(400, -1131, "recvWindow must be less than 60000") from None
        except AuthError as e:
            raise refused(e) from None
        return Grant(user, need, key=str(p["apiKey"]))

    def subscribe(self, client: Client, grant: Grant) -> int:
        self.rt.hub.grant(client, f"sub:{grant.user_id}", grant)
        conns = self.listeners.setdefault(grant.user_id, {})
        return conns.setdefault(client, 0)


def _refuse(client: Client, msg: dict[str, Any] | None, code: str, reason: str) -> None:
    status, number, text = WS_REFUSALS.get(code, (400, -1000, reason))
    client.send_json({"id": msg.get("id") if msg else None, "status": status, "error": {"code": number, "msg": text}})


def _plain(v: Any) -> str:
    """A parameter's value as Binance signs it: JSON's true/false, numbers and strings as written."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
