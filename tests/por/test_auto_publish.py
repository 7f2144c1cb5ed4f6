"""The proof of reserves publishes itself in ``dpg up``: the exchange on its embedded default chains
(as ``make up`` runs it, no keys, a fresh data dir) deploys its ReserveRegistry and tells the API
where it is; deposits on both chains are credited and traded; an epoch marked by ``dpg por
snapshot`` is published on its own (Polygon's USDT declared, since Ethereum's vault alone is short)
with one log line per asset; a user's proof from the API verifies with ``dpg por verify`` against
the chain named by ``/api/v1/por/registry``, and ``dpg por audit CID`` passes."""

from __future__ import annotations

import json
import stat
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dpg.chain.embedded import deposit_eth, deposit_token
from dpg.chain.rpc import Rpc, to_int
from dpg.core.model import INSURANCE_ACCOUNT
from dpg.por import ipfs
from dpg.por import registry as pub
from dpg.por.publisher import AutoPublisher
from dpg.store import db
from tests.api.client import ADMIN, Process, User, dpg_cli, free_port, until
from tests.chain.conftest import (  # noqa: F401 (fixtures)
    DevChain,
    anvil_bin,
    artifacts,
    dev_chain,
    dev_chain_with_state,
)

ETH = 10**18
USDT = 10**6


SECRET = bytes.fromhex("a7" * 32)


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
        reg = until("the registry", lambda: (r := httpx.get(f"{base}/api/v1/por/registry")).status_code == 200
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
        until("the deposits' credits", lambda: _balance(alice, "ETH") == 1 and _balance(bob, "USDT") == 7_000)

        # a trade: bob buys alice's ether
        assert bob.order(market="ETH/USDT", side="buy", type="limit", price="3000", quantity="1").status_code == 201
        r = alice.order(market="ETH/USDT", side="sell", type="market", quantity="1")
        assert r.status_code == 201, r.text

        # an epoch marked: nothing else to do, it is published. First the chains' clocks: a dev chain
        # that mines a block per transaction runs ahead of the wall clock (each block's timestamp is
        # after its parent's), and a deposit's block must be older than the epoch to be counted.
        heads = [to_int(c["rpc"].block(c["rpc"].block_number())["timestamp"]) for c in (eth, poly)]
        until("the wall clock past the chains' heads", lambda: time.time() > max(heads) + 1, timeout=30)
        r = dpg_cli(env, "por", "snapshot", "--url", base)
        assert r.returncode == 0, r.stdout + r.stderr
        epoch = str(json.loads(r.stdout)["epoch"])

        def published() -> Any:
            listed = httpx.get(f"{base}/api/v1/por/epochs").json()
            return listed and listed[0]["epoch"] == epoch and listed[0]["reportOk"] is not None and listed[0]

        listed = until("the epoch's publication", published)
        assert listed["reportOk"] is True
        assert sorted(p["asset"] for p in listed["published"]) == ["BTC", "ETH", "USDT"]
        assert {p["registry"] for p in listed["published"]} == {reg["registry"]}
        report = httpx.get(f"{base}/api/v1/por/report/{epoch}").json()
        usdt = next(a for a in report["assets"] if a["asset"] == "USDT")
        # the insurance fund's balance (its share of the trade's fees), published beside the root, is
        # the ledger's at the epoch's seq: in the report, the epochs' list and the registry
        with psycopg.connect(url) as conn:
            (seq,) = conn.execute("SELECT seq FROM por_epochs WHERE epoch = %s", (int(epoch),)).fetchone() or (0,)
            row = conn.execute("SELECT balance FROM ledger_entries WHERE account = %s AND asset = 'USDT' AND seq <= %s"
                               " ORDER BY seq DESC, n DESC LIMIT 1", (INSURANCE_ACCOUNT, seq)).fetchone()
        assert row is not None and int(row[0]) > 0
        fund = int(row[0])
        assert usdt["insuranceFund"] == str(fund) and usdt["insuranceFundTx"].startswith("0x")
        assert next(p for p in listed["published"] if p["asset"] == "USDT")["insuranceFund"] == str(fund)
        assert pub.insurance_fund(rpc, reg["registry"], int(epoch), "USDT") == (fund, True)
        assert usdt["declarations"] == [{"chainId": "31338", "amount": str(2_000 * USDT)}]
        assert 5_000 * USDT < int(usdt["liabilities"]) <= 7_000 * USDT <= int(usdt["reservesTotal"])
        lines = until("the publication's log lines",
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
            r = dpg_cli(check, "por", "verify", str(f), "--rpc", reg["rpcUrl"])
            assert r.returncode == 0, r.stdout + r.stderr
            out = json.loads(r.stdout)
            assert out["valid"] is True and out["checkedAgainst"].startswith("registry")
            forged = tmp_path / f"forged-{asset}.json"
            forged.write_text(json.dumps(dict(proof, balance=str(int(proof["balance"]) + 1))))
            assert dpg_cli(check, "por", "verify", str(forged), "--rpc", reg["rpcUrl"]).returncode == 1
        for p in listed["published"]:
            r = dpg_cli(env, "por", "audit", p["cid"], "--rpc", reg["rpcUrl"])
            assert r.returncode == 0, r.stdout + r.stderr
            assert json.loads(r.stdout)["ok"] is True
    finally:
        proc.stop()
        db.drop(url)
        print("".join(proc.lines[-80:]))  # shown when the test fails


def _publisher(url: str, dev: DevChain, data_dir: Path, embedded: bool = True, **options: Any) -> AutoPublisher:
    options.setdefault("poll", 0.1)
    options.setdefault("backoff_initial", 0.1)
    options.setdefault("backoff_max", 0.5)
    return AutoPublisher(url, [dev.config()], {"ethereum"} if embedded else set(), data_dir, SECRET,
                             ipfs.Store(data_dir / "ipfs"), **options)


def _registry_row(url: str) -> tuple[Any, ...] | None:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT chain, chain_id, registry, rpc_url FROM por_registry").fetchone()


def test_the_registry_is_recorded_reused_and_deployed_again_on_a_reset_chain(
        dev_chain: DevChain, pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    first = _publisher(pg_url, dev_chain, tmp_path)
    first.start()
    try:
        reg = until("the registry", lambda: first.registry)
    finally:
        first.stop()
    assert dev_chain.rpc.code(reg.address)
    assert _registry_row(pg_url) == ("ethereum", 31337, reg.address, dev_chain.anvil.url)
    assert pub.read_record(tmp_path) == {"chainId": 31337, "registry": reg.address, "rpcUrl": dev_chain.anvil.url}

    again = _publisher(pg_url, dev_chain, tmp_path, public_rpc="https://rpc.example/eth")
    again.start()
    try:
        assert until("the registry", lambda: again.registry).address == reg.address  # recorded: not redeployed
    finally:
        again.stop()
    assert _registry_row(pg_url) == ("ethereum", 31337, reg.address, "https://rpc.example/eth")

    # the record names an address with no code (the dev chain was reset): a new registry
    pub.write_record(tmp_path, 31337, "0x" + "11" * 20, dev_chain.anvil.url)
    reset = _publisher(pg_url, dev_chain, tmp_path)
    reset.start()
    try:
        fresh = until("the registry", lambda: reset.registry)
    finally:
        reset.stop()
    assert fresh.address not in (reg.address, "0x" + "11" * 20) and dev_chain.rpc.code(fresh.address)


def test_a_chain_by_url_needs_a_registry(dev_chain: DevChain, pg_url: str, tmp_path: Path,  # noqa: F811
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="dpg.por.publish")
    off = _publisher(pg_url, dev_chain, tmp_path, embedded=False)
    off.start()
    until("publishing off", lambda: "event=por_publish_off" in caplog.text)
    off.stop()
    assert off.registry is None and _registry_row(pg_url) is None

    address = pub.deploy_registry(dev_chain.rpc, dev_chain.accounts[0], dev_chain.vault,
                                  pub.Chain.from_config(dev_chain.config()).tokens)
    named = _publisher(pg_url, dev_chain, tmp_path / "other", embedded=False, registry=address)
    named.start()
    try:
        got = until("the registry", lambda: named.registry)
    finally:
        named.stop()
    assert got.address == address and got.public_rpc == ""  # a node URL is never given out unless DPG_POR_RPC


def _record_epoch(url: str, epoch: int, balances: list[tuple[str, int, int]]) -> None:
    """What the projection writes for a marked epoch: its row and its balances, in one transaction."""
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("INSERT INTO por_epochs (epoch, seq, ts) VALUES (%s, 1, %s)", (epoch, epoch * 10**9))
        for asset, account, balance in balances:
            conn.execute("INSERT INTO por_balances (epoch, asset, account, balance) VALUES (%s, %s, %s, %s)",
                         (epoch, asset, account, balance))


def _reported(url: str) -> dict[int, bool]:
    with psycopg.connect(url) as conn:
        return {int(e): bool(ok) for e, ok in conn.execute("SELECT epoch, ok FROM por_reports")}


def _line(caplog: pytest.LogCaptureFixture, *parts: str) -> str:
    return next(m for m in (r.getMessage() for r in caplog.records) if all(p in m for p in parts))


def test_an_epoch_is_published_once_its_balances_are_recorded_and_a_down_chain_is_waited_for(
        dev_chain_with_state: DevChain, pg_url: str, tmp_path: Path,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    dev = dev_chain_with_state
    caplog.set_level("INFO", logger="dpg.por.publish")
    before = int(time.time()) - 3600  # an epoch older than the chain: its snapshot block is block 0
    _record_epoch(pg_url, before, [("ETH", 7, ETH)])
    time.sleep(1.5)  # anvil has written its state file
    dev.stop()  # down when publishing starts: retried until it is back
    publisher = _publisher(pg_url, dev, tmp_path, attempts=2)
    publisher.start()
    try:
        until("a retry", lambda: "event=por_publish_retry" in caplog.text)
        assert publisher.registry is None
        dev.restart()
        reg = until("the registry", lambda: publisher.registry)
        # the restarted dev node no longer has the state of block 0: an error each time, given up
        until("the epoch given up", lambda: f"event=por_epoch_failed epoch={before}" in caplog.text)
        dev.deposit_eth(7, 2 * ETH)
        time.sleep(1.1)  # the deposit's block is older than the epoch
        epoch = int(time.time())
        time.sleep(1.0)  # marked, but the projection has not recorded it yet: nothing to publish
        assert _reported(pg_url) == {}
        _record_epoch(pg_url, epoch, [("ETH", 7, ETH), ("ETH", 8, ETH // 2), ("USDT", 7, 10 * USDT)])
        publisher.epoch_marked(epoch)
        until("the epoch's report", lambda: epoch in _reported(pg_url))
        time.sleep(0.5)
    finally:
        publisher.stop()
    assert _reported(pg_url) == {epoch: False}  # USDT: nothing in the vault; 'before' has no report
    assert publisher.published == [epoch]  # a refusal is final: not retried
    root, total, depth = pub.published(dev.rpc, reg.address, epoch, "ETH")
    assert total == ETH + ETH // 2 and depth == 1
    assert pub.published(dev.rpc, reg.address, epoch, "USDT")[2] == 0
    line = _line(caplog, "event=por_published", f"epoch={epoch} asset=ETH")
    assert f"root=0x{root.hex()}" in line and f"total={total}" in line and "ok=true" in line and "cid=bafkrei" in line
    short = _line(caplog, "event=por_published", f"epoch={epoch} asset=USDT")
    assert "ok=false" in short and "ReservesShort" in short


def test_older_epochs_left_unpublished_before_start_are_skipped(
        dev_chain: DevChain, pg_url: str, tmp_path: Path,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="dpg.por.publish")
    now = int(time.time())
    _record_epoch(pg_url, now - 7200, [("ETH", 7, ETH)])  # older and unpublished: left to dpg por publish
    _record_epoch(pg_url, now - 3600, [("ETH", 7, ETH)])  # the newest: published (short: nothing held)
    publisher = _publisher(pg_url, dev_chain, tmp_path)
    publisher.start()
    try:
        until("the newest epoch's report", lambda: now - 3600 in _reported(pg_url))
        assert f"event=por_epoch_skipped epoch={now - 7200}" in caplog.text
        time.sleep(0.5)
    finally:
        publisher.stop()
    assert _reported(pg_url) == {now - 3600: False}  # the older one is not published
    assert publisher.published == [now - 3600]
