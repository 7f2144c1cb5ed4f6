"""A running exchange: the database, the recovered engine, the sequencer and the projections.

``Node(url, settings)`` applies the migrations, recovers the engine (latest snapshot + journal),
builds the sequencer and starts the projection follower process; ``start`` then starts the writer
threads, lists the genesis markets on a new journal, then the perpetuals the journal does not have
yet, and opens the account of every signed-up user the engine does not know yet (a sign-up while
the engine could not take it). Between the two, a
reader of the recovered engine (the API's views) is built and misses no batch. ``Node.open`` does
both. Every other part (API, chain watcher, scheduler) talks to the exchange only by submitting
commands to ``node.sequencer``.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Sequence
from typing import cast

import psycopg

from dpg.config import Settings
from dpg.core import events as E
from dpg.core.commands import EnableGovernance, OpenAccount, RequireAccounts
from dpg.core.engine import Engine
from dpg.core.genesis import GENESIS, PERPS
from dpg.journal.clock import Clock
from dpg.journal.journal import Journal
from dpg.journal.recovery import recover, tune_gc
from dpg.journal.sequencer import Sequencer, Sink
from dpg.store import db, follower
from dpg.system.perps import SpotMids

log = logging.getLogger("dpg.node")


class FollowerProcess:
    """The projection follower as a child process, started again (with back-off) whenever it
    exits while the node runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.proc = follower.spawn(url)
        self.restarts = 0
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._supervise, name="dpg-follower-watch", daemon=True)
        self._watch.start()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _supervise(self) -> None:
        wait = 1.0
        while not self._stop.wait(0.5):
            code = self.proc.poll()
            if code is None:
                wait = 1.0
                continue
            log.error("event=follower_exited code=%s restart_in_s=%.0f", code, wait)
            if self._stop.wait(wait):
                return
            wait = min(wait * 2, 30.0)
            self.proc = follower.spawn(self.url)
            self.restarts += 1
            log.info("event=follower_restarted pid=%d restarts=%d", self.proc.pid, self.restarts)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._watch.join(2)
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Node:
    """``projections``: run the projection follower process beside the engine; ``sinks`` see every
    committed batch once the node is started."""

    def __init__(self, url: str, settings: Settings, *, projections: bool = True, sinks: Sequence[Sink] = ()) -> None:
        db.migrate(url)
        self.url = url
        self.settings = settings
        self.journal = Journal(url)
        self.engine: Engine = recover(self.journal)
        self.mids = SpotMids(self.engine)  # the books as committed: the perpetuals' index source
        tune_gc()
        self.clock = Clock(movable=settings.dev_clock)
        self.sequencer = Sequencer(self.engine, self.journal, clock=self.clock.now,
                                   snapshot_every=settings.snapshot_every, batch_max=settings.batch_max,
                                   sinks=[*sinks, self.mids], observers=[self.mids.observe])
        self.follower = FollowerProcess(url) if projections else None
        self._started = False

    @staticmethod
    def open(url: str, settings: Settings, *, projections: bool = True, sinks: Sequence[Sink] = ()) -> Node:
        """A node built and started."""
        node = Node(url, settings, projections=projections, sinks=sinks)
        node.start()
        return node

    def start(self) -> None:
        """Take commands: the writer threads, the genesis of a new journal, the accounts of users
        signed up while the engine was away."""
        engine, sequencer = self.engine, self.sequencer
        sequencer.start()
        self._started = True
        if engine.seq == 0:
            for cmd in GENESIS:
                _, events = sequencer.submit_wait(cmd)
                if events and events[0][0] == E.REJECTED:
                    raise RuntimeError(f"genesis command {cmd} rejected: {events[0]}")
            log.info("event=genesis assets=%d markets=%d", len(engine.assets), len(engine.markets))
        list_perps(self)
        open_signed_up(self.url, self)
        if not engine.accounts_required:  # a journal from before OpenAccount: every account is open now
            sequencer.submit_wait(RequireAccounts())
            log.info("event=accounts_required seq=%d", sequencer.committed_seq)
        if self.settings.governance and not engine.gov.governed:
            sequencer.submit_wait(EnableGovernance())  # for good: the journal keeps it
            log.info("event=governance_enabled seq=%d", sequencer.committed_seq)
        log.info("event=node_open seq=%d markets=%d", engine.seq, len(engine.markets))

    def close(self) -> None:
        """Stop within seconds, whatever the database does."""
        if self._started:
            self.sequencer.stop()
        if self.follower is not None:
            self.follower.stop()
        self.journal.close()


def open_signed_up(url: str, node: Node) -> int:
    """Submit OpenAccount for every user in the users table whose account the engine does not know
    (run before anyone else submits); returns how many."""
    with psycopg.connect(url) as conn:
        users = [int(r[0]) for r in conn.execute("SELECT id FROM users ORDER BY id")]
    missing = [u for u in users if not node.engine.has_account(u)]
    for user in missing[:-1]:
        node.sequencer.submit(OpenAccount(user))
    if missing:
        _, events = node.sequencer.submit_wait(OpenAccount(missing[-1]))  # durable: every one before it is too
        if events and events[0][0] == E.REJECTED:
            log.error("event=accounts_not_opened count=%d reason=%r", len(missing), cast(E.Rejected, events[0]).reason)
            return 0
        log.info("event=accounts_opened count=%d reason=%r", len(missing), "signed up while the engine was away")
    return len(missing)


def list_perps(node: Node) -> int:
    """Journal the listing of every perpetual of ``PERPS`` the engine does not have yet: after the
    genesis of a new journal, and once on an existing journal written before perpetuals existed.
    Returns how many were listed."""
    listed = 0
    for cmd in PERPS:
        if cmd.symbol in node.engine.market_by_symbol:
            continue
        _, events = node.sequencer.submit_wait(cmd)
        if events and events[0][0] == E.REJECTED:
            raise RuntimeError(f"perpetual listing {cmd.symbol} rejected: {events[0]}")
        listed += 1
    if listed:
        log.info("event=perps_listed count=%d markets=%d", listed,
                 len(node.engine.markets))
    return listed
