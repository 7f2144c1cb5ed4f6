"""Publishing an epoch's proof of reserves: every asset's tree from the balances recorded at the
epoch's seq, the public tree on IPFS, the root in the ReserveRegistry (``dpg.por.registry``), the
reserves report and the publications in the database.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from dpg.chain.contracts import encode_call
from dpg.chain.rpc import to_int
from dpg.por import ipfs, packed, proofs
from dpg.por import tree as por
from dpg.por.registry import (
    GAS_PUBLISH,
    PUBLISH,
    PUBLISH_INSURANCE,
    Chain,
    PublishError,
    holdings,
    insurance_fund,
    published,
    published_tx,
    revert_reason,
    snapshot_block,
)

log = logging.getLogger("dpg.por.publish")

def _ratio(reserves: int, liabilities: int) -> str | None:
    if liabilities == 0:
        return None
    return format((Decimal(reserves) / Decimal(liabilities)).quantize(Decimal("0.000001")), "f")


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
    liabilities = {str(a): int(total) for a, total in conn.execute(
        "SELECT asset, sum(balance) FROM por_balances WHERE epoch = %s GROUP BY asset", (epoch,))}

    chains = [home, *others]
    blocks = {c.name: snapshot_block(c.rpc, epoch) for c in chains}
    report: dict[str, Any] = {
        "version": 1, "epoch": str(epoch), "seq": str(seq), "generatedAt": int(time.time()),
        "registry": {"chain": home.name, "chainId": str(home.chain_id), "address": registry},
        "chains": [{"name": c.name, "chainId": str(c.chain_id), "vault": c.vault, "snapshotBlock": blocks[c.name][0],
                    "snapshotBlockHash": blocks[c.name][1]} for c in chains],
        "assets": [], "unpublished": [],
        "marks": {str(m): str(mark) for m, mark in conn.execute(
            "SELECT market, mark FROM por_marks WHERE epoch = %s ORDER BY market", (epoch,))},
    }
    ok = True
    for asset in sorted(set(liabilities) | set(home.tokens)):
        if asset not in home.tokens:
            report["unpublished"].append({"asset": asset, "liabilities": str(liabilities[asset]),
                                          "reason": f"no token of {asset} on {home.name}, the registry's chain"})
            continue
        entry, asset_ok = _publish_asset(conn, epoch, asset, read_balances(conn, epoch, asset, home.name), secret, home,
                                         registry, others, store, sender, blocks)
        if entry.get("onChain"):
            asset_ok = _publish_insurance(conn, epoch, asset, home, registry, sender, entry) and asset_ok
        report["assets"].append(entry)
        ok = ok and asset_ok
    report["ok"] = ok
    with conn.transaction():
        conn.execute("INSERT INTO por_reports (epoch, report, ok) VALUES (%s, %s, %s) ON CONFLICT (epoch)"
                     " DO UPDATE SET report = EXCLUDED.report, ok = EXCLUDED.ok", (epoch, json.dumps(report), ok))
    log.info("event=por_epoch_published epoch=%d ok=%s assets=%d", epoch, ok, len(report["assets"]))
    return report


# One asset's leaf inputs at an epoch: each recorded balance, the account's exit address (the latest
# registered before the epoch was marked; '' when none) and its counters: the home chain's deposits
# credited and payouts completed (their ledger entries: migration 0013 gave them a chain) up to
# the epoch's seq.
_LEAVES_SQL = """
COPY (SELECT b.account, b.balance, coalesce(x.address, ''), coalesce(m.deposited, 0), coalesce(m.withdrawn, 0)
  FROM por_balances b
  LEFT JOIN (SELECT account, coalesce(sum(d_available) FILTER (WHERE cause = 'credit'), 0) AS deposited,
                    coalesce(-sum(d_locked) FILTER (WHERE cause = 'withdrawal'), 0) AS withdrawn
               FROM ledger_entries WHERE chain = %(chain)s AND asset = %(asset)s AND seq <= %(seq)s
              GROUP BY account) m USING (account)
  LEFT JOIN (SELECT DISTINCT ON (account) account, address FROM exit_addresses
              WHERE registered_at < to_timestamp(%(ts)s::numeric / 1e9)
              ORDER BY account, nonce DESC) x USING (account)
 WHERE b.epoch = %(epoch)s AND b.asset = %(asset)s ORDER BY b.account) TO STDOUT"""


def read_balances(conn: psycopg.Connection[Any], epoch: int, asset: str, chain: str) -> packed.Balances:
    """One asset's leaf inputs at ``epoch`` (``chain``: the home chain's name, whose movements the
    counters count), streamed by COPY into arrays (no Python object per account left once read:
    millions of accounts fit)."""
    row = conn.execute("SELECT seq, ts FROM por_epochs WHERE epoch = %s", (epoch,)).fetchone()
    if row is None:
        raise PublishError(f"epoch {epoch} has not been recorded")
    ids: list[npt.NDArray[np.int64]] = []
    his: list[npt.NDArray[np.uint64]] = []
    los: list[npt.NDArray[np.uint64]] = []
    exits: list[tuple[int, bytes]] = []  # (row, address): the few accounts that have one
    counters: list[tuple[int, int, int]] = []  # (row, deposited, withdrawn): the ones not both zero
    rest = b""
    n = 0
    args = {"epoch": epoch, "asset": asset, "chain": chain, "seq": int(row[0]), "ts": int(row[1])}
    with conn.cursor() as cur, cur.copy(_LEAVES_SQL, args) as cp:
        for block in cp:
            lines = (rest + bytes(block)).split(b"\n")
            rest = lines.pop()
            accounts, balances = [], []
            for line in lines:
                a, b, x, d, w = line.split(b"\t")
                accounts.append(int(a))
                balances.append(int(b))
                if x:
                    exits.append((n, bytes.fromhex(x[2:].decode())))
                if d != b"0" or w != b"0":
                    counters.append((n, int(d), int(w)))
                n += 1
            if any(b < 0 or b >= por.MAX_VALUE for b in balances):
                raise por.ProofError(f"a balance of {asset} at epoch {epoch} is outside [0, 2**128)")
            ids.append(np.array(accounts, dtype=np.int64))
            his.append(np.array([b >> 64 for b in balances], dtype=np.uint64))
            los.append(np.array([b & 0xFFFFFFFFFFFFFFFF for b in balances], dtype=np.uint64))
    if rest:
        raise por.ProofError("the balances' COPY ended inside a row")
    if not ids:
        return packed.Balances(np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.uint64))
    exit_array = None
    if exits:
        exit_array = np.zeros((n, 20), dtype=np.uint8)
        exit_array[[i for i, _ in exits]] = np.frombuffer(b"".join(x for _, x in exits), np.uint8).reshape(-1, 20)
    counter_array = None
    if counters:
        if any(not (0 <= d < por.MAX_COUNTER and 0 <= w < por.MAX_COUNTER) for _, d, w in counters):
            raise por.ProofError(f"a counter of {asset} at epoch {epoch} is outside [0, 2**128)")
        counter_array = np.zeros((n, 4), dtype=np.uint64)
        counter_array[[i for i, _, _ in counters]] = np.array(
            [(d >> 64, d & packed.MASK64, w >> 64, w & packed.MASK64) for _, d, w in counters], dtype=np.uint64)
    return packed.Balances(np.concatenate(ids), np.concatenate(his), np.concatenate(los), exit_array, counter_array)


def _publish_asset(conn: psycopg.Connection[Any], epoch: int, asset: str, balances: packed.Balances, secret: bytes,
                   home: Chain, registry: str, others: list[Chain], store: ipfs.Store, sender: str,
                   blocks: dict[str, tuple[int, str]]) -> tuple[dict[str, Any], bool]:
    t = packed.build(por.Params(home.chain_id, registry, epoch, asset), balances, secret)
    cid = store.put(t.public_json())
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
            found = published_tx(home, registry, epoch, t.params.asset_id)
            if found is None:
                entry["error"] = "the registry holds this root, but its Published event was not found"
                return entry, False
            have = found
            _record(conn, epoch, asset, t, home, registry, cid, block, block_hash, found[0], found[1])
            log.info("event=por_publication_recovered epoch=%d asset=%s tx=%s", epoch, asset, found[0])
        entry["tx"] = have[0]
        entry["onChain"] = True
        return entry, total_reserves >= t.total
    tx = {"from": sender, "to": registry, "gas": hex(GAS_PUBLISH), "data": encode_call(
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
    _record(conn, epoch, asset, t, home, registry, cid, block, block_hash, tx_hash, gas)
    # one line per asset is the caller's (the AutoPublisher's por_published, or dpg por publish's report)
    log.debug("event=por_asset_published epoch=%d asset=%s root=0x%s total=%d cid=%s tx=%s gas=%d", epoch, asset,
              t.root.hex(), t.total, cid, tx_hash, gas)
    return entry, total_reserves >= t.total


def _publish_insurance(conn: psycopg.Connection[Any], epoch: int, asset: str, home: Chain, registry: str,
                       sender: str, entry: dict[str, Any]) -> bool:
    """The insurance fund's recorded balance of ``asset`` at ``epoch``, published in the registry
    beside the root (once: a publication already there must be the same balance). An epoch recorded
    before the insurance fund was (no row) publishes none."""
    row = conn.execute("SELECT balance, tx_hash FROM por_insurance WHERE epoch = %s AND asset = %s",
                       (epoch, asset)).fetchone()
    if row is None:
        return True
    balance, tx_hash = int(row[0]), row[1]
    entry["insuranceFund"] = str(balance)
    on_balance, done = insurance_fund(home.rpc, registry, epoch, asset)
    if done:
        if on_balance != balance:
            entry["error"] = f"the registry holds another insurance fund balance for this epoch: {on_balance}"
            return False
        if tx_hash:
            entry["insuranceFundTx"] = tx_hash
        return True
    if balance < 0:
        entry["error"] = f"the insurance fund's balance is negative: {balance}"
        return False
    tx = {"from": sender, "to": registry, "gas": hex(GAS_PUBLISH),
          "data": encode_call(PUBLISH_INSURANCE, epoch, por.asset_id(asset), balance)}
    reason = revert_reason(home.rpc, tx)
    if reason is not None:
        entry["error"] = f"the registry refused the insurance fund's balance: {reason}"
        return False
    tx_hash = home.rpc.send_transaction(tx)
    if to_int(home.rpc.wait_receipt(tx_hash)["status"]) != 1:
        entry["error"] = f"the insurance fund's publication {tx_hash} reverted"
        return False
    with conn.transaction():
        conn.execute("UPDATE por_insurance SET tx_hash = %s WHERE epoch = %s AND asset = %s", (tx_hash, epoch, asset))
    entry["insuranceFundTx"] = tx_hash
    return True


def _record(conn: psycopg.Connection[Any], epoch: int, asset: str, t: packed.PackedTree, home: Chain,
            registry: str, cid: str, block: int, block_hash: str, tx_hash: str, gas: int) -> None:
    """The publication and every user's proof (``dpg.por.proofs``: the API serves them from these
    tables), in one transaction."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO por_publications (epoch, asset, chain_id, registry, root, total, depth, leaves, cid,"
            " snapshot_block, snapshot_block_hash, tx_hash, gas_used, leaf_version) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (epoch, asset, home.chain_id, registry, "0x" + t.root.hex(), t.total, t.depth, len(t.accounts), cid,
             block, block_hash, tx_hash, gas, por.VERSION))
        conn.execute("DELETE FROM por_proof_accounts WHERE epoch = %s AND asset = %s", (epoch, asset))
        conn.execute("DELETE FROM por_proof_nodes WHERE epoch = %s AND asset = %s", (epoch, asset))
        proofs.write(conn, epoch, asset, t)


def load_private_tree(raw: bytes) -> por.Tree:
    """A tree of ``por_trees`` (gzip'd JSON), where epochs published before the proof tables are kept."""
    return por.load_tree(json.loads(gzip.decompress(raw)))


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
