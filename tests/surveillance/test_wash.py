"""The wash-pair rule on executions as the projections give them: the window between the two sides
and the run's window (no database: the rule is a function of its inputs)."""

from __future__ import annotations

from dpg.config import SurveillanceSettings
from dpg.surveillance.model import Execution
from dpg.surveillance.wash import NS, Links, wash_pairs

HOUR = 3600 * NS


def _fill(oid: int, account: int, side: str, ts: int, price: int = 100, qty: int = 1000) -> Execution:
    return Execution(oid, account, "ETH/USDT", side, qty, price * qty, ts, ts, oid, oid, [oid])


def _linked() -> Links:
    links = Links()
    links.add(1, 2, {"by": "client_address", "address": "192.0.2.1"})
    return links


def test_the_two_sides_an_hour_apart_are_a_pair_and_later_are_not() -> None:
    s = SurveillanceSettings()
    t = 10 * HOUR
    assert len(wash_pairs([_fill(1, 1, "buy", t), _fill(2, 2, "sell", t + HOUR)], _linked(), s, 0, 20 * HOUR)) == 1
    assert wash_pairs([_fill(1, 1, "buy", t), _fill(2, 2, "sell", t + HOUR + 1)], _linked(), s, 0, 20 * HOUR) == []


def test_a_pair_is_raised_by_the_run_whose_window_holds_its_later_side() -> None:
    s = SurveillanceSettings()
    t = 10 * HOUR
    pair = [_fill(1, 1, "buy", t), _fill(2, 2, "sell", t + 60 * NS)]
    assert len(wash_pairs(pair, _linked(), s, t + 30 * NS, t + 90 * NS)) == 1
    assert wash_pairs(pair, _linked(), s, t + 61 * NS, t + 2 * HOUR) == []
    assert wash_pairs(pair, _linked(), s, 0, t + 59 * NS) == []


def test_both_sides_of_a_pair_in_either_direction_and_sizes_3_percent_apart() -> None:
    s = SurveillanceSettings()
    t = 10 * HOUR
    assert len(wash_pairs([_fill(1, 2, "buy", t, qty=1030), _fill(2, 1, "sell", t)], _linked(), s, 0, t)) == 1
    assert wash_pairs([_fill(1, 2, "buy", t, qty=1031), _fill(2, 1, "sell", t)], _linked(), s, 0, t) == []
    assert wash_pairs([_fill(1, 1, "buy", t), _fill(2, 3, "sell", t)], _linked(), s, 0, t) == []  # 3: unlinked
