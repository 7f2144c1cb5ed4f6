"""The ReserveRegistry contract and the chains it reads: a chain's vault holdings at a snapshot
block, deploying the registry, the roots it holds, its verifyProof, why it would refuse a
publication, and the registry recorded in the data directory.

The registry lives on one chain (the first configured, the "home" chain); the other chains' vault
holdings enter as declarations. Each chain's reserves are read at its snapshot block: the last
block whose timestamp is at most the epoch (an epoch's number is its UTC time in seconds). The
registry itself can only read this chain's holdings now, when the publication is mined.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import decode
from eth_utils.crypto import keccak

from dpg.chain.config import NATIVE, ChainConfig
from dpg.chain.contracts import decode_error, encode_call, encode_deploy, load_artifact
from dpg.chain.rpc import Rpc, RpcError, to_int
from dpg.por import tree as por

log = logging.getLogger("dpg.por.publish")  # one log channel for publishing the proof, whichever module writes

PUBLISH = "publish(uint64,bytes32,bytes32,uint256,uint8,uint64,bytes32,string,(uint256,uint256)[])"
ROOT_OF = "rootOf(uint64,bytes32)"
PUBLICATION = "publication(uint64,bytes32)"
PUBLISH_INSURANCE = "publishInsuranceFund(uint64,bytes32,uint256)"
INSURANCE_FUND_OF = "insuranceFundOf(uint64,bytes32)"
VERIFY = "verifyProof(uint64,bytes32,bytes32,uint256,bytes32,address,uint256,uint256,uint256,(bytes32,uint256)[])"
SET_REGISTRY = "setRegistry(address)"
VAULT_REGISTRY = "registry()"
GAS_DEPLOY = 3_000_000
GAS_SET_REGISTRY = 200_000
GAS_PUBLISH = 1_000_000


class PublishError(Exception):
    """An epoch that cannot be published, with the reason (a revert of the registry included)."""


@dataclass(frozen=True, slots=True)
class Chain:
    """One chain's reserves side: its node, its vault and the token of each DPG asset on it."""

    name: str
    chain_id: int
    rpc: Rpc
    vault: str
    tokens: dict[str, str]  # DPG asset -> token address (NATIVE for the native coin)

    @staticmethod
    def from_config(cfg: ChainConfig) -> Chain:
        if not cfg.rpc_url or not cfg.vault:
            raise PublishError(f"chain {cfg.name}: the proof of reserves needs its rpc_url and vault")
        tokens: dict[str, str] = {}
        if cfg.native_asset:
            tokens[cfg.native_asset] = NATIVE
        for t in cfg.tokens:
            tokens.setdefault(t.asset, t.address)
        return Chain(cfg.name, cfg.chain_id, Rpc(cfg.rpc_url), cfg.vault, tokens)


# ---------------------------------------------------------------------- the chain


def snapshot_block(rpc: Rpc, at: int) -> tuple[int, str]:
    """(number, hash) of the last block with a timestamp <= ``at`` (block 0 if none is that old)."""
    lo, hi = 0, rpc.block_number()

    def ts(n: int) -> int:
        b = rpc.block(n)
        if b is None:
            raise PublishError(f"the node has no block {n}")
        return to_int(b["timestamp"])

    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ts(mid) <= at:
            lo = mid
        else:
            hi = mid - 1
    h = rpc.block_hash(lo)
    assert h is not None
    return lo, h


def holdings(chain: Chain, asset: str, block: int | str = "latest") -> int:
    """The vault's holdings of ``asset`` on ``chain`` at ``block``."""
    token = chain.tokens[asset]
    tag = hex(block) if isinstance(block, int) else block
    if token == NATIVE:
        return to_int(chain.rpc.call("eth_getBalance", [chain.vault, tag]))
    raw = chain.rpc.eth_call(token, encode_call("balanceOf(address)", chain.vault), tag)
    if not raw:
        return 0  # no token contract there yet at that block: nothing held
    (value,) = decode(["uint256"], raw)
    return int(value)


def deploy_registry(rpc: Rpc, owner: str, vault: str, tokens: dict[str, str]) -> str:
    """Deploy a ReserveRegistry (owner = the operator, who publishes) listing ``tokens`` (asset -> token),
    and name it in the vault when the vault names none yet and ``owner`` deployed it (``name_in_vault``)."""
    art = load_artifact("ReserveRegistry")
    assets = sorted(tokens)
    tx = rpc.send_transaction({"from": owner, "gas": hex(GAS_DEPLOY), "data": encode_deploy(
        art, owner, vault, [por.asset_id(a) for a in assets], [tokens[a] for a in assets])})
    receipt = rpc.wait_receipt(tx)
    if to_int(receipt["status"]) != 1 or not receipt.get("contractAddress"):
        raise PublishError(f"the registry's deployment {tx} failed")
    address = str(receipt["contractAddress"]).lower()
    log.info("event=por_registry_deployed address=%s chain_id=%d", address, rpc.chain_id())
    name_in_vault(rpc, owner, vault, address)
    return address


def vault_registry(rpc: Rpc, vault: str) -> str | None:
    """The registry the vault's escape hatch reads (``Vault.registry()``): the zero address when none is
    named yet, None for a vault without an escape hatch (or no contract there)."""
    try:
        raw = rpc.eth_call(vault, encode_call(VAULT_REGISTRY))
    except RpcError:
        return None
    if len(raw) < 32:
        return None
    (address,) = decode(["address"], raw)
    return str(address).lower()


def name_in_vault(rpc: Rpc, sender: str, vault: str, registry: str) -> bool:
    """Name ``registry`` in ``vault`` (``Vault.setRegistry``: once, by the vault's deployer) when the vault
    names none yet; False, with a warning, when it names another or ``sender`` may not set it."""
    current = vault_registry(rpc, vault)
    if current == registry.lower():
        return True
    if current is None or int(current, 16) != 0:
        log.warning("event=vault_registry_other vault=%s registry=%s named=%s", vault, registry, current)
        return False
    call = {"from": sender, "to": vault, "data": encode_call(SET_REGISTRY, registry)}
    try:
        rpc.call("eth_call", [call, "latest"])
    except RpcError as e:
        log.warning("event=vault_registry_unset vault=%s registry=%s reason=%r", vault, registry, str(e))
        return False
    receipt = rpc.wait_receipt(rpc.send_transaction({**call, "gas": hex(GAS_SET_REGISTRY)}))
    if to_int(receipt["status"]) != 1:
        raise PublishError(f"the vault {vault} refused setRegistry({registry})")
    log.info("event=vault_registry_set vault=%s registry=%s", vault, registry)
    return True


def published(rpc: Rpc, registry: str, epoch: int, asset: str) -> tuple[bytes, int, int]:
    """(root, total, depth) the registry holds for (epoch, asset); depth 0 when nothing is published."""
    raw = rpc.eth_call(registry, encode_call(ROOT_OF, epoch, por.asset_id(asset)))
    root, total, depth = decode(["bytes32", "uint256", "uint8"], raw)
    return bytes(root), int(total), int(depth)


@dataclass(frozen=True, slots=True)
class Publication:
    """What the registry holds for (epoch, asset): ``depth`` 0 when nothing is published."""

    root: bytes
    total: int
    depth: int
    snapshot_block: int
    snapshot_block_hash: bytes
    published_at: int
    holdings: int
    declared: int
    cid: str


def publication(rpc: Rpc, registry: str, epoch: int, asset: str) -> Publication:
    """The registry's whole publication of (epoch, asset), the tree's CID included."""
    raw = rpc.eth_call(registry, encode_call(PUBLICATION, epoch, por.asset_id(asset)))
    (p,) = decode(["(bytes32,uint256,uint8,uint64,bytes32,uint64,uint256,uint256,string)"], raw)
    return Publication(bytes(p[0]), int(p[1]), int(p[2]), int(p[3]), bytes(p[4]), int(p[5]), int(p[6]), int(p[7]),
                       str(p[8]))


def insurance_fund(rpc: Rpc, registry: str, epoch: int, asset: str) -> tuple[int, bool]:
    """(balance, published) of the insurance fund the registry holds for (epoch, asset)."""
    raw = rpc.eth_call(registry, encode_call(INSURANCE_FUND_OF, epoch, por.asset_id(asset)))
    balance, done = decode(["uint256", "bool"], raw)
    return int(balance), bool(done)


def verify_onchain(rpc: Rpc, registry: str, proof: dict[str, Any]) -> bool:
    """The registry's ``verifyProof`` of a proof file (eth_call)."""
    (ok,) = decode(["bool"], rpc.eth_call(registry, verify_proof_call(registry, proof)["data"]))
    return bool(ok)


def verify_proof_call(registry: str, proof: dict[str, Any]) -> dict[str, str]:
    """The eth_call / eth_estimateGas transaction object of verifyProof for ``proof`` (a version 2
    one: the registry verifies version 2 leaves)."""
    siblings = [(bytes.fromhex(s["hash"][2:]), int(s["value"])) for s in proof["siblings"]]
    return {"to": registry, "data": encode_call(
        VERIFY, int(proof["epoch"]), por.asset_id(proof["asset"]), bytes.fromhex(proof["accountKey"][2:]),
        int(proof["balance"]), bytes.fromhex(proof["salt"][2:]), proof["exitAddress"], int(proof["deposited"]),
        int(proof["withdrawn"]), int(proof["index"]), siblings)}


def revert_reason(rpc: Rpc, tx: dict[str, Any]) -> str | None:
    """Why the registry would refuse ``tx`` (an eth_call on the pending block), decoded: e.g.
    ``ReservesShort(total, holdings, declared)``; None when it would go through."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [tx, "pending"]}).encode()
    req = urllib.request.Request(rpc.url, data=body, headers={"content-type": "application/json"},  # noqa: S310
                                 method="POST")
    with urllib.request.urlopen(req, timeout=rpc.timeout) as resp:  # noqa: S310 (the node's http(s) URL)
        reply = json.loads(resp.read())
    err = reply.get("error")
    if not err:
        return None
    data = err.get("data") if isinstance(err, dict) else None
    if isinstance(data, dict):
        data = data.get("data")
    known = decode_error("ReserveRegistry", data) if isinstance(data, str) else None
    if known is not None:
        return known
    message = err.get("message", "") if isinstance(err, dict) else str(err)
    return "".join(c for c in str(message) if c.isprintable()) or "reverted"


PUBLISHED_TOPIC = "0x" + keccak(
    text="Published(uint64,bytes32,bytes32,uint256,uint8,uint64,bytes32,string,uint256,uint256)").hex()


def published_tx(home: Chain, registry: str, epoch: int, asset_id: bytes) -> tuple[str, int] | None:
    """(transaction hash, gas used) of the registry's Published event of (epoch, asset)."""
    logs = home.rpc.get_logs(registry, [PUBLISHED_TOPIC, "0x" + epoch.to_bytes(32, "big").hex(),
                                        "0x" + asset_id.hex()], 0, home.rpc.block_number())
    if not logs:
        return None
    tx_hash = str(logs[-1]["transactionHash"]).lower()
    receipt = home.rpc.receipt(tx_hash)
    return tx_hash, to_int(receipt["gasUsed"]) if receipt else 0


# ---------------------------------------------------------------------- the registry record


def record_path(data_dir: Path) -> Path:
    return data_dir / "por" / "registry.json"


def write_record(data_dir: Path, chain_id: int, registry: str, rpc_url: str) -> None:
    path = record_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"chainId": chain_id, "registry": registry, "rpcUrl": rpc_url}, indent=2) + "\n")


def read_record(data_dir: Path) -> dict[str, Any] | None:
    path = record_path(data_dir)
    return dict(json.loads(path.read_text())) if path.is_file() else None
