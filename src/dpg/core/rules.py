"""A market's order rules, said once for placing and amending: price on the tick, quantity on the
lot, the minimum notional, and whether a stop order would trigger at once. Each check returns the
rejection, or None when the order passes."""

from __future__ import annotations

from dpg.core import events as E
from dpg.core.errors import Reject
from dpg.core.events import Event
from dpg.core.model import MAX_AMOUNT, Market, stop_rises


def _tick(m: Market, what: str) -> list[Event]:
    return E.rejected(Reject.PRICE_OFF_TICK.value, f"{what} must be a multiple of the tick size {m.tick_size}")


def _lot(m: Market) -> list[Event]:
    return E.rejected(Reject.QUANTITY_OFF_LOT.value, f"quantity must be a multiple of the lot size {m.lot_size}")


def _notional(m: Market) -> list[Event]:
    return E.rejected(Reject.BELOW_MIN_NOTIONAL.value, f"notional is below the minimum {m.min_notional}")


def off_tick(m: Market, price: int, what: str = "price") -> list[Event] | None:
    return _tick(m, what) if price % m.tick_size else None


def off_lot(m: Market, qty: int) -> list[Event] | None:
    return _lot(m) if qty % m.lot_size else None


def below_min_notional(m: Market, pt: int, lots: int) -> list[Event] | None:
    """``pt`` ticks x ``lots`` lots against the market's minimum notional."""
    return _notional(m) if pt * lots * m.unit < m.min_notional else None


def priced(m: Market, price: int, qty: int) -> list[Event] | None:
    """A new priced order's price and quantity (base units): positive, on the tick, on the lot,
    the notional at least the minimum, checked in that order. The checks above, in one call for
    the order path (a new order is most of the engine's commands)."""
    if price <= 0 or price >= MAX_AMOUNT:
        return E.rejected(Reject.INVALID_PRICE.value, "price must be positive")
    tick = m.tick_size
    if price % tick:
        return _tick(m, "price")
    if qty <= 0 or qty >= MAX_AMOUNT:
        return E.rejected(Reject.INVALID_QUANTITY.value, "quantity must be positive")
    lot = m.lot_size
    if qty % lot:
        return _lot(m)
    if (price // tick) * (qty // lot) * m.unit < m.min_notional:
        return _notional(m)
    return None


def stop_triggers_now(side: int, otype: int, st: int, last: int) -> list[Event] | None:
    """A stop at ``st`` ticks that the last price (``last`` ticks, 0: no trade yet) already reached."""
    if last and (last >= st if stop_rises(side, otype) else last <= st):
        return E.rejected(Reject.STOP_WOULD_TRIGGER.value, "the last price has already reached the stop price")
    return None
