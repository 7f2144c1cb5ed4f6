"""The public matching replay: run one market's order log through the real engine.

Anyone can re-run DPG's matching on an order log and get the same trades. Prices are ticks and
quantities lots (a market with tick = lot = 1 base unit and no fees); each account is opened and
funded without limit at its first order; self-trade prevention is expire-taker; market orders are
by base quantity. A cancel of an unknown or finished id is ignored; a rejected order (a post-only
that would cross, a FOK that cannot fill) leaves no trace but its absence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from dpg.core import events as E
from dpg.core.commands import CancelOrder, Credit, ListAsset, ListMarket, OpenAccount, PlaceOrder
from dpg.core.engine import MAX_ACCOUNT, Engine
from dpg.core.errors import DomainError, Reject
from dpg.core.model import OrderType, Side

MARKET = "BASE/QUOTE"
_FUNDING = 10**36  # "without limit": far beyond any log's needs, still below 2**127
_TYPES = {
    "limit": OrderType.LIMIT,
    "ioc": OrderType.IOC,
    "fok": OrderType.FOK,
    "post_only": OrderType.POST_ONLY,
    "market": OrderType.MARKET,
}
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}


@dataclass(frozen=True, slots=True)
class Trade:
    taker_id: int
    maker_id: int
    price: int
    qty: int


@dataclass(frozen=True, slots=True)
class Resting:
    id: int
    side: str
    price: int
    remaining: int


def _int(row: dict[str, str], key: str, line: int) -> int:
    raw = (row.get(key) or "").strip()
    if not raw.isdigit():
        raise DomainError(Reject.INVALID_ORDER, f"line {line}: {key} must be a non-negative integer, got {raw!r}")
    return int(raw)


class Replay:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = Engine() if engine is None else engine
        self.seq = 0
        self.funded: set[int] = set()
        self.by_id: dict[int, tuple[int, int]] = {}  # log id -> (engine order id, account)
        self.log_id: dict[int, int] = {}  # engine order id -> log id
        self.trades: list[Trade] = []
        for cmd in (ListAsset("BASE", 0), ListAsset("QUOTE", 0), ListMarket(MARKET, "BASE", "QUOTE", 1, 1, 0, 0, 0)):
            self._apply(cmd)

    def _apply(self, cmd: object) -> list[E.Event]:
        self.seq += 1
        return self.engine.apply(cmd, self.seq, self.seq)

    def _fund(self, account: int) -> None:
        if account not in self.funded:
            self.funded.add(account)
            self._apply(OpenAccount(account))
            self._apply(Credit(account, "BASE", _FUNDING, f"fund-base-{account}"))
            self._apply(Credit(account, "QUOTE", _FUNDING, f"fund-quote-{account}"))

    def row(self, row: dict[str, str], line: int) -> None:
        op = (row.get("op") or "").strip()
        log_id = _int(row, "id", line)
        if op == "cancel":
            known = self.by_id.get(log_id)
            if known is not None:
                oid, account = known
                self._apply(CancelOrder(account, MARKET, oid))
            return
        if op != "new":
            raise DomainError(Reject.INVALID_ORDER, f"line {line}: op must be new or cancel, got {op!r}")
        if log_id in self.by_id:
            raise DomainError(Reject.INVALID_ORDER, f"line {line}: order id {log_id} is used twice")
        account = _int(row, "account", line)
        side = _SIDES.get((row.get("side") or "").strip())
        otype = _TYPES.get((row.get("type") or "").strip())
        if side is None or otype is None:
            raise DomainError(Reject.INVALID_ORDER, f"line {line}: unknown side or type")
        price = 0 if otype == OrderType.MARKET else _int(row, "price", line)
        qty = _int(row, "qty", line)
        if not 0 < account < MAX_ACCOUNT:
            raise DomainError(Reject.INVALID_ACCOUNT, f"line {line}: account must be a positive 63-bit integer")
        self._fund(account)
        events = self._apply(PlaceOrder(account, MARKET, side, otype, price, qty))
        if events[0][0] != E.ORDER_NEW:
            return
        oid = cast(E.OrderNew, events[0]).oid
        self.by_id[log_id] = (oid, account)
        self.log_id[oid] = log_id
        for ev in events:
            if ev[0] == E.TRADE:
                t = cast(E.Trade, ev)
                self.trades.append(Trade(self.log_id[t.taker_oid], self.log_id[t.maker_oid], t.price, t.qty))

    def book(self) -> list[Resting]:
        out = []
        for o in self.engine.orders.values():
            out.append(Resting(self.log_id[o.oid], "buy" if o.side == Side.BUY else "sell", o.price, o.remaining))
        return sorted(out, key=lambda r: r.id)


def replay(rows: Iterable[dict[str, str]], engine: Engine | None = None) -> Replay:
    """Replay ``rows`` on a new engine (or on ``engine``, new, e.g. with another book implementation)."""
    r = Replay(engine)
    for line, row in enumerate(rows, start=2):
        r.row(row, line)
    return r
