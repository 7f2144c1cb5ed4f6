"""What an API process knows of accounts right now: which are open, balances and open (and recently
finished) orders, built from committed event batches only, so a reply never shows uncommitted state.

Loaded from an engine at its seq, then advanced by ``apply`` one command at a time, in order.
``wait_for(seq)`` lets a request that got a reply for ``seq`` read its own write.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, cast

from dpg.core import events as E
from dpg.core.engine import Engine
from dpg.core.events import Event
from dpg.core.model import STP, Asset, Market, OrderStatus, OrderType, Side

FINISHED_KEPT = 100_000


@dataclass(slots=True)
class OrderView:
    order_id: int
    account: int
    market: int
    side: int
    otype: int
    price: int  # units (quote per whole base); 0 for market orders
    qty: int  # units
    quote_qty: int
    client_id: str
    stp: int
    status: int = OrderStatus.OPEN.value
    filled: int = 0
    filled_quote: int = 0
    fee: int = 0
    reason: str = ""
    created_seq: int = 0
    created_ts: int = 0
    updated_seq: int = 0
    updated_ts: int = 0
    fills: list[dict[str, Any]] = field(default_factory=list)
    stop_price: int = 0  # units; stop and take-profit orders
    triggered: bool = True  # False while a stop order waits for its trigger


class AccountViews:
    def __init__(self, markets: list[Market], assets: list[Asset]) -> None:
        self.markets = markets  # the engine's own append-only lists
        self.assets = assets
        self.seq = 0
        self.accounts: set[int] = set()  # the open user accounts
        self.balances: dict[int, dict[int, list[int]]] = {}  # account -> asset -> [available, locked]
        self.open: dict[int, OrderView] = {}
        self.by_account: dict[int, dict[int, OrderView]] = {}
        self.by_client_id: dict[tuple[int, str], int] = {}
        self.finished: OrderedDict[int, OrderView] = OrderedDict()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    # ------------------------------------------------------------------ building

    def load(self, engine: Engine) -> None:
        self.seq = engine.seq
        self.accounts = {acct for acct in engine.balances if acct > 0}
        for acct, vec in engine.balances.items():
            if acct > 0 and any(vec):
                self.balances[acct] = {a: [vec[2 * a], vec[2 * a + 1]] for a in range(len(vec) // 2)}
        for o in engine.orders.values():
            m = engine.markets[o.market]
            qty = o.qty * m.lot_size
            v = OrderView(o.oid, o.account, o.market, o.side, o.otype, o.price * m.tick_size, qty, 0, o.client_id,
                          o.stp, created_seq=o.seq, created_ts=o.ts, updated_seq=o.seq, updated_ts=o.ts,
                          stop_price=o.stop * m.tick_size, triggered=not o.stop)
            v.filled = qty - o.remaining * m.lot_size
            v.status = OrderStatus.PARTIALLY_FILLED.value if v.filled else OrderStatus.OPEN.value
            self._track(v)
        self.by_client_id.update({k: v for k, v in engine.client_ids.items() if v in self.open})

    def _track(self, v: OrderView) -> None:
        self.open[v.order_id] = v
        self.by_account.setdefault(v.account, {})[v.order_id] = v
        if v.client_id:
            self.by_client_id[(v.account, v.client_id)] = v.order_id

    def _finish(self, v: OrderView) -> None:
        self.open.pop(v.order_id, None)
        mine = self.by_account.get(v.account)
        if mine is not None:
            mine.pop(v.order_id, None)
        self.finished[v.order_id] = v
        if len(self.finished) > FINISHED_KEPT:
            _, old = self.finished.popitem(last=False)
            if old.client_id and self.by_client_id.get((old.account, old.client_id)) == old.order_id:
                del self.by_client_id[(old.account, old.client_id)]

    def apply(self, seq: int, ts: int, events: list[Event]) -> None:
        if seq != self.seq + 1:
            raise ValueError(f"views at seq {self.seq} cannot apply {seq}")
        self.seq = seq
        for ev in events:
            kind = ev[0]
            if kind == E.BALANCE:
                bal = cast(E.Balance, ev)
                if bal.account > 0:
                    b = self.balances.setdefault(bal.account, {}).setdefault(bal.asset, [0, 0])
                    b[0] += bal.d_available
                    b[1] += bal.d_locked
            elif kind == E.ORDER_NEW:
                o = cast(E.OrderNew, ev)
                self._track(OrderView(o.oid, o.account, o.market, int(o.side), int(o.otype), o.price, o.qty,
                                      o.quote_qty, o.client_id, int(o.stp), created_seq=seq, created_ts=ts,
                                      updated_seq=seq, updated_ts=ts, stop_price=o.stop_price,
                                      triggered=not o.stop_price))
            elif kind == E.ORDER_TRIGGERED:
                v = self.open.get(cast(E.OrderTriggered, ev).oid)
                if v is not None:
                    v.triggered = True
                    v.updated_seq, v.updated_ts = seq, ts
            elif kind == E.TRADE:
                t = cast(E.Trade, ev)
                for oid, fee, role in ((t.taker_oid, t.taker_fee, "taker"), (t.maker_oid, t.maker_fee, "maker")):
                    v = self.open.get(oid)
                    if v is None:
                        continue
                    v.filled += t.qty
                    v.filled_quote += t.notional
                    v.fee += fee
                    v.status = OrderStatus.PARTIALLY_FILLED.value
                    v.updated_seq, v.updated_ts = seq, ts
                    if len(v.fills) < 200:
                        v.fills.append({"trade_id": t.trade_id, "price": t.price, "qty": t.qty, "fee": fee,
                                        "role": role})
            elif kind == E.ORDER_DONE:
                done = cast(E.OrderDone, ev)
                v = self.open.get(done.oid)
                if v is not None:
                    v.status = done.status
                    v.reason = done.reason
                    v.updated_seq, v.updated_ts = seq, ts
                    self._finish(v)
            elif kind == E.ORDER_AMENDED:
                am = cast(E.OrderAmended, ev)
                v = self.open.get(am.oid)
                if v is not None:
                    v.price, v.qty = am.price, am.qty
                    v.updated_seq, v.updated_ts = seq, ts
            elif kind == E.ACCOUNT_OPENED:
                self.accounts.add(cast(E.AccountOpened, ev).account)
        if self._waiters:
            still = []
            for want, fut in self._waiters:
                if want <= seq:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    still.append((want, fut))
            self._waiters = still

    async def wait_for(self, seq: int, timeout: float = 5.0) -> None:
        if seq <= self.seq:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, fut))
        await asyncio.wait_for(fut, timeout)

    # ------------------------------------------------------------------ reading

    def order(self, account: int, order_id: int) -> OrderView | None:
        v = self.open.get(order_id) or self.finished.get(order_id)
        return v if v is not None and v.account == account else None

    def order_by_client_id(self, account: int, client_id: str) -> OrderView | None:
        oid = self.by_client_id.get((account, client_id))
        return self.order(account, oid) if oid else None

    def open_orders(self, account: int, market: int | None = None) -> list[OrderView]:
        mine = self.by_account.get(account, {})
        return sorted((v for v in mine.values() if market is None or v.market == market), key=lambda v: v.order_id)

    def has_account(self, account: int) -> bool:
        return account in self.accounts

    def balance(self, account: int) -> dict[int, list[int]]:
        return self.balances.get(account, {})


SIDE_NAMES = {s.value: s.name.lower() for s in Side}
TYPE_NAMES = {t.value: t.name.lower() for t in OrderType}
STP_NAMES = {s.value: s.name.lower() for s in STP}
STATUS_NAMES = {s.value: s.name.lower() for s in OrderStatus}
