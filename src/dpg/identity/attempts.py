"""Attempts counted in PostgreSQL (``auth_attempts``), shared by every API process: password and
TOTP guesses, and mails asked for, each per subject in a time window; counted before they are
checked, so concurrent attempts cannot all pass."""

from __future__ import annotations

from collections.abc import Callable

from dpg.identity.errors import AuthError
from dpg.identity.store import Pool, at

MAIL_WINDOW_S = 3600.0
PRUNE_EVERY_S = 600.0


class Attempts:
    """``max_failures`` guesses per subject within ``failure_window_s`` (``attempt``); the mail
    limits pass their own limit and window (``count``)."""

    def __init__(self, pool: Pool, clock: Callable[[], float], *, max_failures: int, failure_window_s: float) -> None:
        self.pool = pool
        self.clock = clock
        self.max_failures = max_failures
        self.failure_window_s = failure_window_s
        self._pruned_at = 0.0

    async def count(self, subject: str, limit: int, window_s: float) -> float | None:
        """Count one attempt of ``subject`` in its window, in one statement (the row is locked
        while it changes). None when counted; else the seconds until the window ends: ``limit``
        attempts were counted already and this one is refused."""
        now = self.clock()
        cut = at(now - window_s)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO auth_attempts AS a (subject, window_start, attempts) VALUES (%s, %s, 1)"
                " ON CONFLICT (subject) DO UPDATE SET"
                " window_start = CASE WHEN a.window_start <= %s THEN excluded.window_start ELSE a.window_start END,"
                " attempts = CASE WHEN a.window_start <= %s THEN 1 ELSE a.attempts + 1 END"
                " WHERE a.window_start <= %s OR a.attempts < %s RETURNING attempts",
                (subject, at(now), cut, cut, cut, limit),
            )
            counted = await cur.fetchone()
            if counted is None:
                cur = await conn.execute("SELECT window_start FROM auth_attempts WHERE subject = %s", (subject,))
                row = await cur.fetchone()
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            oldest = at(now - max(self.failure_window_s, MAIL_WINDOW_S))
            async with self.pool.connection() as conn:
                await conn.execute("DELETE FROM auth_attempts WHERE window_start < %s", (oldest,))
        if counted is not None:
            return None
        return max(1.0, row[0].timestamp() + window_s - now) if row is not None else window_s

    async def attempt(self, subject: str, limit: int) -> None:
        """Count an attempt (password or TOTP); TOO_MANY_ATTEMPTS (429) past ``limit`` in the window."""
        wait = await self.count(subject, limit, self.failure_window_s)
        if wait is not None:
            raise AuthError("TOO_MANY_ATTEMPTS", f"too many failed attempts; try again in {int(wait + 0.999)} s", 429)

    async def clear(self, subject: str) -> None:
        """A success: the subject's count starts again."""
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM auth_attempts WHERE subject = %s", (subject,))
