"""The governance page in a real browser, against ``dpg up`` with governance on (``DPG_GOVERNANCE=1``)
and its embedded chain run by anvil (``DPG_DEV_CHAIN=anvil``, so the test can move the chain's time).

The browser's wallet is a ``window.ethereum`` injected into the page that signs with dev account 7's
key (the demo staker, 5 % of the votes) and sends to the chain. In the page: connect, stake 1,000
DPG (approve, then stake), see the stake; a proposal to change BTC/USDT's fees (made on the chain by
the same holder) shows Pending, then Active with its countdown; vote For in the page, see the
votes; after the vote it is Succeeded; queued and executed through the timelock, the exchange
applies the decision and the page shows the new fees and the change in the governance history."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eth_abi.abi import decode
from eth_utils.crypto import keccak
from playwright.sync_api import expect

from dpg.api.presentation import rate
from dpg.chain.broadcaster import fees, send_raw, sign_tx
from dpg.chain.contracts import encode_call
from dpg.chain.governance import DPG, STAKER, STAKER_STAKE, TIMELOCK_DELAY, Governance
from dpg.chain.rpc import Rpc, to_int
from dpg.chain.signer import dev_key
from dpg.store import db
from tests.api.client import exchange, until
from tests.chain.conftest import anvil_bin, artifacts  # noqa: F401 (fixtures)
from tests.web.conftest import shot

pytestmark = pytest.mark.timeout(600)

DAY = 86_400
MAKER, TAKER = 300, 700  # the proposal's BTC/USDT fees, ppm


@dataclass
class Governed:
    base: str
    rpc: Rpc
    chain_id: int
    gov: Governance


@pytest.fixture(scope="module")
def governed(anvil_bin: Path, artifacts: Path, pg_server: str,  # noqa: F811
             tmp_path_factory: pytest.TempPathFactory, vendored: None) -> Iterator[Governed]:
    tmp = tmp_path_factory.mktemp("governance-web")
    url = db.create_scratch(pg_server, "dpg_test_gov_web")
    try:
        env = {"DPG_CUSTODY": "1", "DPG_DEV_CHAIN": "anvil", "DPG_ANVIL": str(anvil_bin), "DPG_GOVERNANCE": "1",
               "DPG_POR_PUBLISH": "0"}
        with exchange(url, tmp, **env) as base:
            with psycopg.connect(url) as c:
                row = c.execute("SELECT rpc_url, chain_id FROM chains WHERE name = 'ethereum'").fetchone()
            assert row is not None
            doc = json.loads((tmp / "chain" / "ethereum" / "deployment.json").read_text())
            yield Governed(base, Rpc(row[0]), int(row[1]), Governance.from_dict(doc["governance"]))
    finally:
        db.drop(url)


def transact(g: Governed, index: int, to: str, data: str) -> str:
    """Sign with dev account ``index``'s key and send; the mined transaction's hash."""
    key = dev_key(index)
    gas = to_int(g.rpc.call("eth_estimateGas", [{"from": key.address, "to": to, "data": data}]))
    nonce = to_int(g.rpc.call("eth_getTransactionCount", [key.address, "pending"]))
    tip, max_fee = fees(g.rpc)
    raw, tx = sign_tx(key, g.chain_id, to, data, nonce, gas * 5 // 4, tip, max_fee)
    send_raw(g.rpc, raw)
    receipt = until("the transaction is mined", lambda: g.rpc.receipt(tx), timeout=30)
    assert to_int(receipt["status"]) == 1, receipt
    return tx


def wallet(page: Any, g: Governed, index: int) -> None:
    """A window.ethereum that signs with dev account ``index``'s key (the page's wallet)."""
    address = dev_key(index).address.lower()

    def request(method: str, params: str) -> str:
        args = json.loads(params)
        if method in ("eth_requestAccounts", "eth_accounts"):
            return json.dumps([address])
        if method == "eth_sendTransaction":
            (tx,) = args
            assert tx["from"].lower() == address
            return json.dumps(transact(g, index, tx["to"], tx["data"]))
        return json.dumps(g.rpc.call(method, args))

    page.expose_function("dpgWallet", request)
    page.add_init_script("window.ethereum = { request: async ({ method, params }) =>"
                         " JSON.parse(await window.dpgWallet(method, JSON.stringify(params || []))) };")


def settle(page: Any, what: str, check: Any, timeout: float = 60) -> None:
    """Wait until ``check()`` while the page runs: its wallet calls (exposed functions) are answered
    only while Playwright waits."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}; the page says: {page.locator('[role=status]').first.inner_text()!r}")
        page.wait_for_timeout(200)


def advance(g: Governed, seconds: int) -> None:
    g.rpc.call("evm_increaseTime", [seconds])
    g.rpc.mine()


def view(g: Governed, to: str, sig: str, *args: object) -> int:
    (v,) = decode(["uint256"], g.rpc.eth_call(to, encode_call(sig, *args)))
    return int(v)


def test_stake_vote_and_see_the_decision_applied(page: Any, governed: Governed) -> None:
    g = governed
    staker = dev_key(STAKER).address.lower()
    wallet(page, g, STAKER)
    page.goto(f"{g.base}/governance")
    page.click("[data-testid=connect]")
    mine = page.locator("[data-testid=my-dpg]")
    expect(mine.locator("[data-testid=staked]")).to_contain_text("30,000,000")

    # stake 1,000 DPG in the page: approve, then stake, both signed by the wallet
    page.fill("input[name=amount]", "1000")
    page.click("[data-testid=stake]")
    settle(page, "the stake is on the chain",
           lambda: view(g, g.gov.staking, "staked(address)", staker) == STAKER_STAKE + 1_000 * DPG)
    expect(mine.locator("[data-testid=staked]")).to_contain_text("30,001,000")

    # a proposal to change BTC/USDT's fees, by the same holder
    market = b"BTC/USDT".ljust(32, b"\0")
    call = encode_call("setFees(bytes32,uint32,uint32)", market, MAKER, TAKER)
    description = f"BTC/USDT fees {MAKER}/{TAKER} ppm"
    targets, values, calls = [g.gov.params], [0], [bytes.fromhex(call[2:])]
    transact(g, STAKER, g.gov.governor, encode_call("propose(address[],uint256[],bytes[],string)", targets, values,
                                                     calls, description))
    row = page.locator("[data-testid=proposal]").first
    expect(row).to_contain_text(description)
    expect(row.locator("[data-testid=proposal-state]")).to_have_text("Pending")
    expect(row.locator("[data-testid=countdown]")).to_contain_text("voting starts in")

    advance(g, DAY + 1)
    expect(row.locator("[data-testid=proposal-state]")).to_have_text("Active")
    expect(row.locator("[data-testid=countdown]")).to_contain_text("voting ends in")
    row.locator("[data-testid=vote-for]").click()
    proposal_id = int(row.get_attribute("data-id") or "0")
    settle(page, "the vote is counted",
           lambda: view(g, g.gov.governor, "hasVoted(uint256,address)", proposal_id, staker) == 1)
    expect(row.locator("[data-testid=votes-for]")).not_to_have_text("0")
    shot(page, "governance")

    advance(g, 7 * DAY + 1)
    expect(row.locator("[data-testid=proposal-state]")).to_have_text("Succeeded")
    digest = keccak(text=description)
    transact(g, STAKER, g.gov.governor, encode_call("queue(address[],uint256[],bytes[],bytes32)", targets, values,
                                                     calls, digest))
    expect(row.locator("[data-testid=proposal-state]")).to_have_text("Queued")
    advance(g, TIMELOCK_DELAY + 1)
    transact(g, STAKER, g.gov.governor, encode_call("execute(address[],uint256[],bytes[],bytes32)", targets, values,
                                                     calls, digest))
    g.rpc.mine(12)  # past the exchange's confirmation depth
    expect(row.locator("[data-testid=proposal-state]")).to_have_text("Executed")

    # the exchange applied the decision: the new fees in force and the change in the history
    btc = page.locator("[data-testid=market-params][data-market='BTC/USDT']")
    expect(btc.locator("[data-testid=maker-fee]")).to_have_text(rate(MAKER))
    expect(btc.locator("[data-testid=taker-fee]")).to_have_text(rate(TAKER))
    change = page.locator("[data-testid=change]").first
    expect(change).to_contain_text("BTC/USDT")
    shot(page, "governance-applied")


def test_without_a_wallet_the_page_shows_the_transactions_to_send(page: Any, governed: Governed) -> None:
    g = governed
    holder = dev_key(8).address.lower()
    page.goto(f"{g.base}/governance")
    expect(page.locator("[data-testid=connect]")).to_have_count(0)  # no window.ethereum
    page.fill("input[name=address]", holder)
    page.press("input[name=address]", "Enter")
    expect(page.locator("[data-testid=my-dpg] [data-testid=dpg]")).to_have_text("10,000,000")
    page.fill("input[name=amount]", "2,5")
    page.click("[data-testid=stake]")
    txs = page.locator("[data-testid=tx]")
    expect(txs).to_have_count(2)
    assert txs.nth(0).get_attribute("data-to") == g.gov.token
    assert txs.nth(0).get_attribute("data-data") == encode_call("approve(address,uint256)", g.gov.staking,
                                                                25 * DPG // 10)
    assert txs.nth(1).get_attribute("data-to") == g.gov.staking
    assert txs.nth(1).get_attribute("data-data") == encode_call("stake(uint256)", 25 * DPG // 10)
    page.click("[data-testid=claim]")
    expect(txs).to_have_count(1)
    assert txs.nth(0).get_attribute("data-data") == encode_call("getReward()")
    # the data is the transaction: sent as it is from the holder's key, it stakes
    page.click("[data-testid=stake]")
    expect(txs).to_have_count(2)
    for i in range(2):
        transact(g, 8, str(txs.nth(i).get_attribute("data-to")), str(txs.nth(i).get_attribute("data-data")))
    assert view(g, g.gov.staking, "staked(address)", holder) == 25 * DPG // 10
