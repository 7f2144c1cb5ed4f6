"""Several processes over the real Redis: one engine process and two API processes. An order entered
on one API process is seen on the other's WebSocket, and both answer the same state."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.api.client import ADMIN, Process, User, free_port, recv_until

pytestmark = pytest.mark.timeout(300)

REDIS = "redis://127.0.0.1:6379/0"



def test_order_on_one_api_process_reaches_the_others_websocket(pg_url: str, tmp_path: Path) -> None:
    env = {"DPG_DATABASE_URL": pg_url, "DPG_REDIS_URL": REDIS, "DPG_REDIS_PREFIX": f"dpgtest{secrets.token_hex(4)}",
           "DPG_ADMIN_TOKEN": ADMIN, "DPG_DATA_DIR": str(tmp_path), "DPG_CUSTODY": "0"}  # the bus, not the chains
    engine = Process(["engine"], env, "DPG engine is up")
    ports = [free_port(), free_port()]
    apis = []
    try:
        apis = [Process(["api", "--port", str(p)], env, "DPG API is up") for p in ports]
        one, two = (f"http://127.0.0.1:{p}" for p in ports)
        alice, bob = User(one, "alice@multi.dpg"), User(two, "bob@multi.dpg")
        alice.credit("USDT", "100000")
        bob.credit("BTC", "3")
        with connect(two.replace("http", "ws") + "/ws") as ws_two:
            ws_two.send(json.dumps({"op": "subscribe", "channels": ["depth:BTC/USDT", "trades:BTC/USDT"]}))
            snap = recv_until(ws_two, lambda m: m.get("type") == "snapshot")[-1]
            assert snap["bids"] == [] and snap["asks"] == []
            ws_two.send(json.dumps({"op": "auth", "token": bob.token}))
            recv_until(ws_two, lambda m: m.get("op") == "auth")
            ws_two.send(json.dumps({"op": "subscribe", "channels": ["fills"]}))

            r = alice.order(market="BTC/USDT", side="buy", price="60000", quantity="1.5", client_order_id="m-1")
            assert r.status_code == 201, r.text
            upd = recv_until(ws_two, lambda m: m.get("channel") == "depth:BTC/USDT" and m.get("type") == "update")[-1]
            assert upd["bids"] == [["60000.00", "1.5000"]]

            # bob trades on the other process, against alice's order
            r = bob.order(market="BTC/USDT", side="sell", type="market", quantity="0.5")
            assert r.status_code == 201 and r.json()["filled"] == "0.5000", r.text
            got = recv_until(ws_two, lambda m: m.get("channel") == "fills")
            trades = [m for m in got if m.get("channel") == "trades:BTC/USDT"]
            assert trades and trades[-1]["data"]["price"] == "60000.00"
        # both processes answer the same state
        for base in (one, two):
            depth = User(base, f"viewer{base[-5:]}@multi.dpg").http.get("/api/v1/depth",
                                                                         params={"market": "BTC/USDT"}).json()
            assert depth["bids"] == [["60000.00", "1.0000"]]
        assert alice.http.get("/api/v1/orders/by-client-id/m-1").json()["filled"] == "0.5000"
    finally:
        for p in apis:
            p.stop()
        engine.stop()


def test_an_api_process_tells_of_an_engine_outage_and_refuses_commands_at_once(pg_url: str, tmp_path: Path) -> None:
    import httpx

    from tests.api.client import until

    env = {"DPG_DATABASE_URL": pg_url, "DPG_REDIS_URL": REDIS, "DPG_REDIS_PREFIX": f"dpgtest{secrets.token_hex(4)}",
           "DPG_ADMIN_TOKEN": ADMIN, "DPG_DATA_DIR": str(tmp_path), "DPG_CUSTODY": "0"}
    engine = Process(["engine"], env, "DPG engine is up")
    port = free_port()
    api = Process(["api", "--port", str(port)], env, "DPG API is up")
    base = f"http://127.0.0.1:{port}"
    try:
        user = User(base, "dora@multi.dpg")
        user.credit("USDT", "1000")
        assert httpx.get(f"{base}/api/v1/health").json()["ok"] is True

        engine.stop()
        assert any("DPG engine stopped at seq" in line for line in engine.lines), engine.lines[-5:]
        down = until("health to tell of the outage", lambda: (h := httpx.get(f"{base}/api/v1/health")).status_code
                     == 503 and h.json(), 15)
        assert down["ok"] is False and "engine process" in down["reason"], down
        r = user.order(market="BTC/USDT", side="buy", price="10000", quantity="0.01", client_order_id="outage-1")
        assert r.status_code == 503 and r.json()["code"] == "UNAVAILABLE", r.text
        assert "not sent" in r.json()["reason"]  # refused at once, never queued to run later
        assert any("event=engine_unreachable" in line for line in api.lines), api.lines[-5:]

        engine = Process(["engine"], env, "DPG engine is up")
        until("health to be back", lambda: httpx.get(f"{base}/api/v1/health").status_code == 200, 15)
        assert any("event=engine_back" in line for line in api.lines), api.lines[-5:]
        r = user.order(market="BTC/USDT", side="buy", price="10000", quantity="0.01", client_order_id="outage-2")
        assert r.status_code == 201, r.text
        assert user.http.get("/api/v1/orders/by-client-id/outage-1").status_code == 404  # never executed
    finally:
        api.stop()
        engine.stop()


def test_an_api_replica_lists_the_markets_the_engine_lists_after_it_started(pg_url: str, tmp_path: Path) -> None:
    """An API process recovers its replica once, then follows the feed: a perpetual listed by the
    engine after that (at its next start, or by any journaled listing) reaches the replica through
    the listing its event carries, over the bus's own encoding, and trades there as on the engine."""
    from dpg.bus.wire import pack_batch, unpack_batch
    from dpg.config import Settings
    from dpg.core.commands import Credit, IndexPrice, OpenAccount, PlaceOrder
    from dpg.core.engine import Engine
    from dpg.core.genesis import GENESIS, PERPS
    from dpg.core.model import OrderStatus, OrderType, Side
    from dpg.system.runtime import build_runtime

    live, replica = Engine(), Engine()
    seq = 0
    before = [*GENESIS, OpenAccount(1), OpenAccount(2), Credit(1, "USDT", 10**12, "a"), Credit(2, "USDT", 10**12, "b")]
    for cmd in before:
        seq += 1
        live.apply(cmd, seq, seq)
        replica.apply(cmd, seq, seq)  # the replica as recovered from the journal at this seq
    settings = Settings.from_env({"DPG_DATA_DIR": str(tmp_path), "DPG_DATABASE_URL": pg_url, "DPG_ADMIN_TOKEN": ADMIN})
    rt, _pool = build_runtime(pg_url, settings, None, replica)  # type: ignore[arg-type]  # no bus: it only follows
    assert [m.symbol for m in rt.markets] == [m.symbol for m in live.markets] and not rt.futures.perps

    after = [*PERPS, IndexPrice("BTC-PERP", 50_000 * 10**6),
             PlaceOrder(1, "BTC-PERP", Side.SELL, OrderType.LIMIT, 50_000 * 10**6, 10**7, client_id="s"),
             PlaceOrder(2, "BTC-PERP", Side.BUY, OrderType.LIMIT, 50_000 * 10**6, 4 * 10**6, client_id="b")]
    batch = []
    for cmd in after:
        seq += 1
        batch.append((seq, seq, live.apply(cmd, seq, seq)))
    rt.on_batch(unpack_batch(pack_batch(batch)))

    def spec(e: Engine) -> list[tuple[object, ...]]:
        return [(m.symbol, m.kind, m.base.symbol, m.quote.symbol, m.tick_size, m.lot_size, m.min_notional,
                 m.maker_fee_ppm, m.taker_fee_ppm, m.index) for m in e.markets]
    assert spec(replica) == spec(live) and [m.symbol for m in live.markets][-2:] == ["BTC-PERP", "ETH-PERP"]
    assert replica.fut.perps.keys() == live.fut.perps.keys()
    for mi, pm in live.fut.perps.items():
        assert replica.fut.perps[mi].tiers == pm.tiers and replica.fut.perps[mi].interval == pm.interval
    assert rt.trading.market("BTCUSDT_PERP").symbol == "BTC-PERP"
    assert [pv.market.symbol for pv in rt.futures.perp_markets()] == ["BTC-PERP", "ETH-PERP"]
    assert rt.md.depth("BTC-PERP")["asks"] == [[50_000 * 10**6, 6 * 10**6]]
    sell = rt.views.order_by_client_id(1, "s")
    assert sell is not None and sell.status == OrderStatus.PARTIALLY_FILLED and sell.filled == 4 * 10**6
    assert rt.futures.positions[(2, live.market_by_symbol["BTC-PERP"].index)].size == 4 * 10**6
