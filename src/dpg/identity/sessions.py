"""Sessions: a login's token (stored as its SHA-256), the user behind a live one (cached a few
seconds per process), logout, and the revocation of every session of a user."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from dpg.identity.errors import AuthError
from dpg.identity.store import Pool, SharedReads, at, sha256

log = logging.getLogger("dpg.identity")

SESSION_CACHE_S = 5.0  # how long an API process trusts a session it has looked up

# Told of every logout and key revocation: (user id, the session token's SHA-256 digest | the API key).
RevocationHook = Callable[[int, bytes | str], Awaitable[None]]


class Sessions:
    """Sessions live ``ttl_s`` seconds by ``clock``; ``revoked`` is told of each one revoked."""

    def __init__(self, pool: Pool, clock: Callable[[], float], revoked: RevocationHook, *, ttl_s: float) -> None:
        self.pool = pool
        self.clock = clock
        self.revoked = revoked
        self.ttl_s = ttl_s
        self._cache: dict[bytes, tuple[int, float, float]] = {}  # token hash -> (user, expires, cached until)
        self._reads: SharedReads[bytes, tuple[int, float, bool] | None] = SharedReads(self._keep)

    async def create(self, user_id: int, ip: str) -> tuple[str, float]:
        """A new session from client address ``ip``: (token, expiry in epoch seconds)."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + self.ttl_s
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, ip) VALUES (%s, %s, %s, %s, %s)",
                (sha256(token), user_id, at(now), at(expires), ip),
            )
        return token, expires

    async def user(self, token: str) -> int:
        """The user of a live session. Live sessions are cached for a few seconds per process (a
        logout here takes effect at once; in another API process within SESSION_CACHE_S)."""
        digest = sha256(token)
        now = self.clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[2] > now:
            if hit[1] <= now:
                raise AuthError("SESSION_EXPIRED", "the session has expired; sign in again", 401)
            return hit[0]
        row = await self._reads.get(digest, self._read)
        if row is None or row[2]:
            raise AuthError("SESSION_INVALID", "not signed in", 401)
        if row[1] <= now:
            raise AuthError("SESSION_EXPIRED", "the session has expired; sign in again", 401)
        return row[0]

    async def _read(self, digest: bytes) -> tuple[int, float, bool] | None:
        """(user, expiry, revoked) of a session from the database; None for an unknown one."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT user_id, expires_at, revoked_at FROM sessions WHERE token_hash = %s", (digest,)
            )
            row = await cur.fetchone()
        return None if row is None else (int(row[0]), row[1].timestamp(), row[2] is not None)

    def _keep(self, digest: bytes, row: tuple[int, float, bool] | None) -> None:
        """Cache a live session just read (``SharedReads`` calls it unless it was revoked meanwhile)."""
        now = self.clock()
        if row is None or row[2] or row[1] <= now:
            return
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[digest] = (row[0], row[1], now + SESSION_CACHE_S)

    async def logout(self, token: str) -> None:
        """Revoke the session; nothing happens for an unknown or already revoked token."""
        self._cache.pop(sha256(token), None)
        self._reads.drop(sha256(token))
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE sessions SET revoked_at = %s WHERE token_hash = %s AND revoked_at IS NULL RETURNING user_id",
                (at(self.clock()), sha256(token)),
            )
            row = await cur.fetchone()
        self._cache.pop(sha256(token), None)  # and again: a read that began before the update is not kept
        self._reads.drop(sha256(token))
        if row is not None:
            log.info("event=logout user=%d", int(row[0]))
            await self.revoked(int(row[0]), sha256(token))

    async def revoke_all(self, conn: psycopg.AsyncConnection[TupleRow], user_id: int, now: datetime) -> list[bytes]:
        """Revoke every live session of the user within ``conn``'s transaction; their digests, for
        ``told`` once it commits."""
        cur = await conn.execute("UPDATE sessions SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL"
                                 " RETURNING token_hash", (now, user_id))
        return [bytes(r[0]) for r in await cur.fetchall()]

    async def told(self, user_id: int, revoked: list[bytes]) -> None:
        """After ``revoke_all`` committed: out of this process's cache, and every hook told (their
        sockets close, and every API process forgets them at once)."""
        for digest in [d for d, hit in self._cache.items() if hit[0] == user_id]:
            del self._cache[digest]
        for digest in revoked:
            self._reads.drop(digest)
            await self.revoked(user_id, digest)

    def forget(self, digest: bytes) -> None:
        """Drop a session (by its token's SHA-256 digest) from this process's cache."""
        self._cache.pop(digest, None)
        self._reads.drop(digest)
