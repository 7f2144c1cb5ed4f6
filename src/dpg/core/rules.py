"""A market's order rules, said once for placing and amending: price on the tick, quantity on the
lot, the minimum notional, and whether a stop order would trigger at once. Each check returns the
rejection, or None when the order passes."""

from __future__ import annotations

from dpg.core import events as E
from dpg.core.errors import Reject
from dpg.core.events import Event
from dpg.core.model import Market, stop_rises


def off_tick(m: Market, price: int, what: str = "price") -> list[Event] | None:
    if price % m.tick_size:
        return E.rejected(Reject.PRICE_OFF_TICK.value, f"{what} must be a multiple of the tick size {m.tick_size}")
    return None


def off_lot(m: Market, qty: int) -> list[Event] | None:
    if qty % m.lot_size:
        return E.rejected(Reject.QUANTITY_OFF_LOT.value, f"quantity must be a multiple of the lot size {m.lot_size}")
    return None


def below_min_notional(m: Market, pt: int, lots: int) -> list[Event] | None:
    """``pt`` ticks x ``lots`` lots against the market's minimum notional."""
    if pt * lots * m.unit < m.min_notional:
        return E.rejected(Reject.BELOW_MIN_NOTIONAL.value, f"notional is below the minimum {m.min_notional}")
    return None


def stop_triggers_now(side: int, otype: int, st: int, last: int) -> list[Event] | None:
    """A stop at ``st`` ticks that the last price (``last`` ticks, 0: no trade yet) already reached."""
    if last and (last >= st if stop_rises(side, otype) else last <= st):
        return E.rejected(Reject.STOP_WOULD_TRIGGER.value, "the last price has already reached the stop price")
    return None
