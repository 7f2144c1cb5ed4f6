"""The canonical form of the engine's state: snapshots, restore, and the state hash.

The canonical form is a nested list of ints and strings in a fixed order (accounts ascending,
books best price first and oldest first within a price). Its MessagePack encoding is the snapshot
body, and SHA-256 of that encoding is the state hash: two engines with equal hashes hold equal
balances, books, counters and idempotency keys. Every open account is listed with its balance
vector, zeros included, so the set of open accounts is part of the hash.
"""

from __future__ import annotations

import hashlib
from heapq import heapify
from typing import Any

from dpg.core.bigint import packb, unpackb, wrap
from dpg.core.book import OrderBook
from dpg.core.engine import Engine
from dpg.core.model import Asset, Market, Order, OrderType, Side

FORMAT = 5  # 5: every open account, also with a zero balance, and whether accounts must be opened


def canonical(engine: Engine) -> list[Any]:
    balances = [[acct, [wrap(v) for v in vec]] for acct, vec in sorted(engine.balances.items())]
    books = []
    for book in engine.books:
        sides = []
        for side in (book.bids, book.asks):
            sides.append([
                [o.oid, o.account, o.side, o.otype, wrap(o.price), wrap(o.qty), wrap(o.remaining), wrap(o.quote_qty),
                 o.client_id, o.stp, o.seq, o.ts]
                for o in side.orders_in_priority()
            ])
        books.append(sides)
    return [
        FORMAT,
        engine.seq,
        engine.ts,
        engine.next_order_id,
        engine.next_trade_id,
        [[a.symbol, a.decimals] for a in engine.assets],
        [[m.symbol, m.base.symbol, m.quote.symbol, m.tick_size, m.lot_size, m.min_notional,
          m.maker_fee_ppm, m.taker_fee_ppm] for m in engine.markets],
        balances,
        [wrap(v) for v in engine.credits],
        [wrap(v) for v in engine.debits],
        books,
        sorted([acct, cid, oid] for (acct, cid), oid in engine.client_ids.items()),
        sorted(engine.refs),
        sorted([wid, acct, a, wrap(amount)] for wid, (acct, a, amount) in engine.withdrawals.items()),
        sorted(engine.withdrawal_ids),
        engine.epoch,
        list(engine.last_price),
        sorted([o.oid, o.account, o.market, o.side, o.otype, wrap(o.price), wrap(o.qty), wrap(o.remaining),
                o.client_id, o.stp, o.seq, o.ts, wrap(o.stop)] for o in engine.orders.values() if o.stop),
        engine.accounts_required,
    ]


def encode(engine: Engine) -> bytes:
    """The snapshot body."""
    return packb(canonical(engine))


def state_hash(engine: Engine) -> str:
    return hashlib.sha256(encode(engine)).hexdigest()


def decode(body: bytes) -> Engine:
    """Rebuild an engine from a snapshot body."""
    fields = unpackb(body)
    if fields[0] != FORMAT:
        raise ValueError(f"snapshot format {fields[0]} is not {FORMAT}")
    (_, seq, ts, next_oid, next_tid, assets, markets, balances, credits, debits, books,
     client_ids, refs, withdrawals, withdrawal_ids, epoch, last_price, stops, accounts_required) = fields
    e = Engine()
    for i, (sym, dec) in enumerate(assets):
        asset = Asset(sym, dec, i)
        e.assets.append(asset)
        e.asset_by_symbol[sym] = asset
    e._zero_vector = [0] * (2 * len(e.assets))
    for i, (sym, base, quote, tick, lot, mn, mk, tk) in enumerate(markets):
        market = Market.listed(sym, e.asset_by_symbol[base], e.asset_by_symbol[quote], tick, lot, mn, mk, tk, i)
        e.markets.append(market)
        e.market_by_symbol[sym] = market
        e.books.append(OrderBook(i))
    for acct in list(e.balances):
        e.balances[acct] = e._zero_vector.copy()
    for acct, vec in balances:
        e.balances[acct] = list(vec)
    e.credits = list(credits)
    e.debits = list(debits)
    for mi, sides in enumerate(books):
        book = e.books[mi]
        for rows in sides:
            for oid, acct, side, otype, price, qty, rem, qq, cid, stp, oseq, ots in rows:
                o = Order(oid, acct, mi, side, otype, price, qty, rem, qq, cid, stp, oseq, ots)
                book.side(side).add(o)
                e.orders[oid] = o
                e.open_by_account.setdefault(acct, {})[oid] = o
    e.client_ids = {(acct, cid): oid for acct, cid, oid in client_ids}
    e.refs = set(refs)
    e.withdrawals = {wid: (acct, a, amount) for wid, acct, a, amount in withdrawals}
    e.withdrawal_ids = set(withdrawal_ids)
    e.epoch = epoch
    e.last_price = list(last_price)
    e.stops_up = [[] for _ in e.markets]
    e.stops_down = [[] for _ in e.markets]
    for oid, acct, mi, side, otype, price, qty, rem, cid, stp, oseq, ots, stop in stops:
        o = Order(oid, acct, mi, side, otype, price, qty, rem, 0, cid, stp, oseq, ots, stop)
        e.orders[oid] = o
        e.open_by_account.setdefault(acct, {})[oid] = o
        rising = (side == Side.BUY) == (otype == OrderType.STOP_LIMIT)
        if rising:
            e.stops_up[mi].append((stop, oid))
        else:
            e.stops_down[mi].append((-stop, oid))
    for heap in (*e.stops_up, *e.stops_down):
        heapify(heap)
    e.seq, e.ts, e.next_order_id, e.next_trade_id = seq, ts, next_oid, next_tid
    e.accounts_required = bool(accounts_required)
    return e


def snapshot_format(body: bytes) -> int | None:
    """The format number a snapshot body was written in (None: not a snapshot)."""
    try:
        fields = unpackb(body)
    except ValueError:
        return None
    return fields[0] if isinstance(fields, list) and fields and isinstance(fields[0], int) else None
