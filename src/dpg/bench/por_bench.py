"""``dpg bench por``: one asset's proof-of-reserves tree and every account's proof, at scale.

The packed tree (``dpg.por.packed``) is built over the worker processes, then every proof is
stored as the proof API reads it (``dpg.por.proofs``: the per-account table and the node chunks,
by binary COPY into a scratch database of the configured server, dropped afterwards), and a
sample of proofs is read back and verified. ``--reference`` also runs ``tree.py``'s build and
every in-memory proof in a child process of its own, for the ratio.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import threading
import time
from typing import Any

import numpy as np
import psycopg

from dpg.por import packed, proofs
from dpg.por import tree as por

PARAMS = por.Params(31337, "0x" + "11" * 20, 20261125, "USDT")


def balances(accounts: int, seed: int, holdings: bool = True) -> packed.Balances:
    """``accounts`` random balances; with ``holdings``, every account has an exit address and
    deposited and withdrawn counters too (the version 2 leaf's most work: none is left zero)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, accounts + 1, dtype=np.int64)
    hi, lo = np.zeros(accounts, dtype=np.uint64), rng.integers(1, 10**12, accounts, dtype=np.uint64)
    if not holdings:
        return packed.Balances(ids, hi, lo)
    counters = np.zeros((accounts, 4), dtype=np.uint64)
    counters[:, 1] = rng.integers(1, 10**13, accounts, dtype=np.uint64)
    counters[:, 3] = rng.integers(0, 10**12, accounts, dtype=np.uint64)
    return packed.Balances(ids, hi, lo, rng.integers(0, 256, (accounts, 20), dtype=np.uint8), counters)


def _mb(kb: int) -> int:
    return round(kb / 1024)


def _cpu_s() -> float:
    """CPU seconds of this process and its finished workers (the database server's are not in it)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class MemoryPeak:
    """The peak of this process's and its children's proportional set size (PSS, Linux), summed:
    memory the workers share with this process (the levels' mapping) counted once. Sampled every
    second: reading a large process's page tables is not free."""

    def __init__(self, every: float = 1.0) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._every = every
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _pss_kb(pid: int | str) -> int:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _sample(self) -> int:
        pids = [str(os.getpid())]
        try:
            for task in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{task}/children") as f:
                    pids += f.read().split()
        except OSError:
            pass
        return sum(self._pss_kb(p) for p in pids)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak_kb = max(self.peak_kb, self._sample())

    def __enter__(self) -> MemoryPeak:
        self.peak_kb = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, self._sample())


def run(accounts: int, seed: int = 5, *, workers: int | None = None, store: bool = True, sample: int = 1000,
        reference: bool = False, holdings: bool = True) -> list[dict[str, Any]]:
    workers = packed.workers_default() if workers is None else workers
    b = balances(accounts, seed, holdings)
    secret = random.Random(seed).randbytes(32)
    cpu0 = _cpu_s()
    with MemoryPeak() as mem:
        t0 = time.perf_counter()
        phases: dict[str, float] = {}
        t = packed.build(PARAMS, b, secret, workers=workers, timings=phases)
        built = time.perf_counter() - t0
        stored = _store_and_read(t, sample, seed) if store else {}
    line: dict[str, Any] = {"bench": "por", "impl": "packed", "accounts": accounts, "depth": t.depth,
                            "holdings": holdings, "workers": workers, "build_s": round(built, 2),
                            **{f"{k}_s": round(v, 2) for k, v in phases.items()}}
    line.update(stored)
    line["seconds"] = round(built + stored.get("store_s", 0), 2)
    line["cpu_s"] = round(_cpu_s() - cpu0, 2)  # of the build, the reads' assembly and this process's COPY
    line["peak_mb"] = _mb(mem.peak_kb)  # PSS of this process and its workers, summed
    line["peak_rss_mb"] = _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    out = [line]
    if reference:
        ctx = multiprocessing.get_context("spawn")  # a fresh process: its own peak memory
        with ctx.Pool(1) as pool:
            ref = pool.apply(run_reference, (accounts, seed, secret, holdings))
        ref["root_matches"] = ref.pop("root") == t.root.hex()
        out.append(ref)
        line["speedup"] = round(ref["seconds"] / line["seconds"], 2)
    return out


def _store_and_read(t: packed.PackedTree, sample: int, seed: int) -> dict[str, Any]:
    from dpg.bench.durable_bench import scratch

    with scratch() as url, psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        with conn.transaction():
            proofs.write(conn, PARAMS.epoch, PARAMS.asset, t)
        stored = time.perf_counter() - t0
        rng = random.Random(seed)
        lat: list[float] = []
        for _ in range(min(sample, len(t.accounts))):
            account = str(int(t.accounts[rng.randrange(len(t.accounts))]))
            t1 = time.perf_counter()
            p = proofs.read(conn, PARAMS, t.depth, account)
            lat.append((time.perf_counter() - t1) * 1000)
            assert p is not None
            por.verify(p, t.root, t.total)  # raises when a stored proof does not hold
        size = conn.execute("SELECT pg_total_relation_size('por_proof_accounts'),"
                            " pg_total_relation_size('por_proof_nodes')").fetchone()
        assert size is not None
    lat.sort()
    return {"store_s": round(stored, 2), "store_mb": round((size[0] + size[1]) / 2**20),
            "proofs_read": len(lat), "read_ms_p50": round(lat[len(lat) // 2], 2) if lat else None,
            "read_ms_p99": round(lat[int(len(lat) * 0.99)], 2) if lat else None}


def run_reference(accounts: int, seed: int, secret: bytes, holdings: bool = True) -> dict[str, Any]:
    """tree.py's build and every proof in memory (the way before the packed tree)."""
    b = balances(accounts, seed, holdings)
    rows: list[por.Row] = []
    for i, (a, v) in enumerate(zip(b.accounts.tolist(), b.lo.tolist(), strict=True)):
        held = packed.holding_at(b.exits, b.counters, i)
        rows.append((str(a), v, held.exit_address, held.deposited, held.withdrawn))
    t0 = time.perf_counter()
    tree = por.build(PARAMS, rows, secret)
    built = time.perf_counter() - t0
    t1 = time.perf_counter()
    for row in rows:
        por.proof(tree, row[0])
    proved = time.perf_counter() - t1
    return {"bench": "por", "impl": "reference", "accounts": accounts, "depth": tree.depth,
            "build_s": round(built, 2), "proofs_s": round(proved, 2), "seconds": round(built + proved, 2),
            "peak_mb": _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), "root": tree.root.hex()}
