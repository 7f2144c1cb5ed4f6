"""Matching: the order books, the open orders and price-time matching. It decides who trades with
whom, how much and at what price, and returns that as fills; it moves no balance (settlement does).

A book side keeps ``levels`` (price in ticks -> Level) and finds its best level; ``BookSide`` does
it with a heap of keys (price for asks, -price for bids) holding each listed price at most once. A
level is dropped from ``levels`` when its resting quantity reaches zero; its heap key is dropped
lazily when it reaches the top. A cancelled order stays in its level's queue as a dead entry
(``remaining == 0``) until the queue reaches it or the level is compacted, so a cancel costs O(1).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from heapq import heapify, heappop, heappush
from typing import Any, Protocol

from dpg.core.bigint import wrap
from dpg.core.model import STP, Market, Order, OrderType, Side

BUY = Side.BUY.value
MARKET = OrderType.MARKET.value
EXPIRE_TAKER = STP.EXPIRE_TAKER.value
EXPIRE_MAKER = STP.EXPIRE_MAKER.value

STOP_BOOK = 0  # the book ran out, or its best price is past the limit
STOP_STP = 1  # self-trade prevention expired the taker
STOP_BUDGET = 2  # a market buy's budget cannot pay for one more lot

# A fill record, matching -> settlement: (maker, lots, price in ticks). Price 0 is not a trade:
# self-trade prevention took the maker off the book with ``lots`` left.
Fill = tuple[Order, int, int]


class Level:
    __slots__ = ("dead", "orders", "price", "qty")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[Order] = deque()
        self.qty = 0  # live resting lots at this price
        self.dead = 0  # cancelled entries still in ``orders``

    def live(self) -> list[Order]:
        return [o for o in self.orders if o.remaining]

    def compact(self) -> None:
        self.orders = deque(self.live())
        self.dead = 0


class OrderBookSide(Protocol):
    """One side of a book: what matching and the engine use of it (the one book interface)."""

    side: Side
    sign: int
    levels: dict[int, Level]

    def best(self) -> Level | None: ...
    def add(self, order: Order) -> None: ...
    def remove(self, order: Order) -> None: ...
    def reduce(self, order: Order, lots: int) -> None: ...
    def sorted_levels(self) -> list[Level]: ...
    def orders_in_priority(self) -> list[Order]: ...


class BookSide:
    """A book side with a heap of its prices: the best level in O(1), a new price in O(log n)."""

    __slots__ = ("heap", "keys", "levels", "side", "sign")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.sign = -1 if side == Side.BUY else 1
        self.levels: dict[int, Level] = {}
        self.heap: list[int] = []
        self.keys: set[int] = set()  # keys present in ``heap``

    def best(self) -> Level | None:
        """The best level, dropping stale heap keys on the way."""
        heap = self.heap
        levels = self.levels
        while heap:
            level = levels.get(heap[0] * self.sign)
            if level is not None:
                return level
            self.keys.discard(heappop(heap))
        return None

    def level_for(self, price: int) -> Level:
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = Level(price)
            key = price * self.sign
            if key not in self.keys:
                self.keys.add(key)
                heappush(self.heap, key)
                if len(self.heap) > 2 * len(self.levels) + 64:
                    self._rebuild_heap()
        return level

    def _rebuild_heap(self) -> None:
        self.heap = [p * self.sign for p in self.levels]
        heapify(self.heap)
        self.keys = set(self.heap)

    def add(self, order: Order) -> None:
        level = self.levels.get(order.price)  # mostly a listed price: level_for's lookup, without its call
        if level is None:
            level = self.level_for(order.price)
        level.orders.append(order)
        level.qty += order.remaining

    def remove(self, order: Order) -> None:
        """Take a live order out (cancel, or re-queue on amend); leaves a dead queue entry."""
        level = self.levels[order.price]
        level.qty -= order.remaining
        order.remaining = 0
        if level.qty == 0:
            del self.levels[order.price]
        else:
            level.dead += 1
            if level.dead > 16 and level.dead > len(level.orders) // 2:
                level.compact()

    def reduce(self, order: Order, lots: int) -> None:
        """Lower a resting order's remaining quantity in place (keeps its priority)."""
        self.levels[order.price].qty -= lots
        order.remaining -= lots

    def sorted_levels(self) -> list[Level]:
        """Levels best first."""
        return [self.levels[p] for p in sorted(self.levels, key=lambda p: p * self.sign)]

    def orders_in_priority(self) -> list[Order]:
        return [o for level in self.sorted_levels() for o in level.orders if o.remaining]


class OrderBook:
    __slots__ = ("asks", "bids", "market")

    def __init__(self, market: int, side_class: Callable[[Side], OrderBookSide] = BookSide) -> None:
        self.market = market
        self.bids: OrderBookSide = side_class(Side.BUY)
        self.asks: OrderBookSide = side_class(Side.SELL)

    def side(self, side: int) -> OrderBookSide:
        return self.bids if side == Side.BUY else self.asks

    def crossed(self) -> bool:
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and bid.price >= ask.price


class OpenOrders:
    """Every open order (resting, or a stop waiting for its trigger) by id and by account: the one
    place an order is added to or removed from the open set."""

    __slots__ = ("by_account", "orders")

    def __init__(self) -> None:
        self.orders: dict[int, Order] = {}
        self.by_account: dict[int, dict[int, Order]] = {}

    def add(self, o: Order) -> None:
        self.orders[o.oid] = o
        by = self.by_account.get(o.account)
        if by is None:
            by = self.by_account[o.account] = {}
        by[o.oid] = o

    def remove(self, o: Order) -> None:
        del self.orders[o.oid]
        del self.by_account[o.account][o.oid]

    def of_account(self, account: int, market: int) -> list[Order]:
        """An account's open orders in one market, oldest id first."""
        mine = self.by_account.get(account, {})
        return [mine[oid] for oid in sorted(oid for oid, o in mine.items() if o.market == market)]

    def __iter__(self) -> Iterator[Order]:
        return iter(self.orders.values())


def take(o: Order, m: Market, opp: OrderBookSide, orders: OpenOrders, fills: list[Fill]) -> tuple[int, int, int]:
    """The matching loop: ``o`` takes from the opposite side ``opp``, best price first, then oldest
    first; trades at the maker's price. Appends a fill record per maker met; a filled or expired
    maker leaves the book and the open orders. Returns why it stopped (STOP_*), the lots filled and
    the last trade's price in ticks (0: none)."""
    acct = o.account
    buy = o.side == BUY
    limit = o.price
    budgeted = o.otype == MARKET and buy
    budget = o.quote_qty
    rem = o.remaining
    unit = m.unit
    stp = o.stp
    remove = orders.remove
    append = fills.append
    stop = STOP_BOOK
    start = rem
    last_p = 0
    levels = opp.levels
    while rem:
        level = opp.best()
        if level is None:
            break
        p = level.price
        if limit and (p > limit if buy else p < limit):
            break
        dq = level.orders
        cost = p * unit
        while dq:
            mk = dq[0]
            mrem = mk.remaining
            if not mrem:
                dq.popleft()
                level.dead -= 1
                continue
            if mk.account == acct:
                if stp != EXPIRE_TAKER:
                    dq.popleft()
                    level.qty -= mrem
                    mk.remaining = 0
                    remove(mk)
                    append((mk, mrem, 0))
                if stp != EXPIRE_MAKER:
                    stop = STOP_STP
                    break
                continue
            n = rem if rem < mrem else mrem
            if budgeted:
                afford = budget // cost
                if afford < n:
                    n = afford
                    if not n:
                        stop = STOP_BUDGET
                        break
                budget -= n * cost
            append((mk, n, p))
            rem -= n
            level.qty -= n
            mrem -= n
            last_p = p
            mk.remaining = mrem
            if not mrem:
                dq.popleft()
                remove(mk)
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
    return stop, start - rem, last_p


def fillable(opp: OrderBookSide, acct: int, side: int, pt: int, lots: int, stp: int) -> bool:
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


class Stops:
    """Per market, the pending stop orders (also open orders) by trigger: when the last price
    rises to (stop, oid) of the heap ``up``, or falls to (-stop, oid) of the heap ``down``. Both
    empty: nothing to trigger (the engine checks that after every trade without a call)."""

    __slots__ = ("down", "up")

    def __init__(self) -> None:
        self.up: list[tuple[int, int]] = []
        self.down: list[tuple[int, int]] = []

    def add(self, o: Order) -> None:
        if o.stop_rises():
            heappush(self.up, (o.stop, o.oid))
        else:
            heappush(self.down, (-o.stop, o.oid))

    def fired(self, last: int, orders: dict[int, Order], last_down: int = 0) -> list[Order]:
        """The still pending stop orders whose stop ``last`` has reached, oldest first (their
        entries leave the heaps; a cancelled stop's entry is dropped here, lazily). A price between
        two ticks (a perpetual's mark) passes its floor as ``last`` and its ceiling as ``last_down``."""
        up, down = self.up, self.down
        fired: list[Order] = []
        while up and up[0][0] <= last:
            o = orders.get(heappop(up)[1])
            if o is not None and o.stop:
                fired.append(o)
        last = last_down or last
        while down and -down[0][0] >= last:
            o = orders.get(heappop(down)[1])
            if o is not None and o.stop:
                fired.append(o)
        fired.sort(key=lambda o: o.oid)
        return fired


def book_canonical(book: OrderBook) -> list[Any]:
    """A book's resting orders for the state hash: bids then asks, best price first, oldest first."""
    return [
        [[o.oid, o.account, o.side, o.otype, wrap(o.price), wrap(o.qty), wrap(o.remaining), wrap(o.quote_qty),
          o.client_id, o.stp, o.seq, o.ts] for o in side.orders_in_priority()]
        for side in (book.bids, book.asks)
    ]


def stops_canonical(orders: OpenOrders) -> list[Any]:
    """The pending stop orders for the state hash, by id."""
    return sorted([o.oid, o.account, o.market, o.side, o.otype, wrap(o.price), wrap(o.qty), wrap(o.remaining),
                   o.client_id, o.stp, o.seq, o.ts, wrap(o.stop)] for o in orders if o.stop)
