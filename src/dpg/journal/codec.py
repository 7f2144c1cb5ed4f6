"""The journal's encoding of a command: MessagePack of ``[kind, field, field, ...]``.

Kinds are stable numbers (never reused), each written on its command class (``KIND``); fields
follow the dataclass's field order. Enums are stored as their integer values and restored on
decode, so decode(encode(c)) == c.
"""

from __future__ import annotations

from dataclasses import fields
from enum import IntEnum
from typing import Any

from dpg.core.bigint import HI, packb, unpackb, wrap
from dpg.core.commands import COMMANDS, Command, ListMarket, ListPerp, PlaceOrder
from dpg.core.model import STP, OrderType, Side

KINDS: dict[type, int] = {cls: cls.KIND for cls in COMMANDS}  # each command class carries its kind
CLASSES: dict[int, type] = {v: k for k, v in KINDS.items()}
_ENUMS: dict[type, tuple[tuple[int, type[IntEnum]], ...]] = {
    PlaceOrder: ((2, Side), (3, OrderType), (8, STP)),
}
# each enum field's members by value: a dict lookup is a tenth of an enum's call (a replay decodes
# every order); a value not in it is looked up by the enum itself, which raises its usual ValueError
_MEMBERS: dict[type, tuple[tuple[int, type[IntEnum], dict[int, IntEnum]], ...]] = {
    cls: tuple((i, enum, {int(m): m for m in enum}) for i, enum in fields_) for cls, fields_ in _ENUMS.items()}
_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in KINDS}
_LISTINGS = (ListMarket, ListPerp)  # their last field, ``ref``, is left out when empty

def _field(v: Any) -> Any:
    return wrap(v) if type(v) is int else v


def encode(cmd: Command) -> bytes:
    cls = type(cmd)
    if cls is PlaceOrder:
        c: Any = cmd
        # the short form (no flags field): every spot order; a perpetual's order with flags takes the long one
        if 0 <= c.price < HI and 0 <= c.qty < HI and 0 <= c.quote_qty < HI and 0 <= c.stop_price < HI and not c.flags:
            return packb((PlaceOrder.KIND, c.account, c.market, int(c.side), int(c.otype), c.price, c.qty, c.quote_qty,
                          c.client_id, int(c.stp), c.stop_price))
    values = [_field(getattr(cmd, f)) for f in _FIELDS[cls]]
    if cls in _LISTINGS and not values[-1]:
        values.pop()  # the short form of a listing without a decision's reference: as before references were
    return packb((KINDS[cls], *values))


def decode(payload: bytes) -> Command:
    kind, *values = unpackb(payload)
    cls = CLASSES[kind]
    for i, enum, members in _MEMBERS.get(cls, ()):
        v = values[i]
        values[i] = members[v] if v in members else enum(v)
    if cls is ListPerp:
        values[8] = tuple(tuple(row) for row in values[8])
    cmd: Command = cls(*values)
    return cmd


def kind_name(cmd: Command) -> str:
    return type(cmd).__name__
