"""What crosses the bus comes back as the engine emitted it: named events, big integers whole."""

from __future__ import annotations

from dpg.bus import wire
from dpg.core import events as E
from tests.core.helpers import Desk


def test_events_come_back_named_and_equal() -> None:
    d = Desk()
    d.fund(1, "BTC", 10**9)
    d.fund(2, "USDT", 10**12)
    d.order(1, "sell", 2_000_000, 30)
    events = d.order(2, "buy", 2_000_000, 20)
    ((seq, ts, out),) = wire.unpack_batch(wire.pack_batch([(5, 6, events)]))
    assert (seq, ts) == (5, 6) and out == events
    assert [type(e) for e in out] == [type(e) for e in events]
    (trade,) = [e for e in out if e[0] == E.TRADE]
    assert isinstance(trade, E.Trade) and (trade.price, trade.qty) == (20_000 * 10**6, 20 * 10**4)


def test_replies_and_big_amounts_keep_their_names_and_values() -> None:
    _, _, (rej,) = wire.unpack_reply(wire.pack_reply("r", 3, E.rejected("UNAVAILABLE", "stopping")))
    assert isinstance(rej, E.Rejected) and (rej.code, rej.reason) == ("UNAVAILABLE", "stopping")
    big = E.new(E.Balance, (E.BALANCE, 1, 1, 2**126, -(2**126), 4))
    ((_, _, (back,)),) = wire.unpack_batch(wire.pack_batch([(1, 1, [big])]))
    assert isinstance(back, E.Balance) and (back.d_available, back.d_locked) == (2**126, -(2**126))
