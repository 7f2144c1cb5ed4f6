"""Authentication and authorization over HTTP: signed API-key requests and their negatives, TOTP,
another user's order, request size and rate limits."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pyotp
import pytest

from tests.api.client import Codes, User, served, sign, signed

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("auth"), "dpg_test_auth", DPG_RATE_IP="40", DPG_RATE_KEY="40") as b:
        yield b


def make_key(u: User, permissions: list[str], ip_allow: list[str] | None = None,
             totp: str | None = None) -> tuple[str, str]:
    r = u.http.post("/api/v1/api-keys", json={"name": "bot", "permissions": permissions, "ip_allow": ip_allow or [],
                                              "totp": totp})
    assert r.status_code == 201, r.text
    return r.json()["key"], r.json()["secret"]


def test_signed_requests_and_every_way_they_fail(base: str) -> None:
    u = User(base, "signer@test.dpg")
    u.credit("USDT", "1000")
    key, secret = make_key(u, ["read", "trade"])
    anon = httpx.Client(base_url=base, timeout=30)
    order = {"market": "BTC/USDT", "side": "buy", "price": "100", "quantity": "0.1"}

    r = signed(anon, key, secret, "GET", "/api/v1/balances")
    assert r.status_code == 200 and any(b["asset"] == "USDT" for b in r.json())
    r = signed(anon, key, secret, "POST", "/api/v1/orders", order)
    assert r.status_code == 201, r.text

    def code(r: httpx.Response) -> tuple[int, str]:
        return r.status_code, r.json()["code"]

    assert code(anon.get("/api/v1/balances")) == (401, "AUTH_REQUIRED")
    bad_sig = signed(anon, key, secret, "GET", "/api/v1/balances", signature="00" * 32)
    assert code(bad_sig) == (401, "BAD_SIGNATURE")
    stale = signed(anon, key, secret, "GET", "/api/v1/balances", ts=int(time.time() * 1000) - 60_000)
    assert code(stale) == (401, "STALE_TIMESTAMP")
    # an altered body under the original signature
    ts = int(time.time() * 1000)
    raw = json.dumps(order).encode()
    sig = sign(secret, ts, "POST", "/api/v1/orders", raw)
    altered = anon.post("/api/v1/orders", content=raw.replace(b'"0.1"', b'"0.2"'),
                        headers={"x-dpg-apikey": key, "x-dpg-timestamp": str(ts), "x-dpg-signature": sig,
                                 "content-type": "application/json"})
    assert code(altered) == (401, "BAD_SIGNATURE")
    # the same request twice: the second is a replay
    ts = int(time.time() * 1000)
    first = signed(anon, key, secret, "GET", "/api/v1/orders/open", ts=ts)
    again = signed(anon, key, secret, "GET", "/api/v1/orders/open", ts=ts)
    assert first.status_code == 200 and code(again) == (401, "REPLAYED")

    read_key, read_secret = make_key(u, ["read"])
    assert code(signed(anon, read_key, read_secret, "POST", "/api/v1/orders", order)) == (403, "PERMISSION_DENIED")

    far_key, far_secret = make_key(u, ["read", "trade"], ip_allow=["10.9.8.7"])
    assert code(signed(anon, far_key, far_secret, "GET", "/api/v1/balances")) == (403, "IP_NOT_ALLOWED")
    near_key, near_secret = make_key(u, ["read"], ip_allow=["127.0.0.0/8"])
    assert signed(anon, near_key, near_secret, "GET", "/api/v1/balances").status_code == 200

    assert u.http.delete(f"/api/v1/api-keys/{key}").status_code == 200
    assert code(signed(anon, key, secret, "GET", "/api/v1/balances")) == (401, "KEY_REVOKED")
    listed = {k["key"]: k for k in u.http.get("/api/v1/api-keys").json()}
    assert listed[key]["revoked"] and "secret" not in listed[key]


def test_another_users_order_is_out_of_reach(base: str) -> None:
    owner, other = User(base, "owner@test.dpg"), User(base, "other@test.dpg")
    owner.credit("USDT", "1000")
    oid = owner.order(market="BTC/USDT", side="buy", price="100", quantity="0.1").json()["order_id"]
    assert other.http.get(f"/api/v1/orders/{oid}").status_code == 404
    r = other.http.delete(f"/api/v1/orders/{oid}", params={"market": "BTC/USDT"})
    assert (r.status_code, r.json()["code"]) == (404, "ORDER_NOT_FOUND")
    r = other.http.patch(f"/api/v1/orders/{oid}", json={"market": "BTC/USDT", "quantity": "0.05"})
    assert r.status_code == 404
    assert owner.http.get(f"/api/v1/orders/{oid}").json()["status"] == "open"


def test_totp_enrolment_and_a_wrong_code(base: str) -> None:
    u = User(base, "totp@test.dpg")
    setup = u.http.post("/api/v1/auth/2fa/setup").json()
    totp, codes = pyotp.TOTP(setup["secret"]), Codes(setup["secret"])
    assert u.http.post("/api/v1/auth/2fa/enable", json={"code": "000000" if totp.now() != "000000" else "111111"}
                       ).json()["code"] == "TOTP_INVALID"
    enabled = codes.next()
    recovery = u.http.post("/api/v1/auth/2fa/enable", json={"code": enabled}).json()["recovery_codes"]
    assert len(recovery) == 10
    wrong = "123456" if totp.now() != "123456" else "654321"
    r = u.login(totp=wrong)
    assert (r.status_code, r.json()["code"]) == (401, "TOTP_INVALID")
    assert u.login().json()["code"] == "TOTP_REQUIRED"
    r = u.login(totp=enabled)  # the code that turned 2FA on is used up
    assert (r.status_code, r.json()["code"]) == (401, "TOTP_REUSED")
    assert u.login(totp=codes.next()).status_code == 200
    # creating an API key needs the code too
    r = u.http.post("/api/v1/api-keys", json={"name": "k", "permissions": ["read"], "totp": wrong})
    assert r.json()["code"] == "TOTP_INVALID"
    make_key(u, ["read"], totp=codes.next())


def test_sessions_end_at_logout(base: str) -> None:
    u = User(base, "logout@test.dpg")
    assert u.http.post("/api/v1/auth/logout").status_code == 200
    r = u.http.get("/api/v1/balances")
    assert (r.status_code, r.json()["code"]) == (401, "SESSION_INVALID")
    bad = httpx.post(f"{base}/api/v1/auth/login", json={"email": u.email, "password": "not the password"})
    assert (bad.status_code, bad.json()["code"]) == (401, "INVALID_CREDENTIALS")


def test_request_size_and_rate_limits(base: str) -> None:
    anon = httpx.Client(base_url=base, timeout=30)
    big = anon.post("/api/v1/auth/signup", content=b"{" + b" " * 70_000 + b"}",
                    headers={"content-type": "application/json"})
    assert (big.status_code, big.json()["code"]) == (413, "BODY_TOO_LARGE")

    async def burst() -> list[httpx.Response]:  # at once: a busy machine serving them one by one may keep up
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            return list(await asyncio.gather(*(client.get("/api/v1/time") for _ in range(300))))

    codes = asyncio.run(burst())
    limited = [r for r in codes if r.status_code == 429]
    assert limited, "no request was limited"
    assert limited[0].json()["code"] == "RATE_LIMITED" and int(limited[0].headers["retry-after"]) >= 1
    time.sleep(2.5)
    assert anon.get("/api/v1/time").status_code == 200
