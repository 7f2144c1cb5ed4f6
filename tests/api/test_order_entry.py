"""POST /api/v1/orders is served by ``OrderEntry`` (a body of ``application/json``) without the
framework's routing; any other JSON body still reaches the route. Both ways must answer alike: the
same placed order, and the same refusal for every way an order request fails."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.client import User, served

pytestmark = pytest.mark.timeout(300)

DIRECT = "application/json"  # OrderEntry
ROUTE = "application/json; charset=utf-8"  # the FastAPI route (OrderEntry passes it on)


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("entry"), "dpg_test_entry", DPG_RATE_KEY="3") as b:
        yield b


def post(client: httpx.Client, content_type: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/api/v1/orders", content=raw, headers={"content-type": content_type, **(headers or {})})


def test_both_ways_place_the_same_order(base: str) -> None:
    u = User(base, "entry@test.dpg")
    u.credit("USDT", "10000")
    answers = []
    for content_type, cid in ((DIRECT, "direct-1"), (ROUTE, "route-1")):
        r = post(u.http, content_type, {"market": "BTC/USDT", "side": "buy", "price": "100.00", "quantity": "0.1000",
                                        "client_order_id": cid})
        assert r.status_code == 201, r.text
        assert r.headers["content-type"] == "application/json"
        answers.append(r.json())
    direct, route = answers
    assert direct["client_order_id"] == "direct-1" and route["order_id"] == direct["order_id"] + 1
    varying = ("order_id", "client_order_id", "created_seq", "created_at", "updated_seq", "updated_at")
    assert {k: v for k, v in direct.items() if k not in varying} == {k: v for k, v in route.items() if k not in varying}
    assert direct["status"] == "open" and direct["remaining"] == "0.1000"
    open_ids = {o["client_order_id"] for o in u.http.get("/api/v1/orders/open").json()}
    assert open_ids == {"direct-1", "route-1"}


def test_both_ways_refuse_alike(base: str) -> None:
    u = User(base, "refused@test.dpg")
    u.credit("USDT", "1000")
    anon = httpx.Client(base_url=base, timeout=30)
    good = {"market": "BTC/USDT", "side": "buy", "price": "100", "quantity": "0.1"}
    cases: list[tuple[httpx.Client, Any, dict[str, str], int, str]] = [
        (anon, good, {}, 401, "AUTH_REQUIRED"),
        (anon, good, {"authorization": "Bearer not-a-session"}, 401, "SESSION_INVALID"),
        (u.http, {**good, "market": "XRP/USDT"}, {}, 404, "UNKNOWN_MARKET"),
        (u.http, {**good, "price": "100.001"}, {}, 400, "PRICE_OFF_TICK"),
        (u.http, {**good, "quantity": "1000"}, {}, 422, "INSUFFICIENT_FUNDS"),
        (u.http, {**good, "side": "up"}, {}, 422, "INVALID_REQUEST"),
        (u.http, {**good, "price": 100.5}, {}, 422, "INVALID_REQUEST"),
        (u.http, {"side": "buy"}, {}, 422, "INVALID_REQUEST"),
        (u.http, [good], {}, 422, "INVALID_REQUEST"),
        (u.http, b'{"market": "BTC/USDT", ', {}, 422, "INVALID_REQUEST"),
        (u.http, b"x" * (70 * 1024), {}, 413, "BODY_TOO_LARGE"),
    ]
    before = u.balance("USDT")
    for client, body, headers, status, code in cases:
        for content_type in (DIRECT, ROUTE):
            time.sleep(0.4)  # within the key rate limit (DPG_RATE_KEY=3)
            r = post(client, content_type, body, headers)
            assert (r.status_code, r.json()["code"]) == (status, code), (content_type, body, r.text)
            if status == 422 and code == "INVALID_REQUEST":  # the field at fault is named either way
                assert r.json()["reason"], r.text
    time.sleep(0.4)
    assert u.balance("USDT") == before  # nothing refused was placed


def test_the_key_rate_limit_holds_on_the_direct_way(base: str) -> None:
    u = User(base, "limited@test.dpg")
    u.credit("USDT", "1000")
    order = {"market": "BTC/USDT", "side": "buy", "price": "100", "quantity": "0.1"}
    codes = [post(u.http, DIRECT, order).status_code for _ in range(30)]  # a burst of twice the rate passes
    assert 201 in codes and 429 in codes, codes
    r = post(u.http, DIRECT, order)
    assert r.status_code == 429 and r.json()["code"] == "RATE_LIMITED" and int(r.headers["retry-after"]) >= 1
