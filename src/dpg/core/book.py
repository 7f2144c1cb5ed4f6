"""The order book of one market: price levels in FIFO order, best price by a heap.

Each side keeps ``levels`` (price in ticks -> Level) and a heap of keys (price for asks, -price
for bids) holding each listed price at most once. A level is dropped from ``levels`` when its
resting quantity reaches zero; its heap key is dropped lazily when it reaches the top. A
cancelled order stays in its level's queue as a dead entry (``remaining == 0``) until the queue
reaches it or the level is compacted, so a cancel costs O(1).
"""

from __future__ import annotations

from collections import deque
from heapq import heapify, heappop, heappush

from dpg.core.model import Order, Side


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


class BookSide:
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

    def __init__(self, market: int) -> None:
        self.market = market
        self.bids = BookSide(Side.BUY)
        self.asks = BookSide(Side.SELL)

    def side(self, side: int) -> BookSide:
        return self.bids if side == Side.BUY else self.asks

    def crossed(self) -> bool:
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and bid.price >= ask.price
