"""What the surveillance reads and raises: orders and executions as the projections hold them, the
book an order met (rebuilt from the orders projection), alerts, and the one tolerance test."""

from __future__ import annotations

import bisect
import functools
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

LIVE = ("open", "partially_filled")  # statuses of an order still on the book


def within(a: Fraction | int, b: Fraction | int, pct: Decimal) -> bool:
    """Whether ``a`` and ``b`` (both > 0) are within ``pct`` percent of each other: their difference
    is at most ``pct`` % of the smaller one, in exact arithmetic. So at 3 %: 103 vs 100 is within
    (3 = 3 % of 100), 96 vs 100 is not (4 > 2.88 = 3 % of 96), 98 vs 100 is (2 <= 2.94)."""
    low, high = (a, b) if a <= b else (b, a)
    f = _exact(pct)
    return (high - low) * 100 * f.denominator <= f.numerator * low


@functools.lru_cache(maxsize=64)
def _exact(pct: Decimal) -> Fraction:
    return Fraction(pct)


def iso(ts: int) -> str:
    """A projection time (nanoseconds since the epoch) as ISO 8601 UTC."""
    return at(ts).isoformat()


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts / 1e9, UTC)


@dataclass(frozen=True, slots=True)
class Order:
    """A row of the orders projection (amounts in base units, price in quote units per whole base)."""

    order_id: int
    account: int
    market: str
    side: str  # "buy" | "sell"
    type: str
    price: int
    qty: int
    status: str
    filled: int
    reason: str
    created_seq: int
    updated_seq: int
    created_ts: int
    updated_ts: int
    triggered: bool

    def cancelled_unfilled(self) -> bool:
        return self.status == "canceled" and self.filled == 0

    def as_json(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "account": self.account, "side": self.side, "type": self.type,
                "price": str(self.price), "qty": str(self.qty), "filled": str(self.filled), "status": self.status,
                "reason": self.reason, "placed": iso(self.created_ts), "placed_seq": self.created_seq,
                "last_change": iso(self.updated_ts), "last_change_seq": self.updated_seq}


@dataclass(slots=True)
class Execution:
    """An order's fills (within the trades read): its side, size, value and times."""

    order_id: int
    account: int
    market: str
    side: str
    qty: int = 0
    value: int = 0  # sum of price x qty over the fills
    first_ts: int = 0
    last_ts: int = 0
    first_seq: int = 0
    last_seq: int = 0
    trades: list[int] = field(default_factory=list)

    @property
    def price(self) -> Fraction:
        """The volume-weighted average price of the fills."""
        return Fraction(self.value, self.qty)

    def as_json(self) -> dict[str, Any]:
        p = self.price
        return {"order_id": self.order_id, "account": self.account, "side": self.side, "qty": str(self.qty),
                "avg_price": str(p.numerator // p.denominator) if p.denominator == 1 else f"{float(p):.6f}",
                "first_fill": iso(self.first_ts), "last_fill": iso(self.last_ts), "trades": self.trades}


def executions(trades: list[tuple[Any, ...]]) -> dict[int, Execution]:
    """Each order's execution from trade rows ``(trade_id, seq, ts, market, price, qty, taker_order,
    maker_order, taker_account, maker_account, taker_side)`` in trade order."""
    out: dict[int, Execution] = {}
    for tid, seq, ts, market, price, qty, taker, maker, t_acct, m_acct, t_side in trades:
        m_side = "sell" if t_side == "buy" else "buy"
        for oid, acct, side in ((taker, t_acct, t_side), (maker, m_acct, m_side)):
            e = out.get(oid)
            if e is None:
                e = out[oid] = Execution(oid, acct, market, side, first_ts=ts, first_seq=seq)
            e.qty += qty
            e.value += price * qty
            e.last_ts, e.last_seq = ts, seq
            e.trades.append(tid)
    return out


class Book:
    """The best price of each market and side just before each command, rebuilt from the orders
    read: an order is on the book from the command after the one that placed it through the one
    that filled, cancelled or expired it (an order amended keeps its last price)."""

    def __init__(self, orders: list[Order]) -> None:
        events: dict[tuple[str, str], list[tuple[int, int, Order]]] = {}
        for o in orders:
            if o.price > 0 and o.triggered:
                ev = events.setdefault((o.market, o.side), [])
                ev.append((o.created_seq + 1, 1, o))
                if o.status not in LIVE:
                    ev.append((o.updated_seq + 1, 0, o))  # off the book from the command after
        # per market and side: the commands where the best changed, and the best from each on
        self.steps: dict[tuple[str, str], tuple[list[int], list[int | None]]] = {}
        for key, ev in events.items():
            ev.sort(key=lambda e: (e[0], e[1], e[2].order_id))
            sign = -1 if key[1] == "buy" else 1  # a heap of the best first
            heap: list[tuple[int, int]] = []
            gone: set[int] = set()
            at_seq: list[int] = []
            best: list[int | None] = []
            i = 0
            while i < len(ev):
                seq = ev[i][0]
                while i < len(ev) and ev[i][0] == seq:
                    _, add, o = ev[i]
                    if add:
                        heapq.heappush(heap, (sign * o.price, o.order_id))
                    else:
                        gone.add(o.order_id)
                    i += 1
                while heap and heap[0][1] in gone:
                    heapq.heappop(heap)
                at_seq.append(seq)
                best.append(sign * heap[0][0] if heap else None)
            self.steps[key] = (at_seq, best)

    def best(self, market: str, side: str, seq: int) -> int | None:
        """The best price of ``side`` just before command ``seq`` (the highest bid, the lowest ask);
        None when that side was empty."""
        steps = self.steps.get((market, side))
        if steps is None:
            return None
        i = bisect.bisect_right(steps[0], seq) - 1
        return steps[1][i] if i >= 0 else None


def behind(side: str, price: int, best: int) -> bool:
    """A price strictly worse than the best of its side (a bid below it, an ask above it)."""
    return price < best if side == "buy" else price > best


EPISODE_EXECUTIONS = 100  # executions an episode's evidence details; the rest are counted and listed by id


@dataclass(frozen=True, slots=True)
class Hit:
    """One execution that met a rule of an account's conduct (spoofing, layering): its evidence."""

    kind: str
    market: str
    account: int
    execution: Execution
    t0: int  # ns: the first event of its evidence
    t1: int  # the last
    score: float
    evidence: Callable[[], dict[str, Any]]  # made only for the executions an episode details


def hour_of(ts: int) -> str:
    return at(ts).strftime("%Y-%m-%dT%H")


DESCRIBE = {  # an episode's line for an operator
    "spoofing": "account {account} cancelled unfilled orders near the best price around {n} of its executions in "
                "{market} (cancelled share up to {pct:.1f} %)",
    "layering": "account {account} layered orders behind the best price and cancelled them within seconds after "
                "{n} of its executions in {market} (up to {score:.0f} orders)",
}


def episodes(hits: list[Hit]) -> list[Alert]:
    """One alert per kind, market, account and UTC hour of the executions' first fills, listing
    each execution that met the rule (a market maker's every fill is not an alert of its own)."""
    groups: dict[tuple[str, str, int, str], list[Hit]] = {}
    for h in sorted(hits, key=lambda h: (h.execution.first_ts, h.execution.order_id)):
        groups.setdefault((h.kind, h.market, h.account, hour_of(h.execution.first_ts)), []).append(h)
    return [episode(kind, market, account, hour, [h.evidence() for h in group[:EPISODE_EXECUTIONS]],
                    min(h.t0 for h in group), max(h.t1 for h in group), max(h.score for h in group),
                    sorted(h.execution.order_id for h in group))
            for (kind, market, account, hour), group in groups.items()]


def episode(kind: str, market: str, account: int, hour: str, executions: list[dict[str, Any]], t0: int, t1: int,
            score: float, ids: list[int] | None = None) -> Alert:
    """The alert of an episode from its executions' evidence (each with ``execution.order_id``)."""
    by_id = {ev["execution"]["order_id"]: ev for ev in executions}
    ids = ids or sorted(by_id)
    evidence = {"rule": kind, "account": account, "hour": hour, "count": len(ids), "execution_orders": ids,
                "executions": [by_id[i] for i in ids if i in by_id][:EPISODE_EXECUTIONS],
                "from": iso(t0), "to": iso(t1)}
    return Alert(f"{kind}:{market}:{account}:{hour}", kind, market, (account,), t0, t1, evidence, score,
                 DESCRIBE[kind].format(account=account, market=market, n=len(ids), score=score, pct=score * 100))


def merged(stored: dict[str, Any], t0: int, t1: int, score: float, alert: Alert) -> Alert | None:
    """An episode stored before (its evidence, first and last event, score) with what a run found
    since; None when the run found no execution it did not list."""
    old = set(stored.get("execution_orders", []))
    if set(alert.evidence["execution_orders"]) <= old:
        return None
    kept = {ev["execution"]["order_id"]: ev for ev in stored.get("executions", [])}
    kept.update({ev["execution"]["order_id"]: ev for ev in alert.evidence["executions"]})
    return episode(alert.kind, alert.market, alert.accounts[0], alert.evidence["hour"], list(kept.values()),
                   min(t0, alert.window_start), max(t1, alert.window_end), max(score, alert.score),
                   sorted(old | set(alert.evidence["execution_orders"])))


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as stored (surveillance_alerts): ``key`` names what it is about, so that finding it
    again inserts nothing."""

    key: str
    kind: str  # wash_trade | spoofing | layering
    market: str
    accounts: tuple[int, ...]
    window_start: int  # ns: the first event of the evidence
    window_end: int  # ns: the last one
    evidence: dict[str, Any]
    score: float
    details: str
