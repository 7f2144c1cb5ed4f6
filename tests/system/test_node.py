"""The node built whole and started apart: what a reader of the recovered engine (the API's
runtime) relies on between the two."""

from __future__ import annotations

from collections.abc import Sequence

from dpg.config import Settings
from dpg.core.commands import OpenAccount
from dpg.core.genesis import GENESIS
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
        assert node.engine.seq == len(GENESIS)
        seq, _ = node.sequencer.submit_wait(OpenAccount(7))
    finally:
        node.close()
    assert seen == list(range(1, seq + 1))


def test_a_node_never_started_closes(pg_url: str) -> None:
    node = Node(pg_url, Settings.from_env({}), projections=False)
    node.close()  # what a failed start-up does (the API runtime could not be built)
    again = Node.open(pg_url, Settings.from_env({}), projections=False)
    try:
        assert again.engine.seq == len(GENESIS)
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
