"""WebSocket connections of every dialect: one read loop with one set of limits, channels and
subscriptions, one bounded outbox per client, and the end of a connection's private access when
the session or API key behind it ends.

Public channels of DPG's own protocol: ``depth:<market>`` (a snapshot, then updates; every depth
message carries the ``seq`` of the last command that changed that book and each update the
``prev_seq`` it follows, so a client detects a gap and resubscribes), ``trades:<market>``,
``ticker:<market>``, ``candles:<market>:<interval>``. Private channels after authentication:
``orders``, ``fills``, ``balances``. A client whose outbox fills up (it reads too slowly) is
disconnected. Other dialects (Binance's streams and WebSocket API) use the same hub and loop.

Limits, the same for every socket kind: a message is at most ``MAX_MESSAGE`` bytes; each one takes
a token from its connection's bucket (the per-key rate, ``DPG_RATE_KEY``) and from its client
address's bucket (the one REST requests use, ``DPG_RATE_IP``); a connection holds at most
``max_streams`` channels; one refused ``MAX_REFUSED`` times in a row is closed (``FLOODED``).

Revocation: what authenticated a connection (or one of its subscriptions) is a ``Grant``. A
logout or a key revocation closes every connection holding a grant of that session or key
(``REVOKED``, reason ``AUTH_REVOKED: …``) at once; every ``SWEEP_S`` seconds, and before every
private operation, each grant is checked again through the Accounts caches (expiry, permissions,
the key's IP allow-list).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, cast

from fastapi import WebSocket

from dpg.api.ratelimit import TokenBuckets
from dpg.identity import Accounts, AuthError

log = logging.getLogger("dpg.ws")

OUTBOX = 20_000
MAX_BUFFERED = 8 * 1024 * 1024  # bytes waiting in a client's socket buffer before it counts as too slow
MAX_MESSAGE = 16 * 1024  # bytes of one incoming message
MAX_STREAMS = 200  # channels per connection, unless DPG_WS_MAX_STREAMS says otherwise
MAX_REFUSED = 50  # refused messages in a row before the connection is closed
SWEEP_S = 1.0  # how often every authenticated connection's grants are checked again
REVOKED = 4001  # close code: the session or API key behind the connection ended
FLOODED = 1008  # close code: too many refused messages
TOO_SLOW = 1013  # close code: the client reads too slowly
PRIVATE = ("orders", "fills", "balances", "positions")


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
    message for many clients is framed once and written directly; None elsewhere. (Recognised by
    its methods: uvloop's transports are not subclasses of asyncio's.)"""
    send: Any = getattr(ws, "_send", None)
    for _ in range(4):
        owner = getattr(send, "__self__", None)
        transport = getattr(owner, "transport", None)
        if all(callable(getattr(transport, name, None)) for name in ("write", "is_closing", "get_write_buffer_size",
                                                                      "close")):
            return cast(asyncio.WriteTransport, transport)
        cells = getattr(send, "__closure__", None) or ()
        send = next((c.cell_contents for c in cells if callable(c.cell_contents)), None)
        if send is None:
            return None
    return None


@dataclass(frozen=True, slots=True)
class Grant:
    """What gave a connection private access: a session token, or an API key (signed once) with
    the permission it was checked for. The token stays in memory and out of every repr."""

    user_id: int
    need: str = "read"
    key: str = ""
    token: str = field(default="", repr=False)

    @property
    def credential(self) -> bytes | str:
        """How a revocation names it: the session token's SHA-256 digest (as the sessions table
        keeps it), or the API key."""
        return hashlib.sha256(self.token.encode()).digest() if self.token else self.key

    async def check(self, accounts: Accounts, ip: str) -> None:
        """Raise the AuthError that ends this grant now (logged out, expired, revoked, no longer
        allowed from ``ip`` or for ``need``), from the Accounts caches."""
        if self.token:
            user = await accounts.session_user(self.token)
        else:
            user = await accounts.key_user(self.key, ip, self.need)
        if user != self.user_id:
            raise AuthError("AUTH_REVOKED", "the credential belongs to another user now", 401)


class Client:
    def __init__(self, ws: WebSocket, ip: str, rate: float = 100.0) -> None:
        self.ws = ws
        self.ip = ip
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue(maxsize=OUTBOX)
        self.channels: set[str] = set()
        self.names: dict[str, str] = {}  # Binance streams: channel -> the stream's name as subscribed
        self.combined = False  # Binance combined streams: each message as {"stream": name, "data": …}
        self.account: int | None = None
        self.can_trade = False
        self.grants: dict[str, Grant] = {}  # role ("auth", "logon", "sub:<account>") -> grant
        self.bucket = TokenBuckets(rate, rate * 2)
        self.refused = 0  # messages refused in a row
        self.ending = ""  # why the connection is being closed; it reads and routes nothing more
        self.close_code = TOO_SLOW
        self.closed = False
        self.sender: asyncio.Task[None] | None = None
        self.closer: asyncio.Task[None] | None = None
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
                    await self.ws.close(code=self.close_code, reason=self.ending[:123] or "too slow: resubscribe")
                return
            await self.ws.send_text(text)


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one socket protocol answers: ``handle`` a parsed message (a JSON object), ``refuse`` one
    in the protocol's own error form (``msg`` is None when it did not parse) with one of the codes
    MESSAGE_TOO_LARGE, INVALID_JSON, RATE_LIMITED and a reason."""

    handle: Callable[[Client, dict[str, Any]], Awaitable[None]]
    refuse: Callable[[Client, dict[str, Any] | None, str, str], None]


class Hub:
    def __init__(self, accounts: Accounts | None = None, per_address: TokenBuckets | None = None,
                 rate: float = 100.0, max_streams: int = MAX_STREAMS) -> None:
        self.accounts = accounts
        self.per_address = per_address if per_address is not None else TokenBuckets(rate, rate * 2)
        self.rate = rate
        self.max_streams = max_streams
        self.by_channel: dict[str, set[Client]] = {}
        self.by_account: dict[int, set[Client]] = {}
        self.by_user: dict[int, set[Client]] = {}  # connections holding a grant of that user
        self.clients: set[Client] = set()
        self.sweeper: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ connections

    async def accept(self, ws: WebSocket, ip: str) -> Client:
        await ws.accept()
        client = Client(ws, ip, self.rate)
        self.connect(client)
        if self.sweeper is None and self.accounts is not None:
            self.sweeper = asyncio.create_task(self._sweep())
        return client

    def connect(self, client: Client) -> None:
        self.clients.add(client)
        client.transport = _transport(client.ws)
        if client.transport is None:
            client.sender = asyncio.create_task(client.run_sender())

    def disconnect(self, client: Client) -> None:
        client.closed = True
        self._unroute(client)
        if client.sender is not None:
            client.sender.cancel()

    def _unroute(self, client: Client) -> None:
        """Nothing more is published to ``client``."""
        self.clients.discard(client)
        for ch in client.channels:
            subs = self.by_channel.get(ch)
            if subs is not None:
                subs.discard(client)
        if client.account is not None:
            mine = self.by_account.get(client.account)
            if mine is not None:
                mine.discard(client)
        for grant in client.grants.values():
            holders = self.by_user.get(grant.user_id)
            if holders is not None:
                holders.discard(client)
                if not holders:
                    del self.by_user[grant.user_id]

    def end(self, client: Client, code: int, reason: str) -> None:
        """Close ``client`` with ``code`` and ``reason``: it is routed nothing more and its further
        messages are ignored at once; what is sent before this call returns still goes out first."""
        if client.ending or client.closed:
            return
        client.ending = reason
        client.close_code = code
        self._unroute(client)
        log.info("event=ws_closed ip=%s code=%d reason=%r", client.ip, code, reason)
        client.closer = asyncio.create_task(self._close(client))

    @staticmethod
    async def _close(client: Client) -> None:
        if client.transport is None:  # queued: after what is already in the outbox
            with contextlib.suppress(asyncio.QueueFull):
                client.outbox.put_nowait(None)
            return
        client.closed = True
        with contextlib.suppress(Exception):
            await client.ws.close(code=client.close_code, reason=client.ending[:123])

    async def session(self, ws: WebSocket, ip: str, choose: Callable[[dict[str, Any] | None], Dialect],
                      opened: Callable[[Client], None] | None = None,
                      closed: Callable[[Client], None] | None = None) -> None:
        """A socket of any dialect from its accept to its end: ``opened`` sees the new client (a
        path may subscribe it), ``serve`` reads it, ``closed`` sees it go."""
        client = await self.accept(ws, ip)
        try:
            if opened is not None:
                opened(client)
            await self.serve(client, choose)
        finally:
            if closed is not None:
                closed(client)

    async def serve(self, client: Client, choose: Callable[[dict[str, Any] | None], Dialect]) -> None:
        """The read loop of every socket kind, until the client goes away. The first message
        chooses the dialect (``choose`` gets it parsed, or None); each message is checked against
        the limits and refused in the dialect's own words, or handled."""
        dialect: Dialect | None = None
        try:
            while True:
                event = await client.ws.receive()
                if event["type"] == "websocket.disconnect":
                    return
                if client.ending or client.closed:
                    continue
                wait = self._take(client)
                msg, code, reason = _parse(event)
                if dialect is None:
                    dialect = choose(msg)
                if not code and wait:
                    code, reason = "RATE_LIMITED", f"too many messages; retry in {wait:.2f} s"
                if code:
                    dialect.refuse(client, msg, code, reason)
                    client.refused += 1
                    if client.refused >= MAX_REFUSED:
                        self.end(client, FLOODED, f"RATE_LIMITED: {MAX_REFUSED} messages refused in a row")
                    continue
                client.refused = 0
                assert msg is not None
                await dialect.handle(client, msg)
        finally:
            self.disconnect(client)

    def _take(self, client: Client) -> float:
        """0.0 when both the connection's and the address's bucket allow one more message."""
        return client.bucket.take("") or self.per_address.take(client.ip)

    # ------------------------------------------------------------------ channels

    def room(self, client: Client, channels: Iterable[str]) -> bool:
        """Whether ``client`` may hold ``channels`` besides its own (at most ``max_streams``)."""
        return len(client.channels.union(channels)) <= self.max_streams

    def subscribe(self, client: Client, channel: str) -> None:
        client.channels.add(channel)
        self.by_channel.setdefault(channel, set()).add(client)
        if channel in PRIVATE and client.account is not None:
            self.by_account.setdefault(client.account, set()).add(client)

    def unsubscribe(self, client: Client, channel: str) -> None:
        client.channels.discard(channel)
        client.names.pop(channel, None)
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
        self._fan_out(subs, json.dumps(message, separators=(",", ":")))

    def publish_raw(self, channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` as it is (no channel field): for other dialects' streams. A client of
        combined streams gets it as ``{"stream": <its name for the channel>, "data": message}``."""
        subs = self.by_channel.get(channel)
        if not subs:
            return
        plain = [c for c in subs if not c.combined]
        if plain:
            self._fan_out(plain, json.dumps(message, separators=(",", ":")))
        by_name: dict[str, list[Client]] = {}
        for c in subs:
            if c.combined:
                by_name.setdefault(c.names.get(channel, channel), []).append(c)
        for name, clients in by_name.items():
            self._fan_out(clients, json.dumps({"stream": name, "data": message}, separators=(",", ":")))

    def _fan_out(self, clients: Iterable[Client], text: str) -> None:
        data = frame(text)
        for c in list(clients):
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

    # ------------------------------------------------------------------ grants and revocation

    def grant(self, client: Client, role: str, grant: Grant) -> None:
        self.ungrant(client, role)
        client.grants[role] = grant
        self.by_user.setdefault(grant.user_id, set()).add(client)

    def ungrant(self, client: Client, role: str) -> None:
        old = client.grants.pop(role, None)
        if old is not None and all(g.user_id != old.user_id for g in client.grants.values()):
            holders = self.by_user.get(old.user_id)
            if holders is not None:
                holders.discard(client)
                if not holders:
                    del self.by_user[old.user_id]

    def revoke(self, user_id: int, credential: bytes | str) -> int:
        """Close every connection holding a grant of this session (its token's SHA-256 digest) or
        API key; the number closed."""
        why = "the session was logged out" if isinstance(credential, bytes) else "the API key was revoked"
        ended = 0
        for client in list(self.by_user.get(user_id, ())):
            if any(g.credential == credential for g in client.grants.values()):
                self.end(client, REVOKED, f"AUTH_REVOKED: {why}")
                ended += 1
        return ended

    async def revoked(self, user_id: int, credential: bytes | str) -> None:
        """``Accounts.on_revoke``'s hook."""
        self.revoke(user_id, credential)

    async def recheck(self, client: Client) -> None:
        """Before a private operation: check every grant of ``client`` again. One that no longer
        holds ends the connection and raises AuthError AUTH_REVOKED (the caller's answer to this
        operation still goes out before the close)."""
        if self.accounts is None:
            return
        for grant in list(client.grants.values()):
            try:
                await grant.check(self.accounts, client.ip)
            except AuthError as e:
                self.end(client, REVOKED, f"AUTH_REVOKED: {e.reason}")
                raise AuthError("AUTH_REVOKED", e.reason, 401) from None

    async def _sweep(self) -> None:
        """Every SWEEP_S: end the connections whose grants no longer hold (an expired session, a key
        whose permissions or allow-list changed, a revocation another process could not announce)."""
        assert self.accounts is not None
        while True:
            await asyncio.sleep(SWEEP_S)
            verdicts: dict[tuple[Grant, str], str] = {}
            failed = 0
            for client in [c for holders in self.by_user.values() for c in holders]:
                for grant in list(client.grants.values()):
                    seen = verdicts.get((grant, client.ip))
                    if seen is None:
                        try:
                            await grant.check(self.accounts, client.ip)
                            seen = ""
                        except AuthError as e:
                            seen = e.reason
                        except Exception:  # the database is away: nothing is known to have ended
                            failed += 1
                            seen = ""
                        verdicts[(grant, client.ip)] = seen
                    if seen:
                        self.end(client, REVOKED, f"AUTH_REVOKED: {seen}")
                        break
            if failed:
                log.warning("event=ws_recheck_failed grants=%d", failed)


def _parse(event: MutableMapping[str, Any]) -> tuple[dict[str, Any] | None, str, str]:
    """(the message, "", "") or (maybe the message, refusal code, reason)."""
    raw: str | bytes | None = event.get("text")
    if raw is None:
        raw = event.get("bytes") or b""
    if len(raw) > MAX_MESSAGE:
        return None, "MESSAGE_TOO_LARGE", f"messages are limited to {MAX_MESSAGE} bytes"
    try:
        msg = json.loads(raw)
    except ValueError:
        return None, "INVALID_JSON", "messages are JSON objects"
    if not isinstance(msg, dict):
        return None, "INVALID_JSON", "messages are JSON objects"
    return msg, "", ""
