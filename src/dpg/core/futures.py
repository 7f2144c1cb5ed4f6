"""Perpetual futures in the engine: positions, margin, the mark price, funding, liquidations, the
insurance fund and auto-deleveraging. Deterministic like the rest of the engine: prices arrive as
commands (IndexPrice), time is the sequencer's ``ts``.

Money. A perpetual is margined in its quote asset (USDT). An account's quote balance in the ledger
is its wallet: available, and locked (the margin its open orders hold, ``Order.quote_qty``). A
cross position has no balance of its own: it shares the wallet. An isolated position has its own
``margin``, moved out of the wallet. Opening a position moves no money; its ``cost`` (the signed
quote amount it was opened for) is recorded, and reducing it settles the realized PnL into the
wallet (or its isolated margin). So, per asset, after every command:

    sum of balances + sum of isolated margins - sum of open positions' signed cost = credits - debits

(the trades' notionals cancel between buyer and seller). Rounding favours solvency: a realized gain
is rounded down, a loss up, a payer's funding up, a receiver's down (the remainder to the insurance
fund), required margins up.

Risk. Every position is in an index per market and side, keyed by the mark price that would bring
its scope (its isolated margin, or the account's cross positions) under maintenance: the
liquidation price of margin.liq_price when the scope has one position, and a conservative band
(the scope's cushion split between its positions) when it has several. A tick pops only the
entries it crossed, checks their scope exactly and liquidates it or re-keys it; a tick that crosses
nothing costs two heap peeks.

Staleness. When no index source of a perpetual is valid, an IndexStale command marks it stale:
its mark price stays where it was (no stop fires), no scope holding a position there is liquidated
(a check is deferred), orders that could increase a position and margin taken out are refused
(INDEX_STALE), until the next IndexPrice, which re-checks every position of the market.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from fractions import Fraction
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

from dpg.core import events as E
from dpg.core import funding as F
from dpg.core.errors import Reject
from dpg.core.events import Cause, Event, PositionCause
from dpg.core.margin import TierTable, initial_margin, liq_price_units
from dpg.core.matching import STOP_STP, Fill, OrderBook, fillable, take
from dpg.core.model import (
    FEE_ACCOUNT,
    INSURANCE_ACCOUNT,
    INSURANCE_SHARE_PCT,
    MAX_AMOUNT,
    PPM,
    Market,
    Order,
    OrderFlag,
    OrderStatus,
    OrderType,
    Side,
    stop_rises,
)

if TYPE_CHECKING:
    from dpg.core.commands import (
        AdjustMargin,
        AmendOrder,
        Funding,
        IndexPrice,
        IndexStale,
        PlaceOrder,
        SetLeverage,
        SetMarginMode,
    )
    from dpg.core.engine import Engine

BUY = Side.BUY.value
LIMIT = OrderType.LIMIT.value
IOC = OrderType.IOC.value
FOK = OrderType.FOK.value
POST_ONLY = OrderType.POST_ONLY.value
MARKET = OrderType.MARKET.value
STOP_MARKET = OrderType.STOP_MARKET.value
TAKE_PROFIT_MARKET = OrderType.TAKE_PROFIT_MARKET.value
REDUCE_ONLY = OrderFlag.REDUCE_ONLY.value
CLOSE_POSITION = OrderFlag.CLOSE_POSITION.value
FILLED = OrderStatus.FILLED.value
CANCELED = OrderStatus.CANCELED.value
EXPIRED = OrderStatus.EXPIRED.value

NS_PER_MS = 1_000_000  # the sequencer stamps commands in ns; funding times are ms
DEFAULT_LEVERAGE = 20
BAND_PPM = 50_000  # a market order on a perpetual is an IOC bounded 5 % from the mark price
BASIS_SAMPLES = 60  # the mark price's moving average of (mid - index): the last 60 index ticks
PREMIUM_SAMPLE_MS = 60_000  # the premium index is sampled at most once a minute, on an index tick
VIA_BOOK, VIA_INSURANCE, VIA_ADL = 0, 1, 2
BAND_REASON = "no more liquidity within 5 % of the mark price"

_new = E.new
BAL = E.BALANCE
C_TRADE = Cause.TRADE.value
C_FEE = Cause.FEE.value


def _rej(code: Reject, reason: str) -> list[Event]:
    return E.rejected(code.value, reason)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def equity(balance: int, positions: list[tuple[int, int, int, int, int, bool]]) -> int:
    """A user's liability in a perpetuals' quote asset, in the proof of reserves: their equity.
    ``balance`` is their quote balance (available + locked; a cross account's may be negative), each
    position is (size in base units, signed; mark in quote units per whole base; 10**base decimals;
    cost, signed like the size; isolated margin; isolated). Unrealized PnL is
    ceil(size * mark / scale) - cost, rounded up (a gain up, a loss down: the exchange owes more
    when in doubt); an isolated position counts max(0, margin + PnL) (a loss beyond its margin is
    the insurance fund's), a cross one its PnL; the whole is floored at zero."""
    eq = balance
    for size, mark, scale, cost, margin, isolated in positions:
        pnl = -(-(size * mark) // scale) - cost if size else 0
        eq += max(0, margin + pnl) if isolated else pnl
    return max(0, eq)


class Position:
    """One account's net position in one perpetual, and its settings there."""

    __slots__ = ("account", "cost", "isolated", "key", "leverage", "margin", "market", "size", "ver")

    def __init__(self, account: int, market: int, leverage: int = DEFAULT_LEVERAGE, isolated: bool = False) -> None:
        self.account = account
        self.market = market
        self.size = 0  # lots, signed: + long, - short
        self.cost = 0  # quote base units, signed like size: what the open size was bought (sold) for
        self.margin = 0  # isolated margin, quote base units (0 for cross)
        self.leverage = leverage
        self.isolated = isolated
        self.key = 0  # its entry in the risk index (quote units per whole base; 0: none)
        self.ver = 0  # bumped at every re-key: older index entries are dead


class PerpMarket:
    """A perpetual's own state beside its book: tiers, prices, funding and the risk index."""

    __slots__ = ("basis", "cap", "first_mmr", "floors", "impact", "index", "interval", "last_rate", "last_sample",
                 "longs",
                 "mark", "market", "mmr_max", "next_funding", "premiums", "scale", "shorts", "stale", "tiers")

    def __init__(self, market: Market, tiers: TierTable, interval: int, impact: int) -> None:
        self.market = market
        self.tiers = tiers
        self.interval = interval  # funding interval, ms
        self.impact = impact  # impact notional, quote base units
        self.scale: int = 10**market.base.decimals
        self.first_mmr = tiers.tiers[0].mmr_ppm
        self.floors = [t.floor for t in tiers.tiers]
        self.mmr_max = tiers.tiers[-1].mmr_ppm
        self.cap = F.funding_cap(self.first_mmr)
        self.index = 0  # quote units per whole base; 0: none yet
        self.mark = 0
        self.last_rate = 0  # the last funding rate, RATE_SCALE units
        self.next_funding = 0  # ms since the Unix epoch; 0: set by the first index tick
        self.premiums: list[int] = []  # this interval's premium index samples
        self.last_sample = 0  # ms of the last premium sample
        self.basis: list[int] = []  # the last BASIS_SAMPLES (mid - index)
        self.longs: list[tuple[int, int, int]] = []  # (-key, account, ver): liquidated when mark <= key
        self.shorts: list[tuple[int, int, int]] = []  # (key, account, ver): liquidated when mark >= key
        self.stale = False  # no valid index source (IndexStale) until the next IndexPrice


class Futures:
    """The perpetuals of one engine: their markets, every position, and the risk engine."""

    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self.perps: dict[int, PerpMarket] = {}  # market index -> its state
        self.positions: dict[tuple[int, int], Position] = {}  # (account, market) -> position / settings
        self.by_account: dict[int, dict[int, Position]] = {}  # account -> market -> position
        self.cross: dict[int, int] = {}  # account -> number of open cross positions
        self.pending: list[tuple[int, int]] = []  # a heap of scopes to check: (account, market or -1 for cross)
        self.queued: set[tuple[int, int]] = set()  # the scopes in ``pending``
        self.quote_asset = -1  # the perpetuals' common quote (margin) asset
        # per market: the open longs and the open shorts by account (ADL ranks one side, not every position)
        self.holders: dict[int, tuple[dict[int, Position], dict[int, Position]]] = {}
        self.held: dict[int, int] = {}  # account -> quote its open perpetual orders hold (part of its margin balance)
        self.stale = 0  # how many perpetuals are stale (0: the risk checks skip the staleness test)

    # ------------------------------------------------------------------ listing and settings

    def add(self, m: Market, tiers: TierTable, interval: int, impact: int) -> None:
        self.perps[m.index] = PerpMarket(m, tiers, interval, impact)
        self.holders[m.index] = ({}, {})
        self.quote_asset = m.quote.index

    def position(self, account: int, mi: int) -> Position:
        p = self.positions.get((account, mi))
        if p is None:
            p = self.positions[(account, mi)] = Position(account, mi)
            self.by_account.setdefault(account, {})[mi] = p
        return p

    def on_set_leverage(self, c: SetLeverage) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        found = self._perp_of(r.account, r.market)
        if isinstance(found, list):
            return found
        pm = found
        lev = r.leverage
        if type(lev) is not int or not 1 <= lev <= 100:
            return _rej(Reject.INVALID_LEVERAGE, "leverage must be an integer from 1 to 100")
        p = self.position(c.account, pm.market.index)
        notional = self._notional(p, pm)
        top = pm.tiers.max_leverage(notional)
        if lev > top:
            return _rej(Reject.INVALID_LEVERAGE,
                        f"leverage {lev}x is above the maximum {top}x for this position's size")
        if p.size and not p.isolated and lev < p.leverage:
            # less leverage on a cross position: its larger initial margin must be free
            need = initial_margin(notional, lev) - initial_margin(notional, p.leverage)
            if self.free(c.account) < need:
                return _rej(Reject.INSUFFICIENT_MARGIN, "not enough margin for the position at this leverage")
        if p.size and p.isolated and lev < p.leverage and p.margin < initial_margin(notional, lev):
            return _rej(Reject.INSUFFICIENT_MARGIN, "add margin to the isolated position before lowering its leverage")
        p.leverage = lev
        self._rekey(p.account, p)
        return [_new(E.LeverageSet, (E.LEVERAGE_SET, c.account, pm.market.index, lev, p.isolated))]

    def on_set_margin_mode(self, c: SetMarginMode) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        found = self._perp_of(r.account, r.market)
        if isinstance(found, list):
            return found
        mi = found.market.index
        if type(r.isolated) is not bool:
            return _rej(Reject.INVALID_ORDER, "isolated must be true or false")
        p = self.position(c.account, mi)
        if p.isolated == c.isolated:
            return []
        if p.size or self.e.open.of_account(c.account, mi):
            return _rej(Reject.POSITION_OPEN, "the margin mode changes only with no position and no open order here")
        p.isolated = c.isolated
        return [_new(E.LeverageSet, (E.LEVERAGE_SET, c.account, mi, p.leverage, p.isolated))]

    def on_adjust_margin(self, c: AdjustMargin) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        found = self._perp_of(r.account, r.market)
        if isinstance(found, list):
            return found
        pm = found
        amount = r.amount
        if type(amount) is not int or not amount or abs(amount) >= MAX_AMOUNT:
            return _rej(Reject.INVALID_AMOUNT, "amount must be a non-zero integer of quote base units")
        p = self.positions.get((c.account, pm.market.index))
        if p is None or not p.size or not p.isolated:
            return _rej(Reject.NO_POSITION, "margin is added to or removed from an open isolated position only")
        if amount < 0 and pm.stale:
            return _rej(Reject.INDEX_STALE, f"{pm.market.symbol}'s index is stale: no margin is taken out")
        vec = self.e.ledger.balances[c.account]
        qi = pm.market.quote_i
        if amount > 0:
            if vec[qi] < amount or self.free(c.account) < amount:
                return _rej(Reject.INSUFFICIENT_FUNDS, f"available {pm.market.quote.symbol} is less than the amount")
        else:
            keep = max(initial_margin(self._notional(p, pm), p.leverage) - min(0, self._upnl(p, pm)),
                       pm.tiers.maintenance(self._notional(p, pm)))
            if p.margin + amount < keep:
                return _rej(Reject.INSUFFICIENT_MARGIN,
                            f"at most {max(0, p.margin - keep)} can be removed: the position needs its initial margin")
        vec[qi] -= amount
        p.margin += amount
        ev: list[Event] = [_new(E.Balance, (BAL, c.account, qi >> 1, -amount, 0, Cause.MARGIN.value)),
                           self._pos_event(p, pm, 0, PositionCause.MARGIN.value)]
        self._rekey(c.account, p)
        return ev

    def _perp_of(self, account: object, market: object) -> PerpMarket | list[Event]:
        m = self.e.market_by_symbol.get(market) if isinstance(market, str) else None
        pm = self.perps.get(m.index) if m is not None else None
        if pm is None:
            return _rej(Reject.UNKNOWN_MARKET, f"unknown perpetual {market!r}")
        if type(account) is not int or not self.e.ledger.has(account) or account <= 0:
            return _rej(Reject.UNKNOWN_ACCOUNT, f"account {account} does not exist")
        return pm

    # ------------------------------------------------------------------ valuations

    def _notional(self, p: Position, pm: PerpMarket) -> int:
        """|size| at the mark, quote base units (rounded down)."""
        return abs(p.size) * pm.market.lot_size * pm.mark // pm.scale

    def _upnl(self, p: Position, pm: PerpMarket) -> int:
        """Unrealized PnL at the mark (rounded down: a loss up, a gain down)."""
        return p.size * pm.market.lot_size * pm.mark // pm.scale - p.cost

    def _mm(self, p: Position, pm: PerpMarket) -> int:
        return pm.tiers.maintenance(self._notional(p, pm))

    def cross_positions(self, account: int) -> list[Position]:
        mine = self.by_account.get(account)
        return [p for p in mine.values() if p.size and not p.isolated] if mine else []

    def wallet(self, account: int, qi: int) -> int:
        """The account's margin wallet: its available quote and what its perpetual orders hold
        (not its spot orders' or withdrawals' holds)."""
        return self.e.ledger.balances[account][qi] + self.held.get(account, 0)

    def equity(self, account: int, mi: int) -> tuple[int, int]:
        """(margin balance, maintenance) of the scope: the isolated position in ``mi`` (mi >= 0),
        or the account's cross positions (mi = -1)."""
        if mi >= 0:
            p = self.positions[(account, mi)]
            pm = self.perps[mi]
            return p.margin + self._upnl(p, pm), self._mm(p, pm)
        eq = 0
        mm = 0
        qi = -1
        for p in self.cross_positions(account):
            pm = self.perps[p.market]
            qi = pm.market.quote_i
            eq += self._upnl(p, pm)
            mm += self._mm(p, pm)
        return (eq + self.wallet(account, qi) if qi >= 0 else 0), mm

    def liability(self, account: int) -> int:
        """The account's liability in the quote asset for the proof of reserves: ``equity`` of its
        quote balance (available + locked) and its positions at their marks."""
        qa = self.quote_asset
        vec = self.e.ledger.balances[account]
        held: list[tuple[int, int, int, int, int, bool]] = []
        mine = self.by_account.get(account)
        if mine:
            for p in mine.values():
                if p.size or p.margin:
                    pm = self.perps[p.market]
                    held.append((p.size * pm.market.lot_size, pm.mark, pm.scale, p.cost, p.margin, p.isolated))
        return equity(vec[2 * qa] + vec[2 * qa + 1], held)

    def free(self, account: int) -> int:
        """What the account may still commit from its available quote balance without touching its
        cross positions' initial margin (unrealized profit is not counted; a loss is)."""
        cps = self.cross_positions(account)
        if not cps:
            return MAX_AMOUNT
        upnl = 0
        im = 0
        qi = 0
        for p in cps:
            pm = self.perps[p.market]
            if pm.stale:  # a stale mark may hide a loss: nothing leaves the wallet until it is valid again
                return 0
            qi = pm.market.quote_i
            upnl += self._upnl(p, pm)
            im += initial_margin(self._notional(p, pm), p.leverage)
        return self.e.ledger.balances[account][qi] + min(0, upnl) - im

    # ------------------------------------------------------------------ orders

    @staticmethod
    def hold(m: Market, p: Position, notional: int, flags: int) -> int:
        """The margin an order holds while open: the initial margin of its notional at its price
        plus the taker fee (reduce-only orders hold nothing)."""
        if flags & REDUCE_ONLY:
            return 0
        return initial_margin(notional, p.leverage) + _ceil_div(notional * m.taker_fee_ppm, PPM)

    def terms(self, c: PlaceOrder, m: Market, otype: int) -> tuple[int, int, int, int] | list[Event]:
        """A perpetual order's price in ticks, lots, stop in ticks and flags, or its rejection."""
        r: Any = c  # the command as it came: each field is checked before it is trusted
        price, qty, stop, flags = r.price, r.qty, r.stop_price, r.flags
        if isinstance(flags, int) and not isinstance(flags, bool):
            flags = int(flags)  # an OrderFlag is an int
        if type(price) is not int or type(qty) is not int or type(stop) is not int or type(flags) is not int:
            return _rej(Reject.INVALID_AMOUNT, "price, quantity and stop price must be integers of base units")
        if flags & ~(REDUCE_ONLY | CLOSE_POSITION) or flags < 0:
            return _rej(Reject.INVALID_ORDER, "unknown order flags")
        if r.quote_qty:
            return _rej(Reject.INVALID_ORDER, "perpetual orders are sized in the base asset, not a quote amount")
        if flags & CLOSE_POSITION:
            if otype not in (MARKET, STOP_MARKET, TAKE_PROFIT_MARKET):
                return _rej(Reject.INVALID_ORDER,
                            "close-position is for market, stop-market and take-profit-market orders")
            if qty:
                return _rej(Reject.INVALID_QUANTITY, "a close-position order takes no quantity: it closes the position")
            flags |= REDUCE_ONLY
        elif qty <= 0 or qty >= MAX_AMOUNT:
            return _rej(Reject.INVALID_QUANTITY, "quantity must be positive")
        elif qty % m.lot_size:
            return _rej(Reject.QUANTITY_OFF_LOT, f"quantity must be a multiple of the lot size {m.lot_size}")
        st = 0
        if otype in (MARKET, STOP_MARKET, TAKE_PROFIT_MARKET):
            if price:
                return _rej(Reject.INVALID_PRICE, "a market order takes no price")
            pt = 0
            if otype != MARKET:
                if stop <= 0 or stop >= MAX_AMOUNT:
                    return _rej(Reject.INVALID_PRICE, "a stop order needs a positive stop price")
                if stop % m.tick_size:
                    return _rej(Reject.PRICE_OFF_TICK, f"stop price must be a multiple of the tick size {m.tick_size}")
                st = stop // m.tick_size
        elif otype in (LIMIT, IOC, FOK, POST_ONLY):
            if price <= 0 or price >= MAX_AMOUNT:
                return _rej(Reject.INVALID_PRICE, "price must be positive")
            if price % m.tick_size:
                return _rej(Reject.PRICE_OFF_TICK, f"price must be a multiple of the tick size {m.tick_size}")
            pt = price // m.tick_size
        else:
            return _rej(Reject.INVALID_ORDER, "perpetuals take limit, IOC, FOK, post-only, market, stop-market and "
                                              "take-profit-market orders")
        if st == 0 and stop:
            return _rej(Reject.INVALID_ORDER, "a stop price is only for stop-market and take-profit-market orders")
        return pt, qty // m.lot_size, st, flags

    def place(self, c: PlaceOrder, m: Market, side: int, otype: int, stp: int) -> list[Event]:
        """A perpetual's new order: margined (its hold), matched, settled; then the risk checks."""
        e = self.e
        terms = self.terms(c, m, otype)
        if isinstance(terms, list):
            return terms
        pt, lots, st, flags = terms
        pm = self.perps[m.index]
        acct = c.account
        if not pm.mark:
            return _rej(Reject.NO_INDEX_PRICE, f"{m.symbol} has no index price yet")
        if pm.stale and not flags & REDUCE_ONLY:
            return _rej(Reject.INDEX_STALE, f"{m.symbol}'s index is stale: only reduce-only orders until it returns")
        vec = e.ledger.balances.get(acct)
        if vec is None:
            return _rej(Reject.UNKNOWN_ACCOUNT, f"account {acct} does not exist")
        p = self.position(acct, m.index)
        if flags & REDUCE_ONLY:
            if not p.size or (p.size > 0) == (side == BUY):
                return _rej(Reject.REDUCE_ONLY, "a reduce-only order needs a position on the other side to reduce")
            if flags & CLOSE_POSITION or lots > abs(p.size):
                lots = abs(p.size)
        if st:
            rises = stop_rises(side, otype)
            if pm.mark >= st * m.tick_size if rises else pm.mark <= st * m.tick_size:
                return _rej(Reject.STOP_WOULD_TRIGGER, "the mark price has already reached the stop price")
            pt = self._band(m, st * m.tick_size, side)
        elif otype == MARKET:
            pt = self._band(m, pm.mark, side)
        notional = lots * pt * m.unit
        if not flags & REDUCE_ONLY:
            if notional < m.min_notional:
                return _rej(Reject.BELOW_MIN_NOTIONAL, f"notional is below the minimum {m.min_notional}")
            top = pm.tiers.max_leverage((abs(p.size) + lots) * pt * m.unit)
            if p.leverage > top:
                return _rej(Reject.INVALID_LEVERAGE, f"at this size the position takes at most {top}x leverage")
        need = self.hold(m, p, notional, flags)
        qi = m.quote_i
        if need and (vec[qi] < need or self.free(acct) < need):
            return _rej(Reject.INSUFFICIENT_MARGIN,
                        f"available {m.quote.symbol} does not cover the order's margin and fee ({need} base units)")
        book = e.books[m.index]
        opp = book.asks if side == BUY else book.bids
        best = opp.best()
        crosses = best is not None and (best.price <= pt if side == BUY else best.price >= pt)
        if not st:
            if otype == POST_ONLY and crosses:
                return _rej(Reject.POST_ONLY_WOULD_TAKE, "a post-only order would take liquidity")
            if otype == FOK and not fillable(opp, acct, side, pt, lots, stp):
                return _rej(Reject.FOK_NOT_FILLABLE, "the order cannot be filled completely at once")
            if otype == MARKET and best is None:
                return _rej(Reject.NO_LIQUIDITY, "no resting orders on the other side")
        oid = e.next_order_id
        e.next_order_id = oid + 1
        cid = c.client_id
        if cid:
            e.client_ids[(acct, cid)] = oid
        o = Order(oid, acct, m.index, side, IOC if otype == MARKET else otype, pt, lots, lots, need, cid, stp,
                  e.seq, e.ts, st, flags)
        ev: list[Event] = [_new(E.OrderNew, (E.ORDER_NEW, oid, acct, m.index, side, otype, c.price,
                                             lots * m.lot_size, 0, cid, stp, c.stop_price))]
        if need:
            e.ledger.lock(acct, vec, qi >> 1, need, ev)
            self.held[acct] = self.held.get(acct, 0) + need
        if st:
            e.open.add(o)
            e.stops[m.index].add(o)
        elif not crosses and otype != IOC and otype != FOK and otype != MARKET:
            (book.bids if side == BUY else book.asks).add(o)
            e.open.add(o)
        else:
            self.take_and_rest(o, m, pm, book, ev, BAND_REASON if otype == MARKET else "immediate-or-cancel")
        self.settle_risk(ev)
        return ev

    def _band(self, m: Market, base: int, side: int) -> int:
        """The price bound of a market order, in ticks: 5 % past ``base`` on its side."""
        if side == BUY:
            return _ceil_div(base * (PPM + BAND_PPM), PPM * m.tick_size)
        return max(1, base * (PPM - BAND_PPM) // (PPM * m.tick_size))

    def take_and_rest(self, o: Order, m: Market, pm: PerpMarket, book: OrderBook, ev: list[Event],
                      reason: str, cause: int = PositionCause.TRADE.value) -> int:
        """Match ``o`` (a reduce-only order only up to its position), settle its fills, then rest
        it or finish it and release what it still holds. Returns the lots it filled."""
        e = self.e
        if o.flags & REDUCE_ONLY:
            p = self.positions[(o.account, m.index)]
            room = abs(p.size) if p.size and (p.size > 0) != (o.side == BUY) else 0
            if o.remaining > room:
                self._shrink(o, m, o.remaining - room, ev)
        fills: list[Fill] = []
        filled = stop = 0
        if o.remaining:
            stop, filled, last_p = take(o, m, book.asks if o.side == BUY else book.bids, e.open, fills)
            if fills:
                self.settle(m, pm, o, fills, ev, cause)
            if last_p:
                e.last_price[m.index] = last_p
                self._remark(pm, ev)
        if o.remaining and (o.otype == LIMIT or o.otype == POST_ONLY) and stop != STOP_STP:
            (book.bids if o.side == BUY else book.asks).add(o)
            e.open.add(o)
            return filled
        self.release(o, m, ev)
        if not o.remaining:
            ev.append(_new(E.OrderDone, (E.ORDER_DONE, o.oid, FILLED, 0, "")))
        else:
            ev.append(_new(E.OrderDone, (E.ORDER_DONE, o.oid, EXPIRED, o.remaining * m.lot_size,
                                         "self-trade prevention" if stop == STOP_STP else reason)))
            o.remaining = 0
        return filled

    def release(self, o: Order, m: Market, ev: list[Event]) -> None:
        """An order's whole remaining hold back to available."""
        if o.quote_qty:
            self.e.ledger.unlock(o.account, m.quote_i >> 1, o.quote_qty, ev)
            self.held[o.account] -= o.quote_qty
            o.quote_qty = 0

    def _cut(self, o: Order, m: Market, lots: int, ev: list[Event]) -> None:
        """Take ``lots`` off an open order in place: its hold in proportion, its book level too
        when it rests (a pending stop is not in the book)."""
        self._shrink(o, m, lots, ev)
        if not o.stop:
            o.remaining += lots
            self.e.books[m.index].side(o.side).reduce(o, lots)

    def _shrink(self, o: Order, m: Market, lots: int, ev: list[Event]) -> None:
        """Take ``lots`` off an order's remaining quantity (a reduce-only order following its position)."""
        if o.quote_qty:
            rel = o.quote_qty * lots // o.remaining
            if rel:
                self.e.ledger.unlock(o.account, m.quote_i >> 1, rel, ev)
                self.held[o.account] -= rel
                o.quote_qty -= rel
        o.remaining -= lots

    def amend(self, c: AmendOrder, o: Order, m: Market) -> list[Event]:
        """A resting perpetual order's new price and/or total quantity: less at the same price keeps
        its place (and releases margin); otherwise it is re-queued with the margin of its new terms."""
        r: Any = c  # the command as it came: each field is checked before it is trusted
        e = self.e
        pm = self.perps[m.index]
        price, qty = r.price, r.qty
        if type(price) is not int or type(qty) is not int or price < 0 or qty < 0:
            return _rej(Reject.INVALID_AMOUNT, "price and quantity must be non-negative integers")
        pt = o.price
        if price:
            if price >= MAX_AMOUNT or price % m.tick_size:
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
        if pm.stale and not o.flags & REDUCE_ONLY and (pt != o.price or new_rem > o.remaining):
            return _rej(Reject.INDEX_STALE, f"{m.symbol}'s index is stale: an order is only reduced until it returns")
        side = e.books[m.index].side(o.side)
        ev: list[Event] = []
        if pt == o.price and new_rem <= o.remaining:
            cut = o.remaining - new_rem
            if cut:
                self._cut(o, m, cut, ev)
            o.qty = total
            ev.append(_new(E.OrderAmended, (E.ORDER_AMENDED, o.oid, pt * m.tick_size, total * m.lot_size,
                                            new_rem * m.lot_size, False)))
            return ev
        p = self.position(o.account, m.index)
        notional = new_rem * pt * m.unit
        if not o.flags & REDUCE_ONLY and notional < m.min_notional:
            return _rej(Reject.BELOW_MIN_NOTIONAL, f"notional is below the minimum {m.min_notional}")
        need = self.hold(m, p, notional, o.flags)
        delta = need - o.quote_qty
        vec = e.ledger.balances[o.account]
        if delta > 0 and (vec[m.quote_i] < delta or self.free(o.account) < delta):
            return _rej(Reject.INSUFFICIENT_MARGIN, "available balance does not cover the amended order's margin")
        book = e.books[m.index]
        opp = book.asks if o.side == BUY else book.bids
        best = opp.best()
        if o.otype == POST_ONLY and best is not None and (best.price <= pt if o.side == BUY else best.price >= pt):
            return _rej(Reject.POST_ONLY_WOULD_TAKE, "the amended post-only order would take liquidity")
        side.remove(o)
        e.open.remove(o)
        e.ledger.relock(o.account, vec, m.quote_i >> 1, delta, ev)
        self.held[o.account] = self.held.get(o.account, 0) + delta
        n = Order(o.oid, o.account, o.market, o.side, o.otype, pt, total, new_rem, need, o.client_id, o.stp,
                  e.seq, e.ts, 0, o.flags)
        ev.append(_new(E.OrderAmended, (E.ORDER_AMENDED, n.oid, pt * m.tick_size, total * m.lot_size,
                                        new_rem * m.lot_size, True)))
        self.take_and_rest(n, m, pm, book, ev, "immediate-or-cancel")
        self.settle_risk(ev)
        return ev

    def recheck(self, account: int, ev: list[Event]) -> None:
        """The account's cross wallet changed outside its positions: check and re-key them."""
        self._queue((account, -1))
        self.settle_risk(ev)

    def after_spot(self, ev: list[Event]) -> None:
        """A spot order's trades moved the wallets of cross perpetual accounts: check them."""
        cross = self.cross
        for x in ev:
            if x[0] == E.TRADE:
                t: Any = x
                if cross.get(t.taker_account):
                    self._queue((t.taker_account, -1))
                if cross.get(t.maker_account):
                    self._queue((t.maker_account, -1))
        if self.pending:
            self.settle_risk(ev)

    # ------------------------------------------------------------------ settlement of fills

    def settle(self, m: Market, pm: PerpMarket, o: Order, fills: list[Fill], ev: list[Event], cause: int) -> None:
        """The fills of taker ``o``: per fill each side's hold released, its position changed, its
        PnL realized, the fees (10 % to the insurance fund), the trade."""
        e = self.e
        unit = m.unit
        lot = m.lot_size
        rem = o.remaining + sum(n for _, n, _ in fills)
        liquidation = cause != PositionCause.TRADE.value
        for mk, n, p in fills:
            if not p:  # self-trade prevention took the maker off the book
                self.release(mk, m, ev)
                ev.append(_new(E.OrderDone, (E.ORDER_DONE, mk.oid, EXPIRED, n * lot, "self-trade prevention")))
                continue
            notional = n * p * unit
            fee_t = 0 if liquidation else _ceil_div(notional * m.taker_fee_ppm, PPM)
            fee_m = _ceil_div(notional * m.maker_fee_ppm, PPM)
            rel_t = o.quote_qty if n == rem else o.quote_qty * n // rem
            o.quote_qty -= rel_t
            rem -= n
            mrem = mk.remaining + n
            rel_m = mk.quote_qty if n == mrem else mk.quote_qty * n // mrem
            mk.quote_qty -= rel_m
            held = self.held
            if rel_t:
                held[o.account] -= rel_t
            if rel_m:
                held[mk.account] -= rel_m
            sgn = 1 if o.side == BUY else -1
            fee_t = self.fill(o.account, m, pm, sgn * n, notional, rel_t, fee_t, ev, cause)
            fee_m = self.fill(mk.account, m, pm, -sgn * n, notional, rel_m, fee_m, ev, PositionCause.TRADE.value)
            self._fee(m.quote_i, fee_t + fee_m, ev)
            ev.append(_new(E.Trade, (E.TRADE, e.next_trade_id, m.index, p * m.tick_size, n * lot, notional, o.oid,
                                     mk.oid, o.account, mk.account, o.side, fee_t, fee_m)))
            e.next_trade_id += 1
            if not mk.remaining:
                self.release(mk, m, ev)
                ev.append(_new(E.OrderDone, (E.ORDER_DONE, mk.oid, FILLED, 0, "")))

    def _fee(self, qi: int, fee: int, ev: list[Event]) -> None:
        if not fee:
            return
        bal = self.e.ledger.balances
        ins = fee * INSURANCE_SHARE_PCT // 100
        bal[FEE_ACCOUNT][qi] += fee - ins
        ev.append(_new(E.Balance, (BAL, FEE_ACCOUNT, qi >> 1, fee - ins, 0, C_FEE)))
        if ins:
            bal[INSURANCE_ACCOUNT][qi] += ins
            ev.append(_new(E.Balance, (BAL, INSURANCE_ACCOUNT, qi >> 1, ins, 0, C_FEE)))

    def fill(self, account: int, m: Market, pm: PerpMarket, lots: int, notional: int, rel: int, fee: int,
             ev: list[Event], cause: int) -> int:
        """One side of a fill: ``lots`` signed (+ bought) for ``notional``; ``rel`` of its order's
        hold comes back; ``fee`` is due. Returns the fee paid (an isolated position pays from what
        it has, never more; the fee is the exchange's to lose, not the insurance fund's)."""
        p = self.position(account, m.index)
        vec = self.e.ledger.balances[account]
        qi = m.quote_i
        to_avail = rel
        size = p.size
        n = abs(lots)
        realized = 0
        if size and (size > 0) != (lots > 0):  # reduces, maybe flips
            close = n if n < abs(size) else abs(size)
            c_notional = notional if close == n else notional * close // n
            removed = p.cost if close == abs(size) else _ceil_div(p.cost * close, abs(size))
            realized = (c_notional if size > 0 else -c_notional) - removed
            p.cost -= removed
            p.size = size + (close if lots > 0 else -close)
            if p.isolated:
                left = p.margin + realized
                if left < 0:  # closed past bankruptcy: the insurance fund carries the rest
                    self._insure(qi, -left, ev)
                    left = 0
                # a partial close frees its share of the margin; a liquidation frees nothing until
                # the position is gone (the bankruptcy price spends the whole margin over all its parts)
                give = left if not p.size else 0 if cause else left * close // abs(size)
                p.margin = left - give
                to_avail += give
            else:
                to_avail += realized
                if not p.size:
                    self.cross[account] -= 1
            n -= close
            notional -= c_notional
            self._follow_reduce_only(p, m, ev)
        if n:  # opens or increases
            if not p.size and not p.isolated:
                self.cross[account] = self.cross.get(account, 0) + 1
            p.size += n if lots > 0 else -n
            p.cost += notional if lots > 0 else -notional
            if p.isolated:
                im = min(initial_margin(notional, p.leverage), max(0, vec[qi] + to_avail - fee))
                p.margin += im
                to_avail -= im
        if p.isolated and vec[qi] + to_avail < fee:
            short = fee - max(0, vec[qi] + to_avail)
            take_m = min(short, p.margin)
            p.margin -= take_m
            to_avail += take_m
            fee = min(fee, max(0, vec[qi] + to_avail))
        if (p.size > 0) != (size > 0) or (p.size < 0) != (size < 0):
            self._hold_side(p, size)
        to_avail -= fee
        vec[qi] += to_avail
        vec[qi + 1] -= rel
        ev.append(_new(E.Balance, (BAL, account, qi >> 1, to_avail, -rel, C_TRADE)))
        ev.append(self._pos_event(p, pm, realized, cause))
        if account > 0:
            self._queue((account, m.index if p.isolated else -1))
        return fee

    def _hold_side(self, p: Position, before: int) -> None:
        """``p`` changed sides (opened, closed or flipped): the holders' index follows."""
        longs, shorts = self.holders[p.market]
        if before > 0:
            del longs[p.account]
        elif before < 0:
            del shorts[p.account]
        if p.size > 0:
            longs[p.account] = p
        elif p.size < 0:
            shorts[p.account] = p

    def _follow_reduce_only(self, p: Position, m: Market, ev: list[Event]) -> None:
        """The position shrank: its reduce-only orders shrink with it, or are cancelled."""
        room = abs(p.size)
        mine = self.e.open.by_account.get(p.account)
        if not mine:
            return
        for o in [o for o in mine.values() if o.market == m.index and o.flags & REDUCE_ONLY]:
            left = room if p.size and (p.size > 0) != (o.side == BUY) else 0
            if o.remaining > left:
                if left:
                    self._cut(o, m, o.remaining - left, ev)
                else:
                    self.e.cancel_resting(o, "reduce-only: the position is closed", ev)

    def _cover(self, account: int, qi: int, amount: int, ev: list[Event]) -> None:
        """The insurance fund pays a bankrupt account's loss (into its available balance)."""
        bal = self.e.ledger.balances
        bal[INSURANCE_ACCOUNT][qi] -= amount
        bal[account][qi] += amount
        c = Cause.INSURANCE.value
        ev.append(_new(E.Balance, (BAL, INSURANCE_ACCOUNT, qi >> 1, -amount, 0, c)))
        ev.append(_new(E.Balance, (BAL, account, qi >> 1, amount, 0, c)))

    def _insure(self, qi: int, amount: int, ev: list[Event]) -> None:
        """The insurance fund pays an isolated position's loss past its margin (into the margin)."""
        self.e.ledger.balances[INSURANCE_ACCOUNT][qi] -= amount
        ev.append(_new(E.Balance, (BAL, INSURANCE_ACCOUNT, qi >> 1, -amount, 0, Cause.INSURANCE.value)))

    def _pos_event(self, p: Position, pm: PerpMarket, realized: int, cause: int) -> Event:
        return _new(E.Position, (E.POSITION, p.account, p.market, p.size * pm.market.lot_size, p.cost, p.margin,
                                 realized, cause))

    # ------------------------------------------------------------------ prices

    def on_index_price(self, c: IndexPrice) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        e = self.e
        m = e.market_by_symbol.get(r.market) if isinstance(r.market, str) else None
        pm = self.perps.get(m.index) if m is not None else None
        if pm is None or m is None:
            return _rej(Reject.UNKNOWN_MARKET, f"unknown perpetual {r.market!r}")
        if type(r.price) is not int or not 0 < r.price < MAX_AMOUNT:
            return _rej(Reject.INVALID_PRICE, "an index price is a positive integer of quote base units")
        ev: list[Event] = []
        if pm.stale:
            self._set_stale(pm, False, ev)
        pm.index = c.price
        ts = e.ts // NS_PER_MS
        if not pm.next_funding:
            pm.next_funding = (ts // pm.interval + 1) * pm.interval
        book = e.books[m.index]
        bid, ask = book.bids.best(), book.asks.best()
        if bid is not None and ask is not None:
            pm.basis.append((bid.price + ask.price) * m.tick_size // 2 - c.price)
            if len(pm.basis) > BASIS_SAMPLES:
                del pm.basis[0]
        if ts - pm.last_sample >= PREMIUM_SAMPLE_MS or not pm.last_sample:
            pm.last_sample = ts
            pm.premiums.append(F.premium_index(self._impact(m, pm, book.bids), self._impact(m, pm, book.asks), c.price))
        self._remark(pm, ev)
        self.settle_risk(ev)
        return ev

    def on_index_stale(self, c: IndexStale) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        m = self.e.market_by_symbol.get(r.market) if isinstance(r.market, str) else None
        pm = self.perps.get(m.index) if m is not None else None
        if pm is None:
            return _rej(Reject.UNKNOWN_MARKET, f"unknown perpetual {r.market!r}")
        if pm.stale:
            return []
        ev: list[Event] = []
        self._set_stale(pm, True, ev)
        return ev

    def _set_stale(self, pm: PerpMarket, stale: bool, ev: list[Event]) -> None:
        """Mark a perpetual's index stale, or valid again: then every scope holding a position in
        it is checked (at the index price that ends the staleness: ``settle_risk`` follows)."""
        pm.stale = stale
        self.stale += 1 if stale else -1
        mi = pm.market.index
        ev.append(_new(E.IndexState, (E.INDEX_STATE, mi, stale)))
        if not stale:
            longs, shorts = self.holders[mi]
            for side in (longs, shorts):
                for acct, p in side.items():
                    if acct > 0:
                        self._queue((acct, mi if p.isolated else -1))

    def _impact(self, m: Market, pm: PerpMarket, side: Any) -> Fraction | None:
        tick, lot = m.tick_size, m.lot_size
        levels: Iterator[tuple[int, int]] = ((lv.price * tick, lv.qty * lot) for lv in side.sorted_levels())
        return F.impact_price(levels, pm.impact, m.base.decimals)

    def _remark(self, pm: PerpMarket, ev: list[Event]) -> None:
        """The mark price again (after an index tick or a trade); stops and liquidations follow.
        A stale perpetual's mark stays where it was."""
        if not pm.index or pm.stale:
            return
        e = self.e
        mi = pm.market.index
        basis = int(Fraction(sum(pm.basis), len(pm.basis))) if pm.basis else 0
        to_funding = max(0, pm.next_funding - e.ts // NS_PER_MS)
        mark = F.mark_price(pm.index, pm.last_rate, to_funding, pm.interval, basis,
                            e.last_price[mi] * pm.market.tick_size)
        if mark == pm.mark:
            return
        pm.mark = mark
        ev.append(_new(E.MarkPrice, (E.MARK_PRICE, mi, pm.index, mark)))
        self._scan(pm)
        stops = e.stops[mi]
        if stops.up or stops.down:
            self._fire(pm, ev)

    def _fire(self, pm: PerpMarket, ev: list[Event]) -> None:
        """Stop-market and take-profit-market orders whose stop the mark has reached become market
        orders (a close-position one for the whole position then)."""
        e = self.e
        m = pm.market
        mi = m.index
        book = e.books[mi]
        for o in e.stops[mi].fired(pm.mark // m.tick_size, e.open.orders, _ceil_div(pm.mark, m.tick_size)):
            if o.oid not in e.open.orders:
                continue
            o.stop = 0
            e.open.remove(o)
            o.seq, o.ts = e.seq, e.ts
            o.price = self._band(m, pm.mark, o.side)
            if o.flags & CLOSE_POSITION:
                p = self.positions[(o.account, mi)]
                o.remaining = o.qty = abs(p.size) if p.size and (p.size > 0) != (o.side == BUY) else 0
            o.otype = IOC
            if o.flags & CLOSE_POSITION and not o.remaining:
                self.release(o, m, ev)
                ev.append(_new(E.OrderDone, (E.ORDER_DONE, o.oid, EXPIRED, 0, "no position to close")))
                continue
            ev.append(_new(E.OrderTriggered, (E.ORDER_TRIGGERED, o.oid, o.account, mi, o.side,
                                              o.price * m.tick_size, o.remaining * m.lot_size)))
            self.take_and_rest(o, m, pm, book, ev, BAND_REASON)

    # ------------------------------------------------------------------ the risk index

    def _scan(self, pm: PerpMarket) -> None:
        """Queue the scopes whose index entry the mark has crossed (dead entries dropped)."""
        mark = pm.mark
        mi = pm.market.index
        longs, shorts = pm.longs, pm.shorts
        pos = self.positions
        queue = self._queue
        while longs and -longs[0][0] >= mark:
            _, acct, ver = heappop(longs)
            p = pos.get((acct, mi))
            if p is not None and p.ver == ver and p.size > 0:
                p.key = 0
                queue((acct, mi if p.isolated else -1))
        while shorts and shorts[0][0] <= mark:
            _, acct, ver = heappop(shorts)
            p = pos.get((acct, mi))
            if p is not None and p.ver == ver and p.size < 0:
                p.key = 0
                queue((acct, mi if p.isolated else -1))

    def _queue(self, scope: tuple[int, int]) -> None:
        if scope not in self.queued:
            self.queued.add(scope)
            heappush(self.pending, scope)

    def settle_risk(self, ev: list[Event]) -> None:
        """Check the queued scopes exactly, lowest (account, market) first: liquidate one under
        maintenance, re-key one above it. Whatever a liquidation moves queues its scopes again
        (into the same order), so the outcome does not depend on which index entries a tick
        happened to pop: the index of a replayed journal and of a restored snapshot can differ,
        their liquidations cannot."""
        pending = self.pending
        queued = self.queued
        while pending:
            scope = heappop(pending)
            queued.discard(scope)
            acct, mi = scope
            if mi >= 0:
                p = self.positions[(acct, mi)]
                scope_pos = [p] if p.size else []
            else:
                scope_pos = self.cross_positions(acct)
            if not scope_pos:
                continue
            if self.stale and self._stale_scope(scope_pos):
                continue  # checked again when the index returns (_set_stale)
            eq, mm = self.equity(acct, mi)
            if eq < mm:
                self.liquidate(acct, scope_pos, ev)
            else:
                for p in scope_pos:
                    self._key(p, scope_pos, eq - mm)

    def _stale_scope(self, scope: list[Position]) -> bool:
        """Whether a scope holds a position in a stale perpetual: its equity is not known."""
        perps = self.perps
        return any(perps[p.market].stale for p in scope)

    def _rekey(self, account: int, p: Position) -> None:
        if p.size:
            self._queue((account, p.market if p.isolated else -1))

    def _key(self, p: Position, scope: list[Position], cushion: int) -> None:
        """Put ``p`` in its market's index at the mark price that could bring its scope under
        maintenance: its liquidation price (margin.liq_price_units) when alone in its scope, bounded
        by its tier's bracket (leaving the bracket re-checks it); else a band of the scope's cushion,
        shared between its positions and against the steepest maintenance rate."""
        pm = self.perps[p.market]
        p.ver += 1
        q = abs(p.size) * pm.market.lot_size
        long = p.size > 0
        scale = pm.scale
        if len(scope) == 1:
            tiers = pm.tiers.tiers
            i = bisect_right(pm.floors, q * pm.mark // scale) - 1
            tier = tiers[i]
            wallet = p.margin if p.isolated else self.wallet(p.account, pm.market.quote_i)
            num, den = liq_price_units(wallet, 1 if long else -1, q, abs(p.cost), tier.mmr_ppm, tier.cum_ppm, scale)
            if long:
                k = max(-(-num // den), -(-tier.floor * scale // q))
            else:
                k = num // den
                if i + 1 < len(tiers):
                    k = min(k, tiers[i + 1].floor * scale // q)
        elif long:
            k = pm.mark - cushion * scale // (len(scope) * q)
        else:
            k = pm.mark + cushion * scale * PPM // (len(scope) * q * (PPM + pm.mmr_max))
        if long:
            if k > 0:
                heappush(pm.longs, (-k, p.account, p.ver))
        else:
            heappush(pm.shorts, (max(k, 1), p.account, p.ver))
        p.key = k

    # ------------------------------------------------------------------ liquidation

    def liquidate(self, account: int, scope: list[Position], ev: list[Event]) -> None:
        """Close a scope under maintenance: cancel its orders, close each position through the
        book down to its bankruptcy price, the rest to the insurance fund or by ADL; what margin is
        left, up to the maintenance margin, goes to the insurance fund as the liquidation fee."""
        e = self.e
        isolated = scope[0].isolated
        mm_total = sum(self._mm(p, self.perps[p.market]) for p in scope)
        for p in sorted(scope, key=lambda p: p.market):
            for o in e.open.of_account(account, p.market) if isolated else [
                    o for mi in sorted(self.perps) for o in e.open.of_account(account, mi)
                    if not self.positions.get((account, mi), p).isolated]:
                e.cancel_resting(o, "liquidation", ev)
        qi = self.perps[scope[0].market].market.quote_i
        for p in sorted(scope, key=lambda p: p.market):
            if not p.size:
                continue
            pm = self.perps[p.market]
            m = pm.market
            eq, _ = self.equity(account, p.market if isolated else -1)
            q = Fraction(abs(p.size) * m.lot_size, pm.scale)
            long = p.size > 0
            bp = pm.mark - Fraction(eq) / q if long else pm.mark + Fraction(eq) / q
            size = p.size
            side = Side.SELL.value if long else BUY
            limit = _ceil_div(bp.numerator * 1, bp.denominator * m.tick_size) if long else \
                bp.numerator // (bp.denominator * m.tick_size)
            closed = 0
            if limit > 0:
                o = Order(e.next_order_id, account, m.index, side, IOC, limit, abs(size), abs(size), 0, "", 0,
                          e.seq, e.ts, 0, REDUCE_ONLY)
                e.next_order_id += 1
                ev.append(_new(E.OrderNew, (E.ORDER_NEW, o.oid, account, m.index, side, IOC, limit * m.tick_size,
                                            abs(size) * m.lot_size, 0, "", 0, 0)))
                closed = self.take_and_rest(o, m, pm, e.books[m.index], ev, "liquidation: the book is exhausted at "
                                            "the bankruptcy price", PositionCause.LIQUIDATION.value)
            bpi = max(1, int(bp))
            if closed:
                ev.append(_new(E.Liquidation, (E.LIQUIDATION, account, m.index, (closed if long else -closed)
                                               * m.lot_size, bpi, VIA_BOOK, 0)))
            if p.size:
                self._takeover(p, pm, bp, ev)
        # the margin left, up to the maintenance margin, is the liquidation fee
        if isolated:
            left = 0
        else:
            vec = e.ledger.balances[account]
            left = vec[qi]
            if left < 0:
                self._cover(account, qi, -left, ev)
                left = 0
        fee = min(left, mm_total)
        if fee > 0:
            bal = e.ledger.balances
            bal[account][qi] -= fee
            bal[INSURANCE_ACCOUNT][qi] += fee
            c = Cause.LIQUIDATION.value
            ev.append(_new(E.Balance, (BAL, account, qi >> 1, -fee, 0, c)))
            ev.append(_new(E.Balance, (BAL, INSURANCE_ACCOUNT, qi >> 1, fee, 0, c)))

    def _takeover(self, p: Position, pm: PerpMarket, bp: Fraction, ev: list[Event]) -> None:
        """What the book could not absorb: the insurance fund takes it at the bankruptcy price when
        it can carry the loss, else the most profitable opposite positions are deleveraged."""
        m = pm.market
        lots = abs(p.size)
        long = p.size > 0
        q = Fraction(lots * m.lot_size, pm.scale)
        # the notional at the bankruptcy price, rounded so that the bankrupt side ends at zero or above
        exact = bp * q
        notional = _ceil_div(exact.numerator, exact.denominator) if long else exact.numerator // exact.denominator
        notional = max(notional, 0)
        qi = m.quote_i
        ins = self.e.ledger.balances[INSURANCE_ACCOUNT][qi]
        loss = (notional - (lots * m.lot_size * pm.mark // pm.scale)) if long else \
            ((lots * m.lot_size * pm.mark // pm.scale) - notional)
        ins_pos = self.positions.get((INSURANCE_ACCOUNT, m.index))
        ins_upnl = self._upnl(ins_pos, pm) if ins_pos is not None and ins_pos.size else 0
        bpi = max(1, int(bp))
        if ins + ins_upnl - max(0, loss) >= 0:
            self._transfer(p, INSURANCE_ACCOUNT, lots, notional, pm, ev, PositionCause.TAKEOVER.value)
            ev.append(_new(E.Liquidation, (E.LIQUIDATION, p.account, m.index, (lots if long else -lots) * m.lot_size,
                                           bpi, VIA_INSURANCE, 0)))
            return
        # auto-deleveraging: opposite positions ranked by PnL % x effective leverage, highest first
        opposite = self.holders[m.index][0 if not long else 1]
        ranked = sorted((x for x in opposite.values() if x.account > 0),
                        key=lambda x: (-self._adl_rank(x, pm), x.account))
        left = lots
        for x in ranked:
            if not left:
                break
            n = min(left, abs(x.size))
            part = notional * n // lots if n != left else notional - notional * (lots - left) // lots
            self._transfer(p, x.account, n, part, pm, ev, PositionCause.ADL.value)
            left -= n
        ev.append(_new(E.Liquidation, (E.LIQUIDATION, p.account, m.index, (lots if long else -lots) * m.lot_size,
                                       bpi, VIA_ADL, 0)))

    def _adl_rank(self, x: Position, pm: PerpMarket) -> Fraction:
        upnl = self._upnl(x, pm)
        cost = abs(x.cost) or 1
        eq, _ = self.equity(x.account, x.market if x.isolated else -1)
        lev = Fraction(self._notional(x, pm), eq) if eq > 0 else Fraction(10**9)
        return Fraction(upnl, cost) * lev

    def _transfer(self, p: Position, to: int, lots: int, notional: int, pm: PerpMarket, ev: list[Event],
                  cause: int) -> None:
        """``p``'s ``lots`` change hands at ``notional`` with ``to`` (no fees)."""
        sgn = 1 if p.size > 0 else -1
        self.fill(p.account, pm.market, pm, -sgn * lots, notional, 0, 0, ev, cause)
        self.fill(to, pm.market, pm, sgn * lots, notional, 0, 0, ev, cause)

    # ------------------------------------------------------------------ funding

    def on_funding(self, c: Funding) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        e = self.e
        m = e.market_by_symbol.get(r.market) if isinstance(r.market, str) else None
        pm = self.perps.get(m.index) if m is not None else None
        if pm is None or m is None:
            return _rej(Reject.UNKNOWN_MARKET, f"unknown perpetual {r.market!r}")
        now = e.ts // NS_PER_MS
        if not pm.next_funding or now < pm.next_funding or not pm.mark:
            return _rej(Reject.FUNDING_NOT_DUE, f"{m.symbol}'s next funding is not due yet")
        rate = F.funding_rate(F.weighted_average(pm.premiums), F.interest(pm.interval), pm.cap)
        qi = m.quote_i
        bal = e.ledger.balances
        ev: list[Event] = []
        paid = received = 0
        c_f = Cause.FUNDING.value
        for key in sorted(k for k in self.positions if k[1] == m.index):
            p = self.positions[key]
            if not p.size:
                continue
            amount = F.payment(p.size * m.lot_size, pm.mark, rate, m.base.decimals)
            if not amount:
                continue
            if amount > 0:
                paid += amount
            else:
                received -= amount
            if p.isolated:
                p.margin -= amount
                if p.margin < 0:
                    self._insure(qi, -p.margin, ev)
                    p.margin = 0
                ev.append(self._pos_event(p, pm, 0, PositionCause.FUNDING.value))
            else:
                bal[p.account][qi] -= amount
                ev.append(_new(E.Balance, (BAL, p.account, qi >> 1, -amount, 0, c_f)))
            if p.account > 0:
                self._queue((p.account, m.index if p.isolated else -1))
        remainder = paid - received
        if remainder:
            bal[INSURANCE_ACCOUNT][qi] += remainder
            ev.append(_new(E.Balance, (BAL, INSURANCE_ACCOUNT, qi >> 1, remainder, 0, c_f)))
        pm.last_rate = rate
        pm.premiums.clear()
        pm.next_funding = (now // pm.interval + 1) * pm.interval
        ev.insert(0, _new(E.FundingPaid, (E.FUNDING_PAID, m.index, rate, pm.mark, paid, received, remainder,
                                          pm.next_funding)))
        self.settle_risk(ev)
        return ev

    # ------------------------------------------------------------------ checks and the state hash

    def open_costs(self) -> dict[int, int]:
        """Per quote asset: sum of signed open cost, and sum of isolated margin (for the conservation identity)."""
        out: dict[int, int] = {}
        for p in self.positions.values():
            if p.size or p.margin:
                qa = self.perps[p.market].market.quote_i >> 1
                out[qa] = out.get(qa, 0) + p.margin - p.cost
        return out

    def errors(self) -> list[str]:
        errs: list[str] = []
        for mi, pm in self.perps.items():
            total = sum(p.size for p in self.positions.values() if p.market == mi)
            if total:
                errs.append(f"{pm.market.symbol}: sum of long - sum of short = {total} lots")
            longs, shorts = self.holders[mi]
            if set(longs) != {a for (a, m), p in self.positions.items() if m == mi and p.size > 0} or \
                    set(shorts) != {a for (a, m), p in self.positions.items() if m == mi and p.size < 0}:
                errs.append(f"{pm.market.symbol}: the holders' index differs from the positions")
        for p in self.positions.values():
            if p.margin < 0:
                errs.append(f"account {p.account} {self.perps[p.market].market.symbol}: negative isolated margin")
            if p.size and (p.cost > 0) != (p.size > 0) and p.cost:
                errs.append(f"account {p.account}: position cost {p.cost} against size {p.size}")
        return errs

    def negative_ok(self, account: int, asset: int) -> bool:
        """A cross account's quote balance may be negative while its cross equity covers it."""
        cps = self.cross_positions(account)
        if not cps or self.perps[cps[0].market].market.quote_i >> 1 != asset:
            return False
        eq, _ = self.equity(account, -1)
        return eq >= 0

    def restore_markets(self, body: list[Any]) -> None:
        """A snapshot's perpetual markets (their Market rows are restored already)."""
        for (mi, tiers, interval, impact, index, mark, last_rate, next_funding, premiums, last_sample,
             basis) in body[0]:
            pm = PerpMarket(self.e.markets[mi], TierTable.of([tuple(t) for t in tiers]), interval, impact)
            self.perps[mi] = pm
            self.holders[mi] = ({}, {})
            self.quote_asset = pm.market.quote.index
            pm.index, pm.mark, pm.last_rate, pm.next_funding = index, mark, last_rate, next_funding
            pm.premiums, pm.last_sample, pm.basis = list(premiums), last_sample, list(basis)
        for mi in body[3] if len(body) > 3 else ():  # the stale perpetuals (only listed when there are)
            self.perps[mi].stale = True
            self.stale += 1

    def restore(self, body: list[Any]) -> None:
        """A snapshot's positions and perpetual orders' holds; the risk index rebuilt from them."""
        for acct, mi, size, cost, margin, leverage, isolated in body[1]:
            p = self.position(acct, mi)
            p.size, p.cost, p.margin, p.leverage, p.isolated = size, cost, margin, leverage, isolated
            if size:
                self._hold_side(p, 0)
            if size and not isolated:
                self.cross[acct] = self.cross.get(acct, 0) + 1
        for oid, hold, flags in body[2]:
            o = self.e.open.orders[oid]
            o.quote_qty, o.flags = hold, flags
            if hold:
                self.held[o.account] = self.held.get(o.account, 0) + hold
        for (acct, mi), p in sorted(self.positions.items()):
            if p.size and acct > 0:
                self._queue((acct, mi if p.isolated else -1))
        self.settle_risk([])

    def canonical(self) -> list[Any]:
        return [
            [[mi, pm.tiers.canonical(), pm.interval, pm.impact, pm.index, pm.mark, pm.last_rate, pm.next_funding,
              list(pm.premiums), pm.last_sample, list(pm.basis)] for mi, pm in sorted(self.perps.items())],
            [[a, mi, p.size, p.cost, p.margin, p.leverage, p.isolated]
             for (a, mi), p in sorted(self.positions.items())],
            sorted([o.oid, o.quote_qty, o.flags] for o in self.e.open if o.market in self.perps),
            # the stale perpetuals, only when there are: a state without any keeps its hash
            *([[mi for mi, pm in sorted(self.perps.items()) if pm.stale]] if self.stale else []),
        ]

