"""The Binance USDⓈ-M dialect's streams, driven by ccxt.pro's own ``binanceusdm`` class (pinned)
pointed at a running DPG: the listen key and its user data stream (watch_orders, watch_positions,
watch_balance equal to the REST answers and DPG's own API), the market streams (watch_order_book
chained from the REST snapshot, watch_trades), and the listen key's refusals."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from dpg.api.ws import REVOKED
from tests.api.client import User, recv_until, served
from tests.api.test_binance_futures import client, indexed, trader
from tests.api.test_sockets import closed

__all__ = ["indexed"]  # the fixture, over this module's exchange
pytestmark = pytest.mark.timeout(300)
SYM = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("fapiws"), "dpg_test_fapiws", DPG_INDEX_EVERY_MS="100") as b:
        yield b


def pro_client(base: str, key: str = "", secret: str = "") -> Any:
    """ccxt.pro's binanceusdm pointed at DPG: the REST of ``client`` and the futures streams."""
    import ccxt.pro

    rest = client(base)
    urls = {**rest.urls["api"], "ws": {"linear": base.replace("http", "ws") + "/fstream/ws"}}
    return ccxt.pro.binanceusdm({
        "apiKey": key, "secret": secret, "exceptions": rest.exceptions, "urls": {"api": urls},
        "options": {"fetchMarkets": {"types": ["linear"]}, "fetchMargins": False, "fetchCurrencies": False,
                    "adjustForTimeDifference": False},
    })


async def follow(watch: Any, into: list[Any]) -> None:
    while True:
        got = await watch()
        into.extend(got if isinstance(got, list) else [got])


async def until(pred: Any, what: str, tries: int = 200) -> None:
    for _ in range(tries):
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(what)


def test_ccxt_pro_watches_futures_orders_positions_and_balance(indexed: str) -> None:
    """A short opened by a limit order that another user fills: watch_orders sees it open then
    filled as REST reports it, watch_positions the short as positionRisk and DPG's own API have
    it, watch_balance the wallet to the base unit."""
    alice, a = trader(indexed, "pro-alice@fapiws.dpg")
    bob, b = trader(indexed, "pro-bob@fapiws.dpg")
    alice.credit("USDT", "10000")
    bob.credit("USDT", "10000")

    async def main() -> None:
        ex = pro_client(indexed, a.apiKey, a.secret)
        loop = asyncio.get_running_loop()
        orders: list[dict[str, Any]] = []
        positions: list[dict[str, Any]] = []
        balances: list[dict[str, Any]] = []
        try:
            await ex.load_markets()
            tasks = [asyncio.ensure_future(follow(lambda: ex.watch_orders(SYM), orders)),
                     asyncio.ensure_future(follow(ex.watch_positions, positions)),
                     asyncio.ensure_future(follow(ex.watch_balance, balances))]
            # streaming once a credit's ACCOUNT_UPDATE arrives
            for _ in range(40):
                await loop.run_in_executor(None, lambda: alice.credit("USDT", "1"))
                for _ in range(10):
                    if balances:
                        break
                    await asyncio.sleep(0.05)
                if balances:
                    break
            assert balances, "the user data stream never started"

            placed = await ex.create_order(SYM, "limit", "sell", 0.01, 50000)

            def seen(status: str) -> dict[str, Any] | None:
                mine = [o for o in orders if o["id"] == placed["id"]]
                return mine[-1] if mine and mine[-1]["status"] == status else None

            await until(lambda: seen("open"), f"no open update: {orders}")
            got = seen("open")
            assert got is not None and (got["filled"], got["remaining"], got["price"], got["side"]) == (
                0, 0.01, 50000, "sell")
            await loop.run_in_executor(None, lambda: b.create_order(SYM, "market", "buy", 0.01))
            await until(lambda: seen("closed"), f"no filled update: {orders}")
            got = seen("closed")
            rest = await loop.run_in_executor(None, lambda: a.fetch_order(placed["id"], SYM))
            assert got is not None
            for k in ("id", "status", "filled", "remaining", "price", "amount", "side", "type", "clientOrderId"):
                assert got[k] == rest[k], (k, got[k], rest[k])
            assert got["average"] == 50000 and got["trades"] and got["trades"][-1]["amount"] == 0.01

            def short() -> dict[str, Any] | None:
                mine = [p for p in positions if p["symbol"] == SYM]
                return mine[-1] if mine and mine[-1]["contracts"] else None

            await until(short, f"no position update: {positions}")
            pos = short()
            [native] = await loop.run_in_executor(None, lambda: alice.http.get("/api/v1/futures/positions").json())
            [risk] = await loop.run_in_executor(None, lambda: a.fetch_positions([SYM]))
            assert pos is not None and pos["side"] == "short" == native["side"] == risk["side"]
            assert Decimal(str(pos["contracts"])) == abs(Decimal(native["size"])) == Decimal("0.01")
            assert Decimal(str(pos["entryPrice"])) == Decimal(native["entry_price"]) == Decimal("50000")
            assert pos["marginMode"] == native["margin_mode"] == "cross"

            def wallet_agrees() -> bool:
                if not balances or "USDT" not in balances[-1]:
                    return False
                free, locked = alice.balance("USDT")
                return Decimal(str(balances[-1]["USDT"]["total"])) == Decimal(free) + Decimal(locked)

            await until(wallet_agrees, f"the wallet differs: {balances[-1:]}")
            for t in tasks:
                t.cancel()
        finally:
            await ex.close()

    asyncio.run(main())


def test_listen_keys_are_bound_to_their_api_key(indexed: str) -> None:
    """POST returns the API key's one listen key (again while it lives), PUT keeps it alive, a key
    of another account cannot keep or close it, DELETE ends its stream (listenKeyExpired), and
    revoking the API key closes its stream."""
    carol, c = trader(indexed, "carol@fapiws.dpg")
    _, d = trader(indexed, "dave@fapiws.dpg")
    http = carol.http

    def call(method: str, key: str | None, **params: str) -> Any:
        headers = {"X-MBX-APIKEY": key} if key is not None else {}
        return http.request(method, "/fapi/v1/listenKey", params=params, headers=headers)

    r = call("POST", c.apiKey)
    assert r.status_code == 200, r.text
    lk = r.json()["listenKey"]
    assert len(lk) == 64 and call("POST", c.apiKey).json() == {"listenKey": lk}
    assert call("PUT", c.apiKey).json() == {"listenKey": lk}
    assert call("PUT", c.apiKey, listenKey=lk).status_code == 200
    assert call("POST", d.apiKey).json()["listenKey"] != lk
    for method in ("PUT", "DELETE"):
        r = call(method, d.apiKey, listenKey=lk)
        assert r.status_code == 400 and r.json() == {"code": -1125, "msg": "This listenKey does not exist."}
    assert call("POST", None).json()["code"] == -2014
    assert call("POST", "no-such-key").json()["code"] in (-2014, -2015)
    wsbase = indexed.replace("http", "ws")
    with pytest.raises(InvalidStatus), connect(f"{wsbase}/fstream/private/ws?listenKey={'0' * 64}"):
        pass  # the handshake is refused
    with connect(f"{wsbase}/fstream/ws/{lk}", open_timeout=10) as ws:
        carol.credit("USDT", "5")
        [update] = recv_until(ws, lambda m: m.get("e") == "ACCOUNT_UPDATE")[-1:]
        free, locked = carol.balance("USDT")
        assert update["a"]["m"] == "DEPOSIT"
        assert Decimal(update["a"]["B"][0]["wb"]) == Decimal(free) + Decimal(locked) == Decimal("5")
        assert call("DELETE", c.apiKey).json() == {}
        got = recv_until(ws, lambda m: m.get("e") == "listenKeyExpired")
        assert got[-1]["listenKey"] == lk
    assert call("PUT", c.apiKey).json()["code"] == -1125
    fresh = call("POST", c.apiKey).json()["listenKey"]
    assert fresh != lk
    with connect(f"{wsbase}/fstream/private/ws?listenKey={fresh}", open_timeout=10) as ws:
        carol.credit("USDT", "5")
        recv_until(ws, lambda m: m.get("e") == "ACCOUNT_UPDATE")
        assert http.delete(f"/api/v1/api-keys/{c.apiKey}").status_code == 200  # revoking the API key
        assert closed(ws) == (REVOKED, "AUTH_REVOKED: the API key was revoked")


def test_mark_price_and_kline_streams(indexed: str) -> None:
    """markPriceUpdate as the mark moves (equal to DPG's own API once it settles), kline as trades
    land, and a spot market's stream refused on the futures streams."""
    u1, e1 = trader(indexed, "mark1@fapiws.dpg")
    u2, e2 = trader(indexed, "mark2@fapiws.dpg")
    for u in (u1, u2):
        u.credit("USDT", "100000")
    wsbase = indexed.replace("http", "ws")
    with connect(f"{wsbase}/fstream/stream?streams=btcusdt@markPrice/btcusdt@kline_1m", open_timeout=10) as ws:
        # a new spot bid moves BTC-PERP's index (the spot mid) to 50,005, a trade there its last price:
        # its mark moves, and the last markPriceUpdate is the mark DPG's own API shows
        mm = User(indexed, "spot-bidder@fapiws.dpg")
        mm.credit("USDT", "10000")
        assert mm.order(market="BTC/USDT", side="buy", price="50000", quantity="0.1").status_code == 201
        e2.create_order(SYM, "limit", "sell", 0.002, 50005)
        e1.create_order(SYM, "limit", "buy", 0.002, 50005)
        got = recv_until(ws, lambda m: m.get("stream") == "btcusdt@markPrice")
        while True:  # until the marks settle
            try:
                got.append(json.loads(ws.recv(timeout=1.5)))
            except TimeoutError:
                break
        mark = [m["data"] for m in got if m.get("stream") == "btcusdt@markPrice"][-1]
        assert (mark["e"], mark["s"]) == ("markPriceUpdate", "BTCUSDT")
        native = next(r for r in mm.http.get("/api/v1/futures/markets").json() if r["market"] == "BTC-PERP")
        assert (mark["p"], mark["i"]) == (native["mark_price"], native["index_price"])
        assert mark["r"] == native["funding_rate"] and mark["T"] == native["next_funding_time"]
        e2.create_order(SYM, "limit", "sell", 0.002, 50010)
        e1.create_order(SYM, "market", "buy", 0.001)
        got = recv_until(ws, lambda m: m.get("stream") == "btcusdt@kline_1m" and m["data"]["k"]["c"] == "50010.00")
        assert got[-1]["data"]["k"]["i"] == "1m" and got[-1]["data"]["s"] == "BTCUSDT"
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusd@depth"], "id": 3}))  # a spot market
        refused = recv_until(ws, lambda m: m.get("id") == 3)[-1]
        assert refused["error"]["code"] == 2


def test_ccxt_pro_watches_the_futures_book_and_trades(indexed: str) -> None:
    """watch_order_book applies depthUpdate diffs chained by ``pu`` from the REST snapshot's
    lastUpdateId and stays equal to /fapi/v1/depth; watch_trades sees a trade; the raw streams
    carry markPriceUpdate and kline."""
    u1, e1 = trader(indexed, "book1@fapiws.dpg")
    u2, e2 = trader(indexed, "book2@fapiws.dpg")
    for u in (u1, u2):
        u.credit("USDT", "1000000")

    def rest_depth() -> dict[str, Any]:
        got: dict[str, Any] = u1.http.get("/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 1000}).json()
        return got

    async def main() -> None:
        ex = pro_client(indexed)
        loop = asyncio.get_running_loop()
        rng = random.Random(7)
        try:
            await ex.watch_order_book(SYM)
            for step in range(20):
                side = rng.choice(["buy", "sell"])
                px = 50000 + rng.randint(-20, 20) * 0.5
                who = e1 if step % 2 else e2
                await loop.run_in_executor(None, lambda w=who, s=side, p=px: w.create_order(
                    SYM, "limit", s, rng.randint(1, 20) / 1000, p))
                rest = await loop.run_in_executor(None, rest_depth)
                deadline = loop.time() + 10
                while ex.orderbooks[SYM]["nonce"] < rest["lastUpdateId"]:
                    assert loop.time() < deadline, (ex.orderbooks[SYM]["nonce"], rest["lastUpdateId"])
                    await asyncio.sleep(0.01)
                ob = ex.orderbooks[SYM]
                assert ob["nonce"] == rest["lastUpdateId"]
                assert [list(x) for x in ob["bids"]] == [[float(p), float(q)] for p, q in rest["bids"]]
                assert [list(x) for x in ob["asks"]] == [[float(p), float(q)] for p, q in rest["asks"]]
            await loop.run_in_executor(None, lambda: e1.create_order(SYM, "limit", "buy", 0.002, 49900))
            await loop.run_in_executor(None, lambda: e2.create_order(SYM, "limit", "sell", 0.002, 50100))
            trades_task = asyncio.ensure_future(ex.watch_trades(SYM))
            await asyncio.sleep(0.5)
            await loop.run_in_executor(None, lambda: e2.create_order(SYM, "market", "sell", 0.001))
            trades = await asyncio.wait_for(trades_task, 10)
            assert trades and trades[-1]["symbol"] == SYM and trades[-1]["side"] == "sell"
        finally:
            await ex.close()

    asyncio.run(main())


def test_ccxt_maps_a_listen_key_refusal(indexed: str) -> None:
    _, e = trader(indexed, "erin@fapiws.dpg")
    wrong = client(indexed)
    wrong.apiKey, wrong.secret = "A" * 64, "x"
    with pytest.raises(ccxt.AuthenticationError):
        wrong.fapiPrivatePostListenKey()
    assert len(e.fapiPrivatePostListenKey()["listenKey"]) == 64

