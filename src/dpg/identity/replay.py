"""Replay guards: a signed request's token is accepted once while its timestamp could pass any
receive window, in this process's memory or in Redis (shared by every API process)."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis


class ReplayGuard(Protocol):
    async def first_seen(self, token: str, ttl_ms: int) -> bool:
        """True the first time ``token`` is offered within ``ttl_ms``, False on a repeat."""
        ...


class MemoryReplayGuard:
    """Tokens in this process's memory, forgotten as they expire: for one API process and tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    async def first_seen(self, token: str, ttl_ms: int) -> bool:
        if ttl_ms < 1:
            raise ValueError("ttl_ms must be positive")
        now = self.clock()
        heap, expiry = self._heap, self._expiry
        while heap and heap[0][0] <= now:
            at, old = heapq.heappop(heap)
            if expiry.get(old) == at:
                del expiry[old]
        if token in expiry:
            return False
        at = now + ttl_ms / 1000
        expiry[token] = at
        heapq.heappush(heap, (at, token))
        return True


class RedisReplayGuard:
    """Tokens in Redis (``SET prefix+token 1 NX PX ttl``), shared by every API process."""

    def __init__(self, redis: Redis, prefix: str = "dpg:replay:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def first_seen(self, token: str, ttl_ms: int) -> bool:
        if ttl_ms < 1:
            raise ValueError("ttl_ms must be positive")
        return bool(await self.redis.set(self.prefix + token, b"1", nx=True, px=ttl_ms))
