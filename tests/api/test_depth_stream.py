"""A client following the depth stream rebuilds exactly the book that REST depth returns at the
same sequence number, while others trade."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.api.client import User, served

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("depth"), "dpg_test_depth") as b:
        yield b


class Follower:
    def __init__(self) -> None:
        self.book: dict[str, dict[str, str]] = {"bids": {}, "asks": {}}
        self.seq = -1

    def on(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "snapshot":
            self.book = {side: dict(msg[side]) for side in ("bids", "asks")}
            self.seq = msg["seq"]
        elif msg.get("type") == "update":
            assert msg["prev_seq"] == self.seq, "a gap in the depth stream"
            for side in ("bids", "asks"):
                for price, qty in msg[side]:
                    if Decimal(qty) == 0:
                        self.book[side].pop(price, None)
                    else:
                        self.book[side][price] = qty
            self.seq = msg["seq"]

    def levels(self, side: str) -> list[list[str]]:
        rows = sorted(self.book[side].items(), key=lambda kv: Decimal(kv[0]), reverse=side == "bids")
        return [[p, q] for p, q in rows]


def test_depth_stream_rebuilds_the_rest_book(base: str) -> None:
    traders = [User(base, f"t{i}@depth.dpg") for i in range(3)]
    for t in traders:
        t.credit("USDT", "1000000")
        t.credit("BTC", "50")
    rng = random.Random(42)
    f = Follower()
    with connect(base.replace("http", "ws") + "/ws") as ws:
        ws.send(json.dumps({"op": "subscribe", "channels": ["depth:BTC/USDT"]}))
        mine: list[tuple[User, int]] = []
        for _ in range(160):
            t = rng.choice(traders)
            r = rng.random()
            if r < 0.25 and mine:
                owner, oid = mine.pop(rng.randrange(len(mine)))
                owner.http.delete(f"/api/v1/orders/{oid}", params={"market": "BTC/USDT"})
            elif r < 0.35:
                t.order(market="BTC/USDT", side=rng.choice(["buy", "sell"]), type="market",
                        quantity=str(Decimal(rng.randint(1, 30)) / 10_000))
            else:
                side = rng.choice(["buy", "sell"])
                ticks = 5_000_000 + (rng.randint(-40, 5) if side == "buy" else rng.randint(-5, 40))
                r2 = t.order(market="BTC/USDT", side=side, price=str(Decimal(ticks) / 100),
                             quantity=str(Decimal(rng.randint(1, 40)) / 10_000))
                if r2.status_code == 201 and r2.json()["status"] in ("open", "partially_filled"):
                    mine.append((t, r2.json()["order_id"]))
            while True:  # consume what has arrived so far
                try:
                    f.on(json.loads(ws.recv(timeout=0)))
                except TimeoutError:
                    break
        rest = traders[0].http.get("/api/v1/depth", params={"market": "BTC/USDT", "limit": 1000}).json()
        deadline = time.monotonic() + 20
        while f.seq < rest["seq"] and time.monotonic() < deadline:
            f.on(json.loads(ws.recv(timeout=5)))
    assert f.seq == rest["seq"]
    assert f.levels("bids") == rest["bids"] and f.levels("asks") == rest["asks"]
    assert rest["bids"] and rest["asks"]
