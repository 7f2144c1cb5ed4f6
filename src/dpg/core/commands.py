"""Commands: the only way state changes. Each is a small frozen value; amounts in base units.

The sequencer stamps a command with its sequence number and time; the engine applies it. A
command is never trusted: the engine validates every field and rejects with a stable code. Each
command class carries its journal kind (``KIND``) and the name of its engine handler (``NAME``);
``COMMANDS`` is the one registry the journal's codec and the engine's dispatch are built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from dpg.core.model import STP, OrderType, Side


@dataclass(frozen=True, slots=True)
class ListAsset:
    KIND: ClassVar[int] = 1  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "list_asset"

    symbol: str
    decimals: int


@dataclass(frozen=True, slots=True)
class ListMarket:
    KIND: ClassVar[int] = 2  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "list_market"

    symbol: str
    base: str
    quote: str
    tick_size: int
    lot_size: int
    min_notional: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    ref: str = ""  # a governance decision's reference ("gov:..."), once governance decides listings


@dataclass(frozen=True, slots=True)
class RequireAccounts:
    """From this command on, only an opened account is credited, receives transfers, trades or
    withdraws. A new journal starts with it (genesis); a journal written before OpenAccount existed
    gets it once at the next start, after every signed-up user's account is opened, so the commands
    before it replay as they ran (a credit or a transfer opening its account by itself)."""

    KIND: ClassVar[int] = 14  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "require_accounts"


@dataclass(frozen=True, slots=True)
class OpenAccount:
    """A user's ledger account comes into existence (at sign-up). Only an open account is credited,
    receives transfers, places orders or withdraws; opening an open account changes nothing, so a
    retried sign-up is harmless. The system accounts (fees, insurance) are always open."""

    KIND: ClassVar[int] = 9  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "open_account"

    account: int


@dataclass(frozen=True, slots=True)
class Credit:
    """Money entering the exchange: an operator's fiat credit, later a confirmed chain deposit.

    ``ref`` is the external reference (bank transfer id, chain/tx/log index); a reference is
    credited at most once.
    """

    KIND: ClassVar[int] = 3  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "credit"

    account: int
    asset: str
    amount: int
    ref: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Internal transfer between two users: instant and free."""

    KIND: ClassVar[int] = 4  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "transfer"

    from_account: int
    to_account: int
    asset: str
    amount: int


@dataclass(frozen=True, slots=True)
class RequestWithdrawal:
    """A user's withdrawal, accepted by the edge (allow-list, 2FA, limits), or the stakers' reserve
    (STAKERS_ACCOUNT) paid to the staking contract: its funds are locked
    until the chain pays it out (CompleteWithdrawal) or it fails (FailWithdrawal)."""

    KIND: ClassVar[int] = 5  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "request_withdrawal"

    account: int
    asset: str
    amount: int
    withdrawal_id: str
    destination: str  # "<chain>:<address>", for the record


@dataclass(frozen=True, slots=True)
class RequestForcedWithdrawal:
    """A forced withdrawal the user asked the vault for on the chain (its escape hatch): the whole
    available balance of ``asset`` is locked, as a RequestWithdrawal of that amount would, for the
    pipeline to pay to the account's exit address. Nothing available: refused (INSUFFICIENT_FUNDS),
    and the exchange answers the vault that the balance is zero."""

    KIND: ClassVar[int] = 27  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "request_forced_withdrawal"

    account: int
    asset: str
    withdrawal_id: str
    destination: str  # "<chain>:<exit address>:<request id>", for the record


@dataclass(frozen=True, slots=True)
class CompleteWithdrawal:
    """The payout is final on the chain: the locked funds leave the exchange."""

    KIND: ClassVar[int] = 6  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "complete_withdrawal"

    withdrawal_id: str
    reference: str  # e.g. "<chain>:<tx hash>"


@dataclass(frozen=True, slots=True)
class FailWithdrawal:
    """The payout failed or expired: the locked funds return to the user."""

    KIND: ClassVar[int] = 7  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "fail_withdrawal"

    withdrawal_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class MarkEpoch:
    """The proof-of-reserves snapshot point: every balance as of this command's seq belongs to
    ``epoch``. Trading goes on; the projection follower records the balances off the hot path."""

    KIND: ClassVar[int] = 8  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "mark_epoch"

    epoch: int


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    KIND: ClassVar[int] = 10  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "place_order"

    account: int
    market: str
    side: Side
    otype: OrderType
    price: int = 0  # quote base units per whole base; 0 for market orders
    qty: int = 0  # base units; 0 for a market buy by quote amount
    quote_qty: int = 0  # quote base units; only for a market buy by quote amount
    client_id: str = ""
    stp: STP = STP.EXPIRE_TAKER
    stop_price: int = 0  # stop and take-profit orders: the last trade price (perpetuals: the mark) that triggers them
    flags: int = 0  # perpetuals: OrderFlag bits (reduce-only, close-position)


@dataclass(frozen=True, slots=True)
class CancelOrder:
    KIND: ClassVar[int] = 11  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "cancel_order"

    account: int
    market: str
    order_id: int = 0
    client_id: str = ""


@dataclass(frozen=True, slots=True)
class CancelAll:
    KIND: ClassVar[int] = 12  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "cancel_all"

    account: int
    market: str


@dataclass(frozen=True, slots=True)
class AmendOrder:
    """Change price and/or total quantity. Reducing the quantity keeps time priority; a new
    price or a larger quantity re-queues the order (and may trade, unless it is post-only)."""

    KIND: ClassVar[int] = 13  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "amend_order"

    account: int
    market: str
    order_id: int
    price: int = 0  # 0: unchanged
    qty: int = 0  # new total quantity in base units (filled part included); 0: unchanged


@dataclass(frozen=True, slots=True)
class ListPerp:
    """A linear perpetual (``BASE-PERP``), quoted, margined and settled in ``quote``: the spot
    market's parameters, its tier table ((notional floor, MMR ppm, max leverage) per bracket,
    quote base units), its funding interval and the impact notional of its premium index."""

    KIND: ClassVar[int] = 15  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "list_perp"

    symbol: str
    base: str
    quote: str
    tick_size: int
    lot_size: int
    min_notional: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    tiers: tuple[tuple[int, int, int], ...]
    funding_interval_ms: int
    impact_notional: int
    ref: str = ""  # as ListMarket's


@dataclass(frozen=True, slots=True)
class SetLeverage:
    """An account's leverage on a perpetual (1 to the tier's maximum), for what it opens next."""

    KIND: ClassVar[int] = 16  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "set_leverage"

    account: int
    market: str
    leverage: int


@dataclass(frozen=True, slots=True)
class SetMarginMode:
    """Cross (every cross position shares the account's quote balance) or isolated (the position
    has its own margin). Only while the account has no position and no open order there."""

    KIND: ClassVar[int] = 17  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "set_margin_mode"

    account: int
    market: str
    isolated: bool


@dataclass(frozen=True, slots=True)
class AdjustMargin:
    """Add (amount > 0) or remove (amount < 0) margin of an isolated position, in quote base units."""

    KIND: ClassVar[int] = 18  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "adjust_margin"

    account: int
    market: str
    amount: int


@dataclass(frozen=True, slots=True)
class IndexPrice:
    """A perpetual's index price (quote base units per whole base), from a source outside the
    engine; it moves the mark price, fires stops and liquidations."""

    KIND: ClassVar[int] = 19  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "index_price"

    market: str
    price: int


@dataclass(frozen=True, slots=True)
class Funding:
    """A perpetual's funding, once its time has come: every position pays or receives
    size x mark x rate."""

    KIND: ClassVar[int] = 20  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "funding"

    market: str


@dataclass(frozen=True, slots=True)
class IndexStale:
    """A perpetual has no valid index source (every oracle round refused or too old, and no spot
    mid): until its next IndexPrice it refuses orders that could increase a position, freezes its
    mark price and liquidates nothing."""

    KIND: ClassVar[int] = 21  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "index_stale"

    market: str


@dataclass(frozen=True, slots=True)
class SetFees:
    """A market's maker and taker fee rates change, for its fills from this command on. ``ref``: ""
    by the operator's hand (refused once governance is enabled), or the governance decision it
    carries out ("gov:CHAIN:CHANGE"), applied at most once."""

    KIND: ClassVar[int] = 22  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "set_fees"

    market: str
    maker_fee_ppm: int
    taker_fee_ppm: int
    ref: str


@dataclass(frozen=True, slots=True)
class HaltMarket:
    """A market is halted (``halted`` true: no new order, no amendment; cancels go on, resting orders
    stay, a perpetual's funding and liquidations go on) or resumed. ``ref`` as for SetFees."""

    KIND: ClassVar[int] = 23  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "halt_market"

    market: str
    halted: bool
    ref: str


@dataclass(frozen=True, slots=True)
class SetStakerShare:
    """The share of the fee account that each reward period moves to the stakers' reserve
    (PayStakers), in ppm. ``ref`` as for SetFees."""

    KIND: ClassVar[int] = 24  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "set_staker_share"

    share_ppm: int
    ref: str


@dataclass(frozen=True, slots=True)
class EnableGovernance:
    """From this command on, fees, halts, the stakers' share and listings change only by governance
    decisions (a ``ref`` of "gov:..."): the operator's hand is refused. There is no way back."""

    KIND: ClassVar[int] = 25  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "enable_governance"


@dataclass(frozen=True, slots=True)
class PayStakers:
    """The stakers' share (SetStakerShare) of the fee account's available ``asset`` moves to the
    stakers' reserve (STAKERS_ACCOUNT), from which it is withdrawn to the staking contract. ``ref``
    names the reward period; each is paid at most once."""

    KIND: ClassVar[int] = 26  # the journal's kind: stable, never reused
    NAME: ClassVar[str] = "pay_stakers"

    asset: str
    ref: str


Command = (
    ListAsset | ListMarket | OpenAccount | Credit | Transfer | RequestWithdrawal | CompleteWithdrawal | FailWithdrawal
    | MarkEpoch | RequireAccounts | PlaceOrder | CancelOrder | CancelAll | AmendOrder | ListPerp | SetLeverage
    | SetMarginMode | AdjustMargin | IndexPrice | Funding | IndexStale | SetFees | HaltMarket | SetStakerShare
    | EnableGovernance | PayStakers | RequestForcedWithdrawal
)

COMMANDS: tuple[type[Command], ...] = (
    ListAsset, ListMarket, Credit, Transfer, RequestWithdrawal, CompleteWithdrawal, FailWithdrawal, MarkEpoch,
    OpenAccount, PlaceOrder, CancelOrder, CancelAll, AmendOrder, RequireAccounts, ListPerp, SetLeverage,
    SetMarginMode, AdjustMargin, IndexPrice, Funding, IndexStale, SetFees, HaltMarket, SetStakerShare,
    EnableGovernance, PayStakers, RequestForcedWithdrawal,
)
