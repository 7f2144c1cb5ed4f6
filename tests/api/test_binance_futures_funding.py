"""Funding through ccxt's ``binanceusdm`` against ``dpg up``: a long and a short are open when a
funding time passes (the dev exchange's clock moved past it by the operator, ``DPG_DEV_CLOCK=1``);
the funding paid and received shows in ``/fapi/v1/income`` (FUNDING_FEE), in the funding-rate
history and in the balances, equal to DPG's own ledger to the base unit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.api.client import ADMIN, User, served
from tests.api.test_binance_futures import index_btc, trader

pytestmark = pytest.mark.timeout(300)

SYM = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("fapi-funding"), "dpg_test_fapi_funding",
               DPG_INDEX_EVERY_MS="100", DPG_DEV_CLOCK="1") as b:
        yield index_btc(b)


def funding_entries(user: User) -> list[dict[str, Any]]:
    return [e for e in user.http.get("/api/v1/ledger", params={"asset": "USDT"}).json()["entries"]
            if e["cause"] == "funding"]


def test_funding_income_after_a_funding_time(base: str) -> None:
    alice, a = trader(base, "alice@funding.dpg")
    bob, b = trader(base, "bob@funding.dpg")
    alice.credit("USDT", "10000")
    bob.credit("USDT", "10000")
    b.create_order(SYM, "limit", "sell", 0.1, 50000)
    a.create_order(SYM, "limit", "buy", 0.1, 50000)
    assert Decimal(str(a.fetch_positions([SYM])[0]["contracts"])) == Decimal("0.1")
    assert a.fetch_funding_history(SYM) == [] and a.fetch_funding_rate_history(SYM) == []
    due = a.fetch_funding_rate(SYM)["fundingTimestamp"]
    before = {n: Decimal(str(x.fetch_balance()["USDT"]["total"])) for n, x in (("a", a), ("b", b))}

    # the clock of a dev exchange moves only by the operator's word, and not for anyone else
    assert alice.http.post("/api/v1/admin/clock", json={"advance_ms": 1000}).status_code in (401, 403)
    bad = alice.http.post("/api/v1/admin/clock", json={"advance_ms": 0}, headers={"X-DPG-Admin-Token": ADMIN})
    assert bad.status_code == 422
    step = due - int(time.time() * 1000) + 1_000
    r = alice.http.post("/api/v1/admin/clock", json={"advance_ms": step}, headers={"X-DPG-Admin-Token": ADMIN})
    assert r.status_code == 200, r.text
    assert r.json()["now_ms"] > due

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (a.fetch_funding_history(SYM) and b.fetch_funding_history(SYM)
                                               and funding_entries(alice) and funding_entries(bob)):
        time.sleep(0.2)
    [paid], [received] = a.fetch_funding_history(SYM), b.fetch_funding_history(SYM)
    [rate] = a.fetch_funding_rate_history(SYM)
    assert rate["timestamp"] >= due and paid["timestamp"] == received["timestamp"] == rate["timestamp"]
    native = alice.http.get("/api/v1/futures/funding", params={"market": "BTC-PERP"}).json()
    assert Decimal(native["history"][0]["rate"]) == Decimal(str(rate["fundingRate"])) > 0
    assert Decimal(rate["info"]["markPrice"]) == Decimal(native["history"][0]["mark_price"])
    assert a.fetch_funding_rate(SYM)["fundingTimestamp"] > due  # the next one

    # a positive rate: the long pays, the short receives; each equal to DPG's ledger to the base unit
    [a_entry], [b_entry] = funding_entries(alice), funding_entries(bob)
    assert Decimal(str(paid["amount"])) == Decimal(a_entry["available"]) < 0
    assert Decimal(str(received["amount"])) == Decimal(b_entry["available"]) > 0
    assert Decimal(paid["info"]["income"]) == Decimal(a_entry["available"])  # the wire's decimal string
    notional = Decimal("0.1") * Decimal(native["history"][0]["mark_price"])
    assert -Decimal(a_entry["available"]) == (notional * Decimal(native["history"][0]["rate"])).quantize(
        Decimal("0.000001"), rounding="ROUND_UP")
    after = {n: Decimal(str(x.fetch_balance()["USDT"]["total"])) for n, x in (("a", a), ("b", b))}
    assert after["a"] - before["a"] == Decimal(a_entry["available"])
    assert after["b"] - before["b"] == Decimal(b_entry["available"])
