"""Events: what applying a command did. Named tuples, first field the kind, read by name.

On the hot path the engine builds them with ``tuple.__new__`` (``new(Cls, (...))``): the same
object as ``Cls(...)``, without the generated constructor's call. They still compare equal to plain
tuples, and whatever crosses the bus as a plain list comes back named (``named``).

Prices and quantities in events are base units (quote units per whole base; base units), not ticks
and lots, so that every consumer reads them without the market's parameters. The kinds, in the
order of their fields:

    Rejected(REJECTED, code, reason)
    OrderNew(ORDER_NEW, oid, account, market, side, otype, price, qty, quote_qty, client_id, stp, stop_price)
    Trade(TRADE, trade_id, market, price, qty, notional, taker_oid, maker_oid, taker_account,
        maker_account, taker_side, taker_fee, maker_fee)
    OrderDone(ORDER_DONE, oid, status, remaining, reason)
    OrderAmended(ORDER_AMENDED, oid, price, qty, remaining, requeued)
    Balance(BALANCE, account, asset, d_available, d_locked, cause)
    AssetListed(ASSET_LISTED, asset, symbol, decimals)
    MarketListed(MARKET_LISTED, market, symbol, listing)   listing: the ListMarket or ListPerp command
    WithdrawalRequested(WITHDRAWAL_REQUESTED, withdrawal_id, account, asset, amount, destination)
    WithdrawalDone(WITHDRAWAL_DONE, withdrawal_id, completed, reference_or_reason)
    EpochMarked(EPOCH_MARKED, epoch)
    OrderTriggered(ORDER_TRIGGERED, oid, account, market, side, price, remaining)  a stop order becomes a limit order
    AccountOpened(ACCOUNT_OPENED, account)
    Position(POSITION, account, market, size, cost, margin, realized, cause)  a perpetual position after a change
    MarkPrice(MARK_PRICE, market, index_price, mark)
    FundingPaid(FUNDING_PAID, market, rate, mark, paid, received, to_insurance, next_funding)
    Liquidation(LIQUIDATION, account, market, size, bankruptcy_price, via, fee)
    LeverageSet(LEVERAGE_SET, account, market, leverage, isolated)
    IndexState(INDEX_STATE, market, stale)  a perpetual's index became stale (IndexStale) or valid again
    MarketChanged(MARKET_CHANGED, market, maker_fee_ppm, taker_fee_ppm, halted, ref)  SetFees, HaltMarket
    ParamsChanged(PARAMS_CHANGED, governed, staker_share_ppm, ref)  EnableGovernance, SetStakerShare

A position's ``size`` is signed base units (+ long, - short), ``cost`` the signed quote amount it was
opened for (entry price = cost / size), ``margin`` its isolated margin (0 for cross), ``realized`` the
PnL this change settled. Perpetual prices (index, mark, bankruptcy) are quote units per whole base.

``market`` and ``asset`` are indices in listing order. Fees are in the asset the payer receives:
a buyer pays in base, a seller in quote. Every change of a balance is one Balance event.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any, NamedTuple

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
POSITION = 13
MARK_PRICE = 14
FUNDING_PAID = 15
LIQUIDATION = 16
LEVERAGE_SET = 17
INDEX_STATE = 18
MARKET_CHANGED = 19
PARAMS_CHANGED = 20


class Cause(IntEnum):
    """Why a balance moved (the ``cause`` of a Balance event)."""

    LOCK = 0
    UNLOCK = 1
    TRADE = 2
    FEE = 3
    CREDIT = 4
    TRANSFER = 5
    WITHDRAWAL = 6  # a completed withdrawal leaves the exchange
    REALIZED = 7  # a perpetual position's profit or loss settled
    FUNDING = 8  # a funding payment
    MARGIN = 9  # into or out of an isolated position's margin
    LIQUIDATION = 10  # a liquidation fee, to the insurance fund
    INSURANCE = 11  # the insurance fund covering a bankrupt account's loss
    STAKERS = 12  # the stakers' share of the fees, from the fee account to their reserve


class PositionCause(IntEnum):
    """Why a position changed (the ``cause`` of a Position event)."""

    TRADE = 0
    LIQUIDATION = 1  # closed through the book by the liquidation engine
    TAKEOVER = 2  # taken over by the insurance fund at the bankruptcy price
    ADL = 3  # auto-deleveraged against a bankrupt position
    FUNDING = 4
    MARGIN = 5  # isolated margin added or removed


class Rejected(NamedTuple):
    kind: int
    code: str
    reason: str


class OrderNew(NamedTuple):
    kind: int
    oid: int
    account: int
    market: int
    side: int
    otype: int
    price: int
    qty: int
    quote_qty: int
    client_id: str
    stp: int
    stop_price: int


class Trade(NamedTuple):
    kind: int
    trade_id: int
    market: int
    price: int
    qty: int
    notional: int
    taker_oid: int
    maker_oid: int
    taker_account: int
    maker_account: int
    taker_side: int
    taker_fee: int
    maker_fee: int


class OrderDone(NamedTuple):
    kind: int
    oid: int
    status: int
    remaining: int
    reason: str


class OrderAmended(NamedTuple):
    kind: int
    oid: int
    price: int
    qty: int
    remaining: int
    requeued: bool


class Balance(NamedTuple):
    kind: int
    account: int
    asset: int
    d_available: int
    d_locked: int
    cause: int


class AssetListed(NamedTuple):
    kind: int
    asset: int
    symbol: str
    decimals: int


class MarketListed(NamedTuple):
    kind: int
    market: int
    symbol: str
    listing: Any  # the ListMarket or ListPerp command that listed it: what a replica lists it from


class WithdrawalRequested(NamedTuple):
    kind: int
    withdrawal_id: str
    account: int
    asset: int
    amount: int
    destination: str


class WithdrawalDone(NamedTuple):
    kind: int
    withdrawal_id: str
    completed: bool
    reference_or_reason: str


class EpochMarked(NamedTuple):
    kind: int
    epoch: int


class OrderTriggered(NamedTuple):
    kind: int
    oid: int
    account: int
    market: int
    side: int
    price: int
    remaining: int


class AccountOpened(NamedTuple):
    kind: int
    account: int


class Position(NamedTuple):
    kind: int
    account: int
    market: int
    size: int
    cost: int
    margin: int
    realized: int
    cause: int


class MarkPrice(NamedTuple):
    kind: int
    market: int
    index_price: int
    mark: int


class FundingPaid(NamedTuple):
    kind: int
    market: int
    rate: int
    mark: int
    paid: int
    received: int
    to_insurance: int
    next_funding: int


class Liquidation(NamedTuple):
    kind: int
    account: int
    market: int
    size: int
    bankruptcy_price: int
    via: int
    fee: int


class LeverageSet(NamedTuple):
    kind: int
    account: int
    market: int
    leverage: int
    isolated: bool


class IndexState(NamedTuple):
    kind: int
    market: int
    stale: bool


class MarketChanged(NamedTuple):
    """A market's fees or halted state changed (SetFees, HaltMarket); ``ref`` the decision's, or ""."""

    kind: int
    market: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    halted: bool
    ref: str


class ParamsChanged(NamedTuple):
    """The exchange-wide governed parameters: whether governance decides them, the stakers' share."""

    kind: int
    governed: bool
    staker_share_ppm: int
    ref: str


Event = tuple[Any, ...]
"""Any event: every class above is a tuple whose first field is its kind. A consumer checks the
kind, then reads the fields by name through its class (``cast(E.Trade, ev).price``)."""

CLASSES: tuple[type[Any], ...] = (
    Rejected, OrderNew, Trade, OrderDone, OrderAmended, Balance, AssetListed, MarketListed, WithdrawalRequested,
    WithdrawalDone, EpochMarked, OrderTriggered, AccountOpened, Position, MarkPrice, FundingPaid, Liquidation,
    LeverageSet, IndexState, MarketChanged, ParamsChanged,
)  # indexed by kind

new = tuple.__new__  # new(Trade, (TRADE, ...)): a Trade without the generated constructor's call


def named(fields: Sequence[Any]) -> Event:
    """An event from its plain fields (as the bus carries them), named by its kind."""
    ev: Event = new(CLASSES[fields[0]], fields)
    return ev


def rejected(code: str, reason: str) -> list[Event]:
    """The whole answer to a refused command."""
    return [new(Rejected, (REJECTED, code, reason))]
