"""Building blocks for engine tests: a funded engine (its accounts opened) and short ways to place orders."""

from __future__ import annotations

from typing import Any

from dpg.core import events as E
from dpg.core.commands import Credit, OpenAccount, PlaceOrder
from dpg.core.engine import Engine
from dpg.core.genesis import GENESIS
from dpg.core.model import STP, OrderType, Side

M = "BTC/USDT"
TICK = 10_000  # 0.01 USDT
LOT = 10_000  # 0.0001 BTC
BTC = 10**8
USDT = 10**6


class Desk:
    """An engine with the genesis markets and a sequence counter."""

    def __init__(self) -> None:
        self.engine = Engine()
        self.seq = 0
        for cmd in GENESIS:
            self.apply(cmd)

    def apply(self, cmd: Any) -> list[E.Event]:
        self.seq += 1
        return self.engine.apply(cmd, self.seq, self.seq * 1000)

    def open(self, account: int) -> None:
        """Open ``account`` unless it is open (as sign-up does)."""
        if not self.engine.has_account(account):
            assert self.apply(OpenAccount(account)) == [(E.ACCOUNT_OPENED, account)]

    def fund(self, account: int, asset: str, amount: int) -> None:
        """Open ``account`` if needed, then credit it."""
        self.open(account)
        ev = self.apply(Credit(account, asset, amount, f"fund-{account}-{asset}-{self.seq}"))
        assert ev[0][0] == E.BALANCE

    def order(
        self,
        account: int,
        side: str,
        price_ticks: int,
        lots: int,
        otype: OrderType = OrderType.LIMIT,
        stp: STP = STP.EXPIRE_TAKER,
        client_id: str = "",
        market: str = M,
    ) -> list[E.Event]:
        s = Side.BUY if side == "buy" else Side.SELL
        return self.apply(PlaceOrder(account, market, s, otype, price_ticks * TICK, lots * LOT,
                                     client_id=client_id, stp=stp))

    def balance(self, account: int, asset: str) -> tuple[int, int]:
        return self.engine.balance(account, asset)


def kinds(events: list[E.Event], kind: int) -> list[E.Event]:
    return [e for e in events if e[0] == kind]


def oid(events: list[E.Event]) -> int:
    assert events[0][0] == E.ORDER_NEW, events
    return int(events[0][1])


def rejected(events: list[E.Event]) -> str:
    assert events[0][0] == E.REJECTED, events
    return str(events[0][1])


def trades(events: list[E.Event]) -> list[tuple[int, int, int, int]]:
    """(taker oid, maker oid, price units, qty units) of each trade."""
    return [(e[6], e[7], e[3], e[4]) for e in events if e[0] == E.TRADE]
