"""What the deposit watchers keep in PostgreSQL: each chain's cursor and every deposit seen
(tables ``chain_cursors`` and ``deposits``, migration 0004_chain.sql).

One connection per store, used by one thread at a time (a lock), and reopened after a failure, so
that a watcher outlives a database restart.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import psycopg

from dpg.chain.contracts import DepositLog

log = logging.getLogger("dpg.chain.store")


@dataclass(frozen=True, slots=True)
class Seen:
    """A Deposit log of the canonical chain, mapped to its DPG asset."""

    log: DepositLog
    asset: str

    @property
    def key(self) -> tuple[str, int]:
        return self.log.key


@dataclass(frozen=True, slots=True)
class Deposit:
    """A row of ``deposits``."""

    chain: str
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    deposit_id: str
    account: int
    asset: str
    token: str
    amount: int
    status: str  # pending, credited, orphaned, rejected
    confirmations: int
    required: int
    seen_at: datetime
    credited_at: datetime | None
    credited_seq: int | None
    reason: str | None

    @property
    def key(self) -> tuple[str, int]:
        return (self.tx_hash, self.log_index)


_COLUMNS = ("chain, tx_hash, log_index, block_number, block_hash, deposit_id, account, asset, token, amount, status,"
            " confirmations, required, seen_at, credited_at, credited_seq, reason")


def _row(r: tuple[Any, ...]) -> Deposit:
    return Deposit(r[0], r[1], int(r[2]), int(r[3]), r[4], r[5], int(r[6]), r[7], r[8], int(r[9]), r[10], int(r[11]),
                   int(r[12]), r[13], r[14], None if r[15] is None else int(r[15]), r[16])


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="Connected")


class Connected:
    """One autocommit connection to ``url``, used by one thread at a time (``_lock``), and opened
    again after a failure: the chain stores' way to outlive a database restart."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._lock = threading.RLock()

    def _c(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _locked(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    @functools.wraps(method)
    def run(store: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with store._lock:
            return method(store, *args, **kwargs)

    return run


class DepositStore(Connected):

    # ------------------------------------------------------------------ cursor

    @_locked
    def cursor(self, chain: str) -> tuple[int, str | None] | None:
        """(last processed block, its hash) of ``chain``, or None before its first scan."""
        row = self._c().execute("SELECT block_number, block_hash FROM chain_cursors WHERE chain = %s",
                                (chain,)).fetchone()
        return None if row is None else (int(row[0]), row[1])

    @_locked
    def save_cursor(self, chain: str, block_number: int, block_hash: str | None) -> None:
        self._c().execute(
            "INSERT INTO chain_cursors (chain, block_number, block_hash) VALUES (%s, %s, %s)"
            " ON CONFLICT (chain) DO UPDATE SET block_number = EXCLUDED.block_number,"
            " block_hash = EXCLUDED.block_hash, updated_at = now()",
            (chain, block_number, block_hash),
        )

    # ------------------------------------------------------------------ deposits

    @_locked
    def record(self, chain: str, seen: list[Seen], head: int, required: int, from_block: int,
               to_block: int | None) -> list[Deposit]:
        """In one transaction: mark orphaned the pending deposits in blocks ``from_block`` ..
        ``to_block`` (None: no upper end) that are not in ``seen`` (the canonical ones there), add
        the new ones, move those re-included in another block (pending again if orphaned), and set
        the confirmations of every pending deposit at ``head``. Returns the rows that are new,
        orphaned or moved."""
        c = self._c()
        changed: list[Deposit] = []
        with c.transaction():
            keys_tx = [s.log.tx_hash for s in seen]
            keys_ix = [s.log.log_index for s in seen]
            orphaned = c.execute(
                f"UPDATE deposits SET status = 'orphaned', confirmations = 0"
                f" WHERE chain = %s AND status = 'pending' AND block_number >= %s"
                f" AND (%s::bigint IS NULL OR block_number <= %s::bigint)"
                f" AND (tx_hash, log_index) NOT IN (SELECT * FROM unnest(%s::text[], %s::int[]))"
                f" RETURNING {_COLUMNS}",
                (chain, from_block, to_block, to_block, keys_tx, keys_ix),
            ).fetchall()
            changed += [_row(r) for r in orphaned]
            existing = {
                (r[0], int(r[1])): (r[2], r[3]) for r in c.execute(
                    "SELECT d.tx_hash, d.log_index, d.status, d.block_hash FROM deposits d"
                    " JOIN unnest(%s::text[], %s::int[]) AS k(tx, ix) ON d.tx_hash = k.tx AND d.log_index = k.ix"
                    " WHERE d.chain = %s FOR UPDATE OF d", (keys_tx, keys_ix, chain),
                )
            }
            new = [s for s in seen if s.key not in existing]
            moved = [s for s in seen if s.key in existing and existing[s.key][0] in ("pending", "orphaned")
                     and (existing[s.key][0] == "orphaned" or existing[s.key][1] != s.log.block_hash)]
            with c.cursor() as cur:
                cur.executemany(
                    "INSERT INTO deposits (chain, tx_hash, log_index, block_number, block_hash, deposit_id,"
                    " account, asset, token, amount, status, confirmations, required)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', 0, %s)",
                    [(chain, s.log.tx_hash, s.log.log_index, s.log.block_number, s.log.block_hash, s.log.deposit_id,
                      s.log.account, s.asset, s.log.token, s.log.amount, required) for s in new],
                )
                cur.executemany(
                    "UPDATE deposits SET status = 'pending', block_number = %s, block_hash = %s, required = %s"
                    " WHERE chain = %s AND tx_hash = %s AND log_index = %s",
                    [(s.log.block_number, s.log.block_hash, required, chain, s.log.tx_hash, s.log.log_index)
                     for s in moved],
                )
            c.execute("UPDATE deposits SET confirmations = GREATEST(0, %s - block_number + 1)"
                      " WHERE chain = %s AND status = 'pending'", (head, chain))
            touched = new + moved
            if touched:
                rows = c.execute(
                    f"SELECT {_COLUMNS} FROM deposits WHERE chain = %s AND (tx_hash, log_index) IN"
                    f" (SELECT * FROM unnest(%s::text[], %s::int[])) ORDER BY block_number, log_index",
                    (chain, [s.log.tx_hash for s in touched], [s.log.log_index for s in touched]),
                ).fetchall()
                changed += [_row(r) for r in rows]
        return changed

    @_locked
    def mark_credited(self, chain: str, key: tuple[str, int], seq: int | None, confirmations: int) -> None:
        self._c().execute(
            "UPDATE deposits SET status = 'credited', credited_at = now(), credited_seq = %s, confirmations = %s"
            " WHERE chain = %s AND tx_hash = %s AND log_index = %s",
            (seq, confirmations, chain, key[0], key[1]),
        )

    @_locked
    def mark_rejected(self, chain: str, key: tuple[str, int], reason: str) -> None:
        self._c().execute(
            "UPDATE deposits SET status = 'rejected', reason = %s WHERE chain = %s AND tx_hash = %s AND log_index = %s",
            (reason, chain, key[0], key[1]),
        )

    @_locked
    def orphan_pending(self, chain: str) -> int:
        """Mark every pending deposit of ``chain`` orphaned (its chain was reset); returns how many."""
        cur = self._c().execute("UPDATE deposits SET status = 'orphaned', confirmations = 0"
                                " WHERE chain = %s AND status = 'pending'", (chain,))
        return cur.rowcount

    @_locked
    def deposits(self, chain: str | None = None, account: int | None = None, status: str | None = None,
                 limit: int = 1000) -> list[Deposit]:
        """Deposits, newest first, filtered by chain, account and status."""
        rows = self._c().execute(
            f"SELECT {_COLUMNS} FROM deposits WHERE (%s::text IS NULL OR chain = %s::text)"
            f" AND (%s::numeric IS NULL OR account = %s::numeric) AND (%s::text IS NULL OR status = %s::text)"
            f" ORDER BY seen_at DESC, block_number DESC, log_index DESC LIMIT %s",
            (chain, chain, account, account, status, status, limit),
        ).fetchall()
        return [_row(r) for r in rows]

    @_locked
    def pending(self, chain: str) -> list[Deposit]:
        """The pending deposits of ``chain``, oldest block first."""
        rows = self._c().execute(
            f"SELECT {_COLUMNS} FROM deposits WHERE chain = %s AND status = 'pending'"
            f" ORDER BY block_number, log_index", (chain,),
        ).fetchall()
        return [_row(r) for r in rows]
