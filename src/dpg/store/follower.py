"""The projection follower: a process of its own that tails the journal, replays each command
through its own copy of the (deterministic) engine, and writes the events to the projection
tables. It keeps projection work off the engine's process and can restart at any time: it resumes
after its checkpoint."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import cast

import psycopg

from dpg.core import events as E
from dpg.core.engine import Engine
from dpg.journal import codec
from dpg.journal.journal import Applied, Journal
from dpg.journal.recovery import tune_gc
from dpg.store.projection import Projector

log = logging.getLogger("dpg.follower")

BATCH = 20_000


def catch_up(journal: Journal, projector: Projector) -> Engine:
    """Recover an engine from a snapshot no newer than the projection's checkpoint, writing the
    events the projection has not seen yet on the way."""
    from dpg.journal.recovery import recover

    checkpoint = projector.written_seq
    buf: list[Applied] = []

    def feed(engine: Engine, a: Applied) -> None:
        if a.seq <= checkpoint:
            return
        if not buf:
            projector.bind(engine.assets, engine.markets)
        buf.append(a)
        if a.events and a.events[0][0] == E.EPOCH_MARKED:
            projector.write(buf, engine.balances)
            buf.clear()
            projector.write_epoch(cast(E.EpochMarked, a.events[0]).epoch, a.seq, a.ts, engine)
        elif len(buf) >= BATCH:
            projector.write(buf, engine.balances)
            buf.clear()

    engine = recover(journal, at_most=checkpoint, on_applied=feed)
    projector.bind(engine.assets, engine.markets)
    if buf:
        projector.write(buf, engine.balances)
    return engine


def step(engine: Engine, journal: Journal, projector: Projector) -> int:
    """Apply and project every journaled command after ``engine.seq``. Returns how many."""
    buf: list[Applied] = []
    n = 0
    apply = engine.apply
    decode = codec.decode
    for seq, ts, payload in journal.read(engine.seq):
        cmd = decode(payload)
        events = apply(cmd, seq, ts)
        buf.append(Applied(seq, ts, cmd, events))
        if events and events[0][0] == E.EPOCH_MARKED:  # the engine is exactly at this seq now
            projector.write(buf, engine.balances)
            n += len(buf)
            buf.clear()
            projector.write_epoch(cast(E.EpochMarked, events[0]).epoch, seq, ts, engine)
        elif len(buf) >= BATCH:
            projector.write(buf, engine.balances)
            n += len(buf)
            buf.clear()
    if buf:
        projector.write(buf, engine.balances)
        n += len(buf)
    return n


def follow(url: str, stop: threading.Event, poll: float = 0.05) -> None:
    """Until ``stop`` is set, or the process that started this one is gone. When the database goes
    away it waits for it (back-off 0.5 s doubling to 5 s) and resumes after its checkpoint."""
    parent = os.getppid()
    wait = 0.5
    while not stop.is_set() and os.getppid() == parent:
        try:
            _follow(url, stop, poll, parent)
            return
        except psycopg.OperationalError as e:
            log.warning("event=follower_database_lost retry_s=%.1f error=%r", wait, str(e).strip()[:200])
            stop.wait(wait)
            wait = min(wait * 2, 5.0)


def _follow(url: str, stop: threading.Event, poll: float, parent: int) -> None:
    journal = Journal(url)
    try:
        projector = Projector(url, background=True)  # stores a batch while the next one is applied
    except BaseException:
        journal.close()
        raise
    try:
        engine = catch_up(journal, projector)
        tune_gc()  # the replica's millions of long-lived objects are frozen out of the collections
        log.info("event=follower_ready seq=%d", engine.seq)
        while not stop.is_set() and os.getppid() == parent:
            if not step(engine, journal, projector):
                projector.flush()  # idle: what was handed to the writer is stored (or its failure raised)
                stop.wait(poll)
    finally:
        for part in (projector, journal):
            with contextlib.suppress(psycopg.Error):
                part.close()


def spawn(url: str) -> subprocess.Popen[bytes]:
    """Start the follower as a child process (the URL travels in its environment)."""
    env = dict(os.environ, DPG_DATABASE_URL=url)
    return subprocess.Popen([sys.executable, "-m", "dpg.store.follower"], env=env)


def wait_caught_up(url: str, seq: int, timeout: float = 120.0) -> bool:
    """Block until the projection checkpoint reaches ``seq``."""
    projector = Projector(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if projector.checkpoint() >= seq:
                return True
            time.sleep(0.02)
        return False
    finally:
        projector.close()


def main() -> None:
    from dpg.logs import setup

    setup(os.environ.get("DPG_LOG_LEVEL", "INFO"))
    os.nice(10)  # projections yield the CPU to the engine and the API under load; they catch up after
    tune_gc()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    follow(os.environ["DPG_DATABASE_URL"], stop)


if __name__ == "__main__":
    main()
