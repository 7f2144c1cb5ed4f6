"""The audit of a published tree that anyone can make from its CID alone: the bytes checked against
the CID, every node recomputed from the leaves, the leaves' count, order and uniqueness, and the
root, total, depth and CID compared with what the ReserveRegistry on chain holds.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable
from dpg.por import ipfs
from dpg.por import registry as reg
from dpg.por import tree as por


def check_bytes(cid: str, data: bytes) -> list[str]:
    """Empty when ``data`` is the content ``cid`` names."""
    if ipfs.matches(cid, data):
        return []
    return [f"the bytes served for {cid} do not hash to it (their CID is {ipfs.cid_raw(data)}, sha2-256 "
            f"{hashlib.sha256(data).hexdigest()}): this is not the published tree"]


def check_tree(doc: Any) -> list[str]:
    """Every check of a public tree file on its own (docs/proof-of-reserves.md): each node
    recomputed from the leaves up to the stated root and total, every value below 2**128, the
    asset id, the leaf count (the real leaves, each above zero, sorted by hash, then the pads, each
    zero, in a tree of the least depth that holds them) and no leaf twice. Empty when it holds."""
    if not isinstance(doc, dict):
        return ["the tree file is not a JSON object"]
    try:
        t = por.load_tree(por.public_tree(doc))
    except (por.ProofError, KeyError, TypeError, ValueError) as e:
        return [f"the tree does not hold: {e}"]
    problems: list[str] = []
    if doc.get("assetId") != "0x" + t.params.asset_id.hex():
        problems.append(f"assetId {doc.get('assetId')!r} is not keccak256 of the asset {t.params.asset!r}")
    count = doc.get("leafCount")
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= len(t.leaves):
        problems.append(f"leafCount {count!r} is not a number of leaves of this tree (0 … {len(t.leaves)})")
        count = None
    elif t.depth != por.depth_for(count):
        problems.append(f"a tree of {count} leaves has depth {por.depth_for(count)}, not {t.depth}")
    first: dict[bytes, int] = {}
    for i, (h, _) in enumerate(t.leaves):
        j = first.setdefault(h, i)
        if j != i:
            problems.append(f"leaf {i} is a duplicate of leaf {j} (0x{h.hex()})")
    if count is not None:
        real, pads = t.leaves[:count], t.leaves[count:]
        zero = [i for i, (_, v) in enumerate(real) if v == 0]
        if zero:
            problems.append(f"{len(zero)} of the {count} real leaves are zero (first: leaf {zero[0]}); a zero balance"
                            " has no leaf")
        unpadded = [count + i for i, (_, v) in enumerate(pads) if v != 0]
        if unpadded:
            problems.append(f"{len(unpadded)} leaves after the {count} real ones are not zero pads (first: leaf "
                            f"{unpadded[0]})")
        unsorted = [i for i in range(1, len(real)) if real[i - 1][0] >= real[i][0]]
        if unsorted:
            problems.append("the real leaves are not in strictly ascending order of hash"
                            f" (first at leaf {unsorted[0]})")
    return problems


def check_registry(doc: dict[str, Any], cid: str, rpc: Rpc, registry: str | None = None) -> tuple[list[str],
                                                                                                   dict[str, Any]]:
    """The tree against its publication in the registry the tree names (``registry``, when given,
    must be that one: the leaves commit to it; a tree that names none is looked up there): the
    chain, the root, total, depth and CID. Returns (problems, what was read there)."""
    address = str(doc.get("registry") or registry or "")
    try:
        epoch, asset = int(doc["epoch"]), str(doc["asset"])
        por.address_word(address)
    except (KeyError, TypeError, ValueError) as e:
        return [f"the tree names no registry, epoch and asset to look up: {e}"], {}
    if registry is not None and registry.lower() != address.lower():
        return [f"the tree's leaves commit to the registry {address}, not {registry}"], {}
    try:
        chain_id = rpc.chain_id()
        if str(chain_id) != str(doc.get("chainId")):
            return [f"the tree is for chain {doc.get('chainId')}, the node at {rpc.url} is chain {chain_id}"], {}
        if not rpc.code(address):
            return [f"no contract at {address} on chain {chain_id}"], {}
        pub = reg.publication(rpc, address, epoch, asset)
        fund, fund_published = reg.insurance_fund(rpc, address, epoch, asset)
    except (RpcError, RpcUnavailable) as e:
        return [f"reading the registry {address} at {rpc.url}: {e}"], {}
    if pub.depth == 0:
        return [f"the registry {address} has nothing published for epoch {epoch} and {asset}"], {}
    found = {"chainId": str(chain_id), "registry": address.lower(), "root": "0x" + pub.root.hex(),
             "total": str(pub.total), "depth": pub.depth, "cid": pub.cid, "snapshotBlock": pub.snapshot_block,
             "insuranceFund": str(fund) if fund_published else None}
    problems = [f"the registry holds {name} {found[name]}, the tree states {stated}"
                for name, stated in (("root", doc.get("root")), ("total", str(doc.get("total"))),
                                     ("depth", doc.get("depth")))
                if str(found[name]) != str(stated)]
    if pub.cid != cid:
        problems.append(f"the registry names the tree {pub.cid}, not {cid}")
    return problems, found


def audit(cid: str, data: bytes, rpc: Rpc | None, registry: str | None = None) -> dict[str, Any]:
    """The whole audit of the bytes served for ``cid``: ``ok`` only when every check holds and the
    registry was read; ``problems`` says what failed."""
    out: dict[str, Any] = {"cid": cid, "bytes": len(data)}
    problems = check_bytes(cid, data)
    doc: Any = None
    if not problems:
        try:
            doc = json.loads(data)
        except ValueError as e:
            problems.append(f"the tree file is not JSON: {e}")
    if doc is not None:
        problems.extend(check_tree(doc))
        if isinstance(doc, dict):
            out.update({k: doc.get(k) for k in ("chainId", "registry", "epoch", "asset", "root", "total", "depth",
                                                "leafCount")})
            out["leaves"] = len(doc["leaves"]) if isinstance(doc.get("leaves"), list) else None
            if rpc is None:
                problems.append("no chain to compare with: the registry's chain's JSON-RPC URL (--rpc) is needed")
            else:  # a broken tree too: whether the registry holds it is part of the story
                found, out["onChain"] = check_registry(doc, cid, rpc, registry)
                problems.extend(found)
    out["ok"] = not problems
    out["problems"] = problems
    return out

