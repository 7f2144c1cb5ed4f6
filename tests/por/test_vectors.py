"""The shared test vectors: generated deterministically, reproduced byte for byte by tree.py, and
checked against an independent encoding (eth_abi + eth_utils' keccak) of the specification."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from dpg.por import tree as por
from dpg.por import vectors

DOC: dict[str, Any] = json.loads(vectors.JSON_PATH.read_text())


def test_vectors_file_is_what_the_generator_makes() -> None:
    doc = vectors.generate()
    assert vectors.to_json(doc) == vectors.JSON_PATH.read_text(), "run python -m dpg.por.vectors"
    assert vectors.to_solidity(doc) == vectors.SOL_PATH.read_text(), "run python -m dpg.por.vectors"


def test_generation_is_deterministic() -> None:
    assert vectors.to_json(vectors.generate()) == vectors.to_json(vectors.generate())


def test_tags_by_an_independent_keccak() -> None:
    for name, text in (("LEAF_TAG_V2", "DPG-POR-LEAF-v2"), ("NODE_TAG", "DPG-POR-NODE-v1"),
                       ("PAD_TAG", "DPG-POR-PAD-v1")):
        assert DOC["tags"][name] == "0x" + keccak(text=text).hex()


def _independent_leaf(chain_id: int, registry: str, epoch: int, asset: str, b: dict[str, str],
                      secret: bytes) -> bytes:
    aid = keccak(text=asset)
    key = keccak(text="DPG-POR-ACCOUNT-v1:" + b["account"])
    s = hmac.new(secret, encode(["uint64", "bytes32", "bytes32"], [epoch, aid, key]), hashlib.sha256).digest()
    inner = encode(["bytes32", "uint256", "address", "uint64", "bytes32", "bytes32", "uint256", "bytes32", "address",
                    "uint256", "uint256"],
                   [keccak(text="DPG-POR-LEAF-v2"), chain_id, registry, epoch, aid, key, int(b["balance"]), s,
                    b["exitAddress"], int(b["deposited"]), int(b["withdrawn"])])
    return keccak(keccak(inner))


def _independent_pad(chain_id: int, registry: str, epoch: int, asset: str, i: int, secret: bytes) -> bytes:
    aid = keccak(text=asset)
    s = hmac.new(secret, encode(["uint64", "bytes32", "uint256"], [epoch, aid, i]), hashlib.sha256).digest()
    inner = encode(["bytes32", "uint256", "address", "uint64", "bytes32", "uint256", "bytes32"],
                   [keccak(text="DPG-POR-PAD-v1"), chain_id, registry, epoch, aid, i, s])
    return keccak(keccak(inner))


def _independent_node(lh: bytes, lv: int, rh: bytes, rv: int) -> bytes:
    return keccak(encode(["bytes32", "bytes32", "uint256", "bytes32", "uint256"],
                         [keccak(text="DPG-POR-NODE-v1"), lh, lv, rh, rv]))


@pytest.mark.parametrize("t", DOC["trees"], ids=lambda t: t["asset"])
def test_every_leaf_and_node_by_an_independent_encoding(t: dict[str, Any]) -> None:
    chain_id, registry, epoch = int(DOC["chainId"]), DOC["registry"], int(DOC["epoch"])
    secret = bytes.fromhex(DOC["secret"][2:])
    real = sorted((_independent_leaf(chain_id, registry, epoch, t["asset"], b, secret),
                   int(b["balance"])) for b in t["balances"] if int(b["balance"]) > 0)
    depth = max(1, (len(real) - 1).bit_length())
    assert t["depth"] == depth
    leaves = real + [(_independent_pad(chain_id, registry, epoch, t["asset"], i, secret), 0)
                     for i in range(len(real), 1 << depth)]
    level = leaves
    for got in t["levels"]:
        assert [(bytes.fromhex(x["hash"][2:]), int(x["value"])) for x in got] == level
        level = [(_independent_node(level[i][0], level[i][1], level[i + 1][0], level[i + 1][1]),
                  level[i][1] + level[i + 1][1]) for i in range(0, len(level) - 1, 2)]
    assert t["root"] == t["levels"][-1][0]["hash"]
    assert int(t["total"]) == sum(v for _, v in real)


@pytest.mark.parametrize("t", DOC["trees"], ids=lambda t: t["asset"])
def test_tree_py_reproduces_the_vectors_byte_for_byte(t: dict[str, Any]) -> None:
    params = por.Params(int(DOC["chainId"]), DOC["registry"], int(DOC["epoch"]), t["asset"])
    built = por.build(params, [(b["account"], int(b["balance"]), b["exitAddress"], int(b["deposited"]),
                                int(b["withdrawn"])) for b in t["balances"]], bytes.fromhex(DOC["secret"][2:]))
    assert [[{"hash": "0x" + h.hex(), "value": str(v)} for h, v in level] for level in built.levels] == t["levels"]
    assert json.dumps([por.proof(built, p["accountId"]) for p in t["proofs"]]) == json.dumps(t["proofs"])
    for p in t["proofs"]:
        assert por.verify(p, bytes.fromhex(t["root"][2:]), int(t["total"])) == (built.root, built.total)


@pytest.mark.parametrize("attack", DOC["attacks"], ids=lambda a: a["name"])
def test_every_attack_is_rejected(attack: dict[str, Any]) -> None:
    against = attack["against"]
    with pytest.raises(por.ProofError):
        por.verify(attack["proof"], bytes.fromhex(against["root"][2:]), int(against["total"]))


def test_the_attacks_cover_the_specification() -> None:
    names = {a["name"] for a in DOC["attacks"]}
    for needed in ("balance of 2^128", "negative balance", "tampered sibling value", "tampered sibling hash",
                   "proof one sibling short", "proof one sibling long", "leaf from another epoch",
                   "leaf from another asset", "leaf from another registry", "leaf from another chain",
                   "internal node as a leaf", "parent commits only the sum", "exit address changed",
                   "exit address dropped", "deposited raised by one", "withdrawn lowered by one",
                   "version 2 leaf as version 1"):
        assert needed in names
