"""Signed requests: an API key's HMAC-SHA256 signature of the request, checked with its receive
window, the key's permissions and IP allow-list, and a replay guard."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from dpg.identity.errors import AuthError
from dpg.identity.keys import PERMISSIONS, ApiKeys, key_allows
from dpg.identity.replay import ReplayGuard

MAX_RECV_WINDOW_MS = 60_000
FUTURE_SKEW_MS = 1_000


class Signatures:
    """Timestamps judged by ``clock`` (epoch seconds); a signature is accepted once (``replay``)."""

    def __init__(self, keys: ApiKeys, replay: ReplayGuard, clock: Callable[[], float]) -> None:
        self.keys = keys
        self.replay = replay
        self.clock = clock

    async def verify(self, key: str, signature_hex: str, payload: bytes, timestamp_ms: int, recv_window_ms: int,
                     client_ip: str, need: str) -> int:
        """The user id behind a signed request, checked in this order: the receive window, the
        key, its revocation, the timestamp, the signature (hex HMAC-SHA256 of ``payload``), the
        IP allow-list, the permission ``need``, then that the same signature was not seen before.

        ``payload`` must include the timestamp and the receive window; a signature is remembered
        for as long as its timestamp could pass any receive window (up to 62 s)."""
        if need not in PERMISSIONS:
            raise ValueError(f"unknown permission {need!r}")
        if not 1 <= recv_window_ms <= MAX_RECV_WINDOW_MS:
            raise AuthError("INVALID_RECV_WINDOW", f"recv_window must be 1 to {MAX_RECV_WINDOW_MS} ms", 400)
        record = await self.keys.record(key)
        if record is None:
            raise AuthError("KEY_UNKNOWN", "no such API key", 401)
        if record.revoked:
            raise AuthError("KEY_REVOKED", "this API key was revoked", 401)
        now_ms = self.clock() * 1000
        if not now_ms - recv_window_ms <= timestamp_ms <= now_ms + FUTURE_SKEW_MS:
            raise AuthError("STALE_TIMESTAMP", "timestamp outside the receive window; check the clock", 401)
        expected = hmac.new(record.secret, payload, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature_hex.strip().lower().encode()):
            raise AuthError("BAD_SIGNATURE", "the signature does not match", 401)
        key_allows(record, client_ip, need)
        ttl_ms = int(timestamp_ms + MAX_RECV_WINDOW_MS - now_ms) + FUTURE_SKEW_MS
        token = hashlib.sha256(f"{key}:{expected}".encode()).hexdigest()
        if not await self.replay.first_seen(token, ttl_ms):
            raise AuthError("REPLAYED", "this request was already received", 401)
        await self.keys.touch(key)
        return record.user_id
