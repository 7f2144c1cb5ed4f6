"""Deposit addresses seen from Python: an account's forwarder address on a chain (the CREATE2
address of the chain's ``ForwarderFactory``, computed here without asking the chain), the check
that a configured factory is DPG's and forwards to the chain's vault, the sweep call, the ERC-20
``Transfer`` log, and how a deposit is shown to a user (the token named plainly, an EIP-681 URI).

A forwarder is a 51-byte proxy of the factory's ``implementation`` (contracts/src/ForwarderFactory.sol)
at ``keccak256(0xff ++ factory ++ salt ++ keccak256(creation code))[12:]`` with salt = the account
as a 32-byte word. Everything sent there can only ever reach the vault, tagged with the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_utils.crypto import keccak

from dpg.chain.config import NATIVE
from dpg.chain.contracts import encode_call, load_artifact
from dpg.chain.rpc import Rpc, RpcError, to_int
from dpg.chain.signer import checksum

# the proxy's creation code around the implementation's address (see ForwarderFactory.sol)
PROXY_HEAD = bytes.fromhex("3d603380600a3d3981f3" "36600557005b" "363d3d373d3d3d363d73")
PROXY_TAIL = bytes.fromhex("5af43d82803e903d91603157fd5bf3")
SWEEP = "sweep(uint64,address[])"
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


class FactoryMismatch(Exception):
    """The configured factory is not DPG's ForwarderFactory for this chain's vault."""


@dataclass(frozen=True, slots=True)
class Factory:
    """A chain's ForwarderFactory as checked: what fixes every deposit address on it."""

    address: str  # lower-case 0x
    implementation: str
    code_hash: str  # 0x + 64 hex: keccak256 of the proxies' creation code

    def address_of(self, account: int) -> str:
        return forwarder_address(self.address, self.code_hash, account)


def forwarder_code_hash(implementation: str) -> str:
    """keccak256 of the creation code of a forwarder proxy of ``implementation``."""
    return "0x" + keccak(PROXY_HEAD + bytes.fromhex(implementation[2:]) + PROXY_TAIL).hex()


def forwarder_address(factory: str, code_hash: str, account: int) -> str:
    """The deposit address (lower-case) of ``account`` at ``factory`` (CREATE2, salt = the account)."""
    if not 0 < account < 2**64:
        raise ValueError(f"an account is 1 to 2^64-1, not {account}")
    digest = keccak(b"\xff" + bytes.fromhex(factory[2:]) + account.to_bytes(32, "big") + bytes.fromhex(code_hash[2:]))
    return "0x" + digest[12:].hex()


def _address_at(rpc: Rpc, contract: str, getter: str) -> str:
    (value,) = decode(["address"], rpc.eth_call(contract, encode_call(getter)))
    return str(value).lower()


def _word(address_or_hash: str) -> bytes:
    return bytes.fromhex(address_or_hash[2:]).rjust(32, b"\0")


def _same_code(onchain: bytes, artifact: str, immutables: list[str]) -> bool:
    """``onchain`` is ``artifact``'s runtime code with these immutables filled in (solc leaves their
    32-byte words zero in the artifact)."""
    code = onchain
    for value in immutables:
        code = code.replace(_word(value), b"\0" * 32)
    return code == bytes.fromhex(artifact[2:])


def check_factory(rpc: Rpc, factory: str, vault: str) -> Factory:
    """The factory at ``factory``, after checking that it and its implementation run the code of
    the committed artifacts (contracts/build.sh) and deposit into ``vault``: a wrong address in the
    settings would hand users addresses whose funds the exchange never sees."""
    try:
        if not rpc.code(factory):
            raise FactoryMismatch(f"no contract at the forwarder factory {factory}")
        implementation = _address_at(rpc, factory, "implementation()")
        (code_hash_raw,) = decode(["bytes32"], rpc.eth_call(factory, encode_call("forwarderCodeHash()")))
        code_hash = "0x" + bytes(code_hash_raw).hex()
        if _address_at(rpc, factory, "vault()") != vault or _address_at(rpc, implementation, "vault()") != vault:
            raise FactoryMismatch(f"the forwarder factory {factory} deposits into another vault than {vault}")
        if _address_at(rpc, implementation, "factory()") != factory:
            raise FactoryMismatch(f"the forwarder implementation {implementation} belongs to another factory")
    except (RpcError, ValueError) as e:
        raise FactoryMismatch(f"{factory} is not a ForwarderFactory: {e}") from None
    factory_code = load_artifact("ForwarderFactory").deployed_bytecode
    forwarder_code = load_artifact("DepositForwarder").deployed_bytecode
    if not _same_code(rpc.code(factory), factory_code, [vault, implementation, code_hash]) or \
            not _same_code(rpc.code(implementation), forwarder_code, [vault, factory]):
        raise FactoryMismatch(f"the code at {factory} (or its implementation) is not this DPG's ForwarderFactory")
    if code_hash != forwarder_code_hash(implementation):
        raise FactoryMismatch(f"the forwarder factory {factory} builds other proxies than DPG's")
    made = Factory(factory, implementation, code_hash)
    (onchain,) = decode(["address"], rpc.eth_call(factory, encode_call("addressOf(uint64)", 1)))
    if str(onchain).lower() != made.address_of(1):
        raise FactoryMismatch(f"the forwarder factory {factory} computes other addresses than DPG")
    return made


def sweep_call(account: int, tokens: list[str]) -> str:
    """Calldata of ``ForwarderFactory.sweep(account, tokens)`` (the zero address: the native coin)."""
    return encode_call(SWEEP, account, [checksum(t) for t in tokens])


@dataclass(frozen=True, slots=True)
class TransferLog:
    """One ERC-20 Transfer to a deposit address, as a node reported it."""

    token: str
    to: str
    amount: int
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str


def decode_transfer(log: dict[str, Any]) -> TransferLog | None:
    """The ERC-20 Transfer in ``log`` (an eth_getLogs entry), or None (ERC-721's has 4 topics)."""
    try:
        topics = [str(t).lower() for t in log["topics"]]
        data = bytes.fromhex(str(log["data"])[2:])
        if len(topics) != 3 or topics[0] != TRANSFER_TOPIC or len(data) != 32 or log.get("removed"):
            return None
        return TransferLog(
            token=str(log["address"]).lower(), to="0x" + topics[2][-40:], amount=int.from_bytes(data, "big"),
            tx_hash=str(log["transactionHash"]).lower(), log_index=to_int(log["logIndex"]),
            block_number=to_int(log["blockNumber"]), block_hash=str(log["blockHash"]).lower(),
        )
    except (KeyError, ValueError, TypeError):
        return None


# ---------------------------------------------------------------------- how a user sees it


def token_name(symbol: str, chain: str) -> str:
    """The token as a user's wallet names it: "WBTC on Ethereum", "ETH on Ethereum"."""
    return f"{symbol} on {chain[:1].upper()}{chain[1:]}"


def payment_uri(address: str, chain_id: int, token: str = NATIVE) -> str:
    """The EIP-681 URI a wallet scans to pay ``address``: the native coin, or ``token``'s
    ``transfer`` to it."""
    if token == NATIVE:
        return f"ethereum:{checksum(address)}@{chain_id}"
    return f"ethereum:{checksum(token)}@{chain_id}/transfer?address={checksum(address)}"
