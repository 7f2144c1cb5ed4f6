"""Wash trades, spoofing and layering found in the projections of the real engine's trading, stored
once per alert."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.surveillance.conftest import ETH, Market


def _wash(market: Market, sell_price: int, sell_market: str = "ETH/USDT") -> int:
    """A (linked to B by a client address) buys 1,000 ETH at 100 from C; B sells 1,000 ETH at
    ``sell_price`` to D; the wash-trade alerts raised."""
    a = market.user("203.0.113.7")
    b = market.user("203.0.113.7")
    c = market.user("198.51.100.1")
    d = market.user("198.51.100.2")
    market.order(c, "sell", 100, 1000 * ETH)
    market.order(a, "buy", 100, 1000 * ETH)
    market.order(d, "buy", sell_price, 1000 * ETH, sell_market)
    market.order(b, "sell", sell_price, 1000 * ETH, sell_market)
    market.surveil()
    found = market.alerts("wash_trade")
    for m, accounts, evidence in found:
        assert (m, accounts) == ("ETH/USDT", sorted([a, b]))
        assert evidence["links"] == [{"by": "client_address", "address": "203.0.113.7"}]
    return len(found)


@pytest.mark.parametrize(("price", "alerts"), [(100, 1), (96, 0), (103, 1), (98, 1)])
def test_linked_accounts_buying_and_selling_alike_within_the_hour(market: Market, price: int, alerts: int) -> None:
    assert _wash(market, price) == alerts


def test_the_two_sides_in_different_markets_are_no_wash(market: Market) -> None:
    assert _wash(market, 100, "ETH/USD") == 0


def test_a_direct_trade_between_accounts_linked_by_a_transfer(market: Market) -> None:
    a = market.user("192.0.2.1")
    b = market.user("192.0.2.2")
    market.transfer(a, b)
    sell = market.order(b, "sell", 100, 5 * ETH)
    buy = market.order(a, "buy", 100, 5 * ETH)
    first = market.surveil()
    assert len(first.new) == 1
    (alert,) = first.new
    assert alert.kind == "wash_trade" and alert.accounts == tuple(sorted([a, b]))
    assert alert.evidence["buy"]["order_id"] == buy and alert.evidence["sell"]["order_id"] == sell
    assert len(alert.evidence["direct_trades"]) == 1
    assert [r["by"] for r in alert.evidence["links"]] == ["transfer"]
    again = market.surveil()  # the same window again: found, not stored twice
    assert (len(again.found), len(again.new)) == (1, 0)
    assert len(market.alerts("wash_trade")) == 1


def test_a_self_match_the_engine_prevented_is_a_wash_alert(market: Market) -> None:
    a = market.user("192.0.2.9")
    resting = market.order(a, "sell", 100, 2 * ETH)
    prevented = market.order(a, "buy", 100, 2 * ETH)  # expire-taker: the buy expires
    market.surveil()
    ((m, accounts, evidence),) = market.alerts("wash_trade")
    assert (m, accounts, evidence["rule"]) == ("ETH/USDT", [a], "self_match_prevented")
    assert evidence["prevented"]["order_id"] == prevented
    assert evidence["met"]["order_id"] == resting


def test_unlinked_accounts_trading_alike_raise_nothing(market: Market) -> None:
    a = market.user("192.0.2.1")
    b = market.user("192.0.2.2")
    market.order(b, "sell", 100, 5 * ETH)
    market.order(a, "buy", 100, 5 * ETH)
    assert market.surveil().found == []


@pytest.mark.parametrize(("buys", "alerts"), [(10, 1), (11, 0)])
def test_spoofing_one_cancelled_buy_then_a_sell(market: Market, buys: int, alerts: int) -> None:
    """Ten buys at the best bid, one cancelled unfilled (10 %), then a sell: spoofing at the 10 %
    threshold; with eleven buys the share is 9.1 %: none."""
    t = market.user("198.51.100.1")
    s = market.user("198.51.100.2")
    market.order(t, "buy", 100, ETH)  # the best bid, first in line
    ids = [market.order(s, "buy", 100, ETH) for _ in range(buys)]
    market.cancel(s, ids[-1])
    sell = market.order(s, "sell", 100, ETH)  # fills t's bid
    market.surveil()
    found = market.alerts("spoofing")
    assert len(found) == alerts
    for m, accounts, evidence in found:
        assert (m, accounts, evidence["execution_orders"]) == ("ETH/USDT", [s], [sell])
        (hit,) = evidence["executions"]
        assert hit["cancelled"] == [ids[-1]]
        assert (hit["orders_on_side"], hit["cancelled_unfilled"]) == (buys, 1)
        assert [o["order_id"] for o in hit["near_best"]] == [ids[-1]]
    assert market.alerts("layering") == []


def test_spoofing_again_in_the_hour_extends_the_accounts_episode(market: Market) -> None:
    """A second execution of the spoofer in the same hour: the stored alert lists both, no
    second alert; an account exempt (a designated market maker) raises none."""
    t = market.user("198.51.100.1")
    s = market.user("198.51.100.2")
    market.order(t, "buy", 100, 5 * ETH)
    ids = [market.order(s, "buy", 100, ETH) for _ in range(4)]
    market.cancel(s, ids[0])
    first = market.order(s, "sell", 100, ETH)
    assert len(market.surveil().new) == 1
    market.cancel(s, ids[1])
    second = market.order(s, "sell", 100, ETH)
    run = market.surveil()
    if len(run.new) == 1:  # the hour turned between the two sells: an episode of its own
        assert run.new[0].evidence["execution_orders"] == [second]
        return
    assert (len(run.new), len(run.extended)) == (0, 1)
    ((_, _, evidence),) = market.alerts("spoofing")
    assert evidence["execution_orders"] == [first, second] and evidence["count"] == 2
    market.settings = replace(market.settings, exempt=frozenset({s}))
    assert [a for a in market.surveil().found if a.kind == "spoofing"] == []


@pytest.mark.parametrize(("layers", "alerts"), [(3, 1), (2, 0)])
def test_layering_behind_the_best_then_a_sell_then_cancelled(market: Market, layers: int, alerts: int) -> None:
    m = market.user("198.51.100.1")
    layerer = market.user("198.51.100.2")
    market.order(m, "buy", 100, ETH)
    layered = [market.order(layerer, "buy", 99 - i, ETH) for i in range(layers)]
    sell = market.order(layerer, "sell", 100, ETH)
    for oid in layered:
        market.cancel(layerer, oid)
    market.surveil()
    found = market.alerts("layering")
    assert len(found) == alerts
    for _, accounts, evidence in found:
        assert (accounts, evidence["execution_orders"]) == ([layerer], [sell])
        assert [o["order_id"] for o in evidence["executions"][0]["layered"]] == layered


def test_orders_cancelled_at_the_best_are_no_layering(market: Market) -> None:
    m = market.user("198.51.100.1")
    layerer = market.user("198.51.100.2")
    market.order(m, "buy", 100, ETH)
    at_best = [market.order(layerer, "buy", 100, ETH) for _ in range(3)]
    market.order(layerer, "sell", 100, ETH)
    for oid in at_best:
        market.cancel(layerer, oid)
    market.surveil()
    assert market.alerts("layering") == []


@pytest.mark.parametrize(("status", "alerts"), [("completed", 1), ("failed", 0)])
def test_accounts_linked_by_one_funding_the_other(market: Market, status: str, alerts: int) -> None:
    a = market.user("192.0.2.1")
    b = market.user("192.0.2.2")
    market.fund(a, b, status)  # a withdrawal of a to b's deposit address (a failed one pays nothing)
    market.order(b, "sell", 100, 5 * ETH)
    market.order(a, "buy", 100, 5 * ETH)
    market.surveil()
    found = market.alerts("wash_trade")
    assert len(found) == alerts
    for _, _, evidence in found:
        assert [(r["by"], r["from"], r["to"]) for r in evidence["links"]] == [("funding", a, b)]
