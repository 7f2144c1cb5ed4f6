"""Projections on the real PostgreSQL: every balance movement is in the ledger entries with the
command that caused it, and orders and trades agree with the engine; a rebuild from the journal
gives the same tables."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from dpg.bench.engine_bench import dpg_commands
from dpg.bench.workload import mixed
from dpg.config import Settings
from dpg.core.commands import Credit, OpenAccount
from dpg.core.engine import Engine
from dpg.journal.journal import Journal
from dpg.store import follower
from dpg.store.projection import Projector
from dpg.system.node import Node


def _load(url: str, n: int) -> Engine:
    node = Node.open(url, Settings.from_env({}), projections=False)
    for a in range(1, 51):
        node.sequencer.submit(OpenAccount(a))
        node.sequencer.submit(Credit(a, "BTC", 10**12, f"b{a}"))
        node.sequencer.submit(Credit(a, "USDT", 10**14, f"u{a}"))
    for cmd in dpg_commands(mixed(n, seed=3, accounts=50)):
        node.sequencer.submit(cmd)
    node.sequencer.submit_wait(Credit(1, "USD", 1, "fence"))
    node.close()
    return node.engine


def _tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as c:
        return {
            "orders": c.execute("SELECT * FROM orders ORDER BY order_id").fetchall(),
            "trades": c.execute("SELECT * FROM trades ORDER BY trade_id").fetchall(),
            "ledger": c.execute("SELECT * FROM ledger_entries ORDER BY seq, n").fetchall(),
        }


def _check_against(engine: Engine, url: str) -> None:
    with psycopg.connect(url) as c:
        sums = c.execute(
            "SELECT account, asset, sum(d_available), sum(d_locked) FROM ledger_entries GROUP BY account, asset"
        ).fetchall()
        got = {(int(a), s): (int(av), int(lk)) for a, s, av, lk in sums}
        for acct, vec in engine.balances.items():
            for asset in engine.assets:
                want = (vec[2 * asset.index], vec[2 * asset.index + 1])
                assert got.get((acct, asset.symbol), (0, 0)) == want, (acct, asset.symbol)
        (n_trades,) = c.execute("SELECT count(*) FROM trades").fetchone() or (0,)
        assert n_trades == engine.next_trade_id - 1
        open_rows = c.execute(
            "SELECT order_id, qty - filled FROM orders WHERE status IN ('open', 'partially_filled') ORDER BY order_id"
        ).fetchall()
        live = sorted((o.oid, o.remaining * engine.markets[o.market].lot_size) for o in engine.orders.values())
        assert [(int(a), int(b)) for a, b in open_rows] == live
        bad = c.execute("SELECT count(*) FROM orders WHERE status = 'filled' AND filled <> qty").fetchone()
        assert bad == (0,)
        # every ledger entry points at a journaled command
        orphans = c.execute(
            "SELECT count(*) FROM ledger_entries l LEFT JOIN journal j ON j.seq = l.seq WHERE j.seq IS NULL"
        ).fetchone()
        assert orphans == (0,)
        (total,) = c.execute("SELECT coalesce(sum(d_available + d_locked), 0) FROM ledger_entries"
                             " WHERE asset = 'BTC'").fetchone() or (Decimal(0),)
        assert int(total) == engine.credits[0] - engine.debits[0]
        # every entry's running balance is its account's available + locked of the asset after it
        (wrong, entries) = c.execute(
            "SELECT count(*) FILTER (WHERE balance IS DISTINCT FROM running), count(*) FROM (SELECT balance,"
            " sum(d_available + d_locked) OVER (PARTITION BY account, asset ORDER BY seq, n) AS running"
            " FROM ledger_entries) x").fetchone() or (None, None)
        assert (wrong, entries > 0) == (0, True)


def test_projections_match_the_engine_and_rebuild_identically(pg_url: str) -> None:
    engine = _load(pg_url, 6_000)
    journal = Journal(pg_url)
    projector = Projector(pg_url)
    follower.catch_up(journal, projector)
    assert projector.written_seq == engine.seq
    _check_against(engine, pg_url)
    first = _tables(pg_url)
    assert first["trades"] and first["ledger"] and first["orders"]
    projector.truncate()
    follower.catch_up(journal, projector)
    assert _tables(pg_url) == first
    projector.close()
    journal.close()


def test_the_background_writer_in_small_batches_writes_the_same_tables(pg_url: str, monkeypatch: Any) -> None:
    """The follower's writer thread stores batch after batch while the next is applied: orders
    created in one batch and filled or cancelled in later ones, and the running balances across
    batches, come out as one batch written in the caller's thread writes them."""
    engine = _load(pg_url, 4_000)
    journal = Journal(pg_url)
    projector = Projector(pg_url)
    follower.catch_up(journal, projector)
    whole = _tables(pg_url)
    projector.truncate()
    projector.close()
    monkeypatch.setattr(follower, "BATCH", 97)  # many batches, each an order's life split over several
    background = Projector(pg_url, background=True)
    replica = follower.catch_up(journal, background)
    background.flush()
    assert background.checkpoint() == engine.seq
    assert _tables(pg_url) == whole
    _check_against(engine, pg_url)
    # and what step() writes after the catch-up, in the background too
    node = Node.open(pg_url, Settings.from_env({}), projections=False)
    for cmd in dpg_commands(mixed(1_500, seed=4, accounts=50)):
        node.sequencer.submit(cmd)
    node.sequencer.submit_wait(Credit(1, "USD", 1, "fence-2"))
    node.close()
    assert follower.step(replica, journal, background) > 1_500
    background.flush()
    assert background.checkpoint() == node.engine.seq
    _check_against(node.engine, pg_url)
    stepped = _tables(pg_url)
    background.truncate()
    background.close()
    foreground = Projector(pg_url)
    follower.catch_up(journal, foreground)
    assert _tables(pg_url) == stepped
    foreground.close()
    journal.close()


def test_catch_up_resumes_after_its_checkpoint(pg_url: str) -> None:
    engine = _load(pg_url, 2_000)
    journal = Journal(pg_url)
    projector = Projector(pg_url)
    # project only the first half, as if the follower had stopped there
    half = engine.seq // 2
    from dpg.journal.recovery import recover

    buf: list[Any] = []
    at_half: dict[int, list[int]] = {}

    def upto_half(e: Engine, a: Any) -> None:
        if a.seq <= half:
            buf.append(a)
        if a.seq == half:
            at_half.update({acct: list(vec) for acct, vec in e.balances.items()})

    recover(journal, from_snapshot=False, on_applied=upto_half)
    projector.bind(engine.assets, engine.markets)
    projector.write(buf, at_half)
    assert projector.checkpoint() == half
    follower.catch_up(journal, projector)
    _check_against(engine, pg_url)
    projector.close()
    journal.close()


def test_the_follower_process_keeps_projections_current(pg_url: str) -> None:
    node = Node.open(pg_url, Settings.from_env({}), projections=True)
    try:
        node.sequencer.submit(OpenAccount(1))
        node.sequencer.submit(OpenAccount(2))
        node.sequencer.submit_wait(Credit(1, "USDT", 10**12, "a"))
        node.sequencer.submit_wait(Credit(2, "BTC", 10**10, "b"))
        for cmd in dpg_commands(mixed(500, seed=5, accounts=2)):
            node.sequencer.submit(cmd)
        seq, _ = node.sequencer.submit_wait(Credit(1, "USD", 1, "fence"))
        assert follower.wait_caught_up(pg_url, seq, 60)
        _check_against(node.engine, pg_url)
    finally:
        node.close()
    assert node.follower is not None and node.follower.proc.returncode is not None


def test_an_epoch_records_every_balance_at_its_seq_while_trading_goes_on(pg_url: str) -> None:
    from dpg.core.commands import MarkEpoch
    from dpg.journal.recovery import recover

    node = Node.open(pg_url, Settings.from_env({}), projections=False)
    for a in range(1, 21):
        node.sequencer.submit(OpenAccount(a))
        node.sequencer.submit(Credit(a, "BTC", 10**10, f"b{a}"))
        node.sequencer.submit(Credit(a, "USDT", 10**12, f"u{a}"))
    cmds = list(dpg_commands(mixed(3_000, seed=9, accounts=20)))
    for cmd in cmds[:1_500]:
        node.sequencer.submit(cmd)
    mark_seq, events = node.sequencer.submit_wait(MarkEpoch(1_795_564_800))
    assert events[0][1] == 1_795_564_800
    for cmd in cmds[1_500:]:
        node.sequencer.submit(cmd)
    node.sequencer.submit_wait(Credit(1, "USD", 1, "fence"))
    node.close()

    expected: dict[tuple[str, int], int] = {}

    def at_mark(engine: Engine, a: Any) -> None:
        if a.seq == mark_seq:
            for acct, vec in engine.balances.items():
                for asset in engine.assets:
                    total = vec[2 * asset.index] + vec[2 * asset.index + 1]
                    if acct > 0 and total:
                        expected[(asset.symbol, acct)] = total

    journal = Journal(pg_url)
    recover(journal, from_snapshot=False, on_applied=at_mark)
    projector = Projector(pg_url)
    follower.catch_up(journal, projector)
    with psycopg.connect(pg_url) as c:
        rows = c.execute("SELECT asset, account, balance FROM por_balances WHERE epoch = 1795564800").fetchall()
        assert c.execute("SELECT seq FROM por_epochs").fetchall() == [(mark_seq,)]
    assert {(s, int(a)): int(b) for s, a, b in rows} == expected
    assert len(expected) > 20
    # replaying again records nothing twice
    assert projector.write_epoch(1_795_564_800, mark_seq, 0, recover(journal)) is False
    projector.close()
    journal.close()


def test_stop_orders_keep_their_stop_price_and_trigger_whatever_the_batches(pg_url: str) -> None:
    from dpg.core import events as E
    from dpg.core.commands import PlaceOrder
    from dpg.core.model import OrderType, Side
    from dpg.journal.recovery import recover

    tick, lot, p = 10_000, 10_000, 2_000_000  # BTC/USDT: 0.01 USDT, 0.0001 BTC; 20,000.00 USDT
    node = Node.open(pg_url, Settings.from_env({}), projections=False)
    for a in (1, 2):
        node.sequencer.submit(OpenAccount(a))
        node.sequencer.submit(Credit(a, "BTC", 10**9, f"b{a}"))
        node.sequencer.submit(Credit(a, "USDT", 10**12, f"u{a}"))

    def place(account: int, side: Side, otype: OrderType, ticks: int, stop: int = 0) -> int:
        _, ev = node.sequencer.submit_wait(PlaceOrder(account, "BTC/USDT", side, otype, ticks * tick, 10 * lot,
                                                      stop_price=stop * tick))
        assert ev[0][0] == E.ORDER_NEW, ev
        return int(ev[0][1])

    place(2, Side.SELL, OrderType.LIMIT, p)
    place(1, Side.BUY, OrderType.LIMIT, p)  # the last price: p
    fires = place(1, Side.BUY, OrderType.STOP_LIMIT, p + 200, stop=p + 100)
    waits = place(1, Side.BUY, OrderType.STOP_LIMIT, p + 20_000, stop=p + 10_000)
    place(2, Side.SELL, OrderType.LIMIT, p + 100)
    place(1, Side.BUY, OrderType.LIMIT, p + 100)  # the last price reaches fires' stop
    node.close()
    assert fires not in node.engine.orders or not node.engine.orders[fires].stop
    assert node.engine.orders[waits].stop

    def rows() -> dict[int, tuple[Any, ...]]:
        with psycopg.connect(pg_url) as c:
            got = c.execute("SELECT order_id, stop_price, triggered FROM orders WHERE order_id IN (%s, %s)",
                            (fires, waits)).fetchall()
        return {int(r[0]): (int(r[1]), r[2]) for r in got}

    want = {fires: ((p + 100) * tick, True), waits: ((p + 10_000) * tick, False)}
    journal = Journal(pg_url)
    projector = Projector(pg_url)
    one_by_one: list[Any] = []
    recover(journal, from_snapshot=False,
            on_applied=lambda e, a: one_by_one.append((a, {k: list(v) for k, v in e.balances.items()})))
    projector.bind(node.engine.assets, node.engine.markets)
    for a, balances in one_by_one:  # each command its own batch: the trigger updates a row written before
        projector.write([a], balances)
    assert rows() == want
    projector.truncate()
    follower.catch_up(journal, projector)  # one batch: the row is written triggered
    assert rows() == want
    projector.close()
    journal.close()


def test_ledger_entries_carry_the_running_balance_and_the_chain_transaction(pg_url: str) -> None:
    from dpg.core.commands import CompleteWithdrawal, FailWithdrawal, RequestWithdrawal

    deposit_tx, payout_tx = "0x" + "ab" * 32, "0x" + "cd" * 32
    node = Node.open(pg_url, Settings.from_env({}), projections=False)
    for cmd in (OpenAccount(5), Credit(5, "ETH", 3 * 10**18, f"ethereum:{deposit_tx}:7"),  # a chain deposit (watcher)
                Credit(5, "ETH", 10**18, "bank-transfer-42"),  # an operator's credit
                RequestWithdrawal(5, "ETH", 2 * 10**18, "0x" + "01" * 32, "ethereum:0x" + "22" * 20),
                CompleteWithdrawal("0x" + "01" * 32, f"ethereum:{payout_tx}"),  # the payout (broadcaster)
                RequestWithdrawal(5, "ETH", 10**17, "0x" + "02" * 32, "polygon:0x" + "22" * 20),
                FailWithdrawal("0x" + "02" * 32, "cancelled by the user")):
        _, events = node.sequencer.submit_wait(cmd)
        assert events and events[0][0] != 0, (cmd, events)  # none rejected
    node.close()
    journal = Journal(pg_url)
    projector = Projector(pg_url)
    follower.catch_up(journal, projector)
    projector.close()
    journal.close()
    with psycopg.connect(pg_url) as c:
        rows = c.execute("SELECT cause, d_available, d_locked, balance, chain, tx_hash FROM ledger_entries"
                         " WHERE account = 5 AND asset = 'ETH' ORDER BY seq, n").fetchall()
    e18 = 10**18
    assert [(cause, int(da), int(dl), int(b), ch, tx) for cause, da, dl, b, ch, tx in rows] == [
        ("credit", 3 * e18, 0, 3 * e18, "ethereum", deposit_tx),
        ("credit", e18, 0, 4 * e18, None, None),
        ("lock", -2 * e18, 2 * e18, 4 * e18, None, None),
        ("withdrawal", 0, -2 * e18, 2 * e18, "ethereum", payout_tx),
        ("lock", -e18 // 10, e18 // 10, 2 * e18, None, None),
        ("unlock", e18 // 10, -e18 // 10, 2 * e18, None, None),
    ]


def test_perpetual_positions_fundings_and_liquidations_are_projected(pg_url: str) -> None:
    from dpg.core.commands import Funding, IndexPrice, PlaceOrder
    from dpg.core.genesis import PERPS
    from dpg.core.model import OrderType, Side

    node = Node.open(pg_url, Settings.from_env({}), projections=False)
    for cmd in PERPS:
        node.sequencer.submit(cmd)  # refused as a duplicate where the node lists them itself
    node.sequencer.submit(IndexPrice("BTC-PERP", 50_000 * 10**6))
    for a in range(1, 22):
        node.sequencer.submit(OpenAccount(a))
        node.sequencer.submit(Credit(a, "USDT", 10**10 if a < 21 else 10**8, f"u{a}"))  # account 21: 100 USDT
    for cmd in dpg_commands(mixed(3_000, seed=4, accounts=20), "BTC-PERP"):
        node.sequencer.submit(cmd)
    # account 21 buys 0.03 BTC at 20x with its 100 USDT (up to 60,000: it takes the asks near 50,000)
    node.sequencer.submit(PlaceOrder(21, "BTC-PERP", Side.BUY, OrderType.IOC, 60_000 * 10**6, 3 * 10**6))
    node.sequencer.submit(IndexPrice("BTC-PERP", 30_000 * 10**6))  # a crash: account 21 is liquidated
    node.sequencer.submit(Funding("BTC-PERP"))  # refused unless due: either way journaled
    node.sequencer.submit_wait(Credit(1, "USD", 1, "fence"))
    node.close()
    engine = node.engine
    journal = Journal(pg_url)
    projector = Projector(pg_url)
    follower.catch_up(journal, projector)
    _check_against(engine, pg_url)
    with psycopg.connect(pg_url) as c:
        last = c.execute("SELECT DISTINCT ON (account, market) account, market, size, cost, margin"
                         " FROM position_changes ORDER BY account, market, seq DESC, n DESC").fetchall()
        (liquidated,) = c.execute("SELECT count(*) FROM liquidations").fetchone() or (0,)
    mi = engine.market_by_symbol["BTC-PERP"].index
    want = {(a, "BTC-PERP"): (p.size * engine.markets[mi].lot_size, p.cost, p.margin)
            for (a, m), p in engine.fut.positions.items() if m == mi and (p.size or p.cost)}
    got = {(int(a), m): (int(s), int(c), int(g)) for a, m, s, c, g in last if int(s) or int(c)}
    assert got == want and want
    assert liquidated > 0
    projector.close()
    journal.close()


def test_the_stakers_reserve_is_a_liability_at_an_epoch_and_the_exchanges_own_accounts_are_not(
        pg_url: str) -> None:
    from dpg.core.commands import MarkEpoch, PayStakers, SetStakerShare
    from dpg.core.model import FEE_ACCOUNT, INSURANCE_ACCOUNT, STAKERS_ACCOUNT
    from tests.core.helpers import Desk
    from tests.core.test_governance import traded

    d = Desk()
    traded(d)
    d.apply(SetStakerShare(250_000, ""))
    d.apply(PayStakers("USDT", "stakers:0"))
    reserve = d.engine.balance(STAKERS_ACCOUNT, "USDT")[0]
    assert reserve > 0 and d.engine.balance(FEE_ACCOUNT, "USDT")[0] > 0
    assert d.engine.balance(INSURANCE_ACCOUNT, "USDT")[0] > 0
    d.apply(MarkEpoch(1_795_564_800))
    projector = Projector(pg_url)
    assert projector.write_epoch(1_795_564_800, d.engine.seq, 0, d.engine)
    projector.close()
    with psycopg.connect(pg_url) as c:
        rows = c.execute("SELECT asset, account, balance FROM por_balances WHERE epoch = 1795564800"
                         " AND account <= 0").fetchall()
    assert [(s, int(a), int(b)) for s, a, b in rows] == [("USDT", STAKERS_ACCOUNT, reserve)]
