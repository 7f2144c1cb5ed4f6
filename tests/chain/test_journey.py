"""The brief's journey through a running exchange (``dpg up`` with its custody on an anvil chain
over JSON-RPC): deposit 1 ETH, credited after 3 confirmations; sell it for USDT; withdraw 3,000
USDT; two policy signatures and a human's by ``dpg signer sign``; the on-chain transfer; then the
user's balance, the ledger and the vault's holdings agree. And what the wallet API refuses."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from eth_abi.abi import decode

from dpg.chain.contracts import encode_call
from dpg.chain.rpc import Rpc, to_int
from dpg.chain.signer import dev_key, write_key
from dpg.store import db
from tests.api.client import STARTED, Codes, User, dpg_cli, exchange, signed, until, wait_projected
from tests.chain.conftest import CHAIN_ID, DevChain

ROOT = Path(__file__).resolve().parents[2]
ETH = 10**18
USDT = 10**6
DEST = dev_key(8).address


def _env(dev: DevChain, tmp: Path) -> dict[str, str]:
    chains = tmp / "chains.json"
    chains.write_text(json.dumps({"chains": [{
        "name": "ethereum", "chain_id": CHAIN_ID, "rpc_url": dev.anvil.url, "vault": dev.vault, "confirmations": 3,
        "native_asset": "ETH", "poll_seconds": 0.1,
        "tokens": {"USDT": {"address": dev.usdt, "decimals": 6}, "WBTC": {"address": dev.wbtc, "decimals": 8,
                                                                            "asset": "BTC"}},
    }]}))
    keys = tmp / "keys"
    for name, index in (("policy-1", 1), ("policy-2", 2), ("broadcaster", 0), ("human", 3)):
        write_key(keys / f"{name}.key", dev_key(index))
    return {"DPG_CUSTODY": "1", "DPG_CHAINS": str(chains), "DPG_ADDRESS_COOLDOWN": "0",
            "DPG_POLICY_SIGNER_KEYS": f"{keys / 'policy-1.key'},{keys / 'policy-2.key'}",
            "DPG_BROADCASTER_KEY": str(keys / "broadcaster.key")}


@contextmanager
def running(pg_server: str, tmp: Path, prefix: str, env: dict[str, str],
            banner: bool = False) -> Iterator[tuple[str, dict[str, str]]]:
    """``dpg up`` with custody on a scratch database; yields its URL and the environment that points
    the operator's and signers' commands at it (with ``banner``: and its start line, as "banner")."""
    url = db.create_scratch(pg_server, prefix)
    try:
        with exchange(url, tmp, **env) as base:
            started = {"banner": STARTED[base]} if banner else {}
            yield base, {**env, "DPG_DATA_DIR": str(tmp), "DPG_DATABASE_URL": url, **started}
    finally:
        db.drop(url)


def _token_balance(dev: DevChain, token: str, who: str) -> int:
    (v,) = decode(["uint256"], dev.rpc.eth_call(token, encode_call("balanceOf(address)", who)))
    return int(v)


def test_deposit_trade_withdraw_with_three_signatures_and_everything_agrees(
        dev_chain: DevChain, pg_server: str, tmp_path: Path) -> None:
    env = _env(dev_chain, tmp_path)
    with running(pg_server, tmp_path, "journey", env) as (base, scan_env):
        alice = User(base, "alice@journey.dpg")
        alice.verify_email(scan_env["DPG_DATABASE_URL"])
        bob = User(base, "bob@journey.dpg")
        chains = alice.http.get("/api/v1/wallet/chains").json()
        assert chains[0]["vault"] == dev_chain.vault and chains[0]["confirmations"] == 3
        r = alice.http.get("/api/v1/wallet/deposit-address", params={"chain": "ethereum"})
        assert r.status_code == 200, r.text
        where = r.json()
        assert where["account"] == alice.id and where["vault"] == dev_chain.vault

        # deposits: 10,000 USDT for bob, then 1 ETH for alice (from the dev wallet command), in the
        # head block: the test node mines only on a transaction or when told, so it stays pending
        dev_chain.deposit_token(dev_chain.usdt, bob.id, 10_000 * USDT)
        r = dpg_cli(scan_env, "wallet", "deposit", str(alice.id), "1", "--asset", "ETH")
        assert r.returncode == 0, r.stderr
        deposit = json.loads(r.stdout)
        pending = until("the pending deposit", lambda: [d for d in alice.http.get("/api/v1/wallet/deposits").json()
                                                          if d["status"] == "pending"])
        assert pending[0]["confirmations"] < 3 and pending[0]["required"] == 3 and Decimal(pending[0]["amount"]) == 1
        assert _dec(alice.balance("ETH")) == (0, 0)  # not before its depth
        dev_chain.mine(3)
        until("alice's credit", lambda: _dec(alice.balance("ETH")) == (1, 0))
        until("bob's credit", lambda: _dec(bob.balance("USDT")) == (10_000, 0))
        done = alice.http.get("/api/v1/wallet/deposits").json()[0]
        assert (done["status"], done["confirmations"]) == ("credited", 3)

        # alice sells her ETH to bob's bid
        assert bob.order(market="ETH/USDT", side="buy", type="limit", price="3100", quantity="1").status_code == 201
        r = alice.order(market="ETH/USDT", side="sell", type="market", quantity="1")
        assert r.status_code == 201, r.text
        usdt_after_sale = Decimal(alice.balance("USDT")[0])
        assert usdt_after_sale == Decimal("3100") - Decimal("3.1")  # the taker fee, 0.1 %

        # withdraw 3,000 USDT: refused off the allow-list, then allowed
        body = {"asset": "USDT", "chain": "ethereum", "address": DEST, "amount": "3000"}
        r = alice.http.post("/api/v1/withdrawals", json=body)
        assert r.status_code == 403 and r.json()["code"] == "ADDRESS_NOT_ALLOWED"
        r = alice.http.post("/api/v1/wallet/addresses", json={"chain": "ethereum", "address": DEST, "label": "cold"})
        assert r.status_code == 201, r.text
        r = alice.http.post("/api/v1/withdrawals", json=body)
        assert r.status_code == 201, r.text
        w = r.json()
        assert w["status"] == "signing" and _dec(alice.balance("USDT")) == (usdt_after_sale - 3000, 3000)

        def status() -> dict[str, Any]:
            return dict(alice.http.get(f"/api/v1/withdrawals/{w['id']}").json())

        until("two policy signatures", lambda: status()["signatures"] == 2)
        listed = dpg_cli(scan_env, "signer", "list")
        assert listed.returncode == 0 and w["id"] in listed.stdout
        r = dpg_cli(scan_env, "signer", "sign", w["id"], "--key-file", str(tmp_path / "keys" / "human.key"))
        assert r.returncode == 0, r.stderr
        again = dpg_cli(scan_env, "signer", "sign", w["id"], "--key-file", str(tmp_path / "keys" / "human.key"))
        assert again.returncode != 0  # signed already, or past signing
        stranger = tmp_path / "keys" / "stranger.key"
        write_key(stranger, dev_key(7))
        r = dpg_cli(scan_env, "signer", "sign", w["id"], "--key-file", str(stranger))
        assert r.returncode != 0 and "not a signer" in r.stderr

        seen = until("confirming", lambda: status()["status"] in ("confirming", "completed") and status())
        assert seen["tx_hash"]
        final = until("completed", lambda: status()["status"] == "completed" and status(),
                       tick=lambda: dev_chain.mine(1))
        steps = [e["step"] for e in final["timeline"]]
        for step in ("requested", "signed 1/3", "signed 2/3", "signed 3/3", "broadcast", "mined", "completed"):
            assert step in steps, steps

        # the user's balance, the ledger and the vault agree
        assert _dec(alice.balance("USDT")) == (usdt_after_sale - 3000, 0)
        assert _token_balance(dev_chain, dev_chain.usdt, DEST) == 3_000 * USDT
        assert _token_balance(dev_chain, dev_chain.usdt, dev_chain.vault) == 7_000 * USDT
        assert dev_chain.rpc.balance(dev_chain.vault) == 1 * ETH
        wait_projected(alice, _seq(alice))
        ledger = alice.http.get("/api/v1/ledger", params={"asset": "USDT", "limit": 100}).json()["entries"]
        assert sum(Decimal(e["available"]) + Decimal(e["locked"]) for e in ledger) == usdt_after_sale - 3000
        assert any(e["cause"] == "withdrawal" and Decimal(e["locked"]) == -3000 for e in ledger), ledger
        # the ledger's running balance (available + locked after each entry), newest first
        assert Decimal(ledger[0]["balance"]) == usdt_after_sale - 3000
        for newer, older in itertools.pairwise(ledger):
            assert Decimal(older["balance"]) + Decimal(newer["available"]) + Decimal(newer["locked"]) == \
                Decimal(newer["balance"]), (older, newer)
        # the payout and the deposit carry their chain and transaction
        (payout,) = [e for e in ledger if e["cause"] == "withdrawal"]
        assert (payout["chain"], payout["tx_hash"]) == ("ethereum", final["tx_hash"])
        eth = alice.http.get("/api/v1/ledger", params={"asset": "ETH"}).json()["entries"]
        (credit,) = [e for e in eth if e["cause"] == "credit"]
        assert (credit["chain"], credit["tx_hash"], Decimal(credit["balance"])) == ("ethereum", deposit["tx_hash"], 1)
        assert all(e["tx_hash"] is None for e in ledger if e["cause"] in ("trade", "fee", "lock"))
        receipt = dev_chain.rpc.receipt(final["tx_hash"])
        assert receipt is not None
        deposit_receipt = dev_chain.rpc.receipt(deposit["tx_hash"])
        assert deposit_receipt is not None
        print(f"\ngas: depositETH {to_int(deposit_receipt['gasUsed'])}, withdraw (3 signatures, USDT) "
              f"{to_int(receipt['gasUsed'])}")


def _dec(pair: tuple[str, str]) -> tuple[Decimal, Decimal]:
    return Decimal(pair[0]), Decimal(pair[1])


def _seq(user: User) -> int:
    return int(user.http.get("/api/v1/health").json()["seq"])


def test_the_wallet_refuses_what_it_must(dev_chain: DevChain, pg_server: str, tmp_path: Path) -> None:
    env = _env(dev_chain, tmp_path)
    with running(pg_server, tmp_path, "wallet", env) as (base, cli_env):
        carol = User(base, "carol@journey.dpg")
        r = carol.http.post("/api/v1/wallet/addresses", json={"chain": "ethereum", "address": DEST})
        assert r.status_code == 403 and r.json()["code"] == "EMAIL_NOT_VERIFIED"
        carol.verify_email(cli_env["DPG_DATABASE_URL"])
        carol.credit("USDT", "500")
        ok = carol.http.post("/api/v1/wallet/addresses", json={"chain": "ethereum", "address": DEST})
        assert ok.status_code == 201
        cases = [
            ({"chain": "ethereum", "address": dev_chain.vault}, 400, "INVALID_ADDRESS"),
            ({"chain": "ethereum", "address": "0x" + "00" * 20}, 400, "INVALID_ADDRESS"),
            ({"chain": "ethereum", "address": DEST.lower()[:-1] + "G"}, 400, "INVALID_ADDRESS"),
            ({"chain": "ethereum", "address": DEST[:-1] + ("a" if DEST[-1] == "A" else "A")}, 400,
             "INVALID_ADDRESS"),  # a broken EIP-55 checksum
            ({"chain": "mars", "address": DEST}, 404, "UNKNOWN_CHAIN"),
        ]
        for body, code, name in cases:
            r = carol.http.post("/api/v1/wallet/addresses", json=body)
            assert (r.status_code, r.json().get("code")) == (code, name), (body, r.text)
        w = {"asset": "USDT", "chain": "ethereum", "address": DEST}
        for amount, code, name in [("600", 422, "INSUFFICIENT_FUNDS"), ("0", 400, "INVALID_AMOUNT"),
                                   ("-5", 400, None), ("1.0000001", 400, None), ("abc", 400, None)]:
            r = carol.http.post("/api/v1/withdrawals", json={**w, "amount": amount})
            assert r.status_code == code, (amount, r.text)
            if name:
                assert r.json()["code"] == name
        r = carol.http.post("/api/v1/withdrawals", json={**w, "asset": "USD", "amount": "5"})
        assert r.status_code == 400 and r.json()["code"] == "ASSET_NOT_ON_CHAIN"
        assert _dec(carol.balance("USDT")) == (500, 0)
        assert carol.http.get("/api/v1/withdrawals").json() == []  # nothing half-made is left behind

        # 2FA on: a withdrawal needs the code
        codes = Codes(carol.http.post("/api/v1/auth/2fa/setup").json()["secret"])
        assert carol.http.post("/api/v1/auth/2fa/enable", json={"code": codes.next()}).status_code == 200
        r = carol.http.post("/api/v1/withdrawals", json={**w, "amount": "5"})
        assert r.status_code in (401, 403) and "TOTP" in r.json()["code"]
        r = carol.http.post("/api/v1/withdrawals", json={**w, "amount": "5", "totp": codes.next()})
        assert r.status_code == 201, r.text
        assert _dec(carol.balance("USDT")) == (495, 5)

        # an API key without the withdraw permission cannot withdraw; without a session, nobody can
        dave = User(base, "dave@journey.dpg")
        dave.credit("USDT", "50")
        k = dave.http.post("/api/v1/api-keys", json={"name": "bot", "permissions": ["read", "trade"]}).json()
        bot = httpx.Client(base_url=base, timeout=30)  # the key alone, no session
        r = signed(bot, k["key"], k["secret"], "POST", "/api/v1/wallet/addresses",
                   {"chain": "ethereum", "address": DEST})
        assert r.status_code == 403 and r.json()["code"] == "PERMISSION_DENIED", r.text
        r = signed(bot, k["key"], k["secret"], "POST", "/api/v1/withdrawals", {**w, "amount": "5"})
        assert r.status_code == 403 and r.json()["code"] == "PERMISSION_DENIED", r.text
        assert signed(bot, k["key"], k["secret"], "GET", "/api/v1/withdrawals").status_code == 200
        anon = dave.http.post("/api/v1/withdrawals", json={**w, "amount": "5"}, headers={"authorization": ""})
        assert anon.status_code == 401
        assert _dec(dave.balance("USDT")) == (50, 0)


def test_the_embedded_default_chain_takes_a_deposit_and_pays_a_withdrawal(pg_server: str, tmp_path: Path) -> None:
    """``make up``'s custody: the in-process dev chains, nothing configured, no keys given."""
    import psycopg


    env = {"DPG_CUSTODY": "1", "DPG_DEV_CHAIN": "", "DPG_ADDRESS_COOLDOWN": "0"}
    with running(pg_server, tmp_path, "embedded", env, banner=True) as (base, cli_env):
        erin = User(base, "erin@journey.dpg")
        erin.verify_email(cli_env["DPG_DATABASE_URL"])
        chains = erin.http.get("/api/v1/wallet/chains").json()
        assert [c["chain"] for c in chains] == ["ethereum", "polygon"]
        for c in chains:  # a dev chain's RPC URL (new at every start) is in the banner and the chains list
            assert c["rpc_url"].startswith("http://127.0.0.1:") and f"RPC {c['rpc_url']}" in cli_env["banner"]
            assert Rpc(c["rpc_url"]).chain_id() == c["chain_id"]
        r = dpg_cli(cli_env, "wallet", "deposit", str(erin.id), "2", "--asset", "ETH")
        assert r.returncode == 0, r.stderr
        until("the credit at 3 confirmations", lambda: _dec(erin.balance("ETH")) == (2, 0))
        r = dpg_cli(cli_env, "wallet", "deposits", str(erin.id))
        assert r.returncode == 0, r.stderr
        (listed,) = [json.loads(line) for line in r.stdout.splitlines()]
        assert (listed["amount"], listed["asset"], listed["status"], listed["confirmations"]) == (
            "2", "ETH", "credited", "3/3")
        dest = dev_key(8).address
        r = erin.http.post("/api/v1/wallet/addresses", json={"chain": "ethereum", "address": dest})
        assert r.status_code == 201, r.text
        r = erin.http.post("/api/v1/withdrawals", json={"asset": "ETH", "chain": "ethereum", "address": dest,
                                                         "amount": "0.5"})
        assert r.status_code == 201, r.text
        wid = r.json()["id"]

        def status() -> dict[str, Any]:
            return dict(erin.http.get(f"/api/v1/withdrawals/{wid}").json())

        until("two policy signatures", lambda: status()["signatures"] == 2)
        with psycopg.connect(cli_env["DPG_DATABASE_URL"]) as conn:
            row = conn.execute("SELECT rpc_url FROM chains WHERE name = 'ethereum'").fetchone()
        assert row is not None
        rpc = Rpc(row[0])
        before = rpc.balance(dest)
        key = tmp_path / "chain" / "ethereum" / "signers" / "human-1.key"
        r = dpg_cli(cli_env, "signer", "sign", wid, "--key-file", str(key))
        assert r.returncode == 0, r.stderr
        done = until("completed", lambda: status()["status"] == "completed" and status())
        assert done["confirmations"] == 3
        assert rpc.balance(dest) - before == ETH // 2
        assert _dec(erin.balance("ETH")) == (Decimal("1.5"), 0)
