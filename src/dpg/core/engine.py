"""The engine: applies one sequenced command to the whole state and returns its events.

Pure and deterministic: no clock (the sequencer stamps ``ts``), no randomness, no I/O. Same
commands, same state, same events, byte for byte. The ledger lives here as one integer vector per
account, ``[available_0, locked_0, available_1, locked_1, ...]`` indexed by asset. An account exists
once opened (OpenAccount) and has its vector from then on; the system accounts always have theirs.
A command that names an account the engine does not know is refused (UNKNOWN_ACCOUNT).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

from dpg.core import events as E
from dpg.core.book import OrderBook
from dpg.core.commands import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    CompleteWithdrawal,
    Credit,
    FailWithdrawal,
    ListAsset,
    ListMarket,
    MarkEpoch,
    OpenAccount,
    PlaceOrder,
    RequestWithdrawal,
    RequireAccounts,
    Transfer,
)
from dpg.core.errors import DomainError, Reject
from dpg.core.events import Cause, Event
from dpg.core.model import (
    FEE_ACCOUNT,
    INSURANCE_ACCOUNT,
    MAX_AMOUNT,
    PPM,
    STP,
    SYSTEM_ACCOUNTS,
    Asset,
    Market,
    Order,
    OrderStatus,
    OrderType,
    Side,
)

BUY = Side.BUY.value
SELL = Side.SELL.value
LIMIT = OrderType.LIMIT.value
IOC = OrderType.IOC.value
FOK = OrderType.FOK.value
POST_ONLY = OrderType.POST_ONLY.value
MARKET = OrderType.MARKET.value
STOP_LIMIT = OrderType.STOP_LIMIT.value
TAKE_PROFIT_LIMIT = OrderType.TAKE_PROFIT_LIMIT.value
EXPIRE_TAKER = STP.EXPIRE_TAKER.value
EXPIRE_MAKER = STP.EXPIRE_MAKER.value
EXPIRE_BOTH = STP.EXPIRE_BOTH.value
FILLED = OrderStatus.FILLED.value
CANCELED = OrderStatus.CANCELED.value
EXPIRED = OrderStatus.EXPIRED.value

BAL = E.BALANCE
TRADE = E.TRADE
DONE = E.ORDER_DONE
C_LOCK = Cause.LOCK.value
C_UNLOCK = Cause.UNLOCK.value
C_TRADE = Cause.TRADE.value
C_FEE = Cause.FEE.value

MAX_CLIENT_ID = 64
MAX_REF = 200
MAX_ACCOUNT = 1 << 63  # account numbers are positive PostgreSQL bigints

_STP_REASON = "self-trade prevention"
_SIDES = frozenset(s.value for s in Side)
_OTYPES = frozenset(t.value for t in OrderType)
_STPS = frozenset(s.value for s in STP)

STOP_BOOK = 0  # the book ran out, or its best price is past the limit
STOP_STP = 1  # self-trade prevention expired the taker
STOP_BUDGET = 2  # a market buy's budget cannot pay for one more lot


_CODE = {r: r.value for r in Reject}


def _rej(code: Reject, reason: str) -> list[Event]:
    return [(E.REJECTED, _CODE[code], reason)]


def _is_int(x: object) -> bool:
    return type(x) is int


class Engine:
    """All state that holds money, and the only code that changes it."""

    def __init__(self) -> None:
        self.assets: list[Asset] = []
        self.asset_by_symbol: dict[str, Asset] = {}
        self.markets: list[Market] = []
        self.market_by_symbol: dict[str, Market] = {}
        self.books: list[OrderBook] = []
        self.balances: dict[int, list[int]] = {}
        self.orders: dict[int, Order] = {}  # live resting orders
        self.open_by_account: dict[int, dict[int, Order]] = {}
        self.client_ids: dict[tuple[int, str], int] = {}  # every accepted client id -> order id
        self.refs: set[str] = set()  # credited external references
        self.withdrawals: dict[str, tuple[int, int, int]] = {}  # pending id -> (account, asset, amount)
        self.withdrawal_ids: set[str] = set()  # every withdrawal id ever requested
        self.epoch = 0  # the last proof-of-reserves epoch marked
        self.last_price: list[int] = []  # per market: the last trade's price in ticks (0: none yet)
        # per market, pending stop orders (also in ``orders``) by trigger: when the last price
        # rises to (stop, oid) of ``stops_up``, or falls to (-stop, oid) of ``stops_down``
        self.stops_up: list[list[tuple[int, int]]] = []
        self.stops_down: list[list[tuple[int, int]]] = []
        self.credits: list[int] = []  # per asset: total that entered
        self.debits: list[int] = []  # per asset: total that left
        self.next_order_id = 1
        self.next_trade_id = 1
        self.seq = 0
        self.ts = 0
        self._handlers: dict[type, Callable[[Any], list[Event]]] = {
            PlaceOrder: self._place,
            CancelOrder: self._cancel,
            CancelAll: self._cancel_all,
            AmendOrder: self._amend,
            Credit: self._credit,
            Transfer: self._transfer,
            RequestWithdrawal: self._request_withdrawal,
            CompleteWithdrawal: self._complete_withdrawal,
            FailWithdrawal: self._fail_withdrawal,
            MarkEpoch: self._mark_epoch,
            OpenAccount: self._open_account,
            RequireAccounts: self._require_accounts,
            ListAsset: self._list_asset,
            ListMarket: self._list_market,
        }
        self._zero_vector: list[int] = []
        # set by RequireAccounts (the genesis of every journal since); before it, in an older journal,
        # a credit, a transfer or an order opened its account by itself, and replays so
        self.accounts_required = False
        for acct in SYSTEM_ACCOUNTS:
            self.balances[acct] = []

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

    def _list_asset(self, c: ListAsset) -> list[Event]:
        sym = c.symbol
        if not isinstance(sym, str) or not (1 <= len(sym) <= 12) or not sym.isalnum() or sym.upper() != sym:
            return _rej(Reject.UNKNOWN_ASSET, "asset symbol must be 1-12 upper-case letters or digits")
        if not _is_int(c.decimals) or not 0 <= c.decimals <= 18:
            return _rej(Reject.INVALID_AMOUNT, "decimals must be an integer in [0, 18]")
        if sym in self.asset_by_symbol:
            return _rej(Reject.DUPLICATE_ASSET, f"asset {sym} is already listed")
        asset = Asset(sym, c.decimals, len(self.assets))
        self.assets.append(asset)
        self.asset_by_symbol[sym] = asset
        self.credits.append(0)
        self.debits.append(0)
        self._zero_vector = [0] * (2 * len(self.assets))
        for vec in self.balances.values():
            vec.extend((0, 0))
        return [(E.ASSET_LISTED, asset.index, sym, c.decimals)]

    def _list_market(self, c: ListMarket) -> list[Event]:
        base = self.asset_by_symbol.get(c.base)
        quote = self.asset_by_symbol.get(c.quote)
        if base is None or quote is None:
            return _rej(Reject.UNKNOWN_ASSET, f"market {c.symbol}: unknown base or quote asset")
        if c.symbol != f"{c.base}/{c.quote}":
            return _rej(Reject.INVALID_MARKET, "market symbol must be BASE/QUOTE")
        if c.symbol in self.market_by_symbol:
            return _rej(Reject.DUPLICATE_MARKET, f"market {c.symbol} is already listed")
        fields = (c.tick_size, c.lot_size, c.min_notional, c.maker_fee_ppm, c.taker_fee_ppm)
        if not all(_is_int(f) for f in fields):
            return _rej(Reject.INVALID_MARKET, "market parameters must be integers")
        try:
            market = Market.listed(
                c.symbol, base, quote, c.tick_size, c.lot_size, c.min_notional,
                c.maker_fee_ppm, c.taker_fee_ppm, len(self.markets),
            )
        except DomainError as e:
            return _rej(e.code, e.reason)
        self.markets.append(market)
        self.market_by_symbol[c.symbol] = market
        self.books.append(OrderBook(market.index))
        self.last_price.append(0)
        self.stops_up.append([])
        self.stops_down.append([])
        return [(E.MARKET_LISTED, market.index, c.symbol)]

    # ------------------------------------------------------------------ ledger

    def has_account(self, account: int) -> bool:
        """Whether ``account`` is open (the system accounts always are)."""
        return account in self.balances

    def _open_account(self, c: OpenAccount) -> list[Event]:
        acct = c.account
        if not _is_int(acct) or not 0 < acct < MAX_ACCOUNT:
            return _rej(Reject.INVALID_ACCOUNT, "an account number is a positive 63-bit integer")
        if acct in self.balances:
            return []  # already open: nothing changes
        self.balances[acct] = self._zero_vector.copy()
        return [(E.ACCOUNT_OPENED, acct)]

    def _require_accounts(self, _: RequireAccounts) -> list[Event]:
        self.accounts_required = True
        return []

    def _account(self, account: int) -> list[int] | None:
        """The balance vector of an open account (None: unknown). Before RequireAccounts (an older
        journal replaying) an unknown account is opened, as it was when that journal was written."""
        vec = self.balances.get(account)
        if vec is None and not self.accounts_required:
            vec = self.balances[account] = self._zero_vector.copy()
        return vec

    def _unknown(self, account: int) -> list[Event]:
        return _rej(Reject.UNKNOWN_ACCOUNT, f"account {account} does not exist")

    def balance(self, account: int, asset: str) -> tuple[int, int]:
        """(available, locked) in base units."""
        vec = self.balances.get(account)
        a = self.asset_by_symbol[asset].index
        return (vec[2 * a], vec[2 * a + 1]) if vec else (0, 0)

    def _movement(self, symbol: object, account: object, amount: object) -> tuple[Asset | None, list[Event]]:
        """The asset of a credit or withdrawal, or the rejection of its asset, account or amount."""
        asset = self.asset_by_symbol.get(symbol) if isinstance(symbol, str) else None
        if asset is None:
            return None, _rej(Reject.UNKNOWN_ASSET, f"unknown asset {symbol!r}")
        if not _is_int(account) or account <= 0:  # type: ignore[operator]
            return None, _rej(Reject.INVALID_ACCOUNT, "account must be a positive integer")
        if not _is_int(amount) or not 0 < amount < MAX_AMOUNT:  # type: ignore[operator]
            return None, _rej(Reject.INVALID_AMOUNT, "amount must be a positive integer of base units")
        return asset, []

    def _credit(self, c: Credit) -> list[Event]:
        asset, err = self._movement(c.asset, c.account, c.amount)
        if asset is None:
            return err
        if not isinstance(c.ref, str) or not c.ref or len(c.ref) > MAX_REF:
            return _rej(Reject.INVALID_ORDER, "a credit needs a reference of 1-200 characters")
        if c.ref in self.refs:
            return _rej(Reject.DUPLICATE_REFERENCE, f"reference {c.ref!r} was already credited")
        vec = self._account(c.account)
        if vec is None:
            return self._unknown(c.account)
        i = 2 * asset.index
        if vec[i] + vec[i + 1] + c.amount >= MAX_AMOUNT:
            return _rej(Reject.INVALID_AMOUNT, "balance would exceed 2**127 base units")
        self.refs.add(c.ref)
        vec[i] += c.amount
        self.credits[asset.index] += c.amount
        return [(BAL, c.account, asset.index, c.amount, 0, Cause.CREDIT.value)]

    def _transfer(self, c: Transfer) -> list[Event]:
        asset = self.asset_by_symbol.get(c.asset) if isinstance(c.asset, str) else None
        if asset is None:
            return _rej(Reject.UNKNOWN_ASSET, f"unknown asset {c.asset!r}")
        src, dst = c.from_account, c.to_account
        if not (_is_int(src) and _is_int(dst)) or src <= 0 or dst <= 0:
            return _rej(Reject.INVALID_ACCOUNT, "accounts must be positive integers")
        if src == dst:
            return _rej(Reject.SELF_TRANSFER, "cannot transfer to the same account")
        if not _is_int(c.amount) or c.amount <= 0:
            return _rej(Reject.INVALID_AMOUNT, "amount must be a positive integer of base units")
        svec = self.balances.get(src)
        if svec is None:
            return self._unknown(src) if self.accounts_required else \
                _rej(Reject.INSUFFICIENT_FUNDS, f"available {asset.symbol} is less than the amount")
        i = 2 * asset.index
        if svec[i] < c.amount:
            return _rej(Reject.INSUFFICIENT_FUNDS, f"available {asset.symbol} is less than the amount")
        dvec = self._account(dst)
        if dvec is None:
            return self._unknown(dst)
        svec[i] -= c.amount
        dvec[i] += c.amount
        t = Cause.TRANSFER.value
        return [(BAL, src, asset.index, -c.amount, 0, t), (BAL, dst, asset.index, c.amount, 0, t)]

    def _request_withdrawal(self, c: RequestWithdrawal) -> list[Event]:
        asset, err = self._movement(c.asset, c.account, c.amount)
        if asset is None:
            return err
        wid = c.withdrawal_id
        if not isinstance(wid, str) or not wid or len(wid) > MAX_REF or not isinstance(c.destination, str):
            return _rej(Reject.INVALID_ORDER, "a withdrawal needs an id of 1-200 characters and a destination")
        if wid in self.withdrawal_ids:
            return _rej(Reject.DUPLICATE_WITHDRAWAL, f"withdrawal {wid!r} was already requested")
        vec = self.balances.get(c.account)
        if vec is None:
            return self._unknown(c.account)
        i = 2 * asset.index
        if vec[i] < c.amount:
            return _rej(Reject.INSUFFICIENT_FUNDS, f"available {asset.symbol} is less than the amount")
        vec[i] -= c.amount
        vec[i + 1] += c.amount
        self.withdrawal_ids.add(wid)
        self.withdrawals[wid] = (c.account, asset.index, c.amount)
        return [(E.WITHDRAWAL_REQUESTED, wid, c.account, asset.index, c.amount, c.destination),
                (BAL, c.account, asset.index, -c.amount, c.amount, C_LOCK)]

    def _complete_withdrawal(self, c: CompleteWithdrawal) -> list[Event]:
        pending = self.withdrawals.pop(c.withdrawal_id, None) if isinstance(c.withdrawal_id, str) else None
        if pending is None:
            return _rej(Reject.WITHDRAWAL_NOT_FOUND, "no pending withdrawal with this id")
        account, a, amount = pending
        self.balances[account][2 * a + 1] -= amount
        self.debits[a] += amount
        return [(E.WITHDRAWAL_DONE, c.withdrawal_id, True, str(c.reference)),
                (BAL, account, a, 0, -amount, Cause.WITHDRAWAL.value)]

    def _fail_withdrawal(self, c: FailWithdrawal) -> list[Event]:
        pending = self.withdrawals.pop(c.withdrawal_id, None) if isinstance(c.withdrawal_id, str) else None
        if pending is None:
            return _rej(Reject.WITHDRAWAL_NOT_FOUND, "no pending withdrawal with this id")
        account, a, amount = pending
        vec = self.balances[account]
        vec[2 * a] += amount
        vec[2 * a + 1] -= amount
        return [(E.WITHDRAWAL_DONE, c.withdrawal_id, False, str(c.reason)),
                (BAL, account, a, amount, -amount, C_UNLOCK)]

    def _mark_epoch(self, c: MarkEpoch) -> list[Event]:
        if not _is_int(c.epoch) or not 0 < c.epoch < 1 << 64:
            return _rej(Reject.INVALID_ORDER, "an epoch is a positive uint64")
        if c.epoch <= self.epoch:
            return _rej(Reject.STALE_EPOCH, f"epoch {c.epoch} is not after the last one ({self.epoch})")
        self.epoch = c.epoch
        return [(E.EPOCH_MARKED, c.epoch)]

    # ------------------------------------------------------------------ orders

    def _place(self, c: PlaceOrder) -> list[Event]:
        m = self.market_by_symbol.get(c.market) if type(c.market) is str else None
        if m is None:
            return _rej(Reject.UNKNOWN_MARKET, f"unknown market {c.market!r}")
        acct = c.account
        if type(acct) is not int or acct <= 0:
            return _rej(Reject.INVALID_ACCOUNT, "account must be a positive integer")
        side = c.side
        otype = c.otype
        stp = c.stp
        if side not in _SIDES:
            return _rej(Reject.INVALID_ORDER, "side must be buy or sell")
        if otype not in _OTYPES:
            return _rej(Reject.INVALID_ORDER, "unknown order type")
        if stp not in _STPS:
            return _rej(Reject.INVALID_ORDER, "unknown self-trade prevention mode")
        cid = c.client_id
        if cid:
            if type(cid) is not str or len(cid) > MAX_CLIENT_ID or not cid.isprintable():
                return _rej(Reject.INVALID_ORDER, f"client order id must be 1-{MAX_CLIENT_ID} printable characters")
            if (acct, cid) in self.client_ids:
                return _rej(Reject.DUPLICATE_CLIENT_ORDER_ID, f"client order id {cid!r} was already used")
        price = c.price
        qty = c.qty
        quote_qty = c.quote_qty
        lot = m.lot_size
        unit = m.unit
        if type(price) is not int or type(qty) is not int or type(quote_qty) is not int:
            return _rej(Reject.INVALID_AMOUNT, "price and quantities must be integers of base units")
        if otype == MARKET:
            if price:
                return _rej(Reject.INVALID_PRICE, "a market order takes no price")
            pt = 0
            if quote_qty:
                if side != BUY or qty:
                    return _rej(Reject.INVALID_ORDER, "a quote amount is only for a market buy without quantity")
                if quote_qty < 0 or quote_qty >= MAX_AMOUNT:
                    return _rej(Reject.INVALID_AMOUNT, "quote amount must be positive")
                if quote_qty < m.min_notional:
                    return _rej(Reject.BELOW_MIN_NOTIONAL, f"quote amount is below the minimum {m.min_notional}")
                lots = 0
            else:
                if qty <= 0 or qty >= MAX_AMOUNT:
                    return _rej(Reject.INVALID_QUANTITY, "quantity must be positive")
                if qty % lot:
                    return _rej(Reject.QUANTITY_OFF_LOT, f"quantity must be a multiple of the lot size {lot}")
                lots = qty // lot
        else:
            if quote_qty:
                return _rej(Reject.INVALID_ORDER, "a quote amount is only for market buys")
            tick = m.tick_size
            if price <= 0 or price >= MAX_AMOUNT:
                return _rej(Reject.INVALID_PRICE, "price must be positive")
            if price % tick:
                return _rej(Reject.PRICE_OFF_TICK, f"price must be a multiple of the tick size {tick}")
            if qty <= 0 or qty >= MAX_AMOUNT:
                return _rej(Reject.INVALID_QUANTITY, "quantity must be positive")
            if qty % lot:
                return _rej(Reject.QUANTITY_OFF_LOT, f"quantity must be a multiple of the lot size {lot}")
            pt = price // tick
            lots = qty // lot
            if pt * lots * unit < m.min_notional:
                return _rej(Reject.BELOW_MIN_NOTIONAL, f"notional is below the minimum {m.min_notional}")
        stop_price = c.stop_price
        if otype in (STOP_LIMIT, TAKE_PROFIT_LIMIT):
            if type(stop_price) is not int or stop_price <= 0 or stop_price >= MAX_AMOUNT:
                return _rej(Reject.INVALID_PRICE, "a stop order needs a positive stop price")
            if stop_price % m.tick_size:
                return _rej(Reject.PRICE_OFF_TICK, f"stop price must be a multiple of the tick size {m.tick_size}")
            st = stop_price // m.tick_size
            rising = (side == BUY) == (otype == STOP_LIMIT)
            last = self.last_price[m.index]
            if last and (last >= st if rising else last <= st):
                return _rej(Reject.STOP_WOULD_TRIGGER, "the last price has already reached the stop price")
        elif stop_price:
            return _rej(Reject.INVALID_ORDER, "a stop price is only for stop and take-profit orders")

        vec = self._account(acct)
        if vec is None:
            return self._unknown(acct)
        book = self.books[m.index]
        if side == BUY:
            ai = m.quote_i
            opp = book.asks
            if otype == MARKET:
                # A market buy locks a budget: its quote amount, or (by quantity) all that is available.
                need = quote_qty if quote_qty else vec[ai]
                if need <= 0 or vec[ai] < need:
                    return _rej(Reject.INSUFFICIENT_FUNDS, f"available {m.quote.symbol} is insufficient")
            else:
                need = pt * lots * unit
                if vec[ai] < need:
                    return _rej(Reject.INSUFFICIENT_FUNDS, f"available {m.quote.symbol} is insufficient")
        else:
            ai = m.base_i
            opp = book.bids
            need = lots * lot
            if vec[ai] < need:
                return _rej(Reject.INSUFFICIENT_FUNDS, f"available {m.base.symbol} is insufficient")

        if otype in (STOP_LIMIT, TAKE_PROFIT_LIMIT):
            return self._place_stop(c, m, vec, ai, need, pt, lots, st, rising)
        best = opp.best()
        crosses = best is not None and (otype == MARKET or (best.price <= pt if side == BUY else best.price >= pt))
        if otype == POST_ONLY:
            if crosses:
                return _rej(Reject.POST_ONLY_WOULD_TAKE, "a post-only order would take liquidity")
        elif otype == FOK:
            if not self._fillable(opp, acct, side, pt, lots, stp):
                return _rej(Reject.FOK_NOT_FILLABLE, "the order cannot be filled completely at once")
        elif otype == MARKET and best is None:
            return _rej(Reject.NO_LIQUIDITY, "no resting orders on the other side")

        oid = self.next_order_id
        self.next_order_id = oid + 1
        if cid:
            self.client_ids[(acct, cid)] = oid
        vec[ai] -= need
        vec[ai + 1] += need
        o = Order(oid, acct, m.index, side, otype, pt, lots, lots if lots else (1 << 62),
                  need if otype == MARKET and side == BUY else 0, cid, stp, self.seq, self.ts)
        ev: list[Event] = [
            (E.ORDER_NEW, oid, acct, m.index, side, otype, price, qty, quote_qty, cid, stp, 0),
            (BAL, acct, ai >> 1, -need, need, C_LOCK),
        ]
        if not crosses and otype != IOC and otype != FOK:
            # nothing to take: a resting limit or post-only order (the common case) goes straight in
            book.side(side).add(o)
            self.orders[oid] = o
            by = self.open_by_account.get(acct)
            if by is None:
                by = self.open_by_account[acct] = {}
            by[oid] = o
            return ev
        self._take_and_rest(o, m, book, ev)
        if self.stops_up[m.index] or self.stops_down[m.index]:
            self._trigger(m, book, ev)
        return ev

    def _place_stop(self, c: PlaceOrder, m: Market, vec: list[int], ai: int, need: int, pt: int, lots: int,
                    st: int, rising: bool) -> list[Event]:
        """A stop or take-profit order: funds locked now, waiting off the book for its trigger."""
        acct = c.account
        oid = self.next_order_id
        self.next_order_id = oid + 1
        if c.client_id:
            self.client_ids[(acct, c.client_id)] = oid
        vec[ai] -= need
        vec[ai + 1] += need
        o = Order(oid, acct, m.index, c.side, c.otype, pt, lots, lots, 0, c.client_id, c.stp, self.seq, self.ts, st)
        self.orders[oid] = o
        by = self.open_by_account.get(acct)
        if by is None:
            by = self.open_by_account[acct] = {}
        by[oid] = o
        if rising:
            heappush(self.stops_up[m.index], (st, oid))
        else:
            heappush(self.stops_down[m.index], (-st, oid))
        return [
            (E.ORDER_NEW, oid, acct, m.index, c.side, c.otype, c.price, c.qty, 0, c.client_id, c.stp, c.stop_price),
            (BAL, acct, ai >> 1, -need, need, C_LOCK),
        ]

    def _trigger(self, m: Market, book: OrderBook, ev: list[Event]) -> None:
        """Turn every stop order whose stop the last price has reached into a limit order, oldest
        first; their trades move the last price, so repeat until nothing more triggers."""
        mi = m.index
        up, down = self.stops_up[mi], self.stops_down[mi]
        orders = self.orders
        while True:
            last = self.last_price[mi]
            if not last:
                return
            fired: list[Order] = []
            while up and up[0][0] <= last:
                o = orders.get(heappop(up)[1])
                if o is not None and o.stop:
                    fired.append(o)
            while down and -down[0][0] >= last:
                o = orders.get(heappop(down)[1])
                if o is not None and o.stop:
                    fired.append(o)
            if not fired:
                return
            fired.sort(key=lambda o: o.oid)
            for o in fired:
                o.stop = 0
                o.otype = LIMIT
                o.seq, o.ts = self.seq, self.ts
                del orders[o.oid]
                del self.open_by_account[o.account][o.oid]
                ev.append((E.ORDER_TRIGGERED, o.oid, o.account, mi, o.side, o.price * m.tick_size,
                           o.remaining * m.lot_size))
                self._take_and_rest(o, m, book, ev)

    def _fillable(self, opp: Any, acct: int, side: int, pt: int, lots: int, stp: int) -> bool:
        """Whether a FOK order would fill completely (own orders: skipped under expire-maker,
        the end of the fill otherwise)."""
        for level in opp.sorted_levels():
            if (level.price > pt) if side == BUY else (level.price < pt):
                return False
            for o in level.orders:
                if not o.remaining:
                    continue
                if o.account == acct:
                    if stp == EXPIRE_MAKER:
                        continue
                    return False
                lots -= o.remaining
                if lots <= 0:
                    return True
        return False

    def _take_and_rest(self, o: Order, m: Market, book: OrderBook, ev: list[Event]) -> None:
        """Match ``o`` as the taker, then rest it, or finish it and unlock what is left."""
        stop, filled = self._take(o, m, book, ev)
        by_quote = o.otype == MARKET and o.side == BUY and not o.qty
        done = not o.remaining or (by_quote and stop == STOP_BUDGET and filled > 0)
        if not done and stop != STOP_STP and (o.otype == LIMIT or o.otype == POST_ONLY):
            book.side(o.side).add(o)
            self.orders[o.oid] = o
            by = self.open_by_account.get(o.account)
            if by is None:
                by = self.open_by_account[o.account] = {}
            by[o.oid] = o
            return
        vec = self.balances[o.account]
        if o.side == BUY:
            ai = 2 * m.quote.index
            left = o.quote_qty if o.otype == MARKET else o.remaining * o.price * m.unit
        else:
            ai = 2 * m.base.index
            left = o.remaining * m.lot_size
        if left:
            vec[ai] += left
            vec[ai + 1] -= left
            ev.append((BAL, o.account, ai >> 1, left, -left, C_UNLOCK))
        if done:
            ev.append((DONE, o.oid, FILLED, 0, ""))
        else:
            if stop == STOP_STP:
                reason = _STP_REASON
            elif stop == STOP_BUDGET:
                reason = "insufficient funds for the rest" if o.qty else "quote amount buys less than one lot"
            elif o.otype == MARKET:
                reason = "no more liquidity"
            else:
                reason = "immediate-or-cancel"
            ev.append((DONE, o.oid, EXPIRED, 0 if by_quote else o.remaining * m.lot_size, reason))
        o.remaining = 0

    def _take(self, o: Order, m: Market, book: OrderBook, ev: list[Event]) -> tuple[int, int]:
        """The matching loop: best price first, then oldest first; trades at the maker's price.
        Returns why it stopped (STOP_*) and the lots filled."""
        acct = o.account
        buy = o.side == BUY
        opp = book.asks if buy else book.bids
        limit = o.price
        budgeted = o.otype == MARKET and buy
        budget = o.quote_qty
        rem = o.remaining
        lot = m.lot_size
        unit = m.unit
        tick = m.tick_size
        base_i = m.base_i
        quote_i = m.quote_i
        base_a = base_i >> 1
        quote_a = quote_i >> 1
        t_ppm = m.taker_fee_ppm
        m_ppm = m.maker_fee_ppm
        mi = m.index
        bal = self.balances
        tvec = bal[acct]
        fvec = bal[FEE_ACCOUNT]
        ivec = bal[INSURANCE_ACCOUNT]
        orders = self.orders
        open_by = self.open_by_account
        side = o.side
        oid = o.oid
        stop = STOP_BOOK
        start = rem
        last_p = 0
        append = ev.append
        levels = opp.levels
        while rem:
            level = opp.best()
            if level is None:
                break
            p = level.price
            if limit and (p > limit if buy else p < limit):
                break
            dq = level.orders
            while dq:
                mk = dq[0]
                mrem = mk.remaining
                if not mrem:
                    dq.popleft()
                    level.dead -= 1
                    continue
                if mk.account == acct:
                    if o.stp != EXPIRE_TAKER:
                        dq.popleft()
                        level.qty -= mrem
                        self._expire_resting(mk, m, ev)
                    if o.stp != EXPIRE_MAKER:
                        stop = STOP_STP
                        break
                    continue
                n = rem if rem < mrem else mrem
                cost = p * unit
                if budgeted:
                    afford = budget // cost
                    if afford < n:
                        n = afford
                        if not n:
                            stop = STOP_BUDGET
                            break
                qb = n * lot
                notional = n * cost
                mvec = bal[mk.account]
                if buy:
                    fee_t = (qb * t_ppm + PPM - 1) // PPM
                    fee_m = (notional * m_ppm + PPM - 1) // PPM
                    if budgeted:
                        release = notional
                        budget -= notional
                    else:
                        release = n * limit * unit
                    tvec[quote_i + 1] -= release
                    tvec[quote_i] += release - notional
                    tvec[base_i] += qb - fee_t
                    mvec[base_i + 1] -= qb
                    mvec[quote_i] += notional - fee_m
                    append((BAL, acct, quote_a, release - notional, -release, C_TRADE))
                    append((BAL, acct, base_a, qb - fee_t, 0, C_TRADE))
                    append((BAL, mk.account, base_a, 0, -qb, C_TRADE))
                    append((BAL, mk.account, quote_a, notional - fee_m, 0, C_TRADE))
                    fee_b, fee_q = fee_t, fee_m
                else:
                    fee_t = (notional * t_ppm + PPM - 1) // PPM
                    fee_m = (qb * m_ppm + PPM - 1) // PPM
                    tvec[base_i + 1] -= qb
                    tvec[quote_i] += notional - fee_t
                    mvec[quote_i + 1] -= notional
                    mvec[base_i] += qb - fee_m
                    append((BAL, acct, base_a, 0, -qb, C_TRADE))
                    append((BAL, acct, quote_a, notional - fee_t, 0, C_TRADE))
                    append((BAL, mk.account, quote_a, 0, -notional, C_TRADE))
                    append((BAL, mk.account, base_a, qb - fee_m, 0, C_TRADE))
                    fee_b, fee_q = fee_m, fee_t
                if fee_b:
                    ins = fee_b // 10
                    fvec[base_i] += fee_b - ins
                    append((BAL, FEE_ACCOUNT, base_a, fee_b - ins, 0, C_FEE))
                    if ins:
                        ivec[base_i] += ins
                        append((BAL, INSURANCE_ACCOUNT, base_a, ins, 0, C_FEE))
                if fee_q:
                    ins = fee_q // 10
                    fvec[quote_i] += fee_q - ins
                    append((BAL, FEE_ACCOUNT, quote_a, fee_q - ins, 0, C_FEE))
                    if ins:
                        ivec[quote_i] += ins
                        append((BAL, INSURANCE_ACCOUNT, quote_a, ins, 0, C_FEE))
                tid = self.next_trade_id
                self.next_trade_id = tid + 1
                append((TRADE, tid, mi, p * tick, qb, notional, oid, mk.oid, acct,
                        mk.account, side, fee_t, fee_m))
                rem -= n
                level.qty -= n
                mrem -= n
                last_p = p
                mk.remaining = mrem
                if not mrem:
                    dq.popleft()
                    del orders[mk.oid]
                    del open_by[mk.account][mk.oid]
                    append((DONE, mk.oid, FILLED, 0, ""))
                if not rem:
                    break
                if budgeted and budget < cost:
                    stop = STOP_BUDGET
                    break
            if not level.qty:
                del levels[p]
            if stop:
                break
        o.remaining = rem
        if budgeted:
            o.quote_qty = budget
        if last_p:
            self.last_price[mi] = last_p
        return stop, start - rem

    def _expire_resting(self, mk: Order, m: Market, ev: list[Event]) -> None:
        """Remove a resting order already taken off its queue; unlock its funds."""
        left = mk.remaining
        mk.remaining = 0
        del self.orders[mk.oid]
        del self.open_by_account[mk.account][mk.oid]
        self._unlock_resting(mk, left, m, ev)
        ev.append((DONE, mk.oid, EXPIRED, left * m.lot_size, _STP_REASON))

    def _unlock_resting(self, o: Order, lots: int, m: Market, ev: list[Event]) -> None:
        vec = self.balances[o.account]
        if o.side == BUY:
            a = m.quote.index
            amount = lots * o.price * m.unit
        else:
            a = m.base.index
            amount = lots * m.lot_size
        vec[2 * a] += amount
        vec[2 * a + 1] -= amount
        ev.append((BAL, o.account, a, amount, -amount, C_UNLOCK))

    def _find_own(self, account: int, market: str, order_id: int, client_id: str) -> tuple[Order | None, list[Event]]:
        m = self.market_by_symbol.get(market) if isinstance(market, str) else None
        if m is None:
            return None, _rej(Reject.UNKNOWN_MARKET, f"unknown market {market!r}")
        if client_id and isinstance(client_id, str) and not order_id:
            order_id = self.client_ids.get((account, client_id), 0)
        o = self.orders.get(order_id) if _is_int(order_id) else None
        if o is None or o.account != account or o.market != m.index:
            return None, _rej(Reject.ORDER_NOT_FOUND, "no open order with this id for this account and market")
        return o, []

    def _cancel(self, c: CancelOrder) -> list[Event]:
        o, err = self._find_own(c.account, c.market, c.order_id, c.client_id)
        if o is None:
            return err
        return self._cancel_resting(o)

    def _cancel_resting(self, o: Order) -> list[Event]:
        m = self.markets[o.market]
        left = o.remaining
        if o.stop:  # a pending stop order is not in the book; its trigger entry is dropped lazily
            o.stop = 0
            o.remaining = 0
        else:
            self.books[o.market].side(o.side).remove(o)
        del self.orders[o.oid]
        del self.open_by_account[o.account][o.oid]
        ev: list[Event] = []
        self._unlock_resting(o, left, m, ev)
        ev.append((DONE, o.oid, CANCELED, left * m.lot_size, "cancelled by user"))
        return ev

    def _cancel_all(self, c: CancelAll) -> list[Event]:
        m = self.market_by_symbol.get(c.market) if isinstance(c.market, str) else None
        if m is None:
            return _rej(Reject.UNKNOWN_MARKET, f"unknown market {c.market!r}")
        mine = self.open_by_account.get(c.account, {})
        ev: list[Event] = []
        for oid in sorted(oid for oid, o in mine.items() if o.market == m.index):
            ev.extend(self._cancel_resting(mine[oid]))
        return ev

    def _amend(self, c: AmendOrder) -> list[Event]:
        o, err = self._find_own(c.account, c.market, c.order_id, "")
        if o is None:
            return err
        m = self.markets[o.market]
        if o.stop:
            return _rej(Reject.INVALID_ORDER, "a pending stop order cannot be amended: cancel it and place another")
        price, qty = c.price, c.qty
        if not (_is_int(price) and _is_int(qty)) or price < 0 or qty < 0:
            return _rej(Reject.INVALID_AMOUNT, "price and quantity must be non-negative integers")
        pt = o.price
        if price:
            if price >= MAX_AMOUNT:
                return _rej(Reject.INVALID_PRICE, "price too large")
            if price % m.tick_size:
                return _rej(Reject.PRICE_OFF_TICK, f"price must be a multiple of the tick size {m.tick_size}")
            pt = price // m.tick_size
        filled = o.qty - o.remaining
        total = o.qty
        if qty:
            if qty % m.lot_size:
                return _rej(Reject.QUANTITY_OFF_LOT, f"quantity must be a multiple of the lot size {m.lot_size}")
            total = qty // m.lot_size
            if total <= filled:
                return _rej(Reject.INVALID_QUANTITY, "new quantity must exceed the filled quantity")
        new_rem = total - filled
        if pt * new_rem * m.unit < m.min_notional:
            return _rej(Reject.BELOW_MIN_NOTIONAL, f"notional is below the minimum {m.min_notional}")
        book = self.books[o.market]
        side = book.side(o.side)
        ev: list[Event] = []
        if pt == o.price and new_rem <= o.remaining:
            # Same price, not more: amend in place, keep time priority.
            cut = o.remaining - new_rem
            if cut:
                side.reduce(o, cut)
                self._unlock_resting(o, cut, m, ev)
            o.qty = total
            ev.append((E.ORDER_AMENDED, o.oid, pt * m.tick_size, total * m.lot_size, new_rem * m.lot_size, False))
            return ev
        opp = book.asks if o.side == BUY else book.bids
        best = opp.best()
        crosses = best is not None and (best.price <= pt if o.side == BUY else best.price >= pt)
        if crosses and o.otype == POST_ONLY:
            return _rej(Reject.POST_ONLY_WOULD_TAKE, "the amended post-only order would take liquidity")
        vec = self.balances[o.account]
        if o.side == BUY:
            a = m.quote.index
            old_lock, new_lock = o.remaining * o.price * m.unit, new_rem * pt * m.unit
        else:
            a = m.base.index
            old_lock, new_lock = o.remaining * m.lot_size, new_rem * m.lot_size
        if new_lock - old_lock > vec[2 * a]:
            return _rej(Reject.INSUFFICIENT_FUNDS, "available balance is insufficient for the amendment")
        # Re-queue: a fresh queue entry at the back, the old one left dead.
        side.remove(o)
        del self.orders[o.oid]
        del self.open_by_account[o.account][o.oid]
        vec[2 * a] -= new_lock - old_lock
        vec[2 * a + 1] += new_lock - old_lock
        if new_lock != old_lock:
            cause = C_LOCK if new_lock > old_lock else C_UNLOCK
            ev.append((BAL, o.account, a, old_lock - new_lock, new_lock - old_lock, cause))
        n = Order(o.oid, o.account, o.market, o.side, o.otype, pt, total, new_rem, 0, o.client_id,
                  o.stp, self.seq, self.ts)
        ev.append((E.ORDER_AMENDED, n.oid, pt * m.tick_size, total * m.lot_size, new_rem * m.lot_size, True))
        self._take_and_rest(n, m, book, ev)
        if self.stops_up[m.index] or self.stops_down[m.index]:
            self._trigger(m, book, ev)
        return ev

    def adopt(self, other: Engine) -> None:
        """Take ``other``'s whole state in place (after the journal's database came back, the
        sequencer rebuilds the state from the journal). Containers keep their identity, so whoever
        holds this engine's lists (the API's markets and assets) sees the new contents."""
        mine = vars(self)
        for name, value in vars(other).items():
            if name == "_handlers":
                continue  # bound to ``other``
            old = mine.get(name)
            if isinstance(old, list) and isinstance(value, list):
                old[:] = value
            elif isinstance(old, dict | set) and type(value) is type(old):
                old.clear()
                old.update(value)
            else:
                mine[name] = value

    # ------------------------------------------------------------------ checks used by tests and tools

    def totals(self) -> list[int]:
        """Per asset: the sum of every account's available + locked (fees and insurance included)."""
        out = [0] * len(self.assets)
        for vec in self.balances.values():
            for a in range(len(out)):
                out[a] += vec[2 * a] + vec[2 * a + 1]
        return out

    def conservation_errors(self) -> list[str]:
        """Empty when, per asset, balances + fees + insurance == credits - debits, locks match the
        open orders and pending withdrawals exactly, and no balance is negative."""
        errs: list[str] = []
        for a, total in enumerate(self.totals()):
            if total != self.credits[a] - self.debits[a]:
                net = self.credits[a] - self.debits[a]
                errs.append(f"{self.assets[a].symbol}: balances {total} != net credits {net}")
        locked: dict[tuple[int, int], int] = {}
        for o in self.orders.values():
            m = self.markets[o.market]
            if o.side == BUY:
                key, amount = (o.account, m.quote.index), o.remaining * o.price * m.unit
            else:
                key, amount = (o.account, m.base.index), o.remaining * m.lot_size
            locked[key] = locked.get(key, 0) + amount
        for account, a, amount in self.withdrawals.values():
            locked[(account, a)] = locked.get((account, a), 0) + amount
        for acct, vec in self.balances.items():
            for a in range(len(self.assets)):
                if vec[2 * a] < 0 or vec[2 * a + 1] < 0:
                    errs.append(f"account {acct} {self.assets[a].symbol}: negative balance {vec[2 * a : 2 * a + 2]}")
                if vec[2 * a + 1] != locked.get((acct, a), 0):
                    want = locked.get((acct, a), 0)
                    errs.append(f"account {acct} {self.assets[a].symbol}: locked {vec[2 * a + 1]} != orders {want}")
        return errs
