"""``dpg bench durable`` and ``dpg bench restart``: the engine behind the sequencer and the
PostgreSQL journal, each reply released only after its command is committed.

Runs on a scratch database of the configured server (DPG_DATABASE_URL, or the embedded one),
dropped afterwards. A producer keeps up to ``window`` commands in flight, like many clients at once;
the ack latency of a command is from its submission to its reply. With the projection follower,
its lag behind the journal is printed each second (``durable-lag`` lines) and summed up on the
run's line (``lag_max_s``, ``lag_last_s``; ``projection_lag_s``: the time it took to catch up after
the flow ended).
"""

from __future__ import annotations

import bisect
import gc
import threading
import time
from collections.abc import Callable, Iterator
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


class LagMeter:
    """The projection follower's lag behind the journal, sampled from a thread of its own: the
    journal's committed seq (the sequencer's, in process), the follower's checkpoint (read from its
    table), the lag in commands, and in seconds (how long ago the journal had committed what the
    follower has written now)."""

    def __init__(self, node: Node, url: str, every: float = 1.0,
                 on_line: Callable[[dict[str, Any]], None] | None = None, tick: float = 0.05) -> None:
        self.node = node
        self.url = url
        self.every = every
        self.tick = tick
        self.on_line = on_line
        self.lines: list[dict[str, Any]] = []
        self._history: list[tuple[float, int]] = []  # (time, journal committed seq), rising
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dpg-bench-lag", daemon=True)
        self.t0 = time.perf_counter()

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _committed_at(self, seq: int, now: float) -> float:
        """When the journal had first committed ``seq`` (``now`` if it has not yet been seen)."""
        history = self._history
        i = bisect.bisect_left(history, seq, key=lambda h: h[1])
        return history[i][0] if i < len(history) else now

    def _run(self) -> None:
        from dpg.store.projection import Projector

        projector = Projector(self.url)
        try:
            next_line = self.t0 + self.every
            while not self._stop.wait(self.tick):
                line_due = time.perf_counter() >= next_line
                follower_seq = projector.checkpoint() if line_due else 0  # read first: never past the journal's
                now = time.perf_counter()
                journal_seq = self.node.sequencer.committed_seq
                if not self._history or journal_seq > self._history[-1][1]:
                    self._history.append((now, journal_seq))
                if not line_due:
                    continue
                next_line += self.every
                line = {"bench": "durable-lag", "t_s": round(now - self.t0, 2), "journal_seq": journal_seq,
                        "follower_seq": follower_seq, "lag_commands": max(0, journal_seq - follower_seq),
                        "lag_s": round(now - self._committed_at(follower_seq, now) if follower_seq < journal_seq
                                       else 0.0, 3)}
                self.lines.append(line)
                if self.on_line is not None:
                    self.on_line(line)
        finally:
            projector.close()

    def summary(self) -> dict[str, Any]:
        lags = [ln["lag_s"] for ln in self.lines] or [0.0]
        return {"lag_max_s": max(lags), "lag_last_s": lags[-1], "lag_samples": len(self.lines)}


def run(commands: int, seed: int, *, window: int = 1024, accounts: int = 1000,
        on_line: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """The flow without, then with, the projection follower; ``on_line`` sees each line as it is
    measured: the lag lines (each second of the run with the follower, until it has caught up) and
    each run's line."""
    ops = mixed(commands, seed=seed, accounts=accounts)
    lines = []
    for projections in (False, True):
        with scratch() as url:
            settings = Settings.from_env()
            node = Node.open(url, settings, projections=projections)
            try:
                _fund(node, accounts)
                if projections:  # the follower has written the funding before the measured flow
                    follower.wait_caught_up(url, node.sequencer.committed_seq, 300)
                line: dict[str, Any] = {"bench": "durable", "projections": projections, "window": window}
                meter = LagMeter(node, url, on_line=on_line) if projections else None
                if meter is not None:
                    meter.start()
                line.update(_drive(node, list(dpg_commands(ops)), window))
                if meter is not None:
                    t = time.perf_counter()
                    follower.wait_caught_up(url, node.sequencer.committed_seq, 300)
                    line["projection_lag_s"] = round(time.perf_counter() - t, 3)  # to catch up after the flow
                    time.sleep(meter.every + 2 * meter.tick)  # one line of the caught-up follower
                    meter.stop()
                    line.update(meter.summary())
                journal_rows = node.journal.last_seq()
                line["journal_rows"] = journal_rows
            finally:
                node.close()
            lines.append(line)
            if on_line is not None:
                on_line(line)
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
            cpu = []
            for _ in range(rounds):
                gc.collect()
                t = time.perf_counter()
                c = time.process_time()
                engine = recover(journal, from_snapshot=from_snapshot)
                runs.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            seconds = sorted(runs)[len(runs) // 2]
            replayed = total - (snap[0] if snap and from_snapshot else 0)
            lines.append({"bench": "restart", "from_snapshot": from_snapshot, "journal_commands": total,
                          "snapshot_seq": snap[0] if snap and from_snapshot else None, "replayed": replayed,
                          "resting_orders": len(engine.orders), "seconds": round(seconds, 2),
                          "runs_s": [round(r, 2) for r in runs],
                          "cpu_s": round(sorted(cpu)[len(cpu) // 2], 2),  # steadier on a noisy machine
                          "snapshot_decode_s": round(load_s, 3) if from_snapshot else None,
                          "commands_per_s": round(replayed / seconds) if replayed else None,
                          "state_hash_equal": state.state_hash(engine) == expected})
        journal.close()
        return lines
