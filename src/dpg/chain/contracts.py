"""The custody contracts seen from Python: their artifacts, call encoding and the Deposit event.

``artifacts/<Name>.json`` (``{"contractName", "abi", "bytecode", "deployedBytecode"}``) are written
by ``contracts/build.sh`` from the Solidity sources and committed. The Vault's deposit interface:
``depositETH(uint64 account) payable``, ``depositToken(address token, uint256 amount, uint64
account)``, and ``event Deposit(bytes32 indexed depositId, uint64 indexed account, address indexed
token, uint256 amount)`` with token = address(0) for ETH.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

from dpg.chain.rpc import to_int

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

DEPOSIT_EVENT = "Deposit(bytes32,uint64,address,uint256)"
DEPOSIT_TOPIC = "0x" + keccak(text=DEPOSIT_EVENT).hex()


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x creation code
    deployed_bytecode: str = "0x"  # 0x runtime code, immutables left zero

    def constructor_types(self) -> list[str]:
        for item in self.abi:
            if item.get("type") == "constructor":
                return [abi_type(i) for i in item.get("inputs", [])]
        return []


def load_artifact(name: str, directory: Path = ARTIFACTS) -> Artifact:
    path = directory / f"{name}.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: run contracts/build.sh") from None
    return Artifact(doc["contractName"], doc["abi"], doc["bytecode"], doc.get("deployedBytecode", "0x"))


def abi_type(param: dict[str, Any]) -> str:
    """The canonical type of an ABI parameter: a tuple spelled out, e.g. ``(address,uint256,bool)[]``."""
    t = str(param["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in param["components"]) + ")" + t[len("tuple"):]
    return t


def selector(signature: str) -> bytes:
    """The 4-byte function selector of e.g. ``depositETH(uint64)``."""
    return keccak(text=signature)[:4]


def encode_call(signature: str, *args: Any) -> str:
    """Calldata for ``signature`` (e.g. ``depositToken(address,uint256,uint64)``) with ``args``."""
    types = param_types(signature)
    return "0x" + (selector(signature) + encode(types, list(args))).hex()


def encode_deploy(artifact: Artifact, *args: Any) -> str:
    """Creation code with the constructor arguments appended."""
    return artifact.bytecode + encode(artifact.constructor_types(), list(args)).hex()


def decode_uint(data: bytes) -> int:
    (value,) = decode(["uint256"], data)
    return int(value)


def param_types(signature: str) -> list[str]:
    """The argument types of ``signature``, a tuple one type: ``f((address,uint256),bool)`` ->
    ``["(address,uint256)", "bool"]``."""
    inner = signature[signature.index("(") + 1: signature.rindex(")")]
    out: list[str] = []
    depth = 0
    cur = ""
    for ch in inner:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur:
        out.append(cur)
    return out


def errors(name: str) -> dict[bytes, tuple[str, list[str]]]:
    """selector -> (name, argument types) of a contract's custom errors, from its artifact."""
    out: dict[bytes, tuple[str, list[str]]] = {}
    for item in load_artifact(name).abi:
        if item.get("type") == "error":
            types = [abi_type(i) for i in item.get("inputs", [])]
            out[selector(f"{item['name']}({','.join(types)})")] = (item["name"], types)
    return out


def decode_error(name: str, data: str) -> str | None:
    """A revert's data (0x…) as one of the contract's errors with its arguments, e.g.
    ``GraceNotOver(1767225600)``; None when it is none of them."""
    if not data.startswith("0x") or len(data) < 10:
        return None
    raw = bytes.fromhex(data[2:])
    known = errors(name).get(raw[:4])
    if known is None:
        return None
    error, types = known
    args = decode(types, raw[4:])
    return f"{error}({', '.join('0x' + a.hex() if isinstance(a, bytes) else str(a) for a in args)})"


@dataclass(frozen=True, slots=True)
class DepositLog:
    """One Deposit event as a node reported it."""

    deposit_id: str  # 0x, 32 bytes: keccak256(chainid, vault, nonce)
    account: int
    token: str  # lower-case 0x address; the zero address for the native coin
    amount: int
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    removed: bool

    @property
    def key(self) -> tuple[str, int]:
        return (self.tx_hash, self.log_index)


def decode_deposit(log: dict[str, Any]) -> DepositLog | None:
    """The Deposit event in ``log`` (an eth_getLogs entry), or None when it is not one."""
    try:
        topics = [str(t).lower() for t in log["topics"]]
        if len(topics) != 4 or topics[0] != DEPOSIT_TOPIC:
            return None
        data = bytes.fromhex(str(log["data"])[2:])
        if len(data) != 32:
            return None
        account = int(topics[2], 16)
        token_word = int(topics[3], 16)
        if account >= 2**64 or token_word >= 2**160:
            return None
        return DepositLog(
            deposit_id=topics[1],
            account=account,
            token="0x" + token_word.to_bytes(20, "big").hex(),
            amount=int.from_bytes(data, "big"),
            tx_hash=str(log["transactionHash"]).lower(),
            log_index=to_int(log["logIndex"]),
            block_number=to_int(log["blockNumber"]),
            block_hash=str(log["blockHash"]).lower(),
            removed=bool(log.get("removed", False)),
        )
    except (KeyError, ValueError, TypeError):
        return None
