"""A full proof-of-reserves cycle on two anvil chains and a running exchange: trades change balances →
an epoch is marked → every asset's tree → the registry deployed and the roots published (the second
chain's vault holdings declared) → every user's proof, fetched from the API, verifies by
``dpg por verify`` (root read from the chain), by the registry's ``verifyProof`` and by the browser's
code under Node → ``dpg por audit CID`` passes; and a later epoch whose liabilities exceed the
holdings is refused by the registry."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dpg.chain.anvil import Anvil
from dpg.chain.embedded import deploy
from dpg.chain.rpc import Rpc, to_int
from dpg.por import ipfs
from dpg.por import registry as pub
from dpg.store import db
from tests.api.client import ADMIN, User, dpg_cli, exchange, until
from tests.chain.conftest import DevChain, anvil_bin, artifacts, dev_chain  # noqa: F401 (fixtures)
from tests.por.jsverifier import run_module

SECRET = "5e" * 32
POLYGON = 31338


def _chains_file(path: Path, eth: DevChain, poly: DevChain, weth: str) -> Path:
    path.write_text(json.dumps({"chains": [
        {"name": "ethereum", "chain_id": 31337, "rpc_url": eth.anvil.url, "vault": eth.vault, "confirmations": 1,
         "native_asset": "ETH", "tokens": {"USDT": {"address": eth.usdt, "decimals": 6},
                                           "WBTC": {"address": eth.wbtc, "decimals": 8}}},
        {"name": "polygon", "chain_id": POLYGON, "rpc_url": poly.anvil.url, "vault": poly.vault, "confirmations": 1,
         "native_asset": "", "tokens": {"USDT": {"address": poly.usdt, "decimals": 6},
                                        "WBTC": {"address": poly.wbtc, "decimals": 8},
                                        "WETH": {"address": weth, "decimals": 18}}},
    ]}))
    return path


def _mark(base: str, env: dict[str, str], url: str) -> int:
    r = dpg_cli(env, "por", "snapshot", "--url", base)
    assert r.returncode == 0, r.stdout + r.stderr
    epoch = int(json.loads(r.stdout)["epoch"])

    def recorded() -> bool:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT 1 FROM por_epochs WHERE epoch = %s", (epoch,)).fetchone() is not None

    until("the epoch's balances were not recorded", recorded)
    return epoch


@pytest.mark.timeout(600)
def test_daily_cycle(dev_chain: DevChain, anvil_bin: Path, pg_server: str, tmp_path: Path) -> None:  # noqa: F811
    eth = dev_chain
    node = Anvil.start(anvil_bin, chain_id=POLYGON)
    poly = DevChain(anvil_bin, node, None)
    url = db.create_scratch(pg_server, "dpg_por")
    try:
        d = deploy(poly.rpc, poly.accounts[0], poly.accounts[1:6], [("USDT", 6), ("WBTC", 8), ("WETH", 18)])
        poly.vault, poly.usdt, poly.wbtc = d.vault, d.tokens["USDT"], d.tokens["WBTC"]
        chains = _chains_file(tmp_path / "chains.json", eth, poly, d.tokens["WETH"])
        env = {"DPG_DATA_DIR": str(tmp_path), "DPG_DATABASE_URL": url, "DPG_ADMIN_TOKEN": ADMIN,
               "DPG_POR_SECRET": SECRET}

        # reserves: USDT split over both chains (Ethereum alone is short), BTC and ETH on Ethereum
        eth.deposit_token(eth.usdt, 1, 60_000 * 10**6)
        poly.deposit_token(poly.usdt, 1, 50_000 * 10**6)
        eth.deposit_token(eth.wbtc, 2, 2 * 10**8)
        eth.deposit_eth(3, 5 * 10**18)

        with exchange(url, tmp_path, DPG_CUSTODY="0") as base:
            alice, bob, carol = (User(base, f"{n}@por.test") for n in ("alice", "bob", "carol"))
            alice.credit("USDT", "100000")
            bob.credit("BTC", "2")
            carol.credit("ETH", "5")
            carol.credit("USDT", "25")
            carol.credit("USD", "10")  # no chain holds USD: listed as unpublished
            assert alice.order(market="BTC/USDT", side="buy", price="50000", quantity="0.5").status_code == 201
            assert bob.order(market="BTC/USDT", side="sell", price="50000", quantity="0.5").status_code == 201
            time.sleep(1.1)  # the deposits' blocks are older than the epoch
            epoch = _mark(base, env, url)

            r = dpg_cli(env, "por", "deploy-registry", "--chains", str(chains))
            assert r.returncode == 0, r.stdout + r.stderr
            registry = json.loads(r.stdout)["registry"]
            r = dpg_cli(env, "por", "publish", "--chains", str(chains))
            assert r.returncode == 0, r.stdout + r.stderr
            report = json.loads(r.stdout)
            assert report["ok"] is True and report["epoch"] == str(epoch)
            assets = {a["asset"]: a for a in report["assets"]}
            assert sorted(assets) == ["BTC", "ETH", "USDT"]
            assert [u["asset"] for u in report["unpublished"]] == ["USD"]
            usdt = assets["USDT"]
            assert usdt["reserves"] == [
                {"chain": "ethereum", "chainId": "31337", "block": usdt["reserves"][0]["block"],
                 "holdings": str(60_000 * 10**6)},
                {"chain": "polygon", "chainId": str(POLYGON), "block": usdt["reserves"][1]["block"],
                 "holdings": str(50_000 * 10**6)}]
            assert usdt["declarations"] == [{"chainId": str(POLYGON), "amount": str(50_000 * 10**6)}]
            # the trade moved USDT and BTC between alice and bob, less the fees (the exchange's own)
            assert 99_000 * 10**6 < int(usdt["liabilities"]) < 100_025 * 10**6
            assert int(assets["BTC"]["liabilities"]) < 2 * 10**8 and assets["BTC"]["accounts"] == 2
            assert assets["ETH"]["liabilities"] == str(5 * 10**18) and assets["ETH"]["ratio"] == "1.000000"

            # the registry holds what the report says
            for a in assets.values():
                root, total, depth = pub.published(eth.rpc, registry, epoch, a["asset"])
                assert ("0x" + root.hex(), str(total), depth) == (a["root"], a["liabilities"], a["depth"])

            # a publisher that stopped after its transaction was mined, before it wrote the rows: a
            # second run finds the Published event and writes them, so users' proofs are served
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DELETE FROM por_proof_accounts WHERE epoch = %s AND asset = 'USDT'", (epoch,))
                conn.execute("DELETE FROM por_proof_nodes WHERE epoch = %s AND asset = 'USDT'", (epoch,))
                conn.execute("DELETE FROM por_publications WHERE epoch = %s AND asset = 'USDT'", (epoch,))
            r = dpg_cli(env, "por", "publish", "--chains", str(chains), "--epoch", str(epoch))
            assert r.returncode == 0, r.stdout + r.stderr
            report = json.loads(r.stdout)  # the report as the second run wrote it
            again = {a["asset"]: a for a in report["assets"]}
            assert again["USDT"]["tx"] == usdt["tx"] and again["USDT"]["root"] == usdt["root"]
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT tx_hash FROM por_publications WHERE epoch = %s AND asset = 'USDT'",
                                   (epoch,)).fetchone()
            assert row is not None and row[0] == usdt["tx"]

            # every user's proof of every asset they hold, from the API
            anonymous = httpx.get(f"{base}/api/v1/por/proof?asset=USDT")
            assert anonymous.status_code == 401
            proofs: list[dict[str, Any]] = []
            for user, held in ((alice, ["USDT", "BTC"]), (bob, ["USDT", "BTC"]), (carol, ["ETH", "USDT"])):
                for asset in held:
                    resp = user.http.get("/api/v1/por/proof", params={"asset": asset, "epoch": epoch})
                    assert resp.status_code == 200, resp.text
                    p = resp.json()
                    assert p["accountId"] == str(user.id) and p["registry"] == registry
                    proofs.append(p)
                assert user.http.get("/api/v1/por/proof", params={"asset": "ETH" if user is not carol else "BTC"}
                                     ).json()["code"] == "NO_PROOF"
            usd = alice.http.get("/api/v1/por/proof", params={"asset": "USD"}).json()  # no token carries it
            assert usd["code"] == "NOT_ON_CHAIN" and "held off chain" in usd["reason"], usd
            assert sum(int(p["balance"]) for p in proofs if p["asset"] == "USDT") == int(usdt["liabilities"])

            # by the CLI, the root read from the chain
            rpc_env = {**env, "DPG_POR_RPC": eth.anvil.url}
            for i, p in enumerate(proofs):
                f = tmp_path / f"proof-{i}.json"
                f.write_text(json.dumps(p))
                r = dpg_cli(rpc_env, "por", "verify", str(f))
                assert r.returncode == 0, r.stdout + r.stderr
                out = json.loads(r.stdout)
                assert out["valid"] is True and out["checkedAgainst"].startswith("registry")
            bad = dict(proofs[0], balance=str(int(proofs[0]["balance"]) + 1))
            (tmp_path / "bad.json").write_text(json.dumps(bad))
            r = dpg_cli(rpc_env, "por", "verify", str(tmp_path / "bad.json"))
            assert r.returncode == 1 and json.loads(r.stdout)["valid"] is False

            # on-chain
            for p in proofs:
                assert pub.verify_onchain(eth.rpc, registry, p) is True
            assert pub.verify_onchain(eth.rpc, registry, bad) is False
            verify_gas = [to_int(eth.rpc.call("eth_estimateGas", [pub.verify_proof_call(registry, p)])) for p in proofs]

            # in the browser's code, the root read from the chain
            js = run_module("""
                import * as v from "VERIFY";
                const out = [];
                for (const p of input.proofs) {
                  const onChain = await v.readPublished(input.rpc, p.registry, p.epoch, p.asset);
                  out.push({ onChain, result: v.verifyProof(p, onChain) });
                }
                out.push({ result: v.verifyProof(input.bad, await v.readPublished(input.rpc, input.bad.registry,
                                                                                  input.bad.epoch, input.bad.asset)) });
                console.log(JSON.stringify(out));
            """, {"proofs": proofs, "rpc": eth.anvil.url, "bad": bad})
            assert [x["result"]["valid"] for x in js] == [True] * len(proofs) + [False]
            assert all(x["onChain"]["root"] == p["root"] for x, p in zip(js, proofs, strict=False))

            # the audit of every published tree
            for a in assets.values():
                r = dpg_cli(rpc_env, "por", "audit", a["cid"])
                assert r.returncode == 0, r.stdout + r.stderr
                out = json.loads(r.stdout)
                assert out["ok"] is True and out["total"] == a["liabilities"]
            store = ipfs.Store(tmp_path / "ipfs")
            tree = json.loads(store.get(usdt["cid"]))
            assert "accounts" not in tree  # the published tree names no account
            tree["leaves"][0][1] = str(int(tree["leaves"][0][1]) + 1)
            forged = store.put(json.dumps(tree).encode())
            r = dpg_cli(rpc_env, "por", "audit", forged)
            assert r.returncode == 1 and json.loads(r.stdout)["ok"] is False

            # the public side of the API
            listed = httpx.get(f"{base}/api/v1/por/epochs").json()
            assert listed[0]["epoch"] == str(epoch) and listed[0]["reportOk"] is True
            assert sorted(x["cid"] for x in listed[0]["published"]) == sorted(a["cid"] for a in assets.values())
            assert httpx.get(f"{base}/api/v1/por/report/{epoch}").json()["assets"] == report["assets"]
            assert httpx.get(f"{base}/api/v1/por/report/1").status_code == 404
            page = httpx.get(f"{base}/por")
            assert page.status_code == 200 and usdt["cid"] in page.text and "exit address" in page.text

            # liabilities above the holdings: the registry refuses the publication
            carol.credit("ETH", "1")
            time.sleep(1.1)
            later = _mark(base, env, url)
            r = dpg_cli(env, "por", "publish", "--chains", str(chains), "--epoch", str(later))
            assert r.returncode == 1, r.stdout + r.stderr
            refused = {a["asset"]: a for a in json.loads(r.stdout)["assets"]}
            assert "ReservesShort" in refused["ETH"]["error"] or "revert" in refused["ETH"]["error"]
            assert refused["USDT"].get("tx") and "error" not in refused["USDT"]
            assert pub.published(eth.rpc, registry, later, "ETH")[2] == 0

        gas = {a["asset"]: a["gasUsed"] for a in assets.values()}
        print(json.dumps({"publish_gas": gas, "verifyProof_gas_estimate": verify_gas,
                          "depths": [p["depth"] for p in proofs]}))
    finally:
        node.stop()
        db.drop(url)


def test_snapshot_block_is_the_last_at_or_before_the_epoch(dev_chain: DevChain) -> None:  # noqa: F811
    rpc: Rpc = dev_chain.rpc
    head = rpc.block_number()
    stamps = [to_int(rpc.block(n)["timestamp"]) for n in range(head + 1)]  # type: ignore[index]
    for n in range(head + 1):
        got, h = pub.snapshot_block(rpc, stamps[n])
        assert stamps[got] <= stamps[n] and (got == head or stamps[got + 1] > stamps[n])
        assert h == rpc.block_hash(got)
    assert pub.snapshot_block(rpc, 0)[0] == 0
