"""The escape hatch from end to end, on anvil: users register exit addresses, deposit and trade on a
running exchange (``dpg up`` with custody), an epoch is published; after the snapshot one user
withdraws and another deposits on the chain. Then the operator stops. A user requests a forced
withdrawal (``dpg exit request``); nobody serves it; the chain's clock moves past the grace period
(evm_increaseTime) and the vault is frozen (``dpg exit freeze``). One user claims from the page
(/proof/exit: without a browser wallet it gives the transaction data; with one — a window.ethereum
holding the exit address's key — it sends that same transaction), two from the command line; each
exit address receives exactly its proven balance, less what was paid out and plus what was deposited
after the snapshot, and a second claim is refused.

For the page the exchange is started again with its custody off (``DPG_CUSTODY=0``): it serves pages
and the API but watches, signs, sends and publishes nothing on the chain — an operator that no longer
serves; the claim needs nothing from it but the transaction data, which ``dpg exit`` makes too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi.abi import decode
from eth_account.messages import encode_typed_data
from playwright.sync_api import expect

from dpg.chain import escape
from dpg.chain.broadcaster import fees, send_raw, sign_tx
from dpg.chain.contracts import encode_call
from dpg.chain.rpc import to_int
from dpg.chain.signer import dev_key, write_key
from dpg.store import db
from tests.api.client import ADMIN, User, dpg_cli, exchange, until
from tests.chain.conftest import CHAIN_ID, _start, anvil_bin, artifacts  # noqa: F401 (fixtures)
from tests.chain.test_forced import POR_SECRET, fund, proof_file, publish_epoch, register_exit
from tests.web.conftest import DESKTOP, PHONE
from tests.web.test_exchange import log_in

pytestmark = pytest.mark.timeout(900)

ETH = 10**18
USDT = 10**6


def token_balance(rpc: Any, token: str, who: str) -> int:
    (v,) = decode(["uint256"], rpc.eth_call(token, encode_call("balanceOf(address)", who)))
    return int(v)


def gas_paid(rpc: Any, tx_hash: str) -> int:
    r = rpc.receipt(tx_hash)
    assert r is not None and to_int(r["status"]) == 1, r
    return to_int(r["gasUsed"]) * to_int(r["effectiveGasPrice"])


def wallet(rpc: Any, key: Any, method: str, params: list[Any], sent: list[str]) -> Any:
    """A browser wallet holding ``key``: what the page asks of window.ethereum, answered on the chain."""
    if method in ("eth_requestAccounts", "eth_accounts"):
        return [key.address]
    if method == "eth_sendTransaction":
        (tx,) = params
        assert str(tx["from"]).lower() == key.address.lower()
        gas = to_int(rpc.call("eth_estimateGas", [{"from": key.address, "to": tx["to"], "data": tx["data"]}]))
        tip, max_fee = fees(rpc)
        nonce = to_int(rpc.call("eth_getTransactionCount", [key.address, "pending"]))
        raw, tx_hash = sign_tx(key, int(tx["chainId"], 16), tx["to"], tx["data"], nonce, gas * 5 // 4, tip, max_fee)
        send_raw(rpc, raw)
        rpc.wait_receipt(tx_hash)
        sent.append(tx_hash)
        return tx_hash
    raise ValueError(f"this wallet does not do {method}")


def test_users_escape_after_the_operator_stops(anvil_bin: Path, artifacts: Path, pg_server: str,  # noqa: F811
                                               tmp_path: Path, page: Any, browser: Any, vendored: None) -> None:
    dev = _start(anvil_bin, None)
    url = db.create_scratch(pg_server, "dpg_test_escape_e2e")
    rpc = dev.rpc
    try:
        chains = tmp_path / "chains.json"
        chains.write_text(json.dumps({"chains": [{
            "name": "ethereum", "chain_id": CHAIN_ID, "rpc_url": dev.anvil.url, "vault": dev.vault,
            "confirmations": 3, "native_asset": "ETH", "poll_seconds": 0.1,
            "tokens": {"USDT": {"address": dev.usdt, "decimals": 6},
                       "WBTC": {"address": dev.wbtc, "decimals": 8, "asset": "BTC"}}}]}))
        keys = tmp_path / "keys"
        for name, index in (("policy-1", 1), ("policy-2", 2), ("broadcaster", 0), ("human", 3)):
            write_key(keys / f"{name}.key", dev_key(index))
        env = {"DPG_CUSTODY": "1", "DPG_CHAINS": str(chains),
               "DPG_POLICY_SIGNER_KEYS": f"{keys / 'policy-1.key'},{keys / 'policy-2.key'}",
               "DPG_BROADCASTER_KEY": str(keys / "broadcaster.key"), "DPG_POR_SECRET": POR_SECRET,
               "DPG_POR_RPC": dev.anvil.url, "DPG_DATA_DIR": str(tmp_path), "DPG_DATABASE_URL": url,
               "DPG_ADMIN_TOKEN": ADMIN, "DPG_ADDRESS_COOLDOWN": "0"}
        r = dpg_cli(env, "por", "deploy-registry", "--chains", str(chains))
        assert r.returncode == 0, r.stdout + r.stderr
        env["DPG_POR_REGISTRY"] = json.loads(r.stdout)["registry"]
        exits = {"alice": dev_key(14), "bob": dev_key(15), "carol": dev_key(16)}
        for name, key in exits.items():
            fund(rpc, key.address)
            write_key(keys / f"exit-{name}.key", key)

        # ---------------------------------------------------------------- the exchange runs
        with exchange(url, tmp_path, **env) as base:
            users = {name: User(base, f"{name}@escape.dpg") for name in exits}
            alice, bob, carol = users["alice"], users["bob"], users["carol"]
            for name in ("alice", "carol"):
                register_exit(users[name], exits[name])
            # bob registers on the page, with a signature made elsewhere (no browser wallet here)
            log_in(page, base, bob.email)
            page.goto(f"{base}/proof/exit")
            expect(page.locator("[data-testid=exit-current]")).to_contain_text("none")
            page.fill("input[name=exit-address]", exits["bob"].address)
            page.click("[data-testid=exit-sign]")
            expect(page.locator("[data-testid=exit-typed-data]")).to_contain_text('"primaryType": "ExitAddress"')
            typed = json.loads(page.locator("[data-testid=exit-typed-data]").inner_text())
            signed = exits["bob"].sign_message(encode_typed_data(full_message=typed)).signature
            page.fill("textarea[name=exit-signature]", "0x" + bytes(signed).hex())
            page.click("[data-testid=exit-register]")
            expect(page.locator("[data-testid=exit-pending]")).to_contain_text(exits["bob"].address.lower())
            page.evaluate("localStorage.clear()")
            dev.deposit_eth(alice.id, 2 * ETH)
            dev.deposit_eth(carol.id, 1 * ETH)
            dev.deposit_token(dev.usdt, bob.id, 10_000 * USDT)
            dev.mine(3)
            until("the credits", lambda: alice.balance("ETH")[0].startswith("2")
                  and bob.balance("USDT")[0].startswith("10000") and carol.balance("ETH")[0].startswith("1"))
            # alice sells 1 ETH to bob at 3,000 USDT
            assert bob.order(market="ETH/USDT", side="buy", type="limit", price="3000",
                             quantity="1").status_code == 201
            assert alice.order(market="ETH/USDT", side="sell", type="market", quantity="1").status_code == 201
            publish_epoch({**env}, base, alice)
            proofs = {"alice": proof_file(alice, "ETH", tmp_path), "bob": proof_file(bob, "USDT", tmp_path),
                      "carol": proof_file(carol, "ETH", tmp_path)}
            proven = {n: int(json.loads(p.read_text())["balance"]) for n, p in proofs.items()}
            assert proven == {"alice": 1 * ETH, "bob": 7_000 * USDT, "carol": 1 * ETH}
            assert all(json.loads(p.read_text())["exitAddress"] == exits[n].address.lower() for n, p in proofs.items())

            # after the snapshot: bob withdraws 1,000 USDT (the pipeline, a human's third signature)
            bob.verify_email(url)
            dest = dev_key(17).address
            r = bob.http.post("/api/v1/wallet/addresses", json={"chain": "ethereum", "address": dest})
            assert r.status_code == 201, r.text
            w = bob.http.post("/api/v1/withdrawals", json={"asset": "USDT", "chain": "ethereum", "address": dest,
                                                            "amount": "1000"}).json()
            until("two policy signatures",
                  lambda: bob.http.get(f"/api/v1/withdrawals/{w['id']}").json()["signatures"] == 2)
            r = dpg_cli(env, "signer", "sign", w["id"], "--key-file", str(keys / "human.key"))
            assert r.returncode == 0, r.stderr
            until("the payout", lambda: token_balance(rpc, dev.usdt, dest) == 1_000 * USDT, tick=lambda: dev.mine(1))

        # ---------------------------------------------------------------- the operator is gone
        dev.deposit_eth(carol.id, ETH // 2)  # after the snapshot, to the vault: nobody credits it now
        cli = {"DPG_DATA_DIR": str(tmp_path / "user")}  # a user's machine: nothing of the exchange
        r = dpg_cli(cli, "exit", "request", str(proofs["alice"]), "--rpc", dev.anvil.url,
                    "--key", str(keys / "exit-alice.key"))
        assert r.returncode == 0, r.stderr
        request_id = json.loads(r.stdout)["request_id"]
        r = dpg_cli(cli, "exit", "freeze", str(proofs["alice"]), "--rpc", dev.anvil.url,
                    "--key", str(keys / "exit-alice.key"))
        assert r.returncode == 1 and "not yet" in r.stderr, r.stderr
        r = dpg_cli(cli, "exit", "status", str(proofs["alice"]), "--rpc", dev.anvil.url)
        assert r.returncode == 0, r.stderr
        status = json.loads(r.stdout)
        (req,) = status["requests"]
        assert req["request_id"] == request_id and not req["served"] and req["seconds_left"] > 0
        assert not status["frozen"]
        rpc.call("evm_increaseTime", [req["seconds_left"] + 1])
        dev.mine(1)
        r = dpg_cli(cli, "exit", "freeze", str(proofs["alice"]), "--rpc", dev.anvil.url,
                    "--key", str(keys / "exit-alice.key"))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["reason"] == "unserved"
        assert escape.frozen(rpc, dev.vault)

        # bob and carol claim from the command line
        r = dpg_cli(cli, "exit", "claim", str(proofs["bob"]), "--rpc", dev.anvil.url,
                    "--key", str(keys / "exit-bob.key"))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["base_units"] == str(6_000 * USDT)
        assert token_balance(rpc, dev.usdt, exits["bob"].address) == 7_000 * USDT - 1_000 * USDT
        carol_before = rpc.balance(exits["carol"].address)
        r = dpg_cli(cli, "exit", "claim", str(proofs["carol"]), "--rpc", dev.anvil.url,
                    "--key", str(keys / "exit-carol.key"))
        assert r.returncode == 0, r.stderr
        claimed = json.loads(r.stdout)
        assert claimed["base_units"] == str(ETH + ETH // 2)
        assert rpc.balance(exits["carol"].address) == carol_before + ETH + ETH // 2 - gas_paid(rpc, claimed["tx_hash"])
        again = dpg_cli(cli, "exit", "claim", str(proofs["carol"]), "--rpc", dev.anvil.url,
                        "--key", str(keys / "exit-carol.key"))
        assert again.returncode == 1 and "AlreadyClaimed" in again.stderr, again.stderr

        # ---------------------------------------------------------------- alice claims from the page
        with exchange(url, tmp_path, **{**env, "DPG_CUSTODY": "0"}) as web:
            log_in(page, web, alice.email)
            page.goto(f"{web}/proof/exit")
            expect(page.locator("[data-testid=exit-current]")).to_contain_text(exits["alice"].address.lower())
            page.select_option("select[name=asset]", "ETH")
            page.click("[data-testid=exit-proof-fetch]")
            expect(page.locator("[data-testid=exit-proof-balance]")).to_have_text("1 ETH")
            expect(page.locator("[data-testid=exit-frozen]")).to_have_attribute("data-frozen", "true")
            expect(page.locator("[data-testid=exit-claimed]")).to_have_attribute("data-claimed", "false")
            expect(page.locator("[data-testid=exit-request-state]")).to_contain_text("the grace period is over")
            page.click("[data-testid=exit-claim]")
            to = page.locator("[data-testid=exit-tx-to]").inner_text()
            data = page.locator("[data-testid=exit-tx-calldata]").inner_text()
            assert to == dev.vault and page.locator("[data-testid=exit-tx-value]").inner_text() == "0x0"
            assert escape.claim_call(json.loads(proofs["alice"].read_text())) == data
            page.set_viewport_size(PHONE)
            assert page.evaluate(
                "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)") <= PHONE["width"]

            # the same page with a browser wallet (window.ethereum, here holding alice's exit key): it sends
            key = exits["alice"]
            sent: list[str] = []
            context = browser.new_context(viewport=DESKTOP)
            try:
                context.expose_function("dpgWallet", lambda method, params: wallet(rpc, key, method, params, sent))
                context.add_init_script(
                    "window.ethereum = { request: ({ method, params }) => window.dpgWallet(method, params || []) };")
                with_wallet = context.new_page()
                log_in(with_wallet, web, alice.email)
                with_wallet.goto(f"{web}/proof/exit")
                expect(with_wallet.locator("[data-testid=exit]")).to_contain_text("A browser wallet is present")
                with_wallet.set_input_files("input[name=exit-proof-file]", str(proofs["alice"]))
                expect(with_wallet.locator("[data-testid=exit-frozen]")).to_have_attribute("data-frozen", "true")
                before = rpc.balance(key.address)
                with_wallet.click("[data-testid=exit-claim]")
                expect(with_wallet.locator("[data-testid=exit-sent]")).to_contain_text("Claim: sent")
                (tx_hash,) = sent
                assert with_wallet.locator("[data-testid=exit-sent] code").inner_text() == tx_hash
                tx = rpc.call("eth_getTransactionByHash", [tx_hash])
                assert (str(tx["to"]).lower(), tx["input"]) == (to, data)  # what the page showed without a wallet
                assert rpc.balance(key.address) == before + 1 * ETH - gas_paid(rpc, tx_hash)
                expect(with_wallet.locator("[data-testid=exit-claimed]")).to_have_attribute("data-claimed", "true")
                with_wallet.set_viewport_size(PHONE)  # nothing, not even the calldata, is wider than a phone
                assert with_wallet.evaluate(
                    "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)") <= PHONE["width"]
            finally:
                context.close()
            # the public endpoints refuse what is not a v2 proof of a chain they know, with a code
            genuine = json.loads(proofs["alice"].read_text())
            for body, code in (({"proof": genuine, "action": "bogus"}, "INVALID_ACTION"),
                               ({"proof": {**genuine, "balance": "-1"}, "action": "claim"}, "INVALID_PROOF"),
                               ({"proof": {**genuine, "registry": "0x12"}, "action": "claim"}, "INVALID_PROOF"),
                               ({"proof": {**genuine, "chainId": "1"}, "action": "claim"}, "UNKNOWN_CHAIN"),
                               ({"proof": {**genuine, "version": 1}}, "INVALID_PROOF")):
                path = "/api/v1/exit/transaction" if "action" in body else "/api/v1/exit/status"
                r = httpx.post(f"{web}{path}", json=body)
                assert (r.status_code, r.json()["code"]) == (400, code), (body, r.text)
        # what the vault paid in claims is exactly the proven balances, adjusted
        assert rpc.balance(dev.vault) == 3 * ETH + ETH // 2 - 1 * ETH - (ETH + ETH // 2)
    finally:
        db.drop(url)
        dev.stop()
