"""Finished orders are found after a restart: filled, cancelled and expired orders answer by id and
by client id, by REST and through ccxt's ``fetch_order``, exactly as before the restart, once the
API's memory no longer holds them (they come from the projections)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.client import User, exchange, until, wait_projected
from tests.api.test_binance import client, trader

pytestmark = pytest.mark.timeout(300)


def _projected(http: httpx.Client, seq: int) -> None:
    until("projections caught up", lambda: http.get("/api/v1/ledger?limit=1").json()["projected_seq"] >= seq)


def test_finished_orders_are_found_by_id_and_client_id_after_a_restart(pg_url: str, tmp_path: Path) -> None:
    with exchange(pg_url, tmp_path) as base:
        alice, ccxt_alice = trader(base, "alice@restart.dpg")
        bob = User(base, "bob@restart.dpg")
        alice.credit("USDT", "100000")
        bob.credit("BTC", "2")

        def place(**body: Any) -> dict[str, Any]:
            r = alice.order(market="BTC/USDT", side="buy", **body)
            assert r.status_code == 201, r.text
            return dict(r.json())

        filled = place(price="50000", quantity="0.5", client_order_id="fill-1")
        for qty in ("0.3", "0.2"):  # two fills, alice the maker
            assert bob.order(market="BTC/USDT", side="sell", price="50000", quantity=qty).json()["status"] == "filled"
        cancelled = place(price="40000", quantity="0.1", client_order_id="cancel-1")
        alice.http.delete(f"/api/v1/orders/{cancelled['order_id']}", params={"market": "BTC/USDT"})
        expired = place(type="ioc", price="40000", quantity="0.1", client_order_id="ioc-1")
        stop = place(type="stop_limit", price="60000", stop_price="59000", quantity="0.1", client_order_id="stop-1")
        r = alice.http.delete(f"/api/v1/orders/{stop['order_id']}", params={"market": "BTC/USDT"})
        ids = {o["client_order_id"]: o["order_id"] for o in (filled, cancelled, expired, stop)}
        before = {cid: alice.http.get(f"/api/v1/orders/{oid}").json() for cid, oid in ids.items()}
        assert [before[c]["status"] for c in ids] == ["filled", "canceled", "expired", "canceled"]
        assert len(before["fill-1"]["fills"]) == 2 and before["fill-1"]["fee"] == "0.00040000"
        assert before["stop-1"]["stop_price"] == "59000.00" and before["stop-1"]["triggered"] is False
        via_ccxt = ccxt_alice.fetch_order(str(ids["fill-1"]), "BTC/USDT")
        wait_projected(alice, r.json()["updated_seq"])

    with exchange(pg_url, tmp_path) as base:  # the same database, a new process: its memory holds none of them
        http = httpx.Client(base_url=base, timeout=30, headers={"authorization": f"Bearer {alice.token}"})
        _projected(http, r.json()["updated_seq"])
        for cid, oid in ids.items():
            assert http.get(f"/api/v1/orders/{oid}").json() == before[cid], cid
            assert http.get(f"/api/v1/orders/by-client-id/{cid}").json() == before[cid], cid
        reused = http.post("/api/v1/orders", json={"market": "BTC/USDT", "side": "buy", "price": "40000",
                                                   "quantity": "0.1", "client_order_id": "fill-1"})
        assert reused.status_code == 409 and reused.json()["code"] == "DUPLICATE_CLIENT_ORDER_ID"
        # another account finds none of them
        bob_http = httpx.Client(base_url=base, timeout=30, headers={"authorization": f"Bearer {bob.token}"})
        assert bob_http.get(f"/api/v1/orders/{ids['fill-1']}").status_code == 404
        assert bob_http.get("/api/v1/orders/by-client-id/fill-1").json()["code"] == "ORDER_NOT_FOUND"

        # a bot reconciling after the restart: ccxt's fetch_order by id and by client order id
        bot = client(base)
        bot.apiKey, bot.secret = ccxt_alice.apiKey, ccxt_alice.secret
        bot.load_markets()
        got = bot.fetch_order(str(ids["fill-1"]), "BTC/USDT")
        keys = ("id", "clientOrderId", "status", "amount", "filled", "remaining", "average", "cost", "timestamp")
        assert {k: got[k] for k in keys} == {k: via_ccxt[k] for k in keys}
        assert (got["status"], got["filled"], got["average"]) == ("closed", 0.5, 50000.0)
        by_cid = bot.fetch_order(None, "BTC/USDT", {"origClientOrderId": "ioc-1"})
        assert (by_cid["id"], by_cid["status"]) == (str(ids["ioc-1"]), "expired")
        stopped = bot.fetch_order(str(ids["stop-1"]), "BTC/USDT")
        assert (stopped["status"], stopped["triggerPrice"]) == ("canceled", 59000.0)
