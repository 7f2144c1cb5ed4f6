"""The packed tree gives the reference tree's leaves, nodes, root and every proof, byte for byte."""

from __future__ import annotations

import hmac
import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpg.por import packed
from dpg.por import tree as por

SECRET = bytes(range(32))
PARAMS = por.Params(31337, "0x" + "ab" * 20, 20261125, "USDT")
VECTORS = Path(__file__).parent / "vectors.json"


def same(rows: list[tuple[str, int]], workers: int = 1, params: por.Params = PARAMS,
         secret: bytes = SECRET) -> packed.PackedTree:
    ref = por.build(params, rows, secret)
    t = packed.build(params, packed.Balances.of(rows), secret, workers=workers)
    assert t.depth == ref.depth
    assert [(bytes(r[:32]), int.from_bytes(bytes(r[32:]), "big")) for r in t.levels[0]] == ref.leaves
    assert sorted(t.levels) == packed.kept_levels(ref.depth)
    for level in t.levels:
        assert [(bytes(r[:32]), int.from_bytes(bytes(r[32:]), "big")) for r in t.levels[level]] == ref.levels[level]
    assert (t.root, t.total) == (ref.root, ref.total)
    for account in ref.accounts:
        assert t.proof(account) == por.proof(ref, account)
    return t


def random_rows(rng: random.Random, n: int) -> list[tuple[str, int]]:
    ids = rng.sample(range(1, 10**12), n)
    return [(str(a), rng.choice([0, 1, rng.randrange(1, 10**12), rng.randrange(1 << 127, 1 << 128),
                                 (1 << 128) - 1])) for a in ids]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 9, 31, 33, 100, 257])
def test_same_tree_and_proofs_as_the_reference(n: int) -> None:
    same(random_rows(random.Random(n), n))


def test_empty_tree_is_two_pads() -> None:
    t = same([])
    assert t.depth == 1 and len(t.accounts) == 0 and t.total == 0
    t = same([("5", 0), ("6", 0)])
    assert t.depth == 1 and t.total == 0


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_give_the_same_tree(workers: int) -> None:
    # more leaves than one task, an odd count: the leaves, pads and subtrees are split over processes
    rows = random_rows(random.Random(workers), packed.TASK + 1001)
    t = packed.build(PARAMS, packed.Balances.of(rows), SECRET, workers=workers)
    one = packed.build(PARAMS, packed.Balances.of(rows), SECRET, workers=1)
    assert t.depth == one.depth
    assert sorted(t.levels) == sorted(one.levels) == packed.kept_levels(t.depth)
    for level in t.levels:
        assert np.array_equal(t.levels[level], one.levels[level])
    ref = por.build(PARAMS, rows, SECRET)
    assert (t.root, t.total) == (ref.root, ref.total)
    for account in random.Random(1).sample(sorted(ref.accounts), 300):
        assert t.proof(account) == por.proof(ref, account)


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.integers(-(1 << 63), (1 << 63) - 1), st.integers(0, (1 << 128) - 1), max_size=40),
       st.binary(min_size=16, max_size=100), st.integers(0, (1 << 64) - 1))
def test_any_balances_any_secret(balances: dict[int, int], secret: bytes, epoch: int) -> None:
    same([(str(a), b) for a, b in balances.items()], params=por.Params(1, "0x" + "01" * 20, epoch, "ETH"),
         secret=secret)


def test_the_published_vectors() -> None:
    doc = json.loads(VECTORS.read_text())
    for t in doc["trees"]:
        params = por.Params(int(doc["chainId"]), doc["registry"], int(doc["epoch"]), t["asset"])
        rows = [(b["account"], int(b["balance"]), b["exitAddress"], int(b["deposited"]), int(b["withdrawn"]))
                for b in t["balances"]]
        built = packed.build(params, packed.Balances.of(rows), bytes.fromhex(doc["secret"][2:]), workers=1)
        assert "0x" + built.root.hex() == t["root"]
        for p in t["proofs"]:
            assert built.proof(p["accountId"]) == p


def with_holdings(rng: random.Random, rows: list[tuple[str, int]]) -> list[por.Row]:
    """``rows`` with exit addresses (some none) and counters (some zero, some up to 2^128 - 1)."""
    def counter() -> int:
        return rng.choice([0, 1, rng.randrange(1, 10**20), (1 << 64) - 1, 1 << 64, (1 << 128) - 1])
    return [(a, b, rng.choice([por.ZERO_ADDRESS, "0x" + rng.randbytes(20).hex()]), counter(), counter())
            for a, b in rows]


@pytest.mark.parametrize(("n", "workers"), [(1, 1), (9, 1), (300, 1), (40_000, 2)])
def test_exit_addresses_and_counters_as_the_reference(n: int, workers: int) -> None:
    rng = random.Random(n)
    rows = with_holdings(rng, random_rows(rng, n))
    ref = por.build(PARAMS, rows, SECRET)
    t = packed.build(PARAMS, packed.Balances.of(rows), SECRET, workers=workers)
    assert (t.root, t.total) == (ref.root, ref.total)
    assert [(bytes(r[:32]), int.from_bytes(bytes(r[32:]), "big")) for r in t.levels[0]] == ref.leaves
    accounts = sorted(ref.accounts)
    for account in accounts if len(accounts) <= 300 else rng.sample(accounts, 300):
        p = t.proof(account)
        assert p == por.proof(ref, account)
        assert p["version"] == 2 and p["account"] == int(account)
        assert por.verify(p, ref.root, ref.total) == (ref.root, ref.total)
    # the same balances without the holdings: another root (the leaves commit to them)
    plain = packed.build(PARAMS, packed.Balances.of([(a, b) for a, b, *_ in rows]), SECRET, workers=1)
    assert n == 0 or plain.root != t.root


def test_hmac_states_are_hmac_sha256() -> None:
    rng = random.Random(3)
    for size in (0, 16, 32, 64, 65, 200):
        key = rng.randbytes(size)
        inner, outer = packed.hmac_states(key)
        msg = rng.randbytes(96)
        i = inner.copy()
        i.update(msg)
        o = outer.copy()
        o.update(i.digest())
        assert o.digest() == hmac.digest(key, msg, "sha256")


def test_refusals() -> None:
    with pytest.raises(por.ProofError, match="twice"):
        packed.build(PARAMS, packed.Balances.of([("1", 5), ("2", 3), ("1", 7)]), SECRET)
    with pytest.raises(por.ProofError, match="negative"):
        packed.Balances.of([("1", -1)])
    with pytest.raises(por.ProofError, match="2\\*\\*128"):
        packed.Balances.of([("1", 1 << 128)])
    with pytest.raises(por.ProofError, match="decimal id"):
        packed.Balances.of([("007", 1)])
    with pytest.raises(por.ProofError, match="deposited and withdrawn"):
        packed.Balances.of([("1", 1, por.ZERO_ADDRESS, 1 << 128, 0)])
    with pytest.raises(por.ProofError, match="address"):
        packed.Balances.of([("1", 1, "0x1234", 0, 0)])
    t = packed.build(PARAMS, packed.Balances.of([("1", 5), ("2", 0)]), SECRET)
    for missing in ("2", "3", "x", "01"):
        with pytest.raises(por.ProofError, match="no leaf"):
            t.proof(missing)


@pytest.mark.parametrize("n", [0, 1, 6, 40])
def test_public_file_is_the_reference_file(n: int) -> None:
    rows = random_rows(random.Random(n + 1000), n)
    params = por.Params(31337, "0x" + "ab" * 20, 20261125, 'US"DT')
    ref = por.build(params, rows, SECRET)
    t = packed.build(params, packed.Balances.of(rows), SECRET, workers=1)
    assert t.public_json() == json.dumps(por.public_tree(por.tree_json(ref)), separators=(",", ":")).encode()
    assert por.audit(json.loads(t.public_json())) == []
