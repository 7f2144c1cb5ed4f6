"""Accounts the engine knows (OpenAccount), against a running ``dpg up``: sign-up opens one; money
sent to an id nobody signed up for is refused, never stranded or inherited by the next sign-up; a
user created while no exchange could open the account gets it at login or at the next start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.api.client import ADMIN, Process, User, dpg_cli, exchange, free_port, until, wait_projected

pytestmark = pytest.mark.timeout(300)

STRANGER = 987654321


def _credit(http: httpx.Client, user_id: int, ref: str) -> httpx.Response:
    return http.post("/api/v1/admin/credits", headers={"x-dpg-admin-token": ADMIN},
                     json={"user_id": user_id, "asset": "USDT", "amount": "5", "reference": ref})


def test_a_transfer_or_credit_to_an_unknown_account_is_refused_and_moves_nothing(pg_url: str, tmp_path: Path) -> None:
    with exchange(pg_url, tmp_path) as base:
        alice = User(base, "alice@accounts.dpg")
        alice.credit("USDT", "100")
        following = alice.id + 1  # the id the next sign-up gets
        for to in (following, STRANGER):
            r = alice.http.post("/api/v1/transfers", json={"to_user_id": to, "asset": "USDT", "amount": "10"})
            assert r.status_code == 404, r.text
            assert r.json() == {"code": "UNKNOWN_ACCOUNT", "reason": f"account {to} does not exist"}
        r = _credit(alice.http, STRANGER, "wire-to-nobody")
        assert r.status_code == 404 and r.json()["code"] == "UNKNOWN_ACCOUNT"
        assert alice.balance("USDT") == ("100.000000", "0.000000")

        bob = User(base, "bob@accounts.dpg")  # sign-up opens the account
        assert bob.id == following
        assert bob.balance("USDT") == ("0.000000", "0.000000")  # it inherited nothing
        r = alice.http.post("/api/v1/transfers", json={"to_user_id": bob.id, "asset": "USDT", "amount": "10"})
        assert r.status_code == 201, r.text
        assert bob.balance("USDT") == ("10.000000", "0.000000")
        assert alice.balance("USDT") == ("90.000000", "0.000000")
        wait_projected(alice, r.json()["seq"])
    with psycopg.connect(pg_url) as c:  # the refused commands moved no money: no ledger entry
        assert c.execute("SELECT count(*) FROM ledger_entries WHERE account = %s", (STRANGER,)).fetchone() == (0,)
        rows = c.execute("SELECT cause, d_available FROM ledger_entries WHERE account = %s", (bob.id,)).fetchall()
        assert [(cause, int(d)) for cause, d in rows] == [("transfer", 10_000_000)]


def test_an_account_a_sign_up_could_not_open_opens_at_login_or_at_the_next_start(pg_url: str, tmp_path: Path) -> None:
    nobody = {"DPG_DATABASE_URL": pg_url, "DPG_DATA_DIR": str(tmp_path), "DPG_ADMIN_TOKEN": ADMIN,
              "DPG_PORT": str(free_port())}  # no exchange answers there
    made: dict[str, dict[str, Any]] = {}
    with exchange(pg_url, tmp_path) as base:
        http = httpx.Client(base_url=base, timeout=30)
        for name in ("dora", "eve"):
            r = dpg_cli(nobody, "user", "create", name, "--json")
            assert r.returncode == 0, r.stderr
            made[name] = json.loads(r.stdout)
            assert made[name]["account_open"] is False and "opens when the exchange starts" in r.stderr
        dora, eve = made["dora"], made["eve"]
        assert _credit(http, dora["id"], "d-1").json()["code"] == "UNKNOWN_ACCOUNT"
        login = http.post("/api/v1/auth/login", json={"email": dora["email"], "password": dora["password"]})
        assert login.status_code == 200, login.text
        assert _credit(http, dora["id"], "d-1").status_code == 201  # opened at login
        assert _credit(http, eve["id"], "e-1").json()["code"] == "UNKNOWN_ACCOUNT"
        # the operator call that opens a signed-up user's account refuses an id nobody signed up with
        r = http.post("/api/v1/admin/accounts", headers={"x-dpg-admin-token": ADMIN}, json={"user_id": STRANGER})
        assert r.status_code == 404 and r.json()["code"] == "UNKNOWN_ACCOUNT"
        r = http.post("/api/v1/admin/accounts", json={"user_id": eve["id"]})
        assert r.status_code == 403
    with exchange(pg_url, tmp_path) as base:  # a start opens every signed-up user's account
        http = httpx.Client(base_url=base, timeout=30)
        r = _credit(http, eve["id"], "e-1")
        assert r.status_code == 201, r.text


def test_the_demo_opens_and_funds_its_users(pg_url: str, tmp_path: Path) -> None:
    port = free_port()
    p = Process(["up", "--port", str(port), "--demo"], {"DPG_DATABASE_URL": pg_url, "DPG_ADMIN_TOKEN": ADMIN,
                                                       "DPG_DATA_DIR": str(tmp_path), "DPG_CUSTODY": "0"}, "DPG is up")
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        login = http.post("/api/v1/auth/login", json={"email": "alice@demo.dpg", "password": "demo-password"})
        headers = {"authorization": f"Bearer {login.json()['token']}"}

        def funded() -> bool:
            usdt = [b for b in http.get("/api/v1/balances", headers=headers).json() if b["asset"] == "USDT"]
            return usdt[0]["total"] != "0.000000"

        until("the demo credits alice", funded)
    finally:
        p.stop()
    assert not any("event=demo_market_maker_failed" in line for line in p.lines)
