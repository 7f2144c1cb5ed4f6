"""The governed parameters through a running exchange: the operator sets a market's fees (the next
trade pays them), halts it (orders refused, cancels taken, Binance's exchangeInfo says HALT) and
resumes it; bad input is refused at the edge; with governance enabled (DPG_GOVERNANCE=1) the
operator's hand is refused with 409 GOVERNED and a restart keeps it so."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from tests.api.client import ADMIN, User, exchange, served

pytestmark = pytest.mark.timeout(300)
OP = {"X-DPG-Admin-Token": ADMIN}


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("gov-params"), "dpg_test_gov_params") as b:
        yield b


def market(base: str, symbol: str) -> dict[str, object]:
    return next(m for m in httpx.get(f"{base}/api/v1/governance").json()["markets"] if m["market"] == symbol)


def test_the_operator_sets_fees_and_the_next_trade_pays_them(base: str) -> None:
    doc = httpx.get(f"{base}/api/v1/governance").json()
    assert (doc["enabled"], doc["contracts"], doc["history"]) == (False, None, [])  # no chain with governance
    for path in ("/proposals", "/account?address=0x" + "11" * 20):
        r = httpx.get(f"{base}/api/v1/governance{path}")
        assert r.status_code == 404 and r.json()["code"] == "NO_GOVERNANCE", r.text
    r = httpx.post(f"{base}/api/v1/admin/fees", json={"market": "ETH/USDT", "maker_fee": "0", "taker_fee": "0.0025"},
                   headers=OP)
    assert r.status_code == 200, r.text
    assert market(base, "ETH/USDT") == {"market": "ETH/USDT", "maker_fee": "0", "taker_fee": "0.0025",
                                        "halted": False}
    listed = next(m for m in httpx.get(f"{base}/api/v1/markets").json() if m["market"] == "ETH/USDT")
    assert (listed["maker_fee"], listed["taker_fee"]) == ("0", "0.0025")
    seller, buyer = User(base, "seller@gov.dpg"), User(base, "buyer@gov.dpg")
    seller.credit("ETH", "1")
    buyer.credit("USDT", "10000")
    assert seller.order(market="ETH/USDT", side="sell", price="3000", quantity="1").status_code == 201
    taken = buyer.order(market="ETH/USDT", side="buy", price="3000", quantity="1")
    assert taken.status_code == 201, taken.text
    assert Decimal(taken.json()["fee"]) == Decimal("1") * Decimal("0.0025")  # a buyer pays in the base asset


def test_a_halted_market_refuses_orders_and_takes_cancels_until_resumed(base: str) -> None:
    u = User(base, "halted@gov.dpg")
    u.credit("BTC", "1")
    resting = u.order(market="BTC/USDT", side="sell", price="60000", quantity="0.1")
    assert resting.status_code == 201
    assert httpx.post(f"{base}/api/v1/admin/halt", json={"market": "BTC/USDT", "halted": True},
                      headers=OP).status_code == 200
    refused = u.order(market="BTC/USDT", side="sell", price="60000", quantity="0.1")
    assert refused.status_code == 409 and refused.json()["code"] == "MARKET_HALTED"
    info = httpx.get(f"{base}/api/v3/exchangeInfo", params={"symbol": "BTCUSDT"}).json()
    assert info["symbols"][0]["status"] == "HALT"
    gone = u.http.delete(f"/api/v1/orders/{resting.json()['order_id']}", params={"market": "BTC/USDT"})
    assert gone.status_code == 200, gone.text
    assert httpx.post(f"{base}/api/v1/admin/halt", json={"market": "BTC/USDT", "halted": False},
                      headers=OP).status_code == 200
    assert u.order(market="BTC/USDT", side="sell", price="60000", quantity="0.1").status_code == 201
    assert market(base, "BTC/USDT")["halted"] is False


def test_bad_parameters_and_strangers_are_refused(base: str) -> None:
    for body, code in (({"market": "BTC/USDT", "maker_fee": "0.0000001", "taker_fee": "0"}, "INVALID_RATE"),
                       ({"market": "BTC/USDT", "maker_fee": "-0.1", "taker_fee": "0"}, "INVALID_RATE"),
                       ({"market": "BTC/USDT", "maker_fee": "abc", "taker_fee": "0"}, "INVALID_RATE"),
                       ({"market": "BTC/USDT", "maker_fee": "1", "taker_fee": "0"}, "INVALID_MARKET"),
                       ({"market": "NOPE/USDT", "maker_fee": "0", "taker_fee": "0"}, "UNKNOWN_MARKET")):
        r = httpx.post(f"{base}/api/v1/admin/fees", json=body, headers=OP)
        assert r.status_code in (400, 404) and r.json()["code"] == code, (body, r.text)
    assert httpx.post(f"{base}/api/v1/admin/staker-share", json={"share": "1.5"}, headers=OP).status_code == 400
    for path, body in (("fees", {"market": "BTC/USDT", "maker_fee": "0", "taker_fee": "0"}),
                       ("halt", {"market": "BTC/USDT", "halted": True}), ("staker-share", {"share": "0.5"})):
        assert httpx.post(f"{base}/api/v1/admin/{path}", json=body).status_code in (401, 403)
    assert market(base, "BTC/USDT")["halted"] is False


def test_with_governance_enabled_the_operators_hand_is_refused_also_after_a_restart(
        pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    from dpg.store import db

    url = db.create_scratch(pg_server, "dpg_test_governed")
    tmp = tmp_path_factory.mktemp("governed")
    try:
        for env in ({"DPG_GOVERNANCE": "1"}, {}):  # the second start has no flag: the journal keeps it
            with exchange(url, tmp, **env) as b:
                assert httpx.get(f"{b}/api/v1/governance").json()["enabled"] is True
                r = httpx.post(f"{b}/api/v1/admin/fees", json={"market": "BTC/USDT", "maker_fee": "0",
                                                                "taker_fee": "0"}, headers=OP)
                assert r.status_code == 409 and r.json()["code"] == "GOVERNED"
                r = httpx.post(f"{b}/api/v1/admin/halt", json={"market": "BTC/USDT", "halted": True}, headers=OP)
                assert r.status_code == 409 and r.json()["code"] == "GOVERNED"
                assert market(b, "BTC/USDT")["halted"] is False
    finally:
        db.drop(url)
