"""Events: what applying a command did. Plain tuples on the hot path, first item the kind.

Prices and quantities in events are base units (quote units per whole base; base units), not ticks
and lots, so that every consumer reads them without the market's parameters.

    (REJECTED, code, reason)
    (ORDER_NEW, oid, account, market, side, otype, price, qty, quote_qty, client_id, stp)
    (TRADE, trade_id, market, price, qty, notional, taker_oid, maker_oid, taker_account,
        maker_account, taker_side, taker_fee, maker_fee)
    (ORDER_DONE, oid, status, remaining, reason)
    (ORDER_AMENDED, oid, price, qty, remaining, requeued)
    (BALANCE, account, asset, d_available, d_locked, cause)
    (ASSET_LISTED, index, symbol, decimals)
    (MARKET_LISTED, index, symbol)
    (WITHDRAWAL_REQUESTED, withdrawal_id, account, asset, amount, destination)
    (WITHDRAWAL_DONE, withdrawal_id, completed, reference_or_reason)
    (EPOCH_MARKED, epoch)
    (ORDER_TRIGGERED, oid, account, market, side, price, remaining)  a stop order becomes a limit order
    (ACCOUNT_OPENED, account)

``market`` and ``asset`` are indices in listing order. Fees are in the asset the payer receives:
a buyer pays in base, a seller in quote. Every change of a balance is one BALANCE event.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

Event = tuple[Any, ...]

REJECTED = 0
ORDER_NEW = 1
TRADE = 2
ORDER_DONE = 3
ORDER_AMENDED = 4
BALANCE = 5
ASSET_LISTED = 6
MARKET_LISTED = 7
WITHDRAWAL_REQUESTED = 8
WITHDRAWAL_DONE = 9
EPOCH_MARKED = 10
ORDER_TRIGGERED = 11
ACCOUNT_OPENED = 12


class Cause(IntEnum):
    """Why a balance moved (the ``cause`` of a BALANCE event)."""

    LOCK = 0
    UNLOCK = 1
    TRADE = 2
    FEE = 3
    CREDIT = 4
    TRANSFER = 5
    WITHDRAWAL = 6  # a completed withdrawal leaves the exchange


KIND_NAMES = {
    REJECTED: "rejected",
    ORDER_NEW: "order_new",
    TRADE: "trade",
    ORDER_DONE: "order_done",
    ORDER_AMENDED: "order_amended",
    BALANCE: "balance",
    ASSET_LISTED: "asset_listed",
    MARKET_LISTED: "market_listed",
    WITHDRAWAL_REQUESTED: "withdrawal_requested",
    WITHDRAWAL_DONE: "withdrawal_done",
    EPOCH_MARKED: "epoch_marked",
    ORDER_TRIGGERED: "order_triggered",
    ACCOUNT_OPENED: "account_opened",
}
