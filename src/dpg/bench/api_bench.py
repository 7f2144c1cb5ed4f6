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
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from dpg.bench.durable_bench import scratch

ADMIN = "bench-admin"
PASSWORD = "bench-password-1"  # noqa: S105 (throw-away bench users)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _exchange(url: str, data_dir: str, src: str | None = None) -> Iterator[int]:
    """``dpg up`` on a free port; with ``src``, the exchange of that source tree (another checkout's
    ``src/``, for a side-by-side comparison under the same load generator)."""
    port = _free_port()
    env = {**os.environ, "DPG_DATABASE_URL": url, "DPG_ADMIN_TOKEN": ADMIN, "DPG_DATA_DIR": data_dir,
           "DPG_RATE_IP": "1000000", "DPG_RATE_KEY": "1000000", "DPG_LOG_LEVEL": "WARNING"}
    if src:
        env["PYTHONPATH"] = src
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


TRADES_CHANNEL = b'"trades:ETH/USDT"'
LAST_TRADE = b'"quantity":"0.0200"'
TIME_FIELD = re.compile(rb'"time":(\d+)')


class _Share:
    """One client process's subscribers: the delays they saw, how many are subscribed and done."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.subscribed = 0
        self.finished = 0
        self.delays: list[float] = []
        loop = asyncio.get_running_loop()
        self.all_subscribed: asyncio.Future[None] = loop.create_future()
        self.all_finished: asyncio.Future[None] = loop.create_future()

    def message(self, sub: _Subscriber, payload: bytes, now_ms: float) -> None:
        if not sub.subscribed:  # the answer to the subscription
            sub.subscribed = True
            if not sub.ready.done():
                sub.ready.set_result(None)
            self.subscribed += 1
            if self.subscribed == self.n and not self.all_subscribed.done():
                self.all_subscribed.set_result(None)
            return
        if TRADES_CHANNEL not in payload:
            return
        m = TIME_FIELD.search(payload)
        if m is not None:
            self.delays.append(now_ms - int(m.group(1)))
        if LAST_TRADE in payload:
            self.done(sub)

    def done(self, sub: _Subscriber) -> None:
        if sub.finished:
            return
        sub.finished = True
        self.finished += 1
        if sub.transport is not None:
            sub.transport.close()
        if not sub.ready.done():
            sub.ready.set_exception(ConnectionError("closed before it subscribed"))
        if self.finished == self.n and not self.all_finished.done():
            self.all_finished.set_result(None)


class _Subscriber(asyncio.Protocol):
    """A WebSocket subscriber to trades:ETH/USDT as a bare protocol: the handshake, one masked
    subscribe frame, then unmasked frames parsed from the stream; a message's arrival time is taken
    once per read. (Far cheaper than a stream reader per socket: at 10,000 subscribers the clients'
    own work would otherwise be most of what is measured.)"""

    def __init__(self, share: _Share) -> None:
        self.share = share
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.subscribed = False
        self.finished = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # subscribed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        import base64

        self.transport = transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        now = time.time() * 1000
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in buf[:buf.find(b"\r\n")]:
                raise ConnectionError(f"no websocket upgrade: {bytes(buf[:80])!r}")
            del buf[:end + 4]
            self.upgraded = True
            assert self.transport is not None
            self.transport.write(_masked(json.dumps({"op": "subscribe", "channels": ["trades:ETH/USDT"]})))
        while len(buf) >= 2:
            n = buf[1] & 0x7F
            head = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, head = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, head = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < head + n:
                return
            opcode = buf[0] & 0x0F
            payload = bytes(buf[head:head + n])
            del buf[:head + n]
            if opcode == 0x8:  # closed by the server
                self.share.done(self)
                return
            if opcode == 0x9:  # the server's keepalive ping: unanswered, it closes the connection
                assert self.transport is not None
                self.transport.write(_masked(payload, 0xA))
                continue
            self.share.message(self, payload, now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.share.done(self)


def _masked(data: str | bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (RFC 6455): text, or ``opcode``'s (a pong is 0xA)."""
    payload = data.encode() if isinstance(data, str) else data
    mask = os.urandom(4)
    n = len(payload)
    head = bytes((0x80 | opcode, 0x80 | n)) if n < 126 else bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _subscribers(port: int, n: int, ready: Any, results: Any) -> None:
    """One client process's share of the fan-out: ``n`` WebSocket clients on trades:ETH/USDT,
    at most a hundred at a time between connecting and subscribed (more would overflow the server's
    accept queue, and a dropped connection attempt is retried only after a second or more)."""
    share = _Share(n)
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(100)

    async def connect() -> None:
        async with gate:
            _, sub = await loop.create_connection(lambda: _Subscriber(share), "127.0.0.1", port)
            await sub.ready

    await asyncio.gather(*(connect() for _ in range(n)))
    await asyncio.wait_for(share.all_subscribed, 120)
    ready.set()
    await asyncio.wait_for(share.all_finished, 600)
    results.put(share.delays)


def _subscriber_process(port: int, n: int, ready: Any, results: Any) -> None:
    import uvloop

    from dpg.api.server import raise_fd_limit

    raise_fd_limit()
    uvloop.run(_subscribers(port, n, ready, results))


async def _fanout(port: int, users: list[tuple[int, str]], subscribers: int, trades: int,
                  processes: int = 4) -> dict[str, Any]:
    """Subscribers spread over ``processes`` client processes, so that the clients' own work
    (parsing every frame) runs beside the server rather than in one interpreter. Trades come one
    every 0.1 s, or slower for many subscribers (one per 20,000 deliveries a second), so that each
    measures the delay of one fan-out, not a backlog."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    shares = [subscribers // processes + (1 if i < subscribers % processes else 0) for i in range(processes)]
    readies = [ctx.Event() for _ in shares]
    procs = [ctx.Process(target=_subscriber_process, args=(port, n, r, results), daemon=True)
             for n, r in zip(shares, readies, strict=True) if n]
    for p in procs:
        p.start()
    loop = asyncio.get_running_loop()
    for r, n in zip(readies, shares, strict=True):
        if n and not await loop.run_in_executor(None, r.wait, 300):
            raise TimeoutError("the subscribers did not connect")
    pace = max(0.1, subscribers / 20_000)
    c = await Conn.open(port)
    (_, maker), (_, taker) = users[0], users[1]
    for i in range(trades):
        qty = "0.0200" if i == trades - 1 else "0.0100"
        for token, side in ((maker, "sell"), (taker, "buy")):  # a market nobody else trades in
            await c.request("POST", "/api/v1/orders", json.dumps({"market": "ETH/USDT", "side": side, "price": "3000",
                                                                   "quantity": qty}).encode(),
                            f"Authorization: Bearer {token}\r\n")
        await asyncio.sleep(pace)
    c.close()
    delays: list[float] = []
    for _ in procs:
        delays.extend(await loop.run_in_executor(None, results.get, True, 600))
    for p in procs:
        p.join(30)
    return {"bench": "ws_fanout", "subscribers": subscribers, "client_processes": len(procs), "trades": trades,
            "trade_every_s": pace, "messages": len(delays), "delay_p50_ms": _pct(delays, 0.5),
            "delay_p99_ms": _pct(delays, 0.99), "delay_max_ms": _pct(delays, 1.0)}


def run(rates: list[int], seconds: float, subscribers: int, src: str | None = None) -> Iterator[dict[str, Any]]:
    """Yields each line as soon as it is measured (``src``: the exchange's source tree, see ``_exchange``)."""
    import tempfile

    import uvloop

    with scratch() as url, tempfile.TemporaryDirectory() as data_dir, _exchange(url, data_dir, src) as port:
        loop = uvloop.new_event_loop()  # the load generator's own cost kept low: it shares the machine
        try:
            users = loop.run_until_complete(_setup_users(port, 20))
            rng = random.Random(3)
            for rate in rates:
                yield {**loop.run_until_complete(_orders_at(port, users, rate, seconds, rng)), **_label(src)}
            if subscribers:
                yield {**loop.run_until_complete(_fanout(port, users, subscribers, 50)), **_label(src)}
        finally:
            loop.close()


def _label(src: str | None) -> dict[str, str]:
    return {"exchange": src} if src else {}
