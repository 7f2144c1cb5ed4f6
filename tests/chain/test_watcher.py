"""The deposit watcher against a real anvil node and a real exchange on PostgreSQL: deposits are
pending with their confirmations, then credited exactly once at the depth; reorgs, restarts of the
watcher, of the exchange and of the chain node, duplicate logs and unknown tokens credit nothing
twice and nothing that is not in the canonical chain."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eth_utils.crypto import keccak

from dpg.chain.config import (
    ChainConfig,
    ChainConfigError,
    Token,
    default_chains,
    load_chains,
)
from dpg.chain.contracts import DEPOSIT_TOPIC, load_artifact
from dpg.chain.custody import Custody
from dpg.chain.embedded import deploy
from dpg.chain.rpc import to_int
from dpg.chain.store import Deposit, DepositStore
from dpg.chain.watcher import ChainMismatch, DeepReorg, DepositWatcher
from dpg.config import Settings
from dpg.core.commands import Credit
from dpg.system.node import Node
from tests.chain.conftest import DEPTH, DevChain, WatcherFactory, open_accounts

ETH = 10**18


def _rows(pg_url: str) -> dict[str, Deposit]:
    store = DepositStore(pg_url)
    try:
        return {d.tx_hash: d for d in store.deposits()}
    finally:
        store.close()


def _cursor(pg_url: str) -> int:
    with psycopg.connect(pg_url) as c:
        row = c.execute("SELECT block_number FROM chain_cursors WHERE chain = 'ethereum'").fetchone()
        return -1 if row is None else int(row[0])


def _credits(node: Node, ref_prefix: str = "ethereum:") -> list[str]:
    return sorted(r for r in node.engine.refs if r.startswith(ref_prefix))


def _wait(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# ---------------------------------------------------------------------- the settings


def test_the_default_chains_are_the_embedded_ethereum_and_polygon() -> None:
    eth, polygon = default_chains()
    assert (eth.name, polygon.name) == ("ethereum", "polygon")
    assert eth.embedded and polygon.embedded and eth.confirmations == polygon.confirmations == 3
    assert {t.symbol: (t.asset, t.decimals) for t in eth.tokens} == {"USDT": ("USDT", 6), "WBTC": ("BTC", 8)}
    assert eth.native_asset == "ETH" and polygon.native_asset == ""
    assert {t.symbol: t.asset for t in polygon.tokens} == {"USDT": "USDT", "WBTC": "BTC", "WETH": "ETH"}
    assert load_chains({}) == default_chains()


TOML = """
[[chains]]
name = "ethereum"
chain_id = 1
rpc_url = "https://eth.invalid/rpc"
vault = "0x00000000000000000000000000000000000000AA"
confirmations = 12
native_asset = "ETH"
start_block = 100

[chains.tokens.USDT]
address = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
decimals = 6

[chains.tokens.WBTC]
address = "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599"
decimals = 8

[[chains]]
name = "polygon"
chain_id = 137
rpc_url = "https://polygon.invalid/rpc"
vault = "0x00000000000000000000000000000000000000bb"
confirmations = 64
native_asset = ""
tokens = { WETH = { address = "0x7ceB23fD6bC0adD59E62ac25578270cFf1b9f619", decimals = 18 } }
"""


def test_chains_load_from_a_toml_or_json_file(tmp_path: Path) -> None:
    p = tmp_path / "chains.toml"
    p.write_text(TOML)
    eth, polygon = load_chains({"DPG_CHAINS": str(p)})
    assert (eth.chain_id, eth.confirmations, eth.start_block, eth.embedded) == (1, 12, 100, False)
    assert eth.vault == "0x00000000000000000000000000000000000000aa"
    usdt = eth.token_at("0xDAC17F958D2EE523A2206206994597C13D831EC7")
    assert usdt is not None and (usdt.asset, usdt.decimals) == ("USDT", 6)
    wbtc = eth.token_at("0x2260fac5e5542a773aa44fbcfedf7c193bc2c599")
    assert wbtc is not None and wbtc.asset == "BTC"
    native = eth.token_at("0x" + "00" * 20)
    assert native is not None and native.asset == "ETH"
    assert polygon.confirmations == 64 and polygon.token_at("0x" + "00" * 20) is None
    weth = polygon.token_at("0x7ceb23fd6bc0add59e62ac25578270cff1b9f619")
    assert weth is not None and weth.asset == "ETH"

    j = tmp_path / "chains.json"
    j.write_text(json.dumps({"chains": [{
        "name": "ethereum", "chain_id": 1, "rpc_url": "http://127.0.0.1:8545", "vault": "0x" + "11" * 20,
        "confirmations": 12, "native_asset": "ETH", "tokens": {"USDT": {"address": "0x" + "22" * 20, "decimals": 6}},
    }]}))
    (only,) = load_chains({"DPG_CHAINS": str(j)})
    assert only.rpc_url == "http://127.0.0.1:8545" and [t.symbol for t in only.tokens] == ["USDT"]


@pytest.mark.parametrize("change, message", [
    ({"tokens": {"USDT": {"address": "0x" + "22" * 20, "decimals": 18}}}, "amounts must convert 1:1"),
    ({"tokens": {"DOGE": {"address": "0x" + "22" * 20, "decimals": 8}}}, "maps to no DPG asset"),
    ({"tokens": {"USDT": {"address": "0x1234", "decimals": 6}}}, "not a 0x address"),
    ({"vault": ""}, "vault: .* is not a 0x address"),
    ({"confirmations": 0}, "at least 1"),
    ({"native_asset": "USDT"}, "not an 18-decimal asset"),
    ({"colour": "blue"}, "unknown keys"),
])
def test_wrong_chain_settings_are_refused(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    entry: dict[str, Any] = {"name": "ethereum", "chain_id": 1, "rpc_url": "http://127.0.0.1:8545",
                             "vault": "0x" + "11" * 20, "confirmations": 12, "native_asset": "ETH"}
    entry.update(change)
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"chains": [entry]}))
    with pytest.raises(ChainConfigError, match=message):
        load_chains({"DPG_CHAINS": str(p)})


def test_the_deposit_event_is_the_vaults(artifacts: Path) -> None:
    abi = load_artifact("Vault").abi
    event = next(e for e in abi if e.get("type") == "event" and e["name"] == "Deposit")
    assert [(i["type"], i["indexed"]) for i in event["inputs"]] == [
        ("bytes32", True), ("uint64", True), ("address", True), ("uint256", False)]
    signature = "Deposit(" + ",".join(i["type"] for i in event["inputs"]) + ")"
    assert "0x" + keccak(text=signature).hex() == DEPOSIT_TOPIC
    functions = {f["name"]: [i["type"] for i in f["inputs"]] for f in abi if f.get("type") == "function"}
    assert functions["depositETH"] == ["uint64"]
    assert functions["depositToken"] == ["address", "uint256", "uint64"]
    assert functions["holdings"] == ["address"]


# ---------------------------------------------------------------------- deposits


def test_deposits_are_pending_then_credited_exactly_once_at_the_depth(
    dev_chain: DevChain, node: Node, make_watcher: WatcherFactory, pg_url: str, record_property: Any,
) -> None:
    w = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
    usdt_tx = dev_chain.deposit_token(dev_chain.usdt, 8, 250 * 10**6)
    eth_tx = dev_chain.deposit_eth(7, ETH)
    assert dev_chain.block_of(eth_tx) == dev_chain.block_of(usdt_tx) + 1 == dev_chain.head()

    r = w.poll_once()
    assert r.credited == []
    pending = {d.tx_hash: d for d in w.pending()}
    assert (pending[usdt_tx].confirmations, pending[usdt_tx].required) == (2, DEPTH)
    assert (pending[eth_tx].confirmations, pending[eth_tx].required) == (1, DEPTH)
    assert (pending[eth_tx].account, pending[eth_tx].asset, pending[eth_tx].amount) == (7, "ETH", ETH)
    assert (pending[usdt_tx].account, pending[usdt_tx].asset, pending[usdt_tx].amount) == (8, "USDT", 250 * 10**6)
    assert node.engine.balance(7, "ETH") == (0, 0) and node.engine.balance(8, "USDT") == (0, 0)

    dev_chain.mine()
    r = w.poll_once()
    assert r.credited == [(usdt_tx, pending[usdt_tx].log_index)]
    assert node.engine.balance(8, "USDT") == (250 * 10**6, 0)
    assert node.engine.balance(7, "ETH") == (0, 0)
    assert [(d.tx_hash, d.confirmations) for d in w.pending()] == [(eth_tx, 2)]

    dev_chain.mine()
    r = w.poll_once()
    assert [k[0] for k in r.credited] == [eth_tx]
    for _ in range(3):
        dev_chain.mine()
        assert w.poll_once().credited == []
    assert node.engine.balance(7, "ETH") == (ETH, 0)
    assert node.engine.balance(8, "USDT") == (250 * 10**6, 0)
    assert _credits(node) == sorted(f"ethereum:{tx}:{pending[tx].log_index}" for tx in (eth_tx, usdt_tx))
    rows = _rows(pg_url)
    assert {tx: rows[tx].status for tx in rows} == {eth_tx: "credited", usdt_tx: "credited"}
    assert all(rows[tx].credited_seq for tx in rows)
    assert w.pending() == []
    assert _cursor(pg_url) == dev_chain.head() - DEPTH + 1

    # what a deposit costs on the chain
    eth_gas = to_int((dev_chain.receipt(eth_tx) or {})["gasUsed"])
    token_gas = to_int((dev_chain.receipt(usdt_tx) or {})["gasUsed"])
    record_property("gas_deposit_eth", eth_gas)
    record_property("gas_deposit_token", token_gas)
    logging.getLogger("tests.chain").info("event=deposit_gas eth=%d token=%d", eth_gas, token_gas)
    assert 21_000 < eth_gas < 100_000 and 21_000 < token_gas < 150_000


def test_wbtc_credits_btc_and_duplicate_or_reordered_logs_credit_once(
    dev_chain: DevChain, node: Node, make_watcher: WatcherFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
    original = w.rpc.get_logs

    def shuffled(*args: Any) -> list[dict[str, Any]]:
        logs = original(*args)
        return list(reversed(logs)) + logs + logs[:1]

    monkeypatch.setattr(w.rpc, "get_logs", shuffled)
    txs = [dev_chain.deposit_token(dev_chain.wbtc, 4, 3 * 10**8), dev_chain.deposit_eth(4, 2 * ETH),
           dev_chain.deposit_eth(4, 3 * ETH)]
    assert [k[0] for k in w.poll_once().credited] == txs[:1]  # mint, approve, deposit, 2 more: 3 deep
    assert [d.tx_hash for d in w.pending()] == txs[1:]
    dev_chain.mine(DEPTH)
    assert [k[0] for k in w.poll_once().credited] == txs[1:]
    dev_chain.mine()
    assert w.poll_once().credited == []
    assert node.engine.balance(4, "BTC") == (3 * 10**8, 0)
    assert node.engine.balance(4, "ETH") == (5 * ETH, 0)
    assert len(_credits(node)) == len(txs)


def test_a_deposit_reorged_out_before_its_depth_is_never_credited(
    dev_chain: DevChain, node: Node, make_watcher: WatcherFactory, pg_url: str,
) -> None:
    w = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
    tx = dev_chain.deposit_eth(7, ETH)
    dev_chain.mine()
    w.poll_once()
    assert [(d.tx_hash, d.confirmations) for d in w.pending()] == [(tx, 2)]

    dev_chain.reorg(2)  # the deposit's block and the next are replaced by empty ones
    assert dev_chain.receipt(tx) is None
    r = w.poll_once()
    assert [(d.tx_hash, d.status) for d in r.changed] == [(tx, "orphaned")]
    dev_chain.mine(2 * DEPTH)
    for _ in range(2):
        assert w.poll_once().credited == []
    assert node.engine.balance(7, "ETH") == (0, 0) and _credits(node) == []
    assert _rows(pg_url)[tx].status == "orphaned"
    assert _cursor(pg_url) == dev_chain.head() - DEPTH + 1


def test_a_deposit_re_included_in_another_block_is_credited_once(
    dev_chain: DevChain, node: Node, make_watcher: WatcherFactory, pg_url: str,
) -> None:
    w = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
    dev_chain.mine()  # an empty block before the deposit, so that the reorg can move it there
    tx = dev_chain.deposit_eth(7, ETH)
    first_block = dev_chain.block_of(tx)
    w.poll_once()
    (before,) = w.pending()

    dev_chain.reorg(2, [(dev_chain.raw(tx), 0)])  # the same transaction, one block earlier
    assert dev_chain.block_of(tx) == first_block - 1
    r = w.poll_once()
    (after,) = w.pending()
    assert (after.tx_hash, after.block_number, after.confirmations) == (tx, first_block - 1, 2)
    assert after.block_hash != before.block_hash and r.credited == []
    dev_chain.mine()
    assert [k[0] for k in w.poll_once().credited] == [tx]
    dev_chain.mine(DEPTH)
    assert w.poll_once().credited == []
    assert node.engine.balance(7, "ETH") == (ETH, 0) and len(_credits(node)) == 1

    # reorged out (orphaned), then mined again much later: pending again, and credited once
    tx2 = dev_chain.deposit_eth(8, 2 * ETH)
    w.poll_once()
    raw2 = dev_chain.raw(tx2)
    dev_chain.reorg(1)
    w.poll_once()
    assert _rows(pg_url)[tx2].status == "orphaned"
    dev_chain.mine(2)
    dev_chain.mined(dev_chain.rpc.call("eth_sendRawTransaction", [raw2]))
    w.poll_once()
    assert [d.tx_hash for d in w.pending()] == [tx2]
    dev_chain.mine(DEPTH)
    w.poll_once()
    w.poll_once()
    assert node.engine.balance(8, "ETH") == (2 * ETH, 0) and len(_credits(node)) == 2
    assert _rows(pg_url)[tx2].status == "credited"


def test_a_block_replaced_between_the_scan_and_the_credit_is_not_credited(
    dev_chain: DevChain, node: Node, make_watcher: WatcherFactory, pg_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
    tx = dev_chain.deposit_eth(7, ETH)
    dev_chain.mine(DEPTH - 1)  # exactly deep enough
    original = w.rpc.get_logs

    def then_reorg(*args: Any) -> list[dict[str, Any]]:
        logs = original(*args)
        dev_chain.reorg(DEPTH)  # after the scan, before the credit: the deposit's block is gone
        return logs

    monkeypatch.setattr(w.rpc, "get_logs", then_reorg)
    r = w.poll_once()
    monkeypatch.setattr(w.rpc, "get_logs", original)
    assert r.credited == [] and node.engine.balance(7, "ETH") == (0, 0)
    assert r.cursor < dev_chain.head() - DEPTH + 1  # the cursor waits below the deposit's block
    w.poll_once()
    assert _rows(pg_url)[tx].status == "orphaned"
    dev_chain.mine(DEPTH)
    w.poll_once()
    assert _credits(node) == [] and _cursor(pg_url) == dev_chain.head() - DEPTH + 1


def test_restarts_of_the_watcher_and_of_the_exchange_credit_nothing_twice(
    dev_chain: DevChain, make_watcher: WatcherFactory, pg_url: str,
) -> None:
    node = Node.open(pg_url, Settings.from_env({}), projections=False)
    open_accounts(node)
    try:
        w = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
        a = dev_chain.deposit_eth(1, ETH)
        dev_chain.mine(DEPTH)
        b = dev_chain.deposit_eth(2, ETH)
        assert [k[0] for k in w.poll_once().credited] == [a]
        w.stop()  # stopped mid-way: b is pending

        w2 = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
        assert [d.tx_hash for d in w2.pending()] == [b]
        dev_chain.mine(DEPTH)
        assert [k[0] for k in w2.poll_once().credited] == [b]

        # a crash after the engine journaled a credit but before the watcher recorded it
        c = dev_chain.deposit_eth(3, ETH)
        w2.poll_once()
        (row,) = w2.pending()
        node.sequencer.submit_wait(Credit(3, "ETH", ETH, f"ethereum:{c}:{row.log_index}"))
        w2.stop()
        dev_chain.mine(DEPTH)
        w3 = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
        assert [k[0] for k in w3.poll_once().credited] == [c]  # marked credited: DUPLICATE_REFERENCE
        assert node.engine.balance(3, "ETH") == (ETH, 0)
        assert _rows(pg_url)[c].status == "credited" and _rows(pg_url)[c].credited_seq is None
        w3.stop()
    finally:
        node.close()

    # the exchange restarts and the watcher's tables are lost: a rescan from block 0 credits nothing again
    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM deposits")
        conn.execute("DELETE FROM chain_cursors")
    node = Node.open(pg_url, Settings.from_env({}), projections=False)
    try:
        w4 = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
        dev_chain.mine()
        r = w4.poll_once()
        assert len(r.credited) == 3  # all three found already credited
        for acct in (1, 2, 3):
            assert node.engine.balance(acct, "ETH") == (ETH, 0)
        assert len(_credits(node)) == 3
        assert {d.status for d in _rows(pg_url).values()} == {"credited"}
    finally:
        node.close()


def test_the_watcher_retries_while_the_chain_node_is_down(
    dev_chain_with_state: DevChain, node: Node, make_watcher: WatcherFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dpg.chain")
    dev = dev_chain_with_state
    w = make_watcher(dev.config(), node.sequencer.submit_wait)
    tx = dev.deposit_eth(7, ETH)
    thread = w.start()
    _wait(lambda: len(w.pending()) == 1)

    dev.stop()  # the node goes away (and dumps its state)
    _wait(lambda: caplog.text.count("event=chain_unavailable") >= 3)
    assert thread.is_alive() and node.engine.balance(7, "ETH") == (0, 0)

    dev.restart()  # back on the same port, from its state
    dev.mine(DEPTH)
    _wait(lambda: node.engine.balance(7, "ETH") == (ETH, 0))
    _wait(lambda: "event=watcher_recovered" in caplog.text)
    assert thread.is_alive()
    dev.mine(DEPTH)
    time.sleep(0.3)
    assert len(_credits(node)) == 1 and f"ethereum:{tx}:" in _credits(node)[0]
    w.stop()
    assert not thread.is_alive()
    assert "event=watcher_stopped" in caplog.text


def test_a_node_that_comes_back_as_another_chain_is_not_trusted(
    dev_chain: DevChain, node: Node, make_watcher: WatcherFactory, pg_url: str,
) -> None:
    w = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
    a = dev_chain.deposit_eth(1, ETH)
    dev_chain.mine(DEPTH + 2)
    b = dev_chain.deposit_eth(2, ETH)
    w.poll_once()
    cursor = _cursor(pg_url)
    assert [d.tx_hash for d in w.pending()] == [b] and cursor > 0

    dev_chain.anvil.kill()  # gone at once, state and all; a new chain answers on the same port
    dev_chain.restart()
    assert dev_chain.head() < cursor
    assert w.poll_once().credited == []  # the node lacks the cursor's block: wait
    dev_chain.mine(cursor + 5)
    with pytest.raises(DeepReorg):
        w.poll_once()
    assert node.engine.balance(2, "ETH") == (0, 0) and _cursor(pg_url) == cursor

    # an embedded dev chain whose state was removed starts over instead (its contracts deployed again)
    again = deploy(dev_chain.rpc, dev_chain.accounts[0], dev_chain.accounts[1:6], [("USDT", 6), ("WBTC", 8)])
    assert again.vault == dev_chain.vault
    reset = make_watcher(dev_chain.config(), node.sequencer.submit_wait, reset_on_mismatch=True)
    reset.poll_once()
    assert reset.pending() == [] and _rows(pg_url)[b].status == "orphaned"
    assert _rows(pg_url)[a].status == "credited" and len(_credits(node)) == 1


def test_an_unknown_token_is_logged_and_skipped(
    dev_chain: DevChain, node: Node, make_watcher: WatcherFactory, pg_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dpg.chain")
    other = dev_chain.deploy_token("XYZ", 6)
    # the watcher knows USDT only: WBTC and XYZ deposits are skipped, like native ETH on a chain without it
    w = make_watcher(dev_chain.config(tokens=(Token("USDT", "USDT", dev_chain.usdt, 6),), native_asset=""),
                     node.sequencer.submit_wait)
    skipped = [dev_chain.deposit_token(other, 5, 10**6), dev_chain.deposit_token(dev_chain.wbtc, 5, 10**8),
               dev_chain.deposit_eth(5, ETH)]
    known = dev_chain.deposit_token(dev_chain.usdt, 5, 10**6)
    dev_chain.mine(DEPTH)
    r = w.poll_once()
    w.poll_once()
    assert [k[0] for k in r.credited] == [known]
    assert node.engine.balance(5, "USDT") == (10**6, 0)
    assert node.engine.balance(5, "BTC") == (0, 0) and node.engine.balance(5, "ETH") == (0, 0)
    assert set(_rows(pg_url)) == {known}
    for tx in skipped:
        assert caplog.text.count(f"event=deposit_unknown_token chain=ethereum tx={tx}") == 1
    assert _cursor(pg_url) == dev_chain.head() - DEPTH + 1


def test_a_credit_the_engine_refuses_is_rejected_once_and_the_watcher_moves_on(
    dev_chain: DevChain, node: Node, make_watcher: WatcherFactory, pg_url: str,
) -> None:
    w = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
    huge = dev_chain.deposit_token(dev_chain.usdt, 6, 2**127)  # beyond what a balance may hold
    ok = dev_chain.deposit_eth(6, ETH)
    dev_chain.mine(DEPTH)
    r = w.poll_once()
    assert [k[0] for k in r.rejected] == [huge] and [k[0] for k in r.credited] == [ok]
    rows = _rows(pg_url)
    assert rows[huge].status == "rejected" and "INVALID_AMOUNT" in (rows[huge].reason or "")
    dev_chain.mine()
    assert w.poll_once().rejected == []
    assert node.engine.balance(6, "USDT") == (0, 0)


def test_a_deposit_for_an_account_nobody_opened_is_recorded_unattributed_once(
    dev_chain: DevChain, node: Node, make_watcher: WatcherFactory, pg_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.api.client import dpg_cli

    caplog.set_level(logging.INFO, logger="dpg.chain")
    w = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
    stray = dev_chain.deposit_eth(987654321, ETH)  # tagged with an id nobody signed up for
    ok = dev_chain.deposit_eth(6, ETH)
    dev_chain.mine(DEPTH)
    r = w.poll_once()
    assert [k[0] for k in r.rejected] == [stray] and [k[0] for k in r.credited] == [ok]
    assert not node.engine.has_account(987654321) and node.engine.balance(6, "ETH") == (ETH, 0)
    assert caplog.text.count(f"event=deposit_unattributed chain=ethereum ref=ethereum:{stray}:") == 1
    dev_chain.mine()
    assert w.poll_once().rejected == []  # not retried
    # the operator sees it, with the reason
    out = dpg_cli({"DPG_DATABASE_URL": pg_url}, "wallet", "deposits", "987654321")
    assert out.returncode == 0, out.stderr
    (line,) = [json.loads(x) for x in out.stdout.splitlines()]
    assert line["tx_hash"] == stray and line["status"] == "rejected" and "UNKNOWN_ACCOUNT" in line["reason"]


def test_a_node_that_is_not_the_configured_chain_is_refused(
    dev_chain: DevChain, node: Node, make_watcher: WatcherFactory,
) -> None:
    with pytest.raises(ChainMismatch, match="chain id"):
        make_watcher(dev_chain.config(chain_id=1), node.sequencer.submit_wait).poll_once()
    with pytest.raises(ChainMismatch, match="no contract at the vault"):
        make_watcher(dev_chain.config(vault="0x" + "12" * 20), node.sequencer.submit_wait).poll_once()
    wrong = dev_chain.config(tokens=(Token("WBTC", "BTC", dev_chain.usdt, 8),))  # USDT's address, 6 decimals
    with pytest.raises(ChainMismatch, match="has 6 decimals, configured 8"):
        make_watcher(wrong, node.sequencer.submit_wait).poll_once()


# ---------------------------------------------------------------------- the embedded chain, end to end


@pytest.mark.parametrize("kind", ["in-process", "anvil"])
def test_custody_starts_an_embedded_chain_and_credits_its_deposits(
    kind: str, anvil_bin: Path, artifacts: Path, node: Node, pg_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DPG_DEV_CHAIN", raising=False)
    binary = anvil_bin if kind == "anvil" else None  # no binary: the default, in this process
    chain = ChainConfig(name="ethereum", chain_id=31337, rpc_url="", vault="", confirmations=2, native_asset="ETH",
                        tokens=(Token("USDT", "USDT", "", 6),), poll_seconds=0.05, block_seconds=0.2)
    custody = Custody.start(pg_url, node.sequencer.submit_wait, [chain], tmp_path, anvil=binary)
    try:
        (resolved,) = custody.chains()
        assert resolved.rpc_url.startswith("http://127.0.0.1:") and resolved.vault
        dev = custody.embedded["ethereum"]
        dev.deposit_eth(11, ETH // 10)
        dev.deposit_token("USDT", 11, 5 * 10**6)
        _wait(lambda: node.engine.balance(11, "USDT") == (5 * 10**6, 0) and node.engine.balance(11, "ETH")[0] > 0)
        assert node.engine.balance(11, "ETH") == (ETH // 10, 0)
        # the watcher marks a deposit credited once the engine has taken it: just after the balance
        _wait(lambda: {d.status for d in custody.deposits(11)} == {"credited"})
    finally:
        custody.stop()
    # the chain keeps its state and its contracts between runs
    assert (tmp_path / "chain" / "ethereum" / ("state.json" if kind == "anvil" else "state.msgpack")).exists()
    again = Custody.start(pg_url, node.sequencer.submit_wait, [chain], tmp_path, anvil=binary)
    try:
        assert again.chains()[0].vault == resolved.vault
        assert again.embedded["ethereum"].rpc.balance(resolved.vault) == ETH // 10
        time.sleep(0.3)
        assert node.engine.balance(11, "ETH") == (ETH // 10, 0)
    finally:
        again.stop()


def test_custody_leaves_out_a_chain_it_cannot_start(node: Node, pg_url: str, tmp_path: Path) -> None:
    chain = default_chains()[0]
    custody = Custody.start(pg_url, node.sequencer.submit_wait, [chain], tmp_path, anvil=tmp_path / "no-anvil")
    try:
        assert custody.chains() == []
    finally:
        custody.stop()


def test_watcher_threads_stop_cleanly(dev_chain: DevChain, node: Node, make_watcher: WatcherFactory) -> None:
    w: DepositWatcher = make_watcher(dev_chain.config(), node.sequencer.submit_wait)
    t = w.start()
    assert isinstance(t, threading.Thread) and t.is_alive()
    w.stop(5)
    assert not t.is_alive()
