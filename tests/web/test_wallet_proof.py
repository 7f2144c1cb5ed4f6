"""The wallet and proof-of-reserves pages in a real browser, against ``dpg up`` with custody on an
anvil chain (blocks mined only when the test says, so confirmations are exact) and the proof of
reserves published by the exchange itself in a registry on that chain.

Wallet: sign up, 2FA on; my own deposit address with the token named plainly and its QR code, the
vault call with my account tag under "Advanced"; a deposit's confirmations counting up 1/3, 2/3 as
blocks are mined, then credited; an allow-listed address added with a 2FA code; a withdrawal of
"0,25" ETH with 2FA, signed 2/3 by the policy signers, 3/3 by a human with ``dpg signer sign``,
broadcast, confirmed n/3 and completed; plain transfers to my deposit address: dust shown received,
then swept and credited. Proof: an epoch marked, published, my
proof verified in the page against the root read from the chain, and a proof file checked without
logging in: the genuine one valid, one with its balance changed failing."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi.abi import decode
from playwright.sync_api import expect

from dpg.chain.contracts import encode_call
from dpg.chain.rpc import to_int
from dpg.chain.signer import checksum, dev_key, write_key
from dpg.store import db
from tests.api.client import ADMIN, PASSWORD, Codes, User, dpg_cli, exchange, mailed_token, until
from tests.chain.conftest import CHAIN_ID, DevChain, _start, anvil_bin, artifacts  # noqa: F401 (fixtures)
from tests.web.conftest import DESKTOP, PHONE, shot
from tests.web.test_exchange import log_in

pytestmark = pytest.mark.timeout(600)

ETH = 10**18
DEST = dev_key(8).address
POR_SECRET = "7a" * 32


@dataclass
class Custody:
    dev: DevChain
    base: str
    env: dict[str, str]  # points dpg's operator and signer commands at the exchange
    keys: Path
    registry: str


@pytest.fixture(scope="module")
def custody(anvil_bin: Path, artifacts: Path, pg_server: str,  # noqa: F811
            tmp_path_factory: pytest.TempPathFactory, vendored: None) -> Iterator[Custody]:
    """``dpg up`` with custody on an anvil chain (confirmation depth 3) and a ReserveRegistry
    deployed there by ``dpg por deploy-registry``, which the exchange publishes every epoch in."""
    tmp = tmp_path_factory.mktemp("wallet-proof")
    dev = _start(anvil_bin, None)
    url = db.create_scratch(pg_server, "dpg_test_wallet_web")
    try:
        chains = tmp / "chains.json"
        chains.write_text(json.dumps({"chains": [{
            "name": "ethereum", "chain_id": CHAIN_ID, "rpc_url": dev.anvil.url, "vault": dev.vault,
            "confirmations": 3, "native_asset": "ETH", "poll_seconds": 0.1, "forwarder_factory": dev.factory,
            "tokens": {"USDT": {"address": dev.usdt, "decimals": 6},
                       "WBTC": {"address": dev.wbtc, "decimals": 8, "asset": "BTC"}}}]}))
        keys = tmp / "keys"
        for name, index in (("policy-1", 1), ("policy-2", 2), ("broadcaster", 0), ("human", 3)):
            write_key(keys / f"{name}.key", dev_key(index))
        env = {"DPG_CUSTODY": "1", "DPG_CHAINS": str(chains),
               "DPG_POLICY_SIGNER_KEYS": f"{keys / 'policy-1.key'},{keys / 'policy-2.key'}",
               "DPG_BROADCASTER_KEY": str(keys / "broadcaster.key"), "DPG_POR_SECRET": POR_SECRET,
               "DPG_POR_RPC": dev.anvil.url, "DPG_DATA_DIR": str(tmp), "DPG_DATABASE_URL": url,
               "DPG_ADMIN_TOKEN": ADMIN, "DPG_ADDRESS_COOLDOWN": "0"}
        r = dpg_cli(env, "por", "deploy-registry", "--chains", str(chains))
        assert r.returncode == 0, r.stdout + r.stderr
        registry = json.loads(r.stdout)["registry"]
        env["DPG_POR_REGISTRY"] = registry
        with exchange(url, tmp, **env) as base:
            yield Custody(dev, base, env, keys, registry.lower())
    finally:
        db.drop(url)
        dev.stop()


def test_wallet_deposit_confirmations_allow_list_and_withdrawal_timeline(page: Any, custody: Custody) -> None:
    dev, web = custody.dev, custody.base

    # sign up and turn 2FA on in the page
    page.goto(f"{web}/account/signup")
    page.fill("input[name=email]", "wallet@web.dpg")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[data-testid=signup] button[type=submit]")
    page.click("[data-testid=totp-start]")
    secret = page.locator("[data-testid=totp-secret]").inner_text()
    totp = Codes(secret)  # each code once: the exchange accepts a time step once
    page.fill("input[name=code]", totp.next())
    page.press("input[name=code]", "Enter")
    expect(page.locator("[data-testid=totp-on]")).to_be_visible()
    uid = int(page.evaluate("JSON.parse(localStorage.getItem('dpg.session')).user_id"))

    # the address is verified by the link mailed at sign-up (withdrawals wait for it)
    token = mailed_token(custody.env["DPG_DATABASE_URL"], "wallet@web.dpg", "verify-email")
    page.goto(f"{web}/verify-email?token={token}")
    expect(page.locator("[data-testid=email-verified]")).to_be_visible()

    # how to deposit: my own address, the token named plainly, its QR code; the tagged vault call under Advanced
    page.click("#nav a[data-nav=wallet]")
    (mine,) = decode(["address"], dev.rpc.eth_call(dev.factory, encode_call("addressOf(uint64)", uid)))
    mine = str(mine).lower()
    expect(page.locator("[data-testid=deposit-address]")).to_have_text(mine)
    expect(page.locator("[data-testid=deposit-token]")).to_have_text("ETH on Ethereum")
    expect(page.locator("[data-testid=deposit-uri]")).to_have_text(f"ethereum:{checksum(mine)}@{CHAIN_ID}")
    expect(page.locator("[data-testid=deposit] svg.qr").first).to_be_visible()
    expect(page.locator("form[data-testid=withdraw-form] input[name=withdraw-totp]")).to_be_visible()
    expect(page.locator("[data-testid=twofa-prompt]")).to_have_count(0)  # 2FA is on: no prompt to turn it on
    expect(page.locator("[data-testid=vault]")).to_be_hidden()
    page.click("[data-testid=advanced] summary")
    expect(page.locator("[data-testid=vault]")).to_have_text(dev.vault)
    expect(page.locator("[data-testid=account-tag]")).to_have_text(str(uid))
    expect(page.locator("[data-testid=advanced]")).to_contain_text(f"depositETH({uid})")
    page.select_option("select[name=deposit-pair]", label="BTC · WBTC on Ethereum")
    expect(page.locator("[data-testid=deposit-token]")).to_have_text("WBTC on Ethereum (credited as BTC)")
    expect(page.locator("[data-testid=deposit-uri]")).to_have_text(
        f"ethereum:{checksum(dev.wbtc)}@{CHAIN_ID}/transfer?address={checksum(mine)}")
    page.select_option("select[name=deposit-pair]", label="ETH on Ethereum")

    # a deposit of 1 ETH: its confirmations count up in the page as blocks are mined, then it is credited
    r = dpg_cli(custody.env, "wallet", "deposit", str(uid), "1", "--asset", "ETH")
    assert r.returncode == 0, r.stderr
    pending = page.locator("[data-testid=deposit-pending]")
    expect(pending.locator("[data-testid=confirmations]")).to_have_text("1/3")
    expect(page.locator("[data-testid=wallet-available-ETH]")).to_have_text("0")
    dev.mine(1)
    expect(pending.locator("[data-testid=confirmations]")).to_have_text("2/3")
    dev.mine(1)
    credited = page.locator("[data-testid=deposit-credited]")
    expect(credited.locator("[data-testid=confirmations]")).to_have_text("3/3")
    expect(pending).to_have_count(0)
    expect(page.locator("[data-testid=wallet-available-ETH]")).to_have_text("1")

    # the allow-list: an address added with a label and a 2FA code
    page.fill("input[name=allow-address]", DEST)
    page.fill("input[name=allow-label]", "cold wallet")
    page.fill("input[name=allow-totp]", totp.next())
    page.click("form[data-testid=allow-add] button[type=submit]")
    page.click("dialog[data-kind=allow-add] [data-testid=confirm-yes]")
    expect(page.locator(f"[data-testid=allow-list] tr[data-address='{DEST.lower()}']")).to_contain_text("cold wallet")
    expect(page.locator("[data-testid=allow-usable]")).to_have_text("now")  # no waiting period in this test

    # the withdraw form: amounts with "," in exact base units, the max button, 2FA
    page.select_option("select[name=withdraw-asset]", "ETH")
    expect(page.locator("[data-testid=withdraw-available]")).to_have_text("Available: 1 ETH")
    page.click("[data-testid=withdraw-max]")
    expect(page.locator("input[name=withdraw-amount]")).to_have_value("1")
    page.fill("input[name=withdraw-amount]", "0,25")
    expect(page.locator("[data-testid=withdraw-units]")).to_have_text(
        "0.250000000000000000 ETH = 250000000000000000 base units")
    page.select_option("select[name=withdraw-address]", DEST.lower())
    # the fee and what arrives, shown before sending
    expect(page.locator("[data-testid=withdraw-fee]")).to_have_text("0 ETH")
    expect(page.locator("[data-testid=withdraw-receive]")).to_have_text("0.25 ETH")
    expect(page.locator("[data-testid=withdraw-quote]")).to_contain_text(f"at {DEST.lower()[:10]}")
    page.fill("input[name=withdraw-totp]", totp.next())
    page.click("form[data-testid=withdraw-form] button[type=submit]")
    page.click("dialog[data-kind=withdraw] [data-testid=confirm-yes]")
    expect(page.get_by_role("alert").filter(has_text="requested")).to_be_visible()
    w = page.locator("[data-testid=withdrawal]")
    expect(w).to_have_count(1)
    expect(page.locator("[data-testid=wallet-locked-ETH]")).to_have_text("0.25")

    # the policy signers sign 2/3; a human signs the third with dpg signer sign
    expect(w.locator("[data-step=signed-2]")).to_have_class(re.compile(r"\bdone\b"))
    expect(w.locator("[data-step=signed-3]")).to_have_class(re.compile(r"\bcurrent\b"))
    expect(w.locator("[data-testid=withdrawal-cancel]")).to_be_visible()  # the user may still cancel it
    wid = w.get_attribute("data-id")
    assert wid and re.fullmatch(r"0x[0-9a-f]{64}", wid)
    r = dpg_cli(custody.env, "signer", "sign", wid, "--key-file", str(custody.keys / "human.key"))
    assert r.returncode == 0, r.stdout + r.stderr
    expect(w.locator("[data-step=broadcast]")).to_have_class(re.compile(r"\bdone\b"))
    expect(w.locator("[data-testid=withdrawal-cancel]")).to_have_count(0)
    expect(w.locator("[data-step=confirmed]")).to_have_text(re.compile(r"confirmed 1/3"))
    expect(w).to_have_attribute("data-status", "confirming")
    assert w.locator("[data-testid=tx-hash]").inner_text().startswith("0x")

    # another deposit meanwhile: its block is the withdrawal's second confirmation
    dev.deposit_eth(uid, ETH // 2)
    expect(pending.locator("[data-testid=confirmations]")).to_have_text("1/3")
    expect(w.locator("[data-step=confirmed]")).to_have_text(re.compile(r"confirmed 2/3"))
    expect(w.locator("[data-step=confirmed]")).to_have_class(re.compile(r"\bcurrent\b"))
    page.evaluate("scrollTo(0, 0)")
    shot(page, "wallet")
    page.set_viewport_size(PHONE)
    page.locator("[data-testid=deposits]").scroll_into_view_if_needed()
    shot(page, "wallet-phone")
    page.set_viewport_size(DESKTOP)

    # more blocks: the withdrawal completes, the second deposit is credited
    status = w.get_attribute
    until("the withdrawal completed", lambda: status("data-status") == "completed", 90, tick=lambda: dev.mine(1))
    for step in ("requested", "signed-1", "signed-2", "signed-3", "broadcast", "confirmed", "completed"):
        expect(w.locator(f"[data-step={step}]")).to_have_class(re.compile(r"\bdone\b"))
    expect(w.locator("[data-step=confirmed]")).to_have_text(re.compile(r"confirmed 3/3"))
    expect(pending).to_have_count(0)
    expect(page.locator("[data-testid=wallet-available-ETH]")).to_have_text("1.25")
    expect(page.locator("[data-testid=wallet-locked-ETH]")).to_have_text("0")
    assert dev.rpc.balance(DEST) >= 10_000 * ETH + ETH // 4  # anvil's funded account, paid 0.25 ETH more
    receipt = dev.rpc.receipt(w.locator("[data-testid=tx-hash]").inner_text())
    assert receipt is not None and to_int(receipt["status"]) == 1

    # plain transfers to my deposit address: dust (below the 0.005 ETH minimum) is received and waits;
    # with more, both are swept into the vault and credited after 3 confirmations of the sweep
    r = dpg_cli(custody.env, "wallet", "deposit", str(uid), "0.001", "--asset", "ETH", "--plain")
    assert r.returncode == 0, r.stderr
    received = page.locator("[data-testid=deposit-received]")
    expect(received.locator("[data-testid=confirmations]")).to_have_text("—")
    expect(received).to_contain_text("0.001")
    r = dpg_cli(custody.env, "wallet", "deposit", str(uid), "0.5", "--asset", "ETH", "--plain")
    assert r.returncode == 0, r.stderr
    expect(received).to_have_count(0)
    expect(pending.locator("[data-testid=confirmations]")).to_have_text("1/3")
    expect(pending).to_contain_text("0.501")
    dev.mine(2)
    expect(pending).to_have_count(0)
    expect(page.locator("[data-testid=deposit-credited]").first).to_contain_text("0.501")
    expect(page.locator("[data-testid=wallet-available-ETH]")).to_have_text("1.751")
    assert dev.rpc.balance(mine) == 0

    # removing the address from the allow-list
    page.locator(f"[data-testid=allow-list] tr[data-address='{DEST.lower()}'] [data-testid=allow-remove]").click()
    page.click("dialog[data-kind=allow-remove] [data-testid=confirm-yes]")
    expect(page.locator(f"[data-testid=allow-list] tr[data-address='{DEST.lower()}']")).to_have_count(0)


def test_proof_of_my_balance_and_a_tampered_file(page: Any, browser: Any, custody: Custody,
                                                  tmp_path: Path) -> None:
    dev, web = custody.dev, custody.base
    user = User(web, "proof@web.dpg")
    dev.deposit_eth(user.id, 2 * ETH)
    dev.mine(3)
    until("the deposit credited", lambda: user.balance("ETH")[0].rstrip("0").rstrip(".") == "2", 90)
    head = dev.rpc.call("eth_getBlockByNumber", ["latest", False])
    until("a second past the last block", lambda: time.time() >= to_int(head["timestamp"]) + 1.1)

    # an epoch marked; the exchange publishes it in the registry by itself
    r = dpg_cli(custody.env, "por", "snapshot", "--url", web)
    assert r.returncode == 0, r.stdout + r.stderr
    epoch = str(json.loads(r.stdout)["epoch"])

    def reported() -> dict[str, Any] | None:
        listed = httpx.get(f"{web}/api/v1/por/epochs").json()
        return next((e for e in listed if e["epoch"] == epoch and e["reportOk"] is not None), None)

    done = until("the epoch published", reported, timeout=180)
    assert done["reportOk"] is True and "ETH" in [p["asset"] for p in done["published"]]
    registry = httpx.get(f"{web}/api/v1/por/registry").json()
    assert registry["registry"] == custody.registry and registry["rpcUrl"] == dev.anvil.url
    csp = httpx.get(f"{web}/proof").headers["content-security-policy"]
    assert f"connect-src 'self' {dev.anvil.url};" in csp  # the page may read the registry's chain, nothing more

    # verify my balance: my proof, the root and total read from the chain, the path, the result
    log_in(page, web, user.email)
    page.click("#nav a[data-nav=proof]")
    expect(page.locator("[data-testid=registry]")).to_contain_text(custody.registry)
    expect(page.locator("input[name=rpc]")).to_have_value(dev.anvil.url)
    expect(page.locator("[data-testid=report-ok]")).to_have_text("every asset covered")
    expect(page.locator("[data-testid=ratio-ETH]")).to_have_text("100.00 %")
    expect(page.locator("[data-testid=ratio-chart] canvas").first).to_be_visible()
    page.select_option("select[name=epoch]", epoch)
    page.select_option("select[name=asset]", "ETH")
    page.click("[data-testid=verify-mine-go]")
    result = page.locator("[data-testid=verify-mine] [data-testid=proof-result]")
    expect(result).to_have_attribute("data-valid", "true")
    expect(result.locator("[data-testid=verdict]")).to_contain_text(f"Valid: 2 ETH of account {user.id}")
    proof = user.http.get("/api/v1/por/proof", params={"asset": "ETH", "epoch": epoch}).json()
    expect(result.locator("[data-testid=root-on-chain]")).to_contain_text(proof["root"])
    expect(result.locator("[data-testid=path-level]")).to_have_count(proof["depth"] + 1)
    # leaf version 2: the deposit through the home Vault counted, no exit address (provable, not escapable)
    assert (proof["version"], proof["deposited"], proof["withdrawn"]) == (2, str(2 * ETH), "0")
    assert proof["exitAddress"] == "0x" + "00" * 20 and proof["account"] == user.id
    expect(result.locator("[data-testid=proof-exit]")).to_contain_text("can be proven but not claimed")
    expect(result.locator("[data-testid=proof-counters]")).to_contain_text("2 ETH")
    shot(page, "proof")

    # a proof file checked without logging in: the genuine one holds, a changed balance fails
    context = browser.new_context(viewport=DESKTOP)
    errors: list[str] = []
    try:
        anon = context.new_page()
        anon.on("pageerror", lambda e: errors.append(str(e)))
        anon.goto(f"{web}/proof")
        expect(anon.locator("[data-testid=verify-mine]")).to_contain_text("Log in")
        genuine = tmp_path / "proof.json"
        genuine.write_text(json.dumps(proof))
        anon.set_input_files("input[name=proof-file]", str(genuine))
        expect(anon.locator("textarea[name=proof-json]")).not_to_have_value("")
        anon.click("[data-testid=verify-file-go]")
        checked = anon.locator("[data-testid=verify-file] [data-testid=proof-result]")
        expect(checked).to_have_attribute("data-valid", "true")
        tampered = tmp_path / "tampered.json"
        tampered.write_text(json.dumps({**proof, "balance": str(int(proof["balance"]) + 10**18)}))
        anon.set_input_files("input[name=proof-file]", str(tampered))
        expect(anon.locator("textarea[name=proof-json]")).to_have_value(re.compile(str(int(proof["balance"]) + 10**18)))
        anon.click("[data-testid=verify-file-go]")
        expect(checked).to_have_attribute("data-valid", "false")
        expect(checked.locator("[data-testid=verdict]")).to_contain_text("Not valid")
        expect(checked.locator("[data-testid=proof-balance]")).to_have_text("3 ETH")
        anon.locator("[data-testid=verify-file]").scroll_into_view_if_needed()
        shot(anon, "proof-tampered")
        anon.set_viewport_size(PHONE)
        anon.locator("[data-testid=verify-file] [data-testid=verdict]").scroll_into_view_if_needed()
        shot(anon, "proof-phone")
    finally:
        context.close()
    assert not errors, errors
