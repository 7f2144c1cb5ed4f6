"""The Redis bus, for an engine process and any number of API processes.

Keys start with ``DPG_REDIS_PREFIX`` (default ``dpg``).

- Commands: API processes ``XADD dpg:cmd`` (payload = the journal's codec, a request id, the
  reply channel, the time sent). The engine process reads the stream and submits each command to
  its sequencer. Delivery is at most once: a command older than ``STALE_MS`` when the engine reads
  it is dropped (its caller has timed out and may retry; client order ids and references make a
  retry safe).
- Replies: after commit, the engine publishes ``(request id, seq, events)`` on the caller's channel.
- Events: after commit, the engine appends each batch ``[(seq, ts, events), ...]`` to the stream
  ``dpg:events`` (capped); every API process reads it in order and checks that seq never skips.
- Liveness: the engine sets ``dpg:engine`` (its seq, and whether it takes commands) every second with
  a 3 s expiry. An API process reads it every second: while it is missing or says halted, health
  answers 503 with the reason, commands are refused at once (never sent, so never executed later),
  and the log says when the outage began and ended.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.asyncio as aioredis

from dpg.bus.wire import Batch, pack_batch, pack_reply, unpack_batch, unpack_reply
from dpg.core import events as E
from dpg.core.commands import Command
from dpg.core.errors import Reject
from dpg.core.events import Event
from dpg.journal import codec
from dpg.journal.journal import Applied
from dpg.journal.sequencer import Sequencer

log = logging.getLogger("dpg.bus")

PREFIX = os.environ.get("DPG_REDIS_PREFIX", "dpg")  # lets several exchanges (or test runs) share a Redis
CMD_STREAM = f"{PREFIX}:cmd"
EVENT_STREAM = f"{PREFIX}:events"
EVENTS_KEPT = 200_000
ENGINE_KEY = f"{PREFIX}:engine"
STALE_MS = 10_000
REPLY_TIMEOUT_S = 10.0
HEARTBEAT_S = 1.0
HEARTBEAT_TTL_MS = 3_000


class EngineBridge:
    """In the engine process: Redis commands in, replies and event batches out."""

    def __init__(self, url: str, sequencer: Sequencer) -> None:
        self.url = url
        self.sequencer = sequencer
        self._out: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_commands, name="dpg-redis-in", daemon=True)
        self._writer = threading.Thread(target=self._publish, name="dpg-redis-out", daemon=True)
        self._beat = threading.Thread(target=self._heartbeat, name="dpg-redis-beat", daemon=True)
        sequencer.sinks.append(self._sink)

    def start(self) -> None:
        self._reader.start()
        self._writer.start()
        self._beat.start()

    def stop(self) -> None:
        self._stop.set()
        self._out.put(None)
        self._reader.join(5)
        self._writer.join(5)
        self._beat.join(5)
        try:
            r = redis.Redis.from_url(self.url)
            r.delete(ENGINE_KEY)  # API processes see the engine gone at once, not after the expiry
            r.close()
        except redis.RedisError:
            pass

    def _heartbeat(self) -> None:
        r = redis.Redis.from_url(self.url)
        while not self._stop.wait(HEARTBEAT_S / 2):
            ok, reason = self.sequencer.status()
            beat = json.dumps({"seq": self.sequencer.committed_seq, "ok": ok, "reason": reason})
            try:
                r.set(ENGINE_KEY, beat, px=HEARTBEAT_TTL_MS)
            except redis.RedisError as e:
                log.warning("event=redis_heartbeat_failed error=%r", e)
        r.close()

    def _sink(self, batch: Sequence[Applied]) -> None:
        self._out.put(("events", [(a.seq, a.ts, a.events) for a in batch]))

    def _read_commands(self) -> None:
        r = redis.Redis.from_url(self.url)
        last = "$"
        while not self._stop.is_set():
            try:
                got: Any = r.xread({CMD_STREAM: last}, count=1000, block=200)
            except redis.RedisError as e:
                log.warning("event=redis_read_failed error=%r", e)
                time.sleep(0.5)
                continue
            now_ms = int(time.time() * 1000)
            for _, entries in got or []:
                for entry_id, fields in entries:
                    last = entry_id
                    self._accept(fields, now_ms)
        r.close()

    def _accept(self, fields: dict[bytes, bytes], now_ms: int) -> None:
        rid = fields[b"i"].decode()
        channel = fields[b"r"].decode()
        if now_ms - int(fields[b"t"]) > STALE_MS:
            log.warning("event=command_stale request=%s", rid)
            return
        try:
            cmd = codec.decode(fields[b"p"])
        except Exception:
            self._out.put(("reply", (channel, rid, 0, E.rejected(Reject.INVALID_ORDER.value, "malformed command"))))
            return

        def reply(seq: int, events: list[Event]) -> None:
            self._out.put(("reply", (channel, rid, seq, events)))

        self.sequencer.submit(cmd, reply)

    def _publish(self) -> None:
        r = redis.Redis.from_url(self.url)
        while True:
            item = self._out.get()
            if item is None:
                break
            items = [item]
            while True:
                try:
                    more = self._out.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._out.put(None)
                    break
                items.append(more)
            pipe = r.pipeline(transaction=False)
            for kind, payload in items:
                if kind == "reply":
                    channel, rid, seq, events = payload
                    pipe.publish(channel, pack_reply(rid, seq, events))
                else:
                    pipe.xadd(EVENT_STREAM, {"b": pack_batch(payload)}, maxlen=EVENTS_KEPT, approximate=True)
            try:
                pipe.execute()
            except redis.RedisError as e:
                log.error("event=redis_publish_failed error=%r", e)
        r.close()


class RedisBus:
    """In an API process: submit commands over Redis, follow the committed event batches."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.r = aioredis.Redis.from_url(url)
        self.channel = f"{PREFIX}:reply:{os.getpid()}:{os.urandom(4).hex()}"
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[tuple[int, list[Event]]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        self._engine: tuple[bool, str] = (True, "")  # from the engine's heartbeat, read every second
        self._down_since = 0.0

    async def start(self) -> None:
        pubsub = self.r.pubsub()
        await pubsub.subscribe(self.channel)
        self._tasks.append(asyncio.create_task(self._replies(pubsub)))
        await self._check_engine()
        self._tasks.append(asyncio.create_task(self._watch_engine()))

    def status(self) -> tuple[bool, str]:
        """(ok, reason): whether the engine process answers and takes commands."""
        return self._engine

    async def _check_engine(self) -> None:
        try:
            raw = await self.r.get(ENGINE_KEY)
        except redis.RedisError as e:
            state = (False, f"Redis is unreachable: {type(e).__name__}")
        else:
            if raw is None:
                state = (False, "the engine process is not running or not answering (no heartbeat in Redis)")
            else:
                beat = json.loads(raw)
                state = (bool(beat.get("ok")), str(beat.get("reason") or ""))
        if state[0] != self._engine[0]:
            if state[0]:
                log.info("event=engine_back down_s=%.1f", time.monotonic() - self._down_since)
            else:
                self._down_since = time.monotonic()
                log.error("event=engine_unreachable reason=%r", state[1])
        self._engine = state

    async def _watch_engine(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await self._check_engine()

    async def submit(self, cmd: Command) -> tuple[int, list[Event]]:
        ok, reason = self._engine
        if not ok:  # never sent: it cannot run later, after its caller was told it failed
            return 0, E.rejected(Reject.UNAVAILABLE.value, f"{reason}; the command was not sent")
        rid = str(next(self._ids))
        fut: asyncio.Future[tuple[int, list[Event]]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        try:
            await self.r.xadd(CMD_STREAM, {"p": codec.encode(cmd), "i": rid, "r": self.channel,
                                           "t": int(time.time() * 1000)}, maxlen=100_000, approximate=True)
            return await asyncio.wait_for(fut, REPLY_TIMEOUT_S)
        except (TimeoutError, redis.RedisError) as e:
            return 0, E.rejected(Reject.UNAVAILABLE.value, f"the engine did not answer: {type(e).__name__}")
        finally:
            self._waiting.pop(rid, None)

    async def _replies(self, pubsub: Any) -> None:
        async for msg in pubsub.listen():
            if msg.get("type") != "message":
                continue
            rid, seq, events = unpack_reply(msg["data"])
            fut = self._waiting.get(rid)
            if fut is not None and not fut.done():
                fut.set_result((seq, events))

    async def last_event_id(self) -> str:
        got: Any = await self.r.xrevrange(EVENT_STREAM, count=1)
        return str(got[0][0].decode()) if got else "0-0"

    def follow(self, after_id: str, on_batch: Callable[[Batch], None]) -> None:
        """Call ``on_batch`` with every event batch appended after ``after_id``."""
        self._tasks.append(asyncio.create_task(self._events(after_id, on_batch)))

    async def _events(self, last: str, on_batch: Callable[[Batch], None]) -> None:
        while True:
            try:
                got: Any = await self.r.xread({EVENT_STREAM: last}, count=100, block=1000)
            except redis.RedisError as e:
                log.warning("event=redis_events_failed error=%r", e)
                await asyncio.sleep(0.5)
                continue
            for _, entries in got or []:
                for entry_id, fields in entries:
                    last = entry_id
                    on_batch(unpack_batch(fields[b"b"]))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.r.aclose()
