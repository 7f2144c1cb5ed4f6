"""The proof-of-reserves tree of docs/proof-of-reserves.md at scale: every node a packed 64-byte
record (its ``abi.encode(bytes32 hash, uint256 value)``), levels as numpy arrays, no Python object
per node, the hashing spread over processes. Same leaves, nodes, root and proofs as ``tree.py``.

A node's preimage is ``NODE_TAG`` and its two children's records side by side, so a level is
hashed straight from the level below it; value sums are numpy arithmetic on the records' words.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dpg.por import tree as por

RECORD = 64  # bytes of a node: its hash, then its value as a uint256 word
LOW = 6  # the levels from 1 to LOW-1 are not kept: a proof recomputes them from its block of 2^LOW leaves
TASK = 1 << 15  # leaves hashed per task: big enough to hide the task's cost, small enough to balance
_ACCOUNT_PREFIX = b"DPG-POR-ACCOUNT-v1:"
MASK64 = (1 << 64) - 1
_NO_TAIL = bytes(96)  # a leaf's last three words when it has no exit address and zero counters

Bytes = npt.NDArray[np.uint8]


def _hasher() -> Callable[[bytes], Any]:
    """The fastest keccak-256 object maker here: safe-pysha3's C Keccak, else pycryptodome's."""
    try:
        import sha3  # safe-pysha3

        make: Callable[[bytes], Any] = sha3.keccak_256
        if make(b"").digest() == por.keccak256(b""):
            return make
    except ImportError:
        pass
    from Crypto.Hash import keccak

    return lambda data: keccak.new(digest_bits=256, data=data)


_keccak = _hasher()


def hmac_states(secret: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256's two keyed SHA-256 states (RFC 2104), copied for each message: the same digest as
    ``hmac.digest(secret, m, "sha256")`` at a third of its cost per call."""
    key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
    key = key.ljust(64, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key)))


def uint256_words(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> Bytes:
    """uint256 words (n x 32 bytes, big-endian) of values hi·2^64 + lo."""
    w = np.zeros((len(hi), 4), dtype=">u8")
    w[:, 2] = hi
    w[:, 3] = lo
    return w.view(np.uint8).reshape(-1, 32)


def _sum_words(left: Bytes, right: Bytes) -> Bytes:
    """Element-wise sums of two arrays of uint256 words (no sum reaches 2^192: values are below
    2^128 and a tree has at most 2^64 leaves)."""
    a = left.view(">u8").reshape(-1, 4).astype(np.uint64)
    b = right.view(">u8").reshape(-1, 4).astype(np.uint64)
    lo = a[:, 3] + b[:, 3]
    c0 = (lo < a[:, 3]).astype(np.uint64)
    mid = a[:, 2] + b[:, 2]
    c1 = mid < a[:, 2]
    mid2 = mid + c0
    c1 |= mid2 < mid
    out = np.zeros((len(a), 4), dtype=">u8")
    out[:, 1] = a[:, 1] + b[:, 1] + c1.astype(np.uint64)
    out[:, 2] = mid2
    out[:, 3] = lo
    return out.view(np.uint8).reshape(-1, 32)


def parents(level: Bytes) -> Bytes:
    """The level above ``level`` (n x 64 records, n even): each parent hashes NODE_TAG and its two
    children's records, and holds the sum of their values."""
    n = len(level) // 2
    flat = np.ascontiguousarray(level).reshape(-1).data
    k, tag = _keccak, por.NODE_TAG
    hashes = b"".join([k(tag + flat[i:i + 2 * RECORD]).digest() for i in range(0, n * 2 * RECORD, 2 * RECORD)])
    out = np.empty((n, RECORD), dtype=np.uint8)
    out[:, :32] = np.frombuffer(hashes, dtype=np.uint8).reshape(n, 32)
    pairs = level.reshape(n, 2 * RECORD)
    out[:, 32:] = _sum_words(np.ascontiguousarray(pairs[:, 32:64]), np.ascontiguousarray(pairs[:, 96:128]))
    return out


@dataclass(frozen=True, slots=True)
class Balances:
    """One asset's balances as arrays: account ids (int64) and each balance as hi·2^64 + lo; and the
    version 2 leaf's other inputs: each account's exit address (n x 20 bytes; None: nobody has one)
    and its counters (n x 4: deposited hi, lo, withdrawn hi, lo, each counter hi·2^64 + lo; None: all
    zero)."""

    accounts: npt.NDArray[np.int64]
    hi: npt.NDArray[np.uint64]
    lo: npt.NDArray[np.uint64]
    exits: Bytes | None = None
    counters: npt.NDArray[np.uint64] | None = None

    @classmethod
    def of(cls, rows: Iterable[tuple[str | int, int] | tuple[str | int, int, str, int, int]]) -> Balances:
        """From (account, balance) or (account, balance, exit address, deposited, withdrawn) rows,
        checked as ``tree.build`` checks them; an account is its decimal id (as the database keeps it)."""
        ids: list[int] = []
        his: list[int] = []
        los: list[int] = []
        exits: list[bytes] = []
        counters: list[tuple[int, int, int, int]] = []
        extra = False
        for row in rows:
            account, balance = row[0], row[1]
            held = por.holding_of((str(account), *row[1:]))
            extra = extra or len(row) > 2
            exits.append(bytes.fromhex(held.exit_address[2:]))
            counters.append((held.deposited >> 64, held.deposited & MASK64, held.withdrawn >> 64,
                             held.withdrawn & MASK64))
            a = int(account)
            if str(a) != str(account) or not -(1 << 63) <= a < 1 << 63:
                raise por.ProofError(f"account {account!r} is not a 64-bit decimal id")
            if balance < 0:
                raise por.ProofError(f"account {account!r} has a negative balance")
            if balance >= por.MAX_VALUE:
                raise por.ProofError(f"account {account!r} has a balance of 2**128 or more")
            ids.append(a)
            his.append(balance >> 64)
            los.append(balance & ((1 << 64) - 1))
        if not extra:
            return cls(np.array(ids, dtype=np.int64), np.array(his, dtype=np.uint64), np.array(los, dtype=np.uint64))
        return cls(np.array(ids, dtype=np.int64), np.array(his, dtype=np.uint64), np.array(los, dtype=np.uint64),
                   np.frombuffer(b"".join(exits), dtype=np.uint8).reshape(-1, 20).copy(),
                   np.array(counters, dtype=np.uint64).reshape(-1, 4))


def kept_levels(depth: int) -> list[int]:
    """The levels a tree keeps: the leaves, the levels from LOW up and the root."""
    return sorted({0, depth, *range(LOW, depth + 1)})


def block_siblings(block: Bytes, index: int) -> list[bytes]:
    """The siblings of leaf ``index`` on the levels inside its block of leaves (2^h records, the
    block that holds ``index``), leaf level first."""
    height = len(block).bit_length() - 1
    start = index >> height << height
    out: list[bytes] = []
    cur = block
    for level in range(height):
        out.append(bytes(cur[((index >> level) ^ 1) - (start >> level)]))
        cur = parents(cur)
    return out


@dataclass(slots=True)
class PackedTree:
    """A whole tree: ``levels[l]``, for each level of ``kept_levels``, holds the 2^(depth-l) records
    of level l (``levels[0]`` the leaves, ``levels[depth]`` the root); ``accounts``/``leaf``/``salts``
    give each account, sorted by id, its leaf index and salt, and ``exits``/``counters`` its exit
    address and counters (as in ``Balances``; None: none, zero)."""

    params: por.Params
    depth: int
    levels: dict[int, Bytes]
    accounts: npt.NDArray[np.int64]
    leaf: npt.NDArray[np.int64]
    salts: Bytes  # n x 32
    exits: Bytes | None = None
    counters: npt.NDArray[np.uint64] | None = None

    def holding(self, pos: int) -> por.Holding:
        """The exit address and counters of the account at ``pos`` of ``accounts``."""
        return holding_at(self.exits, self.counters, pos)

    @property
    def root(self) -> bytes:
        return bytes(self.levels[self.depth][0, :32])

    @property
    def total(self) -> int:
        return int.from_bytes(bytes(self.levels[self.depth][0, 32:]), "big")

    def value(self, index: int) -> int:
        return int.from_bytes(bytes(self.levels[0][index, 32:]), "big")

    def find(self, account: int) -> int | None:
        """The position of ``account`` in ``accounts`` (None when it has no leaf)."""
        i = int(np.searchsorted(self.accounts, account))
        return i if i < len(self.accounts) and int(self.accounts[i]) == account else None

    def public_json(self) -> bytes:
        """The published tree file (``tree.public_tree(tree.tree_json(...))`` as compact JSON, byte
        for byte): every leaf, pads included, and no account."""
        p = self.params
        head = {"version": por.VERSION, "chainId": str(p.chain_id), "registry": p.registry, "epoch": str(p.epoch),
                "asset": p.asset, "assetId": "0x" + p.asset_id.hex(), "depth": self.depth,
                "root": "0x" + self.root.hex(), "total": str(self.total), "leafCount": len(self.accounts)}
        leaves = self.levels[0]
        hexes = leaves[:, :32].tobytes().hex()
        values = leaves[:, 32:].view(">u8").reshape(-1, 4)
        small = values[:, :3].any(axis=1) == 0  # values below 2^64: numpy turns them into text
        low = values[:, 3].astype(np.uint64).astype(str)
        parts = []
        for i in range(len(leaves)):
            v = str(low[i]) if small[i] else str(int.from_bytes(bytes(leaves[i, 32:]), "big"))
            parts.append(f'["0x{hexes[64 * i:64 * i + 64]}","{v}"]')
        body = json.dumps(head, separators=(",", ":"))[:-1] + ',"leaves":[' + ",".join(parts) + "]}"
        return body.encode()

    def proof(self, account: str) -> dict[str, Any]:
        """The proof file of one account, as ``tree.proof`` makes it."""
        try:
            pos = self.find(int(account))
        except ValueError:
            pos = None
        if pos is None or str(int(account)) != account:
            raise por.ProofError(f"account {account!r} has no leaf in this tree (a zero balance is left out)")
        index = int(self.leaf[pos])
        block = min(LOW, self.depth)
        start = index >> block << block
        siblings = block_siblings(self.levels[0][start:start + (1 << block)], index)
        siblings += [bytes(self.levels[level][(index >> level) ^ 1]) for level in range(block, self.depth)]
        return proof_json(self.params, self.depth, account, index, self.value(index), bytes(self.salts[pos]),
                          siblings, self.root, self.total, self.holding(pos))


def holding_at(exits: Bytes | None, counters: npt.NDArray[np.uint64] | None, i: int) -> por.Holding:
    """Row ``i`` of arrays of exit addresses and counters (as in ``Balances``)."""
    address = por.ZERO_ADDRESS if exits is None else "0x" + bytes(exits[i]).hex()
    if counters is None:
        return por.Holding(address)
    c = [int(x) for x in counters[i]]
    return por.Holding(address, c[0] << 64 | c[1], c[2] << 64 | c[3])


def proof_json(params: por.Params, depth: int, account: str, index: int, balance: int, salt: bytes,
               siblings: list[bytes], root: bytes, total: int, holding: por.Holding | None) -> dict[str, Any]:
    """A proof file from its parts; ``siblings`` are 64-byte records, leaf level first. ``holding``
    None: a version 1 proof (of a tree published before version 2)."""
    extra = {} if holding is None else por.holding_json(account, holding)
    return {
        "version": 1 if holding is None else por.VERSION, "chainId": str(params.chain_id),
        "registry": params.registry, "epoch": str(params.epoch), "asset": params.asset,
        "assetId": "0x" + params.asset_id.hex(), "accountId": account,
        "accountKey": "0x" + por.account_key(account).hex(), "balance": str(balance),
        "salt": "0x" + salt.hex(), **extra, "index": index,
        "siblings": [{"hash": "0x" + s[:32].hex(), "value": str(int.from_bytes(s[32:], "big"))} for s in siblings],
        "depth": depth, "root": "0x" + root.hex(), "total": str(total),
    }


# -- the work of one process: a slice of the leaves, or a subtree -------------------------------

_shared: dict[str, Any] = {}  # what the forked workers read: set before the pool starts


def _keyed(s: dict[str, Any], prefix: bytes) -> tuple[Any, Any, Any, bytes]:
    """The states every leaf of a tree starts from: HMAC-SHA256's inner state with the salt's first
    block (epoch and asset id, 64 bytes) absorbed, its outer state, and a keccak state with the
    leaf preimage's first 136 bytes (one rate: the same for every leaf) absorbed, and the rest."""
    inner, outer = hmac_states(s["secret"])
    inner.update(s["salt_prefix"])
    return inner, outer, _keccak(prefix[:136]), prefix[136:]


def _leaf_task(bounds: tuple[int, int]) -> None:
    """Hash the real leaves [a, b) (input order) into the shared leaf and salt buffers."""
    a, b = bounds
    s = _shared
    k = _keccak
    inner, outer, start, rest = _keyed(s, s["leaf_prefix"])
    words = np.ascontiguousarray(s["words"][a:b]).reshape(-1).data
    tails = _tails(s["exits"], s["counters"], a, b)
    hashes: list[bytes] = []
    salts: list[bytes] = []
    for j, acct in enumerate(s["accounts"][a:b].tolist()):
        key = k(_ACCOUNT_PREFIX + str(acct).encode()).digest()
        h = inner.copy()
        h.update(key)
        o = outer.copy()
        o.update(h.digest())
        salt = o.digest()
        leaf = start.copy()
        leaf.update(rest + key + words[32 * j:32 * j + 32] + salt + (_NO_TAIL if tails is None
                                                                     else tails[96 * j:96 * j + 96]))
        hashes.append(k(leaf.digest()).digest())
        salts.append(salt)
    s["raw"][32 * a:32 * b] = b"".join(hashes)
    s["raw_salts"][32 * a:32 * b] = b"".join(salts)


def _tails(exits: Bytes | None, counters: npt.NDArray[np.uint64] | None, a: int, b: int) -> memoryview | None:
    """The last three words of leaves [a, b) (exit address, deposited, withdrawn), 96 bytes each, in
    one buffer made by numpy; None when every one of them is zero."""
    if exits is None and counters is None:
        return None
    out = np.zeros((b - a, 96), dtype=np.uint8)
    if exits is not None:
        out[:, 12:32] = exits[a:b]
    if counters is not None:
        c = counters[a:b]
        out[:, 32:64] = uint256_words(c[:, 0], c[:, 1])
        out[:, 64:96] = uint256_words(c[:, 2], c[:, 3])
    return out.reshape(-1).data


def _pad_task(bounds: tuple[int, int]) -> None:
    """Hash the pad leaves [a, b) (tree positions) into the shared leaf level."""
    a, b = bounds
    s = _shared
    k = _keccak
    inner, outer, start, rest = _keyed(s, s["pad_prefix"])
    hashes: list[bytes] = []
    for i in range(a, b):
        w = i.to_bytes(32, "big")
        h = inner.copy()
        h.update(w)
        o = outer.copy()
        o.update(h.digest())
        pad = start.copy()
        pad.update(rest + w + o.digest())
        hashes.append(k(pad.digest()).digest())
    leaves = s["levels"][0]
    leaves[a:b, :32] = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 32)
    leaves[a:b, 32:] = 0


def _subtree_task(args: tuple[int, int]) -> None:
    """The subtree of height ``height`` whose leaves start at ``first``: its kept levels."""
    first, height = args
    levels = _shared["levels"]
    cur = levels[0][first:first + (1 << height)]
    for level in range(1, height + 1):
        cur = parents(cur)
        if level in levels:
            start = first >> level
            levels[level][start:start + len(cur)] = cur


def _shared_levels(depth: int, levels: list[int]) -> dict[int, Bytes]:
    """These levels in one anonymous shared mapping, so forked workers write into the parent's."""
    buf = mmap.mmap(-1, RECORD * sum(1 << (depth - level) for level in levels))
    out: dict[int, Bytes] = {}
    offset = 0
    for level in levels:
        n = 1 << (depth - level)
        out[level] = np.frombuffer(buf, dtype=np.uint8, count=n * RECORD, offset=offset).reshape(n, RECORD)
        offset += n * RECORD
    return out


def _run(fn: Callable[[Any], None], tasks: list[Any], pool: Any) -> None:
    if pool is None:
        for t in tasks:
            fn(t)
    else:
        for _ in pool.imap_unordered(fn, tasks):
            pass


def workers_default() -> int:
    """One process per core, but only one in a process that runs other threads (an exchange's
    publisher thread): forking it could copy a lock another thread holds."""
    if threading.active_count() > 1:
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def build(params: por.Params, balances: Balances, secret: bytes, workers: int | None = None,
          timings: dict[str, float] | None = None) -> PackedTree:
    """The tree of one asset, as ``tree.build`` makes it: zero balances left out, an account once.
    ``timings``, when given, gets the seconds of each phase."""
    clock = time.perf_counter
    marks = [clock()]
    workers = workers_default() if workers is None else workers
    ids = balances.accounts
    if len(np.unique(ids)) != len(ids):
        u, c = np.unique(ids, return_counts=True)
        raise por.ProofError(f"account {str(u[c > 1][0])!r} appears twice")
    exits, counters = balances.exits, balances.counters
    keep = (balances.hi != 0) | (balances.lo != 0)
    hi, lo = balances.hi, balances.lo
    if not keep.all():  # (the recorded balances have no zero: no copy of them)
        ids, hi, lo = ids[keep], hi[keep], lo[keep]
        exits = None if exits is None else exits[keep]
        counters = None if counters is None else counters[keep]
    n = len(ids)
    depth = por.depth_for(n)
    aid = params.asset_id
    epoch_word = por.word(params.epoch)
    if params.epoch >= 1 << 64:
        raise por.ProofError("epoch must fit a uint64")
    common = por.word(params.chain_id) + por.address_word(params.registry) + epoch_word + aid
    # subtrees: enough to keep every worker busy, each a whole block of leaves
    split = min(depth, max(0, (4 * workers - 1).bit_length())) if workers > 1 else 0
    height = depth - split
    levels = _shared_levels(depth, sorted({*kept_levels(depth), height}))
    words = uint256_words(hi, lo)
    raw = mmap.mmap(-1, max(1, 32 * n))
    raw_salts = mmap.mmap(-1, max(1, 32 * n))
    _shared.clear()
    _shared.update(secret=secret, salt_prefix=epoch_word + aid, leaf_prefix=por.LEAF_TAG_V2 + common,
                   pad_prefix=por.PAD_TAG + common, words=words, accounts=ids, raw=raw, raw_salts=raw_salts,
                   levels=levels, exits=exits, counters=counters)
    leaf_tasks = [(a, min(a + TASK, n)) for a in range(0, n, TASK)]
    pad_tasks = [(a, min(a + TASK, 1 << depth)) for a in range(n, 1 << depth, TASK)]
    pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 and n >= TASK else None
    try:
        _run(_leaf_task, leaf_tasks, pool)
        marks.append(clock())
        _run(_pad_task, pad_tasks, pool)
        marks.append(clock())
        hashes = np.frombuffer(raw, dtype=np.uint8, count=32 * n).reshape(n, 32)
        order = _sort_order(hashes)
        leaves = levels[0]
        for a in range(0, n, TASK):  # in slices: no whole permuted copy
            part = order[a:a + TASK]
            leaves[a:a + len(part), :32] = hashes[part]
            leaves[a:a + len(part), 32:] = words[part]
        del hashes, words
        _shared.pop("words")
        marks.append(clock())
        _run(_subtree_task, [(i << height, height) for i in range(1 << split)], pool)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        _shared.clear()
    cur = levels[height]
    for level in range(height + 1, depth + 1):
        cur = parents(cur)
        if level in levels:
            levels[level][:] = cur
    if height not in kept_levels(depth):
        del levels[height]
    leaf = np.empty(n, dtype=np.int64)
    leaf[order] = np.arange(n, dtype=np.int64)
    salts = np.frombuffer(raw_salts, dtype=np.uint8, count=32 * n).reshape(n, 32)
    if n > 1 and not bool(np.all(ids[1:] > ids[:-1])):  # (the recorded balances come sorted: no copies then)
        by_account = np.argsort(ids, kind="stable")
        ids, leaf, salts = ids[by_account], leaf[by_account], salts[by_account]
        exits = None if exits is None else exits[by_account]
        counters = None if counters is None else counters[by_account]
    marks.append(clock())
    if timings is not None:
        for name, t0, t1 in zip(("leaves", "pads", "sort", "nodes"), marks, marks[1:], strict=False):
            timings[name] = t1 - t0
    return PackedTree(params, depth, levels, ids, leaf, salts, exits, counters)


def _sort_order(hashes: Bytes) -> npt.NDArray[np.intp]:
    """The order of 32-byte hashes, ascending as big-endian numbers."""
    if len(hashes) == 0:
        return np.zeros(0, dtype=np.intp)
    keys = hashes.view(">u8").reshape(-1, 4)
    order = np.argsort(keys[:, 0], kind="stable")
    first = keys[order, 0]
    ties = np.flatnonzero(first[1:] == first[:-1])
    if len(ties):  # equal first 8 bytes: order the runs by all 32 (almost never needed)
        starts = np.unique(np.concatenate([ties, ties + 1]))
        lo = 0
        while lo < len(starts):
            hi = lo
            while hi + 1 < len(starts) and starts[hi + 1] == starts[hi] + 1:
                hi += 1
            run = order[starts[lo]:starts[hi] + 1]
            order[starts[lo]:starts[hi] + 1] = sorted(run.tolist(), key=lambda r: bytes(hashes[r]))
            lo = hi + 1
    return order
