"""Test clients for a running DPG: start ``dpg up`` (or the multi-process pair) as a user would,
then talk HTTP and WebSocket to it."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyotp

ROOT = Path(__file__).parents[2]
ADMIN = "test-admin-token"
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A dpg subprocess whose output is collected; ready when a line contains ``ready``."""

    def __init__(self, args: list[str], env: dict[str, str], ready: str, timeout: float = 120) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "dpg.cli", *args], cwd=ROOT, env={**os.environ, **env},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        seen = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                if ready in line:
                    seen.set()

        threading.Thread(target=read, daemon=True).start()
        if not seen.wait(timeout):
            self.stop()
            raise RuntimeError("did not start:\n" + "".join(self.lines[-40:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


STARTED: dict[str, str] = {}  # base URL of a running exchange() -> its start line


@contextmanager
def exchange(db_url: str, tmp: Path, **env: str) -> Iterator[str]:
    """``dpg up`` on ``db_url``; yields the base URL. Without its chains unless ``DPG_CUSTODY="1"``.
    ``STARTED[base]`` is its start line while it runs."""
    port = free_port()
    p = Process(["up", "--port", str(port)], {"DPG_DATABASE_URL": db_url, "DPG_ADMIN_TOKEN": ADMIN,
                                              "DPG_DATA_DIR": str(tmp), "DPG_CUSTODY": "0", **env}, "DPG is up")
    base = f"http://127.0.0.1:{port}"
    STARTED[base] = next(line for line in p.lines if "DPG is up" in line)
    try:
        yield base
    finally:
        STARTED.pop(base, None)
        p.stop()


@contextmanager
def served(pg_server: str, tmp: Path, prefix: str, **env: str) -> Iterator[str]:
    """``dpg up`` on a scratch database of ``pg_server`` (dropped afterwards); yields the base URL."""
    from dpg.store import db

    url = db.create_scratch(pg_server, prefix)
    try:
        with exchange(url, tmp, **env) as base:
            yield base
    finally:
        db.drop(url)


def recv_until(ws: Any, pred: Any, timeout: float = 15) -> list[dict[str, Any]]:
    """WebSocket messages until one satisfies ``pred`` (all of them, that one last)."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        got.append(msg)
        if pred(msg):
            return got
    raise TimeoutError(got)


class User:
    """A signed-up, logged-in user with an HTTP client."""

    def __init__(self, base: str, email: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=30)
        r = self.http.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        self.id: int = r.json()["user_id"]
        self.email = email
        self.login()

    def login(self, totp: str | None = None) -> httpx.Response:
        r = self.http.post("/api/v1/auth/login", json={"email": self.email, "password": PASSWORD, "totp": totp})
        if r.status_code == 200:
            self.token = r.json()["token"]
            self.http.headers["authorization"] = f"Bearer {self.token}"
        return r

    def verify_email(self, db_url: str) -> None:
        """Follow the verification link mailed at sign-up (read from the exchange's outbox)."""
        token = mailed_token(db_url, self.email, "verify-email")
        r = self.http.post("/api/v1/auth/verify-email", json={"token": token})
        assert r.status_code == 200, r.text

    def credit(self, asset: str, amount: str, ref: str | None = None) -> dict[str, Any]:
        r = self.http.post("/api/v1/admin/credits", headers={"x-dpg-admin-token": ADMIN},
                           json={"user_id": self.id, "asset": asset, "amount": amount,
                                 "reference": ref or f"test-{self.id}-{asset}-{time.time_ns()}"})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def order(self, **body: Any) -> httpx.Response:
        return self.http.post("/api/v1/orders", json=body)

    def balance(self, asset: str) -> tuple[str, str]:
        for b in self.http.get("/api/v1/balances").json():
            if b["asset"] == asset:
                return b["available"], b["locked"]
        raise KeyError(asset)


def mailed_token(db_url: str, to: str, page: str, timeout: float = 30) -> str:
    """The token of the newest link to ``page`` ("verify-email", "reset-password") mailed to ``to``,
    read from the outbox of the exchange's database (a reset mail is written after the answer)."""

    def newest() -> str | None:
        with psycopg.connect(db_url) as conn:
            rows = conn.execute("SELECT body FROM outbox WHERE to_address = %s ORDER BY id DESC", (to,)).fetchall()
        for (text,) in rows:
            found = re.search(rf"/{page}\?token=([A-Za-z0-9_-]+)", text)
            if found:
                return found.group(1)
        return None

    token: str = until(f"a {page} link mailed to {to}", newest, timeout)
    return token


class Codes:
    """TOTP codes of one secret, each of a later time step than the one before, since the exchange
    accepts a step once: the current step's code, then the next step's (accepted a step early);
    past that it waits for the clock."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.last = -1

    def next(self) -> str:
        step = max(int(time.time() // 30), self.last + 1)
        while step > int(time.time() // 30) + 1:
            time.sleep(0.2)
        self.last = step
        return self.totp.generate_otp(step)


def sign(secret: str, ts: int, method: str, path: str, body: bytes = b"", recv_window: int | None = None) -> str:
    """The native signature: HMAC-SHA256 of "<ts>\\n[<recv_window>\\n]<METHOD>\\n<path>\\n<body>"."""
    head = f"{ts}" if recv_window is None else f"{ts}\n{recv_window}"
    return hmac.new(secret.encode(), f"{head}\n{method}\n{path}\n".encode() + body, hashlib.sha256).hexdigest()


def signed(client: httpx.Client, key: str, secret: str, method: str, path: str, body: Any = None,
           ts: int | None = None, signature: str | None = None, recv_window: int | None = None) -> httpx.Response:
    raw = json.dumps(body).encode() if body is not None else b""
    ts = ts if ts is not None else int(time.time() * 1000)
    headers = {"x-dpg-apikey": key, "x-dpg-timestamp": str(ts),
               "x-dpg-signature": signature or sign(secret, ts, method, path, raw, recv_window)}
    if recv_window is not None:
        headers["x-dpg-recv-window"] = str(recv_window)
    if raw:
        headers["content-type"] = "application/json"
    return client.request(method, path, content=raw or None, headers=headers)


def wait_projected(user: User, seq: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if user.http.get("/api/v1/ledger?limit=1").json()["projected_seq"] >= seq:
            return
        time.sleep(0.05)
    raise TimeoutError("projections did not catch up")


def until(what: str, check: Callable[[], Any], timeout: float = 60, tick: Callable[[], None] | None = None) -> Any:
    """``check()``'s first truthy answer, asked every 0.1 s (``tick()`` between tries); TimeoutError(``what``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        if tick is not None:
            tick()
        time.sleep(0.1)
    raise TimeoutError(what)


def dpg_cli(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The ``dpg`` command with ``env`` over this environment; its output captured."""
    return subprocess.run([sys.executable, "-m", "dpg.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=timeout, check=False)


REDIS = "redis://127.0.0.1:6379/0"


@contextmanager
def cluster(db_url: str, tmp: Path, apis: int = 2) -> Iterator[list[str]]:
    """The multi-process mode on ``db_url`` over the real Redis (a prefix of its own): ``dpg engine``
    without its chains and ``apis`` processes ``dpg api``; yields the API processes' base URLs."""
    import secrets

    env = {"DPG_DATABASE_URL": db_url, "DPG_REDIS_URL": REDIS, "DPG_REDIS_PREFIX": f"dpgtest{secrets.token_hex(4)}",
           "DPG_ADMIN_TOKEN": ADMIN, "DPG_DATA_DIR": str(tmp), "DPG_CUSTODY": "0"}
    engine = Process(["engine"], env, "DPG engine is up")
    started: list[Process] = []
    try:
        ports = [free_port() for _ in range(apis)]
        for port in ports:
            started.append(Process(["api", "--port", str(port)], env, "DPG API is up"))
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for p in started:
            p.stop()
        engine.stop()
