"""WebSocket fan-out: channels, subscriptions, and one bounded outbox per client.

Public channels: ``depth:<market>`` (a snapshot, then updates; every depth message carries the
``seq`` of the last command that changed that book and each update the ``prev_seq`` it follows, so
a client detects a gap and resubscribes), ``trades:<market>``, ``ticker:<market>``,
``candles:<market>:<interval>``. Private channels after authentication: ``orders``, ``fills``,
``balances``. A client whose outbox fills up (it reads too slowly) is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import WebSocket

log = logging.getLogger("dpg.ws")

OUTBOX = 20_000
MAX_BUFFERED = 8 * 1024 * 1024  # bytes waiting in a client's socket buffer before it counts as too slow


def frame(text: str) -> bytes:
    """One unmasked, final text frame (RFC 6455), encoded once and written to every subscriber."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def _transport(ws: WebSocket) -> asyncio.WriteTransport | None:
    """The connection's transport under the ASGI server (uvicorn's websockets protocol), so that a
    message for many clients is framed once and written directly; None elsewhere."""
    send: Any = getattr(ws, "_send", None)
    for _ in range(4):
        owner = getattr(send, "__self__", None)
        transport = getattr(owner, "transport", None)
        if isinstance(transport, asyncio.WriteTransport):
            return transport
        cells = getattr(send, "__closure__", None) or ()
        send = next((c.cell_contents for c in cells if callable(c.cell_contents)), None)
        if send is None:
            return None
    return None
PRIVATE = ("orders", "fills", "balances")
INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d")


class Client:
    def __init__(self, ws: WebSocket, ip: str) -> None:
        self.ws = ws
        self.ip = ip
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue(maxsize=OUTBOX)
        self.channels: set[str] = set()
        self.account: int | None = None
        self.can_trade = False
        self.closed = False
        self.sender: asyncio.Task[None] | None = None
        self.transport: asyncio.WriteTransport | None = None  # set once accepted: the direct path

    def send(self, text: str) -> bool:
        return self.send_frame(frame(text)) if self.transport is not None else self._enqueue(text)

    def send_frame(self, data: bytes) -> bool:
        t = self.transport
        if self.closed or t is None or t.is_closing():
            return False
        if t.get_write_buffer_size() > MAX_BUFFERED:
            self.closed = True
            t.close()
            return False
        t.write(data)
        return True

    def _enqueue(self, text: str) -> bool:
        if self.closed:
            return False
        try:
            self.outbox.put_nowait(text)
            return True
        except asyncio.QueueFull:
            self.closed = True
            with contextlib.suppress(asyncio.QueueFull):
                self.outbox.put_nowait(None)
            return False

    def send_json(self, obj: Any) -> bool:
        return self.send(json.dumps(obj, separators=(",", ":")))

    async def run_sender(self) -> None:
        while True:
            text = await self.outbox.get()
            if text is None:
                with contextlib.suppress(Exception):
                    await self.ws.close(code=1013, reason="too slow: resubscribe")
                return
            await self.ws.send_text(text)


class Hub:
    def __init__(self) -> None:
        self.by_channel: dict[str, set[Client]] = {}
        self.by_account: dict[int, set[Client]] = {}
        self.clients: set[Client] = set()

    def connect(self, client: Client) -> None:
        self.clients.add(client)
        client.transport = _transport(client.ws)
        if client.transport is None:
            client.sender = asyncio.create_task(client.run_sender())

    def disconnect(self, client: Client) -> None:
        client.closed = True
        self.clients.discard(client)
        for ch in client.channels:
            subs = self.by_channel.get(ch)
            if subs is not None:
                subs.discard(client)
        if client.account is not None:
            mine = self.by_account.get(client.account)
            if mine is not None:
                mine.discard(client)
        if client.sender is not None:
            client.sender.cancel()

    def subscribe(self, client: Client, channel: str) -> None:
        client.channels.add(channel)
        self.by_channel.setdefault(channel, set()).add(client)
        if channel in PRIVATE and client.account is not None:
            self.by_account.setdefault(client.account, set()).add(client)

    def unsubscribe(self, client: Client, channel: str) -> None:
        client.channels.discard(channel)
        subs = self.by_channel.get(channel)
        if subs is not None:
            subs.discard(client)

    def has(self, channel: str) -> bool:
        return bool(self.by_channel.get(channel))

    def publish(self, channel: str, message: dict[str, Any]) -> None:
        subs = self.by_channel.get(channel)
        if not subs:
            return
        message["channel"] = channel
        text = json.dumps(message, separators=(",", ":"))
        data = frame(text)
        for c in list(subs):
            if not (c.send_frame(data) if c.transport is not None else c.send(text)):
                self.disconnect(c)

    def publish_raw(self, channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` as it is (no channel field): for other dialects' streams."""
        subs = self.by_channel.get(channel)
        if not subs:
            return
        text = json.dumps(message, separators=(",", ":"))
        data = frame(text)
        for c in list(subs):
            if not (c.send_frame(data) if c.transport is not None else c.send(text)):
                self.disconnect(c)

    def publish_private(self, account: int, channel: str, message: dict[str, Any]) -> None:
        clients = self.by_account.get(account)
        if not clients:
            return
        message["channel"] = channel
        text = json.dumps(message, separators=(",", ":"))
        for c in list(clients):
            if channel in c.channels and not c.send(text):
                self.disconnect(c)
