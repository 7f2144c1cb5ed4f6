"""Revocations across API processes. In the multi-process mode a logout or an API key's revocation
on one API process is published on the Redis channel ``<DPG_REDIS_PREFIX>:revoked``; every API
process follows it, forgets that session or key from its Accounts caches and closes the sockets it
authenticated. Messages are JSON: ``{"user": id, "session": "<the token's SHA-256, hex>"}`` or
``{"user": id, "key": "dpg_…"}`` (never a token or a secret)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis.asyncio as aioredis

from dpg.api.ws import Hub
from dpg.bus.redis_bus import PREFIX
from dpg.identity import Accounts

log = logging.getLogger("dpg.api.revocations")

CHANNEL = f"{PREFIX}:revoked"
RETRY_S = 0.5


class RedisRevocations:
    def __init__(self, url: str, accounts: Accounts, hub: Hub) -> None:
        self.r = aioredis.Redis.from_url(url)
        self.accounts = accounts
        self.hub = hub
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Follow the channel (subscribed when this returns), and publish this process's revocations."""
        pubsub = self.r.pubsub()
        await pubsub.subscribe(CHANNEL)
        self._task = asyncio.create_task(self._follow(pubsub))
        self.accounts.on_revoke.append(self.publish)

    async def publish(self, user_id: int, credential: bytes | str) -> None:
        """``Accounts.on_revoke``'s hook: tell every API process (this one too: applying twice is harmless)."""
        body: dict[str, Any] = {"user": user_id}
        if isinstance(credential, bytes):
            body["session"] = credential.hex()
        else:
            body["key"] = credential
        await self.r.publish(CHANNEL, json.dumps(body))

    def apply(self, data: bytes | str) -> None:
        try:
            body = json.loads(data)
            user = body["user"]
            credential: bytes | str = bytes.fromhex(body["session"]) if "session" in body else str(body["key"])
            if not isinstance(user, int):
                raise TypeError("user")
        except (ValueError, KeyError, TypeError):
            log.warning("event=revocation_malformed")
            return
        self.accounts.forget(credential)
        closed = self.hub.revoke(user, credential)
        log.info("event=revocation_received user=%d sockets_closed=%d", user, closed)

    async def _follow(self, pubsub: Any) -> None:
        while True:
            try:
                async for msg in pubsub.listen():
                    if msg.get("type") == "message":
                        self.apply(msg["data"])
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis away: sockets are still re-checked every ws.SWEEP_S
                log.warning("event=revocation_feed_failed error=%r", e)
                await asyncio.sleep(RETRY_S)
                with contextlib.suppress(Exception):
                    await pubsub.subscribe(CHANNEL)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.r.aclose()
