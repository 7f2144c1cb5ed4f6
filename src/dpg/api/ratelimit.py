"""Rate limits: a token bucket per API key (or session user) and one per client IP, in each API
process. A refused request gets 429 with Retry-After."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBuckets:
    """Buckets of ``burst`` tokens refilled at ``rate`` per second, one per key."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_keys = max_keys
        self._b: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)

    def take(self, key: str, cost: float = 1.0) -> float:
        """0.0 when allowed (and charged), else the seconds to wait before retrying."""
        now = self.clock()
        tokens, last = self._b.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= cost:
            self._b[key] = (tokens - cost, now)
            if len(self._b) > self.max_keys:
                self._prune(now)
            return 0.0
        self._b[key] = (tokens, now)
        return (cost - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = [k for k, (t, last) in self._b.items() if t + (now - last) * self.rate >= self.burst]
        for k in full:
            del self._b[k]
