"""The one check of an API-key signed request, for every dialect (DPG's REST and WebSocket,
Binance's REST and WebSocket API): each dialect says what its signature covers and words the
refusals its own way; the timestamp, the receive window and the signature are checked here."""

from __future__ import annotations

from dpg.identity import Accounts

DEFAULT_RECV_WINDOW = 5000  # ms, when a signed request names none


class MalformedSignature(Exception):
    """The timestamp or the receive window is not a whole number of milliseconds (``field`` says which)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} must be a whole number of milliseconds")
        self.field = field


def whole_number(text: str, digits: int) -> int | None:
    """A non-negative integer written with 1 to ``digits`` ASCII digits, else None (``str.isdigit``
    alone lets through "²", which ``int`` refuses)."""
    return int(text) if 0 < len(text) <= digits and text.isascii() and text.isdigit() else None


def _ms(value: str | int, digits: int) -> int | None:
    """A time in ms as sent: a JSON integer as it is (the native WebSocket's), text as ``whole_number``."""
    return value if isinstance(value, int) else whole_number(value, digits)


async def verify(accounts: Accounts, key: str, signature: str, payload: bytes, timestamp: str | int,
                 recv_window: str | int | None, ip: str, need: str) -> int:
    """The user behind a signed request (``Accounts.verify_signature``: key, window, clock, HMAC,
    IP allow-list, permission ``need``, replay); MalformedSignature before any of that when the
    timestamp (up to 16 digits) or the receive window (up to 6) is not a whole number."""
    ts = _ms(timestamp, 16)
    if ts is None:
        raise MalformedSignature("timestamp")
    window = DEFAULT_RECV_WINDOW if recv_window is None else _ms(recv_window, 6)
    if window is None:
        raise MalformedSignature("recv_window")
    return await accounts.verify_signature(key, signature, payload, ts, window, ip, need)
