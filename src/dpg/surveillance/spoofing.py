"""Spoofing and layering: orders shown on one side of a book and cancelled unfilled around an
execution of the same account on the other side (accounts in ``DPG_SURVEILLANCE_EXEMPT``, the
designated market makers, left out).

Spoofing, per execution (an order's fills) of account X on side S in market M at time t:
X's orders on the other side placed within the window before t (and before the execution's first
fill); among them those cancelled before any fill, the cancellation within the window after t; at
least one of those was near the best price of its side just before its cancellation (within
``spoof_near_pct`` % of it); and the cancelled share of X's orders on that side is at or above
``spoof_cancel_pct`` %.

Layering, per execution of X on side S: at least ``layering_orders`` orders of X on the other side,
at ``layering_levels`` distinct prices or more, each behind the best price of its side when placed
(never improving it), on the book through the execution, and cancelled unfilled within
``layering_cancel_s`` seconds after its last fill.

The executions of one account that met a rule in one market and UTC hour are one alert (an
episode, ``dpg.surveillance.model.episodes``): a market maker's every fill is not an alert."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

from dpg.config import SurveillanceSettings
from dpg.surveillance.model import Alert, Book, Execution, Hit, Order, behind, episodes, iso

NS = 1_000_000_000
ORDERS = 20  # orders an execution's evidence details (the first); the rest are counted
CANCELLED = 500  # cancelled orders an execution's evidence lists by id


def _near(price: int, best: int, pct: Fraction) -> bool:
    return abs(price - best) * 100 * pct.denominator <= pct.numerator * best


def _other(side: str) -> str:
    return "sell" if side == "buy" else "buy"


def spoofing(execs: Iterable[Execution], orders: list[Order], book: Book, s: SurveillanceSettings, start: int,
             end: int) -> list[Alert]:
    """Alerts for the executions whose first fill is within [start, end]."""
    by_side = {k: _Placed(v) for k, v in _by_account_side(orders).items()}
    window = s.window * NS
    near_pct, cancel_pct = Fraction(s.spoof_near_pct), Fraction(s.spoof_cancel_pct)
    hits: list[Hit] = []
    for e in execs:
        if not start <= e.first_ts <= end or e.account in s.exempt:
            continue
        side = _other(e.side)
        index = by_side.get((e.account, e.market, side))
        if index is None:
            continue
        # placed within the window before the first fill (ts follows seq: one range of the list)
        lo = bisect.bisect_left(index.ts, e.first_ts - window)
        hi = bisect.bisect_left(index.seq, e.first_seq)
        if hi <= lo or (index.cancelled[hi] - index.cancelled[lo]) * 100 < cancel_pct * (hi - lo):
            continue  # too few cancelled even counting every cancellation
        placed = index.orders[lo:hi]
        cancelled = [o for o in placed if o.cancelled_unfilled() and o.updated_ts <= e.first_ts + window]
        if not cancelled or len(cancelled) * 100 < cancel_pct * len(placed):
            continue
        near = []
        for o in cancelled:
            best = book.best(e.market, side, o.updated_seq)
            if best is not None and _near(o.price, best, near_pct):
                near.append((o, best))
        if not near:
            continue
        share = len(cancelled) / len(placed)
        t0 = min(o.created_ts for o in placed)
        t1 = max(e.last_ts, *(o.updated_ts for o in cancelled))
        hits.append(Hit("spoofing", e.market, e.account, e, t0, t1, share,
                        _spoof_evidence(e, len(placed), cancelled, near, share, s, t0, t1)))
    return episodes(hits)


def layering(execs: Iterable[Execution], orders: list[Order], book: Book, s: SurveillanceSettings, start: int,
             end: int) -> list[Alert]:
    """Alerts for the executions whose first fill is within [start, end]."""
    by_side = {k: _Cancelled(v) for k, v in _by_account_side(orders).items()}
    cancel_within = s.layering_cancel_s * NS
    hits: list[Hit] = []
    for e in execs:
        if not start <= e.first_ts <= end or e.account in s.exempt:
            continue
        side = _other(e.side)
        index = by_side.get((e.account, e.market, side))
        if index is None:
            continue
        layered = []
        # cancelled after the last fill, within the seconds allowed
        lo = bisect.bisect_right(index.seq, e.last_seq)
        hi = bisect.bisect_right(index.ts, e.last_ts + cancel_within)
        for o in index.orders[lo:hi]:
            if o.created_seq >= e.first_seq:
                continue
            best = book.best(e.market, side, o.created_seq)  # before o was placed
            if best is not None and behind(side, o.price, best):
                layered.append((o, best))
        levels = {o.price for o, _ in layered}
        if len(layered) < s.layering_orders or len(levels) < s.layering_levels:
            continue
        t0 = min(o.created_ts for o, _ in layered)
        t1 = max(o.updated_ts for o, _ in layered)
        hits.append(Hit("layering", e.market, e.account, e, t0, t1, float(len(layered)),
                        _layering_evidence(e, layered, levels, t0, t1)))
    return episodes(hits)


def _spoof_evidence(e: Execution, placed: int, cancelled: list[Order], near: list[tuple[Order, int]], share: float,
                    s: SurveillanceSettings, t0: int, t1: int) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        return {"execution": e.as_json(), "orders_on_side": placed, "cancelled_unfilled": len(cancelled),
                "cancelled_share_pct": f"{share * 100:.2f}", "threshold_pct": str(s.spoof_cancel_pct),
                "near_best_count": len(near),
                "near_best": [{**o.as_json(), "best_before_cancel": str(best)} for o, best in near[:ORDERS]],
                "cancelled": [o.order_id for o in cancelled[:CANCELLED]], "from": iso(t0), "to": iso(t1)}
    return make


def _layering_evidence(e: Execution, layered: list[tuple[Order, int]], levels: set[int], t0: int,
                       t1: int) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        return {"execution": e.as_json(), "layered_count": len(layered),
                "layered": [{**o.as_json(), "best_when_placed": str(best)} for o, best in layered[:ORDERS]],
                "levels": [str(p) for p in sorted(levels)],
                "cancelled_within_s": f"{max(o.updated_ts for o, _ in layered) / NS - e.last_ts / NS:.3f}",
                "from": iso(t0), "to": iso(t1)}
    return make


def _by_account_side(orders: list[Order]) -> dict[tuple[int, str, str], list[Order]]:
    """Each account's orders per market and side, in the order they were placed."""
    out: dict[tuple[int, str, str], list[Order]] = {}
    for o in sorted(orders, key=lambda o: o.created_seq):
        out.setdefault((o.account, o.market, o.side), []).append(o)
    return out


class _Placed:
    """An account's orders on one side of a market in the order placed (so by time as well: the
    sequencer's stamps never go back), with the running count of those cancelled unfilled."""

    def __init__(self, orders: list[Order]) -> None:
        self.orders = orders
        self.seq = [o.created_seq for o in orders]
        self.ts = [o.created_ts for o in orders]
        self.cancelled = [0]
        for o in orders:
            self.cancelled.append(self.cancelled[-1] + o.cancelled_unfilled())


class _Cancelled:
    """An account's orders on one side of a market cancelled unfilled, in the order cancelled."""

    def __init__(self, orders: list[Order]) -> None:
        self.orders = sorted((o for o in orders if o.cancelled_unfilled()), key=lambda o: o.updated_seq)
        self.seq = [o.updated_seq for o in self.orders]
        self.ts = [o.updated_ts for o in self.orders]
