"""The perpetuals' index and funding scheduler in the node process: the spot mid becomes the index,
the index a mark price; funding is asked for once its time has come."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from dpg.config import Settings
from dpg.core import events as E
from dpg.core.commands import CancelOrder, Credit, Funding, IndexPrice, OpenAccount, PlaceOrder
from dpg.core.model import OrderType, Side
from dpg.journal.journal import Applied
from dpg.system.node import Node
from dpg.system.perps import PerpScheduler, SpotMids

USDT = 10**6
BTC = 10**8


def test_a_spot_mid_becomes_the_perpetuals_index_and_a_mark_price(pg_url: str) -> None:
    marks: list[E.MarkPrice] = []

    def sink(batch: Sequence[Applied]) -> None:
        marks.extend(cast(E.MarkPrice, ev) for a in batch for ev in a.events if ev[0] == E.MARK_PRICE)

    node = Node.open(pg_url, Settings.from_env({"DPG_INDEX_EVERY_MS": "50"}), projections=False, sinks=[sink])
    sched = PerpScheduler(node.sequencer, node.mids, 50)
    try:
        sched.start()
        time.sleep(0.3)
        assert sched.ticks == 0 and not marks  # no spot book yet: no index
        sub = node.sequencer.submit_wait
        sub(OpenAccount(1))
        sub(Credit(1, "USDT", 1_000_000 * USDT, "t-usdt"))
        sub(Credit(1, "BTC", 10 * BTC, "t-btc"))
        sub(PlaceOrder(1, "BTC/USDT", Side.BUY, OrderType.LIMIT, 49_000 * USDT, BTC // 10))
        assert node.mids.best("BTC/USDT") is None  # one side only
        sub(PlaceOrder(1, "BTC/USDT", Side.SELL, OrderType.LIMIT, 51_000 * USDT, BTC // 10))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not marks:
            time.sleep(0.05)
        assert node.mids.mid("BTC/USDT") == 50_000 * USDT
        assert marks and marks[0].market == 4 and marks[0].index_price == 50_000 * USDT and marks[0].mark > 0
        assert node.engine.fut.perps[4].index == 50_000 * USDT
        assert node.engine.fut.perps[5].index == 0  # ETH/USDT has no book: ETH-PERP gets no index
    finally:
        sched.stop()
        node.close()


class _FakeSequencer:
    """What the scheduler reads of a sequencer: its engine, its time, and submit."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.last_ts = 0
        self.sent: list[object] = []

    def submit(self, cmd: object, callback: Any = None) -> None:
        self.sent.append(cmd)
        if callback is not None:
            callback(1, E.rejected("FUNDING_NOT_DUE", "not yet") if isinstance(cmd, Funding) else [])


def test_funding_is_asked_for_once_when_its_time_has_come(pg_url: str) -> None:
    node = Node.open(pg_url, Settings.from_env({}), projections=False)
    try:
        fake = _FakeSequencer(node.engine)
        sched = PerpScheduler(fake, SpotMids(node.engine), 1_000)  # type: ignore[arg-type]
        pm = node.engine.fut.perps[4]
        sched.tick()
        assert fake.sent == []  # no index tick yet: no funding time
        pm.next_funding = 8 * 3600 * 1000  # ms
        fake.last_ts = (pm.next_funding - 1) * 1_000_000  # ns: a millisecond early
        sched.tick()
        assert fake.sent == []
        fake.last_ts = pm.next_funding * 1_000_000
        sched.tick()
        sched.tick()  # asked once for this funding time (the engine's answer is awaited, not repeated)
        assert fake.sent == [Funding("BTC-PERP")]
        assert not any(isinstance(c, IndexPrice) for c in fake.sent)
    finally:
        node.close()


def test_spot_mids_answer_the_books_as_committed_and_forget_reads_of_batches_that_never_were() -> None:
    from dpg.core.engine import Engine
    from dpg.core.genesis import GENESIS

    engine = Engine()
    applied: list[Applied] = []

    def run(*cmds: Any) -> Applied:
        for cmd in cmds:
            seq = engine.seq + 1
            applied.append(Applied(seq, seq, cmd, engine.apply(cmd, seq, seq)))
        return applied[-1]

    run(*GENESIS, OpenAccount(1), Credit(1, "USDT", 10**6 * USDT, "u"), Credit(1, "BTC", 10 * BTC, "b"))
    mids = SpotMids(engine)  # as recovered: committed
    assert mids.best("BTC/USDT") is None and mids.seq == engine.seq
    bid = run(PlaceOrder(1, "BTC/USDT", Side.BUY, OrderType.LIMIT, 49_000 * USDT, BTC // 10))
    ask = run(PlaceOrder(1, "BTC/USDT", Side.SELL, OrderType.LIMIT, 51_000 * USDT, BTC // 10))
    mids.observe(engine, ask)  # the engine thread read the books after the batch [bid, ask] ...
    assert mids.best("BTC/USDT") is None  # ... not committed yet
    mids([bid, ask])
    assert mids.mid("BTC/USDT") == 50_000 * USDT and mids.seq == ask.seq
    # a batch applied and read, whose commit then failed: the journal never had it
    lost = run(PlaceOrder(1, "BTC/USDT", Side.BUY, OrderType.LIMIT, 50_500 * USDT, BTC // 10))
    mids.observe(engine, lost)
    # the engine is rebuilt without it (here: the order cancelled), and its number holds another command
    oid = cast(E.OrderNew, lost.events[0]).oid
    run(CancelOrder(1, "BTC/USDT", oid))
    other = Applied(lost.seq, lost.ts, lost.cmd, [])
    mids.observe(engine, other)
    assert mids.seq == ask.seq  # nothing committed since
    mids([other])
    assert mids.seq == other.seq and mids.mid("BTC/USDT") == 50_000 * USDT  # not the lost bid's 50,750
    # a batch whose commit failed but which the journal did hold (known on resume) stands once fed
    held = run(PlaceOrder(1, "BTC/USDT", Side.BUY, OrderType.LIMIT, 50_500 * USDT, BTC // 10))
    mids.observe(engine, held)
    mids([held])
    assert mids.mid("BTC/USDT") == 50_750 * USDT and mids.seq == held.seq
    # reads of a longer lost run (numbers past the next commit's) do not hold back the ones after them
    mids.observe(engine, Applied(held.seq + 5, held.ts, held.cmd, []))
    run(CancelOrder(1, "BTC/USDT", cast(E.OrderNew, held.events[0]).oid))
    after = applied[-1]
    mids.observe(engine, after)
    mids([after])
    assert mids.seq == after.seq and mids.mid("BTC/USDT") == 50_000 * USDT
    assert mids.best("ETH/USDT") is None and mids.best("NOPE/USDT") is None
