"""``dpg bench durable`` and ``dpg bench restart``: the engine behind the sequencer and the
PostgreSQL journal, each reply released only after its command is committed.

Runs on a scratch database of the configured server (DPG_DATABASE_URL, or the embedded one),
dropped afterwards. A producer keeps up to ``window`` commands in flight, like many clients at once;
the ack latency of a command is from its submission to its reply.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dpg.bench.engine_bench import dpg_commands
from dpg.bench.workload import mixed
from dpg.config import Settings
from dpg.core import state
from dpg.core.commands import Credit, OpenAccount
from dpg.core.events import Event
from dpg.journal.journal import Journal
from dpg.journal.recovery import recover
from dpg.store import db, follower
from dpg.system.node import Node
from dpg.system.target import database_url


@contextmanager
def scratch() -> Iterator[str]:
    settings = Settings.from_env()
    url = db.create_scratch(database_url(settings), "dpg_bench")
    try:
        db.migrate(url)
        yield url
    finally:
        db.drop(url)


def _fund(node: Node, accounts: int) -> None:
    for a in range(1, accounts + 1):
        node.sequencer.submit(OpenAccount(a))
        for asset in ("BTC", "USDT"):
            node.sequencer.submit(Credit(a, asset, 10**24, f"bench-{asset}-{a}"))
    node.sequencer.submit_wait(Credit(1, "USDT", 1, "bench-fence"))


def _percentile(sorted_ms: list[float], p: float) -> float:
    return round(sorted_ms[min(len(sorted_ms) - 1, int(p * len(sorted_ms)))], 3)


def _drive(node: Node, cmds: list[Any], window: int) -> dict[str, Any]:
    n = len(cmds)
    sent = [0] * n
    lat = [0] * n
    sem = threading.BoundedSemaphore(window)
    done = threading.Event()
    clock = time.perf_counter_ns
    base = node.sequencer.seq + 1
    remaining = [n]
    rejected_unavailable = [0]

    def cb(seq: int, events: list[Event]) -> None:
        if seq == 0:
            rejected_unavailable[0] += 1
        else:
            i = seq - base
            lat[i] = clock() - sent[i]
        sem.release()
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set()

    submit = node.sequencer.submit
    acquire = sem.acquire
    gc.collect()
    t0 = clock()
    for i, cmd in enumerate(cmds):
        acquire()
        sent[i] = clock()
        submit(cmd, cb)
    done.wait(600)
    seconds = (clock() - t0) / 1e9
    ms = sorted(x / 1e6 for x in lat)
    return {"commands": n, "seconds": round(seconds, 3), "commands_per_s": round(n / seconds),
            "ack_p50_ms": _percentile(ms, 0.50), "ack_p99_ms": _percentile(ms, 0.99),
            "ack_max_ms": round(ms[-1], 3), "unavailable": rejected_unavailable[0]}


def run(commands: int, seed: int, *, window: int = 1024, accounts: int = 1000) -> list[dict[str, Any]]:
    ops = mixed(commands, seed=seed, accounts=accounts)
    lines = []
    for projections in (False, True):
        with scratch() as url:
            settings = Settings.from_env()
            node = Node.open(url, settings, projections=projections)
            try:
                _fund(node, accounts)
                line: dict[str, Any] = {"bench": "durable", "projections": projections, "window": window}
                line.update(_drive(node, list(dpg_commands(ops)), window))
                if projections:
                    t = time.perf_counter()
                    follower.wait_caught_up(url, node.sequencer.committed_seq, 300)
                    line["projection_lag_s"] = round(time.perf_counter() - t, 3)
                journal_rows = node.journal.last_seq()
                line["journal_rows"] = journal_rows
            finally:
                node.close()
            lines.append(line)
    return lines


def restart(commands: int, *, accounts: int = 1000, tail: int | None = None) -> list[dict[str, Any]]:
    """Write a journal of ``commands`` commands (the mixed flow) whose latest snapshot is ``tail``
    commands before its end (by default the exchange's snapshot interval, DPG_SNAPSHOT_EVERY: the
    worst a restart meets), then time a restart from that snapshot and a full replay."""
    with scratch() as url:
        settings = Settings.from_env()
        tail = settings.snapshot_every if tail is None else tail
        node = Node.open(url, settings, projections=False)
        seq = node.sequencer
        seq.snapshot_every = 10**15  # snapshots only where this bench puts them
        _fund(node, accounts)
        head = max(0, commands - seq.seq - 2 - tail)
        flow = dpg_commands(mixed(head + tail, seed=11, accounts=accounts))
        for _ in range(head):
            seq.submit(next(flow))
        seq.submit_wait(Credit(1, "USDT", 1, "bench-restart-head"), timeout=600)
        seq.snapshot_every = 1  # the batch holding this fence takes the snapshot
        at, _ = seq.submit_wait(Credit(1, "USDT", 1, "bench-restart-snapshot"), timeout=600)
        seq.snapshot_every = 10**15
        look = Journal(url)  # a forked snapshot is stored with a later batch: one more until it is
        for i in range(6000):
            if (look.latest_snapshot() or (0,))[0] >= at:
                break
            time.sleep(0.01)
            seq.submit_wait(Credit(1, "USDT", 1, f"bench-restart-wait-{i}"))
        look.close()
        for cmd in flow:
            seq.submit(cmd)
        seq.submit_wait(Credit(1, "USDT", 1, "bench-restart-fence"), timeout=600)
        expected = state.state_hash(node.engine)
        node.close()
        lines = []
        journal = Journal(url)
        total = journal.last_seq()
        snap = journal.latest_snapshot()
        gc.disable()  # as in recover()
        t = time.perf_counter()
        if snap is not None:
            state.decode(snap[2])
        load_s = time.perf_counter() - t  # the snapshot's part of a restart
        gc.enable()
        for from_snapshot, rounds in ((True, 3), (False, 1)):
            runs = []
            for _ in range(rounds):
                gc.collect()
                t = time.perf_counter()
                engine = recover(journal, from_snapshot=from_snapshot)
                runs.append(time.perf_counter() - t)
            seconds = sorted(runs)[len(runs) // 2]
            replayed = total - (snap[0] if snap and from_snapshot else 0)
            lines.append({"bench": "restart", "from_snapshot": from_snapshot, "journal_commands": total,
                          "snapshot_seq": snap[0] if snap and from_snapshot else None, "replayed": replayed,
                          "resting_orders": len(engine.orders), "seconds": round(seconds, 2),
                          "runs_s": [round(r, 2) for r in runs],
                          "snapshot_decode_s": round(load_s, 3) if from_snapshot else None,
                          "commands_per_s": round(replayed / seconds) if replayed else None,
                          "state_hash_equal": state.state_hash(engine) == expected})
        journal.close()
        return lines
