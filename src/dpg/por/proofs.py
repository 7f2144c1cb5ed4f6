"""Every account's proof of a published tree, kept in PostgreSQL and assembled on read: the
per-account records (leaf index, salt; version 2: exit address and counters too) and the tree's
nodes, both packed in chunks (``por_proof_accounts``, ``por_proof_nodes``; migrations 0017, 0020).
A proof read from them is the one ``tree.proof`` makes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from dpg.por import packed
from dpg.por import tree as por

LOW = packed.LOW  # levels 1 to LOW-1 are recomputed from a block of 2^LOW leaves
CHUNK = 4096  # records in one row of por_proof_nodes (256 KiB)
ACCOUNTS = 1024  # account records in one row of por_proof_accounts (132 KiB; version 1's: 48 KiB)
ACCOUNT_V1 = np.dtype([("account", ">i8"), ("leaf", ">i8"), ("salt", "u1", (32,))])  # 48 bytes
ACCOUNT = np.dtype([("account", ">i8"), ("leaf", ">i8"), ("salt", "u1", (32,)), ("exit", "u1", (20,)),
                    ("deposited", "u1", (32,)), ("withdrawn", "u1", (32,))])  # 132 bytes: a version 2 leaf's
RECORDS = {1: ACCOUNT_V1, 2: ACCOUNT}  # the account record of each leaf version

ACCOUNT_SQL = ("SELECT accounts FROM por_proof_accounts WHERE epoch = %s AND asset = %s AND first <= %s"
               " ORDER BY first DESC LIMIT 1")
NODES_SQL = (
    "SELECT q.level, substring(n.nodes FROM q.off FOR q.len)"
    " FROM unnest(%s::smallint[], %s::int[], %s::int[], %s::int[]) AS q(level, chunk, off, len)"
    " JOIN por_proof_nodes n ON n.epoch = %s AND n.asset = %s AND n.level = q.level AND n.chunk = q.chunk")


def stored_levels(depth: int) -> list[int]:
    """The leaves, the levels from LOW up and the root (the levels a packed tree keeps)."""
    return packed.kept_levels(depth)


def records(t: packed.PackedTree, a: int, b: int) -> npt.NDArray[np.void]:
    """The account records of ``t``'s accounts [a, b) (a few at a time: no whole copy of them)."""
    out = np.zeros(len(t.accounts[a:b]), dtype=ACCOUNT)
    out["account"], out["leaf"], out["salt"] = t.accounts[a:b], t.leaf[a:b], t.salts[a:b]
    if t.exits is not None:
        out["exit"] = t.exits[a:b]
    if t.counters is not None:
        c = t.counters[a:b]
        out["deposited"] = packed.uint256_words(c[:, 0], c[:, 1])
        out["withdrawn"] = packed.uint256_words(c[:, 2], c[:, 3])
    return out


def write(conn: psycopg.Connection[Any], epoch: int, asset: str, t: packed.PackedTree) -> None:
    """Every account's record and the kept levels, by binary COPY (in the caller's transaction)."""
    with conn.cursor() as cur:
        with cur.copy("COPY por_proof_accounts (epoch, asset, first, accounts) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int8", "text", "int8", "bytea"])
            for a in range(0, len(t.accounts), ACCOUNTS):
                cp.write_row((epoch, asset, int(t.accounts[a]), records(t, a, a + ACCOUNTS).tobytes()))
        with cur.copy("COPY por_proof_nodes (epoch, asset, level, chunk, nodes) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int8", "text", "int2", "int4", "bytea"])
            for level in stored_levels(t.depth):
                nodes = t.levels[level]
                for chunk, a in enumerate(range(0, len(nodes), CHUNK)):
                    cp.write_row((epoch, asset, level, chunk, nodes[a:a + CHUNK].tobytes()))


def reads(depth: int, index: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """What to read of por_proof_nodes for the leaf at ``index``: (levels, chunks, 1-based offsets,
    lengths) of its block of leaves, its siblings from LOW up, and the root."""
    block = min(LOW, depth)
    start = index >> block << block
    out = [(0, start // CHUNK, (start % CHUNK) * packed.RECORD + 1, (1 << block) * packed.RECORD)]
    for level in range(LOW, depth):
        j = (index >> level) ^ 1
        out.append((level, j // CHUNK, (j % CHUNK) * packed.RECORD + 1, packed.RECORD))
    out.append((depth, 0, 1, packed.RECORD))
    levels, chunks, offsets, lengths = zip(*out, strict=True)
    return list(levels), list(chunks), list(offsets), list(lengths)


def assemble(params: por.Params, depth: int, account: str, index: int, salt: bytes,
             parts: dict[int, bytes], holding: por.Holding | None = None) -> dict[str, Any]:
    """The proof file from what ``reads`` named (``parts``: level -> bytes read); ``holding`` the
    account's version 2 fields (None: a version 1 tree)."""
    block = min(LOW, depth)
    start = index >> block << block
    if set(parts) != set(reads(depth, index)[0]):
        raise por.ProofError(f"the stored tree of {params.asset} at epoch {params.epoch} lacks a level")
    leaves = np.frombuffer(parts[0], dtype=np.uint8).reshape(-1, packed.RECORD)
    if len(leaves) != 1 << block:
        raise por.ProofError(f"the stored leaves of {params.asset} at epoch {params.epoch} are cut short")
    balance = int.from_bytes(bytes(leaves[index - start, 32:]), "big")
    siblings = packed.block_siblings(leaves, index) + [parts[level] for level in range(block, depth)]
    root = parts[depth]
    return packed.proof_json(params, depth, account, index, balance, salt, siblings, root[:32],
                             int.from_bytes(root[32:], "big"), holding)


def _account_id(account: str) -> int | None:
    try:
        a = int(account)
    except ValueError:
        return None
    return a if str(a) == account and -(1 << 63) <= a < 1 << 63 else None


def find(chunk: bytes | None, account: int, version: int = por.VERSION) -> tuple[int, bytes, por.Holding | None] | None:
    """The leaf index, salt and (version 2) exit address and counters of ``account`` in a row of
    por_proof_accounts of a tree of leaf ``version`` (None: not there)."""
    if chunk is None:
        return None
    records = np.frombuffer(chunk, dtype=RECORDS[version])
    i = int(np.searchsorted(records["account"], account))
    if i == len(records) or int(records["account"][i]) != account:
        return None
    r = records[i]
    held = None if version == 1 else por.Holding("0x" + r["exit"].tobytes().hex(),
                                                 int.from_bytes(r["deposited"].tobytes(), "big"),
                                                 int.from_bytes(r["withdrawn"].tobytes(), "big"))
    return int(r["leaf"]), r["salt"].tobytes(), held


def read(conn: psycopg.Connection[Any], params: por.Params, depth: int, account: str,
         version: int = por.VERSION) -> dict[str, Any] | None:
    """The proof of ``account`` (None when it has no leaf in the stored tree of leaf ``version``,
    por_publications.leaf_version)."""
    a = _account_id(account)
    if a is None:
        return None
    row = conn.execute(ACCOUNT_SQL, (params.epoch, params.asset, a)).fetchone()
    found = find(None if row is None else bytes(row[0]), a, version)
    if found is None:
        return None
    index, salt, held = found
    parts = conn.execute(NODES_SQL, (*reads(depth, index), params.epoch, params.asset)).fetchall()
    return assemble(params, depth, account, index, salt, {int(lv): bytes(b) for lv, b in parts}, held)


async def aread(conn: psycopg.AsyncConnection[Any], params: por.Params, depth: int, account: str,
                version: int = por.VERSION) -> dict[str, Any] | None:
    """``read`` on an async connection (the API's)."""
    a = _account_id(account)
    if a is None:
        return None
    row = await (await conn.execute(ACCOUNT_SQL, (params.epoch, params.asset, a))).fetchone()
    found = find(None if row is None else bytes(row[0]), a, version)
    if found is None:
        return None
    index, salt, held = found
    cur = await conn.execute(NODES_SQL, (*reads(depth, index), params.epoch, params.asset))
    return assemble(params, depth, account, index, salt, {int(lv): bytes(b) for lv, b in await cur.fetchall()},
                    held)
