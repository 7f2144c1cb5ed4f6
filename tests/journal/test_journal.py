"""The journal and the sequencer on the real PostgreSQL."""

from __future__ import annotations

import hashlib
import itertools
import threading

import psycopg
import pytest

from dpg.core import events as E
from dpg.core import state
from dpg.core.commands import Credit, OpenAccount, PlaceOrder
from dpg.core.engine import Engine
from dpg.core.genesis import GENESIS, PERPS
from dpg.core.model import OrderType, Side
from dpg.journal import codec
from dpg.journal.journal import Journal, JournalGap
from dpg.journal.recovery import recover
from dpg.journal.sequencer import Sequencer


def test_append_and_read_in_order(pg_url: str) -> None:
    j = Journal(pg_url)
    rows = [(i, 1000 + i, codec.encode(Credit(1, "USD", i, f"r{i}"))) for i in range(1, 121_000)]
    j.append(rows[:60_000])
    j.append(rows[60_000:])
    assert j.last_seq() == len(rows)
    assert list(j.read(0)) == rows
    assert [r[0] for r in j.read(100_000)] == list(range(100_001, len(rows) + 1))
    j.close()


def test_a_hole_in_the_journal_is_detected(pg_url: str) -> None:
    j = Journal(pg_url)
    j.append([(1, 1, b"\x90"), (2, 2, b"\x90"), (4, 4, b"\x90")])
    with pytest.raises(JournalGap):
        list(j.read(0))
    j.close()


def test_replies_arrive_only_after_commit(pg_url: str) -> None:
    """Each reply checks, on another connection, that its command is already in the journal."""
    engine = Engine()
    seqr = Sequencer(engine, Journal(pg_url), snapshot_every=10**9)
    seqr.start()
    checker = psycopg.connect(pg_url, autocommit=True)
    seen: list[bool] = []
    done = threading.Event()
    n = 300

    def cb(seq: int, events: list[E.Event]) -> None:
        row = checker.execute("SELECT count(*) FROM journal WHERE seq = %s", (seq,)).fetchone()
        seen.append(bool(row and row[0] == 1))
        if len(seen) == n:
            done.set()

    for cmd in (*GENESIS, *(OpenAccount(a) for a in range(1, 8))):
        seqr.submit_wait(cmd)
    for i in range(n):
        seqr.submit(Credit(1 + i % 7, "USDT", 10**6, f"c{i}"), cb)
    assert done.wait(30)
    assert all(seen) and len(seen) == n
    seqr.stop()
    checker.close()


def test_sequence_numbers_and_times_are_stamped_in_order(pg_url: str) -> None:
    engine = Engine()
    seqr = Sequencer(engine, Journal(pg_url), snapshot_every=10**9)
    seqr.start()
    for cmd in GENESIS:
        seqr.submit_wait(cmd)
    seqr.submit_wait(OpenAccount(1))
    seqr.submit_wait(Credit(1, "USDT", 10**9, "x"))
    seq, events = seqr.submit_wait(PlaceOrder(1, "BTC/USDT", Side.BUY, OrderType.LIMIT, 10**10, 10**5))
    assert events[0][0] == E.ORDER_NEW and seq == len(GENESIS) + 3
    seqr.stop()
    rows = list(Journal(pg_url).read(0))
    assert [r[0] for r in rows] == list(range(1, seq + 1))
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(rows))


@pytest.mark.parametrize("perps", [False, True], ids=["spot", "with-perpetuals"])
def test_snapshots_plus_replay_equal_a_full_replay(pg_url: str, perps: bool) -> None:
    engine = Engine()
    seqr = Sequencer(engine, Journal(pg_url), snapshot_every=50)
    seqr.start()
    for cmd in (*GENESIS, *PERPS) if perps else GENESIS:
        seqr.submit_wait(cmd)
    for i in range(1, 5):
        seqr.submit(OpenAccount(i))
        seqr.submit(Credit(i, "USDT", 10**12, f"u{i}"))
        seqr.submit(Credit(i, "BTC", 10**10, f"b{i}"))
    for k in range(400):
        side = Side.BUY if k % 2 else Side.SELL
        price = (2_000_000 + (k * 7) % 13 - 6) * 10_000
        seqr.submit(PlaceOrder(1 + k % 4, "BTC/USDT", side, OrderType.LIMIT, price, (1 + k % 5) * 10_000))
    seqr.submit_wait(Credit(1, "USD", 1, "fence"))
    seqr.stop()
    live_hash = state.state_hash(engine)
    j = Journal(pg_url)
    snap = j.latest_snapshot()
    assert snap is not None and snap[0] > len(GENESIS)
    assert _check_snapshots(j) >= 1
    replayed: list[int] = []
    assert state.state_hash(recover(j, on_applied=lambda _, a: replayed.append(a.seq))) == live_hash
    assert replayed == list(range(snap[0] + 1, j.last_seq() + 1))  # from the snapshot, whatever its format
    assert state.state_hash(recover(j, from_snapshot=False)) == live_hash
    # a damaged latest snapshot is not trusted: recovery falls back to an older one or the journal
    j.conn.execute("UPDATE snapshots SET body = 'garbage' WHERE seq = %s", (snap[0],))
    j.conn.commit()
    assert state.state_hash(recover(j)) == live_hash
    j.close()


def test_a_failed_commit_halts_the_sequencer(pg_url: str) -> None:
    engine = Engine()
    journal = Journal(pg_url)
    seqr = Sequencer(engine, journal, snapshot_every=10**9)
    seqr.start()
    seqr.submit_wait(GENESIS[0])
    journal.conn.close()  # the database goes away under the writer
    seq, events = seqr.submit_wait(Credit(1, "BTC", 5, "lost"))
    assert seq == 0 and events[0][:2] == (E.REJECTED, "UNAVAILABLE")
    assert seqr.failed is not None
    seq, events = seqr.submit_wait(Credit(1, "BTC", 5, "after"))
    assert seq == 0 and events[0][1] == "UNAVAILABLE"
    seqr.stop()


def _check_snapshots(journal: Journal) -> int:
    """Every stored snapshot is the state a replay of the journal reaches at its seq."""
    rows = journal.conn.execute("SELECT seq, state_hash, body FROM snapshots ORDER BY seq").fetchall()
    journal.conn.commit()
    for seq, digest, body in rows:
        assert hashlib.sha256(body).hexdigest() == digest
        replayed = Engine()
        for s, ts, payload in journal.read(0, until=seq):
            replayed.apply(codec.decode(payload), s, ts)
        assert state.state_hash(replayed) == digest, f"the snapshot at {seq} is not the journal's state"
    return len(rows)


def test_a_snapshot_never_outlives_its_writer(pg_url: str) -> None:
    """A writer snapshots the state after a command that never commits (its journal goes away, as
    when it is killed); the next writer journals other commands at the same sequence numbers. The
    first writer's snapshot must not be stored: a restart from it would not be the journal's state."""
    first = Journal(pg_url)
    a = Sequencer(Engine(), first, snapshot_every=len(GENESIS) + 1)
    a.start()
    for cmd in GENESIS:
        a.submit_wait(cmd)
    first.conn.close()
    seq, events = a.submit_wait(Credit(1, "USDT", 10**6, "lost"))  # applied and snapshotted, never durable
    assert seq == 0 and events[0][1] == "UNAVAILABLE"
    journal = Journal(pg_url)
    b = Sequencer(recover(journal), Journal(pg_url), snapshot_every=3)
    b.start()
    b.submit_wait(OpenAccount(2))
    seq, events = b.submit_wait(Credit(2, "BTC", 10**8, "kept"))
    assert seq == len(GENESIS) + 2 and events[0][0] == E.BALANCE
    seq, events = b.submit_wait(Credit(2, "BTC", 10**8, "kept too"))  # the second writer snapshots here
    assert seq == len(GENESIS) + 3 and events[0][0] == E.BALANCE
    a.stop()  # the first writer's snapshot work is over
    b.stop()  # and the second writer's snapshot is stored
    b.journal.close()
    assert _check_snapshots(journal) == 1
    fresh = recover(journal, from_snapshot=False)
    assert fresh.balance(2, "BTC") == (2 * 10**8, 0) and not fresh.has_account(1)
    assert state.state_hash(recover(journal)) == state.state_hash(fresh)
    journal.close()


def test_a_journal_from_before_open_account_replays_as_it_ran_then_requires_accounts(pg_url: str) -> None:
    """Written before accounts were opened explicitly (no RequireAccounts at its start): its credits
    and transfers opened their accounts by themselves, and a replay does the same; the next start
    opens every signed-up user's account and journals RequireAccounts, and from there on an unknown
    account is refused."""
    from dpg.config import Settings
    from dpg.core.commands import RequireAccounts, Transfer
    from dpg.system.node import Node

    old_genesis = [c for c in GENESIS if not isinstance(c, RequireAccounts)]
    old = [*old_genesis, Credit(1, "USDT", 10**9, "a"), Credit(2, "BTC", 10**8, "b"),
           Transfer(1, 7, "USDT", 5 * 10**6),  # to an account nobody opened: it got the money then
           PlaceOrder(2, "BTC/USDT", Side.SELL, OrderType.LIMIT, 60_000 * 10**6, 10**6)]
    j = Journal(pg_url)
    j.append([(seq, seq, codec.encode(cmd)) for seq, cmd in enumerate(old, start=1)])
    with psycopg.connect(pg_url) as conn:  # a user who signed up then, and account 7 that never did
        conn.execute("INSERT INTO users (id, email, email_skeleton, password_hash, created_at) OVERRIDING SYSTEM"
                     " VALUE VALUES (3, 'c@old.test', 'c@old.test', 'x', now())")
    replayed = recover(j)
    assert not replayed.accounts_required
    assert replayed.balance(7, "USDT") == (5 * 10**6, 0) and replayed.balance(1, "USDT")[0] == 10**9 - 5 * 10**6
    assert replayed.balance(2, "BTC") == (10**8 - 10**6, 10**6)
    j.close()

    node = Node.open(pg_url, Settings.from_env({}), projections=False)
    try:
        e = node.engine
        assert e.accounts_required and e.has_account(3) and e.has_account(7)
        assert e.balance(7, "USDT") == (5 * 10**6, 0)  # nothing was lost on the way
        _, events = node.sequencer.submit_wait(Transfer(1, 8, "USDT", 1))
        assert events[0][:2] == (E.REJECTED, "UNKNOWN_ACCOUNT")
        _, events = node.sequencer.submit_wait(Credit(9, "USDT", 1, "c"))
        assert events[0][:2] == (E.REJECTED, "UNKNOWN_ACCOUNT")
        live = state.state_hash(e)
    finally:
        node.close()
    j = Journal(pg_url)
    fresh = recover(j, from_snapshot=False)
    assert state.state_hash(fresh) == live and fresh.accounts_required
    assert state.state_hash(state.decode(state.encode(fresh))) == live
    j.close()
