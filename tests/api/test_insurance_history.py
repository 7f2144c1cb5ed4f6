"""The insurance fund's history against the real PostgreSQL: from the projection's ledger entries
of the insurance account, each time bucket's closing balance and net change by cause, exact to the
base unit, empty buckets carrying the balance; and over HTTP against ``dpg up``, the fee share of a
perpetual's trades, the last bucket's balance equal to the fund's balance."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from dpg.api.history import History
from dpg.core.model import INSURANCE_ACCOUNT, Asset
from tests.api.client import User, served

pytestmark = pytest.mark.timeout(300)

USDT = Asset("USDT", 6, 0)
HOUR = 3600 * 10**9
T0 = 1_800_000_000 * 10**9 // HOUR * HOUR  # the start of an hour


def history(pg_url: str, width: int, end: int, limit: int, asset: Asset = USDT) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        async with AsyncConnectionPool(pg_url, min_size=1, max_size=2, open=False) as pool:
            return await History(pool, [], [asset]).insurance(asset, width, end, limit)

    return asyncio.run(main())


def test_buckets_close_at_the_ledger_balance_with_the_net_change_by_cause(pg_url: str) -> None:
    # (seq, n, ts, account, asset, d_available, cause, balance after)
    rows = [
        (1, 0, T0 - HOUR + 5, INSURANCE_ACCOUNT, "USDT", 1_000_000, "fee", 1_000_000),  # before the window
        (2, 0, T0 + 10, INSURANCE_ACCOUNT, "USDT", 250, "fee", 1_000_250),
        (2, 1, T0 + 10, 7, "USDT", -2_500, "fee", 97_500),  # a user's row: not the fund's
        (3, 2, T0 + 20, INSURANCE_ACCOUNT, "USDT", 5_000_001, "liquidation", 6_000_251),
        (4, 0, T0 + 30, INSURANCE_ACCOUNT, "BTC", 77, "fee", 77),  # another asset
        (5, 3, T0 + HOUR - 1, INSURANCE_ACCOUNT, "USDT", -1_200_000, "insurance", 4_800_251),
        # nothing in the second hour
        (6, 0, T0 + 2 * HOUR, INSURANCE_ACCOUNT, "USDT", 1, "fee", 4_800_252),
        (7, 1, T0 + 3 * HOUR - 1, INSURANCE_ACCOUNT, "USDT", -300, "realized", 4_799_952),
    ]
    with psycopg.connect(pg_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO ledger_entries (seq, n, ts, account, asset, d_available, d_locked, cause, balance)"
            " VALUES (%s, %s, %s, %s, %s, %s, 0, %s, %s)", rows)
        conn.execute("UPDATE projection_state SET seq = 7 WHERE name = 'tables'")
    out = history(pg_url, HOUR, T0 + 2 * HOUR + 17, limit=3)
    assert out["projected_seq"] == 7 and out["asset"] == "USDT"
    ms = T0 // 10**6
    assert out["buckets"] == [
        {"start": ms, "end": ms + 3_600_000, "balance": "4.800251", "change": "3.800251",
         "by_cause": {"fee": "0.000250", "insurance": "-1.200000", "liquidation": "5.000001"}},
        {"start": ms + 3_600_000, "end": ms + 7_200_000, "balance": "4.800251", "change": "0.000000", "by_cause": {}},
        {"start": ms + 7_200_000, "end": ms + 10_800_000, "balance": "4.799952", "change": "-0.000299",
         "by_cause": {"fee": "0.000001", "realized": "-0.000300"}},
    ]
    # the opening balance is the last entry's before the window; a window before any entry is empty
    [only] = history(pg_url, HOUR, T0 + HOUR, limit=1)["buckets"]
    assert (only["balance"], only["change"]) == ("4.800251", "0.000000")
    before = history(pg_url, HOUR, T0 - 2 * HOUR, limit=2)["buckets"]
    assert [b["balance"] for b in before] == ["0.000000", "0.000000"]
    # a day in 1h buckets from the last: each closing balance is the one before plus its change
    day = history(pg_url, HOUR, T0 + 23 * HOUR, limit=24)["buckets"]
    assert len(day) == 24 and day[0]["start"] == ms and day[-1]["balance"] == "4.799952"
    units = [USDT.to_units(b["balance"]) for b in day]
    assert all(units[i] == units[i - 1] + USDT.to_units(day[i]["change"]) for i in range(1, 24))


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("insurance"), "dpg_test_insurance", DPG_INDEX_EVERY_MS="100") as b:
        yield b


def test_the_fee_share_of_perpetual_trades_over_http(base: str) -> None:
    mm = User(base, "ins-spot@test.dpg")
    mm.credit("USDT", "1000000")
    mm.credit("BTC", "10")
    assert mm.order(market="BTC/USDT", side="buy", price="49990", quantity="1").status_code == 201
    assert mm.order(market="BTC/USDT", side="sell", price="50010", quantity="1").status_code == 201
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        perps = mm.http.get("/api/v1/futures/markets").json()
        if next(p for p in perps if p["market"] == "BTC-PERP")["index_price"] == "50000.00":
            break
        time.sleep(0.1)
    a, b = User(base, "ins-a@test.dpg"), User(base, "ins-b@test.dpg")
    a.credit("USDT", "10000")
    b.credit("USDT", "10000")
    assert a.order(market="BTC-PERP", side="sell", price="50000", quantity="0.1").status_code == 201
    r = b.order(market="BTC-PERP", side="buy", price="50000", quantity="0.1")
    assert r.status_code == 201 and r.json()["status"] == "filled", r.text
    fund = {x["asset"]: x["balance"] for x in a.http.get("/api/v1/futures/insurance").json()}["USDT"]
    assert fund != "0.000000"
    deadline = time.monotonic() + 30
    while True:  # the projection trails the engine
        out = a.http.get("/api/v1/futures/insurance/history", params={"asset": "USDT", "interval": "1m",
                                                                      "limit": 60}).json()
        if out["buckets"][-1]["balance"] == fund or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert out["interval"] == "1m" and len(out["buckets"]) == 60
    last = out["buckets"][-1]
    assert last["balance"] == fund
    # the fund has only fee shares here: their sum over the hour is its balance
    total = sum(USDT.to_units(x["by_cause"].get("fee", "0")) for x in out["buckets"])
    assert USDT.format(total) == fund
    assert all(set(x["by_cause"]) <= {"fee"} for x in out["buckets"])
    # refusals: an unknown interval or asset, a limit out of range
    assert a.http.get("/api/v1/futures/insurance/history", params={"interval": "7m"}).status_code == 400
    assert a.http.get("/api/v1/futures/insurance/history", params={"asset": "NOPE"}).status_code == 404
    assert a.http.get("/api/v1/futures/insurance/history", params={"limit": 0}).status_code == 422
    assert a.http.get("/api/v1/futures/insurance/history", params={"end": 10**19}).status_code == 422
