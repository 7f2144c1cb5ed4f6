"""MessagePack for integers of any size: amounts reach 2**127 (ETH in wei), MessagePack stops at
64 bits. An integer outside [-2**63, 2**64) travels as extension type 1 holding its signed
big-endian bytes; ``unpackb`` here turns it back into an ``int``."""

from __future__ import annotations

from typing import Any

import msgpack

BIG = 1
LO = -(1 << 63)
HI = 1 << 64


def wrap(v: int) -> Any:
    if LO <= v < HI:
        return v
    return msgpack.ExtType(BIG, v.to_bytes((v.bit_length() + 8) // 8, "big", signed=True))


def _ext_hook(code: int, data: bytes) -> Any:
    if code == BIG:
        return int.from_bytes(data, "big", signed=True)
    return msgpack.ExtType(code, data)


def packb(obj: Any) -> bytes:
    packed: bytes = msgpack.packb(obj, use_bin_type=True)  # typed here: the core's build has no msgpack stubs
    return packed


def unpackb(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook)
