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
from dataclasses import dataclass, field
from typing import Any

from Crypto.Hash import keccak as _keccak

VERSION = 2  # the leaf and proof file built now; version 1 (no exit address, no counters) still verifies
MAX_VALUE = 1 << 128  # a balance is 0 <= v < 2**128
MAX_COUNTER = 1 << 128  # a deposited or withdrawn counter is 0 <= v < 2**128 (a uint256 word on chain)
ZERO_ADDRESS = "0x" + "00" * 20  # the exit address of an account that registered none


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


LEAF_TAG = keccak256(b"DPG-POR-LEAF-v1")  # version 1's leaves (superseded)
LEAF_TAG_V2 = keccak256(b"DPG-POR-LEAF-v2")
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


def leaf_hash_v2(chain_id: int, registry: str, epoch: int, asset: bytes, key: bytes, balance: int, s: bytes,
                 exit_address: str, deposited: int, withdrawn: int) -> bytes:
    """A version 2 leaf: version 1's fields, then the account's exit address (address(0): none) and
    its deposited and withdrawn counters (docs/proof-of-reserves.md, "Version 2")."""
    if not 0 <= balance < MAX_VALUE:
        raise ProofError(f"balance {balance} is outside [0, 2**128)")
    if epoch < 0 or epoch >= 1 << 64:
        raise ProofError("epoch must fit a uint64")
    if not (0 <= deposited < MAX_COUNTER and 0 <= withdrawn < MAX_COUNTER):
        raise ProofError("deposited and withdrawn must be in [0, 2**128)")
    inner = (LEAF_TAG_V2 + word(chain_id) + address_word(registry) + word(epoch) + asset + key + word(balance) + s
             + address_word(exit_address) + word(deposited) + word(withdrawn))
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


@dataclass(frozen=True, slots=True)
class Holding:
    """One account's leaf inputs besides its balance (version 2): its exit address (``ZERO_ADDRESS``:
    none registered) and its deposited and withdrawn counters at the epoch's seq."""

    exit_address: str = ZERO_ADDRESS
    deposited: int = 0
    withdrawn: int = 0


NO_HOLDING = Holding()

# An input row of ``build``: (account, balance), or (account, balance, exit address, deposited, withdrawn)
Row = tuple[str, int] | tuple[str, int, str, int, int]


@dataclass(slots=True)
class Tree:
    params: Params
    depth: int
    leaves: list[tuple[bytes, int]]  # every leaf position, pads included: (hash, value)
    accounts: dict[str, tuple[int, int, bytes]]  # account id -> (index, balance, salt)
    levels: list[list[tuple[bytes, int]]]  # levels[0] = leaves ... levels[depth] = [root]
    version: int = VERSION  # the leaves' version
    holdings: dict[str, Holding] = field(default_factory=dict)  # version 2: account id -> its other leaf inputs
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


def exit_address(address: str) -> str:
    """An exit address as the leaf and the proof file carry it: lower-case 0x and 40 hex digits."""
    address_word(address)  # refuses what is not 20 bytes of hex
    return "0x" + address[2:].lower() if address.startswith(("0x", "0X")) else "0x" + address.lower()


def holding_of(row: Row) -> Holding:
    """The other leaf inputs of an input row (none given: no exit address, zero counters), checked."""
    if len(row) == 2:
        return NO_HOLDING
    _, _, exit_addr, deposited, withdrawn = row
    if not (0 <= deposited < MAX_COUNTER and 0 <= withdrawn < MAX_COUNTER):
        raise ProofError(f"account {row[0]!r}: deposited and withdrawn must be in [0, 2**128)")
    return Holding(exit_address(exit_addr), deposited, withdrawn)


def build(params: Params, balances: Iterable[Row], secret: bytes) -> Tree:
    """The tree of one asset (version 2 leaves): accounts with a zero balance are left out; a
    negative balance or one of 2**128 or more is refused; an account may appear once."""
    aid = params.asset_id
    real: list[tuple[bytes, int, str, bytes]] = []
    holdings: dict[str, Holding] = {}
    seen: set[str] = set()
    for row in balances:
        account, balance = row[0], row[1]
        if account in seen:
            raise ProofError(f"account {account!r} appears twice")
        seen.add(account)
        if balance < 0:
            raise ProofError(f"account {account!r} has a negative balance")
        if balance >= MAX_VALUE:
            raise ProofError(f"account {account!r} has a balance of 2**128 or more")
        held = holding_of(row)
        if balance == 0:
            continue
        key = account_key(account)
        s = salt(secret, params.epoch, aid, key)
        holdings[account] = held
        real.append((leaf_hash_v2(params.chain_id, params.registry, params.epoch, aid, key, balance, s,
                                  held.exit_address, held.deposited, held.withdrawn), balance, account, s))
    real.sort(key=lambda r: r[0])
    depth = depth_for(len(real))
    leaves = [(h, v) for h, v, _, _ in real]
    for i in range(len(real), 1 << depth):
        leaves.append((pad_hash(params.chain_id, params.registry, params.epoch, aid, i,
                                pad_salt(secret, params.epoch, aid, i)), 0))
    accounts = {acct: (i, v, s) for i, (_, v, acct, s) in enumerate(real)}
    return Tree(params, depth, leaves, accounts, _levels(leaves, depth), VERSION, holdings)


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def account_number(account: str) -> int | None:
    """The account id as the Vault takes it (a uint64), None when it is not a plain decimal uint64."""
    return int(account) if account.isdigit() and str(int(account)) == account and int(account) < 1 << 64 else None


def holding_json(account: str, held: Holding) -> dict[str, Any]:
    """A version 2 proof file's fields beside version 1's."""
    return {"account": account_number(account), "exitAddress": held.exit_address, "deposited": str(held.deposited),
            "withdrawn": str(held.withdrawn)}


def proof(tree: Tree, account: str) -> dict[str, Any]:
    """The proof file of one account (JSON-ready; big numbers as decimal strings)."""
    found = tree.accounts.get(account)
    if found is None:
        raise ProofError(f"account {account!r} has no leaf in this tree (a zero balance is left out)")
    index, balance, s = found
    levels = tree.siblings_json()
    if tree._head is None:
        p = tree.params
        tree._head = {"version": tree.version, "chainId": str(p.chain_id), "registry": p.registry,
                      "epoch": str(p.epoch), "asset": p.asset, "assetId": _hex(p.asset_id)}
        tree._tail = {"depth": tree.depth, "root": _hex(tree.root), "total": str(tree.total)}
    assert tree._tail is not None
    extra = holding_json(account, tree.holdings.get(account, NO_HOLDING)) if tree.version >= 2 else {}
    return {
        **tree._head, "accountId": account, "accountKey": _hex(account_key(account)), "balance": str(balance),
        "salt": _hex(s), **extra, "index": index,
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


def proof_holding(p: dict[str, Any]) -> Holding:
    """The exit address and counters of a version 2 proof file, checked."""
    account, exit_addr = p.get("account"), p.get("exitAddress")
    if account is not None and (isinstance(account, bool) or not isinstance(account, int)
                                or str(account) != p.get("accountId")):
        raise ProofError("account must be the accountId as a number (or null)")
    if not isinstance(exit_addr, str) or not exit_addr.startswith("0x") or len(exit_addr) != 42:
        raise ProofError("exitAddress must be 0x and 40 hex digits")
    deposited = _int(p.get("deposited"), "deposited")
    withdrawn = _int(p.get("withdrawn"), "withdrawn")
    if deposited >= MAX_COUNTER or withdrawn >= MAX_COUNTER:
        raise ProofError("deposited and withdrawn must be below 2**128")
    return Holding(exit_address(exit_addr), deposited, withdrawn)


def verify(p: dict[str, Any], root: bytes | None = None, total: int | None = None) -> tuple[bytes, int]:
    """Check a proof file (version 2, or a superseded version 1 one); returns the (root, total) it
    proves. With ``root``/``total`` given (e.g. read from the registry), they must match too.
    Raises ProofError with the reason."""
    version = p.get("version")
    if version not in (1, 2) or isinstance(version, bool):
        raise ProofError(f"unknown proof version {version!r}")
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
    s = _bytes32(p.get("salt"), "salt")
    if version == 1:
        h = leaf_hash(chain_id, registry, epoch, aid, key, balance, s)
    else:
        held = proof_holding(p)
        h = leaf_hash_v2(chain_id, registry, epoch, aid, key, balance, s, held.exit_address, held.deposited,
                         held.withdrawn)
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


def _account_json(tree: Tree, account: str, index: int, balance: int, s: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index, "balance": str(balance), "salt": _hex(s)}
    if tree.version >= 2:
        held = tree.holdings.get(account, NO_HOLDING)
        out.update(exitAddress=held.exit_address, deposited=str(held.deposited), withdrawn=str(held.withdrawn))
    return out


def tree_json(tree: Tree) -> dict[str, Any]:
    """The operator's tree file: every leaf (pads included) and, privately, each account's index,
    balance, salt (and, version 2, exit address and counters). ``public_tree`` strips the accounts
    for publication."""
    p = tree.params
    return {
        "version": tree.version, "chainId": str(p.chain_id), "registry": p.registry, "epoch": str(p.epoch),
        "asset": p.asset, "assetId": _hex(p.asset_id), "depth": tree.depth, "root": _hex(tree.root),
        "total": str(tree.total), "leafCount": len(tree.accounts),
        "leaves": [[_hex(h), str(v)] for h, v in tree.leaves],
        "accounts": {a: _account_json(tree, a, i, b, s) for a, (i, b, s) in tree.accounts.items()},
    }


def public_tree(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "accounts"}


def load_tree(doc: dict[str, Any]) -> Tree:
    """A tree from its file (version 1 or 2); every node is recomputed from the leaves (and checked
    against the root)."""
    params = Params(_int(doc["chainId"], "chainId"), doc["registry"], _int(doc["epoch"], "epoch"), doc["asset"])
    version = doc.get("version", 1)
    if version not in (1, 2):
        raise ProofError(f"unknown tree version {version!r}")
    depth = int(doc["depth"])
    leaves = [(_bytes32(h, "leaf"), _int(v, "leaf value")) for h, v in doc["leaves"]]
    if len(leaves) != 1 << depth:
        raise ProofError(f"a tree of depth {depth} has {1 << depth} leaves, not {len(leaves)}")
    if any(v >= MAX_VALUE for _, v in leaves):
        raise ProofError("a leaf value is 2**128 or more")
    listed = doc.get("accounts", {})
    accounts = {a: (int(x["index"]), _int(x["balance"], "balance"), _bytes32(x["salt"], "salt"))
                for a, x in listed.items()}
    holdings = {a: proof_holding({"accountId": a, "account": None, **x}) for a, x in listed.items()} \
        if version >= 2 else {}
    tree = Tree(params, depth, leaves, accounts, _levels(leaves, depth), version, holdings)
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
