"""The proof-of-reserves tree in Python: every proof verifies, every attack of the spec fails."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpg.por import tree as por

SECRET = bytes(range(32))
REGISTRY = "0x" + "ab" * 20
PARAMS = por.Params(31337, REGISTRY, 20261125, "USDT")
ROOT = Path(__file__).parents[2]


def build(balances: list[tuple[str, int]], params: por.Params = PARAMS) -> por.Tree:
    return por.build(params, balances, SECRET)


def test_keccak_is_ethereums_not_sha3() -> None:
    # keccak256("") as every Ethereum tool prints it; SHA3-256("") is a7ffc6f8…
    assert por.keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def test_depth_and_padding() -> None:
    assert [por.depth_for(n) for n in (0, 1, 2, 3, 4, 5, 8, 9)] == [1, 1, 1, 2, 2, 3, 3, 4]
    t = build([("1", 5), ("2", 0), ("3", 7), ("4", 1)])
    assert t.depth == 2 and len(t.leaves) == 4 and set(t.accounts) == {"1", "3", "4"}
    assert t.total == 13 and t.leaves[3][1] == 0  # one pad leaf, value 0
    hashes = [h for h, _ in t.leaves[:3]]
    assert hashes == sorted(hashes)  # real leaves sorted by hash


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text("0123456789abc", min_size=1, max_size=8), st.integers(0, 2**128 - 1), min_size=1,
                       max_size=40))
def test_every_account_proof_verifies(balances: dict[str, int]) -> None:
    t = build(list(balances.items()))
    assert t.total == sum(balances.values())
    for account, balance in balances.items():
        if balance == 0:
            with pytest.raises(por.ProofError):
                por.proof(t, account)
            continue
        p = por.proof(t, account)
        assert por.verify(p, t.root, t.total) == (t.root, t.total)
        assert p["balance"] == str(balance) and len(p["siblings"]) == t.depth


def test_values_must_be_in_range() -> None:
    with pytest.raises(por.ProofError, match="negative"):
        build([("1", -1)])
    with pytest.raises(por.ProofError, match="2\\*\\*128"):
        build([("1", 2**128)])
    with pytest.raises(por.ProofError, match="twice"):
        build([("1", 1), ("1", 2)])


@pytest.fixture
def good() -> tuple[por.Tree, dict[str, Any]]:
    t = build([(str(i), 1000 * i + 7) for i in range(1, 12)])
    return t, por.proof(t, "5")


def tampered(p: dict[str, Any], **changes: Any) -> dict[str, Any]:
    q = copy.deepcopy(p)
    q.update(changes)
    return q


def test_attacks_fail(good: tuple[por.Tree, dict[str, Any]]) -> None:
    t, p = good
    attacks = []
    q = copy.deepcopy(p)
    q["siblings"][1]["value"] = str(int(q["siblings"][1]["value"]) - 1)
    attacks.append(("a tampered sibling value", q))
    q = copy.deepcopy(p)
    q["siblings"][0]["hash"] = "0x" + "00" * 32
    attacks.append(("a tampered sibling hash", q))
    attacks.append(("a proof too short", tampered(p, siblings=p["siblings"][:-1], depth=p["depth"] - 1)))
    attacks.append(("a proof too long", tampered(p, siblings=[*p["siblings"], p["siblings"][0]])))
    attacks.append(("a higher balance", tampered(p, balance=str(int(p["balance"]) + 1))))
    attacks.append(("another epoch", tampered(p, epoch=str(int(p["epoch"]) + 1))))
    attacks.append(("another asset", tampered(p, asset="BTC", assetId="0x" + por.asset_id("BTC").hex())))
    attacks.append(("another registry", tampered(p, registry="0x" + "cd" * 20)))
    attacks.append(("another chain", tampered(p, chainId="1")))
    attacks.append(("a negative balance", tampered(p, balance="-5")))
    attacks.append(("a balance of 2**128", tampered(p, balance=str(2**128))))
    attacks.append(("another index", tampered(p, index=p["index"] ^ 1)))
    for name, q in attacks:
        with pytest.raises(por.ProofError):
            por.verify(q, t.root, t.total)
            pytest.fail(f"{name} verified")


def test_an_internal_node_cannot_pass_for_a_leaf(good: tuple[por.Tree, dict[str, Any]]) -> None:
    t, p = good
    # claim the level-1 node above the account as a "leaf" with the rest of the path
    node_hash, node_value = t.levels[1][p["index"] >> 1]
    q = tampered(p, balance=str(node_value), index=p["index"] >> 1, depth=t.depth - 1, siblings=p["siblings"][1:])
    with pytest.raises(por.ProofError):
        por.verify(q, t.root, t.total)
    assert node_hash != por.leaf_hash(31337, REGISTRY, PARAMS.epoch, PARAMS.asset_id,
                                      por.account_key("5"), node_value, bytes.fromhex(p["salt"][2:]))


def test_a_tree_whose_parents_commit_only_the_sum_does_not_verify(good: tuple[por.Tree, dict[str, Any]]) -> None:
    t, p = good

    def sum_only(lh: bytes, lv: int, rh: bytes, rv: int) -> bytes:
        return por.keccak256(por.NODE_TAG + lh + rh + por.word(lv + rv))

    # the same leaves, hashed the weaker way: its root and paths must not pass the verifier
    levels = [t.leaves]
    cur = t.leaves
    for _ in range(t.depth):
        cur = [(sum_only(*cur[i], *cur[i + 1]), cur[i][1] + cur[i + 1][1]) for i in range(0, len(cur), 2)]
        levels.append(cur)
    weak = copy.deepcopy(p)
    i = p["index"]
    for level in range(t.depth):
        h, v = levels[level][i ^ 1]
        weak["siblings"][level] = {"hash": "0x" + h.hex(), "value": str(v)}
        i >>= 1
    weak["root"] = "0x" + levels[-1][0][0].hex()
    with pytest.raises(por.ProofError):
        por.verify(weak)


def test_audit_recomputes_a_published_tree(good: tuple[por.Tree, dict[str, Any]]) -> None:
    t, _ = good
    doc = por.public_tree(por.tree_json(t))
    assert "accounts" not in doc and por.audit(doc) == []
    bad = copy.deepcopy(doc)
    bad["leaves"][0][1] = str(int(bad["leaves"][0][1]) + 1)
    assert por.audit(bad)


def dpg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dpg.cli", "por", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)


def test_cli_build_prove_verify(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("account,balance\n1,500\n2,0\n3,1250000\n4,99\n")
    r = dpg("build-tree", str(tmp_path / "b.csv"), "--epoch", "7", "--asset", "USDT", "--chain-id", "31337",
            "--registry", REGISTRY, "--secret", SECRET.hex(), "--out", str(tmp_path / "t.json"))
    assert r.returncode == 0, r.stderr
    head = json.loads(r.stdout)
    assert (head["total"], head["depth"], head["leaves"]) == ("1250599", 2, 3)
    r = dpg("prove", str(tmp_path / "t.json"), "--account", "3", "--out", str(tmp_path / "p.json"))
    assert r.returncode == 0, r.stderr
    ok = dpg("verify", str(tmp_path / "p.json"), "--root", head["root"], "--total", head["total"])
    assert ok.returncode == 0 and json.loads(ok.stdout)["valid"] is True
    p = json.loads((tmp_path / "p.json").read_text())
    p["balance"] = "1250001"
    (tmp_path / "bad.json").write_text(json.dumps(p))
    bad = dpg("verify", str(tmp_path / "bad.json"), "--root", head["root"], "--total", head["total"])
    assert bad.returncode == 1 and json.loads(bad.stdout)["valid"] is False
    assert dpg("prove", str(tmp_path / "t.json"), "--account", "2", "--out", str(tmp_path / "z.json")).returncode == 2
    (tmp_path / "neg.csv").write_text("account,balance\n1,-3\n")
    r = dpg("build-tree", str(tmp_path / "neg.csv"), "--epoch", "7", "--asset", "USDT", "--chain-id", "1",
            "--registry", REGISTRY, "--secret", SECRET.hex(), "--out", str(tmp_path / "n.json"))
    assert r.returncode == 2 and "negative" in r.stderr


def test_version_2_leaves_commit_the_exit_address_and_counters() -> None:
    exit_a, exit_b = "0x" + "aa" * 20, "0x" + "Bb" * 20
    rows: list[por.Row] = [("1", 5, exit_a, 10, 5), ("2", 7), ("3", 9, exit_b, 0, 2**128 - 1)]
    t = build(rows)  # type: ignore[arg-type]  # the helper is typed for version 1's pairs
    p1, p2, p3 = (por.proof(t, a) for a in ("1", "2", "3"))
    assert (p1["version"], p1["account"], p1["exitAddress"], p1["deposited"], p1["withdrawn"]) == (2, 1, exit_a, "10",
                                                                                                 "5")
    assert (p2["exitAddress"], p2["deposited"], p2["withdrawn"]) == (por.ZERO_ADDRESS, "0", "0")  # none: can't escape
    assert p3["exitAddress"] == exit_b.lower() and p3["withdrawn"] == str(2**128 - 1)
    for p in (p1, p2, p3):
        assert por.verify(p, t.root, t.total) == (t.root, t.total)
    for field, value in (("exitAddress", exit_b), ("exitAddress", por.ZERO_ADDRESS), ("deposited", "11"),
                         ("withdrawn", "4"), ("account", 2), ("version", 1)):
        with pytest.raises(por.ProofError):
            por.verify({**p1, field: value}, t.root, t.total)
    # the operator's tree file keeps them, and a tree loaded from it proves the same
    again = por.load_tree(json.loads(json.dumps(por.tree_json(t))))
    assert [por.proof(again, a) for a in ("1", "2", "3")] == [p1, p2, p3]
    with pytest.raises(por.ProofError, match="deposited and withdrawn"):
        build([("1", 5, exit_a, 2**128, 0)])  # type: ignore[list-item]
    with pytest.raises(por.ProofError, match="address"):
        build([("1", 5, "0x12", 0, 0)])  # type: ignore[list-item]


def test_version_1_proofs_still_verify() -> None:
    """Epochs published before version 2 keep their version 1 leaves: their proofs (kept from the
    version 1 vectors) verify, and a changed one does not."""
    doc = json.loads((Path(__file__).parent / "vectors_v1.json").read_text())
    for p in doc["proofs"]:
        assert p["version"] == 1
        assert por.verify(p, bytes.fromhex(doc["root"][2:]), int(doc["total"]))[1] == int(doc["total"])
        with pytest.raises(por.ProofError):
            por.verify({**p, "balance": str(int(p["balance"]) + 1)}, bytes.fromhex(doc["root"][2:]), int(doc["total"]))
    t = por.load_tree(doc["tree"])
    assert t.version == 1 and por.proof(t, doc["proofs"][0]["accountId"]) == doc["proofs"][0]
