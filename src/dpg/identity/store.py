"""How the identity tables are reached and what they store: the connection pool, times as UTC
timestamps, tokens (sessions, mailed links) as their SHA-256, and one database read shared by
every request that misses a cache at once."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Generic, TypeVar

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def at(epoch_s: float) -> datetime:
    """Epoch seconds as the UTC timestamp stored."""
    return datetime.fromtimestamp(epoch_s, UTC)


def sha256(text: str) -> bytes:
    """The digest a token is stored and looked up by."""
    return hashlib.sha256(text.encode()).digest()


class SharedReads(Generic[K, V]):
    """At most one read of a key in flight: the requests that miss a cache for the same session or
    API key while it is being read await that one read (under load, a cache entry's expiry would
    otherwise send every waiting request of that user to the database at once). ``keep`` caches a
    finished read, unless ``drop`` (a revocation) came while it was in flight."""

    def __init__(self, keep: Callable[[K, V], None]) -> None:
        self.keep = keep
        self._reads: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, read: Callable[[K], Awaitable[V]]) -> V:
        fut = self._reads.get(key)
        if fut is None:
            fut = asyncio.ensure_future(read(key))
            self._reads[key] = fut
            fut.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(fut)

    def _done(self, key: K, done: asyncio.Future[V]) -> None:
        if self._reads.get(key) is not done:
            return  # dropped while in flight: not cached
        del self._reads[key]
        if not done.cancelled() and done.exception() is None:
            self.keep(key, done.result())

    def drop(self, key: K) -> None:
        """Forget a read in flight: whoever awaits it still gets its result, but it is not cached
        and the next miss reads again."""
        self._reads.pop(key, None)
