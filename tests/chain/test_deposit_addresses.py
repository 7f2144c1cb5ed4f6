"""Deposit addresses on a real anvil node with a real exchange on PostgreSQL: plain ETH and token
transfers to an account's own address are swept into the vault and credited to that account once,
after the confirmations; one reorged out is never credited; a restart of the sweeper neither sweeps
twice nor misses a transfer; dust waits; a factory that is not DPG's is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eth_abi.abi import decode

from dpg.chain.config import DEFAULT_MIN_SWEEP, NATIVE, ChainConfig, ChainConfigError, load_chains
from dpg.chain.contracts import encode_call, encode_deploy, load_artifact
from dpg.chain.embedded import transfer_eth, transfer_token
from dpg.chain.forwarder import FactoryMismatch, check_factory, forwarder_address, payment_uri, token_name
from dpg.chain.rpc import Rpc, to_int
from dpg.chain.signer import dev_key
from dpg.chain.store import DepositStore
from dpg.chain.sweeper import Sweeper, SweepStore
from dpg.system.node import Node
from tests.chain.conftest import DEPTH, DevChain, WatcherFactory

ETH = 10**18
USDT = 10**6


@pytest.fixture
def make_sweeper(pg_url: str) -> Iterator[Any]:
    """``make_sweeper(config)``: a sweeper paying gas with anvil's account 0 (the dev broadcaster),
    its factory checked and recorded."""
    made: list[Sweeper] = []

    def make(config: ChainConfig, **options: Any) -> Sweeper:
        s = Sweeper(config, Rpc(config.rpc_url, timeout=5.0), SweepStore(pg_url), dev_key(0), **options)
        s.check()
        made.append(s)
        return s

    try:
        yield make
    finally:
        for s in made:
            s.stop()


def _issue(sweeper: Sweeper, account: int) -> str:
    assert sweeper.factory is not None
    address = sweeper.factory.address_of(account)
    sweeper.store.issue(sweeper.chain.name, account, address)
    return address


def _address_of(dev: DevChain, account: int) -> str:
    (value,) = decode(["address"], dev.rpc.eth_call(dev.factory, encode_call("addressOf(uint64)", account)))
    return str(value).lower()


def _token_balance(dev: DevChain, token: str, who: str) -> int:
    (value,) = decode(["uint256"], dev.rpc.eth_call(token, encode_call("balanceOf(address)", who)))
    return int(value)


def _credits(node: Node) -> list[str]:
    return sorted(r for r in node.engine.refs if r.startswith("ethereum:"))


def _sweep_statuses(pg_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(pg_url) as c:
        return [(r[0], r[1]) for r in c.execute("SELECT address, status FROM deposit_sweeps ORDER BY sent_at")]


def _deposits(pg_url: str) -> dict[str, Any]:
    store = DepositStore(pg_url)
    try:
        return {d.tx_hash: d for d in store.deposits()}
    finally:
        store.close()


# ---------------------------------------------------------------------- addresses and settings


def test_each_account_has_its_own_address_computed_as_the_factory_does(
        dev_chain: DevChain, make_sweeper: Any) -> None:
    f = make_sweeper(dev_chain.config()).factory
    addresses = {account: f.address_of(account) for account in (1, 2, 7, 8, 2**64 - 1)}
    assert len(set(addresses.values())) == len(addresses)  # two accounts never share one
    for account, address in addresses.items():
        assert address == _address_of(dev_chain, account) == forwarder_address(f.address, f.code_hash, account)
        assert dev_chain.rpc.code(address) == b""  # known before anything is deployed there
    with pytest.raises(ValueError):
        f.address_of(0)
    assert token_name("WBTC", "ethereum") == "WBTC on Ethereum"
    usdt_uri = payment_uri(addresses[7], 31337, dev_chain.usdt)
    assert usdt_uri.lower() == f"ethereum:{dev_chain.usdt}@31337/transfer?address={addresses[7]}"
    assert payment_uri(addresses[7], 31337, NATIVE).lower() == f"ethereum:{addresses[7]}@31337"


def test_a_factory_that_is_not_dpgs_for_this_vault_is_refused(dev_chain: DevChain) -> None:
    rpc = dev_chain.rpc
    with pytest.raises(FactoryMismatch, match="not a ForwarderFactory"):
        check_factory(rpc, dev_chain.vault, dev_chain.vault)  # a contract, but not a factory
    with pytest.raises(FactoryMismatch, match="no contract"):
        check_factory(rpc, "0x" + "42" * 20, dev_chain.vault)
    other = rpc.send_transaction({"from": dev_chain.accounts[0], "gas": hex(5_000_000),
                                  "data": encode_deploy(load_artifact("ForwarderFactory"), dev_chain.usdt)})
    elsewhere = str(rpc.wait_receipt(other)["contractAddress"]).lower()
    with pytest.raises(FactoryMismatch, match="another vault"):
        check_factory(rpc, elsewhere, dev_chain.vault)
    assert check_factory(rpc, dev_chain.factory, dev_chain.vault).address == dev_chain.factory


def test_the_factory_and_minimum_sweeps_are_settings(tmp_path: Path) -> None:
    entry = {"name": "ethereum", "chain_id": 1, "rpc_url": "http://127.0.0.1:8545", "vault": "0x" + "11" * 20,
             "confirmations": 12, "native_asset": "ETH", "forwarder_factory": "0x" + "AB" * 20,
             "min_sweep": {"USDT": "25", "ETH": "0.01"},
             "tokens": {"USDT": {"address": "0x" + "22" * 20, "decimals": 6}}}
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"chains": [entry]}))
    (chain,) = load_chains({"DPG_CHAINS": str(p)})
    assert chain.forwarder_factory == "0x" + "ab" * 20
    assert (chain.min_sweep_of("USDT"), chain.min_sweep_of("ETH"), chain.min_sweep_of("BTC")) == (
        25 * USDT, 10**16, DEFAULT_MIN_SWEEP["BTC"])
    for bad, message in ((["forwarder_factory", "0x12"], "not a 0x address"),
                         (["min_sweep", {"USDT": "0.0000001"}], "at most 6 decimals"),
                         (["min_sweep", {"DOGE": "1"}], "not a DPG asset"),
                         (["min_sweep", {"USDT": "-1"}], "non-negative")):
        p.write_text(json.dumps({"chains": [{**entry, bad[0]: bad[1]}]}))
        with pytest.raises(ChainConfigError, match=message):
            load_chains({"DPG_CHAINS": str(p)})


# ---------------------------------------------------------------------- sweeps and credits


def test_plain_eth_and_token_transfers_are_credited_to_the_account_once_after_the_confirmations(
        dev_chain: DevChain, node: Node, make_watcher: WatcherFactory, make_sweeper: Any, pg_url: str) -> None:
    dev, config = dev_chain, dev_chain.config()
    sweeper = make_sweeper(config)
    watcher = make_watcher(config, node.sequencer.submit_wait)
    alice, bob = _issue(sweeper, 7), _issue(sweeper, 8)
    sender = dev.accounts[9]

    # a plain ETH transfer (21,000 gas: nothing runs at the address) and a plain token transfer
    eth_tx = dev.mined(transfer_eth(dev.rpc, sender, alice, ETH))
    usdt_tx = dev.mined(transfer_token(dev.rpc, dev.usdt, sender, bob, 250 * USDT))
    assert to_int((dev.receipt(eth_tx) or {})["gasUsed"]) == 21_000
    assert dev.rpc.balance(alice) == ETH and _token_balance(dev, dev.usdt, bob) == 250 * USDT

    r = sweeper.poll_once()
    assert len(r.sent) == 2  # one sweep per address, each deploying its forwarder
    for tx in r.sent:
        dev.mined(tx)
    assert dev.rpc.balance(alice) == 0 and _token_balance(dev, dev.usdt, bob) == 0
    assert dev.rpc.code(alice) and dev.rpc.code(bob)
    assert {(a.account, a.asset, a.amount, a.status) for a in sweeper.store.arrivals()} == {
        (7, "ETH", ETH, "swept"), (8, "USDT", 250 * USDT, "swept")}
    assert next(a for a in sweeper.store.arrivals() if a.asset == "USDT").tx_hash == usdt_tx

    # the vault's Deposit events are pending until the chain's depth, then credited once
    watcher.poll_once()
    pending = {d.tx_hash: d for d in watcher.pending()}
    assert set(pending) == set(r.sent)
    assert {(d.account, d.asset, d.amount) for d in pending.values()} == {(7, "ETH", ETH), (8, "USDT", 250 * USDT)}
    assert node.engine.balance(7, "ETH") == (0, 0) and node.engine.balance(8, "USDT") == (0, 0)
    dev.mine(DEPTH - 1)
    watcher.poll_once()
    assert node.engine.balance(7, "ETH") == (ETH, 0) and node.engine.balance(8, "USDT") == (250 * USDT, 0)
    for _ in range(3):
        dev.mine()
        assert sweeper.poll_once().sent == []  # the forwarders are empty: nothing is sent
        assert watcher.poll_once().credited == []
    assert len(_credits(node)) == 2
    assert [s for _, s in _sweep_statuses(pg_url)] == ["done", "done"]

    # the forwarder, now deployed, takes a second plain transfer (21,000 gas + a 15-gas proxy)
    second = dev.mined(transfer_eth(dev.rpc, sender, alice, 2 * ETH))
    assert to_int((dev.receipt(second) or {})["gasUsed"]) < 21_100
    (sweep,) = sweeper.poll_once().sent
    gas = to_int((dev.receipt(dev.mined(sweep)) or {})["gasUsed"])
    dev.mine(DEPTH)
    watcher.poll_once()
    assert node.engine.balance(7, "ETH") == (3 * ETH, 0) and len(_credits(node)) == 3
    assert dev.rpc.balance(dev.vault) == 3 * ETH and _token_balance(dev, dev.usdt, dev.vault) == 250 * USDT
    assert gas < 80_000, gas  # a sweep of ETH from a deployed forwarder


def test_a_transfer_reorged_out_before_the_sweep_or_before_the_credit_is_never_credited(
        dev_chain: DevChain, node: Node, make_watcher: WatcherFactory, make_sweeper: Any, pg_url: str) -> None:
    dev, config = dev_chain, dev_chain.config()
    sweeper = make_sweeper(config)
    watcher = make_watcher(config, node.sequencer.submit_wait)
    alice, bob = _issue(sweeper, 7), _issue(sweeper, 8)
    sweeper.poll_once()  # the first balance check of the new addresses: nothing there

    # reorged out before the sweep: nothing at the address any more, nothing sent
    tx = dev.mined(transfer_eth(dev.rpc, dev.accounts[9], alice, ETH))
    dev.reorg(1)
    assert dev.receipt(tx) is None and dev.rpc.balance(alice) == 0
    assert sweeper.poll_once().sent == []

    # reorged out after the sweep, before the credit: the transfer and its sweep both go
    dev.mine()
    usdt_tx = dev.mined(transfer_token(dev.rpc, dev.usdt, dev.accounts[9], bob, 40 * USDT))
    (sweep,) = sweeper.poll_once().sent
    dev.mined(sweep)
    assert sweeper.poll_once().sent == []  # the sweep is followed: mined
    watcher.poll_once()
    assert [d.tx_hash for d in watcher.pending()] == [sweep]
    dev.reorg(2)  # the transfer's and the sweep's blocks are replaced by empty ones
    assert dev.receipt(usdt_tx) is None and dev.receipt(sweep) is None
    assert sweeper.poll_once().sent == []
    statuses = {a.tx_hash: a.status for a in sweeper.store.arrivals()}
    assert statuses[usdt_tx] == "orphaned"
    assert _sweep_statuses(pg_url) == [(bob, "dropped")]
    for _ in range(2 * DEPTH):
        dev.mine()
        sweeper.poll_once()
        assert watcher.poll_once().credited == []
    assert _credits(node) == [] and node.engine.balance(8, "USDT") == (0, 0)
    assert _deposits(pg_url)[sweep].status == "orphaned"
    assert _token_balance(dev, dev.usdt, dev.vault) == 0


def test_a_restarted_sweeper_neither_sweeps_twice_nor_misses_a_transfer(
        dev_chain: DevChain, node: Node, make_watcher: WatcherFactory, make_sweeper: Any, pg_url: str) -> None:
    dev, config = dev_chain, dev_chain.config()
    first = make_sweeper(config)
    alice, bob = _issue(first, 7), _issue(first, 8)
    first.poll_once()
    dev.rpc.call("evm_setAutomine", [False])  # transactions wait in the pool until a block is mined

    eth_tx = transfer_eth(dev.rpc, dev.accounts[9], alice, ETH)
    dev.mine()
    assert dev.receipt(eth_tx) is not None
    (sweep,) = first.poll_once().sent
    assert dev.receipt(sweep) is None  # sent, not mined: the sweeper stops here
    first.stop()

    # while it is down: a token transfer to the other address
    usdt_tx = transfer_token(dev.rpc, dev.usdt, dev.accounts[9], bob, 75 * USDT)
    dev.mine()
    assert dev.receipt(usdt_tx) is not None and dev.receipt(sweep) is not None  # the pending sweep too

    second = make_sweeper(config)
    r = second.poll_once()
    assert len(r.sent) == 1 and r.sent[0] != sweep  # bob's transfer, found by the scan; alice's not again
    dev.mine()
    for _ in range(DEPTH + 1):
        assert second.poll_once().sent == []
        dev.mine()
    assert [s for _, s in _sweep_statuses(pg_url)] == ["done", "done"]
    assert {(a.account, a.status, a.sweep_tx) for a in second.store.arrivals()} == {
        (7, "swept", sweep), (8, "swept", r.sent[0])}

    dev.rpc.call("evm_setAutomine", [True])
    watcher = make_watcher(config, node.sequencer.submit_wait)
    watcher.poll_once()
    assert node.engine.balance(7, "ETH") == (ETH, 0) and node.engine.balance(8, "USDT") == (75 * USDT, 0)
    assert len(_credits(node)) == 2


def test_dust_waits_at_the_address_until_the_minimum_and_tokens_sent_before_issuing_are_found(
        dev_chain: DevChain, make_sweeper: Any) -> None:
    dev = dev_chain
    sweeper = make_sweeper(dev.config(min_sweep=(("USDT", 5 * USDT),)))
    assert sweeper.factory is not None
    carol = sweeper.factory.address_of(9)
    dev.mined(transfer_token(dev.rpc, dev.usdt, dev.accounts[9], carol, 2 * USDT))  # long before it is issued
    dev.mine(DEPTH + 1)
    sweeper.poll_once()
    sweeper.store.issue("ethereum", 9, carol)
    assert sweeper.poll_once().sent == []  # found by its first balance check, but below 5 USDT
    assert sweeper.poll_once().sent == []
    assert [(a.amount, a.tx_hash, a.status) for a in sweeper.store.arrivals()] == [(2 * USDT, None, "received")]
    third = dev.mined(transfer_token(dev.rpc, dev.usdt, dev.accounts[9], carol, 3 * USDT))
    (sweep,) = sweeper.poll_once().sent
    dev.mined(sweep)
    assert _token_balance(dev, dev.usdt, carol) == 0 and dev.rpc.code(carol)
    assert [(a.amount, a.tx_hash, a.status, a.sweep_tx) for a in sweeper.store.arrivals()] == [
        (2 * USDT, None, "swept", sweep), (3 * USDT, third, "swept", sweep)]


# ---------------------------------------------------------------------- the running exchange


def test_the_embedded_default_chain_credits_a_plain_transfer_to_a_deposit_address(
        pg_server: str, tmp_path: Path) -> None:
    """``make up``'s custody (the in-process dev chains, nothing configured): the API gives each user
    an address of their own, ``dpg wallet deposit --plain`` sends to it, dust shows as received and
    waits, and the sweep is credited after the confirmations, once."""
    from decimal import Decimal

    from tests.api.client import User, dpg_cli, until
    from tests.chain.test_journey import running

    env = {"DPG_CUSTODY": "1", "DPG_DEV_CHAIN": ""}
    with running(pg_server, tmp_path, "plain", env) as (base, cli_env):
        erin, frank = User(base, "erin@plain.dpg"), User(base, "frank@plain.dpg")
        r = erin.http.get("/api/v1/wallet/deposit-address", params={"chain": "ethereum"})
        assert r.status_code == 200, r.text
        where = r.json()
        address = where["address"]
        assert address and address != where["vault"] and where["advanced"]["vault"] == where["vault"]
        assert where["advanced"]["account"] == erin.id and f"depositETH({erin.id})" in where["advanced"]["how"]
        assets = {a["asset"]: a for a in where["assets"]}
        assert {a: x["name"] for a, x in assets.items()} == {
            "ETH": "ETH on Ethereum", "USDT": "USDT on Ethereum", "BTC": "WBTC on Ethereum"}
        assert assets["BTC"]["uri"].lower() == f"ethereum:{assets['BTC']['token']}@31337/transfer?address={address}"
        assert where["uri"].lower() == f"ethereum:{address}@31337"
        assert Decimal(assets["ETH"]["min_deposit"]) == Decimal("0.005")
        other = frank.http.get("/api/v1/wallet/deposit-address", params={"chain": "ethereum"}).json()["address"]
        assert other and other != address
        assert erin.http.get("/api/v1/wallet/deposit-address", params={"chain": "mars"}).json()["code"] == \
            "UNKNOWN_CHAIN"

        # dust (below the 0.005 ETH minimum) is shown received, and waits at the address
        r = dpg_cli(cli_env, "wallet", "deposit", str(erin.id), "0.001", "--asset", "ETH", "--plain")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["to"] == address

        def listed() -> list[dict[str, Any]]:
            return list(erin.http.get("/api/v1/wallet/deposits").json())

        (dust,) = until("the dust received", lambda: [d for d in listed() if d["status"] == "received"])
        assert (dust["asset"], Decimal(dust["amount"])) == ("ETH", Decimal("0.001"))

        # 2 ETH more and 0.5 BTC (as WBTC): swept, then credited after 3 confirmations of the sweeps
        for amount, asset in (("2", "ETH"), ("0.5", "BTC")):
            r = dpg_cli(cli_env, "wallet", "deposit", str(erin.id), amount, "--asset", asset, "--plain")
            assert r.returncode == 0, r.stderr
        until("the credits", lambda: (Decimal(erin.balance("ETH")[0]), Decimal(erin.balance("BTC")[0])) == (
            Decimal("2.001"), Decimal("0.5")), timeout=90)
        done = until("both deposits credited", lambda: [d for d in listed() if d["status"] == "credited"]
                     if len(listed()) == 2 else None)
        assert sorted((d["asset"], Decimal(d["amount"]), d["confirmations"]) for d in done) == [
            ("BTC", Decimal("0.5"), 3), ("ETH", Decimal("2.001"), 3)]
        assert Decimal(frank.balance("ETH")[0]) == 0


def test_an_embedded_chain_from_before_deposit_addresses_gets_its_factory(tmp_path: Path) -> None:
    from dpg.chain.config import default_chains
    from dpg.chain.embedded import start_embedded

    config = default_chains()[0]
    first = start_embedded(config, tmp_path, kind="in-process")
    try:
        assert first.config.forwarder_factory
        check_factory(first.rpc, first.config.forwarder_factory, first.config.vault)
    finally:
        first.stop()
    record = tmp_path / "chain" / "ethereum" / "deployment.json"
    doc = json.loads(record.read_text())
    assert doc["forwarder_factory"] == first.config.forwarder_factory
    del doc["forwarder_factory"]  # as a data directory written before deposit addresses
    record.write_text(json.dumps(doc))

    again = start_embedded(config, tmp_path, kind="in-process")
    try:
        assert again.config.vault == first.config.vault  # the same chain, its vault kept
        factory = again.config.forwarder_factory
        assert factory and json.loads(record.read_text())["forwarder_factory"] == factory
        assert check_factory(again.rpc, factory, again.config.vault).address == factory
    finally:
        again.stop()
