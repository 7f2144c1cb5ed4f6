"""Forced withdrawals served by a running exchange (``dpg up`` with custody on anvil, the proof of
reserves published in a registry there): a user who registered an exit address asks the vault with
``dpg exit request`` and the proof file of the published epoch; the exchange pays the whole available
balance to the exit address within the grace period through the ordinary pipeline (two policy
signatures past the per-user limits and allow-list, a human's by ``dpg signer sign``), so
``freezeUnserved`` is refused; an account with nothing available is answered by the signed zero answer.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from dpg.chain import escape
from dpg.chain.contracts import decode_error
from dpg.chain.forced import ForcedStore
from dpg.chain.rpc import Rpc, RpcError
from dpg.chain.signer import dev_key, write_key
from tests.api.client import ADMIN, User, dpg_cli, until
from tests.chain.conftest import DevChain
from tests.chain.test_journey import _env, running

pytestmark = pytest.mark.timeout(900)

ETH = 10**18
POR_SECRET = "5e" * 32


def fund(rpc: Rpc, address: str, wei: int = 10 * ETH) -> None:
    """Gas money for an exit address (anvil_setBalance)."""
    rpc.call("anvil_setBalance", [address, hex(wei)])


def register_exit(user: User, key: LocalAccount) -> dict[str, Any]:
    """The exit address registered through the API, signed by the address itself (EIP-712)."""
    info = user.http.get("/api/v1/exit-address", params={"address": key.address}).json()
    signature = key.sign_message(encode_typed_data(full_message=info["typedData"])).signature
    r = user.http.post("/api/v1/exit-address", json={"address": key.address, "nonce": info["nextNonce"],
                                                      "signature": "0x" + bytes(signature).hex()})
    assert r.status_code == 201, r.text
    return dict(r.json())


def with_registry(dev: DevChain, tmp: Path) -> dict[str, str]:
    """The journey's custody settings plus a ReserveRegistry deployed on the chain to publish in."""
    env = {**_env(dev, tmp), "DPG_POR_SECRET": POR_SECRET, "DPG_POR_RPC": dev.anvil.url, "DPG_DATA_DIR": str(tmp),
           "DPG_ADMIN_TOKEN": ADMIN}
    r = dpg_cli(env, "por", "deploy-registry", "--chains", env["DPG_CHAINS"])
    assert r.returncode == 0, r.stdout + r.stderr
    env["DPG_POR_REGISTRY"] = json.loads(r.stdout)["registry"]
    return env


def publish_epoch(cli_env: dict[str, str], base: str, user: User) -> str:
    """Mark an epoch and wait until the exchange published it in the registry."""
    r = dpg_cli(cli_env, "por", "snapshot", "--url", base)
    assert r.returncode == 0, r.stdout + r.stderr
    epoch = str(json.loads(r.stdout)["epoch"])

    def published() -> bool:
        listed = user.http.get("/api/v1/por/epochs").json()
        return any(e["epoch"] == epoch and e["reportOk"] is not None for e in listed)

    until("the epoch published", published, timeout=180)
    return epoch


def proof_file(user: User, asset: str, tmp: Path) -> Path:
    p = user.http.get("/api/v1/por/proof", params={"asset": asset})
    assert p.status_code == 200, p.text
    path = tmp / f"proof-{user.id}-{asset}.json"
    path.write_text(p.text)
    return path


def freeze_unserved_refusal(rpc: Rpc, vault: str, request_id: str) -> str:
    """Why the vault refuses freezeUnserved(request_id) now (eth_estimateGas)."""
    try:
        rpc.call("eth_estimateGas", [{"from": dev_key(9).address, "to": vault,
                                      "data": escape.freeze_unserved_call(request_id)}])
    except RpcError as e:
        return decode_error("Vault", e.data or "") or e.message
    return "accepted"


def test_a_forced_withdrawal_is_served_within_the_grace_period_and_cannot_freeze_the_vault(
        dev_chain: DevChain, pg_server: str, tmp_path: Path) -> None:
    env = with_registry(dev_chain, tmp_path)
    rpc = dev_chain.rpc
    with running(pg_server, tmp_path, "forced", env) as (base, cli_env):
        dave, erin = User(base, "dave@forced.dpg"), User(base, "erin@forced.dpg")
        dave_exit, erin_exit = dev_key(12), dev_key(13)
        for user, key in ((dave, dave_exit), (erin, erin_exit)):
            fund(rpc, key.address)
            register_exit(user, key)
            write_key(tmp_path / f"exit-{user.id}.key", key)
        dev_chain.deposit_eth(dave.id, 2 * ETH)
        dev_chain.deposit_eth(erin.id, 1 * ETH)
        dev_chain.mine(3)
        until("the credits", lambda: dave.balance("ETH")[0].startswith("2") and erin.balance("ETH")[0].startswith("1"))
        publish_epoch(cli_env, base, dave)
        dave_proof, erin_proof = proof_file(dave, "ETH", tmp_path), proof_file(erin, "ETH", tmp_path)
        assert json.loads(dave_proof.read_text())["exitAddress"] == dave_exit.address.lower()

        # after the snapshot: erin gives dave all her ETH, dave locks 0.5 ETH in an order
        r = erin.http.post("/api/v1/transfers", json={"to_user_id": dave.id, "asset": "ETH", "amount": "1"})
        assert r.status_code == 201, r.text
        r = dave.order(market="ETH/USDT", side="sell", type="limit", price="90000", quantity="0.5")
        assert r.status_code == 201, r.text
        available = 2 * ETH + 1 * ETH - ETH // 2

        # dave asks the vault; the exchange sees it at depth 3 and locks his whole available ETH
        r = dpg_cli(cli_env, "exit", "request", str(dave_proof), "--rpc", dev_chain.anvil.url,
                    "--key", str(tmp_path / f"exit-{dave.id}.key"))
        assert r.returncode == 0, r.stderr
        request_id = json.loads(r.stdout)["request_id"]
        assert escape.forced_request(rpc, dev_chain.vault, request_id).requested_at > 0
        before = rpc.balance(dave_exit.address)  # after the request's gas
        dev_chain.mine(3)

        def forced() -> dict[str, Any] | None:
            ws = dave.http.get("/api/v1/withdrawals").json()
            return next((w for w in ws if w["address"] == dave_exit.address.lower()), None)

        w = until("the forced withdrawal", forced, tick=lambda: dev_chain.mine(1))
        assert Decimal(w["amount"]) == Decimal("2.5") and w["asset"] == "ETH", w
        assert dave.balance("ETH")[0].rstrip("0").rstrip(".") == "0"
        # no allow-listed address, no 2FA, no limit: the policy signers sign it; a human adds the third
        until("two policy signatures", lambda: forced()["signatures"] == 2)  # type: ignore[index]
        assert any("forced withdrawal" in s["detail"] for s in w["timeline"])
        shown = dpg_cli(cli_env, "signer", "show", w["id"])
        assert shown.returncode == 0 and json.loads(shown.stdout)["forced_request"] == request_id, shown.stderr
        r = dpg_cli(cli_env, "signer", "sign", w["id"], "--key-file", str(tmp_path / "keys" / "human.key"))
        assert r.returncode == 0, r.stderr
        until("completed", lambda: forced()["status"] == "completed", tick=lambda: dev_chain.mine(1))  # type: ignore[index]
        assert rpc.balance(dave_exit.address) == before + available
        assert escape.forced_request(rpc, dev_chain.vault, request_id).served
        assert freeze_unserved_refusal(rpc, dev_chain.vault, request_id).startswith("AlreadyServed")
        rpc.call("evm_increaseTime", [8 * 86400])  # past the grace period: still refused, it was served
        dev_chain.mine(1)
        assert freeze_unserved_refusal(rpc, dev_chain.vault, request_id).startswith("AlreadyServed")

        # erin has nothing available: the signers answer zero (policy two, a human the third)
        r = dpg_cli(cli_env, "exit", "request", str(erin_proof), "--rpc", dev_chain.anvil.url,
                    "--key", str(tmp_path / f"exit-{erin.id}.key"))
        assert r.returncode == 0, r.stderr
        zero_id = json.loads(r.stdout)["request_id"]
        dev_chain.mine(3)
        store = ForcedStore(cli_env["DPG_DATABASE_URL"])
        try:
            until("two policy signatures of the zero answer", lambda: (f := store.get(zero_id)) is not None
                  and f.status == "zero" and len(store.signatures(zero_id)) == 2, tick=lambda: dev_chain.mine(1))
        finally:
            store.close()
        listed = dpg_cli(cli_env, "signer", "list")
        assert listed.returncode == 0 and any(json.loads(line).get("request_id") == zero_id
                                              for line in listed.stdout.splitlines()), listed.stdout
        r = dpg_cli(cli_env, "signer", "sign", zero_id, "--key-file", str(tmp_path / "keys" / "human.key"))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["answer"] == "zero"
        until("the zero answer served", lambda: escape.forced_request(rpc, dev_chain.vault, zero_id).served,
              tick=lambda: dev_chain.mine(1))
        assert freeze_unserved_refusal(rpc, dev_chain.vault, zero_id).startswith("AlreadyServed")
        assert erin.balance("ETH")[0].rstrip("0").rstrip(".") == "0"
        assert rpc.balance(erin_exit.address) <= 10 * ETH  # nothing paid, gas spent
