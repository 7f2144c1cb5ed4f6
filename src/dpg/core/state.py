"""The canonical form of the engine's state: snapshots, restore, and the state hash.

The canonical form is a nested list of ints and strings in a fixed order (accounts ascending,
books best price first and oldest first within a price). Its MessagePack encoding is the snapshot
body, and SHA-256 of that encoding is the state hash: two engines with equal hashes hold equal
balances, books, counters and idempotency keys. Every open account is listed with its balance
vector, zeros included, so the set of open accounts is part of the hash.
"""

from __future__ import annotations

import hashlib
from typing import Any

from dpg.core.bigint import packb, unpackb, wrap
from dpg.core.engine import Engine
from dpg.core.matching import book_canonical, stops_canonical
from dpg.core.model import Asset, Market, Order

FORMAT = 5  # 5: every open account, also with a zero balance, and whether accounts must be opened
FORMAT_PERPS = 6  # 6: format 5 and the perpetuals (listed only once a perpetual is: a spot-only state keeps 5)
# 7: format 5, the perpetuals (or None) and the governed parameters (only once one differs from a new
# engine's: governance enabled, a stakers' share, a halted market; a state without them keeps 5 or 6)
FORMAT_GOV = 7
FORMATS = (FORMAT, FORMAT_PERPS, FORMAT_GOV)  # what this code writes, and so reads


def canonical(engine: Engine) -> list[Any]:
    """Each component's canonical form, in the format's order."""
    balances, credits, debits = engine.ledger.canonical()
    perps = bool(engine.fut.perps)
    gov = not engine.gov.is_default()
    tail: list[Any] = []
    if gov:
        tail = [engine.fut.canonical() if perps else None, engine.gov.canonical()]
    elif perps:
        tail = [engine.fut.canonical()]
    return [
        FORMAT_GOV if gov else FORMAT_PERPS if perps else FORMAT,
        engine.seq,
        engine.ts,
        engine.next_order_id,
        engine.next_trade_id,
        [[a.symbol, a.decimals] for a in engine.assets],
        [[m.symbol, m.base.symbol, m.quote.symbol, m.tick_size, m.lot_size, m.min_notional,
          m.maker_fee_ppm, m.taker_fee_ppm] for m in engine.markets],
        balances,
        credits,
        debits,
        [book_canonical(book) for book in engine.books],
        sorted([acct, cid, oid] for (acct, cid), oid in engine.client_ids.items()),
        sorted(engine.refs),
        sorted([wid, acct, a, wrap(amount)] for wid, (acct, a, amount) in engine.withdrawals.items()),
        sorted(engine.withdrawal_ids),
        engine.epoch,
        list(engine.last_price),
        stops_canonical(engine.open),
        engine.accounts_required,
        *tail,
    ]


def encode(engine: Engine) -> bytes:
    """The snapshot body."""
    return packb(canonical(engine))


def state_hash(engine: Engine) -> str:
    return hashlib.sha256(encode(engine)).hexdigest()


def decode(body: bytes) -> Engine:
    """Rebuild an engine from a snapshot body."""
    fields = unpackb(body)
    if fields[0] not in FORMATS:
        raise ValueError(f"snapshot format {fields[0]} is not one of {FORMATS}")
    perps = fields[19] if fields[0] in (FORMAT_PERPS, FORMAT_GOV) else None
    gov = fields[20] if fields[0] == FORMAT_GOV else None
    (_, seq, ts, next_oid, next_tid, assets, markets, balances, credits, debits, books,
     client_ids, refs, withdrawals, withdrawal_ids, epoch, last_price, stops, accounts_required) = fields[:19]
    e = Engine()
    for i, (sym, dec) in enumerate(assets):
        e.add_asset(Asset(sym, dec, i))
    for i, (sym, base, quote, tick, lot, mn, mk, tk) in enumerate(markets):
        e.add_market(Market.listed(sym, e.asset_by_symbol[base], e.asset_by_symbol[quote], tick, lot, mn, mk, tk, i))
    if perps is not None:
        e.fut.restore_markets(perps)
    e.ledger.restore(len(assets), balances, credits, debits, accounts_required)
    for mi, sides in enumerate(books):
        book = e.books[mi]
        for rows in sides:
            for oid, acct, side, otype, price, qty, rem, qq, cid, stp, oseq, ots in rows:
                o = Order(oid, acct, mi, side, otype, price, qty, rem, qq, cid, stp, oseq, ots)
                book.side(side).add(o)
                e.open.add(o)
    e.client_ids = {(acct, cid): oid for acct, cid, oid in client_ids}
    e.refs = set(refs)
    e.withdrawals = {wid: (acct, a, amount) for wid, acct, a, amount in withdrawals}
    e.withdrawal_ids = set(withdrawal_ids)
    e.epoch = epoch
    e.last_price[:] = last_price
    for oid, acct, mi, side, otype, price, qty, rem, cid, stp, oseq, ots, stop in stops:
        o = Order(oid, acct, mi, side, otype, price, qty, rem, 0, cid, stp, oseq, ots, stop)
        e.open.add(o)
        e.stops[mi].add(o)
    e.seq, e.ts, e.next_order_id, e.next_trade_id = seq, ts, next_oid, next_tid
    if perps is not None:
        e.fut.restore(perps)
    if gov is not None:
        e.gov.restore(gov)
    return e


def snapshot_format(body: bytes) -> int | None:
    """The format number a snapshot body was written in (None: not a snapshot)."""
    try:
        fields = unpackb(body)
    except ValueError:
        return None
    return fields[0] if isinstance(fields, list) and fields and isinstance(fields[0], int) else None
