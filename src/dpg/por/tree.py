"""The proof-of-reserves Merkle sum tree, exactly as published in docs/proof-of-reserves.md.

One tree per asset and epoch. Every node commits the hashes and the values of both children, so
no node can show one sum to its left and another to its right; leaves are double-hashed under
their own tag, so no internal node can pass for a leaf. Every field is a Solidity ``abi.encode``
word (all of them are static types: 32 bytes each) and every hash is Ethereum's keccak-256.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from Crypto.Hash import keccak as _keccak

VERSION = 1
MAX_VALUE = 1 << 128  # a balance is 0 <= v < 2**128


def _public_keccak256(data: bytes) -> bytes:
    digest: bytes = _keccak.new(digest_bits=256, data=data).digest()
    return digest


def _raw_keccak() -> Callable[[bytes], bytes]:
    """safe-pysha3's C Keccak (the least cost per call); else pycryptodome's C Keccak without its
    per-call object layer; the public API where neither is there."""
    try:
        import sha3  # safe-pysha3

        make = sha3.keccak_256
        if make(b"").digest() == _public_keccak256(b""):
            return lambda data: make(data).digest()
    except ImportError:
        pass
    try:
        from Crypto.Hash.keccak import _raw_keccak_lib as lib  # type: ignore[attr-defined]
        from Crypto.Util._raw_api import (  # type: ignore[attr-defined]  # the stubs lack c_ubyte
            SmartPointer,
            VoidPointer,
            c_size_t,
            c_ubyte,
            c_uint8_ptr,
            create_string_buffer,
            get_raw_buffer,
        )
    except ImportError:
        return _public_keccak256
    init, absorb, digest, destroy = lib.keccak_init, lib.keccak_absorb, lib.keccak_digest, lib.keccak_destroy
    capacity, rounds, out, pad = c_size_t(64), c_ubyte(24), c_size_t(32), c_ubyte(0x01)

    def keccak256(data: bytes) -> bytes:
        state = VoidPointer()
        init(state.address_of(), capacity, rounds)
        st = SmartPointer(state.get(), destroy)
        absorb(st.get(), c_uint8_ptr(data), c_size_t(len(data)))
        buf = create_string_buffer(32)  # type: ignore[call-arg]  # the stubs' signature is wrong
        digest(st.get(), buf, out, pad)
        raw: bytes = get_raw_buffer(buf)
        return raw

    return keccak256 if keccak256(b"") == _public_keccak256(b"") else _public_keccak256


keccak256: Callable[[bytes], bytes] = _raw_keccak()


LEAF_TAG = keccak256(b"DPG-POR-LEAF-v1")
NODE_TAG = keccak256(b"DPG-POR-NODE-v1")
PAD_TAG = keccak256(b"DPG-POR-PAD-v1")


class ProofError(ValueError):
    """A tree input or a proof that does not hold, with the reason."""


def word(v: int) -> bytes:
    """abi.encode of a uintN (N <= 256): 32 bytes, big-endian."""
    if v < 0 or v >= 1 << 256:
        raise ProofError(f"{v} does not fit a uint256")
    return v.to_bytes(32, "big")


def address_word(address: str) -> bytes:
    """abi.encode of an address: 12 zero bytes and the 20 address bytes."""
    raw = address[2:] if address.startswith(("0x", "0X")) else address
    try:
        b = bytes.fromhex(raw)
    except ValueError:
        raise ProofError(f"{address!r} is not an address") from None
    if len(b) != 20:
        raise ProofError(f"{address!r} is not a 20-byte address")
    return bytes(12) + b


def asset_id(symbol: str) -> bytes:
    return keccak256(symbol.encode())


def account_key(account_id: str) -> bytes:
    return keccak256(("DPG-POR-ACCOUNT-v1:" + account_id).encode())


def salt(secret: bytes, epoch: int, asset: bytes, key: bytes) -> bytes:
    return hmac.digest(secret, word(epoch) + asset + key, hashlib.sha256)


def pad_salt(secret: bytes, epoch: int, asset: bytes, i: int) -> bytes:
    return hmac.digest(secret, word(epoch) + asset + word(i), hashlib.sha256)


def leaf_hash(chain_id: int, registry: str, epoch: int, asset: bytes, key: bytes, balance: int, s: bytes) -> bytes:
    if not 0 <= balance < MAX_VALUE:
        raise ProofError(f"balance {balance} is outside [0, 2**128)")
    if epoch < 0 or epoch >= 1 << 64:
        raise ProofError("epoch must fit a uint64")
    inner = LEAF_TAG + word(chain_id) + address_word(registry) + word(epoch) + asset + key + word(balance) + s
    return keccak256(keccak256(inner))


def pad_hash(chain_id: int, registry: str, epoch: int, asset: bytes, i: int, s: bytes) -> bytes:
    inner = PAD_TAG + word(chain_id) + address_word(registry) + word(epoch) + asset + word(i) + s
    return keccak256(keccak256(inner))


def node_hash(left: bytes, left_value: int, right: bytes, right_value: int) -> bytes:
    return keccak256(NODE_TAG + left + word(left_value) + right + word(right_value))


def depth_for(n: int) -> int:
    """max(1, ceil(log2(n))); an empty tree has depth 1 (two pad leaves)."""
    return max(1, (n - 1).bit_length()) if n > 1 else 1


@dataclass(frozen=True, slots=True)
class Params:
    chain_id: int
    registry: str
    epoch: int
    asset: str

    @property
    def asset_id(self) -> bytes:
        return asset_id(self.asset)


@dataclass(slots=True)
class Tree:
    params: Params
    depth: int
    leaves: list[tuple[bytes, int]]  # every leaf position, pads included: (hash, value)
    accounts: dict[str, tuple[int, int, bytes]]  # account id -> (index, balance, salt)
    levels: list[list[tuple[bytes, int]]]  # levels[0] = leaves ... levels[depth] = [root]
    _json_levels: list[list[dict[str, str]]] | None = None  # the same, as proof siblings, made once
    _head: dict[str, Any] | None = None  # the fields every proof of this tree shares
    _tail: dict[str, Any] | None = None

    def siblings_json(self) -> list[list[dict[str, str]]]:
        if self._json_levels is None:
            self._json_levels = [[{"hash": "0x" + h.hex(), "value": str(v)} for h, v in level]
                                 for level in self.levels[:-1]]
        return self._json_levels

    @property
    def root(self) -> bytes:
        return self.levels[-1][0][0]

    @property
    def total(self) -> int:
        return self.levels[-1][0][1]


def _levels(leaves: list[tuple[bytes, int]], depth: int) -> list[list[tuple[bytes, int]]]:
    levels = [leaves]
    cur = leaves
    for _ in range(depth):
        cur = [(node_hash(cur[i][0], cur[i][1], cur[i + 1][0], cur[i + 1][1]), cur[i][1] + cur[i + 1][1])
               for i in range(0, len(cur), 2)]
        levels.append(cur)
    return levels


def build(params: Params, balances: Iterable[tuple[str, int]], secret: bytes) -> Tree:
    """The tree of one asset: accounts with a zero balance are left out; a negative balance or one
    of 2**128 or more is refused; an account may appear once."""
    aid = params.asset_id
    real: list[tuple[bytes, int, str, bytes]] = []
    seen: set[str] = set()
    for account, balance in balances:
        if account in seen:
            raise ProofError(f"account {account!r} appears twice")
        seen.add(account)
        if balance < 0:
            raise ProofError(f"account {account!r} has a negative balance")
        if balance >= MAX_VALUE:
            raise ProofError(f"account {account!r} has a balance of 2**128 or more")
        if balance == 0:
            continue
        key = account_key(account)
        s = salt(secret, params.epoch, aid, key)
        real.append((leaf_hash(params.chain_id, params.registry, params.epoch, aid, key, balance, s), balance,
                     account, s))
    real.sort(key=lambda r: r[0])
    depth = depth_for(len(real))
    leaves = [(h, v) for h, v, _, _ in real]
    for i in range(len(real), 1 << depth):
        leaves.append((pad_hash(params.chain_id, params.registry, params.epoch, aid, i,
                                pad_salt(secret, params.epoch, aid, i)), 0))
    accounts = {acct: (i, v, s) for i, (_, v, acct, s) in enumerate(real)}
    return Tree(params, depth, leaves, accounts, _levels(leaves, depth))


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def proof(tree: Tree, account: str) -> dict[str, Any]:
    """The proof file of one account (JSON-ready; big numbers as decimal strings)."""
    found = tree.accounts.get(account)
    if found is None:
        raise ProofError(f"account {account!r} has no leaf in this tree (a zero balance is left out)")
    index, balance, s = found
    levels = tree.siblings_json()
    if tree._head is None:
        p = tree.params
        tree._head = {"version": VERSION, "chainId": str(p.chain_id), "registry": p.registry, "epoch": str(p.epoch),
                      "asset": p.asset, "assetId": _hex(p.asset_id)}
        tree._tail = {"depth": tree.depth, "root": _hex(tree.root), "total": str(tree.total)}
    assert tree._tail is not None
    return {
        **tree._head, "accountId": account, "accountKey": _hex(account_key(account)), "balance": str(balance),
        "salt": _hex(s), "index": index,
        "siblings": [levels[level][(index >> level) ^ 1] for level in range(tree.depth)], **tree._tail,
    }


def _int(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, str)):
        raise ProofError(f"{what} must be a decimal string")
    s = str(x)
    if not s.isdigit():
        raise ProofError(f"{what} must be a non-negative decimal integer")
    return int(s)


def _bytes32(x: Any, what: str) -> bytes:
    if not isinstance(x, str) or not x.startswith("0x") or len(x) != 66:
        raise ProofError(f"{what} must be 0x and 64 hex digits")
    try:
        return bytes.fromhex(x[2:])
    except ValueError:
        raise ProofError(f"{what} is not hex") from None


def verify(p: dict[str, Any], root: bytes | None = None, total: int | None = None) -> tuple[bytes, int]:
    """Check a proof file; returns the (root, total) it proves. With ``root``/``total`` given
    (e.g. read from the registry), they must match too. Raises ProofError with the reason."""
    if p.get("version") != VERSION:
        raise ProofError(f"unknown proof version {p.get('version')!r}")
    chain_id = _int(p.get("chainId"), "chainId")
    epoch = _int(p.get("epoch"), "epoch")
    balance = _int(p.get("balance"), "balance")
    registry = p.get("registry")
    asset = p.get("asset")
    account = p.get("accountId")
    if not isinstance(registry, str) or not isinstance(asset, str) or not isinstance(account, str):
        raise ProofError("registry, asset and accountId must be strings")
    aid = asset_id(asset)
    if _bytes32(p.get("assetId"), "assetId") != aid:
        raise ProofError("assetId is not keccak256(asset)")
    key = account_key(account)
    if _bytes32(p.get("accountKey"), "accountKey") != key:
        raise ProofError("accountKey does not belong to accountId")
    depth = p.get("depth")
    index = p.get("index")
    siblings = p.get("siblings")
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 64:
        raise ProofError("depth must be an integer in [1, 64]")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 1 << depth:
        raise ProofError("index is outside the tree")
    if not isinstance(siblings, list) or len(siblings) != depth:
        raise ProofError(f"a proof of depth {depth} needs exactly {depth} siblings")
    h = leaf_hash(chain_id, registry, epoch, aid, key, balance, _bytes32(p.get("salt"), "salt"))
    v = balance
    for level, sib in enumerate(siblings):
        if not isinstance(sib, dict):
            raise ProofError("each sibling is {hash, value}")
        sh = _bytes32(sib.get("hash"), f"sibling {level} hash")
        sv = _int(sib.get("value"), f"sibling {level} value")
        if sv >= MAX_VALUE << level:
            raise ProofError(f"sibling {level} value is larger than a subtree of that height can hold")
        if (index >> level) & 1:
            h, v = node_hash(sh, sv, h, v), sv + v
        else:
            h, v = node_hash(h, v, sh, sv), v + sv
    claimed_root = _bytes32(p.get("root"), "root")
    claimed_total = _int(p.get("total"), "total")
    if h != claimed_root or v != claimed_total:
        raise ProofError("the path does not lead to the stated root and total")
    if root is not None and h != root:
        raise ProofError(f"the root {_hex(h)} is not the published root {_hex(root)}")
    if total is not None and v != total:
        raise ProofError(f"the total {v} is not the published total {total}")
    return h, v


def tree_json(tree: Tree) -> dict[str, Any]:
    """The operator's tree file: every leaf (pads included) and, privately, each account's index,
    balance and salt. ``public_tree`` strips the accounts for publication."""
    p = tree.params
    return {
        "version": VERSION, "chainId": str(p.chain_id), "registry": p.registry, "epoch": str(p.epoch),
        "asset": p.asset, "assetId": _hex(p.asset_id), "depth": tree.depth, "root": _hex(tree.root),
        "total": str(tree.total), "leafCount": len(tree.accounts),
        "leaves": [[_hex(h), str(v)] for h, v in tree.leaves],
        "accounts": {a: {"index": i, "balance": str(b), "salt": _hex(s)} for a, (i, b, s) in tree.accounts.items()},
    }


def public_tree(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "accounts"}


def load_tree(doc: dict[str, Any]) -> Tree:
    """A tree from its file; every node is recomputed from the leaves (and checked against the root)."""
    params = Params(_int(doc["chainId"], "chainId"), doc["registry"], _int(doc["epoch"], "epoch"), doc["asset"])
    depth = int(doc["depth"])
    leaves = [(_bytes32(h, "leaf"), _int(v, "leaf value")) for h, v in doc["leaves"]]
    if len(leaves) != 1 << depth:
        raise ProofError(f"a tree of depth {depth} has {1 << depth} leaves, not {len(leaves)}")
    if any(v >= MAX_VALUE for _, v in leaves):
        raise ProofError("a leaf value is 2**128 or more")
    accounts = {a: (int(x["index"]), _int(x["balance"], "balance"), _bytes32(x["salt"], "salt"))
                for a, x in doc.get("accounts", {}).items()}
    tree = Tree(params, depth, leaves, accounts, _levels(leaves, depth))
    if _hex(tree.root) != doc["root"] or str(tree.total) != str(doc["total"]):
        raise ProofError("the leaves do not add up to the stated root and total")
    return tree


def audit(doc: dict[str, Any]) -> Sequence[str]:
    """Every check a third party can make of a published tree: empty when it holds."""
    try:
        load_tree(public_tree(doc))
    except (ProofError, KeyError, TypeError, ValueError) as e:
        return [str(e)]
    return []
