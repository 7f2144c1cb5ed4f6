"""Proofs assembled from the stored tables are the reference tree's proofs, byte for byte."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import psycopg
import pytest

from dpg.por import packed, proofs
from dpg.por import tree as por

SECRET = bytes(range(32))


def rows_of(rng: random.Random, n: int) -> list[por.Row]:
    """Balances, some with an exit address and counters (version 2's other leaf inputs)."""
    return [(str(a), rng.choice([0, rng.randrange(1, 10**15), (1 << 128) - 1]),
             rng.choice([por.ZERO_ADDRESS, "0x" + rng.randbytes(20).hex()]), rng.choice([0, rng.randrange(1 << 128)]),
             rng.choice([0, 7, (1 << 128) - 1])) for a in rng.sample(range(1, 1 << 62), n)]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 33, 64, 65, 200, 5000])
def test_stored_proofs_are_the_reference_proofs(pg_url: str, n: int) -> None:
    rng = random.Random(n)
    params = por.Params(31337, "0x" + "cd" * 20, 1764028800 + n, "USDT")
    rows = rows_of(rng, n)
    ref = por.build(params, rows, SECRET)
    t = packed.build(params, packed.Balances.of(rows), SECRET, workers=1)
    other = por.Params(31337, params.registry, params.epoch, "BTC")  # another tree beside it, same epoch
    t_other = packed.build(other, packed.Balances.of(rows_of(rng, 70)), SECRET, workers=1)
    with psycopg.connect(pg_url) as conn:
        with conn.transaction():
            proofs.write(conn, params.epoch, params.asset, t)
            proofs.write(conn, other.epoch, other.asset, t_other)
        accounts = sorted(ref.accounts)
        for account in accounts if len(accounts) <= 300 else rng.sample(accounts, 300):
            p = proofs.read(conn, params, ref.depth, account)
            assert p == por.proof(ref, account) and p["version"] == 2
            assert por.verify(p, ref.root, ref.total) == (ref.root, ref.total)
        zero = [r[0] for r in rows if r[1] == 0]
        for missing in [*zero[:3], "0", "-5", "x", "007", str(1 << 70), str((1 << 63) - 1)]:
            assert proofs.read(conn, params, ref.depth, missing) is None
        stored = conn.execute("SELECT coalesce(sum(length(accounts)), 0) FROM por_proof_accounts"
                              " WHERE asset = 'USDT'").fetchone()
        assert stored is not None and stored[0] == len(ref.accounts) * proofs.ACCOUNT.itemsize
        levels = conn.execute("SELECT DISTINCT level FROM por_proof_nodes WHERE asset = 'USDT' ORDER BY 1").fetchall()
        assert [lv for (lv,) in levels] == proofs.stored_levels(ref.depth)


def test_a_missing_level_is_an_error_not_a_wrong_proof(pg_url: str) -> None:
    params = por.Params(1, "0x" + "01" * 20, 5, "ETH")
    rows = [(str(i), i) for i in range(1, 300)]
    t = packed.build(params, packed.Balances.of(rows), SECRET, workers=1)
    with psycopg.connect(pg_url) as conn:
        proofs.write(conn, params.epoch, params.asset, t)
        conn.execute("DELETE FROM por_proof_nodes WHERE level = %s", (proofs.LOW + 1,))
        with pytest.raises(por.ProofError, match="lacks a level"):
            proofs.read(conn, params, t.depth, "5")


def test_a_version_1_tree_stored_before_version_2_still_serves_version_1_proofs(pg_url: str) -> None:
    """Publications before version 2 (leaf_version 1) keep 48-byte account records: read as such,
    they give the version 1 proofs, which verify."""
    doc = json.loads((Path(__file__).parent / "vectors_v1.json").read_text())
    v1 = por.load_tree(doc["tree"])
    depth = v1.depth
    records = [np.frombuffer(b"".join(h + v.to_bytes(32, "big") for h, v in level), np.uint8).reshape(-1, 64)
               for level in v1.levels]
    ids = sorted(int(a) for a in v1.accounts)
    t = packed.PackedTree(v1.params, depth, {lv: records[lv] for lv in proofs.stored_levels(depth)},
                          np.array(ids, np.int64), np.array([v1.accounts[str(a)][0] for a in ids], np.int64),
                          np.array([list(v1.accounts[str(a)][2]) for a in ids], np.uint8))
    old = np.zeros(len(ids), dtype=proofs.ACCOUNT_V1)
    old["account"], old["leaf"], old["salt"] = t.accounts, t.leaf, t.salts
    with psycopg.connect(pg_url) as conn:
        proofs.write(conn, v1.params.epoch, v1.params.asset, t)
        conn.execute("UPDATE por_proof_accounts SET accounts = %s WHERE epoch = %s AND asset = %s",
                     (old.tobytes(), v1.params.epoch, v1.params.asset))
        for want in doc["proofs"]:
            got = proofs.read(conn, v1.params, depth, want["accountId"], version=1)
            assert got == want == por.proof(v1, want["accountId"])
            assert por.verify(got, v1.root, v1.total) == (v1.root, v1.total)
