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

from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction

from dpg.config import SurveillanceSettings
from dpg.surveillance.model import Alert, Book, Execution, Hit, Order, behind, episodes, iso

NS = 1_000_000_000
ORDERS = 20  # orders an execution's evidence details (the first); the rest are counted
CANCELLED = 500  # cancelled orders an execution's evidence lists by id


def _near(price: int, best: int, pct: Decimal) -> bool:
    return abs(price - best) * 100 <= Fraction(pct) * best


def _other(side: str) -> str:
    return "sell" if side == "buy" else "buy"


def spoofing(execs: Iterable[Execution], orders: list[Order], book: Book, s: SurveillanceSettings, start: int,
             end: int) -> list[Alert]:
    """Alerts for the executions whose first fill is within [start, end]."""
    by_side = _by_account_side(orders)
    window = s.window * NS
    hits: list[Hit] = []
    for e in execs:
        if not start <= e.first_ts <= end or e.account in s.exempt:
            continue
        side = _other(e.side)
        placed = [o for o in by_side.get((e.account, e.market, side), ())
                  if e.first_ts - window <= o.created_ts <= e.first_ts and o.created_seq < e.first_seq]
        if not placed:
            continue
        cancelled = [o for o in placed if o.cancelled_unfilled() and o.updated_ts <= e.first_ts + window]
        if not cancelled or len(cancelled) * 100 < Fraction(s.spoof_cancel_pct) * len(placed):
            continue
        near = []
        for o in cancelled:
            best = book.best(e.market, side, o.updated_seq)
            if best is not None and _near(o.price, best, s.spoof_near_pct):
                near.append((o, best))
        if not near:
            continue
        share = len(cancelled) / len(placed)
        t0 = min(o.created_ts for o in placed)
        t1 = max(e.last_ts, *(o.updated_ts for o in cancelled))
        evidence = {"execution": e.as_json(), "orders_on_side": len(placed), "cancelled_unfilled": len(cancelled),
                    "cancelled_share_pct": f"{share * 100:.2f}", "threshold_pct": str(s.spoof_cancel_pct),
                    "near_best_count": len(near),
                    "near_best": [{**o.as_json(), "best_before_cancel": str(best)} for o, best in near[:ORDERS]],
                    "cancelled": [o.order_id for o in cancelled[:CANCELLED]], "from": iso(t0), "to": iso(t1)}
        hits.append(Hit("spoofing", e.market, e.account, e, t0, t1, share, evidence))
    return episodes(hits)


def layering(execs: Iterable[Execution], orders: list[Order], book: Book, s: SurveillanceSettings, start: int,
             end: int) -> list[Alert]:
    """Alerts for the executions whose first fill is within [start, end]."""
    by_side = _by_account_side(orders)
    cancel_within = s.layering_cancel_s * NS
    hits: list[Hit] = []
    for e in execs:
        if not start <= e.first_ts <= end or e.account in s.exempt:
            continue
        side = _other(e.side)
        layered = []
        for o in by_side.get((e.account, e.market, side), ()):
            if not (o.cancelled_unfilled() and o.created_seq < e.first_seq and o.updated_seq > e.last_seq
                    and o.updated_ts - e.last_ts <= cancel_within):
                continue
            best = book.best(e.market, side, o.created_seq)  # before o was placed
            if best is not None and behind(side, o.price, best):
                layered.append((o, best))
        levels = {o.price for o, _ in layered}
        if len(layered) < s.layering_orders or len(levels) < s.layering_levels:
            continue
        t0 = min(o.created_ts for o, _ in layered)
        t1 = max(o.updated_ts for o, _ in layered)
        evidence = {"execution": e.as_json(),
                    "layered_count": len(layered),
                    "layered": [{**o.as_json(), "best_when_placed": str(best)} for o, best in layered[:ORDERS]],
                    "levels": [str(p) for p in sorted(levels)],
                    "cancelled_within_s": f"{max(o.updated_ts for o, _ in layered) / NS - e.last_ts / NS:.3f}",
                    "from": iso(t0), "to": iso(t1)}
        hits.append(Hit("layering", e.market, e.account, e, t0, t1, float(len(layered)), evidence))
    return episodes(hits)


def _by_account_side(orders: list[Order]) -> dict[tuple[int, str, str], list[Order]]:
    out: dict[tuple[int, str, str], list[Order]] = {}
    for o in orders:
        out.setdefault((o.account, o.market, o.side), []).append(o)
    return out
