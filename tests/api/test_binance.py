"""The Binance dialect, driven by ccxt's own ``binance`` class (pinned) pointed at a running DPG."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from tests.api.client import User, served

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("binance"), "dpg_test_binance") as b:
        yield b


def client(base: str) -> ccxt.binance:
    api = f"{base}/api/v3"
    return ccxt.binance({
        "urls": {"api": {"public": api, "private": api, "v1": api, "sapi": f"{base}/sapi/v1"}},
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False,
                    "fetchCurrencies": False,
                    "adjustForTimeDifference": False},
        "timeout": 20_000,
    })


def test_ccxt_reads_markets_books_trades_candles_and_tickers(base: str) -> None:
    maker, taker = User(base, "maker@binance.dpg"), User(base, "taker@binance.dpg")
    maker.credit("BTC", "1")
    taker.credit("USDT", "100000")
    assert maker.order(market="BTC/USDT", side="sell", price="50000", quantity="0.3").status_code == 201
    assert maker.order(market="BTC/USDT", side="sell", price="50100", quantity="0.2").status_code == 201
    assert taker.order(market="BTC/USDT", side="buy", price="50000", quantity="0.1").status_code == 201

    ex = client(base)
    markets = ex.load_markets()
    btc = markets["BTC/USDT"]
    assert (btc["base"], btc["quote"], btc["spot"]) == ("BTC", "USDT", True)
    assert Decimal(str(btc["precision"]["price"])) == Decimal("0.01")
    assert Decimal(str(btc["precision"]["amount"])) == Decimal("0.0001")
    assert btc["limits"]["cost"]["min"] == 5
    book = ex.fetch_order_book("BTC/USDT")
    assert book["asks"][:2] == [[50000.0, 0.2], [50100.0, 0.2]] and book["bids"] == []
    assert book["nonce"] == maker.http.get("/api/v1/depth", params={"market": "BTC/USDT"}).json()["seq"]
    trades = ex.fetch_trades("BTC/USDT")
    assert [(t["price"], t["amount"], t["side"]) for t in trades] == [(50000.0, 0.1, "buy")]
    candles = ex.fetch_ohlcv("BTC/USDT", "1m")
    assert candles[-1][1:6] == [50000.0, 50000.0, 50000.0, 50000.0, 0.1]
    ticker = ex.fetch_ticker("BTC/USDT")
    assert (ticker["last"], ticker["ask"], ticker["baseVolume"]) == (50000.0, 50000.0, 0.1)
    tickers = ex.fetch_tickers()
    assert {"BTC/USDT", "ETH/USDT", "BTC/USD", "ETH/USD"} <= set(tickers)
    with pytest.raises(ccxt.BadSymbol):
        ex.fetch_order_book("DOGE/USDT")


def trader(base: str, email: str) -> tuple[User, ccxt.binance]:
    u = User(base, email)
    r = u.http.post("/api/v1/api-keys", json={"name": "ccxt", "permissions": ["read", "trade"]})
    assert r.status_code == 201, r.text
    ex = client(base)
    ex.apiKey, ex.secret = r.json()["key"], r.json()["secret"]
    ex.load_markets()
    return u, ex


def test_two_ccxt_bots_trade_with_each_other(base: str) -> None:
    alice, a = trader(base, "alice@binance.dpg")
    bob, b = trader(base, "bob@binance.dpg")
    alice.credit("ETH", "10")
    bob.credit("USDT", "50000")

    sell = a.create_order("ETH/USDT", "limit", "sell", 2, 3000)
    assert sell["status"] == "open" and sell["amount"] == 2
    maker = a.create_order("ETH/USDT", "LIMIT_MAKER", "sell", 1, 3100)
    assert maker["status"] == "open"
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # a post-only order that would take
        b.create_order("ETH/USDT", "LIMIT_MAKER", "buy", 1, 3000)
    buy = b.create_order("ETH/USDT", "market", "buy", 0.5)
    assert buy["status"] == "closed" and buy["filled"] == 0.5 and buy["average"] == 3000
    assert buy["fees"] or buy["fee"]
    stop = b.create_order("ETH/USDT", "STOP_LOSS_LIMIT", "buy", 0.5, 3150, {"stopPrice": 3120})
    assert b.fetch_order(stop["id"], "ETH/USDT")["status"] == "open"

    got = a.fetch_order(sell["id"], "ETH/USDT")
    assert (got["filled"], got["remaining"], got["status"]) == (0.5, 1.5, "open")
    assert {o["id"] for o in a.fetch_open_orders("ETH/USDT")} == {sell["id"], maker["id"]}
    cancelled = a.cancel_order(maker["id"], "ETH/USDT")
    assert cancelled["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        a.cancel_order(maker["id"], "ETH/USDT")
    with pytest.raises(ccxt.OrderNotFound):
        a.fetch_order("999999", "ETH/USDT")

    mine = b.fetch_my_trades("ETH/USDT")
    assert [(t["side"], t["price"], t["amount"], t["takerOrMaker"]) for t in mine] == [("buy", 3000.0, 0.5, "taker")]
    # balances agree with DPG's own API to the base unit
    for user, ex in ((alice, a), (bob, b)):
        bal = ex.fetch_balance()
        for asset in ("ETH", "USDT"):
            free, locked = user.balance(asset)
            assert Decimal(str(bal[asset]["free"])) == Decimal(free)
            assert Decimal(str(bal[asset]["used"])) == Decimal(locked)

    # the error paths bots rely on, each as the exception ccxt maps Binance's code to
    with pytest.raises(ccxt.InsufficientFunds):
        b.create_order("ETH/USDT", "limit", "buy", 100, 3000)
    with pytest.raises(ccxt.BadRequest):  # -1013 Filter failure: NOTIONAL, as ccxt maps it for Binance
        b.create_order("ETH/USDT", "limit", "buy", 0.001, 1)
    wrong = client(base)
    wrong.apiKey, wrong.secret = b.apiKey, "not-the-secret"
    with pytest.raises(ccxt.AuthenticationError):
        wrong.fetch_balance()
    stale = client(base)
    stale.apiKey, stale.secret = b.apiKey, b.secret
    stale.milliseconds = lambda: int(__import__("time").time() * 1000) - 120_000  # type: ignore[method-assign]
    with pytest.raises(ccxt.InvalidNonce):
        stale.fetch_balance()


def test_ccxt_watches_the_book_and_trades_over_the_binance_streams(base: str) -> None:
    import asyncio
    import random

    import ccxt.pro

    u1, u2 = User(base, "w1@binance.dpg"), User(base, "w2@binance.dpg")
    for u in (u1, u2):
        u.credit("BTC", "20")
        u.credit("USDT", "2000000")
    api = f"{base}/api/v3"

    def rest_depth() -> dict[str, object]:
        got: dict[str, object] = u1.http.get("/api/v3/depth", params={"symbol": "BTCUSD", "limit": 1000}).json()
        return got

    def as_floats(levels: object) -> list[list[float]]:
        assert isinstance(levels, list)
        return [[float(p), float(q)] for p, q in levels]

    async def main() -> None:
        ex = ccxt.pro.binance({
            "urls": {"api": {"public": api, "private": api, "v1": api, "sapi": api,
                             "ws": {"spot": base.replace("http", "ws") + "/stream/ws"}}},
            "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False,
                        "fetchCurrencies": False},
        })
        loop = asyncio.get_running_loop()
        rng = random.Random(1)
        u1.credit("USD", "2000000")
        u2.credit("USD", "2000000")
        try:
            await ex.watch_order_book("BTC/USD")
            checked = 0
            for step in range(40):
                side = rng.choice(["buy", "sell"])
                ticks = 5_000_000 + rng.randint(-20, 20)
                body = {"market": "BTC/USD", "side": side, "price": f"{ticks // 100}.{ticks % 100:02d}",
                        "quantity": f"0.{rng.randint(1, 50):04d}"}
                who = u1 if step % 2 else u2
                await loop.run_in_executor(None, lambda b=body, w=who: w.order(**b))
                rest = await loop.run_in_executor(None, rest_depth)
                # ccxt applies each diff as it arrives; waiting for "the next" watch_order_book could
                # miss the one that lands before the wait is registered, so poll the live book
                deadline = loop.time() + 10
                ob = ex.orderbooks["BTC/USD"]
                while ob["nonce"] < rest["lastUpdateId"]:  # type: ignore[operator]
                    assert loop.time() < deadline, (ob["nonce"], rest["lastUpdateId"])
                    await asyncio.sleep(0.01)
                    ob = ex.orderbooks["BTC/USD"]
                assert ob["nonce"] == rest["lastUpdateId"]
                assert [list(x) for x in ob["bids"]] == as_floats(rest["bids"])
                assert [list(x) for x in ob["asks"]] == as_floats(rest["asks"])
                checked += 1
            assert checked == 40
            trades_task = asyncio.ensure_future(ex.watch_trades("BTC/USD"))
            await asyncio.sleep(0.5)
            r = await loop.run_in_executor(None, lambda: u2.order(market="BTC/USD", side="sell", price="49000",
                                                                  quantity="0.0100"))
            assert r.status_code == 201 and r.json()["filled"] != "0.0000", r.text
            trades = await asyncio.wait_for(trades_task, 10)
            assert trades and trades[-1]["symbol"] == "BTC/USD" and trades[-1]["side"] == "sell"
        finally:
            await ex.close()

    asyncio.run(main())


def pro_client(base: str, key: str = "", secret: str = "") -> object:
    """ccxt.pro's binance pointed at DPG: REST, market streams and the WebSocket API."""
    import ccxt.pro

    api, ws = f"{base}/api/v3", base.replace("http", "ws")
    return ccxt.pro.binance({
        "apiKey": key, "secret": secret,
        "urls": {"api": {"public": api, "private": api, "v1": api, "sapi": api,
                         "ws": {"spot": f"{ws}/stream/ws", "ws-api": {"spot": f"{ws}/ws-api/v3"}}}},
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False,
                    "fetchCurrencies": False},
    })


def test_ccxt_reads_trading_fees_and_the_delist_schedule(base: str) -> None:
    _, ex = trader(base, "fees@binance.dpg")
    fees = ex.fetch_trading_fees()
    assert (fees["BTC/USDT"]["maker"], fees["BTC/USDT"]["taker"]) == (0.0008, 0.001)
    assert ex.sapi_get_spot_delist_schedule() == []
    wrong = client(base)
    wrong.apiKey, wrong.secret = ex.apiKey, "not-the-secret"
    with pytest.raises(ccxt.AuthenticationError):
        wrong.fetch_trading_fees()


def test_ccxt_pro_watches_orders_trades_and_balance_over_the_websocket_api(base: str) -> None:
    """A limit order placed, partly filled by another user, then cancelled: ccxt.pro's
    watch_orders, watch_my_trades and watch_balance (Binance's WebSocket API user data stream)
    see each state as REST reports it, and the balance as DPG's own API has it."""
    import asyncio

    alice, a = trader(base, "pro-alice@binance.dpg")
    bob = User(base, "pro-bob@binance.dpg")
    alice.credit("ETH", "5")
    bob.credit("USD", "100000")

    async def main() -> None:
        ex: Any = pro_client(base, a.apiKey, a.secret)
        loop = asyncio.get_running_loop()
        seen: list[dict[str, Any]] = []
        balances: list[dict[str, Any]] = []

        async def follow(watch: Any, into: list[dict[str, Any]]) -> None:
            while True:
                got = await watch()
                into.extend(got if isinstance(got, list) else [got])

        try:
            await ex.load_markets()
            tasks = [asyncio.ensure_future(follow(lambda: ex.watch_orders("ETH/USD"), seen)),
                     asyncio.ensure_future(follow(ex.watch_balance, balances))]
            mine: list[dict[str, Any]] = []
            tasks.append(asyncio.ensure_future(follow(lambda: ex.watch_my_trades("ETH/USD"), mine)))
            # subscribed (the first watch signs userDataStream.subscribe.signature): a credit's balance
            # update comes through before the order, whose NEW report must not be missed
            for _ in range(40):
                await loop.run_in_executor(None, lambda: alice.credit("USD", "1"))
                for _ in range(10):
                    if balances:
                        break
                    await asyncio.sleep(0.05)
                if balances:
                    break
            assert balances, "the user data stream never started"

            async def state(oid: str, want: Any) -> dict[str, Any]:
                for _ in range(200):
                    mine_now = [o for o in seen if o["id"] == oid]
                    if mine_now and want(mine_now[-1]):
                        rest = await ex.fetch_order(oid, "ETH/USD")
                        got = mine_now[-1]
                        for k in ("id", "status", "filled", "remaining", "price", "amount", "side", "type",
                                  "clientOrderId"):
                            assert got[k] == rest[k], (k, got[k], rest[k])
                        return got
                    await asyncio.sleep(0.05)
                raise AssertionError(f"no update of {oid} as wanted: {seen}")

            placed = await ex.create_order("ETH/USD", "limit", "sell", 2, 3000)
            got = await state(placed["id"], lambda o: o["status"] == "open")
            assert (got["filled"], got["remaining"], got["price"]) == (0, 2, 3000)

            r = await loop.run_in_executor(None, lambda: bob.order(market="ETH/USD", side="buy", price="3000",
                                                                   quantity="0.5"))
            assert r.status_code == 201, r.text
            got = await state(placed["id"], lambda o: o["filled"] == 0.5)
            assert (got["status"], got["remaining"], got["cost"]) == ("open", 1.5, 1500)

            await ex.cancel_order(placed["id"], "ETH/USD")
            got = await state(placed["id"], lambda o: o["status"] == "canceled")
            assert (got["filled"], got["remaining"]) == (0.5, 1.5)

            for _ in range(100):
                if mine:
                    break
                await asyncio.sleep(0.05)
            rest_trades = await ex.fetch_my_trades("ETH/USD")
            assert [(t["id"], t["order"], t["side"], t["price"], t["amount"], t["takerOrMaker"]) for t in mine] == \
                   [(t["id"], t["order"], t["side"], t["price"], t["amount"], t["takerOrMaker"]) for t in rest_trades]
            assert mine[0]["fee"]["currency"] == rest_trades[0]["fee"]["currency"]
            assert mine[0]["fee"]["cost"] == rest_trades[0]["fee"]["cost"]

            async def balance_agrees() -> bool:
                if not balances:
                    return False
                native = await loop.run_in_executor(None, lambda: {x: alice.balance(x) for x in ("ETH", "USD")})
                last = balances[-1]
                return all(x in last and Decimal(str(last[x]["free"])) == Decimal(native[x][0])
                           and Decimal(str(last[x]["used"])) == Decimal(native[x][1]) for x in native)

            for _ in range(100):
                if await balance_agrees():
                    break
                await asyncio.sleep(0.05)
            assert await balance_agrees(), balances[-1:]
            for t in tasks:
                t.cancel()
        finally:
            await ex.close()

    asyncio.run(main())


def test_the_websocket_api_answers_in_binance_words(base: str) -> None:
    """Requests and errors of /ws-api/v3 as Binance writes them; ccxt.pro raises what it raises
    for Binance on a bad signature and a stale timestamp."""
    import asyncio
    import hashlib
    import hmac
    import json
    import time

    from websockets.sync.client import connect

    _, a = trader(base, "wsapi@binance.dpg")
    url = base.replace("http", "ws") + "/ws-api/v3"
    with connect(url) as ws:
        def call(msg: object) -> dict[str, Any]:
            ws.send(json.dumps(msg))
            got: dict[str, Any] = json.loads(ws.recv(timeout=10))
            return got

        assert call({"id": "p", "method": "ping"}) == {"id": "p", "status": 200, "result": {}}
        t = call({"id": 2, "method": "time"})
        assert t["status"] == 200 and abs(t["result"]["serverTime"] - time.time() * 1000) < 10_000
        assert call({"id": 3, "method": "order.teleport", "params": {}}) == {
            "id": 3, "status": 400, "error": {"code": -1020, "msg": "This operation is not supported."}}
        assert call({"id": 4, "method": "userDataStream.subscribe"})["error"]["code"] == -2015  # not logged on
        bad = call({"id": 5, "method": "userDataStream.subscribe.signature", "params": {"apiKey": a.apiKey}})
        assert bad["status"] == 400 and bad["error"]["code"] == -1102

        def signed(rid: object, method: str, ts: int, secret: str) -> dict[str, Any]:
            params = {"apiKey": a.apiKey, "timestamp": ts}
            query = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
            sig = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
            return call({"id": rid, "method": method, "params": {**params, "signature": sig}})

        now = int(time.time() * 1000)
        assert signed(6, "userDataStream.subscribe.signature", now, "wrong")["error"]["code"] == -1022
        assert signed(7, "userDataStream.subscribe.signature", now - 120_000, a.secret)["error"]["code"] == -1021
        assert signed(8, "session.logon", now, a.secret)["status"] == 200
        assert call({"id": 9, "method": "userDataStream.subscribe"}) == {
            "id": 9, "status": 200, "result": {"subscriptionId": 0}}
        assert call({"id": 10, "method": "session.status"})["result"]["userDataStream"] is True
        assert call({"id": 11, "method": "userDataStream.unsubscribe"})["status"] == 200
        ws.send("{not json")
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == -1000

    async def rejected(secret: str, skew: int) -> None:
        ex: Any = pro_client(base, a.apiKey, secret)
        if skew:
            ex.milliseconds = lambda: int(time.time() * 1000) + skew
        try:
            await ex.load_markets()
            await asyncio.wait_for(ex.watch_orders(), 10)
        finally:
            await ex.close()

    # ccxt 4.5.90 maps the code to its exception, then trips over its own cleanup (it deletes the
    # 'spot' subscription twice) and raises KeyError from it: the mapped exception is its context
    for secret, skew, mapped in (("not-the-secret", 0, ccxt.AuthenticationError),
                                 (a.secret, -120_000, ccxt.InvalidNonce)):
        with pytest.raises((mapped, KeyError)) as info:
            asyncio.run(rejected(secret, skew))
        err: BaseException | None = info.value
        while err is not None and not isinstance(err, mapped):
            err = err.__context__
        assert isinstance(err, mapped), repr(info.value)


def test_execution_reports_follow_a_taker_through_its_fills(base: str) -> None:
    """One order that takes two price levels: NEW, then a TRADE report per fill with the last and
    cumulative figures (the last one FILLED), then the balances as DPG's own API has them."""
    import hashlib
    import hmac
    import json
    import time

    from websockets.sync.client import connect

    taker, a = trader(base, "sweeper@binance.dpg")
    maker = User(base, "levels@binance.dpg")
    maker.credit("ETH", "1")
    taker.credit("USD", "10000")
    for price, qty in (("5000", "0.2"), ("5001", "0.2")):
        assert maker.order(market="ETH/USD", side="sell", price=price, quantity=qty).status_code == 201
    with connect(base.replace("http", "ws") + "/ws-api/v3") as ws:
        params: dict[str, Any] = {"apiKey": a.apiKey, "timestamp": int(time.time() * 1000), "recvWindow": 5000}
        query = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        params["signature"] = hmac.new(a.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        ws.send(json.dumps({"id": "sub", "method": "userDataStream.subscribe.signature", "params": params}))
        assert json.loads(ws.recv(timeout=10)) == {"id": "sub", "status": 200, "result": {"subscriptionId": 0}}
        r = taker.order(market="ETH/USD", side="buy", price="5001", quantity="0.3", client_order_id="sweep-1")
        assert r.status_code == 201, r.text
        events = []
        while not events or events[-1]["e"] != "outboundAccountPosition":
            msg = json.loads(ws.recv(timeout=10))
            assert msg["subscriptionId"] == 0
            events.append(msg["event"])
    reports = [e for e in events if e["e"] == "executionReport"]
    assert [(e["x"], e["X"], e["l"], e["z"], e["L"], e["Z"], e["m"]) for e in reports] == [
        ("NEW", "NEW", "0.0000", "0.0000", "0.00", "0.000000", False),
        ("TRADE", "PARTIALLY_FILLED", "0.2000", "0.2000", "5000.00", "1000.000000", False),
        ("TRADE", "FILLED", "0.1000", "0.3000", "5001.00", "1500.100000", False)]
    oid = r.json()["order_id"]
    fills = {f["trade_id"]: f for f in taker.http.get(f"/api/v1/orders/{oid}").json()["fills"]}
    for e in reports:
        assert (e["s"], e["c"], e["S"], e["o"], e["f"], e["q"], e["p"], e["i"]) == (
            "ETHUSD", "sweep-1", "BUY", "LIMIT", "GTC", "0.3000", "5001.00", oid)
        if e["x"] == "TRADE":
            assert (e["n"], e["N"]) == (fills[e["t"]]["fee"], "ETH")
    assert not reports[-1]["w"]
    position = {b["a"]: (b["f"], b["l"]) for b in events[-1]["B"]}
    assert set(position) == {"ETH", "USD"}
    for asset, (free, locked) in position.items():
        assert tuple(Decimal(x) for x in taker.balance(asset)) == (Decimal(free), Decimal(locked))


def test_async_ccxt_trades_and_agrees_with_the_native_api(base: str) -> None:
    import asyncio

    import ccxt.async_support

    user, sync = trader(base, "async@binance.dpg")
    user.credit("USD", "20000")

    async def main() -> None:
        api = f"{base}/api/v3"
        ex = ccxt.async_support.binance({
            "apiKey": sync.apiKey, "secret": sync.secret,
            "urls": {"api": {"public": api, "private": api, "v1": api, "sapi": api}},
            "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False,
                        "fetchCurrencies": False},
        })
        try:
            markets = await ex.load_markets()
            assert markets["BTC/USD"]["spot"]
            placed = await ex.create_order("BTC/USD", "limit", "buy", 0.25, 40000)
            native = user.http.get(f"/api/v1/orders/{placed['id']}").json()
            got = await ex.fetch_order(placed["id"], "BTC/USD")
            assert (got["status"], Decimal(str(got["amount"])), Decimal(str(got["price"]))) == \
                   ("open", Decimal(native["quantity"]), Decimal(native["price"]))
            assert got["clientOrderId"] == native["client_order_id"]
            bal = await ex.fetch_balance()
            free, locked = user.balance("USD")
            assert (Decimal(str(bal["USD"]["free"])), Decimal(str(bal["USD"]["used"]))) == \
                   (Decimal(free), Decimal(locked)) == (Decimal(10000), Decimal(10000))
            cancelled = await ex.cancel_order(placed["id"], "BTC/USD")
            assert cancelled["status"] == "canceled"
            assert user.http.get(f"/api/v1/orders/{placed['id']}").json()["status"] == "canceled"
            bal = await ex.fetch_balance()
            assert (Decimal(str(bal["USD"]["free"])), Decimal(str(bal["USD"]["used"]))) == \
                   tuple(Decimal(x) for x in user.balance("USD"))
        finally:
            await ex.close()

    asyncio.run(main())
