"""The engine: applies one sequenced command to the whole state and returns its events.

A thin dispatcher over three stages with a record between them: the ledger (core/ledger.py) holds
the funds, matching (core/matching.py) turns an order into fills, and the market's settlement
(core/spot.py) moves the fills' balances. Order rules are in core/rules.py.

Pure and deterministic: no clock (the sequencer stamps ``ts``), no randomness, no I/O. Same
commands, same state, same events, byte for byte. A command that names an account the engine does
not know is refused (UNKNOWN_ACCOUNT).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dpg.core import events as E
from dpg.core.commands import (
    COMMANDS,
    AdjustMargin,
    AmendOrder,
    CancelAll,
    CancelOrder,
    CompleteWithdrawal,
    Credit,
    EnableGovernance,
    FailWithdrawal,
    Funding,
    HaltMarket,
    IndexPrice,
    IndexStale,
    ListAsset,
    ListMarket,
    ListPerp,
    MarkEpoch,
    OpenAccount,
    PayStakers,
    PlaceOrder,
    RequestForcedWithdrawal,
    RequestWithdrawal,
    RequireAccounts,
    SetFees,
    SetLeverage,
    SetMarginMode,
    SetStakerShare,
    Transfer,
)
from dpg.core.errors import DomainError, Reject
from dpg.core.events import Cause, Event
from dpg.core.futures import Futures
from dpg.core.governance import Governance
from dpg.core.ledger import Ledger
from dpg.core.margin import TierTable
from dpg.core.matching import (
    STOP_BUDGET,
    STOP_STP,
    BookSide,
    Fill,
    OpenOrders,
    OrderBook,
    OrderBookSide,
    Stops,
    fillable,
    take,
)
from dpg.core.model import (
    MAX_AMOUNT,
    STAKERS_ACCOUNT,
    STP,
    Asset,
    Market,
    MarketKind,
    Order,
    OrderStatus,
    OrderType,
    Side,
)
from dpg.core.rules import below_min_notional, off_lot, off_tick, priced, stop_triggers_now
from dpg.core.spot import SPOT, STP_REASON, SpotSettlement

BUY = Side.BUY.value
LIMIT = OrderType.LIMIT.value
IOC = OrderType.IOC.value
FOK = OrderType.FOK.value
POST_ONLY = OrderType.POST_ONLY.value
MARKET = OrderType.MARKET.value
STOP_LIMIT = OrderType.STOP_LIMIT.value
TAKE_PROFIT_LIMIT = OrderType.TAKE_PROFIT_LIMIT.value
FILLED = OrderStatus.FILLED.value
CANCELED = OrderStatus.CANCELED.value
EXPIRED = OrderStatus.EXPIRED.value

MAX_CLIENT_ID = 64
MAX_REF = 200
MAX_ACCOUNT = 1 << 63  # account numbers are positive PostgreSQL bigints

# the valid values, each to its plain int: an order's side, type and STP mode are exact ints from here on
# (an IntEnum member compares through the generic path; an exact int takes the interpreter's fast one)
_SIDES = {s.value: s.value for s in Side}
_OTYPES = {t.value: t.value for t in OrderType}
_STPS = {s.value: s.value for s in STP}
_STOPS = (STOP_LIMIT, TAKE_PROFIT_LIMIT)
SETTLEMENTS: dict[MarketKind, SpotSettlement] = {MarketKind.SPOT: SPOT}  # a futures kind adds its own

_new = E.new
_OrderNew = E.OrderNew
_Balance = E.Balance
BALANCE = E.BALANCE
C_LOCK = Cause.LOCK.value
_OrderDone = E.OrderDone
ORDER_NEW = E.ORDER_NEW
ORDER_DONE = E.ORDER_DONE


_CODE = {r: r.value for r in Reject}  # an enum's .value is a Python-level property: looked up once here
_Rejected = E.Rejected
REJECTED = E.REJECTED


def _rej(code: Reject, reason: str) -> list[Event]:
    return [_new(_Rejected, (REJECTED, _CODE[code], reason))]


# the rejection of a cancel that finds nothing (about a fifth of a busy market's commands): one event
# object shared by every such answer (events are immutable), each answer its own list
_NOT_FOUND = _rej(Reject.ORDER_NOT_FOUND, "no open order with this id for this account and market")[0]


# the state an engine takes from another in ``adopt``: every attribute but its handlers (bound to
# itself) and its book-side factory (the same class in both)
ADOPTED = ("assets", "asset_by_symbol", "markets", "market_by_symbol", "ledger", "books", "open", "stops",
           "last_price", "settlements", "client_ids", "refs", "withdrawals", "withdrawal_ids", "epoch",
           "next_order_id", "next_trade_id", "seq", "ts", "fut", "gov")


def _is_int(x: object) -> bool:
    return type(x) is int


class Engine:
    """All state that holds money, and the only code that changes it."""

    def __init__(self, book_side: Callable[[Side], OrderBookSide] = BookSide) -> None:
        """``book_side``: the book side implementation (the tests check a naive one against it)."""
        self.assets: list[Asset] = []
        self.asset_by_symbol: dict[str, Asset] = {}
        self.markets: list[Market] = []
        self.market_by_symbol: dict[str, Market] = {}
        self.ledger = Ledger()
        self.books: list[OrderBook] = []
        self.open = OpenOrders()  # live resting orders and pending stops
        self.stops: list[Stops] = []  # per market
        self.last_price: list[int] = []  # per market: the last trade's price in ticks (0: none yet)
        self.settlements: list[SpotSettlement] = []  # per market, by its kind
        self.client_ids: dict[tuple[int, str], int] = {}  # every accepted client id -> order id
        self.refs: set[str] = set()  # credited external references
        self.withdrawals: dict[str, tuple[int, int, int]] = {}  # pending id -> (account, asset, amount)
        self.withdrawal_ids: set[str] = set()  # every withdrawal id ever requested
        self.epoch = 0  # the last proof-of-reserves epoch marked
        self.next_order_id = 1
        self.next_trade_id = 1
        self.seq = 0
        self.ts = 0
        self._book_side = book_side
        self.fut = Futures(self)  # the perpetuals: positions, margin, prices, funding, liquidations
        self.gov = Governance(self)  # fees, halts, the stakers' share: by the operator or by governance
        # one handler per registered command: ``on_<NAME>``
        self._handlers: dict[type, Callable[[Any], list[Event]]] = {
            cls: getattr(self, "on_" + cls.NAME) for cls in COMMANDS
        }

    # ------------------------------------------------------------------ the ledger's view

    @property
    def balances(self) -> dict[int, list[int]]:
        return self.ledger.balances

    @property
    def credits(self) -> list[int]:
        return self.ledger.credits

    @property
    def debits(self) -> list[int]:
        return self.ledger.debits

    @property
    def accounts_required(self) -> bool:
        return self.ledger.accounts_required

    @property
    def orders(self) -> dict[int, Order]:
        """Every open order by id: resting, or a stop waiting for its trigger."""
        return self.open.orders

    # ------------------------------------------------------------------ dispatch

    def apply(self, cmd: object, seq: int, ts: int) -> list[Event]:
        """Apply one sequenced command. Returns its events; a rejection changes nothing."""
        handler = self._handlers.get(type(cmd))
        if handler is None:
            return _rej(Reject.INVALID_ORDER, f"unknown command {type(cmd).__name__}")
        self.seq = seq
        self.ts = ts
        return handler(cmd)

    # ------------------------------------------------------------------ listing

    def add_asset(self, asset: Asset) -> None:
        self.assets.append(asset)
        self.asset_by_symbol[asset.symbol] = asset
        self.ledger.add_asset()

    def add_market(self, market: Market) -> None:
        self.markets.append(market)
        self.market_by_symbol[market.symbol] = market
        self.books.append(OrderBook(market.index, self._book_side))
        self.stops.append(Stops())
        self.last_price.append(0)
        self.settlements.append(SPOT)  # a perpetual's orders and fills go to self.fut instead

    def swap_market(self, market: Market) -> None:
        """Put ``market`` (the same index and symbol, other fees or halted state) where its older
        self was: a Market is immutable, and whoever reads the engine's lists sees the new one."""
        self.markets[market.index] = market
        self.market_by_symbol[market.symbol] = market
        pm = self.fut.perps.get(market.index)
        if pm is not None:
            pm.market = market

    def on_list_asset(self, c: ListAsset) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        sym = r.symbol
        if not isinstance(sym, str) or not (1 <= len(sym) <= 12) or not sym.isalnum() or sym.upper() != sym:
            return _rej(Reject.UNKNOWN_ASSET, "asset symbol must be 1-12 upper-case letters or digits")
        if not _is_int(r.decimals) or not 0 <= r.decimals <= 18:
            return _rej(Reject.INVALID_AMOUNT, "decimals must be an integer in [0, 18]")
        if sym in self.asset_by_symbol:
            return _rej(Reject.DUPLICATE_ASSET, f"asset {sym} is already listed")
        asset = Asset(sym, r.decimals, len(self.assets))
        self.add_asset(asset)
        return [_new(E.AssetListed, (E.ASSET_LISTED, asset.index, sym, r.decimals))]

    def on_list_market(self, c: ListMarket) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        base = self.asset_by_symbol.get(r.base)
        quote = self.asset_by_symbol.get(r.quote)
        if base is None or quote is None:
            return _rej(Reject.UNKNOWN_ASSET, f"market {r.symbol}: unknown base or quote asset")
        if r.symbol != f"{r.base}/{r.quote}":
            return _rej(Reject.INVALID_MARKET, "market symbol must be BASE/QUOTE")
        refused = self.gov.refused(r.ref)
        if refused is not None:
            return refused
        if r.symbol in self.market_by_symbol:
            return _rej(Reject.DUPLICATE_MARKET, f"market {r.symbol} is already listed")
        fields = (r.tick_size, r.lot_size, r.min_notional, r.maker_fee_ppm, r.taker_fee_ppm)
        if not all(_is_int(f) for f in fields):
            return _rej(Reject.INVALID_MARKET, "market parameters must be integers")
        try:
            market = Market.listed(
                r.symbol, base, quote, r.tick_size, r.lot_size, r.min_notional,
                r.maker_fee_ppm, r.taker_fee_ppm, len(self.markets),
            )
        except DomainError as e:
            return _rej(e.code, e.reason)
        self.add_market(market)
        self.gov.applied(r.ref)
        return [_new(E.MarketListed, (E.MARKET_LISTED, market.index, r.symbol, c))]

    def on_list_perp(self, c: ListPerp) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        base = self.asset_by_symbol.get(r.base)
        quote = self.asset_by_symbol.get(r.quote)
        if base is None or quote is None:
            return _rej(Reject.UNKNOWN_ASSET, f"market {r.symbol}: unknown base or quote asset")
        if r.symbol != f"{r.base}-PERP":
            return _rej(Reject.INVALID_MARKET, "a perpetual's symbol is BASE-PERP")
        refused = self.gov.refused(r.ref)
        if refused is not None:
            return refused
        if r.symbol in self.market_by_symbol:
            return _rej(Reject.DUPLICATE_MARKET, f"market {r.symbol} is already listed")
        if self.fut.perps and quote.index != self.fut.quote_asset:
            return _rej(Reject.INVALID_MARKET, "every perpetual is margined in the same quote asset")
        fields = (r.tick_size, r.lot_size, r.min_notional, r.maker_fee_ppm, r.taker_fee_ppm, r.funding_interval_ms,
                  r.impact_notional)
        if not all(_is_int(f) for f in fields):
            return _rej(Reject.INVALID_MARKET, "market parameters must be integers")
        if not 3_600_000 <= r.funding_interval_ms <= 86_400_000 or r.impact_notional <= 0:
            return _rej(Reject.INVALID_MARKET, "funding every 1 to 24 hours, and a positive impact notional")
        try:
            tiers = TierTable.of([tuple(row) for row in r.tiers])
            market = Market.listed(
                r.symbol, base, quote, r.tick_size, r.lot_size, r.min_notional,
                r.maker_fee_ppm, r.taker_fee_ppm, len(self.markets),
            )
        except DomainError as e:
            return _rej(e.code, e.reason)
        except (ValueError, TypeError) as e:
            return _rej(Reject.INVALID_MARKET, f"tiers: {e}")
        self.add_market(market)
        self.fut.add(market, tiers, r.funding_interval_ms, r.impact_notional)
        self.gov.applied(r.ref)
        return [_new(E.MarketListed, (E.MARKET_LISTED, market.index, r.symbol, c))]

    # the governed parameters (dpg.core.governance)

    def on_set_fees(self, c: SetFees) -> list[Event]:
        return self.gov.on_set_fees(c)

    def on_halt_market(self, c: HaltMarket) -> list[Event]:
        return self.gov.on_halt_market(c)

    def on_set_staker_share(self, c: SetStakerShare) -> list[Event]:
        return self.gov.on_set_staker_share(c)

    def on_enable_governance(self, c: EnableGovernance) -> list[Event]:
        return self.gov.on_enable_governance(c)

    def on_pay_stakers(self, c: PayStakers) -> list[Event]:
        return self.gov.on_pay_stakers(c)

    def on_set_leverage(self, c: SetLeverage) -> list[Event]:
        return self.fut.on_set_leverage(c)

    def on_set_margin_mode(self, c: SetMarginMode) -> list[Event]:
        return self.fut.on_set_margin_mode(c)

    def on_adjust_margin(self, c: AdjustMargin) -> list[Event]:
        return self.fut.on_adjust_margin(c)

    def on_index_price(self, c: IndexPrice) -> list[Event]:
        return self.fut.on_index_price(c)

    def on_funding(self, c: Funding) -> list[Event]:
        return self.fut.on_funding(c)

    def on_index_stale(self, c: IndexStale) -> list[Event]:
        return self.fut.on_index_stale(c)

    # ------------------------------------------------------------------ accounts and funds

    def has_account(self, account: int) -> bool:
        """Whether ``account`` is open (the system accounts always are)."""
        return self.ledger.has(account)

    def on_open_account(self, c: OpenAccount) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        acct = r.account
        if not _is_int(acct) or not 0 < acct < MAX_ACCOUNT:
            return _rej(Reject.INVALID_ACCOUNT, "an account number is a positive 63-bit integer")
        if not self.ledger.open(acct):
            return []  # already open: nothing changes
        return [_new(E.AccountOpened, (E.ACCOUNT_OPENED, acct))]

    def on_require_accounts(self, _: RequireAccounts) -> list[Event]:
        self.ledger.accounts_required = True
        return []

    def _unknown(self, account: int) -> list[Event]:
        return _rej(Reject.UNKNOWN_ACCOUNT, f"account {account} does not exist")

    def balance(self, account: int, asset: str) -> tuple[int, int]:
        """(available, locked) in base units."""
        return self.ledger.balance(account, self.asset_by_symbol[asset].index)

    def _movement(self, symbol: object, account: object, amount: object, system: int = 0,
                  ) -> tuple[Asset | None, list[Event]]:
        """The asset of a credit or withdrawal, or the rejection of its asset, account or amount: the
        account is a user's (positive) or the one system account ``system`` allows (0: none)."""
        asset = self.asset_by_symbol.get(symbol) if isinstance(symbol, str) else None
        if asset is None:
            return None, _rej(Reject.UNKNOWN_ASSET, f"unknown asset {symbol!r}")
        if not _is_int(account) or (account <= 0 and (not system or account != system)):  # type: ignore[operator]
            return None, _rej(Reject.INVALID_ACCOUNT, "account must be a positive integer")
        if not _is_int(amount) or not 0 < amount < MAX_AMOUNT:  # type: ignore[operator]
            return None, _rej(Reject.INVALID_AMOUNT, "amount must be a positive integer of base units")
        return asset, []

    def on_credit(self, c: Credit) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        asset, err = self._movement(r.asset, r.account, r.amount)
        if asset is None:
            return err
        ref = r.ref
        if not isinstance(ref, str) or not ref or len(ref) > MAX_REF:
            return _rej(Reject.INVALID_ORDER, "a credit needs a reference of 1-200 characters")
        if c.ref in self.refs:
            return _rej(Reject.DUPLICATE_REFERENCE, f"reference {c.ref!r} was already credited")
        vec = self.ledger.account(c.account)
        if vec is None:
            return self._unknown(c.account)
        i = 2 * asset.index
        if vec[i] + vec[i + 1] + c.amount >= MAX_AMOUNT:
            return _rej(Reject.INVALID_AMOUNT, "balance would exceed 2**127 base units")
        self.refs.add(c.ref)
        return [self.ledger.credit(c.account, vec, asset.index, c.amount)]

    def on_transfer(self, c: Transfer) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        asset = self.asset_by_symbol.get(r.asset) if isinstance(r.asset, str) else None
        if asset is None:
            return _rej(Reject.UNKNOWN_ASSET, f"unknown asset {r.asset!r}")
        src, dst = r.from_account, r.to_account
        if not (_is_int(src) and _is_int(dst)) or src <= 0 or dst <= 0:
            return _rej(Reject.INVALID_ACCOUNT, "accounts must be positive integers")
        if src == dst:
            return _rej(Reject.SELF_TRANSFER, "cannot transfer to the same account")
        if not _is_int(r.amount) or r.amount <= 0:
            return _rej(Reject.INVALID_AMOUNT, "amount must be a positive integer of base units")
        svec = self.ledger.balances.get(src)
        if svec is None:
            return self._unknown(src) if self.ledger.accounts_required else \
                _rej(Reject.INSUFFICIENT_FUNDS, f"available {asset.symbol} is less than the amount")
        if svec[2 * asset.index] < c.amount or self._margined(src, asset.index, c.amount):
            return _rej(Reject.INSUFFICIENT_FUNDS, f"available {asset.symbol} is less than the amount")
        dvec = self.ledger.account(dst)
        if dvec is None:
            return self._unknown(dst)
        ev = self.ledger.transfer(src, svec, dst, dvec, asset.index, c.amount)
        self._after_debit(src, ev)
        return ev

    def _margined(self, account: int, asset: int, amount: int) -> bool:
        """Whether taking ``amount`` of ``asset`` from ``account``'s available balance would cut into
        the initial margin of its cross perpetual positions."""
        fut = self.fut
        return bool(fut.cross.get(account)) and asset == fut.quote_asset and fut.free(account) < amount

    def _after_debit(self, account: int, ev: list[Event]) -> None:
        """A cross perpetual account's wallet shrank: its positions are checked and re-keyed."""
        if self.fut.cross.get(account):
            self.fut.recheck(account, ev)

    def on_request_withdrawal(self, c: RequestWithdrawal) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        # the stakers' reserve is withdrawn to the staking contract like a user's balance
        asset, err = self._movement(r.asset, r.account, r.amount, STAKERS_ACCOUNT)
        if asset is None:
            return err
        wid = r.withdrawal_id
        if not isinstance(wid, str) or not wid or len(wid) > MAX_REF or not isinstance(r.destination, str):
            return _rej(Reject.INVALID_ORDER, "a withdrawal needs an id of 1-200 characters and a destination")
        if wid in self.withdrawal_ids:
            return _rej(Reject.DUPLICATE_WITHDRAWAL, f"withdrawal {wid!r} was already requested")
        vec = self.ledger.balances.get(c.account)
        if vec is None:
            return self._unknown(c.account)
        if vec[2 * asset.index] < c.amount or self._margined(c.account, asset.index, c.amount):
            return _rej(Reject.INSUFFICIENT_FUNDS, f"available {asset.symbol} is less than the amount")
        self.withdrawal_ids.add(wid)
        self.withdrawals[wid] = (c.account, asset.index, c.amount)
        ev: list[Event] = [_new(E.WithdrawalRequested, (E.WITHDRAWAL_REQUESTED, wid, c.account, asset.index,
                                                        c.amount, c.destination))]
        self.ledger.lock(c.account, vec, asset.index, c.amount, ev)
        self._after_debit(c.account, ev)
        return ev

    def on_request_forced_withdrawal(self, c: RequestForcedWithdrawal) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        asset = self.asset_by_symbol.get(r.asset) if isinstance(r.asset, str) else None
        if asset is None:
            return _rej(Reject.UNKNOWN_ASSET, f"unknown asset {r.asset!r}")
        if not _is_int(r.account) or r.account <= 0:
            return _rej(Reject.INVALID_ACCOUNT, "accounts must be positive integers")
        if isinstance(r.withdrawal_id, str) and r.withdrawal_id in self.withdrawal_ids:  # before the amount:
            # a retried attempt whose funds are locked already leaves nothing available
            return _rej(Reject.DUPLICATE_WITHDRAWAL, f"withdrawal {r.withdrawal_id!r} was already requested")
        vec = self.ledger.balances.get(c.account)
        if vec is None:
            return self._unknown(c.account)
        amount = vec[2 * asset.index]
        if self.fut.cross.get(c.account) and asset.index == self.fut.quote_asset:
            amount = min(amount, max(0, self.fut.free(c.account)))  # never the cross positions' initial margin
        if amount <= 0:
            return _rej(Reject.INSUFFICIENT_FUNDS, f"no {asset.symbol} available: the balance to withdraw is zero")
        return self.on_request_withdrawal(RequestWithdrawal(c.account, asset.symbol, amount, r.withdrawal_id,
                                                            r.destination))

    def _pending(self, wid: object) -> tuple[int, int, int] | None:
        return self.withdrawals.pop(wid, None) if isinstance(wid, str) else None

    def on_complete_withdrawal(self, c: CompleteWithdrawal) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        pending = self._pending(r.withdrawal_id)
        if pending is None:
            return _rej(Reject.WITHDRAWAL_NOT_FOUND, "no pending withdrawal with this id")
        account, a, amount = pending
        return [_new(E.WithdrawalDone, (E.WITHDRAWAL_DONE, r.withdrawal_id, True, str(r.reference))),
                self.ledger.debit_locked(account, a, amount)]

    def on_fail_withdrawal(self, c: FailWithdrawal) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        pending = self._pending(r.withdrawal_id)
        if pending is None:
            return _rej(Reject.WITHDRAWAL_NOT_FOUND, "no pending withdrawal with this id")
        account, a, amount = pending
        ev: list[Event] = [_new(E.WithdrawalDone, (E.WITHDRAWAL_DONE, r.withdrawal_id, False, str(r.reason)))]
        self.ledger.unlock(account, a, amount, ev)
        return ev

    def on_mark_epoch(self, c: MarkEpoch) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        if not _is_int(r.epoch) or not 0 < r.epoch < 1 << 64:
            return _rej(Reject.INVALID_ORDER, "an epoch is a positive uint64")
        if c.epoch <= self.epoch:
            return _rej(Reject.STALE_EPOCH, f"epoch {c.epoch} is not after the last one ({self.epoch})")
        self.epoch = c.epoch
        return [_new(E.EpochMarked, (E.EPOCH_MARKED, c.epoch))]

    # ------------------------------------------------------------------ orders

    def _head(self, c: PlaceOrder) -> tuple[int, int, int] | list[Event]:
        """An order's side, type and STP mode (exact ints), its account and client id checked, or
        its rejection."""
        r: Any = c  # the command as it came: each field is checked before it is trusted
        acct = r.account
        if type(acct) is not int or acct <= 0:
            return _rej(Reject.INVALID_ACCOUNT, "account must be a positive integer")
        side = _SIDES.get(r.side)
        otype = _OTYPES.get(r.otype)
        if side is None:
            return _rej(Reject.INVALID_ORDER, "side must be buy or sell")
        if otype is None:
            return _rej(Reject.INVALID_ORDER, "unknown order type")
        stp = _STPS.get(r.stp)
        if stp is None:
            return _rej(Reject.INVALID_ORDER, "unknown self-trade prevention mode")
        cid = r.client_id
        if cid:
            if type(cid) is not str or len(cid) > MAX_CLIENT_ID or not cid.isprintable():
                return _rej(Reject.INVALID_ORDER, f"client order id must be 1-{MAX_CLIENT_ID} printable characters")
            if (acct, cid) in self.client_ids:
                return _rej(Reject.DUPLICATE_CLIENT_ORDER_ID, f"client order id {cid!r} was already used")
        return side, otype, stp

    def _terms(self, c: PlaceOrder, m: Market) -> tuple[int, int, int, int, int, int] | list[Event]:
        """An order's side, type and STP mode (exact ints), price in ticks, quantity in lots and
        stop in ticks, or its rejection."""
        r: Any = c  # the command as it came: each field is checked before it is trusted
        head = self._head(c)
        if isinstance(head, list):
            return head
        side, otype, stp = head
        if r.flags:
            return _rej(Reject.INVALID_ORDER, "reduce-only and close-position are for perpetuals")
        price = r.price
        qty = r.qty
        quote_qty = r.quote_qty
        if type(price) is not int or type(qty) is not int or type(quote_qty) is not int:
            return _rej(Reject.INVALID_AMOUNT, "price and quantities must be integers of base units")
        if otype == MARKET:
            if price:
                return _rej(Reject.INVALID_PRICE, "a market order takes no price")
            pt = lots = 0
            if quote_qty:
                if side != BUY or qty:
                    return _rej(Reject.INVALID_ORDER, "a quote amount is only for a market buy without quantity")
                if quote_qty < 0 or quote_qty >= MAX_AMOUNT:
                    return _rej(Reject.INVALID_AMOUNT, "quote amount must be positive")
                if quote_qty < m.min_notional:
                    return _rej(Reject.BELOW_MIN_NOTIONAL, f"quote amount is below the minimum {m.min_notional}")
            else:
                if qty <= 0 or qty >= MAX_AMOUNT:
                    return _rej(Reject.INVALID_QUANTITY, "quantity must be positive")
                if (err := off_lot(m, qty)) is not None:
                    return err
                lots = qty // m.lot_size
        else:
            if quote_qty:
                return _rej(Reject.INVALID_ORDER, "a quote amount is only for market buys")
            if (err := priced(m, price, qty)) is not None:
                return err
            pt = price // m.tick_size
            lots = qty // m.lot_size
        stop_price = r.stop_price
        if otype in _STOPS:
            if type(stop_price) is not int or stop_price <= 0 or stop_price >= MAX_AMOUNT:
                return _rej(Reject.INVALID_PRICE, "a stop order needs a positive stop price")
            if (err := off_tick(m, stop_price, "stop price")) is not None:
                return err
            st = stop_price // m.tick_size
            return stop_triggers_now(side, otype, st, self.last_price[m.index]) or (side, otype, stp, pt, lots, st)
        if stop_price:
            return _rej(Reject.INVALID_ORDER, "a stop price is only for stop and take-profit orders")
        return side, otype, stp, pt, lots, 0

    def on_place_order(self, c: PlaceOrder) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        m = self.market_by_symbol.get(r.market) if type(r.market) is str else None
        if m is None:
            return _rej(Reject.UNKNOWN_MARKET, f"unknown market {r.market!r}")
        if m.halted:
            return _rej(Reject.MARKET_HALTED, f"market {m.symbol} is halted: it takes no new order")
        if m.kind:
            head = self._head(c)
            return head if isinstance(head, list) else self.fut.place(c, m, *head)
        terms = self._terms(c, m)
        if isinstance(terms, list):
            return terms
        side, otype, stp, pt, lots, st = terms
        acct = c.account
        vec = self.ledger.balances.get(acct)
        if vec is None:
            vec = self.ledger.account(acct)  # an older journal's order opening its account
            if vec is None:
                return self._unknown(acct)
        if otype == MARKET and side == BUY:
            # A market buy locks a budget: its quote amount, or (by quantity) all that is available.
            ai = m.quote_i
            need = c.quote_qty if c.quote_qty else vec[ai]
            if need <= 0 or vec[ai] < need:
                return _rej(Reject.INSUFFICIENT_FUNDS, f"available {m.quote.symbol} is insufficient")
        else:
            ai, need = self.settlements[m.index].hold(m, side, pt, lots)
            if vec[ai] < need:
                return _rej(Reject.INSUFFICIENT_FUNDS, f"available {self.assets[ai >> 1].symbol} is insufficient")
        if self.fut.cross and self._margined(acct, ai >> 1, need):
            return _rej(Reject.INSUFFICIENT_MARGIN, "the order would use the margin of your cross perpetual positions")
        book = self.books[m.index]
        opp = book.asks if side == BUY else book.bids
        best = opp.best()
        crosses = best is not None and (otype == MARKET or (best.price <= pt if side == BUY else best.price >= pt))
        if st:
            pass  # a stop order waits off the book, whatever it would cross now
        elif otype == POST_ONLY:
            if crosses:
                return _rej(Reject.POST_ONLY_WOULD_TAKE, "a post-only order would take liquidity")
        elif otype == FOK:
            if not fillable(opp, acct, side, pt, lots, stp):
                return _rej(Reject.FOK_NOT_FILLABLE, "the order cannot be filled completely at once")
        elif otype == MARKET and best is None:
            return _rej(Reject.NO_LIQUIDITY, "no resting orders on the other side")
        oid = self.next_order_id
        self.next_order_id = oid + 1
        cid = c.client_id
        if cid:
            self.client_ids[(acct, cid)] = oid
        budget = need if otype == MARKET and side == BUY else 0
        o = Order(oid, acct, m.index, side, otype, pt, lots, lots if lots else (1 << 62), budget, cid, stp,
                  self.seq, self.ts, st)
        # the hold: Ledger.lock inline (once per order, the engine's most frequent movement)
        vec[ai] -= need
        vec[ai + 1] += need
        ev: list[Event] = [_new(_OrderNew, (ORDER_NEW, oid, acct, m.index, side, otype, c.price, c.qty, c.quote_qty,
                                             cid, stp, c.stop_price)),
                           _new(_Balance, (BALANCE, acct, ai >> 1, -need, need, C_LOCK))]
        if st:
            self.open.add(o)
            self.stops[m.index].add(o)
        elif not crosses and otype != IOC and otype != FOK:
            # nothing to take: a resting limit or post-only order (the common case) goes straight in
            (book.bids if side == BUY else book.asks).add(o)
            self.open.add(o)
        else:
            self._take_and_rest(o, m, book, ev)
            stops = self.stops[m.index]
            if stops.up or stops.down:
                self._trigger(m, book, ev)
        if self.fut.cross:
            self.fut.after_spot(ev)
        return ev

    def _trigger(self, m: Market, book: OrderBook, ev: list[Event]) -> None:
        """Turn every stop order whose stop the last price has reached into a limit order, oldest
        first; their trades move the last price, so repeat until nothing more triggers."""
        mi = m.index
        stops = self.stops[mi]
        while True:
            last = self.last_price[mi]
            if not last:
                return
            fired = stops.fired(last, self.open.orders)
            if not fired:
                return
            for o in fired:
                o.stop = 0
                o.otype = LIMIT
                o.seq, o.ts = self.seq, self.ts
                self.open.remove(o)
                ev.append(_new(E.OrderTriggered, (E.ORDER_TRIGGERED, o.oid, o.account, mi, o.side,
                                                  o.price * m.tick_size, o.remaining * m.lot_size)))
                self._take_and_rest(o, m, book, ev)

    def _take_and_rest(self, o: Order, m: Market, book: OrderBook, ev: list[Event]) -> None:
        """Match ``o`` as the taker and settle its fills, then rest it, or finish it and unlock
        what is left."""
        fills: list[Fill] = []
        stop, filled, last_p = take(o, m, book.asks if o.side == BUY else book.bids, self.open, fills)
        settlement = self.settlements[m.index]
        if fills:
            self.next_trade_id = settlement.settle(self.ledger, m, o, fills, self.next_trade_id, ev)
        if last_p:
            self.last_price[m.index] = last_p
        by_quote = o.otype == MARKET and o.side == BUY and not o.qty
        done = not o.remaining or (by_quote and stop == STOP_BUDGET and filled > 0)
        if not done and stop != STOP_STP and (o.otype == LIMIT or o.otype == POST_ONLY):
            (book.bids if o.side == BUY else book.asks).add(o)
            self.open.add(o)
            return
        if o.otype == MARKET and o.side == BUY:
            ai, left = m.quote_i, o.quote_qty
        else:
            ai, left = settlement.hold(m, o.side, o.price, o.remaining)
        if left:
            self.ledger.unlock(o.account, ai >> 1, left, ev)
        if done:
            ev.append(_new(_OrderDone, (ORDER_DONE, o.oid, FILLED, 0, "")))
        else:
            if stop == STOP_STP:
                reason = STP_REASON
            elif stop == STOP_BUDGET:
                reason = "insufficient funds for the rest" if o.qty else "quote amount buys less than one lot"
            elif o.otype == MARKET:
                reason = "no more liquidity"
            else:
                reason = "immediate-or-cancel"
            ev.append(_new(_OrderDone, (ORDER_DONE, o.oid, EXPIRED, 0 if by_quote else o.remaining * m.lot_size,
                                         reason)))
        o.remaining = 0

    def _find_own(self, account: int, market: str, order_id: int, client_id: str) -> tuple[Order | None, list[Event]]:
        m = self.market_by_symbol.get(market) if isinstance(market, str) else None
        if m is None:
            return None, _rej(Reject.UNKNOWN_MARKET, f"unknown market {market!r}")
        if client_id and isinstance(client_id, str) and not order_id:
            order_id = self.client_ids.get((account, client_id), 0)
        o = self.open.orders.get(order_id) if type(order_id) is int else None
        if o is None or o.account != account or o.market != m.index:
            return None, [_NOT_FOUND]
        return o, []

    def on_cancel_order(self, c: CancelOrder) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        o, err = self._find_own(r.account, r.market, r.order_id, r.client_id)
        if o is None:
            return err
        ev: list[Event] = []
        self.cancel_resting(o, "cancelled by user", ev)
        return ev

    def cancel_resting(self, o: Order, reason: str, ev: list[Event]) -> None:
        """Take an open order (resting, or a pending stop) off and release its hold."""
        m = self.markets[o.market]
        left = o.remaining
        if o.stop:  # a pending stop order is not in the book; its trigger entry is dropped lazily
            o.stop = 0
            o.remaining = 0
        else:
            book = self.books[o.market]
            (book.bids if o.side == BUY else book.asks).remove(o)
        self.open.remove(o)
        if m.kind:
            self.fut.release(o, m, ev)
        else:
            ai, amount = self.settlements[o.market].hold(m, o.side, o.price, left)
            self.ledger.unlock(o.account, ai >> 1, amount, ev)
        ev.append(_new(_OrderDone, (ORDER_DONE, o.oid, CANCELED, left * m.lot_size, reason)))

    def on_cancel_all(self, c: CancelAll) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        m = self.market_by_symbol.get(r.market) if isinstance(r.market, str) else None
        if m is None:
            return _rej(Reject.UNKNOWN_MARKET, f"unknown market {r.market!r}")
        ev: list[Event] = []
        for o in self.open.of_account(r.account, m.index):
            self.cancel_resting(o, "cancelled by user", ev)
        return ev

    def _amended_terms(self, c: AmendOrder, o: Order, m: Market) -> tuple[int, int] | list[Event]:
        """The amended price in ticks and total quantity in lots, or the amendment's rejection."""
        r: Any = c  # the command as it came: each field is checked before it is trusted
        price, qty = r.price, r.qty
        if not (_is_int(price) and _is_int(qty)) or price < 0 or qty < 0:
            return _rej(Reject.INVALID_AMOUNT, "price and quantity must be non-negative integers")
        pt = o.price
        if price:
            if price >= MAX_AMOUNT:
                return _rej(Reject.INVALID_PRICE, "price too large")
            if (err := off_tick(m, price)) is not None:
                return err
            pt = price // m.tick_size
        filled = o.qty - o.remaining
        total = o.qty
        if qty:
            if (err := off_lot(m, qty)) is not None:
                return err
            total = qty // m.lot_size
            if total <= filled:
                return _rej(Reject.INVALID_QUANTITY, "new quantity must exceed the filled quantity")
        return below_min_notional(m, pt, total - filled) or (pt, total)

    def on_amend_order(self, c: AmendOrder) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        o, err = self._find_own(r.account, r.market, r.order_id, "")
        if o is None:
            return err
        m = self.markets[o.market]
        if m.halted:
            return _rej(Reject.MARKET_HALTED, f"market {m.symbol} is halted: orders may be cancelled, not amended")
        if o.stop:
            return _rej(Reject.INVALID_ORDER, "a pending stop order cannot be amended: cancel it and place another")
        if m.kind:
            return self.fut.amend(c, o, m)
        terms = self._amended_terms(c, o, m)
        if isinstance(terms, list):
            return terms
        pt, total = terms
        new_rem = total - (o.qty - o.remaining)
        book = self.books[o.market]
        side = book.side(o.side)
        hold = self.settlements[o.market].hold
        ev: list[Event] = []
        if pt == o.price and new_rem <= o.remaining:
            # Same price, not more: amend in place, keep time priority.
            cut = o.remaining - new_rem
            if cut:
                side.reduce(o, cut)
                ai, amount = hold(m, o.side, o.price, cut)
                self.ledger.unlock(o.account, ai >> 1, amount, ev)
            o.qty = total
            ev.append(_new(E.OrderAmended, (E.ORDER_AMENDED, o.oid, pt * m.tick_size, total * m.lot_size,
                                            new_rem * m.lot_size, False)))
            return ev
        opp = book.asks if o.side == BUY else book.bids
        best = opp.best()
        crosses = best is not None and (best.price <= pt if o.side == BUY else best.price >= pt)
        if crosses and o.otype == POST_ONLY:
            return _rej(Reject.POST_ONLY_WOULD_TAKE, "the amended post-only order would take liquidity")
        vec = self.ledger.balances[o.account]
        ai, old_lock = hold(m, o.side, o.price, o.remaining)
        _, new_lock = hold(m, o.side, pt, new_rem)
        if new_lock - old_lock > vec[ai]:
            return _rej(Reject.INSUFFICIENT_FUNDS, "available balance is insufficient for the amendment")
        # Re-queue: a fresh queue entry at the back, the old one left dead.
        side.remove(o)
        self.open.remove(o)
        self.ledger.relock(o.account, vec, ai >> 1, new_lock - old_lock, ev)
        n = Order(o.oid, o.account, o.market, o.side, o.otype, pt, total, new_rem, 0, o.client_id,
                  o.stp, self.seq, self.ts)
        ev.append(_new(E.OrderAmended, (E.ORDER_AMENDED, n.oid, pt * m.tick_size, total * m.lot_size,
                                        new_rem * m.lot_size, True)))
        self._take_and_rest(n, m, book, ev)
        stops = self.stops[m.index]
        if stops.up or stops.down:
            self._trigger(m, book, ev)
        return ev

    def adopt(self, other: Engine) -> None:
        """Take ``other``'s whole state in place (after the journal's database came back, the
        sequencer rebuilds the state from the journal). Containers keep their identity, so whoever
        holds this engine's lists (the API's markets and assets) sees the new contents; the futures
        state taken from ``other`` answers to this engine from then on."""
        for name in ADOPTED:
            old, value = getattr(self, name), getattr(other, name)
            if isinstance(old, list) and isinstance(value, list):
                old[:] = value
            elif isinstance(old, dict | set) and type(value) is type(old):
                old.clear()
                old.update(value)
            else:
                setattr(self, name, value)
        self.fut.e = self

    # ------------------------------------------------------------------ checks used by tests and tools

    def holds(self) -> Iterator[tuple[int, int, int]]:
        """(account, asset, amount) of every hold: open orders and pending withdrawals."""
        perps = self.fut.perps
        for o in self.open:
            if o.market in perps:
                yield o.account, self.markets[o.market].quote_i >> 1, o.quote_qty
                continue
            ai, amount = self.settlements[o.market].hold(self.markets[o.market], o.side, o.price, o.remaining)
            yield o.account, ai >> 1, amount
        yield from self.withdrawals.values()

    def totals(self) -> list[int]:
        """Per asset: the sum of every account's available + locked (fees and insurance included)."""
        return self.ledger.totals()

    def conservation_errors(self) -> list[str]:
        """Empty when, per asset, balances + fees + insurance == credits - debits, locks match the
        open orders and pending withdrawals exactly, and no balance is negative."""
        return self.ledger.conservation_errors([a.symbol for a in self.assets], self.holds(), self.fut.open_costs(),
                                               self.fut.negative_ok) + self.fut.errors()
