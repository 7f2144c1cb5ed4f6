"""The browser's verifier (src/dpg/web/por/verify.js) run by Node against the shared vectors and the
attacks: the same leaves, nodes and roots byte for byte as tree.py and the registry."""

from __future__ import annotations

import json
from typing import Any

from dpg.por import tree as por
from dpg.por import vectors
from tests.por.jsverifier import run_module

DOC: dict[str, Any] = json.loads(vectors.JSON_PATH.read_text())

VECTORS_SCRIPT = """
import * as v from "VERIFY";
const out = { tags: [v.toHex(v.LEAF_TAG_V2), v.toHex(v.NODE_TAG), v.toHex(v.PAD_TAG)],
              nodes: [], proofs: [], attacks: [] };
for (const t of input.trees) {
  for (let l = 0; l + 1 < t.levels.length; l++) {
    const lv = t.levels[l];
    for (let k = 0; 2 * k < lv.length; k++) {
      const [a, b] = [lv[2 * k], lv[2 * k + 1]];
      out.nodes.push(v.toHex(v.nodeHash(v.fromHex(a.hash), BigInt(a.value), v.fromHex(b.hash), BigInt(b.value))));
    }
  }
  for (const p of t.proofs) {
    const leaf = v.leafHashV2(BigInt(p.chainId), p.registry, BigInt(p.epoch), v.assetId(p.asset),
                              v.accountKey(p.accountId), BigInt(p.balance), v.fromHex(p.salt), p.exitAddress,
                              BigInt(p.deposited), BigInt(p.withdrawn));
    out.proofs.push({ leaf: v.toHex(leaf), index: p.index, asset: t.asset,
                      result: v.verifyProof(p, { root: t.root, total: t.total }) });
  }
}
for (const a of input.attacks) {
  out.attacks.push({ name: a.name, result: v.verifyProof(a.proof, { root: a.against.root, total: a.against.total }) });
}
console.log(JSON.stringify(out));
"""


def test_js_reproduces_every_leaf_node_and_root() -> None:
    out = run_module(VECTORS_SCRIPT, DOC)
    assert out["tags"] == [DOC["tags"]["LEAF_TAG_V2"], DOC["tags"]["NODE_TAG"], DOC["tags"]["PAD_TAG"]]
    want_nodes = [level[k]["hash"] for t in DOC["trees"] for level in t["levels"][1:] for k in range(len(level))]
    assert out["nodes"] == want_nodes
    trees = {t["asset"]: t for t in DOC["trees"]}
    assert len(out["proofs"]) == sum(len(t["proofs"]) for t in DOC["trees"]) == 9
    for p in out["proofs"]:
        t = trees[p["asset"]]
        assert p["leaf"] == t["levels"][0][p["index"]]["hash"]
        assert p["result"] == {"valid": True, "root": t["root"], "total": t["total"], "balance": p["result"]["balance"]}


def test_js_rejects_every_attack() -> None:
    out = run_module(VECTORS_SCRIPT, DOC)
    assert [a["name"] for a in out["attacks"]] == [a["name"] for a in DOC["attacks"]]
    for a in out["attacks"]:
        assert a["result"]["valid"] is False, a
        assert a["result"]["reason"], a


MALFORMED_SCRIPT = """
import * as v from "VERIFY";
console.log(JSON.stringify(input.map((c) => v.verifyProof(c.proof, c.published))));
"""


def test_js_rejects_malformed_proofs_and_a_wrong_published_root() -> None:
    t = DOC["trees"][0]
    good = t["proofs"][0]
    published = {"root": t["root"], "total": t["total"]}
    cases: list[dict[str, Any]] = [
        {"proof": good, "published": published},  # the control: valid
        {"proof": good, "published": {"root": DOC["trees"][1]["root"], "total": t["total"]}},
        {"proof": good, "published": {"root": t["root"], "total": str(int(t["total"]) + 1)}},
        {"proof": {**good, "version": 3}, "published": published},
        {"proof": {**good, "version": 1}, "published": published},  # a version 2 leaf is no version 1 leaf
        {"proof": {**good, "exitAddress": "0x" + "00" * 20}, "published": published},
        {"proof": {**good, "exitAddress": "0x1234"}, "published": published},
        {"proof": {**good, "deposited": str(int(good["deposited"]) + 1)}, "published": published},
        {"proof": {**good, "withdrawn": "-1"}, "published": published},
        {"proof": {**good, "account": 2}, "published": published},
        {"proof": {**good, "balance": "1e6"}, "published": published},
        {"proof": {**good, "balance": 1250000.5}, "published": published},
        {"proof": {**good, "salt": "0x1234"}, "published": published},
        {"proof": {**good, "depth": 65}, "published": published},
        {"proof": {**good, "index": 8}, "published": published},
        {"proof": {**good, "siblings": [None, *good["siblings"][1:]]}, "published": published},
        {"proof": {**good, "accountId": "2"}, "published": published},
        {"proof": None, "published": published},
    ]
    results = run_module(MALFORMED_SCRIPT, cases)
    assert results[0]["valid"] is True
    for case, r in zip(cases[1:], results[1:], strict=True):
        assert r["valid"] is False, (case, r)
    # and the Python verifier agrees on each
    for case in cases[1:]:
        try:
            p = case["proof"]
            assert isinstance(p, dict)
            por.verify(p, bytes.fromhex(case["published"]["root"][2:]), int(case["published"]["total"]))
        except (por.ProofError, AssertionError, TypeError):
            continue
        raise AssertionError(f"tree.py accepted {case}")
