"""``GET /api/v1/por/proof`` serves a user's proof from the proof tables (dpg.por.proofs), the same
version 2 proof as the reference tree's (exit address and counters included), and still serves an
epoch kept the older way (por_trees)."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import psycopg
import pytest

from dpg.por import packed, proofs
from dpg.por import tree as por
from tests.api.client import User, exchange

pytestmark = pytest.mark.timeout(300)

SECRET = bytes(range(32))
REGISTRY = "0x" + "5f" * 20


def _publication(conn: psycopg.Connection[object], params: por.Params, depth: int, root: bytes, total: int,
                 leaves: int, version: int = por.VERSION) -> None:
    conn.execute("INSERT INTO por_epochs (epoch, seq, ts) VALUES (%s, 1, %s) ON CONFLICT DO NOTHING",
                 (params.epoch, params.epoch))
    conn.execute(
        "INSERT INTO por_publications (epoch, asset, chain_id, registry, root, total, depth, leaves, cid,"
        " snapshot_block, snapshot_block_hash, tx_hash, gas_used, leaf_version) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s, %s, 'bafkreitest', 1, %s, %s, 1, %s)",
        (params.epoch, params.asset, params.chain_id, params.registry, "0x" + root.hex(), total, depth, leaves,
         "0x" + "00" * 32, "0x" + "11" * 32, version))


def test_proofs_come_from_the_proof_tables(pg_url: str, tmp_path: Path) -> None:
    with exchange(pg_url, tmp_path) as base:
        alice, bob, carol = (User(base, f"{n}@por-proofs.dpg") for n in ("alice", "bob", "carol"))
        rng = random.Random(7)
        rows: list[por.Row] = [(str(a), rng.randrange(1, 10**12)) for a in rng.sample(range(10**6, 10**7), 300)]
        exit_a = "0x" + "a1" * 20
        rows += [(str(alice.id), 1250000, exit_a, 2_000_000, 750_000), (str(bob.id), (1 << 128) - 1),
                 (str(carol.id), 0)]
        params = por.Params(31337, REGISTRY, 1764028800, "USDT")
        ref = por.build(params, rows, SECRET)
        t = packed.build(params, packed.Balances.of(rows), SECRET, workers=1)
        old = por.Params(31337, REGISTRY, 1763942400, "USDT")  # an epoch published before the tables
        old_tree = por.build(old, [*rows[:5], (str(alice.id), 7)], SECRET)
        with psycopg.connect(pg_url) as conn, conn.transaction():
            _publication(conn, params, t.depth, t.root, t.total, len(t.accounts))
            proofs.write(conn, params.epoch, params.asset, t)
            _publication(conn, old, old_tree.depth, old_tree.root, old_tree.total, len(old_tree.accounts))
            conn.execute("INSERT INTO por_trees (epoch, asset, tree) VALUES (%s, %s, %s)",
                         (old.epoch, old.asset, gzip.compress(json.dumps(por.tree_json(old_tree)).encode())))

        for user in (alice, bob):
            r = user.http.get("/api/v1/por/proof", params={"asset": "usdt"})  # the latest epoch
            assert r.status_code == 200, r.text
            assert r.json() == por.proof(ref, str(user.id))
            assert por.verify(r.json(), ref.root, ref.total) == (ref.root, ref.total)
        mine = alice.http.get("/api/v1/por/proof", params={"asset": "USDT"}).json()
        assert (mine["version"], mine["account"], mine["exitAddress"], mine["deposited"], mine["withdrawn"]) == (
            2, alice.id, exit_a, "2000000", "750000")
        assert bob.http.get("/api/v1/por/proof", params={"asset": "USDT"}).json()["exitAddress"] == por.ZERO_ADDRESS
        r = carol.http.get("/api/v1/por/proof", params={"asset": "USDT", "epoch": params.epoch})
        assert r.status_code == 404 and r.json()["code"] == "NO_PROOF"  # a zero balance has no leaf

        r = alice.http.get("/api/v1/por/proof", params={"asset": "USDT", "epoch": old.epoch})
        assert r.status_code == 200, r.text
        assert r.json() == por.proof(old_tree, str(alice.id)) and r.json()["balance"] == "7"
        r = bob.http.get("/api/v1/por/proof", params={"asset": "USDT", "epoch": old.epoch})
        assert r.status_code == 404 and r.json()["code"] == "NO_PROOF"
        r = alice.http.get("/api/v1/por/proof", params={"asset": "USDT", "epoch": 5})
        assert r.status_code == 404 and r.json()["code"] == "NO_PROOF"
