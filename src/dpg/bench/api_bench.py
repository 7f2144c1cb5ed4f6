"""``dpg bench api``: orders over HTTP at rising fixed rates, and market-data fan-out over WebSocket.

The exchange runs as ``dpg up`` in its own process on a scratch database. The load generator is
open-loop: request i is sent at t0 + i/rate whether or not earlier ones were answered, over a pool
of keep-alive connections with a minimal HTTP/1.1 client (so the client costs little CPU on the
same machine). Fan-out: N WebSocket clients subscribe to trades; each trade message's delay is the
time it arrives minus the trade's engine time stamp.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dpg.bench.durable_bench import scratch

ADMIN = "bench-admin"
PASSWORD = "bench-password-1"  # noqa: S105 (throw-away bench users)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _exchange(url: str, data_dir: str) -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "DPG_DATABASE_URL": url, "DPG_ADMIN_TOKEN": ADMIN, "DPG_DATA_DIR": data_dir,
           "DPG_RATE_IP": "1000000", "DPG_RATE_KEY": "1000000", "DPG_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "dpg.cli", "up", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "DPG is up" not in line:
        proc.kill()
        raise RuntimeError(f"the exchange did not start: {line!r}")
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


class Conn:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @staticmethod
    async def open(port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return Conn(r, w)

    async def request(self, method: str, path: str, body: bytes = b"", headers: str = "") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n"
                f"Content-Type: application/json\r\n{headers}\r\n")
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        data = await self.reader.readexactly(length)
        return int(status_line.split()[1]), data

    def close(self) -> None:
        self.writer.close()


async def _setup_users(port: int, n: int) -> list[tuple[int, str]]:
    c = await Conn.open(port)
    users = []
    for i in range(n):
        email = f"bench{i}@bench.dpg"
        creds = json.dumps({"email": email, "password": PASSWORD}).encode()
        await c.request("POST", "/api/v1/auth/signup", creds)
        _, raw = await c.request("POST", "/api/v1/auth/login", creds)
        login = json.loads(raw)
        uid, token = login["user_id"], login["token"]
        for asset, amount in (("USDT", "100000000"), ("BTC", "10000"), ("ETH", "10000")):
            await c.request("POST", "/api/v1/admin/credits", json.dumps(
                {"user_id": uid, "asset": asset, "amount": amount, "reference": f"bench-{uid}-{asset}"}).encode(),
                f"X-DPG-Admin-Token: {ADMIN}\r\n")
        users.append((uid, token))
    c.close()
    return users


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))], 3) if xs else 0.0


async def _orders_at(port: int, users: list[tuple[int, str]], rate: int, seconds: float,
                     rng: random.Random) -> dict[str, Any]:
    conns = [await Conn.open(port) for _ in range(64)]
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for c in conns:
        idle.put_nowait(c)
    lat: list[float] = []
    errors = 0
    n = int(rate * seconds)
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.05

    async def one(i: int) -> None:
        nonlocal errors
        delay = t0 + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        start = time.perf_counter()
        conn = await idle.get()
        token = users[i % len(users)][1]
        side = "buy" if i % 2 else "sell"
        ticks = 5_000_000 + (-rng.randint(1, 500) if side == "buy" else rng.randint(1, 500))
        body = json.dumps({"market": "BTC/USDT", "side": side, "price": f"{ticks // 100}.{ticks % 100:02d}",
                           "quantity": "0.0010"}).encode()
        try:
            status, _ = await conn.request("POST", "/api/v1/orders", body, f"Authorization: Bearer {token}\r\n")
            if status != 201:
                errors += 1
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
            conn = await Conn.open(port)
        idle.put_nowait(conn)
        lat.append((time.perf_counter() - start) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    took = time.perf_counter() - began
    for c in conns:
        c.close()
    return {"bench": "api_orders", "rate_per_s": rate, "sent": n, "achieved_per_s": round(n / took),
            "p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99), "errors": errors}


async def _fanout(port: int, users: list[tuple[int, str]], subscribers: int, trades: int) -> dict[str, Any]:
    import websockets

    delays: list[float] = []
    received = 0
    ready = 0
    all_ready = asyncio.Event()

    async def subscriber() -> None:
        nonlocal received, ready
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_queue=None) as ws:
            await ws.send(json.dumps({"op": "subscribe", "channels": ["trades:ETH/USDT"]}))
            await ws.recv()
            ready += 1
            if ready == subscribers:
                all_ready.set()
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("channel") == "trades:ETH/USDT":
                    delays.append(time.time() * 1000 - msg["data"]["time"])
                    received += 1
                    if msg["data"]["quantity"] == "0.0200":
                        return

    tasks = [asyncio.create_task(subscriber()) for _ in range(subscribers)]
    await asyncio.wait_for(all_ready.wait(), 120)
    c = await Conn.open(port)
    (_, maker), (_, taker) = users[0], users[1]
    for i in range(trades):
        last = i == trades - 1
        qty = "0.0200" if last else "0.0100"
        for token, side in ((maker, "sell"), (taker, "buy")):  # a market nobody else trades in
            await c.request("POST", "/api/v1/orders", json.dumps({"market": "ETH/USDT", "side": side, "price": "3000",
                                                                   "quantity": qty}).encode(),
                            f"Authorization: Bearer {token}\r\n")
        await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 120)
    c.close()
    return {"bench": "ws_fanout", "subscribers": subscribers, "trades": trades, "messages": received,
            "delay_p50_ms": _pct(delays, 0.5), "delay_p99_ms": _pct(delays, 0.99), "delay_max_ms": _pct(delays, 1.0)}


def run(rates: list[int], seconds: float, subscribers: int) -> Iterator[dict[str, Any]]:
    """Yields each line as soon as it is measured."""
    import tempfile

    with scratch() as url, tempfile.TemporaryDirectory() as data_dir, _exchange(url, data_dir) as port:
        loop = asyncio.new_event_loop()
        try:
            users = loop.run_until_complete(_setup_users(port, 20))
            rng = random.Random(3)
            for rate in rates:
                yield loop.run_until_complete(_orders_at(port, users, rate, seconds, rng))
            yield loop.run_until_complete(_fanout(port, users, subscribers, 50))
        finally:
            loop.close()
