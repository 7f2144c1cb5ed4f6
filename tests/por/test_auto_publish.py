"""The proof of reserves publishes itself in ``dpg up``: the exchange on its embedded default chains
(as ``make up`` runs it, no keys, a fresh data dir) deploys its ReserveRegistry and tells the API
where it is; deposits on both chains are credited and traded; an epoch marked by ``dpg por
snapshot`` is published on its own (Polygon's USDT declared, since Ethereum's vault alone is short)
with one log line per asset; a user's proof from the API verifies with ``dpg por verify`` against
the chain named by ``/api/v1/por/registry``, and ``dpg por audit CID`` passes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dpg.chain.embedded import deposit_eth, deposit_token
from dpg.chain.rpc import Rpc
from dpg.por import publish as pub
from dpg.store import db
from tests.api.client import ADMIN, ROOT, Process, User, free_port
from tests.chain.conftest import anvil_bin, artifacts  # noqa: F401 (fixtures)

ETH = 10**18
USDT = 10**6


def _until(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise TimeoutError(what)


def _dpg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dpg.cli", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, check=False)


def _chains(url: str) -> dict[str, dict[str, Any]]:
    """The custody chains as dpg up resolved them (the embedded anvils' URLs and addresses)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT name, rpc_url, vault, tokens FROM chains").fetchall()
    return {name: {"rpc": Rpc(rpc_url), "vault": vault, "tokens": {t["symbol"]: t["address"] for t in tokens}}
            for name, rpc_url, vault, tokens in rows}


def _balance(user: User, asset: str) -> Decimal:
    try:
        return sum((Decimal(x) for x in user.balance(asset)), Decimal(0))
    except KeyError:
        return Decimal(0)


@pytest.mark.timeout(180)
def test_dpg_up_publishes_every_epoch_on_its_own(anvil_bin: Path, artifacts: Path, pg_server: str,  # noqa: F811
                                                 tmp_path: Path) -> None:
    url = db.create_scratch(pg_server, "dpg_por_auto")
    port = free_port()
    env = {"DPG_DATABASE_URL": url, "DPG_ADMIN_TOKEN": ADMIN, "DPG_DATA_DIR": str(tmp_path), "DPG_CUSTODY": "1",
           "DPG_ANVIL": str(anvil_bin), "DPG_CHAINS": "", "DPG_POR_SECRET": "", "DPG_POR_REGISTRY": "",
           "DPG_POR_RPC": "", "DPG_POR_PUBLISH": "1"}
    proc = Process(["up", "--port", str(port)], env, "DPG is up")
    base = f"http://127.0.0.1:{port}"
    try:
        # the registry: deployed on the first embedded chain, recorded, and given out by the API
        reg = _until("the registry", lambda: (r := httpx.get(f"{base}/api/v1/por/registry")).status_code == 200
                     and r.json())
        assert reg["chain"] == "ethereum" and reg["chainId"] == "31337"
        assert reg["rpcUrl"].startswith("http://127.0.0.1:")
        rpc = Rpc(reg["rpcUrl"])
        assert rpc.chain_id() == 31337 and rpc.code(reg["registry"])
        assert pub.read_record(tmp_path) == {"chainId": 31337, "registry": reg["registry"], "rpcUrl": reg["rpcUrl"]}
        secret = tmp_path / "por.secret"  # no DPG_POR_SECRET: one made for this exchange, private
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(bytes.fromhex(secret.read_text().strip())) == 32

        # deposits on both chains: 1 ETH for alice; 5,000 USDT on Ethereum and 2,000 on Polygon for bob
        alice, bob = User(base, "alice@auto.por"), User(base, "bob@auto.por")
        chains = _chains(url)
        eth, poly = chains["ethereum"], chains["polygon"]
        payer = eth["rpc"].accounts()[9]
        deposit_eth(eth["rpc"], eth["vault"], payer, alice.id, ETH)
        deposit_token(eth["rpc"], eth["vault"], eth["tokens"]["USDT"], payer, bob.id, 5_000 * USDT)
        deposit_token(poly["rpc"], poly["vault"], poly["tokens"]["USDT"], poly["rpc"].accounts()[9], bob.id,
                      2_000 * USDT)
        _until("the deposits' credits", lambda: _balance(alice, "ETH") == 1 and _balance(bob, "USDT") == 7_000)

        # a trade: bob buys alice's ether
        assert bob.order(market="ETH/USDT", side="buy", type="limit", price="3000", quantity="1").status_code == 201
        r = alice.order(market="ETH/USDT", side="sell", type="market", quantity="1")
        assert r.status_code == 201, r.text

        # an epoch marked: nothing else to do, it is published
        r = _dpg(env, "por", "snapshot", "--url", base)
        assert r.returncode == 0, r.stdout + r.stderr
        epoch = str(json.loads(r.stdout)["epoch"])

        def published() -> Any:
            listed = httpx.get(f"{base}/api/v1/por/epochs").json()
            return listed and listed[0]["epoch"] == epoch and listed[0]["reportOk"] is not None and listed[0]

        listed = _until("the epoch's publication", published)
        assert listed["reportOk"] is True
        assert sorted(p["asset"] for p in listed["published"]) == ["BTC", "ETH", "USDT"]
        assert {p["registry"] for p in listed["published"]} == {reg["registry"]}
        report = httpx.get(f"{base}/api/v1/por/report/{epoch}").json()
        usdt = next(a for a in report["assets"] if a["asset"] == "USDT")
        assert usdt["declarations"] == [{"chainId": "31338", "amount": str(2_000 * USDT)}]
        assert 5_000 * USDT < int(usdt["liabilities"]) <= 7_000 * USDT <= int(usdt["reservesTotal"])
        lines = _until("the publication's log lines",
                       lambda: [x for x in proc.lines if "event=por_published" in x and f"epoch={epoch}" in x])
        usdt_line = next(x for x in lines if "asset=USDT" in x)
        for part in (f"root={usdt['root']}", f"total={usdt['liabilities']}", f"cid={usdt['cid']}", "ok=true"):
            assert part in usdt_line, usdt_line

        # bob's proofs verify against the chain the API names, and the whole trees pass the audit
        check = {**env, "DPG_DATA_DIR": str(tmp_path / "elsewhere")}  # a user's machine: the API's answer only
        for asset in ("ETH", "USDT"):
            resp = bob.http.get("/api/v1/por/proof", params={"asset": asset})
            assert resp.status_code == 200, resp.text
            proof = resp.json()
            assert proof["epoch"] == epoch and proof["registry"] == reg["registry"] and proof["chainId"] == "31337"
            f = tmp_path / f"proof-{asset}.json"
            f.write_text(json.dumps(proof))
            r = _dpg(check, "por", "verify", str(f), "--rpc", reg["rpcUrl"])
            assert r.returncode == 0, r.stdout + r.stderr
            out = json.loads(r.stdout)
            assert out["valid"] is True and out["checkedAgainst"].startswith("registry")
            forged = tmp_path / f"forged-{asset}.json"
            forged.write_text(json.dumps(dict(proof, balance=str(int(proof["balance"]) + 1))))
            assert _dpg(check, "por", "verify", str(forged), "--rpc", reg["rpcUrl"]).returncode == 1
        for p in listed["published"]:
            r = _dpg(env, "por", "audit", p["cid"], "--rpc", reg["rpcUrl"])
            assert r.returncode == 0, r.stdout + r.stderr
            assert json.loads(r.stdout)["ok"] is True
    finally:
        proc.stop()
        db.drop(url)
        print("".join(proc.lines[-80:]))  # shown when the test fails
