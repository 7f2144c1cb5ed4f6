"""Wash trades: an account trading with itself (the engine's self-trade prevention stopped it), or
two linked accounts buying and selling alike within a window.

Two accounts are linked (``Links``) by a client address both signed in from, a transfer between
them, a withdrawal from one to the other's deposit address, or a withdrawal address both allow-list.
A wash pair is one account's buy order and a linked account's sell order in the same market, the
first fills of both within the window of each other, their average prices and sizes each within
the tolerance (``dpg.surveillance.model.within``). A direct trade between the two is one such pair."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from dpg.config import SurveillanceSettings
from dpg.surveillance.model import Alert, Execution, Order, iso, within

NS = 1_000_000_000


@dataclass(slots=True)
class Links:
    """Why pairs of accounts are linked: (low, high) -> reasons (each a small JSON object)."""

    pairs: dict[tuple[int, int], list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, a: int, b: int, reason: dict[str, Any]) -> None:
        if a == b:
            return
        reasons = self.pairs.setdefault((min(a, b), max(a, b)), [])
        if reason not in reasons and len(reasons) < 20:  # evidence enough; a pair may share many sessions
            reasons.append(reason)

    def of(self, a: int, b: int) -> list[dict[str, Any]]:
        return self.pairs.get((min(a, b), max(a, b)), [])


def wash_pairs(execs: Iterable[Execution], links: Links, s: SurveillanceSettings, start: int, end: int) -> list[Alert]:
    """Alerts for wash pairs of linked accounts whose later first fill is within [start, end].
    Per market, the sells are ordered by price: a buy looks only at those within the price
    tolerance (widened a little in floating point, then decided exactly)."""
    partners: dict[int, set[int]] = {}
    for a, b in links.pairs:
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    buys: dict[str, list[Execution]] = {}
    sells: dict[str, list[Execution]] = {}
    for e in execs:
        if e.account in partners:
            (buys if e.side == "buy" else sells).setdefault(e.market, []).append(e)
    window = s.window * NS
    band = float(s.wash_price_pct) / 100 + 1e-9
    qband = float(s.wash_qty_pct) / 100 + 1e-9
    alerts: list[Alert] = []
    for market, market_buys in sorted(buys.items()):
        ranked = sorted(sells.get(market, ()), key=lambda e: e.value / e.qty)
        prices = [e.value / e.qty for e in ranked]
        for buy in market_buys:
            mine = partners[buy.account]
            p = buy.value / buy.qty
            for sell in ranked[bisect.bisect_left(prices, p / (1 + band)):bisect.bisect_right(prices, p * (1 + band))]:
                if sell.account not in mine or abs(buy.first_ts - sell.first_ts) > window:
                    continue
                if abs(buy.qty - sell.qty) > qband * min(buy.qty, sell.qty):  # clearly apart: no exact test
                    continue
                if not start <= max(buy.first_ts, sell.first_ts) <= end:
                    continue
                if within(buy.price, sell.price, s.wash_price_pct) and within(buy.qty, sell.qty, s.wash_qty_pct):
                    alerts.append(_pair_alert(buy, sell, links.of(buy.account, sell.account), s))
    return alerts


def _pair_alert(buy: Execution, sell: Execution, reasons: list[dict[str, Any]], s: SurveillanceSettings) -> Alert:
    dp = _gap(buy.price, sell.price)
    dq = _gap(Fraction(buy.qty), Fraction(sell.qty))
    # 1 when the two sides are alike, 0 at the edge of the tolerance
    score = 1 - max(dp / Fraction(s.wash_price_pct) if s.wash_price_pct else 0,
                    dq / Fraction(s.wash_qty_pct) if s.wash_qty_pct else 0)
    direct = sorted(set(buy.trades) & set(sell.trades))
    t0, t1 = min(buy.first_ts, sell.first_ts), max(buy.last_ts, sell.last_ts)
    evidence = {"rule": "linked_accounts", "buy": buy.as_json(), "sell": sell.as_json(), "links": reasons,
                "direct_trades": direct, "price_gap_pct": f"{float(dp):.4f}", "qty_gap_pct": f"{float(dq):.4f}",
                "from": iso(t0), "to": iso(t1)}
    details = (f"account {buy.account} bought {buy.qty} at {float(buy.price):.6g} and linked account {sell.account} "
               f"sold {sell.qty} at {float(sell.price):.6g} ({'directly' if direct else 'apart'}; linked by "
               f"{', '.join(sorted({r['by'] for r in reasons}))})")
    return Alert(f"wash_trade:{buy.market}:{buy.order_id}:{sell.order_id}", "wash_trade", buy.market,
                 tuple(sorted({buy.account, sell.account})), t0, t1, evidence, float(score), details)


def _gap(a: Fraction, b: Fraction) -> Fraction:
    """|a - b| in percent of the smaller."""
    return abs(a - b) * 100 / min(a, b)


def self_match(prevented: Order, counterpart: Order | None) -> Alert:
    """An order the engine's self-trade prevention expired: the account met its own resting order.
    ``counterpart``: the other order of the account it met (None when not found)."""
    orders = [prevented] if counterpart is None else [prevented, counterpart]
    t0 = min(o.created_ts for o in orders)
    evidence = {"rule": "self_match_prevented", "prevented": prevented.as_json(),
                "met": counterpart.as_json() if counterpart is not None else None,
                "prevented_at": iso(prevented.updated_ts), "prevented_seq": prevented.updated_seq}
    details = (f"account {prevented.account}'s {prevented.side} order {prevented.order_id} met its own order"
               + (f" {counterpart.order_id}" if counterpart is not None else "")
               + " and self-trade prevention expired it")
    return Alert(f"wash_trade:{prevented.market}:stp:{prevented.order_id}", "wash_trade", prevented.market,
                 (prevented.account,), t0, prevented.updated_ts, evidence, 1.0, details)
