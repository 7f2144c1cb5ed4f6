"""The vault's escape hatch seen from Python: its calls (a forced withdrawal request, the freezes, a
claim, the signed zero answer), its views and its ForcedWithdrawalRequested event, and the
transaction each action of a v2 proof file makes.

A user who holds a v2 proof file (``/api/v1/por/proof``: the leaf with its exit address and the
deposited/withdrawn counters) and the exit address's key can, with no help from the exchange:
``requestForcedWithdrawal(leaf)``; once the grace period passed unserved, ``freezeUnserved(requestId)``
(or ``freezeSilent()`` when no proof was published for the silence period); then ``claim(leaf)``
against the frozen epoch's root. The leaf's struct is the Vault's ``LeafV2``:
``(uint64 account, bytes32 assetId, uint256 balance, bytes32 salt, address exitAddress,
uint256 deposited, uint256 withdrawn, uint256 index, (bytes32 hash, uint256 value)[] siblings)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_utils.crypto import keccak

from dpg.chain.contracts import encode_call
from dpg.chain.rpc import Rpc, RpcError, to_int
from dpg.chain.signer import checksum

LEAF = "(uint64,bytes32,uint256,bytes32,address,uint256,uint256,uint256,(bytes32,uint256)[])"
REQUEST = f"requestForcedWithdrawal({LEAF})"
CLAIM = f"claim({LEAF})"
FREEZE_UNSERVED = "freezeUnserved(bytes32)"
FREEZE_SILENT = "freezeSilent()"
ANSWER_ZERO = "answerForcedZero(bytes32,uint256,bytes[])"
FORCED_REQUEST = "forcedRequest(bytes32)"
FORCED_REQUEST_FIELDS = ["uint64", "address", "address", "uint64", "bool"]

FORCED_EVENT = "ForcedWithdrawalRequested(bytes32,uint64,address,address,uint64)"
FORCED_TOPIC = "0x" + keccak(text=FORCED_EVENT).hex()
SERVED_TOPIC = "0x" + keccak(text="ForcedWithdrawalServed(bytes32,bytes32)").hex()
FROZEN_TOPIC = "0x" + keccak(text="Frozen(uint8,uint64)").hex()
CLAIMED_TOPIC = "0x" + keccak(text="Claimed(uint64,bytes32,address,uint256)").hex()
ZERO_ADDRESS = "0x" + "00" * 20


class ProofFileError(ValueError):
    """A proof file that is not a v2 proof with an exit address."""


@dataclass(frozen=True, slots=True)
class ForcedLog:
    """One ForcedWithdrawalRequested event as a node reported it."""

    request_id: str  # 0x + 64 hex
    account: int
    token: str  # lower-case; the zero address for the native coin
    exit_address: str  # lower-case
    requested_at: int  # the chain's unix seconds
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str


def decode_forced(entry: dict[str, Any]) -> ForcedLog | None:
    """The ForcedWithdrawalRequested event in ``entry`` (an eth_getLogs entry), or None."""
    try:
        topics = [str(t).lower() for t in entry["topics"]]
        if len(topics) != 4 or topics[0] != FORCED_TOPIC or entry.get("removed"):
            return None
        exit_address, requested_at = decode(["address", "uint64"], bytes.fromhex(str(entry["data"])[2:]))
        account, token = int(topics[2], 16), int(topics[3], 16)
        if account >= 2**64 or token >= 2**160:
            return None
        return ForcedLog(topics[1], account, "0x" + token.to_bytes(20, "big").hex(), str(exit_address).lower(),
                         int(requested_at), str(entry["transactionHash"]).lower(), to_int(entry["logIndex"]),
                         to_int(entry["blockNumber"]), str(entry["blockHash"]).lower())
    except (KeyError, ValueError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class ForcedRequest:
    """The vault's record of a forced withdrawal request (``forcedRequest(requestId)``)."""

    account: int
    token: str
    exit_address: str
    requested_at: int  # 0: no such request
    served: bool


def forced_request(rpc: Rpc, vault: str, request_id: str, block: str = "latest") -> ForcedRequest:
    raw = rpc.eth_call(vault, encode_call(FORCED_REQUEST, bytes.fromhex(request_id[2:])), block)
    account, token, exit_address, requested_at, served = decode(FORCED_REQUEST_FIELDS, raw)
    return ForcedRequest(int(account), str(token).lower(), str(exit_address).lower(), int(requested_at),
                         bool(served))


def view_uint(rpc: Rpc, contract: str, signature: str, *args: Any) -> int:
    """A view of one word (``forcedGrace()``, ``silencePeriod()``, ``frozenEpoch()``, ``latestEpoch()``,
    ``lastPublishedAt()``, ``depositedOf(uint64,address)``, ``paidOf(uint64,address)``)."""
    (v,) = decode(["uint256"], rpc.eth_call(contract, encode_call(signature, *args)))
    return int(v)


def frozen(rpc: Rpc, vault: str) -> bool:
    (v,) = decode(["bool"], rpc.eth_call(vault, encode_call("frozen()")))
    return bool(v)


def vault_of(rpc: Rpc, registry: str) -> str:
    """The vault a registry names (its home vault)."""
    (v,) = decode(["address"], rpc.eth_call(registry, encode_call("vault()")))
    return str(v).lower()


def token_of(rpc: Rpc, registry: str, asset_id: str) -> str:
    """The token the registry lists for ``asset_id`` (the zero address: the native coin)."""
    token, _ = decode(["address", "bool"], rpc.eth_call(registry, encode_call("assets(bytes32)",
                                                                               bytes.fromhex(asset_id[2:]))))
    return str(token).lower()


# ---------------------------------------------------------------------- a proof file's leaf


def leaf(proof: dict[str, Any]) -> tuple[Any, ...]:
    """The Vault's ``LeafV2`` of a v2 proof file, for ABI encoding."""
    if not isinstance(proof, dict):
        raise ProofFileError("a proof file is a JSON object")
    try:
        if int(proof.get("version", 1)) < 2:
            raise ProofFileError("a v1 proof file has no exit address: download a proof of a later epoch")
        exit_address = str(proof["exitAddress"]).lower()
        if exit_address == ZERO_ADDRESS:
            raise ProofFileError("this proof's leaf has no exit address: register one, then use the proof of the"
                                 " next epoch")
        return (_uint(proof["account"], 64), _bytes32(proof["assetId"]), _uint(proof["balance"]),
                _bytes32(proof["salt"]), checksum(exit_address), _uint(proof["deposited"]), _uint(proof["withdrawn"]),
                _uint(proof["index"]), [(_bytes32(s["hash"]), _uint(s["value"])) for s in proof["siblings"]])
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, ProofFileError):
            raise
        raise ProofFileError(f"not a v2 proof file: {e!r}") from None


def _uint(value: Any, bits: int = 256) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ValueError(f"{value!r} is not a non-negative decimal integer")
    n = int(value)
    if n >= 1 << bits:
        raise ValueError(f"{n} does not fit {bits} bits")
    return n


def _bytes32(value: Any) -> bytes:
    if not isinstance(value, str) or not re.fullmatch(r"0x[0-9a-fA-F]{64}", value):
        raise ValueError(f"{value!r} is not 0x and 64 hex digits")
    return bytes.fromhex(value[2:])


def request_call(proof: dict[str, Any]) -> str:
    return encode_call(REQUEST, leaf(proof))


def claim_call(proof: dict[str, Any]) -> str:
    return encode_call(CLAIM, leaf(proof))


def freeze_unserved_call(request_id: str) -> str:
    return encode_call(FREEZE_UNSERVED, bytes.fromhex(request_id[2:]))


def freeze_silent_call() -> str:
    return encode_call(FREEZE_SILENT)


def answer_zero_call(request_id: str, deadline: int, signatures: list[str]) -> str:
    return encode_call(ANSWER_ZERO, bytes.fromhex(request_id[2:]), deadline,
                       [bytes.fromhex(s[2:]) for s in signatures])


def request_id_of(receipt: dict[str, Any], vault: str) -> str | None:
    """The request id of the ForcedWithdrawalRequested log in a transaction's receipt."""
    for entry in receipt.get("logs", []):
        if str(entry.get("address", "")).lower() == vault.lower():
            lg = decode_forced({**entry, "removed": False})
            if lg is not None:
                return lg.request_id
    return None


def requests_of(rpc: Rpc, vault: str, account: int, token: str, from_block: int = 0) -> list[ForcedLog]:
    """The account's forced withdrawal requests of ``token``, oldest first."""
    topics: list[Any] = [FORCED_TOPIC, None, "0x" + account.to_bytes(32, "big").hex(),
                         "0x" + int(token, 16).to_bytes(32, "big").hex()]
    out = [decode_forced(e) for e in rpc.get_logs(vault, topics, from_block, rpc.block_number())]
    return [lg for lg in out if lg is not None]


# ---------------------------------------------------------------------- a user's exit


ACTIONS = ("request", "freeze_unserved", "freeze_silent", "claim")


class Exit:
    """A v2 proof file and the chain it names: the vault, the token, the account's requests and the
    transaction of each action. Raises ProofFileError for a proof file that cannot escape."""

    def __init__(self, proof: dict[str, Any], rpc: Rpc) -> None:
        self.proof = proof
        self.leaf = leaf(proof)
        self.rpc = rpc
        try:
            self.chain_id = int(proof["chainId"])
            self.registry = str(proof["registry"]).lower()
            self.account = int(proof["account"])
            self.exit_address = str(proof["exitAddress"]).lower()
            self.asset = str(proof["asset"])
            self.asset_id = str(proof["assetId"]).lower()
        except (KeyError, TypeError, ValueError) as e:
            raise ProofFileError(f"not a v2 proof file: {e!r}") from None
        if not re.fullmatch(r"0x[0-9a-f]{40}", self.registry):
            raise ProofFileError("the proof's registry is not an address")
        self.vault = vault_of(rpc, self.registry)
        self.token = token_of(rpc, self.registry, self.asset_id)

    def now(self) -> int:
        return to_int(self.rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"])

    def silent_from(self) -> int:
        """When ``freezeSilent`` becomes possible: the registry's last publish (or when the vault named
        the registry, if later) plus the silence period."""
        last = max(view_uint(self.rpc, self.registry, "lastPublishedAt()"),
                   view_uint(self.rpc, self.vault, "registrySetAt()"))
        return last + view_uint(self.rpc, self.vault, "silencePeriod()")

    def _request_json(self, request_id: str, requested_at: int, served: bool, tx_hash: str | None,
                      grace: int, now: int) -> dict[str, Any]:
        ends = requested_at + grace
        return {"request_id": request_id, "requested_at": requested_at, "served": served, "grace_ends_at": ends,
                "seconds_left": max(0, ends - now), "tx_hash": tx_hash}

    def open_request(self) -> dict[str, Any] | None:
        """The account's open request of this asset (the vault's ``openRequestOf``), or None."""
        (raw,) = decode(["bytes32"], self.rpc.eth_call(self.vault, encode_call(
            "openRequestOf(uint64,address)", self.account, checksum(self.token))))
        if not any(raw):
            return None
        request_id = "0x" + bytes(raw).hex()
        r = forced_request(self.rpc, self.vault, request_id)
        if r.served:
            return None
        return self._request_json(request_id, r.requested_at, r.served, None,
                                  view_uint(self.rpc, self.vault, "forcedGrace()"), self.now())

    def requests(self) -> list[dict[str, Any]]:
        """The account's forced withdrawal requests of this asset, oldest first, with their countdowns
        (from the vault's logs; a node that refuses to search them from the first block: the open one)."""
        grace = view_uint(self.rpc, self.vault, "forcedGrace()")
        now = self.now()
        try:
            found = requests_of(self.rpc, self.vault, self.account, self.token)
        except RpcError:
            open_one = self.open_request()
            return [open_one] if open_one else []
        return [self._request_json(lg.request_id, lg.requested_at,
                                   forced_request(self.rpc, self.vault, lg.request_id).served, lg.tx_hash, grace, now)
                for lg in found]

    def claims(self) -> list[dict[str, Any]]:
        """This leaf's claims (the vault's Claimed logs; none when the node refuses to search them)."""
        topics: list[str | None] = [CLAIMED_TOPIC, "0x" + self.account.to_bytes(32, "big").hex(), self.asset_id]
        try:
            entries = self.rpc.get_logs(self.vault, topics, 0, self.rpc.block_number())
        except RpcError:
            return []
        out = []
        for entry in entries:
            to, amount = decode(["address", "uint256"], bytes.fromhex(str(entry["data"])[2:]))
            out.append({"tx_hash": str(entry["transactionHash"]).lower(), "to": str(to).lower(),
                        "amount": str(int(amount))})
        return out

    def claimed(self) -> bool:
        (v,) = decode(["bool"], self.rpc.eth_call(self.vault, encode_call(
            "claimed(uint64,bytes32)", self.account, bytes.fromhex(self.asset_id[2:]))))
        return bool(v)

    def status(self) -> dict[str, Any]:
        is_frozen = frozen(self.rpc, self.vault)
        now = self.now()
        silent = self.silent_from()
        return {
            "chain_id": self.chain_id, "vault": self.vault, "registry": self.registry, "account": self.account,
            "asset": self.asset, "token": self.token, "exit_address": self.exit_address,
            "proof_epoch": int(self.proof["epoch"]), "proven_balance": str(self.proof["balance"]),
            "chain_time": now, "latest_epoch": view_uint(self.rpc, self.registry, "latestEpoch()"),
            "frozen": is_frozen,
            "frozen_epoch": view_uint(self.rpc, self.vault, "frozenEpoch()") if is_frozen else None,
            "silent_from": silent, "seconds_to_silence": max(0, silent - now),
            "grace": view_uint(self.rpc, self.vault, "forcedGrace()"),
            "requests": self.requests(), "claimed": self.claimed(), "claims": self.claims(),
        }

    def transaction(self, action: str, request_id: str | None = None) -> dict[str, Any]:
        """The transaction of ``action`` (ACTIONS) for the exit address to send: to, data, value, chainId.
        ``freeze_unserved`` names ``request_id``, by default the account's open request."""
        if action == "request":
            data = request_call(self.proof)
        elif action == "claim":
            data = claim_call(self.proof)
        elif action == "freeze_silent":
            data = freeze_silent_call()
        elif action == "freeze_unserved":
            if request_id is None:
                found = self.open_request()
                if found is None:
                    raise ProofFileError("this account has no open forced withdrawal request of this asset")
                request_id = str(found["request_id"])
            data = freeze_unserved_call(request_id)
        else:
            raise ProofFileError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
        return {"from": self.exit_address, "to": self.vault, "data": data, "value": "0x0",
                "chainId": hex(self.chain_id)}
