"""The Binance USDⓈ-M dialect (``/fapi``), driven by ccxt's own ``binanceusdm`` class (pinned) pointed
at a running DPG: markets, book and funding; leverage and margin type; a long against a short, a
reduce-only close; positions and balances equal to DPG's own API to the base unit; refusals in
Binance's codes mapped to ccxt's exceptions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal

import ccxt
import httpx
import pytest

from tests.api.client import ADMIN, User, served

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("fapi"), "dpg_test_fapi", DPG_INDEX_EVERY_MS="100") as b:
        yield b


@pytest.fixture(scope="module")
def indexed(base: str) -> str:
    return index_btc(base)


def index_btc(base: str) -> str:
    """BTC/USDT with a bid at 49,990 and an ask at 50,010: BTC-PERP's index becomes 50,000."""
    mm = User(base, "spot-maker@fapi.dpg")
    mm.credit("USDT", "1000000")
    mm.credit("BTC", "10")
    assert mm.order(market="BTC/USDT", side="buy", price="49990", quantity="1").status_code == 201
    assert mm.order(market="BTC/USDT", side="sell", price="50010", quantity="1").status_code == 201

    def index() -> str | None:
        rows = mm.http.get("/api/v1/futures/markets").json()
        return next(r["index_price"] for r in rows if r["market"] == "BTC-PERP")

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and index() != "50000.00":
        time.sleep(0.1)
    assert index() == "50000.00"
    return base


def client(base: str) -> ccxt.binanceusdm:
    """ccxt pointed at DPG. ccxt reads Binance futures' own error codes (-2019 margin, -2022
    reduce-only, ...) only for URLs on fapi.binance.com: elsewhere its ``exceptions`` option names the
    same table."""
    v1, v2, v3 = f"{base}/fapi/v1", f"{base}/fapi/v2", f"{base}/fapi/v3"
    linear = ccxt.binanceusdm().exceptions["linear"]["exact"]
    return ccxt.binanceusdm({
        "exceptions": {"exact": linear},
        "urls": {"api": {"fapiPublic": v1, "fapiPublicV2": v2, "fapiPublicV3": v3, "fapiPrivate": v1,
                         "fapiPrivateV2": v2, "fapiPrivateV3": v3, "public": f"{base}/api/v3",
                         "private": f"{base}/api/v3", "sapi": f"{base}/sapi/v1"}},
        "options": {"fetchMarkets": {"types": ["linear"]}, "fetchMargins": False, "fetchCurrencies": False,
                    "adjustForTimeDifference": False},
        "timeout": 20_000,
    })


def trader(base: str, email: str) -> tuple[User, ccxt.binanceusdm]:
    u = User(base, email)
    r = u.http.post("/api/v1/api-keys", json={"name": "ccxt", "permissions": ["read", "trade"]})
    assert r.status_code == 201, r.text
    ex = client(base)
    ex.apiKey, ex.secret = r.json()["key"], r.json()["secret"]
    ex.load_markets()
    return u, ex


def test_ccxt_reads_perpetuals_book_and_funding(indexed: str) -> None:
    ex = client(indexed)
    markets = ex.load_markets()
    assert {"BTC/USDT:USDT", "ETH/USDT:USDT"} == set(markets)
    btc = markets["BTC/USDT:USDT"]
    assert (btc["id"], btc["swap"], btc["linear"], btc["settle"]) == ("BTCUSDT", True, True, "USDT")
    assert Decimal(str(btc["precision"]["price"])) == Decimal("0.01")
    assert Decimal(str(btc["precision"]["amount"])) == Decimal("0.0001")
    assert btc["limits"]["cost"]["min"] == 5
    book = ex.fetch_order_book("BTC/USDT:USDT")
    assert book["bids"] == [] and book["asks"] == []
    u = User(indexed, "reader@fapi.dpg")
    assert book["nonce"] == u.http.get("/api/v1/depth", params={"market": "BTC-PERP"}).json()["seq"]
    fr = ex.fetch_funding_rate("BTC/USDT:USDT")
    native = next(m for m in u.http.get("/api/v1/futures/markets").json() if m["market"] == "BTC-PERP")
    assert fr["indexPrice"] == 50000.0 and Decimal(str(fr["markPrice"])) == Decimal(native["mark_price"])
    assert fr["fundingRate"] == 0 and fr["fundingTimestamp"] == native["next_funding_time"]
    # the raw answers: Binance's words for an unknown symbol, the spot dialect's perpetuals still unknown
    r = u.http.get("/fapi/v1/depth", params={"symbol": "DOGEUSDT"})
    assert r.status_code == 400 and r.json() == {"code": -1121, "msg": "Invalid symbol."}
    assert u.http.get("/fapi/v1/depth", params={"symbol": "BTCUSD"}).json()["code"] == -1121  # a spot market
    info = u.http.get("/fapi/v1/exchangeInfo").json()
    filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
    assert filters["MIN_NOTIONAL"]["notional"] == "5.000000" and filters["PRICE_FILTER"]["tickSize"] == "0.01"
    assert info["symbols"][0]["contractType"] == "PERPETUAL" and info["symbols"][0]["marginAsset"] == "USDT"
    assert (info["symbols"][0]["maintMarginPercent"], info["symbols"][0]["requiredMarginPercent"]) == (
        "0.4000", "1.0000")  # BTC-PERP's first tier: 0.4 %, 100x
    for path in ("/fapi/v1/ticker/24hr", "/fapi/v1/ticker/price", "/fapi/v1/ticker/bookTicker",
                 "/fapi/v1/premiumIndex", "/fapi/v1/trades", "/fapi/v1/fundingRate"):
        r = u.http.get(path, params={"symbol": "BTCUSDT"})
        assert r.status_code == 200, (path, r.text)
    r = u.http.get("/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "7x"})
    assert r.json()["code"] == -1120


def test_ccxt_trades_a_long_against_a_short_and_reads_back_dpg_positions(indexed: str) -> None:
    alice, a = trader(indexed, "alice@fapi.dpg")
    bob, b = trader(indexed, "bob@fapi.dpg")
    alice.credit("USDT", "100000")
    bob.credit("USDT", "100000")
    sym = "BTC/USDT:USDT"

    a.set_leverage(10, sym)
    a.set_margin_mode("isolated", sym)
    got = {s["market"]: s for s in alice.http.get("/api/v1/futures/settings").json()}["BTC-PERP"]
    assert (got["leverage"], got["margin_mode"]) == (10, "isolated")
    with pytest.raises(ccxt.BadRequest):  # -4028: beyond the tier's maximum
        a.set_leverage(150, sym)
    brackets = a.fetch_leverage_tiers([sym])[sym]
    assert brackets[0]["maxLeverage"] == 100 and brackets[0]["maintenanceMarginRate"] == 0.004

    short = b.create_order(sym, "limit", "sell", 0.1, 50000)
    assert short["status"] == "open" and short["amount"] == 0.1
    long = a.create_order(sym, "market", "buy", 0.1)
    assert long["status"] == "closed" and long["filled"] == 0.1 and long["average"] == 50000
    assert b.fetch_order(short["id"], sym)["status"] == "closed"

    for user, ex, side in ((alice, a, "long"), (bob, b, "short")):
        [native] = user.http.get("/api/v1/futures/positions").json()
        [pos] = ex.fetch_positions([sym])
        assert pos["side"] == side and native["side"] == side
        assert Decimal(str(pos["contracts"])) == abs(Decimal(native["size"]))
        assert Decimal(str(pos["entryPrice"])) == Decimal(native["entry_price"])
        assert Decimal(str(pos["unrealizedPnl"])) == Decimal(native["unrealized_pnl"])
        assert Decimal(str(pos["markPrice"])) == Decimal(native["mark_price"])
        assert pos["marginMode"] == native["margin_mode"] and pos["leverage"] == native["leverage"]
        if native["liquidation_price"] is not None:
            assert Decimal(str(pos["liquidationPrice"])) == Decimal(native["liquidation_price"])
        bal = ex.fetch_balance()
        free, locked = user.balance("USDT")
        assert Decimal(str(bal["USDT"]["free"])) == Decimal(free)
        assert Decimal(str(bal["USDT"]["used"])) == Decimal(locked)

    # a reduce-only close of half the long, against bob's bid
    bid = b.create_order(sym, "limit", "buy", 0.05, 50000)
    with pytest.raises(ccxt.InvalidOrder):  # -2022: a reduce-only buy cannot reduce alice's long
        a.create_order(sym, "market", "buy", 0.01, None, {"reduceOnly": True})
    close = a.create_order(sym, "market", "sell", 0.05, None, {"reduceOnly": True})
    assert close["status"] == "closed" and close["filled"] == 0.05 and close["reduceOnly"] is True
    assert b.fetch_order(bid["id"], sym)["status"] == "closed"
    [native] = alice.http.get("/api/v1/futures/positions").json()
    assert native["size"] == "0.05000000"
    assert Decimal(str(a.fetch_positions([sym])[0]["contracts"])) == Decimal("0.05")

    # a stop-market that closes the rest on the mark price, open until then
    stop = a.create_order(sym, "STOP_MARKET", "sell", None, None, {"stopPrice": 40000, "closePosition": True})
    assert stop["status"] == "open" and stop["triggerPrice"] == 40000 and stop["reduceOnly"] is True
    assert {o["id"] for o in a.fetch_open_orders(sym, params={"trigger": True})} == {stop["id"]}
    assert a.fetch_order(stop["id"], sym, {"trigger": True})["status"] == "open"
    [native] = [o for o in alice.http.get("/api/v1/orders/open").json() if o["type"] == "stop_market"]
    assert str(native["order_id"]) == stop["id"] and native["stop_price"] == "40000.00"
    assert a.cancel_order(stop["id"], sym, {"trigger": True})["id"] == stop["id"]  # Binance answers no status
    assert a.fetch_order(stop["id"], sym, {"trigger": True})["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        a.cancel_order(stop["id"], sym, {"trigger": True})

    mine = a.fetch_my_trades(sym)
    assert [(t["side"], t["price"], t["amount"]) for t in mine] == [("buy", 50000.0, 0.1), ("sell", 50000.0, 0.05)]
    public = [(t["side"], t["price"], t["amount"]) for t in a.fetch_trades(sym)]
    assert public[-2:] == [("buy", 50000.0, 0.1), ("sell", 50000.0, 0.05)]
    assert a.fetch_ohlcv(sym, "1m")[-1][4] == 50000.0
    ticker = a.fetch_ticker(sym)
    assert ticker["last"] == 50000.0 and ticker["baseVolume"] >= 0.15
    assert set(a.fetch_tickers()) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert a.fetch_funding_rate_history(sym) == []  # no funding time has passed

    # refusals in Binance's codes, as ccxt maps them
    with pytest.raises(ccxt.InsufficientFunds):  # -2019
        b.create_order(sym, "limit", "buy", 100, 50000)
    wrong = client(indexed)
    wrong.apiKey, wrong.secret = b.apiKey, "not-the-secret"
    with pytest.raises(ccxt.AuthenticationError):
        wrong.fetch_balance()


def test_isolated_margin_and_income_through_ccxt(indexed: str) -> None:
    carol, c = trader(indexed, "carol@fapi.dpg")
    dave, d = trader(indexed, "dave@fapi.dpg")
    carol.credit("USDT", "10000")
    dave.credit("USDT", "10000")
    sym = "BTC/USDT:USDT"
    c.set_margin_mode("isolated", sym)
    c.set_leverage(10, sym)
    with pytest.raises(ccxt.InsufficientFunds):  # -4051: no isolated position yet
        c.add_margin(sym, 12.5)
    sold = d.create_order(sym, "limit", "sell", 0.02, 50000)
    bought = c.create_order(sym, "limit", "buy", 0.02, 50000)
    [pos] = carol.http.get("/api/v1/futures/positions").json()
    assert pos["margin"] == "100.000000"  # 1,000 USDT at 10x
    c.add_margin(sym, 12.5)
    c.reduce_margin(sym, 3)
    [pos] = carol.http.get("/api/v1/futures/positions").json()
    assert pos["margin"] == "109.500000"
    [risk] = c.fetch_positions([sym])
    assert Decimal(str(risk["collateral"])) == Decimal("109.5") + Decimal(pos["unrealized_pnl"])
    # the taker's and the maker's fees, as DPG charged them, in /fapi/v1/income
    for user, ex, placed in ((carol, c, bought), (dave, d, sold)):
        rows = ex.fapiPrivateGetIncome({"symbol": "BTCUSDT", "incomeType": "COMMISSION"})
        order = user.http.get(f"/api/v1/orders/{placed['id']}").json()
        assert Decimal(order["fee"]) > 0
        assert [Decimal(r["income"]) for r in rows] == [-Decimal(order["fee"])]


def test_signed_endpoints_refuse_what_binance_refuses(indexed: str) -> None:
    u = User(indexed, "erin@fapi.dpg")
    u.credit("USDT", "1000")
    r = u.http.post("/api/v1/api-keys", json={"name": "ro", "permissions": ["read"]})
    ro = client(indexed)
    ro.apiKey, ro.secret = r.json()["key"], r.json()["secret"]
    ro.load_markets()
    assert Decimal(str(ro.fetch_balance()["USDT"]["free"])) == 1000
    with pytest.raises(ccxt.AuthenticationError):  # -2015: a read-only key places no order
        ro.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 40000)
    with pytest.raises(ccxt.AuthenticationError):  # -2015: nor sets the leverage
        ro.set_leverage(5, "BTC/USDT:USDT")
    assert u.http.get("/fapi/v2/balance").json()["code"] == -2014  # no key at all
    _, ex = trader(indexed, "frank@fapi.dpg")

    def refused(method: str, path: str, **params: object) -> int:
        """The Binance code of a refused call (ccxt's implicit method, e.g. fapiPrivatePostOrder)."""
        call = getattr(ex, "fapiPrivate" + method.capitalize() + path[0].upper() + path[1:])
        with pytest.raises(ccxt.ExchangeError) as e:
            call(params)
        text = str(e.value)  # "binanceusdm [ccxt's words] {Binance's answer}"
        return int(json.loads(text[text.index("{"):])["code"])

    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "40000",
            "timeInForce": "GTC"}
    assert refused("POST", "order", **{**base, "positionSide": "LONG"}) == -4061
    assert refused("POST", "order", **{**base, "type": "STOP_MARKET", "stopPrice": "60000",
                                       "workingType": "CONTRACT_PRICE"}) == -1100
    assert refused("POST", "order", **{**base, "type": "TRAILING_STOP_MARKET"}) == -1116
    assert refused("POST", "order", **{**base, "timeInForce": "GTD"}) == -1115
    assert refused("POST", "order", **{**base, "price": "40000.001"}) == -1013  # off the tick
    assert refused("POST", "order", **{**base, "quantity": "abc"}) == -1100
    assert refused("POST", "order", **{**base, "symbol": "BTCUSD"}) == -1121  # a spot market
    assert refused("POST", "order", **{**base, "reduceOnly": "maybe"}) == -1100
    assert refused("POST", "leverage", symbol="BTCUSDT", leverage="0") == -4028
    assert refused("POST", "leverage", symbol="BTCUSDT", leverage="x") == -1100
    assert refused("POST", "marginType", symbol="BTCUSDT", marginType="CROSSED") == -4046  # already cross
    assert refused("POST", "marginType", symbol="BTCUSDT", marginType="HALF") == -1100
    assert refused("POST", "positionMargin", symbol="BTCUSDT", type="3", amount="1") == -1100
    assert refused("POST", "positionMargin", symbol="BTCUSDT", type="1", amount="-1") == -1100
    assert refused("GET", "order", symbol="BTCUSDT", orderId="123456789") == -2013
    assert refused("DELETE", "order", symbol="BTCUSDT") == -1102
    assert refused("GET", "income", incomeType="BONUS") == -1100


def test_the_clock_stays_put_on_an_exchange_without_dev_clock(base: str) -> None:
    r = httpx.post(f"{base}/api/v1/admin/clock", json={"advance_ms": 28_800_000}, headers={"X-DPG-Admin-Token": ADMIN})
    assert r.status_code == 409 and r.json()["code"] == "CLOCK_FIXED"
