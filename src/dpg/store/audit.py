"""The audit log: every operator action (credits, signer decisions, admin API calls, roles and keys
made for others, setting changes, backups and restores) as an append-only hash chain in PostgreSQL
(migration 0023_audit_console.sql), and its verification.

Each row's ``hash`` is the SHA-256 of the canonical encoding (``canonical``) of
``(prev_hash, seq, ts, actor, action, details)``, where ``prev_hash`` is the hash of the row
before (``GENESIS`` for the first). Editing, inserting or deleting a row breaks the chain at that
row, which ``verify`` names, whatever the database's triggers allowed. Cutting rows off the end, or
rewriting the chain from some row on with fresh hashes, leaves a shorter or different chain that is
consistent in itself: that is caught by comparing with a head recorded elsewhere (``Anchor``; the
console and ``dpg audit verify`` show the head to copy).

Appends take a transaction-scoped advisory lock, then read the last row in a new statement (so in
READ COMMITTED they see every append committed before them): appends are serialised and the chain
never forks (the primary key on ``seq`` would refuse a fork anyway). ``record`` must be the last
statement of the caller's transaction: the lock is held until it commits.

Details are JSON of strings, integers, booleans, null, lists and objects: no floats (PostgreSQL's
``jsonb`` would not give them back as they were hashed; amounts are decimal strings or base units).
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

GENESIS = "0" * 64
LOCK = 727_023  # the advisory lock key of appends (dpg.store.db.migrate holds 727001)
PAGE = 5_000  # rows read per query while verifying
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = "seq, ts, actor, action, details, prev_hash, hash"
_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s)"
_LAST_SQL = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
_INSERT_SQL = f"INSERT INTO audit_log ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
_PAGE_SQL = f"SELECT {_COLUMNS} FROM audit_log WHERE seq > %s ORDER BY seq LIMIT %s"
_NEWEST_SQL = (f"SELECT {_COLUMNS} FROM audit_log WHERE seq < %s AND (%s::text IS NULL OR action = %s)"
               " ORDER BY seq DESC LIMIT %s")


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    ts: datetime
    actor: str
    action: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts.astimezone(UTC).isoformat(), "actor": self.actor,
                "action": self.action, "details": self.details, "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class Anchor:
    """A head recorded outside the database: the row ``seq`` must exist and have ``hash``."""

    seq: int
    hash: str

    @staticmethod
    def parse(text: str) -> Anchor:
        """``SEQ:HASH`` (as ``dpg audit verify`` prints the head)."""
        seq, _, digest = text.partition(":")
        digest = digest.strip().lower()
        if not seq.strip().isdigit() or int(seq) <= 0 or len(digest) != 64 or set(digest) - set("0123456789abcdef"):
            raise ValueError(f"an anchor is SEQ:HASH (a positive row number and 64 hex digits), not {text!r}")
        return Anchor(int(seq), digest)


@dataclass(slots=True)
class Verdict:
    """The outcome of a verification: ``ok``, how many rows were checked, the head, and the first
    bad row (``bad_seq``; for a missing row, the row after the gap) with what is wrong with it."""

    ok: bool = True
    rows: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    bad_seq: int | None = None
    problem: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "head": {"seq": self.head_seq, "hash": self.head_hash},
                "bad_seq": self.bad_seq, "problem": self.problem}


@dataclass(slots=True)
class Chain:
    """Checks rows fed in ``seq`` order; stops at the first bad one."""

    verdict: Verdict = field(default_factory=Verdict)
    anchor: Anchor | None = None

    def feed(self, e: Entry) -> bool:
        """Check the next row; False once the chain is broken (stop feeding)."""
        v = self.verdict
        expected = v.head_seq + 1
        if e.seq > expected:
            missing = str(expected) if e.seq == expected + 1 else f"{expected}-{e.seq - 1}"
            return self._bad(e.seq, f"row {e.seq} follows row {v.head_seq}: row(s) {missing} deleted")
        if e.seq != expected:
            return self._bad(e.seq, f"row {e.seq} is out of order after row {v.head_seq}")
        if e.prev_hash != v.head_hash:
            return self._bad(e.seq, f"row {e.seq} does not carry the hash of row {v.head_seq}"
                                    " (a row before it was changed, deleted or inserted)")
        if entry_hash(e.prev_hash, e.seq, e.ts, e.actor, e.action, e.details) != e.hash:
            return self._bad(e.seq, f"row {e.seq} was changed after it was written (its hash does not match)")
        if self.anchor is not None and e.seq == self.anchor.seq and e.hash != self.anchor.hash:
            return self._bad(e.seq, f"row {e.seq} differs from the anchor: the chain was rewritten from it or before")
        v.rows += 1
        v.head_seq, v.head_hash = e.seq, e.hash
        return True

    def end(self) -> Verdict:
        v = self.verdict
        if v.ok and self.anchor is not None and v.head_seq < self.anchor.seq:
            self._bad(v.head_seq + 1, f"the log ends at row {v.head_seq} but the anchor names row {self.anchor.seq}:"
                                      " rows were deleted from its end")
        return v

    def _bad(self, seq: int, problem: str) -> bool:
        self.verdict.ok, self.verdict.bad_seq, self.verdict.problem = False, seq, problem
        return False


# ---------------------------------------------------------------------- the hash


def micros(ts: datetime) -> int:
    """Microseconds since the epoch (PostgreSQL keeps ``timestamptz`` to the microsecond)."""
    return (ts - _EPOCH) // timedelta(microseconds=1)


def _plain(value: Any, where: str) -> None:
    if isinstance(value, float):
        raise TypeError(f"audit details take no floats ({where}): write amounts as strings or base units")
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"audit details' keys are strings ({where})")
            _plain(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _plain(v, f"{where}[{i}]")
    elif not (value is None or isinstance(value, str | int | bool)):
        raise TypeError(f"audit details hold JSON values, not {type(value).__name__} ({where})")


def canonical(prev_hash: str, seq: int, ts: datetime, actor: str, action: str, details: Mapping[str, Any]) -> bytes:
    """The bytes a row's hash covers: a JSON array, keys sorted, no spaces, UTF-8."""
    return json.dumps([prev_hash, seq, micros(ts), actor, action, details], sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(prev_hash: str, seq: int, ts: datetime, actor: str, action: str, details: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(prev_hash, seq, ts, actor, action, details)).hexdigest()


def _next(last: tuple[Any, ...] | None, actor: str, action: str, details: Mapping[str, Any] | None) -> Entry:
    """The entry that follows ``last`` ((seq, hash) or None), stamped now."""
    if not actor or not action:
        raise ValueError("an audit entry names its actor and its action")
    body = dict(details or {})
    _plain(body, "details")
    body = json.loads(json.dumps(body))  # tuples become lists: what jsonb gives back
    seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
    now = datetime.now(UTC)
    return Entry(seq, now, actor, action, body, prev, entry_hash(prev, seq, now, actor, action, body))


def _entry(r: tuple[Any, ...]) -> Entry:
    return Entry(int(r[0]), r[1], str(r[2]), str(r[3]), r[4], str(r[5]), str(r[6]))


def _params(e: Entry) -> tuple[Any, ...]:
    return (e.seq, e.ts, e.actor, e.action, Jsonb(e.details), e.prev_hash, e.hash)


def cli_actor() -> str:
    """Who runs a ``dpg`` command: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid
        return "cli:unknown"


# ---------------------------------------------------------------------- blocking (CLI, chain threads)

Conn = psycopg.Connection[Any]


def record(target: Conn | str, actor: str, action: str, details: Mapping[str, Any] | None = None) -> Entry:
    """Append an entry; ``target`` is a connection (the entry joins its transaction, whose last
    statement this must be) or a database URL (committed here). Returns the entry written."""
    if isinstance(target, str):
        with psycopg.connect(target) as conn:
            return record(conn, actor, action, details)
    with target.transaction():
        target.execute(_LOCK_SQL, (LOCK,))
        e = _next(target.execute(_LAST_SQL).fetchone(), actor, action, details)
        target.execute(_INSERT_SQL, _params(e))
    return e


def record_settings(target: Conn | str, settings: Mapping[str, Any]) -> Entry | None:
    """At start: a ``settings.change`` entry when ``settings`` differ from those the last such
    entry holds (the first start records them all); None when nothing changed."""
    if isinstance(target, str):
        with psycopg.connect(target) as conn:
            return record_settings(conn, settings)
    last = entries(target, 1, action="settings.change")
    before = last[0].details.get("settings", {}) if last else {}
    changed = sorted(k for k in set(settings) | set(before) if before.get(k) != settings.get(k))
    if not changed:
        return None
    return record(target, cli_actor(), "settings.change",
                  {"settings": dict(settings), "changed": changed,
                   "before": {k: before[k] for k in changed if k in before}})


def _rows(conn: Conn) -> Iterator[Entry]:
    after = 0
    while True:
        page = conn.execute(_PAGE_SQL, (after, PAGE)).fetchall()
        for r in page:
            yield _entry(r)
        if len(page) < PAGE:
            return
        after = int(page[-1][0])


def verify(target: Conn | str, anchor: Anchor | None = None) -> Verdict:
    """Recompute the whole chain; the verdict names the first bad row."""
    if isinstance(target, str):
        with psycopg.connect(target) as conn:
            return verify(conn, anchor)
    chain = Chain(anchor=anchor)
    for e in _rows(target):
        if not chain.feed(e):
            break
    return chain.end()


def _newest(limit: int, before: int | None, action: str | None) -> tuple[Any, ...]:
    return (before or 2**62, action, action, limit)


def entries(target: Conn | str, limit: int = 50, before: int | None = None, action: str | None = None) -> list[Entry]:
    """The newest entries (before row ``before``; only ``action``'s), newest first."""
    if isinstance(target, str):
        with psycopg.connect(target) as conn:
            return entries(conn, limit, before, action)
    return [_entry(r) for r in target.execute(_NEWEST_SQL, _newest(limit, before, action)).fetchall()]


# ---------------------------------------------------------------------- asynchronous (the API)

AConn = psycopg.AsyncConnection[Any]


async def record_async(target: AConn | AsyncConnectionPool, actor: str, action: str,
                       details: Mapping[str, Any] | None = None) -> Entry:
    """``record`` on an asynchronous connection (joining its transaction) or pool (committed here)."""
    if isinstance(target, AsyncConnectionPool):
        async with target.connection() as conn:
            return await record_async(conn, actor, action, details)
    async with target.transaction():
        await target.execute(_LOCK_SQL, (LOCK,))
        cur = await target.execute(_LAST_SQL)
        e = _next(await cur.fetchone(), actor, action, details)
        await target.execute(_INSERT_SQL, _params(e))
    return e


async def _rows_async(conn: AConn) -> AsyncIterator[Entry]:
    after = 0
    while True:
        cur = await conn.execute(_PAGE_SQL, (after, PAGE))
        page = await cur.fetchall()
        for r in page:
            yield _entry(r)
        if len(page) < PAGE:
            return
        after = int(page[-1][0])


async def verify_async(pool: AsyncConnectionPool, anchor: Anchor | None = None) -> Verdict:
    chain = Chain(anchor=anchor)
    async with pool.connection() as conn:
        async for e in _rows_async(conn):
            if not chain.feed(e):
                break
    return chain.end()


async def entries_async(pool: AsyncConnectionPool, limit: int = 50, before: int | None = None,
                        action: str | None = None) -> list[Entry]:
    async with pool.connection() as conn:
        cur = await conn.execute(_NEWEST_SQL, _newest(limit, before, action))
        return [_entry(r) for r in await cur.fetchall()]
