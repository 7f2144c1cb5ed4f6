"""The futures REST API over HTTP against ``dpg up`` on the real PostgreSQL: the perpetuals listed
with their tiers, leverage and margin mode, the index price sampled from the spot mid, an order
that cannot be margined, a long opened against a short and read back, isolated margin added and
removed, funding and the insurance fund; the spot endpoints still list spot markets only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.api.client import User, served

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("futures"), "dpg_test_futures", DPG_INDEX_EVERY_MS="100") as b:
        yield b


def perp(u: User, symbol: str = "BTC-PERP") -> dict[str, Any]:
    markets = u.http.get("/api/v1/futures/markets").json()
    return dict(next(m for m in markets if m["market"] == symbol))


@pytest.fixture(scope="module")
def indexed(base: str) -> str:
    """BTC/USDT with a bid at 49,990 and an ask at 50,010: BTC-PERP's index becomes 50,000."""
    mm = User(base, "spot-maker@test.dpg")
    mm.credit("USDT", "1000000")
    mm.credit("BTC", "10")
    assert mm.order(market="BTC/USDT", side="buy", price="49990", quantity="1").status_code == 201
    assert mm.order(market="BTC/USDT", side="sell", price="50010", quantity="1").status_code == 201
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and perp(mm)["index_price"] != "50000.00":
        time.sleep(0.1)
    assert perp(mm)["index_price"] == "50000.00"
    return base


def test_the_perpetuals_are_listed_with_their_tiers_and_the_spot_lists_stay_spot(base: str) -> None:
    u = User(base, "lister@test.dpg")
    markets = u.http.get("/api/v1/futures/markets").json()
    assert [m["market"] for m in markets] == ["BTC-PERP", "ETH-PERP"]
    btc = markets[0]
    assert (btc["tick_size"], btc["lot_size"], btc["min_notional"]) == ("0.01", "0.0001", "5.000000")
    assert (btc["maker_fee"], btc["taker_fee"], btc["margin_asset"]) == ("0.000200", "0.000500", "USDT")
    tiers = btc["tiers"]
    assert tiers[0] == {"notional_floor": "0.000000", "maintenance_margin_rate": "0.004000", "max_leverage": 100,
                        "cum": "0.000000"}
    assert (tiers[2]["notional_floor"], tiers[2]["cum"]) == ("250000.000000", "1300.000000")
    assert (tiers[3]["notional_floor"], tiers[3]["cum"]) == ("1000000.000000", "16300.000000")
    assert btc["funding_interval_hours"] == 8 and btc["funding_rate"] == "0.00000000"
    # the spot lists: spot markets only; the Binance spot dialect knows no perpetual
    assert [m["market"] for m in u.http.get("/api/v1/markets").json()] == ["BTC/USDT", "ETH/USDT", "BTC/USD",
                                                                           "ETH/USD"]
    assert len(u.http.get("/api/v1/ticker").json()) == 4
    info = u.http.get("/api/v3/exchangeInfo").json()
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT", "BTCUSD", "ETHUSD"]
    assert u.http.get("/api/v3/depth", params={"symbol": "BTCUSDT_PERP"}).json()["code"] == -1121
    assert len(u.http.get("/api/v3/ticker/price").json()) == 4
    # a perpetual's own book by its name on the native market data
    assert u.http.get("/api/v1/depth", params={"market": "BTC-PERP"}).json()["market"] == "BTC-PERP"
    assert u.http.get("/api/v1/futures/insurance").status_code == 200


def test_leverage_and_margin_mode(base: str) -> None:
    u = User(base, "leverage@test.dpg")
    r = u.http.post("/api/v1/futures/leverage", json={"market": "BTC-PERP", "leverage": 10})
    assert r.status_code == 200, r.text
    assert r.json()["leverage"] == 10 and r.json()["margin_mode"] == "cross"
    r = u.http.post("/api/v1/futures/leverage", json={"market": "BTC-PERP", "leverage": 150})
    assert r.status_code == 400 and r.json()["code"] == "INVALID_LEVERAGE"
    assert "1 to 100" in r.json()["reason"]
    r = u.http.post("/api/v1/futures/margin-mode", json={"market": "ETH-PERP", "mode": "isolated"})
    assert r.status_code == 200 and r.json()["margin_mode"] == "isolated"
    got = {s["market"]: s for s in u.http.get("/api/v1/futures/settings").json()}
    assert got["BTC-PERP"]["leverage"] == 10 and got["ETH-PERP"]["margin_mode"] == "isolated"
    r = u.http.post("/api/v1/futures/leverage", json={"market": "BTC/USDT", "leverage": 5})
    assert r.status_code == 404 and r.json()["code"] == "UNKNOWN_MARKET"
    anon = User(base, "anon-futures@test.dpg")
    anon.http.headers.pop("authorization")
    assert anon.http.get("/api/v1/futures/positions").status_code == 401


def test_an_order_that_cannot_be_margined_is_refused_with_its_reason(indexed: str) -> None:
    u = User(indexed, "poor@test.dpg")
    u.credit("USDT", "10")
    r = u.order(market="BTC-PERP", side="buy", price="50000", quantity="0.1")
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "INSUFFICIENT_MARGIN" and "margin" in r.json()["reason"]
    r = u.order(market="BTC/USDT", side="buy", price="50000", quantity="0.1", reduce_only=True)
    assert r.status_code == 400 and r.json()["code"] == "INVALID_ORDER"  # reduce-only is for perpetuals
    r = u.order(market="BTC-PERP", side="sell", type="market", quantity="0.01", reduceOnly=True)
    assert r.status_code == 400 and r.json()["code"] == "REDUCE_ONLY"  # no position to reduce


def test_a_long_against_a_short_read_back_as_positions(indexed: str) -> None:
    alice, bob = User(indexed, "long@test.dpg"), User(indexed, "short@test.dpg")
    alice.credit("USDT", "100000")
    bob.credit("USDT", "100000")
    assert alice.http.post("/api/v1/futures/leverage", json={"market": "BTC-PERP", "leverage": 10}).status_code == 200
    r = bob.order(market="BTC-PERP", side="sell", price="50000", quantity="0.1")
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "open"
    r = alice.order(market="BTC-PERP", side="buy", price="50000", quantity="0.1")
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "filled" and order["fee_asset"] == "USDT" and order["fee"] == "2.500000"  # 0.05 %
    [long] = alice.http.get("/api/v1/futures/positions").json()
    assert (long["market"], long["side"], long["size"], long["entry_price"]) == ("BTC-PERP", "long", "0.10000000",
                                                                                "50000.000000")
    assert long["margin_mode"] == "cross" and long["leverage"] == 10
    assert long["mark_price"] is not None
    assert long["liquidation_price"] is None  # cross, 100,000 USDT behind 5,000 of BTC: no price liquidates it
    mark = Decimal(long["mark_price"])
    assert Decimal(long["unrealized_pnl"]) == (mark - 50000) * Decimal("0.1")
    [short] = bob.http.get("/api/v1/futures/positions").json()
    assert (short["side"], short["size"]) == ("short", "-0.10000000")
    # the maker paid 0.02 %: (wallet + cum + Q x EP) / (Q x MMR + Q) = (99,999 + 5,000) / (0.1 x 0.004 + 0.1)
    want = (Decimal("99999") + 5000) / (Decimal("0.1") * Decimal("0.004") + Decimal("0.1"))
    assert short["liquidation_price"] == f"{want:.2f}"
    # reduce-only closes, never flips
    r = alice.order(market="BTC-PERP", side="sell", type="stop_market", stopPrice="40000", closePosition=True)
    assert r.status_code == 201, r.text
    assert r.json()["type"] == "stop_market" and r.json()["status"] == "open"
    ins = {a["asset"]: a["balance"] for a in alice.http.get("/api/v1/futures/insurance").json()}
    assert Decimal(ins["USDT"]) > 0  # 10 % of the fees
    f = alice.http.get("/api/v1/futures/funding", params={"market": "BTC-PERP"}).json()
    assert f["market"] == "BTC-PERP" and f["next_funding_time"] and f["history"] == []


def test_isolated_margin_added_and_removed(indexed: str) -> None:
    carol, dave = User(indexed, "isolated@test.dpg"), User(indexed, "counter@test.dpg")
    carol.credit("USDT", "10000")
    dave.credit("USDT", "10000")
    r = carol.http.post("/api/v1/futures/margin", json={"market": "BTC-PERP", "amount": "+12.5"})
    assert r.status_code == 400 and r.json()["code"] == "NO_POSITION"
    assert carol.http.post("/api/v1/futures/margin-mode",
                           json={"market": "BTC-PERP", "mode": "isolated"}).status_code == 200
    assert carol.http.post("/api/v1/futures/leverage", json={"market": "BTC-PERP", "leverage": 10}).status_code == 200
    assert dave.order(market="BTC-PERP", side="sell", price="50000", quantity="0.02").status_code == 201
    r = carol.order(market="BTC-PERP", side="buy", price="50000", quantity="0.02")
    assert r.status_code == 201 and r.json()["status"] == "filled", r.text
    [pos] = carol.http.get("/api/v1/futures/positions").json()
    assert pos["margin_mode"] == "isolated" and pos["margin"] == "100.000000"  # 1,000 USDT at 10x
    before = Decimal(pos["liquidation_price"])
    r = carol.http.post("/api/v1/futures/margin", json={"market": "BTC-PERP", "amount": "+12.5"})
    assert r.status_code == 200, r.text
    assert r.json()["margin"] == "112.500000"
    [pos] = carol.http.get("/api/v1/futures/positions").json()
    assert pos["margin"] == "112.500000" and Decimal(pos["liquidation_price"]) < before
    r = carol.http.post("/api/v1/futures/margin", json={"market": "BTC-PERP", "amount": "-3"})
    assert r.status_code == 200 and r.json()["margin"] == "109.500000"
    r = carol.http.post("/api/v1/futures/margin", json={"market": "BTC-PERP", "amount": "-100"})
    assert r.status_code == 422 and r.json()["code"] == "INSUFFICIENT_MARGIN"
    assert "initial margin" in r.json()["reason"]


def test_websocket_mark_price_and_positions(indexed: str) -> None:
    import json

    from websockets.sync.client import connect

    from tests.api.client import recv_until

    erin, frank = User(indexed, "ws-long@test.dpg"), User(indexed, "ws-short@test.dpg")
    erin.credit("USDT", "10000")
    frank.credit("USDT", "10000")
    with connect(indexed.replace("http", "ws") + "/ws") as ws:
        ws.send(json.dumps({"op": "subscribe", "channels": ["mark:btc-perp"]}))
        got = recv_until(ws, lambda m: m.get("channel") == "mark:BTC-PERP")
        assert got[-1]["data"]["index_price"] == "50000.00"  # the state first
        ws.send(json.dumps({"op": "subscribe", "channels": ["mark:BTC/USDT"]}))
        assert recv_until(ws, lambda m: "error" in m)[-1]["error"]["code"] == "INVALID_CHANNELS"
        ws.send(json.dumps({"op": "auth", "token": erin.token}))
        recv_until(ws, lambda m: m.get("op") == "auth")
        ws.send(json.dumps({"op": "subscribe", "channels": ["positions", "funding:BTC-PERP",
                                                            "liquidations:BTC-PERP"]}))
        assert recv_until(ws, lambda m: m.get("channel") == "positions")[-1]["data"] == []
        assert frank.order(market="BTC-PERP", side="sell", price="50000", quantity="0.01").status_code == 201
        assert erin.order(market="BTC-PERP", side="buy", price="50000", quantity="0.01").status_code == 201
        msgs = recv_until(ws, lambda m: m.get("channel") == "positions" and m["data"])
        [pos] = msgs[-1]["data"]
        assert (pos["market"], pos["side"], pos["size"]) == ("BTC-PERP", "long", "0.01000000")
