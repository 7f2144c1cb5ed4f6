"""The exchange obeys governance (``dpg up`` with its embedded anvil chain and the governance
contracts): a holder stakes; a proposal to lower BTC/USDT's taker fee is made and voted with
``dpg gov``, queued and executed after the timelock; the exchange applies the new fee once, after
the chain's confirmations, and the next trade pays it; a restart does not apply it again. The same
proposal sets the vault's USDT time-lock threshold and daily limit and its guardian, which the
vault takes when the timelock executes it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dpg.chain.governance import HOLDER, STAKER, TIMELOCK_DELAY, read
from dpg.chain.rpc import Rpc
from dpg.chain.signer import dev_key, write_key
from dpg.core.commands import SetFees
from dpg.journal.codec import decode as decode_command
from dpg.store import db
from tests.api.client import ADMIN, User, dpg_cli, exchange, until

DAY = 86_400
WEEK = 7 * DAY


def _gov(base: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base}/api/v1/governance", timeout=10).json())


def _btc(doc: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in doc["markets"] if m["market"] == "BTC/USDT")


def _advance(rpc: Rpc, seconds: int) -> None:
    rpc.call("evm_increaseTime", [seconds])
    rpc.mine()


def _cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    r = dpg_cli(env, *args)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return dict(json.loads(r.stdout.splitlines()[-1]))


def _read(rpc: Rpc, to: str, signature: str, out: str, *args: object) -> Any:
    value = read(rpc, to, signature, out, *args)
    return value.lower() if out == "address" else value


def _set_fees(url: str) -> list[SetFees]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT payload FROM journal ORDER BY seq").fetchall()
    return [c for c in (decode_command(bytes(r[0])) for r in rows) if isinstance(c, SetFees)]


def test_a_fee_proposal_is_voted_executed_and_applied_once(anvil_bin: Path, pg_server: str, tmp_path: Path) -> None:
    url = db.create_scratch(pg_server, "goveee")
    env = {"DPG_CUSTODY": "1", "DPG_DEV_CHAIN": "anvil", "DPG_ANVIL": str(anvil_bin)}
    keys = tmp_path / "keys"
    write_key(keys / "staker.key", dev_key(STAKER))
    write_key(keys / "holder.key", dev_key(HOLDER))
    cli = {"DPG_DATA_DIR": str(tmp_path), "DPG_DATABASE_URL": url}
    try:
        with exchange(url, tmp_path, **env) as base:
            doc = _gov(base)
            assert doc["enabled"] is True  # the default with the embedded governance chain
            contracts = doc["contracts"]
            assert contracts["chain_id"] == 31337 and contracts["exchange_params"].startswith("0x")
            assert doc["history"] == []
            before = _btc(doc)
            assert Decimal(before["taker_fee"]) != Decimal("0.0005")
            # the operator's hand is refused once governance decides
            r = httpx.post(f"{base}/api/v1/admin/fees", headers={"x-dpg-admin-token": ADMIN},
                           json={"market": "BTC/USDT", "maker_fee": "0", "taker_fee": "0"}, timeout=10)
            assert r.status_code == 409 and r.json()["code"] == "GOVERNED", r.text
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT rpc_url FROM gov_contracts").fetchone()
            assert row is not None
            rpc = Rpc(row[0])

            # the holder stakes 1M DPG and delegates to itself
            holder = keys / "holder.key"
            _cli(cli, "stake", "stake", "1000000", "--key", str(holder))
            _cli(cli, "stake", "delegate", "--key", str(holder))
            status = _cli(cli, "stake", "status", "--key", str(holder))
            assert Decimal(status["staked"]) == 1_000_000 and Decimal(status["dpg"]) == 9_000_000
            assert status["delegate"] == dev_key(HOLDER).address.lower()

            # the staker (5 % of the votes) proposes a lower taker fee and votes for it
            staker = str(keys / "staker.key")
            bad = dpg_cli(cli, "gov", "propose", "no change", "--key", staker)
            assert bad.returncode == 2 and "say what to change" in bad.stderr
            bad = dpg_cli(cli, "gov", "propose", "limits", "--vault-limit", "USDT", "--daily", "1", "--key", staker)
            assert bad.returncode == 2 and "--threshold" in bad.stderr
            bad = dpg_cli(cli, "gov", "propose", "limits", "--vault-limit", "DOGE", "--threshold", "1", "--daily",
                          "1", "--key", staker)
            assert bad.returncode == 2 and "no token 'DOGE'" in bad.stderr
            bad = dpg_cli(cli, "gov", "propose", "guardian", "--guardian", "0x12", "--key", staker)
            assert bad.returncode == 2 and "--guardian" in bad.stderr
            with psycopg.connect(url) as conn:
                vault, tokens = conn.execute("SELECT vault, tokens FROM chains WHERE name = 'ethereum'").fetchone()
            usdt = next(t["address"] for t in tokens if t["symbol"] == "USDT")
            guardian = dev_key(HOLDER).address.lower()
            assert _read(rpc, vault, "guardian()", "address") != guardian
            made = _cli(cli, "gov", "propose", "Lower the BTC/USDT taker fee to 0.05 %; vault limits and guardian",
                        "--fees", "BTC/USDT", "--maker", before["maker_fee"], "--taker", "0.0005",
                        "--vault-limit", "USDT", "--threshold", "250000", "--daily", "1000000.5",
                        "--guardian", guardian, "--key", staker)
            pid = made["proposal_id"]
            early = dpg_cli(cli, "gov", "vote", pid, "--key", staker)
            assert early.returncode == 1 and "Pending" in early.stderr
            _advance(rpc, DAY + 1)
            _cli(cli, "gov", "vote", pid, "--support", "for", "--key", staker)
            listed = httpx.get(f"{base}/api/v1/governance/proposals", timeout=30).json()
            assert listed[0]["id"] == pid and listed[0]["state"] == "Active"
            assert Decimal(listed[0]["for"]) == 50_000_000
            assert listed[0]["actions"][0]["signature"] == "setFees(bytes32,uint32,uint32)"
            assert listed[0]["actions"][0]["args"] == ["BTC/USDT", int(Decimal(before["maker_fee"]) * 10**6), 500]
            vault_calls = listed[0]["actions"][1:]
            assert [(a["target"], a["signature"]) for a in vault_calls] == [
                (vault, "governedConfigure((address,uint256,uint256,bool))"), (vault, "governedSetGuardian(address)")]
            refuse = _read(rpc, vault, "refuseFeeTokens(address)", "bool", usdt)
            assert vault_calls[0]["args"] == [[usdt, 250_000 * 10**6, 1_000_000_500_000, refuse]]
            assert vault_calls[1]["args"][0].lower() == guardian
            _advance(rpc, WEEK + 1)
            queued = _cli(cli, "gov", "queue", pid, "--key", staker)
            assert queued["state"] == "Queued"
            early = dpg_cli(cli, "gov", "execute", pid, "--key", staker)
            assert early.returncode == 1  # the timelock's delay has not passed
            assert _btc(_gov(base))["taker_fee"] == before["taker_fee"]
            _advance(rpc, TIMELOCK_DELAY + 1)
            executed = _cli(cli, "gov", "execute", pid, "--key", staker)
            assert executed["state"] == "Executed"
            assert _read(rpc, vault, "largeThreshold(address)", "uint256", usdt) == 250_000 * 10**6
            assert _read(rpc, vault, "dailyLimit(address)", "uint256", usdt) == 1_000_000_500_000
            assert _read(rpc, vault, "guardian()", "address") == guardian
            newest = _cli(cli, "gov", "list")
            assert (newest["id"], newest["state"]) == (pid, "Executed") and newest["eta"] is not None

            # applied after the confirmations, with its reference and transaction
            until("the new fee", lambda: Decimal(_btc(_gov(base))["taker_fee"]) == Decimal("0.0005"),
                  tick=rpc.mine)
            (change,) = _gov(base)["history"]
            assert (change["change_id"], change["action"], change["market"]) == (1, "fees", "BTC/USDT")
            assert change["tx_hash"] == executed["tx_hash"] and change["status"] == "applied"
            assert change["values"]["taker_fee_ppm"] == 500 and change["seq"] > 0

            # a trade after it pays the new taker fee
            maker, taker = User(base, "maker@gov.dpg"), User(base, "taker@gov.dpg")
            maker.credit("BTC", "1")
            taker.credit("USDT", "100000")
            r = maker.order(market="BTC/USDT", side="sell", type="limit", price="60000", quantity="1")
            assert r.status_code == 201, r.text
            r = taker.order(market="BTC/USDT", side="buy", type="market", quantity="1")
            assert r.status_code == 201, r.text
            until("the fill", lambda: Decimal(taker.balance("BTC")[0]) > 0)
            assert Decimal(taker.balance("BTC")[0]) == Decimal("1") - Decimal("0.0005")  # 0.05 % of what it got

            account = httpx.get(f"{base}/api/v1/governance/account",
                                params={"address": dev_key(HOLDER).address}, timeout=30).json()
            assert Decimal(account["staked"]) == 1_000_000
            assert httpx.get(f"{base}/api/v1/governance/account", params={"address": "0x12"},
                             timeout=10).status_code == 400
            cursor_before = _gov_cursor(url)

        # the journal: the operator's refused SetFees (no reference) and the decision's, once
        assert [c.ref for c in _set_fees(url)] == ["", "gov:31337:1"]
        with exchange(url, tmp_path, **env) as base:
            # a restart goes on from the watcher's cursor: nothing is applied again
            until("the watcher's pass after the restart", lambda: _gov_cursor(url)[1] > cursor_before[1],
                  tick=rpc_of(url).mine)
            assert Decimal(_btc(_gov(base))["taker_fee"]) == Decimal("0.0005")
            assert _gov_refs(url) == ["gov:31337:1"]
        # even with the watcher's records lost, the engine refuses the decision's reference again
        with psycopg.connect(url) as conn:
            conn.execute("DELETE FROM chain_cursors WHERE chain = 'ethereum:gov'")
            conn.execute("DELETE FROM gov_changes")
        with exchange(url, tmp_path, **env) as base:
            seen = until("the decision read again", lambda: _gov(base)["history"], tick=rpc_of(url).mine)
            # found applied before: the engine refused it as a duplicate (journaled, with no effect)
            assert [(c["change_id"], c["status"], c["seq"]) for c in seen] == [(1, "applied", None)]
            assert _gov_refs(url) == ["gov:31337:1", "gov:31337:1"]
            assert Decimal(_btc(_gov(base))["taker_fee"]) == Decimal("0.0005")
    finally:
        db.drop(url)


def rpc_of(url: str) -> Rpc:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT rpc_url FROM gov_contracts").fetchone()
    assert row is not None
    return Rpc(row[0])


def _gov_cursor(url: str) -> tuple[int, Any]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT block_number, updated_at FROM chain_cursors WHERE chain = 'ethereum:gov'").fetchone()
    if row is None:
        pytest.fail("no governance cursor")
    return int(row[0]), row[1]


def _gov_refs(url: str) -> list[str]:
    """The references of the journal's SetFees by governance (the operator's refused one has none)."""
    return [c.ref for c in _set_fees(url) if c.ref]
