"""Encoding of what crosses Redis: commands (the journal's codec), replies and event batches
(MessagePack, integers of any size)."""

from __future__ import annotations

from typing import Any

from dpg.core.bigint import HI, LO, packb, unpackb, wrap
from dpg.core.events import MARKET_LISTED, Event, named
from dpg.journal.codec import decode, encode

Batch = list[tuple[int, int, list[Event]]]  # (seq, ts, events) of consecutive commands


def _plain(ev: Event) -> list[Any]:
    if ev[0] == MARKET_LISTED:  # the listing command travels in the journal's encoding
        return [*ev[:-1], encode(ev[-1])]
    return [wrap(x) if type(x) is int and not LO <= x < HI else x for x in ev]


def _named(raw: list[Any]) -> Event:
    if raw[0] == MARKET_LISTED:
        raw[-1] = decode(raw[-1])
    return named(raw)


def pack_events(events: list[Event]) -> list[list[Any]]:
    return [_plain(e) for e in events]


def unpack_events(raw: list[list[Any]]) -> list[Event]:
    """The events as the engine emitted them: named tuples, read by name."""
    return [_named(e) for e in raw]


def pack_reply(request_id: str, seq: int, events: list[Event]) -> bytes:
    return packb([request_id, seq, pack_events(events)])


def unpack_reply(data: bytes) -> tuple[str, int, list[Event]]:
    rid, seq, raw = unpackb(data)
    return rid, seq, unpack_events(raw)


def pack_batch(batch: Batch) -> bytes:
    return packb([[seq, ts, pack_events(events)] for seq, ts, events in batch])


def unpack_batch(data: bytes) -> Batch:
    return [(seq, ts, unpack_events(raw)) for seq, ts, raw in unpackb(data)]
