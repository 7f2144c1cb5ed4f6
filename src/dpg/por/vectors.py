"""The proof-of-reserves test vectors shared by the Python, Solidity and JavaScript verifiers.

``generate()`` builds them deterministically from a fixed secret, accounts and balances (and, for
version 2's leaves, exit addresses and counters): every leaf, every node, the roots, every
account's proof, and proofs that must be rejected (the attacks of the specification).
``python -m dpg.por.vectors`` writes ``tests/por/vectors.json`` and its Solidity twin
``contracts/test/utils/PorVectors.sol``; the tests check both are up to date.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from dpg.por import tree as por

ROOT = Path(__file__).resolve().parents[3]
JSON_PATH = ROOT / "tests" / "por" / "vectors.json"
SOL_PATH = ROOT / "contracts" / "test" / "utils" / "PorVectors.sol"

CHAIN_ID = 31337
# where anvil's (and forge's, pranked) first deployment of account 0 lands
REGISTRY = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
EPOCH = 1_764_028_800  # 2025-11-25 00:00 UTC
SECRET = bytes(range(32))
# exit addresses: anvil's (public, well-known) test accounts 7 and 8
EXIT_A = "0x14dc79964da2c08b23698b3d3cc7ca32193d9955"
EXIT_B = "0x23618e81e3f5cdf7f54c3d65f7fbc0abf5b21e8f"
TREES: dict[str, list[por.Row]] = {
    # five real leaves: depth 3, three pads; a zero balance is left out (its exit address and
    # counters too); account 2 has no exit address (it can prove, not escape)
    "USDT": [("1", 1_250_000, EXIT_A, 2_000_000, 750_000), ("2", 7), ("3", 99_000_000, EXIT_B, 99_000_000, 0),
             ("42", 1, EXIT_B, 5, 4), ("77", 0, EXIT_A, 10, 10), ("1000", 5_000_000_000, EXIT_A, 0, 0)],
    # one leaf: depth 1, one pad
    "BTC": [("42", 150_000_000, EXIT_B, 150_000_000, 0)],
    # the largest value a leaf (and a counter) may hold
    "ETH": [("1", por.MAX_VALUE - 1, EXIT_A, por.MAX_COUNTER - 1, por.MAX_COUNTER - 1), ("2", 10**18), ("3", 1)],
}


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _sum_only_levels(t: por.Tree) -> list[list[tuple[bytes, int]]]:
    """The levels of a tree whose parents commit the children's hashes and only their sum (not
    each child's value): what the specification forbids."""
    levels = [t.leaves]
    for _ in range(t.depth):
        cur = levels[-1]
        levels.append([(por.keccak256(por.NODE_TAG + cur[i][0] + cur[i + 1][0] + por.word(cur[i][1] + cur[i + 1][1])),
                        cur[i][1] + cur[i + 1][1]) for i in range(0, len(cur), 2)])
    return levels


def _attacks(t: por.Tree, balances: list[por.Row], account: str) -> list[dict[str, Any]]:
    """Proofs of ``account`` in ``t`` changed the ways an attacker would; each must be rejected
    against the root and total in its ``against`` (the tree's, unless said otherwise)."""
    good = por.proof(t, account)
    against = {"epoch": good["epoch"], "asset": good["asset"], "root": good["root"], "total": good["total"],
               "depth": good["depth"]}
    out: list[dict[str, Any]] = []

    def attack(name: str, p: dict[str, Any], onchain: bool = True, against_: dict[str, Any] | None = None) -> None:
        out.append({"name": name, "proof": p, "against": against_ or against, "onchain": onchain})

    def changed(**fields: Any) -> dict[str, Any]:
        p = copy.deepcopy(good)
        p.update(fields)
        return p

    attack("balance of 2^128", changed(balance=str(por.MAX_VALUE)))
    attack("negative balance", changed(balance="-1"), onchain=False)  # no uint256 holds it
    attack("balance raised by one", changed(balance=str(int(good["balance"]) + 1)))
    p = changed()
    p["siblings"][0]["value"] = str(int(p["siblings"][0]["value"]) + 1)
    attack("tampered sibling value", p)
    p = changed()
    p["siblings"][1]["value"] = str(max(0, int(p["siblings"][1]["value"]) - 1))
    attack("sibling value lowered", p)
    p = changed()
    h = bytearray(bytes.fromhex(p["siblings"][0]["hash"][2:]))
    h[31] ^= 1
    p["siblings"][0]["hash"] = _hex(bytes(h))
    attack("tampered sibling hash", p)
    p = changed()
    p["siblings"][-1]["value"] = str(por.MAX_VALUE << (len(p["siblings"]) - 1))
    attack("sibling value too large for its level", p)
    attack("proof one sibling short", changed(siblings=good["siblings"][:-1]))
    attack("proof one sibling short, depth lowered", changed(siblings=good["siblings"][:-1], depth=good["depth"] - 1,
                                                            index=good["index"] & ((1 << (good["depth"] - 1)) - 1)))
    attack("proof one sibling long", changed(siblings=[*good["siblings"], good["siblings"][-1]]))
    attack("index of the other side", changed(index=good["index"] ^ 1))
    attack("leaf from another epoch", changed(epoch=str(int(good["epoch"]) + 1)))
    other = "BTC" if good["asset"] != "BTC" else "ETH"
    attack("leaf from another asset", changed(asset=other, assetId=_hex(por.asset_id(other))))
    attack("leaf from another registry", changed(registry="0x" + "11" * 20), onchain=False)  # on-chain: by a test
    attack("leaf from another chain", changed(chainId="1"), onchain=False)  # on-chain: by a test
    # version 2's fields: the exit address and counters are in the leaf, and version 1's leaf is not
    attack("exit address changed", changed(exitAddress=EXIT_B if good["exitAddress"] != EXIT_B else EXIT_A))
    attack("exit address dropped", changed(exitAddress=por.ZERO_ADDRESS))
    attack("deposited raised by one", changed(deposited=str(int(good["deposited"]) + 1)))
    attack("withdrawn lowered by one", changed(withdrawn=str(int(good["withdrawn"]) - 1)))
    attack("deposited of 2^128", changed(deposited=str(por.MAX_COUNTER)), onchain=False)  # the Vault: by a test
    v1 = {k: v for k, v in good.items() if k not in ("account", "exitAddress", "deposited", "withdrawn")}
    attack("version 2 leaf as version 1", {**copy.deepcopy(v1), "version": 1}, onchain=False)  # no version on chain
    # the level-1 node above the leaf passed off as a leaf: its value as the balance, one level up
    level1 = t.levels[1][good["index"] >> 1]
    attack("internal node as a leaf", changed(balance=str(level1[1]), index=good["index"] >> 1,
                                              depth=good["depth"] - 1, siblings=good["siblings"][1:]))
    # a tree whose parents commit only the sum, published as it is (for its own epoch)
    t7 = por.build(dataclasses.replace(t.params, epoch=t.params.epoch + 7), balances, SECRET)
    levels = _sum_only_levels(t7)
    p = por.proof(t7, account)
    sibs = [levels[lv][(p["index"] >> lv) ^ 1] for lv in range(t7.depth)]
    p["siblings"] = [{"hash": _hex(h), "value": str(v)} for h, v in sibs]
    p["root"], p["total"] = _hex(levels[-1][0][0]), str(levels[-1][0][1])
    attack("parent commits only the sum", p,
           against_={**against, "epoch": p["epoch"], "root": p["root"], "total": p["total"]})
    return out


def generate() -> dict[str, Any]:
    trees: list[dict[str, Any]] = []
    attacks: list[dict[str, Any]] = []
    for asset, balances in TREES.items():
        t = por.build(por.Params(CHAIN_ID, REGISTRY, EPOCH, asset), balances, SECRET)
        trees.append({
            "asset": asset, "assetId": _hex(por.asset_id(asset)), "depth": t.depth, "root": _hex(t.root),
            "total": str(t.total),
            "balances": [_balance_json(row) for row in balances],
            "levels": [[{"hash": _hex(h), "value": str(v)} for h, v in level] for level in t.levels],
            "proofs": [por.proof(t, row[0]) for row in balances if row[1] > 0],
        })
        if asset == "USDT":
            # the sum-only attack is checked against its own publication
            attacks = _attacks(t, balances, "1")
    return {
        "spec": "docs/proof-of-reserves.md, version 2", "chainId": str(CHAIN_ID), "registry": REGISTRY,
        "epoch": str(EPOCH), "secret": _hex(SECRET),
        "tags": {"LEAF_TAG_V2": _hex(por.LEAF_TAG_V2), "NODE_TAG": _hex(por.NODE_TAG), "PAD_TAG": _hex(por.PAD_TAG)},
        "trees": trees, "attacks": attacks,
    }


def _balance_json(row: por.Row) -> dict[str, Any]:
    held = por.holding_of(row)
    return {"account": row[0], "balance": str(row[1]), "exitAddress": held.exit_address,
            "deposited": str(held.deposited), "withdrawn": str(held.withdrawn)}


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1) + "\n"


# ---------------------------------------------------------------------- Solidity


def _siblings_sol(siblings: list[dict[str, str]]) -> str:
    items = ", ".join(f"ReserveRegistry.Sibling({s['hash']}, {s['value']})" for s in siblings)
    return f"_sib{len(siblings)}({items})" if siblings else "new ReserveRegistry.Sibling[](0)"


def _proof_sol(p: dict[str, Any]) -> str:
    return (f"PorProof({p['account']}, {p['epoch']}, {p['assetId']}, {p['accountKey']}, {p['balance']}, {p['salt']}, "
            f"{_checksum(p['exitAddress'])}, {p['deposited']}, {p['withdrawn']}, {p['index']}, "
            f"{_siblings_sol(p['siblings'])})")


def to_solidity(doc: dict[str, Any]) -> str:
    lengths = sorted({len(p["siblings"]) for tr in doc["trees"] for p in tr["proofs"]}
                     | {len(a["proof"]["siblings"]) for a in doc["attacks"] if a["onchain"]})
    lines = [
        "// SPDX-License-Identifier: MIT",
        "// Generated by `python -m dpg.por.vectors` from the proof-of-reserves test vectors",
        "// (tests/por/vectors.json); do not edit. tests/por/test_vectors.py checks it is up to date.",
        "pragma solidity ^0.8.28;",
        "",
        'import {ReserveRegistry} from "../../src/ReserveRegistry.sol";',
        "",
        "/// A version 2 leaf's proof (docs/proof-of-reserves.md): accountKey is the account's key.",
        "struct PorProof {",
        "    uint64 account;",
        "    uint64 epoch;",
        "    bytes32 assetId;",
        "    bytes32 accountKey;",
        "    uint256 balance;",
        "    bytes32 salt;",
        "    address exitAddress;",
        "    uint256 deposited;",
        "    uint256 withdrawn;",
        "    uint256 index;",
        "    ReserveRegistry.Sibling[] siblings;",
        "}",
        "",
        "struct PorTree {",
        "    bytes32 assetId;",
        "    bytes32 root;",
        "    uint256 total;",
        "    uint8 depth;",
        "    PorProof[] proofs;",
        "}",
        "",
        "/// The node of `levels[level][2k]` and `[2k+1]` is `levels[level+1][k]` of the same tree.",
        "struct PorNode {",
        "    bytes32 leftHash;",
        "    uint256 leftValue;",
        "    bytes32 rightHash;",
        "    uint256 rightValue;",
        "    bytes32 hash;",
        "}",
        "",
        "/// A proof that must be rejected against the publication (epoch, assetId, root, total, depth).",
        "struct PorAttack {",
        "    string name;",
        "    uint64 epoch;",
        "    bytes32 assetId;",
        "    bytes32 root;",
        "    uint256 total;",
        "    uint8 depth;",
        "    PorProof proof;",
        "}",
        "",
        "library PorVectors {",
        f"    uint256 internal constant CHAIN_ID = {doc['chainId']};",
        f"    address internal constant REGISTRY = {_checksum(doc['registry'])};",
        f"    uint64 internal constant EPOCH = {doc['epoch']};",
        "",
    ]
    for n in lengths:
        if n == 0:
            continue
        params = ", ".join(f"ReserveRegistry.Sibling memory s{i}" for i in range(n))
        lines += [f"    function _sib{n}({params}) private pure returns (ReserveRegistry.Sibling[] memory out) {{",
                  f"        out = new ReserveRegistry.Sibling[]({n});"]
        lines += [f"        out[{i}] = s{i};" for i in range(n)]
        lines += ["    }", ""]
    lines += ["    function trees() internal pure returns (PorTree[] memory t) {",
              f"        t = new PorTree[]({len(doc['trees'])});"]
    for i, tr in enumerate(doc["trees"]):
        lines += [f"        // {tr['asset']}",
                  f"        t[{i}].assetId = {tr['assetId']};",
                  f"        t[{i}].root = {tr['root']};",
                  f"        t[{i}].total = {tr['total']};",
                  f"        t[{i}].depth = {tr['depth']};",
                  f"        t[{i}].proofs = new PorProof[]({len(tr['proofs'])});"]
        for j, p in enumerate(tr["proofs"]):
            lines.append(f"        t[{i}].proofs[{j}] = {_proof_sol(p)};")
    lines += ["    }", ""]
    nodes = [(lvl[2 * k], lvl[2 * k + 1], up[k]) for tr in doc["trees"]
             for lvl, up in zip(tr["levels"], tr["levels"][1:], strict=False) for k in range(len(up))]
    lines += ["    function nodes() internal pure returns (PorNode[] memory n) {",
              f"        n = new PorNode[]({len(nodes)});"]
    for i, (left, right, up) in enumerate(nodes):
        lines.append(f"        n[{i}] = PorNode({left['hash']}, {left['value']}, {right['hash']}, {right['value']}, "
                     f"{up['hash']});")
    lines += ["    }", ""]
    onchain = [a for a in doc["attacks"] if a["onchain"]]
    lines += ["    function attacks() internal pure returns (PorAttack[] memory a) {",
              f"        a = new PorAttack[]({len(onchain)});"]
    for i, a in enumerate(onchain):
        g = a["against"]
        lines.append(f"        a[{i}] = PorAttack({json.dumps(a['name'])}, {g['epoch']}, "
                     f"{_hex(por.asset_id(g['asset']))}, {g['root']}, {g['total']}, {g['depth']}, "
                     f"{_proof_sol(a['proof'])});")
    lines += ["    }", "}", ""]
    return "\n".join(lines)


def _checksum(address: str) -> str:
    """EIP-55 mixed case, which solc requires of an address literal."""
    raw = address.lower().removeprefix("0x")
    h = por.keccak256(raw.encode()).hex()
    return "0x" + "".join(c.upper() if c.isalpha() and int(h[i], 16) >= 8 else c for i, c in enumerate(raw))


def main(argv: list[str]) -> int:
    doc = generate()
    JSON_PATH.write_text(to_json(doc))
    SOL_PATH.write_text(to_solidity(doc))
    sys.stderr.write(f"wrote {JSON_PATH} and {SOL_PATH}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
