"""NaiveBookSide: the plainest book side that keeps the book interface (matching.OrderBookSide),
for checking the heap-indexed BookSide against: the best level by scanning every price, a removed
order taken out of its queue at once."""

from __future__ import annotations

from dpg.core.matching import Level
from dpg.core.model import Order, Side


class NaiveBookSide:
    def __init__(self, side: Side) -> None:
        self.side = side
        self.sign = -1 if side == Side.BUY else 1
        self.levels: dict[int, Level] = {}

    def best(self) -> Level | None:
        if not self.levels:
            return None
        return self.levels[max(self.levels) if self.side == Side.BUY else min(self.levels)]

    def add(self, order: Order) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = Level(order.price)
        level.orders.append(order)
        level.qty += order.remaining

    def remove(self, order: Order) -> None:
        level = self.levels[order.price]
        level.orders.remove(order)
        level.qty -= order.remaining
        order.remaining = 0
        if level.qty == 0:
            del self.levels[order.price]

    def reduce(self, order: Order, lots: int) -> None:
        self.levels[order.price].qty -= lots
        order.remaining -= lots

    def sorted_levels(self) -> list[Level]:
        return [self.levels[p] for p in sorted(self.levels, reverse=self.side == Side.BUY)]

    def orders_in_priority(self) -> list[Order]:
        return [o for level in self.sorted_levels() for o in level.orders if o.remaining]
