"""Domain rejections: every refused command carries one stable code and a human reason."""

from __future__ import annotations

from enum import StrEnum


class Reject(StrEnum):
    """Stable rejection codes. The API maps each to an HTTP status in one place."""

    UNKNOWN_MARKET = "UNKNOWN_MARKET"
    UNKNOWN_ASSET = "UNKNOWN_ASSET"
    DUPLICATE_ASSET = "DUPLICATE_ASSET"
    DUPLICATE_MARKET = "DUPLICATE_MARKET"
    INVALID_MARKET = "INVALID_MARKET"
    INVALID_ACCOUNT = "INVALID_ACCOUNT"
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"  # no OpenAccount for this account
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INVALID_PRICE = "INVALID_PRICE"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_ORDER = "INVALID_ORDER"
    PRICE_OFF_TICK = "PRICE_OFF_TICK"
    QUANTITY_OFF_LOT = "QUANTITY_OFF_LOT"
    BELOW_MIN_NOTIONAL = "BELOW_MIN_NOTIONAL"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    DUPLICATE_REFERENCE = "DUPLICATE_REFERENCE"
    POST_ONLY_WOULD_TAKE = "POST_ONLY_WOULD_TAKE"
    FOK_NOT_FILLABLE = "FOK_NOT_FILLABLE"
    NO_LIQUIDITY = "NO_LIQUIDITY"
    SELF_TRANSFER = "SELF_TRANSFER"
    DUPLICATE_WITHDRAWAL = "DUPLICATE_WITHDRAWAL"
    STALE_EPOCH = "STALE_EPOCH"
    STOP_WOULD_TRIGGER = "STOP_WOULD_TRIGGER"
    WITHDRAWAL_NOT_FOUND = "WITHDRAWAL_NOT_FOUND"
    INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"  # perpetuals: the order or the change cannot be margined
    REDUCE_ONLY = "REDUCE_ONLY"  # a reduce-only order with no position it could reduce
    INVALID_LEVERAGE = "INVALID_LEVERAGE"
    NO_INDEX_PRICE = "NO_INDEX_PRICE"  # a perpetual without an index price yet takes no order
    INDEX_STALE = "INDEX_STALE"  # no valid index source: only orders that reduce a position, no margin out
    POSITION_OPEN = "POSITION_OPEN"  # the margin mode changes only with no position and no order
    NO_POSITION = "NO_POSITION"
    FUNDING_NOT_DUE = "FUNDING_NOT_DUE"
    MARKET_HALTED = "MARKET_HALTED"  # a halted market takes no new order and no amendment; cancels go on
    GOVERNED = "GOVERNED"  # governance decides this parameter: the operator's hand no longer changes it
    UNAVAILABLE = "UNAVAILABLE"  # the journal failed or the exchange is stopping: nothing was applied


class DomainError(Exception):
    """Raised at the edges (unit conversion, parsing) with the same codes the engine uses."""

    def __init__(self, code: Reject, reason: str) -> None:
        super().__init__(f"{code.value}: {reason}")
        self.code = code
        self.reason = reason
