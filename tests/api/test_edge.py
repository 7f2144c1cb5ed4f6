"""Input validation at the API's edge, against a running exchange: amounts with huge exponents
refused at once on every endpoint and dialect while other clients are served, nothing the edge can
refuse ever journaled, small malformed inputs answered with a JSON 4xx, and the native receive
window bound into the signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
import pytest
from websockets.sync.client import connect

from tests.api.client import ADMIN, User, exchange, recv_until, sign, signed

pytestmark = pytest.mark.timeout(300)

HUGE = ("1e500000", "1e999999")  # eight characters that once meant a 500,000-digit integer
DEADLINE = 20.0  # s: generous; before the fix, the exponent held the event loop for far longer or failed


@pytest.fixture(scope="module")
def ex(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of a running exchange."""
    from dpg.store import db

    url = db.create_scratch(pg_server, "dpg_test_edge")
    try:
        with exchange(url, tmp_path_factory.mktemp("edge"), DPG_RATE_IP="1000", DPG_RATE_KEY="1000") as base:
            yield base, url
    finally:
        db.drop(url)


def journal_seq(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT max(seq) FROM journal").fetchone()
    assert row is not None
    return int(row[0])


def make_key(u: User, permissions: list[str]) -> tuple[str, str]:
    r = u.http.post("/api/v1/api-keys", json={"name": "bot", "permissions": permissions})
    assert r.status_code == 201, r.text
    return r.json()["key"], r.json()["secret"]


def binance(http: httpx.Client, key: str, secret: str, method: str, path: str, params: dict[str, Any]
            ) -> httpx.Response:
    """A signed Binance request: the parameters with timestamp, then their HMAC as ``signature``."""
    query = urlencode({**params, "timestamp": int(time.time() * 1000)})
    sig = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return http.request(method, f"{path}?{query}&signature={sig}", headers={"X-MBX-APIKEY": key})


def json_error(r: httpx.Response) -> dict[str, Any]:
    """The body of a 4xx JSON error (either dialect's shape)."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    got: dict[str, Any] = r.json()
    assert ("code" in got and "reason" in got) or ("code" in got and "msg" in got), got
    return got


def test_huge_exponents_are_refused_at_once_on_every_endpoint_and_never_journaled(ex: tuple[str, str]) -> None:
    base, url = ex
    u, other = User(base, "huge@edge.dpg"), User(base, "other@edge.dpg")
    u.verify_email(url)  # a withdrawal is looked at once the address is verified
    u.credit("USDT", "100000")
    u.credit("BTC", "1")
    resting = u.order(market="BTC/USDT", side="buy", price="100", quantity="0.1")
    assert resting.status_code == 201, resting.text
    oid = resting.json()["order_id"]
    key, secret = make_key(u, ["read", "trade"])
    admin = {"x-dpg-admin-token": ADMIN}

    def rest(path: str, body: dict[str, Any], method: str = "POST", **kw: Any) -> Callable[[], tuple[int, str]]:
        def send() -> tuple[int, str]:
            r = u.http.request(method, path, json=body, **kw)
            return r.status_code, json_error(r)["code"]
        return send

    def bn(params: dict[str, Any]) -> Callable[[], tuple[int, str]]:
        def send() -> tuple[int, str]:
            r = binance(u.http, key, secret, "POST", "/api/v3/order", {"symbol": "BTCUSDT", **params})
            return r.status_code, str(json_error(r)["code"])
        return send

    def ws_place(order: dict[str, Any]) -> Callable[[], tuple[int, str]]:
        def send() -> tuple[int, str]:
            with connect(base.replace("http", "ws") + "/ws") as ws:
                ws.send(json.dumps({"op": "auth", "token": u.token}))
                recv_until(ws, lambda m: m.get("op") == "auth")
                ws.send(json.dumps({"op": "place", "id": 1, "order": order}))
                return 400, recv_until(ws, lambda m: m.get("id") == 1)[-1]["error"]["code"]
        return send

    limit = {"market": "BTC/USDT", "side": "buy", "price": "100", "quantity": "0.1"}
    cases: list[tuple[str, Callable[[], tuple[int, str]], tuple[int, str]]] = []
    for huge in HUGE:
        bad = (400, "INVALID_AMOUNT")
        cases += [
            (f"order price {huge}", rest("/api/v1/orders", {**limit, "price": huge}), bad),
            (f"order quantity {huge}", rest("/api/v1/orders", {**limit, "quantity": huge}), bad),
            (f"market quote_quantity {huge}", rest("/api/v1/orders", {"market": "BTC/USDT", "side": "buy",
                                                                      "type": "market", "quote_quantity": huge}), bad),
            (f"stop_price {huge}", rest("/api/v1/orders", {**limit, "type": "stop_limit", "stop_price": huge}), bad),
            (f"amend price {huge}", rest(f"/api/v1/orders/{oid}", {"market": "BTC/USDT", "price": huge}, "PATCH"),
             bad),
            (f"amend quantity {huge}", rest(f"/api/v1/orders/{oid}", {"market": "BTC/USDT", "quantity": huge},
                                            "PATCH"), bad),
            (f"transfer {huge}", rest("/api/v1/transfers", {"to_user_id": other.id, "asset": "USDT", "amount": huge}),
             bad),
            (f"credit {huge}", rest("/api/v1/admin/credits", {"user_id": u.id, "asset": "USDT", "amount": huge,
                                                              "reference": f"huge-{huge}"}, headers=admin), bad),
            (f"withdrawal {huge}", rest("/api/v1/withdrawals", {"asset": "ETH", "chain": "ethereum",
                                                                "address": "0x" + "12" * 20, "amount": huge}), bad),
            (f"ws place {huge}", ws_place({**limit, "quantity": huge}), bad),
            (f"binance price {huge}", bn({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": huge,
                                          "quantity": "0.1"}), (400, "-1100")),
            (f"binance quantity {huge}", bn({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "100",
                                             "quantity": huge}), (400, "-1100")),
            (f"binance quoteOrderQty {huge}", bn({"side": "BUY", "type": "MARKET", "quoteOrderQty": huge}),
             (400, "-1100")),
            (f"binance stopPrice {huge}", bn({"side": "BUY", "type": "STOP_LOSS_LIMIT", "timeInForce": "GTC",
                                              "price": "100", "quantity": "0.1", "stopPrice": huge}), (400, "-1100")),
        ]
    before = journal_seq(url)
    with ThreadPoolExecutor(2) as pool:
        for what, send, want in cases:
            answer = pool.submit(send)
            # another client, served while the bad request is in flight
            served = pool.submit(other.http.get, "/api/v1/depth", params={"market": "BTC/USDT"})
            assert served.result(timeout=DEADLINE).status_code == 200, what
            assert answer.result(timeout=DEADLINE) == want, what
    assert journal_seq(url) == before  # none of them became a command
    assert u.http.get(f"/api/v1/orders/{oid}").json()["status"] == "open"


def test_what_the_edge_can_refuse_is_refused_with_the_engines_codes_and_never_journaled(ex: tuple[str, str]) -> None:
    base, url = ex
    u, other = User(base, "rules@edge.dpg"), User(base, "other-rules@edge.dpg")
    u.credit("USDT", "100000")
    u.credit("BTC", "1")
    resting = u.order(market="BTC/USDT", side="buy", price="100", quantity="0.1")
    assert resting.status_code == 201, resting.text
    oid = resting.json()["order_id"]
    key, secret = make_key(u, ["read", "trade"])
    limit = {"market": "BTC/USDT", "side": "buy", "price": "100", "quantity": "0.1"}
    orders = [
        ({**limit, "price": "0"}, "INVALID_PRICE"),
        ({**limit, "price": "-100"}, "INVALID_PRICE"),
        ({**limit, "price": "100.001"}, "PRICE_OFF_TICK"),
        ({**limit, "quantity": "0"}, "INVALID_QUANTITY"),
        ({**limit, "quantity": "-0.1"}, "INVALID_QUANTITY"),
        ({**limit, "quantity": "0.00001"}, "QUANTITY_OFF_LOT"),
        ({**limit, "price": "1", "quantity": "1"}, "BELOW_MIN_NOTIONAL"),
        ({**limit, "quantity": "1e38"}, "INVALID_AMOUNT"),  # 10**46 base units: above 2**127
        ({**limit, "price": "100.0000001"}, "INVALID_AMOUNT"),  # more decimals than USDT has
        ({**limit, "price": "1e-3"}, "PRICE_OFF_TICK"),  # 0.001 USDT: within USDT's decimals, off the tick
        ({"market": "BTC/USDT", "side": "buy", "type": "market", "quote_quantity": "0"}, "INVALID_AMOUNT"),
        ({"market": "BTC/USDT", "side": "buy", "type": "market", "quote_quantity": "1"}, "BELOW_MIN_NOTIONAL"),
        ({"market": "BTC/USDT", "side": "sell", "type": "market", "quote_quantity": "10"}, "INVALID_ORDER"),
        ({"market": "BTC/USDT", "side": "sell", "type": "market", "quantity": "0.00001"}, "QUANTITY_OFF_LOT"),
        ({**limit, "type": "stop_limit", "stop_price": "0"}, "INVALID_PRICE"),
        ({**limit, "type": "stop_limit", "stop_price": "90.005"}, "PRICE_OFF_TICK"),
    ]
    before = journal_seq(url)
    for body, code in orders:
        r = u.order(**body)
        assert (r.status_code, json_error(r)["code"]) == (400, code), (body, r.text)
        assert len(r.json()["reason"]) > 5
    others: list[tuple[httpx.Response, int, str]] = [
        (u.http.patch(f"/api/v1/orders/{oid}", json={"market": "BTC/USDT", "price": "100.001"}), 400, "PRICE_OFF_TICK"),
        (u.http.patch(f"/api/v1/orders/{oid}", json={"market": "BTC/USDT", "quantity": "0.12345"}), 400,
         "QUANTITY_OFF_LOT"),
        (u.http.patch(f"/api/v1/orders/{oid}", json={"market": "BTC/USDT", "quantity": "0"}), 400, "INVALID_AMOUNT"),
        (u.http.post("/api/v1/transfers", json={"to_user_id": other.id, "asset": "USDT", "amount": "0"}), 400,
         "INVALID_AMOUNT"),
        (u.http.post("/api/v1/transfers", json={"to_user_id": other.id, "asset": "USDT", "amount": "-5"}), 400,
         "INVALID_AMOUNT"),
        (u.http.post("/api/v1/transfers", json={"to_user_id": u.id, "asset": "USDT", "amount": "5"}), 400,
         "SELF_TRANSFER"),
        (u.http.post("/api/v1/transfers", json={"to_user_id": other.id, "asset": "USDT", "amount": "0.0000001"}),
         400, "INVALID_AMOUNT"),
        (u.http.post("/api/v1/admin/credits", headers={"x-dpg-admin-token": ADMIN},
                     json={"user_id": u.id, "asset": "USDT", "amount": "0", "reference": "zero"}), 400,
         "INVALID_AMOUNT"),
    ]
    # orders no one can have: ids past 2**62, client ids no client could have set
    others += [
        (u.http.delete("/api/v1/orders/by-client-id/" + "x" * 200, params={"market": "BTC/USDT"}), 404,
         "ORDER_NOT_FOUND"),
        (u.http.delete("/api/v1/orders/by-client-id/a b", params={"market": "BTC/USDT"}), 404, "ORDER_NOT_FOUND"),
    ]
    for r, status, code in others:
        assert (r.status_code, json_error(r)["code"]) == (status, code), r.text
    with connect(base.replace("http", "ws") + "/ws") as ws:
        ws.send(json.dumps({"op": "auth", "token": u.token}))
        recv_until(ws, lambda m: m.get("op") == "auth")
        for n, cancel in enumerate([{"order_id": 2**200}, {"order_id": -1}, {"client_order_id": ""},
                                    {"client_order_id": "é" * 30}]):
            ws.send(json.dumps({"op": "cancel", "id": n, "market": "BTC/USDT", **cancel}))
            got = recv_until(ws, lambda m, n=n: m.get("id") == n)[-1]
            assert got["error"]["code"] == "ORDER_NOT_FOUND", (cancel, got)
    filters = [({"price": "100.001", "quantity": "0.1"}, "Filter failure: PRICE_FILTER"),
               ({"price": "100", "quantity": "0.00001"}, "Filter failure: LOT_SIZE"),
               ({"price": "1", "quantity": "1"}, "Filter failure: NOTIONAL")]
    for params, msg in filters:
        r = binance(u.http, key, secret, "POST", "/api/v3/order",
                    {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", **params})
        assert (r.status_code, r.json()) == (400, {"code": -1013, "msg": msg})
    assert journal_seq(url) == before
    # what only the engine can judge still reaches it, and amounts in range still trade
    assert u.order(**{**limit, "quantity": "1000"}).json()["code"] == "INSUFFICIENT_FUNDS"
    r = u.order(**{**limit, "price": "100.01", "quantity": "1e-1"})
    assert r.status_code == 201 and r.json()["quantity"] == "0.1000", r.text
    assert journal_seq(url) == before + 2


def test_small_malformed_inputs_get_a_json_4xx(ex: tuple[str, str]) -> None:
    base, _ = ex
    u = User(base, "small@edge.dpg")
    key, secret = make_key(u, ["read", "trade"])
    anon = httpx.Client(base_url=base, timeout=30)
    for token in ("é".encode("latin-1"), "ключ".encode(), b"\xff\xfe"):
        r = anon.get("/api/v1/admin/withdrawals", headers={"x-dpg-admin-token": token})
        assert (r.status_code, json_error(r)["code"]) == (403, "ADMIN_ONLY")
    for path in ("/api/v3/allOrders", "/api/v3/myTrades"):
        for params in ({"startTime": "abc"}, {"endTime": "1e5"}, {"limit": "x"}, {"orderId": "1e5"},
                       {"limit": "-1"}, {"startTime": "²"}, {"fromId" if "Trades" in path else "orderId": "1.5"}):
            r = binance(anon, key, secret, "GET", path, {"symbol": "BTCUSDT", **params})
            assert (r.status_code, json_error(r)["code"]) == (400, -1100), (path, params, r.text)
    r = binance(anon, key, secret, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": "²"})
    assert (r.status_code, json_error(r)["code"]) == (400, -1100)
    for path in ("/static/app/%00.js", "/static/app/" + "a" * 300 + ".js", "/api/v1/withdrawals/0x%00",
                 "/api/v1/admin/withdrawals?status=%00"):
        r = u.http.get(path, headers={"x-dpg-admin-token": ADMIN})
        assert json_error(r)["code"] in ("NOT_FOUND", "INVALID_REQUEST"), (path, r.text)
    r = anon.get("/api/v1/balances", headers={"x-dpg-apikey": key, "x-dpg-timestamp": b"\xb2",
                                              "x-dpg-signature": "00"})
    assert (r.status_code, json_error(r)["code"]) == (400, "INVALID_TIMESTAMP")
    r = u.http.post("/api/v1/wallet/addresses", json={"chain": "ethereum", "address": "0x" + "12" * 20,
                                                      "label": "a\x00b"})
    assert (r.status_code, json_error(r)["code"]) == (422, "INVALID_REQUEST")


def test_the_receive_window_is_signed(ex: tuple[str, str]) -> None:
    base, _ = ex
    u = User(base, "window@edge.dpg")
    key, secret = make_key(u, ["read", "trade"])
    anon = httpx.Client(base_url=base, timeout=30)

    def code(r: httpx.Response) -> tuple[int, str]:
        return r.status_code, r.json().get("code", "") if r.status_code != 200 else "OK"

    # old clients: no window header, the payload without it, the default 5 s
    assert code(signed(anon, key, secret, "GET", "/api/v1/balances")) == (200, "OK")
    # a signed window of 60 s lets a 30 s old request in
    old = int(time.time() * 1000) - 30_000
    assert code(signed(anon, key, secret, "GET", "/api/v1/balances", ts=old, recv_window=60_000)) == (200, "OK")
    # a relay that raises the window of a request signed without one breaks its signature
    old = int(time.time() * 1000) - 30_000
    sig = sign(secret, old, "GET", "/api/v1/orders/open")
    relayed = anon.get("/api/v1/orders/open", headers={"x-dpg-apikey": key, "x-dpg-timestamp": str(old),
                                                       "x-dpg-signature": sig, "x-dpg-recv-window": "60000"})
    assert code(relayed) == (401, "BAD_SIGNATURE")
    # and so does one that raises a signed window
    sig = sign(secret, old, "GET", "/api/v1/orders/open", recv_window=5000)
    relayed = anon.get("/api/v1/orders/open", headers={"x-dpg-apikey": key, "x-dpg-timestamp": str(old),
                                                       "x-dpg-signature": sig, "x-dpg-recv-window": "60000"})
    assert code(relayed) == (401, "BAD_SIGNATURE")
    # a body is covered as before, after the window
    order = {"market": "BTC/USDT", "side": "buy", "price": "100", "quantity": "0.1"}
    u.credit("USDT", "100")
    assert signed(anon, key, secret, "POST", "/api/v1/orders", order, recv_window=2000).status_code == 201

    # the native WebSocket's auth: the same rule
    with connect(base.replace("http", "ws") + "/ws") as ws:
        def auth(msg: dict[str, Any]) -> dict[str, Any]:
            ws.send(json.dumps({"op": "auth", "id": 1, "key": key, **msg}))
            return recv_until(ws, lambda m: m.get("op") == "auth")[-1]

        old = int(time.time() * 1000) - 30_000
        plain = hmac.new(secret.encode(), f"{old}\nGET\n/ws\n".encode(), hashlib.sha256).hexdigest()
        got = auth({"timestamp": old, "signature": plain, "recv_window": 60_000})
        assert got["error"]["code"] == "BAD_SIGNATURE", got
        bound = hmac.new(secret.encode(), f"{old}\n60000\nGET\n/ws\n".encode(), hashlib.sha256).hexdigest()
        assert auth({"timestamp": old, "signature": bound, "recv_window": 60_000})["user_id"] == u.id
        now = int(time.time() * 1000)
        plain = hmac.new(secret.encode(), f"{now}\nGET\n/ws\n".encode(), hashlib.sha256).hexdigest()
        assert auth({"timestamp": now, "signature": plain})["user_id"] == u.id

    # Binance's recvWindow is one of the signed parameters: raising it breaks the signature
    query = urlencode({"symbol": "BTCUSDT", "recvWindow": 5000, "timestamp": int(time.time() * 1000)})
    sig = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    raised = query.replace("recvWindow=5000", "recvWindow=60000")
    r = anon.get(f"/api/v3/openOrders?{raised}&signature={sig}", headers={"X-MBX-APIKEY": key})
    assert (r.status_code, r.json()["code"]) == (400, -1022)
    r = anon.get(f"/api/v3/openOrders?{query}&signature={sig}", headers={"X-MBX-APIKEY": key})
    assert r.status_code == 200, r.text
