"""``X-Forwarded-For`` against a real ``dpg up`` (uvicorn): ignored unless the peer is a listed
proxy (``DPG_TRUSTED_PROXIES``), so a client cannot choose the address that an API key's IP
allow-list and the per-address rate limit see."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.client import User, served, signed

pytestmark = pytest.mark.timeout(300)

RATE = 5  # requests per second per address, bursts of 10


@pytest.fixture(scope="module")
def direct(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An exchange that trusts no proxy (the default)."""
    with served(pg_server, tmp_path_factory.mktemp("direct"), "dpg_test_xff", DPG_RATE_IP=str(RATE)) as b:
        yield b


@pytest.fixture(scope="module")
def proxied(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An exchange behind a proxy on 127.0.0.1, listed as trusted."""
    with served(pg_server, tmp_path_factory.mktemp("proxied"), "dpg_test_xff", DPG_RATE_IP=str(RATE),
                DPG_TRUSTED_PROXIES="127.0.0.1, ::1") as b:
        yield b


def key_for(base: str, email: str, ip_allow: list[str]) -> tuple[str, str]:
    u = User(base, email)
    r = u.http.post("/api/v1/api-keys", json={"name": "bot", "permissions": ["read"], "ip_allow": ip_allow})
    assert r.status_code == 201, r.text
    return r.json()["key"], r.json()["secret"]


def flood(base: str) -> list[int]:
    """Statuses of 30 requests at once, each claiming another client address."""
    time.sleep(2 * 2 / RATE)  # a full bucket first
    with httpx.Client(base_url=base, timeout=30) as http:
        return [http.get("/api/v1/time", headers={"x-forwarded-for": f"203.0.113.{n}"}).status_code
                for n in range(30)]


def test_a_forged_forwarded_header_is_ignored(direct: str) -> None:
    key, secret = key_for(direct, "forged@xff.dpg", ["10.9.8.7"])
    anon = httpx.Client(base_url=direct, timeout=30, headers={"x-forwarded-for": "10.9.8.7"})
    r = signed(anon, key, secret, "GET", "/api/v1/balances")
    assert (r.status_code, r.json()["code"]) == (403, "IP_NOT_ALLOWED")
    statuses = flood(direct)
    assert 429 in statuses, statuses  # one address, one bucket, whatever the header says
    assert statuses.count(200) <= 2 * RATE + 2


def test_a_listed_proxys_header_is_honoured(proxied: str) -> None:
    key, secret = key_for(proxied, "proxied@xff.dpg", ["10.9.8.7"])
    through = httpx.Client(base_url=proxied, timeout=30, headers={"x-forwarded-for": "10.9.8.7"})
    assert signed(through, key, secret, "GET", "/api/v1/balances").status_code == 200
    elsewhere = httpx.Client(base_url=proxied, timeout=30, headers={"x-forwarded-for": "10.9.8.8"})
    r = signed(elsewhere, key, secret, "GET", "/api/v1/balances")
    assert (r.status_code, r.json()["code"]) == (403, "IP_NOT_ALLOWED")
    assert flood(proxied) == [200] * 30  # thirty clients behind the proxy, each with its own bucket
