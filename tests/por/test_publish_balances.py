"""An epoch's recorded balances stream from por_balances into the packed tree's arrays exactly, with
each account's exit address and its home-chain deposited and withdrawn counters as of the epoch."""

from __future__ import annotations

import random

import psycopg
import pytest

from dpg.config import Settings
from dpg.core.commands import CompleteWithdrawal, Credit, FailWithdrawal, MarkEpoch, OpenAccount, RequestWithdrawal
from dpg.journal.journal import Journal
from dpg.por import packed
from dpg.por import tree as por
from dpg.por.publish import PublishError, read_balances
from dpg.store import follower
from dpg.store.projection import Projector
from dpg.system.node import Node

SECRET = bytes(range(32))


def test_balances_stream_into_arrays_and_the_tree_is_the_reference(pg_url: str) -> None:
    rng = random.Random(11)
    usdt = {a: rng.choice([1, rng.randrange(1, 10**18), (1 << 128) - 1, 1 << 64, (1 << 64) - 1])
            for a in rng.sample(range(1, 1 << 62), 30_000)}  # more than one COPY block
    with psycopg.connect(pg_url) as conn:
        for epoch in (100, 200):
            conn.execute("INSERT INTO por_epochs (epoch, seq, ts) VALUES (%s, 1, %s)", (epoch, epoch))
        with conn.cursor() as cur, cur.copy("COPY por_balances (epoch, asset, account, balance) FROM STDIN") as cp:
            for a, b in usdt.items():
                cp.write_row((100, "USDT", a, b))
            for a in range(1, 50):  # another asset, another epoch: not read
                cp.write_row((100, "BTC", a, 7))
                cp.write_row((200, "USDT", a, 9))
        conn.commit()
        got = read_balances(conn, 100, "USDT", "ethereum")
        assert read_balances(conn, 100, "ETH", "ethereum").accounts.size == 0
    assert got.exits is None and got.counters is None  # nobody has an exit address or a chain movement
    want = sorted(usdt.items())
    assert got.accounts.tolist() == [a for a, _ in want]
    assert [(h << 64) | lo for h, lo in zip(got.hi.tolist(), got.lo.tolist(), strict=True)] == [b for _, b in want]
    params = por.Params(31337, "0x" + "ab" * 20, 100, "USDT")
    ref = por.build(params, [(str(a), b) for a, b in want], SECRET)
    assert packed.build(params, got, SECRET, workers=1).root == ref.root


def _tx(n: int) -> str:
    return "0x" + f"{n:064x}"


def test_counters_and_exit_addresses_are_the_home_chains_as_of_the_epoch(pg_url: str) -> None:
    e18 = 10**18
    epoch = 1_795_564_800
    exit_5, later_5, exit_6 = "0x" + "a5" * 20, "0x" + "b5" * 20, "0x" + "a6" * 20
    node = Node.open(pg_url, Settings.from_env({}), projections=False)

    def run(*cmds: object) -> int:
        seq = 0
        for cmd in cmds:
            seq, events = node.sequencer.submit_wait(cmd)
            assert events and events[0][0] != 0, (cmd, events)  # none rejected
        return seq

    def register(account: int, nonce: int, address: str) -> None:
        with psycopg.connect(pg_url) as conn:
            conn.execute("INSERT INTO exit_addresses (account, nonce, address, signature, chain_id, vault) VALUES"
                         " (%s, %s, %s, %s, 31337, %s)", (account, nonce, address, "0x" + "00" * 65, "0x" + "11" * 20))

    run(OpenAccount(5), OpenAccount(6), OpenAccount(7),
        Credit(5, "ETH", 3 * e18, f"ethereum:{_tx(1)}:0"),  # a home deposit: counted
        Credit(5, "ETH", 2 * e18, f"polygon:{_tx(2)}:0"),  # another chain's: not
        Credit(5, "ETH", e18, "bank-transfer-1"),  # an operator's credit: not
        Credit(5, "USDT", 9, f"ethereum:{_tx(3)}:0"),  # another asset
        Credit(6, "ETH", 5 * e18, f"ethereum:{_tx(4)}:1"),
        RequestWithdrawal(5, "ETH", e18, "w1", "ethereum:0x" + "22" * 20),
        CompleteWithdrawal("w1", f"ethereum:{_tx(5)}"),  # paid by the home Vault: counted
        RequestWithdrawal(5, "ETH", e18 // 2, "w2", "polygon:0x" + "22" * 20),
        CompleteWithdrawal("w2", f"polygon:{_tx(6)}"),  # paid on another chain: not
        RequestWithdrawal(5, "ETH", e18 // 4, "w3", "ethereum:0x" + "22" * 20),
        FailWithdrawal("w3", "cancelled by the user"),  # never debited: not
        RequestWithdrawal(6, "ETH", 2 * e18, "w4", "ethereum:0x" + "22" * 20),  # pending at the epoch: not yet
        Credit(7, "ETH", 4, "bank-transfer-2"))  # no chain movement at all
    register(5, 0, exit_5)
    register(6, 0, exit_6)
    mark = run(MarkEpoch(epoch))
    register(5, 1, later_5)  # after the mark: from the next epoch on
    run(CompleteWithdrawal("w4", f"ethereum:{_tx(7)}"),  # after the mark: not in this epoch
        Credit(5, "ETH", e18, f"ethereum:{_tx(8)}:0"))
    node.close()
    journal = Journal(pg_url)
    projector = Projector(pg_url)
    follower.catch_up(journal, projector)
    projector.close()
    journal.close()

    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT seq FROM por_epochs WHERE epoch = %s", (epoch,)).fetchone() == (mark,)
        got = read_balances(conn, epoch, "ETH", "ethereum")
        on_polygon = read_balances(conn, epoch, "ETH", "polygon")
        with pytest.raises(PublishError, match="not been recorded"):
            read_balances(conn, epoch + 1, "ETH", "ethereum")
    assert got.accounts.tolist() == [5, 6, 7]
    balances = [(h << 64) | lo for h, lo in zip(got.hi.tolist(), got.lo.tolist(), strict=True)]
    assert balances == [3 * e18 + 2 * e18 + e18 - e18 - e18 // 2, 5 * e18, 4]
    assert got.exits is not None and got.counters is not None
    held = [packed.holding_at(got.exits, got.counters, i) for i in range(3)]
    assert held == [por.Holding(exit_5, 3 * e18, e18), por.Holding(exit_6, 5 * e18, 0), por.Holding()]
    assert on_polygon.counters is not None
    assert [packed.holding_at(None, on_polygon.counters, i) for i in range(3)] == [
        por.Holding(por.ZERO_ADDRESS, 2 * e18, e18 // 2), por.Holding(), por.Holding()]
    # the tree and its proofs carry them
    params = por.Params(31337, "0x" + "ab" * 20, epoch, "ETH")
    t = packed.build(params, got, SECRET, workers=1)
    p5 = t.proof("5")
    assert (p5["exitAddress"], p5["deposited"], p5["withdrawn"]) == (exit_5, str(3 * e18), str(e18))
    assert t.proof("7")["exitAddress"] == por.ZERO_ADDRESS
    ref = por.build(params, [("5", balances[0], exit_5, 3 * e18, e18), ("6", 5 * e18, exit_6, 5 * e18, 0),
                             ("7", 4)], SECRET)
    assert t.root == ref.root
