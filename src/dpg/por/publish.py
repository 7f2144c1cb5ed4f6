"""Publishing an epoch's proof of reserves: every asset's tree from the balances recorded at the
epoch's seq, the public tree on IPFS, the root in the ReserveRegistry, and the reserves report.

The registry lives on one chain (the first configured, the "home" chain); the other chains' vault
holdings enter as declarations. Each chain's reserves are read at its snapshot block: the last
block whose timestamp is at most the epoch (an epoch's number is its UTC time in seconds). The
registry itself can only read this chain's holdings now, when the publication is mined.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from eth_abi.abi import decode
from eth_utils.crypto import keccak

from dpg.chain.config import NATIVE, ChainConfig
from dpg.chain.contracts import abi_type, encode_call, encode_deploy, load_artifact, selector
from dpg.chain.rpc import Rpc, RpcUnavailable, to_int
from dpg.por import ipfs
from dpg.por import tree as por

log = logging.getLogger("dpg.por.publish")

PUBLISH = "publish(uint64,bytes32,bytes32,uint256,uint8,uint64,bytes32,string,(uint256,uint256)[])"
ROOT_OF = "rootOf(uint64,bytes32)"
VERIFY = "verifyProof(uint64,bytes32,bytes32,uint256,bytes32,uint256,(bytes32,uint256)[])"
_GAS_DEPLOY = 3_000_000
_GAS_PUBLISH = 1_000_000


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
    """Deploy a ReserveRegistry (owner = the operator, who publishes) listing ``tokens`` (asset -> token)."""
    art = load_artifact("ReserveRegistry")
    assets = sorted(tokens)
    tx = rpc.send_transaction({"from": owner, "gas": hex(_GAS_DEPLOY), "data": encode_deploy(
        art, owner, vault, [por.asset_id(a) for a in assets], [tokens[a] for a in assets])})
    receipt = rpc.wait_receipt(tx)
    if to_int(receipt["status"]) != 1 or not receipt.get("contractAddress"):
        raise PublishError(f"the registry's deployment {tx} failed")
    address = str(receipt["contractAddress"]).lower()
    log.info("event=por_registry_deployed address=%s chain_id=%d", address, rpc.chain_id())
    return address


def published(rpc: Rpc, registry: str, epoch: int, asset: str) -> tuple[bytes, int, int]:
    """(root, total, depth) the registry holds for (epoch, asset); depth 0 when nothing is published."""
    raw = rpc.eth_call(registry, encode_call(ROOT_OF, epoch, por.asset_id(asset)))
    root, total, depth = decode(["bytes32", "uint256", "uint8"], raw)
    return bytes(root), int(total), int(depth)


def verify_onchain(rpc: Rpc, registry: str, proof: dict[str, Any]) -> bool:
    """The registry's ``verifyProof`` of a proof file (eth_call)."""
    (ok,) = decode(["bool"], rpc.eth_call(registry, verify_proof_call(registry, proof)["data"]))
    return bool(ok)


def verify_proof_call(registry: str, proof: dict[str, Any]) -> dict[str, str]:
    """The eth_call / eth_estimateGas transaction object of verifyProof for ``proof``."""
    siblings = [(bytes.fromhex(s["hash"][2:]), int(s["value"])) for s in proof["siblings"]]
    return {"to": registry, "data": encode_call(
        VERIFY, int(proof["epoch"]), por.asset_id(proof["asset"]), bytes.fromhex(proof["accountKey"][2:]),
        int(proof["balance"]), bytes.fromhex(proof["salt"][2:]), int(proof["index"]), siblings)}


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


# ---------------------------------------------------------------------- publishing


def _ratio(reserves: int, liabilities: int) -> str | None:
    if liabilities == 0:
        return None
    return format((Decimal(reserves) / Decimal(liabilities)).quantize(Decimal("0.000001")), "f")


def _registry_errors() -> dict[bytes, tuple[str, list[str]]]:
    """selector -> (name, argument types) of the registry's custom errors (and Ownable's)."""
    out: dict[bytes, tuple[str, list[str]]] = {}
    for item in load_artifact("ReserveRegistry").abi:
        if item.get("type") == "error":
            types = [abi_type(i) for i in item.get("inputs", [])]
            out[selector(f"{item['name']}({','.join(types)})")] = (item["name"], types)
    return out


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
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        raw = bytes.fromhex(data[2:])
        known = _registry_errors().get(raw[:4])
        if known is not None:
            name, types = known
            args = decode(types, raw[4:])
            return f"{name}({', '.join('0x' + a.hex() if isinstance(a, bytes) else str(a) for a in args)})"
    message = err.get("message", "") if isinstance(err, dict) else str(err)
    return "".join(c for c in str(message) if c.isprintable()) or "reverted"


def latest_epoch(conn: psycopg.Connection[Any]) -> int | None:
    row = conn.execute("SELECT max(epoch) FROM por_epochs").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def publish_epoch(conn: psycopg.Connection[Any], epoch: int, secret: bytes, home: Chain, registry: str,
                  others: list[Chain], store: ipfs.Store, sender: str | None = None) -> dict[str, Any]:
    """Build, store and publish every asset of ``epoch`` that has a token on the home chain, and
    write the reserves report (returned; ``ok`` False when an asset could not be published or its
    reserves are short). An asset already published is left as it is."""
    row = conn.execute("SELECT seq, ts FROM por_epochs WHERE epoch = %s", (epoch,)).fetchone()
    if row is None:
        raise PublishError(f"epoch {epoch} has not been recorded (dpg por snapshot marks one)")
    seq = int(row[0])
    registry = registry.lower()
    if home.rpc.chain_id() != home.chain_id:
        raise PublishError(f"chain {home.name}: the node's chain id is not {home.chain_id}")
    sender = sender or home.rpc.accounts()[0]
    balances: dict[str, list[tuple[str, int]]] = {}
    for asset, account, balance in conn.execute(
            "SELECT asset, account, balance FROM por_balances WHERE epoch = %s ORDER BY asset, account", (epoch,)):
        balances.setdefault(str(asset), []).append((str(account), int(balance)))

    chains = [home, *others]
    blocks = {c.name: snapshot_block(c.rpc, epoch) for c in chains}
    report: dict[str, Any] = {
        "version": 1, "epoch": str(epoch), "seq": str(seq), "generatedAt": int(time.time()),
        "registry": {"chain": home.name, "chainId": str(home.chain_id), "address": registry},
        "chains": [{"name": c.name, "chainId": str(c.chain_id), "vault": c.vault, "snapshotBlock": blocks[c.name][0],
                    "snapshotBlockHash": blocks[c.name][1]} for c in chains],
        "assets": [], "unpublished": [],
    }
    ok = True
    for asset in sorted(set(balances) | set(home.tokens)):
        rows = balances.get(asset, [])
        if asset not in home.tokens:
            report["unpublished"].append({"asset": asset, "liabilities": str(sum(b for _, b in rows)),
                                          "reason": f"no token of {asset} on {home.name}, the registry's chain"})
            continue
        entry, asset_ok = _publish_asset(conn, epoch, asset, rows, secret, home, registry, others, store, sender,
                                         blocks)
        report["assets"].append(entry)
        ok = ok and asset_ok
    report["ok"] = ok
    with conn.transaction():
        conn.execute("INSERT INTO por_reports (epoch, report, ok) VALUES (%s, %s, %s) ON CONFLICT (epoch)"
                     " DO UPDATE SET report = EXCLUDED.report, ok = EXCLUDED.ok", (epoch, json.dumps(report), ok))
    log.info("event=por_epoch_published epoch=%d ok=%s assets=%d", epoch, ok, len(report["assets"]))
    return report


def _publish_asset(conn: psycopg.Connection[Any], epoch: int, asset: str, rows: list[tuple[str, int]], secret: bytes,
                   home: Chain, registry: str, others: list[Chain], store: ipfs.Store, sender: str,
                   blocks: dict[str, tuple[int, str]]) -> tuple[dict[str, Any], bool]:
    t = por.build(por.Params(home.chain_id, registry, epoch, asset), rows, secret)
    doc = por.tree_json(t)
    cid = store.put(json.dumps(por.public_tree(doc), separators=(",", ":")).encode())
    held = [(c, holdings(c, asset, blocks[c.name][0])) for c in [home, *others] if asset in c.tokens]
    reserves = [{"chain": c.name, "chainId": str(c.chain_id), "block": blocks[c.name][0], "holdings": str(h)}
                for c, h in held]
    declarations = [(c.chain_id, h) for c, h in held[1:]]  # held[0] is the home chain's
    total_reserves = sum(h for _, h in held)
    entry: dict[str, Any] = {
        "asset": asset, "assetId": "0x" + t.params.asset_id.hex(), "liabilities": str(t.total),
        "accounts": len(t.accounts), "root": "0x" + t.root.hex(), "depth": t.depth, "cid": cid,
        "reserves": reserves, "reservesTotal": str(total_reserves), "ratio": _ratio(total_reserves, t.total),
        "declarations": [{"chainId": str(c), "amount": str(a)} for c, a in declarations],
    }
    block, block_hash = blocks[home.name]
    have = conn.execute("SELECT tx_hash, gas_used FROM por_publications WHERE epoch = %s AND asset = %s",
                        (epoch, asset)).fetchone()
    on_root, on_total, on_depth = published(home.rpc, registry, epoch, asset)
    if on_depth:
        if on_root != t.root or on_total != t.total:
            entry["error"] = "the registry holds another root for this epoch and asset"
            return entry, False
        if have is None:
            # published, but the process stopped before it wrote the row: find the transaction by
            # its Published event and write what users' proofs are served from
            found = _published_tx(home, registry, epoch, t.params.asset_id)
            if found is None:
                entry["error"] = "the registry holds this root, but its Published event was not found"
                return entry, False
            have = found
            _record(conn, epoch, asset, t, doc, home, registry, cid, block, block_hash, found[0], found[1])
            log.info("event=por_publication_recovered epoch=%d asset=%s tx=%s", epoch, asset, found[0])
        entry["tx"] = have[0]
        entry["onChain"] = True
        return entry, total_reserves >= t.total
    tx = {"from": sender, "to": registry, "gas": hex(_GAS_PUBLISH), "data": encode_call(
        PUBLISH, epoch, t.params.asset_id, t.root, t.total, t.depth, block, bytes.fromhex(block_hash[2:]), cid,
        declarations)}
    reason = revert_reason(home.rpc, tx)
    if reason is not None:
        entry["error"] = f"the registry refused the publication: {reason}"
        log.warning("event=por_publish_refused epoch=%d asset=%s reason=%r", epoch, asset, reason)
        return entry, False
    tx_hash = home.rpc.send_transaction(tx)
    receipt = home.rpc.wait_receipt(tx_hash)
    if to_int(receipt["status"]) != 1:
        entry["error"] = f"the publication {tx_hash} reverted"
        return entry, False
    gas = to_int(receipt["gasUsed"])
    entry.update({"tx": tx_hash, "gasUsed": gas, "onChain": True})
    _record(conn, epoch, asset, t, doc, home, registry, cid, block, block_hash, tx_hash, gas)
    # one line per asset is the caller's (the AutoPublisher's por_published, or dpg por publish's report)
    log.debug("event=por_asset_published epoch=%d asset=%s root=0x%s total=%d cid=%s tx=%s gas=%d", epoch, asset,
              t.root.hex(), t.total, cid, tx_hash, gas)
    return entry, total_reserves >= t.total


def _record(conn: psycopg.Connection[Any], epoch: int, asset: str, t: por.Tree, doc: dict[str, Any], home: Chain,
            registry: str, cid: str, block: int, block_hash: str, tx_hash: str, gas: int) -> None:
    """The publication and its private tree (users' proofs are served from it), in one transaction."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO por_publications (epoch, asset, chain_id, registry, root, total, depth, leaves, cid,"
            " snapshot_block, snapshot_block_hash, tx_hash, gas_used) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (epoch, asset, home.chain_id, registry, "0x" + t.root.hex(), t.total, t.depth, len(t.accounts), cid,
             block, block_hash, tx_hash, gas))
        conn.execute("INSERT INTO por_trees (epoch, asset, tree) VALUES (%s, %s, %s)",
                     (epoch, asset, gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)))


PUBLISHED_TOPIC = "0x" + keccak(
    text="Published(uint64,bytes32,bytes32,uint256,uint8,uint64,bytes32,string,uint256,uint256)").hex()


def _published_tx(home: Chain, registry: str, epoch: int, asset_id: bytes) -> tuple[str, int] | None:
    """(transaction hash, gas used) of the registry's Published event of (epoch, asset)."""
    logs = home.rpc.get_logs(registry, [PUBLISHED_TOPIC, "0x" + epoch.to_bytes(32, "big").hex(),
                                        "0x" + asset_id.hex()], 0, home.rpc.block_number())
    if not logs:
        return None
    tx_hash = str(logs[-1]["transactionHash"]).lower()
    receipt = home.rpc.receipt(tx_hash)
    return tx_hash, to_int(receipt["gasUsed"]) if receipt else 0


def load_private_tree(raw: bytes) -> por.Tree:
    return por.load_tree(json.loads(gzip.decompress(raw)))


# ---------------------------------------------------------------------- publishing every epoch


@dataclass(frozen=True, slots=True)
class Registry:
    """Where the roots are published: the home chain, the registry's address, and the chain's
    public JSON-RPC URL ("" when there is none to give out)."""

    chain: str
    chain_id: int
    address: str
    public_rpc: str


def save_registry(conn: psycopg.Connection[Any], reg: Registry) -> None:
    """The registry in the database, for every API process (``GET /api/v1/por/registry``)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO por_registry (one, chain, chain_id, registry, rpc_url) VALUES (true, %s, %s, %s, %s)"
            " ON CONFLICT (one) DO UPDATE SET chain = EXCLUDED.chain, chain_id = EXCLUDED.chain_id,"
            " registry = EXCLUDED.registry, rpc_url = EXCLUDED.rpc_url, updated_at = now()",
            (reg.chain, reg.chain_id, reg.address, reg.public_rpc))


class AutoPublisher:
    """A thread that publishes the proof of reserves of every epoch, as ``dpg por publish`` would.

    First it makes sure of the registry on the first chain (the home chain): ``registry`` when given;
    else the one recorded in the data dir if it is on that chain and has code; else, on an embedded
    chain only, a new one deployed by dev account 0 (a reset chain gets a new one) and recorded. A
    chain reached by URL without a registry leaves publishing off (logged). Then it polls the
    recorded epochs: one is ready when the projection has written its balances (the epoch's row
    and its balances are written together), so a mark never waits on the publication and a lagging
    projection only delays it. It publishes, oldest first, the epochs without a reserves report that
    are newer than the last report: those marked while it runs, and the newest one (an older one
    left unpublished before, e.g. while publishing was off, is logged and left to ``dpg por publish
    --epoch``). Errors are retried with back-off: for ever while a node, IPFS or the database does
    not answer; ``attempts`` times when one answers with an error (e.g. a restarted dev chain that
    no longer has the state at the epoch's snapshot block), then the epoch is given up (logged) and
    the next one taken. A refusal by the registry (reserves short) is part of the report and final.
    The other chains' vault holdings are declared.
    """

    def __init__(self, url: str, chains: Sequence[ChainConfig], embedded: Collection[str], data_dir: Path,
                 secret: bytes, store: ipfs.Store, *, registry: str = "", public_rpc: str = "",
                 poll: float = 1.0, backoff_initial: float = 1.0, backoff_max: float = 60.0,
                 attempts: int = 5) -> None:
        if not chains:
            raise ValueError("publishing needs at least one chain")
        self.url = url
        self.configs = list(chains)
        self.embedded = set(embedded)
        self.data_dir = data_dir
        self.secret = secret
        self.store = store
        self.configured = registry.lower()
        self.public_rpc = public_rpc
        self.poll = poll
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.attempts = attempts
        self.registry: Registry | None = None
        self.published: list[int] = []  # epochs reported by this publisher, in order
        self._started = int(time.time())
        self._skipped: set[int] = set()
        self._failures: dict[int, int] = {}  # epoch -> attempts that failed with an answer
        self._given_up: set[int] = set()
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dpg-por-publish", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def epoch_marked(self, epoch: int) -> None:
        """Look now rather than at the next poll (the scheduler calls it; any thread)."""
        self._wake.set()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        chains = [Chain.from_config(c) for c in self.configs]
        home, others = chains[0], chains[1:]
        delay = self.backoff_initial
        while not self._stop.is_set():
            try:
                if self.registry is None:
                    self.registry = self._ensure_registry(home)
                    if self.registry is None:
                        return  # publishing is off (logged)
                for epoch in self._pending():
                    if self._stop.is_set():
                        return
                    try:
                        self._publish(epoch, home, others, self.registry.address)
                    except (RpcUnavailable, OSError, ipfs.IpfsError, psycopg.OperationalError):
                        raise  # nobody answered: retried for ever
                    except Exception as e:
                        n = self._failures[epoch] = self._failures.get(epoch, 0) + 1
                        if n < self.attempts:
                            raise
                        self._given_up.add(epoch)
                        log.error("event=por_epoch_failed epoch=%d attempts=%d error=%r", epoch, n, str(e))
                delay = self.backoff_initial
                wait = self.poll
            except Exception as e:  # a chain, IPFS or the database: try again later
                log.warning("event=por_publish_retry error=%r retry_in=%.1f", str(e) or type(e).__name__, delay)
                self._close()
                wait, delay = delay, min(delay * 2, self.backoff_max)
            self._wake.wait(wait)
            self._wake.clear()
        self._close()

    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, autocommit=True)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _ensure_registry(self, home: Chain) -> Registry | None:
        cfg = self.configs[0]
        embedded = cfg.name in self.embedded
        if home.rpc.chain_id() != home.chain_id:
            raise PublishError(f"chain {home.name}: the node's chain id is not {home.chain_id}")
        address = self.configured
        if address:
            if not home.rpc.code(address):
                raise PublishError(f"DPG_POR_REGISTRY {address}: no contract there on {home.name}")
        else:
            record = read_record(self.data_dir) or {}
            recorded = str(record.get("registry") or "").lower()
            if recorded and str(record.get("chainId")) == str(home.chain_id) and home.rpc.code(recorded):
                address = recorded
            elif embedded:
                address = deploy_registry(home.rpc, home.rpc.accounts()[0], home.vault, home.tokens)
            else:
                log.warning("event=por_publish_off chain=%s reason=%r", home.name,
                            "a chain by URL needs DPG_POR_REGISTRY (or dpg por deploy-registry)")
                return None
        write_record(self.data_dir, home.chain_id, address, home.rpc.url)
        reg = Registry(home.name, home.chain_id, address, self.public_rpc or (cfg.rpc_url if embedded else ""))
        save_registry(self._db(), reg)
        log.info("event=por_registry chain=%s chain_id=%d registry=%s", reg.chain, reg.chain_id, reg.address)
        return reg

    def _pending(self) -> list[int]:
        conn = self._db()
        newer = [int(r[0]) for r in conn.execute(
            "SELECT e.epoch FROM por_epochs e LEFT JOIN por_reports r USING (epoch) WHERE r.epoch IS NULL"
            " AND e.epoch > coalesce((SELECT max(epoch) FROM por_reports), -1) ORDER BY e.epoch")]
        newest = newer[-1] if newer else None
        newer = [e for e in newer if e not in self._given_up]
        todo = [e for e in newer if e >= self._started or e == newest]
        for e in newer:
            if e not in todo and e not in self._skipped:
                self._skipped.add(e)
                log.warning("event=por_epoch_skipped epoch=%d reason=%r", e,
                            "marked before publishing started and not the newest: dpg por publish --epoch")
        return todo

    def _publish(self, epoch: int, home: Chain, others: list[Chain], registry: str) -> None:
        report = publish_epoch(self._db(), epoch, self.secret, home, registry, others, self.store)
        for a in report["assets"]:
            ok = bool(a.get("onChain")) and "error" not in a and int(a["reservesTotal"]) >= int(a["liabilities"])
            log.info("event=por_published epoch=%d asset=%s root=%s total=%s cid=%s ok=%s tx=%s gas=%s%s", epoch,
                     a["asset"], a["root"], a["liabilities"], a["cid"], str(ok).lower(), a.get("tx") or "-",
                     a.get("gasUsed") or "-", f" error={a['error']!r}" if a.get("error") else "")
        for u in report["unpublished"]:
            log.info("event=por_unpublished epoch=%d asset=%s total=%s reason=%r", epoch, u["asset"],
                     u["liabilities"], u["reason"])
        self.published.append(epoch)
