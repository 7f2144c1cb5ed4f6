"""The node built whole and started apart: what a reader of the recovered engine (the API's
runtime) relies on between the two."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dpg.config import Settings
from dpg.core.commands import OpenAccount
from dpg.core.genesis import GENESIS, PERPS
from dpg.core.model import MarketKind
from dpg.journal.journal import Applied
from dpg.system.node import Node


def test_a_built_node_takes_nothing_until_started_and_its_sinks_see_every_batch_from_genesis(pg_url: str) -> None:
    seen: list[int] = []

    def sink(batch: Sequence[Applied]) -> None:
        seen.extend(a.seq for a in batch)

    node = Node(pg_url, Settings.from_env({}), projections=False, sinks=[sink])
    try:
        assert node.engine.seq == 0 and node.sequencer.committed_seq == 0  # recovered, nothing applied yet
        node.start()
        assert node.engine.seq == len(GENESIS) + len(PERPS)
        seq, _ = node.sequencer.submit_wait(OpenAccount(7))
    finally:
        node.close()
    assert seen == list(range(1, seq + 1))


def test_a_node_never_started_closes(pg_url: str) -> None:
    node = Node(pg_url, Settings.from_env({}), projections=False)
    node.close()  # what a failed start-up does (the API runtime could not be built)
    again = Node.open(pg_url, Settings.from_env({}), projections=False)
    try:
        assert again.engine.seq == len(GENESIS) + len(PERPS)
    finally:
        again.close()


def test_a_new_journal_lists_the_perpetuals_after_the_genesis(pg_url: str) -> None:
    node = Node.open(pg_url, Settings.from_env({}), projections=False)
    try:
        kinds = [(m.symbol, m.kind) for m in node.engine.markets]
        assert kinds == [("BTC/USDT", MarketKind.SPOT), ("ETH/USDT", MarketKind.SPOT), ("BTC/USD", MarketKind.SPOT),
                         ("ETH/USD", MarketKind.SPOT), ("BTC-PERP", MarketKind.PERP), ("ETH-PERP", MarketKind.PERP)]
        assert sorted(node.engine.fut.perps) == [4, 5]
    finally:
        node.close()


def test_a_journal_without_the_perpetuals_gets_them_journaled_at_the_next_start_once(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import dpg.system.node as node_module

    monkeypatch.setattr(node_module, "PERPS", ())  # a journal written before the perpetuals existed
    old = Node.open(pg_url, Settings.from_env({}), projections=False)
    try:
        old.sequencer.submit_wait(OpenAccount(3))
        at = old.engine.seq
        assert not old.engine.fut.perps and at == len(GENESIS) + 1
    finally:
        old.close()
    monkeypatch.setattr(node_module, "PERPS", PERPS)
    node = Node.open(pg_url, Settings.from_env({}), projections=False)
    try:
        assert node.engine.seq == at + len(PERPS)  # journaled after what was there
        assert [node.engine.markets[i].symbol for i in sorted(node.engine.fut.perps)] == ["BTC-PERP", "ETH-PERP"]
    finally:
        node.close()
    again = Node.open(pg_url, Settings.from_env({}), projections=False)  # listed once: nothing more to journal
    try:
        assert again.engine.seq == at + len(PERPS) and len(again.engine.fut.perps) == 2
    finally:
        again.close()


def test_the_projection_follower_is_started_again_when_it_dies_and_catches_up(pg_url: str) -> None:
    import os
    import signal
    import time

    import psycopg

    node = Node.open(pg_url, Settings.from_env({}))
    try:
        assert node.follower is not None
        first = node.follower.proc.pid
        os.kill(first, signal.SIGKILL)
        seq, _ = node.sequencer.submit_wait(OpenAccount(9))  # applied while no follower runs
        deadline = time.monotonic() + 60
        written = 0
        while time.monotonic() < deadline:
            with psycopg.connect(pg_url) as conn:
                row = conn.execute("SELECT max(seq) FROM projection_state").fetchone()
            written = int(row[0] or 0) if row else 0
            if node.follower.restarts >= 1 and written >= seq:
                break
            time.sleep(0.2)
        assert node.follower.restarts >= 1 and node.follower.proc.pid != first and node.follower.alive()
        assert written >= seq  # the new follower wrote what was applied while none ran
    finally:
        node.close()
