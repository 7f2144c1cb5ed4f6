"""The trading API over HTTP and WebSocket against the real PostgreSQL: sign up, credit, place,
match, amend, cancel, history, balances, and private WebSocket updates arriving in order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from websockets.sync.client import connect

from tests.api.client import User, recv_until, served, wait_projected

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("api"), "dpg_test_api") as b:
        yield b



def test_public_endpoints(base: str) -> None:
    u = User(base, "public@test.dpg")
    markets = u.http.get("/api/v1/markets").json()
    assert [m["market"] for m in markets] == ["BTC/USDT", "ETH/USDT", "BTC/USD", "ETH/USD"]
    btc = markets[0]
    assert (btc["tick_size"], btc["lot_size"], btc["min_notional"]) == ("0.01", "0.0001", "5.00")
    assert abs(u.http.get("/api/v1/time").json()["server_time"] - time.time() * 1000) < 5000
    assert u.http.get("/api/v1/depth", params={"market": "NOPE/USDT"}).json()["code"] == "UNKNOWN_MARKET"
    assert u.http.get("/api/v1/candles", params={"market": "BTC/USDT", "interval": "7m"}).status_code == 422
    assert "/api/v1/orders" in u.http.get("/openapi.json").json()["paths"]


def test_sign_up_credit_trade_amend_cancel_history(base: str) -> None:
    alice, bob = User(base, "alice@test.dpg"), User(base, "bob@test.dpg")
    alice.credit("USDT", "100000")
    bob.credit("BTC", "2")
    with connect(base.replace("http", "ws") + "/ws") as ws:
        ws.send(json.dumps({"op": "auth", "token": alice.token}))
        assert recv_until(ws, lambda m: m.get("op") == "auth")[-1]["user_id"] == alice.id
        ws.send(json.dumps({"op": "subscribe", "channels": ["orders", "fills", "balances"]}))
        recv_until(ws, lambda m: m.get("op") == "subscribe")

        r = alice.order(market="BTC/USDT", side="buy", price="50000", quantity="0.5", client_order_id="a-1")
        assert r.status_code == 201, r.text
        buy = r.json()
        assert buy["status"] == "open" and buy["remaining"] == "0.5000"
        assert alice.balance("USDT") == ("75000.000000", "25000.000000")

        r = bob.order(market="BTC-USDT", side="sell", price="49000", quantity="0.2")
        sell = r.json()
        assert sell["status"] == "filled" and sell["fills"][0]["price"] == "50000.00"  # the maker's price
        assert sell["fee"] == "10.000000"  # 0.10 % taker fee on 10,000 USDT
        # the maker's side, read back at once
        a1 = alice.http.get(f"/api/v1/orders/{buy['order_id']}").json()
        assert a1["status"] == "partially_filled" and a1["filled"] == "0.2000"
        assert alice.http.get("/api/v1/orders/by-client-id/a-1").json()["order_id"] == buy["order_id"]
        # 0.2 BTC less the 0.08 % maker fee
        assert alice.balance("BTC") == ("0.19984000", "0.00000000")

        r = alice.http.patch(f"/api/v1/orders/{buy['order_id']}", json={"market": "BTC/USDT", "quantity": "0.4"})
        assert r.status_code == 200 and r.json()["remaining"] == "0.2000"
        assert alice.balance("USDT") == ("80000.000000", "10000.000000")
        r = alice.http.delete(f"/api/v1/orders/{buy['order_id']}", params={"market": "BTC/USDT"})
        assert r.json()["status"] == "canceled"
        assert alice.balance("USDT") == ("90000.000000", "0.000000")
        assert alice.http.get("/api/v1/orders/open").json() == []

        msgs = recv_until(ws, lambda m: m.get("channel") == "orders" and m["data"].get("event") == "canceled")
    orders = [m["data"]["event"] for m in msgs if m.get("channel") == "orders"]
    assert orders == ["new", "amended", "canceled"]
    kinds = [m["channel"] for m in msgs if m.get("channel") in ("orders", "fills")]
    assert kinds.index("fills") > kinds.index("orders")  # new, then the fill, then the rest
    balances = [m for m in msgs if m.get("channel") == "balances"]
    assert balances and all(b["data"]["asset"] in ("USDT", "BTC") for b in balances)

    # history comes from the projections, complete up to projected_seq
    wait_projected(alice, a1["updated_seq"] + 2)
    hist = alice.http.get("/api/v1/orders/history", params={"market": "BTC/USDT"}).json()["orders"]
    assert [(o["order_id"], o["status"], o["filled"]) for o in hist] == [(buy["order_id"], "canceled", "0.2000")]
    mine = bob.http.get("/api/v1/my-trades").json()["trades"]
    assert [(t["side"], t["role"], t["price"], t["quantity"]) for t in mine] == [
        ("sell", "taker", "50000.00", "0.2000")]
    ledger = alice.http.get("/api/v1/ledger", params={"asset": "USDT", "limit": 100}).json()["entries"]
    total = sum(Decimal(e["available"]) + Decimal(e["locked"]) for e in ledger)
    assert total == Decimal("90000")
    page1 = alice.http.get("/api/v1/ledger", params={"limit": 2}).json()
    page2 = alice.http.get("/api/v1/ledger", params={"limit": 2, "before": page1["next_before"]}).json()
    assert page1["entries"][-1]["seq"] >= page2["entries"][0]["seq"]
    assert {(e["seq"], e["n"]) for e in page1["entries"]}.isdisjoint({(e["seq"], e["n"]) for e in page2["entries"]})


def test_market_orders_transfers_and_bad_input(base: str) -> None:
    carol, dave = User(base, "carol@test.dpg"), User(base, "dave@test.dpg")
    carol.credit("USD", "10000")
    dave.credit("ETH", "5")
    assert dave.order(market="ETH/USD", side="sell", price="3000", quantity="2").status_code == 201
    r = carol.order(market="ETH/USD", side="buy", type="market", quote_quantity="1500")
    assert r.status_code == 201 and r.json()["filled"] == "0.5000"
    # internal transfer: instant and free
    r = carol.http.post("/api/v1/transfers", json={"to_user_id": dave.id, "asset": "USD", "amount": "100.5"})
    assert r.status_code == 201, r.text
    assert carol.balance("USD")[0] == "8399.500000"
    bad = [
        ({"market": "ETH/USD", "side": "buy", "price": "3000.001", "quantity": "1"}, 400, "PRICE_OFF_TICK"),
        ({"market": "ETH/USD", "side": "buy", "price": "3000", "quantity": "0.00001"}, 400, "QUANTITY_OFF_LOT"),
        ({"market": "ETH/USD", "side": "buy", "price": "3000", "quantity": "0"}, 400, "INVALID_QUANTITY"),
        ({"market": "ETH/USD", "side": "buy", "price": "-3000", "quantity": "1"}, 400, "INVALID_PRICE"),
        ({"market": "ETH/USD", "side": "buy", "price": "1", "quantity": "1"}, 400, "BELOW_MIN_NOTIONAL"),
        ({"market": "ETH/USD", "side": "buy", "price": "3000", "quantity": "1000"}, 422, "INSUFFICIENT_FUNDS"),
        ({"market": "XRP/USD", "side": "buy", "price": "1", "quantity": "1"}, 404, "UNKNOWN_MARKET"),
        ({"market": "ETH/USD", "side": "buy", "price": "abc", "quantity": "1"}, 400, "INVALID_AMOUNT"),
        ({"market": "ETH/USD", "side": "buy", "price": 3000.5, "quantity": "1"}, 422, "INVALID_REQUEST"),
        ({"market": "ETH/USD", "side": "up", "price": "3000", "quantity": "1"}, 422, "INVALID_REQUEST"),
    ]
    before = carol.http.get("/api/v1/balances").json()
    for body, status, code in bad:
        r = carol.order(**body)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
        assert len(r.json()["reason"]) > 5
    assert carol.http.get("/api/v1/balances").json() == before
    r = carol.http.post("/api/v1/transfers", json={"to_user_id": dave.id, "asset": "USD", "amount": "0.0000001"})
    assert r.json()["code"] == "INVALID_AMOUNT"


def test_websocket_order_entry_and_public_channels(base: str) -> None:
    erin, frank = User(base, "erin@test.dpg"), User(base, "frank@test.dpg")
    erin.credit("USDT", "50000")
    frank.credit("ETH", "10")
    with connect(base.replace("http", "ws") + "/ws") as pub, connect(base.replace("http", "ws") + "/ws") as ws:
        pub.send(json.dumps({"op": "subscribe", "channels": ["trades:ETH/USDT", "ticker:ETH/USDT",
                                                             "candles:ETH/USDT:1m", "depth:ETH/USDT"]}))
        recv_until(pub, lambda m: m.get("op") == "subscribe")
        ws.send(json.dumps({"op": "auth", "token": erin.token}))
        recv_until(ws, lambda m: m.get("op") == "auth")
        ws.send(json.dumps({"op": "place", "id": 7, "order": {"market": "ETH/USDT", "side": "buy", "price": "2500",
                                                              "quantity": "1", "client_order_id": "ws-1"}}))
        placed = recv_until(ws, lambda m: m.get("id") == 7)[-1]
        assert placed["result"]["status"] == "open", placed
        assert frank.order(market="ETH/USDT", side="sell", type="market", quantity="0.4").status_code == 201
        got = recv_until(pub, lambda m: m.get("channel") == "trades:ETH/USDT")
        trade = got[-1]["data"]
        assert (trade["price"], trade["quantity"], trade["taker_side"]) == ("2500.00", "0.4000", "sell")
        candle = recv_until(pub, lambda m: m.get("channel") == "candles:ETH/USDT:1m")[-1]["data"][-1]
        assert candle["close"] == "2500.00"
        ws.send(json.dumps({"op": "cancel", "id": 8, "market": "ETH/USDT", "client_order_id": "ws-1"}))
        assert recv_until(ws, lambda m: m.get("id") == 8)[-1]["result"]["status"] == "canceled"
        ws.send(json.dumps({"op": "place", "id": 9, "order": {"market": "ETH/USDT", "side": "buy"}}))
        assert "error" in recv_until(ws, lambda m: m.get("id") == 9)[-1]
        pub.send(json.dumps({"op": "subscribe", "channels": ["orders"]}))
        assert recv_until(pub, lambda m: "error" in m)[-1]["error"]["code"] == "AUTH_REQUIRED"
