"""Projections: orders, trades and ledger entries in PostgreSQL, written from the engine's events.

``Projector.write`` takes a batch of applied commands and writes their events in one transaction
together with its checkpoint (``projection_state``), so a restart resumes exactly after the last
written command. Each ledger entry carries the running balance of its account and asset
(available + locked after it), found backwards from the engine's balances after the batch, and,
for a chain deposit or a withdrawal's payout, the chain and transaction hash of its reference.
Everything here can be dropped and rebuilt from the journal (``dpg projections rebuild``);
``dpg.store.follower`` keeps it current.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, cast

from dpg.core import events as E
from dpg.core.commands import CompleteWithdrawal, Credit
from dpg.core.engine import Engine
from dpg.core.events import Cause
from dpg.core.model import INSURANCE_ACCOUNT, STAKERS_ACCOUNT, STP, Asset, Market, OrderStatus, OrderType, Side
from dpg.journal.journal import Applied, connect

log = logging.getLogger("dpg.projection")

SIDE = {s.value: s.name.lower() for s in Side}
OTYPE = {t.value: t.name.lower() for t in OrderType}
STPN = {s.value: s.name.lower() for s in STP}
STATUS = {s.value: s.name.lower() for s in OrderStatus}
CAUSE = {c.value: c.name.lower() for c in Cause}
POSITION_CAUSE = {c.value: c.name.lower() for c in E.PositionCause}
VIA = ("book", "insurance", "adl")
_FUTURES_KINDS = frozenset((E.POSITION, E.FUNDING_PAID, E.LIQUIDATION))  # the kinds ``_futures`` writes

# The references custody writes: a deposit's credit "<chain>:<tx hash>:<log index>"
# (dpg.chain.watcher), a payout's completion "<chain>:<tx hash>" (dpg.chain.broadcaster).
_DEPOSIT_REF = re.compile(r"([a-z][a-z0-9_-]{0,31}):(0x[0-9a-f]{64}):[0-9]+")
_PAYOUT_REF = re.compile(r"([a-z][a-z0-9_-]{0,31}):(0x[0-9a-f]{64})")


def chain_tx(cmd: object) -> tuple[str | None, str | None]:
    """(chain, transaction hash) of a command that moved money over a chain; (None, None) otherwise."""
    m = None
    if isinstance(cmd, Credit):
        m = _DEPOSIT_REF.fullmatch(cmd.ref)
    elif isinstance(cmd, CompleteWithdrawal):
        m = _PAYOUT_REF.fullmatch(cmd.reference)
    return (m.group(1), m.group(2)) if m else (None, None)


_NEW_COLS = (
    "order_id, account, market, side, type, price, qty, quote_qty, client_id, stp, status, filled, "
    "filled_quote, reason, created_seq, updated_seq, created_ts, updated_ts, stop_price, triggered"
)
# The many rows (orders, their updates, trades, ledger entries) go in binary COPY: the driver dumps
# a row with less work than as text, and the server parses it with less. The column types, in order:
_NEW_TYPES = ["int8", "int8", "text", "text", "text", "numeric", "numeric", "numeric", "text", "text", "text",
              "numeric", "numeric", "text", "int8", "int8", "int8", "int8", "numeric", "bool"]
_UPDATE_TYPES = ["int8", "numeric", "numeric", "text", "text", "numeric", "numeric", "int8", "int8", "bool"]
_TRADE_TYPES = ["int8", "int8", "int8", "text", "numeric", "numeric", "numeric", "int8", "int8", "int8", "int8",
                "text", "numeric", "numeric"]
_LEDGER_TYPES = ["int8", "int4", "int8", "int8", "text", "numeric", "numeric", "numeric", "text", "text", "text"]


class _OrderRow:
    """An order's accumulated change within one batch."""

    __slots__ = ("filled", "filled_quote", "new", "price", "qty", "reason", "seq", "status", "triggered", "ts")

    def __init__(self, new: list[Any] | None) -> None:
        self.new = new  # full row when the order was created in this batch
        self.status: str | None = None
        self.filled = 0
        self.filled_quote = 0
        self.reason: str | None = None
        self.seq = 0
        self.ts = 0
        self.price: int | None = None
        self.qty: int | None = None
        self.triggered: bool | None = None  # True once a stop order's trigger fired


_Rows = tuple[list[list[Any]], list[tuple[Any, ...]], list[tuple[Any, ...]], list[list[Any]], int,
              dict[str, list[tuple[Any, ...]]]]


class Projector:
    """``background``: the rows of each batch are made on the caller's thread (they need the
    engine's balances right after the batch) and stored by a writer thread of its own, in order,
    while the caller applies the next batch; ``flush`` waits for them. A store that failed raises
    on the next ``write``, ``flush`` or ``close``."""

    def __init__(self, url: str, name: str = "tables", *, background: bool = False) -> None:
        self.url = url
        self.assets: list[Asset] = []
        self.markets: list[Market] = []
        self.name = name
        self.conn = connect(url)
        self.written_seq = self.checkpoint()  # every batch through it is written (or, in the background, handed on)
        self._queue: queue.Queue[_Rows | None] | None = None
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None
        if background:
            self._queue = queue.Queue(maxsize=2)
            self._writer = threading.Thread(target=self._write_loop, name="dpg-projection-writer", daemon=True)
            self._writer.start()

    def bind(self, assets: list[Asset], markets: list[Market]) -> None:
        """Use the engine's asset and market lists (append-only; read by index)."""
        self.assets = assets
        self.markets = markets

    def checkpoint(self) -> int:
        row = self.conn.execute("SELECT seq FROM projection_state WHERE name = %s", (self.name,)).fetchone()
        self.conn.commit()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ writing

    def write(self, batch: Sequence[Applied], balances: Mapping[int, Sequence[int]]) -> None:
        """Write the events of ``batch`` (commands after the checkpoint only) in one transaction.
        ``balances``: the engine's balances (account -> available, locked per asset index) right
        after the batch's last command, for the ledger's running balances."""
        batch = [a for a in batch if a.seq > self.written_seq]
        if not batch:
            return
        orders, trades, ledger, futures = self._gather(batch)
        new_rows, updates = _order_rows(orders)
        _running_balances(ledger, balances, self.assets)
        rows = (new_rows, updates, trades, ledger, batch[-1].seq,
                self._futures(batch) if futures else {"position_changes": [], "funding_rates": [], "liquidations": []})
        if self._queue is None:
            self._store(*rows)
        else:
            self._raise()
            self._queue.put(rows)
            self.written_seq = batch[-1].seq

    def _write_loop(self) -> None:
        """The writer thread: store each batch's rows in order; after a failure, store nothing more."""
        assert self._queue is not None
        while True:
            rows = self._queue.get()
            try:
                if rows is None:
                    return
                if self._error is None:
                    self._store(*rows)
            except BaseException as e:  # handed to the caller's thread
                self._error = e
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def flush(self) -> None:
        """Wait until every batch handed on is stored (raises what a store raised)."""
        if self._queue is not None:
            self._queue.join()
        self._raise()

    def _futures(self, batch: Sequence[Applied]) -> dict[str, list[tuple[Any, ...]]]:
        """The batch's perpetual futures rows: position changes, fundings, liquidations."""
        rows: dict[str, list[tuple[Any, ...]]] = {"position_changes": [], "funding_rates": [], "liquidations": []}
        markets = self.markets
        for a in batch:
            for n, ev in enumerate(a.events):
                kind = ev[0]
                if kind == E.POSITION:
                    p = cast(E.Position, ev)
                    rows["position_changes"].append((a.seq, n, a.ts, p.account, markets[p.market].symbol, p.size,
                                                     p.cost, p.margin, p.realized, POSITION_CAUSE[p.cause]))
                elif kind == E.FUNDING_PAID:
                    f = cast(E.FundingPaid, ev)
                    rows["funding_rates"].append((a.seq, a.ts, markets[f.market].symbol, f.rate, f.mark, f.paid,
                                                  f.received, f.to_insurance, f.next_funding))
                elif kind == E.LIQUIDATION:
                    q = cast(E.Liquidation, ev)
                    rows["liquidations"].append((a.seq, n, a.ts, q.account, markets[q.market].symbol, q.size,
                                                 q.bankruptcy_price, VIA[q.via]))
        return rows

    def _gather(
        self, batch: Sequence[Applied],
    ) -> tuple[dict[int, _OrderRow], list[tuple[Any, ...]], list[list[Any]], bool]:
        """The batch's orders (what each command did to each), trades and ledger entries, and
        whether it has futures events (rows for ``_futures``)."""
        orders: dict[int, _OrderRow] = {}
        trades: list[tuple[Any, ...]] = []
        ledger: list[list[Any]] = []
        futures = False
        markets = self.markets
        for a in batch:
            seq, ts = a.seq, a.ts
            chain: tuple[str | None, str | None] | None = None
            for n, ev in enumerate(a.events):
                kind = ev[0]
                if kind == E.BALANCE:
                    if chain is None:
                        chain = chain_tx(a.cmd)
                    # the asset's index stands where its symbol will be, None where its running balance
                    # will be (see _running_balances)
                    bal = cast(E.Balance, ev)
                    ledger.append([seq, n, ts, bal.account, bal.asset, None, bal.d_available, bal.d_locked,
                                   CAUSE[bal.cause], chain[0], chain[1]])
                elif kind == E.TRADE:
                    t = cast(E.Trade, ev)
                    trades.append((t.trade_id, seq, ts, markets[t.market].symbol, t.price, t.qty, t.notional,
                                   t.taker_oid, t.maker_oid, t.taker_account, t.maker_account, SIDE[int(t.taker_side)],
                                   t.taker_fee, t.maker_fee))
                    for oid in (t.taker_oid, t.maker_oid):
                        row = orders.get(oid)
                        if row is None:
                            row = orders[oid] = _OrderRow(None)
                        row.filled += t.qty
                        row.filled_quote += t.notional
                        row.seq, row.ts = seq, ts
                elif kind == E.ORDER_NEW:
                    o = cast(E.OrderNew, ev)
                    orders[o.oid] = _OrderRow([
                        o.oid, o.account, markets[o.market].symbol, SIDE[int(o.side)], OTYPE[int(o.otype)], o.price,
                        o.qty, o.quote_qty, o.client_id, STPN[int(o.stp)], "open", 0, 0, "", seq, seq, ts, ts,
                        o.stop_price, not o.stop_price,
                    ])
                elif kind == E.ORDER_DONE:
                    done = cast(E.OrderDone, ev)
                    row = orders.get(done.oid)
                    if row is None:
                        row = orders[done.oid] = _OrderRow(None)
                    row.status = STATUS[done.status]
                    row.reason = done.reason
                    row.seq, row.ts = seq, ts
                elif kind == E.ORDER_AMENDED:
                    am = cast(E.OrderAmended, ev)
                    row = orders.get(am.oid)
                    if row is None:
                        row = orders[am.oid] = _OrderRow(None)
                    row.price, row.qty = am.price, am.qty
                    row.seq, row.ts = seq, ts
                elif kind == E.ORDER_TRIGGERED:
                    oid = cast(E.OrderTriggered, ev).oid
                    row = orders.get(oid)
                    if row is None:
                        row = orders[oid] = _OrderRow(None)
                    row.triggered = True
                    row.seq, row.ts = seq, ts
                elif kind in _FUTURES_KINDS:
                    futures = True
        return orders, trades, ledger, futures

    def _store(self, new_rows: list[list[Any]], updates: list[tuple[Any, ...]], trades: list[tuple[Any, ...]],
               ledger: list[list[Any]], last: int, futures: dict[str, list[tuple[Any, ...]]]) -> None:
        """One transaction: new orders, updates of known ones, trades, ledger entries, the futures
        tables, the checkpoint."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            for table, rows in futures.items():
                if rows:
                    with cur.copy(f"COPY {table} FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            if new_rows:
                with cur.copy(f"COPY orders ({_NEW_COLS}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(_NEW_TYPES)
                    for new in new_rows:
                        copy.write_row(new)
            if updates:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS order_updates (order_id bigint, d_filled numeric,"
                    " d_filled_quote numeric, status text, reason text, price numeric, qty numeric, seq bigint,"
                    " ts bigint, triggered boolean) ON COMMIT DELETE ROWS"
                )
                with cur.copy("COPY order_updates FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(_UPDATE_TYPES)
                    for u in updates:
                        copy.write_row(u)
                cur.execute(
                    "UPDATE orders o SET filled = o.filled + u.d_filled,"
                    " filled_quote = o.filled_quote + u.d_filled_quote,"
                    " status = coalesce(u.status, CASE WHEN o.filled + u.d_filled > 0 AND o.status = 'open'"
                    "   THEN 'partially_filled' ELSE o.status END),"
                    " reason = coalesce(u.reason, o.reason),"
                    " price = coalesce(u.price, o.price), qty = coalesce(u.qty, o.qty),"
                    " triggered = coalesce(u.triggered, o.triggered),"
                    " updated_seq = u.seq, updated_ts = u.ts"
                    " FROM order_updates u WHERE o.order_id = u.order_id"
                )
            if trades:
                with cur.copy(
                    "COPY trades (trade_id, seq, ts, market, price, qty, notional, taker_order, maker_order,"
                    " taker_account, maker_account, taker_side, taker_fee, maker_fee) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(_TRADE_TYPES)
                    for trade_row in trades:
                        copy.write_row(trade_row)
            if ledger:
                with cur.copy(
                    "COPY ledger_entries (seq, n, ts, account, asset, balance, d_available, d_locked, cause, chain,"
                    " tx_hash) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(_LEDGER_TYPES)
                    for entry in ledger:
                        copy.write_row(entry)
            cur.execute("UPDATE projection_state SET seq = %s WHERE name = %s", (last, self.name))
        if self._queue is None:
            self.written_seq = last

    def write_epoch(self, epoch: int, seq: int, ts: int, engine: Engine) -> bool:
        """Record every user's balance per asset as of ``seq`` (the engine must be exactly there): in
        the perpetuals' quote asset, their equity at the mark prices; with the insurance fund's
        balances and the mark prices. Once per epoch: False when it was already recorded."""
        self.flush()  # after the batches before it
        assets = engine.assets
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("INSERT INTO por_epochs (epoch, seq, ts) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"
                        " RETURNING epoch", (epoch, seq, ts))
            if cur.fetchone() is None:
                return False
            # the perpetuals' quote asset: each user's liability there is their equity (Futures.liability)
            fut = engine.fut
            quote = fut.quote_asset if fut.perps else -1
            with cur.copy("COPY por_balances (epoch, asset, account, balance) FROM STDIN") as copy:
                for acct, vec in engine.balances.items():
                    if acct <= 0 and acct != STAKERS_ACCOUNT:
                        continue  # the fee account and the insurance fund are the exchange's own
                    # the stakers' reserve is owed to the staking contract: a liability until it leaves
                    for a in assets:
                        total = fut.liability(acct) if a.index == quote else vec[2 * a.index] + vec[2 * a.index + 1]
                        if total:
                            copy.write_row((epoch, a.symbol, acct, total))
            fund = engine.balances.get(INSURANCE_ACCOUNT)
            if fund is not None:
                cur.executemany("INSERT INTO por_insurance (epoch, asset, balance) VALUES (%s, %s, %s)",
                                [(epoch, a.symbol, fund[2 * a.index] + fund[2 * a.index + 1]) for a in assets])
            cur.executemany("INSERT INTO por_marks (epoch, market, mark) VALUES (%s, %s, %s)",
                            [(epoch, pm.market.symbol, pm.mark) for pm in fut.perps.values()])
        log.info("event=por_epoch_recorded epoch=%d seq=%d", epoch, seq)
        return True

    def close(self) -> None:
        """Stop the writer (after what it was handed) and close the connection."""
        try:
            if self._queue is not None and self._writer is not None and self._writer.is_alive():
                self._queue.put(None)
                self._writer.join()
        finally:
            self.conn.close()

    def truncate(self) -> None:
        """Empty every projection table (before a rebuild from the journal)."""
        self.flush()
        with self.conn.transaction():
            self.conn.execute("TRUNCATE orders, trades, ledger_entries, position_changes, funding_rates, liquidations")
            self.conn.execute("UPDATE projection_state SET seq = 0 WHERE name = %s", (self.name,))
        self.written_seq = 0


def _running_balances(ledger: list[list[Any]], balances: Mapping[int, Sequence[int]], assets: list[Asset]) -> None:
    """Turn each ledger row ``[seq, n, ts, account, asset index, None, d_available, d_locked, ...]``
    into ``[seq, n, ts, account, symbol, balance, d_available, d_locked, ...]``: walking back from
    the balances after the last row, each row's balance is the one after it minus the rows after it."""
    symbols = [a.symbol for a in assets]
    after: dict[tuple[int, int], int] = {}
    for row in reversed(ledger):
        account, index = row[3], row[4]
        key = (account, index)
        balance = after.get(key)
        if balance is None:
            vec = balances.get(account)
            balance = vec[2 * index] + vec[2 * index + 1] if vec else 0
        after[key] = balance - row[6] - row[7]
        row[4] = symbols[index]
        row[5] = balance


def _order_rows(orders: dict[int, _OrderRow]) -> tuple[list[list[Any]], list[tuple[Any, ...]]]:
    """Rows for orders new in the batch (complete), and updates of orders written before."""
    new_rows: list[list[Any]] = []
    updates: list[tuple[Any, ...]] = []
    for oid, r in orders.items():
        if r.new is not None:
            new = r.new
            new[11] = r.filled
            new[12] = r.filled_quote
            if r.price is not None:
                new[5], new[6] = r.price, r.qty
            if r.status is not None:
                new[10] = r.status
                new[13] = r.reason or ""
            elif r.filled:
                new[10] = "partially_filled"
            if r.seq:
                new[15], new[17] = r.seq, r.ts
            if r.triggered:
                new[19] = True
            new_rows.append(new)
        else:
            updates.append((oid, r.filled, r.filled_quote, r.status, r.reason, r.price, r.qty, r.seq, r.ts,
                            r.triggered))
    return new_rows, updates
