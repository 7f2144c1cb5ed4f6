"""Auditing a published tree from anywhere: the exchange serves every published tree at
/ipfs/{cid} as an IPFS gateway does (and pins it on its Kubo node), and ``dpg por audit CID
--gateway URL --rpc URL`` from an empty data directory fetches it, checks its bytes against the CID,
every node, the leaves and the registry on anvil; tampered trees, served by a gateway of the test's
own, fail: under the original CID the CID check, re-hashed under their own CID the registry's root
(and a duplicated leaf its own check, even when the registry holds that tree's root)."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dpg.chain.contracts import encode_call
from dpg.chain.rpc import to_int
from dpg.por import audit, ipfs
from dpg.por import tree as por
from dpg.por.publish import publish_epoch
from dpg.por.registry import GAS_PUBLISH, PUBLISH, Chain, deploy_registry
from tests.api.client import dpg_cli, exchange
from tests.chain.conftest import CHAIN_ID, DevChain, anvil_bin, artifacts, dev_chain  # noqa: F401 (fixtures)
from tests.por.test_ipfs import FakeKubo, kubo  # noqa: F401 (fixture)

SECRET = bytes(range(32))
BALANCES = {1: 5_000_000, 2: 7, 3: 1_234_567, 4: 10**9, 5: 42}  # five accounts: depth 3, three pads
FUND = 123_456


def rehash(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with its root and total recomputed from its leaves (a forger's consistent tree)."""
    level = [(bytes.fromhex(h[2:]), int(v)) for h, v in doc["leaves"]]
    while len(level) > 1:
        level = [(por.node_hash(a, av, b, bv), av + bv) for (a, av), (b, bv) in zip(level[::2], level[1::2],
                                                                                   strict=True)]
    return {**doc, "root": "0x" + level[0][0].hex(), "total": str(level[0][1])}


def changed_leaf(doc: dict[str, Any]) -> dict[str, Any]:
    forged = copy.deepcopy(doc)
    forged["leaves"][0][1] = str(int(forged["leaves"][0][1]) - 1)  # a user's balance, one unit less
    return forged


def duplicated_leaf(doc: dict[str, Any]) -> dict[str, Any]:
    forged = copy.deepcopy(doc)
    forged["leaves"][1] = list(forged["leaves"][0])  # one user's leaf shown in another's place
    return forged


# ---------------------------------------------------------------------- the tree on its own


def _tree() -> dict[str, Any]:
    t = por.build(por.Params(CHAIN_ID, "0x" + "11" * 20, 1_700_000_000, "USDT"),
                  [(str(a), b) for a, b in BALANCES.items()], SECRET)
    return por.public_tree(por.tree_json(t))


def test_a_true_tree_has_no_problem() -> None:
    assert audit.check_tree(_tree()) == []


@pytest.mark.parametrize(("forge", "problem"), [
    (lambda d: rehash(changed_leaf(d)) | {"leaves": d["leaves"]}, "do not add up"),
    (lambda d: rehash(duplicated_leaf(d)), "leaf 1 is a duplicate of leaf 0"),
    (lambda d: d | {"leafCount": 4}, "leaves after the 4 real ones are not zero pads"),
    (lambda d: d | {"leafCount": 6}, "real leaves are zero"),
    (lambda d: d | {"leafCount": 2}, "a tree of 2 leaves has depth 1, not 3"),
    (lambda d: d | {"leafCount": 9}, "leafCount 9 is not a number of leaves"),
    (lambda d: rehash(d | {"leaves": [d["leaves"][1], d["leaves"][0], *d["leaves"][2:]]}), "strictly ascending"),
    (lambda d: d | {"assetId": "0x" + "00" * 32}, "assetId"),
    (lambda d: d | {"leaves": d["leaves"][:4]}, "has 8 leaves, not 4"),
    (lambda d: [d], "not a JSON object"),
])
def test_each_forgery_is_named(forge: Any, problem: str) -> None:
    problems = audit.check_tree(forge(_tree()))
    assert any(problem in p for p in problems), problems


def test_bytes_that_are_not_the_cids() -> None:
    data = json.dumps(_tree()).encode()
    cid = ipfs.cid_raw(data)
    assert audit.check_bytes(cid, data) == []
    (problem,) = audit.check_bytes(cid, data.replace(b'"7"', b'"6"'))
    assert "do not hash to it" in problem and "not the published tree" in problem


# ---------------------------------------------------------------------- published on anvil


@dataclass
class Published:
    chain: DevChain
    registry: str
    epoch: int
    cid: str
    data: bytes
    entry: dict[str, Any]
    operator_dir: Path


def record_and_publish(chain: DevChain, url: str, store: ipfs.Store, registry: str, balances: dict[int, int],
                       fund: int) -> tuple[int, dict[str, Any]]:
    """An epoch recorded at the chain's head (or just after the last epoch) with ``balances`` and the
    insurance fund's ``fund`` (as the projection records them), published by ``publish_epoch``;
    (epoch, its USDT entry)."""
    chain.mine()
    head = to_int(chain.rpc.block(chain.head())["timestamp"])  # type: ignore[index]
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT max(epoch) FROM por_epochs").fetchone()
        epoch = max(head, int(row[0]) + 1) if row and row[0] is not None else head  # a block may share a second
        with conn.transaction():
            conn.execute("INSERT INTO por_epochs (epoch, seq, ts) VALUES (%s, %s, %s)", (epoch, epoch, epoch * 10**9))
            for account, balance in balances.items():
                conn.execute("INSERT INTO por_balances (epoch, asset, account, balance) VALUES (%s, 'USDT', %s, %s)",
                             (epoch, account, balance))
            conn.execute("INSERT INTO por_insurance (epoch, asset, balance) VALUES (%s, 'USDT', %s)", (epoch, fund))
        home = Chain("ethereum", CHAIN_ID, chain.rpc, chain.vault, {"USDT": chain.usdt})
        report = publish_epoch(conn, epoch, SECRET, home, registry, [], store, chain.accounts[0])
    assert report["ok"], report
    (entry,) = report["assets"]
    return epoch, entry


@pytest.fixture
def published(dev_chain: DevChain, pg_url: str, tmp_path: Path, kubo: FakeKubo) -> Published:  # noqa: F811
    chain = dev_chain
    chain.deposit_token(chain.usdt, 1, 2 * sum(BALANCES.values()))  # the vault covers the liabilities
    registry = deploy_registry(chain.rpc, chain.accounts[0], chain.vault, {"USDT": chain.usdt})
    operator = tmp_path / "operator"
    store = ipfs.Store(operator / "ipfs", ipfs.Kubo(kubo.url))
    epoch, entry = record_and_publish(chain, pg_url, store, registry, BALANCES, FUND)
    cid = entry["cid"]
    return Published(chain, registry, epoch, cid, (operator / "ipfs" / cid).read_bytes(), entry, operator)


class Gateway(ThreadingHTTPServer):
    """A gateway of the test's own: ``/ipfs/<cid>`` answers whatever bytes ``blocks`` has for it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), GatewayHandler)
        self.blocks: dict[str, bytes] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class GatewayHandler(BaseHTTPRequestHandler):
    server: Gateway

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:
        data = self.server.blocks.get(self.path.split("?")[0].removeprefix("/ipfs/"))
        self.send_response(200 if data is not None else 404)
        self.send_header("content-length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _audit(tmp_path: Path, cid: str, gateway: str, rpc: str, *more: str) -> tuple[int, dict[str, Any], str]:
    """``dpg por audit`` run from an empty data directory with nothing of the operator's in its environment."""
    empty = tmp_path / "auditor"
    empty.mkdir(exist_ok=True)
    env = {"DPG_DATA_DIR": str(empty), "DPG_POR_RPC": "", "DPG_IPFS_API": "", "DPG_DATABASE_URL": ""}
    r = dpg_cli(env, "por", "audit", cid, "--gateway", gateway, "--rpc", rpc, *more)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else {}, r.stderr


@pytest.mark.timeout(300)
def test_the_exchange_serves_its_trees_and_anyone_audits_them(published: Published, pg_url: str, tmp_path: Path,
                                                               kubo: FakeKubo) -> None:  # noqa: F811
    p = published
    assert kubo.blocks[p.cid] == p.data  # pinned on the Kubo node at publication
    assert any(r["path"] == "/api/v0/block/put" and r["query"]["pin"] == "true" for r in kubo.requests)
    with exchange(pg_url, p.operator_dir, DPG_IPFS_API=kubo.url) as base:
        r = httpx.get(f"{base}/ipfs/{p.cid}")
        assert r.status_code == 200 and r.content == p.data and ipfs.matches(p.cid, r.content)
        assert r.headers["content-type"] == "application/json"
        assert "immutable" in r.headers["cache-control"] and r.headers["etag"] == f'"{p.cid}"'
        raw = httpx.get(f"{base}/ipfs/{p.cid}", headers={"accept": ipfs.RAW_BLOCK})
        assert raw.content == p.data and raw.headers["content-type"] == ipfs.RAW_BLOCK
        assert httpx.get(f"{base}/ipfs/{p.cid}?format=raw").headers["content-type"] == ipfs.RAW_BLOCK
        head = httpx.head(f"{base}/ipfs/{p.cid}")
        assert head.status_code == 200 and head.headers["content-length"] == str(len(p.data))
        assert httpx.get(f"{base}/ipfs/{p.cid}", headers={"if-none-match": f'"{p.cid}"'}).status_code == 304
        unknown = httpx.get(f"{base}/ipfs/{ipfs.cid_raw(b'never published')}")
        assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_CID"
        for bad in ("not-a-cid", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", p.cid[:-1]):
            got = httpx.get(f"{base}/ipfs/{bad}")
            assert got.status_code == 400 and got.json()["code"] == "INVALID_CID", (bad, got.text)
        # a copy only the Kubo node has is served from it, checked against the CID
        (p.operator_dir / "ipfs" / p.cid).unlink()
        assert httpx.get(f"{base}/ipfs/{p.cid}").content == p.data
        # a tree the exchange no longer holds intact is refused, not served
        kubo.blocks[p.cid] = p.data + b" "
        lost = httpx.get(f"{base}/ipfs/{p.cid}")
        assert lost.status_code == 503 and lost.json()["code"] == "TREE_UNAVAILABLE"
        kubo.blocks[p.cid] = p.data

        # the audit from an empty data directory: the exchange as the gateway, the chain's node
        code, out, err = _audit(tmp_path, p.cid, base, p.chain.anvil.url)
        assert code == 0, (out, err)
        assert out["ok"] is True and out["problems"] == []
        assert (out["total"], out["root"], out["depth"]) == (p.entry["liabilities"], p.entry["root"], p.entry["depth"])
        assert out["leafCount"] == len(BALANCES) and out["leaves"] == 8
        assert out["onChain"]["cid"] == p.cid and out["onChain"]["insuranceFund"] == str(FUND)
        assert list((tmp_path / "auditor").iterdir()) == []  # nothing of the operator's, nothing left behind
        # the registry named, as the tree names it (any case); another registry is refused
        assert _audit(tmp_path, p.cid, base, p.chain.anvil.url, "--registry", p.registry.upper().replace("0X", "0x")
                      )[0] == 0
        code, out, _ = _audit(tmp_path, p.cid, base, p.chain.anvil.url, "--registry", "0x" + "22" * 20)
        assert code == 1 and "commit to the registry" in out["problems"][0]
        # a malformed CID is a usage error; an unknown one, the gateway's 404
        assert _audit(tmp_path, "bafy-not", base, p.chain.anvil.url)[0] == 2
        code, _, err = _audit(tmp_path, ipfs.cid_raw(b"never published"), base, p.chain.anvil.url)
        assert code == 1 and "HTTP 404" in err


@pytest.mark.timeout(300)
def test_tampered_trees_fail_the_audit(published: Published, pg_url: str, tmp_path: Path,
                                       gateway: Gateway) -> None:
    p = published
    rpc = p.chain.anvil.url
    doc = json.loads(p.data)
    gateway.blocks[p.cid] = p.data
    code, out, err = _audit(tmp_path, p.cid, gateway.url, rpc)
    assert code == 0, (out, err)  # the true tree from this gateway passes

    for forge, own in ((changed_leaf, []), (duplicated_leaf, ["leaf 1 is a duplicate of leaf 0",
                                                              "not in strictly ascending order"])):
        forged = json.dumps(rehash(forge(doc))).encode()
        # under the original CID: the bytes are not the CID's
        gateway.blocks[p.cid] = forged
        code, out, err = _audit(tmp_path, p.cid, gateway.url, rpc)
        assert code == 1 and len(out["problems"]) == 1 and "do not hash to it" in out["problems"][0], out
        assert "audit failed: the bytes served" in err
        # re-hashed under its own CID: a consistent tree, but not the root the registry holds
        cid = ipfs.cid_raw(forged)
        gateway.blocks[cid] = forged
        code, out, _ = _audit(tmp_path, cid, gateway.url, rpc)
        assert code == 1 and not out["ok"], out
        for problem in own:
            assert any(problem in x for x in out["problems"]), out
        if not own:  # the changed leaf's tree holds on its own: only the registry tells it apart
            assert [x.split(" ")[3] for x in out["problems"]] == ["root", "total", "the"], out
            assert out["problems"][2].startswith(f"the registry names the tree {p.cid}, not {cid}")
            assert out["onChain"]["root"] == p.entry["root"]

    # a duplicated leaf fails on its own: its root published for another epoch by the registry's owner
    chain = p.chain
    forged_doc = rehash(duplicated_leaf(doc))
    chain.mine()
    epoch = to_int(chain.rpc.block(chain.head())["timestamp"]) + 1  # type: ignore[index]
    forged_doc["epoch"] = str(epoch)
    forged = json.dumps(forged_doc).encode()
    cid = ipfs.cid_raw(forged)
    block = chain.head()
    tx = chain.rpc.send_transaction({"from": chain.accounts[0], "to": p.registry, "gas": hex(GAS_PUBLISH),
                                     "data": encode_call(PUBLISH, epoch, por.asset_id("USDT"),
                                                         bytes.fromhex(forged_doc["root"][2:]),
                                                         int(forged_doc["total"]), int(forged_doc["depth"]), block,
                                                         bytes.fromhex(chain.rpc.block_hash(block)[2:]),  # type: ignore[index]
                                                         cid, [])})
    assert to_int(chain.rpc.wait_receipt(tx)["status"]) == 1
    gateway.blocks[cid] = forged
    code, out, _ = _audit(tmp_path, cid, gateway.url, rpc)
    assert code == 1 and out["onChain"]["root"] == forged_doc["root"] and out["onChain"]["cid"] == cid, out
    assert sorted(x.split(" (")[0] for x in out["problems"]) == [
        "leaf 1 is a duplicate of leaf 0", "the real leaves are not in strictly ascending order of hash"], out
