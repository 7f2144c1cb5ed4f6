"""``GET/POST /api/v1/exit-address`` on a running exchange: the typed data a wallet signs as it is,
the exit address's own EIP-712 signature required, a change only with 2FA, the nonce against
replays, the registration in force from the next epoch marked; and ``dpg wallet sign-exit``'s
signature is one the API takes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from psycopg.types.json import Jsonb

from dpg.chain.exit_address import ExitAddress, sign
from dpg.chain.signer import dev_key
from tests.api.client import ADMIN, Codes, User, dpg_cli, exchange

pytestmark = pytest.mark.timeout(300)

CHAIN_ID = 31337
VAULT = "0x" + "e7" * 20


def _home(url: str) -> None:
    """A home chain: the registry's chain and its vault (as `dpg up` with custody and a registry records)."""
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO chains (name, chain_id, rpc_url, vault, confirmations, native_asset, tokens,"
                     " signers) VALUES ('ethereum', %s, 'http://127.0.0.1:1', %s, 1, 'ETH', %s, %s)",
                     (CHAIN_ID, VAULT, Jsonb([]), Jsonb([])))
        conn.execute("INSERT INTO por_registry (chain, chain_id, registry, rpc_url) VALUES ('ethereum', %s, %s, '')",
                     (CHAIN_ID, "0x" + "5f" * 20))


def _code(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json().get("code", "")


def _body(account: int, key: Any, nonce: int, **extra: Any) -> dict[str, Any]:
    reg = ExitAddress(account, key.address.lower(), nonce, CHAIN_ID, VAULT)
    return {"address": key.address, "signature": sign(reg, key), "nonce": nonce, **extra}


def test_register_change_and_the_epoch_it_takes_effect(pg_url: str, tmp_path: Path) -> None:
    wallet, other, third = dev_key(7), dev_key(8), dev_key(9)
    with exchange(pg_url, tmp_path) as base:
        alice, bob = User(base, "alice@exit.dpg"), User(base, "bob@exit.dpg")
        anon = httpx.Client(base_url=base, timeout=30)
        assert _code(anon.get("/api/v1/exit-address")) == (401, "AUTH_REQUIRED")
        assert _code(alice.http.get("/api/v1/exit-address")) == (409, "NO_REGISTRY")
        _home(pg_url)

        r = alice.http.get("/api/v1/exit-address", params={"address": wallet.address})
        assert r.status_code == 200, r.text
        got = r.json()
        assert (got["current"], got["pending"], got["nextNonce"], got["chainId"], got["vault"]) == (
            None, None, 0, str(CHAIN_ID), VAULT)
        # the typed data, as served, is what a wallet signs (eth_signTypedData_v4 takes this JSON)
        typed = got["typedData"]
        assert typed["domain"]["name"] == "DPG Exit" and typed["primaryType"] == "ExitAddress"
        assert typed["message"] == {"account": alice.id, "exitAddress": wallet.address, "nonce": 0}
        signature = "0x" + bytes(wallet.sign_message(encode_typed_data(full_message=typed)).signature).hex()
        assert signature == _body(alice.id, wallet, 0)["signature"]
        blank = alice.http.get("/api/v1/exit-address").json()["typedData"]["message"]
        assert blank["exitAddress"] == "0x" + "00" * 20

        # refusals: another key's signature, another account's, a wrong nonce, a bad address
        forged = {**_body(alice.id, other, 0), "address": wallet.address}
        assert _code(alice.http.post("/api/v1/exit-address", json=forged)) == (400, "BAD_SIGNATURE")
        assert _code(bob.http.post("/api/v1/exit-address", json=_body(alice.id, wallet, 0))) == (400, "BAD_SIGNATURE")
        assert _code(alice.http.post("/api/v1/exit-address", json=_body(alice.id, wallet, 1))) == (409, "BAD_NONCE")
        zero = {**_body(alice.id, wallet, 0), "address": "0x" + "00" * 20}
        assert _code(alice.http.post("/api/v1/exit-address", json=zero)) == (400, "INVALID_ADDRESS")
        r = alice.http.post("/api/v1/exit-address", json={**_body(alice.id, wallet, 0), "signature": "0x12"})
        assert r.status_code == 422 and r.json()["code"], r.text
        assert _code(anon.post("/api/v1/exit-address", json=_body(alice.id, wallet, 0))) == (401, "AUTH_REQUIRED")

        # the first registration: a logged-in user (2FA off) is enough; pending until an epoch is marked
        r = alice.http.post("/api/v1/exit-address", json=_body(alice.id, wallet, 0))
        assert r.status_code == 201, r.text
        assert r.json()["address"] == wallet.address.lower() and r.json()["nonce"] == 0
        got = alice.http.get("/api/v1/exit-address").json()
        assert got["current"] is None and got["pending"]["address"] == wallet.address.lower()
        assert got["nextNonce"] == 1 and got["latestEpoch"] is None
        assert bob.http.get("/api/v1/exit-address").json()["pending"] is None  # each account its own

        # an epoch marked after it: in force from that epoch
        with psycopg.connect(pg_url) as conn:
            conn.execute("INSERT INTO por_epochs (epoch, seq, ts) VALUES (1795564800, 1, %s)", (time.time_ns(),))
        got = alice.http.get("/api/v1/exit-address").json()
        assert got["current"]["address"] == wallet.address.lower() and got["pending"] is None
        assert got["latestEpoch"] == "1795564800"

        # a change needs 2FA: refused while it is off, then with the code only
        change = _body(alice.id, other, 1)
        assert _code(alice.http.post("/api/v1/exit-address", json=change)) == (403, "TWO_FACTOR_REQUIRED")
        secret = alice.http.post("/api/v1/auth/2fa/setup").json()["secret"]
        codes = Codes(secret)
        assert alice.http.post("/api/v1/auth/2fa/enable", json={"code": codes.next()}).status_code == 200
        assert _code(alice.http.post("/api/v1/exit-address", json=change))[0] == 401  # TOTP_REQUIRED
        same = _body(alice.id, wallet, 1)
        assert _code(alice.http.post("/api/v1/exit-address", json=same)) == (409, "EXIT_ADDRESS_UNCHANGED")
        r = alice.http.post("/api/v1/exit-address", json={**change, "totp": codes.next()})
        assert r.status_code == 201, r.text
        got = alice.http.get("/api/v1/exit-address").json()
        assert got["current"]["address"] == wallet.address.lower()  # the epoch already marked keeps the first
        assert got["pending"]["address"] == other.address.lower() and got["nextNonce"] == 2
        # the first registration's signature cannot be replayed to switch back
        replay = _body(alice.id, wallet, 0)
        assert _code(alice.http.post("/api/v1/exit-address", json=replay)) == (409, "BAD_NONCE")

        # dpg wallet sign-exit signs with a dev key, reading nonce, chain and vault from the exchange
        env = {"DPG_DATABASE_URL": pg_url, "DPG_DATA_DIR": str(tmp_path), "DPG_ADMIN_TOKEN": ADMIN}
        out = dpg_cli(env, "wallet", "sign-exit", "--account", str(bob.id), "--dev", "9")
        assert out.returncode == 0, out.stdout + out.stderr
        signed = json.loads(out.stdout)
        assert (signed["address"], signed["nonce"], signed["vault"]) == (third.address.lower(), 0, VAULT)
        body = {k: signed[k] for k in ("address", "signature", "nonce")}
        r = bob.http.post("/api/v1/exit-address", json=body)
        assert r.status_code == 201, r.text
        bad = dpg_cli(env, "wallet", "sign-exit", "--account", str(bob.id))
        assert bad.returncode == 2 and "--key" in bad.stderr
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT account, nonce, address FROM exit_addresses ORDER BY account, nonce").fetchall()
    assert rows == [(alice.id, 0, wallet.address.lower()), (alice.id, 1, other.address.lower()),
                    (bob.id, 0, third.address.lower())]
    assert Account.recover_message(encode_typed_data(full_message=ExitAddress(
        bob.id, third.address.lower(), 0, CHAIN_ID, VAULT).typed_data()),
        signature=bytes.fromhex(body["signature"][2:])).lower() == third.address.lower()
