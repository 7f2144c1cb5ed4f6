"""Crash recovery against the real PostgreSQL: a separate process runs the engine under load and
is killed with SIGKILL at random moments, many times. After each kill: every acknowledged command
is in the journal exactly once, no client order id was ever executed twice (the next run retries
the last ones, as a client would), and the restart state (snapshot + replay) hashes the same as a
fresh replay of the whole journal."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from dpg.core import events as E
from dpg.core import state
from dpg.core.commands import PlaceOrder
from dpg.journal import codec
from dpg.journal.journal import Applied, Journal
from dpg.journal.recovery import recover

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).parents[2]


def _run_until_killed(url: str, first: int, rng: random.Random) -> list[tuple[str, int, int]]:
    proc = subprocess.Popen([sys.executable, str(CHILD), url, str(first)], stdout=subprocess.PIPE,
                            cwd=ROOT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY"):
                ready.set()
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert ready.wait(120), "the child did not start"
    time.sleep(rng.uniform(0.05, 1.2))
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    reader.join(30)
    acks = []
    for line in lines:
        parts = line.split()
        if len(parts) == 4 and parts[0] == "ACK":
            acks.append((parts[1], int(parts[2]), int(parts[3])))
    return acks


@pytest.mark.slow
def test_sigkill_under_load_loses_nothing_acknowledged(pg_url: str) -> None:
    rng = random.Random(20261125)
    acked: dict[str, tuple[int, int]] = {}  # client id -> (seq, first event kind)
    first = 0
    kills = 8
    for _ in range(kills):
        acks = _run_until_killed(pg_url, first, rng)
        for cid, seq, kind in acks:
            if kind == E.ORDER_NEW:
                assert cid not in acked, f"{cid} accepted twice"
                acked[cid] = (seq, kind)
        top = max((int(cid[1:]) for cid, _, _ in acks), default=first)
        first = max(0, top + 1 - 40)  # retry the last ones: some were journaled without a reply

        journal = Journal(pg_url)
        rows = list(journal.read(0))
        by_seq = {seq: codec.decode(payload) for seq, _, payload in rows}
        # every acknowledged command is in the journal at the sequence number it was told
        for cid, (seq, _) in acked.items():
            cmd = by_seq[seq]
            assert isinstance(cmd, PlaceOrder) and cmd.client_id == cid
        # none executed twice: one accepted order per client id over the whole journal
        accepted = Counter[tuple[int, str]]()

        def count(_: object, a: Applied, accepted: Counter[tuple[int, str]] = accepted) -> None:
            if isinstance(a.cmd, PlaceOrder) and a.events[0][0] == E.ORDER_NEW:
                accepted[(a.cmd.account, a.cmd.client_id)] += 1

        fresh = recover(journal, from_snapshot=False, on_applied=count)
        assert all(n == 1 for n in accepted.values())
        restarted = recover(journal)
        assert journal.latest_snapshot() is not None
        assert state.state_hash(restarted) == state.state_hash(fresh)
        assert not fresh.conservation_errors()
        journal.close()
    assert len(acked) > 200, "the load was too light to mean anything"
