"""Every socket kind (DPG's ``/ws``, Binance's market streams and WebSocket API) against a running
exchange: a logout or a key revocation closes the sockets it authenticated (on every API process),
one message limit and one subscription cap, and Binance's stream dialect wherever a Binance URL
with only its host swapped lands."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from dpg.store import db
from tests.api.client import PASSWORD, User, cluster, exchange, recv_until, served, sign

pytestmark = pytest.mark.timeout(300)

REVOKED, FLOODED = 4001, 1008  # the close codes (dpg.api.ws)


@pytest.fixture(scope="module")
def server(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A running exchange and its database's URL (to change a key or a session behind its back)."""
    url = db.create_scratch(pg_server, "dpg_test_sockets")
    try:
        with exchange(url, tmp_path_factory.mktemp("sockets")) as base:
            yield base, url
    finally:
        db.drop(url)


@pytest.fixture(scope="module")
def base(server: tuple[str, str]) -> str:
    return server[0]


@pytest.fixture(scope="module")
def limited(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An exchange with tight socket limits: 5 messages a second per connection (bursts of 10), 20
    per client address (bursts of 40), 12 streams per connection. Only sockets talk to it."""
    with served(pg_server, tmp_path_factory.mktemp("limited"), "dpg_test_socklimits", DPG_RATE_KEY="5",
                DPG_RATE_IP="20", DPG_WS_MAX_STREAMS="12") as b:
        yield b


def ws_url(base: str, path: str) -> str:
    return base.replace("http", "ws", 1) + path


def closed(ws: ClientConnection, timeout: float = 30) -> tuple[int, str]:
    """Read ``ws`` until the server closes it: its close code and reason."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as e:
        assert e.rcvd is not None, "closed without a close frame"
        return e.rcvd.code, e.rcvd.reason
    raise AssertionError("the server left the socket open")


def call(ws: ClientConnection, msg: dict[str, Any]) -> dict[str, Any]:
    """Send ``msg`` and return the answer carrying its id."""
    ws.send(json.dumps(msg))
    return recv_until(ws, lambda m: m.get("id") == msg["id"])[-1]


@contextlib.contextmanager
def native(base: str, token: str = "", key: str = "", secret: str = "") -> Iterator[ClientConnection]:
    """``/ws`` signed in with a session token or an API key."""
    with connect(ws_url(base, "/ws")) as ws:
        if token:
            msg: dict[str, Any] = {"op": "auth", "id": "auth", "token": token}
        else:
            ts = int(time.time() * 1000)
            msg = {"op": "auth", "id": "auth", "key": key, "timestamp": ts,
                   "signature": sign(secret, ts, "GET", "/ws")}
        got = call(ws, msg)
        assert "error" not in got, got
        yield ws


def place(ws: ClientConnection, cid: str) -> dict[str, Any]:
    return call(ws, {"op": "place", "id": cid, "order": {"market": "BTC/USDT", "side": "buy", "price": "20000",
                                                         "quantity": "0.001", "client_order_id": cid}})


def api_key(user: User, *permissions: str) -> tuple[str, str]:
    r = user.http.post("/api/v1/api-keys", json={"name": "bot", "permissions": list(permissions or ("read",))})
    assert r.status_code == 201, r.text
    return r.json()["key"], r.json()["secret"]


def binance_signed(key: str, secret: str) -> dict[str, Any]:
    """Parameters of a signed WebSocket API request (HMAC-SHA256 of the sorted ``k=v&…``)."""
    params: dict[str, Any] = {"apiKey": key, "timestamp": int(time.time() * 1000)}
    query = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {**params, "signature": hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()}


def balance_event(m: dict[str, Any]) -> bool:
    return m.get("event", {}).get("e") == "balanceUpdate"


# ---------------------------------------------------------------------- revocation


def test_logout_closes_the_sockets_of_that_session_and_no_other(base: str) -> None:
    alice = User(base, "logout@sockets.dpg")
    alice.credit("USDT", "10000")
    second = httpx.post(f"{base}/api/v1/auth/login", json={"email": alice.email, "password": PASSWORD}).json()["token"]
    with native(base, token=alice.token) as ws, native(base, token=second) as other:
        assert place(ws, "before-logout")["result"]["status"] == "open"
        assert "error" not in call(ws, {"op": "subscribe", "id": "s", "channels": ["orders"]})
        assert alice.http.post("/api/v1/auth/logout").status_code == 200
        code, reason = closed(ws)
        assert (code, reason) == (REVOKED, "AUTH_REVOKED: the session was logged out")
        assert place(other, "other-session")["result"]["status"] == "open"
    with connect(ws_url(base, "/ws")) as again:
        refused = call(again, {"op": "auth", "id": "auth", "token": alice.token})
        assert refused["error"]["code"] == "SESSION_INVALID"
        assert call(again, {"op": "place", "id": "p", "order": {}})["error"]["code"] == "AUTH_REQUIRED"
    mine = httpx.get(f"{base}/api/v1/orders/open", headers={"authorization": f"Bearer {second}"}).json()
    assert sorted(o["client_order_id"] for o in mine) == ["before-logout", "other-session"]


def test_revoking_a_key_closes_its_sockets_and_no_other(base: str) -> None:
    bob = User(base, "revoke@sockets.dpg")
    bob.credit("USDT", "10000")
    key, secret = api_key(bob, "read", "trade")
    with native(base, key=key, secret=secret) as by_key, native(base, token=bob.token) as by_session:
        assert place(by_key, "by-key")["result"]["status"] == "open"
        assert bob.http.delete(f"/api/v1/api-keys/{key}").status_code == 200
        assert closed(by_key) == (REVOKED, "AUTH_REVOKED: the API key was revoked")
        assert place(by_session, "by-session")["result"]["status"] == "open"
    assert sorted(o["client_order_id"] for o in bob.http.get("/api/v1/orders/open").json()) == \
        ["by-key", "by-session"]


def test_a_key_or_session_changed_behind_the_api_ends_its_sockets(server: tuple[str, str]) -> None:
    """No logout or revocation call to hear of: the sockets' grants are checked again, through
    the caches, and end once the key no longer allows the address or the session has expired."""
    base, url = server
    carol = User(base, "behind@sockets.dpg")
    key, secret = api_key(carol, "read", "trade")
    with native(base, key=key, secret=secret) as by_key, native(base, token=carol.token) as by_session:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE api_keys SET ip_allow = %s WHERE key = %s", (["10.9.8.7/32"], key))
            conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE token_hash = %s",
                         (hashlib.sha256(carol.token.encode()).digest(),))
        assert closed(by_key) == (REVOKED, "AUTH_REVOKED: this address may not use this API key")
        assert closed(by_session) == (REVOKED, "AUTH_REVOKED: the session has expired; sign in again")


def test_revoking_a_key_ends_the_binance_user_data_streams_it_opened(base: str) -> None:
    dave = User(base, "udstream@sockets.dpg")
    logon_key, logon_secret = api_key(dave)
    signed_key, signed_secret = api_key(dave)
    api = ws_url(base, "/ws-api/v3")
    with connect(api) as by_logon, connect(api) as by_signature:
        logon = {"id": "l", "method": "session.logon", "params": binance_signed(logon_key, logon_secret)}
        assert call(by_logon, logon)["status"] == 200
        assert call(by_logon, {"id": "s", "method": "userDataStream.subscribe"})["status"] == 200
        sub = {"id": "s", "method": "userDataStream.subscribe.signature",
               "params": binance_signed(signed_key, signed_secret)}
        assert call(by_signature, sub)["result"] == {"subscriptionId": 0}
        dave.credit("USDT", "1")
        for ws in (by_logon, by_signature):
            assert recv_until(ws, balance_event)[-1]["event"]["d"] == "1.000000"

        assert dave.http.delete(f"/api/v1/api-keys/{logon_key}").status_code == 200
        assert closed(by_logon) == (REVOKED, "AUTH_REVOKED: the API key was revoked")
        dave.credit("USDT", "2")
        assert recv_until(by_signature, balance_event)[-1]["event"]["d"] == "2.000000"
        assert dave.http.delete(f"/api/v1/api-keys/{signed_key}").status_code == 200
        assert closed(by_signature) == (REVOKED, "AUTH_REVOKED: the API key was revoked")
    with connect(api) as again:
        sub["params"] = binance_signed(signed_key, signed_secret)
        refused = call(again, sub)
        assert (refused["status"], refused["error"]["code"]) == (401, -2015)


def test_revocation_reaches_the_sockets_of_every_api_process(pg_url: str, tmp_path: Path) -> None:
    """Two API processes over the real Redis: a logout and a key revocation on one close the sockets
    the other authenticated, and the other forgets the session at once (not after its cache time)."""
    with cluster(pg_url, tmp_path) as (one, two):
        erin = User(one, "multi@sockets.dpg")
        key, secret = api_key(erin)
        old = erin.token
        with native(two, token=old) as ws_two, connect(ws_url(two, "/ws-api/v3")) as bn_two:
            sub = {"id": "s", "method": "userDataStream.subscribe.signature", "params": binance_signed(key, secret)}
            assert call(bn_two, sub)["status"] == 200
            assert httpx.get(f"{two}/api/v1/balances", headers={"authorization": f"Bearer {old}"}).status_code == 200

            assert erin.http.post("/api/v1/auth/logout").status_code == 200  # on process one
            assert closed(ws_two) == (REVOKED, "AUTH_REVOKED: the session was logged out")
            r = httpx.get(f"{two}/api/v1/balances", headers={"authorization": f"Bearer {old}"})
            assert (r.status_code, r.json()["code"]) == (401, "SESSION_INVALID")

            assert erin.login().status_code == 200
            assert erin.http.delete(f"/api/v1/api-keys/{key}").status_code == 200  # on process one
            assert closed(bn_two) == (REVOKED, "AUTH_REVOKED: the API key was revoked")


# ---------------------------------------------------------------------- limits


def rested() -> None:
    """Let the limited exchange's address bucket fill again (40 tokens at 20 a second)."""
    time.sleep(2.5)


FLOODS: dict[str, tuple[str, Callable[[int], dict[str, Any]], Callable[[dict[str, Any]], bool]]] = {
    # path, the n-th message, whether an answer refuses it for the rate, in the dialect's words
    "native": ("/ws", lambda n: {"op": "subscribe", "id": n, "channels": ["trades:BTC/USDT"]},
               lambda m: m.get("error", {}).get("code") == "RATE_LIMITED"),
    "binance-streams": ("/stream/ws", lambda n: {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": n},
                        lambda m: m.get("error", {}).get("code") == 2 and
                        m["error"]["msg"].startswith("Invalid request: too many messages")),
    "binance-ws-api": ("/ws-api/v3", lambda n: {"id": n, "method": "ping"},
                       lambda m: m.get("status") == 429 and m["error"]["code"] == -1003),
}


@pytest.mark.parametrize("dialect", list(FLOODS))
def test_a_flood_of_messages_is_limited_then_closed(limited: str, dialect: str) -> None:
    path, message, is_limited = FLOODS[dialect]
    rested()
    answers: list[dict[str, Any]] = []
    with connect(ws_url(limited, path)) as ws:
        try:
            for n in range(1000):
                ws.send(json.dumps(message(n)))
        except ConnectionClosed:
            pass
        code = closed_reading(ws, answers)
    refused = [m for m in answers if is_limited(m)]
    assert refused and len(refused) < len(answers) < 1000, answers[:3]
    assert all(is_limited(m) for m in answers[-50:])  # the 50 refused in a row before the close
    assert code == FLOODED


def closed_reading(ws: ClientConnection, into: list[dict[str, Any]]) -> int:
    """Collect ``ws``'s messages until the server closes it; the close code."""
    try:
        while True:
            into.append(json.loads(ws.recv(timeout=30)))
    except ConnectionClosed as e:
        assert e.rcvd is not None
        return e.rcvd.code


def test_messages_from_one_address_share_its_bucket(limited: str) -> None:
    """Connections each within their own burst (9 messages of 10): four of DPG's own take most of
    the address's 40, then Binance streams and WebSocket API connections are refused in their words."""
    rested()
    with contextlib.ExitStack() as stack:
        first = [stack.enter_context(connect(ws_url(limited, "/ws"))) for _ in range(4)]
        for ws in first:
            for n in range(9):
                ws.send(json.dumps({"op": "ping", "id": n}))
        answers = [json.loads(ws.recv(timeout=30)) for ws in first for _ in range(9)]
        assert {"op": "pong", "id": 0} in answers
        later = [(name, stack.enter_context(connect(ws_url(limited, FLOODS[name][0]))))
                 for name in ("binance-streams", "binance-ws-api") * 2]
        for name, ws in later:
            for n in range(9):
                ws.send(json.dumps(FLOODS[name][1](n)))
        refused = {name: 0 for name, _ in later}
        for name, ws in later:
            for _ in range(9):
                refused[name] += FLOODS[name][2](json.loads(ws.recv(timeout=30)))
    assert refused["binance-streams"] and refused["binance-ws-api"], refused


def test_subscriptions_per_connection_are_capped(limited: str) -> None:
    rested()
    btc = ["depth:BTC/USDT", "trades:BTC/USDT", "ticker:BTC/USDT",
           *(f"candles:BTC/USDT:{i}" for i in ("1m", "5m", "15m", "1h", "4h", "1d"))]
    with connect(ws_url(limited, "/ws")) as ws:
        assert call(ws, {"op": "subscribe", "id": 1, "channels": btc})["channels"] == btc
        too_many = call(ws, {"op": "subscribe", "id": 2, "channels": ["depth:ETH/USDT", "trades:ETH/USDT",
                                                                      "ticker:ETH/USDT", "trades:BTC/USD"]})
        assert too_many["error"] == {"code": "TOO_MANY_STREAMS", "reason": "at most 12 channels per connection"}
        assert "error" not in call(ws, {"op": "subscribe", "id": 3, "channels": ["trades:ETH/USDT", "trades:BTC/USD",
                                                                                 "trades:BTC/USDT"]})
    streams = [f"{s}@{k}" for s in ("btcusdt", "ethusdt", "btcusd", "ethusd")
               for k in ("trade", "aggTrade", "bookTicker")]
    with connect(ws_url(limited, "/ws/0")) as ws:
        assert call(ws, {"method": "SUBSCRIBE", "params": streams, "id": 1}) == {"result": None, "id": 1}
        assert call(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 2}) == {
            "error": {"code": 2, "msg": "Invalid request: at most 12 streams per connection"}, "id": 2}
        assert call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3})["result"] == sorted(streams)
    with connect(ws_url(limited, "/stream?streams=" + "/".join([*streams, "btcusdt@kline_1m"]))) as ws:
        assert json.loads(ws.recv(timeout=30)) == {
            "error": {"code": 2, "msg": "Invalid request: at most 12 streams per connection"}, "id": None}


# ---------------------------------------------------------------------- Binance's stream URLs


def test_binance_streams_wherever_a_host_swapped_url_lands(base: str) -> None:
    """ccxt's numbered ``/ws/<n>``, a stream named in the path, combined ``/stream?streams=``, and
    ``/ws`` whose first message is Binance's all get Binance's messages; DPG's own ``/ws`` too."""
    maker, taker = User(base, "maker@streams.dpg"), User(base, "taker@streams.dpg")
    maker.credit("ETH", "1")
    taker.credit("USDT", "10000")
    with connect(ws_url(base, "/ws/1")) as numbered, connect(ws_url(base, "/ws/ethusdt@trade")) as in_path, \
            connect(ws_url(base, "/stream?streams=ethusdt@trade/ethusdt@depth@100ms")) as combined, \
            connect(ws_url(base, "/ws")) as first_binance, connect(ws_url(base, "/ws")) as own:
        subscribe = {"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": 1}
        for ws in (numbered, first_binance):
            assert call(ws, subscribe) == {"result": None, "id": 1}
        assert call(first_binance, {"method": "LIST_SUBSCRIPTIONS", "id": 2}) == {"result": ["ethusdt@trade"], "id": 2}
        assert call(combined, {"method": "LIST_SUBSCRIPTIONS", "id": 2})["result"] == [
            "ethusdt@depth@100ms", "ethusdt@trade"]
        assert call(own, {"op": "subscribe", "id": 1, "channels": ["trades:ETH/USDT"]})["channels"] == [
            "trades:ETH/USDT"]

        assert maker.order(market="ETH/USDT", side="sell", price="2000", quantity="0.1").status_code == 201
        assert taker.order(market="ETH/USDT", side="buy", price="2000", quantity="0.1").status_code == 201
        for ws in (numbered, in_path, first_binance):
            trade = recv_until(ws, lambda m: m.get("e") == "trade")[-1]
            assert (trade["s"], trade["p"], trade["q"], trade["m"]) == ("ETHUSDT", "2000.00", "0.1000", False)
        got = recv_until(combined, lambda m: m.get("stream") == "ethusdt@trade")  # the book's diffs come first
        assert (got[-1]["data"]["e"], got[-1]["data"]["p"]) == ("trade", "2000.00")
        diffs = [m["data"] for m in got if m.get("stream") == "ethusdt@depth@100ms"]
        assert [(d["e"], d["s"], d["a"]) for d in diffs] == [("depthUpdate", "ETHUSDT", [["2000.00", "0.1000"]]),
                                                             ("depthUpdate", "ETHUSDT", [["2000.00", "0.0000"]])]
        mine = recv_until(own, lambda m: m.get("channel") == "trades:ETH/USDT")[-1]
        assert (mine["data"]["price"], mine["data"]["quantity"]) == ("2000.00", "0.1000")


def host_swapped(urls: Any, base: str) -> Any:
    """ccxt's Binance URLs with only the host (scheme and port with it) swapped for DPG's."""
    if isinstance(urls, dict):
        return {k: host_swapped(v, base) for k, v in urls.items()}
    if not isinstance(urls, str):
        return urls
    for host in ("https://api.binance.com", "wss://stream.binance.com:9443", "wss://ws-api.binance.com:443"):
        if urls.startswith(host):
            return (base if host.startswith("https") else ws_url(base, "")) + urls[len(host):]
    return urls


def test_ccxt_pro_watches_with_only_the_host_swapped(base: str) -> None:
    import ccxt.pro

    u1, u2 = User(base, "swap1@streams.dpg"), User(base, "swap2@streams.dpg")
    for u in (u1, u2):
        u.credit("BTC", "5")
        u.credit("USD", "500000")

    async def main() -> None:
        urls = host_swapped(ccxt.pro.binance().urls["api"], base)
        assert urls["ws"]["spot"] == ws_url(base, "/ws")
        ex = ccxt.pro.binance({"urls": {"api": urls},
                               "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                                           "fetchMargins": False, "fetchCurrencies": False}})
        loop = asyncio.get_running_loop()
        try:
            await ex.watch_order_book("BTC/USD")
            for n, (who, side, price) in enumerate(((u1, "buy", "40000"), (u2, "sell", "40100"),
                                                    (u1, "buy", "40050"))):
                r = await loop.run_in_executor(None, lambda w=who, s=side, p=price, i=n: w.order(
                    market="BTC/USD", side=s, price=p, quantity=f"0.0{i + 1}"))
                assert r.status_code == 201, r.text
            rest = await loop.run_in_executor(None, lambda: u1.http.get(
                "/api/v3/depth", params={"symbol": "BTCUSD"}).json())
            for _ in range(200):  # the live book, diff by diff, up to REST's sequence number
                if ex.orderbooks["BTC/USD"]["nonce"] >= rest["lastUpdateId"]:
                    break
                await asyncio.sleep(0.05)
            book = ex.orderbooks["BTC/USD"]
            assert book["nonce"] == rest["lastUpdateId"]
            assert [list(x) for x in book["bids"]] == [[float(p), float(q)] for p, q in rest["bids"]]
            assert [list(x) for x in book["asks"]] == [[float(p), float(q)] for p, q in rest["asks"]]

            trades = asyncio.ensure_future(ex.watch_trades("BTC/USD"))
            await asyncio.sleep(0.5)
            r = await loop.run_in_executor(None, lambda: u2.order(market="BTC/USD", side="sell", type="market",
                                                                  quantity="0.0100"))
            assert r.status_code == 201 and r.json()["filled"] == "0.0100", r.text
            got = await asyncio.wait_for(trades, 20)
            assert (got[-1]["symbol"], got[-1]["side"], got[-1]["price"]) == ("BTC/USD", "sell", 40050.0)
            assert {url.rsplit("/", 1)[0] for url in ex.clients} == {ws_url(base, "/ws")}  # ccxt's /ws/<n>
        finally:
            await ex.close()

    asyncio.run(main())
